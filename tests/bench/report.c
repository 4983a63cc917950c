/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The table (stdout) and build/bench/results.json. Each row shows the
 * median over repetitions and every repetition's value; each target is a
 * ratio formed within each repetition, its median compared to the goal.
 */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"

struct row {
	const char *section, *key, *label, *unit;
	int dec;
};

static const struct row rows[] = {
	{ "limits", "memcpy_1t_MiBps", "memcpy, 1 thread", "MiB/s", 0 },
	{ "limits", "memcpy_2t_MiBps", "memcpy, 2 threads", "MiB/s", 0 },
	{ "limits", "memcpy_1g_2t_ms", "memcpy of 1 GiB on 2 threads", "ms", 1 },
	{ "limits", "memcpy_fresh_2t_MiBps", "memcpy into fresh memfd pages (info)", "MiB/s",
	  0 },
	{ "limits", "memfd_read_ms_gib", "pread of a filled memfd, 2 MiB at a time, per GiB", "ms",
	  0 },
	{ "limits", "pwrite_MiBps", "pwrite 1 MiB + fdatasync, sequential", "MiB/s", 0 },
	{ "limits", "dwrite_MiBps", "O_DIRECT pwrite 1 MiB, sequential (info)", "MiB/s", 0 },
	{ "limits", "pread_MiBps", "cold pread 1 MiB, sequential", "MiB/s", 0 },
	{ "limits", "pread_db_MiBps", "  same, dropping behind every 16 MiB (info)", "MiB/s", 0 },
	{ "limits", "rread_p50_us", "cold random pread 4 KiB, p50", "us", 1 },
	{ "limits", "rread_p99_us", "cold random pread 4 KiB, p99", "us", 1 },
	{ "limits", "rread16_p50_us", "cold random pread 16 KiB, p50 (info)", "us", 1 },
	{ "limits", "uffd_anon_p50_us", "uffd round trip, anon, p50", "us", 2 },
	{ "limits", "uffd_anon_p99_us", "uffd round trip, anon, p99", "us", 2 },
	{ "limits", "uffd_shmem_p50_us", "uffd round trip, shmem, p50", "us", 2 },
	{ "limits", "uffd_shmem_p99_us", "uffd round trip, shmem, p99", "us", 2 },
	{ "limits", "uffd_xproc_p50_us", "  same, handler in other process, p50", "us", 2 },
	{ "limits", "uffd_xproc_p99_us", "  same, handler in other process, p99", "us", 2 },
	{ "limits", "uffd_1cpu_p50_us", "  same, both threads on one CPU, p50", "us", 2 },
	{ "limits", "uffd_1cpu_p99_us", "  same, both threads on one CPU, p99", "us", 2 },
	{ "limits", "uffd_2cpu_p50_us", "  same, threads pinned to two CPUs, p50", "us", 2 },
	{ "limits", "uffd_2cpu_p99_us", "  same, threads pinned to two CPUs, p99", "us", 2 },
	{ "limits", "uffd_copied_touch_MiBps",
	  "first touch of pages put in by UFFDIO_COPY, 1 thread (info)", "MiB/s", 0 },
	{ "limits", "uffd_copied_rtouch_MiBps", "  same, a random quarter of them (info)", "MiB/s",
	  0 },
	{ "limits", "uffd_rate4_per_s", "uffd faults/s, 4 threads at random, no disk (info)", "/s",
	  0 },
	{ "limits", "uffd_rate4_cpu_us", "  busy CPU per fault, all CPUs (info)", "us", 1 },

	{ "kswap", "ks_pageout_MiBps", "MADV_PAGEOUT until memory freed", "MiB/s", 0 },
	{ "kswap", "ks_pageout_ms", "  total", "ms", 0 },
	{ "kswap", "ks_madvise_ms", "  madvise call", "ms", 0 },
	{ "kswap", "ks_writeback_ms", "  then writeback done", "ms", 0 },
	{ "kswap", "ks_reclaim_ms", "  then swap cache reclaimed", "ms", 0 },
	{ "kswap", "ks_peak_extra_MiB", "  peak extra host memory meanwhile", "MiB", 1 },
	{ "kswap", "ks_swapped_pct", "pages that went to swap", "%", 1 },
	{ "kswap", "ks_incore_pct", "pages still in memory after", "%", 2 },
	{ "kswap", "ks_seq_MiBps", "sequential re-touch (swap-in), 2 threads", "MiB/s", 0 },
	{ "kswap", "ks_rand_p50_us", "random 4 KiB re-touch, p50", "us", 1 },
	{ "kswap", "ks_rand_p99_us", "random 4 KiB re-touch, p99", "us", 1 },

	{ "vmswap", "vs_freeze_ms", "enable: VMM frozen", "ms", 0 },
	{ "vmswap", "vs_enable_ms", "enable: state_transition.time_ms", "ms", 0 },
	{ "vmswap", "vs_enable_wall_ms", "enable: vmswapctl wall time", "ms", 0 },
	{ "vmswap", "vs_enable_MiBps", "enable: throughput (staged / frozen)", "MiB/s", 0 },
	{ "vmswap", "vs_staged_pct", "enable: guest staged", "%", 1 },
	{ "vmswap", "vs_trim_ms", "trim (no zero pages)", "ms", 0 },
	{ "vmswap", "vs_peak_extra_MiB", "peak extra host memory, enable to out", "MiB", 1 },
	{ "vmswap", "vs_peak_helper_anon_MiB", "  helper RssAnon, peak", "MiB", 1 },
	{ "vmswap", "vs_peak_vmm_rss_MiB", "  VMM VmRSS, peak", "MiB", 1 },
	{ "vmswap", "vs_out_ms", "out: state_transition.time_ms", "ms", 0 },
	{ "vmswap", "vs_out_wall_ms", "out --wait: wall time", "ms", 0 },
	{ "vmswap", "vs_out_MiBps", "out: throughput", "MiB/s", 0 },
	{ "vmswap", "vs_out_MiB", "out: bytes written (swap_file_bytes)", "MiB", 1 },
	{ "vmswap", "vs_out_cpu_pct", "  the machine's busy CPU during out (100 = one CPU)", "%", 0 },
	{ "vmswap", "dwrite_out_MiBps", "  O_DIRECT pwrite 1 MiB of the guest's size, before and after", "MiB/s", 0 },
	{ "vmswap", "dwrite_unit_out_MiBps", "  the same in 2 MiB from 4 huge pages in turn, as out writes", "MiB/s", 0 },
	{ "vmswap", "dwrite_unit1_out_MiBps", "  the same from one huge page, written again and again", "MiB/s", 0 },
	{ "vmswap", "dwrite_beside_MiBps", "  the same beside a thread reading and punching a memfd", "MiB/s", 0 },
	{ "vmswap", "vs_seq_MiBps", "sequential re-touch while Active, 2 vCPUs", "MiB/s", 0 },
	{ "vmswap", "vs_seq_file_pct", "  pages it brought from the file", "%", 1 },
	{ "vmswap", "vs_disable_ms", "disable: state_transition.time_ms", "ms", 0 },
	{ "vmswap", "vs_disable_wall_ms", "disable --wait: wall time", "ms", 0 },
	{ "vmswap", "vs_disable_MiBps", "disable: throughput", "MiB/s", 0 },
	{ "vmswap", "vs_helper_rss_pending_MiB", "helper VmRSS at Pending", "MiB", 1 },
	{ "vmswap", "vs_helper_staging_MiB", "  of which RssShmem (staging)", "MiB", 1 },
	{ "vmswap", "vs_helper_rss_active_MiB", "helper VmRSS at Active", "MiB", 1 },
	{ "vmswap", "vs_helper_MiB", "helper memory, staging excluded (max)", "MiB", 1 },
	{ "vmswap", "vs_vmm_rss_out_MiB", "VMM VmRSS after out", "MiB", 1 },
	{ "vmswap", "vs_zero_trimmed_pct", "50%-zero guest: trimmed as zero", "%", 1 },
	{ "vmswap", "vs_zero_trim_ms", "50%-zero guest: trim", "ms", 0 },
	{ "vmswap", "vs_zero_out_MiB", "50%-zero guest: bytes written", "MiB", 1 },
	{ "vmswap", "vs_zero_disable_MiBps", "50%-zero guest: disable (data pages)", "MiB/s", 0 },
	{ "vmswap", "vs_helper_fault_p50_us", "helper's own fault p50 (2^n bucket)", "us", 0 },

	{ "vmswap", "vs_readhot_inplace_pct", "guest reading 25% after enable: written, in place",
	  "%", 1 },
	{ "vmswap", "vs_readhot_copy_pct", "  same, with a staging copy", "%", 1 },

	{ "scale", "vs4_enable_s_gib", "scale guest: enable, whole command", "s/GiB", 3 },
	{ "scale", "vs4_freeze_ms_gib", "scale guest: VMM frozen", "ms/GiB", 1 },
	{ "scale", "vs4_trim_s_gib", "scale guest: trim (no zero pages)", "s/GiB", 3 },
	{ "scale", "vs4_out_s_gib", "scale guest: out", "s/GiB", 3 },
	{ "scale", "vs4_disable_s_gib", "scale guest: disable", "s/GiB", 3 },
	{ "scale", "vs4_peak_extra_MiB", "scale guest: peak extra host memory", "MiB", 1 },

	{ "probe", "vs_fault_stg_p50_us", "fault from staging, p50", "us", 2 },
	{ "probe", "vs_fault_stg_p99_us", "fault from staging, p99", "us", 2 },
	{ "probe", "vs_fault_file_p50_us", "random fault from the file, p50", "us", 1 },
	{ "probe", "vs_fault_file_p99_us", "random fault from the file, p99", "us", 1 },
	{ "probe", "vs_probe_seq_MiBps", "sequential re-touch, 1 thread (info)", "MiB/s", 0 },

	{ "wake", "wk_cold1_MiBps", "cold read of the file, 2 MiB preads, 1 thread", "MiB/s", 0 },
	{ "wake", "wk_seq1_MiBps", "ptouch 1 seq", "MiB/s", 0 },
	{ "wake", "wk_cold2_MiBps", "cold read, 2 threads", "MiB/s", 0 },
	{ "wake", "wk_seq2_MiBps", "ptouch 2 seq", "MiB/s", 0 },
	{ "wake", "wk_cold4_MiBps", "cold read, 4 threads", "MiB/s", 0 },
	{ "wake", "wk_seq4_MiBps", "ptouch 4 seq", "MiB/s", 0 },
	{ "wake", "wk_drand4_rps", "O_DIRECT random 4 KiB preads, 4 threads", "/s", 0 },
	{ "wake", "wk_drand4_cpu_us", "  busy CPU per read, all CPUs (info)", "us", 1 },
	{ "wake", "wk_rand4_tps", "ptouch 4 rand: first touches", "/s", 0 },
	{ "wake", "wk_rand4_p50_us", "  its touch p50 (info)", "us", 1 },
	{ "wake", "wk_rand4_p99_us", "  its touch p99 (info)", "us", 1 },
	{ "wake", "wk_rand4_cpu_us", "  busy CPU per touch, all CPUs (info)", "us", 1 },
	{ "wake", "wk_dread_p50_us", "O_DIRECT random 4 KiB pread, 1 thread, p50", "us", 1 },
	{ "wake", "wk_dread_p99_us", "O_DIRECT random 4 KiB pread, 1 thread, p99", "us", 1 },
	{ "wake", "wk_rand1_p50_us", "ptouch 1 rand: touch p50", "us", 1 },
	{ "wake", "wk_rand1_p99_us", "ptouch 1 rand: touch p99", "us", 1 },
	{ "wake", "wk_load_p50_us", "  same beside a cold reader, p50", "us", 1 },
	{ "wake", "wk_load_p99_us", "  same beside a cold reader, p99", "us", 1 },
	{ "wake", "wk_load_dread_p50_us", "  O_DIRECT 4 KiB pread beside it, p50 (info)", "us", 1 },
	{ "wake", "wk_load_dread_p99_us", "  O_DIRECT 4 KiB pread beside it, p99 (info)", "us", 1 },
	{ "wake", "wk_load_reader_MiBps", "  what the reader read meanwhile (info)", "MiB/s", 0 },
	{ "wake", "wk_ws_first_ms", "working set 25%: first touch (info)", "ms", 0 },
	{ "wake", "wk_ws_ms", "working set 25%: touched again after out", "ms", 0 },
	{ "wake", "wk_ws_cold_ms", "cold read of 25% of the guest's bytes", "ms", 0 },
};

