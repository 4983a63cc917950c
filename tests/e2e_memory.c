/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * enable copying to a staging memfd (VMSWAP_STAGING=copy) in a memory
 * cgroup too small for guest + staging: refused before anything moves,
 * the VMM alive and its data intact; with room it goes through; with the
 * check off (VMSWAP_HEADROOM_CHECK=0) the OOM killer kills the VMM and
 * vmswapctl says so. Staged in place (the default) enable copies nothing
 * and goes through in the small cgroup. Each test makes a memory
 * cgroup of its own (v2: under /sys/fs/cgroup; v1: under the test's own
 * memory cgroup), starts toyvmm in it (so its helper, spawned from it,
 * is in it too) and removes it at the end. Needs root; each cgroup
 * version this machine lacks is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#define CG_ROOT "/sys/fs/cgroup"
#define CGROUP2_MAGIC 0x63677270
#define MIB (1ull << 20)
#define GUEST_MIB 128

static struct {
	char path[256];       /* the test's cgroup as /proc/<pid>/cgroup names it */
	char dir[512];        /* the test's cgroup, "" when none was made */
	char home[512];       /* cgroup.procs of the cgroup the test process came from */
} cg;

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int read_str(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	size_t len;

	if (!f)
		return -errno;
	len = fread(buf, 1, n - 1, f);
	buf[len] = '\0';
	fclose(f);
	return 0;
}

/* Our own cgroup path in hierarchy @version (v1: the memory controller's). */
static bool own_path(int version, char *out, size_t n)
{
	char text[4096];

	if (read_str("/proc/self/cgroup", text, sizeof(text)))
		return false;
	for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
		char *c2 = strchr(l, ':') ? strchr(strchr(l, ':') + 1, ':') : NULL;

		if (!c2)
			continue;
		if ((version == 2 && !strncmp(l, "0::", 3)) ||
		    (version == 1 && strstr(l, ":memory:"))) {
			snprintf(out, n, "%s", !strcmp(c2 + 1, "/") ? "" : c2 + 1);
			return true;
		}
	}
	return false;
}

/*
 * Make this test's memory cgroup with @limit bytes, or skip saying why
 * this machine cannot. Nothing is made before every check passed.
 */
