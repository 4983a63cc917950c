/* SPDX-License-Identifier: BSD-3-Clause */
/* The parts of out (op_out.c): the writing of a batch, and pages staged in place. */
#ifndef VS_OUT_H
#define VS_OUT_H

#include <stdbool.h>
#include <stdint.h>

#include "inplace.h"

#define OUT_BATCH 512 /* pages: 2 MiB writes */

/*
 * The writers' turns (out_turns.c): batches are written one at a time,
 * in the order their slots were taken, so the disk sees one sequential
 * stream (more writes in flight were slower here) while the other
 * writers read, settle and punch. A turn is taken under vs.lock with
 * the batch's slots, once its bytes are read, and a writer holds one at
 * a time. It ends with the batch's write, or with vs_out_turn_done
 * (nothing to write, an error), which may come twice. A writer waits for
 * its turn holding no lock.
 */
void vs_out_turns_reset(void);
uint64_t vs_out_turn_take(void);
void vs_out_turn_done(uint64_t turn);
void vs_out_turn_wait(uint64_t turn); /* until every earlier turn ended */

/*
 * Run @fn(@arg) as turn @turn's write, once every earlier turn ended, and
 * end the turn; its result. While a disk thread serves, the write runs
 * there and this waits for it; otherwise it runs here.
 */
int vs_out_turn_run(uint64_t turn, int (*fn)(void *), void *arg);
/*
 * The disk thread: one thread runs every turn's write, each as soon as
 * the one before ended, so the disk never waits for a writer to wake.
 * vs_out_turns_disk before the writers start; vs_out_turns_serve on the
 * disk thread returns once vs_out_turns_stop was called and no write is
 * left. vs_out_turns_reset forgets it.
 */
void vs_out_turns_disk(void);
void vs_out_turns_serve(void);
void vs_out_turns_stop(void);

/* The slots a turn wrote, [lo, hi): what a buffered file syncs and drops. */
struct vs_out_io {
	uint32_t lo, hi;
};

/*
 * Write pages @pg[i] at @base to slots @slot[i]: one pwritev per run of
 * consecutive slots, one iovec per run of adjacent pages, widening @io.
 * Without vs.lock. 0 or -errno.
 */
int vs_out_write_pages(const uint8_t *base, const uint64_t *pg, const uint32_t *slot,
		       uint64_t count, struct vs_out_io *io);
/* Then, for a buffered file: sync it and drop the cache of @io. *what names the step. */
int vs_out_sync(const struct vs_out_io *io, const char **what);
/*
 * Unlocked: run @fn(@arg), a write that widens @io, in turn @turn
 * (vs_out_turn_run), then vs_out_sync(@io). 0 or -errno, *what naming
 * the step.
 */
int vs_out_write_turn(uint64_t turn, int (*fn)(void *), void *arg, const struct vs_out_io *io,
		      const char **what);

/* A writer's buffer and bookkeeping for units staged in place. */
struct vs_out_unit;
struct vs_out_unit *vs_out_unit_new(void); /* NULL: out of memory */
void vs_out_unit_free(struct vs_out_unit *u);

/*
 * Out for the unit of @o at page @unit, staged in place, through @u, in a
 * turn of its own. vs.lock held on entry and exit, dropped for the reads,
 * the write and the punch.
 * @hot (the working-set pass): only the set's pages are written, at the
 * end of the file, and stay staged with a fresh slot. Otherwise every
 * staged page of the unit is written (zero pages are not) and the unit
 * freed (inplace.h); *moved counts the pages now in the file, *zero the
 * zero pages dropped. 0 or -errno, *what naming the step.
 */
int vs_out_inplace_unit(struct vs_obj *o, uint64_t unit, struct vs_out_unit *u, bool hot,
			uint64_t *moved, uint64_t *zero, const char **what);

#endif
