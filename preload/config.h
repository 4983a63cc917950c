/* SPDX-License-Identifier: BSD-3-Clause */
/* The shim's settings, read once from the environment. */
#ifndef SHIM_CONFIG_H
#define SHIM_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

/* Not in vmswap/common.h yet: only the shim reads it. */
#define SHIM_ENV_ANON "VMSWAP_ANON"

struct shim_config {
	bool disabled;     /* VMSWAP_DISABLE=1: do nothing at all */
	bool unmanaged;    /* a bad value was reported: pass everything through */
	bool no_uffd;      /* VMSWAP_TEST_NO_UFFD=1 */
	bool anon;         /* VMSWAP_ANON: take anonymous guest memory too */
	uint64_t min_size; /* smallest mapping treated as guest memory */
	uint64_t join_timeout_ms; /* VMSWAP_JOIN_TIMEOUT: a fork child's wait to join */
	char match[256];   /* fnmatch glob on the memfd name; "" = any */
	char helper[PATH_MAX];
	char service[108]; /* vmswapd's socket; "" with VMSWAP_SERVICE_SOCKET=none */
};

extern struct shim_config shim_cfg;

/*
 * Fill shim_cfg from the environment. A bad value is logged once and sets
 * shim_cfg.unmanaged; returns 0 or -EINVAL.
 */
int shim_config_load(void);

#endif
