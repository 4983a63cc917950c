/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Asking vmswapd to start the helper (include/vmswap/svc.h), and telling
 * whether the VMM may start it itself: a VMM under a seccomp filter may
 * be killed for the fork (QEMU -sandbox spawn=deny), so the shim never
 * tries there.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "service.h"

#define SERVICE_TIMEOUT_MS 15000 /* the service waits up to 10 s for the helper */

extern char **environ;

/* Our VMSWAP_* settings, for the helper's environment. */
static void pack_env(struct vmswap_svc_start *m)
{
	for (char **e = environ; e && *e; e++) {
		size_t len = strlen(*e) + 1;

		if (strncmp(*e, "VMSWAP_", 7) || !strchr(*e, '='))
			continue;
		if (m->env_len + len > sizeof(m->env)) {
			shim_log(SHIM_LOG_WARN, "too many VMSWAP_ settings for the service; "
				 "%.*s and later ones are not passed on",
				 (int)(strchr(*e, '=') - *e), *e);
			return;
		}
		memcpy(m->env + m->env_len, *e, len);
		m->env_len += (uint32_t)len;
	}
}

static int await_reply(int s, struct vmswap_svc_reply *rep)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	ssize_t n;
	int r;

	do
		r = poll(&pfd, 1, SERVICE_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	do
		n = recv(s, rep, sizeof(*rep), MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	return vmswap_svc_check_reply(rep, (size_t)n);
}

int shim_service_start(pid_t vmm_pid, char *root, size_t rootn, char *why, size_t n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vmswap_svc_start *m;
	struct vmswap_svc_reply rep;
	int s, r;

	if (!shim_cfg.service[0])
		return -ENOENT;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", shim_cfg.service);
	if (access(sa.sun_path, F_OK))
		return -ENOENT; /* no service on this host */
	m = calloc(1, sizeof(*m));
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (!m || s < 0) {
		r = m ? -errno : -ENOMEM;
		snprintf(why, n, "%s", strerror(-r));
		goto fail;
	}
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(why, n, "cannot connect to %s: %s", sa.sun_path, strerror(-r));
		goto fail;
	}
	*m = (struct vmswap_svc_start){ .magic = VMSWAP_SVC_MAGIC, .version = VMSWAP_SVC_VERSION,
					.type = VMSWAP_SVC_START, .size = sizeof(*m),
					.vmm_pid = vmm_pid };
	pack_env(m);
	if (send(s, m, sizeof(*m), MSG_NOSIGNAL) != (ssize_t)sizeof(*m)) {
		r = -errno;
		snprintf(why, n, "cannot write to %s: %s", sa.sun_path, strerror(-r));
		goto fail;
	}
	r = await_reply(s, &rep);
	if (r) {
		snprintf(why, n, "no answer from %s: %s", sa.sun_path,
			 r == -ETIMEDOUT ? "timed out" : strerror(-r));
		goto fail;
	}
	if (rep.result) {
		r = rep.result;
		snprintf(why, n, "%s refused: %s", sa.sun_path, rep.message);
		goto fail;
	}
	snprintf(root, rootn, "%s", rep.run_root);
	free(m);
	return s;
fail:
	if (s >= 0)
		close(s);
	free(m);
	return r == -ENOENT ? -EHOSTUNREACH : r; /* -ENOENT means "no service" */
}

bool shim_sandboxed(void)
{
	char buf[4096], *p;
	ssize_t len;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false; /* no /proc: nothing to tell by */
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = 0;
	p = strstr(buf, "\nSeccomp:");
	return p && strtol(p + 9, NULL, 10) != 0;
}
