/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fork child of a VMM whose anonymous guest memory the shim converted
 * would share that memory with its parent: the mapping is MAP_SHARED.
 * The child handler maps it again, at the same address, MAP_PRIVATE from
 * the same memfd: reads see the memfd, writes stay in the child.
 *
 * Such a private mapping must not be guest memory for the helper: a
 * fault it resolved there would land in the child's private copy while
 * the helper took the page for resident in the memfd, and the parent
 * would lose it. So the child drops these regions, and the helper
 * refuses to enable while the child maps the memfd (it names the
 * process).
 *
 * While swap is enabled that is not enough: the memfd has holes for the
 * pages the helper holds, and the child reading one through a private
 * mapping that no uffd covers would fill it with zeros in the memfd, for
 * the parent too. So when the helper's published state is not Ready,
 * the child keeps converted memory shared, covered by the helper like a
 * memfd region of the VMM's own, and never frees it.
 *
 * Regions under MADV_DONTFORK are not in the child at all: dropped too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vmswap/util.h>

#include "anon.h"
#include "closeoff.h"
#include "forkmem.h"
#include "helper_conn.h"
#include "log.h"
#include "regions.h"
#include "vma.h"

/* Decided in the parent by shim_forkmem_prepare(). */
static bool keep_shared;

/* The child is single-threaded: plain statics are enough. */
static struct {
	uintptr_t addr;
	size_t len;
} gone[SHIM_REGIONS_MAX];
static size_t ngone;

static struct {
	int fd;
	dev_t dev;
	ino_t ino;
} fds[SHIM_REGIONS_MAX];
/* Made private: still reads through to the memfd where not written. */
static struct {
	uintptr_t addr;
	size_t len;
	dev_t dev;
	ino_t ino;
} priv[SHIM_REGIONS_MAX];
static size_t npriv;
static size_t nfds;
static bool shared_logged;

/* Does the helper say swap is off (state Ready)? False when unsure. */
static bool swap_idle(void)
{
	static const char want[] = "\"state\":\"Ready\"";
	char path[PATH_MAX], buf[1024];
	ssize_t n;
	int fd;

	if (vmswap_run_path(path, sizeof(path), shim_conn_vmm_pid(),
			    VMSWAP_STATUS_NAME))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	/* The state comes in the first lines, before metrics and replies. */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, want) != NULL;
}

void shim_forkmem_prepare(void)
{
	keep_shared = shim_regions_count() && shim_conn_usable() &&
		      !swap_idle();
}

static void child_warn(const char *what, uintptr_t addr, int err)
{
	char a[24], e[24];

	shim_log_raw("forked child: cannot ", what, " guest memory at address ",
		     shim_fmt_long(a, (long)addr), " (errno ",
		     shim_fmt_long(e, err), "); it stays shared with the parent",
		     NULL);
}

/* Map [s, s+len) of @r again, private to the child, with protection @prot. */
static void privatize(const struct shim_region *r, uintptr_t s, size_t len,
		      int prot)
{
	long p;

	if (r->fork & SHIM_FORK_WIPE)
		p = syscall(SYS_mmap, s, len, prot,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | r->mflags,
			    -1, 0);
	else
		p = syscall(SYS_mmap, s, len, prot,
			    MAP_PRIVATE | MAP_FIXED | r->mflags, r->memfd,
			    r->offset + (s - r->addr));
	if (p == -1)
		child_warn("make private", s, errno);
}

/*
 * Each mapping inside @r keeps its protection (mprotect() may have
 * changed it since mmap). Without /proc, the mmap-time one is used.
 */
static void privatize_region(const struct shim_region *r)
{
	uintptr_t a = r->addr, end = r->addr + r->len;

	if (!(r->fork & SHIM_FORK_WIPE) &&
	    !shim_anon_same(r->memfd, r->dev, r->ino)) {
		child_warn("find the memfd of", r->addr, EBADF);
		return;
	}
	while (a < end) {
		struct shim_vma v;
		int e = shim_vma_find(a, &v);

		if (e == -ENOENT || (!e && v.start >= end))
			break;
		if (e) {
			privatize(r, a, end - a, r->prot);
			break;
		}
		if (v.start > a)
			a = v.start; /* a hole: nothing mapped there */
		v.end = v.end < end ? v.end : end;
		privatize(r, a, v.end - a, v.prot);
		a = v.end;
	}
}

/* Converted memory stays shared: the child must never free it. */
static void share(struct shim_region *r)
{
	if (!shared_logged)
		shim_log_raw("forked child: swap is enabled, so anonymous guest "
			     "memory stays shared with the parent", NULL);
	shared_logged = true;
	r->kind = SHIM_KIND_MEMFD;
	r->memfd = -1;
}

static bool child_entry(struct shim_region *r, void *arg)
{
	bool anon = r->kind == SHIM_KIND_ANON;

	(void)arg;
	if (r->memfd >= 0)
		fds[nfds++] = (typeof(fds[0])){ r->memfd, r->dev, r->ino };
	if (r->fork & SHIM_FORK_DONT)
		; /* not in the child */
	else if (!anon)
		return false; /* a shared memfd mapping: still guest memory */
	else if (keep_shared && !(r->fork & SHIM_FORK_WIPE))
		return share(r), false;
	else if ((privatize_region(r), !(r->fork & SHIM_FORK_WIPE)))
		priv[npriv++] = (typeof(priv[0])){ r->addr, r->len, r->dev, r->ino };
	if (r->sent)
		gone[ngone++] = (typeof(gone[0])){ r->addr, r->len };
	return true;
}

void shim_forkmem_child(void)
{
	ngone = nfds = npriv = 0;
	shim_regions_child_sweep(child_entry, NULL);
	/* The child's mappings hold the memfds; our fds are not needed. */
	for (size_t i = 0; i < nfds; i++)
		if (!shim_regions_child_fd_used(fds[i].fd) &&
		    shim_anon_same(fds[i].fd, fds[i].dev, fds[i].ino))
			close(fds[i].fd);
}

void shim_forkmem_child_notify(void)
{
	for (size_t i = 0; i < ngone; i++) {
		struct vmswap_msg_region_del m;
		struct vmswap_msg_reply rep;

		memset(&m, 0, sizeof(m));
		vmswap_msg_init(&m.hdr, VMSWAP_MSG_REGION_DEL, sizeof(m), 0);
		m.addr = gone[i].addr;
		m.len = gone[i].len;
		if (shim_conn_child_request(&m.hdr, -1, &rep))
			return;
	}
}

static bool close_entry(struct shim_region *r, void *arg)
{
	(void)arg;
	shim_closeoff_range(r->addr, r->len, r->dev, r->ino);
	return true;
}

void shim_forkmem_child_close_off(void)
{
	shim_regions_child_sweep(close_entry, NULL);
	for (size_t i = 0; i < npriv; i++)
		shim_closeoff_range(priv[i].addr, priv[i].len, priv[i].dev, priv[i].ino);
	npriv = ngone = 0;
}
