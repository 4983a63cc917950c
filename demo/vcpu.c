/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vCPU threads. They live as long as the VMM, like real vCPUs, so that
 * vmswap's freeze has several threads to stop. Each job covers a page
 * range; vCPU i handles only its own pages (p % n == i), so the model is
 * written by one thread per page and needs no locking.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "toyvmm.h"

struct tvm_vcpu {
	struct tvm_vcpus *vs;
	unsigned id;
	pthread_t tid;
	uint64_t rng;
	struct tvm_result res;
};

static void note_mismatch(struct tvm_result *res, uint64_t pno)
{
	if (!res->mismatches || pno < res->first_bad)
		res->first_bad = pno;
	res->mismatches++;
}

static void run_range(struct tvm_vcpu *v, enum tvm_op op, uint64_t start,
		      uint64_t count)
{
	struct tvm_guest *g = v->vs->guest;
	unsigned n = v->vs->n;
	uint64_t end = start + count;
	uint64_t p = start + (v->id + n - start % n) % n;

	for (; p < end; p += n) {
		switch (op) {
		case TVM_OP_WRITE:
			tvm_page_write(g, p);
			break;
		case TVM_OP_ZERO_HALF:
			if (p % 2)
				tvm_page_write(g, p);
			else
				tvm_page_zero(g, p);
			break;
		case TVM_OP_VERIFY:
			if (tvm_page_verify(g, p))
				note_mismatch(&v->res, p);
			break;
		default:
			return;
		}
		v->res.pages++;
	}
}

/* Until told to stop: a random own page is verified, then rewritten. */
static void run_churn(struct tvm_vcpu *v)
{
	struct tvm_guest *g = v->vs->guest;
	unsigned n = v->vs->n;
	uint64_t own = g->npages > v->id ? (g->npages - v->id + n - 1) / n : 0;

	while (!atomic_load_explicit(&v->vs->stop, memory_order_relaxed)) {
		uint64_t p;

		if (!own) {
			nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
			continue;
		}
		p = v->id + n * (tvm_xorshift64(&v->rng) % own);
		if (tvm_page_verify(g, p))
			note_mismatch(&v->res, p);
		tvm_page_write(g, p);
		v->res.pages++;
	}
}

static void *vcpu_main(void *arg)
{
	struct tvm_vcpu *v = arg;
	struct tvm_vcpus *vs = v->vs;
	uint64_t seen = 0, start, count;
	enum tvm_op op;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		pthread_mutex_lock(&vs->lock);
		while (vs->job_seq == seen)
			pthread_cond_wait(&vs->kick, &vs->lock);
		seen = vs->job_seq;
		op = vs->op;
		start = vs->start;
		count = vs->count;
		pthread_mutex_unlock(&vs->lock);

		if (op == TVM_OP_EXIT)
			return NULL;
		memset(&v->res, 0, sizeof(v->res));
		if (op == TVM_OP_CHURN)
			run_churn(v);
		else
			run_range(v, op, start, count);

		pthread_mutex_lock(&vs->lock);
		if (--vs->running == 0)
			pthread_cond_signal(&vs->done);
		pthread_mutex_unlock(&vs->lock);
	}
}

int tvm_vcpus_start(struct tvm_vcpus *vs, struct tvm_guest *g, unsigned n)
{
	memset(vs, 0, sizeof(*vs));
	vs->guest = g;
	vs->v = calloc(n, sizeof(*vs->v));
	if (!vs->v)
		return -ENOMEM;
	pthread_mutex_init(&vs->lock, NULL);
	pthread_cond_init(&vs->kick, NULL);
	pthread_cond_init(&vs->done, NULL);
	for (unsigned i = 0; i < n; i++) {
		struct tvm_vcpu *v = &vs->v[i];
		int r;

		v->vs = vs;
		v->id = i;
		/* xorshift needs a non-zero state; seed + thread keeps runs repeatable */
		v->rng = tvm_splitmix64(g->seed + i) | 1;
		r = pthread_create(&v->tid, NULL, vcpu_main, v);
		if (r)
			return -r;
		vs->n = i + 1;
	}
	return 0;
}

/* Caller holds vs->lock. */
static void post_job(struct tvm_vcpus *vs, enum tvm_op op, uint64_t start,
		     uint64_t count)
{
	vs->op = op;
	vs->start = start;
	vs->count = count;
	vs->running = vs->n;
	vs->job_seq++;
	pthread_cond_broadcast(&vs->kick);
}

static void collect(struct tvm_vcpus *vs, struct tvm_result *res)
{
	memset(res, 0, sizeof(*res));
	for (unsigned i = 0; i < vs->n; i++) {
		const struct tvm_result *r = &vs->v[i].res;

		if (r->mismatches && (!res->mismatches || r->first_bad < res->first_bad))
			res->first_bad = r->first_bad;
		res->mismatches += r->mismatches;
		res->pages += r->pages;
	}
}

/* Run a range job on all vCPUs and wait for it. -EBUSY while churning. */
int tvm_vcpus_run(struct tvm_vcpus *vs, enum tvm_op op, uint64_t start,
		  uint64_t count, struct tvm_result *res)
{
	pthread_mutex_lock(&vs->lock);
	if (vs->churning) {
		pthread_mutex_unlock(&vs->lock);
		return -EBUSY;
	}
	post_job(vs, op, start, count);
	while (vs->running)
		pthread_cond_wait(&vs->done, &vs->lock);
	pthread_mutex_unlock(&vs->lock);
	collect(vs, res);
	return 0;
}

int tvm_vcpus_churn_start(struct tvm_vcpus *vs)
{
	pthread_mutex_lock(&vs->lock);
	if (vs->churning) {
		pthread_mutex_unlock(&vs->lock);
		return -EBUSY;
	}
	atomic_store(&vs->stop, false);
	vs->churning = true;
	post_job(vs, TVM_OP_CHURN, 0, 0);
	pthread_mutex_unlock(&vs->lock);
	return 0;
}

/* Stop a churn and wait for every vCPU to finish it. -ESRCH if none runs. */
int tvm_vcpus_churn_stop(struct tvm_vcpus *vs, struct tvm_result *res)
{
	pthread_mutex_lock(&vs->lock);
	if (!vs->churning) {
		pthread_mutex_unlock(&vs->lock);
		return -ESRCH;
	}
	atomic_store(&vs->stop, true);
	while (vs->running)
		pthread_cond_wait(&vs->done, &vs->lock);
	vs->churning = false;
	pthread_mutex_unlock(&vs->lock);
	collect(vs, res);
	return 0;
}

void tvm_vcpus_stop(struct tvm_vcpus *vs)
{
	struct tvm_result res;

	if (!vs->v)
		return;
	tvm_vcpus_churn_stop(vs, &res);
	pthread_mutex_lock(&vs->lock);
	post_job(vs, TVM_OP_EXIT, 0, 0);
	pthread_mutex_unlock(&vs->lock);
	for (unsigned i = 0; i < vs->n; i++)
		pthread_join(vs->v[i].tid, NULL);
	free(vs->v);
	vs->v = NULL;
}
