/* SPDX-License-Identifier: BSD-3-Clause */
/* vmswapctl: command line parsing and dispatch. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"
#include "vmswap/common.h"
#include "vmswap/version.h"

static const char vs_ctl_usage[] =
	"Usage: vmswapctl [-p PID | -n NAME] [--timeout S] COMMAND [OPTIONS]\n"
	"Swap an idle VM's guest memory out to a file, through its vmswap helper.\n"
	"\n"
	"Commands:\n"
	"  enable [--timeout S]           move guest memory to staging (state Pending);\n"
	"                                 returns when done\n"
	"  trim [--wait] [--timeout S]    drop zero and clean pages (from Pending)\n"
	"  out [--wait] [--timeout S]     write staging to the swap file (from Pending)\n"
	"  disable [--wait] [--timeout S] swap everything back in and return to Ready\n"
	"    [--keep=guest|saved]         for pages held twice (README \"Double copies\"):\n"
	"                                 keep guest memory's bytes, or the saved copy\n"
	"  status [--json] [--timeout S]  show state, metrics, progress and last error\n"
	"  list [--timeout S]             one line per VMM under the run directories\n"
	"\n"
	"Options:\n"
	"  -p, --pid PID   the VMM's pid; may be left out when only one VMM is listed\n"
	"  -n, --name NAME the VMM named NAME (QEMU -name guest=NAME, as libvirt names it)\n"
	"  --wait          after the helper accepted the command, wait until it finished\n"
	"  --timeout S     give up after S seconds, reply and --wait included (default 600);\n"
	"                  any command takes it, before or after the command\n"
	"  --json          print status.json exactly as the helper published it\n"
	"  -h, --help      show this help\n"
	"  --version       print the version\n"
	"\n"
	"Environment:\n"
	"  " VMSWAP_ENV_RUN_DIR "  run directory root (default " VMSWAP_DEFAULT_RUN_DIR_ROOT
	" for root,\n"
	"                  else $XDG_RUNTIME_DIR/" VMSWAP_RUN_SUBDIR "); without it, VMMs whose\n"
	"                  helper vmswapd started are found in " VMSWAP_DEFAULT_RUN_DIR_ROOT " too\n"
	"\n"
	"Exit status:\n"
	"  0 ok   1 refused by the helper   2 usage error\n"
	"  3 no such VMM, helper not running or no run directory\n"
	"  4 timeout   5 the operation ended in state Failed\n";

enum ctl_action { ACT_NONE, ACT_VERB, ACT_LIST, ACT_HELP };

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vmswapctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'vmswapctl --help'.\n", stderr);
	return VS_EXIT_USAGE;
}

/*
 * Match argv[*i] against -x / --long, taking the value from "-xV",
 * "--long=V" or the next argument. 1 matched, 0 not this option,
 * -1 value missing.
 */
static int opt_value(int argc, char **argv, int *i, const char *sopt, const char *lopt,
		     const char **val)
{
	const char *a = argv[*i];
	size_t ll = strlen(lopt);

	if (sopt && !strncmp(a, sopt, 2) && a[2]) {
		*val = a + 2;
		return 1;
	}
	if (!strncmp(a, lopt, ll) && a[ll] == '=') {
		*val = a + ll + 1;
		return 1;
	}
	if ((!sopt || strcmp(a, sopt)) && strcmp(a, lopt))
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

static int parse_pid_arg(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX || s[0] == '+' || s[0] == ' ')
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Plain decimal seconds ("30", "0.5"): no sign, space, exponent or hex. */
static int parse_timeout(const char *s, double *out)
{
	size_t digits = strspn(s, "0123456789"), len = digits;
	char *end;
	double v;

	if (s[len] == '.')
		len += 1 + strspn(s + len + 1, "0123456789");
	if (s[len] || len == (s[digits] == '.')) /* trailing junk, or no digit */
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	/* Upper bound keeps deadline arithmetic exact enough to matter. */
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 1e9)
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct vs_ctl_opts o = { .timeout_s = VS_CTL_DEFAULT_TIMEOUT_S };
	enum ctl_action act = ACT_NONE;
	bool have_pid = false;
	const char *cmd = NULL, *name = NULL;

	/* A helper closing the FIFO under us must give EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val;
		int m;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			act = ACT_HELP;
			break;
		}
		if (!strcmp(a, "--version")) {
			printf("vmswapctl %s\n", VMSWAP_VERSION);
			return VS_EXIT_OK;
		}
		if ((m = opt_value(argc, argv, &i, "-p", "--pid", &val))) {
			if (m < 0)
				return usage_error("%s needs a PID", a);
			if (parse_pid_arg(val, &o.pid))
				return usage_error("bad pid '%s'", val);
			have_pid = true;
		} else if ((m = opt_value(argc, argv, &i, "-n", "--name", &val))) {
			if (m < 0 || !*val)
				return usage_error("%s needs a NAME", a);
			name = val;
		} else if ((m = opt_value(argc, argv, &i, NULL, "--timeout", &val))) {
			if (m < 0)
				return usage_error("--timeout needs a number of seconds");
			if (parse_timeout(val, &o.timeout_s))
				return usage_error("bad --timeout '%s': want seconds, more than 0 "
						   "(e.g. 30 or 0.5)", val);
		} else if (!strcmp(a, "--wait")) {
			o.wait = true;
		} else if (!strcmp(a, "--json")) {
			o.json = true;
		} else if ((m = opt_value(argc, argv, &i, NULL, "--keep", &val))) {
			if (m < 0 || vs_cmd_keep_lookup(val, strlen(val), &o.keep))
				return usage_error("--keep takes guest or saved");
		} else if (a[0] == '-' && a[1]) {
			return usage_error("unknown option '%s'", a);
		} else if (cmd) {
			return usage_error("unexpected argument '%s' after '%s'", a, cmd);
		} else {
			cmd = a;
		}
	}
	if (act == ACT_HELP || (cmd && !strcmp(cmd, "help"))) {
		fputs(vs_ctl_usage, stdout);
		return VS_EXIT_OK;
	}
	if (!cmd)
		return usage_error("no command given");
	if (!strcmp(cmd, "list"))
		act = ACT_LIST;
	else if (!vs_cmd_lookup(cmd, strlen(cmd), &o.verb))
		act = ACT_VERB;
	else
		return usage_error("unknown command '%s'", cmd);

	if (act == ACT_LIST) {
		/* Nothing in list waits: --timeout is accepted, as everywhere. */
		if (have_pid || name || o.wait || o.json || o.keep)
			return usage_error("list takes no options but --timeout");
		return vs_ctl_list();
	}
	if (have_pid && name)
		return usage_error("give -p PID or -n NAME, not both");
	if (o.json && o.verb != VS_CMD_STATUS)
		return usage_error("--json only applies to status");
	if (o.keep && o.verb != VS_CMD_DISABLE)
		return usage_error("--keep only applies to disable");
	vs_ctl_send_keep(o.keep);
	if (name) {
		int rc = vs_ctl_find_name(name, &o.pid);

		if (rc)
			return rc;
	}
	if (o.verb == VS_CMD_STATUS) {
		if (o.wait)
			return usage_error("status takes only --json and --timeout");
		return vs_ctl_status(&o);
	}
	/* --wait on enable is accepted: enable always waits for completion. */
	return vs_ctl_run(&o);
}
