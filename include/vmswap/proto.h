/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Wire protocol between libvmswap.so (the shim, inside the VMM) and
 * vmswap-helper, over a SOCK_SEQPACKET socket: one message per packet,
 * file descriptors travel as SCM_RIGHTS. Every request carries a seq and
 * gets exactly one VMSWAP_MSG_REPLY with the same seq.
 *
 * The helper never trusts this side: vmswap_msg_check() validates sizes
 * and types before anything else looks at a message.
 */
#ifndef VMSWAP_PROTO_H
#define VMSWAP_PROTO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VMSWAP_PAGE_SIZE 4096u

#define VMSWAP_PROTO_MAGIC 0x56535750u /* "VSWP" */
#define VMSWAP_PROTO_VERSION 1
#define VMSWAP_REASON_MAX 128
#define VMSWAP_NAME_MAX 64

enum vmswap_msg_type {
	/* shim -> helper: a process joins. fds: [uffd] if VMSWAP_HELLO_HAS_UFFD. */
	VMSWAP_MSG_HELLO = 1,
	/* shim -> helper: a guest-memory mapping appeared. fds: [memfd]. */
	VMSWAP_MSG_REGION_ADD = 2,
	/* shim -> helper: [addr, addr+len) of this process is no longer guest memory. */
	VMSWAP_MSG_REGION_DEL = 3,
	/* helper -> shim: answer to a request. */
	VMSWAP_MSG_REPLY = 4,
	/* shim -> helper: the VMM punched [offset, offset+len) of a guest memfd. fds: [memfd]. */
	VMSWAP_MSG_DISCARD = 5,
	/*
	 * shim -> helper, one way (no reply): this shim stopped waiting for
	 * the helper (a request timed out, or the protocol broke) and runs
	 * unmanaged from now on; the helper must not start swapping again.
	 */
	VMSWAP_MSG_GIVEUP = 6,
};

struct vmswap_msg_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t size; /* of the whole message, header included */
	uint32_t seq;
};

#define VMSWAP_HELLO_HAS_UFFD 0x1u
/* A process that exec'd with the shim: its own address space, nothing inherited. */
#define VMSWAP_HELLO_EXEC 0x2u

struct vmswap_msg_hello {
	struct vmswap_msg_hdr hdr;
	int32_t pid;       /* the process sending this */
	int32_t vmm_pid;   /* the VMM this process belongs to (== pid for the VMM) */
	uint32_t flags;    /* VMSWAP_HELLO_* */
	int32_t uffd_errno; /* why there is no uffd, when !HAS_UFFD */
	char reason[VMSWAP_REASON_MAX]; /* NUL-terminated, why unmanaged */
};

struct vmswap_msg_region_add {
	struct vmswap_msg_hdr hdr;
	uint64_t addr;   /* host virtual address in the sending process */
	uint64_t len;    /* bytes, page aligned */
	uint64_t offset; /* offset of addr inside the memfd, page aligned */
	char name[VMSWAP_NAME_MAX]; /* memfd name, NUL-terminated (informational) */
};

struct vmswap_msg_region_del {
	struct vmswap_msg_hdr hdr;
	uint64_t addr;
	uint64_t len;
};

struct vmswap_msg_discard {
	struct vmswap_msg_hdr hdr;
	uint64_t offset;
	uint64_t len;
};

/*
 * In a refused HELLO's reply: nothing is saved or registered and any later
 * enable scans for uncovered mappings, so the process may keep its guest
 * mappings unmanaged. Without it, a refused fork child must make them
 * inaccessible: pages may be held by the helper.
 */
#define VMSWAP_REPLY_MAY_KEEP 0x1u

struct vmswap_msg_giveup {
	struct vmswap_msg_hdr hdr;
	int32_t pid;
	int32_t err;    /* errno of the failed request */
	char reason[VMSWAP_REASON_MAX]; /* NUL-terminated */
};

struct vmswap_msg_reply {
	struct vmswap_msg_hdr hdr;
	int32_t result; /* 0 or -errno */
	uint32_t flags; /* VMSWAP_REPLY_* */
	char message[VMSWAP_REASON_MAX]; /* NUL-terminated, for the log */
};

/* Largest message either side ever sends or accepts. */
#define VMSWAP_MSG_MAX 512
/* Most fds one message may carry. */
#define VMSWAP_MSG_MAX_FDS 1

