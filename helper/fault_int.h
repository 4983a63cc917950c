/* SPDX-License-Identifier: BSD-3-Clause */
/* What the fault thread (fault.c) shares with its readers (fault_read.c). vs.lock held. */
#ifndef VS_FAULT_INT_H
#define VS_FAULT_INT_H

#include <stdbool.h>
#include <stdint.h>

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
