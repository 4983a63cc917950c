/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fault thread: serves every uffd, in every state.
 * Order of resolution: staging, then swap file (with fault-around), then
 * zero. Non-cooperative events of a batch are applied before its faults
 * (see helper.h on why the read and the events share the lock).
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

#include "fault.h"
#include "helper.h"
#include "log.h"
#include "swapfile.h"
#include "uffd.h"
#include "wp.h"

#define FAULT_BATCH 64
#define FAULT_ROUNDS 16        /* read rounds per lock hold, so workers get a turn */
#define AROUND_MIN 1           /* a random fault reads just its page */
#define AROUND_MAX 256         /* pages: 1 MiB of read-ahead for sequential faults */
#define WAKE_TOKEN UINT64_MAX
#define RETRY_MIN_MS 1
#define RETRY_MAX_MS 256
#define FAULT_RETRY 1          /* resolve(): the read failed, the thread waits for a retry */

static pthread_t fault_thread;
static uint8_t *bounce;        /* AROUND_MAX pages, used by the fault thread only */

/* Per process: the last file-fault run [run_start, next_seq) and its window. */
static uint64_t run_start[VS_MAX_PROCS], next_seq[VS_MAX_PROCS];
static uint32_t window[VS_MAX_PROCS];

/* Processes with faults waiting for a retry, and when. Fault thread only. */
static bool retry_proc[VS_MAX_PROCS];
static uint32_t retry_gen[VS_MAX_PROCS];
static uint64_t retry_at;      /* ns, 0: none */
static unsigned retry_ms = RETRY_MIN_MS;
static uint64_t fail_streak;   /* failed reads since the last good one */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void record_latency(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned b = us ? 64 - (unsigned)__builtin_clzll(us) : 0;

	if (b > 31)
		b = 31;
	vs.c.lat_hist[b]++;
	if (us > vs.c.lat_max_us)
		vs.c.lat_max_us = us;
	vs.c.faults++;
}

static void read_failed(uint32_t slot, int r)
{
	if (!fail_streak++)
		vs_set_error("reading swap file slot %u: %s", slot, strerror(-r));
}

/* The faulting threads of @pidx wait; arm the backoff. */
static void retry_later(int pidx)
{
	retry_proc[pidx] = true;
	retry_gen[pidx] = vs.procs[pidx].gen;
	if (!retry_at) {
		retry_at = now_ns() + retry_ms * 1000000ull;
		retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
	}
}

static void read_worked(void)
{
	if (fail_streak)
		vs_warn("swap file reads work again after %llu failed reads",
			(unsigned long long)fail_streak);
	fail_streak = 0;
	retry_ms = RETRY_MIN_MS;
}

/* Milliseconds until the next retry, for epoll_wait; -1 when none is due. */
static int retry_timeout(void)
{
	uint64_t now;

	if (!retry_at)
		return -1;
	now = now_ns();
	return now >= retry_at ? 0 : (int)((retry_at - now + 999999) / 1000000);
}

/*
 * Wake every waiter of the processes with a failed read: each faults
 * again and comes back as a fresh event, ordered with the others. A
 * thread woken whose page is not in yet just faults again. vs.lock held.
 */
static void retry_wake(void)
{
	retry_at = 0;
	for (int i = 0; i < VS_MAX_PROCS; i++) {
		struct vs_proc *p = &vs.procs[i];

		if (!retry_proc[i])
			continue;
		retry_proc[i] = false;
		if (!p->used || p->gen != retry_gen[i] || p->uffd < 0)
			continue;
		for (int k = 0; k < VS_MAX_MAPS; k++) {
			struct vs_map *m = &vs.maps[k];

			if (m->used && m->registered && m->proc == i)
				vs_uffd_wake(p->uffd, m->addr, m->len);
		}
	}
}