/* INFO_GE: information, shown with the level it is meant to reach. */
enum cmp { LE, GE, NEAR, INFO, INFO_GE };

struct target {
	const char *key, *label;
	enum cmp cmp;
	double goal;
	double (*f)(int rep);
	const char *needs; /* sections whose notes explain a missing value */
};

static double g(const char *k, int r)
{
	return bm_get(k, r);
}

static double t_freeze(int r)
{
	return g("vs_freeze_ms", r) * (BM_GIB / (double)bm.size) / g("memcpy_1g_2t_ms", r);
}
static double t_out_disk(int r) { return g("vs_out_MiBps", r) / g("pwrite_MiBps", r); }
static double t_out_kern(int r) { return g("vs_out_MiBps", r) / g("ks_pageout_MiBps", r); }
static double t_disable(int r) { return g("vs_disable_MiBps", r) / g("pread_MiBps", r); }
static double t_stg(int r) { return g("vs_fault_stg_p50_us", r) / g("uffd_shmem_p50_us", r); }
static double t_file(int r)
{
	return g("vs_fault_file_p50_us", r) / (g("uffd_shmem_p50_us", r) + g("rread_p50_us", r));
}
static double t_seq(int r) { return g("vs_seq_MiBps", r) / g("ks_seq_MiBps", r); }
static double t_helper(int r)
{
	return g("vs_helper_MiB", r) / (0.002 * (double)bm.size / BM_MIB + 8);
}
static double t_rss(int r) { return g("vs_vmm_rss_out_MiB", r) * BM_MIB / (double)bm.size; }
static double t_zero(int r) { return g("vs_zero_ratio", r); }
/* Against the faster of the two arrangements of the same write. */
static double t_direct(int r)
{
	double a = g("dwrite_out_MiBps", r), b = g("dwrite_unit_out_MiBps", r);

	return g("vs_out_MiBps", r) / (isnan(b) || a > b ? a : b);
}
static double i_direct_1m(int r) { return g("vs_out_MiBps", r) / g("dwrite_out_MiBps", r); }
static double i_direct_1b(int r) { return g("vs_out_MiBps", r) / g("dwrite_unit1_out_MiBps", r); }
static double i_beside(int r) { return g("vs_out_MiBps", r) / g("dwrite_beside_MiBps", r); }
static double i_beside_bare(int r) { return g("dwrite_beside_MiBps", r) / g("dwrite_out_MiBps", r); }
static double i_file16(int r)
{
	return g("vs_fault_file_p50_us", r) / (g("uffd_shmem_p50_us", r) + g("rread16_p50_us", r));
}

