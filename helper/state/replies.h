/* SPDX-License-Identifier: BSD-3-Clause */
/* The last VMSWAP_REPLIES_KEPT answers to commands, for status.json. vs.lock held. */
#ifndef VS_REPLIES_H
#define VS_REPLIES_H

#include <stdbool.h>

#include <vmswap/common.h>

struct vs_reply {
	char id[VMSWAP_TOKEN_MAX + 1];
	char command[16];
	bool ok;
	char message[256];
};

/* Record an answer (and log it). */
void vs_state_reply(const char *id, const char *command, bool ok, const char *msg);
/* Kept answers, oldest first; returns how many. */
int vs_state_replies(const struct vs_reply **out);

#endif
