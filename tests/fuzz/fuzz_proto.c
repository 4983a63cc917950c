/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the wire-protocol check (vmswap_msg_check in
 * include/vmswap/proto.h) that every packet from the VMM side passes
 * before the helper looks at it. The first input byte is the number of
 * fds the packet carried; the rest is the packet, as recvmsg() would
 * leave it in the helper's buffer. Whatever the check accepts must be
 * safe for the helper to use as it does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmswap/proto.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Like the helper's receive buffer: aligned, at most VMSWAP_MSG_MAX. */
	static union { struct vmswap_msg_hdr h; char b[VMSWAP_MSG_MAX]; } buf;
	const struct vmswap_msg_hdr *h = &buf.h;
	size_t len;
	int nfds;

	if (size < 1)
		return 0;
	nfds = data[0] % (VMSWAP_MSG_MAX_FDS + 2);
	len = size - 1 > VMSWAP_MSG_MAX ? VMSWAP_MSG_MAX : size - 1;
	memset(buf.b, 0, sizeof(buf.b));
	memcpy(buf.b, data + 1, len);
	if (vmswap_msg_check(buf.b, len, nfds))
		return 0;
	must(len == h->size && len == vmswap_msg_size(h->type) && len <= VMSWAP_MSG_MAX);
	must(nfds == vmswap_msg_nfds(h) && nfds <= VMSWAP_MSG_MAX_FDS);
	switch (h->type) {
	case VMSWAP_MSG_HELLO: {
		const struct vmswap_msg_hello *m = (const void *)buf.b;

		must(m->pid > 0 && m->vmm_pid > 0 && strlen(m->reason) < sizeof(m->reason));
		break;
	}
	case VMSWAP_MSG_REGION_ADD: {
		const struct vmswap_msg_region_add *m = (const void *)buf.b;

		must(m->len && !(m->addr % VMSWAP_PAGE_SIZE) && !(m->len % VMSWAP_PAGE_SIZE) &&
		     !(m->offset % VMSWAP_PAGE_SIZE) && m->addr + m->len > m->addr &&
		     m->offset + m->len > m->offset && strlen(m->name) < sizeof(m->name));
		break;
	}
	case VMSWAP_MSG_REGION_DEL: {
		const struct vmswap_msg_region_del *m = (const void *)buf.b;

		must(m->len && !((m->addr | m->len) % VMSWAP_PAGE_SIZE) &&
		     m->addr + m->len > m->addr);
		break;
	}
	case VMSWAP_MSG_DISCARD: {
		const struct vmswap_msg_discard *m = (const void *)buf.b;

		must(m->len && m->offset + m->len > m->offset);
		break;
	}
	case VMSWAP_MSG_REPLY: {
		const struct vmswap_msg_reply *m = (const void *)buf.b;

		must(strlen(m->message) < sizeof(m->message) && !(m->flags & ~VMSWAP_REPLY_MAY_KEEP));
		break;
	}
	case VMSWAP_MSG_GIVEUP: {
		const struct vmswap_msg_giveup *m = (const void *)buf.b;

		must(m->pid > 0 && strlen(m->reason) < sizeof(m->reason));
		break;
	}
	default:
		must(0);
	}
	return 0;
}
