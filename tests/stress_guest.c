/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * toyvmm work for the stress (demo/cmd.c): churn, sequential and random
 * touches and rewrites, balloons, hotplug, full verifies. Some commands
 * are left running while vmswap commands go on; toyvmm answers them in
 * order. Every touch and verify compares pages with toyvmm's model.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "stress.h"

#define ASYNC_PCT 45
#define MAX_HOTPLUGS 4      /* each one is another memfd and mapping */
#define UNIT_PAGES 512      /* 2 MiB */

/* toyvmm's description of the first mismatching pages, for the failure. */
static void mismatch_lines(struct st_run *s, char *buf, size_t n)
{
	char *err = h_proc_stderr(s->vm->p), *line, *save = NULL;
	size_t len = 0;
	int k = 0;

	buf[0] = '\0';
	for (line = strtok_r(err, "\n", &save); line && k < 8; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, "toyvmm[") && strstr(line, "page ")) {
			len += (size_t)snprintf(buf + len, len < n ? n - len : 0, "  %s\n", line);
			k++;
		}
	free(err);
}

/* Check the answer to s->toy_cmd, which must start "ok <first word>". */
static void answer(struct st_run *s)
{
	struct h_proc *p = s->vm->p;
	double limit = H_CMD_TIMEOUT_S + 120.0 * (double)(s->prm->size >> 20) / 1024;
	char word[32], want[40], lines[2048];
	const char *m;
	int r = h_recv(p, limit);

	s->toy_busy = false;
	if (r)
		st_fail(s, "toyvmm gave no answer to '%s': %s", s->toy_cmd, strerror(-r));
	m = strstr(p->last, " mismatches=");
	if (m && strtoull(m + 12, NULL, 10)) {
		s->st.mismatches += strtoull(m + 12, NULL, 10);
		mismatch_lines(s, lines, sizeof(lines));
		st_fail(s, "DATA MISMATCH: '%s' answered '%s'; toyvmm says:\n%s", s->toy_cmd, p->last,
			lines);
	}
	sscanf(s->toy_cmd, "%31s", word);
	snprintf(want, sizeof(want), "ok %s", word);
	if (strncmp(p->last, want, strlen(want)))
		st_fail(s, "toyvmm answered '%s' to '%s'", p->last, s->toy_cmd);
	if (!strcmp(word, "hotplug")) {
		s->vm->pages += h_answer_u64(p->last, "pages");
		s->vm->regions++;
		s->st.hotplugs++;
	} else if (!strcmp(s->toy_cmd, "churn stop")) {
		s->st.churn_writes += h_answer_u64(p->last, "writes");
	}
}

