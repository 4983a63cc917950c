/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Staging in place, the default: enable write-protects the guest's pages
 * and leaves them where they are; a guest write unstages its page; trim
 * and out free guest memory one 2 MiB unit at a time, once the swap file
 * holds the unit's bytes (or they are zero). Each test ends with toyvmm's
 * verify, which checks every byte against its model (per-page patterns).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(inplace, .init = h_setup, .fini = h_teardown, .timeout = 300);

#define UNIT 512ull /* pages in a 2 MiB unit */
#define KB_PER_PAGE 4
/* 64 MiB: 32 units, about 2 s per operation (and the in-place enable's one sleep). */
#define SLOW "VMSWAP_TEST_OP_DELAY_MS=60"

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* enable, staged in place: the reply, the record and n pages staged. */
static void enable_in_place(struct h_vm *vm, uint64_t n)
{
	const char *out = h_ctl_ok(vm->pid, "enable", NULL);
	char want[96], *js;

	snprintf(want, sizeof(want), "enabled: %llu pages staged in place", ull(n));
	cr_assert(strstr(out, want), "want '%s' in: %s", want, out);
	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Pending");
	cr_assert(strstr(js, "\"in_place\":true"), "%s", js);
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), n, "%s", js);
	cr_assert_eq(h_json_u64(js, "staging_pages"), n, "%s", js);
	cr_assert_eq(h_json_u64(js, "pages"), n, "state_transition.pages of enable:\n%s", js);
	free(js);
}

/* Pages written to the swap file since the helper started. */
static uint64_t written(struct h_vm *vm)
{
	return h_metric(vm->pid, "written_pages");
}

/* After out: nothing left staged anywhere. */
static void nothing_staged(struct h_vm *vm)
{
	char *js = h_status_fresh(vm->pid);

	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), 0, "%s", js);
	cr_assert_eq(h_json_u64(js, "staging_pages"), 0, "%s", js);
	free(js);
}

/* ---- writers through enable, trim and out, on every guest layout ---- */

struct layout {
	const char *args;
	const char *fill, *churn, *verify; /* toyvmm's commands for it */
	bool kvm;
};

static const struct layout memfd = { "--size 64M", "fill", "churn", "verify", false };
static const struct layout anon = { "--size 64M --anon", "fill", "churn", "verify", false };
static const struct layout qemu = { "--size 64M --anon=qemu", "fill", "churn", "verify", false };
static const struct layout kvm = { "--kvm --size 8M", "kvm-fill", "kvm-churn", "kvm-verify",
				   true };
static const struct layout kvm_anon = { "--kvm --size 8M --anon", "kvm-fill", "kvm-churn",
					"kvm-verify", true };

static struct h_vm *start(const struct layout *l)
{
	if (l->kvm && access("/dev/kvm", R_OK | W_OK))
		h_skip("no usable /dev/kvm: %s", strerror(errno));
	return h_vm_start(l->args, NULL, true);
}

/*
 * The vCPUs write all along enable (their writes unstage pages), trim,
 * out, a second enable of what they brought back, out and disable; then,
 * without writers, a whole cycle in which every page goes to the file
 * and comes back from it exactly once, read by the guest itself.
 */
