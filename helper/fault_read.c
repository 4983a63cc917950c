/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fault_int.h"
#include "fault_read.h"
#include "fault_ws.h"
#include "helper.h"
#include "log.h"
#include "swapfile.h"
#include "uffd.h"
#include "wp.h"

#define READERS 4
#define JOBS 16            /* reads queued or in flight */
#define AHEAD_JOBS 8       /* of them at most for read-ahead: faults always find a slot */

enum job_state { JOB_FREE, JOB_QUEUED, JOB_READING };

/*
 * A job's fields are written at submit with vs.lock and qlock held, and
 * cleared with both held; readers read them with either. state moves
 * QUEUED -> READING under qlock alone.
 */
struct job {
	_Atomic int state;     /* enum job_state */
	bool ahead;            /* read-ahead: no thread waits for it */
	bool prefetch;         /* working set: slots run.slot + i are pages pgs[i] */
	uint64_t pgs[VS_WS_RUN_MAX];
	int pidx, obj, fd;
	uint32_t gen;
	uint64_t page, t0, epoch;
	struct vs_run run;
};

static struct job jobs[JOBS];
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static pthread_t readers[READERS];
static uint8_t *bufs[READERS];     /* each reader's buffer: VS_AROUND_MAX pages */
static int nreaders, done_efd = -1;
static bool quitting;

bool vs_fault_read_busy(int obj, uint64_t pg, bool *by_prefetch)
{
	if (by_prefetch)
		*by_prefetch = false;
	for (int i = 0; i < JOBS; i++) {
		const struct job *j = &jobs[i];

		if (atomic_load_explicit(&j->state, memory_order_relaxed) == JOB_FREE ||
		    j->obj != obj)
			continue;
		if (!j->prefetch && pg >= j->run.pg && pg < j->run.pg + j->run.n)
			return true;
		for (uint32_t k = 0; j->prefetch && k < j->run.n; k++)
			if (j->pgs[k] == pg) {
				if (by_prefetch)
					*by_prefetch = true;
				return true;
			}
	}
	return false;
}

static int submit(int pidx, int obj, const struct vs_run *run, uint64_t page, uint64_t t0,
		  bool ahead)
{
	int r = -EBUSY, nahead = 0;
	struct job *slot = NULL;

	pthread_mutex_lock(&qlock);
	for (int i = 0; i < JOBS; i++) {
		if (jobs[i].state == JOB_FREE)
			slot = slot ? slot : &jobs[i];
		else
			nahead += jobs[i].ahead;
	}
	if (slot && (!ahead || nahead < AHEAD_JOBS)) {
		*slot = (struct job){ .state = JOB_QUEUED, .ahead = ahead, .pidx = pidx, .obj = obj,
				      .fd = vs.swap_fd, .gen = vs.procs[pidx].gen, .page = page,
				      .t0 = t0, .epoch = vs.slots.epoch, .run = *run };
		pthread_cond_signal(&qcond);
		r = 0;
	}
	pthread_mutex_unlock(&qlock);
	return r;
}

int vs_fault_read_submit(int pidx, int obj, const struct vs_run *run, uint64_t page,
			 uint64_t t0)
{
	return submit(pidx, obj, run, page, t0, false);
}

int vs_fault_read_ahead(int pidx, int obj, const struct vs_run *run)
{
	return submit(pidx, obj, run, run->addr, 0, true);
}

bool vs_fault_read_prefetch_busy(void)
{
	for (int i = 0; i < JOBS; i++)
		if (atomic_load_explicit(&jobs[i].state, memory_order_relaxed) != JOB_FREE &&
		    jobs[i].prefetch)
			return true;
	return false;
}

int vs_fault_read_prefetch(int obj, uint32_t slot, uint32_t n, const uint64_t *pgs)
{
	int r = -EBUSY;

	pthread_mutex_lock(&qlock);
	for (int i = 0; i < JOBS; i++) {
		struct job *j = &jobs[i];

		if (j->state != JOB_FREE)
			continue;
		j->ahead = j->prefetch = true;
		j->obj = obj;
		j->fd = vs.swap_fd;
		j->epoch = vs.slots.epoch;
		j->run = (struct vs_run){ .slot = slot, .n = n };
		memcpy(j->pgs, pgs, sizeof(j->pgs[0]) * n);
		j->state = JOB_QUEUED;
		pthread_cond_signal(&qcond);
		r = 0;
		break;
	}
	pthread_mutex_unlock(&qlock);
	return r;
}

