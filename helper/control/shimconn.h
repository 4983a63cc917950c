/* SPDX-License-Identifier: BSD-3-Clause */
/* Connections from shims: the VMM's socketpair and children joining via shim.sock. */
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
 * May the peer of a new shim.sock connection take a slot? Only the VMM
 * and its descendants, running as the VMM's uid (or root), may. 0, or
 * -errno with the reason in @why.
 */
int vs_conn_peer_check(int fd, char *why, size_t n);
/* Hand @drop each connection that has not said HELLO in VS_CONN_HELLO_MS. */
void vs_conn_drop_silent(uint64_t now_ms, void (*drop)(struct vs_conn *c));
/* Read and answer one message. 0, or -errno when the connection is done. */
int vs_conn_handle(struct vs_conn *c);

#endif