static void writers_through(const struct layout *l)
{
	struct h_vm *vm = start(l);

	h_ok(vm->p, "%s", l->fill);
	h_ok(vm->p, "%s start", l->churn);
	cr_assert(strstr(h_ctl_ok(vm->pid, "enable", NULL), "staged in place"));
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	free(h_wait_state(vm->pid, "Pending"));
	h_out(vm->p, H_ANY);
	nothing_staged(vm);
	cr_assert(strstr(h_ctl_ok(vm->pid, "enable", NULL), "staged in place"));
	h_out(vm->p, H_ANY);
	h_disable(vm->p);
	h_churn_stop_ok(vm->p, l->churn);
	h_ok(vm->p, "verify");

	enable_in_place(vm, vm->pages);
	h_out(vm->p, vm->pages);
	nothing_staged(vm);
	h_verify_sources(vm->p, l->verify, 0, vm->pages);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(inplace, writers_through_enable_trim_out_memfd)
{
	writers_through(&memfd);
}

Test(inplace, writers_through_enable_trim_out_anon)
{
	writers_through(&anon);
}

Test(inplace, writers_through_enable_trim_out_qemu_anon)
{
	writers_through(&qemu);
}

Test(inplace, writers_through_enable_trim_out_kvm)
{
	writers_through(&kvm);
}

Test(inplace, writers_through_enable_trim_out_kvm_anon)
{
	writers_through(&kvm_anon);
}

/* ---- where guest memory is ---- */

/*
 * enable frees nothing: the VMM's RssShmem stays. out frees it: below 5%
 * of the guest, with exactly the pages written in the file. A quarter of
 * the guest was never written: nothing staged, zero pages when read.
 */
Test(inplace, guest_memory_stays_until_out_frees_it)
{
	struct h_vm *vm = h_vm_start("--size 64M", NULL, true);
	uint64_t data = vm->pages / 4 * 3, guest_kb = vm->pages * KB_PER_PAGE, kb;

	h_ok(vm->p, "write 0 %llu", ull(data));
	enable_in_place(vm, data);
	kb = h_vm_rss_shmem_kb(vm);
	cr_assert_geq(kb, data * KB_PER_PAGE, "staged in place, guest memory stays: %llu KiB",
		      ull(kb));
	cr_assert_eq(written(vm), 0);
	h_out(vm->p, data);
	cr_assert_eq(written(vm), data);
	nothing_staged(vm);
	kb = h_vm_rss_shmem_kb(vm);
	cr_assert_lt(kb, guest_kb / 20, "RssShmem after out: %llu KiB of %llu", ull(kb),
		     ull(guest_kb));
	h_verify_sources(vm->p, "verify", vm->pages - data, data);
	h_disable_verify_empty(vm->p);
	cr_assert_geq(h_vm_rss_shmem_kb(vm), guest_kb);
	h_vm_finish(vm);
}

/*
 * Reads are not seen: a page staged in place is read where it is, with
 * no fault, and stays staged. A guest that only reads after enable has
 * every data page written by out: here all 8192 pages of the 32 MiB
 * guest, 33554432 bytes (written_pages), the whole swap file.
 */
Test(inplace, a_guest_that_only_reads_has_everything_written)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	uint64_t faults;
	char *js;

	enable_in_place(vm, vm->pages);
	faults = h_metric(vm->pid, "faults");
	h_ok(vm->p, "verify");
	h_ok(vm->p, "ptouch 4 rand");
	h_ok(vm->p, "fork-verify");
	h_wait_u64_eq(vm->pid, "processes", 1);
	js = h_status_fresh(vm->pid);
	cr_assert_eq(h_json_u64(js, "faults"), faults, "reads are not seen:\n%s", js);
	cr_assert_eq(h_json_u64(js, "copied_from_staging_pages"), 0, "%s", js);
	cr_assert_eq(h_json_u64(js, "unstaged_pages"), 0, "%s", js);
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), vm->pages, "%s", js);
	free(js);
	h_out(vm->p, vm->pages);
	js = h_status(vm->pid);
	cr_assert_eq(h_json_u64(js, "pages"), vm->pages, "state_transition.pages of out:\n%s", js);
	cr_assert_eq(h_json_u64(js, "written_pages") * 4096, 33554432, "%s", js);
	cr_assert_eq(h_json_u64(js, "swap_file_bytes"), vm->pages * 4096, "%s", js);
	free(js);
	h_verify_sources(vm->p, "verify", 0, vm->pages);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/*
 * A guest write unstages its page (one write fault, unstaged_pages), and
 * out leaves that page's whole unit resident, unprotected, with the new
 * bytes; every other unit goes to the file. The written pages are the
 * first page of unit 1 and the last of unit 3.
 */
