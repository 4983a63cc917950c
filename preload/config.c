/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Environment settings. An empty variable counts as unset, as in
 * vmswap_run_root(). Every VMSWAP_* setting is checked here, the
 * helper's and the test hooks' too (the helper gets them from us and
 * only ignores what it cannot use): the first bad value is reported, once,
 * and makes the shim pass everything through. VMSWAP_DISABLE=1 wins over
 * everything else.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <vmswap/common.h>
#include <vmswap/env.h>
#include <vmswap/svc.h>
#include <vmswap/util.h>
#include <vmswap/version.h>

#include "config.h"
#include "log.h"

struct shim_config shim_cfg = {
	.min_size = VMSWAP_DEFAULT_MIN_SIZE,
	.join_timeout_ms = VMSWAP_DEFAULT_JOIN_TIMEOUT_S * 1000ull,
	.anon = true,
};

/* Longest "/<pid>/shim.sock" tail; the run dir must leave room for it. */
#define SOCK_TAIL_MAX (sizeof("/4194304/") - 1 + sizeof(VMSWAP_SOCK_NAME) - 1)

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/*
 * One line, with control bytes escaped and the value cut short. A program
 * this one execs gets the marker, and stays quiet about the same variable
 * (init runs in our constructor, before the VMM has threads, so setenv is
 * safe here).
 */
static int bad(const char *var, const char *val, const char *why)
{
	const char *done = getenv(VMSWAP_ENV_BAD_REPORTED);
	char shown[4 * VMSWAP_ENV_SHOW_MAX + 4];

	shim_cfg.unmanaged = true;
	if (done && !strcmp(done, var))
		return -EINVAL;
	shim_log(SHIM_LOG_ERROR, "bad %s=\"%s\": %s; running unmanaged",
		 var, vmswap_env_show(val, shown, sizeof(shown)), why);
	setenv(VMSWAP_ENV_BAD_REPORTED, var, 1);
	return -EINVAL;
}

/* @name, when set, must be "0" or "1"; *@out gets it. */
static int check_switch(const char *name, bool *out)
{
	const char *v = env(name);
	bool dummy;

	if (v && vmswap_parse_switch(v, out ? out : &dummy))
		return bad(name, v, "expected 0 or 1");
	return 0;
}

static int parse_level(const char *v)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(v, names[i]))
			return (int)i;
	return -EINVAL;
}

/* Absolute form of @path into @out when it exists, else @path as given. */
static void absolute(const char *path, char *out, size_t n)
{
	char buf[PATH_MAX];

	snprintf(out, n, "%s", realpath(path, buf) ? buf : path);
}

/*
 * vmswap-helper next to libvmswap.so (a build tree), else where make
 * install puts it. Resolved now, so a later chdir() of the VMM does not
 * matter. Without a directory, posix_spawnp searches PATH.
 */
static void default_helper(char *out, size_t n)
{
	char lib[PATH_MAX];
	const char *slash;
	Dl_info info;

	if (!dladdr((void *)shim_config_load, &info) || !info.dli_fname ||
	    !strchr(info.dli_fname, '/')) {
		snprintf(out, n, "%s", VMSWAP_HELPER_NAME);
		return;
	}
	absolute(info.dli_fname, lib, sizeof(lib));
	slash = strrchr(lib, '/');
	snprintf(out, n, "%.*s/%s", (int)(slash - lib), lib, VMSWAP_HELPER_NAME);
	if (access(out, X_OK))
		snprintf(out, n, "%s", VMSWAP_INSTALLED_HELPER);
}

/* VMSWAP_SERVICE_SOCKET: a path, "none", or unset for the default. */
static int load_service(void)
{
	const char *v = env(VMSWAP_ENV_SERVICE_SOCKET);

	if (v && !strcmp(v, "none")) {
		shim_cfg.service[0] = 0;
		return 0;
	}
	if (v && v[0] != '/')
		return bad(VMSWAP_ENV_SERVICE_SOCKET, v, "not an absolute path or none");
	if (v && strlen(v) >= sizeof(shim_cfg.service))
		return bad(VMSWAP_ENV_SERVICE_SOCKET, v, "path too long");
	snprintf(shim_cfg.service, sizeof(shim_cfg.service), "%s",
		 v ? v : VMSWAP_DEFAULT_SERVICE_SOCKET);
	return 0;
}

static int check_dir(const char *var, size_t max)
{
	const char *v = env(var);

	if (!v)
		return 0;
	if (v[0] != '/')
		return bad(var, v, "not an absolute path");
	if (strlen(v) > max)
		return bad(var, v, "path too long");
	return 0;
}