static double i_disable_fresh(int r)
{
	return g("vs_disable_MiBps", r) / g("memcpy_fresh_2t_MiBps", r);
}
static double i_disable_db(int r) { return g("vs_disable_MiBps", r) / g("pread_db_MiBps", r); }
static double i_stg_1cpu(int r) { return g("vs_fault_stg_p50_us", r) / g("uffd_1cpu_p50_us", r); }

static double ratio(const char *a, const char *b, int r) { return g(a, r) / g(b, r); }
static double t_wk_seq1(int r) { return ratio("wk_seq1_MiBps", "wk_cold1_MiBps", r); }
static double t_wk_seq2(int r) { return ratio("wk_seq2_MiBps", "wk_cold2_MiBps", r); }
static double t_wk_seq4(int r) { return ratio("wk_seq4_MiBps", "wk_cold4_MiBps", r); }
static double i_wk_dis1(int r) { return ratio("wk_seq1_MiBps", "vs_disable_MiBps", r); }
static double i_wk_copied(int r) { return ratio("wk_seq1_MiBps", "uffd_copied_touch_MiBps", r); }
static double i_wk_load_dread(int r)
{
	return ratio("wk_load_dread_p99_us", "wk_load_dread_p50_us", r);
}
static double i_wk_rate4(int r) { return ratio("wk_rand4_tps", "uffd_rate4_per_s", r); }
static double i_wk_dis2(int r) { return ratio("wk_seq2_MiBps", "vs_disable_MiBps", r); }
static double i_wk_dis4(int r) { return ratio("wk_seq4_MiBps", "vs_disable_MiBps", r); }
static double t_wk_rand4(int r) { return ratio("wk_rand4_tps", "wk_drand4_rps", r); }
/*
 * A fault from the file does a fault round trip's work and a disk read's:
 * with every CPU busy, this many per second at most.
 */
