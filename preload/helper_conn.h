/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The connection to vmswap-helper. One lock serializes requests and every
 * change to the region table; callers hold it across a whole operation.
 */
#ifndef SHIM_HELPER_CONN_H
#define SHIM_HELPER_CONN_H

#include <stdbool.h>
#include <sys/types.h>

#include <vmswap/proto.h>

void shim_conn_lock(void);
void shim_conn_unlock(void);
/* Does this thread hold the lock? (A libc call made under it re-enters us.) */
bool shim_conn_held(void);

/*
 * Start the helper on first use: create the uffd, spawn the helper, send
 * HELLO. Then, and on later calls, say whether regions go to the helper
 * (it runs and holds our uffd). Caller holds the lock.
 */
bool shim_conn_ready(void);

/* Like shim_conn_ready() but never starts the helper. */
bool shim_conn_usable(void);

/* The VMM's pid (kept across fork), once the helper was started; else 0. */
pid_t shim_conn_vmm_pid(void);

/*
 * Send @m (its seq is set here) with @fd (-1: none) and wait for the
 * reply. 0 when a reply arrived (its result says what the helper did);
 * -errno when the helper is gone or broke the protocol: that is logged
 * once, and the shim stays unmanaged from then on. Caller holds the lock.
 */
int shim_conn_request(struct vmswap_msg_hdr *m, int fd,
		      struct vmswap_msg_reply *rep);

/*
 * In a fork child, with the lock held since the fork: drop the parent's
 * connection and, if the helper ever held the parent's uffd, join it
 * through shim.sock with a uffd of our own, waiting up to
 * VMSWAP_JOIN_TIMEOUT. Returns true when the child could not join and
 * the helper did not say it may keep guest memory: the caller must close
 * it off. Async-signal-safe.
 */
bool shim_conn_child_rejoin(void);

/*
 * shim_conn_request() for the fork child after it rejoined: -EPIPE when
 * it did not; a failure is logged and leaves the child unmanaged.
 * Async-signal-safe.
 */
int shim_conn_child_request(struct vmswap_msg_hdr *m, int fd,
			    struct vmswap_msg_reply *rep);

#endif
