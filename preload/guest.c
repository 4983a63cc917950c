/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anon.h"
#include "closeoff.h"
#include "guest.h"
#include "helper_conn.h"
#include "log.h"
#include "real.h"
#include "regions.h"

/* Parts removed by one drop; used under the connection lock only. */
static struct shim_range pieces[SHIM_REGIONS_MAX];

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

/* DISCARD [off, off+len) of the memfd @fd; connection lock held. */
static void send_discard(int fd, uint64_t off, uint64_t len)
{
	struct vmswap_msg_discard m;
	struct vmswap_msg_reply rep;

	memset(&m, 0, sizeof(m));
	vmswap_msg_init(&m.hdr, VMSWAP_MSG_DISCARD, sizeof(m), 0);
	m.offset = off;
	m.len = len;
	if (shim_conn_usable() && !shim_conn_request(&m.hdr, fd, &rep) &&
	    rep.result)
		shim_log(SHIM_LOG_WARN, "helper failed to discard memfd range "
			 "%#llx+%#llx: %s (%s)", (unsigned long long)off,
			 (unsigned long long)len, rep.message,
			 strerror(-rep.result));
}

/* Our fd no longer identifies our memfd: never punch or close it then. */
static void fd_lost(int memfd)
{
	static atomic_bool logged;

	if (!atomic_exchange(&logged, true))
		shim_log(SHIM_LOG_WARN, "the shim's fd %d of anonymous guest "
			 "memory was closed behind its back; that memory is no "
			 "longer freed on unmap", memfd);
}

int shim_guest_free(const struct shim_range *p)
{
	int r;

	if (!shim_anon_same(p->memfd, p->dev, p->ino)) {
		fd_lost(p->memfd);
		return -EBADF;
	}
	r = shim_anon_punch(p->memfd, p->offset, p->len);
	if (r) {
		shim_log(SHIM_LOG_WARN, "cannot free anonymous guest memory "
			 "%#lx+%#zx: %s", (unsigned long)p->addr, p->len,
			 strerror(-r));
		return r;
	}
	/* Staged or swapped copies of these pages are garbage now. */
	if (p->sent)
		send_discard(p->memfd, p->offset, p->len);
	return 0;
}

/* Close our memfd of @p once no region uses it. */
static void release(const struct shim_range *p)
{
	if (p->memfd >= 0 && !shim_regions_fd_used(p->memfd) &&
	    shim_anon_same(p->memfd, p->dev, p->ino))
		close(p->memfd);
}

void shim_guest_drop(uintptr_t addr, size_t len, bool freed)
{
	size_t n = shim_regions_carve(addr, len, pieces);

	/*
	 * Every DEL first: until the helper has them, an enable would fail
	 * on a range that is gone. Punching can take a while.
	 */
	for (size_t i = 0; i < n; i++)
		if (pieces[i].sent && shim_conn_usable())
			send_del(&pieces[i]);
	/* Unmapped anonymous memory is gone: give its pages back. */
	for (size_t i = 0; i < n && freed; i++)
		if (pieces[i].kind == SHIM_KIND_ANON)
			shim_guest_free(&pieces[i]);
	for (size_t i = 0; i < n; i++)
		release(&pieces[i]);
}

/* 0: the helper took it; else -errno (its answer, or why it was not asked). */
static int send_add(const struct shim_region *r, int fd)
{
	struct vmswap_msg_region_add m;
	struct vmswap_msg_reply rep;
	int err;

	memset(&m, 0, sizeof(m));
	vmswap_msg_init(&m.hdr, VMSWAP_MSG_REGION_ADD, sizeof(m), 0);
	m.addr = r->addr;
	m.len = r->len;
	m.offset = r->offset;
	memcpy(m.name, r->name, sizeof(m.name));
	m.name[sizeof(m.name) - 1] = '\0';
	err = shim_conn_request(&m.hdr, fd, &rep);
	if (err)
		return err;
	if (rep.result) {
		shim_log(SHIM_LOG_WARN, "helper declined guest region %#lx+%#zx "
			 "(memfd \"%s\"): %s (%s); it runs unmanaged",
			 (unsigned long)r->addr, r->len, r->name, rep.message,
			 strerror(-rep.result));
		return rep.result < 0 ? rep.result : -EIO;
	}
	shim_regions_set_sent(r->addr, true);
	shim_log(SHIM_LOG_INFO, "guest region %#lx+%#zx (memfd \"%s\" offset "
		 "%#llx) managed", (unsigned long)r->addr, r->len, r->name,
		 (unsigned long long)r->offset);
	return 0;
}

int shim_guest_track(const struct shim_region *r, int fd)
{
	static bool full_logged;

	if (shim_regions_add(r)) {
		if (!full_logged)
			shim_log(SHIM_LOG_WARN, "more than %d guest regions; the "
				 "rest run unmanaged", SHIM_REGIONS_MAX);
		full_logged = true;
		return -ENOSPC;
	}
	if (fd < 0 || !shim_conn_ready())
		return -ENOTCONN;
	return send_add(r, fd) ? -EREMOTEIO : 0;
}

