/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * toyvmm --kvm: guest code running under KVM reads and writes guest
 * memory, so the faults on swapped-out pages come from KVM's own accesses
 * to the host mapping rather than from a user-space memcpy. Skips when
 * toyvmm finds no usable KVM (it exits 77). KVM may be emulated and slow
 * (about 1 us per guest instruction, a few seconds per pass over 8 MiB),
 * hence the small guests and the long timeout.
 */
#include <criterion/criterion.h>

#include "harness.h"

TestSuite(kvm, .init = h_setup, .fini = h_teardown, .timeout = 600);

#define KVM_GUEST "--kvm --size 8M"

/*
 * The guest fills its memory, it is swapped out, and the guest reads
 * every page back through KVM. Then the guest keeps writing while it is
 * swapped out and in again; the host checks every byte at the end.
 */
static void guest_cycle(const char *args)
{
	struct h_vm *vm = h_vm_start(args, NULL, true);

	h_ok(vm->p, "kvm-fill");
	h_swap_out(vm->p);
	h_ok_delta(vm->p, "copied_from_file_pages", vm->pages, "kvm-verify");
	h_ok(vm->p, "kvm-churn start");
	h_swap_out(vm->p);
	h_disable(vm->p);
	h_churn_stop_ok(vm->p, "kvm-churn");
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

Test(kvm, guest_faults_back_and_churns_through_swap)
{
	guest_cycle(KVM_GUEST);
}

Test(kvm, anonymous_guest_faults_back_and_churns_through_swap)
{
	guest_cycle(KVM_GUEST " --anon");
}

/* Pages ballooned while Active read zero in the guest, the rest comes from the file. */
Test(kvm, balloon_while_active_reads_zero_in_the_guest)
{
	uint64_t start = 512, count = 1024;
	struct h_vm *vm = h_vm_start(KVM_GUEST, NULL, true);

	h_ok(vm->p, "kvm-fill");
	h_swap_out(vm->p);
	h_ok(vm->p, "balloon %llu %llu", (unsigned long long)start, (unsigned long long)count);
	h_verify_sources(vm->p, "kvm-verify", count, vm->pages - count);
	h_disable_verify_empty(vm->p);
	h_vm_finish(vm);
}
