/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Names and defaults shared by the shim, the helper, vmswapctl and tests.
 *
 * Run directory layout, per VMM: $VMSWAP_RUN_DIR/<vmm-pid>/ (mode 0700)
 *   control      FIFO (0600): one command per line, see below
 *   status.json  the helper's published status, replaced atomically
 *   helper.pid   the helper's pid, decimal, newline
 *   shim.sock    SOCK_SEQPACKET socket on which forked or exec'd
 *                processes of the same VMM join the helper
 *
 * Control line grammar (at most VMSWAP_CMD_MAX bytes, '\n' terminated):
 *   <verb> [keep=guest|keep=saved] [id=<token>]  (arguments in any order)
 *   verb  := enable | trim | out | disable | status
 *   token := 1..32 chars of [A-Za-z0-9_.-]
 *   keep= only with disable: what to do with pages held twice (README)
 * The helper answers each command in status.json "replies" (the last
 * VMSWAP_REPLIES_KEPT, newest last) as {"id","command","ok","message"}.
 * enable is answered when it finished; trim, out and disable when they
 * started (or were refused). status only republishes status.json.
 */
#ifndef VMSWAP_COMMON_H
#define VMSWAP_COMMON_H

#define VMSWAP_ENV_MIN_SIZE "VMSWAP_MIN_SIZE"
#define VMSWAP_ENV_MATCH "VMSWAP_MATCH"
#define VMSWAP_ENV_SWAP_DIR "VMSWAP_SWAP_DIR"
#define VMSWAP_ENV_RUN_DIR "VMSWAP_RUN_DIR"
#define VMSWAP_ENV_LOG "VMSWAP_LOG"
#define VMSWAP_ENV_DISABLE "VMSWAP_DISABLE"
#define VMSWAP_ENV_PRECOPY "VMSWAP_PRECOPY"    /* 0: enable copies while frozen */
#define VMSWAP_ENV_STAGING "VMSWAP_STAGING"    /* in-place (default) or copy */
#define VMSWAP_ENV_HELPER "VMSWAP_HELPER"      /* path of vmswap-helper */
#define VMSWAP_ENV_SECCOMP "VMSWAP_SECCOMP"    /* 0: the helper runs without its sandbox */
/* Seconds a fork child waits to join the helper before closing off guest memory. */
#define VMSWAP_ENV_JOIN_TIMEOUT "VMSWAP_JOIN_TIMEOUT"
#define VMSWAP_DEFAULT_JOIN_TIMEOUT_S 30
#define VMSWAP_MAX_JOIN_TIMEOUT_S 3600
#define VMSWAP_ENV_PREFETCH "VMSWAP_PREFETCH" /* off | working-set */
#define VMSWAP_ENV_FAULT_IO "VMSWAP_FAULT_IO" /* auto | io_uring | threads */
#define VMSWAP_ENV_WAKE_SWAPIN "VMSWAP_WAKE_SWAPIN" /* 1: a wake starts a low-priority disable */
#define VMSWAP_ENV_HEADROOM_CHECK "VMSWAP_HEADROOM_CHECK" /* 0: enable skips its memory check */
/* Test hook: "1" makes the shim act as if userfaultfd were unavailable. */
#define VMSWAP_ENV_TEST_NO_UFFD "VMSWAP_TEST_NO_UFFD"
/* Test hooks of the helper's swap file: "N" (writes after the Nth fail with
 * EIO) and "AFTER:COUNT" (reads AFTER..AFTER+COUNT-1 fail with EIO). */
#define VMSWAP_ENV_TEST_FAIL_WRITE_AFTER "VMSWAP_TEST_FAIL_WRITE_AFTER"
#define VMSWAP_ENV_TEST_FAIL_READS "VMSWAP_TEST_FAIL_READS"

#define VMSWAP_DEFAULT_MIN_SIZE (64ull << 20)
#define VMSWAP_DEFAULT_SWAP_DIR "/var/tmp"
#define VMSWAP_DEFAULT_RUN_DIR_ROOT "/run/vmswap"
#define VMSWAP_RUN_SUBDIR "vmswap" /* under $XDG_RUNTIME_DIR for non-root */

#define VMSWAP_CONTROL_NAME "control"
#define VMSWAP_STATUS_NAME "status.json"
#define VMSWAP_PIDFILE_NAME "helper.pid"
#define VMSWAP_SOCK_NAME "shim.sock"
/* Everything a helper puts in its run directory (to clear a stale one). */
#define VMSWAP_RUN_ENTRIES                                                              \
	{ VMSWAP_CONTROL_NAME, VMSWAP_STATUS_NAME, VMSWAP_STATUS_NAME ".tmp",          \
	  VMSWAP_PIDFILE_NAME, VMSWAP_PIDFILE_NAME ".tmp", VMSWAP_SOCK_NAME }

#define VMSWAP_CMD_MAX 256
#define VMSWAP_TOKEN_MAX 32
#define VMSWAP_REPLIES_KEPT 16

#define VMSWAP_HELPER_NAME "vmswap-helper"

#endif
