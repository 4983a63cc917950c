/* SPDX-License-Identifier: BSD-3-Clause */
/* What libearly.so's constructor mapped, for mapper.c to find by dlsym. */
#ifndef MAPPER_H
#define MAPPER_H

#include <stddef.h>

#define MAPPER_EARLY_SYM "mapper_early"

struct mapper_early {
	void *addr;       /* NULL when the constructor could not map */
	size_t len;
	const char *name; /* the memfd's name */
	int err;          /* errno of the failure, else 0 */
};

#endif
