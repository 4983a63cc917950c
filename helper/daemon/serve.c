/* SPDX-License-Identifier: BSD-3-Clause */
/* One connection: read START, check who asks, start the helper, answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../sys/log.h"
#include "svcd.h"

#define RECV_TIMEOUT_S 2 /* one connection at a time: a silent peer must not hold us */

static void reply(int conn, int result, const struct svcd_cfg *c, const char *why)
{
	struct vmswap_svc_reply r = { .magic = VMSWAP_SVC_MAGIC, .version = VMSWAP_SVC_VERSION,
				      .type = VMSWAP_SVC_REPLY, .size = sizeof(r),
				      .result = result };

	if (!result)
		snprintf(r.run_root, sizeof(r.run_root), "%s", c->run_root);
	snprintf(r.message, sizeof(r.message), "%s", why ? why : "");
	if (send(conn, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
		vs_info("could not answer a VMM: %s", strerror(errno));
}

/* One START, no fds (any that came are closed). Bytes read or -errno. */
static ssize_t recv_start(int conn, struct vmswap_svc_start *m)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct timeval tv = { RECV_TIMEOUT_S, 0 };
	ssize_t len;

	if (setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	len = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
	if (len < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
				close(((int *)CMSG_DATA(cm))[i]);
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EPROTO;
	return len;
}

int svcd_serve(const struct svcd_cfg *c, int conn)
{
	struct vmswap_svc_start *m = calloc(1, sizeof(*m));
	struct svcd_peer p = { .pidfd = -1 };
	char why[VMSWAP_SVC_MSG_MAX] = "";
	ssize_t len;
	int r;

	if (!m) {
		reply(conn, -ENOMEM, c, "out of memory");
		return -1;
	}
	len = recv_start(conn, m);
	if (len < 0 || (r = vmswap_svc_check_start(m, (size_t)len))) {
		r = len < 0 ? (int)len : r;
		snprintf(why, sizeof(why), "bad request: %s", strerror(-r));
		goto out;
	}
	if ((r = svcd_peer_get(conn, &p, why, sizeof(why))))
		goto out;
	if (p.pid != m->vmm_pid) {
		snprintf(why, sizeof(why), "pid %d asked for pid %d: a VMM asks for itself only",
			 (int)p.pid, (int)m->vmm_pid);
		r = -EPERM;
		goto out;
	}
	if ((r = svcd_peer_allowed(c, &p, why, sizeof(why))) ||
	    (r = svcd_rundir_make(c, &p, why, sizeof(why))) ||
	    (r = svcd_spawn(c, &p, conn, m, why, sizeof(why))))
		goto out;
	if (!svcd_peer_alive(&p)) {
		/* The helper sees its VMM gone and leaves on its own. */
		snprintf(why, sizeof(why), "pid %d exited meanwhile", (int)p.pid);
		r = -ESRCH;
		goto out;
	}
	vs_info("started a helper for pid %d (uid %u)", (int)p.pid, (unsigned)p.uid);
out:
	if (r)
		vs_warn("refused pid %d: %s", (int)p.pid, why);
	reply(conn, r, c, why);
	free(m);
	if (!r)
		return p.pidfd;
	if (p.pidfd >= 0)
		close(p.pidfd);
	return -1;
}
