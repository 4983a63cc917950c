/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The table of connections from shims: the VMM's socketpair and children
 * joining via shim.sock. Messages on them: shimmsg.h; their peers: shimpeer.h.
 */
#ifndef VS_SHIMCONN_H
#define VS_SHIMCONN_H

#include <stdbool.h>
#include <stdint.h>


/* A connection on shim.sock must say HELLO within this, or it is dropped. */
#define VS_CONN_HELLO_MS 2000

/* A slot of the connection table: written by the main thread under vs.lock (manifest.c reads them all). */
struct vs_conn {
	bool used;
	uint64_t since_ms; /* accepted at (vs_now_ms) */
	int fd;
	int proc;          /* -1 until HELLO */
	uint32_t gen;      /* vs.procs[proc].gen at HELLO: the slot may be reused later */
	bool is_vmm_conn;  /* the socketpair we were started with */
};

struct vs_conn *vs_conn_add(int fd, bool is_vmm_conn);
/* A connection a restarted helper inherited (not given to the keeper again). vs.lock held. */
struct vs_conn *vs_conn_adopt(int fd, int proc, bool is_vmm_conn);
int vs_conn_index(const struct vs_conn *c);
struct vs_conn *vs_conn_at(int idx);
void vs_conn_close(struct vs_conn *c);
/*
 * The process this connection said HELLO for, or NULL: it exited, or a
 * HELLO with its pid on another connection (after an exec) replaced it,
 * and its slot may serve another process now. vs.lock held.
 */
struct vs_proc *vs_conn_proc(const struct vs_conn *c);
/* Hand @drop each connection that has not said HELLO in VS_CONN_HELLO_MS. */
void vs_conn_drop_silent(uint64_t now_ms, void (*drop)(struct vs_conn *c));

#endif
