/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trim (zero pages, clean pages), with a staging memfd (page by page)
 * and staged in place (clean pages leave guest memory by whole 2 MiB
 * units, zero pages one by one), and incremental re-enable.
 *
 * Clean-page counts are exact because the touched range is the tail of
 * the guest: fault-around reads ahead only, and stops at the mapping's
 * end, so exactly the touched pages come back from the file.
 */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(trim, .init = h_setup, .fini = h_teardown, .timeout = 180);

/* From Pending: out, verify, disable (nothing left anywhere), verify. */
static void out_verify_disable_verify_empty(struct h_vm *vm)
{
	h_out(vm->p, H_ANY);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
}

/* A staging memfd: trim looks at each staged page alone. */
static const char *const env_copy[] = { H_STAGING_COPY, NULL };

Test(trim, zero_pages_are_dropped)
{
	struct h_vm *vm = h_vm_start("--size 32M", env_copy, true);
	uint64_t half;
	char *js;

	half = vm->pages / 2;
	/* Even pages explicitly zeroed (present in memory), odd pages data. */
	h_ok(vm->p, "fill-zero-half");
	h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages,
		     "zeroed pages are present, so enable stages them too");
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	js = h_wait_state(vm->pid, "Pending");
	cr_assert_eq(h_json_u64(js, "trimmed_zero_pages"), half);
	cr_assert_eq(h_json_u64(js, "trimmed_clean_pages"), 0);
	cr_assert_eq(h_json_u64(js, "staging_pages"), vm->pages - half);
	cr_assert_eq(h_json_u64(js, "pages"), half, "state_transition.pages of trim");
	free(js);
	h_out(vm->p, vm->pages - half);
	h_ok(vm->p, "verify");
	h_disable_verify(vm->p);
	h_vm_finish(vm);
}

/*
 * Staged in place, the zero pages are dropped where they are: punched
 * out of guest memory one by one, since every unit holds data pages too
 * and stays. RssShmem drops to the data half, which out then writes.
 */
Test(trim, zero_pages_are_dropped_in_place)
{
	struct h_vm *vm = h_vm_start("--size 32M", NULL, true);
	uint64_t half = vm->pages / 2, kb;
	char *js;

	h_ok(vm->p, "fill-zero-half");
	h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert_eq(h_metric(vm->pid, "staged_in_place_pages"), vm->pages,
		     "zeroed pages are present, so enable stages them too");
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	js = h_wait_state(vm->pid, "Pending");
	cr_assert_eq(h_json_u64(js, "trimmed_zero_pages"), half, "%s", js);
	cr_assert_eq(h_json_u64(js, "trimmed_clean_pages"), 0, "%s", js);
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), vm->pages - half, "%s", js);
	cr_assert_eq(h_json_u64(js, "pages"), half, "state_transition.pages of trim:\n%s", js);
	free(js);
	kb = h_vm_rss_shmem_kb(vm);
	cr_assert_lt(kb, (half + vm->pages / 20) * 4, "RssShmem after trim: %llu KiB",
		     (unsigned long long)kb);
	h_out(vm->p, vm->pages - half);
	h_verify_sources(vm->p, "verify", half, vm->pages - half);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/*
 * Pages faulted back after a wake and not written are clean: trim keeps
 * their copy in the file, with or without the working set (faulted back
 * in order, the set is already where out would write it). n pages at the
 * tail, two 2 MiB units, come back; the first w of them are written.
 * With a staging memfd each clean page leaves staging. Staged in place a
 * page leaves with its whole unit: the second unit, all clean, goes; the
 * first stays (its written pages hold data), its clean pages keep their
 * copy, which out does not write again.
 */
static void clean_pages_reused(const char *const env[], bool copy)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	uint64_t n = 1024, w = 300, tail, clean0, zero0, clean, written;
	char *js;

	tail = vm->pages - n;
	h_swap_out(vm->p);
	/* Back from the file: n pages, w of them then rewritten (dirty). */
	h_ok(vm->p, "touch %llu %llu", (unsigned long long)tail, (unsigned long long)n);
	h_ok(vm->p, "write %llu %llu", (unsigned long long)tail, (unsigned long long)w);
	clean0 = h_metric(vm->pid, "trimmed_clean_pages");
	zero0 = h_metric(vm->pid, "trimmed_zero_pages");

	/* Incremental: enable moves the touched pages. */
	h_enable_staged(vm->p, n);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	js = h_wait_state(vm->pid, "Pending");
	clean = copy ? n - w : n / 2;
	cr_assert_eq(h_json_u64(js, "trimmed_clean_pages") - clean0, clean,
		     "touched-but-unwritten pages are clean; written ones are not:\n%s", js);
	cr_assert_eq(h_json_u64(js, "redundant_pages"), h_json_u64(js, "trimmed_clean_pages"));
	cr_assert_eq(h_json_u64(js, "trimmed_zero_pages") - zero0, 0);
	cr_assert_eq(h_json_u64(js, "staging_pages"), n - clean, "%s", js);
	written = h_json_u64(js, "written_pages");
	free(js);
	h_out(vm->p, vm->pages);
	/* In place, out writes only the written pages again. (A staging copy's
	 * working-set pass and full pass may both write a page.) */
	if (!copy)
		cr_assert_eq(h_metric(vm->pid, "written_pages") - written, w);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(trim, clean_pages_reuse_the_swap_file_copy)
{
	const char *const env[] = { "VMSWAP_PREFETCH=off", H_STAGING_COPY, NULL };

	clean_pages_reused(env, true);
}

