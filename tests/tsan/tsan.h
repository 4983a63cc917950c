/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TSan driver: the helper's threaded code (fault thread, worker,
 * enable's copy threads, out's writers, disable's swap-in threads, the
 * shim connection) built with -fsanitize=thread, serving a forked "VMM"
 * whose vCPU threads write and verify guest memory against a model.
 */
#ifndef VS_TSAN_H
#define VS_TSAN_H

#include <stdatomic.h>
#include <stdint.h>

#define TV_GUEST_PAGES 4096u                     /* 16 MiB */
#define TV_BOOT_PAGES 2048u                      /* mapped at start */
#define TV_PLUG_PAGES 512u                       /* then hotplugged, one window at a time */
#define TV_PLUGS ((TV_GUEST_PAGES - TV_BOOT_PAGES) / TV_PLUG_PAGES)
#define TV_VCPUS 3

/* Shared between the driver and the VMM (MAP_SHARED, made before the fork). */
struct tv_shared {
	atomic_int ready;         /* the VMM has said HELLO and sent its region */
	atomic_int plug_req;      /* driver: hotplug windows up to this many */
	atomic_int plugged;       /* VMM: windows mapped and sent */
	atomic_int stop;          /* driver: vCPUs stop, the VMM verifies and exits */
	atomic_ulong writes, reads, removes, mismatches;
	atomic_int step;          /* driver: the command step under way, counted from 1 */
	char first_bad[200];
	/*
	 * The model: page pg holds generation gen[pg] (0: zeros). Written
	 * by the one vCPU that owns the page (pg % TV_VCPUS), read by the
	 * driver only after the VMM exited.
	 */
	uint8_t gen[TV_GUEST_PAGES];
};

/* The VMM process: returns its exit status (0 ok, 1 mismatch, 77 no uffd). */
int tv_vmm_main(struct tv_shared *sh, int sock, int memfd);

#endif