static double i_wk_rand4_cpu(int r)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	return g("wk_rand4_tps", r) /
	       ((double)ncpu * 1e6 / (g("uffd_rate4_cpu_us", r) + g("wk_drand4_cpu_us", r)));
}
/* The helper's fault thread runs unpinned, in another process: uffd_xproc. */
static double t_wk_p50(int r)
{
	return g("wk_rand1_p50_us", r) / (g("uffd_xproc_p50_us", r) + g("wk_dread_p50_us", r));
}
static double i_wk_p50_1cpu(int r)
{
	return g("wk_rand1_p50_us", r) / (g("uffd_1cpu_p50_us", r) + g("wk_dread_p50_us", r));
}
static double i_wk_p50_2cpu(int r)
{
	return g("wk_rand1_p50_us", r) / (g("uffd_2cpu_p50_us", r) + g("wk_dread_p50_us", r));
}
static double t_wk_p99(int r) { return ratio("wk_rand1_p99_us", "wk_rand1_p50_us", r); }
static double t_wk_load(int r) { return ratio("wk_load_p99_us", "wk_load_p50_us", r); }
static double i_wk_load(int r) { return ratio("wk_load_p50_us", "wk_rand1_p50_us", r); }
static double t_wk_ws(int r) { return ratio("wk_ws_ms", "wk_ws_cold_ms", r); }
/* The working set's pages are a quarter of the guest: their first touches alone. */
static double i_wk_ws_touch(int r)
{
	return g("wk_ws_ms", r) /
	       ((double)bm.size / 4 / BM_MIB / g("uffd_copied_rtouch_MiBps", r) * 1000);
}

