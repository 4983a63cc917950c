/* SPDX-License-Identifier: BSD-3-Clause */
/* Staging in place: see inplace.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fault/fault.h"
#include "../sys/extent.h"
#include "../sys/log.h"
#include "enable.h"
#include "inplace.h"

bool vs_page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned i = 0; i < VS_PAGE_SIZE / 8; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return false;
	return true;
}

int vs_inplace_read(int fd, const uint64_t *pg, int n, uint8_t *buf, bool *zero)
{
	for (int i = 0; i < n;) {
		size_t len, done = 0;
		int k = 1;

		while (i + k < n && pg[i + k] == pg[i] + (uint64_t)k)
			k++;
		len = (size_t)k * VS_PAGE_SIZE;
		while (done < len) {
			ssize_t got = pread(fd, buf + (size_t)i * VS_PAGE_SIZE + done, len - done,
					    (off_t)(pg[i] * VS_PAGE_SIZE + done));

			if (got <= 0)
				return got < 0 ? -errno : -EIO; /* the memfd ends: it shrank? */
			done += (size_t)got;
		}
		i += k;
	}
	for (int i = 0; i < n; i++)
		zero[i] = vs_page_is_zero(buf + (size_t)i * VS_PAGE_SIZE);
	return 0;
}

int vs_fresh_put(struct vs_obj *o, uint64_t pg, bool on)
{
	if (pg >= o->fresh_pages) {
		uint64_t want = (o->npages > pg + 1 ? o->npages : pg + 1);
		size_t old = (o->fresh_pages + 63) / 64, now = (want + 63) / 64;
		uint64_t *m;

		if (!on)
			return 0;
		m = realloc(o->fresh, now * sizeof(*m));
		if (!m)
			return -ENOMEM;
		memset(m + old, 0, (now - old) * sizeof(*m));
		o->fresh = m;
		o->fresh_pages = now * 64;
	}
	if (on)
		vs_bit_set(o->fresh, pg);
	else
		vs_bit_clear(o->fresh, pg);
	return 0;
}

/*
 * Marked first, then protected: a write that faults once a page is
 * protected finds it INPLACE and unstages it (fault/wp.c); a write before
 * that lands in the page, which is the staged copy all the same.
 */
int vs_inplace_stage_all(uint64_t *staged)
{
	int r = 0;

	vs_hooks.registered = vs_wp_map; /* a mapping added later is protected at once */
	for (int i = 0; i < VS_MAX_OBJS && !r; i++) {
		struct vs_obj *o = &vs.objs[i];
		off_t size = (off_t)(o->npages * VS_PAGE_SIZE), pos = 0;

		while (o->used && pos < size) {
			off_t d, h;
			int k = vs_extent_next(o->fd, pos, size, &d, &h);

			if (k <= 0) {
				r = k;
				break;
			}
			for (uint64_t pg = (uint64_t)d / VS_PAGE_SIZE;
			     pg < ((uint64_t)h + VS_PAGE_SIZE - 1) / VS_PAGE_SIZE; pg++) {
				uint32_t e = o->pt[pg];

				if (vs_pt_state(e) != VS_P_RESIDENT)
					continue; /* saved and in guest memory: dual.h tells */
				vs_page_set(o, pg, vs_pt_make(VS_P_INPLACE, vs_pt_has_slot(e),
							      vs_pt_slot(e)));
				vs_fresh_put(o, pg, false);
				(*staged)++;
			}
			pos = h;
		}
	}
	if (r)
		return r;
	for (int i = 0; i < VS_MAX_OBJS && !r; i++)
		if (vs.objs[i].used && (r = vs_wp_obj_range(i, 0, vs.objs[i].npages, true)))
			vs_set_error("write-protecting %s: %s", vs.objs[i].name, strerror(-r));
	return r;
}

