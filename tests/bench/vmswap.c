/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmswap on toyvmm (--threads 2, guest of BENCH_SIZE) under the shim,
 * driven through vmswapctl like a user would. Three cycles per run:
 *
 *   A  fill (non-zero pseudo-random pages), enable, trim, out, disable:
 *      freeze time, out and disable throughput, bytes written, helper
 *      memory (at Pending, staging counted apart, and at Active), VMM RSS
 *      after out;
 *   B  fill, enable, out, then toyvmm's verify while Active: every page
 *      faults back from the swap file (sequential re-touch), then disable;
 *   C  fill-zero-half, enable, trim, out: bytes written with half the
 *      pages zero, against A's.
 *
 * Every cycle ends with toyvmm's verify, so a wrong byte is noticed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static char json[16384];

struct st {
	char state[32];
	uint64_t time_ms, pages, staging, swap, swap_bytes, trimmed_zero, trimmed_clean;
	uint64_t fault_p50_us, faults, from_file;
};

static int status(pid_t vmm, struct st *s)
{
	int r = bm_status(vmm, json, sizeof(json));

	memset(s, 0, sizeof(*s));
	if (r)
		return -EIO;
	bm_json_str(json, "state", s->state, sizeof(s->state));
	bm_json_u64(json, "time_ms", &s->time_ms);
	bm_json_u64(json, "pages", &s->pages);
	bm_json_u64(json, "staging_pages", &s->staging);
	bm_json_u64(json, "swap_pages", &s->swap);
	bm_json_u64(json, "swap_file_bytes", &s->swap_bytes);
	bm_json_u64(json, "trimmed_zero_pages", &s->trimmed_zero);
	bm_json_u64(json, "trimmed_clean_pages", &s->trimmed_clean);
	bm_json_u64(json, "fault_p50_us", &s->fault_p50_us);
	bm_json_u64(json, "faults", &s->faults);
	bm_json_u64(json, "copied_from_file_pages", &s->from_file);
	return 0;
}

/* vmswapctl VERB [--wait]; the wall time in *ms; its output in out. */
static int ctl(pid_t vmm, const char *verb, bool wait, double *ms, char *out, size_t n)
{
	const char *args[] = { verb, wait ? "--wait" : NULL, NULL };
	int r = bm_ctl(vmm, ms, out, n, args);

	if (r) {
		out[strcspn(out, "\n")] = 0;
		bm_note("vmswap", "vmswapctl %s: exit %d: %s", verb, r, out);
	}
	return r;
}

static int vm(struct bm_vmm *v, const char *cmd, double *ms)
{
	char reply[256];
	double t0 = bm_now();
	int r = bm_vmm_cmd(v, 300, reply, sizeof(reply), cmd);

	if (ms)
		*ms = (bm_now() - t0) * 1000;
	if (r)
		bm_note("vmswap", "toyvmm %s: %s", cmd, r > 0 ? reply : strerror(-r));
	return r;
}

/* VmRSS and RssShmem of a process, in MiB. */
static void rss(pid_t pid, double *rss_mib, double *shmem_mib)
{
	*rss_mib = (double)bm_proc_kb(pid, "VmRSS") / 1024;
	if (shmem_mib)
		*shmem_mib = (double)bm_proc_kb(pid, "RssShmem") / 1024;
}

