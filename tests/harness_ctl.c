/* SPDX-License-Identifier: BSD-3-Clause */
/* vmswapctl runs; see harness.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#define MAX_ARGS 16


/* Drain both pipes until EOF on both or the deadline. */
static void collect(struct h_ctl *c, int out_fd, int err_fd, double deadline)
{
	struct { int fd; char *buf; size_t have; } s[2] = {
		{ out_fd, c->out, 0 }, { err_fd, c->err, 0 },
	};
	int open_n = 2;

	while (open_n && h_now() < deadline) {
		struct pollfd pfd[2];

		for (int i = 0; i < 2; i++)
			pfd[i] = (struct pollfd){ .fd = s[i].fd, .events = POLLIN };
		if (poll(pfd, 2, 100) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			char tmp[1024];
			ssize_t n;

			if (s[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(s[i].fd, tmp, sizeof(tmp));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				s[i].fd = -1;
				open_n--;
				continue;
			}
			size_t room = sizeof(c->out) - 1 - s[i].have;
			size_t k = (size_t)n < room ? (size_t)n : room;

			memcpy(s[i].buf + s[i].have, tmp, k);
			s[i].have += k;
			s[i].buf[s[i].have] = '\0';
		}
	}
}

static void ctl_exec(struct h_ctl *c, const char *const *argv)
{
	int out[2], err[2], st = 0;
	double deadline = h_now() + H_CTL_TIMEOUT_S;
	pid_t pid;

	memset(c, 0, sizeof(*c));
	cr_assert(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	collect(c, out[0], err[0], deadline);
	close(out[0]);
	close(err[0]);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (h_now() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			c->rc = -1;
			return;
		}
		h_nap_ms(2);
	}
	c->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void ctl_va(struct h_ctl *c, int pid, const char *arg, va_list ap)
{
	const char *argv[MAX_ARGS + 4];
	char pidbuf[16];
	int n = 0;

	argv[n++] = h_bin("vmswapctl");
	if (pid > 0) {
		snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
		argv[n++] = "-p";
		argv[n++] = pidbuf;
	}
	for (; arg && n < MAX_ARGS; arg = va_arg(ap, const char *))
		argv[n++] = arg;
	argv[n] = NULL;
	ctl_exec(c, argv);
}

void h_ctl_run(struct h_ctl *c, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	ctl_va(c, 0, arg, ap);
	va_end(ap);
}

void h_ctl_pid(struct h_ctl *c, int pid, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	ctl_va(c, pid, arg, ap);
	va_end(ap);
}

const char *h_ctl_ok_at(const char *file, int line, int pid, const char *arg, ...)
{
	static struct h_ctl c;
	va_list ap;

	va_start(ap, arg);
	ctl_va(&c, pid, arg, ap);
	va_end(ap);
	if (c.rc == -1 || c.rc == 4) {
		/* Timed out: was the helper done, only not telling? */
		char *before = h_status(pid), *fresh = h_status_nudged(pid);

		cr_assert_fail("%s:%d: vmswapctl -p %d %s ... timed out (%d)\nstdout: %s\nstderr: %s\n"
			       "status.json then:\n%s\nafter asking for a republish (if it differs, "
			       "the helper had not published its last change):\n%s", file, line,
			       pid, arg, c.rc, c.out, c.err, before, fresh ? fresh : "(none)");
	}
	cr_assert_eq(c.rc, 0, "%s:%d: vmswapctl -p %d %s ... exited %d\nstdout: %s\nstderr: %s",
		     file, line, pid, arg, c.rc, c.out, c.err);
	return c.out;
}
