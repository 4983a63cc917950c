/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The exported libc entry points. Each keeps libc's contract and errno;
 * a call that cannot concern guest memory costs one or two compares.
 */
/* With 64-bit file offsets glibc would rename mmap to mmap64 here. */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/mman.h>

#include "advise.h"
#include "closeoff.h"
#include "guest.h"
#include "init.h"
#include "memfd.h"
#include "real.h"
#include "regions.h"
#include "remap.h"

#ifndef MREMAP_DONTUNMAP /* headers older than Linux 5.7 */
#define MREMAP_DONTUNMAP 4
#endif

#define SHIM_EXPORT __attribute__((visibility("default")))

SHIM_EXPORT int memfd_create(const char *name, unsigned int flags)
{
	int fd = shim_real_memfd_create(name, flags);

	if (fd >= 0 && shim_active()) {
		int err = errno;

		shim_memfd_record(fd, name);
		errno = err;
	}
	return fd;
}

/* Could this call create or replace guest memory? Cheap: most mmaps ask. */
static bool mmap_slow(void *addr, size_t len, int flags, int fd)
{
	if ((flags & MAP_FIXED) && shim_regions_count() &&
	    shim_regions_overlap((uintptr_t)addr, len))
		return true;
	/* Anonymous guest memory: see shim_classify(). */
	if (flags & MAP_ANONYMOUS)
		return flags & (MAP_FIXED | MAP_NORESERVE);
	/* Any mapping of a memfd may be another view of guest memory. */
	return fd >= 0 && ((flags & MAP_SHARED) || shim_closeoff_active() || shim_regions_count());
}

SHIM_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		       off_t off)
{
	struct shim_map m = { addr, len, prot, flags, fd, (uint64_t)off };

	if (!mmap_slow(addr, len, flags, fd) || !shim_active())
		return shim_real_mmap(addr, len, prot, flags, fd, off);
	return shim_guest_mmap(&m, shim_real_mmap);
}

/* The same type as mmap's here: off64_t and off_t are both 64-bit. */
static void *real_mmap64(void *addr, size_t len, int prot, int flags, int fd,
			 off_t off)
{
	return shim_real_mmap64(addr, len, prot, flags, fd, off);
}

SHIM_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
			 off64_t off)
{
	struct shim_map m = { addr, len, prot, flags, fd, (uint64_t)off };

	if (!mmap_slow(addr, len, flags, fd) || !shim_active())
		return shim_real_mmap64(addr, len, prot, flags, fd, off);
	return shim_guest_mmap(&m, real_mmap64);
}

SHIM_EXPORT int munmap(void *addr, size_t len)
{
	if (!shim_regions_count() ||
	    !shim_regions_overlap((uintptr_t)addr, len))
		return shim_real_munmap(addr, len);
	return shim_guest_munmap(addr, len);
}

static void punched(int ret, int fd, int mode, uint64_t off, uint64_t len)
{
	int err;

	if (ret || !(mode & FALLOC_FL_PUNCH_HOLE) || !shim_regions_count())
		return;
	err = errno;
	shim_guest_punched(fd, off, len);
	errno = err;
}

SHIM_EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
	int r = shim_real_fallocate(fd, mode, off, len);

	punched(r, fd, mode, (uint64_t)off, (uint64_t)len);
	return r;
}

/* What callers built with _FILE_OFFSET_BITS=64 (QEMU) link against. */
SHIM_EXPORT int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	int r = shim_real_fallocate64(fd, mode, off, len);

	punched(r, fd, mode, (uint64_t)off, (uint64_t)len);
	return r;
}

SHIM_EXPORT int madvise(void *addr, size_t len, int advice)
{
	if (!shim_regions_count() || !shim_advise_relevant(advice) ||
	    !shim_regions_overlap((uintptr_t)addr, len))
		return shim_real_madvise(addr, len, advice);
	return shim_advise(addr, len, advice);
}

/*
 * glibc's posix_madvise() makes the system call itself, so madvise()
 * above never sees it. It returns an error number and leaves errno be.
 */
SHIM_EXPORT int posix_madvise(void *addr, size_t len, int advice)
{
	int saved = errno, r;

	/* POSIX_MADV_DONTNEED is a no-op in glibc; Linux values pass as is. */
	if (advice == POSIX_MADV_DONTNEED || !shim_regions_count() ||
	    !shim_advise_relevant(advice) ||
	    !shim_regions_overlap((uintptr_t)addr, len))
		return shim_real_posix_madvise(addr, len, advice);
	r = shim_advise(addr, len, advice) ? errno : 0;
	errno = saved;
	return r;
}

SHIM_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags,
			 ...)
{
	void *new_addr = NULL;

	/* As glibc: the fifth argument exists only with these flags. */
	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
		va_list ap;

		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	/* old_len 0 duplicates a shared mapping: look at its first page. */
	if (!shim_regions_count() ||
	    (!shim_regions_overlap((uintptr_t)old, old_len ? old_len : 1) &&
	     !((flags & MREMAP_FIXED) &&
	       shim_regions_overlap((uintptr_t)new_addr, new_len))))
		return shim_real_mremap(old, old_len, new_len, flags, new_addr);
	return shim_remap(old, old_len, new_len, flags, new_addr);
}
