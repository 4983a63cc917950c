/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command language on stdin. Tests and demo/run-demo.sh drive toyvmm
 * through it, so the contract is strict: every input line gets exactly
 * one answer line starting with "ok" or "err", flushed at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "toyvmm.h"
#include "vmswap/util.h"

#define MAX_ARGS 8
#define REPORT_BUDGET 8           /* stderr lines about mismatches per command */
#define SLEEP_MAX_MS 3600000ull

static void reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* Plain decimal only: no sign, no spaces, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* START COUNT within [0, npages]; COUNT may be 0. */
static int parse_range(const struct tvm_ctx *ctx, char **argv,
		       uint64_t *start, uint64_t *count)
{
	if (parse_u64(argv[1], start) || parse_u64(argv[2], count))
		return -EINVAL;
	if (*start > ctx->guest.npages || *count > ctx->guest.npages - *start)
		return -ERANGE;
	return 0;
}

static bool busy(const struct tvm_ctx *ctx)
{
	if (ctx->vcpus.churning)
		reply("err busy");
	return ctx->vcpus.churning;
}

static void cmd_info(struct tvm_ctx *ctx, char **argv)
{
	(void)argv;
	reply("ok pages=%" PRIu64 " regions=%u pid=%d threads=%u kvm=%d",
	      ctx->guest.npages, ctx->guest.nregions, (int)getpid(), ctx->vcpus.n,
	      ctx->kvm != NULL);
}

/* fill, fill-zero-half, write: all pages or a range, by the owning vCPUs. */
static void do_write(struct tvm_ctx *ctx, const char *what, enum tvm_op op,
		     uint64_t start, uint64_t count)
{
	struct tvm_result res;

	if (tvm_vcpus_run(&ctx->vcpus, op, start, count, &res))
		reply("err busy");
	else
		reply("ok %s pages=%" PRIu64, what, count);
}

static void cmd_fill(struct tvm_ctx *ctx, char **argv)
{
	(void)argv;
	do_write(ctx, "fill", TVM_OP_WRITE, 0, ctx->guest.npages);
}

static void cmd_fill_zero_half(struct tvm_ctx *ctx, char **argv)
{
	(void)argv;
	do_write(ctx, "fill-zero-half", TVM_OP_ZERO_HALF, 0, ctx->guest.npages);
}

static void cmd_write(struct tvm_ctx *ctx, char **argv)
{
	uint64_t start, count;

	if (parse_range(ctx, argv, &start, &count))
		reply("err bad arguments");
	else
		do_write(ctx, "write", TVM_OP_WRITE, start, count);
}

static void do_verify(struct tvm_ctx *ctx, const char *what, uint64_t start,
		      uint64_t count)
{
	struct tvm_result res;

	if (tvm_vcpus_run(&ctx->vcpus, TVM_OP_VERIFY, start, count, &res))
		reply("err busy");
	else if (res.mismatches)
		reply("err %s mismatches=%" PRIu64 " first=%" PRIu64, what,
		      res.mismatches, res.first_bad);
	else
		reply("ok %s pages=%" PRIu64, what, count);
}

static void cmd_verify(struct tvm_ctx *ctx, char **argv)
{
	(void)argv;
	do_verify(ctx, "verify", 0, ctx->guest.npages);
}

static void cmd_touch(struct tvm_ctx *ctx, char **argv)
{
	uint64_t start, count;

	if (parse_range(ctx, argv, &start, &count))
		reply("err bad arguments");
	else
		do_verify(ctx, "touch", start, count);
}

/* churn and kvm-churn: what names the command in the replies. */
static void do_churn(struct tvm_ctx *ctx, const char *what, enum tvm_op op,
		     const char *arg)
{
	struct tvm_result res;

	if (!strcmp(arg, "start")) {
		if (tvm_vcpus_churn_start(&ctx->vcpus, op))
			reply("err busy");
		else
			reply("ok %s started", what);
	} else if (!strcmp(arg, "stop")) {
		if (tvm_vcpus_churn_stop(&ctx->vcpus, op, &res))
			reply("err %s not running", what);
		else
			reply("%s %s writes=%" PRIu64 " mismatches=%" PRIu64 "%s%s",
			      res.mismatches || res.err ? "err" : "ok", what, res.pages,
			      res.mismatches, res.err ? " error=" : "",
			      res.err ? strerrorname_np(-res.err) : "");
	} else {
		reply("err bad arguments");
	}
}

static void cmd_churn(struct tvm_ctx *ctx, char **argv)
{
	do_churn(ctx, "churn", TVM_OP_CHURN, argv[1]);
}

