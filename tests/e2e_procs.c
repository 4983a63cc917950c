/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Processes around the VMM: the helper's lifetime and signals, hotplug,
 * a process that maps guest memory without the shim, and a child that
 * has not joined.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(procs, .init = h_setup, .fini = h_teardown, .timeout = 180);

Test(procs, helper_exits_when_the_vmm_is_killed_while_active)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	pid_t helper;
	int st;

	h_swap_out(vm->p);
	helper = h_helper_pid(vm->pid);
	cr_assert_gt(helper, 0);
	cr_assert(h_alive(helper));
	h_proc_kill(vm->p, SIGKILL);
	st = h_proc_wait(vm->p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	cr_assert(h_wait_rundir_gone(vm->pid), "run dir of killed VMM %d still there", vm->pid);
	cr_assert(h_wait_dead(helper), "helper %d outlived its VMM", (int)helper);
	free(vm);
}

Test(procs, sigusr1_swaps_out_and_sigusr2_swaps_in)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	pid_t helper;
	char *js;

	helper = h_helper_pid(vm->pid);
	cr_assert_gt(helper, 0);

	/* SIGUSR1: enable, trim, out. */
	cr_assert(kill(helper, SIGUSR1) == 0);
	js = h_wait_state(vm->pid, "Active");
	cr_assert_eq(h_json_u64(js, "swap_pages"), vm->pages);
	cr_assert_eq(h_json_u64(js, "staging_pages"), 0);
	free(js);
	cr_assert_lt(h_vm_rss_shmem_kb(vm), vm->pages * 4 / 20);
	h_ok(vm->p, "verify");

	/* SIGUSR2: disable. */
	cr_assert(kill(helper, SIGUSR2) == 0);
	h_wait_ready_empty(vm->pid);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

Test(procs, sigterm_to_helper_swaps_everything_in_and_exits)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	struct h_ctl c;
	pid_t helper;

	h_swap_out(vm->p);
	helper = h_helper_pid(vm->pid);
	cr_assert_gt(helper, 0);
	cr_assert(kill(helper, SIGTERM) == 0);
	cr_assert(h_wait_rundir_gone(vm->pid), "helper %d did not remove its run dir after SIGTERM",
		  (int)helper);
	cr_assert(h_wait_dead(helper), "helper %d still running after SIGTERM", (int)helper);
	/* Every page is back, though nothing serves faults any more. */
	h_ok(vm->p, "verify");
	h_ok(vm->p, "write 0 100");
	h_ok(vm->p, "verify");
	h_ctl_pid(&c, vm->pid, "enable", NULL);
	cr_assert_eq(c.rc, 3, "enable without a helper: exit %d (want 3), %s", c.rc, c.err);
	h_vm_finish(vm);
}

Test(procs, hotplug_while_active)
{
	struct h_vm *vm = h_vm_start("--size 32M", NULL, true);

	h_vm_hotplug_while_active(vm, 16);
	h_vm_finish(vm);
}

/* An fd of pid's guest memfd, opened through /proc; -1 when none. */
static int open_guest_memfd(int pid)
{
	char dir[64], path[400], link[300];
	struct dirent *de;
	int fd = -1;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	cr_assert(d);
	while (fd < 0 && (de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strncmp(link, "/memfd:toyvmm-guest", 19))
			fd = open(path, O_RDWR | O_CLOEXEC);
	}
	closedir(d);
	return fd;
}

/*
 * A mapping of guest memory no userfaultfd covers (this test process is
 * not under the shim) makes enable refuse, naming the process; nothing
 * is staged, the state stays Ready, and once it is gone enable works.
 * Staged in place the refusal comes after the pages were staged and
 * protected (in the freeze): they must all be unstaged again.
 */
static void uncovered_mapping(bool copy)
{
	static const char *const env_copy[] = { H_STAGING_COPY, NULL };
	struct h_vm *vm = h_vm_start_filled("--size 32M", copy ? env_copy : NULL);
	struct h_ctl c;
	char mypid[32];
	void *map;
	int fd;

	fd = open_guest_memfd(vm->pid);
	cr_assert_geq(fd, 0, "no /memfd:toyvmm-guest among /proc/%d/fd", vm->pid);
	map = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert(map != MAP_FAILED);
	close(fd);

	h_ctl_pid(&c, vm->pid, "enable", NULL);
	snprintf(mypid, sizeof(mypid), "process %d ", (int)getpid());
	cr_assert_eq(c.rc, 1, "enable with an uncovered mapping: exit %d\n%s%s", c.rc, c.out, c.err);
	cr_assert(strstr(c.err, mypid), "message should name pid %d: %s", (int)getpid(), c.err);
	free(h_wait_state(vm->pid, "Ready"));
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), 0);
	cr_assert_eq(h_metric(vm->pid, "staged_in_place_pages"), 0);
	h_ok(vm->p, "verify");
	/* Writable as before: nothing was left write-protected. */
	h_ok_delta(vm->p, "faults", 0, "fill");

	cr_assert(munmap(map, 1 << 20) == 0);
	h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages);
	h_out_verify_disable_verify(vm->p);
	h_vm_finish(vm);
}

