/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * build/test-stress: many random swap cycles per guest layout; see
 * stress.h and tests/README.md. Parameters from the environment:
 *   STRESS_CYCLES       cycles per layout (default 15)
 *   STRESS_ANON_CYCLES  cycles for anon and anon-qemu (default STRESS_CYCLES)
 *   STRESS_SIZE         guest size (default 64M)
 *   STRESS_SEED         replays a run (default: new, printed)
 *   STRESS_LAYOUTS      memfd,anon,anon-qemu (default: all three)
 *   STRESS_THREADS      toyvmm writer threads (default 4)
 *   STRESS_VERBOSE=1    every step on stderr
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <criterion/criterion.h>

#include "stress.h"
#include "vmswap/util.h"

#define MAX_LAYOUTS 3
#define STEPS_MIN 3
#define STEPS_SPREAD 8      /* 3..10 steps between two verifies */

/* Seconds per cycle, measured on the 2-core development machine:
 * a fixed part and a part per GiB of guest. */
#define EST_FIXED_S 0.4
#define EST_PER_GIB_S 8.0

static const struct layout {
	const char *name;
	const char *args;   /* toyvmm options */
	bool anon;
} layouts[MAX_LAYOUTS] = {
	{ "memfd", "--regions 2", false },
	{ "anon", "--anon=firecracker", true },
	{ "anon-qemu", "--anon=qemu", true },
};

TestSuite(stress, .init = h_setup, .fini = h_teardown);

static unsigned env_uint(const char *name, unsigned def, unsigned min)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (!v || !*v)
		return def;
	n = strtoul(v, &end, 10);
	cr_assert(!*end && n >= min && n <= 1000000, "bad %s=%s", name, v);
	return (unsigned)n;
}

static void get_params(struct st_params *p)
{
	const char *v;

	memset(p, 0, sizeof(*p));
	v = getenv("STRESS_SEED");
	if (v && *v) {
		char *end;

		p->seed = strtoull(v, &end, 0);
		cr_assert(!*end, "bad STRESS_SEED=%s", v);
	} else {
		cr_assert(getrandom(&p->seed, sizeof(p->seed), 0) == sizeof(p->seed));
		p->seed %= 1000000000; /* short enough to type */
	}
	v = getenv("STRESS_SIZE");
	p->size = 64ull << 20;
	if (v && *v)
		cr_assert(!vmswap_parse_size(v, &p->size) && p->size >= (4ull << 20) &&
			  p->size % (4ull << 20) == 0,
			  "bad STRESS_SIZE=%s (a multiple of 4M: memfd runs two regions)", v);
	p->cycles = env_uint("STRESS_CYCLES", 15, 1);
	p->anon_cycles = env_uint("STRESS_ANON_CYCLES", p->cycles, 1);
	p->threads = env_uint("STRESS_THREADS", 4, 1);
	p->verbose = env_uint("STRESS_VERBOSE", 0, 0) != 0;
	v = getenv("STRESS_LAYOUTS");
	snprintf(p->layouts, sizeof(p->layouts), "%s", v && *v ? v : "memfd,anon,anon-qemu");
}

/* The layouts named in p->layouts, in that order. */
static int chosen(const struct st_params *p, const struct layout *out[])
{
	char buf[sizeof(p->layouts)], *tok, *save = NULL;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", p->layouts);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		int i;

		for (i = 0; i < MAX_LAYOUTS && strcmp(tok, layouts[i].name); i++)
			;
		cr_assert(i < MAX_LAYOUTS, "STRESS_LAYOUTS: unknown layout '%s' "
			  "(memfd, anon, anon-qemu)", tok);
		cr_assert(n < MAX_LAYOUTS, "STRESS_LAYOUTS: too many");
		out[n++] = &layouts[i];
	}
	cr_assert(n > 0, "STRESS_LAYOUTS is empty");
	return n;
}

static double estimate_s(const struct st_params *p, unsigned cycles)
{
	return cycles * (EST_FIXED_S + EST_PER_GIB_S * (double)p->size / (1ull << 30));
}

static void toy_sync(struct st_run *s, const char *cmd)
{
	int r = h_cmd(s->vm->p, H_CMD_TIMEOUT_S + 120.0 * (double)(s->prm->size >> 30), "%s", cmd);

	if (r || strncmp(s->vm->p->last, "ok", 2))
		st_fail(s, "toyvmm '%s': %s", cmd, r ? strerror(-r) : s->vm->p->last);
}

