/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest memory this process must never touch: a fork child, or an exec'd
 * descendant, that could not join the helper while the helper may hold
 * pages of it. Reading a hole of a guest memfd through any mapping that
 * no uffd covers allocates a zero page there, which would then win over
 * the copy the helper holds. So such memory is made inaccessible, and new
 * mappings of it are refused with EACCES.
 */
#ifndef SHIM_CLOSEOFF_H
#define SHIM_CLOSEOFF_H

#include <stdbool.h>
#include <sys/types.h>

#include "classify.h"

/* Fork child: replace [addr, addr+len) with PROT_NONE memory and refuse
 * later mappings of the memfd (dev, ino). Async-signal-safe. */
void shim_closeoff_range(uintptr_t addr, size_t len, dev_t dev, ino_t ino);

/* Refuse every later mapping of guest memory this program did not create
 * itself (an exec'd process its ancestor's helper could not take). */
void shim_closeoff_all(void);

/* Is anything closed off? (A cheap test for the mmap fast path.) */
bool shim_closeoff_active(void);

/* Is this mmap() of guest memory refused? Then errno is EACCES. */
bool shim_closeoff_refuses(const struct shim_map *m, int kind);

#endif
