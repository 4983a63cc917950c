/* SPDX-License-Identifier: BSD-3-Clause */
/* enable's copied/dirty bitmaps; see copies.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "copies.h"

static int grow_map(uint64_t **map, uint64_t old_pages, uint64_t npages)
{
	size_t old_words = (old_pages + 63) / 64, words = (npages + 63) / 64;
	uint64_t *m;

	if (*map && words <= old_words)
		return 0;
	m = realloc(*map, words * sizeof(*m));
	if (!m)
		return -ENOMEM;
	memset(m + (*map ? old_words : 0), 0, (words - (*map ? old_words : 0)) * sizeof(*m));
	*map = m;
	return 0;
}

int vs_copies_grow(struct vs_obj *o, uint64_t npages)
{
	uint64_t had = o->copied ? o->wp_pages : 0;
	int r = grow_map(&o->copied, had, npages);

	if (!r)
		r = grow_map(&o->dirty, had, npages);
	if (!r)
		o->wp_pages = npages;
	return r;
}

bool vs_copies_drop(struct vs_obj *o, uint64_t first, uint64_t end)
{
	uint64_t run = 0;
	bool any = false;

	if (!o->copied)
		return false;
	if (end > o->wp_pages)
		end = o->wp_pages;
	for (uint64_t pg = first; pg < end; pg++) {
		if (vs_bit(o->copied, pg)) {
			vs_bit_clear(o->copied, pg);
			any = true;
			/* Staging holds nothing else for a resident page. */
			if (vs_pt_state(o->pt[pg]) == VS_P_RESIDENT) {
				run++;
				continue;
			}
		}
		vs_stg_punch(o, pg - run, run);
		run = 0;
	}
	vs_stg_punch(o, end - run, run);
	return any;
}

void vs_copies_free(struct vs_obj *o)
{
	vs_copies_drop(o, 0, o->wp_pages);
	free(o->copied);
	free(o->dirty);
	o->copied = o->dirty = NULL;
	o->wp_pages = 0;
}
