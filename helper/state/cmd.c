/* SPDX-License-Identifier: BSD-3-Clause */
/* Control-line parser; see cmd.h. Strict on purpose: it faces a FIFO. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const char *const vs_cmd_names[] = {
	[VS_CMD_ENABLE] = "enable",
	[VS_CMD_TRIM] = "trim",
	[VS_CMD_OUT] = "out",
	[VS_CMD_DISABLE] = "disable",
	[VS_CMD_STATUS] = "status",
};

#define VS_CMD_NVERBS (sizeof(vs_cmd_names) / sizeof(vs_cmd_names[0]))

const char *vs_cmd_name(enum vs_cmd_verb verb)
{
	if ((unsigned)verb >= VS_CMD_NVERBS)
		return "?";
	return vs_cmd_names[verb];
}

int vs_cmd_lookup(const char *name, size_t len, enum vs_cmd_verb *out)
{
	for (size_t i = 0; i < VS_CMD_NVERBS; i++) {
		if (strlen(vs_cmd_names[i]) == len && !memcmp(name, vs_cmd_names[i], len)) {
			*out = (enum vs_cmd_verb)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *vs_cmd_keep_name(enum vs_cmd_keep keep)
{
	return keep == VS_KEEP_GUEST ? "guest" : keep == VS_KEEP_SAVED ? "saved" : "";
}

int vs_cmd_keep_lookup(const char *name, size_t len, enum vs_cmd_keep *out)
{
	static const enum vs_cmd_keep vals[] = { VS_KEEP_GUEST, VS_KEEP_SAVED };

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		const char *s = vs_cmd_keep_name(vals[i]);

		if (strlen(s) == len && !memcmp(name, s, len)) {
			*out = vals[i];
			return 0;
		}
	}
	return -EINVAL;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* ASCII only: isalnum() would follow the locale. */
static bool is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/*
 * "<what> '<word>'" with the word cut to 32 bytes and non-printable bytes
 * shown as '?', so an error message never carries raw FIFO garbage.
 * Thread-local because the helper may parse on several threads.
 */
static const char *quote_err(const char *what, const char *word, size_t len)
{
	static _Thread_local char buf[96];
	char w[36];
	size_t n = len > 32 ? 32 : len;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)word[i];
		w[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (len > n) {
		memcpy(w + n, "...", 3);
		n += 3;
	}
	w[n] = '\0';
	snprintf(buf, sizeof(buf), "%s '%s'", what, w);
	return buf;
}

static int fail(const char **err, const char *msg)
{
	if (err)
		*err = msg;
	return -EINVAL;
}

int vs_cmd_parse(const char *line, size_t len, struct vs_cmd *out, const char **err)
{
	struct vs_cmd cmd = { .id = "", .keep = VS_KEEP_NONE };
	bool have_id = false, have_keep = false;
	size_t i, w;

	if (!line || !out)
		return fail(err, "no line");
	if (len > VMSWAP_CMD_MAX)
		return fail(err, "line too long");
	if (memchr(line, '\0', len))
		return fail(err, "NUL byte in line");
	if (len && line[len - 1] == '\n') {
		len--;
		if (len && line[len - 1] == '\r')
			len--;
	}
	if (!len)
		return fail(err, "empty line");
	if (is_blank(line[0]))
		return fail(err, "leading whitespace");

	for (w = 0; w < len && !is_blank(line[w]); w++)
		;
	if (vs_cmd_lookup(line, w, &cmd.verb))
		return fail(err, quote_err("unknown command", line, w));

	/* Here line[w] is the single blank before the next word. */
	for (i = w; i < len; i = w) {
		size_t tok;

		i++;
		if (i == len)
			return fail(err, "trailing whitespace");
		if (is_blank(line[i]))
			return fail(err, "extra whitespace");
		for (w = i; w < len && !is_blank(line[w]); w++)
			;
		if (w - i >= 5 && !memcmp(line + i, "keep=", 5)) {
			if (have_keep)
				return fail(err, "duplicate keep");
			if (cmd.verb != VS_CMD_DISABLE)
				return fail(err, "keep= only goes with disable");
			if (vs_cmd_keep_lookup(line + i + 5, w - i - 5, &cmd.keep))
				return fail(err, quote_err("keep= takes guest or saved, not",
							   line + i + 5, w - i - 5));
			have_keep = true;
			continue;
		}
		if (w - i < 3 || memcmp(line + i, "id=", 3))
			return fail(err, quote_err("unknown argument", line + i, w - i));
		if (have_id)
			return fail(err, "duplicate id");
		tok = w - i - 3;
		if (tok < 1 || tok > VMSWAP_TOKEN_MAX)
			return fail(err, "bad id token");
		for (size_t k = i + 3; k < w; k++)
			if (!is_token_char(line[k]))
				return fail(err, "bad id token");
		memcpy(cmd.id, line + i + 3, tok);
		cmd.id[tok] = '\0';
		have_id = true;
	}
	*out = cmd;
	return 0;
}
