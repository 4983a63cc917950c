/* SPDX-License-Identifier: BSD-3-Clause */
/* Memory use as the host sees it: what vmswap is meant to shrink. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "toyvmm.h"

/* VmRSS, RssShmem and RssAnon of this process, in KiB. */
int tvm_read_rss(uint64_t *rss_kb, uint64_t *shmem_kb, uint64_t *anon_kb)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	int found = 0;

	if (!f)
		return -errno;
	*rss_kb = *shmem_kb = *anon_kb = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %" SCNu64, rss_kb) == 1 ||
		    sscanf(line, "RssShmem: %" SCNu64, shmem_kb) == 1 ||
		    sscanf(line, "RssAnon: %" SCNu64, anon_kb) == 1)
			found++;
	}
	fclose(f);
	return found == 3 ? 0 : -ENODATA;
}
