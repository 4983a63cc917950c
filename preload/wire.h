/* SPDX-License-Identifier: BSD-3-Clause */
/* The transport under the helper connection. */
#ifndef SHIM_WIRE_H
#define SHIM_WIRE_H

#include <vmswap/proto.h>

/* How long the helper may take to answer one request. */
#define SHIM_WIRE_TIMEOUT_MS 10000

/*
 * Send @m (seq already set) on @sock with @fd (-1: none) as SCM_RIGHTS
 * and wait for the valid REPLY with the same seq. 0 with *rep filled, or
 * -ETIMEDOUT, -EPIPE (peer closed), -EPROTO (bad reply) or another
 * -errno. Async-signal-safe, for the fork child.
 */
int shim_wire_xfer(int sock, struct vmswap_msg_hdr *m, int fd,
		   struct vmswap_msg_reply *rep);

/* The same, waiting up to @timeout_ms for the reply. */
int shim_wire_xfer_wait(int sock, struct vmswap_msg_hdr *m, int fd,
			struct vmswap_msg_reply *rep, long timeout_ms);

/* Send @m without waiting for anything (a one-way notice). 0 or -errno. */
int shim_wire_send(int sock, const struct vmswap_msg_hdr *m);

#endif
