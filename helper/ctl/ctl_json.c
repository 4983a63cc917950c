/* SPDX-License-Identifier: BSD-3-Clause */
/* status.json reader; see ctl_json.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_json.h"
#include "vmswap/util.h"

/* Bounds that keep a hostile or corrupt file from costing much. */
#define VS_JSON_MAX_DEPTH 32
#define VS_STATUS_MAX_BYTES (1u << 20)

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* p at '"': past the closing quote, or NULL if unterminated. */
static const char *skip_str(const char *p)
{
	for (p++; *p; p++) {
		if (*p == '\\') {
			if (!*++p)
				return NULL;
		} else if (*p == '"') {
			return p + 1;
		}
	}
	return NULL;
}

static bool is_scalar_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '+' || c == '-' || c == '.';
}

/* Past the value at p (after whitespace), or NULL if malformed. */
static const char *skip_value(const char *p, int depth)
{
	const char *s;
	char close;

	p = ws(p);
	if (depth > VS_JSON_MAX_DEPTH)
		return NULL;
	if (*p == '"')
		return skip_str(p);
	if (*p != '{' && *p != '[') {
		for (s = p; is_scalar_char(*p); p++)
			;
		return p == s ? NULL : p;
	}
	close = *p == '{' ? '}' : ']';
	p = ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			if (*p != '"' || !(p = skip_str(p)))
				return NULL;
			p = ws(p);
			if (*p++ != ':')
				return NULL;
		}
		if (!(p = skip_value(p, depth + 1)))
			return NULL;
		p = ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
		p = ws(p);
	}
}

static bool key_is(const char *p, const char *key)
{
	size_t n = strlen(key);

	return !strncmp(p + 1, key, n) && p[1 + n] == '"';
}

/*
 * Find key in the object at obj: a direct member wins, else the first hit
 * in a nested object. *val points at the value (whitespace skipped).
 */
static int obj_find(const char *obj, const char *key, int depth, const char **val)
{
	const char *p = ws(obj), *nested = NULL, *v;

	if (*p != '{' || depth > VS_JSON_MAX_DEPTH)
		return -EINVAL;
	p = ws(p + 1);
	if (*p == '}')
		return -ENOENT;
	for (;;) {
		bool match;

		if (*p != '"')
			return -EINVAL;
		match = key_is(p, key);
		if (!(p = skip_str(p)))
			return -EINVAL;
		p = ws(p);
		if (*p++ != ':')
			return -EINVAL;
		v = ws(p);
		if (match) {
			*val = v;
			return 0;
		}
		if (*v == '{' && !nested) {
			int r = obj_find(v, key, depth + 1, &nested);

			if (r && r != -ENOENT)
				return r;
		}
		if (!(p = skip_value(v, depth + 1)))
			return -EINVAL;
		p = ws(p);
		if (*p == '}')
			break;
		if (*p++ != ',')
			return -EINVAL;
		p = ws(p);
	}
	if (!nested)
		return -ENOENT;
	*val = nested;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* \uXXXX at p (after the 'u') to UTF-8 in out; surrogates and NUL as '?'. */
static int utf8_escape(const char *p, char out[4], size_t *outn)
{
	unsigned cp = 0;

	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -EINVAL;
		cp = cp << 4 | (unsigned)h;
	}
	if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
		out[0] = '?';
		*outn = 1;
	} else if (cp < 0x80) {
		out[0] = (char)cp;
		*outn = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		*outn = 2;
	} else {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		*outn = 3;
	}
	return 0;
}

/* Decode the JSON string at p into buf (n > 0). */
static int str_decode(const char *p, char *buf, size_t n)
{
	size_t o = 0;
	bool full = false;

	if (*p != '"')
		return -EINVAL;
	for (p++; *p != '"'; p++) {
		char tmp[4];
		size_t tn = 1;

		if (!*p)
			return -EINVAL;
		tmp[0] = *p;
		if (*p == '\\') {
			switch (*++p) {
			case '"': case '\\': case '/': tmp[0] = *p; break;
			case 'b': tmp[0] = '\b'; break;
			case 'f': tmp[0] = '\f'; break;
			case 'n': tmp[0] = '\n'; break;
			case 'r': tmp[0] = '\r'; break;
			case 't': tmp[0] = '\t'; break;
			case 'u':
				if (utf8_escape(p + 1, tmp, &tn))
					return -EINVAL;
				p += 4;
				break;
			default:
				return -EINVAL;
			}
		}
		if (!full && o + tn < n) {
			memcpy(buf + o, tmp, tn);
			o += tn;
		} else {
			full = true;
		}
	}
	buf[o] = '\0';
	return full ? -ENOSPC : 0;
}

static bool is_end(char c)
{
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' ||
	       c == '\n' || c == '\r' || c == '\0';
}

static int u64_decode(const char *p, uint64_t *out)
{
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (!is_end(*p))
		return -EINVAL; /* fraction, exponent or junk */
	*out = v;
	return 0;
}

