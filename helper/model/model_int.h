/* SPDX-License-Identifier: BSD-3-Clause */
/* Inside the model: telling the layers above (vs_hooks, helper.h). vs.lock held. */
#ifndef VS_MODEL_INT_H
#define VS_MODEL_INT_H

#include <unistd.h>

#include "helper.h"

static inline void model_changed(void)
{
	if (vs_hooks.changed)
		vs_hooks.changed();
}

static inline void model_keep(int fd)
{
	if (vs_hooks.keep && fd >= 0)
		vs_hooks.keep(fd);
}

/* Out of the keeper, then closed. */
static inline void model_close(int fd)
{
	if (fd < 0)
		return;
	if (vs_hooks.forget)
		vs_hooks.forget(fd);
	close(fd);
}

#endif
