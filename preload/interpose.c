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
#include <stdbool.h>
#include <sys/mman.h>

#include "guest.h"
#include "init.h"
#include "memfd.h"
#include "real.h"
#include "regions.h"

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

/* Could this call create or replace guest memory? */
static bool mmap_slow(void *addr, size_t len, int flags, int fd)
{
	if ((flags & MAP_FIXED) && shim_regions_count() &&
	    shim_regions_overlap((uintptr_t)addr, len))
		return true;
	return fd >= 0 && (flags & MAP_SHARED);
}

/* Bookkeeping around one mmap/mmap64 call; @call does the real one. */
#define MMAP_BODY(call)                                                      \
	do {                                                                 \
		struct shim_map m = { NULL, len, prot, flags, fd,            \
				      (uint64_t)off };                       \
		int err;                                                     \
                                                                             \
		if (!mmap_slow(addr, len, flags, fd) || !shim_active())      \
			return call;                                         \
		err = errno;                                                 \
		if (flags & MAP_FIXED)                                       \
			shim_guest_replacing(addr, len);                     \
		errno = err;                                                 \
		m.addr = call;                                               \
		if (m.addr == MAP_FAILED)                                    \
			return m.addr;                                       \
		err = errno;                                                 \
		shim_guest_mapped(&m);                                       \
		errno = err;                                                 \
		return m.addr;                                               \
	} while (0)

SHIM_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		       off_t off)
{
	MMAP_BODY(shim_real_mmap(addr, len, prot, flags, fd, off));
}

SHIM_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
			 off64_t off)
{
	MMAP_BODY(shim_real_mmap64(addr, len, prot, flags, fd, off));
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
