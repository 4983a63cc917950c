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
	static struct trim_cand c;
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
 * Every batch of one object: staged pages in batches, pages staged in
 * place a unit at a time (trim.h). 0, -ECANCELED or the read's -errno
 * (recorded).
 */
static int trim_obj(struct vs_obj *o, uint8_t *buf, uint64_t *zero, uint64_t *clean)
{
	int r = 0;

	vs_trim_ws_reset();
	for (uint64_t pg = 0; !r; pg += TRIM_BATCH) {
		uint64_t cnt;

		if (vs_op_aborted()) {
			r = -ECANCELED;
			break;
		}
		/* Its size under the lock: a hotplug may grow the object. */
		pthread_mutex_lock(&vs.lock);
		if (!o->used || pg >= o->npages) {
			pthread_mutex_unlock(&vs.lock);
			break;
		}
		if (vs.stats.c.inplace && pg % VS_UNIT_PAGES == 0)
			r = vs_trim_inplace_unit(o, pg, buf, zero, clean);
		cnt = o->npages - pg < TRIM_BATCH ? o->npages - pg : TRIM_BATCH;
		if (!r)
			r = trim_batch(o, pg, cnt, buf, zero, clean);
		pthread_mutex_unlock(&vs.lock);
		vs.stats.progress_done += cnt;
		vs_op_delay(cnt);
	}
	return r;
}

int vs_op_trim(char *msg, size_t n)
{
	uint64_t t0 = vs_now_ms(), zero = 0, clean = 0;
	/* Mapped for this trim only: 4 MiB the helper does not keep. */
	uint8_t *buf = mmap(NULL, 2 * VS_UNIT_BYTES, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int r = 0;

	if (buf == MAP_FAILED) {
		snprintf(msg, n, "trim: no read buffer: %s", strerror(errno));
		return -ENOMEM;
	}
	pthread_mutex_lock(&vs.lock);
	r = vs_dual_refuse(msg, n);
	vs_dual_noted();
	vs_progress_start_all();
	pthread_mutex_unlock(&vs.lock);
	if (!r) {
		for (int i = 0; i < VS_MAX_OBJS && !r; i++)
			r = trim_obj(&vs.objs[i], buf, &zero, &clean);
		if (r == -ECANCELED)
			snprintf(msg, n, "trim aborted");
		else if (r)
			vs_get_error(msg, n);
	}
	munmap(buf, 2 * VS_UNIT_BYTES);
	if (r)
		return r;
	pthread_mutex_lock(&vs.lock);
	vs.stats.trans_pages = zero + clean;
	vs.stats.trans_ms = vs_now_ms() - t0;
	if (vs_dual_noted()) {
		vs_dual_scan();
		r = vs_dual_refuse(msg, n);
	}
	pthread_mutex_unlock(&vs.lock);
	if (r)
		return r;
	snprintf(msg, n, "trimmed %llu zero and %llu clean pages",
		 (unsigned long long)zero, (unsigned long long)clean);
	return 0;
}
