/* SPDX-License-Identifier: BSD-3-Clause */
/* Memory use as the host sees it: what vmswap is meant to shrink. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "toyvmm.h"

/*
 * CPU time the whole machine spent busy (user, nice, system, irq,
 * softirq; not idle, iowait or steal), in ms: the work a wake-up costs,
 * the kernel's and the helper's included. NAN if /proc/stat is unreadable.
 */
double tvm_cpu_busy_ms(void)
{
	unsigned long long user, nice, sys, idle, iowait, irq, softirq;
	FILE *f = fopen("/proc/stat", "re");
	long hz = sysconf(_SC_CLK_TCK);
	int n;

	if (!f)
		return NAN;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
		   &iowait, &irq, &softirq);
	fclose(f);
	if (n != 7 || hz <= 0)
		return NAN;
	return (double)(user + nice + sys + irq + softirq) * 1000.0 / (double)hz;
}

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