/* view-try shared|private|exec: answers mapped, or the mapping's errno name. */
static void cmd_view_try(struct tvm_ctx *ctx, char **argv)
{
	int r = tvm_view_try(&ctx->guest, argv[1]);

	if (r == -EINVAL)
		reply("err usage: view-try shared|private|exec (memfd guest)");
	else
		reply("ok view-try %s", r ? strerrorname_np(-r) : "mapped");
}

/* views start|stop: see views.c; stop answers what the views checked. */
static void cmd_views(struct tvm_ctx *ctx, char **argv)
{
	struct tvm_views *v = &ctx->views;
	int r;

	if (!strcmp(argv[1], "start")) {
		r = tvm_views_start(v, &ctx->guest);
		if (r)
			reply("err views %s", strerror(-r));
		else
			reply("ok views started");
		return;
	}
	if (strcmp(argv[1], "stop")) {
		reply("err usage: views start|stop");
		return;
	}
	if ((r = tvm_views_stop(v)))
		reply("err views %s", strerror(-r));
	else if (v->res.err)
		reply("err views rounds=%" PRIu64 " %s", v->rounds, strerror(-v->res.err));
	else if (v->res.mismatches)
		reply("err views rounds=%" PRIu64 " mismatches=%" PRIu64 " first=%" PRIu64,
		      v->rounds, v->res.mismatches, v->res.first_bad);
	else
		reply("ok views rounds=%" PRIu64 " pages=%" PRIu64 " mismatches=0", v->rounds,
		      v->res.pages);
}

/*
 * kvm-*: the same page work done by guest code under KVM. A KVM failure
 * (say KVM_RUN failing with EFAULT on a fault vmswap could not serve)
 * is named in the reply; its details went to stderr.
 */
static bool no_kvm(const struct tvm_ctx *ctx)
{
	if (!ctx->kvm)
		reply("err no kvm");
	return !ctx->kvm;
}

static void do_kvm(struct tvm_ctx *ctx, const char *what, enum tvm_op op,
		   uint64_t start, uint64_t count)
{
	struct tvm_result res;

	if (tvm_vcpus_run(&ctx->vcpus, op, start, count, &res))
		reply("err busy");
	else if (res.err)
		reply("err %s %s (%s)", what, strerrorname_np(-res.err),
		      strerror(-res.err));
	else if (res.mismatches)
		reply("err %s mismatches=%" PRIu64 " first=%" PRIu64, what,
		      res.mismatches, res.first_bad);
	else
		reply("ok %s pages=%" PRIu64, what, count);
}

static void cmd_kvm_fill(struct tvm_ctx *ctx, char **argv)
{
	(void)argv;
	if (!no_kvm(ctx))
		do_kvm(ctx, "kvm-fill", TVM_OP_KVM_WRITE, 0, ctx->guest.npages);
}

static void cmd_kvm_verify(struct tvm_ctx *ctx, char **argv)
{
	(void)argv;
	if (!no_kvm(ctx))
		do_kvm(ctx, "kvm-verify", TVM_OP_KVM_VERIFY, 0, ctx->guest.npages);
}

static void kvm_range(struct tvm_ctx *ctx, char **argv, const char *what,
		      enum tvm_op op)
{
	uint64_t start, count;

	if (no_kvm(ctx))
		return;
	if (parse_range(ctx, argv, &start, &count))
		reply("err bad arguments");
	else
		do_kvm(ctx, what, op, start, count);
}

static void cmd_kvm_touch(struct tvm_ctx *ctx, char **argv)
{
	kvm_range(ctx, argv, "kvm-touch", TVM_OP_KVM_VERIFY);
}

static void cmd_kvm_write(struct tvm_ctx *ctx, char **argv)
{
	kvm_range(ctx, argv, "kvm-write", TVM_OP_KVM_WRITE);
}

static void cmd_kvm_churn(struct tvm_ctx *ctx, char **argv)
{
	if (!no_kvm(ctx))
		do_churn(ctx, "kvm-churn", TVM_OP_KVM_CHURN, argv[1]);
}

static void cmd_balloon(struct tvm_ctx *ctx, char **argv)
{
	uint64_t start, count;
	int r;

	if (parse_range(ctx, argv, &start, &count)) {
		reply("err bad arguments");
		return;
	}
	if (busy(ctx))
		return;
	r = tvm_guest_balloon(&ctx->guest, start, count);
	if (r)
		reply("err balloon %s", strerror(-r));
	else
		reply("ok balloon pages=%" PRIu64, count);
}

static void cmd_fork_verify(struct tvm_ctx *ctx, char **argv)
{
	int r, status;

	(void)argv;
	if (busy(ctx))
		return;
	r = tvm_fork_verify(&ctx->guest, &status);
	if (r)
		reply("err fork-verify %s", strerror(-r));
	else if (status)
		reply("err fork-verify status=%d", status);
	else
		reply("ok fork-verify");
}

