/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * out: write staging to the swap file. On an O_DIRECT file, OUT_WRITERS
 * reader threads prepare batches (collect and read them, take their
 * slots, and settle and punch them after the write) while this thread,
 * the disk thread (out_turns.c), writes one batch after another in the
 * order their slots were taken: the next write goes out as soon as one
 * ends, without waking another thread for it (that wake-up cost the disk
 * about a tenth of its time here). Slots are taken under the lock, the
 * write runs unlocked (faults keep being served from staging), and
 * pages still staged afterwards become FILE. A page that faulted in
 * meanwhile gives its new slot back: its staged bytes may have been read
 * after the fault punched them.
 *
 * A page leaves staging only once its bytes are in the file: O_DIRECT
 * writes report every error, a buffered file is synced batch by batch,
 * by one writer (two would share the file's write-back error, and one
 * could miss it). A failed batch stays staged, so nothing is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../fault/fault_ws.h"
#include "../model/dual.h"
#include "../model/helper.h"
#include "../sys/clock.h"
#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "enable.h"
#include "ops.h"
#include "out.h"

#define OUT_SCAN (8 * OUT_BATCH) /* pages looked at for one batch */
#define OUT_WRITERS 4 /* readers: one batch each waits for the disk while the others read and punch */

/* Staged pages of one object, not always adjacent, with the slots they get. */
struct out_batch {
	struct vs_obj *o;
	uint64_t count;
	uint64_t pg[OUT_BATCH];
	uint32_t slot[OUT_BATCH];
};

/*
 * Collect the next staged pages at or after *pg and give them slots.
 * Pages that are not staged (trimmed zero pages, holes) are stepped over,
 * so a guest with zero pages between its data still gets large writes.
 */
static bool wanted(struct vs_obj *o, uint64_t pg, bool hot)
{
	return vs_pt_state(o->pt[pg]) == VS_P_STAGING &&
	       (!hot || vs_ws_hot((int)(o - vs.objs), pg));
}

/* A page staged in place that this pass writes: it goes by its unit (out_inplace.c). */
static bool wanted_inplace(struct vs_obj *o, uint64_t pg, bool hot)
{
	return vs_pt_state(o->pt[pg]) == VS_P_INPLACE &&
	       (!hot || (vs_ws_hot((int)(o - vs.objs), pg) && !vs_fresh(o, pg)));
}

/* Stops at a page staged in place: the caller takes its unit. */
static int out_collect(struct out_batch *b, struct vs_obj *o, uint64_t *pg, bool hot)
{
	uint64_t stop = *pg + OUT_SCAN;

	b->o = o;
	b->count = 0;
	while (*pg < o->npages && !wanted(o, *pg, hot) && !wanted_inplace(o, *pg, hot))
		(*pg)++;
	while (*pg < o->npages && *pg < stop && b->count < OUT_BATCH) {
		uint32_t e = o->pt[*pg];
		int r;

		if (wanted_inplace(o, *pg, hot))
			break;
		if (!wanted(o, *pg, hot)) {
			(*pg)++;
			continue;
		}
		/* Not trimmed as clean, so the old copy is stale. */
		if (vs_pt_has_slot(e)) {
			vs_slots_free(&vs.swap.slots, vs_pt_slot(e));
			vs_page_set(o, *pg, vs_pt_make(VS_P_STAGING, false, 0));
		}
		/* The working set goes together, at the end of the file. */
		r = hot ? vs_slots_alloc_tail(&vs.swap.slots, &b->slot[b->count])
			: vs_slots_alloc(&vs.swap.slots, &b->slot[b->count]);
		if (r)
			return r;
		b->pg[b->count++] = (*pg)++;
	}
	return 0;
}

struct batch_write {
	const struct out_batch *b;
	struct vs_out_io io;
};

/* A turn's write: from the staging mapping, which a hotplug must not move meanwhile. */
static int batch_pages(void *arg)
{
	struct batch_write *w = arg;
	int r;

	pthread_rwlock_rdlock(&vs.stg_lock);
	r = vs_out_write_pages(w->b->o->stg, w->b->pg, w->b->slot, w->b->count, &w->io);
	pthread_rwlock_unlock(&vs.stg_lock);
	return r;
}

