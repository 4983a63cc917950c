/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An io_uring for the fault thread's swap-file reads (liburing): the
 * thread queues reads and installs what completes, with no reader thread
 * in between, so a fault costs no extra thread wake-up and several reads
 * stay in flight. Every call is made with vs.lock held.
 *
 * The ring is made before the sandbox is loaded, disabled until it is
 * restricted to IORING_OP_READ with no later register call, and signals
 * an eventfd on every completion; afterwards only io_uring_enter is
 * needed (helper/sys/sandbox.c).
 */
#ifndef VS_FAULT_RING_H
#define VS_FAULT_RING_H

#include <stdbool.h>
#include <stdint.h>

#define VS_RING_NONE UINT64_MAX /* a tag never returned */
#define VS_RING_MAX_QUEUED 32    /* reads queued between two submits */

/* Set up a ring of @entries; completions signal @efd. 0 or -errno. */
int vs_ring_open(unsigned entries, int efd);
void vs_ring_close(void);
/*
 * Queue a read of @len bytes at @off of @fd into @buf; @tag comes back
 * with the result. It starts at the next vs_ring_submit(), so that the
 * reads a batch of faults needs reach the disk together (one doorbell).
 * 0, or -EBUSY when every entry is queued.
 */
int vs_ring_read(int fd, uint64_t off, void *buf, uint32_t len, uint64_t tag);
/*
 * Start the queued reads. Returns how many of them started (in the order
 * queued), or -errno; those that did not start are taken back: they will
 * never complete.
 */
int vs_ring_submit(void);
/*
 * Up to @max finished reads: their tags and results (bytes or -errno).
 * Returns how many; with @wait, waits for one first (-errno on error).
 */
int vs_ring_reap(uint64_t *tags, int *res, int max, bool wait);

#endif
