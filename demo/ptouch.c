/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ptouch: N threads read the guest at once, each its own contiguous share
 * (thread i: pages [i*np/N, (i+1)*np/N)), checking every page it reads
 * against the model. It shows how fast a guest wakes when several vCPUs
 * fault at the same time: sequentially, backwards, or at random pages.
 * The threads are started apart from the vCPU threads and only read, so
 * the model is never written and needs no lock. Random mode times the
 * first access of each page; a page fault-around already brought in
 * counts with its (short) time, as the guest feels it.
 *
 * The timed pass reads one byte of each page, the access that faults it
 * in; then each thread checks every page of that pass against the model,
 * untimed, once every thread has finished its pass (so that the busy CPU
 * time reported covers the pass alone). The check costs about as much as the wake-up itself on a slow
 * host, and the baselines (preads into a buffer) do no such work.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "toyvmm.h"

/*
 * All threads start together, once each has made its list: state 1 go,
 * -1 give up. They check pages once all have touched theirs; the last
 * to finish its pass notes the machine's busy CPU time.
 */
struct pt_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned ready, touched;
	int state;
	double cpu_end_ms;
};

struct pt_thread {
	struct tvm_guest *g;
	pthread_t tid;
	struct pt_gate *gate;
	enum tvm_pt_mode mode;
	uint64_t first, len;  /* the share */
	uint64_t count;       /* rand: pages to touch */
	uint64_t seed;
	uint32_t *order;      /* rand: offsets in the share, shuffled */
	double *lat;          /* rand: us per touch */
	double done_us;       /* when the timed pass ended */
	struct tvm_result res;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void check(struct pt_thread *t, uint64_t pno)
{
	if (tvm_page_verify(t->g, pno))
		tvm_note_mismatch(&t->res, pno);
	t->res.pages++;
}

/* The first count entries of a Fisher-Yates shuffle: distinct pages. */
static void shuffle(struct pt_thread *t)
{
	uint64_t s = tvm_splitmix64(t->seed) | 1;

	for (uint64_t i = 0; i < t->len; i++)
		t->order[i] = (uint32_t)i;
	for (uint64_t i = 0; i < t->count; i++) {
		uint64_t j = i + tvm_xorshift64(&s) % (t->len - i);
		uint32_t x = t->order[i];

		t->order[i] = t->order[j];
		t->order[j] = x;
	}
}

static int gate_wait(struct pt_gate *gt)
{
	int st;

	pthread_mutex_lock(&gt->lock);
	gt->ready++;
	pthread_cond_broadcast(&gt->cond);
	while (!gt->state)
		pthread_cond_wait(&gt->cond, &gt->lock);
	st = gt->state;
	pthread_mutex_unlock(&gt->lock);
	return st;
}

static void gate_touched(struct pt_gate *gt)
{
	pthread_mutex_lock(&gt->lock);
	if (++gt->touched == gt->ready) {
		gt->cpu_end_ms = tvm_cpu_busy_ms();
		pthread_cond_broadcast(&gt->cond);
	}
	while (gt->touched < gt->ready)
		pthread_cond_wait(&gt->cond, &gt->lock);
	pthread_mutex_unlock(&gt->lock);
}

/* Main: wait until @n threads are ready, then open the gate with @state. */
static void gate_open(struct pt_gate *gt, unsigned n, int state)
{
	pthread_mutex_lock(&gt->lock);
	while (gt->ready < n)
		pthread_cond_wait(&gt->cond, &gt->lock);
	gt->state = state;
	pthread_cond_broadcast(&gt->cond);
	pthread_mutex_unlock(&gt->lock);
}

static void touch(struct pt_thread *t, uint64_t pno)
{
	(void)*(const volatile uint8_t *)tvm_guest_page(t->g, pno);
}

/* Page @i of the pass, in its order. */
static uint64_t pass_page(const struct pt_thread *t, uint64_t i)
{
	switch (t->mode) {
	case TVM_PT_REV:
		return t->first + t->len - 1 - i;
	case TVM_PT_RAND:
		return t->first + t->order[i];
	default:
		return t->first + i;
	}
}

static void *pt_main(void *arg)
{
	struct pt_thread *t = arg;
	uint64_t n = t->mode == TVM_PT_RAND ? t->count : t->len;

	if (t->mode == TVM_PT_RAND)
		shuffle(t);
	if (gate_wait(t->gate) < 0)
		return NULL;
	for (uint64_t i = 0; i < n; i++) {
		if (t->mode == TVM_PT_RAND) {
			double t0 = now_us();

			touch(t, pass_page(t, i));
			t->lat[i] = now_us() - t0;
		} else {
			touch(t, pass_page(t, i));
		}
	}
	t->done_us = now_us();
	gate_touched(t->gate);
	for (uint64_t i = 0; i < n; i++)
		check(t, pass_page(t, i));
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank of sorted v. */
static double pct(const double *v, uint64_t n, double p)
{
	uint64_t i = (uint64_t)(p / 100.0 * (double)n + 0.999999);

	return n ? v[i ? i - 1 : 0] : 0;
}

static int percentiles(struct pt_thread *t, unsigned n, struct tvm_pt_result *res)
{
	uint64_t total = 0, k = 0;
	double *all;

	for (unsigned i = 0; i < n; i++)
		total += t[i].count;
	all = malloc(total * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		memcpy(all + k, t[i].lat, t[i].count * sizeof(*all));
		k += t[i].count;
	}
	qsort(all, total, sizeof(*all), cmp_double);
	res->p50_us = pct(all, total, 50);
	res->p99_us = pct(all, total, 99);
	free(all);
	return 0;
}

static void free_threads(struct pt_thread *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(t[i].order);
		free(t[i].lat);
	}
	free(t);
}

int tvm_ptouch(struct tvm_guest *g, unsigned n, enum tvm_pt_mode mode, uint64_t count,
	       uint64_t seed, struct tvm_pt_result *res)
{
	struct pt_gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0 };
	struct pt_thread *t;
	unsigned started = 0;
	double t0, cpu0;
	int r = 0;

