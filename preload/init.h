/* SPDX-License-Identifier: BSD-3-Clause */
/* One-time setup, from the constructor or the first interposed call. */
#ifndef SHIM_INIT_H
#define SHIM_INIT_H

#include <stdbool.h>

/*
 * Initialise on first use; then say whether the shim manages anything
 * (false when disabled, misconfigured, or called while initialising).
 */
bool shim_active(void);

#endif
