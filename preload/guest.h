/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest-memory bookkeeping behind the interposed calls: keeps the region
 * table and tells the helper. Nothing here fails the VMM's call.
 */
#ifndef SHIM_GUEST_H
#define SHIM_GUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "classify.h"

/*
 * An mmap() that may create or replace guest memory, made with @call.
 * Anonymous guest memory is mapped from a memfd (anon.c). Keeps mmap's
 * contract and errno.
 */
void *shim_guest_mmap(const struct shim_map *m, shim_mmap_fn call);

/* munmap() of a range that overlaps guest memory. Keeps munmap's contract. */
int shim_guest_munmap(void *addr, size_t len);

/* After a successful hole punch of [off, off+len) in @fd. */
void shim_guest_punched(int fd, uint64_t off, uint64_t len);

/*
 * For the modules that follow madvise() and mremap(); the caller holds
 * the helper connection lock.
 */

/*
 * [addr, addr+len) is no longer guest memory: forget it and tell the
 * helper. With @freed the pages are gone (unmapped or replaced): free
 * what converted memory they used. The shim's memfds no region uses any
 * more are closed.
 */
void shim_guest_drop(uintptr_t addr, size_t len, bool freed);

/*
 * Track @r and send it to the helper with @fd (a descriptor of its
 * memfd; -1: none at hand). 0 when the helper took it; -ENOSPC when it
 * is not tracked (table full); -ENOTCONN (no fd or no helper) or
 * -EREMOTEIO (the helper declined or is gone) when it is tracked unsent.
 */
int shim_guest_track(const struct shim_region *r, int fd);

/* Free @p (of converted memory) in its memfd and tell the helper. 0 or -errno. */
int shim_guest_free(const struct shim_range *p);

#endif
