/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fault_int.h"
#include "fault_read.h"
#include <vmswap/common.h>
#include "../model/helper.h"
#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "fault_ring.h"

#define READERS 4
#define JOBS 16            /* reads queued or in flight */
#define AHEAD_JOBS 8       /* of them at most for read-ahead: faults always find a slot */
#define ARENA_PAGES 1024   /* io_uring: every job's buffer, as much as the readers' */
#define ARENA_AHEAD 768    /* of it at most for read-ahead and prefetch */

enum job_state { JOB_FREE, JOB_QUEUED, JOB_READING };

/*
 * A job's fields are written at submit with vs.lock and qlock held, and
 * cleared with both held; readers read them with either. state moves
 * QUEUED -> READING under qlock alone. With io_uring everything happens
 * on the fault thread under vs.lock, and jobs go straight to READING.
 */
struct job {
	_Atomic int state;     /* enum job_state */
	struct vs_read rd;
	uint32_t buf;          /* io_uring: first arena page */
	bool early;            /* io_uring: finished without the ring, result in res */
	int res;
};

static struct job jobs[JOBS];
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static pthread_t readers[READERS];
static uint8_t *bufs[READERS];     /* each reader's buffer: VS_AROUND_MAX pages */
static int nreaders, done_efd = -1;
static bool quitting;

static bool use_ring;
static uint8_t *arena;
static uint64_t arena_used[ARENA_PAGES / 64];
static uint32_t arena_ahead;       /* pages of it that read-ahead and prefetch hold */

