/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmswap-helper: one per VMM, started by the shim as
 *   vmswap-helper [--daemonize] --vmm-pid PID --sock-fd FD
 * With --daemonize the detached process stays as the keeper (keeper.h)
 * and runs the helper as its child; after a crash it starts
 *   vmswap-helper --recover --vmm-pid PID --sock-fd FD --keeper-fd FD
 *                 [--restart-info RESTARTS:STREAK:DELAY_MS]
 * main.c reads the arguments and sets up; loop.c runs the main thread's
 * epoll loop; the fault thread and the worker thread do the page work.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <vmswap/common.h>

#include "control/rundir.h"
#include "control/shimconn.h"
#include "control/status.h"
#include "fault/fault.h"
#include "fault/fault_ws.h"
#include "loop.h"
#include "model/helper.h"
#include "ops/headroom.h"
#include "ops/ops.h"
#include "persist/keeper.h"
#include "persist/manifest.h"
#include "recover.h"
#include "state/state.h"
#include "sys/caps.h"
#include "sys/log.h"
#include "sys/sandbox.h"
#include "sys/swapfile.h"

static struct vs_rundir rd;

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

/*
 * The environment. The shim checked and reported every value (see
 * preload/config.c); what is bad here anyway falls back to the default,
 * quietly.
 */
static void read_settings(void)
{
	const char *s = getenv(VMSWAP_ENV_LOG);
	enum vs_log_level lvl;
	struct stat st;

	if (vs_log_parse_level(s, &lvl) == 0)
		vs_log_set_level(lvl);
	s = getenv(VMSWAP_ENV_SWAP_DIR);
	if (s && *s && (s[0] != '/' || strlen(s) >= sizeof(vs.swap.dir)))
		s = NULL;
	snprintf(vs.swap.dir, sizeof(vs.swap.dir), "%s", s && *s ? s : VMSWAP_DEFAULT_SWAP_DIR);
	if (stat(vs.swap.dir, &st) < 0 || !S_ISDIR(st.st_mode))
		vs_warn("swap dir %s is not a directory; out will fail", vs.swap.dir);
	vs_swapfile_init_faults();
	vs_op_delay_init();
	vs_ws_init();
	s = getenv(VMSWAP_ENV_PRECOPY);
	vs.wp_off = s && !strcmp(s, "0"); /* anything but "0": copy before the freeze */
	s = getenv(VMSWAP_ENV_STAGING);
	/* Copying to a staging memfd is asked for, or implied by no write protection. */
	vs.stage_copy = (s && !strcmp(s, "copy")) || vs.wp_off;
	s = getenv(VMSWAP_ENV_WAKE_SWAPIN);
	vs.wake_swapin = s && !strcmp(s, "1");
	vs_headroom_init();
}

/* Signals as a signalfd, and the 250 ms tick as a timerfd. 0 or -errno. */
static int event_fds(int *sfd, int *tfd)
{
	struct itimerspec its = { .it_interval = { 0, 250000000 }, .it_value = { 0, 250000000 } };
	sigset_t set;

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
	*tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (*sfd < 0 || *tfd < 0)
		return -errno;
	timerfd_settime(*tfd, 0, &its, NULL);
	return 0;
}

/* A first start: the manifest, the run dir and the VMM's connection. 0 or -errno. */
static int start_fresh(pid_t vmm_pid, int sock)
{
	char why[160] = "";
	struct vs_conn *c;
	int r;

	if ((r = vs_manifest_create()))
		return r;
	r = vs_rundir_create(&rd, vmm_pid, why, sizeof(why));
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
	c = vs_conn_add(sock, true);
	if (!c)
		return -EMFILE;
	return vs_loop_watch(sock, VS_EV_CONN, (uint32_t)vs_conn_index(c));
}

static int setup(pid_t vmm_pid, int sock, bool recover, int *sfd, int *done_fd, int *tfd)
{
	char why[160] = "";
	int r;

	vs_helper_init(vmm_pid);
	read_settings();
	if ((r = event_fds(sfd, tfd)) || (r = vs_loop_init(&rd)))
		return r;
	/* Capabilities are per thread: drop them before the first one starts. */
	if ((r = vs_caps_drop()))
		vs_warn("cannot drop capabilities: %s", strerror(-r));
	if ((r = vs_fault_start()))
		return r;
	if ((*done_fd = vs_state_start()) < 0)
		return *done_fd;
	if (!recover)
		return start_fresh(vmm_pid, sock);
	r = vs_recover_load(vmm_pid, vs_keep_fd_get(), &rd, why, sizeof(why));
	if (r)
		vs_err("cannot recover: %s %s: %s", why, rd.path, strerror(-r));
	return r;
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

int main(int argc, char **argv)
{
	struct vs_loop l = { .sfd = -1, .done_fd = -1, .tfd = -1, .last_faults = UINT64_MAX };
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
		if (!vs_loop_watch_inherited()) {
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
	vs_loop_watch(rd.control_fd, VS_EV_CONTROL, 0);
	vs_loop_watch(rd.listen_fd, VS_EV_LISTEN, 0);
	vs_loop_watch(l.sfd, VS_EV_SIGNAL, 0);
	vs_loop_watch(l.done_fd, VS_EV_DONE, 0);
	vs_loop_watch(l.tfd, VS_EV_TIMER, 0);
	/* From here on the helper opens only /proc files, status.json and the swap file. */
	vs_sandbox_setup(vs_keep_fd_get());
	vs_status_publish(rd.dirfd);
	vs_info("serving VMM %d, run dir %s", o.vmm_pid, rd.path);
	vs_loop_run(&l);
	vs_info("exiting");
	vs_fault_stop();
	vs_rundir_remove(&rd);
	return 0;
}
