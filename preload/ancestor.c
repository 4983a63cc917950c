/* SPDX-License-Identifier: BSD-3-Clause */
/* Joining the helper of an ancestor: see ancestor.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vmswap/common.h>
#include <vmswap/util.h>

#include "ancestor.h"

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold anything */
	return p && p[1] && p[2] ? (pid_t)strtol(p + 4, NULL, 10) : -1;
}

/*
 * shim_join_ancestor: a process that exec'd from a VMM (or its child) with the shim still
 * preloaded, e.g. a vhost-user backend mapping the same guest memfd,
 * joins the helper of the nearest ancestor that has one instead of
 * starting a second helper for the same memory. Returns the connected
 * socket, with @vmm_pid and @sock_path set; -ENOENT when no
 * ancestor has a helper, or another -errno when one has but we cannot
 * reach it.
 */
int shim_join_ancestor(pid_t *vmm_pid, char *sock_path, size_t n)
{
	pid_t pid = getpid();
	int r;

	for (int depth = 0; depth < 16; depth++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s;

		pid = parent_of(pid);
		if (pid <= 1)
			return -ENOENT;
		/* Ours, or the root of vmswapd, which may have started that helper. */
		if ((vmswap_run_path(sa.sun_path, sizeof(sa.sun_path), pid, VMSWAP_SOCK_NAME) ||
		     access(sa.sun_path, F_OK)) &&
		    (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%d/%s",
			      VMSWAP_DEFAULT_RUN_DIR_ROOT, (int)pid, VMSWAP_SOCK_NAME) < 0 ||
		     access(sa.sun_path, F_OK)))
			continue;
		*vmm_pid = pid;
		snprintf(sock_path, n, "%s", sa.sun_path);
		s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -errno;
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return s;
		/*
		 * That helper may hold pages of the memory we are about to
		 * map: never start a second helper for it.
		 */
		r = -errno;
		close(s);
		return r;
	}
	return -ENOENT;
}
