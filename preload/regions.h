/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The table of guest-memory mappings of this process. Entries never
 * overlap. Mutators are serialized by the caller (the helper connection
 * lock); the table's own lock is short and never held across a call that
 * could allocate or map.
 */
#ifndef SHIM_REGIONS_H
#define SHIM_REGIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <vmswap/proto.h>

#define SHIM_REGIONS_MAX 256

enum shim_kind {
	SHIM_KIND_MEMFD, /* a shared mapping of the VMM's own memfd */
	SHIM_KIND_ANON,  /* anonymous memory the shim maps from its own memfd */
};

/* What a fork child gets of a region (from madvise). */
#define SHIM_FORK_DONT 0x1 /* MADV_DONTFORK: nothing */
#define SHIM_FORK_WIPE 0x2 /* MADV_WIPEONFORK: zeros (SHIM_KIND_ANON only) */

struct shim_region {
	uintptr_t addr;
	size_t len;      /* page aligned */
	uint64_t offset; /* of addr in the memfd */
	dev_t dev;       /* identity of the memfd */
	ino_t ino;
	bool sent;       /* the helper accepted it */
	uint8_t kind;    /* enum shim_kind */
	uint8_t fork;    /* SHIM_FORK_* */
	int memfd;       /* SHIM_KIND_ANON: the shim's own fd of it; else -1 */
	int prot;        /* at mmap time */
	int mflags;      /* MAP_NORESERVE of the VMM's call */
	char name[VMSWAP_NAME_MAX];
};

/* A part of a region, as removed from the table or found in it. */
struct shim_range {
	uintptr_t addr;
	size_t len;
	uint64_t offset; /* of addr in the memfd */
	dev_t dev;
	ino_t ino;
	bool sent;
	uint8_t kind;
	uint8_t fork;
	int memfd;
};

void shim_regions_lock(void);
void shim_regions_unlock(void);

/* Lock-free hint for fast paths: 0 means no guest memory is tracked. */
size_t shim_regions_count(void);

/* Does [addr, addr+len) overlap a tracked region? */
bool shim_regions_overlap(uintptr_t addr, size_t len);

/* Add @r, which overlaps no entry. 0, or -ENOSPC. */
int shim_regions_add(const struct shim_region *r);

/* Set the sent flag of the entry starting at @addr. 0, or -ENOENT. */
int shim_regions_set_sent(uintptr_t addr, bool sent);

/*
 * Remove [addr, addr+len) from the table, trimming or splitting entries.
 * The removed parts go to @out (room for SHIM_REGIONS_MAX); returns how
 * many. When a split finds the table full, the right part is removed too.
 */
size_t shim_regions_carve(uintptr_t addr, size_t len, struct shim_range *out);

/*
 * The parts of tracked regions inside [addr, addr+len), in address
 * order, into @out (room for SHIM_REGIONS_MAX); returns how many.
 */
size_t shim_regions_find(uintptr_t addr, size_t len, struct shim_range *out);

/* A copy of the entry that contains @addr. 0, or -ENOENT. */
int shim_regions_get(uintptr_t addr, struct shim_region *out);

/*
 * Set then clear SHIM_FORK_* bits on [addr, addr+len) (of SHIM_KIND_ANON
 * entries only when @anon_only), splitting entries at the edges. 0, or
 * -ENOSPC when a split found the table full (that entry is left as is).
 */
int shim_regions_mark(uintptr_t addr, size_t len, uint8_t set, uint8_t clear,
		      bool anon_only);

/* Does a region the helper accepted map the file (dev, ino)? */
bool shim_regions_backed_by(dev_t dev, ino_t ino);

/* Does an entry hold @memfd as its own fd? */
bool shim_regions_fd_used(int memfd);

/*
 * Fork child only, with the table lock held since the fork (it is not
 * taken here): call @fn on every entry, which it may change, and remove
 * those it returns true for. Async-signal-safe when @fn is.
 */
void shim_regions_child_sweep(bool (*fn)(struct shim_region *r, void *arg),
			      void *arg);

/* shim_regions_fd_used() for the fork child (lock held, not taken). */
bool shim_regions_child_fd_used(int memfd);

#endif
