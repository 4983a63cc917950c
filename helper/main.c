/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmswap-helper: one per VMM, started by the shim as
 *   vmswap-helper [--daemonize] --vmm-pid PID --sock-fd FD
 * With --daemonize the detached process stays as the keeper (keeper.h)
 * and runs the helper as its child; after a crash it starts
 *   vmswap-helper --recover --vmm-pid PID --sock-fd FD --keeper-fd FD
 *                 [--restart-info RESTARTS:STREAK:DELAY_MS]
 * The main thread runs one epoll loop over the control FIFO, signals,
 * shim connections, process exits and the worker's completions; the
 * fault thread and the worker thread do the page work.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <vmswap/common.h>

#include "control/rundir.h"
#include "control/shimconn.h"
#include "control/status.h"
#include "fault/fault.h"
#include "fault/fault_ws.h"
#include "model/dual.h"
#include "model/helper.h"
#include "ops/headroom.h"
#include "ops/ops.h"
#include "persist/keeper.h"
#include "persist/manifest.h"
#include "recover.h"
#include "state/cmd.h"
#include "state/state.h"
#include "sys/caps.h"
#include "sys/clock.h"
#include "sys/log.h"
#include "sys/sandbox.h"
#include "sys/swapfile.h"

enum ev_kind { EV_CONTROL = 1, EV_SIGNAL, EV_LISTEN, EV_CONN, EV_PIDFD, EV_DONE, EV_TIMER };

static int epfd;
static struct vs_rundir rd;

static int watch(int fd, enum ev_kind kind, uint32_t idx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)kind << 32 | idx };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: vmswap-helper [--daemonize] --vmm-pid PID --sock-fd FD\n"
			"       vmswap-helper --recover --vmm-pid PID --sock-fd FD --keeper-fd FD\n"
			"                     [--restart-info RESTARTS:STREAK:DELAY_MS]\n"
			"Started by libvmswap.so; not meant to be run by hand.\n");
	exit(2);
}

/* Leave the VMM's process tree: the VMM must not see us as its child. */
static void daemonize(void)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("vmswap-helper: fork");
		exit(1);
	}
	if (pid > 0)
		_exit(0);
	setsid();
}

