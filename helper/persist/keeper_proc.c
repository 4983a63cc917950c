/* SPDX-License-Identifier: BSD-3-Clause */
/* The keeper process: holds the fds, restarts the helper; see keeper.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmswap/env.h>

#include "../sys/clock.h"
#include "../sys/fdkind.h"
#include "../sys/log.h"
#include "keeper.h"
#include "keeper_int.h"
#include "manifest.h"

#include "../sys/clock.h"
#include "../sys/fdkind.h"
#include "../sys/log.h"
#include "keeper.h"
#include "keeper_int.h"
#include "manifest.h"


static struct { int num, fd; } kept[KEEP_MAX];
static int nkept;

static void kept_drop(int num)
{
	for (int i = 0; i < nkept; i++) {
		if (kept[i].num == num) {
			close(kept[i].fd);
			kept[i] = kept[--nkept];
			return;
		}
	}
}

static void kept_add(int num, int fd)
{
	kept_drop(num);
	if (nkept == KEEP_MAX || num < 3) {
		close(fd);
		vs_err("keeper: cannot keep fd %d", num);
		return;
	}
	kept[nkept].num = num;
	kept[nkept++].fd = fd;
}

/* One message; false once the helper's end is closed (it died or exited). */
static bool keeper_recv(int s)
{
	struct keep_msg m;
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	int fd = -1;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = f;
			else
				close(f);
		}
	}
	if (n == sizeof(m) && m.op == KEEP_ADD && fd >= 0)
		kept_add(m.num, fd);
	else if (fd >= 0)
		close(fd);
	if (n == sizeof(m) && m.op == KEEP_FORGET)
		kept_drop(m.num);
	return true;
}

static char *fmt_int(char *buf, long v)
{
	snprintf(buf, 24, "%ld", v);
	return buf;
}

/* In the new child: every kept fd at its old number, then exec --recover. */
static void __attribute__((noreturn)) exec_recovery(pid_t vmm_pid, int sock_fd, int ks,
						      const char *info)
{
	char a[24], b[24], c[24];
	int high = 64, hi[KEEP_MAX], khi;
	sigset_t none;

	for (int i = 0; i < nkept; i++) {
		if (kept[i].num >= high)
			high = kept[i].num + 1;
		if (kept[i].fd >= high)
			high = kept[i].fd + 1;
	}
	if (ks >= high)
		high = ks + 1;
	/* Above every number in play first, so no dup2 overwrites a kept fd. */
	for (int i = 0; i < nkept; i++)
		if ((hi[i] = fcntl(kept[i].fd, F_DUPFD_CLOEXEC, high)) < 0)
			_exit(127);
	khi = fcntl(ks, F_DUPFD, high);
	if (khi < 0)
		_exit(127);
	close_range(3, (unsigned)high - 1, 0);
	for (int i = 0; i < nkept; i++)
		if (dup2(hi[i], kept[i].num) < 0)
			_exit(127);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	char *argv[] = { "vmswap-helper", "--recover", "--vmm-pid", fmt_int(a, vmm_pid),
			 "--sock-fd", fmt_int(b, sock_fd), "--keeper-fd", fmt_int(c, khi),
			 "--restart-info", (char *)info, NULL };
	execv("/proc/self/exe", argv);
	_exit(127);
}

static int vmm_pidfd = -1;    /* the VMM's, from the start: immune to pid reuse */
static bool vmm_gone;
static uint32_t delay_base_ms = DELAY_BASE_MS;

/* The kept manifest, the only record of which processes the helper served. */
static int kept_manifest(void)
{
	for (int i = 0; i < nkept; i++)
		if (vs_fd_link_is(kept[i].fd, "/memfd:vmswap-manifest"))
			return kept[i].fd;
	return -1;
}

static bool pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Does any process the helper served live? When unsure, yes: fds are dropped only when not. */
static bool served_alive(pid_t vmm_pid)
{
	size_t size = (sizeof(struct vs_manifest) + VS_PAGE_SIZE - 1) &
		      ~(size_t)(VS_PAGE_SIZE - 1);
	const struct vs_manifest *mf;
	const struct vs_mf_body *b;
	struct stat st;
	bool any = false;
	int fd;

	if (!vmm_gone) {
		struct pollfd pf = { .fd = vmm_pidfd, .events = POLLIN };

		if (vmm_pidfd < 0 ? pid_alive(vmm_pid) : poll(&pf, 1, 0) == 0)
			return true;
		vmm_gone = true;
		if (vmm_pidfd >= 0)
			close(vmm_pidfd);
		vmm_pidfd = -1;
	}
	/* Processes that joined (fork children, exec'd VMMs) may outlive it. */
	fd = kept_manifest();
	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < size)
		return true;
	mf = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (mf == MAP_FAILED)
		return true;
	if (mf->magic != VS_MF_MAGIC || mf->version != VS_MF_VERSION || mf->size != sizeof(*mf)) {
		any = true;
	} else {
		b = &mf->body[__atomic_load_n(&mf->gen, __ATOMIC_ACQUIRE) & 1];
		for (int i = 0; i < VS_MAX_PROCS && !any; i++)
			any = b->procs[i].used && pid_alive(b->procs[i].pid);
	}
	munmap((void *)mf, size);
	return any;
}

