/* SPDX-License-Identifier: BSD-3-Clause */
/* Scenarios on the toy VMM that several suites run on other layouts; see harness.h. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

void h_vm_cycle_verified(struct h_vm *vm)
{
	char *js;

	h_ok(vm->p, "fill");
	cr_assert(strstr(h_ctl_ok(vm->pid, "enable", NULL), "enabled"));
	js = h_status_fresh(vm->pid);
	cr_assert_eq(h_json_u64(js, "guest_pages"), vm->pages);
	cr_assert_eq(h_json_u64(js, "staging_pages"), vm->pages);
	cr_assert_eq(h_json_u64(js, "pages"), vm->pages, "state_transition.pages of enable");
	free(js);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	h_out(vm->p, vm->pages);
	cr_assert_eq(h_metric(vm->pid, "staging_pages"), 0);
	/* Every page comes back from the file exactly once. */
	h_ok_delta(vm->p, "copied_from_file_pages", vm->pages, "verify");
	h_disable_verify_empty(vm->p);
}

void h_churn_stop_ok(struct h_proc *p, const char *churn)
{
	const char *ans = h_ok(p, "%s stop", churn);

	cr_assert_eq(h_answer_u64(ans, "mismatches"), 0, "%s", ans);
	cr_assert_gt(h_answer_u64(ans, "writes"), 0, "%s", ans);
}

void h_vm_churn_through_swap(struct h_vm *vm)
{
	h_ok(vm->p, "churn start");
	h_swap_out(vm->p);
	/* Incremental enable of what the writers brought back, still churning. */
	h_ctl_ok(vm->pid, "enable", NULL);
	h_ctl_ok(vm->pid, "trim", "--wait", NULL);
	h_out(vm->p, H_ANY);
	h_disable(vm->p);
	h_churn_stop_ok(vm->p, "churn");
	h_ok(vm->p, "verify");
}

void h_vm_hotplug_while_active(struct h_vm *vm, unsigned mib)
{
	uint64_t old = vm->pages, hp = (uint64_t)mib << 20 >> 12;
	unsigned regions = vm->regions;
	const char *ans;

	h_ok(vm->p, "fill");
	h_swap_out(vm->p);
	ans = h_ok(vm->p, "hotplug %uM", mib);
	cr_assert_eq(h_answer_u64(ans, "pages"), hp, "%s", ans);
	h_wait_u64_eq(vm->pid, "regions", regions + 1);
	cr_assert_eq(h_metric(vm->pid, "guest_pages"), old + hp);
	h_ok(vm->p, "info");
	cr_assert_eq(h_answer_u64(vm->p->last, "pages"), old + hp);
	vm->pages = old + hp;
	vm->regions = regions + 1;

	/* Write into the new region while Active; the old ones stay out. */
	h_ok(vm->p, "write %llu %llu", (unsigned long long)old, (unsigned long long)hp);
	h_enable_staged(vm->p, hp);
	h_out(vm->p, vm->pages);
	h_ok(vm->p, "verify");
	h_disable_verify(vm->p);
}
