/* SPDX-License-Identifier: BSD-3-Clause */
/* Size parsing used for VMSWAP_MIN_SIZE and toyvmm --size. */
#include <criterion/criterion.h>
#include <errno.h>

#include <vmswap/util.h>

Test(size, parses_suffixes)
{
	uint64_t v;

	cr_assert_eq(vmswap_parse_size("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(vmswap_parse_size("64M", &v), 0);
	cr_assert_eq(v, 64ull << 20);
	cr_assert_eq(vmswap_parse_size("512k", &v), 0);
	cr_assert_eq(v, 512ull << 10);
	cr_assert_eq(vmswap_parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(vmswap_parse_size("1TB", &v), 0);
	cr_assert_eq(v, 1ull << 40);
}

Test(size, rejects_garbage)
{
	uint64_t v = 77;

	cr_assert_eq(vmswap_parse_size("12Q", &v), -EINVAL);
	cr_assert_eq(vmswap_parse_size("", &v), -EINVAL);
	cr_assert_eq(vmswap_parse_size("-1M", &v), -EINVAL);
	cr_assert_eq(vmswap_parse_size("M", &v), -EINVAL);
	cr_assert_eq(vmswap_parse_size("1M ", &v), -EINVAL);
	cr_assert_eq(vmswap_parse_size(NULL, &v), -EINVAL);
	cr_assert_eq(vmswap_parse_size("99999999999999999999", &v), -ERANGE);
	cr_assert_eq(vmswap_parse_size("99999999999T", &v), -ERANGE);
	cr_assert_eq(v, 77, "untouched on error");
}
