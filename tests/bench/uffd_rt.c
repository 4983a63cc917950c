/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A bare userfaultfd round trip: one thread touches a missing page (a
 * read, timed with clock_gettime around the first access), a minimal
 * handler reads the fault and answers with UFFDIO_COPY of one page. For
 * anonymous memory and for shmem (memfd, MAP_SHARED, registered with
 * UFFD_FEATURE_MISSING_SHMEM), the handler a thread of the same process.
 * For information only (no target uses them), shmem twice more: with the
 * handler in another process, as vmswap's helper is, and with both
 * threads pinned to one CPU, and with the two pinned to two different
 * CPUs. On a VM whose idle vCPUs halt, a wake-up across CPUs costs tens
 * of microseconds, and the scheduler decides per wake-up whether the two
 * threads share a CPU: the pinned numbers show the round trip without
 * and with that cost. Anon and shmem run in 3 bursts of
 * 4095 faults and the burst with the lowest p50 counts: a limit is the
 * best this machine does, and a whole burst can land in the slow mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define RT_REGION (16u << 20) /* 4095 samples a burst */
#define RT_BURSTS 3

enum rt_kind { RT_ANON, RT_SHMEM, RT_SHMEM_XPROC, RT_SHMEM_1CPU, RT_SHMEM_2CPU };

struct rt {
	int uffd;
	char *base;
	size_t len;
	char *src;
};

static int uffd_open(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev < 0)
			return -errno;
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
		close(dev);
		if (fd < 0)
			return -errno;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

#define COPIED_MAX (256u << 20)
#define COPIED_CHUNK (1u << 20)

/*
 * Information, the bound of a guest thread's wake: pages put into a
 * registered memfd mapping with UFFDIO_COPY (1 MiB at a time, no fault),
 * then read once each, one byte a page, by one thread: in order, or
 * (@quarter) a random quarter of them, as the working-set row touches its
 * pages. Where the machine is itself a VM that maps a page for user space
 * only on its first touch, that touch, not the copy, is what costs. MiB/s
 * of pages touched, or -errno.
 */
static double copied_touch(bool quarter)
{
	size_t len = bm.size < COPIED_MAX ? bm.size : COPIED_MAX;
	int fd = memfd_create("vmswap-bench-copied", MFD_CLOEXEC), uffd = -1;
	char *m = MAP_FAILED, *src = aligned_alloc(4096, COPIED_CHUNK);
	double t0, r = -ENOMEM;

	if (fd < 0 || ftruncate(fd, (off_t)len) || !src)
		goto out;
	memset(src, 0x5a, COPIED_CHUNK);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uffd = uffd_open(UFFD_FEATURE_MISSING_SHMEM);
	if (m == MAP_FAILED || uffd < 0) {
		r = uffd < 0 ? uffd : -errno;
		goto out;
	}
	struct uffdio_register reg = { .range = { (uintptr_t)m, len },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		r = -errno;
		goto out;
	}
	for (size_t off = 0; off < len; off += COPIED_CHUNK) {
		struct uffdio_copy cp = { .dst = (uintptr_t)m + off, .src = (uintptr_t)src,
					  .len = COPIED_CHUNK };

		if (ioctl(uffd, UFFDIO_COPY, &cp) < 0) {
			r = -errno;
			goto out;
		}
	}
	size_t np = len / 4096, n = quarter ? np / 4 : np;
	uint32_t *order = malloc(np * sizeof(*order));
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	if (!order)
		goto out;
	for (size_t i = 0; i < np; i++)
		order[i] = (uint32_t)i;
	for (size_t i = 0; quarter && i < n; i++) {
		size_t j;
		uint32_t x;

		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		j = i + rng % (np - i);
		x = order[i], order[i] = order[j], order[j] = x;
	}
	t0 = bm_now();
	for (size_t i = 0; i < n; i++)
		(void)((volatile char *)m)[(size_t)order[i] * 4096];
	r = (double)n * 4096 / BM_MIB / (bm_now() - t0);
	free(order);
out:
	if (m != MAP_FAILED)
		munmap(m, len);
	if (uffd >= 0)
		close(uffd);
	if (fd >= 0)
		close(fd);
	free(src);
	return r;
}

