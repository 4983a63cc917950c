/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Commands refused in the wrong state, garbage on the FIFO, aborted
 * operations, and swap-file errors: failing writes, a full swap dir,
 * failing reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <vmswap/common.h>
#include <vmswap/ratelimit.h>

#include "harness.h"

TestSuite(errors, .init = h_setup, .fini = h_teardown, .timeout = 180);

struct snap {
	char state[32];
	uint64_t staging, swap;
};

static void snap_take(int pid, struct snap *s)
{
	char *js = h_status_fresh(pid);

	h_json_str(js, "state", s->state, sizeof(s->state));
	s->staging = h_json_u64(js, "staging_pages");
	s->swap = h_json_u64(js, "swap_pages");
	free(js);
}

/* vmswapctl <verb> must exit 1 naming the state, and change nothing. */
static void refused(struct h_vm *vm, const char *verb, const char *state)
{
	struct snap before, after;
	struct h_ctl c;

	snap_take(vm->pid, &before);
	cr_assert_str_eq(before.state, state);
	h_ctl_pid(&c, vm->pid, verb, "--wait", NULL);
	cr_assert_eq(c.rc, 1, "%s in %s: exit %d (want 1)\n%s%s", verb, state, c.rc, c.out, c.err);
	cr_assert(strstr(c.err, state), "%s in %s: message should name the state: %s", verb, state,
		  c.err);
	snap_take(vm->pid, &after);
	cr_assert_str_eq(after.state, before.state, "%s refused, yet the state changed", verb);
	cr_assert_eq(after.staging, before.staging, "%s refused, yet staging changed", verb);
	cr_assert_eq(after.swap, before.swap, "%s refused, yet the swap file changed", verb);
}

Test(errors, refused_in_ready)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);

	refused(vm, "out", "Ready");
	refused(vm, "trim", "Ready");
	refused(vm, "disable", "Ready");
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

Test(errors, refused_in_active)
{
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);

	h_swap_out(vm->p);
	refused(vm, "trim", "Active");
	refused(vm, "out", "Active");
	h_ok(vm->p, "verify");
	h_disable_verify(vm->p);
	h_vm_finish(vm);
}

/*
 * Did the refusal of id meet the first command of its batch still running
 * (its message names want)? False when that command had already finished:
 * id was then accepted, or refused for the state after it.
 */
static bool caught(int pid, const char *id, const char *want)
{
	char msg[512];
	bool ok = h_reply_wait(pid, id, msg, sizeof(msg));

	if (!ok && strstr(msg, want))
		return true;
	cr_assert(ok || strstr(msg, "not allowed in state"), "%s refused with '%s'; should say '%s'",
		  id, msg, want);
	return false;
}

/*
 * The commands of batch in one write: the helper reads them at once, so
 * the later ones meet the first still running, which takes a few hundred
 * ms on 128M. If it finished in between after all (a preempted helper),
 * the case was not caught: skip, never pass.
 */
static void refused_behind(int pid, const char *batch, const char *first,
			   const char *const ids[], const char *want)
{
	char msg[512];
	bool all = true;

	cr_assert(h_fifo_write(pid, batch) == 0);
	cr_assert(h_reply_wait(pid, first, msg, sizeof(msg)), "%s refused: %s", first, msg);
	for (int i = 0; ids[i]; i++)
		all &= caught(pid, ids[i], want);
	if (!all)
		h_skip("could not catch the helper in %s: it finished too soon", want);
}

