/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmswap-bench: measures vmswap against this machine's physical limits and
 * against the kernel's own swap, all in the same run, and prints one table
 * (see tests/bench/README.md). Each part is a module:
 *
 *   main.c     configuration, the repetition loop, cleanup on any exit
 *   metrics.c  named samples, one per repetition, and their medians
 *   util.c     time, statistics, /proc readers, page patterns, tiny JSON
 *   proc.c     children: a VMM under the shim (line protocol), vmswapctl
 *   limits.c   memcpy, pwrite+fdatasync, cold pread, random 4 KiB pread
 *   uffd_rt.c  bare userfaultfd round trips (anon, shmem, cross-process)
 *   cgroup.c   a memory cgroup for the kernel-swap child
 *   kswap.c    kernel swap on a swap file: MADV_PAGEOUT, swap-in
 *   vmswap.c   toyvmm under the shim: enable/trim/out/disable cycles
 *   probe_run.c fault latency with build/bench/vmprobe as the VMM
 *   wake.c     the wake-up from the swap file as the guest feels it:
 *              toyvmm's ptouch on 1-4 threads, against cold reads
 *   memwatch.c peak extra host memory (and two processes' memory) on a thread
 *   report.c   the table, the targets, results.json
 *
 * probe.c is a separate program (build/bench/vmprobe).
 */
#ifndef BENCH_H
#define BENCH_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BM_MAX_REPS 16
#define BM_PAGE 4096u
#define BM_MIB (1024.0 * 1024.0)
#define BM_GIB (1024.0 * 1024.0 * 1024.0)

struct bm_cfg {
	uint64_t size;        /* guest bytes (BENCH_SIZE) */
	uint64_t probe_size;  /* guest bytes of the fault-latency probe */
	uint64_t scale_size;  /* guest bytes of the scale run (BENCH_SCALE_SIZE), 0: none */
	int reps;             /* BENCH_REPS */
	int samples;          /* latency samples per measurement (BENCH_SAMPLES) */
	double budget_s;      /* stop starting repetitions after this (BENCH_BUDGET_S) */
	char swap_dir[512];   /* BENCH_SWAP_DIR, default /var/tmp */
	char build[512];      /* absolute build dir */
	char work[512];       /* private temp dir: run dir, logs */
	char ksfile[600];     /* kernel swap file path */
	bool root;
};
extern struct bm_cfg bm;

/* util.c */
double bm_now(void);                       /* monotonic seconds */
double bm_cpu_busy_ms(void);               /* the machine's busy CPU time (/proc/stat); NAN if unknown */
void bm_sleep_ms(double ms);
void bm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double bm_pct(double *v, size_t n, double p); /* sorts v; nearest rank; NAN if n==0 */
uint64_t bm_rand(uint64_t *state);         /* splitmix64 */
void bm_fill_page(void *page, uint64_t seed, uint64_t pno); /* non-zero pseudo-random */
/* A memfd of @len bytes, every page filled (bm_fill_page); the fd or -errno. */
int bm_filled_memfd(const char *name, uint64_t len, uint64_t seed);
uint64_t bm_page_word0(uint64_t seed, uint64_t pno);
long long bm_kv(const char *path, const char *key); /* "key value" line; -1 if absent */
long long bm_proc_kb(pid_t pid, const char *key);   /* /proc/pid/status field in kB */
int bm_write_str(const char *path, const char *s);  /* 0 or -errno */
int bm_json_u64(const char *json, const char *key, uint64_t *out);
int bm_json_str(const char *json, const char *key, char *buf, size_t n);
void *bm_map(size_t len);                  /* private anon, prefaulted by caller; NULL on error */
void bm_unmap(void *p, size_t len);
int bm_open_tmp(const char *dir);          /* nameless file in dir: fd or -errno */

/* metrics.c: samples are per repetition; every key is a string literal. */
void bm_rep_begin(int rep);
int bm_rep_count(void);
void bm_put(const char *key, double v);
double bm_get(const char *key, int rep);   /* NAN if not measured */
double bm_median(const char *key, int *n); /* over repetitions; NAN if none */
void bm_note(const char *section, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *bm_notes(const char *section, int i); /* i-th note of a section or NULL */

/* proc.c */
struct bm_vmm {
	pid_t pid;
	pid_t helper;
	int in, out;
	char buf[8192];
	size_t len;
};
int bm_vmm_start(struct bm_vmm *v, char *const argv[], const char *log);
int bm_vmm_cmd(struct bm_vmm *v, double timeout_s, char *reply, size_t n, const char *cmd);
void bm_vmm_stop(struct bm_vmm *v);
int bm_ctl(pid_t vmm, double *wall_ms, char *out, size_t n, const char *const args[]);
int bm_status(pid_t vmm, char *json, size_t n);
int bm_run(const char *const argv[], char *out, size_t n); /* exit code or -errno */
void bm_children_kill(void);              /* async-signal-safe */
void bm_child_track(pid_t pid, bool add); /* a fork()ed child cleanup must kill */
void bm_child_setup(void);                /* first thing in such a child */

/* the parts; each records metrics for the current repetition */
void bm_limits_run(void);
double bm_dwrite_MiBps(const char *section, uint64_t len); /* O_DIRECT sequential; NAN */
double bm_dwrite_unit_MiBps(const char *section, uint64_t len, int nbuf); /* 2 MiB, huge pages */
#define BM_OUT_BUFFERS 4 /* out's readers, each with its buffer */
/* beside.c: the same while another thread reads and punches a filled memfd; NAN */
double bm_dwrite_beside_MiBps(const char *section, uint64_t len);
void bm_uffd_run(void);
int bm_kswap_prepare(void);               /* once; 0 or skipped (noted) */
void bm_kswap_run(void);
void bm_kswap_cleanup(void);              /* async-signal-safe */
void bm_vmswap_run(void);
void bm_vmswap_scale_run(void);
void bm_vmswap_readhot_run(void);
void bm_probe_run(void);
void bm_wake_run(void);

/* memwatch.c: one watch at a time; a and b are pids to follow too (0: none) */
struct bm_mw {
	double extra_mib;            /* peak of MemTotal - MemAvailable, less its start */
	double a_anon_mib, a_rss_mib; /* peaks of a's RssAnon and VmRSS */
	double b_anon_mib, b_rss_mib;
	int samples;
};
int bm_mw_start(pid_t a, pid_t b);       /* 0 or -1 */
void bm_mw_stop(struct bm_mw *out);

/* cgroup.c */
int bm_cg_create(char *why, size_t n);    /* 0 or -1 with a reason */
int bm_cg_join(pid_t pid);
long long bm_cg_stat(const char *key);    /* memory.stat field; -1 */
int bm_cg_reclaim(void);                  /* reclaim all the cgroup's memory */
void bm_cg_remove(void);                  /* async-signal-safe */

/* report.c */
int bm_report(double elapsed_s, const char *json_path);

#endif