/*
 * Converted memory the helper does not manage (no room in the table, or
 * it declined): it only costs (no huge pages, no KSM), so put back the
 * anonymous mapping the VMM asked for; nothing is in it yet. If that
 * fails, keep the shared one. Our fd goes either way.
 */
static void *untrack(const struct shim_map *m, shim_mmap_fn call,
		     const struct shim_region *r, bool tracked)
{
	int flags = (m->flags & ~MAP_FIXED_NOREPLACE) | MAP_FIXED;
	void *p;

	if (tracked)
		shim_regions_carve(r->addr, r->len, pieces); /* never sent */
	p = call((void *)r->addr, m->len, m->prot, flags, m->fd,
		 (off_t)m->offset);
	close(r->memfd);
	return p == MAP_FAILED ? (void *)r->addr : p;
}

/* Map anonymous guest memory from a memfd, or else as asked. Lock held. */
static void *map_anon(const struct shim_map *m, shim_mmap_fn call,
		      struct shim_region *r, int *kind)
{
	const char *what;
	void *p;
	int err;

	/* Without a helper to give it to, converting gains nothing. */
	if (shim_regions_count() >= SHIM_REGIONS_MAX || !shim_conn_ready()) {
		*kind = SHIM_GUEST_NONE;
		return call(m->addr, m->len, m->prot, m->flags, m->fd,
			    (off_t)m->offset);
	}
	p = shim_anon_map(m, call, r, &what);
	if (p != MAP_FAILED) {
		shim_log(SHIM_LOG_DEBUG, "anonymous guest memory %p+%#zx mapped "
			 "from memfd \"%s\" (fd %d)", p, r->len, r->name,
			 r->memfd);
		return p;
	}
	err = errno;
	*kind = SHIM_GUEST_NONE;
	p = call(m->addr, m->len, m->prot, m->flags, m->fd, (off_t)m->offset);
	/* Not worth a warning when the VMM's own call fails the same way. */
	if (p != MAP_FAILED)
		shim_anon_failed(what, err);
	return p;
}

void *shim_guest_mmap(const struct shim_map *m, shim_mmap_fn call)
{
	size_t plen = shim_page_round(m->len);
	bool fixed = m->flags & MAP_FIXED;
	int saved = errno, err, kind;
	struct shim_region r;
	void *p;

	if (shim_conn_held())
		return call(m->addr, m->len, m->prot, m->flags, m->fd,
			    (off_t)m->offset);
	kind = shim_classify(m, &r);
	if (shim_closeoff_refuses(m, kind))
		return MAP_FAILED;
	if (kind == SHIM_GUEST_REFUSE) {
		shim_log(SHIM_LOG_ERROR, "refusing a private or executable mapping of guest "
			 "memory (EACCES): its swapped-out pages could not be served");
		errno = EACCES;
		return MAP_FAILED;
	}
	if (kind == SHIM_GUEST_NONE &&
	    !(fixed && plen && shim_regions_overlap((uintptr_t)m->addr, plen))) {
		errno = saved;
		return call(m->addr, m->len, m->prot, m->flags, m->fd,
			    (off_t)m->offset);
	}
	shim_conn_lock();
	/*
	 * Join (or learn we cannot) before the memory is mapped: a process
	 * that cannot reach the helper holding it must not map it at all.
	 */
	if (kind == SHIM_GUEST_MEMFD && (shim_conn_ready(), shim_closeoff_refuses(m, kind))) {
		shim_conn_unlock();
		return MAP_FAILED;
	}
	/* Held across the call, so no region can appear in the range meanwhile. */
	if (kind == SHIM_GUEST_ANON)
		p = map_anon(m, call, &r, &kind);
	else
		p = call(m->addr, m->len, m->prot, m->flags, m->fd,
			 (off_t)m->offset);
	err = errno;
	if (p != MAP_FAILED && plen) {
		/* What MAP_FIXED replaced, or entries of an unseen unmap. */
		if (fixed || kind != SHIM_GUEST_NONE)
			shim_guest_drop((uintptr_t)p, plen, true);
		if (kind == SHIM_GUEST_MEMFD) {
			r.addr = (uintptr_t)p;
			shim_guest_track(&r, m->fd);
		} else if (kind == SHIM_GUEST_ANON) {
			int t = shim_guest_track(&r, r.memfd);

			if (t)
				p = untrack(m, call, &r, t != -ENOSPC);
		}
	}
	shim_conn_unlock();
	errno = p == MAP_FAILED ? err : saved;
	return p;
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
		shim_guest_drop((uintptr_t)addr, shim_page_round(len), true);
	shim_conn_unlock();
	errno = err;
	return r;
}

void shim_guest_punched(int fd, uint64_t off, uint64_t len)
{
	struct stat st;

	if (shim_conn_held() || !len || fstat(fd, &st) ||
	    !shim_regions_backed_by(st.st_dev, st.st_ino))
		return;
	shim_conn_lock();
	send_discard(fd, off, len);
	shim_conn_unlock();
}