/* Sleep @ms, ending early when the VMM exits and no process we served is left. */
static void backoff_wait(pid_t vmm_pid, uint32_t ms)
{
	uint64_t end = vs_now_ms() + ms;

	for (uint64_t t = vs_now_ms(); t < end; t = vs_now_ms()) {
		struct pollfd pf = { .fd = vmm_pidfd, .events = POLLIN };
		int left = (int)(end - t);

		/* Without the VMM's pidfd, look again every second. */
		if (vmm_pidfd < 0 && left > 1000)
			left = 1000;
		if (poll(&pf, vmm_pidfd >= 0 ? 1 : 0, left) < 0 && errno != EINTR)
			usleep(100000);
		if ((vmm_pidfd < 0 || pf.revents) && !served_alive(vmm_pid))
			return;
	}
}

/* Fork the recovering helper; its keeper socket end in *s. pid or -errno. */
static pid_t spawn_recovery(pid_t vmm_pid, int sock_fd, int *s, const struct vs_restart_info *ri)
{
	char info[40];
	int sv[2];
	pid_t child;

	snprintf(info, sizeof(info), "%u:%u:%u", ri->restarts, ri->streak, ri->delay_ms);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	child = fork();
	if (child < 0) {
		int r = -errno;

		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (child == 0)
		exec_recovery(vmm_pid, sock_fd, sv[1], info);
	close(sv[1]);
	*s = sv[0];
	return child;
}

/*
 * Restart the helper for as long as a process it served lives, with the
 * fds kept: a dead helper's pages are only in them. Ends on a normal
 * exit, on a failed first setup (nothing held yet), and once nobody is
 * left to serve.
 */
static void __attribute__((noreturn)) keeper_loop(pid_t vmm_pid, int sock_fd, int s, pid_t child)
{
	struct vs_restart_info ri = { 0 };
	uint64_t born = vs_now_ms();
	bool recovery = false, cleanup = false;

	for (;;) {
		struct pollfd pf = { .fd = s, .events = POLLIN };
		bool no_start = false;
		int st;
		pid_t w;

		if (poll(&pf, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			usleep(100000); /* never leave while the helper runs */
			continue;
		}
		if (keeper_recv(s))
			continue;
		/* Its end is closed: it is exiting or gone. */
		while ((w = waitpid(child, &st, 0)) < 0 && errno == EINTR)
			;
		close(s);
		if (w < 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0))
			_exit(0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == VS_HELPER_EXIT_FINAL) {
			/* Setup failed. Before any recovery nothing was handed to us yet. */
			if (!recovery || kept_manifest() < 0)
				_exit(1);
			no_start = true;
			vs_err("keeper: recovery by helper %d could not start (its error is above)",
			       (int)child);
		} else if (WIFSIGNALED(st)) {
			vs_err("keeper: helper %d killed by signal %d", (int)child, WTERMSIG(st));
		} else {
			vs_err("keeper: helper %d exited with status %d", (int)child,
			       WEXITSTATUS(st));
		}
		if (vs_now_ms() - born >= STABLE_MS)
			ri.streak = 0;
		for (;;) {
			bool alive = served_alive(vmm_pid);
			struct vs_restart_info next = ri;

			if (!alive && (cleanup || no_start)) {
				vs_warn("keeper: no process left to serve; exiting");
				_exit(0);
			}
			next.restarts++;
			next.streak++;
			/* Nobody left: one more helper finds that, removes the run dir and exits. */
			next.delay_ms = alive ? vs_keeper_backoff_ms(next.streak, delay_base_ms) : 0;
			if (next.delay_ms) {
				vs_warn("keeper: %u restarts in a row; restarting the helper in %u ms "
					"(faults wait until then)", next.streak, next.delay_ms);
				backoff_wait(vmm_pid, next.delay_ms);
				if (!served_alive(vmm_pid))
					continue;
			}
			cleanup |= !alive;
			child = spawn_recovery(vmm_pid, sock_fd, &s, &next);
			if (child > 0) {
				ri = next;
				break;
			}
			ri.streak = next.streak; /* a failed start counts for the backoff */
			vs_err("keeper: cannot start a helper (%s); trying again", strerror((int)-child));
		}
		born = vs_now_ms();
		recovery = true;
		vs_warn("keeper: restarted the helper as pid %d to recover (restart %u)", (int)child,
			ri.restarts);
	}
}

/* VMSWAP_TEST_RESTART_DELAY_MS: the backoff's base in tests, instead of 1 s. */
static void delay_init(void)
{
	const char *s = getenv(DELAY_ENV), *end;
	uint32_t v;

	if (!s || !*s)
		return;
	if (!vs_keep_parse_u32(s, &end, 0, DELAY_ENV_MAX, &v)) {
		vs_warn("%s=%s: expected 0 to %u; restart delays stay at 1 s and up", DELAY_ENV, s,
			DELAY_ENV_MAX);
		return;
	}
	delay_base_ms = v;
}

int vs_keeper_start(pid_t vmm_pid, int sock_fd)
{
	int sv[2];
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	child = fork();
	if (child < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (child == 0) {
		close(sv[0]);
		return sv[1];
	}
	/* The keeper: nothing but its socket; the helper sends what to keep. */
	close(sv[1]);
	if (sv[0] > 3)
		close_range(3, (unsigned)sv[0] - 1, 0);
	close_range((unsigned)sv[0] + 1, ~0u, 0);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	vmm_pidfd = (int)syscall(SYS_pidfd_open, vmm_pid, 0);
	if (vmm_pidfd >= 0)
		fcntl(vmm_pidfd, F_SETFD, FD_CLOEXEC);
	delay_init();
	keeper_loop(vmm_pid, sock_fd, sv[0], child);
}
