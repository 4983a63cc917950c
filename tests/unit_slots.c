/* SPDX-License-Identifier: BSD-3-Clause */
/* The swap-file slot allocator: lowest-free-first, dense, reusable. */
#include <criterion/criterion.h>
#include <errno.h>

#include "../helper/sys/slots.h"

static struct vs_slots s;

static void setup(void) { vs_slots_init(&s); }
static void teardown(void) { vs_slots_destroy(&s); }

TestSuite(slots, .init = setup, .fini = teardown);

Test(slots, hands_out_in_write_order)
{
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t slot;

		cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
		cr_assert_eq(slot, i);
	}
	cr_assert_eq(s.in_use, 1000);
	cr_assert_eq(vs_slots_end(&s), 1000);
}

Test(slots, reuses_lowest_freed_first)
{
	uint32_t slot;

	for (int i = 0; i < 200; i++)
		cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(vs_slots_free(&s, 150), 0);
	cr_assert_eq(vs_slots_free(&s, 7), 0);
	cr_assert_eq(vs_slots_free(&s, 64), 0);
	cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(slot, 7);
	cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(slot, 64);
	cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(slot, 150);
	cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(slot, 200, "file grows only when no hole is left");
}

Test(slots, double_free_is_refused)
{
	uint32_t slot;

	cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(vs_slots_free(&s, slot), 0);
	cr_assert_eq(vs_slots_free(&s, slot), -EINVAL);
	cr_assert_eq(vs_slots_free(&s, 123456), -EINVAL);
	cr_assert_eq(s.in_use, 0);
}

Test(slots, end_shrinks_when_tail_is_freed)
{
	uint32_t slot;

	for (int i = 0; i < 130; i++)
		vs_slots_alloc(&s, &slot);
	for (uint32_t i = 100; i < 130; i++)
		vs_slots_free(&s, i);
	cr_assert_eq(vs_slots_end(&s), 100);
	vs_slots_free(&s, 99);
	cr_assert_eq(vs_slots_end(&s), 99);
	vs_slots_reset(&s);
	cr_assert_eq(vs_slots_end(&s), 0);
	cr_assert_eq(s.in_use, 0);
	cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(slot, 0);
}

Test(slots, random_churn_matches_a_model)
{
	static unsigned char model[5000];
	uint32_t x = 12345, used = 0;

	for (int step = 0; step < 100000; step++) {
		x = x * 1103515245 + 12345;
		if ((x >> 16) % 3 || !used) {
			uint32_t slot, lowest = 0;

			while (lowest < 5000 && model[lowest])
				lowest++;
			if (lowest == 5000)
				continue;
			cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
			cr_assert_eq(slot, lowest);
			model[slot] = 1;
			used++;
		} else {
			uint32_t slot = (x >> 8) % 5000;

			cr_assert_eq(vs_slots_free(&s, slot), model[slot] ? 0 : -EINVAL);
			if (model[slot])
				used--;
			model[slot] = 0;
		}
		cr_assert_eq(s.in_use, used);
	}
	for (uint32_t i = 0; i < 5000; i++)
		cr_assert_eq(!!vs_slots_is_used(&s, i), model[i]);
}

Test(slots, take_rebuilds_the_map)
{
	uint32_t slot;

	cr_assert_eq(vs_slots_take(&s, 5), 0);
	cr_assert_eq(vs_slots_take(&s, 100000), 0);
	cr_assert_eq(vs_slots_take(&s, 5), -EEXIST);
	cr_assert_eq(s.in_use, 2);
	cr_assert_eq(vs_slots_end(&s), 100001);
	cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(slot, 0);
	for (uint32_t i = 1; i < 5; i++)
		cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(vs_slots_alloc(&s, &slot), 0);
	cr_assert_eq(slot, 6, "slot 5 is taken");
}