static double gib(void) { return (double)bm.size / BM_GIB; }
/* The allowance: 3% of the guest and 32 MiB. */
static double t_peak(int r) { return g("vs_peak_extra_MiB", r) / (0.03 * bm.size / BM_MIB + 32); }
static double t_peak4(int r)
{
	return g("vs4_peak_extra_MiB", r) / (0.03 * (double)bm.scale_size / BM_MIB + 32);
}
/* The kernel's peak can be 0: the ratio is to at least 1 MiB. */
static double i_peak_kern(int r)
{
	double k = g("ks_peak_extra_MiB", r);

	return g("vs_peak_extra_MiB", r) / (k > 1 || isnan(k) ? k : 1);
}
static double t_enable_gib(int r) { return g("vs_enable_wall_ms", r) / 1000 / gib(); }
static double t_freeze_gib(int r) { return g("vs_freeze_ms", r) / gib(); }
static double t_trim_gib(int r) { return g("vs_trim_ms", r) / 1000 / gib(); }
static double i_out_gib(int r) { return g("vs_out_ms", r) / 1000 / gib(); }
static double t_enable4(int r) { return g("vs4_enable_s_gib", r); }
static double t_freeze4(int r) { return g("vs4_freeze_ms_gib", r); }
static double t_trim4(int r) { return g("vs4_trim_s_gib", r); }
static double i_trim_read(int r) { return t_trim_gib(r) * 1000 / g("memfd_read_ms_gib", r); }
/* Linear: seconds per GiB of the scale guest over the same at BENCH_SIZE. */
static double i_lin_enable(int r) { return g("vs4_enable_s_gib", r) / t_enable_gib(r); }
static double i_lin_trim(int r) { return g("vs4_trim_s_gib", r) / t_trim_gib(r); }
static double i_lin_out(int r) { return g("vs4_out_s_gib", r) / i_out_gib(r); }
static double i_lin_disable(int r)
{
	return g("vs4_disable_s_gib", r) / (g("vs_disable_ms", r) / 1000 / gib());
}

