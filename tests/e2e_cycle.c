/* SPDX-License-Identifier: BSD-3-Clause */
/* Whole swap cycles: enable, trim, out, fault back, disable; list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(cycle, .init = h_setup, .fini = h_teardown, .timeout = 180);

#define KB_PER_PAGE 4

/*
 * The whole cycle with its page accounting and the VMM's RssShmem. Staged
 * in place (the default), enable leaves guest memory where it is and out
 * frees it; with a staging memfd (copy) enable already frees it.
 */
static void full_cycle(bool copy)
{
	static const char *const env_copy[] = { H_STAGING_COPY, NULL };
	struct h_vm *vm = h_vm_start_filled("--size 64M", copy ? env_copy : NULL);
	uint64_t guest_kb, kb;
	const char *out;
	char *js;

	guest_kb = vm->pages * KB_PER_PAGE;
	kb = h_vm_rss_shmem_kb(vm);
	cr_assert_geq(kb, guest_kb, "filled guest should be resident: RssShmem %llu KiB",
		      (unsigned long long)kb);

	/* enable: every page staged. */
	js = h_status(vm->pid);
	h_assert_state(js, "Ready");
	free(js);
	out = h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert(strstr(out, copy ? "moved to staging" : "staged in place"), "enable printed: %s",
		  out);
	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Pending");
	cr_assert_gt(h_json_u64(js, "staging_pages"), 0);
	cr_assert_eq(h_json_u64(js, "staging_pages"), vm->pages);
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), copy ? 0 : vm->pages, "%s", js);
	cr_assert(strstr(js, copy ? "\"in_place\":false" : "\"in_place\":true"), "%s", js);
	cr_assert_eq(h_json_u64(js, "pages"), vm->pages, "state_transition.pages of enable");
	free(js);
	kb = h_vm_rss_shmem_kb(vm);
	if (copy)
		cr_assert_lt(kb, guest_kb / 20, "RssShmem after enable: %llu KiB of %llu",
			     (unsigned long long)kb, (unsigned long long)guest_kb);
	else
		cr_assert_geq(kb, guest_kb, "staged in place, the guest stays: RssShmem %llu KiB",
			      (unsigned long long)kb);

	/* trim: nothing to drop (no zero page, no old copy in the file). */
	out = h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	cr_assert(strstr(out, "state Pending"), "trim --wait printed: %s", out);
	js = h_status_fresh(vm->pid);
	cr_assert_eq(h_json_u64(js, "trimmed_zero_pages"), 0);
	cr_assert_eq(h_json_u64(js, "trimmed_clean_pages"), 0);
	cr_assert_eq(h_json_u64(js, "staging_pages"), vm->pages);
	free(js);

	/* out: everything in the file, staging empty, RSS small. */
	out = h_ctl_ok(vm->pid, "out", "--wait", NULL);
	cr_assert(strstr(out, "state Active"), "out --wait printed: %s", out);
	js = h_wait_state(vm->pid, "Active");
	cr_assert_gt(h_json_u64(js, "swap_pages"), 0);
	cr_assert_eq(h_json_u64(js, "swap_pages"), vm->pages);
	cr_assert_eq(h_json_u64(js, "staging_pages"), 0);
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), 0);
	cr_assert_geq(h_json_u64(js, "swap_file_bytes"), vm->pages * 4096);
	free(js);
	kb = h_vm_rss_shmem_kb(vm);
	cr_assert_lt(kb, guest_kb / 20, "RssShmem after out: %llu KiB of %llu",
		     (unsigned long long)kb, (unsigned long long)guest_kb);
	cr_assert_eq(h_dir_entries(h_env.swap), 0, "the swap file must have no name in %s",
		     h_env.swap);

	/* Faults from the file bring every byte back. */
	h_ok_delta(vm->p, "copied_from_file_pages", vm->pages, "verify");

	/* disable: Ready, nothing left anywhere. */
	out = h_ctl_ok(vm->pid, "disable", "--wait", NULL);
	cr_assert(strstr(out, "state Ready"), "disable --wait printed: %s", out);
	h_wait_ready_empty(vm->pid);
	h_ok(vm->p, "verify");
	cr_assert_geq(h_vm_rss_shmem_kb(vm), guest_kb);
	h_vm_finish(vm);
}

Test(cycle, full_cycle_fill_enable_trim_out_fault_disable)
{
	full_cycle(false);
}

Test(cycle, full_cycle_with_a_staging_copy)
{
	full_cycle(true);
}

/* A VMM with n regions, each managed, through a verified cycle. */
static void regions_cycle(const char *args, unsigned n)
{
	struct h_vm *vm = h_vm_start(args, NULL, true);

	cr_assert_eq(vm->regions, n);
	cr_assert_eq(h_metric(vm->pid, "regions"), n);
	h_vm_cycle_verified(vm);
	h_vm_finish(vm);
}

Test(cycle, two_regions_of_one_memfd_at_different_offsets)
{
	regions_cycle("--size 64M --regions 2", 2);
}

Test(cycle, three_regions_in_separate_memfds)
{
	regions_cycle("--size 96M --regions 3 --separate-memfds", 3);
}

/* The STATE column of pid's line in "vmswapctl list"; asserts the line. */
static void list_line(int pid, char *state, size_t n, char *mode, size_t m)
{
	struct h_ctl c;
	char pidstr[16], *line, *save = NULL;
	bool found = false;

	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	h_ctl_run(&c, "list", NULL);
	cr_assert_eq(c.rc, 0, "vmswapctl list exited %d: %s", c.rc, c.err);
	for (line = strtok_r(c.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char p[32], s[64], h[64], md[32];

		if (sscanf(line, "%31s %63s %63s %31s", p, s, h, md) == 4 && !strcmp(p, pidstr)) {
			snprintf(state, n, "%s", s);
			snprintf(mode, m, "%s", md);
			found = true;
		}
	}
	cr_assert(found, "pid %d not in vmswapctl list:\n%s", pid, c.out);
}

Test(cycle, list_shows_the_vmm_and_its_state)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	char state[64], mode[32];

	list_line(vm->pid, state, sizeof(state), mode, sizeof(mode));
	cr_assert_str_eq(state, "Ready");
	cr_assert_str_eq(mode, "managed");
	h_ctl_ok(vm->pid, "enable", NULL);
	list_line(vm->pid, state, sizeof(state), mode, sizeof(mode));
	cr_assert_str_eq(state, "Pending");
	h_ctl_ok(vm->pid, "out", "--wait", NULL);
	list_line(vm->pid, state, sizeof(state), mode, sizeof(mode));
	cr_assert_str_eq(state, "Active");
	h_ok(vm->p, "verify");
	h_ctl_ok(vm->pid, "disable", "--wait", NULL);
	list_line(vm->pid, state, sizeof(state), mode, sizeof(mode));
	cr_assert_str_eq(state, "Ready");
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}
