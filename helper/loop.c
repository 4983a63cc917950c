/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The main thread's epoll loop: the control FIFO, signals, shim.sock and
 * shim connections, process exits, the worker's completions and the
 * 250 ms tick, each dispatched to its handler; status is published after
 * a round that changed something.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vmswap/common.h>

#include "control/shimconn.h"
#include "control/shimmsg.h"
#include "control/shimpeer.h"
#include "control/status.h"
#include "loop.h"
#include "model/dual.h"
#include "model/helper.h"
#include "recover.h"
#include "state/cmd.h"
#include "state/state.h"
#include "sys/clock.h"
#include "sys/log.h"

static int epfd = -1;
static struct vs_rundir *rd;

int vs_loop_init(struct vs_rundir *rundir)
{
	rd = rundir;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	return epfd < 0 ? -errno : 0;
}

int vs_loop_watch(int fd, enum vs_ev_kind kind, uint32_t idx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)kind << 32 | idx };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void on_control(void)
{
	static char line[VMSWAP_CMD_MAX + 1];
	static size_t have;
	static bool skipping; /* inside an over-long line */
	char buf[4096];
	ssize_t n;

	while ((n = read(rd->control_fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (have < VMSWAP_CMD_MAX)
					line[have++] = buf[i];
				else
					skipping = true;
				continue;
			}
			struct vs_cmd cmd;
			const char *err = NULL;

			if (skipping)
				vs_state_command(VS_CMD_STATUS, "", false), vs_warn("control: line too long");
			else if (vs_cmd_parse(line, have, &cmd, &err) == 0)
				vs_state_command_keep(cmd.verb, cmd.id, cmd.keep);
			else
				vs_warn("control: bad command: %s", err ? err : "?");
			have = 0;
			skipping = false;
		}
	}
}

static bool on_signal(int sfd)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGUSR1:
			vs_info("SIGUSR1: enable, trim, out");
			vs_state_command(VS_CMD_ENABLE, "", true);
			break;
		case SIGUSR2:
			vs_info("SIGUSR2: disable");
			vs_state_command(VS_CMD_DISABLE, "", false);
			break;
		case SIGTERM:
		case SIGINT:
			vs_state_request_exit();
			break;
		default:
			break;
		}
	}
	return vs_state_exit_ready();
}

static void drop_conn(struct vs_conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	vs_conn_close(c);
}

/*
 * A process joins through shim.sock. Its peer is checked before it takes
 * a slot, so that nobody outside the VMM's tree can fill the table.
 */
static void on_listen(void)
{
	char why[VMSWAP_REASON_MAX];
	struct vs_conn *c;
	int fd, r;

	while ((fd = accept4(rd->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		if ((r = vs_conn_peer_check(fd, why, sizeof(why)))) {
			vs_warn("refused a shim.sock connection: %s", why);
			close(fd);
			continue;
		}
		c = vs_conn_add(fd, false);
		if (!c) {
			vs_warn("refused a shim.sock connection: %d connections already", VS_MAX_CONNS);
			close(fd);
			continue;
		}
		vs_loop_watch(fd, VS_EV_CONN, (uint32_t)vs_conn_index(c));
	}
}

/* A process exited. Returns true when none we serve is left. */
static bool on_pidfd(int idx)
{
	bool any = false;

	pthread_mutex_lock(&vs.lock);
	if (vs.procs[idx].used) {
		vs_info("pid %d exited", vs.procs[idx].pid);
		vs_proc_drop(idx);
		vs_obj_gc();
	}
	for (int i = 0; i < VS_MAX_PROCS; i++)
		any |= vs.procs[i].used;
	pthread_mutex_unlock(&vs.lock);
	return !any;
}

/* --recover: watch what was inherited; false when no process is left to serve. */
bool vs_loop_watch_inherited(void)
{
	bool any = false;

	for (int k = 0; k < VS_MAX_CONNS; k++) {
		struct vs_conn *c = vs_conn_at(k);

		if (c->used)
			vs_loop_watch(c->fd, VS_EV_CONN, (uint32_t)k);
	}
	for (int k = 0; k < VS_MAX_PROCS; k++) {
		if (vs.procs[k].used) {
			vs_loop_watch(vs.procs[k].pidfd, VS_EV_PIDFD, (uint32_t)k);
			any = true;
		}
	}
	return any;
}

static void on_conn(uint32_t idx)
{
	struct vs_conn *c = vs_conn_at((int)idx);
	int before = c->proc;

	if (!c->used)
		return;
	if (vs_conn_handle(c) < 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		vs_conn_close(c);
	} else if (before < 0 && c->proc >= 0) {
		/* HELLO: watch the process so we learn when it exits. */
		vs_loop_watch(vs.procs[c->proc].pidfd, VS_EV_PIDFD, (uint32_t)c->proc);
	}
}

static void on_done(struct vs_loop *l)
{
	vs_state_collect();
	if (l->recovering && !vs_state_busy()) {
		vs_recover_finish();
		l->recovering = false;
	}
	l->exiting = vs_state_exit_ready();
}

/* The 250 ms tick. True when status should be published. */
static bool on_timer(struct vs_loop *l)
{
	uint64_t ticks;
	bool busy, publish = false;

	if (read(l->tfd, &ticks, sizeof(ticks)) < 0)
		return false;
	busy = vs_state_busy();
	if (atomic_exchange(&vs.wake_due, false))
		publish |= vs_state_wake_swapin();
	vs_conn_drop_silent(vs_now_ms(), drop_conn);
	pthread_mutex_lock(&vs.lock);
	/* Pages held twice go to Failed as soon as they show (dual.h). */
	publish |= vs_state_watch_doubles();
	publish |= busy || vs.stats.c.faults != l->last_faults || vs.err_seq != l->last_err;
	l->last_faults = vs.stats.c.faults;
	l->last_err = vs.err_seq;
	pthread_mutex_unlock(&vs.lock);
	return publish;
}

/* One event. True when status should be published. */
static bool dispatch(struct vs_loop *l, const struct epoll_event *ev)
{
	enum vs_ev_kind kind = (enum vs_ev_kind)(ev->data.u64 >> 32);
	uint32_t idx = (uint32_t)ev->data.u64;

	switch (kind) {
	case VS_EV_CONTROL:
		on_control();
		return true;
	case VS_EV_SIGNAL:
		l->exiting = on_signal(l->sfd);
		return true;
	case VS_EV_LISTEN:
		on_listen();
		return false;
	case VS_EV_CONN:
		on_conn(idx);
		return true;
	case VS_EV_PIDFD:
		epoll_ctl(epfd, EPOLL_CTL_DEL, vs.procs[idx].pidfd, NULL);
		l->exiting = on_pidfd((int)idx);
		return true;
	case VS_EV_DONE:
		on_done(l);
		return true;
	case VS_EV_TIMER:
		return on_timer(l);
	}
	return false;
}

void vs_loop_run(struct vs_loop *l)
{
	while (!l->exiting) {
		struct epoll_event evs[32];
		bool publish = false;
		int n = epoll_wait(epfd, evs, 32, -1);

		for (int k = 0; k < n && !l->exiting; k++)
			publish |= dispatch(l, &evs[k]);
		if (publish && !l->exiting)
			vs_status_publish(rd->dirfd);
	}
}