Test(inplace, a_guest_write_unstages_its_page_and_keeps_its_unit)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	uint64_t first = UNIT, last = 4 * UNIT - 1;

	enable_in_place(vm, vm->pages);
	h_ok_delta(vm->p, "unstaged_pages", 1, "write %llu 1", ull(first));
	h_ok_delta(vm->p, "unstaged_pages", 1, "write %llu 1", ull(last));
	/* Unstaged and unprotected: written again without a fault. */
	h_ok_delta(vm->p, "faults", 0, "write %llu 1", ull(first));
	cr_assert_eq(h_metric(vm->pid, "staged_in_place_pages"), vm->pages - 2);
	h_out(vm->p, vm->pages - 2 * UNIT);
	nothing_staged(vm);
	/* The two units stayed whole: read and written with no fault. */
	h_verify_sources(vm->p, "touch 512 512", 0, 0);
	h_verify_sources(vm->p, "touch 1536 512", 0, 0);
	h_ok_delta(vm->p, "faults", 0, "write %llu %llu", ull(first), ull(UNIT));
	h_ok_delta(vm->p, "faults", 0, "write %llu %llu", ull(3 * UNIT), ull(UNIT));
	/* Every other page comes back from the file, once. */
	h_verify_sources(vm->p, "verify", 0, vm->pages - 2 * UNIT);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/*
 * Writes racing the punch: out runs slowed a unit at a time while the
 * test writes a few pages of every unit, again and again, until out is
 * done; twice (the second enable stages what stayed). Each write lands
 * before its unit is read (the unit stays), between the read and the
 * punch (it stays too), or after (it faults back from the file): no byte
 * may be lost, and out must end Active with nothing left staged.
 */
static void write_every_unit_until_active(struct h_vm *vm)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;
	char state[64] = "";

	for (uint64_t k = 0;; k++) {
		char *js;

		for (uint64_t u = 0; u < vm->pages / UNIT; u++)
			h_ok(vm->p, "write %llu 2", ull(u * UNIT + (k * 37 + u * 11) % (UNIT - 2)));
		js = h_status(vm->pid);
		h_json_str(js, "state", state, sizeof(state));
		free(js);
		if (strcmp(state, "SwapOutInProgress"))
			break;
		cr_assert_lt(h_now(), deadline, "out still running after %g s", H_STATE_TIMEOUT_S);
	}
	cr_assert_str_eq(state, "Active");
}

Test(inplace, writes_racing_the_punch_of_their_unit)
{
	static const char *const env[] = { "VMSWAP_TEST_OP_DELAY_MS=50", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 64M", env);

	for (int round = 0; round < 2; round++) {
		cr_assert(strstr(h_ctl_ok(vm->pid, "enable", NULL), "staged in place"));
		h_ctl_ok(vm->pid, "out", NULL);
		write_every_unit_until_active(vm);
		nothing_staged(vm);
		h_ok(vm->p, "verify");
	}
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/* ---- out failing half-way ---- */

/*
 * A 64 MiB guest, out into a 16 MiB swap dir: ENOSPC half-way. State
 * Failed, saying why; the units whose bytes reached the file left guest
 * memory whole, the rest is still staged in place. The VMM runs on:
 * the staged pages are read where they are, the others fault back from
 * the file. disable brings all back; with room, the next out works.
 */
Test(inplace, out_fails_half_way_with_enospc, .fini = h_small_swap_dir_unmount)
{
	char env0[400];
	const char *const env[] = { env0, NULL };
	uint64_t staging, swap, file0, guest_kb, kb;
	struct h_vm *vm;
	char *js;

	snprintf(env0, sizeof(env0), "VMSWAP_SWAP_DIR=%s", h_small_swap_dir("16m"));
	vm = h_vm_start_filled("--size 64M", env);
	guest_kb = vm->pages * KB_PER_PAGE;
	enable_in_place(vm, vm->pages);
	js = h_out_into_full_dir(vm, &staging, &swap);
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), staging, "%s", js);
	cr_assert_eq(swap % UNIT, 0, "units leave whole:\n%s", js);
	file0 = h_json_u64(js, "copied_from_file_pages");
	free(js);
	kb = h_vm_rss_shmem_kb(vm);
	cr_assert(kb >= staging * KB_PER_PAGE && kb < guest_kb,
		  "RssShmem %llu KiB: the staged pages stay, the units in the file are gone",
		  ull(kb));

	h_ok_delta(vm->p, "copied_from_staging_pages", 0, "verify");
	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Failed");
	cr_assert_eq(h_json_u64(js, "copied_from_file_pages") - file0, swap, "%s", js);
	free(js);
	h_disable_verify_empty(vm->p);

	h_small_swap_dir_resize("128m");
	enable_in_place(vm, vm->pages);
	h_out(vm->p, vm->pages);
	cr_assert_lt(h_vm_rss_shmem_kb(vm), guest_kb / 20);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
	h_small_swap_dir_unmount();
}

