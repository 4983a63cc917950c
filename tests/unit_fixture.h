/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit-test fixture: a fresh helper state, a swap file and one guest memfd object. */
#ifndef VS_UNIT_FIXTURE_H
#define VS_UNIT_FIXTURE_H

#include <stdint.h>

/* Skips the test when O_TMPFILE is unsupported. Returns the object index. */
int unit_setup_obj(const char *name, uint64_t npages);

/* What the VMM does: write page @pg of object @obj's memfd, in generation @gen. */
void unit_guest_write(int obj, uint64_t pg, uint8_t gen);

#endif
