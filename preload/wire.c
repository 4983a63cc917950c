/* SPDX-License-Identifier: BSD-3-Clause */
/* One request and its reply on a SOCK_SEQPACKET socket; fork-child safe. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Close fds the peer should not have sent; returns how many there were. */
static int drop_fds(struct msghdr *mh)
{
	int nfds = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		     i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
			nfds++;
		}
	}
	return nfds;
}

/* Wait for the valid REPLY to @seq, up to the timeout. */
static int recv_reply(int sock, uint32_t seq, struct vmswap_msg_reply *rep, long timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	union {
		char buf[VMSWAP_MSG_MAX];
		struct vmswap_msg_reply rep;
	} in;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;

	for (;;) {
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		struct iovec iov = { in.buf, sizeof(in.buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		long left = deadline - now_ms();
		ssize_t n;
		int nfds;

		/*
		 * Past the deadline, still look once: a reply that came while
		 * the VMM was stopped (a freeze) is not late.
		 */
		n = poll(&pfd, 1, left > 0 ? (int)left : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 && left <= 0)
			return -ETIMEDOUT;
		if (n == 0)
			continue;
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		nfds = drop_fds(&mh);
		if (n == 0)
			return -EPIPE;
		if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) ||
		    vmswap_msg_check(in.buf, (size_t)n, nfds) ||
		    in.rep.hdr.type != VMSWAP_MSG_REPLY || in.rep.hdr.seq != seq)
			return -EPROTO;
		*rep = in.rep;
		return 0;
	}
}

int shim_wire_xfer(int sock, struct vmswap_msg_hdr *m, int fd,
		   struct vmswap_msg_reply *rep)
{
	return shim_wire_xfer_wait(sock, m, fd, rep, SHIM_WIRE_TIMEOUT_MS);
}

int shim_wire_send(int sock, const struct vmswap_msg_hdr *m)
{
	ssize_t n;

	do
		n = send(sock, m, m->size, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == m->size ? 0 : -EPROTO;
}

int shim_wire_xfer_wait(int sock, struct vmswap_msg_hdr *m, int fd,
			struct vmswap_msg_reply *rep, long timeout_ms)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { m, m->size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != m->size)
		return -EPROTO;
	return recv_reply(sock, m->seq, rep, timeout_ms);
}
