/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fault thread: serves every uffd, in every state.
 * Order of resolution: staging, then swap file (with read-ahead per
 * stream, fault_stream.h), then zero. Non-cooperative events of a batch
 * are applied before its faults (see helper.h on why the read and the
 * events share the lock). Swap-file reads go to io_uring or reader
 * threads (fault_read.h) and never block this thread; a fault on a page whose
 * read is in flight waits in a list and is resolved again when a read
 * finishes.
 *
 * A failed swap-file read leaves the faulting thread blocked: it gets no
 * page, so never wrong bytes. After a backoff (doubling up to
 * RETRY_MAX_MS while reads keep failing) the fault thread wakes that
 * process's waiters, and they fault again. Meanwhile it serves events as
 * usual and holds no lock; the first failure of a streak goes to
 * last_error.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../model/helper.h"
#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "../sys/uffd.h"
#include "fault.h"
#include "fault_int.h"
#include "fault_read.h"
#include "fault_stream.h"
#include "fault_wait.h"
#include "fault_ws.h"
#include "wp.h"

#define FAULT_BATCH 64
#define FAULT_ROUNDS 16        /* read rounds per lock hold, so workers get a turn */
#define WAKE_TOKEN UINT64_MAX
#define READ_DONE_TOKEN (UINT64_MAX - 1)
#define AHEAD_RUNS 2           /* windows read ahead of a wide stream */

static pthread_t fault_thread;
static int read_done_fd = -1;

/*
 * A fault from the swap file: plan its read and hand it to the readers,
 * or wait for a read in flight. 0: nothing more to do here now.
 */
static int fault_from_file(int pidx, struct vs_map *m, uint64_t page, uint64_t pg,
			   uint64_t t0)
{
	struct vs_run run;
	bool by_prefetch;

	/* VMSWAP_WAKE_SWAPIN: the main thread starts the swap-in (state.h). */
	if (vs.wake_swapin && vs.state == VS_ACTIVE &&
	    !atomic_load_explicit(&vs.wake_due, memory_order_relaxed))
		atomic_store(&vs.wake_due, true);
	if (!vs_fault_read_busy(m->obj, pg, &by_prefetch)) {
		struct vs_run ahead;

		vs_stream_plan(pidx, m, &vs.objs[m->obj], page, pg, &run);
		if (!vs_fault_read_submit(pidx, m->obj, &run, page, t0)) {
			vs_ws_fault(m->obj, run.pg, run.n);
			/* A wide stream: the next windows are read meanwhile. */
			for (int k = 0; k < AHEAD_RUNS; k++) {
				if (!vs_stream_ahead(pidx, m, &vs.objs[m->obj], &run, &ahead) ||
				    vs_fault_read_busy(m->obj, ahead.pg, NULL) ||
				    vs_fault_read_ahead(pidx, m->obj, &ahead))
					break;
				vs_ws_fault(m->obj, ahead.pg, ahead.n);
				run = ahead;
			}
			return 0;
		}
	}
	if (by_prefetch)
		vs_ws_count(0, 1); /* the guest wants what the prefetch is reading */
	vs_ws_fault(m->obj, pg, 1);
	/* A full list cannot happen with fewer blocked threads; faulting again is safe. */
	if (vs_wait_add(pidx, vs.procs[pidx].gen, page, t0))
		vs_uffd_wake(vs.procs[pidx].uffd, page, VS_PAGE_SIZE);
	return 0;
}

/*
 * Staging copies of pages faulted back are freed after the faulting
 * threads are woken, not on their way. A page staged again meanwhile is
 * skipped; install_gen tells a concurrent enable to re-copy its unit.
 */
#define PUNCH_MAX 512
static struct { int obj; uint64_t pg; } punch_q[PUNCH_MAX];
static int punch_n;

