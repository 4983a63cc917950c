/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The common case is a range of guest memory of one memfd (one region,
 * or a region and the tails it grew), which then lives on at the new
 * address with the same memfd and offsets. The helper
 * already knows the part that stays in place, so in-place growth adds
 * only the new tail and in-place shrinking drops only the old tail:
 * re-adding the whole region would unregister it for a moment while the
 * VMM's other threads may be using it.
 *
 * Converted memory grows into fresh memfd pages. When the memfd pages
 * after the range are in use (the range is not at the end of the memfd),
 * the kernel's new tail would alias them, so the tail is mapped again
 * from pages appended to the memfd.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anon.h"
#include "guest.h"
#include "helper_conn.h"
#include "log.h"
#include "real.h"
#include "regions.h"
#include "remap.h"
#include "vma.h"

#ifndef MREMAP_DONTUNMAP /* headers older than Linux 5.7 */
#define MREMAP_DONTUNMAP 4
#endif

/* One mremap() of guest memory. */
struct move {
	struct shim_region r; /* the region the old range starts in */
	uintptr_t old, to;    /* old and new address */
	size_t olen, nlen;    /* page aligned */
	uint64_t off;         /* of the old range in the memfd */
	uint64_t tail_off;    /* where growth lives in the memfd */
	bool keep_old;        /* the old range stays mapped */
};

static void warn_once(const char *what, uintptr_t addr, size_t len)
{
	static atomic_bool logged;

	if (!atomic_exchange(&logged, true))
		shim_log(SHIM_LOG_WARN, "mremap of guest memory %#lx+%#zx %s; it "
			 "runs unmanaged", (unsigned long)addr, len, what);
}

/*
 * Before growing converted memory: make room in the memfd. Growth is
 * fresh pages right after the range if it ends the memfd, else pages
 * appended to the memfd. 0 or -errno.
 */
static int anon_room(struct move *mv)
{
	uint64_t grow = mv->nlen - mv->olen;
	struct stat st;

	if (!shim_anon_same(mv->r.memfd, mv->r.dev, mv->r.ino))
		return -EBADF;
	if (fstat(mv->r.memfd, &st))
		return -errno;
	mv->tail_off = mv->off + mv->olen;
	if (mv->tail_off < (uint64_t)st.st_size)
		mv->tail_off = shim_page_round((size_t)st.st_size);
	return shim_anon_grow(mv->r.memfd, mv->tail_off + grow);
}

/* Map the grown tail from its own memfd pages, if the kernel aliased it. */
static int anon_tail(const struct move *mv)
{
	uintptr_t a = mv->to + mv->olen;
	struct shim_vma v;
	int prot = mv->r.prot;
	void *p;

	if (mv->tail_off == mv->off + mv->olen)
		return 0;
	if (!shim_vma_find(a, &v) && v.start <= a)
		prot = v.prot;
	p = shim_real_mmap((void *)a, mv->nlen - mv->olen, prot,
			   MAP_SHARED | MAP_FIXED | mv->r.mflags, mv->r.memfd,
			   (off_t)mv->tail_off);
	return p == MAP_FAILED ? -errno : 0;
}

/* Parts of the old range; used under the connection lock only. */
static struct shim_range pieces[SHIM_REGIONS_MAX];
static size_t npieces;

/*
 * Is [old, old+olen) all guest memory of one memfd, at consecutive
 * offsets? One mapping can hold several entries (growth is tracked
 * apart). Fills mv->r and mv->off.
 */
static bool one_memfd(struct move *mv)
{
	uintptr_t at = mv->old;

	if (shim_regions_get(mv->old, &mv->r))
		return false;
	mv->off = mv->r.offset + (mv->old - mv->r.addr);
	npieces = shim_regions_find(mv->old, mv->olen ? mv->olen : 1, pieces);
	for (size_t i = 0; i < npieces; i++) {
		const struct shim_range *p = &pieces[i];

		if (p->addr != at || p->dev != mv->r.dev || p->ino != mv->r.ino ||
		    p->kind != mv->r.kind || p->memfd != mv->r.memfd ||
		    p->offset != mv->off + (at - mv->old))
			return false;
		at += p->len;
	}
	return at >= mv->old + mv->olen;
}

/* Track [addr, addr+len) of the region at memfd offset @off. */
static void add(const struct move *mv, uintptr_t addr, size_t len,
		uint64_t off, uint8_t fork)
{
	struct shim_region n = mv->r;
	int fd = n.memfd;

	n.addr = addr;
	n.len = len;
	n.offset = off;
	n.fork = fork;
	n.sent = false;
	if (n.kind == SHIM_KIND_MEMFD) {
		/* We hold no fd of the VMM's memfd: find one through /proc. */
		struct stat st;

		fd = shim_vma_open(addr);
		if (fd >= 0 && (fstat(fd, &st) || st.st_dev != n.dev ||
				st.st_ino != n.ino)) {
			close(fd);
			fd = -ENOENT;
		}
		if (fd < 0)
			shim_log(SHIM_LOG_WARN, "cannot reopen memfd \"%s\" of "
				 "moved guest region %#lx+%#zx (%s); the helper "
				 "will refuse to enable while it is mapped",
				 n.name, (unsigned long)addr, len, strerror(-fd));
	}
	shim_guest_track(&n, fd);
	if (n.kind == SHIM_KIND_MEMFD && fd >= 0)
		close(fd);
}

