/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fault latency as the guest sees it: build/bench/vmprobe under the shim
 * times its own first reads of random pages, once while they sit in
 * staging (state Pending; with VMSWAP_STAGING=copy, as pages staged in
 * place are read without a fault), once after out (they are in the swap file,
 * whose page cache out dropped). Then it reads everything in order once
 * (single-thread sequential re-touch, for information).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int vm(struct bm_vmm *v, const char *cmd, char *reply, size_t n)
{
	int r = bm_vmm_cmd(v, 300, reply, n, cmd);

	if (r)
		bm_note("probe", "vmprobe %s: %s", cmd, r > 0 ? reply : strerror(-r));
	return r;
}

static int ctl(pid_t vmm, const char *verb, bool wait)
{
	const char *args[] = { verb, wait ? "--wait" : NULL, NULL };
	char out[1024];
	int r = bm_ctl(vmm, NULL, out, sizeof(out), args);

	if (r) {
		out[strcspn(out, "\n")] = 0;
		bm_note("probe", "vmswapctl %s: exit %d: %s", verb, r, out);
	}
	return r;
}

/* touch-rand: record p50/p99 in us under the given keys. */
static int touch(struct bm_vmm *v, unsigned seed, const char *k50, const char *k99)
{
	char cmd[64], reply[256];
	unsigned n, bad;
	double p50, p99, max, mean;

	snprintf(cmd, sizeof(cmd), "touch-rand %d %u", bm.samples, seed);
	if (vm(v, cmd, reply, sizeof(reply)))
		return -1;
	if (sscanf(reply, "ok n=%u p50_ns=%lf p99_ns=%lf max_ns=%lf mean_ns=%lf bad=%u", &n,
		   &p50, &p99, &max, &mean, &bad) != 6) {
		bm_note("probe", "cannot parse vmprobe's answer: %s", reply);
		return -1;
	}
	if (bad)
		bm_note("probe", "%u pages read back wrong", bad);
	if ((int)n < bm.samples / 2)
		bm_note("probe", "only %u of %d pages could be sampled", n, bm.samples);
	bm_put(k50, p50 / 1000);
	bm_put(k99, p99 / 1000);
	return 0;
}

void bm_probe_run(void)
{
	char prog[600], size[32], seed[32], log[700], reply[256];
	char *argv[] = { prog, "--size", size, "--seed", seed, NULL };
	struct bm_vmm v;
	double mibps;
	unsigned long long bad;
	int r;

	snprintf(prog, sizeof(prog), "%s/bench/vmprobe", bm.build);
	snprintf(size, sizeof(size), "%" PRIu64 "M", bm.probe_size >> 20);
	snprintf(seed, sizeof(seed), "%d", 100 + bm_rep_count());
	snprintf(log, sizeof(log), "%s/vmprobe.log", bm.work);
	bm_log("vmswap: fault-latency probe, %s guest, %d samples", size, bm.samples);
	/* Faults from staging exist only where enable copies to a staging memfd. */
	setenv("VMSWAP_STAGING", "copy", 1);
	r = bm_vmm_start(&v, argv, log);
	unsetenv("VMSWAP_STAGING");
	if (r) {
		bm_note("probe", "vmprobe under the shim did not start managed: %s (log: %s)",
			strerror(-r), log);
		return;
	}
	if (vm(&v, "fill", reply, sizeof(reply)) || ctl(v.pid, "enable", false) ||
	    touch(&v, 1000 + (unsigned)bm_rep_count(), "vs_fault_stg_p50_us",
		  "vs_fault_stg_p99_us") ||
	    ctl(v.pid, "out", true) ||
	    touch(&v, 2000 + (unsigned)bm_rep_count(), "vs_fault_file_p50_us",
		  "vs_fault_file_p99_us"))
		goto out;
	if (!vm(&v, "touch-seq", reply, sizeof(reply)) &&
	    sscanf(reply, "ok MiBps=%lf bad=%llu", &mibps, &bad) == 2) {
		bm_put("vs_probe_seq_MiBps", mibps);
		if (bad)
			bm_note("probe", "touch-seq: %llu pages read back wrong", bad);
	}
	ctl(v.pid, "disable", true);
out:
	bm_vmm_stop(&v);
}
