/* SPDX-License-Identifier: BSD-3-Clause */
/* What the helper's side (keeper.c) and the keeper process (keeper_proc.c) share. */
#ifndef VS_KEEPER_INT_H
#define VS_KEEPER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <vmswap/env.h>

#define KEEP_MAX 1024
#define QUICK_RESTARTS 5     /* in a row without delay; then the backoff */
#define DELAY_BASE_MS 1000   /* 1 s, 2 s, 4 s ... */
#define DELAY_CAP_TIMES 30   /* ... up to 30 times the base */
#define STABLE_MS 60000      /* a helper up this long ends the streak */
#define DELAY_ENV VMSWAP_ENV_TEST_RESTART_DELAY_MS
#define DELAY_ENV_MAX VMSWAP_RESTART_DELAY_MAX_MS

/* One message on the keeper's socket, with the fd as SCM_RIGHTS for KEEP_ADD. */
enum { KEEP_ADD = 1, KEEP_FORGET = 2 };

struct keep_msg {
	uint32_t op;
	int32_t num;
};

/* A decimal number in [0, max] ending at @stop (then *end is past it); false otherwise. */
bool vs_keep_parse_u32(const char *s, const char **end, char stop, uint32_t max, uint32_t *out);

#endif
