/* SPDX-License-Identifier: BSD-3-Clause */
/* Polling status.json until a condition holds, the helper dies or time runs out. */
#include <errno.h>
#include <stdlib.h>

#include "ctl_common.h"
#include "ctl_json.h"

#define VS_POLL_FIRST_S 0.002
#define VS_POLL_MAX_S 0.020

/*
 * Returns 0 when done(json) held, -ESRCH when the helper died first,
 * -ETIMEDOUT at deadline. *json_out gets the last status read (or NULL)
 * in every case; the caller frees it.
 */
int vs_ctl_poll(const struct vs_ctl_target *t, double deadline, vs_ctl_done_fn done,
		void *arg, char **json_out)
{
	double delay = VS_POLL_FIRST_S;
	char *last = NULL;

	for (;;) {
		/* Sample liveness before reading, so a status written just before
		 * the helper died is still seen. */
		bool alive = vs_ctl_alive(t->helper_pid);
		char *json;
		double left;
		int r = vs_status_read(t->vmm_pid, &json);

		if (!r) {
			free(last);
			last = json;
			if (done(json, arg)) {
				*json_out = last;
				return 0;
			}
		}
		*json_out = last;
		if (!alive)
			return -ESRCH;
		left = deadline - vs_ctl_now();
		if (left <= 0)
			return -ETIMEDOUT;
		vs_ctl_sleep(delay < left ? delay : left);
		delay = delay * 1.5 < VS_POLL_MAX_S ? delay * 1.5 : VS_POLL_MAX_S;
	}
}