/* Send a command; async: leave its answer to be read later. */
static void toy(struct st_run *s, bool async, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void toy(struct st_run *s, bool async, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (s->toy_busy) /* answers come in order: read the pending one first */
		answer(s);
	va_start(ap, fmt);
	vsnprintf(s->toy_cmd, sizeof(s->toy_cmd), fmt, ap);
	va_end(ap);
	st_trace(s, "toyvmm %s%s", s->toy_cmd, async ? " (answer later)" : "");
	r = h_send(s->vm->p, "%s", s->toy_cmd);
	if (r)
		st_fail(s, "cannot send '%s' to toyvmm: %s", s->toy_cmd, strerror(-r));
	s->toy_busy = true;
	if (async)
		s->st.async_cmds++;
	else
		answer(s);
}

static void churn_stop(struct st_run *s)
{
	toy(s, false, "churn stop");
	s->churning = false;
}

/* A range of 1..max pages at a random place. */
static void range(struct st_run *s, uint64_t r1, uint64_t r2, uint64_t max, uint64_t *start,
		  uint64_t *count)
{
	uint64_t n = s->vm->pages;

	*count = 1 + st_below(r2, max < n ? max : n);
	*start = st_below(r1, n - *count + 1);
}

/* @m toyvmm @verb commands ("touch", "write") on random ranges of at most @max pages. */
static unsigned small_ranges(struct st_run *s, const char *verb, unsigned m, uint64_t max)
{
	uint64_t start, count;

	for (unsigned i = 0; i < m; i++) {
		range(s, st_rand(s), st_rand(s), max, &start, &count);
		toy(s, false, "%s %" PRIu64 " %" PRIu64, verb, start, count);
	}
	return m;
}

static void balloon(struct st_run *s, const uint64_t r[], bool async)
{
	uint64_t n = s->vm->pages, start, count;

	range(s, r[2], r[4], n / 32 > 1 ? n / 32 : 1, &start, &count);
	/* Half of them whole 2 MiB units, as a balloon driver frees them. */
	if (r[5] & 1) {
		start -= start % UNIT_PAGES;
		count = (count + UNIT_PAGES - 1) / UNIT_PAGES * UNIT_PAGES;
		if (count > n - start)
			count = n - start;
	}
	s->st.balloons++;
	s->st.balloon_pages += count;
	toy(s, async, "balloon %" PRIu64 " %" PRIu64, start, count);
}

static void helper_signal(struct st_run *s, int sig)
{
	if (kill(s->helper, sig))
		st_fail(s, "cannot send signal %d to the helper %d: %s", sig, (int)s->helper,
			strerror(errno));
}

/* The helper stops answering for a while (paged out, descheduled, traced). */
static void helper_stall(struct st_run *s, unsigned ms)
{
	st_trace(s, "helper stalled for %u ms", ms);
	s->st.stalls++;
	helper_signal(s, SIGSTOP);
	h_nap_ms(ms);
	helper_signal(s, SIGCONT);
}

/*
 * A child forked while the helper is stalled past the join timeout: it
 * cannot join, so its guest memory is closed off and its first touch
 * kills it (status 139), or the helper answered in time and it verified.
 * Either way the parent's pages must stay whole (the cycle's verify).
 */
static void stalled_fork(struct st_run *s)
{
	struct h_proc *p = s->vm->p;
	int r;

	st_trace(s, "fork-verify with the helper stalled past the join timeout");
	s->st.stalled_forks++;
	helper_signal(s, SIGSTOP);
	if (h_send(p, "fork-verify"))
		st_fail(s, "cannot send fork-verify to toyvmm");
	h_nap_ms(ST_JOIN_TIMEOUT_S * 1000 + 1000);
	helper_signal(s, SIGCONT);
	r = h_recv(p, H_CMD_TIMEOUT_S);
	if (r)
		st_fail(s, "toyvmm gave no answer to a stalled fork-verify: %s", strerror(-r));
	if (!strcmp(p->last, "err fork-verify status=139"))
		s->st.closed_off++;
	else if (strcmp(p->last, "ok fork-verify"))
		st_fail(s, "toyvmm answered '%s' to a fork-verify made while the helper stalled",
			p->last);
}

void st_guest_step(struct st_run *s, const uint64_t r[])
{
	bool async = st_below(r[3], 100) < ASYNC_PCT;
	uint64_t n = s->vm->pages, k = st_below(r[1], 100), start, count;

	if (s->toy_busy) {
		answer(s);
		return;
	}
	if (s->churning) {
		if (k < 55) {
			churn_stop(s);
		} else {
			unsigned ms = (unsigned)st_below(r[2], 40);

			st_trace(s, "churn goes on for %u ms", ms);
			h_nap_ms(ms);
		}
		return;
	}
	if (k < 14) {
		toy(s, false, "churn start");
		s->churning = true;
		s->st.churns++;
	} else if (k < 30) {
		range(s, r[2], r[4], n / 4, &start, &count);
		s->st.touches++;
		toy(s, async, "touch %" PRIu64 " %" PRIu64, start, count);
	} else if (k < 42) {
		s->st.touches += small_ranges(s, "touch", 4 + (unsigned)st_below(r[2], 29), 8);
	} else if (k < 54) {
		s->st.writes += small_ranges(s, "write", 2 + (unsigned)st_below(r[2], 15), 64);
	} else if (k < 62) {
		range(s, r[2], r[4], n / 4, &start, &count);
		s->st.writes++;
		toy(s, async, "write %" PRIu64 " %" PRIu64, start, count);
	} else if (k < 75) {
		balloon(s, r, async);
	} else if (k < 82) {
		s->st.verifies++;
		toy(s, async, "verify");
	} else if (k < 85) {
		/* Zero pages for trim to drop. */
		toy(s, async, "fill-zero-half");
	} else if (k < 89 && s->hotplugs < MAX_HOTPLUGS) {
		s->hotplugs++;
		toy(s, async, "hotplug %uM", 2 * (1 + (unsigned)st_below(r[2], 4)));
	} else if (k < 92) {
		s->st.forks++;
		toy(s, false, "fork-verify");
	} else if (k < 93) {
		stalled_fork(s);
	} else if (k < 95) {
		helper_stall(s, 20 + (unsigned)st_below(r[2], 600));
	} else {
		unsigned ms = (unsigned)st_below(r[2], 30);

		st_trace(s, "idle %u ms", ms);
		h_nap_ms(ms);
	}
}

void st_guest_settle(struct st_run *s)
{
	if (s->toy_busy)
		answer(s);
	if (s->churning)
		churn_stop(s);
}

void st_verify(struct st_run *s)
{
	s->st.verifies++;
	toy(s, false, "verify");
	if (h_answer_u64(s->vm->p->last, "pages") != s->vm->pages)
		st_fail(s, "verify covered %" PRIu64 " pages of %" PRIu64,
			h_answer_u64(s->vm->p->last, "pages"), s->vm->pages);
}
