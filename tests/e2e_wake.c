/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Waking from the swap file with many vCPU threads at once: several
 * reads in flight (io_uring, or reader threads), read-ahead per stream, while the writers
 * churn, a balloon discards, a hotplug adds memory, disable or enable
 * runs, or the helper is killed. toyvmm checks every page it reads
 * against its model (ptouch, churn), and a full verify ends each test.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(wake, .init = h_setup, .fini = h_teardown, .timeout = 240);

/* ptouch answered without a mismatch. */
static void ptouch_ok(struct h_vm *vm)
{
	cr_assert_eq(h_recv(vm->p, H_CMD_TIMEOUT_S), 0, "no answer to ptouch");
	cr_assert(!strncmp(vm->p->last, "ok ptouch", 9), "ptouch: %s", vm->p->last);
	cr_assert(strstr(vm->p->last, "mismatches=0"), "ptouch: %s", vm->p->last);
}

Test(wake, threads_sweeping_their_shares_get_every_byte)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 4", NULL);

	for (int n = 1; n <= 8; n *= 2) {
		h_swap_out(vm->p);
		h_ok(vm->p, "ptouch %d seq", n);
		h_swap_out(vm->p);
		h_ok(vm->p, "ptouch %d rev", n);
		h_swap_out(vm->p);
		h_ok(vm->p, "ptouch %d rand", n);
	}
	/* Every page came back from the file at least once. */
	cr_assert_geq(h_metric(vm->pid, "copied_from_file_pages"), vm->pages);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/*
 * Reads go through io_uring by default, through reader threads where it
 * cannot be had (VMSWAP_FAULT_IO=threads stands in for such a host): the
 * same sweeps, racing a balloon, get every byte either way.
 */
static void sweep_with(const char *io, const char *want)
{
	const char *const env[] = { io, NULL };
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 4", io ? env : NULL);
	char *js = h_status_fresh(vm->pid);
	char got[32];

	h_json_str(js, "fault_io", got, sizeof(got));
	cr_assert_str_eq(got, want, "%s", js);
	free(js);
	for (int round = 0; round < 2; round++) {
		h_swap_out(vm->p);
		h_ok(vm->p, "balloon %llu %llu", (unsigned long long)(vm->pages / 3), 256ull);
		h_ok(vm->p, "ptouch 4 %s", round ? "rand" : "seq");
		h_ok(vm->p, "ptouch 2 rev");
	}
	cr_assert_geq(h_metric(vm->pid, "copied_from_file_pages"), vm->pages / 2);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(wake, reads_through_io_uring_by_default)
{
	sweep_with(NULL, "io_uring");
}

Test(wake, reads_through_threads_without_io_uring)
{
	sweep_with("VMSWAP_FAULT_IO=threads", "threads");
}

Test(wake, readers_race_writers_a_balloon_and_disable)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 4", NULL);

	for (int round = 0; round < 3; round++) {
		h_swap_out(vm->p);
		/* The writers fault pages back while a balloon discards others. */
		h_ok(vm->p, "churn start");
		h_nap_ms(100);
		h_churn_stop_ok(vm->p, "churn");
		h_ok(vm->p, "balloon %llu %llu", (unsigned long long)(vm->pages / 4 + round * 64),
		     512ull);
		cr_assert_eq(h_send(vm->p, "ptouch 4 %s", round == 1 ? "rand" : "seq"), 0);
		/* disable swaps in behind the faults, under them. */
		h_ctl_ok(vm->pid, "disable", NULL);
		ptouch_ok(vm);
		free(h_wait_state(vm->pid, "Ready"));
		h_ok(vm->p, "verify");
	}
	h_vm_finish(vm);
}

/*
 * Second views of guest memory are mapped, read, moved and unmapped
 * (REMAP and UNMAP events) while four threads fault from the file
 * through the first view, a balloon discards, and once disable runs
 * under them: every page read through either view is checked.
 */
