/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Stress test (build/test-stress): toyvmm under the shim, with writer
 * threads, random rewrites, balloons and hotplug, through many swap
 * cycles whose commands come in a random order and at random moments,
 * often while another operation still runs. Every cycle ends with a full
 * verify against toyvmm's model. See tests/README.md.
 *
 * The helper is modelled by a situation (enum st_sit): a quiet state, or
 * an operation that was running when last seen and may have finished
 * since. Each answer must be the one the helper gives in one of the two
 * (st_expect); which one it was tells the stress where things stand.
 */
#ifndef VS_TEST_STRESS_H
#define VS_TEST_STRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

enum st_verb { ST_ENABLE, ST_TRIM, ST_OUT, ST_DISABLE, ST_NVERBS };

/* Quiet states first; then ops that may still run (their end state is
 * st_end()). */
enum st_sit { ST_READY, ST_PENDING, ST_ACTIVE, ST_RUN_ENABLE, ST_RUN_TRIM, ST_RUN_OUT,
	      ST_RUN_DISABLE };

struct st_params {
	uint64_t seed;
	uint64_t size;          /* guest bytes */
	unsigned cycles;        /* per layout, memfd */
	unsigned anon_cycles;   /* per anonymous layout */
	unsigned threads;       /* toyvmm vCPU (writer) threads */
	bool verbose;           /* every step on stderr */
	char layouts[128];
};

struct st_stats {
	unsigned cycles, steps;
	double secs;
	/* Helper commands: accepted (enable: finished ok), refused as expected,
	 * of those refused while another op ran, sent behind another in one write. */
	uint64_t accepted[ST_NVERBS], refused, refused_busy, batched;
	/* Ops an accepted enable or disable may have met still running: the
	 * helper replaces an op it has not started yet, which then never ends
	 * in the log (helper/state.c, submit()). */
	uint64_t overtaken[ST_NVERBS];
	/* From the helper's log: ops that ended, aborted ones, pages they moved. */
	uint64_t finished[ST_NVERBS], aborted[ST_NVERBS], log_refused;
	uint64_t moved_enable, moved_out, moved_in, trimmed;
	/* toyvmm work. */
	uint64_t verifies, touches, writes, balloons, balloon_pages, hotplugs, churns,
		churn_writes, async_cmds, mismatches;
	/* Processes around the VMM: forked children that verified the guest,
	 * those forked while the helper was stalled past the join timeout and
	 * so closed off (or that joined all the same), and helper stalls. */
	uint64_t forks, stalled_forks, closed_off, stalls;
	/* Helper counters at the end (cumulative). */
	uint64_t from_staging, from_file, zeroed, faults;
};

#define ST_TRACE 40
/* VMSWAP_JOIN_TIMEOUT of the stress's VMMs: a stalled fork waits past it. */
#define ST_JOIN_TIMEOUT_S 2

struct st_run {
	const struct st_params *prm;
	const char *layout;
	struct h_vm *vm;
	pid_t helper;
	uint64_t rng;
	unsigned cycle, ncycles;
	double state_timeout;

	enum st_sit sit;
	char enable_id[24];    /* the enable that ST_RUN_ENABLE waits for */
	unsigned idseq;

	bool churning;
	bool toy_busy;         /* a toyvmm command sent, its answer not read */
	char toy_cmd[64];
	unsigned hotplugs;

	long log_off;
	char trace[ST_TRACE][200];
	unsigned ntrace;
	struct st_stats st;
};

/* stress_util.c */
uint64_t st_rand(struct st_run *s);
/* Uniform in [0, n) (n > 0) from one draw. */
uint64_t st_below(uint64_t r, uint64_t n);
/* One line of what the stress did; on stderr too when verbose. */
void st_trace(struct st_run *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define st_fail(s, ...) st_fail_at(__FILE__, __LINE__, s, __VA_ARGS__)
void st_fail_at(const char *file, int line, struct st_run *s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), noreturn));
/* The helper is alive and still the same process. */
void st_helper_alive(struct st_run *s);

/* stress_helper.c: vmswap commands and what they must answer. */
const char *st_sit_name(enum st_sit sit);
bool st_running(enum st_sit sit);
/* A command while the helper is quiet, sometimes with a second one behind
 * it in the same write. */
void st_helper_step(struct st_run *s, const uint64_t r[]);
/* A second command while an op may still run, at a random moment. */
void st_second_step(struct st_run *s, const uint64_t r[]);
/* Wait until the op that may be running has ended. */
void st_settle(struct st_run *s);
/* Settle, then disable unless Ready, and wait for Ready. */
void st_to_ready(struct st_run *s);
/* Quiet: the published state is the one expected and the page counts fit it. */
void st_check_quiet(struct st_run *s);
/* Poll status.json until state; Failed, a dead helper or the limit fail. */
char *st_wait_state(struct st_run *s, const char *state);

/* stress_guest.c: toyvmm work. */
void st_guest_step(struct st_run *s, const uint64_t r[]);
/* Read a pending answer and stop the churn (checking both). */
void st_guest_settle(struct st_run *s);
/* Every page against the model. */
void st_verify(struct st_run *s);

/* stress_log.c: the helper's info log, which names every op that ended. */
void st_log_scan(struct st_run *s);
/* Every accepted op has ended once in the log, but for those a later
 * command may have replaced before they started. */
void st_log_check_ended(struct st_run *s);

#endif
