/* SPDX-License-Identifier: BSD-3-Clause */
/* What an fd we were handed really is, from /proc/self/fd. */
#ifndef VS_FDKIND_H
#define VS_FDKIND_H

#include <stdbool.h>

/* Does the /proc/self/fd link of @fd start with @prefix ("/memfd:", "anon_inode:[userfaultfd]")? */
bool vs_fd_link_is(int fd, const char *prefix);

#endif
