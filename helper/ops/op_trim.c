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
#include <unistd.h>

#include "../fault/fault_ws.h"
#include "../model/dual.h"
#include "../model/helper.h"
#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "ops.h"

#define TRIM_BATCH 64

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned i = 0; i < VS_PAGE_SIZE / 8; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return false;
	return true;
}

#define IN_PLACE_MIN 32 /* pages of the working set at consecutive slots worth keeping there */

/* The old slot of the last working-set page trim looked at (UINT64_MAX: none). */
static uint64_t hot_prev_slot = UINT64_MAX;
static bool hot_run_kept; /* the run it belongs to stays where it is */

/*
 * Is a working-set page at old slot @slot already where it would be
 * written: in a run of at least IN_PLACE_MIN pages of the set at
 * consecutive slots (a set faulted back in order, or written together at
 * the last out)? Then its clean copy is kept, and only the scattered
 * pages of the set are written again, together.
 */
static bool hot_in_place(const struct vs_obj *o, uint64_t pg, uint32_t slot)
{
	int obj = (int)(o - vs.objs);
	uint32_t len = 1;

	if (hot_prev_slot != UINT64_MAX && slot == hot_prev_slot + 1)
		return hot_run_kept; /* the run goes on: same answer */
	for (uint64_t q = pg + 1; q < o->npages && q < pg + 64 * IN_PLACE_MIN &&
	     len < IN_PLACE_MIN; q++) {
		uint32_t e = o->pt[q];

		if (!vs_ws_hot(obj, q))
			continue;
		if (!vs_pt_has_slot(e) || vs_pt_slot(e) != slot + len)
			break;
		len++;
	}
	hot_run_kept = len >= IN_PLACE_MIN;
	return hot_run_kept;
}

/* One batch of @o under vs.lock. Counts into *zero and *clean. */
static int trim_batch(struct vs_obj *o, uint64_t first, uint64_t count,
		      uint64_t *zero, uint64_t *clean)
{
	static uint8_t buf[VS_PAGE_SIZE] __attribute__((aligned(4096)));
	uint64_t run = 0; /* pages at the end of the scan that left staging */
	off_t data_at = lseek(o->fd, (off_t)(first * VS_PAGE_SIZE), SEEK_DATA); /* guest's */

	for (uint64_t pg = first; pg < first + count; pg++) {
		uint32_t e = o->pt[pg];
		const uint8_t *data = o->stg + pg * VS_PAGE_SIZE;
		bool gone = false;

		if (vs_pt_state(e) != VS_P_STAGING) {
			vs_stg_punch(o, pg - run, run);
			run = 0;
			continue;
		}
		if (page_is_zero(data) && data_at >= 0 && (uint64_t)data_at / VS_PAGE_SIZE <= pg &&
		    vs_dual_in_guest(o, pg)) {
			vs_dual_note(); /* held twice: both stay */
		} else if (page_is_zero(data)) {
			if (vs_pt_has_slot(e))
				vs_slots_free(&vs.slots, vs_pt_slot(e));
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, false, 0));
			vs.c.trimmed_zero++;
			(*zero)++;
			gone = true;
		} else if (vs_pt_has_slot(e) && vs_ws_hot((int)(o - vs.objs), pg) &&
			   !hot_in_place(o, pg, vs_pt_slot(e))) {
			/* Working set: written again, together with the rest of it. */
			hot_prev_slot = vs_pt_slot(e);
			vs_slots_free(&vs.slots, vs_pt_slot(e));
			vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, false, 0));
		} else if (vs_pt_has_slot(e)) {
			if (vs_ws_hot((int)(o - vs.objs), pg))
				hot_prev_slot = vs_pt_slot(e);
			int r = vs_swapfile_read(vs.swap_fd, vs_pt_slot(e), buf, 1);

			if (r) {
				vs_set_error("trim: reading swap file slot %u: %s",
					     vs_pt_slot(e), strerror(-r));
				return r;
			}
			if (!memcmp(buf, data, VS_PAGE_SIZE)) {
				vs_page_set(o, pg, vs_pt_make(VS_P_FILE, true, vs_pt_slot(e)));
				vs.c.redundant++;
				(*clean)++;
				gone = true;
			} else {
				/* Changed since it was written: the old copy is garbage. */
				vs_slots_free(&vs.slots, vs_pt_slot(e));
				vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, false, 0));
			}
		}
		if (gone) {
			run++;
		} else {
			vs_stg_punch(o, pg - run, run);
			run = 0;
		}
	}
	vs_stg_punch(o, first + count - run, run);
	return 0;
}

int vs_op_trim(char *msg, size_t n)
{
	uint64_t t0 = vs_now_ms(), zero = 0, clean = 0;
	int r = 0;

	pthread_mutex_lock(&vs.lock);
	r = vs_dual_refuse(msg, n);
	vs_dual_noted();
	vs_progress_start_all();
	pthread_mutex_unlock(&vs.lock);
	if (r)
		return r;
	for (int i = 0; i < VS_MAX_OBJS && !r; i++) {
		struct vs_obj *o = &vs.objs[i];

		hot_prev_slot = UINT64_MAX;
		for (uint64_t pg = 0;; pg += TRIM_BATCH) {
			uint64_t cnt;

			if (vs_op_aborted()) {
				snprintf(msg, n, "trim aborted");
				return -ECANCELED;
			}
			/* Its size under the lock: a hotplug may grow the object. */
			pthread_mutex_lock(&vs.lock);
			if (!o->used || pg >= o->npages) {
				pthread_mutex_unlock(&vs.lock);
				break;
			}
			cnt = o->npages - pg < TRIM_BATCH ? o->npages - pg : TRIM_BATCH;
			r = trim_batch(o, pg, cnt, &zero, &clean);
			pthread_mutex_unlock(&vs.lock);
			if (r) {
				vs_get_error(msg, n);
				return r;
			}
			vs.progress_done += cnt;
			vs_op_delay(cnt);
		}
	}
	pthread_mutex_lock(&vs.lock);
	vs.trans_pages = zero + clean;
	vs.trans_ms = vs_now_ms() - t0;
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
