/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The seccomp allowlist of the running helper. Anything not listed kills
 * the whole process (SIGSYS). It is loaded once setup is done: the run
 * directory, its FIFO and listening socket, the signalfd, the epoll sets
 * and the fault and worker threads exist by then. What the helper does
 * afterwards, and so what is listed, was taken from strace -f of the
 * helpers of the whole e2e and shim suites, plus what glibc does on paths
 * the suites may not reach (marked "glibc"), and fdatasync, which only a
 * swap dir without O_DIRECT reaches.
 *
 * Argument checks, where the argument decides what a call can reach:
 *   ioctl        only the userfaultfd requests the helper issues
 *   clone        only glibc's thread-creation flags, exactly; clone3
 *                fails with ENOSYS so that glibc falls back to clone,
 *                whose flags a filter can see (clone3's are in memory)
 *   mmap, mprotect  PROT_READ and PROT_WRITE only: nothing executable
 *   openat       read-only opens, the status file (O_CREAT|O_TRUNC|
 *                O_NOFOLLOW, write-only) and O_TMPFILE (the swap file);
 *                no read-write or appending open of an existing file
 *   kill         SIGSTOP and SIGCONT (the freeze) to a pid >= 0
 *   poll         one fd, no timeout: a shim connection's hang-up
 *   sendmsg      on the keeper's socket only (fds it keeps for a restart)
 *   tgkill       SIGABRT to our own process (abort())
 *   fcntl, madvise, fallocate, memfd_create, mremap, getsockopt, unlinkat,
 *   sendto       the few forms the helper uses
 * There is no execve, socket, connect, bind, ptrace, process_vm_*,
 * pidfd_getfd, userfaultfd, mount, setuid, capset, prctl or seccomp.
 *
 * Compared with crosvm's swap monitor policy (jail/seccomp/x86_64/
 * swap_monitor.policy, last changed 2026-03-30): it lists 59 syscalls, 58
 * allowed and openat failing with ENOENT (the monitor opens no files);
 * 7 of the 58 have argument checks: ioctl (5 uffd requests), clone
 * (CLONE_THREAD set), mmap and mprotect (no PROT_EXEC), madvise (7
 * advices), prctl (PR_SET_NAME), tgkill (SIGABRT). clone3, socket, dup,
 * dup2, pipe2, sendmsg, fcntl, rt_sigaction and the rest go unchecked.
 * This list allows 55 syscalls, 17 with argument checks, and clone3
 * fails with ENOSYS. 36 are in both. Only crosvm's: chdir, clone3, dup,
 * dup2, epoll_create1, eventfd2, fchdir, getcwd, mlock2, munlock, pipe2,
 * ppoll, prctl, readlinkat, recvfrom, rt_sigaction, rt_sigreturn,
 * sigaltstack, socket, statx and the timerfd calls (23). Only
 * ours (19): accept4, getsockopt, pidfd_open and sendto (processes
 * joining over shim.sock), kill (the freeze), renameat, unlinkat and
 * rmdir (status.json, the run directory), pread64, fdatasync, fadvise64,
 * mremap, clock_nanosleep, geteuid, writev, pwritev (out's gathered
 * writes), fstatfs (checking a region's memfd), poll, io_uring_enter
 * (fault reads; the ring itself takes only reads). ioctl allows 7 requests here: crosvm's
 * 5 plus UFFDIO_API (processes join while the helper runs) and
 * UFFDIO_WRITEPROTECT (enable's write tracking).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vmswap/common.h>

#include "log.h"
#include "sandbox.h"

/* glibc's pthread_create (sysdeps/unix/sysv/linux/clone-internal.c, createthread). */
#define THREAD_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | \
		      CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)

/* Comparisons. An int argument is what the kernel sees: its low 32 bits. */
#define EQ32(a, v) { .arg = (a), .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu, .datum_b = (v) }
#define EQ64(a, v) { .arg = (a), .op = SCMP_CMP_EQ, .datum_a = (v) }
#define NONE_OF(a, bits) { .arg = (a), .op = SCMP_CMP_MASKED_EQ, .datum_a = (bits), .datum_b = 0 }
#define FLAGS(a, mask, v) { .arg = (a), .op = SCMP_CMP_MASKED_EQ, .datum_a = (mask), .datum_b = (v) }

struct rule {
	int nr;
	unsigned ncmp;
	struct scmp_arg_cmp cmp[2];
};

#define ANY(name) { SCMP_SYS(name), 0, { { 0 } } }
#define IF1(name, c0) { SCMP_SYS(name), 1, { c0 } }
#define IF2(name, c0, c1) { SCMP_SYS(name), 2, { c0, c1 } }

/* Flag bits that decide what an open can do to an existing file. */
#define TMPFILE_BIT (O_TMPFILE & ~O_DIRECTORY)
#define OPEN_KIND (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | TMPFILE_BIT)

/*
 * What F_GETFL reports for the swap file, handed back to F_SETFL (which
 * ignores all but O_DIRECT here): 0100000 is the kernel's O_LARGEFILE,
 * which glibc defines as 0 on 64-bit.
 */
#define GETFL_SWAP (O_ACCMODE | O_DIRECT | 0100000 | O_TMPFILE)

static const struct rule rules[] = {
	/* I/O on descriptors the helper holds. */
	ANY(read), ANY(write), ANY(writev), ANY(pread64), ANY(pwrite64), ANY(pwritev), ANY(close),
	ANY(lseek), ANY(ftruncate), ANY(fadvise64), ANY(newfstatat),
	ANY(fstatfs), /* a region's memfd is on tmpfs, not hugetlbfs */
	ANY(fdatasync), /* out, when the swap dir has no O_DIRECT (the suites' have) */
	/* /proc/<pid>/{stat,maps,comm}, /proc/<pid>/task, opendir: read-only. */
	IF1(openat, FLAGS(2, OPEN_KIND & ~O_NOFOLLOW, O_RDONLY)),
	/* status.json.tmp in the run directory. */
	IF1(openat, FLAGS(2, OPEN_KIND, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW)),
	/* The swap file, at the first out. */
	IF1(openat, FLAGS(2, OPEN_KIND, O_RDWR | TMPFILE_BIT)),
	ANY(getdents64), ANY(readlink),
	ANY(renameat), /* status.json.tmp -> status.json */
	IF1(unlinkat, EQ32(2, 0)), ANY(rmdir), /* the run directory, at exit */
	/* Staging memfds, guest memfds. */
	IF1(memfd_create, EQ32(1, MFD_CLOEXEC)),
	IF1(fallocate, EQ32(1, 0)),
	IF1(fallocate, EQ32(1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)),
	IF1(fcntl, EQ32(1, F_GET_SEALS)), /* is a region fd a memfd? */
	/* Swap-in turns the swap file's O_DIRECT off and on again. */
	IF1(fcntl, EQ32(1, F_GETFL)),
	IF2(fcntl, EQ32(1, F_SETFL), NONE_OF(2, ~(uint64_t)GETFL_SWAP)),
	/* Memory: staging mappings, malloc, thread stacks. Never executable. */
	IF1(mmap, NONE_OF(2, ~(uint64_t)(PROT_READ | PROT_WRITE))),
	IF1(mprotect, NONE_OF(2, ~(uint64_t)(PROT_READ | PROT_WRITE))),
	IF1(mremap, EQ64(3, MREMAP_MAYMOVE)),
	ANY(munmap), ANY(brk),
	IF1(madvise, EQ32(2, MADV_POPULATE_WRITE)), /* staging prealloc */
	IF1(madvise, EQ32(2, MADV_DONTNEED)),       /* glibc: free, thread exit */
	IF1(madvise, EQ32(2, MADV_HUGEPAGE)),       /* out's write buffers */
	/* userfaultfd: every request the helper makes, nothing else. */
	IF1(ioctl, EQ32(1, UFFDIO_API)),
	IF1(ioctl, EQ32(1, UFFDIO_REGISTER)),
	IF1(ioctl, EQ32(1, UFFDIO_UNREGISTER)),
	IF1(ioctl, EQ32(1, UFFDIO_COPY)),
	IF1(ioctl, EQ32(1, UFFDIO_ZEROPAGE)),
	IF1(ioctl, EQ32(1, UFFDIO_WAKE)),
	IF1(ioctl, EQ32(1, UFFDIO_WRITEPROTECT)),
	/* The event loops, shim connections, processes that join. */
	ANY(epoll_wait), ANY(epoll_ctl), ANY(accept4), ANY(recvmsg),
	IF2(poll, EQ32(1, 1), EQ32(2, 0)), /* has a shim connection hung up? one fd, no wait */
	IF1(sendto, EQ64(4, 0)), /* send() on a connected socket */
	IF2(getsockopt, EQ32(1, SOL_SOCKET), EQ32(2, SO_PEERCRED)),
	ANY(pidfd_open), ANY(getpid), ANY(gettid), ANY(geteuid),
	/* The freeze: bit 31 clear keeps the pid the kernel sees >= 0, never
	 * -1 (every process); 0 is our own process group. */
	IF2(kill, NONE_OF(0, 0x80000000u), EQ32(1, SIGSTOP)),
	IF2(kill, NONE_OF(0, 0x80000000u), EQ32(1, SIGCONT)),
	/* Threads: copy, write-out and swap-in workers come and go. */
	IF1(clone, FLAGS(0, 0xffffffffu, THREAD_FLAGS)),
	ANY(set_robust_list), ANY(rseq), ANY(futex), ANY(rt_sigprocmask),
	ANY(exit), ANY(exit_group),
	ANY(clock_nanosleep), /* usleep() */
	ANY(clock_gettime),   /* without a vDSO clock source */
	ANY(restart_syscall), /* a sleep or wait interrupted by SIGSTOP/SIGCONT */
	ANY(sched_getaffinity), /* glibc: malloc sizes its arena limit past 8 arenas */
	/* Fault reads: the ring was made and restricted to reads before the
	 * filter was loaded (fault_ring.h); no io_uring_setup or _register. */
	ANY(io_uring_enter),
};

static bool active;

bool vs_sandbox_active(void)
{
	return active;
}

int vs_sandbox_allowed(void)
{
	int n = 2; /* tgkill and sendmsg, added at load time */

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		size_t j = 0;

		while (j < i && rules[j].nr != rules[i].nr)
			j++;
		n += j == i;
	}
	return n;
}