static int cycle_a(struct bm_vmm *v, double *out_bytes)
{
	char out[1024];
	struct st s;
	double ms, dw, du, du1, cpu, frozen = NAN, hrss, hshm, staging_mib, over_pending, over_active, vrss;
	unsigned long long f;
	struct bm_mw mw;
	bool watching;
	const char *p;

	if (vm(v, "fill", NULL))
		return -1;
	/*
	 * out's baseline, before enable and after out (the disk's speed
	 * drifts), outside the memory watch: ext4 takes memory for it.
	 */
	dw = bm_dwrite_MiBps("vmswap", bm.size);
	du1 = bm_dwrite_unit_MiBps("vmswap", bm.size, 1);
	du = bm_dwrite_unit_MiBps("vmswap", bm.size, BM_OUT_BUFFERS); /* the nearest to out */
	watching = !bm_mw_start(v->helper, v->pid);
	if (ctl(v->pid, "enable", false, &ms, out, sizeof(out)))
		goto fail;
	bm_put("vs_enable_wall_ms", ms);
	if ((p = strstr(out, "frozen ")) && sscanf(p, "frozen %llu ms", &f) == 1)
		frozen = (double)f;
	else
		bm_note("vmswap", "no \"VMM frozen N ms\" in enable's message: %s", out);
	status(v->pid, &s);
	staging_mib = (double)s.staging * BM_PAGE / BM_MIB;
	bm_put("vs_freeze_ms", frozen);
	bm_put("vs_enable_ms", (double)s.time_ms);
	bm_put("vs_enable_MiBps", (double)s.pages * BM_PAGE / BM_MIB / (frozen / 1000));
	bm_put("vs_staged_pct", (double)s.staging * BM_PAGE / (double)bm.size * 100);

	/* Helper memory while the guest sits in staging: staging is guest data. */
	rss(v->helper, &hrss, &hshm);
	over_pending = hrss - (hshm < staging_mib ? hshm : staging_mib);
	bm_put("vs_helper_rss_pending_MiB", hrss);
	bm_put("vs_helper_staging_MiB", hshm);

	if (ctl(v->pid, "trim", true, &ms, out, sizeof(out)))
		goto fail;
	status(v->pid, &s);
	bm_put("vs_trim_ms", (double)s.time_ms);
	bm_put("vs_trim_wall_ms", ms);
	bm_put("vs_trim_full_pages", (double)(s.trimmed_zero + s.trimmed_clean));

	cpu = bm_cpu_busy_ms();
	if (ctl(v->pid, "out", true, &ms, out, sizeof(out)))
		goto fail;
	/* Is out bound by the disk or by the CPUs? */
	bm_put("vs_out_cpu_pct", (bm_cpu_busy_ms() - cpu) / ms * 100);
	if (watching) {
		bm_mw_stop(&mw);
		watching = false;
		bm_put("vs_peak_extra_MiB", mw.extra_mib);
		bm_put("vs_peak_helper_anon_MiB", mw.a_anon_mib);
		bm_put("vs_peak_vmm_rss_MiB", mw.b_rss_mib);
	}
	status(v->pid, &s);
	if (strcmp(s.state, "Active"))
		bm_note("vmswap", "state after out: %s", s.state);
	bm_put("vs_out_wall_ms", ms);
	bm_put("vs_out_ms", (double)s.time_ms);
	bm_put("vs_out_MiBps", (double)s.pages * BM_PAGE / BM_MIB / ((double)s.time_ms / 1000));
	bm_put("vs_out_MiB", (double)s.swap_bytes / BM_MIB);
	bm_put("dwrite_unit_out_MiBps",
	       (du + bm_dwrite_unit_MiBps("vmswap", bm.size, BM_OUT_BUFFERS)) / 2);
	bm_put("dwrite_unit1_out_MiBps", (du1 + bm_dwrite_unit_MiBps("vmswap", bm.size, 1)) / 2);
	bm_put("dwrite_out_MiBps", (dw + bm_dwrite_MiBps("vmswap", bm.size)) / 2);
	bm_put("dwrite_beside_MiBps", bm_dwrite_beside_MiBps("vmswap", bm.size));
	*out_bytes = (double)s.swap_bytes;

	rss(v->helper, &hrss, &hshm);
	over_active = hrss;
	bm_put("vs_helper_rss_active_MiB", hrss);
	bm_put("vs_helper_MiB", over_pending > over_active ? over_pending : over_active);
	rss(v->pid, &vrss, NULL);
	bm_put("vs_vmm_rss_out_MiB", vrss);
	bm_put("vs_vmm_rss_out_pct", vrss * BM_MIB / (double)bm.size * 100);

	if (ctl(v->pid, "disable", true, &ms, out, sizeof(out)))
		return -1;
	status(v->pid, &s);
	bm_put("vs_disable_wall_ms", ms);
	bm_put("vs_disable_ms", (double)s.time_ms);
	bm_put("vs_disable_MiBps", (double)s.pages * BM_PAGE / BM_MIB /
		   ((double)s.time_ms / 1000));
	return vm(v, "verify", NULL);
fail:
	if (watching)
		bm_mw_stop(&mw);
	return -1;
}