static void punch_flush(void)
{
	for (int i = 0; i < punch_n; i++) {
		struct vs_obj *o = &vs.objs[punch_q[i].obj];
		uint64_t pg = punch_q[i].pg, n = 1;

		if (!o->used || pg >= o->npages || vs_pt_state(o->pt[pg]) != VS_P_RESIDENT)
			continue;
		/* Coalesce a run queued in order (sequential faults). */
		while (i + 1 < punch_n && punch_q[i + 1].obj == punch_q[i].obj &&
		       punch_q[i + 1].pg == pg + n && pg + n < o->npages &&
		       vs_pt_state(o->pt[pg + n]) == VS_P_RESIDENT) {
			n++;
			i++;
		}
		vs_stg_punch(o, pg, n);
	}
	if (punch_n)
		vs.stats.install_gen++;
	punch_n = 0;
}

static void punch_later(int obj, uint64_t pg)
{
	if (punch_n == PUNCH_MAX)
		punch_flush();
	punch_q[punch_n].obj = obj;
	punch_q[punch_n++].pg = pg;
}

/*
 * Resolve one fault at @addr of process @pidx, read at @t0 (ns). 0, or
 * -EAGAIN to retry later.
 */
static int resolve(int pidx, uint64_t addr, bool wp, uint64_t t0)
{
	struct vs_proc *p = &vs.procs[pidx];
	uint64_t page = addr & ~(uint64_t)(VS_PAGE_SIZE - 1), pg;
	struct vs_map *m = vs_map_find(pidx, page);
	struct vs_obj *o;
	uint32_t e;
	int r;

	if (!m) {
		vs_warn("fault at %#llx of pid %d outside every guest mapping",
			(unsigned long long)page, p->pid);
		vs_uffd_wake(p->uffd, page, VS_PAGE_SIZE);
		return 0;
	}
	o = &vs.objs[m->obj];
	pg = (page - m->addr + m->off) / VS_PAGE_SIZE;
	if (vs_punching(m->obj, pg)) {
		/* Out punches its unit unlocked: nothing goes in, nothing is let write. */
		if (vs_wait_add(pidx, p->gen, page, t0) == -ENOSPC)
			vs_uffd_wake(p->uffd, page, VS_PAGE_SIZE);
		return 0;
	}
	if (wp) {
		r = vs_wp_fault(pidx, page);
		goto done;
	}
	e = o->pt[pg];
	switch (vs_pt_state(e)) {
	case VS_P_STAGING:
		r = vs_uffd_copy(p->uffd, page, o->stg + pg * VS_PAGE_SIZE, VS_PAGE_SIZE, NULL);
		if (!r) {
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e), vs_pt_slot(e)));
			punch_later(m->obj, pg);
			vs.stats.c.copied_from_staging++;
		} else if (r == -EEXIST) {
			vs_warn("page %llu of %s present while staged (written through the fd?)",
				(unsigned long long)pg, o->name);
		}
		break;
	case VS_P_FILE:
		return fault_from_file(pidx, m, page, pg, t0);
	default:
		r = vs_uffd_zeropage(p->uffd, page, VS_PAGE_SIZE);
		if (!r)
			vs.stats.c.zeroed++;
		/* A page staged in place that is missing: discarded, its REMOVE still on the way. */
		if (!r && vs_pt_state(e) == VS_P_INPLACE)
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e), vs_pt_slot(e)));
		break;
	}
	if (!r)
		vs.stats.install_gen++;
	if (!r && vs.wp_phase != VS_WP_OFF)
		vs_wp_installed(o, pg, 1);
done:
	switch (r) {
	case 0:
		break;
	case -EAGAIN:
		return -EAGAIN;
	case -EEXIST:
		/* Installed through another mapping meanwhile: just wake. */
		vs_uffd_wake(p->uffd, page, VS_PAGE_SIZE);
		break;
	case -ESRCH:
		p->dead = true; /* exiting; the main loop drops it */
		return 0;
	case -ENOENT:
		/*
		 * The range is not registered any more: unmapped, or
		 * unregistered by disable. UFFDIO_UNREGISTER wakes the faults
		 * queued before it, but one whose thread held only the VMA
		 * lock can queue itself just after: wake it, or it sleeps
		 * for good. It faults again, without us.
		 */
		vs_uffd_wake(p->uffd, page, VS_PAGE_SIZE);
		return 0;
	default:
		vs_err("resolving fault at %#llx of pid %d: %s", (unsigned long long)page,
		       p->pid, strerror(-r));
		vs_uffd_wake(p->uffd, page, VS_PAGE_SIZE);
		return 0;
	}
	vs_fault_record_latency(vs_now_ns() - t0);
	return 0;
}

