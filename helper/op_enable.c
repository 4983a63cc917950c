/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * enable: freeze the VMM, move every resident guest page to staging,
 * punch it out of guest memory, thaw. Incremental: only pages resident
 * again are moved. Copies use pread on the guest memfd of data extents
 * only (SEEK_DATA), so no hole is ever touched through a mapping.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "freeze.h"
#include "helper.h"
#include "log.h"
#include "ops.h"

#define UNIT_PAGES 512 /* 2 MiB: punch only whole THP units */
#define FREEZE_TIMEOUT_MS 5000

uint64_t vs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool proc_covered(pid_t pid)
{
	int i = vs_proc_by_pid(pid);

	return i >= 0 && !vs.procs[i].dead && vs.procs[i].uffd >= 0;
}

/* Does one /proc/<pid>/maps line show a guest memfd? Returns the obj or -1. */
static int maps_line_obj(const char *line)
{
	unsigned maj, min;
	unsigned long ino;

	if (!strstr(line, "/memfd:") ||
	    sscanf(line, "%*s %*s %*s %x:%x %lu", &maj, &min, &ino) != 3)
		return -1;
	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (vs.objs[i].used && vs.objs[i].ino == ino &&
		    vs.objs[i].dev == makedev(maj, min))
			return i;
	return -1;
}

int vs_find_uncovered(char *msg, size_t n)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;

	if (!d)
		return -errno;
	while (!found && (de = readdir(d))) {
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
		char path[64], line[512];
		FILE *f;

		if (pid <= 0 || pid == getpid() || proc_covered(pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			int o = maps_line_obj(line);
			char comm[32] = "?";
			FILE *c;

			if (o < 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%d/comm", pid);
			if ((c = fopen(path, "re"))) {
				if (fgets(comm, sizeof(comm), c))
					comm[strcspn(comm, "\n")] = 0;
				fclose(c);
			}
			snprintf(msg, n, "process %d (%s) maps guest memory %s without a "
				 "userfaultfd; refusing to enable", pid, comm, vs.objs[o].name);
			found = 1;
			break;
		}
		fclose(f);
	}
	closedir(d);
	return found ? -EBUSY : 0;
}

static int register_all(void)
{
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];
		int r;

		if (!m->used || vs.procs[m->proc].uffd < 0 || vs.procs[m->proc].dead)
			continue;
		r = vs_map_register(m);
		if (r) {
			vs_set_error("registering %#llx+%#llx of pid %d: %s",
				     (unsigned long long)m->addr, (unsigned long long)m->len,
				     vs.procs[m->proc].pid, strerror(-r));
			for (int j = 0; j < VS_MAX_MAPS; j++)
				if (vs.maps[j].used)
					vs_map_unregister(&vs.maps[j]);
			return r;
		}
	}
	vs.registered = true;
	return 0;
}

/* Move the data pages of one 2 MiB unit to staging. vs.lock held. */
static int stage_unit(struct vs_obj *o, uint64_t first, uint64_t count, uint64_t *moved)
{
	off_t pos = (off_t)(first * VS_PAGE_SIZE), end = (off_t)((first + count) * VS_PAGE_SIZE);
	bool any = false;

	while (pos < end) {
		off_t data = lseek(o->fd, pos, SEEK_DATA), hole;

		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		if (data >= end)
			break;
		hole = lseek(o->fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if (hole > end)
			hole = end;
		for (off_t off = data; off < hole;) {
			ssize_t r = pread(o->fd, o->stg + off, (size_t)(hole - off), off);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return r < 0 ? -errno : -EIO;
			off += r;
		}
		for (uint64_t pg = (uint64_t)data / VS_PAGE_SIZE; pg < (uint64_t)hole / VS_PAGE_SIZE; pg++) {
			uint32_t e = o->pt[pg];

			vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, vs_pt_has_slot(e), vs_pt_slot(e)));
			(*moved)++;
		}
		any = true;
		pos = hole;
	}
	if (any && fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			     (off_t)(first * VS_PAGE_SIZE), (off_t)(count * VS_PAGE_SIZE)) < 0)
		return -errno;
	return 0;
}

static int stage_all(uint64_t *moved)
{
	uint64_t total = 0;

	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (vs.objs[i].used)
			total += vs.objs[i].npages;
	vs.progress_total = total;
	vs.progress_done = 0;
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];

		for (uint64_t pg = 0; o->used && pg < o->npages; pg += UNIT_PAGES) {
			uint64_t cnt = o->npages - pg < UNIT_PAGES ? o->npages - pg : UNIT_PAGES;
			int r;

			pthread_mutex_lock(&vs.lock);
			r = stage_unit(o, pg, cnt, moved);
			pthread_mutex_unlock(&vs.lock);
			if (r) {
				vs_set_error("moving %s page %llu to staging: %s", o->name,
					     (unsigned long long)pg, strerror(-r));
				return r;
			}
			vs.progress_done += cnt;
		}
	}
	return 0;
}

int vs_op_enable(char *msg, size_t n)
{
	pid_t extra[VS_MAX_PROCS];
	struct vs_freeze fz;
	uint64_t t0 = vs_now_ms(), moved = 0, frozen_ms;
	int nextra = 0, r;

	pthread_mutex_lock(&vs.lock);
	for (int i = 0; i < VS_MAX_PROCS; i++)
		if (vs.procs[i].used && !vs.procs[i].dead && !vs.procs[i].is_vmm)
			extra[nextra++] = vs.procs[i].pid;
	pthread_mutex_unlock(&vs.lock);

	r = vs_freeze(&fz, vs.vmm_pid, extra, nextra, FREEZE_TIMEOUT_MS);
	if (r) {
		snprintf(msg, n, "could not freeze the VMM: %s", strerror(-r));
		return r;
	}
	/* Every process mapping guest memory must fault through a uffd. */
	pthread_mutex_lock(&vs.lock);
	r = vs_find_uncovered(msg, n);
	if (!r && !vs.registered) {
		r = register_all();
		if (r)
			snprintf(msg, n, "%s", vs.last_error);
	}
	pthread_mutex_unlock(&vs.lock);
	if (!r) {
		r = stage_all(&moved);
		if (r)
			snprintf(msg, n, "%s", vs.last_error);
	}
	frozen_ms = vs_now_ms() - t0;
	vs_thaw(&fz);
	if (r)
		return r;

	pthread_mutex_lock(&vs.lock);
	vs.state = VS_PENDING;
	vs.trans_pages = moved;
	vs.trans_ms = vs_now_ms() - t0;
	vs.last_error[0] = 0;
	pthread_mutex_unlock(&vs.lock);
	snprintf(msg, n, "enabled: %llu pages moved to staging, VMM frozen %llu ms",
		 (unsigned long long)moved, (unsigned long long)frozen_ms);
	return 0;
}
