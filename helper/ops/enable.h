/* SPDX-License-Identifier: BSD-3-Clause */
/* The parts of enable (op_enable.c): copying to staging, and write-protect tracking. */
#ifndef VS_ENABLE_H
#define VS_ENABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../model/helper.h"

#define VS_UNIT_BYTES ((off_t)2 << 20) /* punch only whole THP units */

/*
 * Must the unit [unit_pg, unit_pg + 2 MiB) stay resident? Yes when the
 * tracked pages end at @end_pg inside it and the memfd holds data past
 * them there: a whole-unit punch would destroy data no mapping of ours
 * shows, and a partial one could split a huge page into subpages that
 * fault without uffd.
 */
bool vs_unit_keep(const struct vs_obj *o, uint64_t unit_pg, uint64_t end_pg);
/* Allocate and map staging for every data extent, before any freeze. */
void vs_prealloc_staging(void);
/*
 * Copy every data page to staging on two threads per object. Frozen:
 * also mark the pages staged and punch their units (*moved counts them).
 * Not frozen (write-protect tracking on): only set the copied bits.
 */
int vs_stage_all(bool frozen, uint64_t *moved);
/* pread [from, from+len) of the guest memfd into staging at the same offset. */
int vs_copy_to_staging(struct vs_obj *o, off_t from, off_t len);

/* enable_wp.c. vs.lock held, the VMM frozen: copy what was written, enter PUNCH. */
int vs_wp_settle_frozen(void);
/* After the thaw, no lock held: punch every unit still copied. */
int vs_wp_punch_all(uint64_t *moved);

#endif
