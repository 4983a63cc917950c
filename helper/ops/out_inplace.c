/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * out for pages staged in place (inplace.h): read with pread into the
 * writer's buffer (a hole reads as zeros and is never filled; O_DIRECT
 * from the pages themselves ran at 0.7 times this here), written from
 * there to fresh slots by the disk thread (out.h), and the unit punched
 * once the slots hold the bytes. A write racing all this unstages its
 * page first (the page is protected), and then the unit stays.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../fault/fault_ws.h"
#include "../model/helper.h"
#include "../sys/slots.h"
#include "enable.h"
#include "out.h"

/*
 * After the read, vs.lock held: a slot for each candidate that is not
 * zero and still staged (a write meanwhile unstaged it: it is not
 * written, and its unit stays), taken with this batch's turn, so the
 * file follows the order writes go. widx[] are their places in the buffer.
 */
static int give_slots(struct vs_obj *o, const uint64_t *cand, const bool *zero, int n, bool hot,
		      uint64_t *wpg, uint64_t *widx, uint32_t *wslot, uint64_t *cnt)
{
	for (int i = 0; i < n; i++) {
		uint64_t pg = cand[i];
		uint32_t e = o->pt[pg], slot;
		int r;

		if (zero[i] || vs_pt_state(e) != VS_P_INPLACE)
			continue;
		/* Not fresh, so an old copy is stale. */
		if (vs_pt_has_slot(e)) {
			vs_slots_free(&vs.swap.slots, vs_pt_slot(e));
			vs_page_set(o, pg, vs_pt_make(VS_P_INPLACE, false, 0));
		}
		r = hot ? vs_slots_alloc_tail(&vs.swap.slots, &slot)
			: vs_slots_alloc(&vs.swap.slots, &slot);
		if (r)
			return r;
		vs_page_set(o, pg, vs_pt_make(VS_P_INPLACE, true, slot));
		wpg[*cnt] = pg;
		widx[*cnt] = (uint64_t)i;
		wslot[(*cnt)++] = slot;
	}
	return 0;
}

/* Give one slot back, if the page still holds it. vs.lock held. */
static void drop_slot(struct vs_obj *o, uint64_t pg, uint32_t slot)
{
	uint32_t e = o->pt[pg];

	if (!vs_pt_has_slot(e) || vs_pt_slot(e) != slot)
		return; /* discarded meanwhile (which freed it), or changed */
	vs_page_set(o, pg, vs_pt_make(vs_pt_state(e), false, 0));
	vs_slots_free(&vs.swap.slots, slot);
}

/* After the read: zero pages still staged go alone, even from a unit that stays. */
static void mark_zero(struct vs_obj *o, const uint64_t *cand, const bool *zero, int n,
		      uint8_t *how, uint64_t unit)
{
	for (int i = 0; i < n; i++)
		if (zero[i] && vs_pt_state(o->pt[cand[i]]) == VS_P_INPLACE)
			how[cand[i] - unit] = VS_U_ZERO;
}

/* vs.lock held, after the write: fresh on success; on failure the slots go. */
static void settle_slots(struct vs_obj *o, const uint64_t *wpg, const uint32_t *wslot,
			 uint64_t cnt, bool written, bool hot, uint8_t *how, uint64_t unit)
{
	if (written)
		vs.stats.c.written += cnt;
	for (uint64_t i = 0; i < cnt; i++) {
		uint64_t pg = wpg[i];
		uint32_t e = o->pt[pg];
		bool ours = vs_pt_has_slot(e) && vs_pt_slot(e) == wslot[i];

		if (!ours) {
			/* Discarded meanwhile (which freed the slot), or changed. */
			continue;
		}
		if (!written) {
			drop_slot(o, pg, wslot[i]);
			continue;
		}
		/* Unstaged by a write meanwhile: the slot is an older copy, which trim compares. */
		if (vs_pt_state(e) != VS_P_INPLACE)
			continue;
		if (vs_fresh_put(o, pg, true) == 0 && !hot)
			how[pg - unit] = VS_U_FILE;
	}
}

/* A writer's own: the unit's bytes and what becomes of each of its pages. */
struct vs_out_unit {
	void *map;    /* the buffer's mapping */
	uint8_t *buf; /* VS_UNIT_BYTES, 2 MiB-aligned */
	uint64_t cand[VS_UNIT_PAGES], wpg[VS_UNIT_PAGES], widx[VS_UNIT_PAGES];
	uint32_t wslot[VS_UNIT_PAGES];
	uint8_t how[VS_UNIT_PAGES];
	bool isz[VS_UNIT_PAGES];
};

