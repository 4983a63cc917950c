/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <vmswap/util.h>

#include "rundir.h"

static const char *const entries[] = VMSWAP_RUN_ENTRIES;

/*
 * mkdir -p for the root; each component must be a directory. The root is
 * the administrator's choice, so a symlink in it (/var/run -> /run) is
 * followed; our own <pid> directory below it never is (open_own_dir).
 * On failure, @bad gets the component that failed.
 */
static int make_root(const char *root, char *bad, size_t n)
{
	char buf[256];
	struct stat st;
	int r = 0;

	snprintf(buf, sizeof(buf), "%s", root);
	for (char *p = buf + 1;; p++) {
		char c = *p;

		if (c && c != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			r = -errno;
		else if (stat(buf, &st) < 0)
			r = -errno; /* a dangling symlink, a loop */
		else if (!S_ISDIR(st.st_mode))
			r = -ENOTDIR;
		if (r || !c) {
			if (r)
				snprintf(bad, n, "%s", buf);
			return r;
		}
		*p = c;
	}
}

/* Open our own directory, refusing symlinks and other owners. */
static int open_own_dir(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

static int write_pidfile(int dirfd)
{
	int fd = openat(dirfd, VMSWAP_PIDFILE_NAME ".tmp",
			O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	dprintf(fd, "%d\n", (int)getpid());
	close(fd);
	return renameat(dirfd, VMSWAP_PIDFILE_NAME ".tmp", dirfd, VMSWAP_PIDFILE_NAME) < 0
	       ? -errno : 0;
}

int vs_rundir_adopt(struct vs_rundir *rd, pid_t vmm_pid, int dirfd, int control_fd,
		    int listen_fd, char *why, size_t n)
{
	struct stat a, b;
	int fd, r;

	rd->dirfd = rd->control_fd = rd->listen_fd = -1;
	snprintf(why, n, "no run directory (set VMSWAP_RUN_DIR or XDG_RUNTIME_DIR)");
	if ((r = vmswap_run_path(rd->path, sizeof(rd->path), vmm_pid, NULL)))
		return r;
	snprintf(why, n, "run directory is not ours (symlink, other owner or open mode)");
	fd = open_own_dir(rd->path);
	if (fd < 0)
		return fd;
	r = fstat(fd, &a) < 0 || fstat(dirfd, &b) < 0 ? -errno : 0;
	close(fd);
	if (r)
		return r;
	snprintf(why, n, "run directory was replaced");
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -EPERM;
	snprintf(why, n, "control FIFO was replaced");
	if (fstat(control_fd, &a) < 0 || !S_ISFIFO(a.st_mode) || a.st_uid != geteuid() ||
	    fstatat(dirfd, VMSWAP_CONTROL_NAME, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -EPERM;
	snprintf(why, n, "shim.sock listener is not a socket");
	if (fstat(listen_fd, &a) < 0 || !S_ISSOCK(a.st_mode))
		return -EPERM;
	rd->dirfd = dirfd;
	rd->control_fd = control_fd;
	rd->listen_fd = listen_fd;
	snprintf(why, n, "cannot write helper.pid");
	if ((r = write_pidfile(dirfd)))
		return r;
	why[0] = 0;
	return 0;
}

int vs_rundir_create(struct vs_rundir *rd, pid_t vmm_pid, char *why, size_t n)
{
	char root[256];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int r;

	rd->dirfd = rd->control_fd = rd->listen_fd = -1;
	snprintf(why, n, "no run directory (set VMSWAP_RUN_DIR or XDG_RUNTIME_DIR)");
	if ((r = vmswap_run_root(root, sizeof(root))) ||
	    (r = vmswap_run_path(rd->path, sizeof(rd->path), vmm_pid, NULL)))
		return r;
	snprintf(why, n, "cannot create the run directory root");
	if ((r = make_root(root, rd->path, sizeof(rd->path))))
		return r;
	snprintf(why, n, "cannot create the run directory");
	if (mkdir(rd->path, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(why, n, "run directory is not ours (symlink, other owner or open mode)");
	rd->dirfd = open_own_dir(rd->path);
	if (rd->dirfd < 0)
		return rd->dirfd;
	/* A stale directory from an earlier process with this pid. */
	for (unsigned i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
		unlinkat(rd->dirfd, entries[i], 0);

	snprintf(why, n, "cannot create the control FIFO");
	if (mkfifoat(rd->dirfd, VMSWAP_CONTROL_NAME, 0600) < 0)
		return -errno;
	rd->control_fd = openat(rd->dirfd, VMSWAP_CONTROL_NAME,
				O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (rd->control_fd < 0)
		return -errno;
	if (fstat(rd->control_fd, &st) < 0 || !S_ISFIFO(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;

	snprintf(why, n, "cannot create shim.sock");
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", rd->path, VMSWAP_SOCK_NAME) >=
	    (int)sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	rd->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (rd->listen_fd < 0)
		return -errno;
	if (bind(rd->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(rd->listen_fd, 16) < 0)
		return -errno;

	snprintf(why, n, "cannot write helper.pid");
	int fd = openat(rd->dirfd, VMSWAP_PIDFILE_NAME,
			O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	dprintf(fd, "%d\n", (int)getpid());
	close(fd);
	why[0] = 0;
	return 0;
}

void vs_rundir_remove(struct vs_rundir *rd)
{
	if (rd->dirfd >= 0) {
		for (unsigned i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
			unlinkat(rd->dirfd, entries[i], 0);
		close(rd->dirfd);
		rmdir(rd->path);
	}
	if (rd->control_fd >= 0)
		close(rd->control_fd);
	if (rd->listen_fd >= 0)
		close(rd->listen_fd);
	rd->dirfd = rd->control_fd = rd->listen_fd = -1;
}