static void cmd_fork_hold(struct tvm_ctx *ctx, char **argv)
{
	unsigned long n;
	char *end;
	int r;

	(void)ctx;
	n = strtoul(argv[1], &end, 10);
	if (*end || !n || n > TVM_HOLD_MAX) {
		reply("err bad arguments");
		return;
	}
	r = tvm_fork_hold((unsigned)n);
	if (r)
		reply("err fork-hold %s", strerror(-r));
	else
		reply("ok fork-hold children=%lu", n);
}

static void cmd_fork_unjoined(struct tvm_ctx *ctx, char **argv)
{
	uint64_t ms;
	int r;

	(void)ctx;
	if (parse_u64(argv[1], &ms) || ms > 600000) {
		reply("err bad arguments");
		return;
	}
	r = tvm_fork_unjoined((unsigned)ms);
	if (r)
		reply("err fork-unjoined %s", strerror(-r));
	else
		reply("ok fork-unjoined ms=%" PRIu64, ms);
}

static void cmd_fork_release(struct tvm_ctx *ctx, char **argv)
{
	unsigned failed;

	(void)ctx;
	(void)argv;
	tvm_fork_release(&failed);
	if (failed)
		reply("err fork-release failed=%u", failed);
	else
		reply("ok fork-release");
}

static void cmd_fork_write(struct tvm_ctx *ctx, char **argv)
{
	uint64_t start, count;
	int r, status;

	/* A child's writes to private memory never reach the parent's model. */
	if (ctx->guest.layout == TVM_ANON || ctx->guest.layout == TVM_ANON_QEMU) {
		reply("err fork-write needs shared guest memory");
		return;
	}
	if (parse_range(ctx, argv, &start, &count)) {
		reply("err bad arguments");
		return;
	}
	if (busy(ctx))
		return;
	r = tvm_fork_write(&ctx->guest, start, count, &status);
	if (r)
		reply("err fork-write %s", strerror(-r));
	else if (status)
		reply("err fork-write status=%d", status);
	else
		reply("ok fork-write pages=%" PRIu64, count);
}

static void cmd_hotplug(struct tvm_ctx *ctx, char **argv)
{
	uint64_t size;
	unsigned index;
	int r;

	if (vmswap_parse_size(argv[1], &size) || !size ||
	    size % TVM_REGION_ALIGN) {
		reply("err bad arguments");
		return;
	}
	/* The vCPUs size their churn and the model from npages. */
	if (busy(ctx))
		return;
	r = tvm_guest_hotplug(&ctx->guest, size, &index);
	if (r)
		reply("err hotplug %s", strerror(-r));
	else
		reply("ok hotplug region=%u pages=%" PRIu64, index, size / TVM_PAGE_SIZE);
}

static void cmd_rss(struct tvm_ctx *ctx, char **argv)
{
	uint64_t rss, shmem, anon;
	int r = tvm_read_rss(&rss, &shmem, &anon);

	(void)ctx;
	(void)argv;
	if (r)
		reply("err rss %s", strerror(-r));
	else
		reply("ok rss kb=%" PRIu64 " shmem_kb=%" PRIu64 " anon_kb=%" PRIu64,
		      rss, shmem, anon);
}

static void cmd_sleep(struct tvm_ctx *ctx, char **argv)
{
	uint64_t ms;
	struct timespec ts;

	(void)ctx;
	if (parse_u64(argv[1], &ms) || ms > SLEEP_MAX_MS) {
		reply("err bad arguments");
		return;
	}
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	reply("ok sleep");
}

/* Become uid/gid @id on every thread, as QEMU's -run-with user= does after setup. */
static void cmd_run_as(struct tvm_ctx *ctx, char **argv)
{
	uint64_t id;

	(void)ctx;
	if (parse_u64(argv[1], &id) || id > 0x7fffffff) {
		reply("err bad arguments");
		return;
	}
	if (setresgid((gid_t)id, (gid_t)id, (gid_t)id) < 0 ||
	    setresuid((uid_t)id, (uid_t)id, (uid_t)id) < 0) {
		reply("err run-as %s", strerror(errno));
		return;
	}
	reply("ok run-as uid=%" PRIu64, id);
}

/*
 * ptouch N seq|rev|rand [COUNT [SEED]]: N threads read their shares at
 * once; rand touches COUNT distinct random pages of each share (default
 * a share's pages / 8), the same ones for the same N, COUNT and SEED.
 */
