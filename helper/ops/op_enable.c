/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * enable: move every resident guest page to staging and punch it out of
 * guest memory, with the VMM frozen only briefly. Incremental: only pages
 * resident again are moved.
 *
 * With write protection (wp.h): register and protect, copy while the VMM
 * runs, freeze, copy again what was written, thaw, punch. Without it (or
 * VMSWAP_PRECOPY=0): freeze, copy, punch, thaw.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../fault/wp.h"
#include "../model/cover.h"
#include "../model/helper.h"
#include "../persist/manifest.h"
#include "../sys/clock.h"
#include "../sys/freeze.h"
#include "../sys/log.h"
#include "enable.h"
#include "headroom.h"
#include "inplace.h"
#include "ops.h"

#define FREEZE_TIMEOUT_MS 5000
#define JOIN_WAIT_MS 2000   /* for a fork child's join, see freeze_covered */
#define JOIN_POLL_US 10000

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
	vs_manifest_sync();
	return 0;
}

/* Processes other than the VMM that the freeze must stop too. vs.lock held. */
static int other_pids(pid_t *pids)
{
	int n = 0;

	for (int i = 0; i < VS_MAX_PROCS; i++)
		if (vs.procs[i].used && !vs.procs[i].dead && !vs.procs[i].is_vmm)
			pids[n++] = vs.procs[i].pid;
	return n;
}

/*
 * Before the freeze, with write-protect tracking: register and protect
 * every mapping, then copy while the VMM runs. Returns 1 when tracking
 * is not available (the copy then happens frozen), 0, or -errno.
 */
static int precopy(bool *tracking, char *msg, size_t n)
{
	uint64_t none = 0;
	int r;

	pthread_mutex_lock(&vs.lock);
	*tracking = vs_wp_usable();
	if (!*tracking) {
		pthread_mutex_unlock(&vs.lock);
		return 0;
	}
	r = register_all();
	if (!r)
		r = vs_wp_begin();
	pthread_mutex_unlock(&vs.lock);
	if (!r) {
		vs_prealloc_staging();
		r = vs_stage_all(false, &none);
	}
	if (r) {
		vs_get_error(msg, n);
		pthread_mutex_lock(&vs.lock);
		vs_wp_end();
		pthread_mutex_unlock(&vs.lock);
	}
	return r;
}

/*
 * Freeze the VMM, its descendants and the other processes that joined,
 * then, under vs.lock, register every mapping and check that every
 * process mapping guest memory is covered. A fork child whose join has
 * not arrived (the freeze may have stopped it mid-join) is waited for,
 * thawed, up to JOIN_WAIT_MS. Returns frozen with vs.lock held: 0, or
 * -errno with @msg; or, when the freeze itself failed, -errno with
 * *frozen false, nothing frozen and the lock not held.
 */
static int freeze_covered(struct vs_freeze *fz, bool *frozen, uint64_t *t_freeze,
			  char *msg, size_t n)
{
	uint64_t deadline = vs_now_ms() + JOIN_WAIT_MS;
	pid_t extra[VS_MAX_PROCS];
	int nextra, r;

	for (;;) {
		pthread_mutex_lock(&vs.lock);
		nextra = other_pids(extra);
		pthread_mutex_unlock(&vs.lock);
		*t_freeze = vs_now_ms();
		r = vs_freeze(fz, vs.vmm_pid, extra, nextra, FREEZE_TIMEOUT_MS);
		*frozen = !r;
		if (r) {
			snprintf(msg, n, "could not freeze the VMM: %s", strerror(-r));
			return r;
		}
		pthread_mutex_lock(&vs.lock);
		r = register_all();
		if (r) {
			vs_get_error(msg, n);
			return r;
		}
		r = vs_find_uncovered(msg, n);
		if (r != -EINPROGRESS)
			return r;
		if (vs_now_ms() >= deadline)
			return -EBUSY;
		pthread_mutex_unlock(&vs.lock);
		vs_thaw(fz);
		usleep(JOIN_POLL_US);
	}
}

/*
 * Frozen, vs.lock held, every mapping registered and covered: either
 * the tracked pages settled (punched after the thaw), or, without
 * tracking, everything copied and punched now.
 */
static int frozen_step(bool tracking, char *msg, size_t n, uint64_t *moved)
{
	int r;

	if (tracking && !vs_wp_usable()) {
		vs_info("a process without write protection joined; copying while frozen");
		vs_wp_end();
		tracking = false;
	}
	vs.enable_moving = true;
	if (tracking) {
		r = vs_wp_settle_frozen();
	} else {
		pthread_mutex_unlock(&vs.lock); /* the staging copy takes the lock per unit */
		r = vs_stage_all(true, moved);
		pthread_mutex_lock(&vs.lock);
	}
	if (r)
		vs_get_error(msg, n);
	return r;
}

/* Unstage everything again after a failed enable in place. No lock held. */
static void inplace_undo(void)
{
	pthread_mutex_lock(&vs.lock);
	vs_inplace_unstage_all();
	pthread_mutex_unlock(&vs.lock);
}

