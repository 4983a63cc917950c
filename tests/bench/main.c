/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmswap-bench BUILD_DIR: configuration from the environment, the
 * repetition loop, and cleanup on every way out (atexit and fatal
 * signals): our children and the helpers they started are ended by pid,
 * the kernel swap file is swapped off and deleted, the cgroup removed.
 *
 *   BENCH_SIZE        guest size (default 1G)
 *   BENCH_REPS        repetitions (default 3), medians quoted
 *   BENCH_SAMPLES     latency samples per measurement (default 2000)
 *   BENCH_PROBE_SIZE  guest of the fault-latency probe (default min(SIZE, 256M))
 *   BENCH_SCALE_SIZE  guest of the scale run, first repetition only (default 4G; 0: none)
 *   BENCH_SWAP_DIR    where every file goes (default /var/tmp)
 *   BENCH_BUDGET_S    no new repetition starts when it would end after this
 *                     (default 1200)
 *   BENCH_KSWAP_FILE  path of the kernel swap file (default
 *                     SWAP_DIR/vmswap-bench-PID.swap; run.sh sets it)
 *   BENCH_WORK        private temp dir to use (run.sh sets it)
 *   BENCH_KEEP=1      keep the temp dir (logs of toyvmm, vmprobe, helper)
 *   BENCH_ONLY        comma-separated parts to run: limits,uffd,kswap,vmswap,scale,readhot,probe,wake
 *   BENCH_STRICT=1    exit 3 when a target went unmeasured and no part says
 *                     why (make check-bench: the bench itself still works)
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmswap/util.h>

#include "bench.h"

struct bm_cfg bm;
static bool own_work;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void cleanup(void)
{
	static volatile sig_atomic_t done;

	if (done)
		return;
	done = 1;
	bm_children_kill();
	bm_kswap_cleanup();
	if (own_work && bm.work[0] && !getenv("BENCH_KEEP"))
		nftw(bm.work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static uint64_t env_size(const char *name, uint64_t def)
{
	const char *s = getenv(name);
	uint64_t v;

	if (!s || !*s)
		return def;
	if (vmswap_parse_size(s, &v) || v < (4u << 20)) {
		fprintf(stderr, "vmswap-bench: bad %s=%s (a size of at least 4M)\n", name, s);
		exit(2);
	}
	return v / (2u << 20) * (2u << 20); /* toyvmm wants whole 2 MiB units */
}

static long env_long(const char *name, long def, long lo, long hi)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 10);
	if (*end || v < lo || v > hi) {
		fprintf(stderr, "vmswap-bench: bad %s=%s (%ld..%ld)\n", name, s, lo, hi);
		exit(2);
	}
	return v;
}

/* BENCH_ONLY=a,b: run only those parts (limits uffd kswap vmswap scale readhot probe wake). */
static bool part(const char *name)
{
	const char *only = getenv("BENCH_ONLY");
	size_t l = strlen(name);

	if (!only || !*only)
		return true;
	for (const char *p = only; (p = strstr(p, name)); p += l)
		if ((p == only || p[-1] == ',') && (p[l] == ',' || !p[l]))
			return true;
	return false;
}

static void tail_log(const char *name)
{
	char path[700], cmd[800];

	snprintf(path, sizeof(path), "%s/%s", bm.work, name);
	if (access(path, R_OK))
		return;
	fprintf(stderr, "--- last lines of %s:\n", name);
	snprintf(cmd, sizeof(cmd), "tail -n 15 '%s' >&2", path);
	if (system(cmd)) {
		/* nothing more to say */
	}
}

