/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The keeper: the helper's parent after --daemonize. It holds a copy of
 * every fd the helper needs to survive a crash (shim sockets, uffds,
 * guest, staging and page-table memfds, the swap file, the run dir, the
 * manifest), keyed by the number the fd has in the helper. When the
 * helper dies by a signal or a nonzero exit it starts a new one with each
 * fd at its old number and --recover, so the manifest's fd numbers stay
 * valid. It goes on restarting, with a growing delay once restarts come
 * fast, for as long as a process the helper served lives: the guest's
 * pages outside guest memory are only in those fds. A normal exit
 * (status 0), VS_HELPER_EXIT_FINAL from the first helper, or no served process
 * left ends the keeper.
 */
#ifndef VS_KEEPER_H
#define VS_KEEPER_H

#include <stdint.h>
#include <sys/types.h>

/*
 * The helper's exit status for a failure a restart would not fix (setup).
 * From a recovering helper the keeper retries anyway, with the backoff.
 */
#define VS_HELPER_EXIT_FINAL 3

/* What the keeper tells a restarted helper (--restart-info R:S:D), for status. */
struct vs_restart_info {
	uint32_t restarts;  /* helpers started after one died, this one included */
	uint32_t streak;    /* of those, in a row with no helper up 60 s between */
	uint32_t delay_ms;  /* waited before starting this one */
	int64_t at;         /* when this one started (Unix time) */
};

/*
 * Fork the helper. Returns in the child with the keeper socket; the
 * parent becomes the keeper and never returns.
 */
int vs_keeper_start(pid_t vmm_pid, int sock_fd);

/* The delay before the @streak-th restart in a row: none for the first 5,
 * then @base_ms, doubling, up to 30 times @base_ms. */
uint32_t vs_keeper_backoff_ms(uint32_t streak, uint32_t base_ms);

/* Helper side. vs_keep_init(-1) (no keeper) makes the others no-ops. */
void vs_keep_init(int keeper_fd);
int vs_keep_fd_get(void);
/* The keeper's pid, 0 without one. */
pid_t vs_keeper_pid(void);
/* Give the keeper a copy of @fd, under its number. */
void vs_keep(int fd);
/* The keeper drops its copy of @fd; then @fd is closed. */
void vs_keep_close(int fd);
/* The keeper drops its copy only (the fd is not ours to close). */
void vs_keep_forget(int fd);
/* Take --restart-info; a bad one is logged and ignored (0 or -EINVAL). */
int vs_keep_restart_info_parse(const char *s);
/* All zero unless this helper was restarted by the keeper. */
const struct vs_restart_info *vs_keep_restart_info(void);

#endif
