/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmprobe --size SIZE [--seed S]: a minimal "VMM" for the fault-latency
 * probe. Its guest memory is one memfd mapped MAP_SHARED (what vmswap's
 * shim manages); run it under LD_PRELOAD=libvmswap.so. One command per
 * line on stdin, one "ok ..."/"err ..." line each:
 *
 *   info               ok pages=N pid=P
 *   fill               every page: non-zero pseudo-random bytes
 *   touch-rand N SEED  first read of N random pages that are not resident
 *                      (mincore), each timed alone with clock_gettime:
 *                      ok n= p50_ns= p99_ns= max_ns= bad= (bad: wrong data)
 *   touch-seq          read every page in order: ok MiBps= bad=
 *   quit
 *
 * Timing the VMM's own first access is more precise than the helper's
 * power-of-two histogram, and it includes everything the guest waits for:
 * the fault, the helper's wake-up, its read, the UFFDIO_COPY, the return.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmswap/util.h>

#include "bench.h"

struct bm_cfg bm; /* unused here; util.c is shared with the benchmark */

static char *base;
static uint64_t npages, seed = 1;

static void touch_rand(unsigned n, uint64_t s)
{
	double *lat = calloc(n ? n : 1, sizeof(double)), sum = 0;
	unsigned got = 0, bad = 0;

	if (!lat) {
		printf("err out of memory\n");
		return;
	}
	for (uint64_t tries = 0; got < n && tries < (uint64_t)n * 16; tries++) {
		uint64_t p = bm_rand(&s) % npages;
		volatile uint64_t *w = (volatile uint64_t *)(base + p * BM_PAGE);
		unsigned char in = 0;
		uint64_t v;
		double t0;

		if (mincore((void *)w, BM_PAGE, &in) || (in & 1))
			continue; /* resident already (fault-around brought it) */
		t0 = bm_now();
		v = *w;
		lat[got] = (bm_now() - t0) * 1e9;
		sum += lat[got++];
		bad += v != bm_page_word0(seed, p);
	}
	printf("ok n=%u p50_ns=%.0f p99_ns=%.0f max_ns=%.0f mean_ns=%.0f bad=%u\n", got,
	       bm_pct(lat, got, 50), bm_pct(lat, got, 99), got ? lat[got - 1] : 0.0,
	       got ? sum / got : 0.0, bad);
	free(lat);
}

static void touch_seq(void)
{
	uint64_t bad = 0, sum = 0;
	double t0 = bm_now();

	for (uint64_t p = 0; p < npages; p++) {
		const uint64_t *w = (const uint64_t *)(base + p * BM_PAGE);

		bad += w[0] != bm_page_word0(seed, p);
		for (unsigned i = 1; i < BM_PAGE / 8; i++)
			sum += w[i];
	}
	printf("ok MiBps=%.1f bad=%" PRIu64 "%s\n",
	       (double)npages * BM_PAGE / BM_MIB / (bm_now() - t0), bad, sum == 42 ? " " : "");
}

int main(int argc, char **argv)
{
	uint64_t size = 256ull << 20;
	char *line = NULL;
	size_t cap = 0;
	int fd;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--size") && !vmswap_parse_size(argv[i + 1], &size))
			continue;
		if (!strcmp(argv[i], "--seed")) {
			seed = strtoull(argv[i + 1], NULL, 0);
			continue;
		}
		fprintf(stderr, "usage: vmprobe --size SIZE [--seed S]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	npages = size / BM_PAGE;
	fd = memfd_create("vmprobe-guest", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		perror("vmprobe: memfd");
		return 1;
	}
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		perror("vmprobe: mmap");
		return 1;
	}
	while (getline(&line, &cap, stdin) > 0) {
		unsigned n;
		unsigned long long s;

		line[strcspn(line, "\r\n")] = 0;
		if (!strcmp(line, "info")) {
			printf("ok pages=%" PRIu64 " pid=%d\n", npages, (int)getpid());
		} else if (!strcmp(line, "fill")) {
			for (uint64_t p = 0; p < npages; p++)
				bm_fill_page(base + p * BM_PAGE, seed, p);
			printf("ok fill pages=%" PRIu64 "\n", npages);
		} else if (sscanf(line, "touch-rand %u %llu", &n, &s) == 2) {
			touch_rand(n, s);
		} else if (!strcmp(line, "touch-seq")) {
			touch_seq();
		} else if (!strcmp(line, "quit")) {
			printf("ok quit\n");
			break;
		} else {
			printf("err unknown command\n");
		}
	}
	free(line);
	return 0;
}
