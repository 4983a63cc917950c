/* SPDX-License-Identifier: BSD-3-Clause */
/* Which fds are memfds, and their names. */
#ifndef SHIM_MEMFD_H
#define SHIM_MEMFD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* Remember the name of a memfd our memfd_create() made. */
void shim_memfd_record(int fd, const char *name);

/*
 * If @fd (whose fstat is @st) is a memfd, store its name (truncated to
 * @n) and return 0; -ENOENT when it is not a memfd, other -errno when
 * that cannot be told.
 */
int shim_memfd_name(int fd, const struct stat *st, char *name, size_t n);

/* Did our memfd_create() make this file (among the last 64 it made)? */
bool shim_memfd_ours(const struct stat *st);

void shim_memfd_lock(void);
void shim_memfd_unlock(void);

#endif
