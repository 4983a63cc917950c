/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Page faults resolved from staging, from the swap file and as zero
 * pages, ballooning, forked children and concurrent writers.
 */
#include <criterion/criterion.h>

#include "harness.h"

TestSuite(faults, .init = h_setup, .fini = h_teardown, .timeout = 180);

/* A staging memfd: staged pages are away from guest memory and fault back. */
static const char *const env_copy[] = { H_STAGING_COPY, NULL };

Test(faults, from_staging_while_pending)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", env_copy);
	uint64_t n = 1000;

	h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages);
	/* One copy per page: staging faults have no fault-around. */
	h_ok_delta(vm->p, "copied_from_staging_pages", n, "touch 100 %llu", (unsigned long long)n);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages - n);
	h_ok_delta(vm->p, "copied_from_staging_pages", vm->pages - n, "verify");
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), 0);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(faults, from_swap_file_while_active)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	uint64_t file0, n = 2000;

	h_swap_out(vm->p);
	file0 = h_metric(vm->pid, "copied_from_file_pages");
	h_ok(vm->p, "touch 3000 %llu", (unsigned long long)n);
	/* Fault-around may bring in a little more, never less. */
	cr_assert_geq(h_metric(vm->pid, "copied_from_file_pages") - file0, n);
	h_ok(vm->p, "verify");
	cr_assert_eq(h_metric(vm->pid, "copied_from_file_pages") - file0, vm->pages);
	cr_assert_eq(h_metric(vm->pid, "copied_from_staging_pages"), 0);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(faults, zero_pages_never_touched)
{
	struct h_vm *vm = h_vm_start("--size 32M", NULL, true);
	uint64_t half = vm->pages / 2;

	/* First half holds data, the second half was never touched. */
	h_ok(vm->p, "write 0 %llu", (unsigned long long)half);
	/* enable moves only pages with data. */
	h_enable_staged(vm->p, half);
	h_out(vm->p, half);
	h_ok_delta(vm->p, "zeroed_pages", vm->pages - half, "touch %llu %llu",
		   (unsigned long long)half, (unsigned long long)(vm->pages - half));
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(faults, balloon_while_active_reads_zero)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	uint64_t start = 1024, count = 2048;

	h_swap_out(vm->p);
	h_ok(vm->p, "balloon %llu %llu", (unsigned long long)start, (unsigned long long)count);
	/* toyvmm's model now says zero for the ballooned pages. */
	h_verify_sources(vm->p, "verify", count, vm->pages - count);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(faults, balloon_while_pending_reads_zero)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	uint64_t start = 4000, count = 1500;

	h_ctl_ok(vm->pid, "enable", NULL);
	h_ok(vm->p, "balloon %llu %llu", (unsigned long long)start, (unsigned long long)count);
	/* The ballooned pages leave staging; nothing of them may be written out. */
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages - count);
	h_out(vm->p, vm->pages - count);
	h_ok_delta(vm->p, "zeroed_pages", count, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(faults, forked_child_reads_and_writes_while_active)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);

	h_swap_out(vm->p);
	/* The child faults through its own uffd: all its pages must come from the file. */
	h_ok_delta(vm->p, "copied_from_file_pages", vm->pages, "fork-verify");
	/* Gone again before the next step: the helper drops the exited child. */
	h_wait_u64_eq(vm->pid, "processes", 1);

	/* Out again, then a child writes into swapped-out pages. */
	h_swap_out(vm->p);
	h_ok(vm->p, "fork-write 500 3000");
	h_ok(vm->p, "verify");
	/* And a child reading what is left in staging. */
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ok(vm->p, "fork-verify");
	h_ok(vm->p, "fork-write 7000 1000");
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(faults, concurrent_writers_during_enable_out_disable)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M", NULL);

	h_vm_churn_through_swap(vm);
	h_vm_finish(vm);
}

/* The last enable's record in status: tracked or not, pages copied again while frozen. */
static uint64_t last_enable(int pid, bool tracked)
{
	char *st = h_status_fresh(pid);
	uint64_t recopied = h_json_u64(st, "recopied_pages");

	cr_assert(strstr(st, tracked ? "\"tracked\":true" : "\"tracked\":false"), "%s", st);
	free(st);
	return recopied;
}

/* The copy to a staging memfd, made while the VMM runs (staged in place there is none). */
Test(faults, writes_during_the_copy_before_the_freeze_are_copied_again)
{
	struct h_vm *vm = h_vm_start_filled("--size 128M --threads 4", env_copy);

	h_ok(vm->p, "churn start");
	h_ctl_ok(vm->pid, "enable", NULL);
	/* The writers ran through the copy: their pages were caught and copied again. */
	cr_assert_gt(last_enable(vm->pid, true), 0);
	h_ctl_ok(vm->pid, "out", "--wait", NULL);
	h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert_gt(last_enable(vm->pid, true), 0);
	h_churn_stop_ok(vm->p, "churn");
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(faults, concurrent_writers_with_the_copy_while_frozen)
{
	static const char *const env[] = { "VMSWAP_PRECOPY=0", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 64M", env);

	h_vm_churn_through_swap(vm);
	cr_assert_eq(last_enable(vm->pid, false), 0);
	h_vm_finish(vm);
}
