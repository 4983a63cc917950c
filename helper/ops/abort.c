/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The running operation's abort flag: set by the state machine when a
 * command supersedes it, polled by trim, out and swap-in between batches.
 */
#include <stdatomic.h>

#include "ops.h"

static atomic_bool aborting;

void vs_op_abort(bool on)
{
	atomic_store(&aborting, on);
}

bool vs_op_aborted(void)
{
	return atomic_load(&aborting);
}
