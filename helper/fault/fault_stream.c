/* SPDX-License-Identifier: BSD-3-Clause */
#include "fault_stream.h"

#define STREAMS 8          /* per process */
#define AROUND_MIN 1       /* a random fault reads just its page */
#define SLACK 8            /* pages a stride may skip and still continue a stream */
#define AHEAD_MIN 64       /* a window this wide reads the next run ahead too */

struct stream {
	uint64_t lo, hi;   /* the last run: [lo, hi) */
	uint64_t used;     /* clock of the last hit, 0: empty */
	uint32_t window;
	int dir;           /* +1 upwards, -1 downwards */
};

static struct {
	uint32_t gen;      /* of the process the table is for */
	struct stream s[STREAMS];
	struct stream *last; /* the stream of the last plan */
} procs[VS_MAX_PROCS];
static uint64_t ticks;

/* The stream @page continues, and in which direction; NULL when none. */
static struct stream *find(struct stream *t, uint64_t page, int *dir)
{
	for (int i = 0; i < STREAMS; i++) {
		struct stream *s = &t[i];
		uint64_t reach = (uint64_t)(s->window + SLACK) * VS_PAGE_SIZE;

		if (!s->used)
			continue;
		if (page >= s->lo && page < s->hi + reach) {
			*dir = page >= s->hi || s->dir > 0 ? 1 : -1;
			return s;
		}
		if (page < s->lo && s->lo - page <= reach) {
			*dir = -1;
			return s;
		}

	}
	return NULL;
}

static struct stream *oldest(struct stream *t)
{
	struct stream *o = &t[0];

	for (int i = 1; i < STREAMS; i++)
		if (t[i].used < o->used)
			o = &t[i];
	return o;
}

static bool same_run(const struct vs_obj *o, uint64_t pg, uint32_t slot)
{
	uint32_t e = o->pt[pg];

	return vs_pt_state(e) == VS_P_FILE && vs_pt_slot(e) == slot;
}

void vs_stream_plan(int pidx, const struct vs_map *m, const struct vs_obj *o, uint64_t page,
		    uint64_t pg, struct vs_run *run)
{
	struct stream *t = procs[pidx].s, *s;
	uint32_t slot = vs_pt_slot(o->pt[pg]), w, up = 1, down = 0;
	uint64_t first_pg = (m->off / VS_PAGE_SIZE), last_pg = first_pg + m->len / VS_PAGE_SIZE;
	int dir = 1;

	if (procs[pidx].gen != vs.procs[pidx].gen) {
		procs[pidx].gen = vs.procs[pidx].gen;
		for (int i = 0; i < STREAMS; i++)
			t[i] = (struct stream){ 0 };
	}
	s = find(t, page, &dir);
	if (s && dir < 0 && s->dir > 0) {
		/*
		 * Just below a stream going up: two threads taking turns look
		 * the same as one turning back. Read one page; a second step
		 * down confirms the direction.
		 */
		w = AROUND_MIN;
	} else if (s) {
		w = s->window * 4 > VS_AROUND_MAX ? VS_AROUND_MAX : s->window * 4;
	} else {
		s = oldest(t);
		w = AROUND_MIN;
	}
	if (last_pg > o->npages)
		last_pg = o->npages;
	/* Grow the run away from the fault, in the stream's direction. */
	if (dir > 0) {
		while (up < w && pg + up < last_pg && slot + up > slot && same_run(o, pg + up, slot + up))
			up++;
	} else {
		while (down + 1 < w && pg - down > first_pg && slot > down &&
		       same_run(o, pg - down - 1, slot - down - 1))
			down++;
	}
	run->addr = page - (uint64_t)down * VS_PAGE_SIZE;
	run->pg = pg - down;
	run->slot = slot - down;
	run->n = up + down;
	run->f = down;
	*s = (struct stream){ .lo = run->addr, .hi = run->addr + (uint64_t)run->n * VS_PAGE_SIZE,
			      .used = ++ticks, .window = w, .dir = dir };
	procs[pidx].last = s;
}

bool vs_stream_ahead(int pidx, const struct vs_map *m, const struct vs_obj *o,
		     const struct vs_run *run, struct vs_run *ahead)
{
	struct stream *s = procs[pidx].last;
	uint64_t pg = run->pg + run->n, last_pg = (m->off + m->len) / VS_PAGE_SIZE;
	uint32_t slot, n = 0;

	/* Only a stream going up, whose whole window was there to read. */
	if (!s || s->dir < 0 || s->window < AHEAD_MIN || run->f || run->n < s->window ||
	    s->hi != run->addr + (uint64_t)run->n * VS_PAGE_SIZE)
		return false;
	if (last_pg > o->npages)
		last_pg = o->npages;
	if (pg >= last_pg || vs_pt_state(o->pt[pg]) != VS_P_FILE)
		return false;
	slot = vs_pt_slot(o->pt[pg]);
	while (n < s->window && pg + n < last_pg && slot + n >= slot &&
	       same_run(o, pg + n, slot + n))
		n++;
	ahead->addr = run->addr + (uint64_t)run->n * VS_PAGE_SIZE;
	ahead->pg = pg;
	ahead->slot = slot;
	ahead->n = n;
	ahead->f = 0;
	s->hi = ahead->addr + (uint64_t)n * VS_PAGE_SIZE;
	return true;
}