#define UNIT_MAP_BYTES (2 * (size_t)VS_UNIT_BYTES)

/*
 * The buffer is one huge page where the host gives one: an O_DIRECT
 * write from it is one segment, not 512 (2 MiB writes ran 1.2-1.6 times
 * as fast here as from 4 KiB pages). Otherwise 4 KiB pages, which work
 * the same.
 */
struct vs_out_unit *vs_out_unit_new(void)
{
	struct vs_out_unit *u = malloc(sizeof(*u));

	if (!u)
		return NULL;
	u->map = mmap(NULL, UNIT_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (u->map == MAP_FAILED) {
		free(u);
		return NULL;
	}
	u->buf = (uint8_t *)(((uintptr_t)u->map + VS_UNIT_BYTES - 1) &
			     ~(uintptr_t)(VS_UNIT_BYTES - 1));
	(void)madvise(u->buf, VS_UNIT_BYTES, MADV_HUGEPAGE);
	return u;
}

void vs_out_unit_free(struct vs_out_unit *u)
{
	if (!u)
		return;
	munmap(u->map, UNIT_MAP_BYTES);
	free(u);
}

struct unit_write {
	struct vs_out_unit *u;
	uint64_t cnt;
	struct vs_out_io io;
};

/* The turn's write, on the disk thread (out.h). */
static int unit_pages(void *arg)
{
	struct unit_write *w = arg;

	return vs_out_write_pages(w->u->buf, w->u->widx, w->u->wslot, w->cnt, &w->io);
}

/* Unlocked: the unit's write in @turn. */
static int unit_write(struct vs_out_unit *u, uint64_t cnt, uint64_t turn, const char **what)
{
	struct unit_write w = { u, cnt, { UINT32_MAX, 0 } };

	return vs_out_write_turn(turn, unit_pages, &w, &w.io, what);
}

int vs_out_inplace_unit(struct vs_obj *o, uint64_t unit, struct vs_out_unit *u, bool hot,
			uint64_t *moved, uint64_t *zero, const char **what)
{
	int obj = (int)(o - vs.objs), n = 0, r = 0, k;
	uint64_t end = unit + VS_UNIT_PAGES, cnt = 0, z, turn = UINT64_MAX;
	bool doomed;

	memset(u->how, VS_U_STAY, sizeof(u->how));
	if (end > o->npages)
		end = o->npages;
	/* A unit that stays anyway is not written: only its zero pages go. */
	doomed = !vs_inplace_unit_can_go(o, unit);
	if (doomed && hot)
		return 0;
	for (uint64_t pg = unit; pg < end; pg++) {
		uint32_t e = o->pt[pg];

		if (vs_pt_state(e) != VS_P_INPLACE || (hot && !vs_ws_hot(obj, pg)))
			continue;
		if (vs_fresh(o, pg) && vs_pt_has_slot(e)) {
			if (!hot)
				u->how[pg - unit] = VS_U_FILE; /* its slot holds it already */
			continue;
		}
		u->cand[n++] = pg;
	}
	if (n) {
		pthread_mutex_unlock(&vs.lock);
		r = vs_inplace_read(o->fd, u->cand, n, u->buf, u->isz);
		pthread_mutex_lock(&vs.lock);
		if (r)
			*what = "reading guest memory for";
	}
	if (!r && !hot)
		mark_zero(o, u->cand, u->isz, n, u->how, unit);
	/* A unit that stays anyway: zero pages only, no slots, no write. */
	if (!r && !doomed && n) {
		*what = "allocating a slot in";
		turn = vs_out_turn_take();
		r = give_slots(o, u->cand, u->isz, n, hot, u->wpg, u->widx, u->wslot, &cnt);
	}
	if (!r && cnt) {
		pthread_mutex_unlock(&vs.lock);
		r = unit_write(u, cnt, turn, what);
		pthread_mutex_lock(&vs.lock);
	}
	if (turn != UINT64_MAX)
		vs_out_turn_done(turn); /* nothing written, or an error */
	settle_slots(o, u->wpg, u->wslot, cnt, r == 0, hot, u->how, unit);
	if (r || hot)
		return r;
	/* Counted apart: *zero is shared with writers that run while the punch is unlocked. */
	z = 0;
	k = vs_inplace_free_unit(o, unit, u->how, true, &z);
	if (k < 0) {
		*what = "freeing guest memory for";
		return k;
	}
	*zero += z;
	*moved += (uint64_t)k - z;
	return 0;
}