/* A staging batch, in its turn. */
static int out_write(const struct out_batch *b, uint64_t turn, const char **what)
{
	struct batch_write w = { b, { UINT32_MAX, 0 } };

	return vs_out_write_turn(turn, batch_pages, &w, &w.io, what);
}

/* After the write (or its failure): settle each page. vs.lock held. */
static uint64_t out_commit(const struct out_batch *b, bool written)
{
	uint64_t moved = 0, run = 0;

	if (written)
		vs.stats.c.written += b->count;
	for (uint64_t i = 0; i < b->count; i++) {
		uint64_t pg = b->pg[i];

		if (written && vs_pt_state(b->o->pt[pg]) == VS_P_STAGING) {
			vs_page_set(b->o, pg, vs_pt_make(VS_P_FILE, true, b->slot[i]));
			moved++;
		} else {
			vs_slots_free(&vs.swap.slots, b->slot[i]);
		}
		/* Staging copies go after their entries say FILE, a run of adjacent pages at a time. */
		run++;
		if (written && (i + 1 == b->count || b->pg[i + 1] != pg + 1)) {
			vs_stg_punch(b->o, pg + 1 - run, run);
			run = 0;
		}
	}
	return moved;
}

/* The writers' shared cursor and outcome; vs.lock guards it. */
struct out_run {
	bool hot;       /* first pass: the working set only (fault_ws.h) */
	int obj;
	uint64_t pg;
	uint64_t moved;
	uint64_t zero;  /* zero pages staged in place, dropped */
	struct { int obj; uint64_t unit; } busy[OUT_WRITERS]; /* units a writer is in */
	int writers;    /* started: each has its index in busy */
	int live;       /* readers not finished */
	int r;          /* first error */
	const char *what; /* its step */
	bool aborted;
};

/*
 * One writer: take the next batch under the lock, write it unlocked,
 * settle it. Several run at once, so writes stay in flight while
 * another writer collects or settles.
 */
/*
 * Take unit @unit of @obj for this writer, @slot of the busy table, once
 * no other writer is in it: a working-set pass may still be there when
 * the full pass comes by, and a unit punched under a writer reading it
 * through the view would be filled again. vs.lock held (dropped to wait).
 */
static void unit_take(struct out_run *run, int slot, int obj, uint64_t unit)
{
	for (bool taken = true; taken;) {
		taken = false;
		for (int i = 0; i < OUT_WRITERS && !taken; i++)
			taken = i != slot && run->busy[i].obj == obj && run->busy[i].unit == unit;
		if (taken) {
			pthread_mutex_unlock(&vs.lock);
			usleep(200);
			pthread_mutex_lock(&vs.lock);
		}
	}
	run->busy[slot].obj = obj;
	run->busy[slot].unit = unit;
}

static void *out_writer(void *arg)
{
	struct out_run *run = arg;
	struct out_batch b;
	const char *what = "writing";
	struct vs_out_unit *u = NULL; /* a unit staged in place goes through it (out_inplace.c) */
	int me;

	pthread_mutex_lock(&vs.lock);
	me = run->writers++;
	for (;;) {
		uint64_t turn;
		bool hot;
		int r = 0;

		if (run->r || run->aborted || (run->aborted = vs_op_aborted()))
			break;
		while (run->obj < VS_MAX_OBJS && (!vs.objs[run->obj].used ||
						  run->pg >= vs.objs[run->obj].npages)) {
			run->obj++;
			run->pg = 0;
			if (run->obj == VS_MAX_OBJS && run->hot) {
				run->hot = false; /* then everything else */
				run->obj = 0;
			}
		}
		if (run->obj == VS_MAX_OBJS)
			break;
		hot = run->hot;
		r = out_collect(&b, &vs.objs[run->obj], &run->pg, hot);
		turn = b.count ? vs_out_turn_take() : UINT64_MAX; /* with the slots */
		if (r)
			what = "allocating a slot in";
		if (!r && !b.count && run->pg < vs.objs[run->obj].npages &&
		    wanted_inplace(&vs.objs[run->obj], run->pg, hot)) {
			/* Staged in place: its whole unit, by this writer. */
			uint64_t unit = run->pg / VS_UNIT_PAGES * VS_UNIT_PAGES, moved = 0;
			int obj = run->obj;

			run->pg = unit + VS_UNIT_PAGES;
			unit_take(run, me, obj, unit);
			if (!u && !(u = vs_out_unit_new())) {
				r = -ENOMEM;
				what = "a buffer for";
			}
			if (!r)
				r = vs_out_inplace_unit(&vs.objs[obj], unit, u, hot, &moved,
							&run->zero, &what);
			run->busy[me].obj = -1;
			run->moved += moved;
			vs.stats.progress_done += moved;
			pthread_mutex_unlock(&vs.lock);
			vs_op_delay(moved);
			pthread_mutex_lock(&vs.lock);
			if (r && !run->r) {
				run->r = r;
				run->what = what;
			}
			continue;
		}
		pthread_mutex_unlock(&vs.lock);
		if (!r && b.count)
			r = out_write(&b, turn, &what);
		if (b.count)
			vs_out_turn_done(turn);
		vs_op_delay(b.count);
		pthread_mutex_lock(&vs.lock);
		run->moved += out_commit(&b, r == 0);
		vs.stats.progress_done += b.count;
		if (r && !run->r) {
			run->r = r;
			run->what = what;
		}
	}
	pthread_mutex_unlock(&vs.lock);
	vs_out_unit_free(u);
	return NULL;
}

