/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * enable with write-protect tracking (wp.h): the short frozen step that
 * copies again what the VMM wrote during the copy, and the punching of
 * guest memory after the thaw.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../fault/wp.h"
#include "../model/helper.h"
#include "../sys/extent.h"
#include "../sys/log.h"
#include "enable.h"
#include "ops.h"

/* Copy again the pages of [pg, end) that are dirty or were never copied. */
static int settle_extent(int obj, uint64_t pg, uint64_t end)
{
	struct vs_obj *o = &vs.objs[obj];

	while (pg < end) {
		uint64_t run = 0;
		int r;

		while (pg < end && vs_bit(o->copied, pg) && !vs_bit(o->dirty, pg))
			pg++;
		while (pg + run < end && (!vs_bit(o->copied, pg + run) || vs_bit(o->dirty, pg + run)))
			run++;
		if (!run)
			break;
		/*
		 * Clean, then protect, then copy: protecting may drop the lock
		 * (wp_ioctl), and a fault resolved then (a write let go, a page
		 * put in) leaves its page dirty and unprotected for the next pass.
		 */
		for (uint64_t i = pg; i < pg + run; i++)
			vs_bit_clear(o->dirty, i);
		r = vs_wp_obj_range(obj, pg, run, true);
		if (!r)
			r = vs_copy_to_staging(o, (off_t)(pg * VS_PAGE_SIZE),
					       (off_t)(run * VS_PAGE_SIZE));
		if (r)
			return r;
		for (uint64_t i = pg; i < pg + run; i++)
			vs_bit_set(o->copied, i);
		vs.stats.en.recopied += run;
		pg += run;
	}
	return 0;
}

/* One pass over an object: data extents settled, copies of holes dropped. */
static int settle_obj(int obj)
{
	struct vs_obj *o = &vs.objs[obj];
	off_t size, pos = 0;
	int r = vs_copies_grow(o, o->npages);

	size = (off_t)(o->npages * VS_PAGE_SIZE);
	while (!r && pos < size) {
		off_t d = size, h = size;
		int k = vs_extent_next(o->fd, pos, size, &d, &h);

		if (k < 0)
			return k;
		if (!k)
			d = size;
		/* The VMM discarded these since they were copied. */
		vs_copies_drop(o, (uint64_t)pos / VS_PAGE_SIZE, (uint64_t)d / VS_PAGE_SIZE);
		if (!k)
			break;
		r = settle_extent(obj, (uint64_t)d / VS_PAGE_SIZE,
				  ((uint64_t)h + VS_PAGE_SIZE - 1) / VS_PAGE_SIZE);
		pos = h;
	}
	return r;
}

int vs_wp_settle_frozen(void)
{
	for (int pass = 0; pass < 100; pass++) {
		vs.wp_dirtied = 0;
		for (int i = 0; i < VS_MAX_OBJS; i++) {
			int r = vs.objs[i].used ? settle_obj(i) : 0;

			if (r) {
				vs_set_error("copying %s to staging: %s", vs.objs[i].name, strerror(-r));
				return r;
			}
		}
		/* The lock was dropped only for a pending uffd event; then look again. */
		if (!vs.wp_dirtied) {
			vs.wp_phase = VS_WP_PUNCH;
			return 0;
		}
	}
	vs_set_error("guest memory kept changing while the VMM was frozen");
	return -EBUSY;
}

/*
 * Stage the copied pages of a unit and punch it from guest memory. vs.lock
 * held. Marked first: the page table names a whole copy at every instant
 * (a helper restarted after a crash here finds both, and keeps the guest's).
 */
static int punch_unit(struct vs_obj *o, uint64_t unit, uint64_t *moved)
{
	uint64_t end = unit + VS_UNIT_PAGES < o->wp_pages ? unit + VS_UNIT_PAGES : o->wp_pages;
	uint32_t was[VS_UNIT_PAGES];
	bool any = false;

	for (uint64_t w = unit / 64; w < (end + 63) / 64 && !any; w++)
		any = o->copied[w] != 0;
	if (!any)
		return 0; /* nothing copied, or demoted by a write */
	if (vs_unit_keep(o, unit, o->npages < end ? o->npages : end))
		return 0; /* stays resident; its copies go (vs_wp_end) */
	for (uint64_t pg = unit; pg < end; pg++) {
		uint32_t e = was[pg - unit] = o->pt[pg];

		if (vs_bit(o->copied, pg))
			vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, vs_pt_has_slot(e),
						      vs_pt_slot(e)));
	}
	if (fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(unit * VS_PAGE_SIZE), VS_UNIT_BYTES) < 0) {
		int r = -errno;

		/* The pages stay resident; their copies go (vs_wp_end). */
		for (uint64_t pg = unit; pg < end; pg++)
			if (vs_bit(o->copied, pg))
				vs_page_set(o, pg, was[pg - unit]);
		return r;
	}
	for (uint64_t pg = unit; pg < end; pg++) {
		if (!vs_bit(o->copied, pg))
			continue;
		vs_bit_clear(o->copied, pg);
		(*moved)++;
	}
	return 0;
}

int vs_wp_punch_all(uint64_t *moved)
{
	vs_progress_start_all();
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		for (uint64_t unit = 0;; unit += VS_UNIT_PAGES) {
			struct vs_obj *o = &vs.objs[i];
			int r = 0;
			bool more;

			pthread_mutex_lock(&vs.lock);
			more = o->used && o->copied && unit < o->wp_pages;
			if (more)
				r = punch_unit(o, unit, moved);
			pthread_mutex_unlock(&vs.lock);
			if (r) {
				vs_set_error("punching %s at %#llx: %s", o->name,
					     (unsigned long long)(unit * VS_PAGE_SIZE), strerror(-r));
				return r;
			}
			if (!more)
				break;
			vs.stats.progress_done += VS_UNIT_PAGES;
			vs_op_delay(VS_UNIT_PAGES);
		}
	}
	return 0;
}
