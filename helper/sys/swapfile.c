/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmswap/proto.h>
#include <vmswap/util.h>

#include "log.h"
#include "swapfile.h"

static uint64_t fail_write_after = UINT64_MAX;
static uint64_t fail_read_first = UINT64_MAX, fail_read_count;
static atomic_ullong writes_done, reads_done, read_errors;

int vs_swapfile_init_faults(void)
{
	const char *w = getenv(VMSWAP_ENV_TEST_FAIL_WRITE_AFTER);
	const char *rd = getenv(VMSWAP_ENV_TEST_FAIL_READS);
	int r = 0;

	fail_write_after = fail_read_first = UINT64_MAX;
	fail_read_count = 0;
	atomic_store(&writes_done, 0);
	atomic_store(&reads_done, 0);
	atomic_store(&read_errors, 0);
	/* The shim reported bad values already: ignore them, quietly. */
	if (w && *w && vmswap_parse_count(w, NULL, &fail_write_after)) {
		fail_write_after = UINT64_MAX;
		r = -EINVAL;
	}
	if (rd && *rd && vmswap_parse_fail_range(rd, &fail_read_first, &fail_read_count)) {
		fail_read_first = UINT64_MAX;
		fail_read_count = 0;
		r = -EINVAL;
	}
	return r;
}

int vs_swapfile_create(const char *dir, bool *direct)
{
	/*
	 * Mode 0 and no name: no other process can ever open it, not even
	 * through /proc/<pid>/fd; neither do we (swap-in toggles O_DIRECT).
	 * O_DIRECT where the filesystem has it: no dirty page cache to write
	 * back and drop, so the memory is free when the write returns. All
	 * our buffers and offsets are page aligned.
	 */
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_DIRECT, 0);

	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == EISDIR || errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	return fd;
}

int vs_swapfile_write(int fd, uint32_t slot, const void *buf, size_t npages)
{
	struct iovec iov = { (void *)buf, npages * VMSWAP_PAGE_SIZE };

	return vs_swapfile_writev(fd, slot, &iov, 1);
}

int vs_swapfile_writev(int fd, uint32_t slot, struct iovec *iov, int cnt)
{
	off_t off = (off_t)slot * VMSWAP_PAGE_SIZE;

	if (fail_write_after != UINT64_MAX &&
	    atomic_fetch_add(&writes_done, 1) >= fail_write_after)
		return -EIO;
	while (cnt > 0) {
		ssize_t n = pwritev(fd, iov, cnt, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += n;
		/* A short write: step past what went out. */
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

bool vs_swapfile_read_injected(void)
{
	uint64_t k;

	if (!fail_read_count)
		return false;
	k = atomic_fetch_add(&reads_done, 1);
	return k >= fail_read_first && k - fail_read_first < fail_read_count;
}

void vs_swapfile_read_failed(void)
{
	atomic_fetch_add(&read_errors, 1);
}

static int do_read(int fd, uint32_t slot, void *buf, size_t npages)
{
	size_t len = npages * VMSWAP_PAGE_SIZE, done = 0;
	off_t off = (off_t)slot * VMSWAP_PAGE_SIZE;

	if (vs_swapfile_read_injected())
		return -EIO;
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

int vs_swapfile_read(int fd, uint32_t slot, void *buf, size_t npages)
{
	int r = do_read(fd, slot, buf, npages);

	if (r)
		atomic_fetch_add(&read_errors, 1);
	return r;
}

uint64_t vs_swapfile_read_errors(void)
{
	return atomic_load(&read_errors);
}
