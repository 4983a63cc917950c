/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmswapd: starts each VMM's vmswap-helper outside the VMM, so that a
 * VMM under a sandbox that forbids starting processes (QEMU -sandbox
 * spawn=deny, as libvirt runs it) or without a run directory of its own
 * can still be managed. The shim connects; see include/vmswap/svc.h.
 *
 *   vmswapd [--foreground] [--socket PATH] [--run-dir DIR] [--helper PATH]
 *           [--group NAME] [--log LEVEL]
 *
 * Under systemd it takes its socket from vmswapd.socket (sd_listen_fds)
 * and reports readiness (sd_notify). Helpers it started keep running when
 * it stops: they belong to their VMMs, not to the service.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <vmswap/common.h>
#include <vmswap/version.h>

#include "../sys/log.h"
#include "svcd.h"

#define SWEEP_MS 60000   /* run directories left by VMMs that died unseen */
#define LEAVING_MS 100   /* while a gone VMM's helper is still leaving */
#define WATCH_MAX 1024   /* VMMs watched (pidfds); beyond, the slow sweep finds them */

static void usage(FILE *f)
{
	fprintf(f, "usage: vmswapd [--foreground] [--socket PATH] [--run-dir DIR] [--helper PATH]\n"
		   "               [--group NAME] [--log error|warn|info|debug]\n"
		   "       vmswapd --version\n"
		   "Starts vmswap-helper for VMMs run under libvmswap.so (see vmswapd(8)).\n");
}

static int set_path(char *dst, size_t n, const char *src, const char *what)
{
	if (src[0] != '/' || strlen(src) >= n) {
		fprintf(stderr, "vmswapd: %s must be an absolute path shorter than %zu bytes: %s\n",
			what, n, src);
		return -EINVAL;
	}
	snprintf(dst, n, "%s", src);
	return 0;
}

/* vmswap-helper beside this program (a build tree), else the installed one. */
static void default_helper(struct svcd_cfg *c)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (len > 0) {
		self[len] = 0;
		slash = strrchr(self, '/');
		if (slash && (size_t)(slash - self) + sizeof("/" VMSWAP_HELPER_NAME) <= sizeof(self)) {
			strcpy(slash + 1, VMSWAP_HELPER_NAME);
			if (!access(self, X_OK)) {
				snprintf(c->helper, sizeof(c->helper), "%s", self);
				return;
			}
		}
	}
	snprintf(c->helper, sizeof(c->helper), "%s", VMSWAP_INSTALLED_HELPER);
}

/* A group name, or a number (a group with no entry in /etc/group). */
static int set_group(struct svcd_cfg *c, const char *name, bool required)
{
	struct group *g = name[0] ? getgrnam(name) : NULL;
	char *end;
	unsigned long gid = strtoul(name, &end, 10);

	if (!g && name[0] && !*end && gid < (gid_t)-1) {
		c->has_group = true;
		c->group = (gid_t)gid;
		snprintf(c->group_name, sizeof(c->group_name), "%s", name);
		return 0;
	}

	c->has_group = g != NULL;
	if (g) {
		c->group = g->gr_gid;
		snprintf(c->group_name, sizeof(c->group_name), "%s", name);
		return 0;
	}
	if (required && name[0]) {
		fprintf(stderr, "vmswapd: no group %s\n", name);
		return -ENOENT;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct svcd_cfg *c, bool *foreground)
{
	const char *level = NULL;
	bool group_set = false;

	snprintf(c->sock, sizeof(c->sock), "%s", VMSWAP_DEFAULT_SERVICE_SOCKET);
	snprintf(c->run_root, sizeof(c->run_root), "%s", VMSWAP_DEFAULT_RUN_DIR_ROOT);
	default_helper(c);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int r = 0;

		if (!strcmp(a, "--foreground")) {
			*foreground = true;
			continue;
		}
		if (!strcmp(a, "--version")) {
			printf("vmswapd %s\n", VMSWAP_VERSION);
			exit(0);
		}
		if (!strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		}
		if (!v || strncmp(a, "--", 2)) {
			usage(stderr);
			return -EINVAL;
		}
		i++;
		if (!strcmp(a, "--socket"))
			r = set_path(c->sock, sizeof(c->sock), v, "--socket");
		else if (!strcmp(a, "--run-dir"))
			r = set_path(c->run_root, sizeof(c->run_root), v, "--run-dir");
		else if (!strcmp(a, "--helper"))
			r = set_path(c->helper, sizeof(c->helper), v, "--helper");
		else if (!strcmp(a, "--group"))
			r = set_group(c, v, true), group_set = true;
		else if (!strcmp(a, "--log"))
			level = v;
		else
			r = (usage(stderr), -EINVAL);
		if (r)
			return r;
	}
	if (!group_set)
		set_group(c, VMSWAP_GROUP, false);
	if (level) {
		enum vs_log_level lvl;

		if (vs_log_parse_level(level, &lvl)) {
			fprintf(stderr, "vmswapd: bad --log %s\n", level);
			return -EINVAL;
		}
		vs_log_set_level(lvl);
	}
	return 0;
}

