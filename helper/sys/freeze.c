/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "freeze.h"

/* State letter and parent pid from a /proc/.../stat file. 0 or -errno. */
static int read_stat(const char *path, char *state, pid_t *ppid)
{
	char buf[512], *p;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	*state = p[2];
	if (ppid)
		*ppid = (pid_t)strtol(p + 4, NULL, 10);
	return 0;
}

int vs_descendants(pid_t root, pid_t *pids, int max)
{
	static pid_t all[65536], parent[65536];
	int nall = 0, n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && nall < 65536) {
		char path[300], st;
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10), pp;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (read_stat(path, &st, &pp))
			continue;
		all[nall] = pid;
		parent[nall++] = pp;
	}
	closedir(d);
	pids[n++] = root;
	/* Breadth first: each found process adds its children. */
	for (int i = 0; i < n; i++)
		for (int j = 0; j < nall && n < max; j++)
			if (parent[j] == pids[i] && all[j] != getpid())
				pids[n++] = all[j];
	return n;
}

bool vs_is_descendant(pid_t pid, pid_t root)
{
	/* A bound on the chain: a process tree deeper than this is not ours. */
	for (int depth = 0; depth < 64 && pid > 1; depth++) {
		char path[64], st;

		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (read_stat(path, &st, &pid))
			return false;
		if (pid == root)
			return true;
	}
	return false;
}

/* True when every thread of @pid is stopped, or the process is gone. */
static bool all_stopped(pid_t pid)
{
	char path[320];
	struct dirent *de;
	bool ok = true;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return true;
	while (ok && (de = readdir(d))) {
		char st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, de->d_name);
		if (read_stat(path, &st, NULL))
			continue; /* thread gone */
		ok = st == 'T' || st == 't' || st == 'Z' || st == 'X';
	}
	closedir(d);
	return ok;
}

static int freeze_index(const struct vs_freeze *f, pid_t pid)
{
	for (int i = 0; i < f->n; i++)
		if (f->pids[i] == pid)
			return i;
	return -1;
}

/* Stop every listed process not stopped yet. Returns how many were new. */
static int stop_new(struct vs_freeze *f, const pid_t *list, int n)
{
	int added = 0;

	for (int i = 0; i < n; i++) {
		if (list[i] == getpid() || freeze_index(f, list[i]) >= 0)
			continue;
		if (f->n == VS_FREEZE_MAX)
			return -E2BIG;
		f->pids[f->n] = list[i];
		f->was_stopped[f->n] = all_stopped(list[i]);
		f->n++;
		kill(list[i], SIGSTOP);
		added++;
	}
	return added;
}

int vs_freeze(struct vs_freeze *f, pid_t root, const pid_t *extra, int nextra,
	      int timeout_ms)
{
	pid_t list[VS_FREEZE_MAX];
	struct timespec t0, t;
	int n, r;

	f->n = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		n = vs_descendants(root, list, VS_FREEZE_MAX);
		if (n < 0)
			goto fail_r;
		for (int i = 0; i < nextra && n < VS_FREEZE_MAX; i++)
			list[n++] = extra[i];
		r = stop_new(f, list, n);
		if (r < 0)
			goto fail;
		if (r == 0) {
			bool all = true;

			for (int i = 0; i < f->n && all; i++)
				all = all_stopped(f->pids[i]);
			/* Stable only if nothing new appeared since the check began. */
			if (all) {
				n = vs_descendants(root, list, VS_FREEZE_MAX);
				r = n < 0 ? n : stop_new(f, list, n);
				if (r == 0)
					return 0;
				if (r < 0)
					goto fail;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms) {
			r = -ETIMEDOUT;
			goto fail;
		}
		usleep(100);
	}
fail_r:
	r = n;
fail:
	vs_thaw(f);
	return r;
}

void vs_thaw(struct vs_freeze *f)
{
	for (int i = 0; i < f->n; i++)
		if (!f->was_stopped[i])
			kill(f->pids[i], SIGCONT);
	f->n = 0;
}
