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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "freeze.h"
#include "helper.h"
#include "log.h"
#include "ops.h"

#define UNIT_BYTES ((off_t)2 << 20) /* punch only whole THP units */
#define FREEZE_TIMEOUT_MS 5000

uint64_t vs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

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

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			uint64_t start, end;
			int o = maps_line_obj(line, &start, &end);
			char comm[32] = "?";
			FILE *c;

			if (o < 0 || range_covered(pid, start, end))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/comm", pid);
			if ((c = fopen(path, "re"))) {
				if (fgets(comm, sizeof(comm), c))
					comm[strcspn(comm, "\n")] = 0;
				fclose(c);
			}
			snprintf(msg, n, "process %d (%s) maps guest memory %s at %#llx-%#llx "
				 "without a userfaultfd covering it; refusing to enable", pid, comm,
				 vs.objs[o].name, (unsigned long long)start, (unsigned long long)end);
			found = 1;
			break;
		}
		fclose(f);
	}
	closedir(d);
	return found ? -EBUSY : 0;
}

/*
 * Register every mapping. One the kernel no longer has (EINVAL, ENOMEM:
 * the VMM unmapped it and was frozen before the shim could tell us) is
 * dropped; the coverage check that follows catches anything still mapped.
 */
static int register_all(void)
{
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];
		int r;

		if (!m->used || vs.procs[m->proc].uffd < 0 || vs.procs[m->proc].dead)
			continue;
		r = vs_map_register(m);
		if (r == -EINVAL || r == -ENOMEM) {
			vs_info("mapping %#llx+%#llx of pid %d is gone; forgetting it",
				(unsigned long long)m->addr, (unsigned long long)m->len,
				vs.procs[m->proc].pid);
			m->used = false;
			continue;
		}
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

/* One thread's share of the staging copy. */
struct stage_job {
	struct vs_obj *o;
	off_t from, to;     /* bytes, unit aligned */
	uint64_t moved;
	int r;
	off_t d, h;         /* the data extent last found, [d, h) */
};

#define UNIT_EXTENTS (UNIT_BYTES / VS_PAGE_SIZE / 2 + 1)

/*
 * The data extents of [unit, uend), into ext[] as start/end pairs.
 * SEEK_HOLE runs once per extent, not per unit: a long extent is not
 * rescanned for every unit it spans. Returns the count or -errno.
 */
static int unit_extents(struct stage_job *j, off_t unit, off_t uend, off_t ext[][2])
{
	off_t size = (off_t)(j->o->npages * VS_PAGE_SIZE), pos = unit;
	int n = 0;

	while (pos < uend) {
		if (j->h <= pos) {
			j->d = lseek(j->o->fd, pos, SEEK_DATA);
			if (j->d < 0) {
				if (errno != ENXIO)
					return -errno;
				j->d = j->h = size; /* no data left */
				break;
			}
			j->h = lseek(j->o->fd, j->d, SEEK_HOLE);
			if (j->h < 0)
				return -errno;
		}
		if (j->d >= uend)
			break;
		ext[n][0] = j->d > pos ? j->d : pos;
		ext[n][1] = j->h < uend ? j->h : uend;
		pos = ext[n++][1];
	}
	return n;
}

static int copy_extents(struct vs_obj *o, off_t ext[][2], int n)
{
	for (int i = 0; i < n; i++) {
		for (off_t off = ext[i][0]; off < ext[i][1];) {
			ssize_t r = pread(o->fd, o->stg + off, (size_t)(ext[i][1] - off), off);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return r < 0 ? -errno : -EIO;
			off += r;
		}
	}
	return 0;
}

/*
 * Move the data pages of [from, to) of an object to staging, 2 MiB at a
 * time: scan and copy without the lock (the VMM is frozen, so only the
 * fault thread can add a page, and it bumps vs.install_gen), then under
 * the lock mark the pages and punch the whole unit. If a page was
 * installed meanwhile, the unit is scanned and copied again under the
 * lock, so no page is ever punched uncopied.
 */
static void *stage_span(void *arg)
{
	struct stage_job *j = arg;
	struct vs_obj *o = j->o;
	off_t size = (off_t)(o->npages * VS_PAGE_SIZE);
	off_t ext[UNIT_EXTENTS][2];

	j->d = j->h = -1;
	for (off_t unit = j->from; unit < j->to && !j->r; unit += UNIT_BYTES) {
		off_t uend = unit + UNIT_BYTES < j->to ? unit + UNIT_BYTES : j->to;
		uint64_t gen = __atomic_load_n(&vs.install_gen, __ATOMIC_ACQUIRE);
		int n = unit_extents(j, unit, uend, ext);

		if (n > 0)
			j->r = copy_extents(o, ext, n);
		else if (n < 0)
			j->r = n;
		pthread_mutex_lock(&vs.lock);
		if (!j->r && vs.install_gen != gen) {
			j->d = j->h = -1;
			n = unit_extents(j, unit, uend, ext);
			j->r = n < 0 ? n : copy_extents(o, ext, n);
		}
		for (int i = 0; i < n && !j->r; i++) {
			for (uint64_t pg = (uint64_t)ext[i][0] / VS_PAGE_SIZE;
			     pg < (uint64_t)ext[i][1] / VS_PAGE_SIZE; pg++) {
				uint32_t e = o->pt[pg];

				vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, vs_pt_has_slot(e),
							      vs_pt_slot(e)));
				j->moved++;
			}
		}
		if (!j->r && n > 0 &&
		    fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, unit, uend - unit) < 0)
			j->r = -errno;
		pthread_mutex_unlock(&vs.lock);
		__atomic_fetch_add(&vs.progress_done, (uint64_t)(uend - unit) / VS_PAGE_SIZE,
				   __ATOMIC_RELAXED);
		if (j->d >= size)
			break;
		/* Jump over units with no data. */
		if (j->d > uend)
			unit = j->d / UNIT_BYTES * UNIT_BYTES - UNIT_BYTES;
	}
	return NULL;
}