/* ---- trim in place ---- */

/* Pages [0, n) read as zero pages held in guest memory (a balloon, then read back). */
static void zero_pages_held(struct h_vm *vm, uint64_t n)
{
	h_ok(vm->p, "balloon 0 %llu", ull(n));
	h_ok(vm->p, "touch 0 %llu", ull(n));
}

/*
 * Half the guest, whole units, is zero pages: trim frees those units
 * (trimmed_zero_pages) and RssShmem drops to the other half; out writes
 * only that half; the zero pages come back as zero pages.
 */
Test(inplace, trim_drops_units_of_zero_pages)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	uint64_t half = vm->pages / 2, kb;
	char *js;

	zero_pages_held(vm, half);
	enable_in_place(vm, vm->pages);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	js = h_wait_state(vm->pid, "Pending");
	cr_assert_eq(h_json_u64(js, "trimmed_zero_pages"), half, "%s", js);
	cr_assert_eq(h_json_u64(js, "trimmed_clean_pages"), 0, "%s", js);
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), half, "%s", js);
	cr_assert_eq(h_json_u64(js, "pages"), half, "state_transition.pages of trim:\n%s", js);
	free(js);
	kb = h_vm_rss_shmem_kb(vm);
	cr_assert_lt(kb, (half + vm->pages / 20) * KB_PER_PAGE, "RssShmem after trim: %llu KiB",
		     ull(kb));
	h_out(vm->p, half);
	h_verify_sources(vm->p, "verify", half, half);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/*
 * Without a trim, out drops the zero pages it finds (every other page
 * here) and writes only the data pages; the zero pages come back as
 * zero pages.
 */
Test(inplace, out_drops_zero_pages_without_a_trim)
{
	struct h_vm *vm = h_vm_start("--size 32M", NULL, true);
	uint64_t half = vm->pages / 2;
	char *js;

	h_ok(vm->p, "fill-zero-half");
	enable_in_place(vm, vm->pages);
	h_out(vm->p, vm->pages - half);
	js = h_status(vm->pid);
	cr_assert_eq(h_json_u64(js, "trimmed_zero_pages"), half, "%s", js);
	cr_assert_eq(h_json_u64(js, "written_pages"), vm->pages - half, "%s", js);
	cr_assert_eq(h_json_u64(js, "pages"), vm->pages - half, "state_transition.pages of out:\n%s",
		     js);
	free(js);
	nothing_staged(vm);
	cr_assert_lt(h_vm_rss_shmem_kb(vm), vm->pages * KB_PER_PAGE / 20);
	h_verify_sources(vm->p, "verify", half, vm->pages - half);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/*
 * A second cycle: after out, three units at the tail are read back from
 * the file (clean; fault-around stops at the mapping's end, so exactly
 * them) and the first of them is written. trim finds the two clean units
 * equal to their slots: they go back to the file without a write
 * (trimmed_clean_pages, redundant_pages); out writes only the written unit.
 */
Test(inplace, trim_returns_clean_units_to_the_file_without_a_write)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	uint64_t tail = vm->pages - 3 * UNIT, clean0, red0, zero0, written0;
	char *js;

	h_swap_out(vm->p);
	h_ok(vm->p, "touch %llu %llu", ull(tail), ull(3 * UNIT));
	h_ok(vm->p, "write %llu %llu", ull(tail), ull(UNIT));
	clean0 = h_metric(vm->pid, "trimmed_clean_pages");
	red0 = h_metric(vm->pid, "redundant_pages");
	zero0 = h_metric(vm->pid, "trimmed_zero_pages");
	written0 = written(vm);
	enable_in_place(vm, 3 * UNIT);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	js = h_wait_state(vm->pid, "Pending");
	cr_assert_eq(h_json_u64(js, "trimmed_clean_pages") - clean0, 2 * UNIT, "%s", js);
	cr_assert_eq(h_json_u64(js, "redundant_pages") - red0, 2 * UNIT, "%s", js);
	cr_assert_eq(h_json_u64(js, "trimmed_zero_pages") - zero0, 0, "%s", js);
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), UNIT, "%s", js);
	cr_assert_eq(h_json_u64(js, "swap_pages"), vm->pages - UNIT, "%s", js);
	cr_assert_eq(h_json_u64(js, "written_pages"), written0, "trim writes nothing:\n%s", js);
	free(js);
	h_out(vm->p, vm->pages);
	js = h_status(vm->pid);
	cr_assert_eq(h_json_u64(js, "pages"), UNIT, "state_transition.pages of out:\n%s", js);
	cr_assert_eq(h_json_u64(js, "written_pages") - written0, UNIT,
		     "out wrote only the written unit:\n%s", js);
	free(js);
	h_verify_sources(vm->p, "verify", 0, vm->pages);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/* ---- the helper killed (SIGKILL) in each step of the in-place path ---- */

