/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * disable: bring every staged or swapped page back into guest memory while
 * faults are still served, then unregister and truncate the swap file.
 *
 * Pages go back with UFFDIO_COPY through a registered mapping, so a
 * pending madvise(MADV_REMOVE) makes the copy fail with EAGAIN instead of
 * racing it. Only a page no process maps is written with pwrite.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
#include "log.h"
#include "ops.h"
#include "swapfile.h"
#include "uffd.h"

#define IN_BATCH 256

static uint8_t *in_buf; /* IN_BATCH pages, worker thread only */
static int in_fd = -1;  /* the swap file, read through the page cache */
static uint32_t ahead;  /* slots below this were already asked for */

#define AHEAD_SLOTS 4096 /* 16 MiB of read-ahead in flight */

/*
 * Swap-in reads the file in order: through a buffered descriptor of the
 * O_DIRECT file, with the kernel reading ahead while we copy pages in.
 */
static void in_open(void)
{
	char path[64];

	in_fd = vs.swap_fd;
	ahead = 0;
	if (!vs.swap_direct)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", vs.swap_fd);
	in_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (in_fd < 0)
		in_fd = vs.swap_fd;
	else
		posix_fadvise(in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

static void in_close(void)
{
	if (in_fd >= 0 && in_fd != vs.swap_fd) {
		posix_fadvise(in_fd, 0, 0, POSIX_FADV_DONTNEED);
		close(in_fd);
	}
	in_fd = -1;
}

static int in_read(uint32_t slot, void *buf, size_t n)
{
	if (in_fd != vs.swap_fd && slot + n + AHEAD_SLOTS / 2 > ahead) {
		posix_fadvise(in_fd, (off_t)slot * VS_PAGE_SIZE, (off_t)AHEAD_SLOTS * VS_PAGE_SIZE,
			      POSIX_FADV_WILLNEED);
		ahead = slot + AHEAD_SLOTS;
	}
	return vs_swapfile_read(in_fd, slot, buf, n);
}

/*
 * Install @count pages of @o from @pg with bytes at @src. vs.lock held.
 * Returns the number of pages settled (installed, or found present), or
 * -EAGAIN when an event must be read first.
 */
static int64_t install(struct vs_obj *o, int obj, uint64_t pg, uint64_t count, const uint8_t *src)
{
	struct vs_map *m = vs_map_for_page(obj, pg);
	uint64_t done = 0;
	int r;

	if (!m) {
		/* Nobody maps it, so nobody can fault or discard it meanwhile. */
		ssize_t w = pwrite(o->fd, src, count * VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE));

		if (w < (ssize_t)VS_PAGE_SIZE)
			return w < 0 ? -errno : -EIO;
		return w / VS_PAGE_SIZE;
	}
	/* Stay inside this mapping. */
	uint64_t room = (m->off + m->len - pg * VS_PAGE_SIZE) / VS_PAGE_SIZE;

	if (count > room)
		count = room;
	r = vs_uffd_copy(vs.procs[m->proc].uffd, m->addr + pg * VS_PAGE_SIZE - m->off, src,
			 count * VS_PAGE_SIZE, &done);
	if (r == -EEXIST)
		return (int64_t)(done / VS_PAGE_SIZE) + 1; /* the next page is present */
	if (r == -ESRCH || r == -ENOENT) {
		if (r == -ESRCH)
			vs.procs[m->proc].dead = true;
		else
			m->used = false;
		return done ? (int64_t)(done / VS_PAGE_SIZE) : -EAGAIN;
	}
	if (r && !done)
		return r;
	return (int64_t)(done / VS_PAGE_SIZE);
}

/* Mark @n pages from @pg resident again (keeping slots) and drop staging. */
static void settle(struct vs_obj *o, uint64_t pg, uint64_t n)
{
	bool staged = false;

	vs.install_gen++;
	for (uint64_t i = pg; i < pg + n; i++) {
		uint32_t e = o->pt[i];

		if (vs_pt_state(e) == VS_P_STAGING) {
			staged = true;
			vs.c.copied_from_staging++;
		} else if (vs_pt_state(e) == VS_P_FILE) {
			vs.c.copied_from_file++;
		}
		vs_page_set(o, i, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e), vs_pt_slot(e)));
	}
	if (staged)
		fallocate(o->stg_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(pg * VS_PAGE_SIZE), (off_t)(n * VS_PAGE_SIZE));
}

/*
 * Swap in one run at *pg of pages in the same state (and consecutive slots
 * for FILE). Advances *pg past what is settled. 0 or -errno.
 */
