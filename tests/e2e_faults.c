/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Page faults resolved from staging, from the swap file and as zero
 * pages, ballooning, forked children and concurrent writers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(faults, .init = h_setup, .fini = h_teardown, .timeout = 180);

static void disable_and_verify(struct h_vm *vm)
{
	char *js;

	h_ctl_ok(vm->pid, "disable", "--wait", NULL);
	js = h_wait_state(vm->pid, "Ready");
	cr_assert_eq(h_json_u64(js, "staging_pages"), 0);
	cr_assert_eq(h_json_u64(js, "swap_pages"), 0);
	free(js);
	h_ok(vm->p, "verify");
}

Test(faults, from_staging_while_pending)
{
	struct h_vm *vm;
	uint64_t stg0, n = 1000;

	h_require_uffd();
	vm = h_vm_start("--size 32M", NULL, true);
	h_ok(vm->p, "fill");
	h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages);
	stg0 = h_metric(vm->pid, "copied_from_staging_pages");
	h_ok(vm->p, "touch 100 %llu", (unsigned long long)n);
	/* One copy per page: staging faults have no fault-around. */
	cr_assert_eq(h_metric(vm->pid, "copied_from_staging_pages") - stg0, n);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages - n);
	h_ok(vm->p, "verify");
	cr_assert_eq(h_metric(vm->pid, "copied_from_staging_pages") - stg0, vm->pages);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), 0);
	disable_and_verify(vm);
	h_vm_finish(vm);
}

Test(faults, from_swap_file_while_active)
{
	struct h_vm *vm;
	uint64_t file0, n = 2000;

	h_require_uffd();
	vm = h_vm_start("--size 32M", NULL, true);
	h_ok(vm->p, "fill");
	h_vm_swap_out(vm);
	file0 = h_metric(vm->pid, "copied_from_file_pages");
	h_ok(vm->p, "touch 3000 %llu", (unsigned long long)n);
	/* Fault-around may bring in a little more, never less. */
	cr_assert_geq(h_metric(vm->pid, "copied_from_file_pages") - file0, n);
	h_ok(vm->p, "verify");
	cr_assert_eq(h_metric(vm->pid, "copied_from_file_pages") - file0, vm->pages);
	cr_assert_eq(h_metric(vm->pid, "copied_from_staging_pages"), 0);
	disable_and_verify(vm);
	h_vm_finish(vm);
}

Test(faults, zero_pages_never_touched)
{
	struct h_vm *vm;
	uint64_t z0, half;
	char *js;

	h_require_uffd();
	vm = h_vm_start("--size 32M", NULL, true);
	half = vm->pages / 2;
	/* First half holds data, the second half was never touched. */
	h_ok(vm->p, "write 0 %llu", (unsigned long long)half);
	h_ctl_ok(vm->pid, "enable", NULL);
	js = h_status_fresh(vm->pid);
	cr_assert_eq(h_json_u64(js, "pages"), half, "enable moves only pages with data");
	cr_assert_eq(h_json_u64(js, "staging_pages"), half);
	free(js);
	h_ctl_ok(vm->pid, "out", "--wait", NULL);
	js = h_wait_state(vm->pid, "Active");
	cr_assert_eq(h_json_u64(js, "swap_pages"), half);
	free(js);
	z0 = h_metric(vm->pid, "zeroed_pages");
	h_ok(vm->p, "touch %llu %llu", (unsigned long long)half,
	     (unsigned long long)(vm->pages - half));
	cr_assert_eq(h_metric(vm->pid, "zeroed_pages") - z0, vm->pages - half);
	h_ok(vm->p, "verify");
	disable_and_verify(vm);
	h_vm_finish(vm);
}

