/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The keeper: the helper's parent after --daemonize. It holds a copy of
 * every fd the helper needs to survive a crash (shim sockets, uffds,
 * guest, staging and page-table memfds, the swap file, the run dir, the
 * manifest), keyed by the number the fd has in the helper. When the
 * helper dies by a signal or a nonzero exit it starts a new one with each
 * fd at its old number and --recover, so the manifest's fd numbers stay
 * valid. Only normal exit (status 0, or VS_EXIT_FINAL) ends the keeper.
 */
#ifndef VS_KEEPER_H
#define VS_KEEPER_H

#include <sys/types.h>

/* The helper's exit status for a failure a restart would not fix (setup). */
#define VS_EXIT_FINAL 3

/*
 * Fork the helper. Returns in the child with the keeper socket; the
 * parent becomes the keeper and never returns.
 */
int vs_keeper_start(pid_t vmm_pid, int sock_fd);

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

#endif
