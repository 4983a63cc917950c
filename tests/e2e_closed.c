/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fail closed: a process that maps guest memory but cannot join the
 * helper while pages are swapped out must never read or write that
 * memory, and a shim that gave up on the helper turns swapping off. In
 * every test the VMM's guest is checked byte for byte afterwards.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(closed, .init = h_setup, .fini = h_teardown, .timeout = 240);

/* The helper of @vm stopped (SIGSTOP), as a stalled or swapped-out helper would be. */
static pid_t stop_helper(struct h_vm *vm)
{
	pid_t hp = h_helper_pid(vm->pid);

	cr_assert_gt(hp, 0, "no helper pid");
	cr_assert_eq(kill(hp, SIGSTOP), 0);
	return hp;
}

static void cont_helper(pid_t hp)
{
	cr_assert_eq(kill(hp, SIGCONT), 0);
}

static bool stderr_has(struct h_vm *vm, const char *needle)
{
	char *err = h_proc_stderr(vm->p);
	bool has = strstr(err, needle) != NULL;

	free(err);
	return has;
}

/* The parent's guest is intact, it swaps out and back in, and is intact again. */
static void parent_intact(struct h_vm *vm)
{
	h_ok(vm->p, "verify");
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "verify");
}

Test(closed, helper_stalled_at_fork_the_child_waits_and_joins)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	pid_t hp;

	h_swap_out(vm->p);
	hp = stop_helper(vm);
	/* Longer than a shim request may take (10 s): the child keeps waiting. */
	cr_assert_eq(h_send(vm->p, "fork-verify"), 0);
	h_nap_ms(12000);
	cont_helper(hp);
	cr_assert_eq(h_recv(vm->p, H_CMD_TIMEOUT_S), 0);
	cr_assert_str_eq(vm->p->last, "ok fork-verify", "the child: %s", vm->p->last);
	h_wait_u64_eq(vm->pid, "processes", 1);
	parent_intact(vm);
	h_vm_finish(vm);
}

Test(closed, child_that_cannot_join_in_time_is_closed_off)
{
	const char *env[] = { "VMSWAP_JOIN_TIMEOUT=1", NULL };
	struct h_vm *vm = h_vm_start("--size 32M", env, true);
	pid_t hp;

	h_ok(vm->p, "fill");
	h_swap_out(vm->p);
	hp = stop_helper(vm);
	/* It cannot join: its first touch of guest memory kills it (SIGSEGV), nothing else. */
	h_cmd(vm->p, H_CMD_TIMEOUT_S, "fork-verify");
	cr_assert_str_eq(vm->p->last, "err fork-verify status=139", "the child: %s", vm->p->last);
	cr_assert(stderr_has(vm, "made inaccessible"), "the child did not say why");
	cont_helper(hp);
	/* Nothing came back behind the helper's back: every page still in the file. */
	h_wait_u64_eq(vm->pid, "processes", 1);
	cr_assert_eq(h_metric(vm->pid, "swap_pages"), vm->pages);
	parent_intact(vm);
	h_vm_finish(vm);
}

Test(closed, child_that_cannot_join_while_ready_keeps_its_memory)
{
	const char *env[] = { "VMSWAP_JOIN_TIMEOUT=1", NULL };
	struct h_vm *vm = h_vm_start("--size 32M", env, true);
	pid_t hp;

	h_ok(vm->p, "fill");
	/* Swapped out and back in once: the helper held pages of this memory. */
	h_swap_out_verify_disable(vm->p);
	hp = stop_helper(vm);
	/* The helper cannot say it is safe: closed off all the same. */
	h_cmd(vm->p, H_CMD_TIMEOUT_S, "fork-verify");
	cr_assert_str_eq(vm->p->last, "err fork-verify status=139", "the child: %s", vm->p->last);
	cont_helper(hp);
	h_wait_u64_eq(vm->pid, "processes", 1);
	/* With a helper that answers, a child joins as before. */
	h_ok(vm->p, "fork-verify");
	parent_intact(vm);
	h_vm_finish(vm);
}

