/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trim: drop staged pages that need no writing: zero pages (they fault
 * back as zero pages) and clean pages, whose bytes equal the copy the swap
 * file still holds from an earlier swap-out (they become FILE again).
 * Clean means byte-equal: we compare, we never guess.
 *
 * A zero page that guest memory holds too (dual.h) is not dropped: that
 * would leave guest memory's bytes as the only copy without anyone
 * choosing them. Trim leaves it staged and fails naming it.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../fault/fault_ws.h"
#include "../model/dual.h"
#include "../model/helper.h"
#include "../sys/clock.h"
#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "enable.h"
#include "ops.h"
#include "trim.h"

#define TRIM_BATCH 256 /* pages per lock hold; their old slots are read in one go */
#define TRIM_WORKERS 4

/* Pages of a batch whose staged bytes are compared with their old slot. */
struct trim_cand {
	int n;
	uint64_t pg[TRIM_BATCH];
	uint32_t e[TRIM_BATCH]; /* the entry when picked: skipped if it changed meanwhile */
};

/* Punch the staging copies of the pages of @gone, in runs. */
static void punch_gone(struct vs_obj *o, uint64_t first, const bool *gone, uint64_t count)
{
	for (uint64_t i = 0; i < count;) {
		uint64_t run = 0;

		while (i + run < count && gone[i + run])
			run++;
		vs_stg_punch(o, first + i, run);
		i += run ? run : 1;
	}
}

/*
 * Under vs.lock: zero pages go now; pages with an old slot become
 * candidates for the clean check, which needs a read.
 */
static void trim_pick(struct vs_obj *o, uint64_t first, uint64_t count, uint64_t *zero,
		      struct trim_cand *c)
{
	off_t data_at = lseek(o->fd, (off_t)(first * VS_PAGE_SIZE), SEEK_DATA); /* guest's */
	bool gone[TRIM_BATCH] = { false };

	c->n = 0;
	for (uint64_t pg = first; pg < first + count; pg++) {
		uint32_t e = o->pt[pg];
		const uint8_t *data = o->stg + pg * VS_PAGE_SIZE;

		if (vs_pt_state(e) != VS_P_STAGING)
			continue;
		if (vs_page_is_zero(data) && data_at >= 0 && (uint64_t)data_at / VS_PAGE_SIZE <= pg &&
		    vs_dual_in_guest(o, pg)) {
			vs_dual_note(); /* held twice: both stay */
		} else if (vs_page_is_zero(data)) {
			if (vs_pt_has_slot(e))
				vs_slots_free(&vs.swap.slots, vs_pt_slot(e));
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, false, 0));
			vs.stats.c.trimmed_zero++;
			(*zero)++;
			gone[pg - first] = true;
		} else if (vs_pt_has_slot(e) && vs_ws_hot((int)(o - vs.objs), pg) &&
			   !vs_trim_ws_keep(o, pg, vs_pt_slot(e))) {
			/* Working set: written again, together with the rest of it. */
			vs_slots_free(&vs.swap.slots, vs_pt_slot(e));
			vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, false, 0));
		} else if (vs_pt_has_slot(e)) {
			c->pg[c->n] = pg;
			c->e[c->n++] = e;
		}
	}
	punch_gone(o, first, gone, count);
}

/*
 * Without vs.lock: the candidates' old slots, runs of consecutive slots
 * in one read each. A fault is never kept waiting behind these reads.
 */
static int trim_read(const struct trim_cand *c, uint8_t *buf)
{
	for (int i = 0; i < c->n;) {
		int k = 1;
		int r;

		while (i + k < c->n && vs_pt_slot(c->e[i + k]) == vs_pt_slot(c->e[i]) + (uint32_t)k)
			k++;
		r = vs_swapfile_read(vs.swap.fd, vs_pt_slot(c->e[i]), buf + (size_t)i * VS_PAGE_SIZE,
				     (size_t)k);
		if (r) {
			vs_set_error("trim: reading swap file slot %u: %s", vs_pt_slot(c->e[i]),
				     strerror(-r));
			return r;
		}
		i += k;
	}
	return 0;
}

/*
 * Under vs.lock again: a candidate that is still staged with the same
 * slot is clean when its bytes equal the slot's, and goes back to FILE.
 */
static void trim_settle(struct vs_obj *o, uint64_t first, uint64_t count,
			const struct trim_cand *c, const uint8_t *buf, uint64_t *clean)
{
	bool gone[TRIM_BATCH] = { false };

	for (int i = 0; i < c->n; i++) {
		uint64_t pg = c->pg[i];
		uint32_t e = c->e[i];

		if (pg >= o->npages || o->pt[pg] != e)
			continue; /* faulted back, discarded or changed meanwhile */
		if (!memcmp(buf + (size_t)i * VS_PAGE_SIZE, o->stg + pg * VS_PAGE_SIZE,
			    VS_PAGE_SIZE)) {
			vs_page_set(o, pg, vs_pt_make(VS_P_FILE, true, vs_pt_slot(e)));
			vs.stats.c.redundant++;
			(*clean)++;
			gone[pg - first] = true;
		} else {
			/* Changed since it was written: the old copy is garbage. */
			vs_slots_free(&vs.swap.slots, vs_pt_slot(e));
			vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, false, 0));
		}
	}
	punch_gone(o, first, gone, count);
}