#define RATE_REGION (256u << 20)
#define RATE_THREADS 4

/* Many faults at once: 4 threads touch random pages of their quarters. */
struct rate {
	int uffd;
	char *m;
	size_t np;
	atomic_bool stop;
	char src[4096];
};

static void *rate_handler(void *arg)
{
	struct rate *c = arg;
	struct uffd_msg msg[64];

	while (!atomic_load(&c->stop)) {
		struct pollfd p = { .fd = c->uffd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = read(c->uffd, msg, sizeof(msg));
		for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(msg[0]); i++) {
			struct uffdio_copy cp = { .dst = msg[i].arg.pagefault.address & ~4095ull,
						  .src = (uintptr_t)c->src, .len = 4096 };

			ioctl(c->uffd, UFFDIO_COPY, &cp); /* EEXIST: another fault of the page */
		}
	}
	return NULL;
}

struct rate_arg {
	struct rate *c;
	unsigned id;
};

static void *rate_toucher(void *arg)
{
	const struct rate_arg *a = arg;
	size_t share = a->c->np / RATE_THREADS, base = a->id * share;
	uint64_t s = a->id * 7919 + 1;

	for (size_t i = 0; i < share / 8; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		(void)((volatile char *)a->c->m)[(base + s % share) * 4096];
	}
	return NULL;
}

/*
 * Information, the bound of the 4-thread random wake: faults per second
 * when 4 threads touch random pages of a registered memfd at once and a
 * handler thread answers each from memory, with no disk at all. -errno
 * on failure.
 */
