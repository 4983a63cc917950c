/* SPDX-License-Identifier: BSD-3-Clause */
/* The table of shim connections; see shimconn.h. */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../model/helper.h"
#include "../persist/keeper.h"
#include "../persist/manifest.h"
#include "../sys/clock.h"
#include "../sys/log.h"
#include "shimconn.h"

static struct vs_conn conns[VS_MAX_CONNS];

/* A free slot, or NULL. vs.lock held. */
static struct vs_conn *free_slot(void)
{
	for (int i = 0; i < VS_MAX_CONNS; i++)
		if (!conns[i].used)
			return &conns[i];
	return NULL;
}

/* The manifest's connection table, at each of its writes. vs.lock held. */
static void manifest_conns(struct vs_mf_conn *out)
{
	for (int i = 0; i < VS_MAX_CONNS; i++)
		out[i] = (struct vs_mf_conn){ .fd = conns[i].used ? conns[i].fd : -1,
					      .proc = conns[i].proc,
					      .is_vmm = conns[i].is_vmm_conn };
}

struct vs_conn *vs_conn_add(int fd, bool is_vmm_conn)
{
	struct vs_conn *c;

	pthread_mutex_lock(&vs.lock);
	vs_manifest_set_conns(manifest_conns);
	c = free_slot();
	if (c)
		*c = (struct vs_conn){ .used = true, .fd = fd, .proc = -1,
				       .is_vmm_conn = is_vmm_conn, .since_ms = vs_now_ms() };
	pthread_mutex_unlock(&vs.lock);
	if (!c)
		return NULL;
	/* The keeper holds the fd before the manifest names it (persist/). */
	vs_keep(fd);
	pthread_mutex_lock(&vs.lock);
	vs_manifest_sync();
	pthread_mutex_unlock(&vs.lock);
	return c;
}

struct vs_conn *vs_conn_adopt(int fd, int proc, bool is_vmm_conn)
{
	struct vs_conn *c = free_slot();

	vs_manifest_set_conns(manifest_conns);
	if (c)
		*c = (struct vs_conn){ .used = true, .fd = fd, .proc = proc,
				       .is_vmm_conn = is_vmm_conn,
				       .gen = proc >= 0 ? vs.procs[proc].gen : 0 };
	return c;
}

int vs_conn_index(const struct vs_conn *c)
{
	return (int)(c - conns);
}

struct vs_conn *vs_conn_at(int idx)
{
	return &conns[idx];
}

/*
 * The process this connection said HELLO for, or NULL: it exited, or
 * a HELLO with its pid on another connection (after an exec) replaced it,
 * and its slot may serve another process now.
 */
struct vs_proc *vs_conn_proc(const struct vs_conn *c)
{
	struct vs_proc *p = c->proc >= 0 ? &vs.procs[c->proc] : NULL;

	return p && p->used && p->gen == c->gen ? p : NULL;
}

void vs_conn_close(struct vs_conn *c)
{
	struct vs_proc *p;
	int fd = c->fd;

	pthread_mutex_lock(&vs.lock);
	p = vs_conn_proc(c);
	if (p && p->sock == c->fd)
		p->sock = -1; /* the process may live on: keep its uffd */
	c->used = false;
	c->fd = -1;
	c->proc = -1;
	vs_manifest_sync();
	pthread_mutex_unlock(&vs.lock);
	vs_keep_close(fd);
}

void vs_conn_drop_silent(uint64_t now_ms, void (*drop)(struct vs_conn *c))
{
	for (int i = 0; i < VS_MAX_CONNS; i++) {
		struct vs_conn *c = &conns[i];

		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

		if (!c->used || c->proc >= 0 || c->is_vmm_conn ||
		    now_ms - c->since_ms < VS_CONN_HELLO_MS)
			continue;
		/* A HELLO that waits to be read (we were stalled) is not late. */
		if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN))
			continue;
		{
			vs_warn("dropping a shim.sock connection that sent no HELLO in %d ms",
				VS_CONN_HELLO_MS);
			drop(c);
		}
	}
}
