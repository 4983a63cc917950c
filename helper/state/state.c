/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Command rules (crosvm's semantics):
 *   enable   any state; aborts a running trim, swap-out or swap-in
 *   trim     Pending only, runs in the background
 *   out      Pending only, runs in the background
 *   disable  any state but Ready; aborts trim or swap-out
 * While enable itself runs, other commands are refused as busy.
 *
 * Lock order: wlock, then vs.lock.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../model/dual.h"
#include "../model/helper.h"
#include "../ops/ops.h"
#include "../persist/keeper.h"
#include "../persist/manifest.h"
#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "replies.h"
#include "state.h"

struct job {
	enum vs_op op;
	bool chain;
	enum vs_cmd_keep keep; /* disable: pages held twice (dual.h) */
	bool low;              /* disable started by a wake: yields to faults */
	char id[VMSWAP_TOKEN_MAX + 1];
};

static pthread_mutex_t wlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcond = PTHREAD_COND_INITIALIZER;
static struct job queued, running;
static int done_fd = -1;
static bool exit_requested, exit_ready, exit_gave_up;

/* Finished jobs waiting for the main thread; small, the worker runs one at a time. */
static struct done { struct job job; int r; char msg[256]; } done_q[8];
static int done_n;

static const char *op_name(enum vs_op op)
{
	switch (op) {
	case VS_OP_ENABLE: return "enable";
	case VS_OP_TRIM: return "trim";
	case VS_OP_OUT: return "out";
	case VS_OP_DISABLE: return "disable";
	default: return "none";
	}
}

static enum vs_state progress_state(enum vs_op op)
{
	return op == VS_OP_TRIM ? VS_TRIM_IN_PROGRESS
	     : op == VS_OP_OUT ? VS_SWAP_OUT_IN_PROGRESS
	     : VS_SWAP_IN_IN_PROGRESS;
}

static int run_op(enum vs_op op, enum vs_cmd_keep keep, bool low, char *msg, size_t n)
{
	int r = 0;

	pthread_mutex_lock(&vs.lock);
	vs.op_running = true;
	vs.swapin_low = op == VS_OP_DISABLE && low;
	vs_dual_set_keep(op == VS_OP_DISABLE ? keep : VS_KEEP_NONE);
	pthread_mutex_unlock(&vs.lock);
	switch (op) {
	case VS_OP_ENABLE: r = vs_op_enable(msg, n); break;
	case VS_OP_TRIM: r = vs_op_trim(msg, n); break;
	case VS_OP_OUT: r = vs_op_out(msg, n); break;
	case VS_OP_DISABLE: r = vs_op_disable(msg, n); break;
	default: break;
	}
	pthread_mutex_lock(&vs.lock);
	vs.op_running = false;
	vs_obj_gc();
	pthread_mutex_unlock(&vs.lock);
	return r;
}

/* Settle the state after an op. wlock and vs.lock held. */
static void after_op(enum vs_op op, int r)
{
	if (r == -ECANCELED || queued.op != VS_OP_NONE)
		return; /* whoever aborted us sets the state */
	if (r) {
		if (op == VS_OP_ENABLE && !vs.enable_moving) {
			/* Refused before moving anything: the state stays. */
			if (vs.state == VS_READY && !vs_staged_pages() && !vs.stats.c.swapped) {
				for (int i = 0; i < VS_MAX_MAPS; i++)
					if (vs.maps[i].used)
						vs_map_unregister(&vs.maps[i]);
				vs.registered = false;
				vs_manifest_sync();
			}
			return;
		}
		vs.state = VS_FAILED;
		return;
	}
	switch (op) {
	case VS_OP_TRIM: vs.state = VS_PENDING; break;
	case VS_OP_OUT: vs.state = VS_ACTIVE; break;
	case VS_OP_DISABLE: vs.state = VS_READY; break;
	case VS_OP_ENABLE: vs.state = VS_PENDING; break;
	default: break;
	}
}

static void *worker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wlock);
	for (;;) {
		struct job job;
		char msg[256] = "";
		int r;

		while (queued.op == VS_OP_NONE)
			pthread_cond_wait(&wcond, &wlock);
		job = queued;
		queued.op = VS_OP_NONE;
		running = job;
		vs_op_abort(false);
		pthread_mutex_unlock(&wlock);

		r = run_op(job.op, job.keep, job.low, msg, sizeof(msg));
		int r_first = r;
		if (job.op == VS_OP_ENABLE && !r) {
			/* Pending before a chained trim starts, or anything else is asked. */
			pthread_mutex_lock(&wlock);
			pthread_mutex_lock(&vs.lock);
			after_op(VS_OP_ENABLE, 0);
			pthread_mutex_unlock(&vs.lock);
			pthread_mutex_unlock(&wlock);
		}
		/* SIGUSR1: enable, then trim, then out, unless something intervened. */
		if (job.chain && !r) {
			static const enum vs_op next[] = { VS_OP_TRIM, VS_OP_OUT };

			for (unsigned i = 0; i < 2 && !r; i++) {
				pthread_mutex_lock(&wlock);
				pthread_mutex_lock(&vs.lock);
				bool go = queued.op == VS_OP_NONE && !vs_op_aborted();
				if (go) {
					if (next[i] == VS_OP_OUT && vs.swap.fd < 0) {
						int fd = vs_swapfile_create(vs.swap.dir, &vs.swap.direct);
						if (fd < 0) {
							vs_set_error("cannot create the swap file in %s: %s",
								     vs.swap.dir, strerror(-fd));
							go = false;
						}
						vs.swap.fd = fd;
						vs_keep(fd);
						vs_manifest_sync();
					}
					if (go)
						vs.state = progress_state(next[i]);
				}
				pthread_mutex_unlock(&vs.lock);
				pthread_mutex_unlock(&wlock);
				if (!go)
					break;
				r = run_op(next[i], VS_KEEP_NONE, false, msg, sizeof(msg));
				pthread_mutex_lock(&wlock);
				pthread_mutex_lock(&vs.lock);
				after_op(next[i], r);
				pthread_mutex_unlock(&vs.lock);
				pthread_mutex_unlock(&wlock);
			}
		}

		pthread_mutex_lock(&wlock);
		pthread_mutex_lock(&vs.lock);
		if (r_first || (!job.chain && job.op != VS_OP_ENABLE))
			after_op(job.op, r_first);
		pthread_mutex_unlock(&vs.lock);
		running.op = VS_OP_NONE;
		if (done_n < (int)(sizeof(done_q) / sizeof(done_q[0]))) {
			done_q[done_n].job = job;
			done_q[done_n].r = r;
			snprintf(done_q[done_n].msg, sizeof(done_q[0].msg), "%s", msg);
			done_n++;
		}
		uint64_t one = 1;
		if (write(done_fd, &one, sizeof(one)) < 0)
			vs_err("worker: cannot signal completion");
		pthread_mutex_unlock(&wlock);
		vs_swap_release();
		pthread_mutex_lock(&wlock);
	}
	return NULL;
}

