/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anon.h"
#include "log.h"
#include "real.h"

void *shim_anon_map(const struct shim_map *m, shim_mmap_fn call,
		    struct shim_region *r, const char **what)
{
	int flags = (m->flags & ~(MAP_TYPE | MAP_ANONYMOUS)) | MAP_SHARED;
	struct stat st;
	void *p;
	int fd, err;

	/* The real one: a memfd of ours is not the VMM's to classify. */
	fd = shim_real_memfd_create(SHIM_ANON_NAME, MFD_CLOEXEC);
	if (fd < 0) {
		*what = "memfd_create";
		return MAP_FAILED;
	}
	if (ftruncate(fd, (off_t)r->len) || fstat(fd, &st)) {
		*what = "ftruncate";
		goto fail;
	}
	p = call(m->addr, m->len, m->prot, flags, fd, 0);
	if (p == MAP_FAILED) {
		*what = "mmap";
		goto fail;
	}
	r->addr = (uintptr_t)p;
	r->memfd = fd;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	return p;
fail:
	err = errno;
	close(fd);
	errno = err;
	return MAP_FAILED;
}

void shim_anon_failed(const char *what, int err)
{
	static atomic_bool logged;

	if (!atomic_exchange(&logged, true))
		shim_log(SHIM_LOG_WARN, "cannot map anonymous guest memory from "
			 "a memfd (%s: %s); it runs unmanaged", what,
			 strerror(err));
}

bool shim_anon_same(int memfd, dev_t dev, ino_t ino)
{
	struct stat st;

	return memfd >= 0 && !fstat(memfd, &st) && st.st_dev == dev &&
	       st.st_ino == ino;
}

int shim_anon_grow(int memfd, uint64_t size)
{
	struct stat st;

	if (fstat(memfd, &st))
		return -errno;
	if ((uint64_t)st.st_size >= size)
		return 0;
	return ftruncate(memfd, (off_t)size) ? -errno : 0;
}

int shim_anon_punch(int memfd, uint64_t off, uint64_t len)
{
	return shim_real_fallocate(memfd, FALLOC_FL_PUNCH_HOLE |
				   FALLOC_FL_KEEP_SIZE, (off_t)off,
				   (off_t)len) ? -errno : 0;
}