static inline void vmswap_msg_init(struct vmswap_msg_hdr *h, uint16_t type,
				   uint32_t size, uint32_t seq)
{
	h->magic = VMSWAP_PROTO_MAGIC;
	h->version = VMSWAP_PROTO_VERSION;
	h->type = type;
	h->size = size;
	h->seq = seq;
}

/* Size a message of @type must have, or 0 for an unknown type. */
static inline size_t vmswap_msg_size(uint16_t type)
{
	switch (type) {
	case VMSWAP_MSG_HELLO: return sizeof(struct vmswap_msg_hello);
	case VMSWAP_MSG_REGION_ADD: return sizeof(struct vmswap_msg_region_add);
	case VMSWAP_MSG_REGION_DEL: return sizeof(struct vmswap_msg_region_del);
	case VMSWAP_MSG_REPLY: return sizeof(struct vmswap_msg_reply);
	case VMSWAP_MSG_DISCARD: return sizeof(struct vmswap_msg_discard);
	case VMSWAP_MSG_GIVEUP: return sizeof(struct vmswap_msg_giveup);
	default: return 0;
	}
}

/* Number of fds a message of @type must carry (HELLO: 0 or 1, see flags). */
static inline int vmswap_msg_nfds(const struct vmswap_msg_hdr *h)
{
	switch (h->type) {
	case VMSWAP_MSG_HELLO:
		return (((const struct vmswap_msg_hello *)h)->flags &
			VMSWAP_HELLO_HAS_UFFD) ? 1 : 0;
	case VMSWAP_MSG_REGION_ADD:
	case VMSWAP_MSG_DISCARD:
		return 1;
	default:
		return 0;
	}
}

/*
 * Validate a received packet of @len bytes carrying @nfds fds.
 * Returns 0, or -EPROTO (bad header, size or type) / -EBADMSG (wrong fd
 * count, unterminated string, unaligned or empty range).
 */
static inline int vmswap_msg_check(const void *buf, size_t len, int nfds)
{
	const struct vmswap_msg_hdr *h = buf;
	size_t want;

	if (len < sizeof(*h) || h->magic != VMSWAP_PROTO_MAGIC ||
	    h->version != VMSWAP_PROTO_VERSION)
		return -EPROTO;
	want = vmswap_msg_size(h->type);
	if (!want || h->size != len || len != want)
		return -EPROTO;
	if (nfds != vmswap_msg_nfds(h))
		return -EBADMSG;
	switch (h->type) {
	case VMSWAP_MSG_HELLO: {
		const struct vmswap_msg_hello *m = buf;
		if (!memchr(m->reason, 0, sizeof(m->reason)) || m->pid <= 0 ||
		    m->vmm_pid <= 0 || (m->flags & ~(VMSWAP_HELLO_HAS_UFFD | VMSWAP_HELLO_EXEC)))
			return -EBADMSG;
		break;
	}
	case VMSWAP_MSG_REGION_ADD: {
		const struct vmswap_msg_region_add *m = buf;
		if (!memchr(m->name, 0, sizeof(m->name)) || !m->len ||
		    ((m->addr | m->len | m->offset) & (VMSWAP_PAGE_SIZE - 1)) ||
		    m->addr + m->len < m->addr || m->offset + m->len < m->offset)
			return -EBADMSG;
		break;
	}
	case VMSWAP_MSG_REGION_DEL: {
		const struct vmswap_msg_region_del *m = buf;
		if (!m->len || ((m->addr | m->len) & (VMSWAP_PAGE_SIZE - 1)) ||
		    m->addr + m->len < m->addr)
			return -EBADMSG;
		break;
	}
	case VMSWAP_MSG_DISCARD: {
		const struct vmswap_msg_discard *m = buf;
		if (!m->len || m->offset + m->len < m->offset)
			return -EBADMSG;
		break;
	}
	case VMSWAP_MSG_REPLY: {
		const struct vmswap_msg_reply *m = buf;
		if (!memchr(m->message, 0, sizeof(m->message)) ||
		    (m->flags & ~VMSWAP_REPLY_MAY_KEEP))
			return -EBADMSG;
		break;
	}
	case VMSWAP_MSG_GIVEUP: {
		const struct vmswap_msg_giveup *m = buf;
		if (!memchr(m->reason, 0, sizeof(m->reason)) || m->pid <= 0)
			return -EBADMSG;
		break;
	}
	}
	return 0;
}

#endif
