/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The long operations, run one at a time on the worker thread. Each
 * returns 0 or -errno and writes a one-line summary or error into @msg.
 * Each takes vs.lock only for short batches, so faults are served while
 * it runs, and stops early (returning -ECANCELED) when vs_op_aborted().
 */
#ifndef VS_OPS_H
#define VS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int vs_op_enable(char *msg, size_t n);
int vs_op_trim(char *msg, size_t n);
int vs_op_out(char *msg, size_t n);
int vs_op_disable(char *msg, size_t n);
/* After disable: give the swap file's blocks back. Worker only, no lock held. */
void vs_swap_release(void);

/* The running operation should stop at its next batch (abort.c). */
void vs_op_abort(bool on);
bool vs_op_aborted(void);
/* Tests only (opdelay.c): sleep for a batch of @pages, unlocked. */
void vs_op_delay_init(void);
void vs_op_delay(uint64_t pages);


#endif
