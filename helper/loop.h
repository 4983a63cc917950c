/* SPDX-License-Identifier: BSD-3-Clause */
/* The main thread's event loop (loop.c). */
#ifndef VS_LOOP_H
#define VS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "control/rundir.h"

enum vs_ev_kind {
	VS_EV_CONTROL = 1, VS_EV_SIGNAL, VS_EV_LISTEN, VS_EV_CONN, VS_EV_PIDFD, VS_EV_DONE,
	VS_EV_TIMER,
};

/* What the loop carries from one event to the next. */
struct vs_loop {
	int sfd, done_fd, tfd;
	bool recovering, exiting;
	uint64_t last_faults, last_err;
};

/* The epoll set; @rd: the run dir whose FIFO, socket and status the loop serves. 0 or -errno. */
int vs_loop_init(struct vs_rundir *rd);
/* Watch @fd for input, as event @kind of index @idx. 0 or -errno. */
int vs_loop_watch(int fd, enum vs_ev_kind kind, uint32_t idx);
/* --recover: watch what was inherited; false when no process is left to serve. */
bool vs_loop_watch_inherited(void);
/* Until the helper exits. */
void vs_loop_run(struct vs_loop *l);

#endif
