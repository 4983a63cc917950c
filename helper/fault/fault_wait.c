/* SPDX-License-Identifier: BSD-3-Clause */
/* Faults that wait for a read or a retry; see fault_wait.h. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "../model/helper.h"
#include "../sys/log.h"
#include "../sys/uffd.h"
#include "fault_wait.h"

#define RETRY_MIN_MS 1
#define RETRY_MAX_MS 256

static struct vs_waiter waiting[VS_WAITING_MAX];
static int nwaiting;

/* Processes with faults waiting for a retry, and when. */
static bool retry_proc[VS_MAX_PROCS];
static uint32_t retry_gen[VS_MAX_PROCS];
static _Atomic uint64_t retry_at; /* ns, 0: none */
static unsigned retry_ms = RETRY_MIN_MS;
static uint64_t fail_streak;   /* failed reads since the last good one */

void vs_fault_record_latency(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned b = us ? 64 - (unsigned)__builtin_clzll(us) : 0;

	if (b > 31)
		b = 31;
	vs.stats.c.lat_hist[b]++;
	if (us > vs.stats.c.lat_max_us)
		vs.stats.c.lat_max_us = us;
	vs.stats.c.faults++;
}

int vs_wait_add(int pidx, uint32_t gen, uint64_t addr, uint64_t t0)
{
	if (nwaiting == VS_WAITING_MAX)
		return -ENOSPC;
	waiting[nwaiting++] = (struct vs_waiter){ .pidx = pidx, .gen = gen, .addr = addr,
						  .t0 = t0 };
	return 0;
}

int vs_wait_take(struct vs_waiter *out)
{
	int n = nwaiting;

	memcpy(out, waiting, (size_t)n * sizeof(*out));
	nwaiting = 0;
	return n;
}

void vs_fault_read_failed(uint32_t slot, int r)
{
	if (!fail_streak++)
		vs_set_error("reading swap file slot %u: %s", slot, strerror(-r));
}

void vs_fault_read_worked(void)
{
	if (fail_streak)
		vs_warn("swap file reads work again after %llu failed reads",
			(unsigned long long)fail_streak);
	fail_streak = 0;
	retry_ms = RETRY_MIN_MS;
}

void vs_fault_retry_later(int pidx)
{
	retry_proc[pidx] = true;
	retry_gen[pidx] = vs.procs[pidx].gen;
	if (!retry_at) {
		retry_at = vs_now_ns() + retry_ms * 1000000ull;
		retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
	}
}

int vs_retry_timeout(void)
{
	uint64_t now, at = retry_at;

	if (!at)
		return -1;
	now = vs_now_ns();
	return now >= at ? 0 : (int)((at - now + 999999) / 1000000);
}

bool vs_retry_due(void)
{
	uint64_t at = retry_at;

	return at && vs_now_ns() >= at;
}

/*
 * Each woken thread faults again and comes back as a fresh event,
 * ordered with the others; one whose page is not in yet just faults again.
 */
void vs_retry_wake(void)
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

bool vs_fault_has_waiters(void)
{
	return nwaiting || retry_at;
}
