/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A process the VMM fork()s and exec()s with the shim still preloaded,
 * mapping the same guest memfd (a vhost-user backend, a device process),
 * joins the VMM's helper through <run dir>/<VMM pid>/shim.sock instead of
 * starting one of its own (build/tests/exec-vmm, tests/progs/execvmm.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(exec, .init = h_setup, .fini = h_teardown, .timeout = 180);

struct exec_vmm {
	struct h_proc *p;
	int pid, child;
	uint64_t pages;
};

static void exec_vmm_start(struct exec_vmm *x, const char *size)
{
	const char *const argv[] = { h_bin("tests/exec-vmm"), size, NULL };
	const char *const env[] = { "VMSWAP_LOG=info", NULL };
	const char *ans;

	h_require_uffd();
	x->p = h_spawn(argv, env, false);
	ans = h_ok(x->p, "info");
	x->pid = (int)h_answer_u64(ans, "pid");
	x->child = (int)h_answer_u64(ans, "child");
	x->pages = h_answer_u64(ans, "pages");
	cr_assert_eq(x->pid, (int)x->p->pid);
}

/* Both mappings of the one memfd are managed by the VMM's helper, which
 * children joined, and nothing started a second one. */
static void assert_one_helper(const struct exec_vmm *x, int joined)
{
	char line[64], *err;

	h_wait_u64_eq(x->pid, "processes", 2);
	h_wait_u64_eq(x->pid, "regions", 2);
	cr_assert_eq(h_metric(x->pid, "guest_pages"), x->pages, "one memfd, counted once");
	cr_assert_eq(h_dir_entries(h_env.run), 1, "one run dir (the VMM's), no other helper");
	cr_assert(h_rundir_exists(x->pid));
	cr_assert(!h_rundir_exists(x->child), "the exec'd child %d has a run dir", x->child);
	err = h_proc_stderr(x->p);
	snprintf(line, sizeof(line), "vmswap: joined the helper of pid %d", x->pid);
	cr_assert_eq(h_count_lines(err, "vmswap: helper started by "), 1, "one helper start:\n%s", err);
	cr_assert_eq(h_count_lines(err, line), joined, "%d children should have joined:\n%s",
		     joined, err);
	free(err);
}

/* The child quits, and the helper drops it. */
static void child_quit(const struct exec_vmm *x)
{
	h_ok(x->p, "child-quit");
	h_wait_u64_eq(x->pid, "processes", 1);
	h_wait_u64_eq(x->pid, "regions", 1);
}

/* quit: exit 0 (the child's too), and the helper goes. */
static void exec_vmm_finish(const struct exec_vmm *x)
{
	int st;

	h_ok(x->p, "quit");
	st = h_proc_wait(x->p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "exec-vmm status %#x", st);
	cr_assert(h_wait_rundir_gone(x->pid), "helper of exec-vmm %d outlived it", x->pid);
}

Test(exec, exec_child_joins_the_vmm_helper)
{
	struct exec_vmm x;

	exec_vmm_start(&x, "16M");
	assert_one_helper(&x, 1);
	h_ok(x.p, "child-verify");

	/* Swapped out, the child's faults are served by the same helper. */
	h_swap_out(x.p);
	cr_assert_eq(h_metric(x.pid, "swap_pages"), x.pages);
	h_ok_delta(x.p, "copied_from_file_pages", x.pages, "child-verify");
	h_ok(x.p, "verify");
	h_disable_verify(x.p);
	h_ok(x.p, "child-verify");

	/* The child writes while Active; the VMM sees its data. */
	h_swap_out(x.p);
	h_ok_delta(x.p, "copied_from_file_pages", x.pages, "child-fill");
	h_ok(x.p, "verify");
	h_disable_verify(x.p);
	h_ok(x.p, "child-verify");

	/* Once the child is gone, the VMM alone goes on. */
	child_quit(&x);
	h_ok(x.p, "fill");
	h_swap_out_verify_disable(x.p);
	h_ok(x.p, "verify");
	exec_vmm_finish(&x);
}

/* A child exec'd while Active joins at once: what it reads comes from the file. */
Test(exec, child_execd_while_active_faults_from_the_file)
{
	struct exec_vmm x;
	const char *ans;

	exec_vmm_start(&x, "16M");
	child_quit(&x);
	h_ok(x.p, "fill");
	h_swap_out(x.p);
	ans = h_ok(x.p, "child-start");
	x.child = (int)h_answer_u64(ans, "child");
	assert_one_helper(&x, 2);
	h_ok_delta(x.p, "copied_from_file_pages", x.pages, "child-verify");
	h_ok(x.p, "verify");
	h_disable_verify(x.p);
	h_ok(x.p, "child-verify");
	exec_vmm_finish(&x);
}

/*
 * A child exec'd while Active that cannot reach the stalled helper is
 * refused its guest mapping (EACCES), and the VMM's pages stay whole.
 */
Test(exec, child_execd_while_the_helper_is_stalled_is_refused_guest_memory)
{
	const char *const argv[] = { h_bin("tests/exec-vmm"), "16M", NULL };
	const char *const env[] = { "VMSWAP_LOG=info", "VMSWAP_JOIN_TIMEOUT=1", NULL };
	struct exec_vmm x;
	const char *ans;
	pid_t hp;
	char *err;

	h_require_uffd();
	x.p = h_spawn(argv, env, false);
	ans = h_ok(x.p, "info");
	x.pid = (int)h_answer_u64(ans, "pid");
	x.pages = h_answer_u64(ans, "pages");
	child_quit(&x);
	h_ok(x.p, "fill");
	h_swap_out(x.p);
	hp = h_helper_pid(x.pid);
	cr_assert_gt(hp, 0);
	cr_assert_eq(kill(hp, SIGSTOP), 0);
	h_cmd(x.p, H_CMD_TIMEOUT_S, "child-start");
	cr_assert(!strncmp(x.p->last, "err child-start", 15), "the child started: %s", x.p->last);
	err = h_proc_stderr(x.p);
	cr_assert(strstr(err, "refusing to map guest memory"), "no refusal:\n%s", err);
	cr_assert(strstr(err, "Permission denied"), "the child's mmap did not fail with EACCES:\n%s",
		  err);
	free(err);
	cr_assert_eq(kill(hp, SIGCONT), 0);
	h_wait_u64_eq(x.pid, "processes", 1);
	cr_assert_eq(h_metric(x.pid, "swap_pages"), x.pages, "a page came back unseen");
	h_ok(x.p, "verify");
	h_disable_verify(x.p);
	/* Its failed child left exec-vmm unable to quit cleanly: end it. */
	h_proc_kill(x.p, SIGKILL);
	cr_assert(h_wait_rundir_gone(x.pid));
}
