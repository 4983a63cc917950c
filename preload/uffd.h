/* SPDX-License-Identifier: BSD-3-Clause */
/* Creating this process's userfaultfd. */
#ifndef SHIM_UFFD_H
#define SHIM_UFFD_H

#include <stddef.h>

/*
 * A new uffd (O_CLOEXEC|O_NONBLOCK, never UFFD_USER_MODE_ONLY: KVM's
 * faults on guest memory are kernel-mode), from userfaultfd(2) or else
 * /dev/userfaultfd. UFFDIO_API is left to the helper. Returns the fd, or
 * the -errno of userfaultfd(2) with that of /dev/userfaultfd in
 * *dev_err. Async-signal-safe.
 */
int shim_uffd_create(int *dev_err);

/* Why neither way worked, for the log and for HELLO. */
void shim_uffd_reason(int err, int dev_err, char *buf, size_t n);

#endif
