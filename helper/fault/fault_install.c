/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Putting a finished swap-file read in (fault_read.h): under vs.lock,
 * only the pages that still say what they said when the read was
 * planned. The faulting page goes first; anything else than its clean
 * install wakes its thread, which faults again and is resolved afresh.
 */
#include <errno.h>

#include "../model/helper.h"
#include "../sys/uffd.h"
#include "fault_int.h"
#include "fault_ws.h"
#include "wp.h"

/* Working-set pages that are still only in the file go in through any mapping of them. */
static void install_prefetch(const struct vs_read *j, const uint8_t *buf)
{
	struct vs_obj *o = &vs.objs[j->obj];
	uint64_t in = 0;

	if (!o->used || vs.swap.slots.epoch != j->epoch)
		return;
	struct vs_map *m = NULL;

	for (uint32_t i = 0; i < j->run.n; i++) {
		uint64_t pg = j->pgs[i], done = 0;
		uint32_t e;

		if (pg == UINT64_MAX || pg >= o->npages)
			continue;
		e = o->pt[pg];
		if (vs_pt_state(e) != VS_P_FILE || vs_pt_slot(e) != j->run.slot + i ||
		    vs_punching(j->obj, pg))
			continue;
		/* Pages of a run mostly share a mapping: look it up only when it ends. */
		if (!m || pg * VS_PAGE_SIZE < m->off || pg * VS_PAGE_SIZE - m->off >= m->len ||
		    !m->used || !m->registered || m->obj != j->obj)
			m = vs_map_for_page(j->obj, pg);
		if (!m)
			continue;
		if (vs_uffd_copy(vs.procs[m->proc].uffd, m->addr + pg * VS_PAGE_SIZE - m->off,
				 buf + (size_t)i * VS_PAGE_SIZE, VS_PAGE_SIZE, &done) || !done)
			continue;
		vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, true, vs_pt_slot(e)));
		vs.stats.c.copied_from_file++;
		if (vs.wp_phase != VS_WP_OFF)
			vs_wp_installed(o, pg, 1);
		in++;
	}
	if (in) {
		vs.stats.install_gen++;
		vs_ws_count(in, 0);
	}
}

/* Does page @i of the job's run still need exactly the bytes that were read? */
static bool still_wanted(const struct vs_read *j, const struct vs_obj *o, uint32_t i)
{
	uint32_t e = o->pt[j->run.pg + i];

	return vs_pt_state(e) == VS_P_FILE && vs_pt_slot(e) == j->run.slot + i &&
	       !vs_punching(j->obj, j->run.pg + i);
}

/* The process, mapping and slots are as they were when the read began. */
static bool unchanged(const struct vs_read *j)
{
	const struct vs_proc *p = &vs.procs[j->pidx];
	const struct vs_map *m;

	if (!p->used || p->gen != j->gen || p->uffd < 0 || !vs.objs[j->obj].used ||
	    vs.swap.slots.epoch != j->epoch)
		return false;
	m = vs_map_find(j->pidx, j->run.addr);
	return m && m->obj == j->obj &&
	       (j->run.addr - m->addr + m->off) / VS_PAGE_SIZE == j->run.pg &&
	       j->run.addr + (uint64_t)j->run.n * VS_PAGE_SIZE <= m->addr + m->len;
}

/* Install pages [from, to) of the run that are still wanted. Returns pages put in. */
static uint64_t install_range(const struct vs_read *j, struct vs_obj *o, const uint8_t *buf,
			      uint32_t from, uint32_t to, int *err)
{
	int uffd = vs.procs[j->pidx].uffd;
	uint64_t in = 0;

	for (uint32_t i = from; i < to;) {
		uint64_t done = 0;
		uint32_t k = i;
		int r;

		while (k < to && still_wanted(j, o, k))
			k++;
		if (k == i) {
			i++;
			continue;
		}
		r = vs_uffd_copy(uffd, j->run.addr + (uint64_t)i * VS_PAGE_SIZE,
				 buf + (size_t)i * VS_PAGE_SIZE, (uint64_t)(k - i) * VS_PAGE_SIZE, &done);
		for (uint64_t d = 0; d < done / VS_PAGE_SIZE; d++) {
			uint64_t pg = j->run.pg + i + d;

			/* Keep the slot: if the page comes back unchanged, trim reuses it. */
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, true, vs_pt_slot(o->pt[pg])));
			vs.stats.c.copied_from_file++;
		}
		if (done && vs.wp_phase != VS_WP_OFF)
			vs_wp_installed(o, j->run.pg + i, done / VS_PAGE_SIZE);
		in += done / VS_PAGE_SIZE;
		if (r) {
			*err = r;
			return in;
		}
		i = k;
	}
	return in;
}

/*
 * Put the read pages in, the faulting one first. Anything else than a
 * clean install of the faulting page wakes its thread, which faults
 * again and is resolved afresh. vs.lock held.
 */
void vs_read_install(const struct vs_read *j, const uint8_t *buf, int rd)
{
	struct vs_proc *p = &vs.procs[j->pidx];
	struct vs_obj *o = &vs.objs[j->obj];
	uint32_t f = j->run.f;
	int err = 0;

	if (j->prefetch) {
		if (!rd)
			install_prefetch(j, buf);
		return;
	}
	if (!p->used || p->gen != j->gen || p->uffd < 0)
		return; /* gone: nobody waits */
	if (j->ahead) {
		/* Nobody waits: put in what still holds, drop the rest. */
		if (!rd && unchanged(j) && install_range(j, o, buf, 0, j->run.n, &err)) {
			vs.stats.install_gen++;
		}
		return;
	}
	if (!unchanged(j) || !still_wanted(j, o, f)) {
		vs_uffd_wake(p->uffd, j->page, VS_PAGE_SIZE);
		return;
	}
	if (rd) {
		vs_fault_read_failed(j->run.slot + f, rd);
		vs_fault_retry_later(j->pidx); /* no wake: it gets no wrong bytes */
		return;
	}
	vs_fault_read_worked();
	if (!install_range(j, o, buf, f, f + 1, &err)) {
		if (err == -ESRCH)
			p->dead = true;
		else
			vs_uffd_wake(p->uffd, j->page, VS_PAGE_SIZE);
		return;
	}
	vs_fault_record_latency(vs_now_ns() - j->t0);
	/* Read-ahead: best effort, the faulting thread runs on already. */
	err = 0;
	install_range(j, o, buf, f + 1, j->run.n, &err);
	err = 0;
	install_range(j, o, buf, 0, f, &err);
	vs.stats.install_gen++;
}
