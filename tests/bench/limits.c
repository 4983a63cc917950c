/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Physical limits: memcpy bandwidth on 1 and 2 threads, sequential
 * pwrite+fdatasync and cold sequential pread on a file in the swap dir,
 * and the latency of a cold random 4 KiB pread. The file is O_TMPFILE
 * (no name, nothing to leave behind), like vmswap's own swap file; its
 * page cache is dropped with POSIX_FADV_DONTNEED after fdatasync.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define IO_CHUNK (1u << 20) /* what the helper uses for out and disable */
#define MEMCPY_MAX (512ull << 20)
#define MEMCPY_ITERS 3

struct cp_job {
	char *dst;
	const char *src;
	size_t len;
};

static void *cp_thread(void *arg)
{
	struct cp_job *j = arg;

	memcpy(j->dst, j->src, j->len);
	return NULL;
}

/* MiB/s copying @len bytes split over @nt threads, once. */
static double memcpy_bw_once(int nt, char *dst, const char *src, size_t len)
{
	pthread_t t[2];
	struct cp_job j[2];
	size_t part = len / (size_t)nt;
	double t0 = bm_now();

	for (int i = 0; i < nt; i++) {
		j[i] = (struct cp_job){ dst + (size_t)i * part, src + (size_t)i * part, part };
		if (i)
			pthread_create(&t[i], NULL, cp_thread, &j[i]);
	}
	cp_thread(&j[0]);
	for (int i = 1; i < nt; i++)
		pthread_join(t[i], NULL);
	return len / BM_MIB / (bm_now() - t0);
}

/* Best of MEMCPY_ITERS, into memory already faulted in. */
static double memcpy_bw(int nt, char *dst, const char *src, size_t len)
{
	double best = 0;

	for (int it = 0; it < MEMCPY_ITERS; it++) {
		double bw = memcpy_bw_once(nt, dst, src, len);

		if (bw > best)
			best = bw;
	}
	return best;
}

/*
 * Information: the same copy into pages that do not exist yet (a fresh
 * memfd, as enable's staging is), so each page is allocated and zeroed on
 * first touch. Where the machine is itself a VM that hands free memory back
 * to its host, that first touch is much dearer than the copy.
 */
static double memcpy_fresh(const char *src, size_t len)
{
	int fd = memfd_create("vmswap-bench-fresh", MFD_CLOEXEC);
	char *dst = MAP_FAILED;
	double bw = NAN;

	if (fd >= 0 && !ftruncate(fd, (off_t)len))
		dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (dst != MAP_FAILED) {
		madvise(dst, len, MADV_NOHUGEPAGE);
		bw = memcpy_bw_once(2, dst, src, len); /* once: a second finds the pages */
		munmap(dst, len);
	}
	if (fd >= 0)
		close(fd);
	return bw;
}

static void limits_memcpy(void)
{
	size_t len = bm.size < MEMCPY_MAX ? bm.size : MEMCPY_MAX;
	char *src = bm_map(len), *dst = bm_map(len);
	double bw1, bw2;

	if (!src || !dst) {
		bm_note("limits", "memcpy: cannot map 2 x %zu MiB", len >> 20);
		goto out;
	}
	memset(src, 0x5a, len); /* fault everything in: copies only, below */
	memset(dst, 0xa5, len);
	bw1 = memcpy_bw(1, dst, src, len);
	bw2 = memcpy_bw(2, dst, src, len);
	bm_put("memcpy_1t_MiBps", bw1);
	bm_put("memcpy_2t_MiBps", bw2);
	bm_put("memcpy_1g_2t_ms", 1024.0 / bw2 * 1000);
	bm_put("memcpy_fresh_2t_MiBps", memcpy_fresh(src, len));
out:
	bm_unmap(src, len);
	bm_unmap(dst, len);
}

/* Pages of the first @len bytes of @fd in the page cache. */
static long cached_pages(int fd, uint64_t len)
{
	size_t np = (size_t)(len / BM_PAGE);
	unsigned char *vec = malloc(np);
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	long n = -1;

	if (vec && p != MAP_FAILED && !mincore(p, len, vec)) {
		n = 0;
		for (size_t i = 0; i < np; i++)
			n += vec[i] & 1;
	}
	if (p != MAP_FAILED)
		munmap(p, len);
	free(vec);
	return n;
}

