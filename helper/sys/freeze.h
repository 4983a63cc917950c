/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Verified freeze of the VMM and every descendant. SIGSTOP is not
 * synchronous: we wait until every thread shows state T/t in
 * /proc/<pid>/task/<tid>/stat, then read the process list again and
 * retry if it changed.
 */
#ifndef VS_FREEZE_H
#define VS_FREEZE_H

#include <stdbool.h>
#include <sys/types.h>

#define VS_FREEZE_MAX 256

struct vs_freeze {
	int n;
	pid_t pids[VS_FREEZE_MAX];
	char was_stopped[VS_FREEZE_MAX]; /* stopped before us: leave stopped */
};

/*
 * Stop @root and its descendants plus @extra[0..nextra). Waits up to
 * @timeout_ms. 0, or -ETIMEDOUT (everything thawed again), -errno.
 */
int vs_freeze(struct vs_freeze *f, pid_t root, const pid_t *extra, int nextra,
	      int timeout_ms);
void vs_thaw(struct vs_freeze *f);
/* Is @pid a child, grandchild... of @root (not @root itself)? */
bool vs_is_descendant(pid_t pid, pid_t root);
/* The descendants of @root (root included) into pids[], at most max. */
int vs_descendants(pid_t root, pid_t *pids, int max);

#endif
