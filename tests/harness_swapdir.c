/* SPDX-License-Identifier: BSD-3-Clause */
/* A small tmpfs as the swap dir, to fill it up; see harness.h. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

static char small_dir[320];

void h_small_swap_dir_unmount(void)
{
	if (small_dir[0])
		umount2(small_dir, MNT_DETACH);
	small_dir[0] = '\0';
}

const char *h_small_swap_dir(const char *size)
{
	char opts[64];
	int e;

	if (geteuid() != 0)
		h_skip("mounting a small tmpfs as the swap dir needs root");
	snprintf(small_dir, sizeof(small_dir), "%s/small", h_env.dir);
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	cr_assert(mkdir(small_dir, 0700) == 0, "mkdir %s: %s", small_dir, strerror(errno));
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("vmswap-test", small_dir, "tmpfs", 0, opts) < 0) {
		e = errno;
		small_dir[0] = '\0';
		h_skip("cannot mount a tmpfs for the swap dir: %s", strerror(e));
	}
	return small_dir;
}

void h_small_swap_dir_resize(const char *size)
{
	char opts[64];

	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	cr_assert(mount("vmswap-test", small_dir, "tmpfs", MS_REMOUNT, opts) == 0,
		  "remount %s with %s: %s", small_dir, opts, strerror(errno));
}

char *h_out_into_full_dir(struct h_vm *vm, uint64_t *staging, uint64_t *swap)
{
	char err[256];
	struct h_ctl c;
	char *js;

	h_ctl_pid(&c, vm->pid, "out", "--wait", NULL);
	cr_assert_eq(c.rc, 5, "out into a full dir: exit %d (want 5)\n%s%s", c.rc, c.out, c.err);
	js = h_wait_state(vm->pid, "Failed");
	h_json_str(js, "last_error", err, sizeof(err));
	cr_assert(strstr(err, "No space left on device"), "last_error should say why:\n%s", js);
	cr_assert(strstr(c.err, err), "vmswapctl should print the error '%s': %s", err, c.err);
	*staging = h_json_u64(js, "staging_pages");
	*swap = h_json_u64(js, "swap_pages");
	cr_assert_eq(*staging + *swap, vm->pages, "every page is staged or in the file:\n%s", js);
	cr_assert(*swap > 0 && *staging > 0, "the file took what fit, the rest stayed:\n%s", js);
	return js;
}