/* Keep working-set reads going while a prefetch runs (fault_ws.h). */
static void pump_prefetch(void)
{
	static uint64_t pgs[VS_WS_RUN_MAX];
	uint32_t slot, n;
	int obj;

	while (vs_ws_prefetching() && vs.swap.fd >= 0 && !vs_fault_read_prefetch_busy()) {
		n = vs_ws_next(&obj, &slot, pgs);
		if (!n || vs_fault_read_prefetch(obj, slot, n, pgs))
			break;
	}
}

/* Faults that waited for a read: resolve them again. vs.lock held. */
static void resolve_waiting(void)
{
	static struct vs_waiter w[VS_WAITING_MAX];
	int n = vs_wait_take(w);

	for (int i = 0; i < n; i++) {
		struct vs_proc *p = &vs.procs[w[i].pidx];

		if (!p->used || p->gen != w[i].gen || p->uffd < 0)
			continue;
		/* -EAGAIN: an event is pending; waking makes the thread fault after it. */
		if (resolve(w[i].pidx, w[i].addr, false, w[i].t0) == -EAGAIN)
			vs_uffd_wake(p->uffd, w[i].addr, VS_PAGE_SIZE);
	}
}

static void apply_event(int pidx, const struct uffd_msg *msg)
{
	switch (msg->event) {
	case UFFD_EVENT_REMOVE: {
		uint64_t start = msg->arg.remove.start, end = msg->arg.remove.end;

		/* Walk every mapping of this process the range touches. */
		for (uint64_t a = start; a < end;) {
			struct vs_map *m = vs_map_find(pidx, a);
			uint64_t stop;

			if (!m) {
				a += VS_PAGE_SIZE;
				continue;
			}
			stop = end < m->addr + m->len ? end : m->addr + m->len;
			vs_discard(&vs.objs[m->obj], (a - m->addr + m->off) / VS_PAGE_SIZE,
				   (stop - a) / VS_PAGE_SIZE);
			a = stop;
		}
		break;
	}
	case UFFD_EVENT_UNMAP:
		vs_map_remove_range(pidx, msg->arg.remove.start,
				    msg->arg.remove.end - msg->arg.remove.start);
		vs_obj_gc();
		break;
	case UFFD_EVENT_REMAP:
		vs_map_move(pidx, msg->arg.remap.from, msg->arg.remap.to, msg->arg.remap.len);
		break;
	default:
		break;
	}
}

/* Drain one uffd. Called and returns with vs.lock held. */
static void serve(int pidx, uint32_t gen)
{
	struct uffd_msg msgs[FAULT_BATCH];
	struct { uint64_t addr; bool wp; uint64_t t0; } pending[FAULT_BATCH];
	int npend = 0;

	for (int round = 0; round < FAULT_ROUNDS || npend; round++) {
		struct vs_proc *p = &vs.procs[pidx];
		ssize_t n;
		int cnt, keep = 0;

		if (!p->used || p->gen != gen || p->uffd < 0)
			return;
		n = read(p->uffd, msgs, sizeof(msgs[0]) * (size_t)(FAULT_BATCH - npend));
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			vs_err("reading uffd of pid %d: %s", p->pid, strerror(errno));
			p->dead = true;
			return;
		}
		if (n <= 0 && !npend)
			return;
		if (n <= 0) {
			/* An event is announced but not queued yet; let it come. */
			vs_fault_read_flush();
			pthread_mutex_unlock(&vs.lock);
			usleep(20);
			pthread_mutex_lock(&vs.lock);
			if (round > 100000) {
				vs_err("fault of pid %d kept failing with EAGAIN", p->pid);
				return;
			}
		}
		cnt = n > 0 ? (int)((size_t)n / sizeof(msgs[0])) : 0;
		for (int i = 0; i < cnt; i++) {
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
				pending[npend].t0 = vs_now_ns();
				pending[npend].addr = msgs[i].arg.pagefault.address;
				pending[npend++].wp = msgs[i].arg.pagefault.flags &
						      UFFD_PAGEFAULT_FLAG_WP;
			} else {
				apply_event(pidx, &msgs[i]);
			}
		}
		for (int i = 0; i < npend; i++)
			if (resolve(pidx, pending[i].addr, pending[i].wp, pending[i].t0) == -EAGAIN)
				pending[keep++] = pending[i];
		npend = keep;
	}
}

