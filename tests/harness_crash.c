/* SPDX-License-Identifier: BSD-3-Clause */
/* The helper killed and its keeper's recovery; see harness.h. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../helper/ctl/ctl_json.h"
#include "harness.h"

char *h_crash_status(struct h_vm *vm)
{
	char *json = NULL;
	int r = -EBADMSG;

	for (int i = 0; i < 50 && r == -EBADMSG; i++) {
		r = vs_status_read(vm->pid, &json);
		if (r == -EBADMSG)
			h_nap_ms(10);
	}
	if (r)
		cr_assert_fail("no status.json for pid %d (%s), VMM %s; stderr:\n%s", vm->pid,
			       strerror(-r), h_alive(vm->pid) ? "alive" : "gone",
			       h_proc_stderr(vm->p));
	return json;
}

static pid_t status_pid(struct h_vm *vm, const char *key)
{
	char *js = h_crash_status(vm);
	pid_t pid = (pid_t)h_json_u64(js, key);

	free(js);
	return pid;
}

pid_t h_kill_helper(struct h_vm *vm)
{
	pid_t helper = status_pid(vm, "helper_pid");

	vm->kills++;
	cr_assert_gt(helper, 0);
	cr_assert(h_alive(helper));
	cr_assert_gt(status_pid(vm, "keeper_pid"), 0, "no keeper for helper %d", (int)helper);
	cr_assert_eq(kill(helper, SIGKILL), 0);
	cr_assert(h_wait_dead(helper), "helper %d survived SIGKILL", (int)helper);
	/* The VMM itself goes on (info touches no guest memory). */
	h_ok(vm->p, "info");
	return helper;
}

void h_wait_recovered(struct h_vm *vm, pid_t dead, uint64_t n)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;

	for (;;) {
		char *js = h_crash_status(vm);
		char state[64] = "";
		pid_t now = (pid_t)h_json_u64(js, "helper_pid");

		h_json_str(js, "state", state, sizeof(state));
		if (now != dead && h_json_u64(js, "recovered") == n && !strcmp(state, "Ready")) {
			char err[256];

			cr_assert_eq(h_json_u64(js, "staging_pages"), 0, "%s", js);
			cr_assert_eq(h_json_u64(js, "swap_pages"), 0, "%s", js);
			h_json_str(js, "last_error", err, sizeof(err));
			cr_assert(strstr(err, "restarted"), "last_error: %s", err);
			cr_assert(h_alive(now), "new helper %d not running", (int)now);
			free(js);
			return;
		}
		if (h_now() > deadline)
			cr_assert_fail("no recovered helper after killing %d:\n%s", (int)dead, js);
		free(js);
		h_nap_ms(50);
	}
}

void h_wait_op(struct h_vm *vm, const char *state, const char *phase, bool partway)
{
	double deadline = h_now() + H_STATE_TIMEOUT_S;

	for (;;) {
		char *js = h_crash_status(vm);
		char now[64] = "", ph[64] = "";
		uint64_t done = h_json_u64(js, "done"), total = h_json_u64(js, "total");

		h_json_str(js, "state", now, sizeof(now));
		h_json_str(js, "phase", ph, sizeof(ph));
		if (!strcmp(now, state) && (!phase || !strcmp(ph, phase)) &&
		    (!partway || (done > 0 && done < total))) {
			free(js);
			return;
		}
		if (h_now() > deadline)
			cr_assert_fail("not caught in %s (%s):\n%s", state, phase ? phase : "", js);
		free(js);
		h_nap_ms(20);
	}
}
