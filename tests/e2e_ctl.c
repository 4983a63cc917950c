/* SPDX-License-Identifier: BSD-3-Clause */
/* vmswapctl: --timeout on every command; a run directory below a symlink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(ctl, .init = h_setup, .fini = h_teardown, .timeout = 180);

/* vmswapctl -p pid, with --timeout 60 before or after the other args; exit 0. */
static void ok_with_timeout(int pid, bool before, const char *a, const char *b)
{
	char pidstr[16];
	struct h_ctl c;

	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	if (before)
		h_ctl_run(&c, "--timeout", "60", "-p", pidstr, a, b, NULL);
	else
		h_ctl_run(&c, "-p", pidstr, a, b, "--timeout=60", NULL);
	cr_assert_eq(c.rc, 0, "%s %s with --timeout 60 %s: exit %d\n%s%s", a, b ? b : "",
		     before ? "first" : "last", c.rc, c.out, c.err);
}

/* Each command, with and without --wait, the option before and after it. */
Test(ctl, every_command_takes_timeout)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	struct h_ctl c;

	for (int before = 0; before < 2; before++) {
		ok_with_timeout(vm->pid, before, "status", NULL);
		ok_with_timeout(vm->pid, before, "status", "--json");
		ok_with_timeout(vm->pid, before, "enable", NULL);
		ok_with_timeout(vm->pid, before, "enable", "--wait");
		ok_with_timeout(vm->pid, before, "trim", "--wait");
		ok_with_timeout(vm->pid, before, "out", "--wait");
		h_ok(vm->p, "verify");
		ok_with_timeout(vm->pid, before, "disable", "--wait");
		ok_with_timeout(vm->pid, before, "enable", NULL);
		ok_with_timeout(vm->pid, before, "trim", NULL);
		free(h_wait_state(vm->pid, "Pending"));
		ok_with_timeout(vm->pid, before, "out", NULL);
		free(h_wait_state(vm->pid, "Active"));
		ok_with_timeout(vm->pid, before, "disable", NULL);
		free(h_wait_state(vm->pid, "Ready"));
		h_ok(vm->p, "verify");
	}
	h_ctl_run(&c, "list", "--timeout", "60", NULL);
	cr_assert_eq(c.rc, 0, "list --timeout 60: exit %d\n%s", c.rc, c.err);
	cr_assert(strstr(c.out, "Ready"), "%s", c.out);
	h_ctl_run(&c, "--timeout", "60", "list", NULL);
	cr_assert_eq(c.rc, 0, "--timeout 60 list: exit %d\n%s", c.rc, c.err);
	h_vm_finish(vm);
}

/* A bad value is a usage error (2) naming it, whatever the command, and sends nothing. */
Test(ctl, bad_timeout_is_a_usage_error)
{
	static const char *const bad[] = { "abc", "-1", "0", "0.0", "", " 5", "5s", "1e3",
					   "inf", "nan", "0x10", "." };
	static const char *const cmds[] = { "status", "list", "enable", "trim", "out", "disable" };
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	char pidstr[16];
	struct h_ctl c;

	snprintf(pidstr, sizeof(pidstr), "%d", vm->pid);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
			/* status --json, enable, trim/out/disable --wait, list: each its own way. */
			const char *opt = k == 0 ? "--json" : k > 2 ? "--wait" : NULL;

			if (k == 1)
				h_ctl_run(&c, "list", "--timeout", bad[i], NULL);
			else if (opt)
				h_ctl_run(&c, "-p", pidstr, cmds[k], opt, "--timeout", bad[i], NULL);
			else
				h_ctl_run(&c, "--timeout", bad[i], "-p", pidstr, cmds[k], NULL);
			cr_assert_eq(c.rc, 2, "%s --timeout '%s': exit %d (want 2)\n%s%s", cmds[k],
				     bad[i], c.rc, c.out, c.err);
			cr_assert(strstr(c.err, "bad --timeout") && strstr(c.err, bad[i]),
				  "%s --timeout '%s': the message should name it: %s", cmds[k],
				  bad[i], c.err);
		}
	}
	h_ctl_run(&c, "-p", pidstr, "status", "--timeout", NULL);
	cr_assert_eq(c.rc, 2, "--timeout without a value: exit %d\n%s", c.rc, c.err);
	cr_assert(strstr(c.err, "--timeout needs"), "%s", c.err);
	/* Nothing was sent: still Ready, nothing staged. */
	free(h_wait_state(vm->pid, "Ready"));
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), 0);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/*
 * The timeout bounds the command, not the helper's work: each operation
 * is slowed to at least 1.6 s (16 units of 2 MiB, 100 ms each; staged in
 * place, enable sleeps once for all of them), so a 0.3 s timeout ends
 * vmswapctl with 4 while the operation goes on. (No verify before
 * disable: every page must still be in the file.)
 */