/* Faulted back in order, the working set is where it would be written: kept. */
Test(trim, a_working_set_in_order_keeps_its_copy)
{
	clean_pages_reused(env_copy, true);
}

Test(trim, clean_pages_reuse_the_swap_file_copy_in_place)
{
	const char *const env[] = { "VMSWAP_PREFETCH=off", NULL };

	clean_pages_reused(env, false);
}

Test(trim, a_working_set_in_order_keeps_its_copy_in_place)
{
	clean_pages_reused(NULL, false);
}

/*
 * Scattered (random pages of the guest), the working set is written
 * again, after the end of the file, together, with a staging copy and
 * staged in place alike: trim keeps no old copy of a scattered page of
 * the set, and out writes the set first.
 */
static void scattered_set(const char *const env[])
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	uint64_t set, clean;
	char *js;

	h_swap_out(vm->p);
	h_ok(vm->p, "ptouch 1 rand %llu 77", (unsigned long long)(vm->pages / 4));
	set = h_metric(vm->pid, "working_set_pages");
	cr_assert_geq(set, vm->pages / 4);
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	js = h_wait_state(vm->pid, "Pending");
	clean = h_json_u64(js, "trimmed_clean_pages");
	/* Only pages that happen to sit next to another of the set stay. */
	cr_assert_lt(clean, set / 2, "%llu of %llu scattered pages kept their copy",
		     (unsigned long long)clean, (unsigned long long)set);
	free(js);
	h_out(vm->p, vm->pages);
	js = h_status(vm->pid);
	cr_assert_gt(h_json_u64(js, "swap_file_bytes"), vm->pages * 4096,
		     "the set went to the end of the file:\n%s", js);
	free(js);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(trim, a_scattered_working_set_is_written_again_together)
{
	scattered_set(NULL);
}

Test(trim, a_scattered_working_set_is_written_again_together_with_a_staging_copy)
{
	scattered_set(env_copy);
}

/*
 * The tail of the guest faulted back after a wake: enable stages just
 * those pages and out writes just those, the first of them more than a
 * batch's scan (16 MiB) past the guest's start.
 */
static void reenable_incremental(const char *const env[], bool copy)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	uint64_t n = 1500, written;
	char *js;

	h_swap_out(vm->p);
	h_ok(vm->p, "touch %llu %llu", (unsigned long long)(vm->pages - n),
	     (unsigned long long)n);
	h_ctl_ok(vm->pid, "enable", NULL);
	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Pending");
	cr_assert_eq(h_json_u64(js, "pages"), n, "only the pages faulted back move");
	cr_assert_eq(h_json_u64(js, "staging_pages"), n);
	cr_assert_eq(h_json_u64(js, "swap_pages"), vm->pages - n);
	written = h_json_u64(js, "written_pages");
	free(js);
	h_out(vm->p, vm->pages);
	js = h_status(vm->pid);
	cr_assert_eq(h_json_u64(js, "staging_pages"), 0, "%s", js);
	cr_assert_eq(h_json_u64(js, "pages"), n, "out writes only the re-staged pages:\n%s", js);
	if (!copy)
		cr_assert_eq(h_json_u64(js, "written_pages") - written, n, "%s", js);
	free(js);
	h_ok(vm->p, "verify");
	h_disable_verify(vm->p);
	h_vm_finish(vm);
}

Test(trim, reenable_after_partial_fault_back_is_incremental)
{
	reenable_incremental(NULL, false);
}

Test(trim, reenable_after_partial_fault_back_is_incremental_with_a_staging_copy)
{
	reenable_incremental(env_copy, true);
}

/*
 * A second cycle after disable: pages that came back from the file in the
 * first cycle must not keep references into the (now truncated) file.
 * The first cycle swaps out only the second half, so the second cycle's
 * slot numbers collide with those stale references.
 */
Test(trim, second_cycle_after_disable_keeps_data)
{
	struct h_vm *vm = h_vm_start("--size 32M", NULL, true);
	uint64_t half = vm->pages / 2;

	h_ok(vm->p, "write %llu %llu", (unsigned long long)half, (unsigned long long)half);
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "fill");
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

Test(trim, trim_in_second_cycle_after_disable)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	char *js;

	h_swap_out_verify_disable(vm->p);
	/* The file was emptied by disable: nothing can be clean now. */
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	js = h_wait_state(vm->pid, "Pending");
	cr_assert_eq(h_json_u64(js, "trimmed_clean_pages"), 0);
	cr_assert_eq(h_json_u64(js, "staging_pages"), vm->pages);
	free(js);
	out_verify_disable_verify_empty(vm);
	h_vm_finish(vm);
}