/* One batch of @o: vs.lock held on entry and exit, dropped for the reads. */
static int trim_batch(struct vs_obj *o, uint64_t first, uint64_t count, uint8_t *buf,
		      uint64_t *zero, uint64_t *clean)
{
	struct trim_cand c;
	int r;

	trim_pick(o, first, count, zero, &c);
	if (!c.n)
		return 0;
	pthread_mutex_unlock(&vs.lock);
	r = trim_read(&c, buf);
	pthread_mutex_lock(&vs.lock);
	if (!r)
		trim_settle(o, first, count, &c, buf, clean);
	return r;
}

/*
 * The workers' shared cursor and outcome; vs.lock guards it. Workers take
 * a unit at a time: the copy out of guest memory that finds zero pages
 * in place is bound by one CPU, and the guest is idle.
 */
struct trim_run {
	int obj;
	uint64_t pg;    /* the next unit to take */
	uint64_t zero;
	uint64_t clean;
	int r;          /* first error: 0, -ECANCELED or the read's -errno (recorded) */
};

/*
 * The unit of @o at @pg: pages staged in place (trim.h), then staged
 * pages in batches. vs.lock held on entry and exit.
 */
static int trim_unit(struct vs_obj *o, uint64_t pg, uint8_t *buf, struct trim_run *run)
{
	uint64_t end = pg + VS_UNIT_PAGES < o->npages ? pg + VS_UNIT_PAGES : o->npages;
	int r = 0;

	if (vs.stats.c.inplace)
		r = vs_trim_inplace_unit(o, pg, buf, &run->zero, &run->clean);
	/* Unlocked meanwhile: the object may be gone (an unplug). */
	for (uint64_t at = pg; !r && o->used && at < end && at < o->npages;
	     at += TRIM_BATCH)
		r = trim_batch(o, at, end - at < TRIM_BATCH ? end - at : TRIM_BATCH, buf,
			       &run->zero, &run->clean);
	return r;
}

static void *trim_worker(void *arg)
{
	struct trim_run *run = arg;
	/* Mapped for this trim only: 4 MiB the helper does not keep. */
	uint8_t *buf = mmap(NULL, 2 * VS_UNIT_BYTES, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	pthread_mutex_lock(&vs.lock);
	if (buf == MAP_FAILED && !run->r) {
		vs_set_error("trim: no read buffer: %s", strerror(errno));
		run->r = -ENOMEM;
	}
	while (!run->r) {
		uint64_t pg, cnt;
		struct vs_obj *o;
		int r;

		if (vs_op_aborted()) {
			run->r = -ECANCELED;
			break;
		}
		/* Sizes under the lock: a hotplug may grow an object. */
		while (run->obj < VS_MAX_OBJS && (!vs.objs[run->obj].used ||
						  run->pg >= vs.objs[run->obj].npages)) {
			run->obj++;
			run->pg = 0;
			vs_trim_ws_reset(); /* its rule looks at one object in page order */
		}
		if (run->obj == VS_MAX_OBJS)
			break;
		o = &vs.objs[run->obj];
		pg = run->pg;
		run->pg += VS_UNIT_PAGES;
		cnt = o->npages - pg < VS_UNIT_PAGES ? o->npages - pg : VS_UNIT_PAGES;
		r = trim_unit(o, pg, buf, run);
		if (r && !run->r)
			run->r = r;
		vs.stats.progress_done += cnt;
		pthread_mutex_unlock(&vs.lock);
		vs_op_delay(cnt);
		pthread_mutex_lock(&vs.lock);
	}
	pthread_mutex_unlock(&vs.lock);
	if (buf != MAP_FAILED)
		munmap(buf, 2 * VS_UNIT_BYTES);
	return NULL;
}

/* One worker per CPU we may run on, at most TRIM_WORKERS. */
static int trim_workers(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	n = CPU_COUNT(&set);
	return n < 1 ? 1 : n > TRIM_WORKERS ? TRIM_WORKERS : n;
}

int vs_op_trim(char *msg, size_t n)
{
	static struct trim_run run;
	uint64_t t0 = vs_now_ms();
	pthread_t t[TRIM_WORKERS];
	int nt = 0, want = trim_workers(), r;

	memset(&run, 0, sizeof(run));
	vs_trim_ws_reset();
	pthread_mutex_lock(&vs.lock);
	r = vs_dual_refuse(msg, n);
	vs_dual_noted();
	vs_progress_start_all();
	pthread_mutex_unlock(&vs.lock);
	if (r)
		return r;
	while (nt < want - 1 && pthread_create(&t[nt], NULL, trim_worker, &run) == 0)
		nt++;
	trim_worker(&run);
	while (nt)
		pthread_join(t[--nt], NULL);
	r = run.r;
	if (r == -ECANCELED)
		snprintf(msg, n, "trim aborted");
	else if (r)
		vs_get_error(msg, n);
	if (r)
		return r;
	pthread_mutex_lock(&vs.lock);
	vs.stats.trans_pages = run.zero + run.clean;
	vs.stats.trans_ms = vs_now_ms() - t0;
	if (vs_dual_noted()) {
		vs_dual_scan();
		r = vs_dual_refuse(msg, n);
	}
	pthread_mutex_unlock(&vs.lock);
	if (r)
		return r;
	snprintf(msg, n, "trimmed %llu zero and %llu clean pages",
		 (unsigned long long)run.zero, (unsigned long long)run.clean);
	return 0;
}
