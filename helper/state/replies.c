/* SPDX-License-Identifier: BSD-3-Clause */
/* The answers to commands, kept for status; see replies.h. */
#include <stdio.h>
#include <string.h>

#include "../sys/log.h"
#include "replies.h"

static struct vs_reply replies[VMSWAP_REPLIES_KEPT];
static int nreplies;

void vs_state_reply(const char *id, const char *command, bool ok, const char *msg)
{
	struct vs_reply *r;

	if (nreplies == VMSWAP_REPLIES_KEPT) {
		memmove(replies, replies + 1, sizeof(replies) - sizeof(replies[0]));
		nreplies--;
	}
	r = &replies[nreplies++];
	snprintf(r->id, sizeof(r->id), "%s", id ? id : "");
	snprintf(r->command, sizeof(r->command), "%s", command);
	r->ok = ok;
	snprintf(r->message, sizeof(r->message), "%s", msg);
	vs_log(ok ? VS_LOG_INFO : VS_LOG_WARN, "%s%s%s: %s", command, *r->id ? " id=" : "",
	       r->id, msg);
}

int vs_state_replies(const struct vs_reply **out)
{
	*out = replies;
	return nreplies;
}
