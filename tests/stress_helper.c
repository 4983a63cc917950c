/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmswap commands over the control FIFO, in a random order and at random
 * moments, and the one answer each must get; see stress.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../helper/ctl/ctl_json.h"
#include "stress.h"

#define REPLY_MAX 256
#define BATCH_PCT 30      /* a second command right behind the first, same write */
#define ASYNC_ENABLE_PCT 40

static const char *const verb_name[ST_NVERBS] = { "enable", "trim", "out", "disable" };

bool st_running(enum st_sit sit)
{
	return sit >= ST_RUN_ENABLE;
}

/* The state name status.json shows (running enable has none of its own). */
const char *st_sit_name(enum st_sit sit)
{
	static const char *const names[] = {
		[ST_READY] = "Ready", [ST_PENDING] = "Pending", [ST_ACTIVE] = "Active",
		[ST_RUN_ENABLE] = "(enable)", [ST_RUN_TRIM] = "TrimInProgress",
		[ST_RUN_OUT] = "SwapOutInProgress", [ST_RUN_DISABLE] = "SwapInInProgress",
	};
	return names[sit];
}

static enum st_sit end_of(enum st_sit sit)
{
	switch (sit) {
	case ST_RUN_ENABLE:
	case ST_RUN_TRIM: return ST_PENDING;
	case ST_RUN_OUT: return ST_ACTIVE;
	case ST_RUN_DISABLE: return ST_READY;
	default: return sit;
	}
}

static enum st_sit run_of(enum st_verb v)
{
	static const enum st_sit run[] = { ST_RUN_ENABLE, ST_RUN_TRIM, ST_RUN_OUT, ST_RUN_DISABLE };
	return run[v];
}

/*
 * What the helper answers v in situation c (helper/state/state.c): ok, and the
 * message, exact except for enable's, whose prefix is given.
 */
static bool expect(enum st_sit c, enum st_verb v, char *msg, size_t n)
{
	const char *name = verb_name[v];

	if (c == ST_RUN_ENABLE) {
		snprintf(msg, n, "%s", v == ST_ENABLE ? "enable already in progress"
						      : "busy: enable in progress");
		return false;
	}
	switch (v) {
	case ST_ENABLE:
		snprintf(msg, n, "enabled: ");
		return true;
	case ST_TRIM:
	case ST_OUT:
		if (c == ST_PENDING) {
			snprintf(msg, n, "%s started", name);
			return true;
		}
		snprintf(msg, n, "%s not allowed in state %s (needs Pending)", name, st_sit_name(c));
		return false;
	default:
		if (c == ST_READY) {
			snprintf(msg, n, "disable not allowed in state Ready (swap is not enabled)");
			return false;
		}
		if (c == ST_RUN_DISABLE) {
			snprintf(msg, n, "disable already in progress");
			return false;
		}
		snprintf(msg, n, "disable started");
		return true;
	}
}

static bool matches(enum st_sit c, enum st_verb v, bool ok, const char *msg)
{
	char want[REPLY_MAX];
	bool wok = expect(c, v, want, sizeof(want));

	if (wok != ok)
		return false;
	return v == ST_ENABLE && ok ? !strncmp(msg, want, strlen(want)) : !strcmp(msg, want);
}

static void new_id(struct st_run *s, char *id, size_t n)
{
	snprintf(id, n, "st%u", ++s->idseq);
}

/* The reply with that id, waiting for it; its ok. */
static bool wait_reply(struct st_run *s, const char *id, char *msg, size_t n)
{
	double deadline = h_now() + s->state_timeout;

	for (;;) {
		char *json = NULL;
		bool ok = false;

		if (!vs_status_read(s->vm->pid, &json) &&
		    !vs_json_find_reply(json, id, &ok, msg, n)) {
			free(json);
			return ok;
		}
		free(json);
		st_helper_alive(s);
		if (h_now() > deadline)
			st_fail(s, "no reply to command %s within %.0f s", id, s->state_timeout);
		h_nap_ms(2);
	}
}

char *st_wait_state(struct st_run *s, const char *state)
{
	double deadline = h_now() + s->state_timeout;
	char now[64] = "?";

	for (;;) {
		char *json = NULL;

		if (!vs_status_read(s->vm->pid, &json) &&
		    !vs_json_get_str(json, "state", now, sizeof(now))) {
			if (!strcmp(now, state))
				return json;
			if (!strcmp(now, "Failed"))
				st_fail(s, "state Failed while waiting for %s:\n%s", state, json);
		}
		free(json);
		st_helper_alive(s);
		if (h_now() > deadline)
			st_fail(s, "state still %s, not %s, after %.0f s", now, state, s->state_timeout);
		h_nap_ms(5);
	}
}

static void enabled(struct st_run *s, const char *msg)
{
	unsigned long long pages;

	if (sscanf(msg, "enabled: %llu pages moved", &pages) != 1)
		st_fail(s, "enable answered '%s'", msg);
	s->st.accepted[ST_ENABLE]++;
	s->st.moved_enable += pages;
}

