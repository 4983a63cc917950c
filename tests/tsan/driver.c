/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TSan driver (no Criterion: its runner cannot start under gcc's TSan).
 * The helper's real objects, built with -fsanitize=thread, serve a
 * forked VMM (vmm.c) through the shim connection: the fault thread
 * answers its faults while the worker runs enable (staged in place, or
 * with VMSWAP_STAGING=copy two copy threads, with and without
 * write-protect tracking, the real freeze), trim, out
 * (two writers, once with failing writes), disable (two swap-in threads,
 * once aborted by an enable, once while a region is hotplugged), enable
 * again with vs.lock dropped between the mappings it protects, and the
 * main thread publishes the status meanwhile. Every byte is checked
 * against the model at the end. Exit 0, 1 on any failure, 77 to skip;
 * TSan reports exit with TSAN_OPTIONS' exitcode.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../helper/control/shimconn.h"
#include "../../helper/control/shimmsg.h"
#include "../../helper/control/status.h"
#include "../../helper/fault/fault.h"
#include "../../helper/fault/wp.h"
#include "../../helper/model/helper.h"
#include "../../helper/persist/manifest.h"
#include "../../helper/state/state.h"
#include "../../helper/sys/swapfile.h"
#include "../fixture.h"
#include "tsan.h"

#define STEP_TIMEOUT_S 300

static struct tv_shared *sh;
static struct vs_conn *conn;
static int done_fd, dirfd = -1;
static pid_t vmm;
static char dir[] = "/tmp/vmswap-tsan-XXXXXX";

static void cleanup(void)
{
	if (dirfd >= 0)
		unlinkat(dirfd, "status.json", 0);
	rmdir(dir);
	if (vmm > 0)
		kill(vmm, SIGKILL);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tsan driver: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	cleanup();
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The main loop's share: shim messages, finished operations, the status. */
static void tick(int ms)
{
	struct pollfd p[2] = { { .fd = conn->fd, .events = POLLIN },
			       { .fd = done_fd, .events = POLLIN } };

	if (poll(p, 2, ms) < 0 && errno != EINTR)
		fail("poll: %s", strerror(errno));
	if ((p[0].revents & POLLIN) && vs_conn_handle(conn) < 0)
		fail("%s", "the VMM hung up");
	if (p[1].revents & POLLIN)
		vs_state_collect();
	vs_status_publish(dirfd);
}

static enum vs_state state(void)
{
	enum vs_state st;

	pthread_mutex_lock(&vs.lock);
	st = vs.state;
	pthread_mutex_unlock(&vs.lock);
	return st;
}

/* The newest reply: refused commands answer at once. */
static void check_reply(const char *name)
{
	const struct vs_reply *r;
	int n;

	pthread_mutex_lock(&vs.lock);
	n = vs_state_replies(&r);
	if (n && !r[n - 1].ok) {
		fprintf(stderr, "tsan driver: %s refused: %s\n", name, r[n - 1].message);
		pthread_mutex_unlock(&vs.lock);
		fail("%s refused", name);
	}
	pthread_mutex_unlock(&vs.lock);
}

static void wait_idle(const char *name)
{
	double deadline = now_s() + STEP_TIMEOUT_S;

	while (vs_state_busy()) {
		if (now_s() > deadline)
			fail("%s did not finish", name);
		tick(20);
	}
	tick(0);
}

/*
 * Run a command to its end; the state must then be @want. With @plug,
 * the VMM hotplugs window @plug first, and its REGION_ADD is taken
 * (growing the object) only once the command runs.
 */
static void step_plug(enum vs_cmd_verb verb, bool chain, enum vs_state want, int plug)
{
	const char *name = vs_cmd_name(verb);
	double t0 = now_s();

	printf("tsan driver: step %d: %s\n", atomic_fetch_add(&sh->step, 1) + 1, name);
	if (plug) {
		struct pollfd p = { .fd = conn->fd, .events = POLLIN };

		atomic_store(&sh->plug_req, plug);
		if (poll(&p, 1, STEP_TIMEOUT_S * 1000) != 1)
			fail("%s", "no hotplug from the VMM");
	}
	vs_state_command(verb, "", chain);
	if (verb != VS_CMD_ENABLE)
		check_reply(name);
	wait_idle(name);
	/* The VMM counts the hotplug once it has read our answer: a quick command can beat it. */
	for (double end = now_s() + STEP_TIMEOUT_S; plug && atomic_load(&sh->plugged) != plug &&
	     now_s() < end;)
		tick(20);
	if (plug && atomic_load(&sh->plugged) != plug)
		fail("%s", "the hotplug was not taken");
	if (state() != want) {
		char err[VS_ERR_MAX];

		fprintf(stderr, "tsan driver: after %s: state %s, want %s; last error: %s\n", name,
			vs_state_name(state()), vs_state_name(want), vs_last_error(err, sizeof(err)));
		fail("%s ended in the wrong state", name);
	}
	pthread_mutex_lock(&vs.lock);
	printf("  %-8s%-9s -> %-8s %5.2f s  pages %5llu  staging %5llu  in place %5llu  "
	       "file %5llu  (vCPU writes %lu reads %lu)\n", name,
	       chain ? "+chain" : plug ? "+hotplug" : "", vs_state_name(want), now_s() - t0,
	       (unsigned long long)vs.stats.trans_pages, (unsigned long long)vs.stats.c.staging,
	       (unsigned long long)vs.stats.c.inplace, (unsigned long long)vs.stats.c.swapped,
	       atomic_load(&sh->writes), atomic_load(&sh->reads));
	pthread_mutex_unlock(&vs.lock);
}

static void step(enum vs_cmd_verb verb, bool chain, enum vs_state want)
{
	step_plug(verb, chain, want, 0);
}

/* The VMM runs on, faulting pages back, for @ms. */
static void dwell(int ms)
{
	double end = now_s() + ms / 1000.0;

	while (now_s() < end)
		tick(20);
}

static void set_precopy(bool on)
{
	pthread_mutex_lock(&vs.lock);
	vs.wp_off = !on;
	pthread_mutex_unlock(&vs.lock);
}

/* Start disable, and abort it with an enable once it has begun. */
static void disable_aborted(void)
{
	double deadline = now_s() + STEP_TIMEOUT_S;

	vs_state_command(VS_CMD_DISABLE, "", false);
	check_reply("disable");
	while (atomic_load(&vs.stats.progress_done) == 0 && vs_state_busy() && now_s() < deadline)
		tick(1);
	step(VS_CMD_ENABLE, false, VS_PENDING);
}

/* After the VMM exited: every byte of the memfd against the model. */
static unsigned long verify_memfd(int memfd)
{
	static uint8_t page[VMSWAP_PAGE_SIZE];
	unsigned long bad = 0;

	for (uint64_t pg = 0; pg < TV_GUEST_PAGES; pg++) {
		if (pread(memfd, page, sizeof(page), (off_t)(pg * VMSWAP_PAGE_SIZE)) != sizeof(page) ||
		    !fx_page_is(page, pg, sh->gen[pg])) {
			if (!bad)
				fprintf(stderr, "tsan driver: page %llu differs from the model\n",
					(unsigned long long)pg);
			bad++;
		}
	}
	return bad;
}

/*
 * Connections come and go on a thread of their own while the worker and
 * the fault thread sync the manifest, which reads every connection slot:
 * a slot written without vs.lock is a race TSan reports.
 */
static atomic_bool churn_stop;
static pthread_t churn_tid;
static atomic_ulong churned;

static void *conn_churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&churn_stop)) {
		struct vs_conn *c;
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			break;
		c = vs_conn_add(sv[1], false);
		if (c)
			vs_conn_close(c);
		else
			close(sv[1]);
		close(sv[0]);
		atomic_fetch_add(&churned, 1);
		usleep(200);
	}
	return NULL;
}

