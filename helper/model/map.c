/* SPDX-License-Identifier: BSD-3-Clause */
/* Mappings: where each process shows a guest memfd, registered with its uffd. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../sys/log.h"
#include "../sys/uffd.h"
#include "helper.h"
#include "model_int.h"

struct vs_map *vs_map_find(int proc, uint64_t addr)
{
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];

		if (m->used && m->proc == proc && addr >= m->addr && addr - m->addr < m->len)
			return m;
	}
	return NULL;
}

int vs_map_register(struct vs_map *m)
{
	int r;

	if (m->registered)
		return 0;
	r = vs_uffd_register(vs.procs[m->proc].uffd, m->addr, m->len,
			     vs.procs[m->proc].wp && !vs.wp_off);
	if (!r)
		m->registered = true;
	model_changed();
	return r;
}

int vs_map_unregister(struct vs_map *m)
{
	int r;

	if (!m->registered)
		return 0;
	r = vs_uffd_unregister(vs.procs[m->proc].uffd, m->addr, m->len);
	m->registered = false;
	model_changed();
	return r;
}

static struct vs_map *map_alloc(void)
{
	for (int i = 0; i < VS_MAX_MAPS; i++)
		if (!vs.maps[i].used)
			return &vs.maps[i];
	return NULL;
}

/*
 * Can [addr, addr+len) of @proc show object @obj (-1: a memfd not
 * tracked yet) from byte @off? 0: yes, with *held true when a mapping of
 * the same pages at the same addresses holds it already (a REMAP event
 * moved it here, or the same region came twice): nothing to add.
 * -EEXIST: it overlaps another mapping, which needs a REGION_DEL first.
 * -EMFILE: the table is full.
 */
int vs_map_check(int proc, int obj, uint64_t addr, uint64_t len, uint64_t off, bool *held)
{
	bool room = false;

	*held = false;
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		const struct vs_map *m = &vs.maps[i];

		room |= !m->used;
		if (!m->used || m->proc != proc || addr + len <= m->addr || addr >= m->addr + m->len)
			continue;
		if (m->obj != obj || addr - m->addr != off - m->off || addr < m->addr ||
		    addr + len > m->addr + m->len)
			return -EEXIST;
		*held = true;
		return 0;
	}
	return room ? 0 : -EMFILE;
}

/*
 * Add a mapping (vs_map_check() says when it can). While swap is
 * enabled it is registered at once, so a region that appears later
 * (hotplug) is covered before the VMM uses it.
 */
int vs_map_add(int proc, int obj, uint64_t addr, uint64_t len, uint64_t off)
{
	struct vs_map *m;
	bool held;
	int r = vs_map_check(proc, obj, addr, len, off, &held);

	if (r || held)
		return r;
	m = map_alloc();
	*m = (struct vs_map){ .used = true, .proc = proc, .obj = obj,
			      .addr = addr, .len = len, .off = off };
	if (vs.registered && vs.procs[proc].uffd >= 0) {
		r = vs_map_register(m);
		if (!r)
			r = vs_hooks.registered ? vs_hooks.registered(m) : 0;
		if (r) {
			vs_map_unregister(m);
			m->used = false;
			model_changed();
			return r;
		}
	}
	model_changed();
	return 0;
}

/* [addr, addr+len) of @proc is no longer guest memory: trim, split or drop. */
void vs_map_remove_range(int proc, uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;

	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];
		uint64_t mend;

		if (!m->used || m->proc != proc)
			continue;
		mend = m->addr + m->len;
		if (end <= m->addr || addr >= mend)
			continue;
		if (m->registered) {
			uint64_t a = addr > m->addr ? addr : m->addr;
			uint64_t b = end < mend ? end : mend;

			/* Usually gone already; then the kernel has nothing to do. */
			vs_uffd_unregister(vs.procs[proc].uffd, a, b - a);
		}
		if (addr <= m->addr && end >= mend) {
			m->used = false;
		} else if (addr <= m->addr) {
			m->off += end - m->addr;
			m->len = mend - end;
			m->addr = end;
		} else if (end >= mend) {
			m->len = addr - m->addr;
		} else {
			struct vs_map *t = map_alloc();

			if (t) {
				*t = *m;
				t->off = m->off + (end - m->addr);
				t->addr = end;
				t->len = mend - end;
			} else {
				vs_err("mapping table full; dropping tail of %#lx", (unsigned long)m->addr);
			}
			m->len = addr - m->addr;
		}
	}
	model_changed();
}

/* mremap: [from, from+len) now lives at @to. */
void vs_map_move(int proc, uint64_t from, uint64_t to, uint64_t len)
{
	struct vs_map *m = vs_map_find(proc, from);

	if (!m)
		return;
	if (m->addr == from && m->len <= len) {
		m->addr = to;
		model_changed();
		return;
	}
	/* A partial move: forget it; the shim reports the new range. */
	vs_map_remove_range(proc, from, len);
}

/* A forked child inherits its parent's guest mappings at the same addresses. */
int vs_clone_maps(int from_proc, int to_proc)
{
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map m = vs.maps[i];
		int r;

		if (!m.used || m.proc != from_proc)
			continue;
		r = vs_map_add(to_proc, m.obj, m.addr, m.len, m.off);
		if (r == -EINVAL || r == -ENOMEM) {
			/* Not in the child (MADV_DONTFORK): nothing to cover. */
			vs_map_remove_range(to_proc, m.addr, m.len);
			continue;
		}
		if (r)
			return r;
	}
	return 0;
}

struct vs_map *vs_map_for_page(int obj, uint64_t pg)
{
	uint64_t off = pg * VS_PAGE_SIZE;

	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];
		struct vs_proc *p = &vs.procs[m->proc];

		if (m->used && m->registered && m->obj == obj && off >= m->off &&
		    off - m->off < m->len && p->used && !p->dead && p->uffd >= 0)
			return m;
	}
	return NULL;
}
