/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The helper killed with SIGKILL in every state: the keeper starts a new
 * one, which swaps every page back in (state Ready, "recovered" counted)
 * and serves the VMM again. VMSWAP_TEST_OP_DELAY_MS slows the operations
 * so that a kill lands while one runs; VMSWAP_TEST_RESTART_DELAY_MS
 * shortens the keeper's backoff between fast restarts.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(crash, .init = h_setup, .fini = h_teardown, .timeout = 300);

/* 64 MiB: 32 batches of 2 MiB, about 2 s per operation with the delay. */
#define SLOW "VMSWAP_TEST_OP_DELAY_MS=60"

static pid_t status_pid(struct h_vm *vm, const char *key)
{
	char *js = h_crash_status(vm);
	pid_t pid = (pid_t)h_json_u64(js, key);

	free(js);
	return pid;
}

/*
 * The operation shows as @state (and enable's write-protect @phase unless
 * NULL) and has done part of its work, not all.
 */
static void wait_phase(struct h_vm *vm, const char *state, const char *phase)
{
	h_wait_op(vm, state, phase, true);
}

static void wait_running(struct h_vm *vm, const char *state)
{
	wait_phase(vm, state, NULL);
}

/* After recovery: every byte right, and a whole cycle works again. */
static void check_after(struct h_vm *vm)
{
	h_ok(vm->p, "verify");
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

static struct h_vm *start(const char *args, bool slow)
{
	static const char *const env_slow[] = { SLOW, NULL };

	return h_vm_start_filled(args, slow ? env_slow : NULL);
}

/* The same, enable copying to a staging memfd (the phases "track" and "punch" are its own). */
static struct h_vm *start_copy(const char *args)
{
	static const char *const env[] = { SLOW, H_STAGING_COPY, NULL };

	return h_vm_start_filled(args, env);
}

/* enable, then @cmd; kill the helper while @state runs; check the restart. */
static void crash_during(struct h_vm *vm, const char *cmd, const char *state)
{
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_ok(vm->pid, cmd, NULL);
	wait_running(vm, state);
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	check_after(vm);
}

/* With the vCPUs writing, kill the helper in enable's @phase (NULL: any). */
static void crash_in_enable(struct h_vm *vm, const char *phase)
{
	h_ok(vm->p, "churn start");
	cr_assert_eq(h_fifo_write(vm->pid, "enable id=crash\n"), 0);
	if (phase)
		wait_phase(vm, "Ready", phase);
	else
		wait_running(vm, "Ready");
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	h_churn_stop_ok(vm->p, "churn");
	check_after(vm);
}

Test(crash, in_ready)
{
	struct h_vm *vm = start("--size 64M", false);

	h_wait_recovered(vm, h_kill_helper(vm), 1);
	check_after(vm);
}

Test(crash, in_pending)
{
	struct h_vm *vm = start("--size 64M", false);

	h_ctl_ok(vm->pid, "enable", NULL);
	free(h_wait_state(vm->pid, "Pending"));
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	check_after(vm);
}

Test(crash, in_trim)
{
	crash_during(start("--size 64M", true), "trim", "TrimInProgress");
}

Test(crash, in_swap_out)
{
	crash_during(start("--size 64M", true), "out", "SwapOutInProgress");
}

/* out from a staging memfd, which it punches batch by batch. */
Test(crash, in_swap_out_from_a_staging_copy)
{
	crash_during(start_copy("--size 64M"), "out", "SwapOutInProgress");
}

Test(crash, in_active_with_writers_twice)
{
	struct h_vm *vm = start("--size 64M", false);

	h_ok(vm->p, "churn start");
	h_swap_out(vm->p);
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	/* The restarted helper is itself covered. */
	h_swap_out(vm->p);
	h_wait_recovered(vm, h_kill_helper(vm), 2);
	h_churn_stop_ok(vm->p, "churn");
	check_after(vm);
}

Test(crash, in_swap_in)
{
	struct h_vm *vm = start("--size 64M", true);

	h_swap_out(vm->p);
	h_ctl_ok(vm->pid, "disable", NULL);
	wait_running(vm, "SwapInInProgress");
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	check_after(vm);
}

/* While enable copies with write-protect tracking, the vCPUs writing. */
Test(crash, in_enable_write_protect_copy)
{
	crash_in_enable(start_copy("--size 64M"), "track");
}

/* After the thaw, while enable punches the copied units out of guest memory. */
Test(crash, in_enable_punch)
{
	crash_in_enable(start_copy("--size 64M"), "punch");
}

/* VMSWAP_PRECOPY=0: the copy runs with the VMM frozen; the new helper thaws it. */
Test(crash, in_enable_while_frozen)
{
	static const char *const env[] = { SLOW, "VMSWAP_PRECOPY=0", NULL };

	crash_in_enable(h_vm_start_filled("--size 64M", env), NULL);
}

Test(crash, anon_in_active_with_writers)
{
	struct h_vm *vm = start("--size 64M --anon", false);

	h_ok(vm->p, "churn start");
	h_swap_out(vm->p);
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	h_churn_stop_ok(vm->p, "churn");
	check_after(vm);
}

Test(crash, two_regions_in_swap_out)
{
	crash_during(start("--size 64M --regions 2 --separate-memfds", true), "out",
		     "SwapOutInProgress");
}

Test(crash, two_regions_in_swap_out_from_a_staging_copy)
{
	crash_during(start_copy("--size 64M --regions 2 --separate-memfds"), "out",
		     "SwapOutInProgress");
}

/* The keeper follows its VMM: killed while Active, nothing is left behind. */
Test(crash, keeper_exits_with_the_vmm)
{
	struct h_vm *vm = start("--size 32M", false);
	pid_t helper, keeper;
	int st;

	h_swap_out(vm->p);
	helper = status_pid(vm, "helper_pid");
	keeper = status_pid(vm, "keeper_pid");
	cr_assert(keeper > 0 && h_alive(keeper));
	h_proc_kill(vm->p, SIGKILL);
	st = h_proc_wait(vm->p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0 && WIFSIGNALED(st));
	cr_assert(h_wait_rundir_gone(vm->pid));
	cr_assert(h_wait_dead(helper), "helper %d outlived its VMM", (int)helper);
	cr_assert(h_wait_dead(keeper), "keeper %d outlived its VMM", (int)keeper);
	free(vm);
}

/* A helper that exits normally (SIGTERM: swap in, exit 0) is not restarted. */
Test(crash, keeper_does_not_restart_a_normal_exit)
{
	struct h_vm *vm = start("--size 32M", false);
	pid_t helper, keeper;

	h_swap_out(vm->p);
	helper = status_pid(vm, "helper_pid");
	keeper = status_pid(vm, "keeper_pid");
	cr_assert_eq(kill(helper, SIGTERM), 0);
	cr_assert(h_wait_rundir_gone(vm->pid), "run dir still there after SIGTERM");
	cr_assert(h_wait_dead(helper));
	cr_assert(h_wait_dead(keeper), "keeper %d outlived a normal exit", (int)keeper);
	cr_assert_not(h_rundir_exists(vm->pid), "a new helper came up");
	h_ok(vm->p, "verify");
	h_ok(vm->p, "quit");
	cr_assert_geq(h_proc_wait(vm->p, H_EXIT_TIMEOUT_S), 0);
	free(vm);
}

/* An unmanaged VMM stays unmanaged, with its reason, after a restart. */
Test(crash, unmanaged_stays_unmanaged)
{
	static const char *const env[] = { "VMSWAP_TEST_NO_UFFD=1", NULL };
	struct h_vm *vm = h_vm_start("--size 32M", env, false);
	char reason[256] = "";
	char *js;

	h_wait_recovered(vm, h_kill_helper(vm), 1);
	js = h_crash_status(vm);
	cr_assert(strstr(js, "\"managed\":false"), "%s", js);
	h_json_str(js, "reason", reason, sizeof(reason));
	cr_assert(strstr(reason, "userfaultfd"), "reason: %s", reason);
	free(js);
	h_ok(vm->p, "fill");
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/* The VMM's connection survives: a region added later is served by the new helper. */
Test(crash, hotplug_after_recovery)
{
	struct h_vm *vm = start("--size 32M", false);

	h_swap_out(vm->p);
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	h_vm_hotplug_while_active(vm, 16);
	h_vm_finish(vm);
}

/* The keeper's schedule with VMSWAP_TEST_RESTART_DELAY_MS=base (README, Helper crash). */
static uint64_t backoff_ms(uint64_t streak, uint64_t base)
{
	uint64_t d = base;

	if (streak <= 5)
		return 0;
	for (uint64_t i = 6; i < streak && d < 30 * base; i++)
		d *= 2;
	return d < 30 * base ? d : 30 * base;
}

/*
 * Ten kills within a minute, each while Active with the vCPUs writing:
 * the keeper, the same process throughout, restarts every helper (the
 * later ones after its backoff) and never drops the guest's pages.
 */
Test(crash, keeper_never_gives_up)
{
	static const char *const env[] = { "VMSWAP_TEST_RESTART_DELAY_MS=20", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	pid_t keeper = status_pid(vm, "keeper_pid");
	uint64_t max_delay = 0, resets = 0, last_streak = 0;

	cr_assert(keeper > 0 && h_alive(keeper));
	h_ok(vm->p, "churn start");
	for (uint64_t n = 1; n <= 10; n++) {
		uint64_t streak, delay;
		char *js;

		h_swap_out(vm->p);
		h_wait_recovered(vm, h_kill_helper(vm), n);
		js = h_crash_status(vm);
		cr_assert_eq(h_json_u64(js, "keeper_pid"), (uint64_t)keeper, "%s", js);
		cr_assert(h_alive(keeper), "keeper %d gone", (int)keeper);
		cr_assert(h_alive(vm->pid), "VMM %d gone", vm->pid);
		cr_assert_eq(h_json_u64(js, "restarts"), n, "%s", js);
		cr_assert_gt(h_json_u64(js, "last_restart"), 0, "%s", js);
		streak = h_json_u64(js, "restart_streak");
		delay = h_json_u64(js, "restart_delay_ms");
		cr_assert(streak >= 1 && streak <= n, "%s", js);
		/* The streak only restarts after a helper stayed up a minute. */
		cr_assert(streak == last_streak + 1 || streak == 1, "%s", js);
		resets += streak != last_streak + 1;
		last_streak = streak;
		cr_assert_eq(delay, backoff_ms(streak, 20), "restart %llu: %s",
			     (unsigned long long)n, js);
		if (delay > max_delay)
			max_delay = delay;
		free(js);
	}
	/* Unless a helper outlived the streak, the later restarts waited. */
	cr_assert(max_delay >= 20 * 16 || resets, "max delay %llu ms",
		  (unsigned long long)max_delay);
	h_churn_stop_ok(vm->p, "churn");
	cr_assert_eq(status_pid(vm, "keeper_pid"), keeper);
	check_after(vm);
}

/*
 * A recovery that cannot start (its run dir moved away) is retried with
 * the backoff, the pages held meanwhile; once the run dir is back the
 * next try recovers every page.
 */
/*
 * Active, the run dir moved to @away and the helper killed: every
 * recovery fails to start. Returns once 7 have, the keeper into its
 * backoff; the dead helper's pid in *dead.
 */
static pid_t recovery_cannot_start(struct h_vm *vm, char *dir, char *away, size_t n, pid_t *dead)
{
	pid_t keeper = status_pid(vm, "keeper_pid");
	double deadline;

	h_swap_out(vm->p);
	snprintf(dir, n, "%s/%d", h_env.run, vm->pid);
	snprintf(away, n, "%s/%d.away", h_env.run, vm->pid);
	*dead = status_pid(vm, "helper_pid");
	cr_assert_eq(rename(dir, away), 0, "rename %s: %s", dir, strerror(errno));
	vm->kills++;
	cr_assert_eq(kill(*dead, SIGKILL), 0);
	cr_assert(h_wait_dead(*dead));
	deadline = h_now() + H_STATE_TIMEOUT_S;
	for (;;) {
		char *err = h_proc_stderr(vm->p);
		int fails = h_count_lines(err, "could not start");

		free(err);
		if (fails >= 7)
			break;
		if (h_now() > deadline) {
			rename(away, dir);
			cr_assert_fail("%d failed recoveries, expected 7", fails);
		}
		h_nap_ms(20);
	}
	cr_assert(h_alive(keeper), "keeper %d gave up", (int)keeper);
	return keeper;
}

Test(crash, keeper_retries_a_recovery_that_cannot_start)
{
	static const char *const env[] = { "VMSWAP_TEST_RESTART_DELAY_MS=20", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	char dir[400], away[400];
	pid_t keeper, dead;
	char *js;

	keeper = recovery_cannot_start(vm, dir, away, sizeof(dir), &dead);
	h_ok(vm->p, "info");
	cr_assert_eq(rename(away, dir), 0, "rename back: %s", strerror(errno));
	h_wait_recovered(vm, dead, 1);
	js = h_crash_status(vm);
	cr_assert_eq(h_json_u64(js, "keeper_pid"), (uint64_t)keeper, "%s", js);
	cr_assert_geq(h_json_u64(js, "restarts"), 8, "%s", js);
	cr_assert_gt(h_json_u64(js, "restart_delay_ms"), 0, "%s", js);
	free(js);
	check_after(vm);
}

/* The keeper stops retrying once its VMM is gone. */
Test(crash, keeper_stops_retrying_when_the_vmm_exits)
{
	static const char *const env[] = { "VMSWAP_TEST_RESTART_DELAY_MS=20", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	char dir[400], away[400];
	pid_t keeper, dead;
	int st;

	keeper = recovery_cannot_start(vm, dir, away, sizeof(dir), &dead);
	h_proc_kill(vm->p, SIGKILL);
	st = h_proc_wait(vm->p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0 && WIFSIGNALED(st));
	cr_assert(h_wait_dead(keeper), "keeper %d outlived its VMM", (int)keeper);
	free(vm);
}
