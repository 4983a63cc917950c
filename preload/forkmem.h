/* SPDX-License-Identifier: BSD-3-Clause */
/* Guest memory in a fork child: what it inherits, and what it must not. */
#ifndef SHIM_FORKMEM_H
#define SHIM_FORKMEM_H

/*
 * In the parent, before fork(), with the connection lock held: decide
 * whether the child may make converted memory private (see forkmem.c).
 */
void shim_forkmem_prepare(void);

/*
 * In the fork child, table lock held since the fork, before HELLO: give
 * converted memory copy-on-write behaviour (a private mapping of the
 * same memfd; zeros for MADV_WIPEONFORK) and drop from the table what the
 * child must not treat as guest memory. Async-signal-safe.
 */
void shim_forkmem_child(void);

/*
 * After the child joined the helper, which copied the parent's regions
 * for it: drop the ones dropped above. Async-signal-safe.
 */
void shim_forkmem_child_notify(void);

/*
 * The child could not join a helper that may hold pages: make all its
 * guest memory, shared or made private above, inaccessible, and refuse
 * to map it again (closeoff.h). Table lock held. Async-signal-safe.
 */
void shim_forkmem_child_close_off(void);

#endif
