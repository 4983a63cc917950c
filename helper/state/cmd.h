/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The commands the state machine takes: their names, and the control-line
 * parser shared by vmswap-helper (reading its control FIFO) and vmswapctl.
 * The grammar is in include/vmswap/common.h:
 *   <verb>[ keep=guest|keep=saved][ id=<token>]['\r']['\n']
 * with exactly one space or tab between words and nothing else. The
 * arguments come in any order, each at most once; keep= only with disable.
 */
#ifndef VS_CMD_H
#define VS_CMD_H

#include <stddef.h>

#include "vmswap/common.h"

#include "../model/keep.h"

enum vs_cmd_verb { VS_CMD_ENABLE, VS_CMD_TRIM, VS_CMD_OUT, VS_CMD_DISABLE, VS_CMD_STATUS };


struct vs_cmd {
	enum vs_cmd_verb verb;
	char id[VMSWAP_TOKEN_MAX + 1]; /* "" when the line carries no id= */
	enum vs_cmd_keep keep;         /* VS_KEEP_NONE when the line carries no keep= */
};

/*
 * Parse one control line of len bytes (any bytes; NUL is rejected, not a
 * terminator). Returns 0 and fills *out, or -EINVAL with *err (if err is
 * not NULL) set to a short message that stays valid until the next call
 * in the same thread. *out is untouched on error.
 */
int vs_cmd_parse(const char *line, size_t len, struct vs_cmd *out, const char **err);

/* "enable", "trim", ...; "?" for a value outside the enum. */
const char *vs_cmd_name(enum vs_cmd_verb verb);

/* Map a verb name of len bytes to its enum. 0 or -EINVAL. */
int vs_cmd_lookup(const char *name, size_t len, enum vs_cmd_verb *out);

/* "guest", "saved"; "" for VS_KEEP_NONE (and any other value). */
const char *vs_cmd_keep_name(enum vs_cmd_keep keep);
/* Map "guest" / "saved" of len bytes to its value. 0 or -EINVAL. */
int vs_cmd_keep_lookup(const char *name, size_t len, enum vs_cmd_keep *out);

#endif
