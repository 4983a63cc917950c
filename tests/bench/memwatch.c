/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Peak extra host memory while something runs: host memory in use
 * (MemTotal - MemAvailable, /proc/meminfo) sampled every 10 ms on a
 * thread, less its level when the watch started; and the peak of two
 * processes' own memory (RssAnon: what a process holds beyond the guest
 * pages it shares) and resident set (VmRSS). One watch at a time.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define MW_PERIOD_MS 10

static struct {
	pthread_t th;
	atomic_bool stop;
	pid_t a, b;
	double base_mib, peak_mib;
	double a_anon, a_rss, b_anon, b_rss; /* peaks, MiB */
	int samples;
} mw;

/* Host memory in use, MiB; NAN if unreadable. */
static double host_used_mib(void)
{
	long long total = bm_kv("/proc/meminfo", "MemTotal"),
		  avail = bm_kv("/proc/meminfo", "MemAvailable");

	return total < 0 || avail < 0 ? NAN : (double)(total - avail) / 1024;
}

static void peak(double *p, double v)
{
	if (!isnan(v) && (isnan(*p) || v > *p))
		*p = v;
}

static void sample(void)
{
	peak(&mw.peak_mib, host_used_mib());
	if (mw.a > 0) {
		peak(&mw.a_anon, (double)bm_proc_kb(mw.a, "RssAnon") / 1024);
		peak(&mw.a_rss, (double)bm_proc_kb(mw.a, "VmRSS") / 1024);
	}
	if (mw.b > 0) {
		peak(&mw.b_anon, (double)bm_proc_kb(mw.b, "RssAnon") / 1024);
		peak(&mw.b_rss, (double)bm_proc_kb(mw.b, "VmRSS") / 1024);
	}
	mw.samples++;
}

static void *watch(void *arg)
{
	(void)arg;
	while (!atomic_load(&mw.stop)) {
		sample();
		bm_sleep_ms(MW_PERIOD_MS);
	}
	return NULL;
}

int bm_mw_start(pid_t a, pid_t b)
{
	memset(&mw, 0, sizeof(mw));
	mw.a = a;
	mw.b = b;
	mw.peak_mib = mw.a_anon = mw.a_rss = mw.b_anon = mw.b_rss = NAN;
	mw.base_mib = host_used_mib();
	if (isnan(mw.base_mib))
		return -1;
	sample();
	return pthread_create(&mw.th, NULL, watch, NULL) ? -1 : 0;
}

void bm_mw_stop(struct bm_mw *out)
{
	atomic_store(&mw.stop, true);
	pthread_join(mw.th, NULL);
	sample();
	out->extra_mib = mw.peak_mib - mw.base_mib;
	out->a_anon_mib = mw.a_anon;
	out->a_rss_mib = mw.a_rss;
	out->b_anon_mib = mw.b_anon;
	out->b_rss_mib = mw.b_rss;
	out->samples = mw.samples;
}