static void cg_make(int version, uint64_t limit)
{
	char own[200], file[600], buf[256], val[32];
	struct statfs sf;
	bool v2 = statfs(CG_ROOT, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_MAGIC;

	if (geteuid() != 0)
		h_skip("making a memory cgroup needs root");
	h_require_uffd();
	if (version == 2) {
		if (!v2)
			h_skip("no cgroup v2 hierarchy at " CG_ROOT " (this machine has cgroup v1)");
		if (read_str(CG_ROOT "/cgroup.subtree_control", buf, sizeof(buf)) || !strstr(buf, "memory"))
			write_str(CG_ROOT "/cgroup.subtree_control", "+memory");
		if (read_str(CG_ROOT "/cgroup.subtree_control", buf, sizeof(buf)) || !strstr(buf, "memory"))
			h_skip("the cgroup v2 memory controller is not available under " CG_ROOT);
		if (!own_path(2, own, sizeof(own)))
			h_skip("no cgroup v2 line in /proc/self/cgroup");
		snprintf(cg.home, sizeof(cg.home), CG_ROOT "%s/cgroup.procs", own);
		snprintf(cg.path, sizeof(cg.path), "/vmswap-test-%d", (int)getpid());
		snprintf(cg.dir, sizeof(cg.dir), CG_ROOT "%s", cg.path);
	} else {
		if (v2 || access(CG_ROOT "/memory/memory.limit_in_bytes", F_OK))
			h_skip("no cgroup v1 memory controller at " CG_ROOT "/memory (this machine has %s)",
			       v2 ? "cgroup v2" : "no memory cgroup");
		if (!own_path(1, own, sizeof(own)))
			h_skip("no memory line in /proc/self/cgroup");
		snprintf(cg.home, sizeof(cg.home), CG_ROOT "/memory%s/cgroup.procs", own);
		snprintf(cg.path, sizeof(cg.path), "%s/vmswap-test-%d", own, (int)getpid());
		snprintf(cg.dir, sizeof(cg.dir), CG_ROOT "/memory%s", cg.path);
	}
	if (mkdir(cg.dir, 0755) < 0) {
		int e = errno;

		cg.dir[0] = '\0';
		h_skip("cannot make a memory cgroup here: mkdir: %s", strerror(e));
	}
	snprintf(file, sizeof(file), "%s/%s", cg.dir, version == 2 ? "memory.max" : "memory.limit_in_bytes");
	snprintf(val, sizeof(val), "%llu", (unsigned long long)limit);
	cr_assert_eq(write_str(file, val), 0, "writing %s: %s", file, strerror(errno));
	if (version == 2) { /* swap would let the kernel push staging out instead of OOM */
		snprintf(file, sizeof(file), "%s/memory.swap.max", cg.dir);
		write_str(file, "0");
	}
}

/* @pid (0: ourselves) into the cgroup of @procs. */
static void cg_enter(pid_t pid, const char *procs)
{
	char s[32];
	int r;

	snprintf(s, sizeof(s), "%d", (int)pid);
	r = write_str(procs, s);
	cr_assert_eq(r, 0, "moving pid %d into %s: %s", (int)pid, procs, strerror(-r));
}

/* After h_teardown: every process gone from the cgroup, then rmdir. */
static void cg_remove(void)
{
	char file[600], buf[512];
	double deadline = h_now() + H_EXIT_TIMEOUT_S;

	if (!cg.dir[0])
		return;
	write_str(cg.home, "0"); /* "0": ourselves, should a failed test have left us in */
	snprintf(file, sizeof(file), "%s/cgroup.procs", cg.dir);
	while (!read_str(file, buf, sizeof(buf)) && buf[0] && h_now() < deadline)
		h_nap_ms(10);
	cr_assert(!buf[0], "processes still in %s: %s", cg.dir, buf);
	while (rmdir(cg.dir) < 0 && errno == EBUSY && h_now() < deadline)
		h_nap_ms(10);
	cr_assert(access(cg.dir, F_OK) != 0, "cannot remove %s: %s", cg.dir, strerror(errno));
	cg.dir[0] = '\0';
}

static void mem_fini(void)
{
	h_teardown();
	cg_remove();
}

TestSuite(memory, .init = h_setup, .fini = mem_fini, .timeout = 240);

/*
 * toyvmm with a GUEST_MIB guest, started inside the cgroup, filled. With
 * @copy, enable copies to a staging memfd, the copy the check is about;
 * staged in place (the default) it needs no room.
 */
static struct h_vm *vm_in_cgroup(const char *check, bool copy)
{
	char file[600], ref[300], text[4096];
	const char *env[] = { check, copy ? H_STAGING_COPY : NULL, NULL };
	struct h_vm *vm;
	pid_t helper;

	/* Our child is born in our cgroup: go there for the spawn, then back. */
	snprintf(file, sizeof(file), "%s/cgroup.procs", cg.dir);
	cg_enter(0, file);
	snprintf(ref, sizeof(ref), "--size %dM", GUEST_MIB);
	vm = h_vm_start(ref, env, true);
	cg_enter(0, cg.home);
	/* The shim spawned the helper from the VMM: it is in the cgroup too. */
	helper = h_helper_pid(vm->pid);
	snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)helper);
	snprintf(ref, sizeof(ref), ":%s\n", cg.path);
	cr_assert(!read_str(file, text, sizeof(text)) && strstr(text, ref),
		  "helper %d is not in %s:\n%s", (int)helper, cg.path, text);
	h_ok(vm->p, "fill");
	return vm;
}