Test(faults, balloon_while_active_reads_zero)
{
	struct h_vm *vm;
	uint64_t z0, file0, start = 1024, count = 2048;

	h_require_uffd();
	vm = h_vm_start("--size 32M", NULL, true);
	h_ok(vm->p, "fill");
	h_vm_swap_out(vm);
	h_ok(vm->p, "balloon %llu %llu", (unsigned long long)start, (unsigned long long)count);
	z0 = h_metric(vm->pid, "zeroed_pages");
	file0 = h_metric(vm->pid, "copied_from_file_pages");
	/* toyvmm's model now says zero for the ballooned pages. */
	h_ok(vm->p, "verify");
	cr_assert_eq(h_metric(vm->pid, "zeroed_pages") - z0, count);
	cr_assert_eq(h_metric(vm->pid, "copied_from_file_pages") - file0, vm->pages - count);
	disable_and_verify(vm);
	h_vm_finish(vm);
}

Test(faults, balloon_while_pending_reads_zero)
{
	struct h_vm *vm;
	uint64_t z0, start = 4000, count = 1500;
	char *js;

	h_require_uffd();
	vm = h_vm_start("--size 32M", NULL, true);
	h_ok(vm->p, "fill");
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ok(vm->p, "balloon %llu %llu", (unsigned long long)start, (unsigned long long)count);
	/* The ballooned pages leave staging; nothing of them may be written out. */
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages - count);
	h_ctl_ok(vm->pid, "out", "--wait", NULL);
	js = h_wait_state(vm->pid, "Active");
	cr_assert_eq(h_json_u64(js, "swap_pages"), vm->pages - count);
	free(js);
	z0 = h_metric(vm->pid, "zeroed_pages");
	h_ok(vm->p, "verify");
	cr_assert_eq(h_metric(vm->pid, "zeroed_pages") - z0, count);
	disable_and_verify(vm);
	h_vm_finish(vm);
}

Test(faults, forked_child_reads_and_writes_while_active)
{
	struct h_vm *vm;
	uint64_t file0;

	h_require_uffd();
	vm = h_vm_start("--size 32M", NULL, true);
	h_ok(vm->p, "fill");
	h_vm_swap_out(vm);
	file0 = h_metric(vm->pid, "copied_from_file_pages");
	/* The child faults through its own uffd: all its pages must come from the file. */
	h_ok(vm->p, "fork-verify");
	cr_assert_eq(h_metric(vm->pid, "copied_from_file_pages") - file0, vm->pages);
	/* Gone again before the next step: the helper drops the exited child. */
	h_wait_u64_eq(vm->pid, "processes", 1);

	/* Out again, then a child writes into swapped-out pages. */
	h_vm_swap_out(vm);
	h_ok(vm->p, "fork-write 500 3000");
	h_ok(vm->p, "verify");
	/* And a child reading what is left in staging. */
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ok(vm->p, "fork-verify");
	h_ok(vm->p, "fork-write 7000 1000");
	h_ok(vm->p, "verify");
	disable_and_verify(vm);
	h_vm_finish(vm);
}

/* "churn stop" must find no mismatch, and the churn must have run. */
static void churn_stop_ok(struct h_vm *vm)
{
	const char *ans = h_ok(vm->p, "churn stop");

	cr_assert_eq(h_answer_u64(ans, "mismatches"), 0, "%s", ans);
	cr_assert_gt(h_answer_u64(ans, "writes"), 0, "%s", ans);
}

Test(faults, concurrent_writers_during_enable_out_disable)
{
	struct h_vm *vm;

	h_require_uffd();
	vm = h_vm_start("--size 64M", NULL, true);
	h_ok(vm->p, "fill");
	h_ok(vm->p, "churn start");
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_ok(vm->pid, "out", "--wait", NULL);
	free(h_wait_state(vm->pid, "Active"));
	/* Incremental enable of what the writers brought back, still churning. */
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	h_ctl_ok(vm->pid, "out", "--wait", NULL);
	free(h_wait_state(vm->pid, "Active"));
	h_ctl_ok(vm->pid, "disable", "--wait", NULL);
	free(h_wait_state(vm->pid, "Ready"));
	churn_stop_ok(vm);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}