Test(wake, readers_race_views_moved_and_unmapped)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 4", NULL);

	for (int round = 0; round < 3; round++) {
		h_swap_out(vm->p);
		h_ok(vm->p, "views start");
		h_ok(vm->p, "balloon %llu %llu", (unsigned long long)(vm->pages / 2 + round * 128),
		     256ull);
		if (round < 2) {
			h_ok(vm->p, "ptouch 4 %s", round ? "rand" : "seq");
		} else {
			cr_assert_eq(h_send(vm->p, "ptouch 4 rev"), 0);
			h_ctl_ok(vm->pid, "disable", NULL);
			ptouch_ok(vm);
			free(h_wait_state(vm->pid, "Ready"));
		}
		h_ok(vm->p, "views stop");
		cr_assert(strstr(vm->p->last, "mismatches=0"), "%s", vm->p->last);
		cr_assert(!strstr(vm->p->last, "rounds=0 "), "no view went round: %s",
			  vm->p->last);
		h_ok(vm->p, "verify");
	}
	h_vm_finish(vm);
}

/*
 * A private or executable view of guest memory could not be served (a
 * swapped-out page would read as a fresh zero page): refused with
 * EACCES, and nothing lost. A shared read-only one of any size is served.
 */
Test(wake, views_the_helper_cannot_serve_are_refused)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);

	h_swap_out(vm->p);
	h_ok(vm->p, "view-try private");
	cr_assert_str_eq(vm->p->last, "ok view-try EACCES");
	h_ok(vm->p, "view-try exec");
	cr_assert_str_eq(vm->p->last, "ok view-try EACCES");
	h_ok(vm->p, "view-try shared");
	cr_assert_str_eq(vm->p->last, "ok view-try mapped");
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(wake, readers_race_enable_and_hotplug)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 4", NULL);

	h_swap_out(vm->p);
	cr_assert_eq(h_send(vm->p, "ptouch 4 seq"), 0);
	/* enable while the sweep reads: what came back is staged again. */
	h_ctl_ok(vm->pid, "enable", NULL);
	ptouch_ok(vm);
	h_ctl_ok(vm->pid, "out", "--wait", NULL);
	free(h_wait_state(vm->pid, "Active"));
	h_ok(vm->p, "hotplug 8M");
	vm->pages += 2048;
	h_ok(vm->p, "ptouch 4 rand");
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(wake, helper_killed_with_reads_in_flight_loses_nothing)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 4", NULL);
	pid_t helper;

	h_swap_out(vm->p);
	helper = h_helper_pid(vm->pid);
	cr_assert_gt(helper, 0);
	cr_assert_eq(h_send(vm->p, "ptouch 4 seq"), 0);
	h_nap_ms(20);
	cr_assert_eq(kill(helper, SIGKILL), 0);
	vm->kills++;
	/* The keeper's new helper wakes the waiting threads and swaps in. */
	ptouch_ok(vm);
	h_wait_ready_empty(vm->pid);
	h_ok(vm->p, "verify");
	h_swap_out_verify_disable(vm->p);
	h_vm_finish(vm);
}

/* The same random quarter of the guest, touched after a wake, twice. */
static void touch_quarter(struct h_vm *vm)
{
	h_ok(vm->p, "ptouch 1 rand %llu 4242", (unsigned long long)(vm->pages / 4));
}

Test(wake, the_working_set_comes_back_by_itself)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 2", NULL);
	uint64_t before;
	char *js;

	h_swap_out(vm->p);
	touch_quarter(vm);
	cr_assert_geq(h_metric(vm->pid, "working_set_pages"), vm->pages / 4);
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	free(h_wait_state(vm->pid, "Pending"));
	h_out(vm->p, vm->pages);
	before = h_metric(vm->pid, "prefetched_pages");
	/* One touch wakes it; the rest of the set streams in behind. */
	h_ok(vm->p, "touch 0 1");
	js = NULL;
	for (double end = h_now() + H_STATE_TIMEOUT_S; h_now() < end; h_nap_ms(20)) {
		free(js);
		js = h_status_fresh(vm->pid);
		if (h_json_u64(js, "prefetched_pages") - before >= vm->pages / 4 - 1)
			break;
	}
	cr_assert_geq(h_json_u64(js, "prefetched_pages") - before, vm->pages / 4 - 1,
		      "the working set was not prefetched:\n%s", js);
	free(js);
	touch_quarter(vm);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/*
 * From the second round on, the pages ballooned in the round before read
 * as zero pages (verify put them back so): out drops them, and writes
 * every other page.
 */
