/* SPDX-License-Identifier: BSD-3-Clause */
/* The per-call-site log rate limit of the shim and the helper. */
#include <criterion/criterion.h>

#include <vmswap/ratelimit.h>

/* Lines of site @key allowed at @now out of @tries; *dropped sums the reports. */
static unsigned tries(struct vmswap_rl *rl, uintptr_t key, uint64_t now, unsigned n,
		      uint64_t *dropped)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t d = 0;

		if (vmswap_rl_allow(rl, key, now, &d)) {
			ok++;
			*dropped += d;
		}
	}
	return ok;
}

Test(ratelimit, burst_then_steady_rate_and_count)
{
	static struct vmswap_rl rl;
	const uint64_t t0 = 1000000;
	uint64_t dropped = 0;

	cr_assert_eq(tries(&rl, 0x1234, t0, 1000, &dropped), VMSWAP_RL_BURST);
	cr_assert_eq(dropped, 0, "nothing to report before anything was dropped");
	/* One interval later: one line, which reports the 980 dropped. */
	cr_assert_eq(tries(&rl, 0x1234, t0 + VMSWAP_RL_INTERVAL_MS, 10, &dropped), 1);
	cr_assert_eq(dropped, 1000 - VMSWAP_RL_BURST);
	/* Ten intervals: ten lines; 9 dropped since then are reported. */
	dropped = 0;
	cr_assert_eq(tries(&rl, 0x1234, t0 + 11 * VMSWAP_RL_INTERVAL_MS, 100, &dropped), 10);
	cr_assert_eq(dropped, 9);
	/* Quiet for long enough: the whole burst again. */
	dropped = 0;
	cr_assert_eq(tries(&rl, 0x1234, t0 + 1000000, 1000, &dropped), VMSWAP_RL_BURST);
	cr_assert_eq(dropped, 90);
}

Test(ratelimit, sites_have_their_own_budget)
{
	static struct vmswap_rl rl;
	uint64_t dropped = 0;

	cr_assert_eq(tries(&rl, 0xaaa0, 5000, 100000, &dropped), VMSWAP_RL_BURST);
	/* An error elsewhere is not lost behind the flood. */
	cr_assert_eq(tries(&rl, 0xbbb0, 5000, 1, &dropped), 1);
	cr_assert_eq(dropped, 0);
}

Test(ratelimit, more_sites_than_slots_share_the_last)
{
	static struct vmswap_rl rl;
	uint64_t dropped = 0;
	unsigned ok = 0;

	for (uintptr_t k = 1; k <= VMSWAP_RL_SLOTS; k++)
		cr_assert_eq(tries(&rl, k * 16, 5000, 1, &dropped), 1);
	/* The table is full: the others are limited together, not ignored. */
	for (uintptr_t k = VMSWAP_RL_SLOTS + 1; k <= VMSWAP_RL_SLOTS + 100; k++)
		ok += tries(&rl, k * 16, 5000, 1, &dropped);
	cr_assert_eq(ok, VMSWAP_RL_BURST);
	cr_assert_eq(tries(&rl, 16, 5000, 1, &dropped), 1, "a known site keeps its slot");
}
