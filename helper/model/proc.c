/* SPDX-License-Identifier: BSD-3-Clause */
/* Processes: the VMM and the processes that joined it, each with its uffd. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../sys/log.h"
#include "../sys/uffd.h"
#include "helper.h"
#include "model_int.h"

int vs_proc_by_pid(pid_t pid)
{
	for (int i = 0; i < VS_MAX_PROCS; i++)
		if (vs.procs[i].used && vs.procs[i].pid == pid)
			return i;
	return -ENOENT;
}

/*
 * Add a process. Takes @uffd (may be -1) when it succeeds; on failure
 * @uffd is still the caller's. @sock is the connection's, never closed here.
 * Returns the proc index or -errno.
 */
int vs_proc_add(pid_t pid, int uffd, int sock, bool is_vmm)
{
	struct vs_proc *p = NULL;
	bool wp = false;
	int idx, pidfd, r;

	for (idx = 0; idx < VS_MAX_PROCS; idx++) {
		if (!vs.procs[idx].used) {
			p = &vs.procs[idx];
			break;
		}
	}
	if (!p)
		return -EMFILE;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	r = uffd >= 0 ? vs_uffd_api(uffd, &wp) : 0;
	if (!r && uffd >= 0) {
		/* The fault thread checks the generation before it uses the slot. */
		struct epoll_event ev = {
			.events = EPOLLIN,
			.data.u64 = (uint64_t)(p->gen + 1) << 32 | (uint32_t)idx,
		};

		if (epoll_ctl(vs.fault_epfd, EPOLL_CTL_ADD, uffd, &ev) < 0)
			r = -errno;
	}
	if (r) {
		close(pidfd);
		return r;
	}
	p->used = true;
	p->dead = false;
	p->is_vmm = is_vmm;
	p->pid = pid;
	p->uffd = uffd;
	p->wp = wp;
	p->pidfd = pidfd;
	p->sock = sock;
	p->gen++;
	if (uffd >= 0)
		model_keep(uffd);
	model_changed();
	return idx;
}

/* Forget a process: its mappings, its uffd, its pidfd (its connection is shimconn's). */
void vs_proc_drop(int idx)
{
	struct vs_proc *p = &vs.procs[idx];

	if (!p->used)
		return;
	for (int i = 0; i < VS_MAX_MAPS; i++)
		if (vs.maps[i].used && vs.maps[i].proc == idx)
			vs.maps[i].used = false;
	/* Out of the manifest before the keeper forgets its fds (numbers get reused). */
	p->used = false;
	model_changed();
	if (p->uffd >= 0) {
		epoll_ctl(vs.fault_epfd, EPOLL_CTL_DEL, p->uffd, NULL);
		model_close(p->uffd);
	}
	if (p->pidfd >= 0)
		close(p->pidfd);
	/* Its connection is closed by the main loop when the peer's end goes. */
	p->uffd = p->pidfd = p->sock = -1;
}
