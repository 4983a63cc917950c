/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <vmswap/common.h>
#include <vmswap/util.h>

#include "closeoff.h"
#include "config.h"
#include "ancestor.h"
#include "helper_conn.h"
#include "log.h"
#include "service.h"
#include "spawn.h"
#include "tls.h"
#include "uffd.h"
#include "wire.h"

static struct {
	bool started;  /* a start was attempted */
	bool dead;     /* nothing to talk to: unmanaged */
	bool has_uffd; /* the helper holds our uffd */
	/*
	 * The helper held our uffd at some time, so it may hold guest pages:
	 * a fork child must join it or close off guest memory (closeoff.h).
	 */
	bool ever_uffd;
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

/*
 * Tell a helper that managed us that we stop talking to it: from now on
 * it would not learn of new regions, unmaps or punches, so it must stop
 * swapping. One way: it may be stalled, and we do not wait.
 */
static void send_giveup(const char *what, int err)
{
	struct vmswap_msg_giveup g;

	memset(&g, 0, sizeof(g));
	vmswap_msg_init(&g.hdr, VMSWAP_MSG_GIVEUP, sizeof(g), ++conn.seq);
	g.pid = getpid();
	g.err = err;
	snprintf(g.reason, sizeof(g.reason), "%s", what);
	if (shim_wire_send(conn.sock, &g.hdr))
		shim_log(SHIM_LOG_DEBUG, "could not tell the helper that we gave up");
}

/* Give up on the helper; logged once (@what NULL: already logged). */
static void conn_fail(const char *what, int err)
{
	if (!conn.dead && what)
		shim_log(SHIM_LOG_ERROR, "%s: %s; guest memory runs unmanaged "
			 "from now on", what, strerror(-err));
	if (!conn.dead && what && conn.has_uffd && conn.sock >= 0)
		send_giveup(what, -err);
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

/*
 * Start the helper on conn.sock: through vmswapd where there is one, else
 * here, unless a seccomp filter could kill us for it, or the helper could
 * do nothing (no uffd to serve, no run directory to report in). 0, or
 * -errno with the failure logged and the connection given up.
 */
static int start_helper(bool have_uffd, const char **by)
{
	char why[VMSWAP_REASON_MAX + 128] = "", root[VMSWAP_SVC_PATH_MAX];
	int sv[2], r = shim_service_start(conn.vmm_pid, root, sizeof(root), why, sizeof(why));

	if (r >= 0) {
		conn.sock = r;
		*by = "vmswapd";
		/* Forked children join there: the service's root, not ours. */
		if (snprintf(conn.sock_path, sizeof(conn.sock_path), "%s/%d/%s", root,
			     (int)conn.vmm_pid, VMSWAP_SOCK_NAME) >= (int)sizeof(conn.sock_path))
			conn.sock_path[0] = '\0';
		return 0;
	}
	if (r != -ENOENT)
		shim_log(SHIM_LOG_WARN, "the vmswap service did not start the helper: %s", why);
	if (shim_sandboxed()) {
		shim_log(SHIM_LOG_ERROR, "%s, and this VMM runs under a seccomp filter, where "
			 "starting the helper itself could get it killed; guest memory runs "
			 "unmanaged (start vmswapd, see vmswapd(8))",
			 r == -ENOENT ? "no vmswap service" : "no helper from the service");
		conn_fail(NULL, 0);
		return -EPERM;
	}
	/* Without a uffd a helper only reports; without a run directory it cannot. */
	if (!have_uffd && !conn.sock_path[0]) {
		conn_fail(NULL, 0);
		return -ENOENT;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		r = -errno;
		conn_fail("cannot connect to the helper", r);
		return r;
	}
	conn.sock = sv[0];
	*by = shim_cfg.helper;
	r = shim_spawn_helper(shim_cfg.helper, conn.vmm_pid, sv[1]);
	close(sv[1]);
	if (r) {
		char what[PATH_MAX + 32];

		snprintf(what, sizeof(what), "cannot start %s", shim_cfg.helper);
		conn_fail(what, r);
	}
	return r;
}

static void conn_start(void)
{
	char reason[VMSWAP_REASON_MAX] = "";
	struct vmswap_msg_hello hello;
	struct vmswap_msg_reply rep;
	const char *by = "";
	int uffd, uffd_err = 0, r;

	conn.started = true;
	conn.vmm_pid = getpid();
	/* Computed now: the fork child may not call snprintf or getenv. */
	if (vmswap_run_path(conn.sock_path, sizeof(conn.sock_path), conn.vmm_pid,
			    VMSWAP_SOCK_NAME))
		conn.sock_path[0] = '\0';
	uffd = make_uffd(&uffd_err, reason, sizeof(reason));
	r = shim_join_ancestor(&conn.vmm_pid, conn.sock_path, sizeof(conn.sock_path));
	if (r != -ENOENT) {
		if (r < 0) {
			shim_log(SHIM_LOG_ERROR, "cannot reach the helper of pid %d (%s); "
				 "guest memory of this process is refused", conn.vmm_pid,
				 strerror(-r));
			shim_closeoff_all();
			conn_fail(NULL, 0);
			goto fail_quiet;
		}
		conn.sock = r;
		hello_init(&hello, uffd, uffd_err, reason);
		hello.flags |= VMSWAP_HELLO_EXEC;
		if (shim_conn_request(&hello.hdr, uffd, &rep)) {
			shim_closeoff_all(); /* the helper may hold pages we would map */
			goto fail_quiet;
		}
		if (rep.result) {
			bool keep = rep.flags & VMSWAP_REPLY_MAY_KEEP;

			shim_log(SHIM_LOG_ERROR, "the helper of pid %d refused this process: "
				 "%s; guest memory %s", conn.vmm_pid, rep.message,
				 keep ? "runs unmanaged" : "of this process is refused");
			if (!keep)
				shim_closeoff_all();
			conn_fail(NULL, 0);
			goto fail_quiet;
		}
		conn.uffd = uffd;
		conn.has_uffd = conn.ever_uffd = uffd >= 0;
		shim_log(SHIM_LOG_INFO, "joined the helper of pid %d", conn.vmm_pid);
		return;
	}
	r = start_helper(uffd >= 0, &by);
	if (r)
		goto fail_quiet;
	if (!conn.sock_path[0])
		shim_log(SHIM_LOG_INFO, "no run directory: forked children cannot join the helper");
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
	conn.has_uffd = conn.ever_uffd = uffd >= 0;
	shim_log(SHIM_LOG_INFO, "helper started by %s for pid %d%s", by, conn.vmm_pid,
		 conn.has_uffd ? "" : " (without userfaultfd)");
	return;
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
static void child_fail(const char *what, int err, bool may_keep)
{
	char pid[24], num[24];

	shim_log_raw("forked child ", shim_fmt_long(pid, getpid()),
		     " could not join the helper (", what, ", errno ",
		     shim_fmt_long(num, err), "); ", may_keep ?
		     "its guest memory runs unmanaged (nothing is swapped out, "
		     "and enable refuses while it maps guest memory)" :
		     "its guest memory is made inaccessible, so that it cannot "
		     "destroy pages the helper holds", NULL);
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

/* Sleep @ms without libc state: the fork child is async-signal-safe only. */
static void child_nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long child_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/*
 * Join through shim.sock, retrying a connection the helper dropped or
 * could not take yet (its tables full, a restart) until the join
 * deadline. 0 with the socket in *sock, or -errno; a refusal is
 * -EPERM-like with *may_keep from the reply.
 */
static int child_join(int uffd, int *sock, bool *may_keep, const char **what)
{
	long deadline = child_now_ms() + (long)shim_cfg.join_timeout_ms;
	struct vmswap_msg_hello hello;
	struct vmswap_msg_reply rep;
	int s, r;

	hello_init(&hello, uffd, uffd < 0 ? EPERM : 0,
		   uffd < 0 ? "userfaultfd unavailable in forked child" : NULL);
	hello.hdr.seq = 1;
	for (;;) {
		long left = deadline - child_now_ms();

		*what = "connect to shim.sock";
		s = child_connect();
		if (s >= 0) {
			*what = "HELLO";
			r = shim_wire_xfer_wait(s, &hello.hdr, uffd, &rep, left > 0 ? left : 0);
			if (!r && !rep.result) {
				*sock = s;
				return 0;
			}
			close(s);
			if (!r) {
				*what = "HELLO refused";
				*may_keep = rep.flags & VMSWAP_REPLY_MAY_KEEP;
				return rep.result < 0 ? rep.result : -EPERM;
			}
		} else {
			r = s;
		}
		/* Only a dropped or refused connection is worth another try. */
		if ((r != -ECONNRESET && r != -EPIPE && r != -ECONNREFUSED && r != -EAGAIN) ||
		    child_now_ms() + 50 >= deadline)
			return r;
		child_nap(50);
	}
}

bool shim_conn_child_rejoin(void)
{
	bool had_uffd = conn.has_uffd, may_keep = false;
	int uffd, dev_err = 0, s = -1, r;
	const char *what = "";
	char pidbuf[24];

	/* The parent's connection and uffd belong to the parent. */
	if (conn.sock >= 0)
		close(conn.sock);
	if (conn.uffd >= 0)
		close(conn.uffd);
	conn.sock = conn.uffd = -1;
	conn.has_uffd = false;
	conn.dead = true;
	/*
	 * Even a parent that gave up on the helper must send its children:
	 * the helper may still hold pages of the memory they inherit.
	 */
	if (!conn.ever_uffd) {
		conn.dead = conn.started;
		return false;
	}
	if (!had_uffd && !conn.sock_path[0])
		return true;
	uffd = shim_uffd_create(&dev_err);
	r = child_join(uffd, &s, &may_keep, &what);
	if (r) {
		child_fail(what, -r, may_keep);
		if (uffd >= 0)
			close(uffd);
		return !may_keep;
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
			     "unmanaged (nothing is swapped out now)", NULL);
	}
	return false;
}

int shim_conn_child_request(struct vmswap_msg_hdr *m, int fd,
			    struct vmswap_msg_reply *rep)
{
	int r;

	if (!conn_live())
		return -EPIPE;
	r = conn_xfer(m, fd, rep);
	if (r) {
		child_fail("request", -r, true);
		close(conn.sock);
		conn.sock = -1;
		conn.dead = true;
		conn.has_uffd = false;
	}
	return r;
}
