/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../helper/model/helper.h"
#include "../helper/sys/swapfile.h"
#include "fixture.h"

int fx_state(pid_t vmm_pid)
{
	char dir[] = "/tmp/vmswap-fixture-XXXXXX";

	vs_helper_init(vmm_pid);
	snprintf(vs.swap.dir, sizeof(vs.swap.dir), "/tmp");
	if (!mkdtemp(dir))
		return -errno;
	vs.swap.fd = vs_swapfile_create(dir, &vs.swap.direct);
	rmdir(dir);
	return vs.swap.fd < 0 ? vs.swap.fd : 0;
}

int fx_memfd(const char *name, uint64_t bytes)
{
	int fd = memfd_create(name, MFD_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = ftruncate(fd, (off_t)bytes) < 0 ? -errno : fd;
	if (r < 0)
		close(fd);
	return r;
}

int fx_object(const char *name, uint64_t npages)
{
	int fd = fx_memfd(name, npages * VS_PAGE_SIZE);

	return fd < 0 ? fd : vs_obj_get(fd, name, npages * VS_PAGE_SIZE);
}

int fx_uffd(int flags)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | flags);

	return fd < 0 ? -errno : fd;
}

static uint64_t word(uint64_t pg, uint64_t w, uint64_t gen)
{
	uint64_t x = (pg << 32) ^ (w << 8) ^ gen ^ 0x9e3779b97f4a7c15ull;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	return (x ^ (x >> 29)) | 1;
}

void fx_fill_page(uint8_t *p, uint64_t pg, uint64_t gen)
{
	for (uint64_t w = 0; w < VS_PAGE_SIZE / 8; w++)
		((uint64_t *)p)[w] = gen ? word(pg, w, gen) : 0;
}

bool fx_page_is(const uint8_t *p, uint64_t pg, uint64_t gen)
{
	for (uint64_t w = 0; w < VS_PAGE_SIZE / 8; w++)
		if (((const uint64_t *)p)[w] != (gen ? word(pg, w, gen) : 0))
			return false;
	return true;
}

struct vmswap_msg_hello fx_hello(pid_t pid, pid_t vmm_pid, bool has_uffd, uint32_t seq)
{
	struct vmswap_msg_hello h = { .pid = pid, .vmm_pid = vmm_pid,
				      .flags = has_uffd ? VMSWAP_HELLO_HAS_UFFD : 0 };

	vmswap_msg_init(&h.hdr, VMSWAP_MSG_HELLO, sizeof(h), seq);
	return h;
}

struct vmswap_msg_region_add fx_region_add(uint64_t addr, uint64_t len, uint64_t off,
					   uint32_t seq)
{
	struct vmswap_msg_region_add m = { .addr = addr, .len = len, .offset = off };

	vmswap_msg_init(&m.hdr, VMSWAP_MSG_REGION_ADD, sizeof(m), seq);
	snprintf(m.name, sizeof(m.name), "fixture-guest");
	return m;
}

struct vmswap_msg_region_del fx_region_del(uint64_t addr, uint64_t len, uint32_t seq)
{
	struct vmswap_msg_region_del m = { .addr = addr, .len = len };

	vmswap_msg_init(&m.hdr, VMSWAP_MSG_REGION_DEL, sizeof(m), seq);
	return m;
}

struct vmswap_msg_discard fx_discard(uint64_t off, uint64_t len, uint32_t seq)
{
	struct vmswap_msg_discard m = { .offset = off, .len = len };

	vmswap_msg_init(&m.hdr, VMSWAP_MSG_DISCARD, sizeof(m), seq);
	return m;
}

int fx_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(FX_MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds < 0 || nfds > FX_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int fx_recv_reply(int sock, bool wait, struct vmswap_msg_reply *rep)
{
	union {
		struct vmswap_msg_reply rep;
		char buf[VMSWAP_MSG_MAX];
	} in;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(FX_MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = { in.buf, sizeof(in.buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
	int nfds = 0;

	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		for (size_t i = 0; c->cmsg_type == SCM_RIGHTS &&
				   i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
			nfds++;
		}
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || vmswap_msg_check(in.buf, (size_t)n, nfds) ||
	    in.rep.hdr.type != VMSWAP_MSG_REPLY)
		return -EPROTO;
	*rep = in.rep;
	return 0;
}
