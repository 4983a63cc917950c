/* SPDX-License-Identifier: BSD-3-Clause */
/* status: ask the helper to republish, then show status.json. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"
#include "ctl_json.h"

/* Long enough for an idle helper, short enough not to hang on a busy one. */
#define VS_STATUS_REFRESH_S 1.0

struct fresh_wait {
	const char *id;
	bool have_seq;
	uint64_t seq;
};

/* Our reply, or any republish (seq moved) counts as fresh. */
static bool fresh(const char *json, void *arg)
{
	struct fresh_wait *w = arg;
	uint64_t seq;

	if (!vs_json_find_reply(json, w->id, NULL, NULL, 0) || !w->have_seq)
		return true;
	return !vs_json_get_u64(json, "seq", &seq) && seq != w->seq;
}

/*
 * Ask a live helper for a fresh status.json, waiting at most @wait_s.
 * Returns an exit code.
 */
static int refresh(const struct vs_ctl_target *t, double wait_s)
{
	struct fresh_wait w = { 0 };
	char id[VMSWAP_TOKEN_MAX + 1], *json = NULL;
	double deadline = vs_ctl_now() + wait_s;
	int r;

	if (!vs_status_read(t->vmm_pid, &json)) {
		w.have_seq = !vs_json_get_u64(json, "seq", &w.seq);
		free(json);
		json = NULL;
	}
	r = vs_ctl_new_id(t->vmm_pid, id, sizeof(id));
	if (!r)
		r = vs_ctl_send(t, VS_CMD_STATUS, id, deadline);
	if (r)
		return vs_ctl_send_error(t, VS_CMD_STATUS, r);
	w.id = id;
	r = vs_ctl_poll(t, deadline, fresh, &w, &json);
	free(json);
	if (r == -ESRCH) {
		vs_ctl_err("vmswap helper (pid %d) for pid %d died while asked for status",
			   (int)t->helper_pid, t->vmm_pid);
		return VS_EXIT_NOHELPER;
	}
	if (r)
		vs_ctl_err("note: helper (pid %d) did not republish within %g s; "
			   "showing its last status", (int)t->helper_pid, wait_s);
	return VS_EXIT_OK;
}

/*
 * A dead helper's last status is still worth showing, but the exit code
 * then says the helper is not running.
 */
int vs_ctl_status(const struct vs_ctl_opts *o)
{
	struct vs_ctl_target t;
	char *json = NULL;
	size_t len;
	int rc, r;

	rc = vs_ctl_target_find(o->pid, &t);
	if (rc)
		return rc;
	rc = vs_ctl_target_check(&t);
	if (!rc)
		rc = refresh(&t, o->timeout_s < VS_STATUS_REFRESH_S ? o->timeout_s
								     : VS_STATUS_REFRESH_S);
	r = vs_status_read(t.vmm_pid, &json);
	if (r) {
		vs_ctl_err("no status for pid %d (%s: %s)", t.vmm_pid, VMSWAP_STATUS_NAME,
			   r == -EBADMSG ? "not a complete JSON object" : strerror(-r));
		return VS_EXIT_NOHELPER;
	}
	if (o->json) {
		len = strlen(json);
		fputs(json, stdout);
		if (!len || json[len - 1] != '\n')
			putchar('\n');
	} else {
		vs_ctl_print_table(stdout, json, t.helper_pid, !rc);
	}
	free(json);
	return rc;
}