/* 0, FAULT_RETRY when the read failed, or -errno from the copy. */
static int fault_from_file(int pidx, struct vs_map *m, struct vs_obj *o,
			   uint64_t page, uint64_t pg)
{
	struct vs_proc *p = &vs.procs[pidx];
	uint32_t slot = vs_pt_slot(o->pt[pg]);
	uint64_t map_end = m->addr + m->len, done = 0;
	uint32_t w, n = 1;
	int r;

	/*
	 * Widen only when the fault lands in or just past the last run: a
	 * random fault pays for one page, while vCPUs sweeping interleaved
	 * pages (each its own stride) still count as one sequential stream.
	 */
	if (page >= run_start[pidx] &&
	    page < next_seq[pidx] + (uint64_t)(window[pidx] + 8) * VS_PAGE_SIZE)
		w = window[pidx] * 4 > AROUND_MAX ? AROUND_MAX : window[pidx] * 4;
	else
		w = AROUND_MIN;
	/* Grow the run while the next page is also swapped, at the next slot. */
	while (n < w && page + (uint64_t)n * VS_PAGE_SIZE < map_end && pg + n < o->npages) {
		uint32_t e = o->pt[pg + n];

		if (vs_pt_state(e) != VS_P_FILE || vs_pt_slot(e) != slot + n)
			break;
		n++;
	}
	window[pidx] = w;
	run_start[pidx] = page;
	next_seq[pidx] = page + (uint64_t)n * VS_PAGE_SIZE;

	r = vs_swapfile_read(vs.swap_fd, slot, bounce, n);
	if (r && n > 1) {
		/* Perhaps only the read-ahead is unreadable: the faulting page alone. */
		read_failed(slot, r);
		n = 1;
		next_seq[pidx] = page + VS_PAGE_SIZE;
		r = vs_swapfile_read(vs.swap_fd, slot, bounce, 1);
	}
	if (r) {
		read_failed(slot, r);
		retry_later(pidx);
		return FAULT_RETRY;
	}
	read_worked();
	/* The faulting page first: its thread runs on while the rest go in. */
	r = vs_uffd_copy(p->uffd, page, bounce, VS_PAGE_SIZE, &done);
	if (!r && n > 1) {
		uint64_t more = 0;

		r = vs_uffd_copy(p->uffd, page + VS_PAGE_SIZE, bounce + VS_PAGE_SIZE,
				 (uint64_t)(n - 1) * VS_PAGE_SIZE, &more);
		done += more;
		if (r == -EEXIST || r == -EAGAIN)
			r = 0; /* read-ahead only; the faulting page is in */
	}
	for (uint64_t i = 0; i < done / VS_PAGE_SIZE; i++) {
		uint32_t e = o->pt[pg + i];

		/* Keep the slot: if the page comes back unchanged, trim reuses it. */
		vs_page_set(o, pg + i, vs_pt_make(VS_P_RESIDENT, true, vs_pt_slot(e)));
		vs.c.copied_from_file++;
	}
	if (vs.wp_phase != VS_WP_OFF)
		vs_wp_installed(o, pg, done / VS_PAGE_SIZE);
	if (r == -EEXIST && done)
		r = 0; /* the faulting page was copied and woken */
	return r;
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
		vs.install_gen++;
	punch_n = 0;
}

static void punch_later(int obj, uint64_t pg)
{
	if (punch_n == PUNCH_MAX)
		punch_flush();
	punch_q[punch_n].obj = obj;
	punch_q[punch_n++].pg = pg;
}

