/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Page content as a pure function of (seed, page, gen), so that any page
 * can be checked at any time, by any thread or a forked child, with
 * nothing but the model's gen number. A gen with TVM_GEN_KVM stands for
 * the pattern the KVM guest writes; the host checks it the same way.
 */
#include <errno.h>
#include <string.h>

#include "toyvmm.h"

uint64_t tvm_splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* state must be non-zero; callers seed it through splitmix64 | 1. */
uint64_t tvm_xorshift64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

/*
 * Each page gets its own key from (seed, page); the word then mixes in
 * gen and the word index in disjoint bits, so every word depends on page,
 * gen and position, and a stale, misplaced or zeroed page never matches.
 */
static inline uint64_t page_key(uint64_t seed, uint64_t pno)
{
	return tvm_splitmix64((seed << 40) ^ tvm_splitmix64(pno));
}

static inline uint64_t word_of(uint64_t key, uint32_t gen, unsigned w)
{
	return tvm_splitmix64(key ^ ((uint64_t)gen << 9) ^ w);
}

/* The KVM guest's pattern (kvm_guest.c) is in 32-bit words; seen here as
 * 64-bit words, little-endian like the guest's stores. */
static inline uint64_t kvm_word(uint32_t key, unsigned w)
{
	return (uint64_t)tvm_kvm_word(key, 2 * w) |
	       (uint64_t)tvm_kvm_word(key, 2 * w + 1) << 32;
}

uint64_t tvm_pattern_word(uint64_t seed, uint64_t pno, uint32_t gen, unsigned w)
{
	if (gen & TVM_GEN_KVM)
		return kvm_word(tvm_kvm_key(seed, pno, gen), w);
	return gen ? word_of(page_key(seed, pno), gen, w) : 0;
}

void tvm_pattern_fill(void *page, uint64_t seed, uint64_t pno, uint32_t gen)
{
	uint64_t *p = page, key;

	if (!gen) {
		memset(page, 0, TVM_PAGE_SIZE);
		return;
	}
	if (gen & TVM_GEN_KVM) {
		uint32_t k = tvm_kvm_key(seed, pno, gen);

		for (unsigned w = 0; w < TVM_PAGE_WORDS; w++)
			p[w] = kvm_word(k, w);
		return;
	}
	key = page_key(seed, pno);
	for (unsigned w = 0; w < TVM_PAGE_WORDS; w++)
		p[w] = word_of(key, gen, w);
}

/*
 * Compare all 512 words (so every byte) of the page with what gen says.
 * Returns 0, or -EILSEQ with the first differing word in *bad_word.
 */
int tvm_pattern_check(const void *page, uint64_t seed, uint64_t pno,
		      uint32_t gen, unsigned *bad_word)
{
	const uint64_t *p = page;
	bool kvm = gen & TVM_GEN_KVM;
	uint64_t key = !gen ? 0 : kvm ? tvm_kvm_key(seed, pno, gen) : page_key(seed, pno);

	for (unsigned w = 0; w < TVM_PAGE_WORDS; w++) {
		uint64_t want = !gen ? 0 : kvm ? kvm_word((uint32_t)key, w) :
			word_of(key, gen, w);

		if (p[w] != want) {
			if (bad_word)
				*bad_word = w;
			return -EILSEQ;
		}
	}
	return 0;
}
