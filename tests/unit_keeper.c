/* SPDX-License-Identifier: BSD-3-Clause */
/* The keeper's restart schedule and the restart info it hands a new helper. */
#include <criterion/criterion.h>
#include <errno.h>

#include "../helper/persist/keeper.h"

Test(keeper, backoff_schedule)
{
	for (uint32_t s = 0; s <= 5; s++)
		cr_assert_eq(vs_keeper_backoff_ms(s, 1000), 0, "streak %u", s);
	cr_assert_eq(vs_keeper_backoff_ms(6, 1000), 1000);
	cr_assert_eq(vs_keeper_backoff_ms(7, 1000), 2000);
	cr_assert_eq(vs_keeper_backoff_ms(8, 1000), 4000);
	cr_assert_eq(vs_keeper_backoff_ms(10, 1000), 16000);
	cr_assert_eq(vs_keeper_backoff_ms(11, 1000), 30000);
	cr_assert_eq(vs_keeper_backoff_ms(1000, 1000), 30000);
	cr_assert_eq(vs_keeper_backoff_ms(UINT32_MAX, 1000), 30000);
	cr_assert_eq(vs_keeper_backoff_ms(9, 20), 160);
	cr_assert_eq(vs_keeper_backoff_ms(40, 0), 0);
}

Test(keeper, restart_info)
{
	const struct vs_restart_info *ri = vs_keep_restart_info();

	cr_assert_eq(ri->restarts, 0);
	cr_assert_eq(ri->at, 0);
	cr_assert_eq(vs_keep_restart_info_parse("12:7:2000"), 0);
	cr_assert_eq(ri->restarts, 12);
	cr_assert_eq(ri->streak, 7);
	cr_assert_eq(ri->delay_ms, 2000);
	cr_assert_gt(ri->at, 0);
	/* Refused, the last good one kept. */
	static const char *const bad[] = { "", "1", "1:1", "1:2:0", "0:0:0", "1:0:0", "1:1:30001",
					   "1:1:5x", "a:1:1", "-1:1:1", "1:1:1:1", "4294967296:1:1",
					   " 1:1:1", "1::1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(vs_keep_restart_info_parse(bad[i]), -EINVAL, "\"%s\"", bad[i]);
		cr_assert_eq(ri->restarts, 12, "\"%s\"", bad[i]);
	}
	cr_assert_eq(vs_keep_restart_info_parse("4294967295:1:30000"), 0);
	cr_assert_eq(ri->restarts, UINT32_MAX);
}