Test(wake, prefetch_races_writes_a_balloon_and_enable)
{
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 2", NULL);

	for (int round = 0; round < 3; round++) {
		h_swap_out(vm->p);
		touch_quarter(vm);
		h_ctl_ok(vm->pid, "enable", NULL);
		h_out(vm->p, round ? vm->pages - 256 : vm->pages);
		/* Wake, and at once write, discard and enable under the prefetch. */
		h_ok(vm->p, "write 0 64");
		h_ok(vm->p, "balloon %llu 256", (unsigned long long)(vm->pages / 2));
		if (round == 1)
			h_ctl_ok(vm->pid, "enable", NULL);
		touch_quarter(vm);
		h_ok(vm->p, "verify");
		h_disable_verify_empty(vm->p);
	}
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

Test(wake, no_prefetch_when_off)
{
	const char *const env[] = { "VMSWAP_PREFETCH=off", NULL };
	struct h_vm *vm = h_vm_start("--size 32M", env, true);

	h_ok(vm->p, "fill");
	h_swap_out(vm->p);
	touch_quarter(vm);
	h_ctl_ok(vm->pid, "enable", NULL);
	h_out(vm->p, vm->pages);
	touch_quarter(vm);
	cr_assert_eq(h_metric(vm->pid, "prefetched_pages"), 0);
	cr_assert_eq(h_metric(vm->pid, "working_set_pages"), 0);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/* ---- VMSWAP_WAKE_SWAPIN=1: a wake starts a low-priority disable ---- */

/*
 * The guest's first fault from the file starts a swap-in behind the
 * faults; four threads keep faulting meanwhile. The VM ends Ready with
 * nothing in the file, every byte right.
 */
Test(wake, wake_swapin_converges_behind_the_faults)
{
	static const char *const env[] = { "VMSWAP_WAKE_SWAPIN=1", "VMSWAP_LOG=info", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 4", env);
	char *js, *log;

	h_swap_out(vm->p);
	h_ok(vm->p, "ptouch 4 rand 64");
	h_ok(vm->p, "ptouch 4 seq");
	js = h_wait_state(vm->pid, "Ready");
	cr_assert_eq(h_json_u64(js, "swap_pages"), 0, "%s", js);
	cr_assert(strstr(js, "\"wake_swapin\":true"), "%s", js);
	free(js);
	log = h_proc_stderr(vm->p);
	cr_assert_eq(h_count_lines(log, "the guest woke: swapping in behind its faults"), 1,
		     "one wake, one swap-in:\n%s", log);
	free(log);
	h_ok(vm->p, "verify");
	/* The next cycle works as before, and wakes the same way. */
	h_swap_out(vm->p);
	h_ok(vm->p, "touch 0 1");
	free(h_wait_state(vm->pid, "Ready"));
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/* Without it (the default) a wake swaps in only what the guest touches. */
Test(wake, no_wake_swapin_by_default)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	char *js;

	h_swap_out(vm->p);
	h_ok(vm->p, "ptouch 1 rand 64");
	h_nap_ms(1000); /* four of the main thread's ticks */
	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Active");
	cr_assert_gt(h_json_u64(js, "swap_pages"), vm->pages / 2, "%s", js);
	cr_assert(strstr(js, "\"wake_swapin\":false"), "%s", js);
	free(js);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/*
 * An explicit disable while the wake's swap-in yields to a busy guest
 * takes it to full speed; an enable aborts it as it aborts any swap-in.
 */
Test(wake, disable_or_enable_during_the_wake_swapin)
{
	static const char *const env[] = { "VMSWAP_WAKE_SWAPIN=1", "VMSWAP_TEST_OP_DELAY_MS=100",
					    NULL };
	struct h_vm *vm = h_vm_start_filled("--size 64M --threads 4", env);
	const char *out;

	h_swap_out(vm->p);
	h_ok(vm->p, "touch 0 1");
	free(h_wait_state(vm->pid, "SwapInInProgress"));
	out = h_ctl_ok(vm->pid, "disable", NULL);
	cr_assert(strstr(out, "now at full speed"), "%s", out);
	free(h_wait_state(vm->pid, "Ready"));
	h_ok(vm->p, "verify");

	h_swap_out(vm->p);
	h_ok(vm->p, "touch 0 1");
	free(h_wait_state(vm->pid, "SwapInInProgress"));
	h_ctl_ok(vm->pid, "enable", NULL);
	free(h_wait_state(vm->pid, "Pending"));
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}
