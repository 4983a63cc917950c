/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "slots.h"

void vs_slots_init(struct vs_slots *s)
{
	memset(s, 0, sizeof(*s));
}

void vs_slots_destroy(struct vs_slots *s)
{
	free(s->used);
	memset(s, 0, sizeof(*s));
}

static int slots_grow(struct vs_slots *s, uint32_t min_words)
{
	uint32_t words = s->words ? s->words : 64;
	uint64_t *n;

	while (words < min_words)
		words *= 2;
	n = realloc(s->used, (size_t)words * sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n + s->words, 0, (size_t)(words - s->words) * sizeof(*n));
	s->used = n;
	s->words = words;
	return 0;
}

int vs_slots_alloc(struct vs_slots *s, uint32_t *slot)
{
	uint32_t w = s->lowest / 64;

	for (;; w++) {
		if (w >= s->words) {
			int r;

			if ((uint64_t)w * 64 > VS_SLOT_MAX)
				return -ENOSPC;
			r = slots_grow(s, w + 1);
			if (r)
				return r;
		}
		if (~s->used[w])
			break;
	}
	uint32_t bit = (uint32_t)__builtin_ctzll(~s->used[w]);
	uint32_t n = w * 64 + bit;

	if (n > VS_SLOT_MAX)
		return -ENOSPC;
	s->used[w] |= 1ull << bit;
	s->lowest = n + 1;
	if (n < s->high)
		s->epoch++; /* a slot used before: its old bytes are about to go */
	if (n + 1 > s->high)
		s->high = n + 1;
	s->in_use++;
	*slot = n;
	return 0;
}

int vs_slots_alloc_tail(struct vs_slots *s, uint32_t *slot)
{
	uint32_t lowest = s->lowest;
	int r = vs_slots_take(s, s->high);

	if (r)
		return r;
	*slot = s->high - 1;
	s->lowest = lowest; /* the free slots below are still there */
	return 0;
}

int vs_slots_take(struct vs_slots *s, uint32_t slot)
{
	int r;

	if (slot > VS_SLOT_MAX)
		return -ENOSPC;
	if (slot / 64 >= s->words && (r = slots_grow(s, slot / 64 + 1)))
		return r;
	if (s->used[slot / 64] >> (slot % 64) & 1)
		return -EEXIST;
	s->used[slot / 64] |= 1ull << (slot % 64);
	if (slot + 1 > s->high)
		s->high = slot + 1;
	s->lowest = 0;
	s->in_use++;
	return 0;
}

int vs_slots_is_used(const struct vs_slots *s, uint32_t slot)
{
	return slot / 64 < s->words && (s->used[slot / 64] >> (slot % 64) & 1);
}

int vs_slots_free(struct vs_slots *s, uint32_t slot)
{
	if (!vs_slots_is_used(s, slot))
		return -EINVAL;
	s->used[slot / 64] &= ~(1ull << (slot % 64));
	if (slot < s->lowest)
		s->lowest = slot;
	s->in_use--;
	return 0;
}

void vs_slots_reset(struct vs_slots *s)
{
	if (s->used)
		memset(s->used, 0, (size_t)s->words * sizeof(*s->used));
	s->lowest = s->high = s->in_use = 0;
	s->epoch++;
}

uint32_t vs_slots_end(const struct vs_slots *s)
{
	uint32_t w = (s->high + 63) / 64;

	while (w > 0 && !s->used[w - 1])
		w--;
	if (!w)
		return 0;
	return (w - 1) * 64 + 64 - (uint32_t)__builtin_clzll(s->used[w - 1]);
}