/* Sequential I/O of @len bytes in @chunk-sized calls, from @nbuf chunks at @buf in turn. */
static int io_loop(int fd, char *buf, uint64_t len, size_t chunk, int nbuf, bool write)
{
	for (uint64_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? (size_t)(len - off) : chunk;
		char *b = buf + (off / chunk % (uint64_t)nbuf) * chunk;
		ssize_t k;

		if (write) {
			/* Different bytes in every page written. */
			for (size_t p = 0; p < n; p += BM_PAGE)
				*(uint64_t *)(b + p) = off + p + 1;
			k = pwrite(fd, b, n, (off_t)off);
		} else {
			k = pread(fd, b, n, (off_t)off);
		}
		if (k != (ssize_t)n)
			return k < 0 ? -errno : -EIO;
	}
	return 0;
}

/*
 * Information: the same cold read, dropping what is read from the cache
 * every 16 MiB, as disable does; the cache then reuses its own pages.
 */
static int read_drop_behind(int fd, char *buf, uint64_t len)
{
	const uint64_t step = 16u << 20;

	for (uint64_t off = 0; off < len; off += IO_CHUNK) {
		size_t n = len - off < IO_CHUNK ? (size_t)(len - off) : IO_CHUNK;

		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n)
			return -EIO;
		if (off && !(off % step))
			posix_fadvise(fd, (off_t)(off - step), (off_t)step, POSIX_FADV_DONTNEED);
	}
	return 0;
}

static void limits_disk(void)
{
	uint64_t len = bm.size, np = len / BM_PAGE, seed = 0x1234 + (uint64_t)bm_rep_count();
	int fd = bm_open_tmp(bm.swap_dir), n = bm.samples, got = 0, r;
	char *buf = aligned_alloc(BM_PAGE, IO_CHUNK);
	double *lat = calloc((size_t)n, sizeof(double)), t0;
	unsigned char *seen = calloc((size_t)np, 1);
	long cached;

	if (fd < 0 || !buf || !lat || !seen) {
		bm_note("limits", "file I/O in %s: %s", bm.swap_dir,
			fd < 0 ? strerror(-fd) : "out of memory");
		goto out;
	}
	for (size_t p = 0; p < IO_CHUNK; p += BM_PAGE)
		bm_fill_page(buf + p, seed, p / BM_PAGE);

	t0 = bm_now();
	r = io_loop(fd, buf, len, IO_CHUNK, 1, true);
	if (!r && fdatasync(fd) < 0)
		r = -errno;
	if (r) {
		bm_note("limits", "pwrite in %s: %s", bm.swap_dir, strerror(-r));
		goto out;
	}
	bm_put("pwrite_MiBps", len / BM_MIB / (bm_now() - t0));

	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	cached = cached_pages(fd, len);
	if (cached > (long)(np / 100))
		bm_note("limits", "%ld pages still cached after POSIX_FADV_DONTNEED", cached);
	t0 = bm_now();
	r = io_loop(fd, buf, len, IO_CHUNK, 1, false);
	if (r) {
		bm_note("limits", "pread in %s: %s", bm.swap_dir, strerror(-r));
		goto out;
	}
	bm_put("pread_MiBps", len / BM_MIB / (bm_now() - t0));

	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	t0 = bm_now();
	if (!read_drop_behind(fd, buf, len))
		bm_put("pread_db_MiBps", len / BM_MIB / (bm_now() - t0));

	/* Random 4 KiB reads of pages not read since the cache was dropped. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	for (int i = 0; i < n * 4 && got < n; i++) {
		uint64_t pg = bm_rand(&seed) % np;
		double t;

		if (seen[pg])
			continue;
		seen[pg] = 1;
		t = bm_now();
		if (pread(fd, buf, BM_PAGE, (off_t)(pg * BM_PAGE)) != BM_PAGE)
			break;
		lat[got++] = (bm_now() - t) * 1e6;
	}
	bm_put("rread_p50_us", bm_pct(lat, (size_t)got, 50));
	bm_put("rread_p99_us", bm_pct(lat, (size_t)got, 99));

	/* The same with 16 KiB: what the helper reads for an isolated file fault. */
	got = 0;
	for (int i = 0; i < n * 4 && got < n; i++) {
		uint64_t pg = bm_rand(&seed) % (np - 3);
		double t;

		if (seen[pg] || seen[pg + 1] || seen[pg + 2] || seen[pg + 3])
			continue;
		memset(seen + pg, 1, 4);
		t = bm_now();
		if (pread(fd, buf, 4 * BM_PAGE, (off_t)(pg * BM_PAGE)) != 4 * BM_PAGE)
			break;
		lat[got++] = (bm_now() - t) * 1e6;
	}
	bm_put("rread16_p50_us", bm_pct(lat, (size_t)got, 50));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(lat);
	free(seen);
}

