/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-VMM run directory: $root/<vmm-pid>/ (0700, ours) holding the
 * control FIFO (0600), status.json, helper.pid and shim.sock. Nothing in
 * it is followed through a symlink, and a directory or FIFO owned by
 * someone else is refused.
 */
#ifndef VS_RUNDIR_H
#define VS_RUNDIR_H

#include <sys/types.h>

struct vs_rundir {
	int dirfd;
	int control_fd;  /* the FIFO, opened O_RDWR so it never reports EOF */
	int listen_fd;   /* shim.sock */
	char path[256];
};

/* Create everything for @vmm_pid. 0, or -errno with the step that failed in @why (@n bytes). */
int vs_rundir_create(struct vs_rundir *rd, pid_t vmm_pid, char *why, size_t n);
/*
 * A restarted helper takes over the run dir of the one that died, through
 * the fds it inherited, checked as strictly as at creation.
 */
int vs_rundir_adopt(struct vs_rundir *rd, pid_t vmm_pid, int dirfd, int control_fd,
		    int listen_fd, char *why, size_t n);
/* Remove the directory and what we put in it. */
void vs_rundir_remove(struct vs_rundir *rd);

#endif
