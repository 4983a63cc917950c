/* SPDX-License-Identifier: BSD-3-Clause */
/* vmswapd from the shim's side: see service.c. */
#ifndef SHIM_SERVICE_H
#define SHIM_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <vmswap/svc.h>

/*
 * Have vmswapd start the helper for @vmm_pid (this process). Returns the
 * connection, now the helper's (send HELLO next), with the run directory
 * root in @root; -ENOENT when there is no service (no socket, or
 * VMSWAP_SERVICE_SOCKET=none); another -errno with @why when there is one
 * that did not start it.
 */
int shim_service_start(pid_t vmm_pid, char *root, size_t rootn, char *why, size_t n);

/* Does a seccomp filter confine this process (/proc/self/status)? */
bool shim_sandboxed(void);

#endif
