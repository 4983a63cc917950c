/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kernel's swap, what users would pick instead of vmswap: a swap file
 * on the same filesystem as vmswap's swap file (fallocate + mkswap +
 * swapon at the highest priority), swapped on only while this part runs
 * and swapped off, then deleted, at the end, on any exit (atexit and the
 * signal handlers in main.c call bm_kswap_cleanup; run.sh checks again).
 * A swap that was already active is left alone.
 *
 * A child process in its own memory cgroup fills an anonymous region of
 * the guest's size and measures:
 *   pageout   MADV_PAGEOUT of the whole region, then the wait until the
 *             cgroup has no page under writeback, then a cgroup reclaim
 *             that frees the clean swap-cache pages: the memory is given
 *             back only then (vmswap's out likewise ends with fdatasync
 *             and dropping the page cache);
 *   random    latency of the first read of random swapped-out pages;
 *   seq       2 threads re-reading the whole region, thread i the pages
 *             p % 2 == i in order: the access pattern of toyvmm's verify.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define KS_SLACK (64ull << 20)
#define KS_SEED 0x5eed

struct ks_res {
	int err;
	char msg[200];
	double madv_ms, wb_ms, reclaim_ms, total_ms;
	double peak_extra_mib; /* during the pageout: host memory in use above its start */
	double swapped_pages, incore_pages;
	double rand_p50, rand_p99;
	double seq_MiBps;
	int rand_n;
	bool seq_bad;
};

static volatile sig_atomic_t ks_created, ks_on;
static char ks_path[600];

void bm_kswap_cleanup(void)
{
	if (ks_on) {
		swapoff(ks_path);
		ks_on = 0;
	}
	if (ks_created) {
		unlink(ks_path);
		ks_created = 0;
	}
	bm_cg_remove();
}

/* A note for the section, and the reason why everything below is skipped. */
static int skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int skip(const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	bm_note("kswap", "skipped: %s", why);
	bm_kswap_cleanup();
	return -1;
}

