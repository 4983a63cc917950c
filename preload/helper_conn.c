/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vmswap/common.h>
#include <vmswap/util.h>

#include "config.h"
#include "helper_conn.h"
#include "log.h"
#include "spawn.h"
#include "tls.h"
#include "uffd.h"
#include "wire.h"

static struct {
	bool started;  /* a start was attempted */
	bool dead;     /* nothing to talk to: unmanaged */
	bool has_uffd; /* the helper holds our uffd */
	int sock;
	/*
	 * Kept open: if the helper dies, closing the last reference would
	 * unregister the ranges and let swapped-out pages read as zeros.
	 * Blocked faults can still be recovered; lost data cannot.
	 */
	int uffd;
	uint32_t seq;
	pid_t vmm_pid; /* the VMM's pid, kept across fork */
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} conn = { .sock = -1, .uffd = -1 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static SHIM_TLS bool held;

void shim_conn_lock(void)
{
	pthread_mutex_lock(&lock);
	held = true;
}

void shim_conn_unlock(void)
{
	held = false;
	pthread_mutex_unlock(&lock);
}

bool shim_conn_held(void)
{
	return held;
}

/* Give up on the helper; logged once (@what NULL: already logged). */
static void conn_fail(const char *what, int err)
{
	if (!conn.dead && what)
		shim_log(SHIM_LOG_ERROR, "%s: %s; guest memory runs unmanaged "
			 "from now on", what, strerror(-err));
	conn.dead = true;
	conn.has_uffd = false;
	if (conn.sock >= 0)
		close(conn.sock);
	conn.sock = -1;
}

static bool conn_live(void)
{
	return !conn.dead && conn.sock >= 0;
}

/* One request on the live connection; the callers decide what a failure means. */
static int conn_xfer(struct vmswap_msg_hdr *m, int fd, struct vmswap_msg_reply *rep)
{
	m->seq = ++conn.seq;
	return shim_wire_xfer(conn.sock, m, fd, rep);
}

int shim_conn_request(struct vmswap_msg_hdr *m, int fd,
		      struct vmswap_msg_reply *rep)
{
	int r;

	if (!conn_live())
		return -EPIPE;
	r = conn_xfer(m, fd, rep);
	if (r)
		conn_fail(r == -ETIMEDOUT ? "helper did not answer"
					  : "lost the helper", r);
	return r;
}

static void hello_init(struct vmswap_msg_hello *h, int uffd, int uffd_err,
		       const char *reason)
{
	memset(h, 0, sizeof(*h));
	vmswap_msg_init(&h->hdr, VMSWAP_MSG_HELLO, sizeof(*h), 0);
	h->pid = getpid();
	h->vmm_pid = conn.vmm_pid;
	h->flags = uffd >= 0 ? VMSWAP_HELLO_HAS_UFFD : 0;
	h->uffd_errno = uffd >= 0 ? 0 : uffd_err;
	for (size_t i = 0; reason && reason[i] && i < sizeof(h->reason) - 1; i++)
		h->reason[i] = reason[i];
}

/* This process's uffd, or -1 with the reason logged and stored. */
static int make_uffd(int *err, char *reason, size_t n)
{
	int fd, dev_err = 0;

	if (shim_cfg.no_uffd) {
		*err = EPERM;
		snprintf(reason, n, "userfaultfd disabled by %s",
			 VMSWAP_ENV_TEST_NO_UFFD);
	} else {
		fd = shim_uffd_create(&dev_err);
		if (fd >= 0)
			return fd;
		*err = -fd;
		shim_uffd_reason(-fd, dev_err, reason, n);
	}
	shim_log(SHIM_LOG_WARN, "%s; guest memory runs unmanaged", reason);
	return -1;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold anything */
	return p && p[1] && p[2] ? (pid_t)strtol(p + 4, NULL, 10) : -1;
}

/*
 * A process that exec'd from a VMM (or its child) with the shim still
 * preloaded, e.g. a vhost-user backend mapping the same guest memfd,
 * joins the helper of the nearest ancestor that has one instead of
 * starting a second helper for the same memory. Returns the connected
 * socket and sets conn.vmm_pid and conn.sock_path, or -1.
 */
static int join_ancestor(void)
{
	pid_t pid = getpid();

	for (int depth = 0; depth < 16; depth++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s;

		pid = parent_of(pid);
		if (pid <= 1)
			return -1;
		if (vmswap_run_path(sa.sun_path, sizeof(sa.sun_path), pid, VMSWAP_SOCK_NAME) ||
		    access(sa.sun_path, F_OK))
			continue;
		s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -1;
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			conn.vmm_pid = pid;
			memcpy(conn.sock_path, sa.sun_path, sizeof(conn.sock_path));
			return s;
		}
		close(s);
	}
	return -1;
}

