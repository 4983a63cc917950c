/* SPDX-License-Identifier: BSD-3-Clause */
/* The toy VMM under the shim; see harness.h and demo/cmd.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "../helper/ctl/ctl_json.h"
#include "harness.h"

#define MAX_VM_ARGS 24

uint64_t h_answer_u64(const char *answer, const char *key)
{
	char pat[64];
	const char *p;
	unsigned long long v;

	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(answer, pat);
	cr_assert(p && sscanf(p + strlen(pat), "%llu", &v) == 1, "no %s= in answer '%s'", key,
		  answer);
	return (uint64_t)v;
}

/* Until the helper published every region of the VMM. */
static void wait_regions(struct h_vm *vm)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;

	for (;;) {
		char *json = NULL;
		uint64_t regions = 0;
		bool managed = false;

		if (!vs_status_read(vm->pid, &json) &&
		    !vs_json_get_u64(json, "regions", &regions) &&
		    !vs_json_get_bool(json, "managed", &managed) && managed &&
		    regions >= vm->regions) {
			free(json);
			return;
		}
		if (h_now() > deadline) {
			char *err = h_proc_stderr(vm->p);

			cr_assert_fail("helper of pid %d never showed %u managed regions:\n%s\n"
				       "stderr:\n%s", vm->pid, vm->regions, json ? json : "(no status)",
				       err);
		}
		free(json);
		h_nap_ms(10);
	}
}

/*
 * toyvmm did not answer "info": skip when it exited 77 (what it was asked
 * for, such as --kvm, cannot work here; its stderr says why), else fail.
 */
static void not_started(struct h_proc *p)
{
	int st = h_proc_wait(p, H_EXIT_TIMEOUT_S);
	char *err = h_proc_stderr(p), *why = strstr(err, "toyvmm:");

	if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		why = why ? why : err;
		why[strcspn(why, "\n")] = '\0';
		h_skip("toyvmm exited 77, cannot run here: %s", why);
	}
	cr_assert_fail("toyvmm %d did not answer info (answer '%s', status %#x); stderr:\n%s",
		       (int)p->pid, p->last, st, err);
}

struct h_vm *h_vm_adopt(struct h_proc *p, bool managed)
{
	struct h_vm *vm = calloc(1, sizeof(*vm));
	const char *ans;

	cr_assert(vm);
	vm->p = p;
	if (h_cmd(vm->p, H_CMD_TIMEOUT_S, "info") || strncmp(vm->p->last, "ok", 2))
		not_started(vm->p);
	ans = vm->p->last;
	vm->pid = (int)h_answer_u64(ans, "pid");
	vm->pages = h_answer_u64(ans, "pages");
	vm->regions = (unsigned)h_answer_u64(ans, "regions");
	cr_assert_eq(vm->pid, (int)vm->p->pid, "toyvmm reports pid %d, we started %d", vm->pid,
		     (int)vm->p->pid);
	if (managed)
		wait_regions(vm);
	return vm;
}

struct h_vm *h_vm_start(const char *args, const char *const env[], bool managed)
{
	const char *argv[MAX_VM_ARGS + 4];
	char *copy = strdup(args ? args : ""), *save = NULL, *tok;
	struct h_proc *p;
	int n = 0;

	if (managed)
		h_require_uffd();
	cr_assert(copy);
	argv[n++] = h_bin("toyvmm");
	argv[n++] = "--threads";
	argv[n++] = "2";
	for (tok = strtok_r(copy, " ", &save); tok && n < MAX_VM_ARGS;
	     tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	argv[n] = NULL;
	p = h_spawn(argv, env, false);
	free(copy); /* argv was copied by exec in the child */
	return h_vm_adopt(p, managed);
}

struct h_vm *h_vm_start_filled(const char *args, const char *const env[])
{
	struct h_vm *vm = h_vm_start(args, env, true);

	h_ok(vm->p, "fill");
	return vm;
}

void h_vm_finish(struct h_vm *vm)
{
	uint64_t restarts = 0;
	char *js = NULL;
	int st;

	/* A helper that died on its own (a crash, a seccomp kill) is restarted by its keeper: catch it. */
	if (vs_status_read(vm->pid, &js) == 0 && vs_json_get_u64(js, "recovered", &restarts) == 0)
		cr_assert_eq(restarts, vm->kills, "the helper was restarted %llu times, the test killed "
			     "it %u times: it died on its own (see the keeper's log line)\n%s",
			     (unsigned long long)restarts, vm->kills, js);
	free(js);
	h_ok(vm->p, "quit");
	st = h_proc_wait(vm->p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0, "toyvmm %d did not exit after quit", vm->pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "toyvmm %d ended with status %#x",
		  vm->pid, st);
	cr_assert(h_wait_rundir_gone(vm->pid),
		  "run dir %s/%d still there %g s after the VMM exited (helper pid %d)", h_env.run,
		  vm->pid, H_EXIT_TIMEOUT_S, (int)h_helper_pid(vm->pid));
	free(vm);
}

uint64_t h_vm_rss_shmem_kb(struct h_vm *vm)
{
	return h_answer_u64(h_ok(vm->p, "rss"), "shmem_kb");
}