Test(procs, uncovered_mapping_refuses_enable)
{
	uncovered_mapping(true);
}

Test(procs, uncovered_mapping_refuses_enable_in_place)
{
	uncovered_mapping(false);
}

/*
 * The same from a process of another uid (non-dumpable after setuid): its
 * /proc/<pid>/maps is readable only with CAP_SYS_PTRACE, which the helper
 * keeps for this when it runs as root.
 */
static void uncovered_mapping_of_another_uid(bool copy)
{
	static const char *const env_copy[] = { H_STAGING_COPY, NULL };
	struct h_vm *vm;
	struct h_ctl c;
	char who[32], ready = 0;
	int p[2], st, fd;
	pid_t child;

	if (geteuid() != 0)
		h_skip("needs root to run a process as another uid");
	vm = h_vm_start_filled("--size 32M", copy ? env_copy : NULL);
	fd = open_guest_memfd(vm->pid);
	cr_assert_geq(fd, 0, "no /memfd:toyvmm-guest among /proc/%d/fd", vm->pid);
	cr_assert_eq(pipe(p), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		void *map = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (map == MAP_FAILED || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(1);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* the uid change cleared it */
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fd);
	close(p[1]);
	cr_assert_eq(read(p[0], &ready, 1), 1, "the child could not map and change uid");
	close(p[0]);

	h_ctl_pid(&c, vm->pid, "enable", NULL);
	snprintf(who, sizeof(who), "process %d ", (int)child);
	cr_assert_eq(c.rc, 1, "enable with another uid's uncovered mapping: exit %d\n%s%s", c.rc,
		     c.out, c.err);
	cr_assert(strstr(c.err, who), "message should name pid %d: %s", (int)child, c.err);
	free(h_wait_state(vm->pid, "Ready"));
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), 0);
	h_ok(vm->p, "verify");

	kill(child, SIGKILL);
	cr_assert_eq(waitpid(child, &st, 0), child);
	h_ctl_ok(vm->pid, "enable", NULL);
	h_out_verify_disable_verify(vm->p);
	h_vm_finish(vm);
}

Test(procs, uncovered_mapping_of_another_uid_refuses_enable)
{
	uncovered_mapping_of_another_uid(true);
}

Test(procs, uncovered_mapping_of_another_uid_refuses_enable_in_place)
{
	uncovered_mapping_of_another_uid(false);
}

/*
 * A child of the VMM that maps guest memory and has not joined the helper
 * (here: forked without the fork handlers, so it never will) is waited
 * for: gone within the wait, enable goes on; still there after it, enable
 * refuses, naming it as a child that has not joined, with nothing staged.
 * This is what a fork child frozen mid-join looks like to enable.
 */
static void unjoined_child(bool copy)
{
	static const char *const env_copy[] = { H_STAGING_COPY, NULL };
	struct h_vm *vm = h_vm_start_filled("--size 32M", copy ? env_copy : NULL);
	struct h_ctl c;

	h_ok(vm->p, "fork-unjoined 5000");
	h_ctl_pid(&c, vm->pid, "enable", NULL);
	cr_assert_eq(c.rc, 1, "enable beside a child that never joins: exit %d\n%s%s", c.rc,
		     c.out, c.err);
	cr_assert(strstr(c.err, "a child of the VMM") && strstr(c.err, "has not joined"),
		  "the refusal should say a child has not joined: %s", c.err);
	free(h_wait_state(vm->pid, "Ready"));
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), 0);
	cr_assert_eq(h_metric(vm->pid, "staged_in_place_pages"), 0);
	h_ok(vm->p, "fork-release");
	h_ok(vm->p, "verify");

	/* Gone before the wait ends: enable waits and succeeds. */
	h_ok(vm->p, "fork-unjoined 400");
	h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert_eq(h_metric(vm->pid, copy ? "staging_pages" : "staged_in_place_pages"),
		     vm->pages);
	h_ok(vm->p, "fork-release");
	h_out_verify_disable_verify(vm->p);
	h_vm_finish(vm);
}

Test(procs, a_child_not_joined_yet_is_waited_for)
{
	unjoined_child(true);
}

Test(procs, a_child_not_joined_yet_is_waited_for_in_place)
{
	unjoined_child(false);
}