/*
 * Before the freeze: allocate and map the staging pages for every data
 * extent, so the frozen copy is a plain memcpy into present pages. New
 * pages are slow to get (zeroing, and here the hypervisor's page
 * reporting); that cost must not stretch the VMM's freeze.
 */
static void prealloc_staging(void)
{
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];
		off_t pos = 0, d = -1, h = -1; /* [d, h): the data extent at hand */

		while (o->used && pos < (off_t)(o->npages * VS_PAGE_SIZE)) {
			off_t size = (off_t)(o->npages * VS_PAGE_SIZE), end;

			pthread_mutex_lock(&vs.lock);
			/* One SEEK_HOLE per extent: it scans the whole extent. */
			if (h <= pos) {
				d = lseek(o->fd, pos, SEEK_DATA);
				h = d < 0 ? -1 : lseek(o->fd, d, SEEK_HOLE);
				if (h > size)
					h = size;
			}
			if (d < 0 || h <= d) {
				pthread_mutex_unlock(&vs.lock);
				break;
			}
			if (pos < d)
				pos = d;
			end = h - pos > UNIT_BYTES ? pos + UNIT_BYTES : h; /* short lock holds */
			if (fallocate(o->stg_fd, 0, pos, end - pos) == 0)
				madvise(o->stg + pos, (size_t)(end - pos), MADV_POPULATE_WRITE);
			pthread_mutex_unlock(&vs.lock);
			pos = end;
		}
	}
}

/* Both halves of each object in parallel: the copy is memory bound, the VMM frozen. */
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
		off_t size = (off_t)(o->npages * VS_PAGE_SIZE);
		off_t mid = size / 2 / UNIT_BYTES * UNIT_BYTES;
		struct stage_job a = { .o = o, .from = 0, .to = mid };
		struct stage_job b = { .o = o, .from = mid, .to = size };
		pthread_t t;
		bool two;

		if (!o->used)
			continue;
		two = mid > 0 && pthread_create(&t, NULL, stage_span, &a) == 0;
		if (!two)
			b.from = 0;
		stage_span(&b);
		if (two)
			pthread_join(t, NULL);
		*moved += a.moved + b.moved;
		if (a.r || b.r) {
			vs_set_error("moving %s to staging: %s", o->name, strerror(-(a.r ? a.r : b.r)));
			return a.r ? a.r : b.r;
		}
	}
	vs.progress_done = total;
	return 0;
}

int vs_op_enable(char *msg, size_t n)
{
	pid_t extra[VS_MAX_PROCS];
	struct vs_freeze fz;
	uint64_t t0 = vs_now_ms(), moved = 0, frozen_ms;
	int nextra = 0, r;

	pthread_mutex_lock(&vs.lock);
	vs.enable_moving = false;
	for (int i = 0; i < VS_MAX_PROCS; i++)
		if (vs.procs[i].used && !vs.procs[i].dead && !vs.procs[i].is_vmm)
			extra[nextra++] = vs.procs[i].pid;
	pthread_mutex_unlock(&vs.lock);

	prealloc_staging();
	uint64_t t_freeze = vs_now_ms();
	r = vs_freeze(&fz, vs.vmm_pid, extra, nextra, FREEZE_TIMEOUT_MS);
	if (r) {
		snprintf(msg, n, "could not freeze the VMM: %s", strerror(-r));
		return r;
	}
	uint64_t t_frozen = vs_now_ms();
	/* Every mapping of guest memory, in any process, must fault through a uffd. */
	pthread_mutex_lock(&vs.lock);
	r = register_all();
	if (r)
		snprintf(msg, n, "%s", vs.last_error);
	else
		r = vs_find_uncovered(msg, n);
	uint64_t t_checked = vs_now_ms();
	pthread_mutex_unlock(&vs.lock);
	pthread_mutex_lock(&vs.lock);
	vs.enable_moving = !r;
	pthread_mutex_unlock(&vs.lock);
	if (!r) {
		r = stage_all(&moved);
		if (r)
			snprintf(msg, n, "%s", vs.last_error);
	}
	frozen_ms = vs_now_ms() - t_freeze;
	vs_thaw(&fz);
	vs_dbg("enable: staging preallocated in %llu ms, freeze %llu ms, coverage check %llu ms, "
	       "copy and punch %llu ms", (unsigned long long)(t_freeze - t0),
	       (unsigned long long)(t_frozen - t_freeze), (unsigned long long)(t_checked - t_frozen),
	       (unsigned long long)(vs_now_ms() - t_checked));
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
