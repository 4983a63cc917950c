/* SPDX-License-Identifier: BSD-3-Clause */
/* The control-line parser shared by the helper and vmswapctl. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../helper/state/cmd.h"

static int parse(const char *s, struct vs_cmd *c)
{
	return vs_cmd_parse(s, strlen(s), c, NULL);
}

Test(cmd, accepts_every_verb_with_and_without_id)
{
	static const char *const verbs[] = { "enable", "trim", "out", "disable", "status" };
	struct vs_cmd c;
	char line[64];

	for (int i = 0; i < 5; i++) {
		snprintf(line, sizeof(line), "%s\n", verbs[i]);
		cr_assert_eq(parse(line, &c), 0, "%s", line);
		cr_assert_eq((int)c.verb, i);
		cr_assert_str_eq(c.id, "");
		snprintf(line, sizeof(line), "%s id=42-7.x_Y\r\n", verbs[i]);
		cr_assert_eq(parse(line, &c), 0, "%s", line);
		cr_assert_str_eq(c.id, "42-7.x_Y");
		cr_assert_str_eq(vs_cmd_name(c.verb), verbs[i]);
	}
	cr_assert_eq(parse("out\tid=a", &c), 0, "tab separator, no newline");
	cr_assert_eq(c.verb, VS_CMD_OUT);
}

Test(cmd, disable_takes_keep_in_any_order)
{
	struct vs_cmd c;

	cr_assert_eq(parse("disable\n", &c), 0);
	cr_assert_eq(c.keep, VS_KEEP_NONE);
	cr_assert_eq(parse("disable keep=guest\n", &c), 0);
	cr_assert_eq(c.verb, VS_CMD_DISABLE);
	cr_assert_eq(c.keep, VS_KEEP_GUEST);
	cr_assert_str_eq(c.id, "");
	cr_assert_eq(parse("disable keep=saved id=7-1\n", &c), 0);
	cr_assert_eq(c.keep, VS_KEEP_SAVED);
	cr_assert_str_eq(c.id, "7-1");
	cr_assert_eq(parse("disable id=7-2\tkeep=guest\r\n", &c), 0);
	cr_assert_eq(c.keep, VS_KEEP_GUEST);
	cr_assert_str_eq(c.id, "7-2");
	cr_assert_str_eq(vs_cmd_keep_name(VS_KEEP_SAVED), "saved");
	cr_assert_str_eq(vs_cmd_keep_name(VS_KEEP_NONE), "");
}

Test(cmd, rejects_bad_keep)
{
	static const char *const bad[] = {
		"disable keep=\n", "disable keep=both\n", "disable keep=guests\n",
		"disable keep=Guest\n", "disable keep=guest keep=saved\n",
		"disable keep=guest keep=guest\n", "enable keep=guest\n", "out keep=saved\n",
		"status keep=guest\n", "disable keep\n", "disable keep=guest  id=a\n",
		"disable keep=gu\x01st\n",
	};
	struct vs_cmd c = { .verb = VS_CMD_STATUS, .id = "keep", .keep = VS_KEEP_SAVED };
	const char *err;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		cr_assert_eq(vs_cmd_parse(bad[i], strlen(bad[i]), &c, &err), -EINVAL, "'%s'", bad[i]);
		cr_assert(err && *err, "an error message for '%s'", bad[i]);
		for (const char *p = err; *p; p++)
			cr_assert(*p >= 0x20 && *p < 0x7f, "printable error for '%s'", bad[i]);
		cr_assert_eq(c.keep, VS_KEEP_SAVED, "untouched on error");
	}
	err = NULL;
	vs_cmd_parse("enable keep=guest", 17, &c, &err);
	cr_assert_str_eq(err, "keep= only goes with disable");
}

Test(cmd, rejects_malformed_lines)
{
	static const char *const bad[] = {
		"", "\n", "foo\n", "enable id=\n", "enable id=bad!\n", "enable id=a id=b\n",
		"enable extra\n", " enable\n", "enable  id=a\n", "ENABLE\n", "enable id\n",
		"enable id=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", /* 33 chars */
		"enable\n\n", "enable\nout\n",
	};
	struct vs_cmd c = { .verb = VS_CMD_STATUS, .id = "keep" };
	const char *err;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		cr_assert_eq(vs_cmd_parse(bad[i], strlen(bad[i]), &c, &err), -EINVAL, "'%s'", bad[i]);
		cr_assert(err && *err, "an error message for '%s'", bad[i]);
		cr_assert_str_eq(c.id, "keep", "untouched on error");
	}
}

Test(cmd, rejects_nul_and_overlong_lines)
{
	char line[2 * VMSWAP_CMD_MAX];
	struct vs_cmd c;

	cr_assert_eq(vs_cmd_parse("out\0x\n", 6, &c, NULL), -EINVAL, "embedded NUL");
	memset(line, 'a', sizeof(line));
	memcpy(line, "enable id=", 10);
	cr_assert_eq(vs_cmd_parse(line, sizeof(line), &c, NULL), -EINVAL);
	for (int b = 1; b < 256; b++) {
		char one[8] = "trim";

		one[4] = (char)b;
		/* Only the line ends may follow a verb directly. */
		int r = vs_cmd_parse(one, 5, &c, NULL);
		cr_assert_eq(r, b == '\n' ? 0 : -EINVAL, "byte %d", b);
	}
}
