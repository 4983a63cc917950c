/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Staging in place (VS_P_INPLACE): enable leaves guest pages where they
 * are, write-protected; a write unstages its page (fault/wp.c). trim and
 * out read staged pages with pread and free guest memory one 2 MiB unit
 * at a time, only when every page of
 * the unit that holds data has another whole copy (the swap file) or is
 * zero. Peak extra memory is a few units, not the guest.
 *
 * A page's "fresh" bit says its slot holds its bytes: set by trim (byte
 * compare) and by out's working-set pass, meaningful only while the page
 * stays INPLACE (enable clears it when it stages a page). Not kept
 * across a crash: a recovery unstages every page anyway.
 */
#ifndef VS_INPLACE_H
#define VS_INPLACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../fault/wp.h"
#include "../model/copies.h"
#include "../model/helper.h"

/*
 * vs.lock held. Stage every resident data page in place and write-protect
 * every mapping; *staged counts the pages. 0 or -errno (recorded).
 */
int vs_inplace_stage_all(uint64_t *staged);
/* Unstage every INPLACE page of [pg, pg+n) of @obj and unprotect the range; the count. */
uint64_t vs_inplace_unstage(int obj, uint64_t pg, uint64_t n);
/* The same for every object. */
uint64_t vs_inplace_unstage_all(void);

static inline bool vs_fresh(const struct vs_obj *o, uint64_t pg)
{
	return pg < o->fresh_pages && vs_bit(o->fresh, pg);
}
/* Set or clear the fresh bit of @pg (the map grows as needed). 0 or -ENOMEM. */
int vs_fresh_put(struct vs_obj *o, uint64_t pg, bool on);

/* What becomes of each page of a unit that leaves guest memory. */
enum vs_unit_how { VS_U_STAY = 0, VS_U_ZERO, VS_U_FILE };

/*
 * vs.lock held. Free unit @unit of @o (its first page) when it can go:
 * each page marked VS_U_ZERO or VS_U_FILE (a fresh slot) that is still
 * INPLACE leaves (RESIDENT hole, or FILE at its slot), and the unit is
 * punched, but only when no other page of the whole 2 MiB holds data in
 * the memfd. Otherwise only its zero pages are punched, and with
 * @unstage_kept the unit's other staged pages go back to RESIDENT
 * (keeping their slots) and are unprotected. Returns the pages that left
 * (*zero of them zero pages), or -errno when the punch of the whole unit
 * failed (all stay). vs.lock is dropped for that punch.
 */
int vs_inplace_free_unit(struct vs_obj *o, uint64_t unit, const uint8_t *how,
			 bool unstage_kept, uint64_t *zero);

/*
 * Could unit @unit of @o go if all its staged pages did? Not when another
 * page of it holds data (one written since enable, say): then writing its
 * staged pages would free nothing. vs.lock held.
 */
bool vs_inplace_unit_can_go(const struct vs_obj *o, uint64_t unit);

/*
 * Unlocked: the bytes of pages @pg[0..n) of the guest memfd @fd into
 * @buf, one pread per run of adjacent pages (a hole reads as zeros and is
 * never filled, as a read through a mapping would), and which are zero
 * pages. 0 or -errno.
 */
int vs_inplace_read(int fd, const uint64_t *pg, int n, uint8_t *buf, bool *zero);

/* Is this page all zero bytes? */
bool vs_page_is_zero(const uint8_t *p);

#endif
