/* SPDX-License-Identifier: BSD-3-Clause */
/* Thin wrappers over the userfaultfd ioctls, returning 0 or -errno. */
#ifndef VS_UFFD_H
#define VS_UFFD_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Handshake on a uffd passed by the shim; asks for the events we use.
 * *wp: write-protect faults on shmem are available.
 */
int vs_uffd_api(int uffd, bool *wp);
/* MISSING mode, plus WP mode when @wp. */
int vs_uffd_register(int uffd, uint64_t addr, uint64_t len, bool wp);
int vs_uffd_unregister(int uffd, uint64_t addr, uint64_t len);
/*
 * Copy @len bytes from @src to @dst in the uffd's process and wake the
 * faulting threads. Continues over partial copies. Returns 0, or -EEXIST
 * (some page already present: the rest was not copied, *done says how
 * much was), -EAGAIN (a non-cooperative event is pending: read it first),
 * -ESRCH/-ENOENT (process or mapping gone), other -errno.
 */
int vs_uffd_copy(int uffd, uint64_t dst, const void *src, uint64_t len, uint64_t *done);
int vs_uffd_zeropage(int uffd, uint64_t dst, uint64_t len);
int vs_uffd_wake(int uffd, uint64_t addr, uint64_t len);
/* Write-protect, or unprotect and wake, a range registered with WP mode. */
int vs_uffd_writeprotect(int uffd, uint64_t addr, uint64_t len, bool protect);

#endif