int shim_config_load(void)
{
	uint64_t u;
	const char *v;
	int r;

	if ((r = check_switch(VMSWAP_ENV_DISABLE, &shim_cfg.disabled)) || shim_cfg.disabled)
		return r;
	if ((v = env(VMSWAP_ENV_LOG))) {
		r = parse_level(v);
		if (r < 0)
			return bad(VMSWAP_ENV_LOG, v,
				   "expected error, warn, info or debug");
		shim_log_level = r;
	}
	if ((v = env(VMSWAP_ENV_MIN_SIZE))) {
		r = vmswap_parse_size(v, &shim_cfg.min_size);
		if (r == -ERANGE)
			return bad(VMSWAP_ENV_MIN_SIZE, v, "too large");
		if (r)
			return bad(VMSWAP_ENV_MIN_SIZE, v,
				   "not a size (e.g. 64M, 512K, 1G)");
	}
	if ((v = env(VMSWAP_ENV_MATCH))) {
		if (strlen(v) >= sizeof(shim_cfg.match))
			return bad(VMSWAP_ENV_MATCH, v, "pattern too long");
		strcpy(shim_cfg.match, v);
	}
	if ((r = check_switch(SHIM_ENV_ANON, &shim_cfg.anon)))
		return r;
	if ((v = env(VMSWAP_ENV_PREFETCH)) && strcmp(v, "off") && strcmp(v, "working-set"))
		return bad(VMSWAP_ENV_PREFETCH, v, "expected off or working-set");
	if ((v = env(VMSWAP_ENV_STAGING)) && strcmp(v, "in-place") && strcmp(v, "copy"))
		return bad(VMSWAP_ENV_STAGING, v, "expected in-place or copy");
	if ((v = env(VMSWAP_ENV_FAULT_IO)) && strcmp(v, "auto") && strcmp(v, "io_uring") &&
	    strcmp(v, "threads"))
		return bad(VMSWAP_ENV_FAULT_IO, v, "expected auto, io_uring or threads");
	if ((v = env(VMSWAP_ENV_JOIN_TIMEOUT))) {
		uint64_t s;

		if (vmswap_parse_count(v, NULL, &s) || !s || s > VMSWAP_MAX_JOIN_TIMEOUT_S)
			return bad(VMSWAP_ENV_JOIN_TIMEOUT, v, "expected seconds, 1 to 3600");
		shim_cfg.join_timeout_ms = s * 1000;
	}
	/* Read by the helper; checked here so that a typo cannot weaken it. */
	if ((r = check_switch(VMSWAP_ENV_SECCOMP, NULL)) ||
	    (r = check_switch(VMSWAP_ENV_WAKE_SWAPIN, NULL)) ||
	    (r = check_switch(VMSWAP_ENV_PRECOPY, NULL)) ||
	    (r = check_switch(VMSWAP_ENV_HEADROOM_CHECK, NULL)))
		return r;
	if ((r = check_dir(VMSWAP_ENV_SWAP_DIR, PATH_MAX - 1)))
		return r;
	/* shim.sock lives under it and must fit a sockaddr_un. */
	if ((r = check_dir(VMSWAP_ENV_RUN_DIR,
			   sizeof(((struct sockaddr_un *)0)->sun_path) - 1 -
				   SOCK_TAIL_MAX)))
		return r;
	if ((v = env(VMSWAP_ENV_HELPER))) {
		if (strlen(v) >= sizeof(shim_cfg.helper))
			return bad(VMSWAP_ENV_HELPER, v, "path too long");
		if (strchr(v, '/'))
			absolute(v, shim_cfg.helper, sizeof(shim_cfg.helper));
		else
			strcpy(shim_cfg.helper, v);
	} else {
		default_helper(shim_cfg.helper, sizeof(shim_cfg.helper));
	}
	if ((r = check_switch(VMSWAP_ENV_TEST_NO_UFFD, &shim_cfg.no_uffd)) ||
	    (r = load_service()))
		return r;
	/* The helper's hooks: checked here, so a typo cannot pass silently. */
	if ((v = env(VMSWAP_ENV_TEST_FAIL_WRITE_AFTER)) &&
	    vmswap_parse_count(v, NULL, &(uint64_t){ 0 }))
		return bad(VMSWAP_ENV_TEST_FAIL_WRITE_AFTER, v, "expected a count");
	if ((v = env(VMSWAP_ENV_TEST_FAIL_READS)) &&
	    vmswap_parse_fail_range(v, &(uint64_t){ 0 }, &(uint64_t){ 0 }))
		return bad(VMSWAP_ENV_TEST_FAIL_READS, v, "expected AFTER:COUNT, COUNT at least 1");
	if ((v = env(VMSWAP_ENV_TEST_OP_DELAY_MS)) && vmswap_parse_op_delay(v, &(unsigned){ 0 }))
		return bad(VMSWAP_ENV_TEST_OP_DELAY_MS, v, "expected 0 to 10000 (ms)");
	if ((v = env(VMSWAP_ENV_TEST_RESTART_DELAY_MS)) &&
	    (vmswap_parse_count(v, NULL, &u) || u > VMSWAP_RESTART_DELAY_MAX_MS))
		return bad(VMSWAP_ENV_TEST_RESTART_DELAY_MS, v, "expected 0 to 1000 (ms)");
	shim_log(SHIM_LOG_DEBUG, "config: min size %llu, match \"%s\", anon %d, "
		 "helper %s", (unsigned long long)shim_cfg.min_size,
		 shim_cfg.match, shim_cfg.anon, shim_cfg.helper);
	return 0;
}