	memset(res, 0, sizeof(*res));
	if (!n || n > TVM_PT_MAX_THREADS || g->npages < n)
		return -EINVAL;
	/* Every share must hold COUNT distinct pages; the smallest is np / n. */
	if (mode == TVM_PT_RAND && count > g->npages / n)
		return -EINVAL;
	t = calloc(n, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		t[i] = (struct pt_thread){ .g = g, .gate = &gate, .mode = mode,
					   .first = g->npages * i / n, .seed = seed + i };
		t[i].len = g->npages * (i + 1) / n - t[i].first;
		if (mode != TVM_PT_RAND)
			continue;
		t[i].count = count ? count : (t[i].len / 8 ? t[i].len / 8 : 1);
		if (t[i].len > UINT32_MAX)
			r = -E2BIG;
		t[i].order = malloc(t[i].len * sizeof(*t[i].order));
		t[i].lat = malloc(t[i].count * sizeof(*t[i].lat));
		if (!r && (!t[i].order || !t[i].lat))
			r = -ENOMEM;
	}
	if (r) {
		free_threads(t, n);
		return r;
	}
	for (; started < n; started++)
		if ((r = -pthread_create(&t[started].tid, NULL, pt_main, &t[started])))
			break;
	cpu0 = tvm_cpu_busy_ms();
	gate_open(&gate, started, r ? -1 : 1);
	t0 = now_us();
	res->ms = 0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(t[i].tid, NULL);
		if ((t[i].done_us - t0) / 1e3 > res->ms)
			res->ms = (t[i].done_us - t0) / 1e3;
	}
	if (r) {
		free_threads(t, n);
		return r;
	}
	res->cpu_ms = gate.cpu_end_ms - cpu0;
	for (unsigned i = 0; i < n; i++) {
		res->pages += t[i].res.pages;
		if (t[i].res.mismatches && (!res->mismatches || t[i].res.first_bad < res->first_bad))
			res->first_bad = t[i].res.first_bad;
		res->mismatches += t[i].res.mismatches;
	}
	if (mode == TVM_PT_RAND)
		r = percentiles(t, n, res);
	free_threads(t, n);
	return r;
}
