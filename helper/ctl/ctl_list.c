/* SPDX-License-Identifier: BSD-3-Clause */
/* list: one line per VMM directory under the run root. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"
#include "ctl_json.h"
#include "vmswap/util.h"

static void list_one(int pid)
{
	char state[64] = "-", helper[32] = "helper=dead", *json = NULL;
	const char *mode = "-";
	pid_t hpid;
	bool managed;

	if (!vs_ctl_read_helper_pid(pid, &hpid) && vs_ctl_alive(hpid))
		snprintf(helper, sizeof(helper), "helper=%d", (int)hpid);
	if (!vs_status_read(pid, &json)) {
		if (vs_json_get_str(json, "state", state, sizeof(state)) || !state[0])
			strcpy(state, "?");
		vs_ctl_oneline(state);
		if (!vs_json_get_bool(json, "managed", &managed))
			mode = managed ? "managed" : "unmanaged";
		free(json);
	}
	printf("%-8d %-18s %-18s %s\n", pid, state, helper, mode);
}

int vs_ctl_list(void)
{
	int *pids, r;
	size_t n;

	r = vs_ctl_run_pids(&pids, &n);
	if (r)
		return r;
	printf("%-8s %-18s %-18s %s\n", "PID", "STATE", "HELPER", "MODE");
	for (size_t i = 0; i < n; i++)
		list_one(pids[i]);
	free(pids);
	return VS_EXIT_OK;
}