Test(closed, full_process_table_refuses_the_child_before_it_runs)
{
	struct h_vm *vm = h_vm_start_filled("--size 16M", NULL);

	h_swap_out(vm->p);
	/* The VMM and 255 children fill the helper's table of 256 processes. */
	h_ok(vm->p, "fork-hold 255");
	h_wait_u64_eq(vm->pid, "processes", 256);
	h_cmd(vm->p, H_CMD_TIMEOUT_S, "fork-verify");
	cr_assert_str_eq(vm->p->last, "err fork-verify status=139", "the child: %s", vm->p->last);
	cr_assert(stderr_has(vm, "HELLO refused"), "the child did not say why");
	cr_assert_eq(h_metric(vm->pid, "swap_pages"), vm->pages, "a page came back unseen");
	h_ok(vm->p, "verify");
	h_ok(vm->p, "fork-release");
	h_wait_u64_eq(vm->pid, "processes", 1);
	/* Ready, with the table full: refused, but told it may keep its memory. */
	h_ctl_ok(vm->pid, "disable", "--wait", NULL);
	h_ok(vm->p, "fork-hold 255");
	h_wait_u64_eq(vm->pid, "processes", 256);
	h_ok(vm->p, "fork-verify");
	cr_assert(stderr_has(vm, "runs unmanaged (nothing is swapped out"),
		  "the child was not told it may keep its memory");
	h_ok(vm->p, "fork-release");
	h_wait_u64_eq(vm->pid, "processes", 1);
	parent_intact(vm);
	h_vm_finish(vm);
}

/* Connections from outside the VMM's tree never take a slot. */
Test(closed, idle_connections_from_outside_cannot_fill_the_table)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int socks[80], refused = 0;

	h_swap_out(vm->p);
	char path[400];

	snprintf(path, sizeof(path), "%s/%d/shim.sock", h_env.run, vm->pid);
	cr_assert_lt(strlen(path), sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (int i = 0; i < 80; i++) {
		socks[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		cr_assert_geq(socks[i], 0);
		cr_assert_eq(connect(socks[i], (struct sockaddr *)&sa, sizeof(sa)), 0,
			     "connect %d: %m", i);
	}
	/* Each is closed by the helper at once: reading gives EOF. */
	for (int i = 0; i < 80; i++) {
		char c;

		struct timeval tv = { .tv_sec = 30 };
		setsockopt(socks[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		refused += recv(socks[i], &c, 1, 0) == 0;
		close(socks[i]);
	}
	cr_assert_eq(refused, 80, "only %d of 80 connections were refused", refused);
	h_ok(vm->p, "fork-verify");
	parent_intact(vm);
	h_vm_finish(vm);
}

Test(closed, a_shim_that_gave_up_turns_swapping_off)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	char reason[256];
	pid_t hp;
	char *st;

	h_swap_out(vm->p);
	hp = stop_helper(vm);
	/* A hotplug whose request times out (10 s): the shim gives up on the helper. */
	h_ok(vm->p, "hotplug 16M");
	cr_assert(stderr_has(vm, "runs unmanaged from now on"), "the shim did not give up");
	cont_helper(hp);
	/* The helper learns it, and puts every page back. */
	st = h_wait_state(vm->pid, "Ready");
	cr_assert(strstr(st, "\"managed\":false"), "still managed: %s", st);
	h_json_str(st, "reason", reason, sizeof(reason));
	cr_assert(strstr(reason, "stopped waiting for the helper"), "reason: %s", reason);
	free(st);
	h_wait_ready_empty(vm->pid);
	{
		struct h_ctl c;

		h_ctl_pid(&c, vm->pid, "enable", NULL);
		cr_assert_eq(c.rc, 1, "enable was not refused: %s", c.out);
		cr_assert(strstr(c.err, "unmanaged") || strstr(c.out, "unmanaged"),
			  "no reason: %s %s", c.out, c.err);
	}
	/* A child still joins (and the memory is whole again anyway). */
	h_ok(vm->p, "fork-verify");
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}
