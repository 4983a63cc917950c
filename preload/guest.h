/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest-memory bookkeeping behind the interposed calls: keeps the region
 * table and tells the helper. Nothing here fails the VMM's call.
 */
#ifndef SHIM_GUEST_H
#define SHIM_GUEST_H

#include <stdint.h>
#include <stddef.h>

#include "classify.h"

/* After a successful mmap(): track and send it if it is guest memory. */
void shim_guest_mapped(const struct shim_map *m);

/* Before a MAP_FIXED mmap() over [addr, addr+len): forget what it replaces. */
void shim_guest_replacing(void *addr, size_t len);

/* munmap() of a range that overlaps guest memory. Keeps munmap's contract. */
int shim_guest_munmap(void *addr, size_t len);

/* After a successful hole punch of [off, off+len) in @fd. */
void shim_guest_punched(int fd, uint64_t off, uint64_t len);

#endif
