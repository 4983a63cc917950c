/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Converted anonymous memory is a shared mapping of our memfd, where
 * MADV_DONTNEED would only drop page-table entries (the data stays) and
 * MADV_FREE and MADV_WIPEONFORK fail. So on it: DONTNEED and FREE become
 * MADV_REMOVE (the memfd is punched, the next read sees zeros, and while
 * swap is enabled the helper learns it through UFFD_EVENT_REMOVE);
 * WIPEONFORK and KEEPONFORK are recorded for fork and never reach the
 * kernel. DONTFORK and DOFORK go to the kernel and are recorded too. The
 * rest of a range goes to the kernel as it was given.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "advise.h"
#include "classify.h"
#include "guest.h"
#include "helper_conn.h"
#include "log.h"
#include "real.h"
#include "regions.h"

#ifndef MADV_DONTNEED_LOCKED /* headers older than Linux 5.18 */
#define MADV_DONTNEED_LOCKED 24
#endif

/* Parts of guest memory in the range; used under the connection lock. */
static struct shim_range pieces[SHIM_REGIONS_MAX];

bool shim_advise_relevant(int advice)
{
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_DONTNEED_LOCKED:
	case MADV_FREE:
	case MADV_DONTFORK:
	case MADV_DOFORK:
	case MADV_WIPEONFORK:
	case MADV_KEEPONFORK:
		return true;
	default:
		return false;
	}
}

/*
 * The outcome of a split call, as the kernel reports one: an unmapped
 * hole (ENOMEM) lets the rest go on and is reported at the end; any other
 * error stops there.
 */
struct outcome {
	int nomem;
	int err;
};

/* Account for one step's result @r (0 or -1 with errno); false: stop. */
static bool step(struct outcome *o, int r)
{
	if (!r)
		return true;
	if (errno == ENOMEM) {
		o->nomem = 1;
		return true;
	}
	o->err = errno;
	return false;
}

static int finish(const struct outcome *o, int saved)
{
	if (o->err || o->nomem) {
		errno = o->err ? o->err : ENOMEM;
		return -1;
	}
	errno = saved;
	return 0;
}

static void mark_failed(void)
{
	static atomic_bool logged;

	if (!atomic_exchange(&logged, true))
		shim_log(SHIM_LOG_WARN, "region table full; a fork child may not "
			 "get the madvise() fork semantics of all guest memory");
}

/* DONTNEED or FREE on converted memory @p: zeros from now on. */
static int discard(const struct shim_range *p, int advice)
{
	int r;

	if (!shim_real_madvise((void *)p->addr, p->len, MADV_REMOVE))
		return 0;
	/*
	 * Older kernels refuse MADV_REMOVE on a mapping that is not writable
	 * now, and every kernel on a locked one; anonymous DONTNEED works on
	 * the first and DONTNEED_LOCKED on both. A VMM's own seccomp filter
	 * may allow only the advice it uses itself (EPERM). Punch the memfd
	 * instead.
	 */
	if (errno != EACCES && errno != EPERM &&
	    !(errno == EINVAL && advice == MADV_DONTNEED_LOCKED))
		return -1;
	r = shim_guest_free(p);
	if (r) {
		errno = -r;
		return -1;
	}
	return 0;
}

/* WIPEONFORK or KEEPONFORK on converted memory @p: for the fork child only. */
static int record_wipe(const struct shim_range *p, int advice)
{
	if (shim_regions_mark(p->addr, p->len,
			      advice == MADV_WIPEONFORK ? SHIM_FORK_WIPE : 0,
			      advice == MADV_KEEPONFORK ? SHIM_FORK_WIPE : 0,
			      true))
		mark_failed();
	return 0;
}

/*
 * Apply @advice to [a, end): converted parts through @conv, everything
 * between them through the kernel, in address order.
 */
static void walk(uintptr_t a, uintptr_t end, int advice,
		 int (*conv)(const struct shim_range *p, int advice),
		 struct outcome *o)
{
	size_t n = shim_regions_find(a, end - a, pieces);
	uintptr_t cur = a;

	for (size_t i = 0; i < n; i++) {
		const struct shim_range *p = &pieces[i];

		if (p->kind != SHIM_KIND_ANON)
			continue;
		if (p->addr > cur &&
		    !step(o, shim_real_madvise((void *)cur, p->addr - cur,
					       advice)))
			return;
		if (!step(o, conv(p, advice)))
			return;
		cur = p->addr + p->len;
	}
	if (cur < end)
		step(o, shim_real_madvise((void *)cur, end - cur, advice));
}

/* DONTFORK or DOFORK: the kernel does it; the fork handler needs to know. */
static int fork_advice(void *addr, size_t len, int advice, uintptr_t a,
		       size_t plen)
{
	int r = shim_real_madvise(addr, len, advice), err = errno;

	/* ENOMEM: a hole in the range; the mapped parts were changed. */
	if ((!r || err == ENOMEM) &&
	    shim_regions_mark(a, plen,
			      advice == MADV_DONTFORK ? SHIM_FORK_DONT : 0,
			      advice == MADV_DOFORK ? SHIM_FORK_DONT : 0, false))
		mark_failed();
	errno = err;
	return r;
}

int shim_advise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr;
	size_t plen = shim_page_round(len);
	struct outcome o = { 0, 0 };
	int saved = errno, r;

	/* The kernel rejects what is unaligned, wraps, or is empty: let it. */
	if (shim_conn_held() || shim_page_round(a) != a || !plen ||
	    a + plen < a)
		return shim_real_madvise(addr, len, advice);
	shim_conn_lock();
	switch (advice) {
	case MADV_DONTFORK:
	case MADV_DOFORK:
		r = fork_advice(addr, len, advice, a, plen);
		shim_conn_unlock();
		return r;
	case MADV_WIPEONFORK:
	case MADV_KEEPONFORK:
		walk(a, a + plen, advice, record_wipe, &o);
		break;
	default:
		walk(a, a + plen, advice, discard, &o);
		break;
	}
	shim_conn_unlock();
	return finish(&o, saved);
}
