/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Anonymous guest memory, mapped from a memfd of the shim's own so the
 * helper can remove its pages (it cannot punch another process's private
 * anonymous memory).
 */
#ifndef SHIM_ANON_H
#define SHIM_ANON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "classify.h"

#define SHIM_ANON_NAME "vmswap-anon"

/*
 * Map @m, which shim_classify() found SHIM_GUEST_ANON, with @call as a
 * MAP_SHARED mapping of a new memfd at offset 0 (same hint, MAP_FIXED,
 * MAP_NORESERVE, MAP_POPULATE...). Returns the mapping, with r->addr,
 * memfd, dev and ino set; or MAP_FAILED with *what naming the step that
 * failed and errno set, and nothing left behind.
 */
void *shim_anon_map(const struct shim_map *m, shim_mmap_fn call,
		    struct shim_region *r, const char **what);

/* Log, once per process, that a conversion failed and why. */
void shim_anon_failed(const char *what, int err);

/* Is @memfd still the file (dev, ino)? The VMM may have closed our fd. */
bool shim_anon_same(int memfd, dev_t dev, ino_t ino);

/* Make @memfd at least @size bytes long (never shorter). 0 or -errno. */
int shim_anon_grow(int memfd, uint64_t size);

/* Free [off, off+len) of @memfd: the pages read as zeros. 0 or -errno. */
int shim_anon_punch(int memfd, uint64_t off, uint64_t len);

#endif
