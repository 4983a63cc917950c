/* SPDX-License-Identifier: BSD-3-Clause */
/* vmswapctl runs, status.json reads and the run dir; see harness.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../helper/ctl_json.h"
#include "harness.h"
#include "vmswap/common.h"

#define MAX_ARGS 16

/* A small /proc file, one line, without its newline; "" on error. */
static void read_small(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, (int)n, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

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
	cr_assert_eq(c.rc, 0, "%s:%d: vmswapctl -p %d %s ... exited %d\nstdout: %s\nstderr: %s",
		     file, line, pid, arg, c.rc, c.out, c.err);
	return c.out;
}

char *h_status(int pid)
{
	char *json = NULL;
	int r = -EBADMSG;

	/* -EBADMSG: caught between two publications; transient. */
	for (int i = 0; i < 50 && r == -EBADMSG; i++) {
		r = vs_status_read(pid, &json);
		if (r == -EBADMSG)
			h_nap_ms(10);
	}
	cr_assert(r == 0, "cannot read status.json of pid %d: %s", pid, strerror(-r));
	return json;
}

uint64_t h_json_u64(const char *json, const char *key)
{
	uint64_t v = 0;
	int r = vs_json_get_u64(json, key, &v);

	cr_assert(r == 0, "status has no integer \"%s\" (%s):\n%s", key, strerror(-r), json);
	return v;
}

void h_json_str(const char *json, const char *key, char *buf, size_t n)
{
	int r = vs_json_get_str(json, key, buf, n);

	cr_assert(r == 0, "status has no string \"%s\" (%s):\n%s", key, strerror(-r), json);
}

void h_assert_state(const char *json, const char *state)
{
	char now[64];

	h_json_str(json, "state", now, sizeof(now));
	cr_assert_str_eq(now, state, "state %s, expected %s:\n%s", now, state, json);
}

int h_fifo_write(int pid, const char *data)
{
	return h_fifo_write_n(pid, data, strlen(data));
}

int h_fifo_write_n(int pid, const char *data, size_t len)
{
	char path[512];
	size_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%d/%s", h_env.run, pid, VMSWAP_CONTROL_NAME);
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
		off += (size_t)n;
	}
	close(fd);
	return 0;
}

/* "tid comm state wchan" per helper thread, for failure messages. */
static const char *helper_threads(int pid)
{
	static char out[1024];
	char dir[64], path[400], comm[32], st[512], wchan[64];
	pid_t hp = h_helper_pid(pid);
	struct dirent *de;
	size_t len = 0;
	DIR *d;

	out[0] = '\0';
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)hp);
	if (hp <= 0 || !(d = opendir(dir)))
		return "(helper gone)";
	while ((de = readdir(d)) && len < sizeof(out) - 200) {
		char *p;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/comm", dir, de->d_name);
		read_small(path, comm, sizeof(comm));
		snprintf(path, sizeof(path), "%s/%s/stat", dir, de->d_name);
		read_small(path, st, sizeof(st));
		snprintf(path, sizeof(path), "%s/%s/wchan", dir, de->d_name);
		read_small(path, wchan, sizeof(wchan));
		p = strrchr(st, ')');
		len += (size_t)snprintf(out + len, sizeof(out) - len, "  %s %s %c %s\n", de->d_name,
					comm, p && p[1] ? p[2] : '?', wchan);
	}
	closedir(d);
	return out;
}

bool h_reply_wait(int pid, const char *id, char *msg, size_t n)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;
	bool ok = false;

	for (;;) {
		char *json = h_status(pid);
		int r = vs_json_find_reply(json, id, &ok, msg, n);

		if (r == 0) {
			free(json);
			return ok;
		}
		if (h_now() > deadline)
			cr_assert_fail("pid %d: no reply with id %s; helper threads:\n%s%s", pid, id,
				       helper_threads(pid), json);
		free(json);
		h_nap_ms(5);
	}
}

bool h_fifo_reply(int pid, const char *line, const char *id, char *msg, size_t n)
{
	char buf[VMSWAP_CMD_MAX + 2];

	snprintf(buf, sizeof(buf), "%s\n", line);
	cr_assert(h_fifo_write(pid, buf) == 0, "cannot write to the control FIFO of pid %d", pid);
	return h_reply_wait(pid, id, msg, n);
}

char *h_status_fresh(int pid)
{
	static unsigned seq;
	char id[VMSWAP_TOKEN_MAX + 1], line[64];

	snprintf(id, sizeof(id), "h%d-%u", (int)getpid(), ++seq);
	snprintf(line, sizeof(line), "status id=%s", id);
	h_fifo_reply(pid, line, id, NULL, 0);
	return h_status(pid);
}

uint64_t h_metric(int pid, const char *key)
{
	char *json = h_status_fresh(pid);
	uint64_t v = h_json_u64(json, key);

	free(json);
	return v;
}

char *h_wait_state(int pid, const char *state)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;
	char now[64] = "?";

	for (;;) {
		char *json = h_status(pid);

		if (!vs_json_get_str(json, "state", now, sizeof(now)) && !strcmp(now, state))
			return json;
		/* Failed only changes on a command; no point waiting. */
		if (h_now() > deadline || !strcmp(now, "Failed")) {
			cr_assert_fail("pid %d: state %s, not %s; helper threads:\n%s%s", pid, now,
				       state, helper_threads(pid), json);
		}
		free(json);
		h_nap_ms(10);
	}
}

uint64_t h_wait_u64_at_least(int pid, const char *key, uint64_t min)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;

	for (;;) {
		char *json = h_status(pid);
		uint64_t v = h_json_u64(json, key);

		if (v >= min) {
			free(json);
			return v;
		}
		if (h_now() > deadline)
			cr_assert_fail("pid %d: %s = %llu, still below %llu:\n%s", pid, key,
				       (unsigned long long)v, (unsigned long long)min, json);
		free(json);
		h_nap_ms(10);
	}
}

void h_wait_u64_eq(int pid, const char *key, uint64_t want)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;

	for (;;) {
		char *json = h_status(pid);
		uint64_t v = h_json_u64(json, key);

		if (v == want) {
			free(json);
			return;
		}
		if (h_now() > deadline)
			cr_assert_fail("pid %d: %s = %llu, still not %llu:\n%s", pid, key,
				       (unsigned long long)v, (unsigned long long)want, json);
		free(json);
		h_nap_ms(10);
	}
}

bool h_rundir_exists(int pid)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%d", h_env.run, pid);
	return stat(path, &st) == 0;
}

bool h_wait_rundir_gone(int pid)
{
	double deadline = h_now() + H_EXIT_TIMEOUT_S;

	while (h_rundir_exists(pid)) {
		if (h_now() > deadline)
			return false;
		h_nap_ms(10);
	}
	return true;
}

pid_t h_helper_pid(int pid)
{
	char path[400];
	FILE *f;
	int hp = -1;

	snprintf(path, sizeof(path), "%s/%d/%s", h_env.run, pid, VMSWAP_PIDFILE_NAME);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &hp) != 1)
		hp = -1;
	fclose(f);
	return hp;
}

bool h_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool alive = false;

	/* A zombie counts as gone. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] && p[2])
		alive = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}
