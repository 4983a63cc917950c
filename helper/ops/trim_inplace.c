/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trim for pages staged in place (inplace.h): zero pages and pages equal
 * to their old slot are found with a pread of the unit's staged pages,
 * and their unit freed when nothing else in it holds data. A clean page
 * in a unit that stays keeps a fresh slot: out does not write it again.
 */
#include <errno.h>
#include <string.h>

#include "../fault/fault_ws.h"
#include "../model/helper.h"
#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "enable.h"
#include "trim.h"

/*
 * Unlocked: the pages' bytes into @data, zero pages, and for the others
 * with a slot, a byte compare with it (read into @buf).
 */
static int classify(int fd, const uint64_t *pg, const uint32_t *e, int n, uint8_t *data,
		    uint8_t *buf, uint8_t *what)
{
	bool zero[VS_UNIT_PAGES];
	int r = vs_inplace_read(fd, pg, n, data, zero);

	if (r) {
		vs_set_error("trim: reading guest memory: %s", strerror(-r));
		return r;
	}
	for (int i = 0; i < n;) {
		int k = 1;

		if (zero[i]) {
			what[i++] = VS_U_ZERO;
			continue;
		}
		what[i] = VS_U_STAY;
		if (!vs_pt_has_slot(e[i])) {
			i++;
			continue;
		}
		/* A run of consecutive slots in one read. */
		while (i + k < n && !zero[i + k] && vs_pt_has_slot(e[i + k]) &&
		       vs_pt_slot(e[i + k]) == vs_pt_slot(e[i]) + (uint32_t)k)
			k++;
		r = vs_swapfile_read(vs.swap.fd, vs_pt_slot(e[i]), buf, (size_t)k);
		if (r) {
			vs_set_error("trim: reading swap file slot %u: %s", vs_pt_slot(e[i]),
				     strerror(-r));
			return r;
		}
		for (int j = 0; j < k; j++)
			what[i + j] = memcmp(buf + (size_t)j * VS_PAGE_SIZE,
					     data + (size_t)(i + j) * VS_PAGE_SIZE, VS_PAGE_SIZE)
					      ? VS_U_STAY
					      : VS_U_FILE;
		i += k;
	}
	return 0;
}

int vs_trim_inplace_unit(struct vs_obj *o, uint64_t unit, uint8_t *buf, uint64_t *zero,
			 uint64_t *clean)
{
	uint64_t end = unit + VS_UNIT_PAGES, pg[VS_UNIT_PAGES], z = 0;
	uint32_t e[VS_UNIT_PAGES];
	uint8_t how[VS_UNIT_PAGES], what[VS_UNIT_PAGES];
	int n = 0, r = 0, k;

	memset(how, VS_U_STAY, sizeof(how));
	if (end > o->npages)
		end = o->npages;
	for (uint64_t p = unit; p < end; p++) {
		uint32_t x = o->pt[p];

		if (vs_pt_state(x) != VS_P_INPLACE)
			continue;
		if (vs_fresh(o, p) && vs_pt_has_slot(x)) {
			how[p - unit] = VS_U_FILE;
			continue;
		}
		if (vs_pt_has_slot(x) && vs_ws_hot((int)(o - vs.objs), p) &&
		    !vs_trim_ws_keep(o, p, vs_pt_slot(x))) {
			/* Working set: written again by out, together with the rest of it. */
			vs_slots_free(&vs.swap.slots, vs_pt_slot(x));
			vs_page_set(o, p, x = vs_pt_make(VS_P_INPLACE, false, 0));
		}
		pg[n] = p;
		e[n++] = x;
	}
	if (n) {
		pthread_mutex_unlock(&vs.lock);
		r = classify(o->fd, pg, e, n, buf + VS_UNIT_BYTES, buf, what);
		pthread_mutex_lock(&vs.lock);
	}
	for (int i = 0; i < n && !r; i++) {
		if (o->pt[pg[i]] != e[i])
			continue; /* written, discarded or changed meanwhile */
		if (what[i] == VS_U_FILE && vs_fresh_put(o, pg[i], true) < 0)
			continue;
		if (what[i] == VS_U_STAY && vs_pt_has_slot(e[i])) {
			/* Changed since it was written: the old copy is garbage. */
			vs_slots_free(&vs.swap.slots, vs_pt_slot(e[i]));
			vs_page_set(o, pg[i], vs_pt_make(VS_P_INPLACE, false, 0));
		}
		how[pg[i] - unit] = what[i];
	}
	if (r)
		return r;
	k = vs_inplace_free_unit(o, unit, how, false, &z);
	if (k < 0) {
		vs_set_error("trim: freeing %s at %#llx: %s", o->name,
			     (unsigned long long)(unit * VS_PAGE_SIZE), strerror(-k));
		return k;
	}
	vs.stats.c.trimmed_zero += z;
	vs.stats.c.redundant += (uint64_t)k - z;
	*zero += z;
	*clean += (uint64_t)k - z;
	return 0;
}
