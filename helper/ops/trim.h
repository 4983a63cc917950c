/* SPDX-License-Identifier: BSD-3-Clause */
/* The part of trim (op_trim.c) for pages staged in place (trim_inplace.c). */
#ifndef VS_TRIM_H
#define VS_TRIM_H

#include <stdint.h>

#include "inplace.h"

/*
 * Trim the unit of @o at page @unit, staged in place; @buf holds two
 * units of pages (the old slots, the guest's bytes). vs.lock held on
 * entry and exit, dropped for the reads. Zero and clean pages leave when
 * their whole unit can be freed (*zero, *clean count them; zero pages go
 * alone even so); a clean page of a unit that stays keeps a fresh slot.
 * 0 or -errno (recorded).
 */
int vs_trim_inplace_unit(struct vs_obj *o, uint64_t unit, uint8_t *buf, uint64_t *zero,
			 uint64_t *clean);

/*
 * The working set's old copies (trim_ws.c). A page of the set with old
 * slot @slot, looked at in page order: true when its copy stays where it
 * is (a run of the set at consecutive slots), false when the page is to be
 * written again, together with the rest of the set. Reset per object.
 */
bool vs_trim_ws_keep(const struct vs_obj *o, uint64_t pg, uint32_t slot);
void vs_trim_ws_reset(void);

#endif
