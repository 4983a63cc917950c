/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test fixture without a test framework, shared by the unit tests and the
 * TSan driver: a fresh helper state, guest memfds, a page pattern, a
 * userfaultfd, and shim messages sent the way the shim sends them.
 * Functions return 0 (or an fd / index) or -errno.
 */
#ifndef VS_TEST_FIXTURE_H
#define VS_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vmswap/proto.h>

/* Fresh helper state for @vmm_pid, with a swap file in a temp dir under /tmp. */
int fx_state(pid_t vmm_pid);
/* A memfd of @bytes. */
int fx_memfd(const char *name, uint64_t bytes);
/* A memfd of @npages pages, tracked as an object (no mapping). The object index. */
int fx_object(const char *name, uint64_t npages);
/* A userfaultfd of this process (@flags: O_NONBLOCK or 0, always O_CLOEXEC). */
int fx_uffd(int flags);

/* Page @pg's bytes in generation @gen (0: a zero page). */
void fx_fill_page(uint8_t *p, uint64_t pg, uint64_t gen);
bool fx_page_is(const uint8_t *p, uint64_t pg, uint64_t gen);

/* The shim's messages, with seq @seq. */
struct vmswap_msg_hello fx_hello(pid_t pid, pid_t vmm_pid, bool has_uffd, uint32_t seq);
struct vmswap_msg_region_add fx_region_add(uint64_t addr, uint64_t len, uint64_t off,
					   uint32_t seq);
struct vmswap_msg_region_del fx_region_del(uint64_t addr, uint64_t len, uint32_t seq);
struct vmswap_msg_discard fx_discard(uint64_t off, uint64_t len, uint32_t seq);

#define FX_MAX_FDS 8
/* One packet of @len bytes carrying @nfds (<= FX_MAX_FDS) fds. */
int fx_send(int sock, const void *buf, size_t len, const int *fds, int nfds);
/* The next packet, which must be a well-formed reply; its fds are closed. */
int fx_recv_reply(int sock, bool wait, struct vmswap_msg_reply *rep);

#endif