static void one_step(struct st_run *s)
{
	uint64_t r[8];
	unsigned k;

	/* A fixed number of draws per step, whatever the races decided. */
	for (int i = 0; i < 8; i++)
		r[i] = st_rand(s);
	k = (unsigned)st_below(r[0], 100);
	if (st_running(s->sit)) {
		if (k < 35)
			st_second_step(s, r);
		else if (k < 75)
			st_guest_step(s, r);
		else
			st_settle(s);
	} else if (k < 60) {
		st_helper_step(s, r);
	} else {
		st_guest_step(s, r);
	}
	s->st.steps++;
	st_helper_alive(s);
	st_log_scan(s);
}

/* Last: back to Ready with everything in, verified, the helper gone with the VMM. */
static void finish(struct st_run *s)
{
	char *js;

	st_guest_settle(s);
	st_to_ready(s);
	st_check_quiet(s);
	st_verify(s);
	st_log_check_ended(s);
	js = h_status_fresh(s->vm->pid);
	s->st.from_staging = h_json_u64(js, "copied_from_staging_pages");
	s->st.from_file = h_json_u64(js, "copied_from_file_pages");
	s->st.zeroed = h_json_u64(js, "zeroed_pages");
	s->st.faults = h_json_u64(js, "faults");
	free(js);
	h_vm_finish(s->vm);
	s->vm = NULL;
}

static void run_layout(const struct st_params *p, const struct layout *l, unsigned idx,
		       struct st_stats *out)
{
	static const char *const env[] = { "VMSWAP_LOG=info", "VMSWAP_JOIN_TIMEOUT=2", NULL };
	struct st_run *s = calloc(1, sizeof(*s));
	char args[256];
	double t0 = h_now(), last_note = t0;
	unsigned every;

	cr_assert(s);
	s->prm = p;
	s->layout = l->name;
	s->ncycles = l->anon ? p->anon_cycles : p->cycles;
	s->rng = p->seed ^ (0x9e3779b97f4a7c15ull * (idx + 1));
	s->state_timeout = H_STATE_TIMEOUT_S + 120.0 * (double)p->size / (1ull << 30);
	snprintf(args, sizeof(args), "--size %" PRIu64 "M --threads %u --seed %" PRIu64 " %s",
		 p->size >> 20, p->threads, p->seed, l->args);
	s->vm = h_vm_start(args, env, true);
	s->helper = h_helper_pid(s->vm->pid);
	cr_assert(s->helper > 0, "no helper for toyvmm %d", s->vm->pid);
	st_trace(s, "toyvmm %s: pid %d, helper %d, %" PRIu64 " pages", args, s->vm->pid,
		 (int)s->helper, s->vm->pages);
	toy_sync(s, "fill");

	/* Short runs (make check) only note progress when they are slow. */
	every = s->ncycles >= 50 ? s->ncycles / 10 : UINT_MAX;
	for (s->cycle = 1; s->cycle <= s->ncycles; s->cycle++) {
		unsigned steps = STEPS_MIN + (unsigned)st_below(st_rand(s), STEPS_SPREAD);

		for (unsigned i = 0; i < steps; i++)
			one_step(s);
		st_settle(s);
		st_guest_settle(s);
		st_check_quiet(s);
		st_verify(s);
		st_log_scan(s);
		s->st.cycles++;
		if (p->verbose || s->cycle % every == 0 || h_now() - last_note > 30) {
			double el = h_now() - t0;

			fprintf(stderr, "stress: %-9s cycle %u/%u, %s, %.0f s, about %.0f s to go\n",
				l->name, s->cycle, s->ncycles, st_sit_name(s->sit), el,
				el / s->cycle * (s->ncycles - s->cycle));
			last_note = h_now();
		}
	}
	s->cycle = s->ncycles;
	finish(s);
	s->st.secs = h_now() - t0;
	*out = s->st;
	free(s);
}

static uint64_t sum4(const uint64_t a[ST_NVERBS])
{
	return a[0] + a[1] + a[2] + a[3];
}

/* Accepted, then replaced by the next command before the helper started it. */
static uint64_t unstarted(const struct st_stats *t, enum st_verb v)
{
	return t->accepted[v] - t->finished[v];
}