/* Into the background once the socket is ready; the caller's shell gets 0. */
static void detach(void)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("vmswapd: fork");
		exit(1);
	}
	if (pid > 0)
		_exit(0);
	setsid();
	if (!freopen("/dev/null", "r", stdin) || !freopen("/dev/null", "w", stdout))
		vs_warn("cannot point stdin/stdout at /dev/null");
}

static int signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	return signalfd(-1, &set, SFD_CLOEXEC);
}

/* Watch @pidfd: when its VMM exits, its run directory is removed soon after. */
static void watch(struct pollfd *pf, int *n, int pidfd)
{
	if (pidfd < 0)
		return;
	if (*n == WATCH_MAX + 2) {
		close(pidfd);
		return;
	}
	pf[(*n)++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
}

static void serve_loop(const struct svcd_cfg *c, int lfd, int sfd)
{
	static struct pollfd pf[WATCH_MAX + 2];
	int npf = 2, leaving = 0;

	pf[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	for (;;) {
		int n = poll(pf, (nfds_t)npf, leaving ? LEAVING_MS : SWEEP_MS), conn;
		bool sweep = n == 0;

		if (n < 0 && errno != EINTR) {
			vs_err("poll: %s", strerror(errno));
			return;
		}
		if (pf[1].revents) {
			vs_info("stopping; the helpers it started keep running");
			return;
		}
		for (int i = 2; n > 0 && i < npf; i++) {
			if (!pf[i].revents)
				continue;
			close(pf[i].fd); /* the VMM exited */
			pf[i--] = pf[--npf];
			sweep = true;
		}
		if (n > 0 && pf[0].revents) {
			conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (conn >= 0) {
				watch(pf, &npf, svcd_serve(c, conn));
				close(conn);
				sweep = true;
			} else if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
				vs_err("accept: %s", strerror(errno));
			}
		}
		if (sweep)
			leaving = svcd_rundir_sweep(c);
	}
}

int main(int argc, char **argv)
{
	char why[256] = "";
	struct svcd_cfg c = { 0 };
	bool foreground = false, activated;
	int lfd, sfd, r;

	vs_log_set_name("vmswapd");
	vs_log_set_level(VS_LOG_INFO);
	if (parse_args(argc, argv, &c, &foreground))
		return 2;
	if (access(c.helper, X_OK)) {
		fprintf(stderr, "vmswapd: cannot run the helper %s: %s\n", c.helper, strerror(errno));
		return 1;
	}
	if ((r = svcd_listen(&c, &lfd, &activated, why, sizeof(why)))) {
		fprintf(stderr, "vmswapd: %s\n", why);
		return 1;
	}
	sfd = signals();
	if (sfd < 0) {
		fprintf(stderr, "vmswapd: signals: %s\n", strerror(-sfd));
		return 1;
	}
	if (!foreground && !activated && !getenv("NOTIFY_SOCKET"))
		detach();
	svcd_rundir_sweep(&c);
	vs_info("listening on %s%s; helper %s; run directories in %s; %s%s may ask",
		activated ? "the activated socket " : "", activated ? "" : c.sock, c.helper,
		c.run_root, c.has_group ? "root and group " : "root only",
		c.has_group ? c.group_name : "");
	sd_notifyf(0, "READY=1\nSTATUS=listening; helper %s", c.helper);
	serve_loop(&c, lfd, sfd);
	sd_notify(0, "STOPPING=1");
	if (!activated)
		unlink(c.sock);
	return 0;
}
