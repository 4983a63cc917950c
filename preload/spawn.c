/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "spawn.h"

#define HELPER_FD 3
/* How long the intermediate may take to exit before we stop waiting. */
#define REAP_TIMEOUT_MS 10000

extern char **environ;

/* Our environment without LD_PRELOAD: the helper must not load the shim. */
static char **helper_env(void)
{
	static char *empty[] = { NULL };
	char **src = environ ? environ : empty, **env;
	size_t n = 0, j = 0;

	while (src[n])
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(src[i], "LD_PRELOAD=", 11))
			env[j++] = src[i];
	return env;
}

/*
 * Wait for the intermediate. ECHILD is fine: the VMM's own SIGCHLD
 * handler may have reaped it, or SIGCHLD is ignored. A helper that does
 * not detach is left running rather than blocking the VMM.
 */
static int reap(pid_t pid)
{
	struct timespec nap = { 0, 1000000 };
	long waited_ms = 0;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == ECHILD ? 0 : -errno;
		if (waited_ms >= REAP_TIMEOUT_MS) {
			shim_log(SHIM_LOG_WARN, "helper (pid %d) did not "
				 "detach; it stays a child of this process", pid);
			return 0;
		}
		nanosleep(&nap, NULL);
		waited_ms += nap.tv_nsec / 1000000;
		if (nap.tv_nsec < 64000000)
			nap.tv_nsec *= 2;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st))
		shim_log(SHIM_LOG_ERROR, "helper exited with status %d",
			 WEXITSTATUS(st));
	else
		shim_log(SHIM_LOG_ERROR, "helper killed by signal %d",
			 WTERMSIG(st));
	return -ECHILD;
}

int shim_spawn_helper(const char *path, pid_t vmm_pid, int sock_fd)
{
	char pidstr[24], fdstr[24];
	char *argv[] = { (char *)path, "--daemonize", "--vmm-pid",
			 shim_fmt_long(pidstr, vmm_pid), "--sock-fd",
			 shim_fmt_long(fdstr, HELPER_FD), NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int r, moved = -1;
	char **env;
	pid_t pid;

	/* dup2(3, 3) would keep FD_CLOEXEC on older glibc. */
	if (sock_fd == HELPER_FD) {
		moved = fcntl(sock_fd, F_DUPFD_CLOEXEC, HELPER_FD + 1);
		if (moved < 0)
			return -errno;
		sock_fd = moved;
	}
	env = helper_env();
	if (!env) {
		r = -ENOMEM;
		goto out_fd;
	}
	r = -posix_spawn_file_actions_init(&fa);
	if (r)
		goto out_env;
	r = -posix_spawnattr_init(&attr);
	if (r)
		goto out_fa;
	r = -posix_spawn_file_actions_adddup2(&fa, sock_fd, HELPER_FD);
#if __GLIBC_PREREQ(2, 34)
	/* The VMM's other fds (tap devices, sockets) are none of its business. */
	if (!r)
		r = -posix_spawn_file_actions_addclosefrom_np(&fa, HELPER_FD + 1);
#endif
	/*
	 * The calling VMM thread may block signals, and an ignored SIGCHLD
	 * would break the helper's own fork: start from defaults.
	 */
	sigemptyset(&none);
	sigfillset(&all);
	if (!r)
		r = -posix_spawnattr_setsigmask(&attr, &none);
	if (!r)
		r = -posix_spawnattr_setsigdefault(&attr, &all);
	if (!r)
		r = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
						     POSIX_SPAWN_SETSIGDEF);
	if (!r)
		r = strchr(path, '/')
			? -posix_spawn(&pid, path, &fa, &attr, argv, env)
			: -posix_spawnp(&pid, path, &fa, &attr, argv, env);
	if (!r)
		r = reap(pid);
	posix_spawnattr_destroy(&attr);
out_fa:
	posix_spawn_file_actions_destroy(&fa);
out_env:
	free(env);
out_fd:
	if (moved >= 0)
		close(moved);
	return r;
}
