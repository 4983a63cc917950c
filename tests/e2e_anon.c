/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Anonymous guest memory, which the shim maps from a memfd of its own
 * (preload/README.md): toyvmm --anon maps it as Firecracker does
 * (MAP_NORESERVE), --anon=qemu as QEMU does (MAP_FIXED inside a PROT_NONE
 * reservation). Each scenario runs on both.
 */
#include <stdio.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(anon, .init = h_setup, .fini = h_teardown, .timeout = 180);

#define FIRECRACKER "--anon=firecracker"
#define QEMU "--anon=qemu"

/*
 * A verified cycle, then a balloon while Active: toyvmm's MADV_DONTNEED,
 * which the shim turns into a removal, drops the pages from the swap file,
 * and they read zero (the model says so) while the rest comes from the file.
 * The ballooned range straddles the middle of the guest, so with two
 * regions it spans both.
 */
static void cycle_and_balloon(const char *layout, unsigned regions)
{
	char args[128];
	struct h_vm *vm;
	uint64_t start, count = 2000;

	snprintf(args, sizeof(args), "--size 64M --regions %u %s", regions, layout);
	vm = h_vm_start(args, NULL, true);
	cr_assert_eq(h_metric(vm->pid, "regions"), regions);
	h_vm_cycle_verified(vm);
	h_swap_out(vm->p);
	start = vm->pages / 2 - count / 2;
	h_ok(vm->p, "balloon %llu %llu", (unsigned long long)start, (unsigned long long)count);
	cr_assert_eq(h_metric(vm->pid, "swap_pages"), vm->pages - count,
		     "the ballooned pages must leave the swap file");
	h_verify_sources(vm->p, "verify", count, vm->pages - count);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(anon, firecracker_full_cycle_and_balloon)
{
	cycle_and_balloon(FIRECRACKER, 1);
}

Test(anon, qemu_full_cycle_and_balloon)
{
	cycle_and_balloon(QEMU, 1);
}

Test(anon, firecracker_two_regions_full_cycle_and_balloon)
{
	cycle_and_balloon(FIRECRACKER, 2);
}

Test(anon, qemu_two_regions_full_cycle_and_balloon)
{
	cycle_and_balloon(QEMU, 2);
}

/* vCPUs write all along enable, out, a second incremental enable and disable. */
static void churn(const char *layout)
{
	char args[128];
	struct h_vm *vm;

	snprintf(args, sizeof(args), "--size 64M %s", layout);
	vm = h_vm_start_filled(args, NULL);
	h_vm_churn_through_swap(vm);
	h_vm_finish(vm);
}

Test(anon, firecracker_churn_during_enable_out_disable)
{
	churn(FIRECRACKER);
}

Test(anon, qemu_churn_during_enable_out_disable)
{
	churn(QEMU);
}

/* A region hotplugged while Active is anonymous too, and taken. */
static void hotplug(const char *layout)
{
	char args[128];
	struct h_vm *vm;

	snprintf(args, sizeof(args), "--size 32M %s", layout);
	vm = h_vm_start(args, NULL, true);
	h_vm_hotplug_while_active(vm, 16);
	h_vm_finish(vm);
}

Test(anon, firecracker_hotplug_while_active)
{
	hotplug(FIRECRACKER);
}

Test(anon, qemu_hotplug_while_active)
{
	hotplug(QEMU);
}

/*
 * Forked children: copy-on-write while Ready; while swap is enabled they
 * share converted memory and fault through their own uffd, from the file
 * (Active) or, with a staging memfd, from staging (Pending). Staged in
 * place, the pages are still in guest memory: the child reads them with
 * no fault and nothing leaves staging. A child's writes to private
 * memory never reach the parent, so toyvmm refuses fork-write in anon mode.
 */
static void fork_children(const char *layout, bool copy)
{
	static const char *const env_copy[] = { H_STAGING_COPY, NULL };
	char args[128];
	struct h_vm *vm;
	int r;

	snprintf(args, sizeof(args), "--size 32M %s", layout);
	vm = h_vm_start_filled(args, copy ? env_copy : NULL);
	h_ok(vm->p, "fork-verify");
	/* The child's private copy must be gone before enable. */
	h_wait_u64_eq(vm->pid, "processes", 1);
	h_swap_out(vm->p);
	h_ok_delta(vm->p, "copied_from_file_pages", vm->pages, "fork-verify");
	h_wait_u64_eq(vm->pid, "processes", 1);
	r = h_cmd(vm->p, H_CMD_TIMEOUT_S, "fork-write 0 100");
	cr_assert_eq(r, 0, "no answer to fork-write");
	cr_assert_str_eq(vm->p->last, "err fork-write needs shared guest memory");
	/* The child read every page back in: all of it moves to staging. */
	h_enable_staged(vm->p, vm->pages);
	h_ok_delta(vm->p, "copied_from_staging_pages", copy ? vm->pages : 0, "fork-verify");
	h_wait_u64_eq(vm->pid, "processes", 1);
	if (!copy) {
		cr_assert_eq(h_metric(vm->pid, "staged_in_place_pages"), vm->pages,
			     "a child's reads leave every page staged");
		/* And all of it is still there for out. */
		h_out(vm->p, vm->pages);
	}
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(anon, firecracker_fork_children_in_every_state)
{
	fork_children(FIRECRACKER, true);
}

Test(anon, qemu_fork_children_in_every_state)
{
	fork_children(QEMU, true);
}

Test(anon, firecracker_fork_children_in_every_state_in_place)
{
	fork_children(FIRECRACKER, false);
}

Test(anon, qemu_fork_children_in_every_state_in_place)
{
	fork_children(QEMU, false);
}