int vs_state_start(void)
{
	pthread_t t;
	int r;

	done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (done_fd < 0)
		return -errno;
	r = pthread_create(&t, NULL, worker_main, NULL);
	if (r)
		return -r;
	pthread_detach(t);
	return done_fd;
}

/* Queue a job, aborting the running one. wlock held. */
static void submit(enum vs_op op, bool chain, const char *id, enum vs_cmd_keep keep)
{
	if (running.op != VS_OP_NONE)
		vs_op_abort(true);
	queued.op = op;
	queued.chain = chain;
	queued.keep = keep;
	queued.low = false;
	snprintf(queued.id, sizeof(queued.id), "%s", id);
	pthread_cond_signal(&wcond);
}

static bool enable_busy(void)
{
	return running.op == VS_OP_ENABLE || queued.op == VS_OP_ENABLE;
}

/*
 * The refusals every command meets before its own checks; true when one
 * answered. wlock and vs.lock held.
 */
static bool refused(enum vs_cmd_verb verb, const char *id, const char *name)
{
	char msg[600];

	/*
	 * Pages held twice: Failed before deciding. enable would stage
	 * guest memory's bytes over the saved ones, so it looks page by
	 * page, past what the cheap check can see.
	 */
	if (vs.managed && verb == VS_CMD_ENABLE)
		vs_dual_scan();
	vs_state_watch_doubles();
	/* Unmanaged, pages the helper holds can still be put back. */
	if (!vs.managed && (verb != VS_CMD_DISABLE || vs.state == VS_READY)) {
		snprintf(msg, sizeof(msg), "VMM runs unmanaged: %s", vs.reason);
		vs_state_reply(id, name, false, msg);
		return true;
	}
	if (exit_requested && verb != VS_CMD_DISABLE) {
		vs_state_reply(id, name, false, "helper is shutting down (swapping everything in)");
		return true;
	}
	if (enable_busy()) {
		vs_state_reply(id, name, false, verb == VS_CMD_ENABLE ? "enable already in progress"
							      : "busy: enable in progress");
		return true;
	}
	return false;
}

