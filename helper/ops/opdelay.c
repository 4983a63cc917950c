/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * VMSWAP_TEST_OP_DELAY_MS: tests only. Each batch of enable's copy, trim,
 * out and swap-in sleeps this long per 2 MiB it covers, so a test can
 * catch an operation while it runs.
 */
#include <stdlib.h>
#include <unistd.h>

#include <vmswap/env.h>

#include "../model/helper.h"
#include "ops.h"

static unsigned delay_ms;

/* The shim reported a bad value already: ignore it, quietly. */
void vs_op_delay_init(void)
{
	const char *s = getenv(VMSWAP_ENV_TEST_OP_DELAY_MS);

	delay_ms = 0;
	if (s && *s && vmswap_parse_op_delay(s, &delay_ms))
		delay_ms = 0;
}

void vs_op_delay(uint64_t pages)
{
	if (delay_ms && pages)
		usleep((useconds_t)(delay_ms * 1000ull * pages / 512));
}
