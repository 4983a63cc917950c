/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting vmswap-helper outside the VMM's family. */
#ifndef SHIM_SPAWN_H
#define SHIM_SPAWN_H

#include <sys/types.h>

/*
 * Run "@path --daemonize --vmm-pid @vmm_pid --sock-fd 3" with @sock_fd
 * as its fd 3 and our environment minus LD_PRELOAD, then reap the
 * intermediate process (the helper forks and that one exits at once).
 * No fork(): the VMM's atfork handlers must not run. Returns 0 or -errno;
 * -ECHILD when the intermediate failed.
 */
int shim_spawn_helper(const char *path, pid_t vmm_pid, int sock_fd);

#endif
