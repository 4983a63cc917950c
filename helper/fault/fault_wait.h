/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Faults that wait: for a swap-file read in flight (resolved again when a
 * read ends), or, after a failed read, for the backoff that wakes their
 * threads to fault again. Also the latency histogram.
 * Below fault.c, fault_read.c and fault_install.c. vs.lock held.
 */
#ifndef VS_FAULT_WAIT_H
#define VS_FAULT_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include "../sys/clock.h"

#define VS_WAITING_MAX 4096 /* faults waiting for a read; one per blocked thread */

struct vs_waiter {
	int pidx;
	uint32_t gen;          /* the process's, when the fault was read */
	uint64_t addr, t0;     /* the faulting page; when its fault was read (ns) */
};

/* One fault served, @ns after it was read. */
void vs_fault_record_latency(uint64_t ns);

/* Keep a fault for later: -ENOSPC when the list is full (then wake its thread). */
int vs_wait_add(int pidx, uint32_t gen, uint64_t addr, uint64_t t0);
/* Take every waiting fault into @out (VS_WAITING_MAX long). Returns how many. */
int vs_wait_take(struct vs_waiter *out);

/* A swap-file read failed, or worked. */
void vs_fault_read_failed(uint32_t slot, int r);
void vs_fault_read_worked(void);
/* The faulting threads of @pidx wait; arm the backoff that wakes them. */
void vs_fault_retry_later(int pidx);
/* Milliseconds until the retry, for epoll_wait; -1 when none is armed. */
int vs_retry_timeout(void);
/* Is the retry due? (no lock needed) */
bool vs_retry_due(void);
/* Wake every waiter of the processes with a failed read: they fault again. */
void vs_retry_wake(void);

/* Do faults wait for a read to finish, or for a retry? */
bool vs_fault_has_waiters(void);

#endif
