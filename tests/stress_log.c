/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The helper's log (VMSWAP_LOG=info, in the VMM's stderr file): how each
 * op ended ("<op> finished: ..."), including aborts, and the refusals.
 * Any other warning or error from the helper fails the stress.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "stress.h"

static bool skip(const char **p, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(*p, prefix, n))
		return false;
	*p += n;
	return true;
}

/* "<op> finished: <message>", as helper/state/state.c logs an op's end. */
static bool op_finished(struct st_run *s, const char *p)
{
	static const struct { const char *start, *aborted, *done; int verb; } ops[] = {
		{ "trim finished: ", "trim aborted", "trimmed", ST_TRIM },
		{ "out finished: ", "swap out aborted", "swapped out", ST_OUT },
		{ "disable finished: ", "swap in aborted", "swapped in", ST_DISABLE },
	};
	unsigned long long a, b;

	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (!skip(&p, ops[i].start))
			continue;
		s->st.finished[ops[i].verb]++;
		if (!strcmp(p, ops[i].aborted)) {
			s->st.aborted[ops[i].verb]++;
			st_trace(s, "helper log: %s", p);
		} else if (ops[i].verb == ST_TRIM &&
			   sscanf(p, "trimmed %llu zero and %llu clean pages", &a, &b) == 2) {
			s->st.trimmed += a + b;
		} else if (ops[i].verb != ST_TRIM && sscanf(p, "%*s %*s %llu pages", &a) == 1 &&
			   !strncmp(p, ops[i].done, strlen(ops[i].done))) {
			*(ops[i].verb == ST_OUT ? &s->st.moved_out : &s->st.moved_in) += a;
		} else {
			st_fail(s, "helper log: unexpected end of an op: %s", p);
		}
		return true;
	}
	return false;
}

static void one_line(struct st_run *s, const char *line)
{
	const char *p = strstr(line, "vmswap-helper[");

	if (!p || !(p = strstr(p, "]: ")))
		return;
	p += 3;
	if (skip(&p, "info: ")) {
		op_finished(s, p);
		return;
	}
	/*
	 * A child forked while we stalled the helper gave up joining and died
	 * closed off: its late connection or HELLO is refused, or its reply
	 * finds it gone. Only after such a fork.
	 */
	const char *q = p;

	if (s->st.stalled_forks && skip(&q, "warning: ") &&
	    (strstr(q, "refused a shim.sock connection: ") ||
	     strstr(q, "shim request 1 failed: ") || strstr(q, "replying to the shim: ") ||
	     strstr(q, "dropping a shim.sock connection"))) {
		st_trace(s, "helper log: %s", q);
		return;
	}
	/* Our refused commands: "<verb> id=st<n>: <why>". */
	if (skip(&p, "warning: ") && strstr(p, " id=st") && strstr(p, ": ")) {
		s->st.log_refused++;
		return;
	}
	st_fail(s, "helper log: %s", line);
}

void st_log_scan(struct st_run *s)
{
	FILE *f = fopen(s->vm->p->errpath, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		st_fail(s, "cannot open %s", s->vm->p->errpath);
	if (fseek(f, s->log_off, SEEK_SET) == 0) {
		/* Whole lines only: the rest is read once its writer ended it. */
		while ((n = getline(&line, &cap, f)) > 0 && line[n - 1] == '\n') {
			line[n - 1] = '\0';
			s->log_off += n;
			one_line(s, line);
		}
	}
	free(line);
	fclose(f);
}

void st_log_check_ended(struct st_run *s)
{
	double deadline = h_now() + s->state_timeout;
	const struct st_stats *t = &s->st;

	/* The helper logs an op's end just after publishing its state. */
	for (;;) {
		bool all;

		st_log_scan(s);
		all = t->log_refused == t->refused;
		for (int v = ST_TRIM; v < ST_NVERBS; v++) {
			if (t->finished[v] > t->accepted[v])
				st_fail(s, "helper log: more ops ended than were started");
			all &= t->finished[v] + t->overtaken[v] >= t->accepted[v];
		}
		if (all)
			return;
		if (h_now() > deadline)
			st_fail(s, "helper log: trim/out/disable accepted %llu/%llu/%llu, ended "
				"%llu/%llu/%llu, overtaken at most %llu/%llu/%llu; %llu refusals "
				"logged of %llu",
				(unsigned long long)t->accepted[ST_TRIM],
				(unsigned long long)t->accepted[ST_OUT],
				(unsigned long long)t->accepted[ST_DISABLE],
				(unsigned long long)t->finished[ST_TRIM],
				(unsigned long long)t->finished[ST_OUT],
				(unsigned long long)t->finished[ST_DISABLE],
				(unsigned long long)t->overtaken[ST_TRIM],
				(unsigned long long)t->overtaken[ST_OUT],
				(unsigned long long)t->overtaken[ST_DISABLE],
				(unsigned long long)t->log_refused, (unsigned long long)t->refused);
		h_nap_ms(20);
	}
}
