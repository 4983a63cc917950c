/* SPDX-License-Identifier: BSD-3-Clause */
/* madvise() on guest memory: keeping anonymous semantics on converted memory. */
#ifndef SHIM_ADVISE_H
#define SHIM_ADVISE_H

#include <stdbool.h>
#include <stddef.h>

/* Does @advice mean something different for converted memory, or for fork? */
bool shim_advise_relevant(int advice);

/*
 * madvise() of a range that overlaps guest memory. Keeps madvise's
 * contract and errno.
 */
int shim_advise(void *addr, size_t len, int advice);

#endif
