/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reads from the swap file for faults, never blocking the fault thread
 * nor made under vs.lock: several reads stay in flight, so a vCPU never
 * waits for another one's disk read, and staging faults, events and
 * operations never wait for the disk at all.
 *
 * A read is planned under vs.lock (the pages are then "in flight": other
 * faults on them wait for it), done without any lock, and installed
 * under vs.lock only if every page still says what it said when the read
 * began: same state, same slot, same mapping, no slot freed meanwhile.
 * Otherwise the faulting thread is woken and faults again, and the fault
 * thread resolves it afresh, after any REMOVE/UNMAP/REMAP it has applied.
 */
#ifndef VS_FAULT_READ_H
#define VS_FAULT_READ_H

#include <stdbool.h>
#include <stdint.h>

#include "fault_stream.h"

/*
 * Start the reads: an io_uring the fault thread drives (fault_ring.h),
 * or where io_uring cannot be had (VMSWAP_FAULT_IO=threads, a kernel or
 * sandbox without it) a pool of reader threads. *done_fd becomes
 * readable when a read finished; the fault thread then calls
 * vs_fault_read_reap().
 */
int vs_fault_read_start(int *done_fd);
void vs_fault_read_stop(void);
/* Install the reads that finished (io_uring; nothing with threads). vs.lock held. */
void vs_fault_read_reap(void);
/* "io_uring" or "threads", for status. */
const char *vs_fault_read_engine(void);
/* Is object page @pg in a read in flight (*by_prefetch: a working-set one)? vs.lock held. */
bool vs_fault_read_busy(int obj, uint64_t pg, bool *by_prefetch);
/*
 * Queue the read of @run for the fault at @page of process @pidx, which
 * started at @t0 (ns). vs.lock held. 0, or -EBUSY when every read slot is
 * taken (the fault waits for one).
 */
int vs_fault_read_submit(int pidx, int obj, const struct vs_run *run, uint64_t page,
			 uint64_t t0);

/*
 * Queue @run as read-ahead for process @pidx: no thread waits for it,
 * its pages go in if they still hold when it is read. vs.lock held.
 * 0, or -EBUSY when the read-ahead share of the slots is taken.
 */
int vs_fault_read_ahead(int pidx, int obj, const struct vs_run *run);

/* Is a working-set prefetch read queued or in flight? vs.lock held. */
bool vs_fault_read_prefetch_busy(void);
/*
 * io_uring: start the reads queued by the calls above, all at once (one
 * doorbell for a batch of faults). The fault thread calls it before it
 * lets go of vs.lock. Nothing to do with reader threads.
 */
void vs_fault_read_flush(void);
/*
 * Queue a working-set read of @n slots from @slot of object @obj, slot
 * + i holding page pgs[i] (UINT64_MAX: none). Lowest priority: readers
 * take it when no fault or read-ahead waits. vs.lock held. 0 or -EBUSY.
 */
int vs_fault_read_prefetch(int obj, uint32_t slot, uint32_t n, const uint64_t *pgs);

#endif
