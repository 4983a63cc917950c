/* SPDX-License-Identifier: BSD-3-Clause */
/* VMMs that run unmanaged: no userfaultfd, or a bad vmswap setting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <vmswap/env.h>

#include "../helper/ctl/ctl_json.h"
#include "harness.h"

TestSuite(unmanaged, .init = h_setup, .fini = h_teardown, .timeout = 180);

/* Until status.json says managed=false; returns it. */
static char *wait_unmanaged(int pid)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;

	for (;;) {
		char *json = NULL;
		bool managed = true;

		if (!vs_status_read(pid, &json) && !vs_json_get_bool(json, "managed", &managed) &&
		    !managed)
			return json;
		cr_assert(h_now() < deadline, "status never said managed=false:\n%s",
			  json ? json : "(none)");
		free(json);
		h_nap_ms(10);
	}
}

Test(unmanaged, no_userfaultfd_says_why)
{
	static const char *const env[] = { "VMSWAP_TEST_NO_UFFD=1", NULL };
	struct h_vm *vm = h_vm_start("--size 32M", env, false);
	struct h_ctl c;
	char reason[256];
	char *js;

	h_ok(vm->p, "fill");
	h_ok(vm->p, "verify");
	js = wait_unmanaged(vm->pid);
	h_json_str(js, "reason", reason, sizeof(reason));
	cr_assert(reason[0], "an unmanaged VMM needs a reason:\n%s", js);
	free(js);

	h_ctl_pid(&c, vm->pid, "status", "--json", NULL);
	cr_assert_eq(c.rc, 0, "status --json: exit %d, %s", c.rc, c.err);
	cr_assert(strstr(c.out, "\"managed\":false"), "%s", c.out);
	cr_assert(strstr(c.out, reason), "%s", c.out);

	h_ctl_pid(&c, vm->pid, "enable", NULL);
	cr_assert_eq(c.rc, 1, "enable on an unmanaged VMM: exit %d, %s", c.rc, c.err);
	cr_assert(strstr(c.err, "unmanaged"), "enable should say why: %s", c.err);
	cr_assert(strstr(c.err, reason), "enable should give the reason '%s': %s", reason, c.err);
	h_ok(vm->p, "write 10 1000");
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/* No byte of @text is a control byte but '\n'. */
static void assert_no_control_bytes(const char *text)
{
	for (const unsigned char *c = (const unsigned char *)text; *c; c++)
		cr_assert((*c >= 0x20 && *c != 0x7f) || *c == '\n',
			  "raw byte %#x on stderr:\n%s", *c, text);
}

/*
 * The VMM under @env runs unmanaged: no helper, no run dir, and vmswapctl
 * says so; its data is fine. Its stderr has exactly one line from vmswap,
 * which names @var and holds @shown. Returns that stderr (malloc'd).
 */
static char *unmanaged_with(const char *const env[], const char *var, const char *shown)
{
	struct h_proc *p;
	struct h_vm *vm;
	struct h_ctl c;
	char *err;

	vm = h_vm_start("--size 32M", env, false);
	h_ok(vm->p, "fill");
	h_ok(vm->p, "verify");
	cr_assert_eq(h_dir_entries(h_env.run), 0, "a helper run dir appeared despite %s", var);
	h_ctl_pid(&c, vm->pid, "status", NULL);
	cr_assert_eq(c.rc, 3, "status of a VMM without a helper: exit %d\n%s%s", c.rc, c.out,
		     c.err);
	cr_assert(strstr(c.err, "has no vmswap helper") && strstr(c.err, "unmanaged"),
		  "vmswapctl should say why there is no helper: %s", c.err);
	h_ok(vm->p, "write 10 1000");
	h_ok(vm->p, "verify");
	p = vm->p;
	h_vm_finish(vm);
	err = h_proc_stderr(p);
	cr_assert_eq(h_count_lines(err, "vmswap"), 1, "want one vmswap line for %s, got:\n%s", var,
		     err);
	cr_assert(strstr(err, "vmswap: bad ") && strstr(strstr(err, "vmswap: bad "), var),
		  "the vmswap: line should name %s:\n%s", var, err);
	cr_assert(strstr(err, "running unmanaged"), "%s", err);
	cr_assert(strstr(err, shown), "the line should show the value as '%s':\n%s", shown, err);
	assert_no_control_bytes(err);
	return err;
}

/* One bad variable: one report naming it, no helper, data fine. */
static void bad_env(const char *assignment)
{
	const char *env[] = { assignment, NULL };
	const char *eq = strchr(assignment, '=');
	char var[64], shown[128];

	snprintf(var, sizeof(var), "%.*s", (int)(eq - assignment), assignment);
	snprintf(shown, sizeof(shown), "%s=\"%s\"", var, eq + 1);
	free(unmanaged_with(env, var, shown));
}

Test(unmanaged, bad_env_min_size)
{
	bad_env("VMSWAP_MIN_SIZE=12Q");
}

Test(unmanaged, bad_env_log_level)
{
	bad_env("VMSWAP_LOG=loud");
}

Test(unmanaged, bad_env_disable)
{
	bad_env("VMSWAP_DISABLE=maybe");
}

Test(unmanaged, bad_env_anon)
{
	bad_env("VMSWAP_ANON=yes");
}

Test(unmanaged, bad_env_swap_dir)
{
	bad_env("VMSWAP_SWAP_DIR=var/tmp");
}

Test(unmanaged, bad_env_run_dir)
{
	bad_env("VMSWAP_RUN_DIR=run/vmswap");
}

Test(unmanaged, bad_env_precopy)
{
	bad_env("VMSWAP_PRECOPY=off");
}

Test(unmanaged, bad_env_wake_swapin)
{
	bad_env("VMSWAP_WAKE_SWAPIN=yes");
}

Test(unmanaged, bad_env_fault_io)
{
	bad_env("VMSWAP_FAULT_IO=epoll");
}

Test(unmanaged, bad_env_fail_reads)
{
	bad_env("VMSWAP_TEST_FAIL_READS=3");
}

Test(unmanaged, bad_env_fail_write_after)
{
	bad_env("VMSWAP_TEST_FAIL_WRITE_AFTER=-1");
}

Test(unmanaged, bad_env_seccomp)
{
	bad_env("VMSWAP_SECCOMP=off");
}

Test(unmanaged, bad_env_no_uffd)
{
	bad_env("VMSWAP_TEST_NO_UFFD=yes");
}

Test(unmanaged, bad_env_op_delay)
{
	bad_env("VMSWAP_TEST_OP_DELAY_MS=10001");
}

Test(unmanaged, bad_env_join_timeout)
{
	bad_env("VMSWAP_JOIN_TIMEOUT=0");
}

Test(unmanaged, bad_env_headroom_check)
{
	bad_env("VMSWAP_HEADROOM_CHECK=no");
}

Test(unmanaged, bad_env_restart_delay)
{
	bad_env("VMSWAP_TEST_RESTART_DELAY_MS=1001");
}

/* Too long for its buffer: shown cut short. */
static void bad_env_long(const char *var, size_t len)
{
	char *assignment = malloc(strlen(var) + len + 2), shown[160], *err;
	const char *env[] = { assignment, NULL };

	cr_assert(assignment);
	sprintf(assignment, "%s=/", var);
	memset(assignment + strlen(var) + 2, 'a', len - 1);
	assignment[strlen(var) + 1 + len] = '\0';
	snprintf(shown, sizeof(shown), "%s=\"/%.*s...\"", var, VMSWAP_ENV_SHOW_MAX - 1,
		 assignment + strlen(var) + 2);
	err = unmanaged_with(env, var, shown);
	cr_assert_lt(strlen(err), 300, "the report should be short:\n%s", err);
	free(err);
	free(assignment);
}

Test(unmanaged, bad_env_too_long)
{
	bad_env_long("VMSWAP_MATCH", 300);
	bad_env_long("VMSWAP_HELPER", 5000);
}

/* Control bytes in a value are escaped, never written to the terminal. */
Test(unmanaged, bad_env_control_bytes_are_escaped)
{
	static const char *const env[] = { "VMSWAP_MIN_SIZE=1\n2\x1b[31m\"\\\x7f\xff", NULL };

	free(unmanaged_with(env, "VMSWAP_MIN_SIZE",
			    "VMSWAP_MIN_SIZE=\"1\\x0a2\\x1b[31m\\x22\\x5c\\x7f\\xff\""));
}

/*
 * A program the VMM execs with the same environment runs unmanaged too,
 * without a second report (build/tests/exec-vmm forks and execs itself).
 */
Test(unmanaged, bad_env_reported_once_across_exec)
{
	const char *const argv[] = { h_bin("tests/exec-vmm"), "8M", NULL };
	static const char *const env[] = { "VMSWAP_ANON=2", NULL };
	struct h_proc *p = h_spawn(argv, env, false);
	char *err;
	int st;

	h_ok(p, "info");
	h_ok(p, "fill");
	h_ok(p, "child-verify");
	h_ok(p, "child-quit");
	h_ok(p, "verify");
	h_ok(p, "quit");
	st = h_proc_wait(p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "exec-vmm: status %#x", st);
	cr_assert_eq(h_dir_entries(h_env.run), 0, "a helper run dir appeared");
	err = h_proc_stderr(p);
	cr_assert_eq(h_count_lines(err, "vmswap"), 1, "want one report for two programs:\n%s",
		     err);
	cr_assert(strstr(err, "bad VMSWAP_ANON=\"2\""), "%s", err);
	free(err);
}
