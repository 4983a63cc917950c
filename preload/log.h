/* SPDX-License-Identifier: BSD-3-Clause */
/* Log lines on stderr, prefixed "vmswap: ". */
#ifndef SHIM_LOG_H
#define SHIM_LOG_H

enum shim_log_level {
	SHIM_LOG_ERROR,
	SHIM_LOG_WARN,
	SHIM_LOG_INFO,
	SHIM_LOG_DEBUG,
};

/* Most verbose level printed; set once by the config. */
extern int shim_log_level;

/* Print one line at @level. Preserves errno. */
void shim_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Async-signal-safe variant for the fork child: writes "vmswap: ", then
 * each string of the NULL-terminated list, then a newline, to fd 2.
 */
void shim_log_raw(const char *first, ...);

/* Decimal text of @v into @buf (at least 24 bytes); returns buf. Async-signal-safe. */
char *shim_fmt_long(char *buf, long v);

#endif