int vs_json_get_u64(const char *json, const char *key, uint64_t *out)
{
	const char *v;
	int r;

	if (!json || !key || !out)
		return -EINVAL;
	r = obj_find(json, key, 0, &v);
	return r ? r : u64_decode(v, out);
}

int vs_json_get_str(const char *json, const char *key, char *buf, size_t n)
{
	const char *v;
	int r;

	if (!json || !key || !buf || !n)
		return -EINVAL;
	r = obj_find(json, key, 0, &v);
	return r ? r : str_decode(v, buf, n);
}

static int bool_decode(const char *p, bool *out)
{
	if (!strncmp(p, "true", 4) && is_end(p[4]))
		*out = true;
	else if (!strncmp(p, "false", 5) && is_end(p[5]))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

int vs_json_get_bool(const char *json, const char *key, bool *out)
{
	const char *v;
	int r;

	if (!json || !key || !out)
		return -EINVAL;
	r = obj_find(json, key, 0, &v);
	return r ? r : bool_decode(v, out);
}

int vs_json_find_reply(const char *json, const char *id, bool *ok, char *msg, size_t n)
{
	const char *p, *hit = NULL, *v;
	bool okv;
	int r;

	if (!json || !id)
		return -EINVAL;
	r = obj_find(json, "replies", 0, &p);
	if (r)
		return r;
	if (*p != '[')
		return -EINVAL;
	p = ws(p + 1);
	while (*p != ']') {
		char got[VMSWAP_TOKEN_MAX + 2];

		if (*p == '{' && !obj_find(p, "id", 1, &v) &&
		    !str_decode(v, got, sizeof(got)) && !strcmp(got, id))
			hit = p; /* keep going: the newest is last */
		if (!(p = skip_value(p, 1)))
			return -EINVAL;
		p = ws(p);
		if (*p == ',')
			p = ws(p + 1);
		else if (*p != ']')
			return -EINVAL;
	}
	if (!hit)
		return -ENOENT;
	r = obj_find(hit, "ok", 1, &v);
	if (r || (r = bool_decode(v, &okv)))
		return r;
	if (ok)
		*ok = okv;
	if (msg && n) {
		r = obj_find(hit, "message", 1, &v);
		if (r == -ENOENT) {
			msg[0] = '\0';
			r = 0;
		} else if (!r) {
			r = str_decode(v, msg, n);
		}
		if (r == -ENOSPC)
			r = 0; /* a cut message is still the answer */
	}
	return r;
}

int vs_json_each_u64(const char *json, const char *obj_key, vs_json_u64_fn fn, void *arg)
{
	const char *p;
	int r;

	if (!json || !obj_key || !fn)
		return -EINVAL;
	r = obj_find(json, obj_key, 0, &p);
	if (r)
		return r;
	if (*p != '{')
		return -EINVAL;
	p = ws(p + 1);
	while (*p != '}') {
		char key[64];
		uint64_t val;
		int kr;

		if (*p != '"')
			return -EINVAL;
		kr = str_decode(p, key, sizeof(key));
		if (kr && kr != -ENOSPC)
			return kr;
		if (!(p = skip_str(p)))
			return -EINVAL;
		p = ws(p);
		if (*p++ != ':')
			return -EINVAL;
		p = ws(p);
		if (!u64_decode(p, &val) && (r = fn(key, val, arg)))
			return r;
		if (!(p = skip_value(p, 1)))
			return -EINVAL;
		p = ws(p);
		if (*p == ',')
			p = ws(p + 1);
		else if (*p != '}')
			return -EINVAL;
	}
	return 0;
}

/* One complete object and nothing after it (no NUL inside either). */
static bool is_whole(const char *s, size_t len)
{
	const char *end;

	if (strlen(s) != len || *ws(s) != '{')
		return false;
	end = skip_value(s, 0);
	return end && *ws(end) == '\0';
}

static int read_once(const char *path, char **out)
{
	struct stat st;
	size_t cap, len = 0;
	char *buf;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		r = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out_close;
	}
	if (st.st_size > VS_STATUS_MAX_BYTES) {
		r = -EFBIG;
		goto out_close;
	}
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out_close;
	}
	/* Read up to one byte past st_size to notice a file still growing. */
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (!r && (len != (size_t)st.st_size || !is_whole(buf, len)))
		r = -EBADMSG;
	if (r)
		free(buf);
	else
		*out = buf;
out_close:
	close(fd);
	return r;
}

int vs_status_read(int vmm_pid, char **json_out)
{
	char path[PATH_MAX];
	int r;

	if (!json_out || vmm_pid <= 0)
		return -EINVAL;
	r = vmswap_run_path(path, sizeof(path), vmm_pid, VMSWAP_STATUS_NAME);
	if (r)
		return r;
	r = read_once(path, json_out);
	if (r == -EBADMSG) {
		/* A writer that does not rename may be mid-write: once more. */
		struct timespec ts = { 0, 2 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		r = read_once(path, json_out);
	}
	return r;
}