/*
 * The grown tail could not get memfd pages of its own: zeros it must
 * read, so give it plain anonymous memory, unmanaged.
 */
static void tail_failed(const struct move *mv, int err)
{
	uintptr_t a = mv->to + mv->olen;
	size_t len = mv->nlen - mv->olen;

	shim_log(SHIM_LOG_ERROR, "cannot map grown anonymous guest memory "
		 "%#lx+%#zx apart (%s); that part runs unmanaged",
		 (unsigned long)a, len, strerror(-err));
	if (shim_real_mmap((void *)a, len, mv->r.prot,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | mv->r.mflags,
			   -1, 0) == MAP_FAILED)
		shim_log(SHIM_LOG_ERROR, "%#lx+%#zx still shows other guest "
			 "pages: %s", (unsigned long)a, len, strerror(errno));
}

/* After a successful mremap() of guest memory of one memfd. Lock held. */
static void follow(struct move *mv)
{
	size_t keep = mv->olen < mv->nlen ? mv->olen : mv->nlen;
	bool anon = mv->r.kind == SHIM_KIND_ANON, grown = mv->nlen > mv->olen;
	int r;

	if (grown && anon && (r = anon_tail(mv))) {
		tail_failed(mv, r);
		grown = false;
	}
	if (mv->to == mv->old) {
		if (mv->nlen < mv->olen) /* the kernel unmapped the tail */
			shim_guest_drop(mv->old + mv->nlen, mv->olen - mv->nlen,
					true);
	} else {
		/* MREMAP_FIXED replaced whatever was there. */
		shim_guest_drop(mv->to, mv->nlen, true);
		/* Part by part, so each keeps its fork behaviour. */
		for (size_t i = 0; i < npieces; i++) {
			uintptr_t at = pieces[i].addr - mv->old;

			if (at < keep)
				add(mv, mv->to + at,
				    keep - at < pieces[i].len ? keep - at
							      : pieces[i].len,
				    pieces[i].offset, pieces[i].fork);
		}
		/* After the add, so our memfd is not closed as unused. */
		if (!mv->keep_old)
			shim_guest_drop(mv->old, mv->olen, false);
		if (mv->nlen < mv->olen && anon) {
			/* The part left behind was unmapped, not moved. */
			struct shim_range gone = {
				.addr = mv->old + mv->nlen,
				.len = mv->olen - mv->nlen,
				.offset = mv->off + mv->nlen, .dev = mv->r.dev,
				.ino = mv->r.ino, .kind = mv->r.kind,
				.memfd = mv->r.memfd,
			};

			for (size_t i = 0; i < npieces; i++)
				gone.sent |= pieces[i].sent;
			shim_guest_free(&gone);
		}
	}
	if (grown) {
		shim_guest_drop(mv->to + mv->olen, mv->nlen - mv->olen, true);
		add(mv, mv->to + mv->olen, mv->nlen - mv->olen,
		    anon ? mv->tail_off : mv->off + mv->olen,
		    npieces ? pieces[npieces - 1].fork : mv->r.fork);
	}
}

/* After a successful mremap() that is not the common case. Lock held. */
static void follow_other(uintptr_t old, size_t olen, uintptr_t to,
			 size_t nlen, bool keep_old)
{
	/* No punch: the pages may live on at the new address. */
	if (!keep_old && olen && shim_regions_overlap(old, olen)) {
		warn_once("spans regions", old, olen);
		shim_guest_drop(old, olen, false);
	}
	shim_guest_drop(to, nlen, true);
}

void *shim_remap(void *old, size_t old_len, size_t new_len, int flags,
		 void *new_addr)
{
	struct move mv = { .old = (uintptr_t)old };
	int saved = errno, err;
	bool inside;
	void *p;

	mv.olen = shim_page_round(old_len);
	mv.nlen = shim_page_round(new_len);
	mv.keep_old = !mv.olen || (flags & MREMAP_DONTUNMAP);
	/* The kernel rejects these; nothing to follow. */
	if (shim_conn_held() || shim_page_round(mv.old) != mv.old || !mv.nlen)
		return shim_real_mremap(old, old_len, new_len, flags, new_addr);
	shim_conn_lock();
	inside = one_memfd(&mv);
	if (inside) {
		/*
		 * Private anonymous memory cannot be duplicated (old_len 0),
		 * and with MREMAP_DONTUNMAP our old range would alias the new.
		 */
		if (mv.r.kind == SHIM_KIND_ANON && mv.keep_old) {
			shim_conn_unlock();
			errno = EINVAL;
			return MAP_FAILED;
		}
		if (mv.r.kind == SHIM_KIND_ANON && mv.nlen > mv.olen &&
		    (err = anon_room(&mv))) {
			shim_log(SHIM_LOG_WARN, "cannot grow the memfd of "
				 "anonymous guest memory %#lx+%#zx: %s",
				 (unsigned long)mv.old, mv.olen, strerror(-err));
			shim_conn_unlock();
			errno = ENOMEM;
			return MAP_FAILED;
		}
	}
	p = shim_real_mremap(old, old_len, new_len, flags, new_addr);
	err = errno;
	if (p != MAP_FAILED) {
		mv.to = (uintptr_t)p;
		if (inside)
			follow(&mv);
		else
			follow_other(mv.old, mv.olen, mv.to, mv.nlen, mv.keep_old);
	}
	shim_conn_unlock();
	errno = p == MAP_FAILED ? err : saved;
	return p;
}
