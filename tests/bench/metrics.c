/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Named samples, one per repetition. Ratios are formed per repetition
 * (from numbers measured minutes apart at most) and then their median is
 * quoted, which keeps a noisy neighbour from skewing one side only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define MAX_METRICS 160
#define MAX_NOTES 48

static struct metric {
	const char *key;
	double v[BM_MAX_REPS];
	bool set[BM_MAX_REPS];
} metrics[MAX_METRICS];
static int nmetrics, cur_rep, max_rep = -1;

static struct note {
	const char *section;
	char text[240];
} notes[MAX_NOTES];
static int nnotes;

void bm_rep_begin(int rep)
{
	cur_rep = rep;
	if (rep > max_rep)
		max_rep = rep;
}

int bm_rep_count(void)
{
	return max_rep + 1;
}

static struct metric *find(const char *key, bool create)
{
	for (int i = 0; i < nmetrics; i++)
		if (!strcmp(metrics[i].key, key))
			return &metrics[i];
	if (!create || nmetrics == MAX_METRICS)
		return NULL;
	metrics[nmetrics].key = key;
	return &metrics[nmetrics++];
}

void bm_put(const char *key, double v)
{
	struct metric *m = find(key, true);

	if (!m || isnan(v))
		return;
	m->v[cur_rep] = v;
	m->set[cur_rep] = true;
}

double bm_get(const char *key, int rep)
{
	struct metric *m = find(key, false);

	return m && rep >= 0 && rep < BM_MAX_REPS && m->set[rep] ? m->v[rep] : NAN;
}

double bm_median(const char *key, int *n)
{
	struct metric *m = find(key, false);
	double v[BM_MAX_REPS];
	size_t k = 0;

	for (int r = 0; m && r < BM_MAX_REPS; r++)
		if (m->set[r])
			v[k++] = m->v[r];
	if (n)
		*n = (int)k;
	if (!k)
		return NAN;
	bm_pct(v, k, 50);
	/* The true median for an even count. */
	return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

void bm_note(const char *section, const char *fmt, ...)
{
	char text[240];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (int i = 0; i < nnotes; i++)
		if (!strcmp(notes[i].section, section) && !strcmp(notes[i].text, text))
			return;
	if (nnotes == MAX_NOTES)
		return;
	notes[nnotes].section = section;
	snprintf(notes[nnotes].text, sizeof(notes[nnotes].text), "%s", text);
	nnotes++;
	bm_log("note [%s]: %s", section, text);
}

const char *bm_notes(const char *section, int i)
{
	for (int k = 0; k < nnotes; k++)
		if (!strcmp(notes[k].section, section) && i-- == 0)
			return notes[k].text;
	return NULL;
}
