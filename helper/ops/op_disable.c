/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * disable: bring every staged or swapped page back into guest memory while
 * faults are still served, then unregister and truncate the swap file.
 *
 * Pages go back with UFFDIO_COPY through a registered mapping, so a
 * pending madvise(MADV_REMOVE) makes the copy fail with EAGAIN instead of
 * racing it. Only a page no process maps is written with pwrite.
 *
 * A page guest memory already holds while its entry says it is saved is
 * held twice (dual.h): never overwritten nor dropped silently. Both copies
 * stay and disable fails naming them, unless disable keep= chose.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../model/dual.h"
#include "../model/helper.h"
#include "../persist/manifest.h"
#include "../sys/clock.h"
#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "inplace.h"
#include "ops.h"
#include "swapin.h"
#define IN_SCAN (8 * IN_BATCH) /* pages looked at for one read */

static int in_fd = -1;        /* the swap file, read through the page cache */
static int in_direct_fl = -1;  /* its flags while O_DIRECT is off, else -1 */

#define BEHIND_SLOTS 4096 /* dropped from the cache in steps of 16 MiB */

/*
 * Swap-in reads the file in order, buffered, with the kernel reading ahead
 * while we copy pages in. An O_DIRECT file is switched to buffered for
 * the time (F_SETFL; no reopen, which its mode 0 would refuse), and its
 * cache dropped after. Nothing writes it meanwhile.
 */