int bm_kswap_prepare(void)
{
	uint64_t len = bm.size + KS_SLACK;
	char out[1024], line[512];
	const char *mk[] = { "mkswap", "-q", ks_path, NULL };
	FILE *f;
	int fd, r;

	if (!bm.root)
		return skip("%s", "needs root (swapon)");
	if ((f = fopen("/proc/swaps", "re"))) {
		bool first = true;

		while (fgets(line, sizeof(line), f)) {
			if (!first) {
				line[strcspn(line, " \t\n")] = 0;
				bm_note("kswap", "swap %s already active: left alone; ours gets "
					"the highest priority", line);
			}
			first = false;
		}
		fclose(f);
	}
	snprintf(ks_path, sizeof(ks_path), "%s", bm.ksfile);
	fd = open(ks_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return skip("cannot create the swap file: %s", strerror(errno));
	ks_created = 1;
	if ((r = posix_fallocate(fd, 0, (off_t)len))) {
		/* Not every filesystem has fallocate; swapon takes written zeros. */
		static char zero[1 << 20];

		for (uint64_t off = 0; off < len; off += sizeof(zero)) {
			if (pwrite(fd, zero, sizeof(zero), (off_t)off) != (ssize_t)sizeof(zero)) {
				close(fd);
				return skip("writing the swap file: %s", strerror(errno));
			}
		}
	}
	if (fsync(fd) < 0) {
		close(fd);
		return skip("fsync of the swap file: %s", strerror(errno));
	}
	close(fd);
	r = bm_run(mk, out, sizeof(out));
	if (r == 127) {
		mk[0] = "/sbin/mkswap";
		r = bm_run(mk, out, sizeof(out));
	}
	if (r) {
		out[strcspn(out, "\n")] = 0;
		return skip("mkswap failed: %s", out);
	}
	return 0;
}

static size_t incore(char *base, size_t len)
{
	size_t np = len / BM_PAGE, n = 0;
	unsigned char *vec = malloc(np);

	if (!vec || mincore(base, len, vec)) {
		free(vec);
		return (size_t)-1;
	}
	for (size_t i = 0; i < np; i++)
		n += vec[i] & 1;
	free(vec);
	return n;
}

static bool page_incore(char *p)
{
	unsigned char v = 0;

	return mincore(p, BM_PAGE, &v) || (v & 1);
}

/* Writeback of the cgroup (v1: bytes) or, failing that, of the machine. */
static long long writeback(void)
{
	long long v = bm_cg_stat("writeback");

	return v >= 0 ? v : bm_kv("/proc/meminfo", "Writeback") * 1024;
}

struct seq_job {
	char *base;
	size_t np;
	unsigned id;
	uint64_t bad;
};

static void *seq_thread(void *arg)
{
	struct seq_job *j = arg;
	uint64_t sum = 0;

	for (size_t p = j->id; p < j->np; p += 2) {
		const uint64_t *w = (const uint64_t *)(j->base + p * BM_PAGE);

		if (w[0] != bm_page_word0(KS_SEED, p))
			j->bad++;
		for (unsigned i = 1; i < BM_PAGE / 8; i++)
			sum += w[i];
	}
	*(volatile uint64_t *)&j->bad += sum == 42; /* keep the reads */
	return NULL;
}

static void child(struct ks_res *res, bool cg)
{
	size_t len = bm.size, np = len / BM_PAGE;
	char *base = bm_map(len);
	double t0, t1, *lat = calloc((size_t)bm.samples, sizeof(double));
	uint64_t seed = 77 + (uint64_t)bm_rep_count();
	struct seq_job jobs[2];
	struct bm_mw mw;
	bool watching;
	pthread_t th;
	int n = 0;

	if (!base || !lat) {
		snprintf(res->msg, sizeof(res->msg), "cannot map %zu MiB", len >> 20);
		res->err = 1;
		return;
	}
	for (size_t p = 0; p < np; p++)
		bm_fill_page(base + p * BM_PAGE, KS_SEED, p);

	res->peak_extra_mib = NAN;
	watching = !bm_mw_start(getpid(), 0);
	t0 = bm_now();
	if (madvise(base, len, MADV_PAGEOUT) < 0) {
		snprintf(res->msg, sizeof(res->msg), "MADV_PAGEOUT: %s", strerror(errno));
		res->err = 1;
		return;
	}
	t1 = bm_now();
	res->madv_ms = (t1 - t0) * 1000;
	for (double end = t1 + 60; writeback() > 0 && bm_now() < end;)
		bm_sleep_ms(1);
	res->wb_ms = (bm_now() - t1) * 1000;
	t1 = bm_now();
	if (cg)
		bm_cg_reclaim();
	res->reclaim_ms = (bm_now() - t1) * 1000;
	res->total_ms = (bm_now() - t0) * 1000;
	if (watching) {
		bm_mw_stop(&mw);
		res->peak_extra_mib = mw.extra_mib;
	}
	res->swapped_pages = (double)bm_kv("/proc/self/smaps_rollup", "Swap") / 4;
	res->incore_pages = (double)incore(base, len);

	/* Random first reads of pages that are out (not even in the swap cache). */
	for (int tries = 0; n < bm.samples && tries < bm.samples * 8; tries++) {
		size_t p = bm_rand(&seed) % np;
		volatile uint64_t *w = (volatile uint64_t *)(base + p * BM_PAGE);
		uint64_t v;

		if (page_incore((char *)w))
			continue;
		t1 = bm_now();
		v = *w;
		lat[n++] = (bm_now() - t1) * 1e6;
		if (v != bm_page_word0(KS_SEED, p))
			res->seq_bad = true;
	}
	res->rand_n = n;
	res->rand_p50 = bm_pct(lat, (size_t)n, 50);
	res->rand_p99 = bm_pct(lat, (size_t)n, 99);

	for (unsigned i = 0; i < 2; i++)
		jobs[i] = (struct seq_job){ base, np, i, 0 };
	t0 = bm_now();
	pthread_create(&th, NULL, seq_thread, &jobs[1]);
	seq_thread(&jobs[0]);
	pthread_join(th, NULL);
	res->seq_MiBps = len / BM_MIB / (bm_now() - t0);
	if (jobs[0].bad + jobs[1].bad)
		res->seq_bad = true;
}

void bm_kswap_run(void)
{
	struct ks_res *res;
	char why[300];
	double np = (double)(bm.size / BM_PAGE);
	bool cg;
	pid_t pid = -1;
	int st;

	if (!ks_created)
		return;
	bm_log("kernel swap: %s, %llu MiB", ks_path, (unsigned long long)(bm.size >> 20));
	if (swapon(ks_path, SWAP_FLAG_PREFER | (32767 & SWAP_FLAG_PRIO_MASK)) < 0) {
		skip("swapon: %s", strerror(errno));
		return;
	}
	ks_on = 1;
	cg = !bm_cg_create(why, sizeof(why));
	if (!cg)
		bm_note("kswap", "no memory cgroup (%s): swap-cache pages are not reclaimed, "
			"so re-touch may be warm", why);
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		bm_note("kswap", "mmap: %s", strerror(errno));
		goto off;
	}
	memset(res, 0, sizeof(*res));
	pid = fork();
	if (!pid) {
		bm_child_setup();
		if (cg && bm_cg_join(getpid()))
			_exit(2);
		child(res, cg);
		_exit(0);
	}
	/* Cleanup kills it first: its swap is freed before swapoff runs. */
	if (pid > 0)
		bm_child_track(pid, true);
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		bm_note("kswap", "measuring child failed (%s)",
			pid < 0 ? strerror(errno) : "exit status");
		goto unmap;
	}
	if (res->err) {
		bm_note("kswap", "%s", res->msg);
		goto unmap;
	}
	bm_put("ks_madvise_ms", res->madv_ms);
	bm_put("ks_writeback_ms", res->wb_ms);
	bm_put("ks_reclaim_ms", res->reclaim_ms);
	bm_put("ks_pageout_ms", res->total_ms);
	bm_put("ks_pageout_MiBps", bm.size / BM_MIB / (res->total_ms / 1000));
	bm_put("ks_peak_extra_MiB", res->peak_extra_mib);
	bm_put("ks_swapped_pct", res->swapped_pages / np * 100);
	bm_put("ks_incore_pct", res->incore_pages / np * 100);
	bm_put("ks_rand_p50_us", res->rand_p50);
	bm_put("ks_rand_p99_us", res->rand_p99);
	bm_put("ks_seq_MiBps", res->seq_MiBps);
	if (res->swapped_pages < 0.9 * np)
		bm_note("kswap", "MADV_PAGEOUT sent only %.0f of %.0f pages to swap",
			res->swapped_pages, np);
	if (res->incore_pages > 0.01 * np)
		bm_note("kswap", "%.0f pages still in memory after pageout and reclaim",
			res->incore_pages);
	if (res->seq_bad)
		bm_note("kswap", "re-touch read wrong data");
unmap:
	if (pid > 0)
		bm_child_track(pid, false);
	munmap(res, sizeof(*res));
off:
	if (swapoff(ks_path) < 0)
		bm_note("kswap", "swapoff: %s", strerror(errno));
	ks_on = 0;
	bm_cg_remove();
}
