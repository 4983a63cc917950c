/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * out for pages staged in place (inplace.h): read with pread into the
 * writer's buffer (a hole reads as zeros and is never filled; O_DIRECT
 * from the pages themselves ran at 0.7 times this here), written from
 * there to fresh slots, and the unit punched once the slots hold the
 * bytes. A write racing all this unstages its page first (the page is
 * protected), and then the unit stays.
 */
#include <errno.h>
#include <string.h>

#include "../fault/fault_ws.h"
#include "../model/helper.h"
#include "../sys/slots.h"
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

int vs_out_inplace_unit(struct vs_obj *o, uint64_t unit, uint8_t *buf, bool hot,
			uint64_t *moved, uint64_t *zero, const char **what)
{
	int obj = (int)(o - vs.objs), n = 0, r = 0, k;
	uint64_t end = unit + VS_UNIT_PAGES, cnt = 0, z, turn = UINT64_MAX;
	bool doomed;
	uint64_t cand[VS_UNIT_PAGES], wpg[VS_UNIT_PAGES], widx[VS_UNIT_PAGES];
	uint32_t wslot[VS_UNIT_PAGES];
	uint8_t how[VS_UNIT_PAGES];
	bool isz[VS_UNIT_PAGES];

	memset(how, VS_U_STAY, sizeof(how));
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
				how[pg - unit] = VS_U_FILE; /* its slot holds it already */
			continue;
		}
		cand[n++] = pg;
	}
	if (n) {
		pthread_mutex_unlock(&vs.lock);
		r = vs_inplace_read(o->fd, cand, n, buf, isz);
		pthread_mutex_lock(&vs.lock);
		if (r)
			*what = "reading guest memory for";
	}
	if (!r && !hot)
		mark_zero(o, cand, isz, n, how, unit);
	/* A unit that stays anyway: zero pages only, no slots, no write. */
	if (!r && !doomed && n) {
		*what = "allocating a slot in";
		turn = vs_out_turn_take();
		r = give_slots(o, cand, isz, n, hot, wpg, widx, wslot, &cnt);
	}
	if (!r && cnt) {
		pthread_mutex_unlock(&vs.lock);
		r = vs_out_write(buf, widx, wslot, cnt, turn, what);
		pthread_mutex_lock(&vs.lock);
	}
	if (turn != UINT64_MAX)
		vs_out_turn_done(turn); /* nothing written, or an error */
	settle_slots(o, wpg, wslot, cnt, r == 0, hot, how, unit);
	if (r || hot)
		return r;
	/* Counted apart: *zero is shared with writers that run while the punch is unlocked. */
	z = 0;
	k = vs_inplace_free_unit(o, unit, how, true, &z);
	if (k < 0) {
		*what = "freeing guest memory for";
		return k;
	}
	*zero += z;
	*moved += (uint64_t)k - z;
	return 0;
}
