/* SPDX-License-Identifier: BSD-3-Clause */
/* The monotonic clock, in the units the helper counts in. */
#ifndef VS_CLOCK_H
#define VS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t vs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t vs_now_ms(void)
{
	return vs_now_ns() / 1000000;
}

#endif