static void *fault_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&vs.stopping)) {
		struct epoll_event evs[16];
		int n = epoll_wait(vs.fault_epfd, evs, 16, vs_retry_timeout());

		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;

			if (d == WAKE_TOKEN)
				continue;
			if (d == READ_DONE_TOKEN) {
				uint64_t v;

				if (read(read_done_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					vs_err("fault thread: reading the readers' eventfd: %s",
					       strerror(errno));
				pthread_mutex_lock(&vs.lock);
				vs_fault_read_reap();
				resolve_waiting();
				punch_flush();
				pump_prefetch();
				vs_fault_read_flush();
				pthread_mutex_unlock(&vs.lock);
				continue;
			}
			pthread_mutex_lock(&vs.lock);
			serve((int)(uint32_t)d, (uint32_t)(d >> 32));
			punch_flush();
			pump_prefetch();
			vs_fault_read_flush();
			pthread_mutex_unlock(&vs.lock);
		}
		if (vs_retry_due()) {
			pthread_mutex_lock(&vs.lock);
			vs_retry_wake();
			pthread_mutex_unlock(&vs.lock);
		}
	}
	return NULL;
}

void vs_fault_kick(void)
{
	uint64_t one = 1;

	if (read_done_fd >= 0 && write(read_done_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vs_err("waking the fault thread: %s", strerror(errno));
}

int vs_fault_start(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_TOKEN };
	int r;

	struct epoll_event done = { .events = EPOLLIN, .data.u64 = READ_DONE_TOKEN };

	vs.fault_epfd = epoll_create1(EPOLL_CLOEXEC);
	vs.fault_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vs.fault_epfd < 0 || vs.fault_wake_fd < 0)
		return -errno;
	if (epoll_ctl(vs.fault_epfd, EPOLL_CTL_ADD, vs.fault_wake_fd, &ev) < 0)
		return -errno;
	if ((r = vs_fault_read_start(&read_done_fd)))
		return r;
	if (epoll_ctl(vs.fault_epfd, EPOLL_CTL_ADD, read_done_fd, &done) < 0)
		return -errno;
	r = pthread_create(&fault_thread, NULL, fault_main, NULL);
	return -r;
}

void vs_fault_stop(void)
{
	uint64_t one = 1;

	atomic_store(&vs.stopping, true);
	if (write(vs.fault_wake_fd, &one, sizeof(one)) < 0)
		return;
	pthread_join(fault_thread, NULL);
	vs_fault_read_stop();
}

void vs_fault_latency(uint64_t *p50, uint64_t *p99)
{
	uint64_t total = 0, acc = 0;

	*p50 = *p99 = 0;
	for (int b = 0; b < 32; b++)
		total += vs.stats.c.lat_hist[b];
	if (!total)
		return;
	for (int b = 0; b < 32; b++) {
		acc += vs.stats.c.lat_hist[b];
		/* Report a bucket's upper bound: 2^b microseconds. */
		if (!*p50 && acc * 2 >= total)
			*p50 = b ? 1ull << b : 1;
		if (!*p99 && acc * 100 >= total * 99) {
			*p99 = b ? 1ull << b : 1;
			break;
		}
	}
}