static int cycle_b(struct bm_vmm *v)
{
	char out[1024];
	struct st s0, s;
	double ms;

	if (vm(v, "fill", NULL) || ctl(v->pid, "enable", false, &ms, out, sizeof(out)) ||
	    ctl(v->pid, "out", true, &ms, out, sizeof(out)))
		return -1;
	status(v->pid, &s0);
	if (vm(v, "verify", &ms))
		return -1;
	status(v->pid, &s);
	bm_put("vs_seq_MiBps", (double)bm.size / BM_MIB / (ms / 1000));
	bm_put("vs_seq_file_pct", (double)(s.from_file - s0.from_file) * BM_PAGE /
		   (double)bm.size * 100);
	bm_put("vs_helper_fault_p50_us", (double)s.fault_p50_us);
	if (ctl(v->pid, "disable", true, &ms, out, sizeof(out)))
		return -1;
	return vm(v, "verify", NULL);
}

static int cycle_c(struct bm_vmm *v, double full_bytes)
{
	char out[1024];
	struct st s;
	double ms;

	if (vm(v, "fill-zero-half", NULL) || ctl(v->pid, "enable", false, &ms, out, sizeof(out)) ||
	    ctl(v->pid, "trim", true, &ms, out, sizeof(out)))
		return -1;
	status(v->pid, &s);
	bm_put("vs_zero_trim_ms", (double)s.time_ms);
	bm_put("vs_zero_trimmed_pct", (double)s.trimmed_zero * BM_PAGE / (double)bm.size * 100);
	if (ctl(v->pid, "out", true, &ms, out, sizeof(out)))
		return -1;
	status(v->pid, &s);
	bm_put("vs_zero_out_MiB", (double)s.swap_bytes / BM_MIB);
	if (full_bytes > 0)
		bm_put("vs_zero_ratio", (double)s.swap_bytes / full_bytes);
	if (ctl(v->pid, "disable", true, &ms, out, sizeof(out)))
		return -1;
	status(v->pid, &s);
	bm_put("vs_zero_disable_MiBps", (double)s.pages * BM_PAGE / BM_MIB /
		   ((double)(s.time_ms ? s.time_ms : 1) / 1000));
	return vm(v, "verify", NULL);
}

void bm_vmswap_run(void)
{
	char prog[600], size[32], seed[32], log[700];
	char *argv[] = { prog, "--size", size, "--threads", "2", "--seed", seed,
			 "--name", "vmswap-bench-guest", NULL };
	struct bm_vmm v;
	double full = 0;
	int r;

	snprintf(prog, sizeof(prog), "%s/toyvmm", bm.build);
	snprintf(size, sizeof(size), "%" PRIu64 "M", bm.size >> 20);
	snprintf(seed, sizeof(seed), "%d", 1 + bm_rep_count());
	snprintf(log, sizeof(log), "%s/toyvmm.log", bm.work);
	bm_log("vmswap: toyvmm --size %s --threads 2 under the shim", size);
	r = bm_vmm_start(&v, argv, log);
	if (r) {
		bm_note("vmswap", "toyvmm under the shim did not start managed: %s (log: %s)",
			strerror(-r), log);
		return;
	}
	bm_log("vmswap: cycle A (enable, trim, out, disable)");
	if (!cycle_a(&v, &full)) {
		bm_log("vmswap: cycle B (enable, out, re-touch while Active, disable)");
		if (!cycle_b(&v)) {
			bm_log("vmswap: cycle C (50%% zero pages: enable, trim, out, disable)");
			cycle_c(&v, full);
		}
	}
	bm_vmm_stop(&v);
}

/*
 * Reads are not seen in place: a guest that reads a quarter of its pages
 * after enable has them written by out all the same, where a staging copy
 * sees the reads (faults) and keeps those pages resident. Bytes written
 * for the same guest both ways, on a quarter of BENCH_SIZE.
 */
