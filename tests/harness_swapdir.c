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
