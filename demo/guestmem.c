/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest memory: memfds mapped as regions the way a real VMM maps RAM
 * slots, plus the model (gen per page) and the per-page operations.
 *
 * memfd_create and mmap are called by name on purpose: under
 * LD_PRELOAD=libvmswap.so these are the calls the shim interposes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "toyvmm.h"

static int new_memfd(const char *name, uint64_t size, int *fd_out)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}

/*
 * Anonymous guest RAM. Firecracker style: one MAP_NORESERVE mapping.
 * QEMU style: a PROT_NONE reservation of len + 2 MiB, then the RAM mapped
 * MAP_FIXED at a 2 MiB boundary inside it, the rest of the reservation
 * left as guard.
 */
static void *map_anon(enum tvm_layout layout, uint64_t len)
{
	uint64_t align = TVM_REGION_ALIGN;
	uint8_t *res, *ram;

	if (layout == TVM_ANON)
		return mmap(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	res = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	ram = (uint8_t *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
	return mmap64(ram, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

/* Map [off, off+len) of fd (or anonymous memory, fd -1) as the next
 * region; the model must already cover its pages. */
static int map_region(struct tvm_guest *g, int fd, uint64_t off, uint64_t len)
{
	struct tvm_region *r, nr;
	void *base;
	int err;

	r = realloc(g->regions, (g->nregions + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	g->regions = r;
	if (fd < 0)
		base = map_anon(g->layout, len);
	else
		base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	if (base == MAP_FAILED)
		return -errno;
	nr = (struct tvm_region){
		.base = base, .len = len, .fd = fd, .off = off,
		.first_page = g->npages,
	};
	if (g->hook.fn && (err = g->hook.fn(g->hook.arg, &nr))) {
		munmap(base, len);
		return err;
	}
	r[g->nregions] = nr;
	g->nregions++;
	g->npages += len / TVM_PAGE_SIZE;
	return 0;
}

/*
 * size must be a multiple of nregions * 2 MiB (checked by the caller).
 * One memfd holds all regions at increasing offsets, unless separate,
 * where each region gets its own memfd "NAME-k" mapped at offset 0.
 */
int tvm_guest_init(struct tvm_guest *g, uint64_t size, unsigned nregions,
		   enum tvm_layout layout, const char *name, uint64_t seed,
		   const struct tvm_map_hook *hook)
{
	bool separate = layout == TVM_MEMFD_SEPARATE;
	bool anon = layout == TVM_ANON || layout == TVM_ANON_QEMU;
	uint64_t rlen = size / nregions;
	int fd = -1, r;

	memset(g, 0, sizeof(*g));
	g->layout = layout;
	if (hook)
		g->hook = *hook;
	g->seed = seed;
	g->name = name;
	g->gen = calloc(size / TVM_PAGE_SIZE, sizeof(*g->gen));
	if (!g->gen)
		return -ENOMEM;
	if (!separate && !anon) {
		r = new_memfd(name, size, &fd);
		if (r)
			return r;
	}
	for (unsigned k = 0; k < nregions; k++) {
		if (separate) {
			char rname[256];

			snprintf(rname, sizeof(rname), "%s-%u", name, k);
			r = new_memfd(rname, rlen, &fd);
			if (r)
				return r;
		}
		r = map_region(g, fd, separate ? 0 : k * rlen, rlen);
		if (r) {
			if (fd >= 0 && (separate || k == 0))
				close(fd);
			return r;
		}
	}
	return 0;
}

/* A new memfd "NAME-hp<k>" becomes region k; its pages are appended. */
int tvm_guest_hotplug(struct tvm_guest *g, uint64_t size, unsigned *index)
{
	uint64_t pages = size / TVM_PAGE_SIZE;
	char rname[256];
	uint32_t *gen;
	int fd, r;

	gen = realloc(g->gen, (g->npages + pages) * sizeof(*gen));
	if (!gen)
		return -ENOMEM;
	memset(gen + g->npages, 0, pages * sizeof(*gen));
	g->gen = gen;
	snprintf(rname, sizeof(rname), "%s-hp%u", g->name, g->nregions);
	fd = -1;
	if (g->layout == TVM_MEMFD || g->layout == TVM_MEMFD_SEPARATE) {
		r = new_memfd(rname, size, &fd);
		if (r)
			return r;
	}
	*index = g->nregions;
	r = map_region(g, fd, 0, size);
	if (r && fd >= 0)
		close(fd);
	return r;
}

void tvm_guest_destroy(struct tvm_guest *g)
{
	int last_fd = -1;

	for (unsigned k = 0; k < g->nregions; k++) {
		struct tvm_region *r = &g->regions[k];

		munmap(r->base, r->len);
		if (r->fd >= 0 && r->fd != last_fd)
			close(r->fd);
		last_fd = r->fd;
	}
	free(g->regions);
	free(g->gen);
	memset(g, 0, sizeof(*g));
}

static const struct tvm_region *region_of(const struct tvm_guest *g, uint64_t pno)
{
	unsigned lo = 0, hi = g->nregions;

	/* Regions are sorted by first_page; find the last one <= pno. */
	while (hi - lo > 1) {
		unsigned mid = lo + (hi - lo) / 2;

		if (g->regions[mid].first_page <= pno)
			lo = mid;
		else
			hi = mid;
	}
	return &g->regions[lo];
}

uint8_t *tvm_guest_page(const struct tvm_guest *g, uint64_t pno)
{
	const struct tvm_region *r = region_of(g, pno);

	return r->base + (pno - r->first_page) * TVM_PAGE_SIZE;
}

/*
 * Discard each region's share of [start, start+count) as a balloon
 * driver's VMM would: MADV_REMOVE on shared memory, MADV_DONTNEED on
 * anonymous memory. A range may span regions, which are distinct
 * mappings. The model of a chunk turns to zero only once its madvise
 * succeeded.
 */
int tvm_guest_balloon(struct tvm_guest *g, uint64_t start, uint64_t count)
{
	uint64_t end = start + count;

	for (unsigned k = 0; k < g->nregions && start < end; k++) {
		const struct tvm_region *r = &g->regions[k];
		uint64_t rend = r->first_page + r->len / TVM_PAGE_SIZE;
		uint64_t s, e;

		if (rend <= start)
			continue;
		s = start;
		e = end < rend ? end : rend;
		if (madvise(r->base + (s - r->first_page) * TVM_PAGE_SIZE,
			    (e - s) * TVM_PAGE_SIZE, r->fd < 0 ? MADV_DONTNEED : MADV_REMOVE) < 0)
			return -errno;
		memset(g->gen + s, 0, (e - s) * sizeof(*g->gen));
		start = e;
	}
	return 0;
}

/*
 * The next host-pattern gen: the write count goes up in the low 31 bits
 * whichever pattern the page held. gen 0 means "zero page", so wrapping
 * skips it.
 */
uint32_t tvm_next_gen(uint32_t gen)
{
	uint32_t n = gen & ~TVM_GEN_KVM;

	return n == ~TVM_GEN_KVM ? 1 : n + 1;
}

/* True while this command may still describe a mismatch on stderr. */
bool tvm_page_report(struct tvm_guest *g)
{
	return atomic_load(&g->report_budget) > 0 &&
	       atomic_fetch_sub(&g->report_budget, 1) > 0;
}

void tvm_page_write(struct tvm_guest *g, uint64_t pno)
{
	uint32_t gen = tvm_next_gen(g->gen[pno]);

	tvm_pattern_fill(tvm_guest_page(g, pno), g->seed, pno, gen);
	g->gen[pno] = gen;
}

/* Explicit zeros: the page becomes present (unlike a hole) yet reads 0. */
void tvm_page_zero(struct tvm_guest *g, uint64_t pno)
{
	memset(tvm_guest_page(g, pno), 0, TVM_PAGE_SIZE);
	g->gen[pno] = 0;
}

static bool all_zero(const uint64_t *p)
{
	for (unsigned w = 0; w < TVM_PAGE_WORDS; w++)
		if (p[w])
			return false;
	return true;
}

/* Returns 0 or -EILSEQ; the first few mismatches are described on stderr. */
int tvm_page_verify(struct tvm_guest *g, uint64_t pno)
{
	const uint64_t *p = (const uint64_t *)tvm_guest_page(g, pno);
	uint32_t gen = g->gen[pno];
	unsigned w = 0;

	if (!tvm_pattern_check(p, g->seed, pno, gen, &w))
		return 0;
	if (tvm_page_report(g))
		fprintf(stderr,
			"toyvmm[%d]: page %" PRIu64 " (region %u) word %u: "
			"want %016" PRIx64 " got %016" PRIx64 " (gen %u%s)%s\n",
			(int)getpid(), pno, (unsigned)(region_of(g, pno) - g->regions),
			w, tvm_pattern_word(g->seed, pno, gen, w), p[w],
			gen & ~TVM_GEN_KVM, gen & TVM_GEN_KVM ? ", kvm pattern" : "",
			all_zero(p) ? ", page is all zeros" : "");
	return -EILSEQ;
}
