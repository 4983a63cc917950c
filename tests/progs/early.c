/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libearly.so: its constructor maps guest memory (memfd_create + mmap)
 * before main, and, depending on where it sits among the libraries,
 * before libvmswap.so's own constructor has run. Size in MiB from
 * $MAPPER_EARLY_MB (default 8). The memfd is closed once mapped, as some
 * VMMs do.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mapper.h"

__attribute__((visibility("default"))) struct mapper_early mapper_early;

__attribute__((constructor)) static void early_map(void)
{
	const char *mb = getenv("MAPPER_EARLY_MB");
	size_t len = (size_t)(mb ? strtoul(mb, NULL, 10) : 8) << 20;
	void *p;
	int fd;

	mapper_early.name = "guest-early";
	fd = memfd_create(mapper_early.name, MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
		mapper_early.err = errno;
		return;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	mapper_early.err = p == MAP_FAILED ? errno : 0;
	close(fd);
	if (p != MAP_FAILED) {
		mapper_early.addr = p;
		mapper_early.len = len;
	}
}
