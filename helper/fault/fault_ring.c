/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <liburing.h>
#include <stdbool.h>

#include "fault_ring.h"

static struct io_uring ring;
static bool ring_up;

int vs_ring_open(unsigned entries, int efd)
{
	struct io_uring_restriction only_read[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READ },
	};
	int r = io_uring_queue_init(entries, &ring, IORING_SETUP_R_DISABLED);

	if (r)
		return r;
	if ((r = io_uring_register_eventfd(&ring, efd)) ||
	    /* The generic call: this liburing exports no wrapper for these two. */
	    (r = io_uring_register(ring.ring_fd, IORING_REGISTER_RESTRICTIONS, only_read, 1)) < 0 ||
	    (r = io_uring_register(ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0)) < 0) {
		io_uring_queue_exit(&ring);
		return r;
	}
	ring_up = true;
	return 0;
}

void vs_ring_close(void)
{
	if (ring_up)
		io_uring_queue_exit(&ring); /* waits for reads in flight */
	ring_up = false;
}

/* Entries queued since the last submit, in order, to take back on failure. */
static struct io_uring_sqe *queued[VS_RING_MAX_QUEUED];
static int nqueued;

int vs_ring_read(int fd, uint64_t off, void *buf, uint32_t len, uint64_t tag)
{
	struct io_uring_sqe *sqe;

	if (nqueued == VS_RING_MAX_QUEUED || !(sqe = io_uring_get_sqe(&ring)))
		return -EBUSY; /* more reads than entries: the caller keeps fewer in flight */
	io_uring_prep_read(sqe, fd, buf, len, off);
	io_uring_sqe_set_data64(sqe, tag);
	queued[nqueued++] = sqe;
	return 0;
}

int vs_ring_submit(void)
{
	int r, n = nqueued;

	if (!n)
		return 0;
	do
		r = io_uring_submit(&ring);
	while (r == -EINTR);
	nqueued = 0;
	if (r >= n)
		return n;
	/* Those left stay queued for a later submit: make them read nothing, unseen. */
	for (int i = r < 0 ? 0 : r; i < n; i++) {
		queued[i]->len = 0;
		io_uring_sqe_set_data64(queued[i], VS_RING_NONE);
	}
	return r;
}

int vs_ring_reap(uint64_t *tags, int *res, int max, bool wait)
{
	struct io_uring_cqe *cqe;
	int n = 0;

	if (wait) {
		int r = io_uring_wait_cqe(&ring, &cqe);

		if (r)
			return r;
	}

	while (n < max && io_uring_peek_cqe(&ring, &cqe) == 0) {
		tags[n] = io_uring_cqe_get_data64(cqe);
		res[n] = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		n += tags[n] != VS_RING_NONE;
	}
	return n;
}
