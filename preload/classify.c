/* SPDX-License-Identifier: BSD-3-Clause */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anon.h"
#include "classify.h"
#include "config.h"
#include "log.h"
#include "memfd.h"
#include "regions.h"

size_t shim_page_round(size_t len)
{
	static size_t page;
	size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);

	if (!p) {
		p = (size_t)sysconf(_SC_PAGESIZE);
		__atomic_store_n(&page, p, __ATOMIC_RELAXED);
	}
	return len + p - 1 < len ? 0 : (len + p - 1) & ~(p - 1);
}

/*
 * Guest RAM as crosvm and QEMU's memory-backend-memfd make it: a shared,
 * writable, non-executable mapping of a memfd, at least VMSWAP_MIN_SIZE
 * long, whose name matches VMSWAP_MATCH when that is set; and any shared
 * mapping of a memfd already guest memory.
 */
static int memfd_region(const struct shim_map *m, struct shim_region *r)
{
	char name[256];
	struct stat st;
	int type = m->flags & MAP_TYPE;
	bool shared = type == MAP_SHARED || type == MAP_SHARED_VALIDATE, view;

	if (m->fd < 0 || fstat(m->fd, &st))
		return SHIM_GUEST_NONE;
	/*
	 * Another view of memory the helper holds: reading a page of it that
	 * is swapped out would make the kernel put a zero page in its place.
	 * A shared one of any size or protection is served like the rest; a
	 * private or executable one cannot be, and is refused.
	 */
	view = shim_regions_backed_by(st.st_dev, st.st_ino);
	if (view && (!shared || (m->prot & PROT_EXEC)))
		return SHIM_GUEST_REFUSE;
	if (!shared)
		return SHIM_GUEST_NONE;
	if (!view && ((m->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE) ||
		      (m->prot & PROT_EXEC) || m->len < shim_cfg.min_size))
		return SHIM_GUEST_NONE;
	if (shim_memfd_name(m->fd, &st, name, sizeof(name)))
		return view ? SHIM_GUEST_REFUSE : SHIM_GUEST_NONE;
	if (!view && shim_cfg.match[0] && fnmatch(shim_cfg.match, name, 0)) {
		shim_log(SHIM_LOG_DEBUG, "memfd \"%s\" does not match %s", name,
			 shim_cfg.match);
		return SHIM_GUEST_NONE;
	}
	memset(r, 0, sizeof(*r));
	r->len = shim_page_round(m->len);
	r->offset = m->offset;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->kind = SHIM_KIND_MEMFD;
	r->memfd = -1;
	r->prot = m->prot;
	snprintf(r->name, sizeof(r->name), "%.*s", (int)sizeof(r->name) - 1,
		 name);
	return r->len ? SHIM_GUEST_MEMFD : SHIM_GUEST_NONE;
}

/*
 * Guest RAM of Firecracker (MAP_NORESERVE) and of QEMU without a memory
 * backend (MAP_FIXED inside a PROT_NONE reservation): private, anonymous,
 * writable, not executable, at least VMSWAP_MIN_SIZE. glibc malloc's
 * large chunks use neither flag, and its arenas start PROT_NONE; stacks
 * and huge pages are never guest RAM we can take.
 */
static int anon_region(const struct shim_map *m, struct shim_region *r)
{
	if (!shim_cfg.anon || !(m->flags & MAP_ANONYMOUS) ||
	    (m->flags & MAP_TYPE) != MAP_PRIVATE ||
	    !(m->flags & (MAP_FIXED | MAP_NORESERVE)) ||
	    (m->flags & (MAP_HUGETLB | MAP_STACK | MAP_GROWSDOWN)))
		return SHIM_GUEST_NONE;
	if ((m->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE) ||
	    (m->prot & PROT_EXEC) || m->len < shim_cfg.min_size)
		return SHIM_GUEST_NONE;
	memset(r, 0, sizeof(*r));
	r->len = shim_page_round(m->len);
	r->kind = SHIM_KIND_ANON;
	r->memfd = -1;
	r->prot = m->prot;
	r->mflags = m->flags & MAP_NORESERVE;
	snprintf(r->name, sizeof(r->name), "%s", SHIM_ANON_NAME);
	return r->len ? SHIM_GUEST_ANON : SHIM_GUEST_NONE;
}

int shim_classify(const struct shim_map *m, struct shim_region *r)
{
	if (m->flags & MAP_ANONYMOUS)
		return anon_region(m, r);
	return memfd_region(m, r);
}
