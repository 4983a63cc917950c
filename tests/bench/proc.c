/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Children: a VMM under the shim that answers one line per command on
 * stdin (toyvmm, vmprobe), and short-lived commands (vmswapctl, mkswap)
 * whose output is captured. Every child is recorded so that cleanup can
 * end exactly the processes this benchmark started, by pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MAX_KIDS 32

static volatile pid_t kids[MAX_KIDS];
static volatile pid_t helpers[MAX_KIDS];

static void track(volatile pid_t *tab, pid_t pid, bool add)
{
	for (int i = 0; i < MAX_KIDS; i++) {
		if (add && !tab[i]) {
			tab[i] = pid;
			return;
		}
		if (!add && tab[i] == pid) {
			tab[i] = 0;
			return;
		}
	}
}

void bm_child_track(pid_t pid, bool add)
{
	track(kids, pid, add);
}

/* In a forked child that does not exec: no inherited cleanup, die with us. */
void bm_child_setup(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS,
				    SIGABRT, SIGFPE };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Is @pid alive and still a vmswap-helper? (pids are reused) */
static bool helper_alive(pid_t pid)
{
	char path[64], comm[32] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	return n > 0 && !strncmp(comm, "vmswap-helper", 13);
}

/* Ends what we started: our children, then the helpers they spawned. */
void bm_children_kill(void)
{
	for (int i = 0; i < MAX_KIDS; i++) {
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
	}
	for (int i = 0; i < MAX_KIDS; i++) {
		pid_t h = helpers[i];

		if (h <= 0)
			continue;
		/* It leaves by itself once its VMM is gone; give it 3 s. */
		for (int t = 0; t < 300 && helper_alive(h); t++)
			bm_sleep_ms(10);
		if (helper_alive(h))
			kill(h, SIGKILL);
		helpers[i] = 0;
	}
}

static int reap(pid_t pid, double timeout_s)
{
	double end = bm_now() + timeout_s;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, timeout_s > 0 ? WNOHANG : 0);

		if (r == pid) {
			track(kids, pid, false);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		if (r < 0 && errno != EINTR) {
			track(kids, pid, false);
			return -errno;
		}
		if (bm_now() > end) {
			kill(pid, SIGKILL);
			timeout_s = 0;
			continue;
		}
		bm_sleep_ms(2);
	}
}

int bm_run(const char *const argv[], char *out, size_t n)
{
	int p[2], r;
	size_t len = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (!pid) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	track(kids, pid, true);
	close(p[1]);
	for (;;) {
		char tmp[4096];
		ssize_t k = read(p[0], tmp, sizeof(tmp));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		for (ssize_t i = 0; i < k && out && len + 1 < n; i++)
			out[len++] = tmp[i];
	}
	if (out && n)
		out[len] = 0;
	close(p[0]);
	return reap(pid, 0);
}

int bm_ctl(pid_t vmm, double *wall_ms, char *out, size_t n, const char *const args[])
{
	const char *argv[16];
	char ctl[600], pid[16];
	int k = 0, r;
	double t0;

	snprintf(ctl, sizeof(ctl), "%s/vmswapctl", bm.build);
	snprintf(pid, sizeof(pid), "%d", (int)vmm);
	argv[k++] = ctl;
	argv[k++] = "-p";
	argv[k++] = pid;
	for (int i = 0; args[i] && k < 13; i++)
		argv[k++] = args[i];
	if (strcmp(args[0], "status")) { /* status takes no --timeout */
		argv[k++] = "--timeout";
		argv[k++] = "300";
	}
	argv[k] = NULL;
	t0 = bm_now();
	r = bm_run(argv, out, n);
	if (wall_ms)
		*wall_ms = (bm_now() - t0) * 1000;
	return r;
}

int bm_status(pid_t vmm, char *json, size_t n)
{
	const char *args[] = { "status", "--json", NULL };

	return bm_ctl(vmm, NULL, json, n, args);
}