Test(errors, trim_and_out_refused_while_trim_runs)
{
	/* Trim is to find every page clean: no working set written again. */
	const char *const env[] = { "VMSWAP_PREFETCH=off", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 128M", env);
	char *js;

	/* Every page gets a copy in the file, so that trim compares them all. */
	h_swap_out(vm->p);
	h_ok(vm->p, "verify");
	h_ctl_ok(vm->pid, "enable", NULL);
	refused_behind(vm->pid, "trim id=t1\ntrim id=t2\nout id=o1\n", "t1",
		       (const char *const[]){ "t2", "o1", NULL }, "TrimInProgress");
	js = h_wait_state(vm->pid, "Pending");
	cr_assert_eq(h_json_u64(js, "trimmed_clean_pages"), vm->pages, "trim ran exactly once");
	cr_assert_eq(h_json_u64(js, "staging_pages"), 0);
	free(js);
	h_out_verify_disable_verify(vm->p);
	h_vm_finish(vm);
}

Test(errors, out_and_trim_refused_while_out_runs)
{
	struct h_vm *vm = h_vm_start_filled("--size 128M", NULL);
	char *js;

	h_ctl_ok(vm->pid, "enable", NULL);
	refused_behind(vm->pid, "out id=o1\nout id=o2\ntrim id=t1\n", "o1",
		       (const char *const[]){ "o2", "t1", NULL }, "SwapOutInProgress");
	js = h_wait_state(vm->pid, "Active");
	cr_assert_eq(h_json_u64(js, "swap_pages"), vm->pages, "out ran exactly once");
	free(js);
	h_ok(vm->p, "verify");
	h_disable_verify(vm->p);
	h_vm_finish(vm);
}

Test(errors, commands_refused_while_enable_runs)
{
	struct h_vm *vm = h_vm_start_filled("--size 128M", NULL);

	refused_behind(vm->pid, "enable id=e1\nenable id=e2\n", "e1",
		       (const char *const[]){ "e2", NULL }, "enable already in progress");
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages, "enable ran exactly once");
	h_disable_verify(vm->p);
	refused_behind(vm->pid, "enable id=e3\ntrim id=t1\nout id=o1\ndisable id=d1\n", "e3",
		       (const char *const[]){ "t1", "o1", "d1", NULL }, "busy");
	free(h_wait_state(vm->pid, "Pending"));
	h_out_verify_disable_verify(vm->p);
	h_vm_finish(vm);
}

