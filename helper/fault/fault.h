/* SPDX-License-Identifier: BSD-3-Clause */
/* The fault-handling thread. */
#ifndef VS_FAULT_H
#define VS_FAULT_H

#include <stdint.h>

/* Create the epoll set and start the thread. 0 or -errno. */
int vs_fault_start(void);
void vs_fault_stop(void);
/* Have the fault thread resolve its waiting faults again (a unit's punch is done). */
void vs_fault_kick(void);
/* Median and 99th percentile fault service time, microseconds. vs.lock held. */
void vs_fault_latency(uint64_t *p50, uint64_t *p99);

#endif
