/* SPDX-License-Identifier: BSD-3-Clause */
/* The per-VM swap file: nameless (O_TMPFILE, mode 0), slot addressed. */
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
/* Gather @cnt buffers (page multiples) into consecutive slots from @slot; @iov is consumed. */
struct iovec;
int vs_swapfile_writev(int fd, uint32_t slot, struct iovec *iov, int cnt);
/* Reads that failed so far (every caller: faults, swap-in, trim). */
uint64_t vs_swapfile_read_errors(void);
/*
 * For reads made elsewhere (io_uring, fault_ring.h): must this one fail
 * (the test hook below; it counts as a read), and count a failed one.
 */
bool vs_swapfile_read_injected(void);
void vs_swapfile_read_failed(void);
/*
 * Test hooks, read from the environment (and their counters reset):
 * VMSWAP_TEST_FAIL_WRITE_AFTER=N makes every write after the Nth fail with
 * EIO; VMSWAP_TEST_FAIL_READS=AFTER:COUNT makes reads number AFTER to
 * AFTER+COUNT-1 (from 0) fail with EIO, a transient error. 0, or -EINVAL
 * when a value is bad (warned about and ignored).
 */
int vs_swapfile_init_faults(void);

#endif
