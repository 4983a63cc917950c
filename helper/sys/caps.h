/* SPDX-License-Identifier: BSD-3-Clause */
/* Capabilities of the running helper. */
#ifndef VS_CAPS_H
#define VS_CAPS_H

#include <linux/capability.h>

/*
 * Kept after setup, when held: CAP_KILL, to SIGSTOP/SIGCONT VMM processes
 * whose uid is no longer ours (QEMU -run-with user=, a child that changed
 * uid); CAP_SYS_PTRACE, to read /proc/<pid>/maps of a process of another
 * uid or a non-dumpable one, without which enable could not see that
 * process mapping guest memory and would punch pages it still reads.
 */
#define VS_CAPS_KEPT ((1ull << CAP_KILL) | (1ull << CAP_SYS_PTRACE))

/*
 * Drop every capability but VS_CAPS_KEPT from the effective, permitted
 * and bounding sets, and all of the inheritable and ambient ones. A
 * helper that holds none (not root) has nothing to do. Capabilities
 * belong to a thread: threads started before keep theirs. 0 or -errno.
 */
int vs_caps_drop(void);

#endif
