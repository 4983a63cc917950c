/* SPDX-License-Identifier: BSD-3-Clause */
/* Who is on the other end of a shim connection, and what it hands over; see shimpeer.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../model/helper.h"
#include "../sys/fdkind.h"
#include "../sys/log.h"
#include "shimpeer.h"

/* Is @fd a memfd? Only those can be guest memory we manage. */
bool vs_peer_is_memfd(int fd)
{
	return vs_fd_link_is(fd, "/memfd:") && fcntl(fd, F_GET_SEALS) >= 0;
}

/*
 * Can @fd be guest memory the helper manages, @end bytes of it? A memfd
 * of tmpfs (hugetlbfs pages cannot be punched or put back 4 KiB at a
 * time), open read-write and not sealed against writes (pages are punched
 * and written back through it), at least @end bytes long (a page past its
 * end can neither fault nor be put back).
 */
int vs_peer_check_memfd(int fd, uint64_t end, char *why, size_t n)
{
	struct statfs sfs;
	struct stat st;
	int fl, seals;

	if (!vs_peer_is_memfd(fd) || fstatfs(fd, &sfs) < 0 || fstat(fd, &st) < 0)
		return snprintf(why, n, "region fd is not a memfd"), -EBADF;
	if (sfs.f_type == HUGETLBFS_MAGIC)
		return snprintf(why, n, "hugetlbfs memfds are not supported"), -EOPNOTSUPP;
	if (sfs.f_type != TMPFS_MAGIC)
		return snprintf(why, n, "region fd is not a memfd"), -EBADF;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDWR)
		return snprintf(why, n, "region memfd is not open read-write"), -EBADF;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return snprintf(why, n, "region memfd is sealed against writes"), -EPERM;
	if ((uint64_t)st.st_size < end)
		return snprintf(why, n, "region ends at byte %llu of a memfd of %llu bytes",
				(unsigned long long)end, (unsigned long long)st.st_size), -EINVAL;
	return 0;
}

/* The fault thread reads each uffd until EAGAIN: a blocking one would hang it. */
int vs_peer_check_uffd(int fd, char *why, size_t n)
{
	int fl;

	if (!vs_fd_link_is(fd, "anon_inode:[userfaultfd]"))
		return snprintf(why, n, "HELLO fd is not a userfaultfd"), -EBADF;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || !(fl & O_NONBLOCK))
		return snprintf(why, n, "userfaultfd is not O_NONBLOCK"), -EINVAL;
	return 0;
}

pid_t vs_peer_parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] ? (pid_t)strtol(p + 4, NULL, 10) : -1;
}

/* The uids of @pid (real and effective), from /proc; -errno when gone. */
static int proc_uids(pid_t pid, uid_t *ruid, uid_t *euid)
{
	char path[64], buf[2048], *p;
	unsigned long r, e;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	p = strstr(buf, "\nUid:");
	if (!p || sscanf(p + 5, "%lu %lu", &r, &e) != 2)
		return -EIO;
	*ruid = (uid_t)r;
	*euid = (uid_t)e;
	return 0;
}

/* Is @pid the VMM or one of its descendants? */
static bool in_vmm_tree(pid_t pid)
{
	for (int depth = 0; depth < 64 && pid > 1; depth++) {
		if (pid == vs.vmm_pid)
			return true;
		pid = vs_peer_parent_of(pid);
	}
	return false;
}

int vs_conn_peer_check(int fd, char *why, size_t n)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t ruid, euid;
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return snprintf(why, n, "no peer credentials: %s", strerror(errno)), -errno;
	if (!in_vmm_tree(cred.pid))
		return snprintf(why, n, "pid %d is not the VMM %d or its descendant",
				cred.pid, vs.vmm_pid), -EPERM;
	if ((r = proc_uids(vs.vmm_pid, &ruid, &euid)))
		return snprintf(why, n, "cannot read the VMM's uid: %s", strerror(-r)), r;
	if (cred.uid != 0 && cred.uid != ruid && cred.uid != euid && cred.uid != geteuid())
		return snprintf(why, n, "pid %d runs as uid %u, the VMM as uid %u", cred.pid,
				cred.uid, euid), -EPERM;
	return 0;
}
