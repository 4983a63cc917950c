/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include "uffd.h"

int vs_uffd_api(int uffd, bool *wp)
{
	/* Richest first; an unsupported feature fails without consuming the handshake. */
	static const uint64_t wanted[] = {
		UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE |
			UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMAP |
			UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
		UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE |
			UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMAP,
		UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_EVENT_REMOVE,
		UFFD_FEATURE_MISSING_SHMEM,
	};
	int err = EINVAL;

	for (unsigned i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		struct uffdio_api api = { .api = UFFD_API, .features = wanted[i] };

		if (ioctl(uffd, UFFDIO_API, &api) == 0) {
			if (!(api.ioctls & (1ull << _UFFDIO_REGISTER)))
				return -EOPNOTSUPP;
			*wp = api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
			return 0;
		}
		err = errno;
		if (err != EINVAL)
			break;
	}
	return -err;
}

int vs_uffd_register(int uffd, uint64_t addr, uint64_t len, bool wp)
{
	struct uffdio_register reg = {
		.range = { .start = addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | (wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};
	const uint64_t need = (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_ZEROPAGE) |
			      (1ull << _UFFDIO_WAKE) | (wp ? 1ull << _UFFDIO_WRITEPROTECT : 0);

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return -errno;
	if ((reg.ioctls & need) != need) {
		vs_uffd_unregister(uffd, addr, len);
		return -EOPNOTSUPP;
	}
	return 0;
}

int vs_uffd_unregister(int uffd, uint64_t addr, uint64_t len)
{
	struct uffdio_range r = { .start = addr, .len = len };

	return ioctl(uffd, UFFDIO_UNREGISTER, &r) < 0 ? -errno : 0;
}

int vs_uffd_copy(int uffd, uint64_t dst, const void *src, uint64_t len, uint64_t *done)
{
	uint64_t off = 0;

	while (off < len) {
		struct uffdio_copy c = {
			.dst = dst + off,
			.src = (uint64_t)(uintptr_t)src + off,
			.len = len - off,
		};
		if (ioctl(uffd, UFFDIO_COPY, &c) == 0) {
			off = len;
			break;
		}
		int err = errno;
		if (c.copy > 0)
			off += (uint64_t)c.copy;
		if (err == EAGAIN && c.copy > 0)
			continue; /* partial copy: go on from there */
		if (done)
			*done = off;
		return -err;
	}
	if (done)
		*done = off;
	return 0;
}

int vs_uffd_zeropage(int uffd, uint64_t dst, uint64_t len)
{
	struct uffdio_zeropage z = { .range = { .start = dst, .len = len } };

	return ioctl(uffd, UFFDIO_ZEROPAGE, &z) < 0 ? -errno : 0;
}

int vs_uffd_wake(int uffd, uint64_t addr, uint64_t len)
{
	struct uffdio_range r = { .start = addr, .len = len };

	return ioctl(uffd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

int vs_uffd_writeprotect(int uffd, uint64_t addr, uint64_t len, bool protect)
{
	struct uffdio_writeprotect w = {
		.range = { .start = addr, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0, /* unprotect wakes */
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w) < 0 ? -errno : 0;
}
