/* SPDX-License-Identifier: BSD-3-Clause */
/* last_error: the newest error, for status and replies (helper.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../sys/log.h"
#include "helper.h"

/* Its own lock: errors are set with and without vs.lock held. */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

/* last_error from @fmt; logged as an error when @log. */
static void put_error(bool log, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void put_error(bool log, const char *fmt, va_list ap)
{
	char buf[VS_ERR_MAX];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	pthread_mutex_lock(&err_lock);
	memcpy(vs.last_error, buf, sizeof(buf));
	vs.err_seq++;
	pthread_mutex_unlock(&err_lock);
	if (log)
		vs_err("%s", buf);
}

void vs_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_error(true, fmt, ap);
	va_end(ap);
}

void vs_note_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_error(false, fmt, ap);
	va_end(ap);
}

void vs_get_error(char *buf, size_t n)
{
	pthread_mutex_lock(&err_lock);
	snprintf(buf, n, "%s", vs.last_error);
	pthread_mutex_unlock(&err_lock);
}

void vs_clear_error(void)
{
	pthread_mutex_lock(&err_lock);
	vs.last_error[0] = '\0';
	vs.err_seq++;
	pthread_mutex_unlock(&err_lock);
}

const char *vs_last_error(char *buf, size_t n)
{
	vs_get_error(buf, n);
	return buf;
}