/* Working-set pages that are still only in the file go in through any mapping of them. */
static void install_prefetch(const struct job *j, const uint8_t *buf)
{
	struct vs_obj *o = &vs.objs[j->obj];
	uint64_t in = 0;

	if (!o->used || vs.slots.epoch != j->epoch)
		return;
	struct vs_map *m = NULL;

	for (uint32_t i = 0; i < j->run.n; i++) {
		uint64_t pg = j->pgs[i], done = 0;
		uint32_t e;

		if (pg == UINT64_MAX || pg >= o->npages)
			continue;
		e = o->pt[pg];
		if (vs_pt_state(e) != VS_P_FILE || vs_pt_slot(e) != j->run.slot + i)
			continue;
		/* Pages of a run mostly share a mapping: look it up only when it ends. */
		if (!m || pg * VS_PAGE_SIZE < m->off || pg * VS_PAGE_SIZE - m->off >= m->len ||
		    !m->used || !m->registered || m->obj != j->obj)
			m = vs_map_for_page(j->obj, pg);
		if (!m)
			continue;
		if (vs_uffd_copy(vs.procs[m->proc].uffd, m->addr + pg * VS_PAGE_SIZE - m->off,
				 buf + (size_t)i * VS_PAGE_SIZE, VS_PAGE_SIZE, &done) || !done)
			continue;
		vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, true, vs_pt_slot(e)));
		vs.c.copied_from_file++;
		if (vs.wp_phase != VS_WP_OFF)
			vs_wp_installed(o, pg, 1);
		in++;
	}
	if (in) {
		vs.install_gen++;
		vs_ws_count(in, 0);
	}
}

/* Does page @i of the job's run still need exactly the bytes that were read? */
static bool still_wanted(const struct job *j, const struct vs_obj *o, uint32_t i)
{
	uint32_t e = o->pt[j->run.pg + i];

	return vs_pt_state(e) == VS_P_FILE && vs_pt_slot(e) == j->run.slot + i;
}

/* The process, mapping and slots are as they were when the read began. */
static bool unchanged(const struct job *j)
{
	const struct vs_proc *p = &vs.procs[j->pidx];
	const struct vs_map *m;

	if (!p->used || p->gen != j->gen || p->uffd < 0 || !vs.objs[j->obj].used ||
	    vs.slots.epoch != j->epoch)
		return false;
	m = vs_map_find(j->pidx, j->run.addr);
	return m && m->obj == j->obj &&
	       (j->run.addr - m->addr + m->off) / VS_PAGE_SIZE == j->run.pg &&
	       j->run.addr + (uint64_t)j->run.n * VS_PAGE_SIZE <= m->addr + m->len;
}

/* Install pages [from, to) of the run that are still wanted. Returns pages put in. */
static uint64_t install_range(const struct job *j, struct vs_obj *o, const uint8_t *buf,
			      uint32_t from, uint32_t to, int *err)
{
	int uffd = vs.procs[j->pidx].uffd;
	uint64_t in = 0;

	for (uint32_t i = from; i < to;) {
		uint64_t done = 0;
		uint32_t k = i;
		int r;

		while (k < to && still_wanted(j, o, k))
			k++;
		if (k == i) {
			i++;
			continue;
		}
		r = vs_uffd_copy(uffd, j->run.addr + (uint64_t)i * VS_PAGE_SIZE,
				 buf + (size_t)i * VS_PAGE_SIZE, (uint64_t)(k - i) * VS_PAGE_SIZE, &done);
		for (uint64_t d = 0; d < done / VS_PAGE_SIZE; d++) {
			uint64_t pg = j->run.pg + i + d;

			/* Keep the slot: if the page comes back unchanged, trim reuses it. */
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, true, vs_pt_slot(o->pt[pg])));
			vs.c.copied_from_file++;
		}
		if (done && vs.wp_phase != VS_WP_OFF)
			vs_wp_installed(o, j->run.pg + i, done / VS_PAGE_SIZE);
		in += done / VS_PAGE_SIZE;
		if (r) {
			*err = r;
			return in;
		}
		i = k;
	}
	return in;
}

/*
 * Put the read pages in, the faulting one first. Anything else than a
 * clean install of the faulting page wakes its thread, which faults
 * again and is resolved afresh. vs.lock held.
 */
