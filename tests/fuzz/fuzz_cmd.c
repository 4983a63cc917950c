/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the control-line parser (helper/control/cmd.c), which reads
 * whatever anyone writes into the control FIFO. A line it accepts must
 * parse back the same from its canonical form; one it rejects must come
 * with a printable error and leave the output untouched.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../helper/state/cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_cmd cmd, again, untouched;
	const char *err = NULL;
	char line[VMSWAP_CMD_MAX + 64];
	int n;

	memset(&cmd, 0xa5, sizeof(cmd));
	untouched = cmd;
	if (vs_cmd_parse((const char *)data, size, &cmd, &err)) {
		if (!err || memcmp(&cmd, &untouched, sizeof(cmd)))
			abort();
		for (const char *p = err; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				abort(); /* raw FIFO bytes in an error message */
		return 0;
	}
	if (size > VMSWAP_CMD_MAX || !memchr(cmd.id, 0, sizeof(cmd.id)) ||
	    !strcmp(vs_cmd_name(cmd.verb), "?"))
		abort();
	if (cmd.keep != VS_KEEP_NONE && (cmd.verb != VS_CMD_DISABLE || !*vs_cmd_keep_name(cmd.keep)))
		abort();
	n = snprintf(line, sizeof(line), "%s%s%s%s%s\n", vs_cmd_name(cmd.verb),
		     cmd.keep ? " keep=" : "", vs_cmd_keep_name(cmd.keep),
		     cmd.id[0] ? " id=" : "", cmd.id);
	if (vs_cmd_parse(line, (size_t)n, &again, &err) || again.verb != cmd.verb ||
	    strcmp(again.id, cmd.id) || again.keep != cmd.keep)
		abort();
	return 0;
}