/* The enable ST_RUN_ENABLE stands for has ended: it must have succeeded. */
static void resolve_enable(struct st_run *s)
{
	char msg[REPLY_MAX];

	if (!wait_reply(s, s->enable_id, msg, sizeof(msg)))
		st_fail(s, "enable %s refused or failed: %s", s->enable_id, msg);
	enabled(s, msg);
	st_trace(s, "enable %s ended: %s", s->enable_id, msg);
	s->sit = ST_PENDING;
}

/*
 * The answer to v (sent with id in the current situation) must be one the
 * helper gives there: if an op may be running, as it runs or once it
 * ended. Moves the situation on. An async enable (only from a quiet
 * state, where it is always taken) is not waited for.
 */
static void apply(struct st_run *s, enum st_verb v, const char *id, bool async_enable)
{
	enum st_sit was = s->sit, cand[2] = { was, end_of(was) }, c;
	int nc = st_running(was) ? 2 : 1, i;
	char msg[REPLY_MAX], w0[REPLY_MAX], w1[REPLY_MAX] = "";
	bool ok;

	if (v == ST_ENABLE && async_enable && !st_running(was)) {
		snprintf(s->enable_id, sizeof(s->enable_id), "%s", id);
		s->sit = ST_RUN_ENABLE;
		st_trace(s, "enable %s sent in %s, not waited for", id, st_sit_name(was));
		return;
	}
	ok = wait_reply(s, id, msg, sizeof(msg));
	for (i = 0; i < nc && !matches(cand[i], v, ok, msg); i++)
		;
	if (i == nc) {
		bool k0 = expect(cand[0], v, w0, sizeof(w0));

		if (nc == 2)
			expect(cand[1], v, w1, sizeof(w1));
		st_fail(s, "%s %s in %s answered %s '%s'; expected %s '%s'%s%s", verb_name[v], id,
			st_sit_name(was), ok ? "ok" : "refused", msg, k0 ? "ok" : "refused", w0,
			nc == 2 ? " or, once it ended, " : "", w1);
	}
	c = cand[i];
	st_trace(s, "%s %s in %s: %s '%s' (helper was %s)", verb_name[v], id, st_sit_name(was),
		 ok ? "ok" : "refused", msg, st_sit_name(c));
	/* Answered as after the enable: that enable had ended. */
	if (was == ST_RUN_ENABLE && c != ST_RUN_ENABLE)
		resolve_enable(s);
	if (!ok) {
		s->st.refused++;
		s->st.refused_busy += st_running(c);
		s->sit = c;
	} else if (v == ST_ENABLE) {
		enabled(s, msg);
		s->sit = ST_PENDING;
	} else {
		s->st.accepted[v]++;
		s->sit = run_of(v);
	}
	if (ok && (v == ST_ENABLE || v == ST_DISABLE) && c == was && was > ST_RUN_ENABLE)
		s->st.overtaken[was - ST_RUN_ENABLE]++;
}

static void send_lines(struct st_run *s, const char *lines)
{
	int r = h_fifo_write(s->vm->pid, lines);

	if (r)
		st_fail(s, "writing '%s' to the control FIFO: %s", lines, strerror(-r));
}

/* Weights, in percent, of enable/trim/out/disable from each quiet state:
 * mostly what the state allows, a few refusals. */
static enum st_verb pick_quiet(enum st_sit sit, uint64_t r)
{
	static const unsigned w[3][ST_NVERBS] = {
		[ST_READY] = { 85, 5, 5, 5 },
		[ST_PENDING] = { 12, 30, 38, 20 },
		[ST_ACTIVE] = { 50, 7, 7, 36 },
	};
	unsigned x = (unsigned)st_below(r, 100), v;

	for (v = 0; v < ST_NVERBS - 1 && x >= w[sit][v]; v++)
		x -= w[sit][v];
	return (enum st_verb)v;
}

/* A command meeting a running op: mostly the ones that abort it. */
static enum st_verb pick_second(uint64_t r)
{
	static const unsigned w[ST_NVERBS] = { 35, 15, 20, 30 };
	unsigned x = (unsigned)st_below(r, 100), v;

	for (v = 0; v < ST_NVERBS - 1 && x >= w[v]; v++)
		x -= w[v];
	return (enum st_verb)v;
}

void st_helper_step(struct st_run *s, const uint64_t r[])
{
	enum st_verb v = pick_quiet(s->sit, r[1]), v2 = pick_second(r[4]);
	char id[16], id2[16], lines[96], want[REPLY_MAX];
	bool starts = v == ST_ENABLE || expect(s->sit, v, want, sizeof(want));
	bool batch = starts && st_below(r[3], 100) < BATCH_PCT;
	bool async = v == ST_ENABLE && (batch || st_below(r[2], 100) < ASYNC_ENABLE_PCT);

	new_id(s, id, sizeof(id));
	new_id(s, id2, sizeof(id2));
	if (batch)
		snprintf(lines, sizeof(lines), "%s id=%s\n%s id=%s\n", verb_name[v], id,
			 verb_name[v2], id2);
	else
		snprintf(lines, sizeof(lines), "%s id=%s\n", verb_name[v], id);
	send_lines(s, lines);
	apply(s, v, id, async);
	if (batch) {
		s->st.batched++;
		apply(s, v2, id2, false);
	}
}

