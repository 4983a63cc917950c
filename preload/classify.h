/* SPDX-License-Identifier: BSD-3-Clause */
/* Deciding which mappings are guest memory. */
#ifndef SHIM_CLASSIFY_H
#define SHIM_CLASSIFY_H

#include <stdint.h>
#include <sys/types.h>

#include "regions.h"

/* One successful mmap() call. */
struct shim_map {
	void *addr; /* where it landed */
	size_t len;
	int prot;
	int flags;
	int fd;
	uint64_t offset;
};

/*
 * Is @m guest memory? 1 with @r filled (not sent), 0 if not. The single
 * place to teach the shim new kinds of guest memory.
 */
int shim_classify(const struct shim_map *m, struct shim_region *r);

/* @len rounded up to whole pages (0 when that overflows). */
size_t shim_page_round(size_t len);

#endif
