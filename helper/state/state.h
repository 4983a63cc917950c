/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The state machine: which command is allowed when, the worker thread
 * that runs the long operations, and the answers kept for clients.
 */
#ifndef VS_STATE_H
#define VS_STATE_H

#include <stdbool.h>
#include <stdio.h>

#include <vmswap/common.h>

#include "cmd.h"
#include "replies.h"

/* Start the worker. Returns an eventfd that is readable when ops finish. */
int vs_state_start(void);
/*
 * A command from a client (id may be "") or a signal. Answers at once
 * unless the command is enable, which is answered when it finished.
 * With @chain (SIGUSR1), enable goes on with trim and out.
 */
void vs_state_command(enum vs_cmd_verb verb, const char *id, bool chain);
/* The same with disable's keep= (README "Double copies"). */
void vs_state_command_keep(enum vs_cmd_verb verb, const char *id, enum vs_cmd_keep keep);
/* Collect finished operations (after the eventfd fired). */
void vs_state_collect(void);
/* SIGTERM: swap everything in, then vs_state_exit_ready() turns true. */
void vs_state_request_exit(void);
/* After a restart: swap everything in (state SwapInInProgress), or Ready if nothing is out. */
void vs_state_recover(void);
bool vs_state_exit_ready(void);
/* True while an operation runs (status is then republished often). */
bool vs_state_busy(void);
/*
 * VMSWAP_WAKE_SWAPIN=1 and the guest faulted from the file while Active:
 * start a disable that yields to faults. Main thread. True if started.
 */
bool vs_state_wake_swapin(void);
/*
 * Pages held twice (model/dual.h): checked, and in a quiet state
 * (Pending, Active or Failed, no operation running) the state goes to
 * Failed with their description in last_error. True when the state or
 * last_error changed (republish). vs.lock held.
 */
bool vs_state_watch_doubles(void);

#endif