/* Until progress reaches pct of the running op, or it ended. */
static void wait_progress(struct st_run *s, unsigned pct)
{
	double deadline = h_now() + s->state_timeout;
	const char *running = st_sit_name(s->sit);

	for (;;) {
		char *json = NULL, state[64] = "";
		uint64_t done = 0, total = 0;
		bool ended = false;

		if (!vs_status_read(s->vm->pid, &json)) {
			if (s->sit == ST_RUN_ENABLE)
				ended = !vs_json_find_reply(json, s->enable_id, NULL, NULL, 0);
			else
				ended = !vs_json_get_str(json, "state", state, sizeof(state)) &&
					strcmp(state, running);
			vs_json_get_u64(json, "done", &done);
			vs_json_get_u64(json, "total", &total);
		}
		free(json);
		if (ended || (total && done * 100 >= (uint64_t)pct * total))
			return;
		st_helper_alive(s);
		if (h_now() > deadline)
			st_fail(s, "%s never reached %u%%", running, pct);
		h_nap_ms(2);
	}
}

void st_second_step(struct st_run *s, const uint64_t r[])
{
	enum st_verb v = pick_second(r[3]);
	/* Ops take a few ms per MiB: spread the moments over about that. */
	uint64_t max_ms = (s->prm->size >> 20) * 3;
	char id[16], line[48];

	switch (st_below(r[1], 3)) {
	case 0:
		st_trace(s, "at once:");
		break;
	case 1: {
		uint64_t ms = st_below(r[2], max_ms + 1);

		st_trace(s, "after %" PRIu64 " ms:", ms);
		h_nap_ms((unsigned)ms);
		break;
	}
	default: {
		unsigned pct = (unsigned)st_below(r[2], 100);

		st_trace(s, "at %u%% progress:", pct);
		wait_progress(s, pct);
		break;
	}
	}
	new_id(s, id, sizeof(id));
	snprintf(line, sizeof(line), "%s id=%s\n", verb_name[v], id);
	send_lines(s, line);
	apply(s, v, id, false);
	/* Its reply must not drop out of the kept window behind later ones. */
	if (s->sit == ST_RUN_ENABLE)
		resolve_enable(s);
}

void st_settle(struct st_run *s)
{
	if (!st_running(s->sit))
		return;
	if (s->sit == ST_RUN_ENABLE) {
		resolve_enable(s);
		return;
	}
	free(st_wait_state(s, st_sit_name(end_of(s->sit))));
	st_trace(s, "%s ended: %s", st_sit_name(s->sit), st_sit_name(end_of(s->sit)));
	s->sit = end_of(s->sit);
}

void st_check_quiet(struct st_run *s)
{
	char *js = h_status_fresh(s->vm->pid), state[64];
	uint64_t staging = h_json_u64(js, "staging_pages"), swap = h_json_u64(js, "swap_pages");
	uint64_t guest = h_json_u64(js, "guest_pages");

	h_json_str(js, "state", state, sizeof(state));
	if (strcmp(state, st_sit_name(s->sit)))
		st_fail(s, "state %s, expected %s:\n%s", state, st_sit_name(s->sit), js);
	if (guest != s->vm->pages || h_json_u64(js, "regions") != s->vm->regions)
		st_fail(s, "helper sees %" PRIu64 " pages in %" PRIu64 " regions, toyvmm has %" PRIu64
			" in %u:\n%s", guest, h_json_u64(js, "regions"), s->vm->pages,
			s->vm->regions, js);
	if (h_json_u64(js, "processes") != 1)
		st_fail(s, "helper counts %" PRIu64 " processes:\n%s", h_json_u64(js, "processes"),
			js);
	if (staging + swap > guest)
		st_fail(s, "more pages staged and swapped than guest pages:\n%s", js);
	if (s->sit == ST_READY && (staging || swap || h_json_u64(js, "swap_slots_used")))
		st_fail(s, "Ready with pages left in staging or in the swap file:\n%s", js);
	if (s->sit == ST_ACTIVE && staging)
		st_fail(s, "Active with pages left in staging:\n%s", js);
	free(js);
}

void st_to_ready(struct st_run *s)
{
	char id[16], line[48];

	st_settle(s);
	if (s->sit == ST_READY)
		return;
	new_id(s, id, sizeof(id));
	snprintf(line, sizeof(line), "disable id=%s\n", id);
	send_lines(s, line);
	apply(s, ST_DISABLE, id, false);
	st_settle(s);
}
