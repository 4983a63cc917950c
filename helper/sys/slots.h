/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Swap-file slot allocator. Slots are handed out lowest-free-first, so a
 * file written in order stays dense, and freed slots are refilled before
 * the file grows (a sparse swap file once caused a discard storm).
 */
#ifndef VS_SLOTS_H
#define VS_SLOTS_H

#include <stdint.h>

#define VS_SLOT_MAX ((1u << 29) - 1) /* fits the page-table slot field */

struct vs_slots {
	uint64_t *used;    /* bitmap, 1 = in use */
	uint32_t words;    /* bitmap length in 64-bit words */
	uint32_t lowest;   /* no free slot below this */
	uint32_t high;     /* one past the highest slot ever in use (file size) */
	uint32_t in_use;
	uint64_t epoch;    /* bumps when a slot used before is handed out again (or all are) */
};

void vs_slots_init(struct vs_slots *s);
void vs_slots_destroy(struct vs_slots *s);
/* Take the lowest free slot. Returns 0 and *slot, or -ENOMEM/-ENOSPC. */
int vs_slots_alloc(struct vs_slots *s, uint32_t *slot);
/* Take the slot past the highest ever used: slots taken so follow each other. */
int vs_slots_alloc_tail(struct vs_slots *s, uint32_t *slot);
/* Mark @slot in use (a restarted helper rebuilding the map). -EEXIST if it was. */
int vs_slots_take(struct vs_slots *s, uint32_t slot);
/* Give back a slot in use. -EINVAL if it was not in use. */
int vs_slots_free(struct vs_slots *s, uint32_t slot);
int vs_slots_is_used(const struct vs_slots *s, uint32_t slot);
/* Forget every slot (after the swap file is truncated). */
void vs_slots_reset(struct vs_slots *s);
/* One past the highest slot in use now: the file may be cut there. */
uint32_t vs_slots_end(const struct vs_slots *s);

#endif