/* Wait until the helper published a status and check it manages the VMM. */
static int wait_helper(struct bm_vmm *v)
{
	static char json[16384];
	double end = bm_now() + 15;
	uint64_t hp = 0;

	while (bm_status(v->pid, json, sizeof(json))) {
		if (bm_now() > end) {
			bm_log("no status from the helper of %d: %s", (int)v->pid, json);
			return -ETIMEDOUT;
		}
		bm_sleep_ms(50);
	}
	if (strstr(json, "\"managed\":false")) {
		bm_log("vmswap does not manage pid %d: %s", (int)v->pid, json);
		return -ENOTSUP;
	}
	if (bm_json_u64(json, "helper_pid", &hp) || !hp)
		return -EPROTO;
	v->helper = (pid_t)hp;
	track(helpers, v->helper, true);
	return 0;
}

int bm_vmm_start(struct bm_vmm *v, char *const argv[], const char *log)
{
	int in[2], out[2], r;
	char preload[600];

	memset(v, 0, sizeof(*v));
	v->in = v->out = -1;
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		r = -errno;
		close(in[0]);
		close(in[1]);
		return r;
	}
	snprintf(preload, sizeof(preload), "%s/libvmswap.so", bm.build);
	v->pid = fork();
	if (v->pid < 0) {
		r = -errno;
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		return r;
	}
	if (!v->pid) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		dup2(in[0], 0);
		dup2(out[1], 1);
		if (fd >= 0)
			dup2(fd, 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("LD_PRELOAD", preload, 1);
		execv(argv[0], argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	track(kids, v->pid, true);
	close(in[0]);
	close(out[1]);
	v->in = in[1];
	v->out = out[0];
	r = wait_helper(v);
	if (r)
		bm_vmm_stop(v);
	return r;
}

/* One command, one answer line. 0 for "ok...", 1 for "err...", -errno. */
int bm_vmm_cmd(struct bm_vmm *v, double timeout_s, char *reply, size_t n, const char *cmd)
{
	double end = bm_now() + timeout_s;
	size_t cl = strlen(cmd);
	char *nl;

	if (v->in < 0 || write(v->in, cmd, cl) != (ssize_t)cl || write(v->in, "\n", 1) != 1)
		return -EPIPE;
	while (!(nl = memchr(v->buf, '\n', v->len))) {
		struct pollfd pfd = { v->out, POLLIN, 0 };
		int left = (int)((end - bm_now()) * 1000);
		ssize_t k;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -errno;
		if (!pfd.revents)
			continue;
		if (v->len == sizeof(v->buf))
			return -EOVERFLOW;
		k = read(v->out, v->buf + v->len, sizeof(v->buf) - v->len);
		if (k <= 0)
			return k < 0 ? -errno : -EPIPE;
		v->len += (size_t)k;
	}
	*nl = 0;
	if (reply && n)
		snprintf(reply, n, "%s", v->buf);
	bool ok = !strncmp(v->buf, "ok", 2);
	v->len -= (size_t)(nl + 1 - v->buf);
	memmove(v->buf, nl + 1, v->len);
	return ok ? 0 : 1;
}

void bm_vmm_stop(struct bm_vmm *v)
{
	if (v->pid <= 0)
		return;
	if (v->in >= 0) {
		char r[64];

		bm_vmm_cmd(v, 30, r, sizeof(r), "quit");
		close(v->in);
		v->in = -1;
	}
	reap(v->pid, 30);
	if (v->out >= 0)
		close(v->out);
	v->out = -1;
	v->pid = 0;
	if (v->helper > 0) {
		for (int t = 0; t < 500 && helper_alive(v->helper); t++)
			bm_sleep_ms(10);
		if (helper_alive(v->helper)) {
			bm_log("helper %d still running 5 s after its VMM exited; ending it",
			       (int)v->helper);
			kill(v->helper, SIGTERM);
			for (int t = 0; t < 300 && helper_alive(v->helper); t++)
				bm_sleep_ms(10);
			if (helper_alive(v->helper))
				kill(v->helper, SIGKILL);
		}
		track(helpers, v->helper, false);
		v->helper = 0;
	}
}