/* After recovery: every byte right, every page writable, and a whole cycle works again. */
static void check_after(struct h_vm *vm)
{
	h_ok(vm->p, "verify");
	h_ok(vm->p, "fill");
	h_ok(vm->p, "verify");
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/* Killed while enable stages in place (before its freeze), the vCPUs writing. */
Test(inplace, killed_in_the_in_place_enable)
{
	static const char *const env[] = { SLOW, NULL };
	struct h_vm *vm = h_vm_start_filled("--size 64M", env);

	h_ok(vm->p, "churn start");
	cr_assert_eq(h_fifo_write(vm->pid, "enable id=crash\n"), 0);
	h_wait_op(vm, "Ready", "in-place", false);
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	h_churn_stop_ok(vm->p, "churn");
	check_after(vm);
}

/* Pending, every page staged in place and write-protected. */
Test(inplace, killed_in_pending)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M", NULL);

	enable_in_place(vm, vm->pages);
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	check_after(vm);
}

/* While trim frees units of zero pages (half the guest). */
Test(inplace, killed_in_trim)
{
	static const char *const env[] = { SLOW, NULL };
	struct h_vm *vm = h_vm_start_filled("--size 64M", env);

	zero_pages_held(vm, vm->pages / 2);
	enable_in_place(vm, vm->pages);
	h_ctl_ok(vm->pid, "trim", NULL);
	h_wait_op(vm, "TrimInProgress", NULL, true);
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	check_after(vm);
}

/* While out writes and frees units; one unit stays (written after enable). */
Test(inplace, killed_in_out)
{
	static const char *const env[] = { SLOW, NULL };
	struct h_vm *vm = h_vm_start_filled("--size 64M", env);

	enable_in_place(vm, vm->pages);
	h_ok(vm->p, "write %llu 1", ull(5 * UNIT + 7));
	h_ctl_ok(vm->pid, "out", NULL);
	h_wait_op(vm, "SwapOutInProgress", NULL, true);
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	check_after(vm);
}

/* Active: most pages in the file, a unit kept resident, some read back. */
Test(inplace, killed_in_active)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M", NULL);

	enable_in_place(vm, vm->pages);
	h_ok(vm->p, "write %llu 1", ull(5 * UNIT + 7));
	h_out(vm->p, vm->pages - UNIT);
	h_ok(vm->p, "touch 0 %llu", ull(UNIT));
	h_wait_recovered(vm, h_kill_helper(vm), 1);
	check_after(vm);
}
