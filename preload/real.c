/* SPDX-License-Identifier: BSD-3-Clause */
/* Finding the next definition of each interposed function. */
#undef _FILE_OFFSET_BITS /* keep mmap and mmap64 distinct symbols */
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"
#include "tls.h"

/* The raw-syscall fallbacks pass off_t in one register. */
_Static_assert(sizeof(long) == 8 && sizeof(off_t) == 8,
	       "the shim supports 64-bit ABIs only");

static struct {
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	void *(*mmap64)(void *, size_t, int, int, int, off64_t);
	int (*munmap)(void *, size_t);
	int (*memfd_create)(const char *, unsigned int);
	int (*fallocate)(int, int, off_t, off_t);
	int (*fallocate64)(int, int, off64_t, off64_t);
	int (*madvise)(void *, size_t, int);
	int (*posix_madvise)(void *, size_t, int);
	void *(*mremap)(void *, size_t, size_t, int, ...);
} real;

static pthread_once_t once = PTHREAD_ONCE_INIT;
/* Set while dlsym() runs here: it may allocate, and malloc may mmap. */
static SHIM_TLS bool resolving;

static void do_resolve(void)
{
	resolving = true;
	real.mmap = (void *(*)(void *, size_t, int, int, int, off_t))
		dlsym(RTLD_NEXT, "mmap");
	real.mmap64 = (void *(*)(void *, size_t, int, int, int, off64_t))
		dlsym(RTLD_NEXT, "mmap64");
	real.munmap = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
	real.memfd_create = (int (*)(const char *, unsigned int))
		dlsym(RTLD_NEXT, "memfd_create");
	real.fallocate = (int (*)(int, int, off_t, off_t))
		dlsym(RTLD_NEXT, "fallocate");
	real.fallocate64 = (int (*)(int, int, off64_t, off64_t))
		dlsym(RTLD_NEXT, "fallocate64");
	real.madvise = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "madvise");
	real.posix_madvise = (int (*)(void *, size_t, int))
		dlsym(RTLD_NEXT, "posix_madvise");
	real.mremap = (void *(*)(void *, size_t, size_t, int, ...))
		dlsym(RTLD_NEXT, "mremap");
	resolving = false;
}

/* False while this thread is inside dlsym(): use the raw syscall then. */
static bool resolve(void)
{
	if (resolving)
		return false;
	pthread_once(&once, do_resolve);
	return true;
}

void shim_real_init(void)
{
	resolve();
}

void *shim_real_mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	if (resolve() && real.mmap)
		return real.mmap(addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

void *shim_real_mmap64(void *addr, size_t len, int prot, int flags, int fd,
		       off64_t off)
{
	if (resolve() && real.mmap64)
		return real.mmap64(addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int shim_real_munmap(void *addr, size_t len)
{
	if (resolve() && real.munmap)
		return real.munmap(addr, len);
	return (int)syscall(SYS_munmap, addr, len);
}

int shim_real_memfd_create(const char *name, unsigned int flags)
{
	if (resolve() && real.memfd_create)
		return real.memfd_create(name, flags);
	return (int)syscall(SYS_memfd_create, name, flags);
}

int shim_real_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (resolve() && real.fallocate)
		return real.fallocate(fd, mode, off, len);
	return (int)syscall(SYS_fallocate, fd, mode, off, len);
}

int shim_real_fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	if (resolve() && real.fallocate64)
		return real.fallocate64(fd, mode, off, len);
	return (int)syscall(SYS_fallocate, fd, mode, off, len);
}

int shim_real_madvise(void *addr, size_t len, int advice)
{
	if (resolve() && real.madvise)
		return real.madvise(addr, len, advice);
	return (int)syscall(SYS_madvise, addr, len, advice);
}

int shim_real_posix_madvise(void *addr, size_t len, int advice)
{
	if (resolve() && real.posix_madvise)
		return real.posix_madvise(addr, len, advice);
	/* glibc's: POSIX_MADV_DONTNEED would destroy data, so it is a no-op. */
	if (advice == POSIX_MADV_DONTNEED)
		return 0;
	return syscall(SYS_madvise, addr, len, advice) ? errno : 0;
}

void *shim_real_mremap(void *old, size_t old_len, size_t new_len, int flags,
		       void *new_addr)
{
	if (resolve() && real.mremap)
		return real.mremap(old, old_len, new_len, flags, new_addr);
	return (void *)syscall(SYS_mremap, old, old_len, new_len, flags,
			       new_addr);
}