/* The filter, with @otherwise for any syscall not listed. */
static int sandbox_load(uint32_t otherwise, int keeper_fd)
{
	scmp_filter_ctx ctx;
	int r;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	ctx = seccomp_init(otherwise);
	if (!ctx)
		return -ENOMEM;
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (!r)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	for (size_t i = 0; !r && i < sizeof(rules) / sizeof(rules[0]); i++)
		r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, rules[i].nr, rules[i].ncmp,
					   rules[i].cmp);
	/* abort(): SIGABRT to one of our own threads (gettid, getpid, tgkill). */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 2,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, (uint32_t)getpid()),
				     SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, SIGABRT));
	/* Fds handed to the keeper (keeper.c), over its socket only. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sendmsg), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu,
					     (uint32_t)keeper_fd));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!r)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r)
		return r < 0 ? r : -EINVAL;
	active = true;
	return 0;
}

int vs_sandbox_enter(int keeper_fd)
{
	return sandbox_load(SCMP_ACT_KILL_PROCESS, keeper_fd);
}

/*
 * An ASan build of the helper (make check-asan-e2e) runs the ASan
 * runtime's own syscalls too (sigaltstack, madvise advices...): there the
 * filter logs what is not listed instead of killing. The plain build,
 * which every other test runs, kills.
 */
#ifdef __SANITIZE_ADDRESS__
#define SANDBOX_OTHERWISE SCMP_ACT_LOG
#else
#define SANDBOX_OTHERWISE SCMP_ACT_KILL_PROCESS
#endif

void vs_sandbox_setup(int keeper_fd)
{
	const char *s = getenv(VMSWAP_ENV_SECCOMP);
	int r;

	if (s && !strcmp(s, "0")) {
		vs_warn("%s=0: running without the seccomp sandbox", VMSWAP_ENV_SECCOMP);
		return;
	}
	if (s && *s && strcmp(s, "1"))
		vs_warn("%s=%s: expected 0 or 1; the sandbox stays on", VMSWAP_ENV_SECCOMP, s);
	r = sandbox_load(SANDBOX_OTHERWISE, keeper_fd);
	if (r)
		vs_err("cannot enter the seccomp sandbox: %s; running without it", strerror(-r));
	else
		vs_info("seccomp sandbox on: %d syscalls allowed", vs_sandbox_allowed());
}
