/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The wake-up as the guest feels it: toyvmm (guest of BENCH_SIZE) under
 * the shim is put out (enable, trim, out: every page only in the swap
 * file, checked with swap_pages), the page cache is dropped, then its
 * ptouch command reads the guest on 1, 2 or 4 threads at once. Each
 * measurement has its baseline on a file of the guest's size in the same
 * swap dir, read cold right before it:
 *
 *   ptouch N seq      N threads each reading its share with buffered
 *                     2 MiB preads (the kernel's read-ahead), N = 1, 2, 4
 *   ptouch 4 rand     4 threads of random 4 KiB O_DIRECT preads, the
 *                     same count
 *   ptouch 1 rand     latency p50/p99; the baseline adds the bare uffd
 *                     round trip (uffd_rt.c) to a random 4 KiB O_DIRECT
 *                     pread; once more with a reader thread beside it
 *   working set       25% of the pages, chosen by a seed, touched once,
 *                     put out again, then touched again: against a cold
 *                     sequential read of 25% of the guest's bytes
 *
 * ptouch checks every page it reads against toyvmm's model; the part
 * ends with disable and a full verify.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define WK_CHUNK (2u << 20)       /* buffered read size of the baselines */
#define WK_DROP_STEP (16u << 20)  /* the load reader drops behind this often */
#define WK_WS_SEED 4242           /* the working set, the same twice */
#define WK_MAX_THREADS 4

static char json[16384];

struct wk {
	struct bm_vmm v;
	uint64_t np;     /* guest pages */
	int fd;          /* the baseline file, buffered */
	int dfd;         /* the same file, O_DIRECT */
	bool dropped;    /* drop_caches works (root) */
};

static int vm(struct wk *w, const char *cmd, char *reply, size_t n)
{
	char buf[512];
	int r = bm_vmm_cmd(&w->v, 600, reply ? reply : buf, reply ? n : sizeof(buf), cmd);

	if (r)
		bm_note("wake", "toyvmm %s: %s", cmd, r > 0 ? (reply ? reply : buf) : strerror(-r));
	return r;
}

static int ctl(struct wk *w, const char *verb, bool wait)
{
	const char *args[] = { verb, wait ? "--wait" : NULL, NULL };
	char out[1024];
	int r = bm_ctl(w->v.pid, NULL, out, sizeof(out), args);

	if (r) {
		out[strcspn(out, "\n")] = 0;
		bm_note("wake", "vmswapctl %s: exit %d: %s", verb, r, out);
	}
	return r;
}

/* sync, then drop the page cache; the file's own cache in any case. */
static void drop_caches(struct wk *w)
{
	int r;

	sync();
	posix_fadvise(w->fd, 0, 0, POSIX_FADV_DONTNEED);
	r = bm_write_str("/proc/sys/vm/drop_caches", "3");
	if (r && w->dropped)
		bm_note("wake", "page cache not dropped (/proc/sys/vm/drop_caches: %s): the "
			"swap file is O_DIRECT, its reads may still be warm", strerror(-r));
	w->dropped = !r;
}

/* enable, trim, out; then every guest page must be in the swap file only. */
static int put_out(struct wk *w)
{
	char state[32] = "";
	uint64_t swap = 0, guest = 0;

	if (ctl(w, "enable", false) || ctl(w, "trim", true) || ctl(w, "out", true))
		return -1;
	if (bm_status(w->v.pid, json, sizeof(json)))
		return -1;
	bm_json_str(json, "state", state, sizeof(state));
	bm_json_u64(json, "swap_pages", &swap);
	bm_json_u64(json, "guest_pages", &guest);
	if (strcmp(state, "Active") || swap != w->np) {
		bm_note("wake", "after out: state %s, %" PRIu64 " of %" PRIu64 " pages in the "
			"swap file", state, swap, w->np);
		return -1;
	}
	drop_caches(w);
	return 0;
}

struct pt {
	double pages, ms, p50, p99, cpu_ms;
};

static double field(const char *reply, const char *key)
{
	const char *p = strstr(reply, key);

	return p ? strtod(p + strlen(key), NULL) : NAN;
}

/* ptouch ARGS; its answer parsed. */
static int ptouch(struct wk *w, const char *args, struct pt *pt)
{
	char cmd[128], reply[512];

	snprintf(cmd, sizeof(cmd), "ptouch %s", args);
	if (vm(w, cmd, reply, sizeof(reply)))
		return -1;
	pt->pages = field(reply, " pages=");
	pt->ms = field(reply, " ms=");
	pt->p50 = field(reply, " p50_us=");
	pt->p99 = field(reply, " p99_us=");
	pt->cpu_ms = field(reply, " cpu_ms=");
	return isnan(pt->pages) || isnan(pt->ms) || pt->ms <= 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Baselines on the file */

struct rd {
	pthread_t tid;
	int fd;
	uint64_t first, len;   /* bytes (seq) or pages (random) */
	uint64_t count, seed;  /* random: reads to do */
	double *lat;           /* random: us each, or NULL */
	int err;
};

static void *seq_reader(void *arg)
{
	struct rd *r = arg;
	char *buf = aligned_alloc(BM_PAGE, WK_CHUNK);

	for (uint64_t off = 0; buf && off < r->len && !r->err; off += WK_CHUNK) {
		size_t n = r->len - off < WK_CHUNK ? (size_t)(r->len - off) : WK_CHUNK;

		if (pread(r->fd, buf, n, (off_t)(r->first + off)) != (ssize_t)n)
			r->err = errno ? -errno : -EIO;
	}
	if (!buf)
		r->err = -ENOMEM;
	free(buf);
	return NULL;
}

/* Distinct random pages of the share, O_DIRECT, one at a time. */
static void *rand_reader(void *arg)
{
	struct rd *r = arg;
	uint32_t *order = malloc(r->len * sizeof(*order));
	char *buf = aligned_alloc(BM_PAGE, BM_PAGE);

	if (!order || !buf) {
		r->err = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < r->len; i++)
		order[i] = (uint32_t)i;
	for (uint64_t i = 0; i < r->count && !r->err; i++) {
		uint64_t j = i + bm_rand(&r->seed) % (r->len - i);
		uint32_t x = order[j];
		double t0;

		order[j] = order[i];
		t0 = bm_now();
		if (pread(r->fd, buf, BM_PAGE, (off_t)((r->first + x) * BM_PAGE)) != BM_PAGE)
			r->err = errno ? -errno : -EIO;
		if (r->lat)
			r->lat[i] = (bm_now() - t0) * 1e6;
	}
out:
	free(order);
	free(buf);
	return NULL;
}

/* The file opened once more: its own read-ahead state. fd or -errno. */
static int reopen(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * @n threads, each its contiguous share of @bytes read in order; MiB/s.
 * Each has its own open file, as read-ahead is kept per open file: on a
 * shared one the threads' streams would look random to it.
 */
static double cold_seq(struct wk *w, int n, uint64_t bytes)
{
	struct rd r[WK_MAX_THREADS] = { 0 };
	uint64_t pages = bytes / BM_PAGE;
	double t0, mibps = NAN;
	int err = 0;

	for (int i = 0; i < n; i++)
		r[i].fd = -1;
	for (int i = 0; i < n && !err; i++)
		err = (r[i].fd = reopen(w->fd, O_RDONLY)) < 0 ? r[i].fd : 0;
	drop_caches(w);
	t0 = bm_now();
	for (int i = 0; i < n && !err; i++) {
		r[i].first = pages * (uint64_t)i / (uint64_t)n * BM_PAGE;
		r[i].len = pages * (uint64_t)(i + 1) / (uint64_t)n * BM_PAGE - r[i].first;
		err = -pthread_create(&r[i].tid, NULL, seq_reader, &r[i]);
	}
	for (int i = 0; i < n; i++) {
		if (r[i].tid)
			pthread_join(r[i].tid, NULL);
		err = err ? err : r[i].err;
	}
	if (!err)
		mibps = (double)bytes / BM_MIB / (bm_now() - t0);
	else
		bm_note("wake", "cold read on %d threads: %s", n, strerror(-err));
	for (int i = 0; i < n; i++)
		if (r[i].fd >= 0)
			close(r[i].fd);
	return mibps;
}

/* @n threads of @count random O_DIRECT 4 KiB reads each; reads/s. */
static double cold_rand(struct wk *w, int n, uint64_t count, double *lat)
{
	struct rd r[WK_MAX_THREADS] = { 0 };
	double t0, cpu0 = bm_cpu_busy_ms();
	int err = 0;

	t0 = bm_now();
	for (int i = 0; i < n; i++) {
		r[i].fd = w->dfd;
		r[i].first = w->np * (uint64_t)i / (uint64_t)n;
		r[i].len = w->np * (uint64_t)(i + 1) / (uint64_t)n - r[i].first;
		r[i].count = count < r[i].len ? count : r[i].len;
		r[i].seed = 0x5eed + (uint64_t)bm_rep_count() * 16 + (uint64_t)i;
		r[i].lat = i ? NULL : lat;
		if ((r[i].err = -pthread_create(&r[i].tid, NULL, rand_reader, &r[i])))
			break;
	}
	for (int i = 0; i < n; i++) {
		if (r[i].tid)
			pthread_join(r[i].tid, NULL);
		err = err ? err : r[i].err;
	}
	if (err) {
		bm_note("wake", "O_DIRECT random reads on %d threads: %s", n, strerror(-err));
		return NAN;
	}
	t0 = bm_now() - t0;
	if (n == 4)
		bm_put("wk_drand4_cpu_us",
		       (bm_cpu_busy_ms() - cpu0) * 1000 / (double)(r[0].count * (uint64_t)n));
	return (double)(r[0].count * (uint64_t)n) / t0;
}

/* The load: one thread reading the file over and over, cold, until stopped. */
struct load {
	pthread_t tid;
	int fd;
	uint64_t len;
	atomic_bool stop;
	uint64_t bytes;
	double t0, t1;
};

static void *load_main(void *arg)
{
	struct load *l = arg;
	char *buf = aligned_alloc(BM_PAGE, WK_CHUNK);

	l->t0 = bm_now();
	while (buf && !atomic_load(&l->stop)) {
		posix_fadvise(l->fd, 0, 0, POSIX_FADV_DONTNEED);
		for (uint64_t off = 0; off < l->len && !atomic_load(&l->stop); off += WK_CHUNK) {
			if (pread(l->fd, buf, WK_CHUNK, (off_t)off) <= 0)
				goto out;
			l->bytes += WK_CHUNK;
			/* Stay cold and small: drop what was read. */
			if (off && !(off % WK_DROP_STEP))
				posix_fadvise(l->fd, (off_t)(off - WK_DROP_STEP), WK_DROP_STEP,
					      POSIX_FADV_DONTNEED);
		}
	}
out:
	l->t1 = bm_now();
	free(buf);
	return NULL;
}

/* ------------------------------------------------------------------ */

static int make_file(struct wk *w)
{
	char *buf = aligned_alloc(BM_PAGE, WK_CHUNK);
	uint64_t seed = 0x3a3a + (uint64_t)bm_rep_count();
	int r = 0;

	w->fd = bm_open_tmp(bm.swap_dir);
	if (w->fd < 0 || !buf) {
		r = w->fd < 0 ? w->fd : -ENOMEM;
		goto out;
	}
	for (uint64_t off = 0; off < bm.size && !r; off += WK_CHUNK) {
		size_t n = bm.size - off < WK_CHUNK ? (size_t)(bm.size - off) : WK_CHUNK;

		for (size_t p = 0; p < n; p += BM_PAGE)
			bm_fill_page(buf + p, seed, (off + p) / BM_PAGE);
		if (pwrite(w->fd, buf, n, (off_t)off) != (ssize_t)n)
			r = errno ? -errno : -EIO;
	}
	if (!r && fdatasync(w->fd) < 0)
		r = -errno;
	/* The same file without the page cache, as the helper reads its swap file. */
	if (!r && (w->dfd = reopen(w->fd, O_RDONLY | O_DIRECT)) < 0)
		r = w->dfd;
out:
	free(buf);
	return r;
}

static void seq_runs(struct wk *w)
{
	static const char *const cold[] = { "wk_cold1_MiBps", "wk_cold2_MiBps", "wk_cold4_MiBps" };
	static const char *const wake[] = { "wk_seq1_MiBps", "wk_seq2_MiBps", "wk_seq4_MiBps" };
	char args[32];
	struct pt pt;

	for (int i = 0; i < 3; i++) {
		int n = 1 << i;

		if (put_out(w))
			return;
		bm_put(cold[i], cold_seq(w, n, bm.size));
		drop_caches(w);
		snprintf(args, sizeof(args), "%d seq", n);
		if (ptouch(w, args, &pt))
			return;
		bm_put(wake[i], pt.pages * BM_PAGE / BM_MIB / (pt.ms / 1000));
	}
}

static int rand_runs(struct wk *w)
{
	uint64_t samples = (uint64_t)bm.samples < w->np ? (uint64_t)bm.samples : w->np;
	double *lat = calloc(samples, sizeof(double));
	struct load l = { .fd = -1 };
	struct pt pt;
	int r = -1;

	/* 4 threads at random pages, each an eighth of its share (ptouch's default). */
	if (!lat || put_out(w))
		goto out;
	bm_put("wk_drand4_rps", cold_rand(w, 4, w->np / 4 / 8, NULL));
	if (ptouch(w, "4 rand", &pt))
		goto out;
	bm_put("wk_rand4_tps", pt.pages / (pt.ms / 1000));
	bm_put("wk_rand4_cpu_us", pt.cpu_ms * 1000 / pt.pages);
	bm_put("wk_rand4_p50_us", pt.p50);
	bm_put("wk_rand4_p99_us", pt.p99);

	/* One thread: latency, with the O_DIRECT read it includes. */
	if (put_out(w))
		goto out;
	if (!isnan(cold_rand(w, 1, samples, lat))) {
		bm_put("wk_dread_p50_us", bm_pct(lat, samples, 50));
		bm_put("wk_dread_p99_us", bm_pct(lat, samples, 99));
	}
	if (ptouch(w, "1 rand", &pt))
		goto out;
	bm_put("wk_rand1_p50_us", pt.p50);
	bm_put("wk_rand1_p99_us", pt.p99);

	/* The same beside a reader of another big file in the swap dir. */
	if (put_out(w))
		goto out;
	l.fd = reopen(w->fd, O_RDONLY); /* its own read-ahead */
	l.len = bm.size;
	if (l.fd < 0 || (r = pthread_create(&l.tid, NULL, load_main, &l))) {
		bm_note("wake", "no load reader: %s", strerror(l.fd < 0 ? -l.fd : r));
		r = -1;
		goto out;
	}
	r = ptouch(w, "1 rand", &pt);
	/* The machine's own tail under that load: the bare read, beside the same reader. */
	if (!r && !isnan(cold_rand(w, 1, samples, lat))) {
		bm_put("wk_load_dread_p50_us", bm_pct(lat, samples, 50));
		bm_put("wk_load_dread_p99_us", bm_pct(lat, samples, 99));
	}
	atomic_store(&l.stop, true);
	pthread_join(l.tid, NULL);
	if (r)
		goto out;
	bm_put("wk_load_p50_us", pt.p50);
	bm_put("wk_load_p99_us", pt.p99);
	bm_put("wk_load_reader_MiBps", (double)l.bytes / BM_MIB / (l.t1 - l.t0));
out:
	if (l.fd >= 0)
		close(l.fd);
	free(lat);
	return r;
}

/* 25% of the pages touched, put out again, touched again. */
static void working_set(struct wk *w)
{
	uint64_t count = w->np / 4;
	char args[64];
	double t0;
	struct pt pt;

	snprintf(args, sizeof(args), "1 rand %" PRIu64 " %d", count, WK_WS_SEED);
	if (put_out(w) || ptouch(w, args, &pt))
		return;
	bm_put("wk_ws_first_ms", pt.ms);
	if (put_out(w))
		return;
	t0 = bm_now();
	if (isnan(cold_seq(w, 1, count * BM_PAGE)))
		return;
	bm_put("wk_ws_cold_ms", (bm_now() - t0) * 1000);
	drop_caches(w);
	if (ptouch(w, args, &pt))
		return;
	bm_put("wk_ws_ms", pt.ms);
}

void bm_wake_run(void)
{
	char prog[600], size[32], seed[32], log[700];
	char *argv[] = { prog, "--size", size, "--threads", "2", "--seed", seed,
			 "--name", "vmswap-bench-wake", NULL };
	struct wk w = { .fd = -1, .dfd = -1, .dropped = true };
	int r;

	snprintf(prog, sizeof(prog), "%s/toyvmm", bm.build);
	snprintf(size, sizeof(size), "%" PRIu64 "M", bm.size >> 20);
	snprintf(seed, sizeof(seed), "%d", 100 + bm_rep_count());
	snprintf(log, sizeof(log), "%s/wake-toyvmm.log", bm.work);
	w.np = bm.size / BM_PAGE;
	bm_log("wake: file of %s in %s", size, bm.swap_dir);
	r = make_file(&w);
	if (r) {
		bm_note("wake", "file in %s: %s", bm.swap_dir, strerror(-r));
		goto out;
	}
	/*
	 * The fault rows measure faults: without the working-set prefetch,
	 * which would otherwise stream in what the sweeps before touched.
	 */
	bm_log("wake: toyvmm --size %s under the shim, VMSWAP_PREFETCH=off", size);
	setenv("VMSWAP_PREFETCH", "off", 1);
	r = bm_vmm_start(&w.v, argv, log);
	unsetenv("VMSWAP_PREFETCH");
	if (r) {
		bm_note("wake", "toyvmm under the shim did not start managed: %s (log: %s)",
			strerror(-r), log);
		goto out;
	}
	if (!vm(&w, "fill", NULL, 0)) {
		bm_log("wake: ptouch 1, 2, 4 seq");
		seq_runs(&w);
		bm_log("wake: ptouch 4 rand, 1 rand, 1 rand under load");
		rand_runs(&w);
		if (!ctl(&w, "disable", true))
			vm(&w, "verify", NULL, 0);
	}
	bm_vmm_stop(&w.v);
	/* A fresh VM with the prefetch on (the default): its first wake is the set. */
	bm_log("wake: working set of 25%% (a new toyvmm, prefetch on)");
	r = bm_vmm_start(&w.v, argv, log);
	if (r) {
		bm_note("wake", "toyvmm under the shim did not start managed: %s (log: %s)",
			strerror(-r), log);
		goto out;
	}
	if (!vm(&w, "fill", NULL, 0)) {
		working_set(&w);
		if (!ctl(&w, "disable", true))
			vm(&w, "verify", NULL, 0);
	}
	bm_vmm_stop(&w.v);
out:
	if (w.dfd >= 0)
		close(w.dfd);
	if (w.fd >= 0)
		close(w.fd);
}