static void conn_start(void)
{
	char reason[VMSWAP_REASON_MAX] = "";
	struct vmswap_msg_hello hello;
	struct vmswap_msg_reply rep;
	int sv[2], uffd, uffd_err = 0, r;

	conn.started = true;
	conn.vmm_pid = getpid();
	/* Computed now: the fork child may not call snprintf or getenv. */
	r = vmswap_run_path(conn.sock_path, sizeof(conn.sock_path),
			    conn.vmm_pid, VMSWAP_SOCK_NAME);
	if (r) {
		conn.sock_path[0] = '\0';
		shim_log(SHIM_LOG_INFO, "no run directory (%s): forked "
			 "children cannot join the helper", strerror(-r));
	}
	uffd = make_uffd(&uffd_err, reason, sizeof(reason));
	if ((conn.sock = join_ancestor()) >= 0) {
		hello_init(&hello, uffd, uffd_err, reason);
		hello.flags |= VMSWAP_HELLO_EXEC;
		if (shim_conn_request(&hello.hdr, uffd, &rep))
			goto fail_quiet;
		if (rep.result) {
			shim_log(SHIM_LOG_ERROR, "the helper of pid %d refused this process: "
				 "%s; guest memory runs unmanaged", conn.vmm_pid, rep.message);
			conn_fail(NULL, 0);
			goto fail_quiet;
		}
		conn.uffd = uffd;
		conn.has_uffd = uffd >= 0;
		shim_log(SHIM_LOG_INFO, "joined the helper of pid %d", conn.vmm_pid);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		r = -errno;
		goto fail;
	}
	conn.sock = sv[0];
	r = shim_spawn_helper(shim_cfg.helper, conn.vmm_pid, sv[1]);
	close(sv[1]);
	if (r) {
		char what[PATH_MAX + 32];

		snprintf(what, sizeof(what), "cannot start %s", shim_cfg.helper);
		conn_fail(what, r);
		goto fail_quiet;
	}
	hello_init(&hello, uffd, uffd_err, reason);
	if (shim_conn_request(&hello.hdr, uffd, &rep))
		goto fail_quiet;
	if (rep.result) {
		shim_log(SHIM_LOG_ERROR, "helper refused this process: %s (%s); "
			 "guest memory runs unmanaged", rep.message,
			 strerror(rep.result < 0 ? -rep.result : rep.result));
		conn_fail(NULL, 0);
		goto fail_quiet;
	}
	conn.uffd = uffd;
	conn.has_uffd = uffd >= 0;
	shim_log(SHIM_LOG_INFO, "helper %s started for pid %d%s",
		 shim_cfg.helper, conn.vmm_pid,
		 conn.has_uffd ? "" : " (without userfaultfd)");
	return;
fail:
	conn_fail("cannot connect to the helper", r);
fail_quiet:
	if (uffd >= 0)
		close(uffd);
}

bool shim_conn_ready(void)
{
	if (!conn.started)
		conn_start();
	return shim_conn_usable();
}

bool shim_conn_usable(void)
{
	return conn.started && !conn.dead && conn.has_uffd;
}

pid_t shim_conn_vmm_pid(void)
{
	return conn.vmm_pid;
}

/* Why the child could not join, on fd 2; no stdio in a fork child. */
static void child_fail(const char *what, int err)
{
	char pid[24], num[24];

	shim_log_raw("forked child ", shim_fmt_long(pid, getpid()),
		     " could not join the helper (", what, ", errno ",
		     shim_fmt_long(num, err), "); its guest memory runs "
		     "unmanaged", NULL);
}

static int child_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	if (!conn.sock_path[0])
		return -ENOENT;
	memcpy(sa.sun_path, conn.sock_path, sizeof(sa.sun_path));
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(s);
		return -err;
	}
	return s;
}

void shim_conn_child_rejoin(void)
{
	struct vmswap_msg_hello hello;
	struct vmswap_msg_reply rep;
	bool had_uffd = conn.has_uffd;
	int uffd, dev_err = 0, s, r;
	char pidbuf[24];

	/* The parent's connection and uffd belong to the parent. */
	if (conn.sock >= 0)
		close(conn.sock);
	if (conn.uffd >= 0)
		close(conn.uffd);
	conn.sock = conn.uffd = -1;
	conn.has_uffd = false;
	if (!had_uffd) {
		conn.dead = conn.started;
		return;
	}
	conn.dead = true;
	s = child_connect();
	if (s < 0) {
		child_fail("connect to shim.sock", -s);
		return;
	}
	uffd = shim_uffd_create(&dev_err);
	hello_init(&hello, uffd, uffd < 0 ? -uffd : 0,
		   uffd < 0 ? "userfaultfd unavailable in forked child" : NULL);
	hello.hdr.seq = 1;
	r = shim_wire_xfer(s, &hello.hdr, uffd, &rep);
	if (r || rep.result) {
		child_fail(r ? "HELLO" : "HELLO refused", r ? -r : -rep.result);
		close(s);
		if (uffd >= 0)
			close(uffd);
		return;
	}
	conn.sock = s;
	conn.seq = 1;
	conn.dead = false;
	if (uffd >= 0) {
		conn.uffd = uffd;
		conn.has_uffd = true;
	} else {
		shim_log_raw("forked child ", shim_fmt_long(pidbuf, getpid()),
			     " has no userfaultfd; its guest memory runs "
			     "unmanaged", NULL);
	}
}

int shim_conn_child_request(struct vmswap_msg_hdr *m, int fd,
			    struct vmswap_msg_reply *rep)
{
	int r;

	if (!conn_live())
		return -EPIPE;
	r = conn_xfer(m, fd, rep);
	if (r) {
		child_fail("request", -r);
		close(conn.sock);
		conn.sock = -1;
		conn.dead = true;
		conn.has_uffd = false;
	}
	return r;
}
