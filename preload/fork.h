/* SPDX-License-Identifier: BSD-3-Clause */
/* Keeping fork() children of the VMM known to the helper. */
#ifndef SHIM_FORK_H
#define SHIM_FORK_H

/* Register the atfork handlers. 0 or -errno. */
int shim_fork_register(void);

#endif
