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

struct shim_region {
	uintptr_t addr;
	size_t len;      /* page aligned */
	uint64_t offset; /* of addr in the memfd */
	dev_t dev;       /* identity of the memfd */
	ino_t ino;
	bool sent;       /* the helper accepted it */
	char name[VMSWAP_NAME_MAX];
};

/* A part of a region that was removed from the table. */
struct shim_range {
	uintptr_t addr;
	size_t len;
	bool sent;
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

/* Does a region the helper accepted map the file (dev, ino)? */
bool shim_regions_backed_by(dev_t dev, ino_t ino);

#endif