bool vs_fault_read_busy(int obj, uint64_t pg, bool *by_prefetch)
{
	if (by_prefetch)
		*by_prefetch = false;
	for (int i = 0; i < JOBS; i++) {
		const struct vs_read *j = &jobs[i].rd;

		if (atomic_load_explicit(&jobs[i].state, memory_order_relaxed) == JOB_FREE ||
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

bool vs_fault_read_prefetch_busy(void)
{
	int n = 0;

	/* io_uring: two, so that one is read while the other goes in. */
	for (int i = 0; i < JOBS; i++)
		n += atomic_load_explicit(&jobs[i].state, memory_order_relaxed) != JOB_FREE &&
		     jobs[i].rd.prefetch;
	return n >= (use_ring ? 2 : 1);
}

static bool arena_bit(uint32_t p)
{
	return arena_used[p / 64] >> (p % 64) & 1;
}

static void arena_mark(uint32_t from, uint32_t n, bool used)
{
	for (uint32_t p = from; p < from + n; p++)
		if (used)
			arena_used[p / 64] |= 1ull << (p % 64);
		else
			arena_used[p / 64] &= ~(1ull << (p % 64));
}

/* First fit of @n pages; -EBUSY when none (the fault waits for a read to end). */
static int arena_take(uint32_t n, bool ahead, uint32_t *at)
{
	if (ahead && arena_ahead + n > ARENA_AHEAD)
		return -EBUSY;
	for (uint32_t p = 0, run = 0; p < ARENA_PAGES; p++) {
		run = arena_bit(p) ? 0 : run + 1;
		if (run == n) {
			*at = p + 1 - n;
			arena_mark(*at, n, true);
			arena_ahead += ahead ? n : 0;
			return 0;
		}
	}
	return -EBUSY;
}

static void arena_give(const struct job *j)
{
	arena_mark(j->buf, j->rd.run.n, false);
	arena_ahead -= j->rd.ahead ? j->rd.run.n : 0;
}

static uint8_t *job_buf(const struct job *j)
{
	return arena + (size_t)j->buf * VS_PAGE_SIZE;
}

/* A read that could not go through the ring: done here, slower but sure. */
static void read_directly(struct job *j, int why)
{
	uint64_t one = 1;
	int r;

	vs_warn("fault reads: io_uring submit failed (%s); reading directly", strerror(-why));
	r = vs_swapfile_read(j->rd.fd, j->rd.run.slot, job_buf(j), j->rd.run.n);
	j->res = r ? r : (int)(j->rd.run.n * VS_PAGE_SIZE);
	/* Finished already: the fault thread takes it at its next turn. */
	j->early = true;
	if (write(done_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vs_err("fault reads: cannot signal a finished read: %s", strerror(errno));
}

/* Jobs queued on the ring since the last vs_fault_read_flush(), in order. */
static struct job *unsent[JOBS];
static int nunsent;

/* io_uring: queue the read of a filled job. Fault thread, vs.lock held. */
static int ring_start(struct job *j)
{
	int r;

	if (arena_take(j->rd.run.n, j->rd.ahead, &j->buf))
		return -EBUSY;
	j->early = false;
	j->state = JOB_READING;
	r = vs_ring_read(j->rd.fd, (uint64_t)j->rd.run.slot * VS_PAGE_SIZE, job_buf(j),
			 j->rd.run.n * VS_PAGE_SIZE, (uint64_t)(j - jobs));
	if (r)
		read_directly(j, r);
	else
		unsent[nunsent++] = j;
	return 0;
}

void vs_fault_read_flush(void)
{
	int n = nunsent, r;

	if (!use_ring || !n)
		return;
	r = vs_ring_submit();
	nunsent = 0;
	/* Rare (no memory for the requests): those not started are read here. */
	for (int i = r < 0 ? 0 : r; i < n; i++)
		read_directly(unsent[i], r < 0 ? r : -EAGAIN);
}

/* Take a free job for @rd and start it. vs.lock held. 0 or -EBUSY. */
static int submit(const struct vs_read *rd)
{
	int r = -EBUSY, nahead = 0;
	struct job *slot = NULL;

	pthread_mutex_lock(&qlock);
	for (int i = 0; i < JOBS; i++) {
		if (jobs[i].state == JOB_FREE)
			slot = slot ? slot : &jobs[i];
		else
			nahead += jobs[i].rd.ahead;
	}
	if (slot && (!rd->ahead || nahead < AHEAD_JOBS)) {
		slot->rd = *rd;
		if (use_ring) {
			r = ring_start(slot);
		} else {
			slot->state = JOB_QUEUED;
			pthread_cond_signal(&qcond);
			r = 0;
		}
	}
	pthread_mutex_unlock(&qlock);
	return r;
}

int vs_fault_read_submit(int pidx, int obj, const struct vs_run *run, uint64_t page,
			 uint64_t t0)
{
	struct vs_read rd = { .pidx = pidx, .obj = obj, .fd = vs.swap.fd,
			      .gen = vs.procs[pidx].gen, .page = page, .t0 = t0,
			      .epoch = vs.swap.slots.epoch, .run = *run };

	return submit(&rd);
}

int vs_fault_read_ahead(int pidx, int obj, const struct vs_run *run)
{
	struct vs_read rd = { .ahead = true, .pidx = pidx, .obj = obj, .fd = vs.swap.fd,
			      .gen = vs.procs[pidx].gen, .page = run->addr,
			      .epoch = vs.swap.slots.epoch, .run = *run };

	return submit(&rd);
}

int vs_fault_read_prefetch(int obj, uint32_t slot, uint32_t n, const uint64_t *pgs)
{
	static struct vs_read rd; /* too big for the fault thread's stack frame */

	rd = (struct vs_read){ .ahead = true, .prefetch = true, .obj = obj, .fd = vs.swap.fd,
			       .epoch = vs.swap.slots.epoch, .run = { .slot = slot, .n = n } };
	memcpy(rd.pgs, pgs, sizeof(rd.pgs[0]) * n);
	return submit(&rd);
}

/*
 * A failed read of a run that a thread waits for: report it, then read
 * just the faulting page (nothing past it goes in).
 */
static int read_faulting_page(struct vs_read *j, uint8_t *buf, int r, bool locked)
{
	if (!r || j->run.n == 1 || j->ahead)
		return r;
	if (!locked)
		pthread_mutex_lock(&vs.lock);
	vs_fault_read_failed(j->run.slot, r);
	if (!locked)
		pthread_mutex_unlock(&vs.lock);
	r = vs_swapfile_read(j->fd, j->run.slot + j->run.f, buf + (size_t)j->run.f * VS_PAGE_SIZE,
			     1);
	j->run.n = j->run.f + 1;
	return r;
}

/* io_uring: install a finished job and free it. Fault thread, vs.lock held. */
static void ring_finish(struct job *j, int res)
{
	int r = res == (int)(j->rd.run.n * VS_PAGE_SIZE) ? 0 : res < 0 ? res : -EIO;
	struct vs_read rd = j->rd;

	if (!j->early) {
		/* The test hook, in the order reads end, as a reader thread meets it. */
		if (vs_swapfile_read_injected())
			r = -EIO;
		if (r)
			vs_swapfile_read_failed();
	}
	r = read_faulting_page(&rd, job_buf(j), r, true);
	vs_read_install(&rd, job_buf(j), r);
	arena_give(j);
	j->state = JOB_FREE;
}

void vs_fault_read_reap(void)
{
	uint64_t tags[JOBS];
	int res[JOBS], n;

	if (!use_ring)
		return;
	while ((n = vs_ring_reap(tags, res, JOBS, false)) > 0)
		for (int i = 0; i < n; i++)
			if (tags[i] < JOBS)
				ring_finish(&jobs[tags[i]], res[i]);
	for (int i = 0; i < JOBS; i++)
		if (jobs[i].state == JOB_READING && jobs[i].early)
			ring_finish(&jobs[i], jobs[i].res);
}

static void *reader_main(void *arg)
{
	uint8_t *buf = arg;

	pthread_mutex_lock(&qlock);
	for (;;) {
		struct job *j = NULL;
		struct vs_read copy;
		uint64_t one = 1;
		bool wake;
		int r;

		while (!quitting && !j) {
			/* A waiting thread before any read-ahead. */
			for (int i = 0; i < JOBS && !j; i++)
				if (jobs[i].state == JOB_QUEUED && !jobs[i].rd.ahead)
					j = &jobs[i];
			for (int i = 0; i < JOBS && !j; i++)
				if (jobs[i].state == JOB_QUEUED && !jobs[i].rd.prefetch)
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
		copy = j->rd;
		pthread_mutex_unlock(&qlock);

		r = vs_swapfile_read(copy.fd, copy.run.slot, buf, copy.run.n);
		r = read_faulting_page(&copy, buf, r, false);
		pthread_mutex_lock(&vs.lock);
		vs_read_install(&copy, buf, r);
		pthread_mutex_lock(&qlock);
		j->state = JOB_FREE;
		/* The fault thread resolves the faults that waited for a read. */
		wake = vs_fault_has_waiters() || vs_ws_prefetching();
		pthread_mutex_unlock(&vs.lock);
		if (wake && write(done_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			vs_err("fault readers: cannot signal a finished read: %s", strerror(errno));
	}
	pthread_mutex_unlock(&qlock);
	return NULL;
}

static int readers_start(void)
{
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
	return 0;
}

static int ring_setup(void)
{
	int r;

	arena = aligned_alloc(VS_PAGE_SIZE, (size_t)ARENA_PAGES * VS_PAGE_SIZE);
	if (!arena)
		return -ENOMEM;
	if ((r = vs_ring_open(2 * JOBS, done_efd))) {
		free(arena);
		arena = NULL;
	}
	return r;
}

const char *vs_fault_read_engine(void)
{
	return use_ring ? "io_uring" : "threads";
}

int vs_fault_read_start(int *done_fd)
{
	const char *mode = getenv(VMSWAP_ENV_FAULT_IO);
	int r;

	done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (done_efd < 0)
		return -errno;
	*done_fd = done_efd;
	if (!mode || strcmp(mode, "threads")) {
		r = ring_setup();
		if (!r) {
			use_ring = true;
			return 0;
		}
		if (mode && !strcmp(mode, "io_uring")) {
			vs_err("fault reads: %s=io_uring, but io_uring cannot be set up: %s",
			       VMSWAP_ENV_FAULT_IO, strerror(-r));
			return r;
		}
		vs_info("fault reads: io_uring cannot be set up (%s); using %d reader threads",
			strerror(-r), READERS);
	}
	return readers_start();
}

/* At exit: the kernel writes into the arena until each read ends. */
static void ring_drain(void)
{
	uint64_t tags[JOBS];
	int res[JOBS];

	for (;;) {
		bool reading = false;
		int n;

		for (int i = 0; i < JOBS; i++)
			reading |= jobs[i].state == JOB_READING && !jobs[i].early;
		if (!reading || (n = vs_ring_reap(tags, res, JOBS, true)) <= 0)
			return;
		for (int i = 0; i < n; i++)
			if (tags[i] < JOBS)
				jobs[tags[i]].state = JOB_FREE;
	}
}

void vs_fault_read_stop(void)
{
	if (use_ring) {
		ring_drain();
		vs_ring_close();
		free(arena);
		arena = NULL;
		use_ring = false;
		return;
	}
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
