/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pages held twice (README "Double copies"): after enable (and out), the
 * test writes some swapped-out pages straight into toyvmm's guest memfd,
 * the way an unsupported pwrite() would, through /proc/<pid>/map_files.
 * The helper must go to Failed naming them, keep both copies through a
 * plain disable, refuse enable, and let disable --keep=saved or
 * --keep=guest decide, which toyvmm's verify then shows.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(dual, .init = h_setup, .fini = h_teardown, .timeout = 180);

#define PAGE 4096
static const uint64_t written[] = { 5, 6, 7, 100 }; /* guest pages, one region at offset 0 */
#define NWRITTEN (sizeof(written) / sizeof(written[0]))

/* Write a pattern over guest pages @pgs of the memfd named @name, behind the helper. */
static void write_behind(struct h_vm *vm, const char *name)
{
	char path[128], line[512], want[96];
	unsigned long long a = 0, b = 0, off = 0;
	static char buf[PAGE];
	bool found = false;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/maps", vm->pid);
	snprintf(want, sizeof(want), "/memfd:%s ", name);
	f = fopen(path, "re");
	cr_assert(f, "cannot read %s", path);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, want) &&
			sscanf(line, "%llx-%llx %*s %llx", &a, &b, &off) == 3;
	fclose(f);
	cr_assert(found, "no mapping of memfd %s in %s", name, path);
	cr_assert_eq(off, 0, "the guest region starts the memfd");
	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", vm->pid, a, b);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && (errno == EPERM || errno == EACCES))
		h_skip("opening %s needs CAP_SYS_ADMIN: %s", path, strerror(errno));
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	memset(buf, 0xa5, sizeof(buf));
	for (unsigned i = 0; i < NWRITTEN; i++)
		cr_assert_eq(pwrite(fd, buf, PAGE, (off_t)(written[i] * PAGE)), PAGE);
	close(fd);
}

/* Status shows Failed, the count, and the pages named in last_error. */
static void assert_named(int pid)
{
	char *js = h_status_fresh(pid), err[512];

	h_assert_state(js, "Failed");
	cr_assert_eq(h_json_u64(js, "double_pages"), NWRITTEN, "%s", js);
	h_json_str(js, "last_error", err, sizeof(err));
	cr_assert(strstr(err, "holds 4 pages also saved (first at pages 0x5, 0x6...)"), "%s", err);
	cr_assert(strstr(err, "both copies kept"), "%s", err);
	free(js);
}

/* toyvmm sees the bytes written behind exactly on those pages. */
static void assert_verify_sees_them(struct h_vm *vm)
{
	cr_assert_eq(h_cmd(vm->p, H_CMD_TIMEOUT_S, "verify"), 0);
	cr_assert_str_eq(vm->p->last, "err verify mismatches=4 first=5");
}

Test(dual, written_behind_while_active_then_keep_saved)
{
	struct h_vm *vm = h_vm_start_filled("--size 16M", NULL);
	struct h_ctl c;
	char *js;

	h_swap_out(vm->p);
	write_behind(vm, "toyvmm-guest");
	assert_named(vm->pid);

	/* A plain disable brings every other page back and keeps both copies. */
	h_ctl_pid(&c, vm->pid, "disable", "--wait", NULL);
	cr_assert_eq(c.rc, 5, "disable must end in Failed: rc %d, out %s err %s", c.rc, c.out, c.err);
	cr_assert(strstr(c.err, "holds 4 pages also saved"), "%s", c.err);
	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Failed");
	cr_assert_eq(h_json_u64(js, "swap_pages"), NWRITTEN, "the saved copies stay:\n%s", js);
	cr_assert_eq(h_json_u64(js, "staging_pages"), 0);
	cr_assert_eq(h_json_u64(js, "double_pages"), NWRITTEN);
	free(js);
	assert_verify_sees_them(vm);

	/* enable would stage the guest's bytes over the saved ones: refused. */
	h_ctl_pid(&c, vm->pid, "enable", NULL);
	cr_assert_eq(c.rc, 1, "enable must be refused: rc %d, %s", c.rc, c.err);
	cr_assert(strstr(c.err, "enable refused"), "%s", c.err);

	/* --keep=saved: toyvmm's own data is back everywhere. */
	h_ctl_pid(&c, vm->pid, "disable", "--keep=saved", "--wait", NULL);
	cr_assert_eq(c.rc, 0, "rc %d, out %s err %s", c.rc, c.out, c.err);
	cr_assert(strstr(c.out, "state Ready"), "%s", c.out);
	h_wait_ready_empty(vm->pid);
	cr_assert_eq(h_metric(vm->pid, "double_pages"), 0);
	h_ok(vm->p, "verify");
	/* And the cycle works again. */
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/* Staged in a staging memfd: the guest memfd written behind holds a second copy. */
Test(dual, written_behind_while_pending_then_keep_guest)
{
	static const char *const env[] = { H_STAGING_COPY, NULL };
	struct h_vm *vm = h_vm_start_filled("--size 16M --anon", env);
	struct h_ctl c;

	h_ctl_ok(vm->pid, "enable", NULL);
	write_behind(vm, "vmswap-anon");
	/* out would make Active look fine: refused, the state is Failed. */
	h_ctl_pid(&c, vm->pid, "out", "--wait", NULL);
	cr_assert_eq(c.rc, 1, "rc %d, out %s err %s", c.rc, c.out, c.err);
	cr_assert(strstr(c.err, "not allowed in state Failed"), "%s", c.err);
	assert_named(vm->pid);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), vm->pages, "nothing dropped");

	/* --keep=guest: the bytes written behind stay, on exactly those pages. */
	h_ctl_pid(&c, vm->pid, "disable", "--keep=guest", "--wait", NULL);
	cr_assert_eq(c.rc, 0, "rc %d, out %s err %s", c.rc, c.out, c.err);
	h_wait_ready_empty(vm->pid);
	assert_verify_sees_them(vm);
	h_vm_finish(vm);
}

/*
 * Staged in place, the guest memfd holds the only copy of a staged page:
 * bytes written behind it replace that copy, nothing is held twice. out
 * saves them, and they come back as written (verify names those pages).
 */
Test(dual, written_behind_while_staged_in_place_is_the_only_copy)
{
	struct h_vm *vm = h_vm_start_filled("--size 16M --anon", NULL);
	char *js;

	h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert_eq(h_metric(vm->pid, "staged_in_place_pages"), vm->pages);
	write_behind(vm, "vmswap-anon");
	h_out(vm->p, vm->pages);
	js = h_status_fresh(vm->pid);
	cr_assert_eq(h_json_u64(js, "double_pages"), 0, "%s", js);
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), 0, "%s", js);
	free(js);
	assert_verify_sees_them(vm);
	h_disable(vm->p);
	h_wait_ready_empty(vm->pid);
	assert_verify_sees_them(vm);
	h_vm_finish(vm);
}
