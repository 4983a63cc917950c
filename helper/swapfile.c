/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper.h"
#include "swapfile.h"

static long fail_write_after = -1;
static atomic_long writes_done;

void vs_swapfile_init_faults(void)
{
	const char *s = getenv("VMSWAP_TEST_FAIL_WRITE_AFTER");

	if (s && *s)
		fail_write_after = strtol(s, NULL, 10);
}

int vs_swapfile_create(const char *dir, bool *direct)
{
	/*
	 * No name: no other process can open it by path. Mode 0400: swap-in
	 * reopens it read-only through /proc/self/fd, which checks the mode
	 * even for the owner, and the helper has no CAP_DAC_* by then.
	 * O_DIRECT where the filesystem has it: no dirty page cache to write
	 * back and drop, so the memory is free when the write returns. All
	 * our buffers and offsets are page aligned.
	 */
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_DIRECT, S_IRUSR);

	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, S_IRUSR);
	if (fd < 0)
		return errno == EISDIR || errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	return fd;
}

int vs_swapfile_write(int fd, uint32_t slot, const void *buf, size_t npages)
{
	size_t len = npages * VS_PAGE_SIZE, done = 0;
	off_t off = (off_t)slot * VS_PAGE_SIZE;

	if (fail_write_after >= 0 && atomic_fetch_add(&writes_done, 1) >= fail_write_after)
		return -EIO;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

int vs_swapfile_read(int fd, uint32_t slot, void *buf, size_t npages)
{
	size_t len = npages * VS_PAGE_SIZE, done = 0;
	off_t off = (off_t)slot * VS_PAGE_SIZE;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}
