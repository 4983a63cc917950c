/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "closeoff.h"
#include "log.h"
#include "memfd.h"
#include "regions.h"

/* Written by one thread (the fork child, or under the connection lock). */
static struct {
	dev_t dev;
	ino_t ino;
} ids[SHIM_REGIONS_MAX];
static size_t nids;
static bool all;
static bool logged;

static void remember(dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < nids; i++)
		if (ids[i].dev == dev && ids[i].ino == ino)
			return;
	if (nids < SHIM_REGIONS_MAX)
		ids[nids++] = (typeof(ids[0])){ dev, ino };
	else
		all = true; /* no room to tell them apart: refuse them all */
}

void shim_closeoff_range(uintptr_t addr, size_t len, dev_t dev, ino_t ino)
{
	char a[24], e[24];

	remember(dev, ino);
	/* Raw: async-signal-safe, and never our own mmap. */
	if (syscall(SYS_mmap, addr, len, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == -1)
		shim_log_raw("forked child: cannot close off guest memory at ",
			     shim_fmt_long(a, (long)addr), " (errno ",
			     shim_fmt_long(e, errno), ")", NULL);
}

void shim_closeoff_all(void)
{
	all = true;
}

bool shim_closeoff_active(void)
{
	return all || nids;
}

bool shim_closeoff_refuses(const struct shim_map *m, int kind)
{
	struct stat st;
	bool hit = false;

	if (all) {
		/* A memfd this program made itself cannot be the helper's. */
		hit = kind == SHIM_GUEST_MEMFD && !(m->fd >= 0 && !fstat(m->fd, &st) &&
						    shim_memfd_ours(&st));
	} else if (nids && m->fd >= 0 && !(m->flags & MAP_ANONYMOUS) && !fstat(m->fd, &st)) {
		for (size_t i = 0; i < nids && !hit; i++)
			hit = ids[i].dev == st.st_dev && ids[i].ino == st.st_ino;
	}
	if (!hit)
		return false;
	if (!logged)
		shim_log(SHIM_LOG_ERROR, "refusing to map guest memory (EACCES): this "
			 "process could not join the helper that holds part of it");
	logged = true;
	errno = EACCES;
	return true;
}
