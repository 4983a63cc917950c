/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vCPU threads. They live as long as the VMM, like real vCPUs, so that
 * vmswap's freeze has several threads to stop. Each job covers a page
 * range; vCPU i handles only its own pages (p % n == i), so the model is
 * written by one thread per page and needs no locking. With --kvm each
 * thread also owns a KVM vCPU, and the TVM_OP_KVM_* jobs have the guest
 * do the page work (kvm_jobs.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvm.h"

#define KVM_CHURN_BATCH 16u /* pages per KVM_RUN in a churn: stops promptly */

struct tvm_vcpu {
	struct tvm_vcpus *vs;
	unsigned id;
	pthread_t tid;
	uint64_t rng;
	struct tvm_result res;
	struct tvm_kvm_vcpu kv; /* with --kvm */
};

void tvm_note_mismatch(struct tvm_result *res, uint64_t pno)
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
	struct tvm_kvm_batch b;

	if (op == TVM_OP_KVM_WRITE || op == TVM_OP_KVM_VERIFY) {
		tvm_kvm_batch_begin(&b, &v->kv, g, op == TVM_OP_KVM_WRITE ?
				    TVM_KVM_WRITE : TVM_KVM_SUM, TVM_KVM_BATCH);
		for (; p < end; p += n)
			tvm_kvm_batch_add(&b, p, &v->res);
		tvm_kvm_batch_flush(&b, &v->res);
		return;
	}
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
				tvm_note_mismatch(&v->res, p);
			break;
		default:
			return;
		}
		v->res.pages++;
	}
}

/*
 * Until told to stop: a random own page is verified, then rewritten. The
 * KVM guest does the same in small batches, one KVM_RUN each.
 */
static void run_churn(struct tvm_vcpu *v, bool kvm)
{
	struct tvm_guest *g = v->vs->guest;
	unsigned n = v->vs->n;
	uint64_t own = g->npages > v->id ? (g->npages - v->id + n - 1) / n : 0;
	struct tvm_kvm_batch b;

	if (kvm)
		tvm_kvm_batch_begin(&b, &v->kv, g, TVM_KVM_SUM | TVM_KVM_WRITE,
				    KVM_CHURN_BATCH);
	while (!atomic_load_explicit(&v->vs->stop, memory_order_relaxed)) {
		uint64_t p;

		if (!own) {
			nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
			continue;
		}
		p = v->id + n * (tvm_xorshift64(&v->rng) % own);
		if (kvm) {
			tvm_kvm_batch_add(&b, p, &v->res); /* runs when full */
			continue;
		}
		if (tvm_page_verify(g, p))
			tvm_note_mismatch(&v->res, p);
		tvm_page_write(g, p);
		v->res.pages++;
	}
	if (kvm)
		tvm_kvm_batch_flush(&b, &v->res);
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
		if (op == TVM_OP_CHURN || op == TVM_OP_KVM_CHURN)
			run_churn(v, op == TVM_OP_KVM_CHURN);
		else
			run_range(v, op, start, count);

		pthread_mutex_lock(&vs->lock);
		if (--vs->running == 0)
			pthread_cond_signal(&vs->done);
		pthread_mutex_unlock(&vs->lock);
	}
}

/* With kvm, thread i gets KVM vCPU i, created here so that a failure is
 * reported before any thread runs. */
int tvm_vcpus_start(struct tvm_vcpus *vs, struct tvm_guest *g, unsigned n,
		    struct tvm_kvm *kvm)
{
	memset(vs, 0, sizeof(*vs));
	vs->guest = g;
	vs->kvm = kvm;
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
		v->kv.fd = -1;
		if (kvm && (r = tvm_kvm_vcpu_create(kvm, i, &v->kv)))
			return r;
		/* xorshift needs a non-zero state; seed + thread keeps runs repeatable */
		v->rng = tvm_splitmix64(g->seed + i) | 1;
		r = pthread_create(&v->tid, NULL, vcpu_main, v);
		if (r) {
			tvm_kvm_vcpu_destroy(&v->kv);
			return -r;
		}
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
		if (!res->err)
			res->err = r->err;
		res->mismatches += r->mismatches;
		res->pages += r->pages;
	}
}

/* Run a range job on all vCPUs and wait for it. -EBUSY while churning,
 * -ENODEV for a KVM job without KVM. */
int tvm_vcpus_run(struct tvm_vcpus *vs, enum tvm_op op, uint64_t start,
		  uint64_t count, struct tvm_result *res)
{
	if ((op == TVM_OP_KVM_WRITE || op == TVM_OP_KVM_VERIFY) && !vs->kvm)
		return -ENODEV;
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

/* op: TVM_OP_CHURN or TVM_OP_KVM_CHURN. */
int tvm_vcpus_churn_start(struct tvm_vcpus *vs, enum tvm_op op)
{
	if (op == TVM_OP_KVM_CHURN && !vs->kvm)
		return -ENODEV;
	pthread_mutex_lock(&vs->lock);
	if (vs->churning) {
		pthread_mutex_unlock(&vs->lock);
		return -EBUSY;
	}
	atomic_store(&vs->stop, false);
	vs->churning = true;
	post_job(vs, op, 0, 0);
	pthread_mutex_unlock(&vs->lock);
	return 0;
}

/* Stop a churn of kind op and wait for every vCPU to finish it. -ESRCH
 * if none of that kind runs. */
int tvm_vcpus_churn_stop(struct tvm_vcpus *vs, enum tvm_op op,
			 struct tvm_result *res)
{
	pthread_mutex_lock(&vs->lock);
	if (!vs->churning || vs->op != op) {
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
	tvm_vcpus_churn_stop(vs, vs->op, &res);
	pthread_mutex_lock(&vs->lock);
	post_job(vs, TVM_OP_EXIT, 0, 0);
	pthread_mutex_unlock(&vs->lock);
	for (unsigned i = 0; i < vs->n; i++)
		pthread_join(vs->v[i].tid, NULL);
	for (unsigned i = 0; i < vs->n; i++)
		tvm_kvm_vcpu_destroy(&vs->v[i].kv);
	free(vs->v);
	vs->v = NULL;
}
