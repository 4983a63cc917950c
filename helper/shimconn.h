/* SPDX-License-Identifier: BSD-3-Clause */
/* Connections from shims: the VMM's socketpair and children joining via shim.sock. */
#ifndef VS_SHIMCONN_H
#define VS_SHIMCONN_H

#include <stdbool.h>
#include <stdint.h>

#define VS_MAX_CONNS 64

struct vs_conn {
	int fd;            /* 0 = free slot */
	int proc;          /* -1 until HELLO */
	uint32_t gen;      /* vs.procs[proc].gen at HELLO: the slot may be reused later */
	bool is_vmm_conn;  /* the socketpair we were started with */
};

struct vs_conn *vs_conn_add(int fd, bool is_vmm_conn);
/* A connection a restarted helper inherited (not given to the keeper again). */
struct vs_conn *vs_conn_adopt(int fd, int proc, bool is_vmm_conn);
int vs_conn_index(const struct vs_conn *c);
struct vs_conn *vs_conn_at(int idx);
void vs_conn_close(struct vs_conn *c);
/* Read and answer one message. 0, or -errno when the connection is done. */
int vs_conn_handle(struct vs_conn *c);

#endif
