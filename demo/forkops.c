/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest memory seen from a fork()ed child, as a VMM's device or migration
 * process would see it. The child inherits the MAP_SHARED mappings (and a
 * private copy of the model), so whatever vmswap does must keep both
 * processes' views correct.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "toyvmm.h"

/* Exit code of the child, or 128 + signal like a shell. */
static int wait_child(pid_t pid, int *status)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

/* Child: only the forking thread exists, so it works alone and _exits
 * without flushing the parent's stdio buffers a second time. */
static pid_t spawn(void)
{
	fflush(stdout);
	fflush(stderr);
	return fork();
}

int tvm_fork_verify(struct tvm_guest *g, int *status)
{
	pid_t pid = spawn();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		uint64_t bad = 0;

		for (uint64_t p = 0; p < g->npages; p++)
			if (tvm_page_verify(g, p))
				bad++;
		_exit(bad ? 1 : 0);
	}
	return wait_child(pid, status);
}

/*
 * The child writes gen+1 into [start, start+count); the parent adopts
 * those gens only if the child finished, since otherwise it cannot know
 * which pages were written.
 */
int tvm_fork_write(struct tvm_guest *g, uint64_t start, uint64_t count,
		   int *status)
{
	pid_t pid = spawn();
	int r;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		for (uint64_t p = start; p < start + count; p++)
			tvm_page_write(g, p);
		_exit(0);
	}
	r = wait_child(pid, status);
	if (r || *status)
		return r;
	for (uint64_t p = start; p < start + count; p++)
		g->gen[p] = tvm_next_gen(g->gen[p]);
	return 0;
}

/* Children parked by tvm_fork_hold(): each waits for EOF on the pipe. */
static pid_t held[TVM_HOLD_MAX];
static int nheld, hold_rfd = -1, hold_wfd = -1;

int tvm_fork_hold(unsigned n)
{
	int fds[2];

	if (nheld + (int)n > TVM_HOLD_MAX)
		return -ENOSPC;
	if (hold_wfd < 0) {
		if (pipe2(fds, O_CLOEXEC) < 0)
			return -errno;
		hold_rfd = fds[0];
		hold_wfd = fds[1];
	}
	for (unsigned i = 0; i < n; i++) {
		pid_t pid = spawn();
		char c;

		if (pid < 0)
			return -errno;
		if (pid == 0) {
			close(hold_wfd);
			while (read(hold_rfd, &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		held[nheld++] = pid;
	}
	return 0;
}

/*
 * A child forked without the fork handlers (a raw fork system call, as a
 * VMM's own clone() would): the shim in it never joins the helper. It
 * keeps the inherited guest mappings for @ms, then exits; fork-release
 * reaps it.
 */
int tvm_fork_unjoined(unsigned ms)
{
	pid_t pid;

	if (nheld == TVM_HOLD_MAX)
		return -ENOSPC;
	fflush(stdout);
	fflush(stderr);
	pid = (pid_t)syscall(SYS_fork);
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000 };

		while (nanosleep(&t, &t) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	held[nheld++] = pid;
	return 0;
}

int tvm_fork_release(unsigned *failed)
{
	int status;

	*failed = 0;
	if (hold_wfd >= 0) {
		close(hold_wfd);
		close(hold_rfd);
		hold_wfd = hold_rfd = -1;
	}
	for (int i = 0; i < nheld; i++)
		if (wait_child(held[i], &status) || status)
			(*failed)++;
	nheld = 0;
	return 0;
}
