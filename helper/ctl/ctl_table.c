/* SPDX-License-Identifier: BSD-3-Clause */
/* The human-readable form of status.json. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "ctl_common.h"
#include "ctl_json.h"
#include "vmswap/proto.h"

#define MIB (1024.0 * 1024.0)

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

static void row(FILE *f, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void row(FILE *f, const char *label, const char *fmt, ...)
{
	va_list ap;

	fprintf(f, "%-18s", label);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/* Metrics are listed generically so new ones show up without a change here. */
static int metric_row(const char *key, uint64_t v, void *arg)
{
	FILE *f = arg;
	unsigned long long u = (unsigned long long)v;

	if (ends_with(key, "_pages"))
		fprintf(f, "  %-28s %14llu  (%.1f MiB)\n", key, u,
			(double)v * VMSWAP_PAGE_SIZE / MIB);
	else if (ends_with(key, "_bytes"))
		fprintf(f, "  %-28s %14llu  (%.1f MiB)\n", key, u, (double)v / MIB);
	else
		fprintf(f, "  %-28s %14llu\n", key, u);
	return 0;
}

/* A string member, made printable, or "-" when absent or empty. */
static const char *str_or_dash(const char *json, const char *key, char *buf, size_t n)
{
	int r = vs_json_get_str(json, key, buf, n);

	if ((r && r != -ENOSPC) || !buf[0])
		return "-";
	vs_ctl_oneline(buf);
	return buf;
}

void vs_ctl_print_table(FILE *f, const char *json, pid_t helper_pid, bool alive)
{
	char buf[512];
	uint64_t a, b;
	bool managed, sandboxed;

	if (!vs_json_get_u64(json, "vmm_pid", &a))
		row(f, "VMM pid", "%llu", (unsigned long long)a);
	if (helper_pid > 0)
		row(f, "helper pid", "%d (%s)", (int)helper_pid, alive ? "running" : "not running");
	else
		row(f, "helper pid", "- (not running)");
	row(f, "state", "%s", str_or_dash(json, "state", buf, sizeof(buf)));
	if (vs_json_get_bool(json, "managed", &managed))
		row(f, "managed", "?");
	else if (managed)
		row(f, "managed", "yes");
	else
		row(f, "managed", "no (%s)", str_or_dash(json, "reason", buf, sizeof(buf)));
	if (!vs_json_get_bool(json, "seccomp", &sandboxed) && sandboxed &&
	    !vs_json_get_u64(json, "seccomp_syscalls", &a))
		row(f, "sandbox", "seccomp allowlist of %llu syscalls", (unsigned long long)a);
	else if (!vs_json_get_bool(json, "seccomp", &sandboxed))
		row(f, "sandbox", "off");

	fprintf(f, "metrics\n");
	if (vs_json_each_u64(json, "metrics", metric_row, f))
		fprintf(f, "  (none)\n");

	if (!vs_json_get_u64(json, "pages", &a) && !vs_json_get_u64(json, "time_ms", &b))
		row(f, "state transition", "%llu pages (%.1f MiB) in %llu ms",
		    (unsigned long long)a, (double)a * VMSWAP_PAGE_SIZE / MIB,
		    (unsigned long long)b);
	else
		row(f, "state transition", "-");
	if (!vs_json_get_u64(json, "done", &a) && !vs_json_get_u64(json, "total", &b) && b)
		row(f, "progress", "%llu / %llu (%.0f%%)", (unsigned long long)a,
		    (unsigned long long)b, 100.0 * (double)a / (double)b);
	else
		row(f, "progress", "-");
	row(f, "last error", "%s", str_or_dash(json, "last_error", buf, sizeof(buf)));
}
