/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The helper's seccomp allowlist, in forked children: each one enters the
 * sandbox, makes allowed calls and reports them on a pipe, then makes one
 * call the list forbids and must die of SIGSYS right there.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helper/control/status.h"
#include "../helper/model/helper.h"
#include "../helper/sys/caps.h"
#include "../helper/sys/sandbox.h"
#include "../helper/sys/swapfile.h"

/*
 * The ASan runtime adds syscalls of its own around some libc calls: its
 * pthread_create sets up the thread's allocator (madvise MADV_NOHUGEPAGE)
 * and its abort() handling calls sigaltstack. The helper is never built
 * with ASan; tests of those calls run in the plain build only.
 */
static void need_plain_build(const char *what)
{
#if defined(__SANITIZE_ADDRESS__)
	cr_skip_test("under ASan, %s makes syscalls of the ASan runtime that the helper never makes",
		     what);
#else
	(void)what;
#endif
}

static void mark(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		_exit(101);
}

/*
 * Fork a child that enters the sandbox, writes 'A', runs @body (which
 * writes 'B' once its allowed calls succeeded, then makes a forbidden
 * call) and writes 'Z' if it is still alive. Returns the wait status;
 * @seen gets what the child wrote.
 */
static int sandboxed(void (*body)(int fd), char *seen, size_t n)
{
	ssize_t got = 0, k;
	int p[2], st;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		if (vs_sandbox_enter(-1))
			_exit(100);
		mark(p[1], 'A');
		body(p[1]);
		mark(p[1], 'Z');
		_exit(0);
	}
	close(p[1]);
	while (got < (ssize_t)n - 1 && (k = read(p[0], seen + got, n - 1 - (size_t)got)) > 0)
		got += k;
	seen[got] = 0;
	close(p[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return st;
}

static void expect_sigsys(void (*body)(int fd))
{
	char seen[16];
	int st;

	st = sandboxed(body, seen, sizeof(seen));
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
		  "child should die of SIGSYS; wait status %#x (exit %d, signal %d), wrote \"%s\"",
		  st, WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0,
		  seen);
	cr_assert_str_eq(seen, "AB", "the allowed calls should pass and the forbidden one kill");
}

static void socket_after_reads(int fd)
{
	char buf[64];
	int f = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	void *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (getpid() > 0 && f >= 0 && pread(f, buf, sizeof(buf), 0) > 0 && m != MAP_FAILED &&
	    munmap(m, 1 << 16) == 0 && close(f) == 0)
		mark(fd, 'B');
	socket(AF_INET, SOCK_STREAM, 0);
}

Test(sandbox, socket_kills_after_allowed_calls)
{
	expect_sigsys(socket_after_reads);
}

static void execve_after_getpid(int fd)
{
	char *argv[] = { "true", NULL }, *envp[] = { NULL };

	if (getpid() > 0)
		mark(fd, 'B');
	execve("/bin/true", argv, envp);
}

Test(sandbox, execve_kills)
{
	expect_sigsys(execve_after_getpid);
}

/* A uffd made before the sandbox, as the helper's come over the shim socket. */
static int test_uffd = -1;

static void other_ioctl_after_uffd_api(int fd)
{
	struct uffdio_api api = { .api = UFFD_API };
	int n;

	if (test_uffd < 0 || ioctl(test_uffd, UFFDIO_API, &api) == 0)
		mark(fd, 'B');
	ioctl(fd, FIONREAD, &n);
}

Test(sandbox, ioctl_other_than_userfaultfd_kills)
{
	test_uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (test_uffd < 0)
		cr_log_info("no userfaultfd (%s): only the forbidden ioctl is checked",
			    strerror(errno));
	expect_sigsys(other_ioctl_after_uffd_api);
	if (test_uffd >= 0)
		close(test_uffd);
}

static void *thread_main(void *arg)
{
	return arg;
}

static void fork_after_thread(int fd)
{
	void *ret = NULL;
	pthread_t t;

	/* clone3 fails with ENOSYS, glibc falls back to clone with thread flags. */
	if (pthread_create(&t, NULL, thread_main, &ret) == 0 && pthread_join(t, &ret) == 0 &&
	    ret == &ret)
		mark(fd, 'B');
	fork();
}

Test(sandbox, threads_start_but_fork_kills)
{
	need_plain_build("pthread_create");
	expect_sigsys(fork_after_thread);
}

static void exec_mapping_after_rw(int fd)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m != MAP_FAILED && mprotect(m, 4096, PROT_READ) == 0)
		mark(fd, 'B');
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

Test(sandbox, executable_mapping_kills)
{
	expect_sigsys(exec_mapping_after_rw);
}

static void mprotect_exec_after_rw(int fd)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m != MAP_FAILED)
		mark(fd, 'B');
	mprotect(m, 4096, PROT_READ | PROT_EXEC);
}

Test(sandbox, mprotect_to_executable_kills)
{
	expect_sigsys(mprotect_exec_after_rw);
}

