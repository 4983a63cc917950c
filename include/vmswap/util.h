/* SPDX-License-Identifier: BSD-3-Clause */
/* Small helpers shared by the shim, the helper, vmswapctl and the tests. */
#ifndef VMSWAP_UTIL_H
#define VMSWAP_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

/* A plain decimal count ("0", "17"): 0, -EINVAL or -ERANGE. */
static inline int vmswap_parse_count(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (!end && *p)
		return -EINVAL;
	if (end)
		*end = p;
	*out = v;
	return 0;
}

/*
 * Parse a size such as "64M", "512k", "1G" or "4096" (bytes).
 * Suffixes K, M, G, T (either case, optional trailing 'B' or "iB") are
 * binary. Returns 0 and stores the value, or -EINVAL (not a size) /
 * -ERANGE (overflow).
 */
static inline int vmswap_parse_size(const char *s, uint64_t *out)
{
	uint64_t v, mult = 1;
	const char *p;
	int r = vmswap_parse_count(s, &p, &v);

	if (r)
		return r;
	switch (*p) {
	case 'k': case 'K': mult = 1ull << 10; p++; break;
	case 'm': case 'M': mult = 1ull << 20; p++; break;
	case 'g': case 'G': mult = 1ull << 30; p++; break;
	case 't': case 'T': mult = 1ull << 40; p++; break;
	default: break;
	}
	if (mult > 1 && p[0] == 'i' && p[1] == 'B')
		p += 2;
	else if (mult > 1 && p[0] == 'B')
		p++;
	if (*p)
		return -EINVAL;
	if (v && mult > UINT64_MAX / v)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

/* "AFTER:COUNT", both counts, COUNT at least 1: 0 or -EINVAL/-ERANGE. */
static inline int vmswap_parse_fail_range(const char *s, uint64_t *after, uint64_t *count)
{
	const char *p;
	uint64_t a, c;
	int r = vmswap_parse_count(s, &p, &a);

	if (r)
		return r;
	if (*p != ':')
		return -EINVAL;
	if ((r = vmswap_parse_count(p + 1, NULL, &c)))
		return r;
	if (!c)
		return -EINVAL;
	*after = a;
	*count = c;
	return 0;
}

/*
 * The run directory root: $VMSWAP_RUN_DIR, else /run/vmswap for root,
 * else $XDG_RUNTIME_DIR/vmswap. Returns 0, -ENOENT when none applies,
 * -ENAMETOOLONG when it does not fit.
 */
static inline int vmswap_run_root(char *buf, size_t n)
{
	const char *env = getenv(VMSWAP_ENV_RUN_DIR);
	int r;

	if (env && *env)
		r = snprintf(buf, n, "%s", env);
	else if (geteuid() == 0)
		r = snprintf(buf, n, "%s", VMSWAP_DEFAULT_RUN_DIR_ROOT);
	else if ((env = getenv("XDG_RUNTIME_DIR")) && *env)
		r = snprintf(buf, n, "%s/%s", env, VMSWAP_RUN_SUBDIR);
	else
		return -ENOENT;
	return (r < 0 || (size_t)r >= n) ? -ENAMETOOLONG : 0;
}

/* $root/<pid>[/name] into buf. Returns 0 or -ENAMETOOLONG/-ENOENT. */
static inline int vmswap_run_path(char *buf, size_t n, int pid, const char *name)
{
	char root[256];
	int r = vmswap_run_root(root, sizeof(root));

	if (r)
		return r;
	r = name ? snprintf(buf, n, "%s/%d/%s", root, pid, name)
		 : snprintf(buf, n, "%s/%d", root, pid);
	return (r < 0 || (size_t)r >= n) ? -ENAMETOOLONG : 0;
}

#endif
