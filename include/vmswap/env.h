/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checks of VMSWAP_* values shared by the shim and the helper. The shim
 * checks every variable at init and reports a bad one (once, then the VMM
 * runs unmanaged); the helper, which gets its environment from the shim,
 * uses the same checks to ignore garbage quietly when started otherwise.
 */
#ifndef VMSWAP_ENV_H
#define VMSWAP_ENV_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

/* Test hook: enable's copy and punch, trim, out and swap-in sleep this
 * many ms per 2 MiB (helper/ops/opdelay.c). */
#define VMSWAP_ENV_TEST_OP_DELAY_MS "VMSWAP_TEST_OP_DELAY_MS"
#define VMSWAP_OP_DELAY_MAX_MS 10000
/* Test hook: the keeper's restart backoff starts at this many ms, not 1 s. */
#define VMSWAP_ENV_TEST_RESTART_DELAY_MS "VMSWAP_TEST_RESTART_DELAY_MS"
#define VMSWAP_RESTART_DELAY_MAX_MS 1000

/*
 * Set by the shim once it reported a bad value, to that variable's name:
 * a program the VMM execs with the same environment runs unmanaged too,
 * without reporting it again.
 */
#define VMSWAP_ENV_BAD_REPORTED "VMSWAP_BAD_REPORTED"

/* Longest part of a bad value a report shows. */
#define VMSWAP_ENV_SHOW_MAX 64

/* "0" or "1": 0, else -EINVAL. */
static inline int vmswap_parse_switch(const char *s, bool *out)
{
	if (!s || (strcmp(s, "0") && strcmp(s, "1")))
		return -EINVAL;
	*out = s[0] == '1';
	return 0;
}

/* VMSWAP_TEST_OP_DELAY_MS: 0 to VMSWAP_OP_DELAY_MAX_MS. 0 or -EINVAL. */
static inline int vmswap_parse_op_delay(const char *s, unsigned *out)
{
	uint64_t v;

	if (vmswap_parse_count(s, NULL, &v) || v > VMSWAP_OP_DELAY_MAX_MS)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/*
 * @s as it can be shown on one line of a log: bytes that are not
 * printable ASCII, '"' and '\' as \xNN; at most VMSWAP_ENV_SHOW_MAX bytes
 * of it, then "...". @out needs 4 * VMSWAP_ENV_SHOW_MAX + 4 bytes.
 */
static inline char *vmswap_env_show(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	for (i = 0; s[i] && i < VMSWAP_ENV_SHOW_MAX && o + 5 < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	if (s[i] && o + 3 < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

#endif
