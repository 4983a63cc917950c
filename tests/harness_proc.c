/* SPDX-License-Identifier: BSD-3-Clause */
/* Children speaking the line protocol (toyvmm, mapper); see harness.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

extern char **environ;

/* environ with the overrides applied; the strings are not copied. */
static char **make_env(const char *const env[], bool no_shim)
{
	static char preload[PATH_MAX + 16];
	size_t n = 0, nov = 0, j = 0;
	char **out;

	while (environ[n])
		n++;
	while (env && env[nov])
		nov++;
	out = calloc(n + nov + 2, sizeof(*out));
	cr_assert(out);
	for (size_t i = 0; i < n; i++) {
		bool drop = !strncmp(environ[i], "LD_PRELOAD=", 11);

		for (size_t k = 0; k < nov && !drop; k++) {
			size_t kl = strcspn(env[k], "=");

			drop = !strncmp(environ[i], env[k], kl) && environ[i][kl] == '=';
		}
		if (!drop)
			out[j++] = environ[i];
	}
	/* An explicit LD_PRELOAD among the overrides replaces ours. */
	for (size_t k = 0; k < nov && !no_shim; k++)
		no_shim = !strncmp(env[k], "LD_PRELOAD=", 11);
	if (!no_shim) {
		snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", h_env.shim);
		out[j++] = preload;
	}
	for (size_t k = 0; k < nov; k++)
		if (strchr(env[k], '='))
			out[j++] = (char *)env[k];
	return out;
}

struct h_proc *h_spawn(const char *const argv[], const char *const env[], bool no_shim)
{
	int in[2], out[2], errfd;
	pid_t parent = getpid(), pid;
	struct h_proc *p;
	char **envp;

	cr_assert(h_nprocs < H_MAX_PROCS, "too many processes in one test");
	p = calloc(1, sizeof(*p));
	cr_assert(p);
	snprintf(p->errpath, sizeof(p->errpath), "%s/proc%d.stderr", h_env.dir, h_nprocs);
	errfd = open(p->errpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	cr_assert(errfd >= 0);
	cr_assert(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
	envp = make_env(env, no_shim);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Never outlive the test, even when Criterion kills it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(errfd, 2) < 0)
			_exit(127);
		execve(argv[0], (char *const *)argv, envp);
		dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(envp);
	close(in[0]);
	close(out[1]);
	close(errfd);
	p->pid = pid;
	p->in_fd = in[1];
	p->out_fd = out[0];
	h_procs[h_nprocs++] = p;
	return p;
}

/* One line from p->out_fd into p->last. */
static int read_line(struct h_proc *p, double deadline)
{
	for (;;) {
		char *nl = memchr(p->buf, '\n', p->have);

		if (nl) {
			size_t len = (size_t)(nl - p->buf);

			snprintf(p->last, sizeof(p->last), "%.*s", (int)len, p->buf);
			memmove(p->buf, nl + 1, p->have - len - 1);
			p->have -= len + 1;
			return 0;
		}
		if (p->have == sizeof(p->buf))
			return -EMSGSIZE;
		double left = deadline - h_now();
		struct pollfd pfd = { .fd = p->out_fd, .events = POLLIN };

		if (left <= 0)
			return -ETIMEDOUT;
		int r = poll(&pfd, 1, (int)(left * 1000) + 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			continue;
		ssize_t n = read(p->out_fd, p->buf + p->have, sizeof(p->buf) - p->have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p->have += (size_t)n;
	}
}

static int vsend(struct h_proc *p, const char *fmt, va_list ap)
{
	char line[512];
	int len = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	size_t off = 0;

	if (len < 0 || len >= (int)sizeof(line) - 1)
		return -EINVAL;
	line[len++] = '\n';
	p->last[0] = '\0';
	while (off < (size_t)len) {
		ssize_t n = write(p->in_fd, line + off, (size_t)len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

int h_send(struct h_proc *p, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsend(p, fmt, ap);
	va_end(ap);
	return r;
}

int h_recv(struct h_proc *p, double timeout_s)
{
	return read_line(p, h_now() + timeout_s);
}

int h_cmd(struct h_proc *p, double timeout_s, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsend(p, fmt, ap);
	va_end(ap);
	return r ? r : read_line(p, h_now() + timeout_s);
}

/* The last ~600 bytes of its stderr, for failure messages. */
static const char *stderr_tail(const struct h_proc *p)
{
	static char tail[640];
	char *all = h_proc_stderr(p);
	size_t len = strlen(all);

	snprintf(tail, sizeof(tail), "%s", len > 600 ? all + len - 600 : all);
	free(all);
	return tail;
}

const char *h_ok_at(const char *file, int line, struct h_proc *p, const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = h_cmd(p, H_CMD_TIMEOUT_S, "%s", cmd);
	cr_assert(r == 0, "%s:%d: pid %d: no answer to '%s': %s\nstderr tail:\n%s", file, line,
		  (int)p->pid, cmd, strerror(-r), stderr_tail(p));
	cr_assert(!strncmp(p->last, "ok", 2), "%s:%d: pid %d: '%s' answered '%s'\nstderr tail:\n%s",
		  file, line, (int)p->pid, cmd, p->last, stderr_tail(p));
	return p->last;
}

int h_proc_wait(struct h_proc *p, double timeout_s)
{
	double deadline = h_now() + timeout_s;

	while (!p->reaped) {
		pid_t r = waitpid(p->pid, &p->wstatus, WNOHANG);

		if (r == p->pid) {
			p->reaped = true;
			break;
		}
		if (r < 0 && errno != EINTR)
			return -errno;
		if (h_now() > deadline)
			return -ETIMEDOUT;
		h_nap_ms(5);
	}
	return p->wstatus;
}

void h_proc_kill(struct h_proc *p, int sig)
{
	if (!p->reaped)
		kill(p->pid, sig);
}

char *h_proc_stderr(const struct h_proc *p)
{
	FILE *f = fopen(p->errpath, "re");
	char *buf = NULL;
	size_t n = 0;

	if (f) {
		buf = calloc(1, 1 << 20);
		cr_assert(buf);
		n = fread(buf, 1, (1 << 20) - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf ? buf : strdup("");
}

int h_count_lines(const char *text, const char *needle)
{
	int n = 0;

	while (*text) {
		const char *eol = strchr(text, '\n');
		size_t len = eol ? (size_t)(eol - text) : strlen(text);

		if (memmem(text, len, needle, strlen(needle)))
			n++;
		text += len + (eol ? 1 : 0);
	}
	return n;
}
