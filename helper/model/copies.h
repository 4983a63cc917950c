/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-object bitmaps of enable's write-protect tracking
 * (fault/wp.h): copied (staging holds the page's current bytes) and
 * dirty (written or put in since it was protected), o->wp_pages bits
 * each, NULL while no enable tracks. vs.lock held.
 */
#ifndef VS_COPIES_H
#define VS_COPIES_H

#include <stdbool.h>
#include <stdint.h>

#include "helper.h"

static inline bool vs_bit(const uint64_t *map, uint64_t i)
{
	return map && (map[i / 64] >> (i % 64) & 1);
}
static inline void vs_bit_set(uint64_t *map, uint64_t i)
{
	__atomic_fetch_or(&map[i / 64], 1ull << (i % 64), __ATOMIC_RELAXED);
}
static inline void vs_bit_clear(uint64_t *map, uint64_t i)
{
	__atomic_fetch_and(&map[i / 64], ~(1ull << (i % 64)), __ATOMIC_RELAXED);
}

/* Both bitmaps of @o for @npages pages (allocated or grown, new bits clear). 0 or -ENOMEM. */
int vs_copies_grow(struct vs_obj *o, uint64_t npages);
/*
 * Forget the copies of pages [first, end): clear their copied bits and
 * punch the staging pages of those still resident. True if one was copied.
 */
bool vs_copies_drop(struct vs_obj *o, uint64_t first, uint64_t end);
/* Drop every copy and free both bitmaps. */
void vs_copies_free(struct vs_obj *o);

#endif
