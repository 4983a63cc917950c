/* SPDX-License-Identifier: BSD-3-Clause */
/* vmswapctl -n NAME: the VMM of that name, in either run root (ctl_roots.c). */
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"

int vs_ctl_find_name(const char *name, int *pid)
{
	char roots[2][256], got[256];
	int nroots = vs_ctl_roots(roots, 2), found = 0;

	for (int i = 0; i < nroots; i++) {
		int *pids = NULL, r;
		size_t n;

		vs_ctl_use_root(roots[i]);
		r = vs_ctl_list_pids(&pids, &n);
		for (size_t k = 0; !r && k < n; k++) {
			if (vs_ctl_vmm_name(pids[k], got, sizeof(got)) || strcmp(got, name) ||
			    !vs_ctl_alive(pids[k]))
				continue;
			if (found && *pid != pids[k]) {
				vs_ctl_err("several VMMs are named %s (pids %d and %d); use -p PID",
					   name, *pid, pids[k]);
				free(pids);
				return VS_EXIT_USAGE;
			}
			*pid = pids[k];
			found = 1;
		}
		free(pids);
	}
	if (!found) {
		vs_ctl_err("no VMM named %s runs under vmswap (QEMU -name guest=%s)", name, name);
		return VS_EXIT_NOHELPER;
	}
	return vs_ctl_use_root_of(*pid) ? VS_EXIT_NOHELPER : 0;
}
