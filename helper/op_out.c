/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * out: write staging to the swap file, on two writers. Slots are taken
 * under the lock, the write runs unlocked (faults keep being served from staging), and
 * pages still staged afterwards become FILE. A page that faulted in
 * meanwhile gives its new slot back: its staged bytes may have been read
 * after the fault punched them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
#include "log.h"
#include "ops.h"
#include "swapfile.h"

#define OUT_BATCH 512 /* pages: 2 MiB writes */

struct out_batch {
	struct vs_obj *o;
	uint64_t first, count;
	uint32_t slot[OUT_BATCH];
};

/* Collect the next run of staged pages at or after *pg and give them slots. */
static int out_collect(struct out_batch *b, struct vs_obj *o, uint64_t *pg)
{
	b->o = o;
	b->count = 0;
	while (*pg < o->npages && vs_pt_state(o->pt[*pg]) != VS_P_STAGING)
		(*pg)++;
	b->first = *pg;
	while (*pg < o->npages && b->count < OUT_BATCH &&
	       vs_pt_state(o->pt[*pg]) == VS_P_STAGING) {
		uint32_t e = o->pt[*pg];
		int r;

		/* Not trimmed as clean, so the old copy is stale. */
		if (vs_pt_has_slot(e)) {
			vs_slots_free(&vs.slots, vs_pt_slot(e));
			vs_page_set(o, *pg, vs_pt_make(VS_P_STAGING, false, 0));
		}
		r = vs_slots_alloc(&vs.slots, &b->slot[b->count]);
		if (r)
			return r;
		b->count++;
		(*pg)++;
	}
	return 0;
}

/* Write a batch, one pwrite per run of consecutive slots. Without vs.lock. */
static int out_write(const struct out_batch *b)
{
	uint64_t i = 0;
	int r = 0;

	pthread_rwlock_rdlock(&vs.stg_lock); /* hotplug growth must not move staging now */
	while (i < b->count && !r) {
		uint64_t j = i + 1;

		while (j < b->count && b->slot[j] == b->slot[i] + (j - i))
			j++;
		r = vs_swapfile_write(vs.swap_fd, b->slot[i],
				      b->o->stg + (b->first + i) * VS_PAGE_SIZE, j - i);
		i = j;
	}
	pthread_rwlock_unlock(&vs.stg_lock);
	return r;
}

/* After the write (or its failure): settle each page. vs.lock held. */
static uint64_t out_commit(const struct out_batch *b, bool written)
{
	uint64_t moved = 0;

	for (uint64_t i = 0; i < b->count; i++) {
		uint64_t pg = b->first + i;

		if (written && vs_pt_state(b->o->pt[pg]) == VS_P_STAGING) {
			vs_page_set(b->o, pg, vs_pt_make(VS_P_FILE, true, b->slot[i]));
			moved++;
		} else {
			vs_slots_free(&vs.slots, b->slot[i]);
		}
	}
	if (written && b->count)
		vs_stg_punch(b->o, b->first, b->count);
	return moved;
}

/* The writers' shared cursor and outcome; vs.lock guards it. */
struct out_run {
	int obj;
	uint64_t pg;
	uint64_t moved;
	int r;          /* first error */
	bool aborted;
};

/*
 * One writer: take the next batch under the lock, write it unlocked,
 * settle it. Two run at once, so one write is always in flight while
 * the other writer collects or settles.
 */
static void *out_writer(void *arg)
{
	struct out_run *run = arg;
	struct out_batch b;

	pthread_mutex_lock(&vs.lock);
	for (;;) {
		int r = 0;

		if (run->r || run->aborted || (run->aborted = vs_op_aborted()))
			break;
		while (run->obj < VS_MAX_OBJS && (!vs.objs[run->obj].used ||
						  run->pg >= vs.objs[run->obj].npages)) {
			run->obj++;
			run->pg = 0;
		}
		if (run->obj == VS_MAX_OBJS)
			break;
		r = out_collect(&b, &vs.objs[run->obj], &run->pg);
		pthread_mutex_unlock(&vs.lock);
		if (!r && b.count)
			r = out_write(&b);
		pthread_mutex_lock(&vs.lock);
		run->moved += out_commit(&b, r == 0);
		vs.progress_done += b.count;
		if (r && !run->r)
			run->r = r;
	}
	pthread_mutex_unlock(&vs.lock);
	return NULL;
}

int vs_op_out(char *msg, size_t n)
{
	struct out_run run = { 0 };
	uint64_t t0 = vs_now_ms(), moved;
	pthread_t t;
	bool two;
	int r;

	pthread_mutex_lock(&vs.lock); /* the fault thread changes the counters */
	vs.progress_total = vs.c.staging;
	vs.progress_done = 0;
	pthread_mutex_unlock(&vs.lock);
	two = pthread_create(&t, NULL, out_writer, &run) == 0;
	out_writer(&run);
	if (two)
		pthread_join(t, NULL);
	moved = run.moved;
	r = run.r;
	if (run.aborted) {
		snprintf(msg, n, "swap out aborted");
		return -ECANCELED;
	}
	if (r) {
		vs_set_error("writing the swap file: %s", strerror(-r));
		snprintf(msg, n, "swap out failed: %s; pages stay in staging", strerror(-r));
		return r;
	}
	/*
	 * Buffered: the host gets the memory back only once the page cache is
	 * clean and dropped. O_DIRECT wrote around it: nothing to wait for.
	 */
	if (!vs.swap_direct && fdatasync(vs.swap_fd) < 0) {
		r = -errno;
		vs_set_error("syncing the swap file: %s", strerror(-r));
		vs_last_error(msg, n);
		return r;
	}
	posix_fadvise(vs.swap_fd, 0, 0, POSIX_FADV_DONTNEED);
	pthread_mutex_lock(&vs.lock);
	vs.trans_pages = moved;
	vs.trans_ms = vs_now_ms() - t0;
	pthread_mutex_unlock(&vs.lock);
	snprintf(msg, n, "swapped out %llu pages (%llu MiB)", (unsigned long long)moved,
		 (unsigned long long)(moved * VS_PAGE_SIZE >> 20));
	return 0;
}
