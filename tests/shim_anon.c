/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interposition of anonymous guest memory (Firecracker's MAP_NORESERVE,
 * QEMU's MAP_FIXED inside a PROT_NONE reservation): the shim maps it from
 * a memfd of its own ("vmswap-anon") and keeps anonymous semantics
 * (MADV_DONTNEED reads zero, fork is copy-on-write while Ready); see
 * preload/README.md.
 */
#include <criterion/criterion.h>

#include "harness.h"

TestSuite(shim_anon, .init = h_setup, .fini = h_teardown, .timeout = 180);

Test(shim_anon, anonymous_noreserve_is_guest)
{
	h_mapper_one_kind("anon-noreserve:8M", "anon-noreserve");
}

Test(shim_anon, anonymous_fixed_in_prot_none_reservation_is_guest)
{
	h_mapper_one_kind("anon-qemu:8M", "anon-qemu");
}

Test(shim_anon, anonymous_left_alone_with_vmswap_anon_0)
{
	const char *const env[] = { "VMSWAP_LOG=info", "VMSWAP_ANON=0", NULL };
	const char *const specs[] = { "anon-noreserve:8M", "anon-qemu:8M", "memfd:4M", NULL };
	const char *const want[] = { "guest-memfd", NULL };

	h_mapper_check("tests/mapper", specs, env, want);
}

/* MADV_DONTNEED keeps its anonymous meaning (zeros) on converted memory. */
Test(shim_anon, anonymous_dontneed_reads_zero_in_every_state)
{
	const char *const env[] = { "VMSWAP_LOG=info", NULL };
	const char *const specs[] = { "anon-noreserve:8M", "memfd:4M", NULL };
	const char *const want[] = { "anon-noreserve", "guest-memfd", NULL };
	struct h_mapper m;
	int pid;

	h_mapper_start_guest(&m, specs, env, want);
	pid = m.p->pid;
	h_ok(m.p, "fill");
	h_ok(m.p, "dontneed anon-noreserve");
	h_ok(m.p, "dontneed guest-memfd"); /* shared: the data stays */
	h_ok(m.p, "verify");
	h_ok(m.p, "fill");
	h_ctl_ok(pid, "enable", NULL);
	h_ok(m.p, "dontneed anon-noreserve"); /* staged pages must not come back */
	h_ok(m.p, "verify");
	h_ok(m.p, "fill");
	h_swap_out(m.p);
	h_ok(m.p, "dontneed anon-noreserve"); /* nor pages in the swap file */
	h_ok(m.p, "verify");
	h_disable_verify(m.p);
	h_mapper_finish(&m);
}

/* Forked children: converted memory is copy-on-write again, a memfd is shared. */
Test(shim_anon, fork_child_writes_private_anonymous_and_shared_memfd)
{
	const char *const env[] = { "VMSWAP_LOG=info", NULL };
	const char *const specs[] = { "anon-qemu:8M", "memfd:4M", NULL };
	const char *const want[] = { "anon-qemu", "guest-memfd", NULL };
	struct h_mapper m;
	int pid;

	h_mapper_start_guest(&m, specs, env, want);
	pid = m.p->pid;
	h_ok(m.p, "fill");
	h_ok(m.p, "fork-write anon-qemu keep");
	h_ok(m.p, "fork-write guest-memfd adopt");
	h_ok(m.p, "verify");
	/* The child is gone: enable works, and so does the cycle. */
	h_wait_u64_eq(pid, "processes", 1);
	h_mapper_cycle(&m, (8u + 4u) << 20 >> 12);
	h_ok(m.p, "fork-write anon-qemu keep");
	h_ok(m.p, "verify");
	/* While swap is enabled the child shares converted memory outright
	 * (preload/README.md): its writes reach the parent, nothing is lost. */
	h_wait_u64_eq(pid, "processes", 1);
	h_swap_out(m.p);
	h_ok(m.p, "fork-write anon-qemu adopt");
	h_ok(m.p, "fork-write guest-memfd adopt");
	h_ok(m.p, "verify");
	h_disable_verify(m.p);
	h_mapper_finish(&m);
}