static double fault_rate(void)
{
	struct rate *c = calloc(1, sizeof(*c));
	struct rate_arg a[RATE_THREADS];
	pthread_t h, t[RATE_THREADS];
	int fd = memfd_create("vmswap-bench-rate", MFD_CLOEXEC), n = 0;
	double t0, cpu0, r = -ENOMEM;

	if (!c || fd < 0 || ftruncate(fd, RATE_REGION))
		goto out;
	c->np = RATE_REGION / 4096;
	c->m = mmap(NULL, RATE_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	c->uffd = uffd_open(UFFD_FEATURE_MISSING_SHMEM);
	if (c->m == MAP_FAILED || c->uffd < 0) {
		r = c->uffd < 0 ? c->uffd : -errno;
		goto out;
	}
	struct uffdio_register reg = { .range = { (uintptr_t)c->m, RATE_REGION },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };

	/* Non-blocking: poll may say ready for a fault woken before it is read. */
	if (fcntl(c->uffd, F_SETFL, O_NONBLOCK) < 0 || ioctl(c->uffd, UFFDIO_REGISTER, &reg) < 0 ||
	    pthread_create(&h, NULL, rate_handler, c)) {
		r = -errno;
		goto out;
	}
	t0 = bm_now();
	cpu0 = bm_cpu_busy_ms();
	for (; n < RATE_THREADS; n++) {
		a[n] = (struct rate_arg){ c, (unsigned)n };
		if (pthread_create(&t[n], NULL, rate_toucher, &a[n]))
			break;
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	r = n == RATE_THREADS ? (double)(c->np / 8) / (bm_now() - t0) : -EAGAIN;
	if (r > 0)
		bm_put("uffd_rate4_cpu_us", (bm_cpu_busy_ms() - cpu0) * 1000 / (double)(c->np / 8));
	atomic_store(&c->stop, true);
	pthread_join(h, NULL);
out:
	if (c && c->m && c->m != MAP_FAILED)
		munmap(c->m, RATE_REGION);
	if (c && c->uffd > 0)
		close(c->uffd);
	if (fd >= 0)
		close(fd);
	free(c);
	return r;
}

/* Serve faults until the last page of the region (the sentinel) faults. */
static int handler_loop(const struct rt *c)
{
	uint64_t sentinel = (uint64_t)(uintptr_t)c->base + c->len - BM_PAGE;

	for (;;) {
		struct uffd_msg m;
		struct uffdio_copy cp;
		ssize_t k = read(c->uffd, &m, sizeof(m));

		if (k < 0 && errno == EINTR)
			continue;
		if (k != sizeof(m))
			return -EIO;
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		cp = (struct uffdio_copy){ .dst = m.arg.pagefault.address & ~(uint64_t)(BM_PAGE - 1),
					   .src = (uint64_t)(uintptr_t)c->src, .len = BM_PAGE };
		if (ioctl(c->uffd, UFFDIO_COPY, &cp) < 0 && errno == EEXIST) {
			struct uffdio_range w = { cp.dst, BM_PAGE };

			ioctl(c->uffd, UFFDIO_WAKE, &w);
		}
		if (cp.dst == sentinel)
			return 0;
	}
}

static void *handler_thread(void *arg)
{
	handler_loop(arg);
	return NULL;
}

/* Touch every page but the sentinel in random order; latencies in us. */
static size_t touch_all(const struct rt *c, double *lat, uint64_t seed)
{
	size_t np = c->len / BM_PAGE - 1;
	uint32_t *order = malloc(np * sizeof(*order));

	if (!order)
		return 0;
	for (size_t i = 0; i < np; i++)
		order[i] = (uint32_t)i;
	for (size_t i = np - 1; i > 0; i--) {
		size_t j = bm_rand(&seed) % (i + 1);
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < np; i++) {
		volatile char *p = c->base + (size_t)order[i] * BM_PAGE;
		double t0 = bm_now();

		(void)*p;
		lat[i] = (bm_now() - t0) * 1e6;
	}
	(void)*(volatile char *)(c->base + c->len - BM_PAGE);
	free(order);
	return np;
}

static int rt_run(enum rt_kind kind, double *p50, double *p99)
{
	struct rt c = { .uffd = -1, .len = RT_REGION };
	struct uffdio_register reg;
	double *lat = calloc(c.len / BM_PAGE, sizeof(double));
	int memfd = -1, r = 0;
	pthread_t th;
	pid_t child = 0;
	cpu_set_t saved;
	bool pinned = false;
	size_t n;

	c.src = aligned_alloc(BM_PAGE, BM_PAGE);
	if (!lat || !c.src) {
		r = -ENOMEM;
		goto out;
	}
	bm_fill_page(c.src, 7, 7);
	if (kind == RT_ANON) {
		c.base = mmap(NULL, c.len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	} else {
		memfd = memfd_create("vmswap-bench-rt", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, (off_t)c.len) < 0) {
			r = -errno;
			goto out;
		}
		c.base = mmap(NULL, c.len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	}
	if (c.base == MAP_FAILED) {
		c.base = NULL;
		r = -errno;
		goto out;
	}
	madvise(c.base, c.len, MADV_NOHUGEPAGE);
	c.uffd = uffd_open(kind == RT_ANON ? 0 : UFFD_FEATURE_MISSING_SHMEM);
	if (c.uffd < 0) {
		r = c.uffd;
		goto out;
	}
	reg = (struct uffdio_register){ .range = { (uint64_t)(uintptr_t)c.base, c.len },
					.mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(c.uffd, UFFDIO_REGISTER, &reg) < 0) {
		r = -errno;
		goto out;
	}
	if (kind == RT_SHMEM_XPROC) {
		child = fork();
		if (child < 0) {
			r = -errno;
			goto out;
		}
		if (!child) {
			bm_child_setup();
			_exit(handler_loop(&c) ? 1 : 0);
		}
		bm_child_track(child, true);
	} else if ((r = -pthread_create(&th, NULL, handler_thread, &c))) {
		goto out;
	}
	if (kind == RT_SHMEM_1CPU) {
		cpu_set_t one;

		sched_getaffinity(0, sizeof(saved), &saved);
		CPU_ZERO(&one);
		CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
		pthread_setaffinity_np(th, sizeof(one), &one);
		sched_setaffinity(0, sizeof(one), &one);
		pinned = true;
	} else if (kind == RT_SHMEM_2CPU) {
		cpu_set_t a, b;
		int cpu[2], k = 0;

		/* The handler on the first CPU we may use, the faulting thread on the next. */
		sched_getaffinity(0, sizeof(saved), &saved);
		for (int i = 0; i < CPU_SETSIZE && k < 2; i++)
			if (CPU_ISSET(i, &saved))
				cpu[k++] = i;
		CPU_ZERO(&a);
		CPU_ZERO(&b);
		CPU_SET(cpu[0], &a);
		CPU_SET(cpu[k - 1], &b);
		pthread_setaffinity_np(th, sizeof(a), &a);
		sched_setaffinity(0, sizeof(b), &b);
		pinned = true;
	}
	n = touch_all(&c, lat, 99 + (uint64_t)kind);
	if (child) {
		waitpid(child, NULL, 0);
		bm_child_track(child, false);
	} else
		pthread_join(th, NULL);
	if (pinned)
		sched_setaffinity(0, sizeof(saved), &saved);
	*p50 = bm_pct(lat, n, 50);
	*p99 = bm_pct(lat, n, 99);
out:
	if (c.uffd >= 0)
		close(c.uffd);
	if (c.base)
		munmap(c.base, c.len);
	if (memfd >= 0)
		close(memfd);
	free(c.src);
	free(lat);
	return r;
}

void bm_uffd_run(void)
{
	static const struct {
		enum rt_kind kind;
		const char *name, *p50, *p99;
	} kinds[] = {
		{ RT_ANON, "anon", "uffd_anon_p50_us", "uffd_anon_p99_us" },
		{ RT_SHMEM, "shmem", "uffd_shmem_p50_us", "uffd_shmem_p99_us" },
		{ RT_SHMEM_XPROC, "shmem, handler in another process", "uffd_xproc_p50_us",
		  "uffd_xproc_p99_us" },
		{ RT_SHMEM_1CPU, "shmem, both threads on one CPU", "uffd_1cpu_p50_us",
		  "uffd_1cpu_p99_us" },
		{ RT_SHMEM_2CPU, "shmem, threads on two CPUs", "uffd_2cpu_p50_us",
		  "uffd_2cpu_p99_us" },
	};
	cpu_set_t cpus;

	bm_log("limits: bare userfaultfd round trips");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		double best50 = NAN, best99 = NAN;
		int r = 0;

		if (kinds[i].kind == RT_SHMEM_2CPU &&
		    (sched_getaffinity(0, sizeof(cpus), &cpus) || CPU_COUNT(&cpus) < 2)) {
			bm_note("limits", "userfaultfd round trip (%s): fewer than 2 CPUs",
				kinds[i].name);
			continue;
		}

		/* A limit is the best the machine does: the burst with the lowest p50. */
		for (int b = 0; b < (kinds[i].kind <= RT_SHMEM ? RT_BURSTS : 1); b++) {
			double p50 = NAN, p99 = NAN;

			r = rt_run(kinds[i].kind, &p50, &p99);
			if (r)
				break;
			if (isnan(best50) || p50 < best50) {
				best50 = p50;
				best99 = p99;
			}
		}
		if (r) {
			bm_note("limits", "userfaultfd round trip (%s): %s", kinds[i].name,
				strerror(-r));
			continue;
		}
		bm_put(kinds[i].p50, best50);
		bm_put(kinds[i].p99, best99);
	}
	double fr = fault_rate();

	if (fr < 0)
		bm_note("limits", "4-thread uffd fault rate: %s", strerror((int)-fr));
	else
		bm_put("uffd_rate4_per_s", fr);
	for (int q = 0; q < 2; q++) {
		double ct = copied_touch(q);

		if (ct < 0)
			bm_note("limits", "first touch of UFFDIO_COPY'd pages: %s",
				strerror((int)-ct));
		else
			bm_put(q ? "uffd_copied_rtouch_MiBps" : "uffd_copied_touch_MiBps", ct);
	}
}