/*
 * Enable in place (inplace.h): register, stage and protect while the VMM
 * runs, then freeze only to register what appeared meanwhile and check
 * that every process mapping guest memory is covered. Nothing is copied
 * and nothing leaves guest memory: trim and out free it unit by unit.
 */
static int enable_inplace(char *msg, size_t n, uint64_t *moved, uint64_t *frozen_ms)
{
	struct vs_freeze fz;
	uint64_t t_freeze;
	bool frozen;
	int r;

	pthread_mutex_lock(&vs.lock);
	vs.enable_in_place = true;
	vs_progress_start_all();
	r = register_all();
	if (!r)
		r = vs_inplace_stage_all(moved);
	vs.stats.progress_done = *moved;
	pthread_mutex_unlock(&vs.lock);
	if (!r)
		vs_op_delay(*moved); /* tests: a crash between staging and the freeze */
	if (r) {
		vs_get_error(msg, n);
		inplace_undo();
		return r;
	}
	r = freeze_covered(&fz, &frozen, &t_freeze, msg, n);
	if (!frozen) {
		inplace_undo();
		return r;
	}
	if (!r && !vs_wp_usable()) {
		snprintf(msg, n, "a process without write protection joined; enable again");
		r = -EAGAIN;
	}
	if (!r)
		vs.enable_moving = true; /* a refusal leaves the state as it was */
	pthread_mutex_unlock(&vs.lock);
	*frozen_ms = vs_now_ms() - t_freeze;
	vs_thaw(&fz);
	if (r)
		inplace_undo();
	return r;
}

int vs_op_enable(char *msg, size_t n)
{
	struct vs_freeze fz;
	uint64_t t0 = vs_now_ms(), moved = 0, frozen_ms = 0, t_freeze, t_thaw;
	bool tracking, inplace, frozen;
	int r;

	pthread_mutex_lock(&vs.lock);
	vs.enable_moving = false;
	vs.enable_in_place = false;
	memset(&vs.stats.en, 0, sizeof(vs.stats.en));
	inplace = !vs.stage_copy && vs_wp_usable();
	pthread_mutex_unlock(&vs.lock);
	if (inplace) {
		r = enable_inplace(msg, n, &moved, &frozen_ms);
		pthread_mutex_lock(&vs.lock);
		vs.enable_in_place = false;
		if (r) {
			pthread_mutex_unlock(&vs.lock);
			return r;
		}
		vs.stats.en.in_place = true;
		vs.stats.en.frozen_ms = frozen_ms;
		vs.stats.trans_pages = moved;
		vs.stats.trans_ms = vs_now_ms() - t0;
		vs_clear_error();
		pthread_mutex_unlock(&vs.lock);
		snprintf(msg, n, "enabled: %llu pages staged in place, VMM frozen %llu ms",
			 (unsigned long long)moved, (unsigned long long)frozen_ms);
		return 0;
	}
	/* Refuse, with nothing changed, when staging would not fit. */
	r = vs_headroom_check(msg, n);
	if (r)
		return r;

	r = precopy(&tracking, msg, n);
	if (r)
		return r;
	if (!tracking)
		vs_prealloc_staging();
	r = freeze_covered(&fz, &frozen, &t_freeze, msg, n);
	if (!frozen) {
		pthread_mutex_lock(&vs.lock);
		vs_wp_end();
		pthread_mutex_unlock(&vs.lock);
		return r;
	}
	if (!r)
		r = frozen_step(tracking, msg, n, &moved);
	if (r && vs.wp_phase != VS_WP_OFF)
		vs_wp_end();
	tracking = vs.wp_phase == VS_WP_PUNCH;
	pthread_mutex_unlock(&vs.lock);
	t_thaw = vs_now_ms();
	frozen_ms = t_thaw - t_freeze;
	vs_thaw(&fz);
	if (!r && tracking)
		r = vs_wp_punch_all(&moved);
	pthread_mutex_lock(&vs.lock);
	if (vs.wp_phase != VS_WP_OFF)
		vs_wp_end();
	if (r) {
		if (!msg[0])
			vs_get_error(msg, n);
		pthread_mutex_unlock(&vs.lock);
		return r;
	}
	vs.stats.en.tracked = tracking; /* the worker sets Pending (state/state.c) */
	vs.stats.en.frozen_ms = frozen_ms;
	vs.stats.trans_pages = moved;
	vs.stats.trans_ms = vs_now_ms() - t0;
	vs_clear_error();
	pthread_mutex_unlock(&vs.lock);
	vs_dbg("enable: %s, copy before the freeze %llu ms, frozen %llu ms, punch after %llu ms",
	       tracking ? "write-protect tracking" : "copy while frozen",
	       (unsigned long long)(t_freeze - t0), (unsigned long long)frozen_ms,
	       (unsigned long long)(vs_now_ms() - t_thaw));
	snprintf(msg, n, "enabled: %llu pages moved to staging, VMM frozen %llu ms",
		 (unsigned long long)moved, (unsigned long long)frozen_ms);
	return 0;
}
