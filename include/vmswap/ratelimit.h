/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Log rate limit, per call site, shared by the shim and the helper.
 *
 * Each site (its return address) gets a budget of VMSWAP_RL_BURST lines,
 * refilled by one line every VMSWAP_RL_INTERVAL_MS (GCRA: one timestamp
 * per site, updated with a compare-and-swap). Lock-free and without
 * allocation, so the shim may log from any path, a signal handler
 * included. A flood from one site (bad lines on the control FIFO) cannot
 * silence another (an error that makes the state Failed).
 */
#ifndef VMSWAP_RATELIMIT_H
#define VMSWAP_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define VMSWAP_RL_BURST 20
#define VMSWAP_RL_INTERVAL_MS 200 /* 5 lines a second once the burst is spent */
#define VMSWAP_RL_SLOTS 64        /* distinct sites; more share the last slot */

struct vmswap_rl_slot {
	_Atomic uintptr_t key;
	_Atomic uint64_t tat;        /* when the budget is full again, in ms */
	_Atomic uint64_t suppressed; /* lines dropped since the last one shown */
};

struct vmswap_rl {
	struct vmswap_rl_slot slot[VMSWAP_RL_SLOTS + 1];
};

static inline uint64_t vmswap_rl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline struct vmswap_rl_slot *vmswap_rl_slot(struct vmswap_rl *rl, uintptr_t key)
{
	unsigned h = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 58) % VMSWAP_RL_SLOTS;

	if (!key)
		key = 1;
	for (unsigned i = 0; i < VMSWAP_RL_SLOTS; i++) {
		struct vmswap_rl_slot *s = &rl->slot[(h + i) % VMSWAP_RL_SLOTS];
		uintptr_t k = atomic_load_explicit(&s->key, memory_order_acquire);

		if (k == key)
			return s;
		if (!k && (atomic_compare_exchange_strong(&s->key, &k, key) || k == key))
			return s;
	}
	return &rl->slot[VMSWAP_RL_SLOTS];
}

/*
 * May the site @key log a line at @now_ms? true: yes, and *@dropped is
 * the number of its lines suppressed since its last one (to be reported
 * first); false: suppressed (and counted).
 */
static inline bool vmswap_rl_allow(struct vmswap_rl *rl, uintptr_t key, uint64_t now_ms,
				   uint64_t *dropped)
{
	const uint64_t tau = (uint64_t)(VMSWAP_RL_BURST - 1) * VMSWAP_RL_INTERVAL_MS;
	struct vmswap_rl_slot *s = vmswap_rl_slot(rl, key);
	uint64_t t = atomic_load_explicit(&s->tat, memory_order_relaxed), next;

	do {
		if (t > now_ms + tau) {
			atomic_fetch_add_explicit(&s->suppressed, 1, memory_order_relaxed);
			return false;
		}
		next = (t > now_ms ? t : now_ms) + VMSWAP_RL_INTERVAL_MS;
	} while (!atomic_compare_exchange_weak(&s->tat, &t, next));
	*dropped = atomic_exchange_explicit(&s->suppressed, 0, memory_order_relaxed);
	return true;
}

#endif
