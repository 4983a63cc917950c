/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * VMSWAP_TEST_OP_DELAY_MS: tests only. Each batch of enable's copy, trim,
 * out and swap-in sleeps this long per 2 MiB it covers, so a test can
 * catch an operation while it runs.
 */
#include <stdlib.h>
#include <unistd.h>

#include "helper.h"
#include "log.h"
#include "ops.h"

#define DELAY_ENV "VMSWAP_TEST_OP_DELAY_MS"
#define DELAY_MAX_MS 10000

static unsigned delay_ms;

void vs_op_delay_init(void)
{
	const char *s = getenv(DELAY_ENV);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return;
	v = strtoul(s, &end, 10);
	if (*end || *s < '0' || *s > '9' || v > DELAY_MAX_MS) {
		vs_warn("%s=%s: expected 0 to %u; ignored", DELAY_ENV, s, DELAY_MAX_MS);
		return;
	}
	delay_ms = (unsigned)v;
}

void vs_op_delay(uint64_t pages)
{
	if (delay_ms && pages)
		usleep((useconds_t)(delay_ms * 1000ull * pages / 512));
}