static void start(int memfd)
{
	double deadline = now_s() + STEP_TIMEOUT_S;
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair: %s", strerror(errno));
	/* Before any thread: the VMM is a plain fork of a single-threaded process. */
	vmm = fork();
	if (vmm < 0)
		fail("fork: %s", strerror(errno));
	if (vmm == 0) {
		/* Its faults would wait forever for a driver that is gone. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[1]);
		_exit(tv_vmm_main(sh, sv[0], memfd));
	}
	close(sv[0]);
	r = fx_state(vmm);
	if (r)
		fail("swap file in /tmp: %s", strerror(-r));
	/* VMSWAP_STAGING=copy: enable copies to staging; else pages are staged in place. */
	vs.stage_copy = getenv("VMSWAP_STAGING") && !strcmp(getenv("VMSWAP_STAGING"), "copy");
	if (!mkdtemp(dir) || (dirfd = open(dir, O_DIRECTORY | O_CLOEXEC)) < 0)
		fail("status dir: %s", strerror(errno));
	if ((r = vs_manifest_create()))
		fail("manifest: %s", strerror(-r));
	if ((r = vs_fault_start()))
		fail("fault thread: %s", strerror(-r));
	if ((done_fd = vs_state_start()) < 0)
		fail("worker: %s", strerror(-done_fd));
	conn = vs_conn_add(sv[1], true);
	while (!atomic_load(&sh->ready)) {
		int status;

		if (waitpid(vmm, &status, WNOHANG) == vmm) {
			vmm = 0;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
				cleanup();
				exit(77);
			}
			fail("%s", "the VMM exited before it was ready");
		}
		if (now_s() > deadline)
			fail("%s", "the VMM never got ready");
		tick(10);
	}
}

