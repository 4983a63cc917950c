/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Messages from the shims. Every message is validated before use; the
 * VMM side is not trusted. A connection's first message must be HELLO,
 * which ties it to a process (the peer's credentials must match).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../model/helper.h"
#include "../persist/keeper.h"
#include "../persist/manifest.h"
#include "../state/state.h"
#include "../sys/log.h"
#include "shimconn.h"
#include "shimmsg.h"
#include "shimpeer.h"

static void send_reply(struct vs_conn *c, uint32_t seq, int result, uint32_t flags,
		       const char *msg)
{
	struct vmswap_msg_reply rep = { .result = result, .flags = flags };

	vmswap_msg_init(&rep.hdr, VMSWAP_MSG_REPLY, sizeof(rep), seq);
	snprintf(rep.message, sizeof(rep.message), "%s", msg ? msg : "");
	if (send(c->fd, &rep, sizeof(rep), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		vs_warn("replying to the shim: %s", strerror(errno));
}

static int hello_refuse(int fd, int r)
{
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * May a process that is not covered by a uffd keep guest mappings? Only
 * while no page is out of guest memory and nothing is registered: any
 * later enable registers first and refuses while an uncovered mapping
 * exists (vs_find_uncovered), so it can never punch under this process.
 * vs.lock held.
 */
static bool uncovered_is_safe(void)
{
	return vs.state == VS_READY && !vs.registered && !vs_staged_pages() && !vs.stats.c.swapped;
}

/* A process joins. Refused, it changes nothing and @fd (its uffd or -1) is closed. */
static int on_hello(struct vs_conn *c, const struct vmswap_msg_hello *m, int fd, char *why, size_t n)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int idx, old, r;

	if (c->proc >= 0)
		return snprintf(why, n, "second HELLO on a connection"), hello_refuse(fd, -EPROTO);
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return hello_refuse(fd, -errno);
	if (cred.uid != geteuid() && cred.uid != 0)
		return snprintf(why, n, "peer uid %u is not ours", cred.uid), hello_refuse(fd, -EPERM);
	if (m->vmm_pid != vs.vmm_pid || (c->is_vmm_conn && m->pid != vs.vmm_pid) ||
	    (!c->is_vmm_conn && cred.pid != m->pid))
		return snprintf(why, n, "HELLO from pid %d does not match its peer", m->pid),
		       hello_refuse(fd, -EPERM);
	if (fd >= 0 && (r = vs_peer_check_uffd(fd, why, n)))
		return hello_refuse(fd, r);
	if (fd < 0 && !c->is_vmm_conn && !uncovered_is_safe())
		return snprintf(why, n, "pid %d has no userfaultfd while guest pages are "
				"swapped out (state %s)", m->pid, vs_state_name(vs.state)),
		       hello_refuse(fd, -EPERM);

	/*
	 * An exec'd process comes back with the same pid and a new mm: the
	 * old entry goes, once the new one is in (first, if it needs the slot).
	 */
	old = vs_proc_by_pid(m->pid);
	idx = vs_proc_add(m->pid, fd, -1, c->is_vmm_conn);
	if (idx == -EMFILE && old >= 0) {
		vs_proc_drop(old);
		old = -1;
		idx = vs_proc_add(m->pid, fd, -1, c->is_vmm_conn);
	}
	if (idx < 0)
		return snprintf(why, n, "cannot track pid %d: %s", m->pid, strerror(-idx)),
		       hello_refuse(fd, idx);
	if (!c->is_vmm_conn && fd >= 0 && !(m->flags & VMSWAP_HELLO_EXEC)) {
		/* A forked child: same guest mappings as its parent, covered at once. */
		int from = vs_proc_by_pid(vs_peer_parent_of(m->pid));

		if (from < 0)
			from = vs_proc_by_pid(vs.vmm_pid);
		r = from >= 0 ? vs_clone_maps(from, idx) : 0;
		if (r) {
			vs_proc_drop(idx); /* closes the uffd */
			return snprintf(why, n, "cannot cover pid %d: %s", m->pid, strerror(-r)), r;
		}
	}
	if (old >= 0)
		vs_proc_drop(old);
	vs.procs[idx].sock = c->fd;
	c->proc = idx;
	c->gen = vs.procs[idx].gen;
	if (c->is_vmm_conn && fd < 0) {
		vs.managed = false;
		snprintf(vs.reason, sizeof(vs.reason), "%s", m->reason[0] ? m->reason : "no userfaultfd");
		vs_warn("VMM %d runs unmanaged: %s", m->pid, vs.reason);
	}
	vs_manifest_sync();
	vs_info("pid %d joined%s%s", m->pid, m->flags & VMSWAP_HELLO_EXEC ? " after exec" : "",
		fd < 0 ? " without a userfaultfd" : "");
	return 0;
}

/*
 * A guest mapping appeared. Everything is checked before anything
 * changes: a refused region leaves every table as it was, and @fd
 * (always consumed) is closed.
 */
static int on_region_add(struct vs_conn *c, const struct vmswap_msg_region_add *m, int fd,
			 char *why, size_t n)
{
	struct stat st;
	bool held = false;
	int obj, r;

	r = vs_peer_check_memfd(fd, m->offset + m->len, why, n);
	if (!r && vs.procs[c->proc].uffd < 0)
		r = (snprintf(why, n, "process has no userfaultfd"), -EPERM);
	if (!r && fstat(fd, &st) < 0)
		r = -errno;
	if (!r) {
		obj = vs_obj_find(st.st_dev, st.st_ino);
		r = vs_map_check(c->proc, obj, m->addr, m->len, m->offset, &held);
		if (r == -EEXIST)
			snprintf(why, n, "region %#llx+%#llx overlaps another one of this process",
				 (unsigned long long)m->addr, (unsigned long long)m->len);
		else if (r == -EMFILE)
			snprintf(why, n, "more than %d guest mappings", VS_MAX_MAPS);
	}
	if (r || held) {
		close(fd);
		return r; /* held: this very region is known already */
	}
	obj = vs_obj_get(fd, m->name, m->offset + m->len);
	if (obj == -EMFILE)
		return snprintf(why, n, "more than %d guest memfds", VS_MAX_OBJS), obj;
	if (obj < 0)
		return snprintf(why, n, "cannot track memfd: %s", strerror(-obj)), obj;
	r = vs_map_add(c->proc, obj, m->addr, m->len, m->offset);
	if (r)
		return snprintf(why, n, "cannot add region: %s", strerror(-r)), r;
	vs_info("pid %d region %#llx+%llu MiB at offset %llu of %s", vs.procs[c->proc].pid,
		(unsigned long long)m->addr, (unsigned long long)(m->len >> 20),
		(unsigned long long)m->offset, m->name);
	return 0;
}

/* The VMM punched a range of a guest memfd; past the pages we track there is nothing of ours. */
static int on_discard(const struct vmswap_msg_discard *m, int fd, char *why, size_t n)
{
	uint64_t start = m->offset, end = m->offset + m->len, first, last;
	struct vs_obj *o;
	struct stat st;
	int i, r = 0;

	if (!vs_peer_is_memfd(fd))
		r = (snprintf(why, n, "DISCARD fd is not a memfd"), -EBADF);
	else if (fstat(fd, &st) < 0)
		r = -errno;
	close(fd);
	if (r)
		return r;
	i = vs_obj_find(st.st_dev, st.st_ino);
	if (i < 0)
		return 0;
	o = &vs.objs[i];
	if (end > o->npages * VS_PAGE_SIZE)
		end = o->npages * VS_PAGE_SIZE;
	if (start >= end)
		return 0;
	first = (start + VS_PAGE_SIZE - 1) / VS_PAGE_SIZE;
	last = end / VS_PAGE_SIZE;
	if (start / VS_PAGE_SIZE == end / VS_PAGE_SIZE) /* inside one page */
		return vs_discard_partial(o, start / VS_PAGE_SIZE, start % VS_PAGE_SIZE,
					  (uint32_t)(end - start));
	if (start % VS_PAGE_SIZE)
		r = vs_discard_partial(o, start / VS_PAGE_SIZE, start % VS_PAGE_SIZE,
				       VS_PAGE_SIZE - start % VS_PAGE_SIZE);
	if (!r && end % VS_PAGE_SIZE)
		r = vs_discard_partial(o, last, 0, end % VS_PAGE_SIZE);
	if (last > first)
		vs_discard(o, first, last - first);
	return r;
}

/*
 * A shim stopped waiting for us and runs unmanaged: it no longer reports
 * new regions, unmaps or punches. Refuse to swap from now on, and put
 * back what we hold. Returns true when a swap-in must start. vs.lock held.
 */
static bool on_giveup(struct vs_conn *c, const struct vmswap_msg_giveup *m)
{
	const struct vs_proc *p = vs_conn_proc(c);

	if (!p || p->pid != m->pid) {
		vs_warn("ignored a GIVEUP for pid %d on a connection of another process", m->pid);
		return false;
	}
	char what[64];
	size_t i;

	/* The shim's words, printable only: they go to the log and status. */
	for (i = 0; i < sizeof(what) - 1 && m->reason[i]; i++)
		what[i] = m->reason[i] >= 0x20 && m->reason[i] < 0x7f ? m->reason[i] : '?';
	what[i] = '\0';
	vs_warn("the shim of pid %d gave up on the helper (%s: %s); swapping is off for good",
		m->pid, what, strerror(m->err > 0 && m->err < 4096 ? m->err : EPROTO));
	if (vs.managed) {
		vs.managed = false;
		snprintf(vs.reason, sizeof(vs.reason), "the shim of pid %d stopped waiting for "
			 "the helper (%s)", m->pid, what);
	}
	vs_manifest_sync();
	return vs.state != VS_READY;
}

/* A zero-length read is the peer hanging up, or an empty packet. */
static bool peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	int n = poll(&p, 1, 0);

	return n < 0 || (n == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

/* One message and up to 4 fds; the length, or -errno. */
static ssize_t recv_msg(int sock, char *buf, size_t n, int *fds, int *nfds, int *msg_flags)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	ssize_t len = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	*nfds = 0;
	if (len < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k && *nfds < 4; i++)
			memcpy(&fds[(*nfds)++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
	*msg_flags = mh.msg_flags;
	return len;
}

/* Carry out a checked message (not GIVEUP), @fd its first fd or -1. vs.lock held. */
static int dispatch(struct vs_conn *c, const char *buf, int fd, char *why, size_t n)
{
	const struct vmswap_msg_hdr *hdr = (const void *)buf;

	if (hdr->type != VMSWAP_MSG_HELLO && !vs_conn_proc(c)) {
		snprintf(why, n, c->proc < 0 ? "HELLO expected first"
					      : "this connection's process is gone");
		if (fd >= 0)
			close(fd);
		return c->proc < 0 ? -EPROTO : -ESRCH;
	}
	switch (hdr->type) {
	case VMSWAP_MSG_HELLO:
		return on_hello(c, (const void *)buf, fd, why, n);
	case VMSWAP_MSG_REGION_ADD:
		return on_region_add(c, (const void *)buf, fd, why, n);
	case VMSWAP_MSG_REGION_DEL: {
		const struct vmswap_msg_region_del *m = (const void *)buf;

		vs_map_remove_range(c->proc, m->addr, m->len);
		return 0;
	}
	case VMSWAP_MSG_DISCARD:
		return on_discard((const void *)buf, fd, why, n);
	default:
		snprintf(why, n, "unexpected message type %u", hdr->type);
		if (fd >= 0)
			close(fd);
		return -EPROTO;
	}
}

int vs_conn_handle(struct vs_conn *c)
{
	union {
		struct vmswap_msg_hdr hdr;
		char buf[VMSWAP_MSG_MAX];
	} u;
	char why[VMSWAP_REASON_MAX] = "";
	int fds[4], nfds, msg_flags = 0, r;
	uint32_t flags = 0;
	ssize_t len = recv_msg(c->fd, u.buf, sizeof(u.buf), fds, &nfds, &msg_flags);

	if (len < 0)
		return len == -EAGAIN || len == -EINTR ? 0 : (int)len;
	if (len == 0 && !nfds && peer_gone(c->fd))
		return -ECONNRESET;
	/* CTRUNC: more fds than any message carries; the kernel closed those that did not fit. */
	r = (msg_flags & MSG_TRUNC) ? -EPROTO
	    : (msg_flags & MSG_CTRUNC) ? -EBADMSG
	    : vmswap_msg_check(u.buf, (size_t)len, nfds);
	if (r) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		vs_warn("rejected a malformed shim message (%zd bytes, %d fds): %s", len, nfds,
			strerror(-r));
		send_reply(c, len >= (ssize_t)sizeof(u.hdr) ? u.hdr.seq : 0, r, 0,
			   "malformed message");
		return 0;
	}
	if (u.hdr.type == VMSWAP_MSG_GIVEUP) { /* one way: no reply */
		pthread_mutex_lock(&vs.lock);
		bool swap_in = on_giveup(c, (const void *)u.buf);
		pthread_mutex_unlock(&vs.lock);
		if (swap_in)
			vs_state_command(VS_CMD_DISABLE, "giveup", false);
		return 0;
	}
	pthread_mutex_lock(&vs.lock);
	r = dispatch(c, u.buf, nfds ? fds[0] : -1, why, sizeof(why));
	/* A refused process knows whether it may keep its guest mappings. */
	if (r && u.hdr.type == VMSWAP_MSG_HELLO && uncovered_is_safe())
		flags |= VMSWAP_REPLY_MAY_KEEP;
	vs_obj_gc();
	pthread_mutex_unlock(&vs.lock);
	if (r && !why[0])
		snprintf(why, sizeof(why), "%s", strerror(-r));
	if (r)
		vs_warn("shim request %u failed: %s", u.hdr.type, why);
	send_reply(c, u.hdr.seq, r, flags, why);
	return 0;
}
