/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The interposed libc functions as they are without the shim. Before the
 * real ones are resolved, and while dlsym() runs on this thread, these
 * fall back to raw system calls.
 */
#ifndef SHIM_REAL_H
#define SHIM_REAL_H

#include <sys/types.h>

/* Resolve now; called from the constructor, while the process is still
 * single-threaded, so dlsym() never runs under another thread's loader lock. */
void shim_real_init(void);

void *shim_real_mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off);
void *shim_real_mmap64(void *addr, size_t len, int prot, int flags, int fd,
		       off64_t off);
int shim_real_munmap(void *addr, size_t len);
int shim_real_memfd_create(const char *name, unsigned int flags);
int shim_real_fallocate(int fd, int mode, off_t off, off_t len);
int shim_real_fallocate64(int fd, int mode, off64_t off, off64_t len);
int shim_real_madvise(void *addr, size_t len, int advice);
/* Returns an error number, as posix_madvise() does. */
int shim_real_posix_madvise(void *addr, size_t len, int advice);
/* @new_addr is passed on always; the kernel reads it only when asked to. */
void *shim_real_mremap(void *old, size_t old_len, size_t new_len, int flags,
		       void *new_addr);

#endif
