/* SPDX-License-Identifier: BSD-3-Clause */
/* The test programs' page patterns: splitmix64's finaliser. */
#ifndef PROGS_MIX_H
#define PROGS_MIX_H

#include <stdint.h>

static inline uint64_t prog_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#endif