static void in_open(void)
{
	int fl;

	in_fd = vs.swap.fd;
	in_direct_fl = -1;
	if (vs.swap.direct && (fl = fcntl(in_fd, F_GETFL)) >= 0 &&
	    fcntl(in_fd, F_SETFL, fl & ~O_DIRECT) == 0)
		in_direct_fl = fl;
	posix_fadvise(in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

static void in_close(void)
{
	if (in_fd >= 0) {
		posix_fadvise(in_fd, 0, 0, POSIX_FADV_DONTNEED);
		posix_fadvise(in_fd, 0, 0, POSIX_FADV_NORMAL);
		if (in_direct_fl >= 0 && fcntl(in_fd, F_SETFL, in_direct_fl) < 0)
			vs_warn("swap file: cannot turn O_DIRECT back on: %s", strerror(errno));
	}
	in_fd = -1;
	in_direct_fl = -1;
}

/*
 * Read with the kernel's own sequential read-ahead. An explicit
 * POSIX_FADV_WILLNEED ahead of each half halved disable's throughput
 * here (615 against 1205 MiB/s): it reads synchronously and competes.
 */
static int in_read(struct in_half *h, uint32_t slot, size_t n)
{
	int r = vs_swapfile_read(in_fd, slot, h->buf, n);

	/*
	 * Drop what is read from the cache as we go: the cache stays small,
	 * and its pages are reused for the next reads instead of fresh ones
	 * (cold reads of 1 GiB: 1.6-1.9 GiB/s instead of 0.6-1.2 here).
	 */
	if (!r && in_fd >= 0) {
		if (slot < h->behind)
			h->behind = slot;
		else if (slot - h->behind >= BEHIND_SLOTS) {
			posix_fadvise(in_fd, (off_t)h->behind * VS_PAGE_SIZE,
				      (off_t)(slot - h->behind) * VS_PAGE_SIZE, POSIX_FADV_DONTNEED);
			h->behind = slot;
		}
	}
	return r;
}

/*
 * Swap in what comes next at h->pg, below h->end: a run of staged pages,
 * or file pages with consecutive slots (stepping over resident pages,
 * such as trimmed zero pages, between them). Advances h->pg past what is
 * settled; *done when nothing is left below h->end. 0 or -errno.
 */
static int swapin_run(struct in_half *h, bool *done)
{
	struct vs_obj *o = h->o;
	uint64_t first, n = 0, end, p;
	uint64_t pgs[IN_BATCH];
	uint32_t slot = 0;
	int64_t k;
	int r;

	pthread_mutex_lock(&vs.lock);
	end = h->end < o->npages ? h->end : o->npages;
	while (h->pg < end && (vs_pt_state(o->pt[h->pg]) == VS_P_RESIDENT ||
			       vs_pt_state(o->pt[h->pg]) == VS_P_INPLACE)) {
		/* In guest memory already (an enable in place raced this disable). */
		if (vs_pt_state(o->pt[h->pg]) == VS_P_INPLACE)
			vs_inplace_unstage(h->obj, h->pg, 1);
		h->pg++;
	}
	*done = h->pg >= end;
	if (*done) {
		pthread_mutex_unlock(&vs.lock);
		return 0;
	}
	first = h->pg;
	if (vs_pt_state(o->pt[first]) == VS_P_STAGING) {
		while (first + n < end && n < IN_BATCH &&
		       vs_pt_state(o->pt[first + n]) == VS_P_STAGING)
			n++;
		k = vs_swapin_put_pages(h, first, n, o->stg + first * VS_PAGE_SIZE);
		if (k > 0)
			h->pg = first + (uint64_t)k;
		pthread_mutex_unlock(&vs.lock);
		return vs_swapin_result(o, k);
	}
	slot = vs_pt_slot(o->pt[first]);
	for (p = first; p < end && p < first + IN_SCAN && n < IN_BATCH; p++) {
		uint32_t e = o->pt[p];

		if (vs_pt_state(e) == VS_P_FILE && vs_pt_slot(e) == slot + n)
			pgs[n++] = p;
		else if (vs_pt_state(e) != VS_P_RESIDENT)
			break;
	}
	pthread_mutex_unlock(&vs.lock);

	/* Read unlocked; install_read checks under the lock that nothing changed. */
	r = in_read(h, slot, n);
	if (r) {
		vs_set_error("reading swap file slot %u: %s", slot, strerror(-r));
		return r;
	}
	pthread_mutex_lock(&vs.lock);
	k = vs_swapin_put(h, pgs, n, slot);
	pthread_mutex_unlock(&vs.lock);
	return vs_swapin_result(o, k);
}

#define YIELD_MAX_MS 20 /* a low-priority swap-in still moves a batch this often */

/*
 * A disable started by a wake (VMSWAP_WAKE_SWAPIN) is low priority: while
 * the guest keeps faulting, it leaves the lock and the disk to the
 * faults, a millisecond at a time. An explicit disable turns this off.
 */
static void yield_to_faults(uint64_t *seen)
{
	for (int i = 0; i < YIELD_MAX_MS; i++) {
		uint64_t f;
		bool low;

		pthread_mutex_lock(&vs.lock);
		f = vs.stats.c.faults;
		low = vs.swapin_low;
		pthread_mutex_unlock(&vs.lock);
		if (!low || f == *seen)
			break;
		*seen = f;
		usleep(1000);
	}
}

/*
 * One half of an object. Two run at once: one reads the file (or copies
 * from the page cache) while the other installs pages under the lock.
 */
static void *swapin_half(void *arg)
{
	struct in_half *h = arg;
	uint64_t last = UINT64_MAX, before = h->moved, seen = 0;

	/* The object's size is read under the lock only: a hotplug may grow it. */
	while (!h->r) {
		bool done;
		int r;

		if (vs_op_aborted()) {
			h->r = -ECANCELED;
			break;
		}
		if (h->pg == last)
			usleep(50); /* EAGAIN: let the fault thread read the event */
		last = h->pg;
		yield_to_faults(&seen);
		r = swapin_run(h, &done);
		vs_op_delay(h->moved - before);
		vs.stats.progress_done += h->moved - before;
		before = h->moved;
		h->r = r;
		if (done)
			break;
	}
	return NULL;
}

/* Every object, in two halves on two threads. 0 or -errno. */
static int swapin_pass(struct in_half half[2], uint64_t *moved, uint64_t kept[2])
{
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];
		uint64_t mid;
		pthread_t t;
		bool two, used;

		/* The main thread adds and grows objects meanwhile (hotplug). */
		pthread_mutex_lock(&vs.lock);
		used = o->used;
		mid = o->npages / 2;
		pthread_mutex_unlock(&vs.lock);
		if (!used)
			continue;
		for (int j = 0; j < 2; j++) {
			half[j].o = o;
			half[j].obj = i;
			half[j].pg = j ? mid : 0;
			half[j].end = j ? UINT64_MAX : mid;
			half[j].moved = 0;
			half[j].kept_guest = half[j].kept_saved = 0;
			half[j].r = 0;
		}
		two = mid && pthread_create(&t, NULL, swapin_half, &half[0]) == 0;
		if (!two)
			half[1].pg = 0;
		swapin_half(&half[1]);
		if (two)
			pthread_join(t, NULL);
		*moved += half[0].moved + half[1].moved;
		kept[0] += half[0].kept_guest + half[1].kept_guest;
		kept[1] += half[0].kept_saved + half[1].kept_saved;
		if (half[0].r || half[1].r)
			return half[0].r ? half[0].r : half[1].r;
	}
	return 0;
}