static void configure(int argc, char **argv)
{
	const char *s;
	char path[700];
	static const char *const need[] = { "libvmswap.so", "vmswap-helper", "vmswapctl", "toyvmm",
					    "bench/vmprobe" };

	if (argc != 2 || !realpath(argv[1], bm.build)) {
		fprintf(stderr, "usage: vmswap-bench BUILD_DIR (see tests/bench/README.md)\n");
		exit(2);
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", bm.build, need[i]);
		if (access(path, R_OK)) {
			fprintf(stderr, "vmswap-bench: %s is missing (run make first)\n", path);
			exit(2);
		}
	}
	bm.size = env_size("BENCH_SIZE", 1ull << 30);
	bm.probe_size = env_size("BENCH_PROBE_SIZE", bm.size < (256ull << 20) ? bm.size
								      : 256ull << 20);
	s = getenv("BENCH_SCALE_SIZE");
	bm.scale_size = s && !strcmp(s, "0") ? 0 : env_size("BENCH_SCALE_SIZE", 4ull << 30);
	bm.reps = (int)env_long("BENCH_REPS", 3, 1, BM_MAX_REPS);
	bm.samples = (int)env_long("BENCH_SAMPLES", 2000, 10, 100000);
	bm.budget_s = (double)env_long("BENCH_BUDGET_S", 1200, 1, 86400);
	s = getenv("BENCH_SWAP_DIR");
	if (!realpath(s && *s ? s : "/var/tmp", bm.swap_dir)) {
		fprintf(stderr, "vmswap-bench: swap dir %s: %s\n", s ? s : "/var/tmp",
			strerror(errno));
		exit(2);
	}
	s = getenv("BENCH_KSWAP_FILE");
	if (s && *s)
		snprintf(bm.ksfile, sizeof(bm.ksfile), "%s", s);
	else
		snprintf(bm.ksfile, sizeof(bm.ksfile), "%s/vmswap-bench-%d.swap", bm.swap_dir,
			 (int)getpid());
	bm.root = geteuid() == 0;

	s = getenv("BENCH_WORK");
	if (s && *s) {
		snprintf(bm.work, sizeof(bm.work), "%s", s);
	} else {
		snprintf(bm.work, sizeof(bm.work), "/tmp/vmswap-bench.XXXXXX");
		if (!mkdtemp(bm.work)) {
			perror("vmswap-bench: mkdtemp");
			exit(1);
		}
		own_work = true;
	}
	snprintf(path, sizeof(path), "%s/run", bm.work);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	setenv("VMSWAP_RUN_DIR", path, 1);
	setenv("VMSWAP_SWAP_DIR", bm.swap_dir, 1);
	snprintf(path, sizeof(path), "%s/vmswap-helper", bm.build);
	setenv("VMSWAP_HELPER", path, 1);
	setenv("VMSWAP_MIN_SIZE", "2M", 1);
	unsetenv("LD_PRELOAD");
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS,
				    SIGABRT, SIGFPE };
	char json[700];
	double t0, last = 0;
	int rep, broken;
	bool strict;

	configure(argc, argv);
	strict = env_long("BENCH_STRICT", 0, 0, 1);
	atexit(cleanup);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	bm_log("vmswap-bench: guest %llu MiB, %d repetitions, swap dir %s, work dir %s",
	       (unsigned long long)(bm.size >> 20), bm.reps, bm.swap_dir, bm.work);
	t0 = bm_now();
	if (part("kswap"))
		bm_kswap_prepare();
	for (rep = 0; rep < bm.reps; rep++) {
		double r0 = bm_now();

		if (rep && r0 - t0 + last * 1.1 > bm.budget_s) {
			bm_note("limits", "only %d of %d repetitions: one more would pass the "
				"%.0f s budget (BENCH_BUDGET_S)", rep, bm.reps, bm.budget_s);
			break;
		}
		bm_log("=== repetition %d of %d", rep + 1, bm.reps);
		bm_rep_begin(rep);
		/* The bare uffd round trip right before the probe it is compared to. */
		if (part("limits"))
			bm_limits_run();
		if (part("kswap"))
			bm_kswap_run();
		if (part("vmswap"))
			bm_vmswap_run();
		if (part("scale"))
			bm_vmswap_scale_run();
		if (part("readhot"))
			bm_vmswap_readhot_run();
		if (part("uffd"))
			bm_uffd_run();
		if (part("probe"))
			bm_probe_run();
		if (part("wake"))
			bm_wake_run();
		last = bm_now() - r0;
	}
	bm_kswap_cleanup();
	if (bm_notes("vmswap", 0) || bm_notes("probe", 0) || bm_notes("wake", 0)) {
		tail_log("toyvmm.log");
		tail_log("vmprobe.log");
		tail_log("wake-toyvmm.log");
	}
	snprintf(json, sizeof(json), "%s/bench/results.json", bm.build);
	broken = bm_report(bm_now() - t0, json);
	if (broken && strict) {
		fprintf(stderr, "bench: %d target%s not measured, and no part was skipped\n",
			broken, broken == 1 ? "" : "s");
		return 3;
	}
	return 0;
}