static int swapin_run(struct vs_obj *o, int obj, uint64_t *pg, uint64_t *moved)
{
	uint64_t first, n = 0;
	uint32_t slot = 0;
	enum vs_pstate st;
	int64_t k;
	int r;

	pthread_mutex_lock(&vs.lock);
	while (*pg < o->npages && vs_pt_state(o->pt[*pg]) == VS_P_RESIDENT)
		(*pg)++;
	if (*pg >= o->npages) {
		pthread_mutex_unlock(&vs.lock);
		return 0;
	}
	first = *pg;
	st = vs_pt_state(o->pt[first]);
	slot = vs_pt_slot(o->pt[first]);
	while (first + n < o->npages && n < IN_BATCH) {
		uint32_t e = o->pt[first + n];

		if (vs_pt_state(e) != st || (st == VS_P_FILE && vs_pt_slot(e) != slot + n))
			break;
		n++;
	}
	if (st == VS_P_STAGING) {
		k = install(o, obj, first, n, o->stg + first * VS_PAGE_SIZE);
		if (k > 0) {
			settle(o, first, (uint64_t)k);
			*moved += (uint64_t)k;
			*pg = first + (uint64_t)k;
		}
		pthread_mutex_unlock(&vs.lock);
		return k < 0 && k != -EAGAIN ? (int)k : 0;
	}
	pthread_mutex_unlock(&vs.lock);

	/* Read unlocked; recheck under the lock that the run is unchanged. */
	r = in_read(slot, in_buf, n);
	if (r) {
		vs_set_error("reading swap file slot %u: %s", slot, strerror(-r));
		return r;
	}
	pthread_mutex_lock(&vs.lock);
	for (uint64_t i = 0; i < n; i++) {
		uint32_t e = o->pt[first + i];

		if (vs_pt_state(e) != VS_P_FILE || vs_pt_slot(e) != slot + i) {
			n = i;
			break;
		}
	}
	k = n ? install(o, obj, first, n, in_buf) : 0;
	if (k > 0) {
		settle(o, first, (uint64_t)k);
		*moved += (uint64_t)k;
	}
	pthread_mutex_unlock(&vs.lock);
	*pg = first + (k > 0 ? (uint64_t)k : 0);
	return k < 0 && k != -EAGAIN ? (int)k : 0;
}

/* After everything is back: unregister, empty the swap file. vs.lock held. */
static void finish(void)
{
	for (int i = 0; i < VS_MAX_MAPS; i++)
		if (vs.maps[i].used)
			vs_map_unregister(&vs.maps[i]);
	vs.registered = false;
	/* The file is emptied: no page keeps a copy in it any more. */
	for (int i = 0; i < VS_MAX_OBJS; i++)
		for (uint64_t pg = 0; vs.objs[i].used && pg < vs.objs[i].npages; pg++)
			vs.objs[i].pt[pg] &= VS_PT_STATE_MASK;
	vs_slots_reset(&vs.slots);
	if (vs.swap_fd >= 0 && ftruncate(vs.swap_fd, 0) < 0)
		vs_warn("truncating the swap file: %s", strerror(errno));
}

int vs_op_disable(char *msg, size_t n)
{
	uint64_t t0 = vs_now_ms(), moved = 0;
	int r = 0;

	if (!in_buf && !(in_buf = aligned_alloc(VS_PAGE_SIZE, IN_BATCH * VS_PAGE_SIZE)))
		return -ENOMEM;
	vs.progress_total = vs.c.staging + vs.c.swapped;
	vs.progress_done = 0;
	if (vs.swap_fd >= 0)
		in_open();
	for (;;) {
		for (int i = 0; i < VS_MAX_OBJS && !r; i++) {
			struct vs_obj *o = &vs.objs[i];
			uint64_t pg = 0, last = UINT64_MAX;

			while (o->used && pg < o->npages && !r) {
				if (vs_op_aborted()) {
					snprintf(msg, n, "swap in aborted");
					in_close();
					return -ECANCELED;
				}
				if (pg == last)
					usleep(50); /* EAGAIN: let the fault thread read the event */
				last = pg;
				r = swapin_run(o, i, &pg, &moved);
				vs.progress_done = moved;
			}
		}
		if (r) {
			snprintf(msg, n, "swap in failed: %s", vs.last_error);
			in_close();
			return r;
		}
		pthread_mutex_lock(&vs.lock);
		if (!vs.c.staging && !vs.c.swapped) {
			finish();
			vs.trans_pages = moved;
			vs.trans_ms = vs_now_ms() - t0;
			pthread_mutex_unlock(&vs.lock);
			break;
		}
		pthread_mutex_unlock(&vs.lock);
	}
	in_close();
	snprintf(msg, n, "swapped in %llu pages", (unsigned long long)moved);
	return 0;
}