static void cmd_enable(const char *id, const char *name, bool chain)
{
	char msg[600];

	if (vs_dual_pages()) {
		/* enable would stage guest memory's bytes over the saved copies. */
		snprintf(msg, sizeof(msg), "enable refused: guest memory holds %llu pages "
			 "that are also saved (see last_error); disable --keep=guest or "
			 "--keep=saved resolves them", (unsigned long long)vs_dual_pages());
		vs_state_reply(id, name, false, msg);
		return;
	}
	submit(VS_OP_ENABLE, chain, id, VS_KEEP_NONE); /* answered when it finished */
}

static void cmd_trim_out(enum vs_cmd_verb verb, const char *id, const char *name)
{
	enum vs_op op = verb == VS_CMD_TRIM ? VS_OP_TRIM : VS_OP_OUT;
	char msg[600];

	if (vs.state != VS_PENDING || running.op != VS_OP_NONE || queued.op != VS_OP_NONE) {
		snprintf(msg, sizeof(msg), "%s not allowed in state %s (needs Pending)", name,
			 vs_state_name(vs.state));
		vs_state_reply(id, name, false, msg);
		return;
	}
	if (op == VS_OP_OUT && vs.swap.fd < 0) {
		int fd = vs_swapfile_create(vs.swap.dir, &vs.swap.direct);

		if (fd < 0) {
			snprintf(msg, sizeof(msg), "cannot create the swap file in %s: %s",
				 vs.swap.dir, strerror(-fd));
			/* status must say why out keeps being refused. */
			vs_set_error("%s", msg);
			vs_state_reply(id, name, false, msg);
			return;
		}
		vs.swap.fd = fd;
		vs_keep(fd);
		vs_manifest_sync();
	}
	vs.state = progress_state(op);
	submit(op, false, id, VS_KEEP_NONE);
	snprintf(msg, sizeof(msg), "%s started", name);
	vs_state_reply(id, name, true, msg);
}

static void cmd_disable(const char *id, const char *name, enum vs_cmd_keep keep)
{
	char msg[600];

	if (vs.state == VS_READY) {
		vs_state_reply(id, name, false, "disable not allowed in state Ready (swap is not enabled)");
		return;
	}
	if ((running.op == VS_OP_DISABLE && vs.swapin_low) ||
	    (queued.op == VS_OP_DISABLE && queued.low)) {
		vs.swapin_low = queued.low = false;
		vs_state_reply(id, name, true, "disable in progress since the guest woke; "
		      "now at full speed");
		return;
	}
	if (running.op == VS_OP_DISABLE || queued.op == VS_OP_DISABLE) {
		vs_state_reply(id, name, false, "disable already in progress");
		return;
	}
	vs.state = VS_SWAP_IN_IN_PROGRESS;
	submit(VS_OP_DISABLE, false, id, keep);
	snprintf(msg, sizeof(msg), "disable started%s%s", keep ? " keep=" : "",
		 vs_cmd_keep_name(keep));
	vs_state_reply(id, name, true, msg);
}

static void command(enum vs_cmd_verb verb, const char *id, bool chain, enum vs_cmd_keep keep)
{
	const char *name = vs_cmd_name(verb);

	pthread_mutex_lock(&wlock);
	pthread_mutex_lock(&vs.lock);
	if (verb == VS_CMD_STATUS) {
		vs_state_reply(id, name, true, "status published");
	} else if (!refused(verb, id, name)) {
		switch (verb) {
		case VS_CMD_ENABLE:
			cmd_enable(id, name, chain);
			break;
		case VS_CMD_TRIM:
		case VS_CMD_OUT:
			cmd_trim_out(verb, id, name);
			break;
		case VS_CMD_DISABLE:
			cmd_disable(id, name, keep);
			break;
		default:
			vs_state_reply(id, name, false, "unknown command");
		}
	}
	pthread_mutex_unlock(&vs.lock);
	pthread_mutex_unlock(&wlock);
}

bool vs_state_watch_doubles(void)
{
	bool changed;

	if (!vs_dual_check() || vs.op_running)
		return false;
	if (vs.state != VS_PENDING && vs.state != VS_ACTIVE && vs.state != VS_FAILED)
		return false;
	changed = vs.state != VS_FAILED;
	vs.state = VS_FAILED;
	return vs_dual_set_error() || changed;
}

