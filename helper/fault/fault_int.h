/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the fault thread (fault.c) shares with its reads (fault_read.c,
 * fault_install.c). vs.lock held. The waiting lists: fault_wait.h.
 */
#ifndef VS_FAULT_INT_H
#define VS_FAULT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "fault_stream.h"
#include "fault_wait.h"
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

#endif