static const struct target targets[] = {
	{ "t_peak_extra", "peak extra memory / (3% of guest + 32 MiB)", LE, 1.0, t_peak,
	  "vmswap" },
	{ "t_peak_extra_scale", "  same, scale guest", LE, 1.0, t_peak4, "scale" },
	{ "i_peak_extra_kernel", "(info) peak extra memory / MADV_PAGEOUT's (>= 1 MiB)", INFO, 0,
	  i_peak_kern, "vmswap kswap" },
	{ "t_enable_gib", "enable, whole command, s per GiB", LE, 0.3, t_enable_gib, "vmswap" },
	{ "t_enable_gib_scale", "  same, scale guest", LE, 0.3, t_enable4, "scale" },
	{ "t_freeze_gib", "enable: VMM frozen, ms per GiB", LE, 20, t_freeze_gib, "vmswap" },
	{ "t_freeze_gib_scale", "  same, scale guest", LE, 20, t_freeze4, "scale" },
	{ "t_trim_gib", "trim, no zero pages nor copies, s per GiB", LE, 0.1, t_trim_gib, "vmswap" },
	{ "t_trim_gib_scale", "  same, scale guest", LE, 0.1, t_trim4, "scale" },
	{ "i_trim_read", "(info) trim / pread of a filled memfd, per GiB", INFO, 0, i_trim_read,
	  "vmswap limits" },
	{ "i_lin_enable", "(info) scale guest / guest: enable s per GiB", INFO, 0, i_lin_enable,
	  "scale vmswap" },
	{ "i_lin_trim", "(info) scale guest / guest: trim s per GiB", INFO, 0, i_lin_trim,
	  "scale vmswap" },
	{ "i_lin_out", "(info) scale guest / guest: out s per GiB", INFO, 0, i_lin_out,
	  "scale vmswap" },
	{ "i_lin_disable", "(info) scale guest / guest: disable s per GiB", INFO, 0, i_lin_disable,
	  "scale vmswap" },
	{ "t_freeze", "enable freeze per GiB / memcpy 1 GiB on 2 cores", LE, 1.5, t_freeze,
	  "vmswap limits" },
	{ "t_out_disk", "out throughput / pwrite+fdatasync", GE, 0.9, t_out_disk,
	  "vmswap limits" },
	{ "t_out_kernel", "out throughput / kernel MADV_PAGEOUT", GE, 1.0, t_out_kern,
	  "vmswap kswap" },
	{ "t_disable", "disable throughput / cold sequential pread", GE, 0.8, t_disable,
	  "vmswap limits" },
	{ "t_fault_stg", "staging fault p50 / bare shmem uffd round trip", LE, 1.3, t_stg,
	  "probe limits" },
	{ "t_fault_file", "random file fault p50 / (uffd RT + cold 4K pread)", LE, 1.1, t_file,
	  "probe limits" },
	{ "t_seq", "re-touch while Active / kernel swap-in (seq)", GE, 1.0, t_seq,
	  "vmswap kswap" },
	{ "t_helper", "helper memory / (0.2% of guest + 8 MiB)", LE, 1.0, t_helper, "vmswap" },
	{ "t_vmm_rss", "VMM RSS after out / guest", LE, 0.01, t_rss, "vmswap" },
	{ "t_zero", "50%-zero guest: bytes written / without zeros", NEAR, 0.5, t_zero,
	  "vmswap" },
	{ "t_out_direct", "out throughput / the faster O_DIRECT pwrite beside it", GE, 0.9,
	  t_direct, "vmswap" },
	{ "i_out_direct_1m", "(info) out throughput / O_DIRECT pwrite 1 MiB", INFO, 0, i_direct_1m,
	  "vmswap" },
	{ "i_out_direct_1b", "(info) out throughput / O_DIRECT 2 MiB from one huge page", INFO, 0,
	  i_direct_1b, "vmswap" },
	/* out also reads and punches each unit: what that work alone leaves of the disk here. */
	{ "i_beside_bare", "(info) O_DIRECT pwrite beside reads and punches / bare", INFO, 0,
	  i_beside_bare, "vmswap" },
	{ "i_out_beside", "(info) out throughput / O_DIRECT pwrite beside reads and punches", INFO,
	  0, i_beside, "vmswap" },
	{ "i_fault_file16", "(info) file fault p50 / (uffd RT + cold 16K pread)", INFO, 0,
	  i_file16, "probe limits" },
	/* Swap-in must fill fresh guest pages: on some hosts that, not the disk, is the ceiling. */
	{ "i_disable_fresh", "(info) disable throughput / memcpy into fresh pages", INFO, 0,
	  i_disable_fresh, "vmswap limits" },
	{ "i_disable_db", "(info) disable throughput / pread dropping behind", INFO, 0,
	  i_disable_db, "vmswap limits" },
	{ "i_fault_stg_1cpu", "(info) staging fault p50 / uffd RT on one CPU", INFO, 0,
	  i_stg_1cpu, "probe limits" },
	{ "t_wake_seq1", "wake: ptouch 1 seq / cold read, 1 thread", GE, 0.7, t_wk_seq1, "wake" },
	{ "t_wake_seq2", "wake: ptouch 2 seq / cold read, 2 threads", GE, 0.7, t_wk_seq2,
	  "wake" },
	{ "t_wake_seq4", "wake: ptouch 4 seq / cold read, 4 threads", GE, 0.7, t_wk_seq4,
	  "wake" },
	{ "i_wake_seq1_disable", "(info) wake: ptouch 1 seq / disable", INFO_GE, 0.8, i_wk_dis1,
	  "wake vmswap" },
	/* Every page a vCPU wakes on was put in by UFFDIO_COPY: its first touch bounds a thread. */
	{ "i_wake_seq1_copied", "(info) wake: ptouch 1 seq / first touch of copied pages", INFO, 0,
	  i_wk_copied, "wake uffd" },
	{ "i_wake_seq2_disable", "(info) wake: ptouch 2 seq / disable", INFO_GE, 0.8, i_wk_dis2,
	  "wake vmswap" },
	{ "i_wake_seq4_disable", "(info) wake: ptouch 4 seq / disable", INFO_GE, 0.8, i_wk_dis4,
	  "wake vmswap" },
	{ "t_wake_rand4", "wake: ptouch 4 rand / O_DIRECT 4K reads, 4 thr", GE, 0.7, t_wk_rand4,
	  "wake" },
	/* A fault costs more than a read here: faults/s with no disk at all bound this row. */
	{ "i_wake_rand4_uffd", "(info) ptouch 4 rand / uffd faults/s, no disk", INFO, 0,
	  i_wk_rate4, "wake uffd" },
	{ "i_wake_rand4_cpu", "(info) ptouch 4 rand / CPUs / (fault CPU + read CPU)", INFO, 0,
	  i_wk_rand4_cpu, "wake limits" },
	{ "t_wake_p50", "wake: touch p50 / (uffd RT xproc + O_DIRECT 4K)", LE, 1.15, t_wk_p50,
	  "wake limits" },
	{ "i_wake_p50_1cpu", "(info) touch p50 / (uffd RT 1 CPU + O_DIRECT 4K)", INFO, 0,
	  i_wk_p50_1cpu, "wake limits" },
	{ "i_wake_p50_2cpu", "(info) touch p50 / (uffd RT 2 CPUs + O_DIRECT 4K)", INFO, 0,
	  i_wk_p50_2cpu, "wake limits" },
	{ "t_wake_p99", "wake: touch p99 / its p50", LE, 3.0, t_wk_p99, "wake" },
	{ "t_wake_load_p99", "wake beside a reader: touch p99 / its p50", LE, 3.0, t_wk_load,
	  "wake" },
	{ "i_wake_load_p50", "(info) touch p50 beside a reader / alone", INFO, 0, i_wk_load,
	  "wake" },
	/* The same load's effect on a bare read: the machine's tail, not vmswap's. */
	{ "i_wake_load_dread", "(info) O_DIRECT read beside a reader: p99 / its p50", INFO, 0,
	  i_wk_load_dread, "wake" },
	{ "t_wake_ws", "wake: working set 25% / cold read of 25%", LE, 1.5, t_wk_ws, "wake" },
	{ "i_wake_ws_touch", "(info) working set 25% / first touches of copied pages", INFO, 0,
	  i_wk_ws_touch, "wake uffd" },
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static double target_median(const struct target *t, double *per, int *n)
{
	double v[BM_MAX_REPS];

	*n = 0;
	for (int r = 0; r < bm_rep_count(); r++) {
		double x = t->f(r);

		per[r] = x;
		if (!isnan(x) && !isinf(x))
			v[(*n)++] = x;
	}
	if (!*n)
		return NAN;
	bm_pct(v, (size_t)*n, 50);
	return *n % 2 ? v[*n / 2] : (v[*n / 2 - 1] + v[*n / 2]) / 2;
}

static bool pass(const struct target *t, double v)
{
	switch (t->cmp) {
	case LE: return v <= t->goal;
	case GE: return v >= t->goal;
	case INFO:
	case INFO_GE: return true;
	default: return v >= t->goal - 0.05 && v <= t->goal + 0.05;
	}
}

static bool info(const struct target *t)
{
	return t->cmp == INFO || t->cmp == INFO_GE;
}

static const char *cmp_str(enum cmp c)
{
	return c == LE ? "<=" : c == GE || c == INFO_GE ? ">=" : c == INFO ? "" : "~";
}

/* The first note of a section that says why it was skipped, if any. */
static const char *skipped(const char *section)
{
	const char *n;

	for (int i = 0; (n = bm_notes(section, i)); i++)
		if (!strncmp(n, "skipped", 7))
			return n;
	return NULL;
}

static void print_section(const char *section, const char *title)
{
	const char *n;
	bool any = false;

	printf("\n%s\n", title);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];
		int k;
		double m;

		if (strcmp(w->section, section))
			continue;
		m = bm_median(w->key, &k);
		if (!k)
			continue;
		any = true;
		printf("  %-44s %10.*f %-6s", w->label, w->dec, m, w->unit);
		if (bm_rep_count() > 1) {
			printf("  [");
			for (int r = 0; r < bm_rep_count(); r++)
				printf("%s%.*f", r ? " " : "", w->dec, bm_get(w->key, r));
			printf("]");
		}
		printf("\n");
	}
	if (!any && !skipped(section))
		printf("  (nothing measured)\n");
	for (int i = 0; (n = bm_notes(section, i)); i++)
		printf("  %s %s\n", strncmp(n, "skipped", 7) ? "note:" : "", n);
}

