/* SPDX-License-Identifier: BSD-3-Clause */
/* trim's rule for the working set's old copies (fault_ws.h); see trim.h. */
#include "../fault/fault_ws.h"
#include "trim.h"

#define IN_PLACE_MIN 32 /* pages of the working set at consecutive slots worth keeping there */

/* The old slot of the last working-set page trim looked at (UINT64_MAX: none). */
static uint64_t hot_prev_slot = UINT64_MAX;
static bool hot_run_kept; /* the run it belongs to stays where it is */

void vs_trim_ws_reset(void)
{
	hot_prev_slot = UINT64_MAX;
}

/*
 * Is a working-set page at old slot @slot already where it would be
 * written: in a run of at least IN_PLACE_MIN pages of the set at
 * consecutive slots (a set faulted back in order, or written together at
 * the last out)? Then its clean copy is kept, and only the scattered
 * pages of the set are written again, together.
 */
static bool hot_in_place(const struct vs_obj *o, uint64_t pg, uint32_t slot)
{
	int obj = (int)(o - vs.objs);
	uint32_t len = 1;

	if (hot_prev_slot != UINT64_MAX && slot == hot_prev_slot + 1)
		return hot_run_kept; /* the run goes on: same answer */
	for (uint64_t q = pg + 1; q < o->npages && q < pg + 64 * IN_PLACE_MIN &&
	     len < IN_PLACE_MIN; q++) {
		uint32_t e = o->pt[q];

		if (!vs_ws_hot(obj, q))
			continue;
		if (!vs_pt_has_slot(e) || vs_pt_slot(e) != slot + len)
			break;
		len++;
	}
	hot_run_kept = len >= IN_PLACE_MIN;
	return hot_run_kept;
}

bool vs_trim_ws_keep(const struct vs_obj *o, uint64_t pg, uint32_t slot)
{
	bool keep = hot_in_place(o, pg, slot);

	hot_prev_slot = slot;
	return keep;
}
