/* SPDX-License-Identifier: BSD-3-Clause */
/* A process exec'd under the shim joins its ancestor's helper (ancestor.c). */
#ifndef SHIM_ANCESTOR_H
#define SHIM_ANCESTOR_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The connected shim socket of the nearest ancestor that has a helper,
 * with @vmm_pid and @sock_path (@n bytes) set; -ENOENT when none has,
 * another -errno when one has but cannot be reached.
 */
int shim_join_ancestor(pid_t *vmm_pid, char *sock_path, size_t n);

#endif
