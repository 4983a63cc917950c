/* SPDX-License-Identifier: BSD-3-Clause */
/* The per-VM swap file: nameless (O_TMPFILE, mode 0400), slot addressed. */
#ifndef VS_SWAPFILE_H
#define VS_SWAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Create the file in @dir; *direct tells whether it is O_DIRECT. The fd or -errno. */
int vs_swapfile_create(const char *dir, bool *direct);
/* Whole-buffer pwrite/pread of @n pages at @slot. 0 or -errno (-EIO on EOF). */
int vs_swapfile_write(int fd, uint32_t slot, const void *buf, size_t npages);
int vs_swapfile_read(int fd, uint32_t slot, void *buf, size_t npages);
/*
 * Test hook: VMSWAP_TEST_FAIL_WRITE_AFTER=N makes the (N+1)th write fail
 * with EIO. Read once at startup.
 */
void vs_swapfile_init_faults(void);

#endif
