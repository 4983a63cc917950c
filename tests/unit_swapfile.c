/* SPDX-License-Identifier: BSD-3-Clause */
/* The swap file's test hooks: their syntax and the reads they fail. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmswap/util.h>

#include "../helper/model/helper.h"
#include "../helper/sys/swapfile.h"
#include "unit_fixture.h"

Test(swapfile, fail_range_syntax)
{
	uint64_t a = 7, c = 7;

	cr_assert_eq(vmswap_parse_fail_range("0:1", &a, &c), 0);
	cr_assert(a == 0 && c == 1);
	cr_assert_eq(vmswap_parse_fail_range("12:300", &a, &c), 0);
	cr_assert(a == 12 && c == 300);
	a = c = 7;
	cr_assert_eq(vmswap_parse_fail_range("3", &a, &c), -EINVAL);
	cr_assert_eq(vmswap_parse_fail_range("3:", &a, &c), -EINVAL);
	cr_assert_eq(vmswap_parse_fail_range(":3", &a, &c), -EINVAL);
	cr_assert_eq(vmswap_parse_fail_range("3:0", &a, &c), -EINVAL, "COUNT 0 fails nothing");
	cr_assert_eq(vmswap_parse_fail_range("3:4x", &a, &c), -EINVAL);
	cr_assert_eq(vmswap_parse_fail_range("-1:4", &a, &c), -EINVAL);
	cr_assert_eq(vmswap_parse_fail_range("3:99999999999999999999", &a, &c), -ERANGE);
	cr_assert(a == 7 && c == 7, "untouched on error");
	cr_assert_eq(vmswap_parse_count("0", NULL, &a), 0);
	cr_assert_eq(vmswap_parse_count("2x", NULL, &a), -EINVAL);
	cr_assert_eq(vmswap_parse_count("", NULL, &a), -EINVAL);
}

Test(swapfile, bad_hook_values_are_refused)
{
	cr_assert_eq(setenv("VMSWAP_TEST_FAIL_READS", "5", 1), 0);
	cr_assert_eq(vs_swapfile_init_faults(), -EINVAL);
	cr_assert_eq(setenv("VMSWAP_TEST_FAIL_READS", "5:1", 1), 0);
	cr_assert_eq(setenv("VMSWAP_TEST_FAIL_WRITE_AFTER", "two", 1), 0);
	cr_assert_eq(vs_swapfile_init_faults(), -EINVAL);
	cr_assert_eq(setenv("VMSWAP_TEST_FAIL_WRITE_AFTER", "2", 1), 0);
	cr_assert_eq(vs_swapfile_init_faults(), 0);
}

/* AFTER:COUNT fails exactly reads AFTER..AFTER+COUNT-1, then reads work again. */
Test(swapfile, failed_reads_are_transient)
{
	static uint8_t buf[VS_PAGE_SIZE] __attribute__((aligned(4096)));

	unit_setup_obj("unit-swapfile", 16);
	memset(buf, 0x5a, sizeof(buf));
	cr_assert_eq(vs_swapfile_write(vs.swap.fd, 3, buf, 1), 0);
	cr_assert_eq(setenv("VMSWAP_TEST_FAIL_READS", "2:3", 1), 0);
	cr_assert_eq(vs_swapfile_init_faults(), 0);
	for (int i = 0; i < 8; i++) {
		int want = i >= 2 && i < 5 ? -EIO : 0;

		memset(buf, 0, sizeof(buf));
		cr_assert_eq(vs_swapfile_read(vs.swap.fd, 3, buf, 1), want, "read %d", i);
		if (!want)
			cr_assert_eq(buf[VS_PAGE_SIZE - 1], 0x5a, "read %d", i);
	}
	cr_assert_eq(vs_swapfile_read_errors(), 3);
}
