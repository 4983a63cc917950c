/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the fault thread (fault.c) shares with its reads (fault_read.c,
 * fault_install.c). vs.lock held.
 */
#ifndef VS_FAULT_INT_H
#define VS_FAULT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "fault_stream.h"
#include "fault_ws.h"

/* One swap-file read, as planned under vs.lock. */
struct vs_read {
	bool ahead;            /* read-ahead: no thread waits for it */
	bool prefetch;         /* working set: slots run.slot + i are pages pgs[i] */
	int pidx, obj, fd;
	uint32_t gen;          /* the process's, when planned */
	uint64_t page, t0;     /* the faulting address, when its fault was read (ns) */
	uint64_t epoch;        /* slots.epoch when planned */
	struct vs_run run;
	uint64_t pgs[VS_WS_RUN_MAX];
};

/* Put a finished read in (@rd: its result, 0 or -errno). */
void vs_read_install(const struct vs_read *j, const uint8_t *buf, int rd);

uint64_t vs_fault_now_ns(void);
/* One fault served, @ns after it was read. */
void vs_fault_record_latency(uint64_t ns);
/* A swap-file read failed, or worked. */
void vs_fault_read_failed(uint32_t slot, int r);
void vs_fault_read_worked(void);
/* The faulting threads of @pidx wait; arm the backoff that wakes them. */
void vs_fault_retry_later(int pidx);

/* Do faults wait for a read to finish (or retries to be armed)? */
bool vs_fault_has_waiters(void);

#endif
