/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fork child maps guest memory too but inherits no uffd registration.
 * The child handler joins the helper with a uffd of its own before the
 * child's code runs, after giving converted memory copy-on-write
 * behaviour again (forkmem.c); a child that cannot join closes its guest
 * memory off (closeoff.h) rather than read holes the helper owns. All shim locks are held across fork() so
 * the child gets a consistent table and no lock held by a thread that is
 * gone.
 */
#include <pthread.h>

#include "fork.h"
#include "forkmem.h"
#include "helper_conn.h"
#include "memfd.h"
#include "regions.h"

/* Same order as everywhere else: connection, then the tables. */
static void prepare(void)
{
	shim_conn_lock();
	shim_forkmem_prepare();
	shim_memfd_lock();
	shim_regions_lock();
}

static void parent(void)
{
	shim_regions_unlock();
	shim_memfd_unlock();
	shim_conn_unlock();
}

static void child(void)
{
	shim_forkmem_child();
	if (shim_conn_child_rejoin())
		shim_forkmem_child_close_off();
	shim_regions_unlock();
	shim_memfd_unlock();
	shim_forkmem_child_notify();
	shim_conn_unlock();
}

int shim_fork_register(void)
{
	return -pthread_atfork(prepare, parent, child);
}
