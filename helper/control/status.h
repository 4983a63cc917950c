/* SPDX-License-Identifier: BSD-3-Clause */
/* Publishes status.json into the run directory (format: include/vmswap/common.h, README). */
#ifndef VS_STATUS_H
#define VS_STATUS_H

#include <stddef.h>

/* Render the status object into buf. Returns its length, or -ENOSPC. */
int vs_status_render(char *buf, size_t n);
/* Write status.json atomically (temp file + rename) in @dirfd. 0 or -errno. */
int vs_status_publish(int dirfd);

#endif
