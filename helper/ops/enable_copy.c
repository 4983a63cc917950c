/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Copying guest memory to staging for enable. Copies use pread on the
 * guest memfd, of data extents only (SEEK_DATA), so no hole is ever
 * touched through a mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../fault/wp.h"
#include "../model/helper.h"
#include "enable.h"
#include "ops.h"

/* One thread's share of the staging copy. */
struct stage_job {
	struct vs_obj *o;
	bool frozen;
	off_t size;         /* of the object when the copy started; a hotplug may grow it */
	off_t from, to;     /* bytes, unit aligned */
	uint64_t moved;
	int r;
	off_t d, h;         /* the data extent last found, [d, h) */
};

#define UNIT_EXTENTS (VS_UNIT_BYTES / VS_PAGE_SIZE / 2 + 1)

/*
 * The data extents of [unit, uend), into ext[] as start/end pairs.
 * SEEK_HOLE runs once per extent, not per unit: a long extent is not
 * rescanned for every unit it spans. Returns the count or -errno.
 */
static int unit_extents(struct stage_job *j, off_t unit, off_t uend, off_t ext[][2])
{
	off_t pos = unit;
	int n = 0;

	while (pos < uend) {
		if (j->h <= pos) {
			j->d = lseek(j->o->fd, pos, SEEK_DATA);
			if (j->d < 0) {
				if (errno != ENXIO)
					return -errno;
				j->d = j->h = j->size; /* no data left */
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

int vs_copy_to_staging(struct vs_obj *o, off_t from, off_t len)
{
	for (off_t off = from; off < from + len;) {
		ssize_t r = pread(o->fd, o->stg + off, (size_t)(from + len - off), off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += r;
	}
	return 0;
}

static int copy_extents(struct vs_obj *o, off_t ext[][2], int n)
{
	int r = 0;

	/* Unlocked: hold the staging mapping in place. */
	pthread_rwlock_rdlock(&vs.stg_lock);
	for (int i = 0; i < n && !r; i++)
		r = vs_copy_to_staging(o, ext[i][0], ext[i][1] - ext[i][0]);
	pthread_rwlock_unlock(&vs.stg_lock);
	return r;
}

/*
 * Frozen: under the lock, mark the copied pages staged and punch the
 * whole unit. If the fault thread installed a page meanwhile (a fault
 * queued before the freeze), the unit is scanned and copied again first,
 * so no page is ever punched uncopied.
 */
static void stage_unit_frozen(struct stage_job *j, off_t unit, off_t uend,
			      off_t ext[][2], int n, uint64_t gen)
{
	struct vs_obj *o = j->o;

	pthread_mutex_lock(&vs.lock);
	if (!j->r && n > 0 && uend - unit < VS_UNIT_BYTES &&
	    vs_unit_keep(o, (uint64_t)unit / VS_PAGE_SIZE, (uint64_t)uend / VS_PAGE_SIZE)) {
		/* Stays resident: its staging copies are not needed. */
		for (int i = 0; i < n; i++)
			vs_stg_punch(o, (uint64_t)ext[i][0] / VS_PAGE_SIZE,
				     (uint64_t)(ext[i][1] - ext[i][0]) / VS_PAGE_SIZE);
		pthread_mutex_unlock(&vs.lock);
		return;
	}
	if (!j->r && vs.stats.install_gen != gen) {
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
}

/* Tracking: the copy is the current content unless the page gets dirty. */
static void mark_copied(struct stage_job *j, off_t ext[][2], int n)
{
	pthread_mutex_lock(&vs.lock); /* the bitmaps grow with the object */
	for (int i = 0; i < n; i++)
		for (uint64_t pg = (uint64_t)ext[i][0] / VS_PAGE_SIZE;
		     pg < (uint64_t)ext[i][1] / VS_PAGE_SIZE && pg < j->o->wp_pages; pg++)
			vs_bit_set(j->o->copied, pg);
	pthread_mutex_unlock(&vs.lock);
}

bool vs_unit_keep(const struct vs_obj *o, uint64_t unit_pg, uint64_t end_pg)
{
	uint64_t unit_end = unit_pg + (uint64_t)VS_UNIT_BYTES / VS_PAGE_SIZE;
	off_t d;

	if (end_pg >= unit_end)
		return false;
	d = lseek(o->fd, (off_t)(end_pg * VS_PAGE_SIZE), SEEK_DATA);
	return d >= 0 ? (uint64_t)d < unit_end * VS_PAGE_SIZE : errno != ENXIO;
}

/* Copy the data pages of [from, to) of an object to staging, 2 MiB at a time. */
static void *stage_span(void *arg)
{
	struct stage_job *j = arg;
	off_t ext[UNIT_EXTENTS][2];

	j->d = j->h = -1;
	for (off_t unit = j->from; unit < j->to && !j->r; unit += VS_UNIT_BYTES) {
		off_t uend = unit + VS_UNIT_BYTES < j->to ? unit + VS_UNIT_BYTES : j->to;
		uint64_t gen = atomic_load(&vs.stats.install_gen);
		int n = unit_extents(j, unit, uend, ext);

		if (n > 0)
			j->r = copy_extents(j->o, ext, n);
		else if (n < 0)
			j->r = n;
		if (j->frozen)
			stage_unit_frozen(j, unit, uend, ext, n, gen);
		else if (!j->r)
			mark_copied(j, ext, n);
		__atomic_fetch_add(&vs.stats.progress_done, (uint64_t)(uend - unit) / VS_PAGE_SIZE,
				   __ATOMIC_RELAXED);
		vs_op_delay((uint64_t)(uend - unit) / VS_PAGE_SIZE);
		if (j->d >= j->size)
			break;
		/* Jump over units with no data. */
		if (j->d > uend)
			unit = j->d / VS_UNIT_BYTES * VS_UNIT_BYTES - VS_UNIT_BYTES;
	}
	return NULL;
}

/*
 * New pages are slow to get (zeroing, and here the hypervisor's page
 * reporting); that cost must not stretch the VMM's freeze.
 */
void vs_prealloc_staging(void)
{
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];
		off_t pos = 0, d = -1, h = -1; /* [d, h): the data extent at hand */

		for (;;) {
			off_t size, end;

			/* Under the lock: hotplug adds and grows objects meanwhile. */
			pthread_mutex_lock(&vs.lock);
			size = (off_t)(o->npages * VS_PAGE_SIZE);
			if (!o->used || pos >= size) {
				pthread_mutex_unlock(&vs.lock);
				break;
			}
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
			end = h - pos > VS_UNIT_BYTES ? pos + VS_UNIT_BYTES : h; /* short lock holds */
			if (fallocate(o->stg_fd, 0, pos, end - pos) == 0)
				madvise(o->stg + pos, (size_t)(end - pos), MADV_POPULATE_WRITE);
			pthread_mutex_unlock(&vs.lock);
			pos = end;
		}
	}
}

/* Both halves of each object in parallel: the copy is memory bound. */
int vs_stage_all(bool frozen, uint64_t *moved)
{
	uint64_t total;

	pthread_mutex_lock(&vs.lock);
	total = vs_progress_start_all();
	pthread_mutex_unlock(&vs.lock);
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];
		struct stage_job a = { .o = o, .frozen = frozen }, b;
		off_t mid;
		pthread_t t;
		bool two, skip;

		/*
		 * What a hotplug adds meanwhile is left for the frozen step
		 * (tracking), or stays resident until the next enable.
		 */
		pthread_mutex_lock(&vs.lock);
		skip = !o->used || (!frozen && !o->copied);
		a.size = (off_t)(o->npages * VS_PAGE_SIZE);
		pthread_mutex_unlock(&vs.lock);
		if (skip)
			continue;
		mid = a.size / 2 / VS_UNIT_BYTES * VS_UNIT_BYTES;
		b = a;
		a.to = b.from = mid;
		b.to = a.size;
		two = mid > 0 && pthread_create(&t, NULL, stage_span, &a) == 0;
		if (!two)
			b.from = 0;
		stage_span(&b);
		if (two)
			pthread_join(t, NULL);
		*moved += a.moved + b.moved;
		if (a.r || b.r) {
			vs_set_error("copying %s to staging: %s", o->name, strerror(-(a.r ? a.r : b.r)));
			return a.r ? a.r : b.r;
		}
	}
	vs.stats.progress_done = total;
	return 0;
}
