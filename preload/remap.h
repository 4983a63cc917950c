/* SPDX-License-Identifier: BSD-3-Clause */
/* mremap() of guest memory: the table and the helper follow the move. */
#ifndef SHIM_REMAP_H
#define SHIM_REMAP_H

#include <stddef.h>

/*
 * mremap() of a range that overlaps guest memory, or with MREMAP_FIXED
 * onto it. Keeps mremap's contract and errno.
 */
void *shim_remap(void *old, size_t old_len, size_t new_len, int flags,
		 void *new_addr);

#endif