uint64_t vs_inplace_unstage(int obj, uint64_t pg, uint64_t n)
{
	struct vs_obj *o = &vs.objs[obj];
	uint64_t done = 0;

	for (uint64_t i = pg; i < pg + n && i < o->npages; i++) {
		uint32_t e = o->pt[i];

		if (vs_pt_state(e) != VS_P_INPLACE)
			continue;
		vs_page_set(o, i, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e), vs_pt_slot(e)));
		done++;
	}
	if (done && vs_wp_obj_range(obj, pg, n, false))
		vs_warn("could not unprotect all of %s (pages are left to fault once)", o->name);
	return done;
}

uint64_t vs_inplace_unstage_all(void)
{
	uint64_t done = 0;

	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (vs.objs[i].used)
			done += vs_inplace_unstage(i, 0, vs.objs[i].npages);
	return done;
}

/* Does this page of the unit leave now? */
static bool going(const struct vs_obj *o, uint64_t pg, uint8_t how)
{
	uint32_t e = o->pt[pg];

	return how != VS_U_STAY && vs_pt_state(e) == VS_P_INPLACE &&
	       (how != VS_U_FILE || vs_pt_has_slot(e));
}

/*
 * May the unit go? Every page of its 2 MiB that holds data in the memfd
 * must be one of ours leaving now: a data page past the object's end, a
 * written page, a page held twice all keep it. Only the pages that do not
 * leave are looked up (SEEK_DATA from each: cheap where data follows;
 * SEEK_HOLE would walk all the data after it).
 */
static bool unit_may_go(const struct vs_obj *o, uint64_t unit, const uint8_t *how)
{
	uint64_t end = unit + VS_UNIT_PAGES, last = end < o->npages ? end : o->npages;
	off_t d;

	for (uint64_t pg = unit; pg < last; pg++) {
		if (going(o, pg, how[pg - unit]))
			continue;
		d = lseek(o->fd, (off_t)(pg * VS_PAGE_SIZE), SEEK_DATA);
		if (d < 0)
			return errno == ENXIO; /* no data from here on */
		if ((uint64_t)d / VS_PAGE_SIZE == pg)
			return false;
		pg = (uint64_t)d / VS_PAGE_SIZE - 1; /* holes up to there */
	}
	if (last == end)
		return true;
	d = lseek(o->fd, (off_t)(last * VS_PAGE_SIZE), SEEK_DATA);
	return d < 0 ? errno == ENXIO : (uint64_t)d >= end * VS_PAGE_SIZE;
}

bool vs_inplace_unit_can_go(const struct vs_obj *o, uint64_t unit)
{
	uint64_t end = unit + VS_UNIT_PAGES < o->npages ? unit + VS_UNIT_PAGES : o->npages;
	uint8_t all[VS_UNIT_PAGES];

	for (uint64_t pg = unit; pg < end; pg++)
		all[pg - unit] = vs_pt_state(o->pt[pg]) == VS_P_INPLACE ? VS_U_ZERO : VS_U_STAY;
	return unit_may_go(o, unit, all);
}

/*
 * A unit that stays: its zero pages still go, one run at a time. A page
 * needs no whole copy elsewhere to be zero, and a punch the kernel can
 * only carry out by zeroing part of a huge page in place leaves the same
 * zero bytes. vs.lock held; the count.
 */
static uint64_t punch_zero_pages(struct vs_obj *o, uint64_t unit, uint64_t end,
				 const uint8_t *how)
{
	uint64_t n = 0;

	for (uint64_t pg = unit; pg < end;) {
		uint64_t run = 0;

		while (pg + run < end && how[pg + run - unit] == VS_U_ZERO &&
		       going(o, pg + run, VS_U_ZERO)) {
			uint32_t e = o->pt[pg + run];

			if (vs_pt_has_slot(e))
				vs_slots_free(&vs.swap.slots, vs_pt_slot(e));
			vs_page_set(o, pg + run, vs_pt_make(VS_P_RESIDENT, false, 0));
			run++;
		}
		if (run && fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     (off_t)(pg * VS_PAGE_SIZE), (off_t)(run * VS_PAGE_SIZE)) < 0)
			vs_warn("punching zero pages of %s: %s (they stay, as zero pages)", o->name,
				strerror(errno));
		n += run;
		pg += run ? run : 1;
	}
	return n;
}