bool vs_state_wake_swapin(void)
{
	bool go;

	pthread_mutex_lock(&wlock);
	pthread_mutex_lock(&vs.lock);
	go = vs.wake_swapin && vs.managed && vs.state == VS_ACTIVE && running.op == VS_OP_NONE &&
	     queued.op == VS_OP_NONE;
	if (go) {
		vs.state = VS_SWAP_IN_IN_PROGRESS;
		submit(VS_OP_DISABLE, false, "", VS_KEEP_NONE);
		queued.low = true;
		vs_state_reply("", "disable", true, "the guest woke: swapping in behind its faults "
		      "(" VMSWAP_ENV_WAKE_SWAPIN "=1)");
	}
	pthread_mutex_unlock(&vs.lock);
	pthread_mutex_unlock(&wlock);
	return go;
}

void vs_state_command(enum vs_cmd_verb verb, const char *id, bool chain)
{
	command(verb, id, chain, VS_KEEP_NONE);
}

void vs_state_command_keep(enum vs_cmd_verb verb, const char *id, enum vs_cmd_keep keep)
{
	command(verb, id, false, keep);
}

void vs_state_collect(void)
{
	uint64_t v;

	if (read(done_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		vs_err("reading the worker eventfd: %m");
	pthread_mutex_lock(&wlock);
	pthread_mutex_lock(&vs.lock);
	for (int i = 0; i < done_n; i++) {
		struct done *d = &done_q[i];

		if (d->job.op == VS_OP_ENABLE)
			vs_state_reply(d->job.id, "enable", d->r == 0, d->msg);
		else
			vs_log(d->r && d->r != -ECANCELED ? VS_LOG_WARN : VS_LOG_INFO,
			       "%s finished: %s", op_name(d->job.op), d->msg);
		if (exit_requested && d->job.op == VS_OP_DISABLE && !d->r)
			exit_ready = true;
		if (exit_requested && d->job.op == VS_OP_DISABLE && d->r && d->r != -ECANCELED) {
			vs_err("cannot swap everything in; staying up to keep serving guest pages");
			exit_gave_up = true;
		}
	}
	done_n = 0;
	/* SIGTERM arrived while enable ran: now swap in. */
	if (exit_requested && !exit_ready && !exit_gave_up && vs.state != VS_READY &&
	    running.op == VS_OP_NONE && queued.op == VS_OP_NONE) {
		vs.state = VS_SWAP_IN_IN_PROGRESS;
		submit(VS_OP_DISABLE, false, "", VS_KEEP_NONE);
	}
	if (exit_requested && vs.state == VS_READY && running.op == VS_OP_NONE &&
	    queued.op == VS_OP_NONE)
		exit_ready = true;
	pthread_mutex_unlock(&vs.lock);
	pthread_mutex_unlock(&wlock);
}

void vs_state_recover(void)
{
	pthread_mutex_lock(&wlock);
	pthread_mutex_lock(&vs.lock);
	if (vs.registered || vs_staged_pages() || vs.stats.c.swapped) {
		vs.state = VS_SWAP_IN_IN_PROGRESS;
		/*
		 * A crash between staging a unit and punching it leaves its pages
		 * in both places, and guest memory's bytes are the newer ones.
		 */
		submit(VS_OP_DISABLE, false, "recover", VS_KEEP_GUEST);
	} else {
		vs.state = VS_READY;
	}
	pthread_mutex_unlock(&vs.lock);
	pthread_mutex_unlock(&wlock);
}

void vs_state_request_exit(void)
{
	bool ready;

	pthread_mutex_lock(&wlock);
	pthread_mutex_lock(&vs.lock);
	exit_requested = true;
	ready = vs.state == VS_READY && running.op == VS_OP_NONE && queued.op == VS_OP_NONE;
	pthread_mutex_unlock(&vs.lock);
	pthread_mutex_unlock(&wlock);
	if (ready) {
		exit_ready = true;
		return;
	}
	vs_info("SIGTERM: swapping everything in before exiting");
	vs_state_command(VS_CMD_DISABLE, "", false);
}

bool vs_state_exit_ready(void)
{
	return exit_ready;
}

bool vs_state_busy(void)
{
	bool busy;

	pthread_mutex_lock(&wlock);
	busy = running.op != VS_OP_NONE || queued.op != VS_OP_NONE;
	pthread_mutex_unlock(&wlock);
	return busy;
}
