/* SPDX-License-Identifier: BSD-3-Clause */
/* Who is asking: SO_PEERCRED, pinned with a pidfd; see svcd.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "svcd.h"

#ifndef SO_PEERPIDFD /* Linux 6.5; older headers */
#define SO_PEERPIDFD 77
#endif

/* Supplementary groups from /proc/<pid>/status ("Groups:\t1 2 3"). */
static int read_groups(struct svcd_peer *p)
{
	char path[64], line[1024];
	FILE *f;
	int r = -ENODATA;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *s = line + 7, *end;

		if (strncmp(line, "Groups:", 7))
			continue;
		p->ngroups = 0;
		for (;;) {
			unsigned long g = strtoul(s, &end, 10);

			if (end == s || p->ngroups == SVCD_MAX_GROUPS)
				break;
			p->groups[p->ngroups++] = (gid_t)g;
			s = end;
		}
		r = 0;
		break;
	}
	fclose(f);
	return r;
}

bool svcd_peer_alive(const struct svcd_peer *p)
{
	return syscall(SYS_pidfd_send_signal, p->pidfd, 0, NULL, 0) == 0;
}

int svcd_peer_get(int conn, struct svcd_peer *p, char *why, size_t n)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	int r;

	memset(p, 0, sizeof(*p));
	p->pidfd = -1;
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 || uc.pid <= 0) {
		snprintf(why, n, "cannot tell who is connected (SO_PEERCRED)");
		return -EPROTO;
	}
	p->pid = uc.pid;
	p->uid = uc.uid;
	p->gid = uc.gid;
	/* The pidfd of the process that connected, not of whoever has its pid now. */
	len = sizeof(p->pidfd);
	if (getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &p->pidfd, &len) < 0)
		p->pidfd = (int)syscall(SYS_pidfd_open, uc.pid, 0);
	if (p->pidfd < 0) {
		r = -errno;
		snprintf(why, n, "pid %d is gone", (int)uc.pid);
		return r;
	}
	r = read_groups(p);
	if (r || !svcd_peer_alive(p)) {
		close(p->pidfd);
		p->pidfd = -1;
		snprintf(why, n, "pid %d is gone", (int)uc.pid);
		return r ? r : -ESRCH;
	}
	return 0;
}

int svcd_peer_allowed(const struct svcd_cfg *c, const struct svcd_peer *p, char *why, size_t n)
{
	if (p->uid == 0 || p->uid == geteuid())
		return 0;
	if (c->has_group) {
		if (p->gid == c->group)
			return 0;
		for (int i = 0; i < p->ngroups; i++)
			if (p->groups[i] == c->group)
				return 0;
	}
	if (c->has_group)
		snprintf(why, n, "uid %u is not in group %s", (unsigned)p->uid, c->group_name);
	else
		snprintf(why, n, "uid %u may not ask (no vmswap group on this host)",
			 (unsigned)p->uid);
	return -EPERM;
}