static void open_rw_after_read_only(int fd)
{
	int f = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (f >= 0 && close(f) == 0)
		mark(fd, 'B');
	open("/dev/null", O_RDWR | O_CLOEXEC);
}

Test(sandbox, read_write_open_of_a_file_kills)
{
	expect_sigsys(open_rw_after_read_only);
}

/* The swap dir and run dir of the file-path test, made before the sandbox. */
static char test_dir[64];
static int test_dirfd = -1;

/* What the helper does with files after setup, then an rmdir-by-unlinkat. */
static void helper_files_then_unlinkat_dir(int fd)
{
	static uint8_t page[2 * VS_PAGE_SIZE] __attribute__((aligned(4096)));
	bool direct;
	int sw, fl;

	memset(page, 0x5a, sizeof(page));
	sw = vs_swapfile_create(test_dir, &direct);
	fl = sw >= 0 ? fcntl(sw, F_GETFL) : -1;
	/* swap-in: O_DIRECT off for buffered read-ahead, then on again */
	if (vs_status_publish(test_dirfd) == 0 && sw >= 0 && fl >= 0 &&
	    vs_swapfile_write(sw, 1, page, 2) == 0 && fdatasync(sw) == 0 &&
	    fcntl(sw, F_SETFL, fl & ~O_DIRECT) == 0 &&
	    posix_fadvise(sw, 0, 0, POSIX_FADV_SEQUENTIAL) == 0 &&
	    vs_swapfile_read(sw, 1, page, 2) == 0 && page[0] == 0x5a &&
	    posix_fadvise(sw, 0, 0, POSIX_FADV_DONTNEED) == 0 && fcntl(sw, F_SETFL, fl) == 0 &&
	    ftruncate(sw, 0) == 0 && close(sw) == 0 &&
	    unlinkat(test_dirfd, "status.json", 0) == 0)
		mark(fd, 'B');
	unlinkat(test_dirfd, ".", AT_REMOVEDIR);
}

Test(sandbox, helper_file_calls_pass_and_unlinkat_dir_kills)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/vmswap-unit-XXXXXX");
	cr_assert(mkdtemp(test_dir));
	test_dirfd = open(test_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(test_dirfd, 0);
	expect_sigsys(helper_files_then_unlinkat_dir);
	close(test_dirfd);
	cr_assert_eq(rmdir(test_dir), 0, "the child should have left %s empty", test_dir);
}

static void group_signal_after_own_sigcont(int fd)
{
	if (kill(getpid(), SIGCONT) == 0)
		mark(fd, 'B');
	/* Our process group: harmless if it went through, a SIGCONT to running processes. */
	kill(-getpgrp(), SIGCONT);
}

Test(sandbox, signal_to_a_process_group_kills)
{
	expect_sigsys(group_signal_after_own_sigcont);
}

static void sigterm_after_sigstop_check(int fd)
{
	mark(fd, 'B');
	kill(getpid(), SIGTERM); /* only SIGSTOP and SIGCONT may be sent */
}

Test(sandbox, other_signals_kill)
{
	expect_sigsys(sigterm_after_sigstop_check);
}

static void just_abort(int fd)
{
	mark(fd, 'B');
	abort();
}

Test(sandbox, abort_still_aborts)
{
	char seen[16];
	int st;

	need_plain_build("abort()");
	st = sandboxed(just_abort, seen, sizeof(seen));
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		  "abort() should end in SIGABRT, not be refused; wait status %#x", st);
	cr_assert_str_eq(seen, "AB");
}

Test(sandbox, allowlist_size)
{
	/* The README's Security paragraph gives this number. */
	cr_assert_eq(vs_sandbox_allowed(), 55);
	cr_assert_not(vs_sandbox_active(), "the test process itself is not sandboxed");
}

/* /proc/self/status "Name:\t<hex>" as a number, or -1. */
static long long status_hex(const char *name)
{
	char line[256];
	long long v = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, strlen(name)) && line[strlen(name)] == ':')
			v = strtoll(line + strlen(name) + 1, NULL, 16);
	fclose(f);
	return v;
}

Test(sandbox, caps_drop_keeps_kill_and_ptrace_only)
{
	int st;
	pid_t pid;

	if (geteuid() != 0 || status_hex("CapEff") != status_hex("CapPrm"))
		cr_skip_test("needs root with every permitted capability effective");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		long long before = status_hex("CapEff");

		if (vs_caps_drop())
			_exit(1);
		if (status_hex("CapEff") != (long long)(before & VS_CAPS_KEPT) ||
		    status_hex("CapPrm") != (long long)(before & VS_CAPS_KEPT))
			_exit(2);
		if (status_hex("CapBnd") & ~(long long)VS_CAPS_KEPT || status_hex("CapInh") ||
		    status_hex("CapAmb"))
			_exit(3);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "1: vs_caps_drop failed, 2: effective/permitted, 3: bounding/inheritable/ambient "
		  "(status %#x)", st);
}
