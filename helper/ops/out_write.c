/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writing a batch of pages to the swap file, for out (op_out.c and
 * out_inplace.c); see out.h. A page may leave guest memory or staging
 * only once this returned 0 for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../model/helper.h"
#include "../sys/swapfile.h"
#include "out.h"

int vs_out_write_pages(const uint8_t *base, const uint64_t *pg, const uint32_t *slot,
		       uint64_t count, struct vs_out_io *io)
{
	struct iovec iov[OUT_BATCH];
	uint64_t i = 0;
	int r = 0;

	while (i < count && !r) {
		uint64_t j = i + 1;
		int cnt = 1;

		iov[0].iov_base = (void *)(base + pg[i] * VS_PAGE_SIZE);
		iov[0].iov_len = VS_PAGE_SIZE;
		for (; j < count && slot[j] == slot[i] + (j - i); j++) {
			if (pg[j] == pg[j - 1] + 1) {
				iov[cnt - 1].iov_len += VS_PAGE_SIZE;
			} else {
				iov[cnt].iov_base = (void *)(base + pg[j] * VS_PAGE_SIZE);
				iov[cnt++].iov_len = VS_PAGE_SIZE;
			}
		}
		r = vs_swapfile_writev(vs.swap.fd, slot[i], iov, cnt);
		io->lo = slot[i] < io->lo ? slot[i] : io->lo;
		io->hi = slot[j - 1] + 1 > io->hi ? slot[j - 1] + 1 : io->hi;
		i = j;
	}
	return r;
}

int vs_out_sync(const struct vs_out_io *io, const char **what)
{
	*what = "writing";
	if (vs.swap.direct || io->lo >= io->hi)
		return 0;
	if (fdatasync(vs.swap.fd) < 0) {
		*what = "syncing";
		return -errno;
	}
	/* Clean now: give the host its memory as we go, not at the end. */
	posix_fadvise(vs.swap.fd, (off_t)io->lo * VS_PAGE_SIZE,
		      (off_t)(io->hi - io->lo) * VS_PAGE_SIZE, POSIX_FADV_DONTNEED);
	return 0;
}

int vs_out_write_turn(uint64_t turn, int (*fn)(void *), void *arg, const struct vs_out_io *io,
		      const char **what)
{
	int r = vs_out_turn_run(turn, fn, arg);

	*what = "writing";
	return r ? r : vs_out_sync(io, what);
}