static void report(const struct st_params *p, const struct layout *const l[],
		   const struct st_stats st[], int n, double secs)
{
	fprintf(stderr, "\nstress: seed %" PRIu64 ", %" PRIu64 " MiB guests, %u writer threads, "
		"%.0f s in all\n", p->seed, p->size >> 20, p->threads, secs);
	fprintf(stderr, "%-10s %6s %6s %11s %10s %9s %10s %10s %7s %11s %15s %8s %10s\n", "layout",
		"cycles", "s", "pages_moved", "to_staging", "trimmed", "to_file", "back_in",
		"steps", "refused", "aborts_t/o/d", "faults", "mismatches");
	for (int i = 0; i < n; i++) {
		const struct st_stats *t = &st[i];
		uint64_t back = t->from_staging + t->from_file + t->zeroed;
		char refused[32], aborts[32];

		snprintf(refused, sizeof(refused), "%llu(%llu)", (unsigned long long)t->refused,
			 (unsigned long long)t->refused_busy);
		snprintf(aborts, sizeof(aborts), "%llu/%llu/%llu",
			 (unsigned long long)(t->aborted[ST_TRIM] + unstarted(t, ST_TRIM)),
			 (unsigned long long)(t->aborted[ST_OUT] + unstarted(t, ST_OUT)),
			 (unsigned long long)(t->aborted[ST_DISABLE] + unstarted(t, ST_DISABLE)));
		fprintf(stderr, "%-10s %6u %6.0f %11llu %10llu %9llu %10llu %10llu %7u %11s %15s "
			"%8llu %10llu\n", l[i]->name, t->cycles, t->secs,
			(unsigned long long)(t->moved_enable + t->trimmed + t->moved_out + back),
			(unsigned long long)t->moved_enable, (unsigned long long)t->trimmed,
			(unsigned long long)t->moved_out, (unsigned long long)back, t->steps, refused,
			aborts, (unsigned long long)t->faults, (unsigned long long)t->mismatches);
		fprintf(stderr, "%-10s ops: %llu accepted (enable %llu, trim %llu, out %llu, "
			"disable %llu), %llu sent behind another, %llu aborted before they started; back in: %llu from staging, "
			"%llu from the file, %llu zero, %llu by completed disables; toyvmm: %llu "
			"verifies, %llu touches, %llu writes, %llu balloons (%llu pages), %llu "
			"hotplugs, %llu churns (%llu writes), %llu left running; %llu forks, %llu "
			"forked under a stalled helper (%llu closed off), %llu helper stalls\n", "",
			(unsigned long long)sum4(t->accepted),
			(unsigned long long)t->accepted[ST_ENABLE],
			(unsigned long long)t->accepted[ST_TRIM],
			(unsigned long long)t->accepted[ST_OUT],
			(unsigned long long)t->accepted[ST_DISABLE], (unsigned long long)t->batched,
			(unsigned long long)(unstarted(t, ST_TRIM) + unstarted(t, ST_OUT) +
					     unstarted(t, ST_DISABLE)),
			(unsigned long long)t->from_staging, (unsigned long long)t->from_file,
			(unsigned long long)t->zeroed, (unsigned long long)t->moved_in,
			(unsigned long long)t->verifies, (unsigned long long)t->touches,
			(unsigned long long)t->writes, (unsigned long long)t->balloons,
			(unsigned long long)t->balloon_pages, (unsigned long long)t->hotplugs,
			(unsigned long long)t->churns, (unsigned long long)t->churn_writes,
			(unsigned long long)t->async_cmds, (unsigned long long)t->forks,
			(unsigned long long)t->stalled_forks, (unsigned long long)t->closed_off,
			(unsigned long long)t->stalls);
	}
	fprintf(stderr, "stress: PASS (replay with STRESS_SEED=%" PRIu64 ")\n", p->seed);
}

Test(stress, random_cycles)
{
	struct st_params p;
	const struct layout *l[MAX_LAYOUTS];
	struct st_stats st[MAX_LAYOUTS];
	double est = 0, t0 = h_now();
	int n;

	h_require_uffd();
	get_params(&p);
	n = chosen(&p, l);
	for (int i = 0; i < n; i++)
		est += estimate_s(&p, l[i]->anon ? p.anon_cycles : p.cycles);
	fprintf(stderr, "stress: seed %" PRIu64 " (STRESS_SEED), %" PRIu64 " MiB guests "
		"(STRESS_SIZE), %u cycles per layout (STRESS_CYCLES), %u for anon layouts "
		"(STRESS_ANON_CYCLES), layouts %s (STRESS_LAYOUTS), %u writer threads; "
		"estimate %.0f s\n", p.seed, p.size >> 20, p.cycles, p.anon_cycles, p.layouts,
		p.threads, est);
	for (int i = 0; i < n; i++)
		run_layout(&p, l[i], (unsigned)(l[i] - layouts), &st[i]);
	report(&p, l, st, n, h_now() - t0);
	for (int i = 0; i < n; i++)
		cr_assert_eq(st[i].mismatches, 0);
}
