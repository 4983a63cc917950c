/* SPDX-License-Identifier: BSD-3-Clause */
/* Write-protect tracking for enable; see wp.h. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../sys/log.h"
#include "../sys/uffd.h"
#include "wp.h"

bool vs_wp_usable(void)
{
	bool any = false;

	if (vs.wp_off)
		return false;
	for (int i = 0; i < VS_MAX_PROCS; i++) {
		struct vs_proc *p = &vs.procs[i];

		if (!p->used || p->dead || p->uffd < 0)
			continue;
		if (!p->wp)
			return false;
		any = true;
	}
	return any;
}

unsigned vs_wp_test_drop_ms;
static bool beginning; /* vs_wp_begin is protecting */

/* One ioctl, retried while a non-cooperative event is pending: that drops the lock. */
static int wp_ioctl(int pidx, uint64_t addr, uint64_t len, bool protect)
{
	for (int tries = 0;; tries++) {
		struct vs_proc *p = &vs.procs[pidx];
		int r = vs_uffd_writeprotect(p->uffd, addr, len, protect);

		if (!r && beginning && vs_wp_test_drop_ms) {
			/* Tests: let the fault thread in, as a pending event does. */
			pthread_mutex_unlock(&vs.lock);
			usleep(vs_wp_test_drop_ms * 1000);
			pthread_mutex_lock(&vs.lock);
		}
		if (r != -EAGAIN || tries > 10000)
			return r == -ESRCH || r == -ENOENT ? 0 : r; /* gone: nothing to protect */
		/* The fault thread must read the pending event first. */
		pthread_mutex_unlock(&vs.lock);
		usleep(50);
		pthread_mutex_lock(&vs.lock);
		if (!p->used || p->dead || p->uffd < 0)
			return 0;
	}
}

int vs_wp_obj_range(int obj, uint64_t pg, uint64_t n, bool protect)
{
	uint64_t from = pg * VS_PAGE_SIZE, to = (pg + n) * VS_PAGE_SIZE;

	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];
		struct vs_proc *p = &vs.procs[m->proc];
		uint64_t a, b;
		int r;

		if (!m->used || !m->registered || m->obj != obj || !p->used || p->dead ||
		    p->uffd < 0 || !p->wp)
			continue;
		a = from > m->off ? from : m->off;
		b = to < m->off + m->len ? to : m->off + m->len;
		if (a >= b)
			continue;
		r = wp_ioctl(m->proc, m->addr + (a - m->off), b - a, protect);
		if (r)
			return r;
	}
	return 0;
}

int vs_wp_map(struct vs_map *m)
{
	/* Writes through a mapping that cannot be protected would not be seen. */
	if (vs.stats.c.inplace && m->registered && !vs.procs[m->proc].wp)
		return -EOPNOTSUPP;
	if ((vs.wp_phase == VS_WP_OFF && !vs.stats.c.inplace) || !m->registered ||
	    !vs.procs[m->proc].wp)
		return 0;
	return wp_ioctl(m->proc, m->addr, m->len, true);
}

/*
 * Tracking starts before the first page is protected: protecting drops
 * vs.lock while a uffd event is pending (wp_ioctl), and a write fault on
 * a page protected by then must be counted as a write, not just let go.
 */
int vs_wp_begin(void)
{
	int r = 0;

	for (int i = 0; i < VS_MAX_OBJS && !r; i++)
		if (vs.objs[i].used)
			r = vs_copies_grow(&vs.objs[i], vs.objs[i].npages);
	if (r) {
		vs_set_error("write-protect tracking: %s", strerror(-r));
	} else {
		vs.wp_phase = VS_WP_TRACK;
		vs_hooks.registered = vs_wp_map; /* a hotplug is covered at once */
	}
	for (int i = 0; i < VS_MAX_OBJS && !r; i++) {
		struct vs_obj *o = &vs.objs[i];

		if (!o->used)
			continue;
		/* A hotplug during a lock drop grows the object. */
		r = vs_copies_grow(o, o->npages);
		beginning = true;
		if (!r)
			r = vs_wp_obj_range(i, 0, o->npages, true);
		beginning = false;
		if (r)
			vs_set_error("write-protecting %s: %s", o->name, strerror(-r));
	}
	if (r)
		vs_wp_end();
	return r;
}

void vs_wp_installed(struct vs_obj *o, uint64_t pg, uint64_t n)
{
	if (!o->copied)
		return;
	if (vs.wp_phase == VS_WP_TRACK) {
		for (uint64_t i = pg; i < pg + n && i < o->wp_pages; i++) {
			if (!vs_bit(o->dirty, i)) {
				vs_bit_set(o->dirty, i);
				vs.wp_dirtied++;
			}
		}
	} else if (vs.wp_phase == VS_WP_PUNCH) {
		/* Punching a unit would take these pages too, copied or not: once per unit. */
		for (uint64_t u = pg / VS_UNIT_PAGES * VS_UNIT_PAGES; u < pg + n && u < o->wp_pages;
		     u += VS_UNIT_PAGES)
			if (vs_copies_drop(o, u, u + VS_UNIT_PAGES))
				vs.stats.en.kept_units++;
	}
}

int vs_wp_fault(int pidx, uint64_t page)
{
	struct vs_map *m = vs_map_find(pidx, page);

	if (m) {
		struct vs_obj *o = &vs.objs[m->obj];
		uint64_t pg = (page - m->addr + m->off) / VS_PAGE_SIZE;
		uint32_t e = pg < o->npages ? o->pt[pg] : 0;

		/* Before the write goes on: it must not be lost with a punch. */
		if (vs.wp_phase != VS_WP_OFF)
			vs_wp_installed(o, pg, 1);
		if (vs_pt_state(e) == VS_P_INPLACE) {
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e),
						      vs_pt_slot(e)));
			vs.stats.c.unstaged++;
		}
	}
	/* Unprotect this process's page and wake the writer. */
	return vs_uffd_writeprotect(vs.procs[pidx].uffd, page, VS_PAGE_SIZE, false);
}

void vs_wp_end(void)
{
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];

		if (!o->used)
			continue;
		if (vs_wp_obj_range(i, 0, o->npages, false))
			vs_warn("could not unprotect all of %s (pages are left to fault once)",
				o->name);
		vs_copies_free(o);
	}
	vs.wp_phase = VS_WP_OFF;
}
