/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The helper's seccomp allowlist, entered once setup is done, on every
 * thread; a call not on it kills the process. (Capabilities: caps.h.)
 */
#ifndef VS_SANDBOX_H
#define VS_SANDBOX_H

#include <stdbool.h>

/*
 * Load the allowlist on every thread of the process; sendmsg only to
 * @keeper_fd (-1: none). 0 or -errno.
 */
int vs_sandbox_enter(int keeper_fd);
/* vs_sandbox_enter() unless VMSWAP_SECCOMP=0; logs what it did. */
void vs_sandbox_setup(int keeper_fd);
/* The allowlist is in force. */
bool vs_sandbox_active(void);
/* How many syscalls the allowlist lets through (some with argument checks). */
int vs_sandbox_allowed(void);

#endif
