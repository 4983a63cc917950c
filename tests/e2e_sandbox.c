/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The running helper is sandboxed: seccomp filter mode, no new privileges,
 * capabilities cut to the kept ones, and a whole swap cycle still works.
 * VMSWAP_SECCOMP=0 turns the filter off and says so.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../helper/ctl/ctl_json.h"
#include "../helper/sys/caps.h"
#include "harness.h"

TestSuite(sandbox, .init = h_setup, .fini = h_teardown, .timeout = 180);

/* Field @name of a /proc status file, parsed in @base; -1 when missing. */
static long long status_field(const char *path, const char *name, int base)
{
	char line[256];
	size_t n = strlen(name);
	long long v = -1;
	FILE *f = fopen(path, "re");

	cr_assert(f, "cannot read %s", path);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':')
			v = strtoll(line + n + 1, NULL, base);
	fclose(f);
	return v;
}

static long long proc_status(pid_t pid, const char *name, int base)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return status_field(path, name, base);
}

/*
 * Every thread of the helper (seccomp filters and capabilities are per
 * thread): filter mode, no new privileges, only kept capabilities out of
 * @caps (the test's own). Returns how many threads it checked.
 */
static int check_threads(pid_t helper, long long caps)
{
	long long kept = caps & (long long)VS_CAPS_KEPT;
	char dir[64], path[400];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)helper);
	d = opendir(dir);
	cr_assert(d, "cannot list %s", dir);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/status", dir, de->d_name);
		cr_assert_eq(status_field(path, "Seccomp", 10), 2, "%s: not in filter mode", path);
		cr_assert_eq(status_field(path, "NoNewPrivs", 10), 1, "%s", path);
		cr_assert_eq(status_field(path, "CapEff", 16), kept,
			     "%s: CapEff %llx, want %llx (the test's %llx)", path,
			     status_field(path, "CapEff", 16), kept, caps);
		cr_assert_eq(status_field(path, "CapPrm", 16), kept, "%s", path);
		cr_assert_eq(status_field(path, "CapInh", 16), 0, "%s", path);
		cr_assert_eq(status_field(path, "CapBnd", 16) & ~(long long)VS_CAPS_KEPT, 0, "%s",
			     path);
		n++;
	}
	closedir(d);
	return n;
}

static bool status_seccomp(int vmm_pid)
{
	char *js = h_status_fresh(vmm_pid);
	bool on = false;

	cr_assert_eq(vs_json_get_bool(js, "seccomp", &on), 0, "no \"seccomp\" in status:\n%s", js);
	free(js);
	return on;
}

Test(sandbox, helper_runs_under_seccomp_without_spare_capabilities)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	long long caps = proc_status(getpid(), "CapEff", 16);
	pid_t helper = h_helper_pid(vm->pid);
	char *js, want[64];

	cr_assert_gt(helper, 0);
	/* Every operation and fault-back path of a cycle, inside the sandbox. */
	h_vm_cycle_verified(vm);
	cr_assert(status_seccomp(vm->pid), "the helper should report seccomp true");
	js = h_status(vm->pid);
	cr_assert_gt(h_json_u64(js, "seccomp_syscalls"), 0, "%s", js);
	snprintf(want, sizeof(want), "seccomp allowlist of %llu syscalls",
		 (unsigned long long)h_json_u64(js, "seccomp_syscalls"));
	free(js);
	cr_assert(strstr(h_ctl_ok(vm->pid, "status", NULL), want), "status should show \"%s\"",
		  want);
	/* The main, fault and worker threads at least. */
	cr_assert_geq(check_threads(helper, caps), 3);
	h_vm_finish(vm);
}

Test(sandbox, seccomp_0_turns_the_filter_off_and_says_so)
{
	static const char *const env[] = { "VMSWAP_SECCOMP=0", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	pid_t helper = h_helper_pid(vm->pid);
	struct h_proc *p = vm->p;
	char *err;

	cr_assert_gt(helper, 0);
	cr_assert_not(status_seccomp(vm->pid), "VMSWAP_SECCOMP=0: status should say false");
	cr_assert_eq(proc_status(helper, "Seccomp", 10), 0);
	cr_assert(strstr(h_ctl_ok(vm->pid, "status", NULL), "\nsandbox           off\n"));
	h_swap_out_verify_disable(vm->p);
	h_vm_finish(vm);
	err = h_proc_stderr(p);
	cr_assert_eq(h_count_lines(err, "without the seccomp sandbox"), 1,
		     "want one line saying the sandbox is off:\n%s", err);
	free(err);
}

/*
 * A root VMM that becomes another user after setup (QEMU -run-with user=):
 * the helper keeps CAP_KILL to freeze it and CAP_SYS_PTRACE to read its
 * maps, and swaps it out and in as usual.
 */
Test(sandbox, vmm_that_changed_uid_is_still_frozen_and_served)
{
	struct h_vm *vm;

	if (geteuid() != 0)
		h_skip("needs root to start a VMM that changes uid");
	vm = h_vm_start_filled("--size 32M", NULL);
	h_ok(vm->p, "run-as 65534");
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}
