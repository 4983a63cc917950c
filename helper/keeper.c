/* SPDX-License-Identifier: BSD-3-Clause */
/* The keeper process and the helper's side of its socket; see keeper.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keeper.h"
#include "log.h"

#define KEEP_MAX 1024
#define RESTARTS_MAX 5       /* within RESTART_WINDOW_S: then give up */
#define RESTART_WINDOW_S 60

enum { KEEP_ADD = 1, KEEP_FORGET = 2 };

struct keep_msg {
	uint32_t op;
	int32_t num;
};

/* ---- helper side ---- */

static int kfd = -1;
static pid_t kpid;  /* our parent, asked once: getppid is outside the sandbox */
static pthread_mutex_t klock = PTHREAD_MUTEX_INITIALIZER;
static bool kdead;

void vs_keep_init(int keeper_fd)
{
	kfd = keeper_fd;
	if (kfd >= 0) {
		fcntl(kfd, F_SETFD, FD_CLOEXEC);
		kpid = getppid();
	}
}

pid_t vs_keeper_pid(void)
{
	return kfd >= 0 ? kpid : 0;
}

int vs_keep_fd_get(void)
{
	return kfd;
}

static void keep_send(uint32_t op, int fd)
{
	struct keep_msg m = { .op = op, .num = fd };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (kfd < 0 || fd < 0)
		return;
	if (op == KEEP_ADD) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	/* One lock: an add and a forget of the same number stay in order. */
	pthread_mutex_lock(&klock);
	while (sendmsg(kfd, &mh, MSG_NOSIGNAL) < 0) {
		if (errno == EINTR)
			continue;
		if (!kdead)
			vs_err("keeper unreachable (%s): a crash of this helper can no longer "
			       "be recovered", strerror(errno));
		kdead = true;
		break;
	}
	pthread_mutex_unlock(&klock);
}

void vs_keep(int fd)
{
	keep_send(KEEP_ADD, fd);
}

void vs_keep_forget(int fd)
{
	keep_send(KEEP_FORGET, fd);
}

void vs_keep_close(int fd)
{
	if (fd < 0)
		return;
	keep_send(KEEP_FORGET, fd);
	close(fd);
}

/* ---- keeper side ---- */

static struct { int num, fd; } kept[KEEP_MAX];
static int nkept;

static void kept_drop(int num)
{
	for (int i = 0; i < nkept; i++) {
		if (kept[i].num == num) {
			close(kept[i].fd);
			kept[i] = kept[--nkept];
			return;
		}
	}
}

static void kept_add(int num, int fd)
{
	kept_drop(num);
	if (nkept == KEEP_MAX || num < 3) {
		close(fd);
		vs_err("keeper: cannot keep fd %d", num);
		return;
	}
	kept[nkept].num = num;
	kept[nkept++].fd = fd;
}

/* One message; false once the helper's end is closed (it died or exited). */
static bool keeper_recv(int s)
{
	struct keep_msg m;
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	int fd = -1;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = f;
			else
				close(f);
		}
	}
	if (n == sizeof(m) && m.op == KEEP_ADD && fd >= 0)
		kept_add(m.num, fd);
	else if (fd >= 0)
		close(fd);
	if (n == sizeof(m) && m.op == KEEP_FORGET)
		kept_drop(m.num);
	return true;
}

static char *fmt_int(char *buf, long v)
{
	snprintf(buf, 24, "%ld", v);
	return buf;
}

/* In the new child: every kept fd at its old number, then exec --recover. */
static void __attribute__((noreturn)) exec_recovery(pid_t vmm_pid, int sock_fd, int ks)
{
	char a[24], b[24], c[24];
	int high = 64, hi[KEEP_MAX], khi;
	sigset_t none;

	for (int i = 0; i < nkept; i++) {
		if (kept[i].num >= high)
			high = kept[i].num + 1;
		if (kept[i].fd >= high)
			high = kept[i].fd + 1;
	}
	if (ks >= high)
		high = ks + 1;
	/* Above every number in play first, so no dup2 overwrites a kept fd. */
	for (int i = 0; i < nkept; i++)
		if ((hi[i] = fcntl(kept[i].fd, F_DUPFD_CLOEXEC, high)) < 0)
			_exit(127);
	khi = fcntl(ks, F_DUPFD, high);
	if (khi < 0)
		_exit(127);
	close_range(3, (unsigned)high - 1, 0);
	for (int i = 0; i < nkept; i++)
		if (dup2(hi[i], kept[i].num) < 0)
			_exit(127);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	char *argv[] = { "vmswap-helper", "--recover", "--vmm-pid", fmt_int(a, vmm_pid),
			 "--sock-fd", fmt_int(b, sock_fd), "--keeper-fd", fmt_int(c, khi), NULL };
	execv("/proc/self/exe", argv);
	_exit(127);
}

/* Was the last restart one too many? Keeps the times of recent ones. */
static bool too_many_restarts(void)
{
	static time_t times[RESTARTS_MAX];
	static int n;
	time_t now = time(NULL);
	int keep = 0;

	for (int i = 0; i < n; i++)
		if (now - times[i] < RESTART_WINDOW_S)
			times[keep++] = times[i];
	n = keep;
	if (n == RESTARTS_MAX)
		return true;
	times[n++] = now;
	return false;
}

static void __attribute__((noreturn)) keeper_loop(pid_t vmm_pid, int sock_fd, int s, pid_t child)
{
	for (;;) {
		struct pollfd pf = { .fd = s, .events = POLLIN };
		int st, sv[2];
		pid_t w;

		if (poll(&pf, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (keeper_recv(s))
			continue;
		/* Its end is closed: it is exiting or gone. */
		while ((w = waitpid(child, &st, 0)) < 0 && errno == EINTR)
			;
		close(s);
		if (w < 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0))
			_exit(0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == VS_EXIT_FINAL)
			_exit(1);
		if (WIFSIGNALED(st))
			vs_err("keeper: helper %d killed by signal %d", (int)child, WTERMSIG(st));
		else
			vs_err("keeper: helper %d exited with status %d", (int)child,
			       WEXITSTATUS(st));
		if (too_many_restarts()) {
			vs_err("keeper: %d restarts within %d s; giving up (guest pages held by the "
			       "helper are lost)", RESTARTS_MAX, RESTART_WINDOW_S);
			_exit(1);
		}
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
			vs_err("keeper: socketpair: %s", strerror(errno));
			_exit(1);
		}
		child = fork();
		if (child < 0) {
			vs_err("keeper: fork: %s", strerror(errno));
			_exit(1);
		}
		if (child == 0)
			exec_recovery(vmm_pid, sock_fd, sv[1]);
		close(sv[1]);
		s = sv[0];
		vs_warn("keeper: restarted the helper as pid %d to recover", (int)child);
	}
}

int vs_keeper_start(pid_t vmm_pid, int sock_fd)
{
	int sv[2];
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	child = fork();
	if (child < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (child == 0) {
		close(sv[0]);
		return sv[1];
	}
	/* The keeper: nothing but its socket; the helper sends what to keep. */
	close(sv[1]);
	if (sv[0] > 3)
		close_range(3, (unsigned)sv[0] - 1, 0);
	close_range((unsigned)sv[0] + 1, ~0u, 0);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	keeper_loop(vmm_pid, sock_fd, sv[0], child);
}
