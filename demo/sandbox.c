/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * --sandbox: what QEMU's "-sandbox on,spawn=deny" does to a VMM, installed
 * before guest memory is mapped, as QEMU does: starting a process (fork,
 * vfork, execve, a clone that is not a thread) kills it with SIGSYS;
 * clone3 fails with ENOSYS, so threads come from clone. A shim that
 * forked here would kill its VMM: tests check that it never does.
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>

#include "toyvmm.h"

int tvm_sandbox_spawn_deny(void)
{
	static const int kill_calls[] = { SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(execve),
					  SCMP_SYS(execveat) };
	scmp_filter_ctx ctx;
	int r = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	for (unsigned i = 0; !r && i < sizeof(kill_calls) / sizeof(kill_calls[0]); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, kill_calls[i], 0);
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!r)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}