static void timeout_bounds(bool copy)
{
	const char *const env[] = { "VMSWAP_TEST_OP_DELAY_MS=100", copy ? H_STAGING_COPY : NULL,
				    NULL };
	static const char *const steps[][3] = {
		{ "enable", NULL, "Pending" },
		{ "out", "--wait", "Active" },
		{ "disable", "--wait", "Ready" },
	};
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	char pidstr[16];
	struct h_ctl c;

	snprintf(pidstr, sizeof(pidstr), "%d", vm->pid);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		h_ctl_run(&c, "-p", pidstr, "--timeout", "0.3", steps[i][0], steps[i][1], NULL);
		cr_assert_eq(c.rc, 4, "%s --timeout 0.3: exit %d (want 4)\n%s%s", steps[i][0], c.rc,
			     c.out, c.err);
		cr_assert(strstr(c.err, "timed out after 0.3 s"), "%s", c.err);
		free(h_wait_state(vm->pid, steps[i][2]));
	}
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

Test(ctl, timeout_bounds_the_wait)
{
	timeout_bounds(false);
}

Test(ctl, timeout_bounds_the_wait_with_a_staging_copy)
{
	timeout_bounds(true);
}

/* ---- a run directory below a symlink ---- */

/* Point VMSWAP_RUN_DIR (ours, and so our children's) at @path. */
static void use_run_dir(const char *path)
{
	cr_assert_lt(strlen(path), sizeof(h_env.run));
	memcpy(h_env.run, path, strlen(path) + 1);
	setenv("VMSWAP_RUN_DIR", path, 1);
}

/* A whole cycle through vmswapctl, and list, with the run dir at @path. */
static void cycle_in(const char *path)
{
	struct h_vm *vm;
	struct h_ctl c;
	char pidstr[16];

	use_run_dir(path);
	vm = h_vm_start_filled("--size 32M", NULL);
	snprintf(pidstr, sizeof(pidstr), "%d", vm->pid);
	h_ctl_run(&c, "list", NULL);
	cr_assert_eq(c.rc, 0, "list: exit %d\n%s", c.rc, c.err);
	cr_assert(strstr(c.out, pidstr), "list should show pid %s:\n%s", pidstr, c.out);
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_ok(vm->pid, "out", "--wait", NULL);
	free(h_wait_state(vm->pid, "Active"));
	h_ok(vm->p, "verify");
	h_ctl_ok(vm->pid, "disable", "--wait", NULL);
	free(h_wait_state(vm->pid, "Ready"));
	h_ok(vm->p, "verify");
	/* -p left out: the only VMM is found through the symlink too. */
	h_ctl_run(&c, "status", "--json", NULL);
	cr_assert_eq(c.rc, 0, "status without -p: exit %d\n%s", c.rc, c.err);
	h_vm_finish(vm);
}

/* <tmp>/link -> <tmp>/real, like /var/run -> /run. */
Test(ctl, run_dir_below_a_symlink)
{
	char real[400], link[400], path[420];

	snprintf(real, sizeof(real), "%s/real", h_env.dir);
	snprintf(link, sizeof(link), "%s/link", h_env.dir);
	cr_assert(mkdir(real, 0755) == 0 && symlink(real, link) == 0);
	snprintf(path, sizeof(path), "%s/vmswap", link);
	cycle_in(path);
	snprintf(path, sizeof(path), "%s/vmswap", real);
	cr_assert_eq(h_dir_entries(path), 0, "the VMM's directory should be gone from %s", path);
}

/* VMSWAP_RUN_DIR itself a symlink to a directory. */
Test(ctl, run_dir_is_a_symlink)
{
	char real[400], link[400];

	snprintf(real, sizeof(real), "%s/realrun", h_env.dir);
	snprintf(link, sizeof(link), "%s/runlink", h_env.dir);
	cr_assert(mkdir(real, 0700) == 0 && symlink(real, link) == 0);
	cycle_in(link);
}

/* A dangling symlink: the helper says which part is missing; the VMM runs on unmanaged. */
Test(ctl, run_dir_below_a_dangling_symlink_says_why)
{
	char link[400], path[420], want[500];
	struct h_vm *vm;
	struct h_ctl c;
	char *err;

	snprintf(link, sizeof(link), "%s/dangling", h_env.dir);
	cr_assert(symlink("/nonexistent-vmswap-test", link) == 0);
	snprintf(path, sizeof(path), "%s/vmswap", link);
	use_run_dir(path);
	vm = h_vm_start("--size 32M", NULL, false);
	h_ok(vm->p, "fill");
	h_ok(vm->p, "verify");
	snprintf(want, sizeof(want), "cannot create the run directory root %s: "
		 "No such file or directory", link);
	for (double deadline = h_now() + H_STATE_TIMEOUT_S;; h_nap_ms(20)) {
		err = h_proc_stderr(vm->p);
		if (strstr(err, want))
			break;
		cr_assert(h_now() < deadline, "want '%s' on stderr:\n%s", want, err);
		free(err);
	}
	free(err);
	h_ctl_pid(&c, vm->pid, "status", NULL);
	cr_assert_eq(c.rc, 3, "status without a run dir: exit %d\n%s%s", c.rc, c.out, c.err);
	h_ok(vm->p, "write 10 1000");
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}