static void json_num(FILE *f, double v, int dec)
{
	if (isnan(v) || isinf(v))
		fprintf(f, "null");
	else
		fprintf(f, "%.*f", dec < 3 ? 3 : dec, v);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void write_json(const char *path, double elapsed, const struct utsname *u)
{
	static const char *const sections[] = { "limits", "kswap", "vmswap", "scale", "probe",
						"wake" };
	FILE *f = fopen(path, "we");
	double per[BM_MAX_REPS];
	const char *n;
	int k;

	if (!f) {
		perror(path);
		return;
	}
	fprintf(f, "{\n \"config\":{\"guest_bytes\":%llu,\"probe_bytes\":%llu,\"reps\":%d,"
		   "\"samples\":%d,\"swap_dir\":",
		(unsigned long long)bm.size, (unsigned long long)bm.probe_size, bm_rep_count(),
		bm.samples);
	json_str(f, bm.swap_dir);
	fprintf(f, ",\"kernel\":");
	json_str(f, u->release);
	fprintf(f, ",\"elapsed_s\":%.1f},\n \"metrics\":{", elapsed);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];

		fprintf(f, "%s\n  ", i ? "," : "");
		json_str(f, w->key);
		fprintf(f, ":{\"section\":\"%s\",\"label\":", w->section);
		json_str(f, w->label);
		fprintf(f, ",\"unit\":");
		json_str(f, w->unit);
		fprintf(f, ",\"median\":");
		json_num(f, bm_median(w->key, &k), w->dec);
		fprintf(f, ",\"samples\":[");
		for (int r = 0; r < bm_rep_count(); r++) {
			fprintf(f, "%s", r ? "," : "");
			json_num(f, bm_get(w->key, r), w->dec);
		}
		fprintf(f, "]}");
	}
	fprintf(f, "\n },\n \"targets\":[");
	for (size_t i = 0; i < NTARGETS; i++) {
		const struct target *t = &targets[i];
		double m = target_median(t, per, &k);

		fprintf(f, "%s\n  {\"key\":\"%s\",\"label\":", i ? "," : "", t->key);
		json_str(f, t->label);
		fprintf(f, ",\"cmp\":\"%s\",\"goal\":", cmp_str(t->cmp));
		json_num(f, t->goal, 3);
		fprintf(f, ",\"median\":");
		json_num(f, m, 4);
		fprintf(f, ",\"per_rep\":[");
		for (int r = 0; r < bm_rep_count(); r++) {
			fprintf(f, "%s", r ? "," : "");
			json_num(f, per[r], 4);
		}
		fprintf(f, "],\"result\":\"%s\"}", !k ? "n/a" : info(t) ? "info"
							: pass(t, m) ? "PASS" : "MISS");
	}
	fprintf(f, "\n ],\n \"notes\":[");
	k = 0;
	for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
		for (int i = 0; (n = bm_notes(sections[s], i)); i++) {
			fprintf(f, "%s\n  {\"section\":\"%s\",\"text\":", k++ ? "," : "",
				sections[s]);
			json_str(f, n);
			fprintf(f, "}");
		}
	}
	fprintf(f, "\n ]\n}\n");
	fclose(f);
}

