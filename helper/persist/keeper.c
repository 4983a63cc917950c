/* SPDX-License-Identifier: BSD-3-Clause */
/* The helper's side of the keeper's socket, and the restart policy; see keeper.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../model/helper.h"
#include "../sys/log.h"
#include "keeper.h"
#include "keeper_int.h"
#include "manifest.h"

#include "../sys/log.h"
#include "keeper.h"
#include "keeper_int.h"
#include "manifest.h"


static int kfd = -1;
static pid_t kpid;  /* our parent, asked once: getppid is outside the sandbox */
static pthread_mutex_t klock = PTHREAD_MUTEX_INITIALIZER;
static bool kdead;

void vs_keep_init(int keeper_fd)
{
	kfd = keeper_fd;
	vs_hooks.keep = vs_keep;
	vs_hooks.forget = vs_keep_forget;
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

static struct vs_restart_info rinfo;

/* A decimal number in [0, max], nothing else; false otherwise. */
bool vs_keep_parse_u32(const char *s, const char **end, char stop, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++)
		if ((v = v * 10 + (uint64_t)(*s - '0')) > max)
			return false;
	if (*s != stop)
		return false;
	*end = stop ? s + 1 : s;
	*out = (uint32_t)v;
	return true;
}

int vs_keep_restart_info_parse(const char *s)
{
	struct vs_restart_info ri = { 0 };
	const char *p = s;

	/* The keeper writes it: a bad one is a bug, and must not stop the recovery. */
	if (!vs_keep_parse_u32(p, &p, ':', UINT32_MAX, &ri.restarts) ||
	    !vs_keep_parse_u32(p, &p, ':', ri.restarts, &ri.streak) ||
	    !vs_keep_parse_u32(p, &p, 0, DELAY_BASE_MS * DELAY_CAP_TIMES, &ri.delay_ms) ||
	    !ri.restarts || !ri.streak) {
		vs_warn("--restart-info %s: expected RESTARTS:STREAK:DELAY_MS; not shown in status", s);
		return -EINVAL;
	}
	ri.at = (int64_t)time(NULL);
	rinfo = ri;
	return 0;
}

const struct vs_restart_info *vs_keep_restart_info(void)
{
	return &rinfo;
}

uint32_t vs_keeper_backoff_ms(uint32_t streak, uint32_t base_ms)
{
	uint64_t d;

	if (streak <= QUICK_RESTARTS)
		return 0;
	streak -= QUICK_RESTARTS + 1;
	d = streak >= 16 ? UINT64_MAX : (uint64_t)base_ms << streak;
	return d > (uint64_t)base_ms * DELAY_CAP_TIMES ? base_ms * DELAY_CAP_TIMES : (uint32_t)d;
}
