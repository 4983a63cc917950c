/* SPDX-License-Identifier: BSD-3-Clause */
/* status.json, the control FIFO, the run dir; see harness.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../helper/ctl/ctl_json.h"
#include "harness.h"
#include "vmswap/common.h"

/* A small /proc file, one line, without its newline; "" on error. */
/* A small /proc file on one line: newlines become spaces, trailing ones go. */
static void read_small(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	size_t len = 0;
	int c;

	buf[0] = '\0';
	if (!f)
		return;
	while ((c = fgetc(f)) != EOF && len + 1 < n)
		buf[len++] = c == '\n' ? ' ' : (char)c;
	while (len && buf[len - 1] == ' ')
		len--;
	buf[len] = '\0';
	fclose(f);
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

size_t h_thread_lines(pid_t pid, bool stack, char *out, size_t n)
{
	char dir[64], path[400], comm[32], st[512], wchan[64], stk[1024] = "";
	struct dirent *de;
	size_t len = 0;
	DIR *d;

	out[0] = '\0';
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	if (pid <= 0 || !(d = opendir(dir)))
		return 0;
	while ((de = readdir(d)) && len + 200 < n) {
		char *p;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/comm", dir, de->d_name);
		read_small(path, comm, sizeof(comm));
		snprintf(path, sizeof(path), "%s/%s/stat", dir, de->d_name);
		read_small(path, st, sizeof(st));
		snprintf(path, sizeof(path), "%s/%s/wchan", dir, de->d_name);
		read_small(path, wchan, sizeof(wchan));
		if (stack) {
			snprintf(path, sizeof(path), "%s/%s/stack", dir, de->d_name);
			read_small(path, stk, sizeof(stk));
		}
		p = strrchr(st, ')');
		len += (size_t)snprintf(out + len, n - len, "  %s %s %c %s%s%s\n", de->d_name, comm,
					p && p[1] ? p[2] : '?', wchan, stack ? " | " : "", stk);
		if (len >= n)
			len = n - 1;
	}
	closedir(d);
	return len;
}

/* "tid comm state wchan" per helper thread, for failure messages. */
static const char *helper_threads(int pid)
{
	static char out[1024];

	return h_thread_lines(h_helper_pid(pid), false, out, sizeof(out)) ? out : "(helper gone)";
}

char *h_status_nudged(int pid)
{
	static unsigned seq;
	char id[VMSWAP_TOKEN_MAX + 1], line[64];
	double deadline = h_now() + 5.0;

	snprintf(id, sizeof(id), "nudge%d-%u", (int)getpid(), ++seq);
	snprintf(line, sizeof(line), "status id=%s\n", id);
	if (h_fifo_write(pid, line))
		return NULL;
	while (h_now() < deadline) {
		char *json = NULL;

		if (!vs_status_read(pid, &json) && !vs_json_find_reply(json, id, NULL, NULL, 0))
			return json;
		free(json);
		h_nap_ms(10);
	}
	return NULL;
}

#define STALE_NOTE "\nSTALE STATUS: the helper had got there but never published it; " \
		   "status.json only changed when asked to republish"

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
		if (h_now() > deadline) {
			char *fresh = h_status_nudged(pid);
			bool stale = fresh && !vs_json_find_reply(fresh, id, NULL, NULL, 0);

			cr_assert_fail("pid %d: no reply with id %s; helper threads:\n%s%s%s", pid, id,
				       helper_threads(pid), json, stale ? STALE_NOTE : "");
		}
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
			char *fresh = strcmp(now, "Failed") ? h_status_nudged(pid) : NULL;
			char later[64] = "";
			bool stale = fresh && !vs_json_get_str(fresh, "state", later, sizeof(later)) &&
				     !strcmp(later, state);

			cr_assert_fail("pid %d: state %s, not %s; helper threads:\n%s%s%s", pid, now,
				       state, helper_threads(pid), json, stale ? STALE_NOTE : "");
		}
		free(json);
		h_nap_ms(10);
	}
}

void h_wait_u64_eq(int pid, const char *key, uint64_t want)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;

	for (;;) {
		char *json = h_status(pid);
		uint64_t v = h_json_u64(json, key), later = 0;

		if (v == want) {
			free(json);
			return;
		}
		if (h_now() > deadline) {
			char *fresh = h_status_nudged(pid);
			bool stale = fresh && !vs_json_get_u64(fresh, key, &later) && later == want;

			cr_assert_fail("pid %d: %s = %llu, still not %llu:\n%s%s", pid, key,
				       (unsigned long long)v, (unsigned long long)want, json,
				       stale ? STALE_NOTE : "");
		}
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

/* Until still(pid) is false; false when it still holds after H_EXIT_TIMEOUT_S. */
static bool wait_until_not(bool (*still)(pid_t), pid_t pid)
{
	double deadline = h_now() + H_EXIT_TIMEOUT_S;

	while (still(pid)) {
		if (h_now() > deadline)
			return false;
		h_nap_ms(10);
	}
	return true;
}

bool h_wait_rundir_gone(int pid)
{
	return wait_until_not(h_rundir_exists, pid);
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

bool h_wait_dead(pid_t pid)
{
	return wait_until_not(h_alive, pid);
}
