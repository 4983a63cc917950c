/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Read-ahead for faults from the swap file. Each process has a few
 * streams, as the kernel keeps read-ahead state per open file: several
 * vCPUs sweeping several areas each get their own widening window, and a
 * sweep downwards reads below the fault. A fault that continues no stream
 * replaces the least recently used one and reads just its page.
 */
#ifndef VS_FAULT_STREAM_H
#define VS_FAULT_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "../model/helper.h"

#define VS_AROUND_MAX 256 /* pages: 1 MiB, the most one fault reads */

/* One read: @n pages from @addr (object page @pg, file slot @slot) on. */
struct vs_run {
	uint64_t addr;
	uint64_t pg;
	uint32_t slot;
	uint32_t n;
	uint32_t f; /* the faulting page's index in the run */
};

/*
 * Plan the read for a fault at @page (object page @pg, in state FILE) of
 * process @pidx through mapping @m: consecutive pages that are also only
 * in the file, at consecutive slots. vs.lock held; fault thread only.
 */
void vs_stream_plan(int pidx, const struct vs_map *m, const struct vs_obj *o, uint64_t page,
		    uint64_t pg, struct vs_run *run);
/*
 * For a stream going up with a wide window, the run after @run, read
 * ahead of the faults so that the next one does not come: true and
 * @ahead filled (n pages from the page after @run), or false. The
 * stream then counts it as read. vs.lock held; fault thread only.
 */
bool vs_stream_ahead(int pidx, const struct vs_map *m, const struct vs_obj *o,
		     const struct vs_run *run, struct vs_run *ahead);

#endif
