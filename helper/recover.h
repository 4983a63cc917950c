/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * --recover: a helper started by the keeper after the previous one died.
 * It inherits every kept fd at its old number, rebuilds the model from
 * the manifest and the page-table memfds, swaps everything back in with
 * the normal disable, and then serves the VMM as usual.
 */
#ifndef VS_RECOVER_H
#define VS_RECOVER_H

#include <sys/types.h>

#include "control/rundir.h"

/* First thing in main: note which fds were inherited. */
void vs_recover_scan_fds(void);
/* Rebuild the model and adopt the run dir. 0, or -errno with the step that failed in @why. */
int vs_recover_load(pid_t vmm_pid, int keeper_fd, struct vs_rundir *rd, char *why, size_t n);
/* With the fault thread running: thaw, unprotect, wake, start the swap-in. */
void vs_recover_resume(void);
/* After that swap-in: wake every thread still waiting on a fault. */
void vs_recover_finish(void);

#endif