int main(void)
{
	int memfd, status;
	unsigned long bad;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memfd = fx_memfd("tsan-guest", TV_GUEST_PAGES * (uint64_t)VMSWAP_PAGE_SIZE);
	if (sh == MAP_FAILED || memfd < 0)
		fail("%s", "setup");
	start(memfd);

	printf("tsan driver: write-protect tracking, hotplug during each operation, "
	       "connections coming and going\n");
	if (pthread_create(&churn_tid, NULL, conn_churn, NULL))
		fail("%s", "connection churn thread");
	step_plug(VS_CMD_ENABLE, false, VS_PENDING, 1);
	step_plug(VS_CMD_TRIM, false, VS_PENDING, 2);
	step_plug(VS_CMD_OUT, false, VS_ACTIVE, 3);
	dwell(500);
	step(VS_CMD_ENABLE, false, VS_PENDING);
	step(VS_CMD_OUT, false, VS_ACTIVE);
	step_plug(VS_CMD_DISABLE, false, VS_READY, 4);
	atomic_store(&churn_stop, true);
	pthread_join(churn_tid, NULL);
	if (!atomic_load(&churned))
		fail("%s", "no connection came and went");

	/*
	 * vs_wp_begin drops the lock between mappings while an event is
	 * pending: a write fault let in then must count as a write.
	 */
	printf("tsan driver: the lock dropped while protecting\n");
	vs_wp_test_drop_ms = 10;
	for (int round = 1; round <= 4; round++) {
		step(VS_CMD_ENABLE, false, VS_PENDING);
		step(VS_CMD_OUT, false, VS_ACTIVE);
		dwell(200);
		step(VS_CMD_DISABLE, false, VS_READY);
	}
	vs_wp_test_drop_ms = 0;

	for (int round = 1; round <= 3; round++) {
		printf("tsan driver: copy while frozen (round %d)\n", round);
		set_precopy(false);
		step(VS_CMD_ENABLE, false, VS_PENDING);
		step(VS_CMD_OUT, false, VS_ACTIVE);
		dwell(300);
		step(VS_CMD_DISABLE, false, VS_READY);
		set_precopy(true);

		printf("tsan driver: enable chained to trim and out, disable aborted by enable\n");
		step(VS_CMD_ENABLE, true, VS_ACTIVE);
		dwell(200);
		disable_aborted();
		step(VS_CMD_OUT, false, VS_ACTIVE);
		step(VS_CMD_DISABLE, false, VS_READY);
	}

	printf("tsan driver: failing swap-file writes\n");
	set_precopy(false); /* so the pages surely move */
	step(VS_CMD_ENABLE, false, VS_PENDING);
	set_precopy(true);
	setenv("VMSWAP_TEST_FAIL_WRITE_AFTER", "0", 1);
	vs_swapfile_init_faults();
	step(VS_CMD_OUT, false, VS_FAILED);
	step(VS_CMD_DISABLE, false, VS_READY);

	atomic_store(&sh->stop, 1);
	while (waitpid(vmm, &status, 0) < 0 && errno == EINTR)
		;
	vmm = 0;
	bad = verify_memfd(memfd);
	printf("tsan driver: vCPU writes %lu, reads %lu, discards %lu, mismatches %lu; "
	       "memfd pages wrong %lu\n", atomic_load(&sh->writes), atomic_load(&sh->reads),
	       atomic_load(&sh->removes), atomic_load(&sh->mismatches), bad);
	if (atomic_load(&sh->mismatches))
		fprintf(stderr, "tsan driver: first: %s\n", sh->first_bad);
	vs_fault_stop();
	cleanup();
	if (!WIFEXITED(status) || WEXITSTATUS(status) || bad || atomic_load(&sh->mismatches)) {
		fprintf(stderr, "tsan driver: FAIL\n");
		return 1;
	}
	printf("tsan driver: PASS\n");
	return 0;
}
