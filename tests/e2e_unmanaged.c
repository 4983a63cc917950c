/* SPDX-License-Identifier: BSD-3-Clause */
/* VMMs that run unmanaged: no userfaultfd, or a bad vmswap setting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../helper/ctl_json.h"
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

/* One bad variable: toyvmm works, one "vmswap:" line names it, no helper. */
static void bad_env(const char *assignment)
{
	const char *env[] = { assignment, NULL };
	char var[64];
	struct h_proc *p;
	struct h_vm *vm;
	char *err;

	snprintf(var, sizeof(var), "%.*s", (int)strcspn(assignment, "="), assignment);
	vm = h_vm_start("--size 32M", env, false);
	h_ok(vm->p, "fill");
	h_ok(vm->p, "verify");
	cr_assert_eq(h_dir_entries(h_env.run), 0, "a helper run dir appeared despite %s", assignment);
	p = vm->p;
	h_vm_finish(vm);
	err = h_proc_stderr(p);
	cr_assert_eq(h_count_lines(err, "vmswap:"), 1, "want one vmswap: line for %s, got:\n%s",
		     assignment, err);
	cr_assert(strstr(strstr(err, "vmswap:"), var), "the vmswap: line should name %s:\n%s", var,
		  err);
	free(err);
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