/* After everything is back: unregister, empty the swap file. vs.lock held. */
static void finish(void)
{
	for (int i = 0; i < VS_MAX_MAPS; i++)
		if (vs.maps[i].used)
			vs_map_unregister(&vs.maps[i]);
	vs.registered = false;
	vs_manifest_sync();
	/* The file is emptied: no page keeps a copy in it any more. */
	for (int i = 0; i < VS_MAX_OBJS; i++)
		for (uint64_t pg = 0; vs.objs[i].used && pg < vs.objs[i].npages; pg++)
			vs.objs[i].pt[pg] &= VS_PT_STATE_MASK;
	vs_slots_reset(&vs.swap.slots);
	/* Freeing a large file's blocks takes a while; not under the lock. */
	vs.swap.release = vs.swap.fd >= 0;
}

void vs_swap_release(void)
{
	int fd = -1;

	pthread_mutex_lock(&vs.lock);
	if (vs.swap.release && !vs.stats.c.swapped)
		fd = vs.swap.fd;
	vs.swap.release = false;
	pthread_mutex_unlock(&vs.lock);
	/* Only the worker writes the file, and it is here, so no slot is in use. */
	if (fd >= 0 && ftruncate(fd, 0) < 0)
		vs_warn("truncating the swap file: %s", strerror(errno));
}

/*
 * A pass left pages held twice (dual.h): stop when they are all that is
 * left, or the pass moved nothing else. True with the message in @msg
 * and last_error. vs.lock held.
 */
static bool stop_at_doubles(uint64_t moved_in_pass, char *msg, size_t n)
{
	uint64_t d;

	if (!vs_dual_noted())
		return false;
	d = vs_dual_scan();
	if (!d || (moved_in_pass && d < vs_staged_pages() + vs.stats.c.swapped))
		return false;
	vs_dual_fail(msg, n);
	return true;
}

int vs_op_disable(char *msg, size_t n)
{
	static struct in_half half[2];
	uint64_t t0 = vs_now_ms(), moved = 0, kept[2] = { 0, 0 };
	int r = 0;

	for (int j = 0; j < 2; j++) {
		half[j].behind = 0;
		if (!half[j].buf &&
		    !(half[j].buf = aligned_alloc(VS_PAGE_SIZE, IN_BATCH * VS_PAGE_SIZE)))
			return -ENOMEM;
	}
	pthread_mutex_lock(&vs.lock); /* the fault thread changes the counters */
	vs.stats.progress_total = vs_staged_pages() + vs.stats.c.swapped;
	vs.stats.progress_done = 0;
	vs_dual_noted();
	/* Pages staged in place are in guest memory already: unstaged, not copied. */
	moved = vs_inplace_unstage_all();
	vs.stats.progress_done = moved;
	pthread_mutex_unlock(&vs.lock);
	if (vs.swap.fd >= 0)
		in_open();
	for (;;) {
		uint64_t before = moved;

		r = swapin_pass(half, &moved, kept);
		if (r == -ECANCELED) {
			snprintf(msg, n, "swap in aborted");
			in_close();
			return r;
		}
		if (r) {
			char err[VS_ERR_MAX];

			vs_get_error(err, sizeof(err));
			snprintf(msg, n, "swap in failed: %s; the rest stays in staging or in the file",
				 err);
			in_close();
			return r;
		}
		pthread_mutex_lock(&vs.lock);
		if (!vs_staged_pages() && !vs.stats.c.swapped) {
			finish();
			vs.stats.trans_pages = moved;
			vs.stats.trans_ms = vs_now_ms() - t0;
			pthread_mutex_unlock(&vs.lock);
			break;
		}
		if (stop_at_doubles(moved - before, msg, n)) {
			pthread_mutex_unlock(&vs.lock);
			in_close();
			return -EEXIST;
		}
		pthread_mutex_unlock(&vs.lock);
	}
	in_close();
	if (kept[0] || kept[1]) {
		snprintf(msg, n, "swapped in %llu pages; of %llu pages held twice, kept %s",
			 (unsigned long long)moved, (unsigned long long)(kept[0] + kept[1]),
			 kept[1] ? "the saved copies" : "guest memory's bytes");
		vs_warn("%s", msg);
	} else {
		snprintf(msg, n, "swapped in %llu pages", (unsigned long long)moved);
	}
	return 0;
}
