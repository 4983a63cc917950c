/* SPDX-License-Identifier: BSD-3-Clause */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "fork.h"
#include "init.h"
#include "log.h"
#include "real.h"
#include "tls.h"

enum { INIT_NONE, INIT_DONE };

static atomic_int state;
static bool active;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Init may allocate, and malloc may mmap: such calls pass through. */
static SHIM_TLS bool in_init;

static void init_once(void)
{
	int r;

	in_init = true;
	shim_config_load();
	active = !shim_cfg.disabled && !shim_cfg.unmanaged;
	if (active) {
		r = shim_fork_register();
		if (r)
			shim_log(SHIM_LOG_WARN, "pthread_atfork failed (%d); "
				 "forked children will not join the helper", r);
	}
	in_init = false;
}

bool shim_active(void)
{
	if (atomic_load_explicit(&state, memory_order_acquire) == INIT_DONE)
		return active;
	if (in_init)
		return false;
	pthread_mutex_lock(&lock);
	if (atomic_load_explicit(&state, memory_order_relaxed) != INIT_DONE) {
		init_once();
		atomic_store_explicit(&state, INIT_DONE, memory_order_release);
	}
	pthread_mutex_unlock(&lock);
	return active;
}

/* Early, while the process is single-threaded; a library constructor
 * that ran before this one got lazy init through shim_active(). */
__attribute__((constructor)) static void shim_ctor(void)
{
	shim_real_init();
	shim_active();
}
