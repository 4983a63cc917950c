/* SPDX-License-Identifier: BSD-3-Clause */
/* Data extents of a file (SEEK_DATA, SEEK_HOLE): where a memfd holds pages. */
#ifndef VS_EXTENT_H
#define VS_EXTENT_H

#include <sys/types.h>

/*
 * The first data extent of @fd at or after @pos and below @size: 1 with
 * it in [*d, *h) (*h at most @size), 0 when there is none, or -errno.
 */
int vs_extent_next(int fd, off_t pos, off_t size, off_t *d, off_t *h);

#endif
