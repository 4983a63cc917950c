/* SPDX-License-Identifier: BSD-3-Clause */
/* This process's mappings as /proc/self/maps shows them. */
#ifndef SHIM_VMA_H
#define SHIM_VMA_H

#include <stdint.h>

struct shim_vma {
	uintptr_t start, end;
	int prot; /* PROT_* now (mprotect() may have changed it) */
};

/*
 * The first mapping that ends above @addr. 0; -ENOENT when there is
 * none; another -errno when /proc/self/maps cannot be read.
 * Async-signal-safe (for the fork child).
 */
int shim_vma_find(uintptr_t addr, struct shim_vma *v);

/*
 * An fd (O_RDWR|O_CLOEXEC) of the file mapped at @addr, through
 * /proc/self/map_files (which needs CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE). The fd, or -errno.
 */
int shim_vma_open(uintptr_t addr);

#endif
