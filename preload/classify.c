/* SPDX-License-Identifier: BSD-3-Clause */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classify.h"
#include "config.h"
#include "log.h"
#include "memfd.h"

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
 * Guest RAM as QEMU and friends make it: a shared, writable,
 * non-executable mapping of a memfd, at least VMSWAP_MIN_SIZE long,
 * whose name matches VMSWAP_MATCH when that is set.
 */
static int memfd_region(const struct shim_map *m, struct shim_region *r)
{
	char name[256];
	struct stat st;
	int type = m->flags & MAP_TYPE;

	if (m->fd < 0 || (type != MAP_SHARED && type != MAP_SHARED_VALIDATE))
		return 0;
	if ((m->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE) ||
	    (m->prot & PROT_EXEC) || m->len < shim_cfg.min_size)
		return 0;
	if (fstat(m->fd, &st) || shim_memfd_name(m->fd, &st, name, sizeof(name)))
		return 0;
	if (shim_cfg.match[0] && fnmatch(shim_cfg.match, name, 0)) {
		shim_log(SHIM_LOG_DEBUG, "memfd \"%s\" does not match %s", name,
			 shim_cfg.match);
		return 0;
	}
	memset(r, 0, sizeof(*r));
	r->addr = (uintptr_t)m->addr;
	r->len = shim_page_round(m->len);
	r->offset = m->offset;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	snprintf(r->name, sizeof(r->name), "%.*s", (int)sizeof(r->name) - 1,
		 name);
	return r->len != 0;
}

int shim_classify(const struct shim_map *m, struct shim_region *r)
{
	return memfd_region(m, r);
}