static void cmd_ptouch(struct tvm_ctx *ctx, char **argv)
{
	static const char *const modes[] = { [TVM_PT_SEQ] = "seq", [TVM_PT_REV] = "rev",
					     [TVM_PT_RAND] = "rand" };
	struct tvm_pt_result res;
	uint64_t n, count = 0, seed = 1;
	int mode = -1, r;

	for (int i = 0; i < 3; i++)
		if (!strcmp(argv[2], modes[i]))
			mode = i;
	if (argv[5] || parse_u64(argv[1], &n) || !n || n > TVM_PT_MAX_THREADS || mode < 0 ||
	    (argv[3] && (mode != TVM_PT_RAND || parse_u64(argv[3], &count) || !count)) ||
	    (argv[4] && parse_u64(argv[4], &seed)) || n > ctx->guest.npages ||
	    count > ctx->guest.npages / n) {
		reply("err bad arguments");
		return;
	}
	if (busy(ctx))
		return;
	r = tvm_ptouch(&ctx->guest, (unsigned)n, (enum tvm_pt_mode)mode, count, seed, &res);
	if (r) {
		reply("err ptouch %s", strerror(-r));
		return;
	}
	if (res.mismatches) {
		reply("err ptouch threads=%" PRIu64 " pages=%" PRIu64 " ms=%.1f first=%" PRIu64
		      " mismatches=%" PRIu64, n, res.pages, res.ms, res.first_bad, res.mismatches);
		return;
	}
	if (mode == TVM_PT_RAND)
		reply("ok ptouch threads=%" PRIu64 " pages=%" PRIu64 " ms=%.1f mismatches=0"
		      " cpu_ms=%.0f p50_us=%.1f p99_us=%.1f", n, res.pages, res.ms, res.cpu_ms,
		      res.p50_us, res.p99_us);
	else
		reply("ok ptouch threads=%" PRIu64 " pages=%" PRIu64 " ms=%.1f mismatches=0"
		      " cpu_ms=%.0f", n, res.pages, res.ms, res.cpu_ms);
}

static void cmd_quit(struct tvm_ctx *ctx, char **argv)
{
	(void)argv;
	tvm_vcpus_stop(&ctx->vcpus);
	tvm_views_stop(&ctx->views); /* -ESRCH when none ran */
	ctx->quit = true;
	reply("ok quit");
}

static const struct {
	const char *name;
	int nargs; /* -N: at least N, the command checks the optional rest */
	void (*fn)(struct tvm_ctx *ctx, char **argv);
} cmds[] = {
	{ "info", 0, cmd_info },
	{ "fill", 0, cmd_fill },
	{ "fill-zero-half", 0, cmd_fill_zero_half },
	{ "verify", 0, cmd_verify },
	{ "touch", 2, cmd_touch },
	{ "write", 2, cmd_write },
	{ "churn", 1, cmd_churn },
	{ "views", 1, cmd_views },
	{ "view-try", 1, cmd_view_try },
	{ "balloon", 2, cmd_balloon },
	{ "fork-verify", 0, cmd_fork_verify },
	{ "fork-write", 2, cmd_fork_write },
	{ "fork-hold", 1, cmd_fork_hold },
	{ "fork-unjoined", 1, cmd_fork_unjoined },
	{ "fork-release", 0, cmd_fork_release },
	{ "hotplug", 1, cmd_hotplug },
	{ "kvm-fill", 0, cmd_kvm_fill },
	{ "kvm-verify", 0, cmd_kvm_verify },
	{ "kvm-touch", 2, cmd_kvm_touch },
	{ "kvm-write", 2, cmd_kvm_write },
	{ "kvm-churn", 1, cmd_kvm_churn },
	{ "rss", 0, cmd_rss },
	{ "sleep", 1, cmd_sleep },
	{ "run-as", 1, cmd_run_as },
	{ "ptouch", -2, cmd_ptouch },
	{ "quit", 0, cmd_quit },
};

/* line is modified (tokenised in place). */
void tvm_cmd_exec(struct tvm_ctx *ctx, char *line)
{
	char *argv[MAX_ARGS + 1] = { 0 }, *save = NULL, *tok;
	int argc = 0;

	for (tok = strtok_r(line, " \t\r\n", &save); tok;
	     tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (argc == MAX_ARGS) {
			argc++; /* too many for any command */
			break;
		}
		argv[argc++] = tok;
	}
	if (!argc) {
		reply("err unknown command");
		return;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[0], cmds[i].name))
			continue;
		if (cmds[i].nargs >= 0 ? argc != cmds[i].nargs + 1 : argc < 1 - cmds[i].nargs) {
			reply("err bad arguments");
			return;
		}
		/* A churn keeps reporting into the budget it started with. */
		if (!ctx->vcpus.churning)
			atomic_store(&ctx->guest.report_budget, REPORT_BUDGET);
		cmds[i].fn(ctx, argv);
		return;
	}
	reply("err unknown command");
}