/*
 * Punch a whole unit, its entries already saying where the pages went.
 * Without vs.lock where the table of units being punched has room: the
 * fault path lets no page in there and no write go on meanwhile
 * (vs_punching), and is told when it may. vs.lock held on entry and exit.
 */
static int punch(struct vs_obj *o, uint64_t unit)
{
	int obj = (int)(o - vs.objs), slot = vs.npunching, r = 0;
	bool unlocked = slot < VS_PUNCHING_MAX;

	if (unlocked) {
		vs.punching[vs.npunching++] = (struct vs_unit_ref){ obj, unit / VS_UNIT_PAGES };
		pthread_mutex_unlock(&vs.lock);
	}
	if (fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(unit * VS_PAGE_SIZE), VS_UNIT_BYTES) < 0)
		r = -errno;
	if (unlocked) {
		pthread_mutex_lock(&vs.lock);
		for (int i = 0; i < vs.npunching; i++) {
			if (vs.punching[i].obj == obj && vs.punching[i].unit == unit / VS_UNIT_PAGES) {
				vs.punching[i] = vs.punching[--vs.npunching];
				break;
			}
		}
		vs_fault_kick(); /* the faults that waited for it */
	}
	return r;
}

int vs_inplace_free_unit(struct vs_obj *o, uint64_t unit, const uint8_t *how,
			 bool unstage_kept, uint64_t *zero)
{
	uint64_t end = unit + VS_UNIT_PAGES < o->npages ? unit + VS_UNIT_PAGES : o->npages;
	uint32_t was[VS_UNIT_PAGES], set[VS_UNIT_PAGES];
	uint64_t left = 0, z = 0;
	bool any = false;
	int r;

	for (uint64_t pg = unit; pg < end && !any; pg++)
		any = going(o, pg, how[pg - unit]);
	if (!any || !unit_may_go(o, unit, how)) {
		z = any ? punch_zero_pages(o, unit, end, how) : 0;
		if (unstage_kept)
			vs_inplace_unstage((int)(o - vs.objs), unit, end - unit);
		*zero += z;
		return (int)z;
	}
	/* Entries first: the table names a whole copy at every instant (a crash finds both). */
	for (uint64_t pg = unit; pg < end; pg++) {
		uint32_t e = was[pg - unit] = o->pt[pg];

		if (vs_pt_state(e) == VS_P_INPLACE && how[pg - unit] == VS_U_ZERO)
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e), vs_pt_slot(e)));
		else if (vs_pt_state(e) == VS_P_INPLACE && how[pg - unit] == VS_U_FILE)
			vs_page_set(o, pg, vs_pt_make(VS_P_FILE, true, vs_pt_slot(e)));
		set[pg - unit] = o->pt[pg];
	}
	r = punch(o, unit);
	for (uint64_t pg = unit; pg < end && pg < o->npages; pg++) {
		uint32_t e = o->pt[pg];

		/* Unchanged by us, or changed since (a discard while unlocked): not ours. */
		if (e == was[pg - unit] || e != set[pg - unit])
			continue;
		if (r) {
			vs_page_set(o, pg, was[pg - unit]); /* the punch failed: all stay */
			continue;
		}
		left++;
		if (vs_pt_state(e) == VS_P_RESIDENT) {
			/* A zero page: the hole reads as zero; an old slot is garbage. */
			if (vs_pt_has_slot(e))
				vs_slots_free(&vs.swap.slots, vs_pt_slot(e));
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, false, 0));
			z++;
		}
	}
	if (r)
		return r;
	*zero += z;
	return (int)left;
}
