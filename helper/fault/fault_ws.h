/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The working set: the pages the guest faulted back from the swap file
 * in the first seconds after a wake. The next out writes them first and
 * together at the end of the file (trim does not keep their old, scattered
 * copies), and at the next wake they are streamed back in with large
 * reads behind the faults (VMSWAP_PREFETCH=working-set, the default), so
 * a VM that wakes to the same work finds its pages already there.
 *
 * Everything here needs vs.lock held.
 */
#ifndef VS_FAULT_WS_H
#define VS_FAULT_WS_H

#include <stdbool.h>
#include <stdint.h>

#include "../model/helper.h"

#define VS_WS_RECORD_MS 30000 /* how long after a wake faults are recorded */
#define VS_WS_RUN_MAX 256     /* pages one prefetch read takes */

/* VMSWAP_PREFETCH: read at setup. */
void vs_ws_init(void);
bool vs_ws_enabled(void);
/* out finished: what the last wake recorded is the set to prefetch next. */
void vs_ws_out_done(void);
/* A fault from the file at page @pg of object @obj: a wake starts recording. */
void vs_ws_fault(int obj, uint64_t pg, uint32_t n);
/* Is the page in the set being recorded (out writes it first)? */
bool vs_ws_hot(int obj, uint64_t pg);
/* A prefetch runs (the fault thread should ask for its next read). */
bool vs_ws_prefetching(void);
/*
 * The next prefetch read: pages of the set still only in the file, whose
 * slots follow each other from *slot; pg[i] is the page of slot + i, or
 * UINT64_MAX for a slot of no such page. Returns how many slots, 0 when
 * the prefetch is done.
 */
uint32_t vs_ws_next(int *obj, uint32_t *slot, uint64_t pg[VS_WS_RUN_MAX]);
/* Counted in status. */
void vs_ws_count(uint64_t prefetched, uint64_t hits);
void vs_ws_stats(uint64_t *prefetched, uint64_t *hits, uint64_t *recorded);

#endif