static void install(const struct job *j, const uint8_t *buf, int rd)
{
	struct vs_proc *p = &vs.procs[j->pidx];
	struct vs_obj *o = &vs.objs[j->obj];
	uint32_t f = j->run.f;
	int err = 0;

	if (j->prefetch) {
		if (!rd)
			install_prefetch(j, buf);
		return;
	}
	if (!p->used || p->gen != j->gen || p->uffd < 0)
		return; /* gone: nobody waits */
	if (j->ahead) {
		/* Nobody waits: put in what still holds, drop the rest. */
		if (!rd && unchanged(j) && install_range(j, o, buf, 0, j->run.n, &err)) {
			vs.install_gen++;
		}
		return;
	}
	if (!unchanged(j) || !still_wanted(j, o, f)) {
		vs_uffd_wake(p->uffd, j->page, VS_PAGE_SIZE);
		return;
	}
	if (rd) {
		vs_fault_read_failed(j->run.slot + f, rd);
		vs_fault_retry_later(j->pidx); /* no wake: it gets no wrong bytes */
		return;
	}
	vs_fault_read_worked();
	if (!install_range(j, o, buf, f, f + 1, &err)) {
		if (err == -ESRCH)
			p->dead = true;
		else
			vs_uffd_wake(p->uffd, j->page, VS_PAGE_SIZE);
		return;
	}
	vs_fault_record_latency(vs_fault_now_ns() - j->t0);
	/* Read-ahead: best effort, the faulting thread runs on already. */
	err = 0;
	install_range(j, o, buf, f + 1, j->run.n, &err);
	err = 0;
	install_range(j, o, buf, 0, f, &err);
	vs.install_gen++;
}

/* The run, or just the faulting page when the run is unreadable. */
static int read_run(struct job *j, uint8_t *buf)
{
	int r = vs_swapfile_read(j->fd, j->run.slot, buf, j->run.n);

	if (r && j->run.n > 1 && !j->ahead) {
		pthread_mutex_lock(&vs.lock);
		vs_fault_read_failed(j->run.slot, r);
		pthread_mutex_unlock(&vs.lock);
		r = vs_swapfile_read(j->fd, j->run.slot + j->run.f,
				     buf + (size_t)j->run.f * VS_PAGE_SIZE, 1);
		j->run.n = j->run.f + 1; /* nothing past the faulting page */
	}
	return r;
}

static void *reader_main(void *arg)
{
	uint8_t *buf = arg;

	pthread_mutex_lock(&qlock);
	for (;;) {
		struct job *j = NULL, copy;
		uint64_t one = 1;
		bool wake;
		int r;

		while (!quitting && !j) {
			/* A waiting thread before any read-ahead. */
			for (int i = 0; i < JOBS && !j; i++)
				if (jobs[i].state == JOB_QUEUED && !jobs[i].ahead)
					j = &jobs[i];
			for (int i = 0; i < JOBS && !j; i++)
				if (jobs[i].state == JOB_QUEUED && !jobs[i].prefetch)
					j = &jobs[i];
			for (int i = 0; i < JOBS && !j; i++)
				if (jobs[i].state == JOB_QUEUED)
					j = &jobs[i];
			if (!j)
				pthread_cond_wait(&qcond, &qlock);
		}
		if (!j)
			break;
		j->state = JOB_READING;
		copy = *j;
		pthread_mutex_unlock(&qlock);

		r = read_run(&copy, buf);
		pthread_mutex_lock(&vs.lock);
		install(&copy, buf, r);
		pthread_mutex_lock(&qlock);
		j->state = JOB_FREE;
		/* The fault thread resolves the faults that waited for a read. */
		wake = vs_fault_has_waiters();
		pthread_mutex_unlock(&vs.lock);
		if (wake && write(done_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			vs_err("fault readers: cannot signal a finished read: %s", strerror(errno));
	}
	pthread_mutex_unlock(&qlock);
	return NULL;
}

int vs_fault_read_start(int *done_fd)
{
	done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (done_efd < 0)
		return -errno;
	for (nreaders = 0; nreaders < READERS; nreaders++) {
		int r;

		bufs[nreaders] = aligned_alloc(VS_PAGE_SIZE, (size_t)VS_AROUND_MAX * VS_PAGE_SIZE);
		if (!bufs[nreaders])
			return -ENOMEM;
		r = pthread_create(&readers[nreaders], NULL, reader_main, bufs[nreaders]);
		if (r) {
			free(bufs[nreaders]);
			bufs[nreaders] = NULL;
			return -r;
		}
	}
	*done_fd = done_efd;
	return 0;
}

void vs_fault_read_stop(void)
{
	pthread_mutex_lock(&qlock);
	quitting = true;
	pthread_cond_broadcast(&qcond);
	pthread_mutex_unlock(&qlock);
	for (int i = 0; i < nreaders; i++) {
		pthread_join(readers[i], NULL);
		free(bufs[i]);
		bufs[i] = NULL;
	}
	nreaders = 0;
}
