/* SPDX-License-Identifier: BSD-3-Clause */
/* disable's choice for a page found both in guest memory and saved (README "Double copies"). */
#ifndef VS_KEEP_H
#define VS_KEEP_H

enum vs_cmd_keep {
	VS_KEEP_NONE,  /* keep both copies, stay Failed naming them */
	VS_KEEP_GUEST, /* keep guest memory's bytes, drop the saved copy */
	VS_KEEP_SAVED, /* write the saved copy over guest memory */
};

#endif