static void on_control(void)
{
	static char line[VMSWAP_CMD_MAX + 1];
	static size_t have;
	static bool skipping; /* inside an over-long line */
	char buf[4096];
	ssize_t n;

	while ((n = read(rd.control_fd, buf, sizeof(buf))) > 0) {
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

	while ((fd = accept4(rd.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
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
		watch(fd, EV_CONN, (uint32_t)vs_conn_index(c));
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

static int setup(pid_t vmm_pid, int sock, bool recover, int *sfd, int *done_fd, int *tfd)
{
	const char *s = getenv(VMSWAP_ENV_LOG), *why;
	enum vs_log_level lvl;
	struct stat st;
	sigset_t set;
	int r;

	/*
	 * The shim checked and reported every value (see preload/config.c);
	 * what is bad here anyway falls back to the default, quietly.
	 */
	vs_helper_init(vmm_pid);
	if (vs_log_parse_level(s, &lvl) == 0)
		vs_log_set_level(lvl);
	s = getenv(VMSWAP_ENV_SWAP_DIR);
	if (s && *s && (s[0] != '/' || strlen(s) >= sizeof(vs.swap_dir)))
		s = NULL;
	snprintf(vs.swap_dir, sizeof(vs.swap_dir), "%s", s && *s ? s : VMSWAP_DEFAULT_SWAP_DIR);
	if (stat(vs.swap_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		vs_warn("swap dir %s is not a directory; out will fail", vs.swap_dir);
	vs_swapfile_init_faults();
	vs_op_delay_init();
	vs_ws_init();

	s = getenv(VMSWAP_ENV_PRECOPY);
	vs.wp_off = s && !strcmp(s, "0"); /* anything but "0": copy before the freeze */
	s = getenv(VMSWAP_ENV_WAKE_SWAPIN);
	vs.wake_swapin = s && !strcmp(s, "1");
	vs_headroom_init();

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -EINVAL;
	sigdelset(&set, SIGHUP); /* blocked and ignored: the terminal is not ours */
	*sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	*tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (*sfd < 0 || epfd < 0 || *tfd < 0)
		return -errno;
	struct itimerspec its = { .it_interval = { 0, 250000000 }, .it_value = { 0, 250000000 } };
	timerfd_settime(*tfd, 0, &its, NULL);

	/* Capabilities are per thread: drop them before the first one starts. */
	if ((r = vs_caps_drop()))
		vs_warn("cannot drop capabilities: %s", strerror(-r));
	if ((r = vs_fault_start()))
		return r;
	if ((*done_fd = vs_state_start()) < 0)
		return *done_fd;
	if (recover) {
		r = vs_recover_load(vmm_pid, vs_keep_fd_get(), &rd, &why);
		if (r)
			vs_err("cannot recover: %s %s: %s", why, rd.path, strerror(-r));
		return r;
	}
	if ((r = vs_manifest_create()))
		return r;
	r = vs_rundir_create(&rd, vmm_pid, &why);
	if (r) {
		vs_err("%s %s: %s", why, rd.path, strerror(-r));
		return r;
	}
	vs_keep(rd.dirfd);
	vs_keep(rd.control_fd);
	vs_keep(rd.listen_fd);
	pthread_mutex_lock(&vs.lock);
	vs_manifest_set_rundir(rd.dirfd, rd.control_fd, rd.listen_fd);
	vs_manifest_sync();
	pthread_mutex_unlock(&vs.lock);
	struct vs_conn *c = vs_conn_add(sock, true);
	if (!c)
		return -EMFILE;
	if ((r = watch(sock, EV_CONN, (uint32_t)vs_conn_index(c))))
		return r;
	return 0;
}

/* The command line: --daemonize or --recover first, then the rest. */
struct opts {
	pid_t vmm_pid;
	int sock, keeper;
	bool detach, recover;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .sock = -1, .keeper = -1 };
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--daemonize") && i == 1)
			o->detach = true;
		else if (!strcmp(argv[i], "--recover") && i == 1)
			o->recover = true;
		else if (!strcmp(argv[i], "--vmm-pid") && i + 1 < argc)
			o->vmm_pid = (pid_t)strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--sock-fd") && i + 1 < argc)
			o->sock = (int)strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--keeper-fd") && i + 1 < argc && o->recover)
			o->keeper = (int)strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--restart-info") && i + 1 < argc && o->recover)
			vs_keep_restart_info_parse(argv[++i]);
		else
			usage();
	}
	if (o->vmm_pid <= 0 || o->sock < 0 || fcntl(o->sock, F_GETFD) < 0 ||
	    (o->recover && (o->keeper < 0 || fcntl(o->keeper, F_GETFD) < 0)))
		usage();
}

/* Detach if asked, stdin from /dev/null, the keeper started. 0 or -errno. */
static int prepare_process(struct opts *o)
{
	int devnull;

	if (o->detach)
		daemonize();
	fcntl(o->sock, F_SETFD, FD_CLOEXEC);
	if (chdir("/") < 0)
		return -errno;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, STDIN_FILENO);
		close(devnull);
	}
	if (o->detach) {
		o->keeper = vs_keeper_start(o->vmm_pid, o->sock);
		if (o->keeper < 0)
			vs_warn("cannot start the keeper (%s): a crash cannot be recovered",
				strerror(-o->keeper));
	}
	vs_keep_init(o->keeper);
	return 0;
}

/* --recover: watch what was inherited; false when no process is left to serve. */
static bool watch_inherited(void)
{
	bool any = false;

	for (int k = 0; k < VS_MAX_CONNS; k++) {
		struct vs_conn *c = vs_conn_at(k);

		if (c->used)
			watch(c->fd, EV_CONN, (uint32_t)k);
	}
	for (int k = 0; k < VS_MAX_PROCS; k++) {
		if (vs.procs[k].used) {
			watch(vs.procs[k].pidfd, EV_PIDFD, (uint32_t)k);
			any = true;
		}
	}
	return any;
}

/* What the main loop carries from one event to the next. */
struct loop {
	int sfd, done_fd, tfd;
	bool recovering, exiting;
	uint64_t last_faults, last_err;
};

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
		watch(vs.procs[c->proc].pidfd, EV_PIDFD, (uint32_t)c->proc);
	}
}

static void on_done(struct loop *l)
{
	vs_state_collect();
	if (l->recovering && !vs_state_busy()) {
		vs_recover_finish();
		l->recovering = false;
	}
	l->exiting = vs_state_exit_ready();
}

/* The 250 ms tick. True when status should be published. */
static bool on_timer(struct loop *l)
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
	publish |= vs_dual_watch();
	publish |= busy || vs.c.faults != l->last_faults || vs.err_seq != l->last_err;
	l->last_faults = vs.c.faults;
	l->last_err = vs.err_seq;
	pthread_mutex_unlock(&vs.lock);
	return publish;
}

