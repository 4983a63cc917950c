/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The VMMs' run directories under the service's root: made for each VMM
 * with its owner (a non-root helper cannot create them in a root-owned
 * /run/vmswap, nor remove them), and removed once VMM and helper are gone.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmswap/common.h>

#include "../sys/log.h"
#include "svcd.h"

/* Running, not a zombie its parent has yet to reap. */
static bool pid_alive(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t len;
	int fd;

	if (pid <= 0 || (kill(pid, 0) && errno != EPERM))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[len > 0 ? len : 0] = 0;
	p = strrchr(buf, ')'); /* the command name may hold anything */
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* Is the helper named by <dir>/helper.pid running? */
static bool helper_alive(int dirfd)
{
	char buf[32] = "", comm[64] = "", path[64];
	int fd = openat(dirfd, VMSWAP_PIDFILE_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t len;
	pid_t pid;
	FILE *f;

	if (fd < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	pid = len > 0 ? (pid_t)atoi(buf) : 0;
	if (!pid_alive(pid))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true; /* cannot tell: keep it */
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = 0;
	fclose(f);
	return !strncmp(comm, VMSWAP_HELPER_NAME, strlen(VMSWAP_HELPER_NAME));
}

/* Empty a stale <pid>/ and remove it. 0 or -errno. */
static int clear_dir(int rootfd, const char *name)
{
	static const char *const entries[] = VMSWAP_RUN_ENTRIES;
	int fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return unlinkat(rootfd, name, 0) < 0 ? -errno : 0; /* not a directory */
	for (unsigned i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
		unlinkat(fd, entries[i], 0);
	close(fd);
	return unlinkat(rootfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int open_root(const struct svcd_cfg *c)
{
	if (mkdir(c->run_root, 0755) < 0 && errno != EEXIST)
		return -errno;
	return open(c->run_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int svcd_rundir_make(const struct svcd_cfg *c, const struct svcd_peer *p, char *why, size_t n)
{
	char name[16];
	int rootfd = open_root(c), fd, r = 0;

	if (rootfd < 0) {
		r = rootfd == -1 ? -errno : rootfd;
		snprintf(why, n, "cannot open the run directory root %s: %s", c->run_root,
			 strerror(-r));
		return r;
	}
	snprintf(name, sizeof(name), "%d", (int)p->pid);
	fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && helper_alive(fd)) {
		snprintf(why, n, "pid %d already has a helper", (int)p->pid);
		r = -EEXIST;
	} else if ((fd >= 0 || errno != ENOENT) && (r = clear_dir(rootfd, name))) {
		snprintf(why, n, "cannot remove the stale %s/%s: %s", c->run_root, name,
			 strerror(-r));
	}
	if (fd >= 0)
		close(fd);
	if (!r && (mkdirat(rootfd, name, 0700) < 0 ||
		   fchownat(rootfd, name, p->uid, p->gid, AT_SYMLINK_NOFOLLOW) < 0)) {
		r = -errno;
		snprintf(why, n, "cannot make %s/%s for uid %u: %s", c->run_root, name,
			 (unsigned)p->uid, strerror(-r));
		unlinkat(rootfd, name, AT_REMOVEDIR);
	}
	close(rootfd);
	return r;
}

int svcd_rundir_sweep(const struct svcd_cfg *c)
{
	int rootfd = open(c->run_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), leaving = 0;
	struct dirent *e;
	DIR *d;

	if (rootfd < 0)
		return 0;
	d = fdopendir(rootfd);
	if (!d) {
		close(rootfd);
		return 0;
	}
	while ((e = readdir(d))) {
		bool numeric = isdigit((unsigned char)e->d_name[0]);
		int fd;

		for (const char *s = e->d_name; *s && numeric; s++)
			numeric = isdigit((unsigned char)*s);
		if (!numeric || pid_alive((pid_t)atoi(e->d_name)))
			continue;
		fd = openat(rootfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (helper_alive(fd))
			leaving++;
		else if (!clear_dir(rootfd, e->d_name))
			vs_info("removed the run directory of pid %s, which is gone", e->d_name);
		close(fd);
	}
	closedir(d);
	return leaving;
}