Test(errors, commands_refused_while_disable_runs)
{
	struct h_vm *vm = h_vm_start_filled("--size 128M", NULL);

	h_swap_out(vm->p);
	refused_behind(vm->pid, "disable id=d1\ndisable id=d2\n", "d1",
		       (const char *const[]){ "d2", NULL }, "disable already in progress");
	free(h_wait_state(vm->pid, "Ready"));
	h_ok(vm->p, "verify");
	h_swap_out(vm->p);
	refused_behind(vm->pid, "disable id=d3\ntrim id=t2\nout id=o2\n", "d3",
		       (const char *const[]){ "t2", "o2", NULL }, "SwapInInProgress");
	free(h_wait_state(vm->pid, "Ready"));
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/* Two commands in one write, "<first> id=<id>1\n<second> id=<id>2\n": the
 * second aborts the first, both are accepted, and it ends in state. */
static void second_aborts_first(int pid, const char *first, const char *second, char id,
				const char *state)
{
	char batch[128], id1[8], id2[8], msg[256];

	snprintf(id1, sizeof(id1), "%c1", id);
	snprintf(id2, sizeof(id2), "%c2", id);
	snprintf(batch, sizeof(batch), "%s id=%s\n%s id=%s\n", first, id1, second, id2);
	cr_assert(h_fifo_write(pid, batch) == 0);
	cr_assert(h_reply_wait(pid, id1, msg, sizeof(msg)), "%s", msg);
	cr_assert(h_reply_wait(pid, id2, msg, sizeof(msg)), "%s", msg);
	free(h_wait_state(pid, state));
}

Test(errors, aborted_operations_keep_data)
{
	struct h_vm *vm = h_vm_start_filled("--size 128M", NULL);

	h_ctl_ok(vm->pid, "enable", NULL);
	/* disable aborts a running out. */
	second_aborts_first(vm->pid, "out", "disable", 'a', "Ready");
	h_ok(vm->p, "verify");
	/* enable aborts a running swap-in. */
	h_swap_out(vm->p);
	second_aborts_first(vm->pid, "disable", "enable", 'b', "Pending");
	/* enable aborts a running trim. */
	second_aborts_first(vm->pid, "trim", "enable", 'c', "Pending");
	h_out_verify_disable_verify(vm->p);
	h_vm_finish(vm);
}

Test(errors, malformed_control_lines_change_nothing)
{
	static const char *const bad[] = {
		"bogus\n", "ENABLE\n", "enablex\n", " enable\n", "enable \n", "enable  id=x\n",
		"enable id=\n", "enable id=bad!\n", "enable id=a id=b\n",
		"enable foo\n", "enable id=abcdefghijklmnopqrstuvwxyz0123456\n", "\n",
		"\x01\xfe\xff enable\n",
	};
	struct snap before, after;
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	char longline[600];
	pid_t helper;

	helper = h_helper_pid(vm->pid);
	snap_take(vm->pid, &before);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(h_fifo_write(vm->pid, bad[i]) == 0);
	cr_assert(h_fifo_write_n(vm->pid, "enable\0\n", 8) == 0);
	cr_assert(h_fifo_write_n(vm->pid, "enable id=\0x\n", 13) == 0);
	/* Longer than VMSWAP_CMD_MAX, starting like a valid command. */
	memset(longline, 'e', sizeof(longline));
	memcpy(longline, "enable id=", 10);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	cr_assert(h_fifo_write(vm->pid, longline) == 0);
	/* A good line right behind garbage in the same write still counts. */
	cr_assert(h_fifo_reply(vm->pid, "garbage here\nstatus id=after", "after", NULL, 0));

	cr_assert(h_alive(helper), "helper died on malformed input");
	snap_take(vm->pid, &after);
	cr_assert_str_eq(after.state, "Ready");
	cr_assert_eq(after.staging, before.staging);
	cr_assert_eq(after.swap, before.swap);
	h_ctl_ok(vm->pid, "status", NULL);
	/* Still fully working. */
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/* All of @data into the control FIFO of @pid, waiting whenever it is full. */
static void fifo_write_all(int pid, const char *data, size_t len)
{
	char path[512];
	size_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%d/%s", h_env.run, pid, VMSWAP_CONTROL_NAME);
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	while (off < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t n = write(fd, data + off, len - off);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		cr_assert(n < 0 && (errno == EAGAIN || errno == EINTR), "write %s: %s", path,
			  strerror(errno));
		cr_assert(poll(&pfd, 1, (int)(H_CMD_TIMEOUT_S * 1000)) >= 0 || errno == EINTR);
		cr_assert(!(pfd.revents & (POLLERR | POLLHUP)), "the helper closed its FIFO");
	}
	close(fd);
}

/* Sum of N over the helper's "N similar messages suppressed" lines. */
static uint64_t suppressed_sum(const char *log)
{
	const char *p = log;
	uint64_t sum = 0;

	while ((p = strstr(p, " similar messages suppressed"))) {
		const char *q = p;

		while (q > log && q[-1] >= '0' && q[-1] <= '9')
			q--;
		sum += strtoull(q, NULL, 10);
		p++;
	}
	return sum;
}

/*
 * 200k bad lines on the FIFO: the helper's warnings about them are rate
 * limited (it shares the VMM's stderr), the number it dropped is reported
 * once it logs that warning again, it still answers, and the VMM's data
 * is intact.
 */
Test(errors, control_flood_warnings_are_rate_limited)
{
	enum { LINES = 200000 };
	static const char bad_line[] = "bogus\n";
	struct h_vm *vm = h_vm_start_filled("--size 32M", NULL);
	size_t one = sizeof(bad_line) - 1;
	char *flood = malloc(LINES * one), *log = NULL;
	unsigned extra = 0;
	uint64_t shown, dropped;
	double t0, elapsed;
	pid_t helper = h_helper_pid(vm->pid);

	cr_assert(flood);
	for (size_t i = 0; i < LINES; i++)
		memcpy(flood + i * one, bad_line, one);
	t0 = h_now();
	fifo_write_all(vm->pid, flood, LINES * one);
	free(flood);
	/* Lines are handled in order: this reply comes after every bad one. */
	cr_assert(h_fifo_reply(vm->pid, "status id=flooded", "flooded", NULL, 0));
	cr_assert(h_alive(helper), "helper died under the flood");
	log = h_proc_stderr(vm->p);
	cr_assert_lt(h_count_lines(log, "control: bad command"), 1000,
		     "the flood's warnings were not limited:\n%.2000s", log);
	/* One more bad line, until the budget allows it: then the count shows. */
	for (;;) {
		char id[32], line[48];

		snprintf(id, sizeof(id), "more%u", extra);
		snprintf(line, sizeof(line), "bogus\nstatus id=%s", id);
		cr_assert(h_fifo_reply(vm->pid, line, id, NULL, 0));
		extra++;
		free(log);
		log = h_proc_stderr(vm->p);
		if (strstr(log, "similar messages suppressed"))
			break;
		cr_assert(h_now() - t0 < H_STATE_TIMEOUT_S + 60,
			  "no 'similar messages suppressed' line after %u more bad lines:\n%.2000s",
			  extra, log);
		h_nap_ms(50);
	}
	elapsed = h_now() - t0;
	shown = (uint64_t)h_count_lines(log, "control: bad command");
	dropped = suppressed_sum(log);
	cr_assert_eq(h_count_lines(log, "similar messages suppressed"), 1, "%.3000s", log);
	cr_assert_eq(shown + dropped, LINES + extra,
		     "%llu bad lines shown + %llu suppressed, want %u:\n%.3000s",
		     (unsigned long long)shown, (unsigned long long)dropped, LINES + extra, log);
	/* A burst, then a few lines a second while the flood lasted. */
	cr_assert_leq(shown, VMSWAP_RL_BURST + (uint64_t)(elapsed * 1000 / VMSWAP_RL_INTERVAL_MS) + 1,
		      "%llu warnings shown in %.1f s", (unsigned long long)shown, elapsed);
	cr_assert_lt(shown, 1000, "%llu warnings shown", (unsigned long long)shown);
	free(log);

	h_ctl_ok(vm->pid, "status", NULL);
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/* Write errors on the swap file (test hook in helper/sys/swapfile.c). */
Test(errors, failed_out_keeps_data_and_recovers)
{
	static const char *const env[] = { "VMSWAP_TEST_FAIL_WRITE_AFTER=2", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	struct h_ctl c;
	char err[256];
	char *js;

	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_pid(&c, vm->pid, "out", "--wait", NULL);
	cr_assert_eq(c.rc, 5, "out with failing writes: exit %d (want 5)\n%s%s", c.rc, c.out, c.err);
	js = h_wait_state(vm->pid, "Failed");
	h_json_str(js, "last_error", err, sizeof(err));
	cr_assert(err[0], "Failed without last_error:\n%s", js);
	cr_assert(strstr(c.err, err), "vmswapctl should print the error '%s': %s", err, c.err);
	cr_assert_eq(h_json_u64(js, "staging_pages") + h_json_u64(js, "swap_pages"), vm->pages,
		     "every page is in staging or in the file");
	free(js);
	/* Nothing lost: faults are still served from both. */
	h_ok(vm->p, "touch 0 4000");
	/* enable recovers from Failed. */
	h_ctl_ok(vm->pid, "enable", NULL);
	free(h_wait_state(vm->pid, "Pending"));
	h_ok(vm->p, "verify");
	/* And disable does too (everything is resident again: stage it all). */
	h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages);
	h_ctl_pid(&c, vm->pid, "out", "--wait", NULL);
	cr_assert_eq(c.rc, 5, "second out: exit %d\n%s%s", c.rc, c.out, c.err);
	free(h_wait_state(vm->pid, "Failed"));
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

/*
 * out cannot create the swap file in @dir: refused with the reason, which
 * status shows in last_error; the state stays Pending, and disable
 * brings every page back.
 */
static void out_refused_in(const char *dir, const char *why)
{
	char env0[400], err[256];
	const char *const env[] = { env0, NULL };
	struct h_vm *vm;
	struct h_ctl c;
	char *js;

	snprintf(env0, sizeof(env0), "VMSWAP_SWAP_DIR=%s", dir);
	vm = h_vm_start_filled("--size 32M", env);
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_pid(&c, vm->pid, "out", "--wait", NULL);
	cr_assert_eq(c.rc, 1, "out into %s: exit %d (want 1)\n%s%s", dir, c.rc, c.out, c.err);
	cr_assert(strstr(c.err, "cannot create the swap file") && strstr(c.err, why),
		  "message should say why (%s): %s", why, c.err);
	js = h_wait_state(vm->pid, "Pending");
	h_json_str(js, "last_error", err, sizeof(err));
	cr_assert(strstr(err, "cannot create the swap file") && strstr(err, dir) && strstr(err, why),
		  "last_error should say why out was refused:\n%s", js);
	cr_assert_eq(h_json_u64(js, "staging_pages"), vm->pages, "%s", js);
	cr_assert_eq(h_json_u64(js, "swap_pages"), 0, "%s", js);
	free(js);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(errors, out_refused_without_a_swap_dir)
{
	char dir[400];

	snprintf(dir, sizeof(dir), "%s/missing", h_env.dir);
	out_refused_in(dir, "No such file or directory");
}

/* The helper keeps no CAP_DAC_OVERRIDE: a read-only dir stops root too. */
Test(errors, out_refused_in_a_read_only_swap_dir)
{
	char dir[400];

	snprintf(dir, sizeof(dir), "%s/readonly", h_env.dir);
	cr_assert(mkdir(dir, 0500) == 0, "mkdir %s: %s", dir, strerror(errno));
	out_refused_in(dir, "Permission denied");
}

/* ---- a full swap dir: a small tmpfs of the test's own (harness_swapdir.c) ---- */

/*
 * out of a 64 MiB guest, staged in a staging memfd, into a 16 MiB swap
 * dir: ENOSPC. out fails, the state is Failed and says why; the VMM runs
 * on, every page is served from staging or from the file, disable brings
 * them all back, and with room in the dir the next out works. (Staged in
 * place: inplace/out_fails_half_way_with_enospc.)
 */
Test(errors, full_swap_dir_fails_out_and_keeps_data, .fini = h_small_swap_dir_unmount)
{
	char env0[400];
	const char *const env[] = { env0, H_STAGING_COPY, NULL };
	uint64_t staging, swap, stg0, file0;
	struct h_vm *vm;
	char *js;

	snprintf(env0, sizeof(env0), "VMSWAP_SWAP_DIR=%s", h_small_swap_dir("16m"));
	vm = h_vm_start_filled("--size 64M", env);
	h_ctl_ok(vm->pid, "enable", NULL);
	js = h_out_into_full_dir(vm, &staging, &swap);
	stg0 = h_json_u64(js, "copied_from_staging_pages");
	file0 = h_json_u64(js, "copied_from_file_pages");
	free(js);

	/* The VMM runs on: every page faults back, from where it was. */
	h_ok(vm->p, "verify");
	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Failed");
	cr_assert_eq(h_json_u64(js, "copied_from_staging_pages") - stg0, staging, "%s", js);
	cr_assert_eq(h_json_u64(js, "copied_from_file_pages") - file0, swap, "%s", js);
	free(js);
	/* disable recovers. */
	h_disable_verify_empty(vm->p);

	/* Room again (the failed out's file is emptied): the next out works. */
	h_small_swap_dir_resize("128m");
	h_swap_out(vm->p);
	cr_assert_eq(h_metric(vm->pid, "swap_pages"), vm->pages);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
	h_small_swap_dir_unmount();
}

/* ---- read errors (VMSWAP_TEST_FAIL_READS=AFTER:COUNT, helper/sys/swapfile.c) ---- */

static void assert_read_error(const char *js)
{
	char err[256];

	h_json_str(js, "last_error", err, sizeof(err));
	cr_assert(strstr(err, "reading swap file slot") && strstr(err, "Input/output error"),
		  "last_error should name the failed read:\n%s", js);
}

/*
 * The first reads of the file fail. The faulting threads wait and are
 * retried until reads work again: every page comes back from the file,
 * exactly once and right, the state stays Active, and the error is
 * reported (logged once, not per retry).
 */
Test(errors, failed_reads_are_retried_by_faults)
{
	static const char *const env[] = { "VMSWAP_TEST_FAIL_READS=0:6", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	char *js, *log;

	h_swap_out(vm->p);
	cr_assert_eq(h_metric(vm->pid, "swap_read_errors"), 0);
	h_verify_sources(vm->p, "verify", 0, vm->pages);
	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Active");
	cr_assert_eq(h_json_u64(js, "swap_read_errors"), 6, "%s", js);
	cr_assert_eq(h_json_u64(js, "swap_pages"), 0, "%s", js);
	assert_read_error(js);
	free(js);
	h_disable_verify_empty(vm->p);
	log = h_proc_stderr(vm->p);
	cr_assert_eq(h_count_lines(log, "reading swap file slot"), 1,
		     "one report for the streak of failed reads:\n%s", log);
	cr_assert_eq(h_count_lines(log, "reads work again after 6 failed reads"), 1, "%s", log);
	free(log);
	h_vm_finish(vm);
}

/*
 * disable meets a read error: it fails, state Failed with the error; the
 * pages it could not read stay in the file and are still served; a
 * second disable brings everything back.
 */
Test(errors, failed_read_fails_disable_and_recovers)
{
	static const char *const env[] = { "VMSWAP_TEST_FAIL_READS=0:1", NULL };
	struct h_vm *vm = h_vm_start_filled("--size 32M", env);
	struct h_ctl c;
	char err[256];
	char *js;

	h_swap_out(vm->p);
	h_ctl_pid(&c, vm->pid, "disable", "--wait", NULL);
	cr_assert_eq(c.rc, 5, "disable with a failing read: exit %d (want 5)\n%s%s", c.rc, c.out,
		     c.err);
	js = h_wait_state(vm->pid, "Failed");
	assert_read_error(js);
	h_json_str(js, "last_error", err, sizeof(err));
	cr_assert(strstr(c.err, err), "vmswapctl should print the error '%s': %s", err, c.err);
	cr_assert_gt(h_json_u64(js, "swap_pages"), 0, "the unread pages stay in the file:\n%s", js);
	cr_assert_eq(h_json_u64(js, "swap_read_errors"), 1, "%s", js);
	free(js);
	/* The VMM runs on, and what is left faults in from the file. */
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}
