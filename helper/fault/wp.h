/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Write-protect tracking for a short freeze at enable.
 *
 * Guest pages are copied to staging while the VMM runs, write-protected
 * through its uffds (UFFDIO_WRITEPROTECT): a page written after it was
 * protected faults, and is marked dirty (phase TRACK). The freeze copies
 * only the dirty pages again. After the thaw, the guest pages are punched
 * one 2 MiB unit at a time (phase PUNCH); until its unit is punched, a
 * page lives in both places, and a write or an install in the unit keeps
 * the whole unit resident (it is "demoted") instead.
 *
 * Per object, two bitmaps (model/copies.h): copied and dirty. All
 * functions need vs.lock held.
 */
#ifndef VS_WP_H
#define VS_WP_H

#include <stdbool.h>
#include <stdint.h>

#include "../model/copies.h"
#include "../model/helper.h"

enum vs_wp_phase { VS_WP_OFF, VS_WP_TRACK, VS_WP_PUNCH };

#define VS_UNIT_PAGES 512u /* 2 MiB: guest pages are punched in whole THP units */

/* Can this enable use write protection? (every uffd has WP for shmem, not turned off) */
bool vs_wp_usable(void);
/* Give every object its bitmaps (grown with it), protect every mapping, enter TRACK. */
int vs_wp_begin(void);
/* (Un)protect pages [pg, pg+n) of object @obj in every mapping that shows them. */
int vs_wp_obj_range(int obj, uint64_t pg, uint64_t n, bool protect);
/* A mapping added while tracking: protect all of it. */
int vs_wp_map(struct vs_map *m);
/* Fault-thread hooks: a write-protect fault, and pages put into guest memory. */
int vs_wp_fault(int pidx, uint64_t page);
void vs_wp_installed(struct vs_obj *o, uint64_t pg, uint64_t n);
/* Unprotect everything, drop copies not punched, free the bitmaps, phase OFF. */
void vs_wp_end(void);
/* Tests only: vs_wp_begin drops vs.lock this long after each ioctl (as an EAGAIN does). */
extern unsigned vs_wp_test_drop_ms;

#endif