/* One event. True when status should be published. */
static bool dispatch(struct loop *l, const struct epoll_event *ev)
{
	enum ev_kind kind = (enum ev_kind)(ev->data.u64 >> 32);
	uint32_t idx = (uint32_t)ev->data.u64;

	switch (kind) {
	case EV_CONTROL:
		on_control();
		return true;
	case EV_SIGNAL:
		l->exiting = on_signal(l->sfd);
		return true;
	case EV_LISTEN:
		on_listen();
		return false;
	case EV_CONN:
		on_conn(idx);
		return true;
	case EV_PIDFD:
		epoll_ctl(epfd, EPOLL_CTL_DEL, vs.procs[idx].pidfd, NULL);
		l->exiting = on_pidfd((int)idx);
		return true;
	case EV_DONE:
		on_done(l);
		return true;
	case EV_TIMER:
		return on_timer(l);
	}
	return false;
}

static void run(struct loop *l)
{
	while (!l->exiting) {
		struct epoll_event evs[32];
		bool publish = false;
		int n = epoll_wait(epfd, evs, 32, -1);

		for (int k = 0; k < n && !l->exiting; k++)
			publish |= dispatch(l, &evs[k]);
		if (publish && !l->exiting)
			vs_status_publish(rd.dirfd);
	}
}

int main(int argc, char **argv)
{
	struct loop l = { .sfd = -1, .done_fd = -1, .tfd = -1, .last_faults = UINT64_MAX };
	struct opts o;
	int r;

	if (argc > 1 && !strcmp(argv[1], "--recover")) {
		vs_recover_scan_fds(); /* before we open anything */
		prctl(PR_SET_NAME, "vmswap-helper"); /* exec'd as /proc/self/exe: "exe" otherwise */
	}
	parse_args(argc, argv, &o);
	if (prepare_process(&o))
		return 1;
	r = setup(o.vmm_pid, o.sock, o.recover, &l.sfd, &l.done_fd, &l.tfd);
	if (r) {
		vs_err("setup failed: %s", strerror(-r));
		/* A recovery leaves the run dir to the keeper's next attempt. */
		if (!o.recover)
			vs_rundir_remove(&rd);
		return VS_HELPER_EXIT_FINAL; /* no restart: it would fail the same way */
	}
	l.recovering = o.recover;
	if (o.recover) {
		if (!watch_inherited()) {
			vs_info("no process left to serve");
			vs_rundir_remove(&rd);
			return 0;
		}
		vs_recover_resume();
		if (!vs_state_busy()) { /* nothing to swap in */
			vs_recover_finish();
			l.recovering = false;
		}
	}
	watch(rd.control_fd, EV_CONTROL, 0);
	watch(rd.listen_fd, EV_LISTEN, 0);
	watch(l.sfd, EV_SIGNAL, 0);
	watch(l.done_fd, EV_DONE, 0);
	watch(l.tfd, EV_TIMER, 0);
	/* From here on the helper opens only /proc files, status.json and the swap file. */
	vs_sandbox_setup(vs_keep_fd_get());
	vs_status_publish(rd.dirfd);
	vs_info("serving VMM %d, run dir %s", o.vmm_pid, rd.path);
	run(&l);
	vs_info("exiting");
	vs_fault_stop();
	vs_rundir_remove(&rd);
	return 0;
}
