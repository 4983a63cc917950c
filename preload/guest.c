/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "guest.h"
#include "helper_conn.h"
#include "log.h"
#include "real.h"
#include "regions.h"

static void send_del(const struct shim_range *p)
{
	struct vmswap_msg_region_del m;
	struct vmswap_msg_reply rep;

	memset(&m, 0, sizeof(m));
	vmswap_msg_init(&m.hdr, VMSWAP_MSG_REGION_DEL, sizeof(m), 0);
	m.addr = p->addr;
	m.len = p->len;
	if (shim_conn_request(&m.hdr, -1, &rep))
		return;
	if (rep.result)
		shim_log(SHIM_LOG_WARN, "helper failed to drop region %#lx+%#zx: "
			 "%s (%s)", (unsigned long)p->addr, p->len, rep.message,
			 strerror(-rep.result));
	else
		shim_log(SHIM_LOG_DEBUG, "region %#lx+%#zx dropped",
			 (unsigned long)p->addr, p->len);
}

/* Remove [addr, addr+len) from the table and tell the helper. Lock held. */
static void drop_range(uintptr_t addr, size_t len)
{
	struct shim_range pieces[SHIM_REGIONS_MAX];
	size_t n = shim_regions_carve(addr, len, pieces);

	for (size_t i = 0; i < n; i++)
		if (pieces[i].sent && shim_conn_usable())
			send_del(&pieces[i]);
}

static void send_add(const struct shim_region *r, int fd)
{
	struct vmswap_msg_region_add m;
	struct vmswap_msg_reply rep;

	memset(&m, 0, sizeof(m));
	vmswap_msg_init(&m.hdr, VMSWAP_MSG_REGION_ADD, sizeof(m), 0);
	m.addr = r->addr;
	m.len = r->len;
	m.offset = r->offset;
	memcpy(m.name, r->name, sizeof(m.name));
	m.name[sizeof(m.name) - 1] = '\0';
	if (shim_conn_request(&m.hdr, fd, &rep))
		return;
	if (rep.result) {
		shim_log(SHIM_LOG_WARN, "helper declined guest region %#lx+%#zx "
			 "(memfd \"%s\"): %s (%s); it runs unmanaged",
			 (unsigned long)r->addr, r->len, r->name, rep.message,
			 strerror(-rep.result));
		return;
	}
	shim_regions_set_sent(r->addr, true);
	shim_log(SHIM_LOG_INFO, "guest region %#lx+%#zx (memfd \"%s\" offset "
		 "%#llx) managed", (unsigned long)r->addr, r->len, r->name,
		 (unsigned long long)r->offset);
}

void shim_guest_mapped(const struct shim_map *m)
{
	static bool full_logged;
	struct shim_region r;

	if (shim_conn_held() || !shim_classify(m, &r))
		return;
	shim_conn_lock();
	/* Entries left by an unmap we did not see (mremap, raw syscall). */
	drop_range(r.addr, r.len);
	if (shim_regions_add(&r)) {
		if (!full_logged)
			shim_log(SHIM_LOG_WARN, "more than %d guest regions; the "
				 "rest run unmanaged", SHIM_REGIONS_MAX);
		full_logged = true;
	} else if (shim_conn_ready()) {
		send_add(&r, m->fd);
	}
	shim_conn_unlock();
}

void shim_guest_replacing(void *addr, size_t len)
{
	size_t plen = shim_page_round(len);

	/* An unaligned or empty request fails in the kernel, replacing nothing. */
	if (shim_conn_held() || !plen ||
	    shim_page_round((uintptr_t)addr) != (uintptr_t)addr)
		return;
	shim_conn_lock();
	drop_range((uintptr_t)addr, plen);
	shim_conn_unlock();
}

int shim_guest_munmap(void *addr, size_t len)
{
	int r, err;

	if (shim_conn_held())
		return shim_real_munmap(addr, len);
	shim_conn_lock();
	/* Under the lock, so no new region can appear in the range meanwhile. */
	r = shim_real_munmap(addr, len);
	err = errno;
	if (!r)
		drop_range((uintptr_t)addr, shim_page_round(len));
	shim_conn_unlock();
	errno = err;
	return r;
}

void shim_guest_punched(int fd, uint64_t off, uint64_t len)
{
	struct vmswap_msg_discard m;
	struct vmswap_msg_reply rep;
	struct stat st;

	if (shim_conn_held() || !len || fstat(fd, &st) ||
	    !shim_regions_backed_by(st.st_dev, st.st_ino))
		return;
	memset(&m, 0, sizeof(m));
	vmswap_msg_init(&m.hdr, VMSWAP_MSG_DISCARD, sizeof(m), 0);
	m.offset = off;
	m.len = len;
	shim_conn_lock();
	if (shim_conn_usable() && !shim_conn_request(&m.hdr, fd, &rep) &&
	    rep.result)
		shim_log(SHIM_LOG_WARN, "helper failed to discard memfd range "
			 "%#llx+%#llx: %s (%s)", (unsigned long long)off,
			 (unsigned long long)len, rep.message,
			 strerror(-rep.result));
	shim_conn_unlock();
}