/* Returns how many targets went unmeasured with no part saying it was skipped. */
int bm_report(double elapsed, const char *json_path)
{
	struct utsname u;
	double per[BM_MAX_REPS];
	int pass_n = 0, miss_n = 0, na_n = 0, broken = 0;
	char title[700];

	uname(&u);
	printf("\nvmswap benchmark: guest %llu MiB, probe %llu MiB, %d repetition%s (median "
	       "[each]), %d latency samples\n",
	       (unsigned long long)(bm.size >> 20), (unsigned long long)(bm.probe_size >> 20),
	       bm_rep_count(), bm_rep_count() == 1 ? "" : "s", bm.samples);
	printf("swap dir %s, Linux %s, %ld CPUs, %.0f s\n", bm.swap_dir, u.release,
	       sysconf(_SC_NPROCESSORS_ONLN), elapsed);
	print_section("limits", "Physical limits (this machine, this run)");
	snprintf(title, sizeof(title), "Kernel swap (swap file in %s, MADV_PAGEOUT, child in a "
		 "memory cgroup)", bm.swap_dir);
	print_section("kswap", title);
	snprintf(title, sizeof(title), "vmswap (toyvmm --size %lluM --threads 2 under the shim)",
		 (unsigned long long)(bm.size >> 20));
	print_section("vmswap", title);
	snprintf(title, sizeof(title), "vmswap on a %llu MiB guest (BENCH_SCALE_SIZE, first "
		 "repetition)", (unsigned long long)(bm.scale_size >> 20));
	print_section("scale", title);
	snprintf(title, sizeof(title), "vmswap fault latency (vmprobe, %llu MiB, timed in the VMM)",
		 (unsigned long long)(bm.probe_size >> 20));
	print_section("probe", title);
	snprintf(title, sizeof(title), "vmswap wake-up (toyvmm --size %lluM: ptouch after enable, "
		 "trim, out, caches dropped; baselines on a file in %s)",
		 (unsigned long long)(bm.size >> 20), bm.swap_dir);
	print_section("wake", title);

	printf("\nTargets (ratio within each repetition, median)\n");
	printf("  %-52s %9s %8s  %s\n", "ratio", "value", "goal", "result");
	for (size_t i = 0; i < NTARGETS; i++) {
		const struct target *t = &targets[i];
		char goal[32];
		int k;
		double m = target_median(t, per, &k);

		if (t->cmp == INFO)
			goal[0] = 0;
		else if (t->cmp == INFO_GE)
			snprintf(goal, sizeof(goal), "(%s %g)", cmp_str(t->cmp), t->goal);
		else
			snprintf(goal, sizeof(goal), "%s %g", cmp_str(t->cmp), t->goal);
		if (!k) {
			const char *why = NULL;
			char sec[32];

			/* Name the reason a part was skipped, if it was. */
			for (const char *s = t->needs; *s && !why;) {
				size_t l = strcspn(s, " ");

				snprintf(sec, sizeof(sec), "%.*s", (int)l, s);
				why = skipped(sec);
				s += l + (s[l] == ' ');
			}
			printf("  %-52s %9s %8s  n/a%s%s\n", t->label, "-", goal, why ? ": " : "",
			       why ? why : "");
			na_n += !info(t);
			broken += !info(t) && !why;
			continue;
		}
		if (info(t)) {
			printf("  %-52s %9.3f %8s\n", t->label, m, goal);
			continue;
		}
		printf("  %-52s %9.3f %8s  %s\n", t->label, m, goal, pass(t, m) ? "PASS" : "MISS");
		pass(t, m) ? pass_n++ : miss_n++;
	}
	printf("\n%d passed, %d missed, %d not measured; JSON: %s\n", pass_n, miss_n, na_n,
	       json_path);
	write_json(json_path, elapsed, &u);
	return broken;
}