static void readhot(const char *staging, const char *key)
{
	char prog[600], size[32], log[700], out[1024], cmd[64];
	char *argv[] = { prog, "--size", size, "--threads", "2", "--seed", "5",
			 "--name", "vmswap-bench-readhot", NULL };
	uint64_t bytes = bm.size / 4 < (64u << 20) ? 64u << 20 : bm.size / 4;
	struct bm_vmm v;
	struct st s;
	double ms;
	int r;

	snprintf(prog, sizeof(prog), "%s/toyvmm", bm.build);
	snprintf(size, sizeof(size), "%" PRIu64 "M", bytes >> 20);
	snprintf(log, sizeof(log), "%s/toyvmm-readhot.log", bm.work);
	setenv("VMSWAP_STAGING", staging, 1);
	r = bm_vmm_start(&v, argv, log);
	unsetenv("VMSWAP_STAGING");
	if (r) {
		bm_note("vmswap", "toyvmm (read-hot, %s) did not start managed (log: %s)", staging,
			log);
		return;
	}
	snprintf(cmd, sizeof(cmd), "touch 0 %" PRIu64, bytes / BM_PAGE / 4);
	if (!vm(&v, "fill", NULL) && !ctl(v.pid, "enable", false, &ms, out, sizeof(out)) &&
	    !vm(&v, cmd, NULL) && !ctl(v.pid, "out", true, &ms, out, sizeof(out)) &&
	    !status(v.pid, &s)) {
		bm_put(key, (double)s.swap_bytes / (double)bytes * 100);
		if (!ctl(v.pid, "disable", true, &ms, out, sizeof(out)))
			vm(&v, "verify", NULL);
	}
	bm_vmm_stop(&v);
}

void bm_vmswap_readhot_run(void)
{
	bm_log("vmswap: read-hot quarter, in place and with a staging copy");
	readhot("in-place", "vs_readhot_inplace_pct");
	readhot("copy", "vs_readhot_copy_pct");
}

/*
 * The same steps on a guest of BENCH_SCALE_SIZE (default 4G; 0: not run),
 * in the first repetition only: seconds per GiB of each step, to set
 * against the same at BENCH_SIZE, and the peak extra memory.
 */
void bm_vmswap_scale_run(void)
{
	char prog[600], size[32], log[700], out[1024];
	char *argv[] = { prog, "--size", size, "--threads", "2", "--seed", "9",
			 "--name", "vmswap-bench-scale", NULL };
	struct bm_vmm v;
	struct bm_mw mw;
	struct st s;
	double ms, gib = (double)bm.scale_size / BM_GIB;
	unsigned long long f;
	const char *p;
	bool watching;

	if (!bm.scale_size || bm_rep_count() > 1)
		return;
	snprintf(prog, sizeof(prog), "%s/toyvmm", bm.build);
	snprintf(size, sizeof(size), "%" PRIu64 "M", bm.scale_size >> 20);
	snprintf(log, sizeof(log), "%s/toyvmm-scale.log", bm.work);
	bm_log("vmswap: scale, toyvmm --size %s: fill, enable, trim, out, disable", size);
	if (bm_vmm_start(&v, argv, log)) {
		bm_note("vmswap", "toyvmm --size %s did not start managed (log: %s)", size, log);
		return;
	}
	if (vm(&v, "fill", NULL))
		goto stop;
	watching = !bm_mw_start(v.helper, v.pid);
	if (ctl(v.pid, "enable", false, &ms, out, sizeof(out)))
		goto unwatch;
	bm_put("vs4_enable_s_gib", ms / 1000 / gib);
	if ((p = strstr(out, "frozen ")) && sscanf(p, "frozen %llu ms", &f) == 1)
		bm_put("vs4_freeze_ms_gib", (double)f / gib);
	if (ctl(v.pid, "trim", true, &ms, out, sizeof(out)))
		goto unwatch;
	status(v.pid, &s);
	bm_put("vs4_trim_s_gib", (double)s.time_ms / 1000 / gib);
	if (ctl(v.pid, "out", true, &ms, out, sizeof(out)))
		goto unwatch;
	status(v.pid, &s);
	bm_put("vs4_out_s_gib", (double)s.time_ms / 1000 / gib);
	if (watching) {
		bm_mw_stop(&mw);
		watching = false;
		bm_put("vs4_peak_extra_MiB", mw.extra_mib);
	}
	if (!ctl(v.pid, "disable", true, &ms, out, sizeof(out))) {
		status(v.pid, &s);
		bm_put("vs4_disable_s_gib", (double)s.time_ms / 1000 / gib);
		vm(&v, "verify", NULL);
	}
unwatch:
	if (watching)
		bm_mw_stop(&mw);
stop:
	bm_vmm_stop(&v);
}
