/* SPDX-License-Identifier: BSD-3-Clause */
/* list: one line per VMM directory under the run roots (ctl_roots.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"
#include "ctl_json.h"
#include "vmswap/util.h"

static void list_one(int pid)
{
	char state[64] = "-", helper[32] = "helper=dead", name[64] = "-", *json = NULL;
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
	vs_ctl_vmm_name(pid, name, sizeof(name));
	printf("%-8d %-18s %-18s %-10s %s\n", pid, state, helper, mode, name);
}

int vs_ctl_list(void)
{
	char roots[2][256];
	int nroots = vs_ctl_roots(roots, 2), *pids, r = 0;
	size_t n;

	if (!nroots)
		return vs_ctl_run_pids(&pids, &n); /* says why there is no run directory */
	printf("%-8s %-18s %-18s %-10s %s\n", "PID", "STATE", "HELPER", "MODE", "NAME");
	for (int k = 0; k < nroots; k++) {
		vs_ctl_use_root(roots[k]);
		if ((r = vs_ctl_run_pids(&pids, &n)))
			return r;
		for (size_t i = 0; i < n; i++)
			list_one(pids[i]);
		free(pids);
	}
	return VS_EXIT_OK;
}
