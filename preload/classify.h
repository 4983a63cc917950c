/* SPDX-License-Identifier: BSD-3-Clause */
/* Deciding which mappings are guest memory. */
#ifndef SHIM_CLASSIFY_H
#define SHIM_CLASSIFY_H

#include <stdint.h>
#include <sys/types.h>

#include "regions.h"

/* One mmap() call, as the VMM made it. */
struct shim_map {
	void *addr; /* the hint, or the MAP_FIXED address */
	size_t len;
	int prot;
	int flags;
	int fd;
	uint64_t offset;
};

/* mmap() or mmap64(): whichever the VMM called. */
typedef void *(*shim_mmap_fn)(void *addr, size_t len, int prot, int flags,
			      int fd, off_t off);

enum shim_guest {
	SHIM_GUEST_NONE, /* not guest memory */
	SHIM_GUEST_MEMFD, /* a shared mapping of a guest memfd */
	SHIM_GUEST_ANON, /* anonymous guest memory, to be mapped from a memfd */
	SHIM_GUEST_REFUSE, /* a view of guest memory the helper cannot serve: EACCES */
};

/*
 * Is @m, if it succeeds, guest memory? Asked before the call, because
 * anonymous guest memory must be mapped differently. Returns an enum
 * shim_guest; for the last two, @r is filled (not sent) except for what
 * only the mapping tells: addr, and for SHIM_GUEST_ANON the memfd. The
 * single place to teach the shim new kinds of guest memory.
 */
int shim_classify(const struct shim_map *m, struct shim_region *r);

/* @len rounded up to whole pages (0 when that overflows). */
size_t shim_page_round(size_t len);

#endif
