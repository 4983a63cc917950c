/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Start a VMM's helper as the VMM's own user, with the VMM's connection
 * as its shim socket: exactly what the shim does in-process, from here.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmswap/common.h>

#include "svcd.h"

#define HELPER_FD 3
#define DETACH_TIMEOUT_MS 10000
#define ENV_MAX 64

/*
 * The helper's environment: the VMM's VMSWAP_* settings, but the run
 * directory is ours and the helper binary is not the VMM's to choose.
 */
static int build_env(const struct svcd_cfg *c, const struct vmswap_svc_start *m, char **env,
		     char *rundir, size_t n)
{
	int k = 0;

	snprintf(rundir, n, "%s=%s", VMSWAP_ENV_RUN_DIR, c->run_root);
	env[k++] = rundir;
	env[k++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t i = 0; i < m->env_len && k < ENV_MAX - 1; i += strlen(m->env + i) + 1) {
		const char *e = m->env + i;

		if (!strncmp(e, VMSWAP_ENV_RUN_DIR "=", strlen(VMSWAP_ENV_RUN_DIR) + 1) ||
		    !strncmp(e, VMSWAP_ENV_HELPER "=", strlen(VMSWAP_ENV_HELPER) + 1) ||
		    !strncmp(e, VMSWAP_ENV_SERVICE_SOCKET "=",
			     strlen(VMSWAP_ENV_SERVICE_SOCKET) + 1))
			continue;
		env[k++] = (char *)e;
	}
	env[k] = NULL;
	return k;
}

/* In the child: become the peer, then the helper. Never returns. */
static void exec_helper(const struct svcd_cfg *c, const struct svcd_peer *p, int conn,
			char **env)
{
	char pidstr[16], fdstr[16];
	char *argv[] = { (char *)c->helper, "--daemonize", "--vmm-pid", pidstr, "--sock-fd",
			 fdstr, NULL };
	sigset_t none;
	int nul;

	snprintf(pidstr, sizeof(pidstr), "%d", (int)p->pid);
	snprintf(fdstr, sizeof(fdstr), "%d", HELPER_FD);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	if (p->uid != geteuid() &&
	    (setgroups((size_t)p->ngroups, p->groups) < 0 ||
	     setresgid(p->gid, p->gid, p->gid) < 0 || setresuid(p->uid, p->uid, p->uid) < 0))
		_exit(126);
	if (conn == HELPER_FD) {
		if (fcntl(conn, F_SETFD, 0) < 0)
			_exit(126);
	} else if (dup2(conn, HELPER_FD) < 0) {
		_exit(126);
	}
	nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
	}
	closefrom(HELPER_FD + 1);
	execve(c->helper, argv, env);
	_exit(127);
}

/* The intermediate exits once the helper has detached. */
static int wait_detach(pid_t pid, char *why, size_t n)
{
	struct timespec nap = { 0, 1000000 };
	int st;

	for (long waited = 0; waited < DETACH_TIMEOUT_MS; waited++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			if (WIFEXITED(st) && !WEXITSTATUS(st))
				return 0;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 126)
				snprintf(why, n, "cannot become the VMM's user");
			else if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
				snprintf(why, n, "cannot run the helper");
			else if (WIFEXITED(st))
				snprintf(why, n, "the helper exited with status %d", WEXITSTATUS(st));
			else
				snprintf(why, n, "the helper was killed by signal %d", WTERMSIG(st));
			return -ECHILD;
		}
		if (r < 0 && errno != EINTR) {
			snprintf(why, n, "lost the helper's start: %s", strerror(errno));
			return -errno;
		}
		nanosleep(&nap, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	snprintf(why, n, "the helper did not detach in %d s", DETACH_TIMEOUT_MS / 1000);
	return -ETIMEDOUT;
}

int svcd_spawn(const struct svcd_cfg *c, const struct svcd_peer *p, int conn,
	       const struct vmswap_svc_start *m, char *why, size_t n)
{
	char rundir[VMSWAP_SVC_PATH_MAX + 32], *env[ENV_MAX];
	pid_t pid;

	if (geteuid() != 0 && p->uid != geteuid()) {
		snprintf(why, n, "the service runs as uid %u and cannot start a helper as uid %u",
			 (unsigned)geteuid(), (unsigned)p->uid);
		return -EPERM;
	}
	build_env(c, m, env, rundir, sizeof(rundir));
	pid = fork();
	if (pid < 0) {
		snprintf(why, n, "cannot fork: %s", strerror(errno));
		return -errno;
	}
	if (!pid)
		exec_helper(c, p, conn, env);
	return wait_detach(pid, why, n);
}
