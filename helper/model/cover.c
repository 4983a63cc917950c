/* SPDX-License-Identifier: BSD-3-Clause */
/* Mappings of guest memory that no uffd covers; see cover.h. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../sys/freeze.h"
#include "cover.h"
#include "helper.h"

/* Is [start, end) of @pid fully inside mappings the helper tracks (and will register)? */
static bool range_covered(pid_t pid, uint64_t start, uint64_t end)
{
	int i = vs_proc_by_pid(pid);

	if (i < 0 || vs.procs[i].dead || vs.procs[i].uffd < 0)
		return false;
	while (start < end) {
		struct vs_map *m = vs_map_find(i, start);

		if (!m)
			return false;
		start = m->addr + m->len;
	}
	return true;
}

/* Does one /proc/<pid>/maps line show a guest memfd? Returns the obj or -1. */
static int maps_line_obj(const char *line, uint64_t *start, uint64_t *end)
{
	unsigned maj, min;
	unsigned long ino;
	unsigned long long a, b;

	if (!strstr(line, "/memfd:") ||
	    sscanf(line, "%llx-%llx %*s %*s %x:%x %lu", &a, &b, &maj, &min, &ino) != 5)
		return -1;
	*start = a;
	*end = b;
	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (vs.objs[i].used && vs.objs[i].ino == ino &&
		    vs.objs[i].dev == makedev(maj, min))
			return i;
	return -1;
}

/*
 * Every mapping of a guest memfd, in any process, must be one the helper
 * registers: an unregistered one would read a punched page as zeros.
 */
int vs_uncovered_first(int only, struct vs_uncovered *u, bool *found)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return -errno;
	*found = false;
	while (!*found && (de = readdir(d))) {
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
		char path[64], line[512];
		FILE *f;

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			uint64_t start, end;
			int o = maps_line_obj(line, &start, &end);
			FILE *c;

			if (o < 0 || (only >= 0 && o != only) || range_covered(pid, start, end))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/comm", pid);
			snprintf(u->comm, sizeof(u->comm), "?");
			if ((c = fopen(path, "re"))) {
				if (fgets(u->comm, sizeof(u->comm), c))
					u->comm[strcspn(u->comm, "\n")] = 0;
				fclose(c);
			}
			u->pid = pid;
			u->joining = vs_proc_by_pid(pid) < 0 && vs_is_descendant(pid, vs.vmm_pid);
			u->obj = o;
			u->start = start;
			u->end = end;
			*found = true;
			break;
		}
		fclose(f);
	}
	closedir(d);
	return 0;
}

int vs_find_uncovered(char *msg, size_t n)
{
	struct vs_uncovered u;
	bool found;
	int r = vs_uncovered_first(-1, &u, &found);

	if (r || !found)
		return r;
	if (u.joining) {
		snprintf(msg, n, "process %d (%s), a child of the VMM, maps guest memory %s "
			 "and has not joined the helper; refusing to enable", (int)u.pid, u.comm,
			 vs.objs[u.obj].name);
		return -EINPROGRESS;
	}
	snprintf(msg, n, "process %d (%s) maps guest memory %s at %#llx-%#llx "
		 "without a userfaultfd covering it; refusing to enable", (int)u.pid, u.comm,
		 vs.objs[u.obj].name, (unsigned long long)u.start, (unsigned long long)u.end);
	return -EBUSY;
}
