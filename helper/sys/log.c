/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <vmswap/common.h>
#include <vmswap/ratelimit.h>

#include "log.h"

static enum vs_log_level log_level = VS_LOG_WARN;
static const char *log_name = VMSWAP_HELPER_NAME;
/* Errors and warnings, per call site: a flood of bad control lines must
 * not fill the VMM's stderr (which we inherit). info/debug are asked for. */
static struct vmswap_rl limit;

int vs_log_parse_level(const char *s, enum vs_log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	if (!s || !*s) {
		*out = VS_LOG_WARN;
		return 0;
	}
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum vs_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void vs_log_set_name(const char *name)
{
	log_name = name;
}

void vs_log_set_level(enum vs_log_level level)
{
	log_level = level;
}

void vs_log(enum vs_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "error", "warning", "info", "debug" };
	char buf[1024];
	int n, saved = errno;
	uint64_t dropped = 0;
	va_list ap;

	if (level > log_level)
		return;
	if (level <= VS_LOG_WARN &&
	    !vmswap_rl_allow(&limit, (uintptr_t)__builtin_return_address(0), vmswap_rl_now_ms(),
			     &dropped))
		return;
	if (dropped) {
		n = snprintf(buf, sizeof(buf), "%s[%d]: %s: %llu similar messages suppressed\n",
			     log_name, (int)getpid(), tags[level], (unsigned long long)dropped);
		if (write(STDERR_FILENO, buf, (size_t)n) < 0)
			(void)0;
	}
	n = snprintf(buf, sizeof(buf), "%s[%d]: %s: ", log_name, (int)getpid(), tags[level]);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	/* One write so concurrent threads' lines never interleave. */
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		(void)0;
	errno = saved;
}