/* Resolve one fault at @addr of process @pidx. 0, or -EAGAIN to retry later. */
static int resolve(int pidx, uint64_t addr, bool wp)
{
	struct vs_proc *p = &vs.procs[pidx];
	uint64_t page = addr & ~(uint64_t)(VS_PAGE_SIZE - 1), t0 = now_ns(), pg;
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
	if (wp) {
		r = vs_wp_fault(pidx, page);
		goto done;
	}
	o = &vs.objs[m->obj];
	pg = (page - m->addr + m->off) / VS_PAGE_SIZE;
	e = o->pt[pg];
	switch (vs_pt_state(e)) {
	case VS_P_STAGING:
		r = vs_uffd_copy(p->uffd, page, o->stg + pg * VS_PAGE_SIZE, VS_PAGE_SIZE, NULL);
		if (!r) {
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e), vs_pt_slot(e)));
			punch_later(m->obj, pg);
			vs.c.copied_from_staging++;
		} else if (r == -EEXIST) {
			vs_warn("page %llu of %s present while staged (written through the fd?)",
				(unsigned long long)pg, o->name);
		}
		break;
	case VS_P_FILE:
		r = fault_from_file(pidx, m, o, page, pg);
		break;
	default:
		r = vs_uffd_zeropage(p->uffd, page, VS_PAGE_SIZE);
		if (!r)
			vs.c.zeroed++;
		break;
	}
	if (!r || (vs_pt_state(e) == VS_P_FILE && vs_pt_state(o->pt[pg]) == VS_P_RESIDENT))
		vs.install_gen++;
	if (!r && vs_pt_state(e) != VS_P_FILE && vs.wp_phase != VS_WP_OFF)
		vs_wp_installed(o, pg, 1);
done:
	switch (r) {
	case 0:
		break;
	case -EAGAIN:
		return -EAGAIN;
	case FAULT_RETRY:
		return 0;       /* no wake: the thread waits for retry_wake() */
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
	record_latency(now_ns() - t0);
	return 0;
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
	struct { uint64_t addr; bool wp; } pending[FAULT_BATCH];
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
				pending[npend].addr = msgs[i].arg.pagefault.address;
				pending[npend++].wp = msgs[i].arg.pagefault.flags &
						      UFFD_PAGEFAULT_FLAG_WP;
			} else {
				apply_event(pidx, &msgs[i]);
			}
		}
		for (int i = 0; i < npend; i++)
			if (resolve(pidx, pending[i].addr, pending[i].wp) == -EAGAIN)
				pending[keep++] = pending[i];
		npend = keep;
	}
}

static void *fault_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&vs.stopping)) {
		struct epoll_event evs[16];
		int n = epoll_wait(vs.fault_epfd, evs, 16, retry_timeout());

		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;

			if (d == WAKE_TOKEN)
				continue;
			pthread_mutex_lock(&vs.lock);
			serve((int)(uint32_t)d, (uint32_t)(d >> 32));
			punch_flush();
			pthread_mutex_unlock(&vs.lock);
		}
		if (retry_at && now_ns() >= retry_at) {
			pthread_mutex_lock(&vs.lock);
			retry_wake();
			pthread_mutex_unlock(&vs.lock);
		}
	}
	return NULL;
}

int vs_fault_start(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_TOKEN };
	int r;

	bounce = aligned_alloc(VS_PAGE_SIZE, (size_t)AROUND_MAX * VS_PAGE_SIZE);
	if (!bounce)
		return -ENOMEM;
	vs.fault_epfd = epoll_create1(EPOLL_CLOEXEC);
	vs.fault_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vs.fault_epfd < 0 || vs.fault_wake_fd < 0)
		return -errno;
	if (epoll_ctl(vs.fault_epfd, EPOLL_CTL_ADD, vs.fault_wake_fd, &ev) < 0)
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
}

void vs_fault_latency(uint64_t *p50, uint64_t *p99)
{
	uint64_t total = 0, acc = 0;

	*p50 = *p99 = 0;
	for (int b = 0; b < 32; b++)
		total += vs.c.lat_hist[b];
	if (!total)
		return;
	for (int b = 0; b < 32; b++) {
		acc += vs.c.lat_hist[b];
		/* Report a bucket's upper bound: 2^b microseconds. */
		if (!*p50 && acc * 2 >= total)
			*p50 = b ? 1ull << b : 1;
		if (!*p99 && acc * 100 >= total * 99) {
			*p99 = b ? 1ull << b : 1;
			break;
		}
	}
}
