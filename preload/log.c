/* SPDX-License-Identifier: BSD-3-Clause */
/* stderr logging; no locks and no allocation, so any path may log. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <vmswap/ratelimit.h>

#include "log.h"

#define PREFIX "vmswap: "

int shim_log_level = SHIM_LOG_WARN;
/* Errors and warnings, per call site (lock-free, see ratelimit.h). */
static struct vmswap_rl limit;

/* One write(2) per line so lines of concurrent threads do not interleave. */
static void write_all(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(STDERR_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void shim_log(int level, const char *fmt, ...)
{
	char buf[512];
	size_t len = sizeof(PREFIX) - 1;
	int saved = errno, n;
	uint64_t dropped = 0;
	va_list ap;

	if (level > shim_log_level)
		return;
	if (level <= SHIM_LOG_WARN &&
	    !vmswap_rl_allow(&limit, (uintptr_t)__builtin_return_address(0), vmswap_rl_now_ms(),
			     &dropped))
		goto out;
	if (dropped) {
		n = snprintf(buf, sizeof(buf), PREFIX "%llu similar messages suppressed\n",
			     (unsigned long long)dropped);
		write_all(buf, (size_t)n);
	}
	memcpy(buf, PREFIX, len);
	va_start(ap, fmt);
	n = vsnprintf(buf + len, sizeof(buf) - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	len += (size_t)n < sizeof(buf) - len - 1 ? (size_t)n : sizeof(buf) - len - 2;
	buf[len++] = '\n';
	write_all(buf, len);
out:
	errno = saved;
}

void shim_log_raw(const char *first, ...)
{
	char buf[256];
	size_t len = sizeof(PREFIX) - 1;
	const char *s;
	int saved = errno;
	va_list ap;

	memcpy(buf, PREFIX, len);
	va_start(ap, first);
	for (s = first; s; s = va_arg(ap, const char *))
		while (*s && len < sizeof(buf) - 1)
			buf[len++] = *s++;
	va_end(ap);
	buf[len++] = '\n';
	write_all(buf, len);
	errno = saved;
}

char *shim_fmt_long(char *buf, long v)
{
	char tmp[24];
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	size_t i = 0, j = 0;

	do
		tmp[i++] = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		buf[j++] = '-';
	while (i)
		buf[j++] = tmp[--i];
	buf[j] = '\0';
	return buf;
}
