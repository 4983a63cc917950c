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

struct batch {
	const uint8_t *base;
	const uint64_t *pg;
	const uint32_t *slot;
	uint64_t count;
	uint32_t lo, hi; /* the slots written */
};

/* One pwritev per run of consecutive slots. */
static int write_runs(struct batch *b)
{
	struct iovec iov[OUT_BATCH];
	uint64_t i = 0;
	int r = 0;

	while (i < b->count && !r) {
		uint64_t j = i + 1;
		int cnt = 1;

		iov[0].iov_base = (void *)(b->base + b->pg[i] * VS_PAGE_SIZE);
		iov[0].iov_len = VS_PAGE_SIZE;
		for (; j < b->count && b->slot[j] == b->slot[i] + (j - i); j++) {
			if (b->pg[j] == b->pg[j - 1] + 1) {
				iov[cnt - 1].iov_len += VS_PAGE_SIZE;
			} else {
				iov[cnt].iov_base = (void *)(b->base + b->pg[j] * VS_PAGE_SIZE);
				iov[cnt++].iov_len = VS_PAGE_SIZE;
			}
		}
		r = vs_swapfile_writev(vs.swap.fd, b->slot[i], iov, cnt);
		b->lo = b->slot[i] < b->lo ? b->slot[i] : b->lo;
		b->hi = b->slot[j - 1] + 1 > b->hi ? b->slot[j - 1] + 1 : b->hi;
		i = j;
	}
	return r;
}

int vs_out_write(const uint8_t *base, const uint64_t *pg, const uint32_t *slot, uint64_t count,
		 uint64_t turn, const char **what)
{
	struct batch b = { base, pg, slot, count, UINT32_MAX, 0 };
	int r;

	vs_out_turn_wait(turn);
	r = write_runs(&b);
	vs_out_turn_done(turn);

	*what = "writing";
	if (r || vs.swap.direct || !count)
		return r;
	if (fdatasync(vs.swap.fd) < 0) {
		*what = "syncing";
		return -errno;
	}
	/* Clean now: give the host its memory as we go, not at the end. */
	posix_fadvise(vs.swap.fd, (off_t)b.lo * VS_PAGE_SIZE, (off_t)(b.hi - b.lo) * VS_PAGE_SIZE,
		      POSIX_FADV_DONTNEED);
	return 0;
}