/*
 * @len bytes of sequential O_DIRECT writes of @chunk bytes, from @nbuf
 * chunks at @buf in turn, to a fresh O_TMPFILE.
 */
static double dwrite(const char *section, uint64_t len, char *buf, size_t chunk, int nbuf)
{
	int fd = open(bm.swap_dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_DIRECT, 0600), r;
	double t0, v = NAN;

	if (fd < 0) {
		bm_note(section, "O_DIRECT file in %s: %s", bm.swap_dir, strerror(errno));
		return NAN;
	}
	for (size_t p = 0; p < chunk * (size_t)nbuf; p += BM_PAGE)
		bm_fill_page(buf + p, 3, p / BM_PAGE);
	t0 = bm_now();
	r = io_loop(fd, buf, len, chunk, nbuf, true);
	if (r) {
		bm_note(section, "O_DIRECT pwrite in %s: %s", bm.swap_dir, strerror(-r));
		goto out;
	}
	v = len / BM_MIB / (bm_now() - t0);
out:
	close(fd);
	return v;
}

/*
 * Sequential 1 MiB O_DIRECT writes of @len bytes to a fresh O_TMPFILE in
 * the swap dir (no page cache to fill, flush or drop): MiB/s, or NAN
 * with a note in @section.
 */
double bm_dwrite_MiBps(const char *section, uint64_t len)
{
	char *buf = aligned_alloc(BM_PAGE, IO_CHUNK);
	double v = NAN;

	if (buf)
		v = dwrite(section, len, buf, IO_CHUNK, 1);
	else
		bm_note(section, "O_DIRECT pwrite: out of memory");
	free(buf);
	return v;
}

/*
 * The same in 2 MiB writes from @nbuf buffers in turn, each on one huge
 * page where the host gives one: one segment per write, not 512. out
 * writes so from its readers' buffers (OUT_WRITERS in helper/ops/op_out.c).
 */
double bm_dwrite_unit_MiBps(const char *section, uint64_t len, int nbuf)
{
	const size_t unit = 2u << 20, mlen = unit * (size_t)(nbuf + 1);
	char *map = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *buf;
	double v;

	if (map == MAP_FAILED) {
		bm_note(section, "O_DIRECT pwrite: %s", strerror(errno));
		return NAN;
	}
	buf = (char *)(((uintptr_t)map + unit - 1) & ~(uintptr_t)(unit - 1));
	(void)madvise(buf, unit * (size_t)nbuf, MADV_HUGEPAGE);
	v = dwrite(section, len, buf, unit, nbuf);
	munmap(map, mlen);
	return v;
}

/* Information: the same over at most 512 MiB, beside the other limits. */
static void limits_direct(void)
{
	double v = bm_dwrite_MiBps("limits", bm.size < MEMCPY_MAX ? bm.size : MEMCPY_MAX);

	if (!isnan(v))
		bm_put("dwrite_MiBps", v);
}

/*
 * What finding zero pages costs at least when the pages are not mapped
 * (trim in place reads them so): pread of a filled memfd of the guest's
 * size in 2 MiB chunks, each page's first word looked at, in ms per GiB.
 */
static void limits_memfd_read(void)
{
	size_t chunk = 2u << 20, len = bm.size / chunk * chunk;
	int fd = bm_filled_memfd("vmswap-bench-read", len, 3);
	char *buf = bm_map(chunk);
	volatile uint64_t acc = 0;
	double t0;

	if (fd < 0 || !buf) {
		bm_note("limits", "memfd read: %s", fd < 0 ? strerror(-fd) : "out of memory");
		goto out;
	}
	t0 = bm_now();
	for (size_t off = 0; off < len; off += chunk) {
		if (pread(fd, buf, chunk, (off_t)off) != (ssize_t)chunk) {
			bm_note("limits", "memfd read: short read");
			goto out;
		}
		for (size_t p = 0; p < chunk; p += BM_PAGE)
			acc += *(uint64_t *)(buf + p);
	}
	bm_put("memfd_read_ms_gib", (bm_now() - t0) * 1000 / ((double)len / BM_GIB));
out:
	if (buf)
		bm_unmap(buf, chunk);
	if (fd >= 0)
		close(fd);
	(void)acc;
}

void bm_limits_run(void)
{
	bm_log("limits: memcpy");
	limits_memcpy();
	limits_memfd_read();
	bm_log("limits: file I/O in %s (%llu MiB)", bm.swap_dir,
	       (unsigned long long)(bm.size >> 20));
	limits_disk();
	limits_direct();
}
