/* SPDX-License-Identifier: BSD-3-Clause */
/* Writing one command line to the helper's control FIFO. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_common.h"
#include "ctl_json.h"
#include "vmswap/util.h"

/*
 * "<ourpid>-<n>" with n chosen so that no reply in the current status
 * carries it yet: a recycled pid must not match an old answer.
 */
int vs_ctl_new_id(int vmm_pid, char *id, size_t n)
{
	char *json = NULL;
	unsigned k = 1;
	int r;

	if (vs_status_read(vmm_pid, &json))
		json = NULL;
	do {
		r = snprintf(id, n, "%d-%u", (int)getpid(), k++);
		if (r < 0 || (size_t)r >= n) {
			free(json);
			return -ENAMETOOLONG;
		}
	} while (json && vs_json_find_reply(json, id, NULL, NULL, 0) != -ENOENT && k < 1000);
	free(json);
	return 0;
}

static enum vs_cmd_keep send_keep;

void vs_ctl_send_keep(enum vs_cmd_keep keep)
{
	send_keep = keep;
}

/*
 * Non-blocking open: ENXIO tells us nobody reads the FIFO, instead of
 * hanging. One write() below PIPE_BUF is atomic, so lines from several
 * vmswapctl never interleave. EAGAIN (pipe full) is retried to deadline.
 */
int vs_ctl_send(const struct vs_ctl_target *t, enum vs_cmd_verb verb, const char *id,
		double deadline)
{
	char path[PATH_MAX], line[VMSWAP_CMD_MAX];
	struct stat st;
	size_t len;
	int fd, r;

	r = vmswap_run_path(path, sizeof(path), t->vmm_pid, VMSWAP_CONTROL_NAME);
	if (r)
		return r;
	r = snprintf(line, sizeof(line), "%s%s%s id=%s\n", vs_cmd_name(verb),
		     send_keep ? " keep=" : "", vs_cmd_keep_name(send_keep), id);
	if (r < 0 || (size_t)r >= sizeof(line))
		return -EINVAL;
	len = (size_t)r;
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISFIFO(st.st_mode)) {
		close(fd);
		return -ENOTSUP;
	}
	for (double delay = 0.002;;) {
		ssize_t n = write(fd, line, len);

		if (n == (ssize_t)len) {
			r = 0;
			break;
		}
		if (n >= 0) {
			r = -EIO; /* cannot happen below PIPE_BUF */
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			r = -errno;
			break;
		}
		if (vs_ctl_now() >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		vs_ctl_sleep(delay);
		if (delay < 0.020)
			delay *= 1.5;
	}
	close(fd);
	return r;
}

/* Report a vs_ctl_send() failure; returns the exit code. */
int vs_ctl_send_error(const struct vs_ctl_target *t, enum vs_cmd_verb verb, int err)
{
	char path[PATH_MAX] = VMSWAP_CONTROL_NAME;

	vmswap_run_path(path, sizeof(path), t->vmm_pid, VMSWAP_CONTROL_NAME);
	switch (err) {
	case -ENXIO:
	case -EPIPE:
		vs_ctl_err("vmswap helper for pid %d is not running (nobody reads %s)", t->vmm_pid,
			   path);
		return VS_EXIT_NOHELPER;
	case -ENOENT:
		vs_ctl_err("vmswap helper for pid %d is not running (no %s)", t->vmm_pid, path);
		return VS_EXIT_NOHELPER;
	case -ENOTSUP:
	case -ELOOP:
		vs_ctl_err("%s is not a FIFO; refusing to write '%s' to it", path, vs_cmd_name(verb));
		return VS_EXIT_NOHELPER;
	case -ETIMEDOUT:
		vs_ctl_err("timed out: %s stayed full, the helper (pid %d) does not read it", path,
			   (int)t->helper_pid);
		return VS_EXIT_TIMEOUT;
	default:
		vs_ctl_err("cannot send '%s' to %s: %s", vs_cmd_name(verb), path, strerror(-err));
		return VS_EXIT_NOHELPER;
	}
}