static void refused(int version)
{
	struct h_vm *vm;
	struct h_ctl c;
	char *js, want[400], err[512];

	/* Guest + the helper fit; guest + staging do not. */
	cg_make(version, (GUEST_MIB + 72) * MIB);
	vm = vm_in_cgroup("VMSWAP_HEADROOM_CHECK=1", true);
	h_ctl_pid(&c, vm->pid, "enable", NULL);
	cr_assert_eq(c.rc, 1, "enable: exit %d (want 1, refused)\n%s%s", c.rc, c.out, c.err);
	snprintf(want, sizeof(want), "enable needs %d MiB of staging; the VMM's memory cgroup has ",
		 GUEST_MIB + 16);
	cr_assert(strstr(c.err, want), "want '%s...' in: %s", want, c.err);
	snprintf(want, sizeof(want), "MiB free (limit %d MiB, %s)", GUEST_MIB + 72, cg.path);
	cr_assert(strstr(c.err, want), "want '%s' in: %s", want, c.err);

	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Ready");
	cr_assert_eq(h_json_u64(js, "staging_pages"), 0, "refused, yet pages were staged\n%s", js);
	h_json_str(js, "last_error", err, sizeof(err));
	cr_assert(strstr(err, "enable needs"), "last_error should say why: '%s'", err);
	cr_assert_eq(h_json_u64(js, "need_mib"), GUEST_MIB + 16, "%s", js);
	cr_assert_eq(h_json_u64(js, "limit_mib"), GUEST_MIB + 72, "%s", js);
	cr_assert_lt(h_json_u64(js, "free_mib"), h_json_u64(js, "need_mib"), "%s", js);
	free(js);

	/* The VMM runs and every byte is there; the guest is still writable. */
	h_ok(vm->p, "verify");
	h_ok(vm->p, "fill");
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

static void fits(int version)
{
	struct h_vm *vm;
	char *js;

	/* Room for guest + staging + the helper: the check must not refuse. */
	cg_make(version, (2 * GUEST_MIB + 96) * MIB);
	vm = vm_in_cgroup("VMSWAP_HEADROOM_CHECK=1", false);
	js = h_status_fresh(vm->pid);
	cr_assert_geq(h_json_u64(js, "free_mib"), h_json_u64(js, "need_mib"), "%s", js);
	free(js);
	h_swap_out_verify_disable(vm->p);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

/* The check off: what it prevents happens, and vmswapctl names it. */
static void oom_named(int version)
{
	struct h_vm *vm;
	struct h_ctl c;
	char want[128];
	int st;

	cg_make(version, (GUEST_MIB + 72) * MIB);
	vm = vm_in_cgroup("VMSWAP_HEADROOM_CHECK=0", true);
	h_ctl_pid(&c, vm->pid, "enable", NULL);
	cr_assert_eq(c.rc, 3, "enable: exit %d (want 3, the helper died)\n%s%s", c.rc, c.out, c.err);
	snprintf(want, sizeof(want), "the VMM (pid %d) died, killed by the OOM killer", vm->pid);
	cr_assert(strstr(c.err, want), "want '%s' in: %s", want, c.err);
	st = h_proc_wait(vm->p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		  "toyvmm should have been killed (SIGKILL), status %#x", st);
	free(vm);
}

/*
 * Staged in place, the guest is not copied: in the cgroup where a
 * staging copy is refused (above), enable goes through with the check on
 * and a whole cycle runs, freeing guest memory a unit at a time.
 */
static void in_place_fits(int version)
{
	struct h_vm *vm;
	const char *out;
	char *js;

	cg_make(version, (GUEST_MIB + 72) * MIB);
	vm = vm_in_cgroup("VMSWAP_HEADROOM_CHECK=1", false);
	out = h_ctl_ok(vm->pid, "enable", NULL);
	cr_assert(strstr(out, "staged in place"), "%s", out);
	js = h_status_fresh(vm->pid);
	h_assert_state(js, "Pending");
	cr_assert_eq(h_json_u64(js, "staged_in_place_pages"), vm->pages, "%s", js);
	free(js);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	h_out(vm->p, vm->pages);
	h_ok(vm->p, "verify");
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}

Test(memory, refused_v2) { refused(2); }
Test(memory, refused_v1) { refused(1); }
Test(memory, fits_v2) { fits(2); }
Test(memory, fits_v1) { fits(1); }
Test(memory, oom_named_v2) { oom_named(2); }
Test(memory, oom_named_v1) { oom_named(1); }
Test(memory, in_place_needs_no_staging_room_v2) { in_place_fits(2); }
Test(memory, in_place_needs_no_staging_room_v1) { in_place_fits(1); }

/* A bad VMSWAP_HEADROOM_CHECK is reported, and the check stays on; 0 turns it off. */
/* A bad value is the shim's to report (unmanaged/bad_env_headroom_check). */
Test(memory, setting_turns_the_check_off)
{
	const char *off[] = { "VMSWAP_HEADROOM_CHECK=0", NULL };
	struct h_vm *vm = h_vm_start("--size 16M", NULL, true);
	char *js = h_status_fresh(vm->pid);

	cr_assert(strstr(js, "\"headroom\":{\"check\":true,"), "%s", js);
	free(js);
	h_vm_finish(vm);

	vm = h_vm_start("--size 16M", off, true);
	js = h_status_fresh(vm->pid);
	cr_assert(strstr(js, "\"headroom\":{\"check\":false,"), "%s", js);
	free(js);
	h_vm_finish(vm);
}
