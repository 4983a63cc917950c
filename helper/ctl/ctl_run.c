/* SPDX-License-Identifier: BSD-3-Clause */
/* enable, trim, out, disable: send, wait for the reply, optionally for the end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"
#include "ctl_json.h"

struct reply_wait {
	const char *id;
	bool ok;
	char msg[512];
};

static bool reply_done(const char *json, void *arg)
{
	struct reply_wait *w = arg;

	return !vs_json_find_reply(json, w->id, &w->ok, w->msg, sizeof(w->msg));
}

/* The state a background command runs in; NULL for enable. */
static const char *busy_state(enum vs_cmd_verb verb)
{
	switch (verb) {
	case VS_CMD_TRIM: return "TrimInProgress";
	case VS_CMD_OUT: return "SwapOutInProgress";
	case VS_CMD_DISABLE: return "SwapInInProgress";
	default: return NULL;
	}
}

/* arg: the busy state's name, by pointer (the callback takes void *). */
static bool state_left(const char *json, void *arg)
{
	const char *const *busy = arg;
	char state[64];

	return !vs_json_get_str(json, "state", state, sizeof(state)) && strcmp(state, *busy);
}

/* " (state X, progress D/T)" from the last status, for timeout messages. */
static void describe(const char *json, char *buf, size_t n)
{
	char state[64];
	uint64_t done, total;

	buf[0] = '\0';
	if (!json || vs_json_get_str(json, "state", state, sizeof(state)))
		return;
	if (!vs_json_get_u64(json, "done", &done) && !vs_json_get_u64(json, "total", &total) &&
	    total)
		snprintf(buf, n, " (state %s, progress %llu/%llu)", state,
			 (unsigned long long)done, (unsigned long long)total);
	else
		snprintf(buf, n, " (state %s)", state);
}

static int wait_end(const struct vs_ctl_target *t, const struct vs_ctl_opts *o,
		    double deadline, struct vs_ctl_watch *watch)
{
	const char *verb = vs_cmd_name(o->verb), *busy = busy_state(o->verb);
	char *json = NULL, state[64] = "?", info[128], err[512];
	uint64_t pages = 0, ms = 0;
	int r, rc;

	r = vs_ctl_poll(t, deadline, state_left, &busy, &json);
	if (!r)
		vs_json_get_str(json, "state", state, sizeof(state));
	if (r == -ETIMEDOUT) {
		describe(json, info, sizeof(info));
		vs_ctl_err("timed out after %g s waiting for %s to finish on pid %d%s", o->timeout_s,
			   verb, t->vmm_pid, info);
		rc = VS_EXIT_TIMEOUT;
	} else if (r) {
		snprintf(info, sizeof(info), "%s finished", verb);
		vs_ctl_report_death(watch, t->helper_pid, info);
		rc = VS_EXIT_NOHELPER;
	} else if (!strcmp(state, "Failed")) {
		r = vs_json_get_str(json, "last_error", err, sizeof(err));
		if ((r && r != -ENOSPC) || !err[0])
			strcpy(err, "(no error recorded)");
		vs_ctl_oneline(err);
		vs_ctl_err("%s failed: %s", verb, err);
		rc = VS_EXIT_FAILED;
	} else {
		/* Both live under "state_transition"; unique keys elsewhere. */
		vs_json_get_u64(json, "pages", &pages);
		vs_json_get_u64(json, "time_ms", &ms);
		printf("%s done: state %s, %llu pages in %llu ms\n", verb, state,
		       (unsigned long long)pages, (unsigned long long)ms);
		rc = VS_EXIT_OK;
	}
	free(json);
	return rc;
}

int vs_ctl_run(const struct vs_ctl_opts *o)
{
	const char *verb = vs_cmd_name(o->verb);
	struct reply_wait w = { 0 };
	struct vs_ctl_watch watch;
	struct vs_ctl_target t;
	char id[VMSWAP_TOKEN_MAX + 1], info[128];
	double deadline;
	char *json = NULL;
	int r, rc;

	rc = vs_ctl_target_open(o->pid, &t);
	if (rc)
		return rc;
	deadline = vs_ctl_now() + o->timeout_s;
	vs_ctl_watch_start(&watch, t.vmm_pid);
	r = vs_ctl_new_id(t.vmm_pid, id, sizeof(id));
	if (!r)
		r = vs_ctl_send(&t, o->verb, id, deadline);
	if (r) {
		vs_ctl_watch_end(&watch);
		return vs_ctl_send_error(&t, o->verb, r);
	}

	w.id = id;
	r = vs_ctl_poll(&t, deadline, reply_done, &w, &json);
	if (r == -ETIMEDOUT) {
		describe(json, info, sizeof(info));
		vs_ctl_err("timed out after %g s waiting for the helper to answer %s on pid %d%s",
			   o->timeout_s, verb, t.vmm_pid, info);
		rc = VS_EXIT_TIMEOUT;
	} else if (r) {
		snprintf(info, sizeof(info), "answering %s", verb);
		vs_ctl_report_death(&watch, t.helper_pid, info);
		rc = VS_EXIT_NOHELPER;
	} else if (!w.ok) {
		vs_ctl_oneline(w.msg);
		if (w.msg[0])
			vs_ctl_err("%s", w.msg);
		else
			vs_ctl_err("%s refused by the helper (no reason given)", verb);
		rc = VS_EXIT_REFUSED;
	} else {
		vs_ctl_oneline(w.msg);
		puts(w.msg[0] ? w.msg : verb);
		fflush(stdout); /* the line should show while --wait goes on */
		if (o->wait && busy_state(o->verb))
			rc = wait_end(&t, o, deadline, &watch);
	}
	vs_ctl_watch_end(&watch);
	free(json);
	return rc;
}
