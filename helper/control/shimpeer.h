/* SPDX-License-Identifier: BSD-3-Clause */
/* Who is on the other end of a shim connection, and the fds it hands over. */
#ifndef VS_SHIMPEER_H
#define VS_SHIMPEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * May the peer of a new shim.sock connection take a slot? Only the VMM
 * and its descendants, running as the VMM's uid (or root), may. 0, or
 * -errno with the reason in @why.
 */
int vs_conn_peer_check(int fd, char *why, size_t n);
/*
 * Can @fd be guest memory the helper manages, @end bytes of it? 0, or
 * -errno with the reason in @why.
 */
int vs_peer_check_memfd(int fd, uint64_t end, char *why, size_t n);
/* Is @fd a userfaultfd the fault thread can read (O_NONBLOCK)? 0 or -errno and @why. */
int vs_peer_check_uffd(int fd, char *why, size_t n);
/* Is @fd a memfd? Only those can be guest memory the helper manages. */
bool vs_peer_is_memfd(int fd);
/* The parent of @pid (from /proc), or 0. */
pid_t vs_peer_parent_of(pid_t pid);

#endif
