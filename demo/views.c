/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * views: a thread that keeps mapping second views of region 0's memfd,
 * as a VMM maps guest memory again for a device or a migration, while the
 * vCPUs (or ptouch) run. Each round maps a 2 MiB window at a random
 * place, checks every page through it against the model, moves the view
 * with mremap (UFFD_EVENT_REMAP), checks every 8th page again, and
 * unmaps it (UFFD_EVENT_UNMAP). The view only reads: the model is not
 * written, and the thread needs no lock while nothing writes the guest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "toyvmm.h"

#define VIEW_PAGES 512u

static bool check_view(struct tvm_views *v, const uint8_t *view, uint64_t pno0, unsigned step)
{
	struct tvm_guest *g = v->g;

	for (unsigned i = 0; i < VIEW_PAGES; i += step) {
		uint64_t pno = pno0 + i;
		unsigned w = 0;

		if (tvm_pattern_check(view + (size_t)i * TVM_PAGE_SIZE, g->seed, pno, g->gen[pno],
				      &w)) {
			if (!v->res.mismatches++ || pno < v->res.first_bad)
				v->res.first_bad = pno;
			return false;
		}
		v->res.pages++;
	}
	return true;
}

/* One round; -errno when a map, move or unmap fails. */
static int view_round(struct tvm_views *v, uint64_t *rng)
{
	const struct tvm_region *r = &v->g->regions[0];
	uint64_t nwin = r->len / ((uint64_t)VIEW_PAGES * TVM_PAGE_SIZE);
	uint64_t win = tvm_xorshift64(rng) % nwin;
	size_t len = (size_t)VIEW_PAGES * TVM_PAGE_SIZE;
	uint64_t pno0 = r->first_page + win * VIEW_PAGES;
	uint8_t *view, *to, *moved;

	view = mmap(NULL, len, PROT_READ, MAP_SHARED, r->fd, (off_t)(r->off + win * len));
	if (view == MAP_FAILED)
		return -errno;
	check_view(v, view, pno0, 1);
	/* A reserved place to move to, so that the move really moves. */
	to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	moved = to == MAP_FAILED ? MAP_FAILED
				 : mremap(view, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (moved == MAP_FAILED) {
		int e = -errno;

		munmap(view, len);
		if (to != MAP_FAILED)
			munmap(to, len);
		return e;
	}
	check_view(v, moved, pno0, 8);
	if (munmap(moved, len) < 0)
		return -errno;
	v->rounds++;
	return 0;
}

static void *views_main(void *arg)
{
	struct tvm_views *v = arg;
	uint64_t rng = tvm_splitmix64(v->g->seed ^ 0x76696577) | 1;

	while (!atomic_load(&v->stop) && !v->res.err)
		v->res.err = view_round(v, &rng);
	return NULL;
}

int tvm_views_start(struct tvm_views *v, struct tvm_guest *g)
{
	int r;

	if (v->running)
		return -EBUSY;
	if (g->regions[0].fd < 0 || g->regions[0].len < (uint64_t)VIEW_PAGES * TVM_PAGE_SIZE)
		return -EINVAL; /* anonymous memory has no second view */
	*v = (struct tvm_views){ .g = g };
	r = -pthread_create(&v->tid, NULL, views_main, v);
	v->running = !r;
	return r;
}

int tvm_views_stop(struct tvm_views *v)
{
	if (!v->running)
		return -ESRCH;
	atomic_store(&v->stop, true);
	pthread_join(v->tid, NULL);
	v->running = false;
	return 0;
}

int tvm_view_try(struct tvm_guest *g, const char *how)
{
	const struct tvm_region *r = &g->regions[0];
	size_t len = (size_t)VIEW_PAGES * TVM_PAGE_SIZE;
	int prot = PROT_READ, flags = MAP_SHARED;
	void *p;

	if (!strcmp(how, "private"))
		flags = MAP_PRIVATE;
	else if (!strcmp(how, "exec"))
		prot |= PROT_EXEC;
	else if (strcmp(how, "shared"))
		return -EINVAL;
	if (r->fd < 0 || r->len < len)
		return -EINVAL;
	p = mmap(NULL, len, prot, flags, r->fd, (off_t)r->off);
	if (p == MAP_FAILED)
		return -errno;
	munmap(p, len);
	return 0;
}
