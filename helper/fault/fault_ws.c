/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdlib.h>
#include <string.h>

#include <vmswap/common.h>

#include "../sys/clock.h"
#include "../sys/log.h"
#include "fault_int.h"
#include "fault_ws.h"

/* One bitmap of pages per object, grown as pages are set. */
struct pageset {
	uint64_t *bits;
	uint64_t words;
};

static struct pageset cur[VS_MAX_OBJS], prev[VS_MAX_OBJS];
static bool enabled = true, armed, recording, prefetching;
static uint64_t record_until_ns, recorded, prefetch_t0, prefetch_p0, prefetch_reads;
static int cursor_obj;
static uint64_t cursor_pg;
static uint64_t prefetched, hits;

void vs_ws_init(void)
{
	const char *s = getenv(VMSWAP_ENV_PREFETCH);

	/* The shim checked it; anything else than "off" keeps the default. */
	enabled = !(s && !strcmp(s, "off"));
}

bool vs_ws_enabled(void)
{
	return enabled;
}

static bool test_bit(const struct pageset *s, uint64_t pg)
{
	return pg / 64 < s->words && (s->bits[pg / 64] >> (pg % 64) & 1);
}

/* Room for word @w. false when out of memory: a page less in the set, only slower. */
static bool grow(struct pageset *s, uint64_t w)
{
	uint64_t words = (w + 1) * 2, *b;

	if (w < s->words)
		return true;
	b = realloc(s->bits, words * sizeof(*b));
	if (!b)
		return false;
	memset(b + s->words, 0, (words - s->words) * sizeof(*b));
	s->bits = b;
	s->words = words;
	return true;
}

static void set_bit(struct pageset *s, uint64_t pg)
{
	if (grow(s, pg / 64))
		s->bits[pg / 64] |= 1ull << (pg % 64);
}

/* Into the set being recorded. */
static void add(int obj, uint64_t pg)
{
	if (!test_bit(&cur[obj], pg)) {
		set_bit(&cur[obj], pg);
		recorded++;
	}
}

/* @from's pages into @into, counted as recorded. */
static void merge(struct pageset *into, const struct pageset *from)
{
	for (uint64_t w = from->words; w-- > 0;) {
		uint64_t more;

		if (!from->bits[w] || !grow(into, w))
			continue;
		more = from->bits[w] & ~into->bits[w];
		into->bits[w] |= from->bits[w];
		recorded += (uint64_t)__builtin_popcountll(more);
	}
}

static bool empty(const struct pageset *s)
{
	for (int i = 0; i < VS_MAX_OBJS; i++)
		for (uint64_t w = 0; w < s[i].words; w++)
			if (s[i].bits[w])
				return false;
	return true;
}

static void clear(struct pageset *s)
{
	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (s[i].bits)
			memset(s[i].bits, 0, s[i].words * sizeof(*s[i].bits));
}

void vs_ws_out_done(void)
{
	if (!enabled)
		return;
	/* A second out without a wake between keeps the set it had. */
	if (!empty(cur)) {
		for (int i = 0; i < VS_MAX_OBJS; i++) {
			struct pageset t = prev[i];

			prev[i] = cur[i];
			cur[i] = t;
		}
		clear(cur);
	}
	armed = true;
	recording = prefetching = false;
}

void vs_ws_fault(int obj, uint64_t pg, uint32_t n)
{
	uint64_t now = vs_now_ns();

	if (!enabled)
		return;
	if (armed) {
		/* The first fault since out: a wake. */
		armed = false;
		recording = true;
		recorded = 0;
		record_until_ns = now + VS_WS_RECORD_MS * 1000000ull;
		prefetching = !empty(prev);
		cursor_obj = 0;
		cursor_pg = 0;
		if (prefetching) {
			/*
			 * What is prefetched never faults, and which of it the
			 * guest reads cannot be seen: it stays in the set.
			 */
			for (int i = 0; i < VS_MAX_OBJS; i++)
				merge(&cur[i], &prev[i]);
			prefetch_t0 = now;
			prefetch_p0 = prefetched;
			prefetch_reads = 0;
			vs_info("wake: prefetching the working set of the last wake");
		}
	}
	if (!recording)
		return;
	if (now > record_until_ns) {
		recording = false;
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		add(obj, pg + i);
}

bool vs_ws_hot(int obj, uint64_t pg)
{
	return enabled && test_bit(&cur[obj], pg);
}

bool vs_ws_prefetching(void)
{
	return prefetching;
}

/* The next page of the set at or after *pg that is only in the file. */
static bool next_page(int obj, uint64_t *pg)
{
	const struct vs_obj *o = &vs.objs[obj];

	for (; *pg < o->npages && *pg / 64 < prev[obj].words; (*pg)++) {
		uint64_t w = prev[obj].bits[*pg / 64] >> (*pg % 64);

		if (!w) {
			*pg = (*pg / 64 + 1) * 64 - 1; /* the rest of the word is clear */
			continue;
		}
		if ((w & 1) && vs_pt_state(o->pt[*pg]) == VS_P_FILE)
			return true;
	}
	return false;
}

uint32_t vs_ws_next(int *obj, uint32_t *slot, uint64_t pg[VS_WS_RUN_MAX])
{
	while (prefetching && cursor_obj < VS_MAX_OBJS) {
		const struct vs_obj *o = &vs.objs[cursor_obj];
		uint64_t p = cursor_pg;
		uint32_t n = 0, s0;

		if (!o->used || !next_page(cursor_obj, &p)) {
			cursor_obj++;
			cursor_pg = 0;
			continue;
		}
		/* Slots that follow each other; pages of the set in between go too. */
		s0 = vs_pt_slot(o->pt[p]);
		for (uint32_t i = 0; i < VS_WS_RUN_MAX; i++)
			pg[i] = UINT64_MAX;
		while (n < VS_WS_RUN_MAX) {
			uint32_t s = vs_pt_slot(o->pt[p]);

			if (s < s0 || s - s0 >= VS_WS_RUN_MAX)
				break;
			pg[s - s0] = p;
			n = s - s0 + 1 > n ? s - s0 + 1 : n;
			p++;
			if (!next_page(cursor_obj, &p))
				break;
		}
		cursor_pg = p;
		prefetch_reads++;
		*obj = cursor_obj;
		*slot = s0;
		return n;
	}
	if (prefetching)
		vs_info("wake: working set read (%llu pages put in, %llu reads) in %llu ms",
			(unsigned long long)(prefetched - prefetch_p0),
			(unsigned long long)prefetch_reads,
			(unsigned long long)((vs_now_ns() - prefetch_t0) / 1000000));
	prefetching = false;
	return 0;
}

void vs_ws_count(uint64_t p, uint64_t h)
{
	prefetched += p;
	hits += h;
}

void vs_ws_stats(uint64_t *p, uint64_t *h, uint64_t *r)
{
	*p = prefetched;
	*h = hits;
	*r = recorded;
}