/* A writer whose writes the disk thread runs; the last one out stops it. */
static void *out_reader(void *arg)
{
	struct out_run *run = arg;

	out_writer(run);
	pthread_mutex_lock(&vs.lock);
	if (--run->live == 0)
		vs_out_turns_stop();
	pthread_mutex_unlock(&vs.lock);
	return NULL;
}

int vs_op_out(char *msg, size_t n)
{
	static struct out_run run;
	uint64_t t0 = vs_now_ms(), moved;
	pthread_t t[OUT_WRITERS];
	int nt = 0, r;

	memset(&run, 0, sizeof(run));
	for (int i = 0; i < OUT_WRITERS; i++)
		run.busy[i].obj = -1; /* a writer not started yet is in no unit */
	run.hot = vs_ws_enabled();
	vs_out_turns_reset();
	pthread_mutex_lock(&vs.lock); /* the fault thread changes the counters */
	vs.stats.progress_total = vs_staged_pages();
	vs.stats.progress_done = 0;
	/* Pages held twice (dual.h): stop here, before anyone takes Active as all is well. */
	r = vs_dual_refuse(msg, n);
	pthread_mutex_unlock(&vs.lock);
	if (r)
		return r;
	/*
	 * An O_DIRECT file: readers prepare batches, this thread writes them
	 * (see the top). A buffered file gets one writer, this thread.
	 */
	if (vs.swap.direct) {
		pthread_mutex_lock(&vs.lock); /* readers start once all are counted */
		while (nt < OUT_WRITERS && pthread_create(&t[nt], NULL, out_reader, &run) == 0)
			nt++;
		run.live = nt;
		if (nt)
			vs_out_turns_disk();
		pthread_mutex_unlock(&vs.lock);
		if (nt)
			vs_out_turns_serve();
	}
	if (!nt)
		out_writer(&run);
	while (nt)
		pthread_join(t[--nt], NULL);
	moved = run.moved;
	pthread_mutex_lock(&vs.lock);
	vs.stats.c.trimmed_zero += run.zero;
	pthread_mutex_unlock(&vs.lock);
	r = run.r;
	if (run.aborted) {
		snprintf(msg, n, "swap out aborted");
		return -ECANCELED;
	}
	if (r) {
		vs_set_error("%s the swap file in %s: %s", run.what ? run.what : "writing",
			     vs.swap.dir, strerror(-r));
		snprintf(msg, n, "swap out failed: %s; pages not written stay in staging",
			 strerror(-r));
		return r;
	}
	posix_fadvise(vs.swap.fd, 0, 0, POSIX_FADV_DONTNEED);
	pthread_mutex_lock(&vs.lock);
	vs.stats.trans_pages = moved;
	vs.stats.trans_ms = vs_now_ms() - t0;
	vs_ws_out_done();
	pthread_mutex_unlock(&vs.lock);
	snprintf(msg, n, "swapped out %llu pages (%llu MiB)", (unsigned long long)moved,
		 (unsigned long long)(moved * VS_PAGE_SIZE >> 20));
	return 0;
}
