/* SPDX-License-Identifier: BSD-3-Clause */
/* A small array: a VMM has a handful of guest regions, a few hundred at most. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "log.h"
#include "regions.h"

static struct shim_region table[SHIM_REGIONS_MAX];
static atomic_size_t count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void shim_regions_lock(void)
{
	pthread_mutex_lock(&lock);
}

void shim_regions_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

size_t shim_regions_count(void)
{
	return atomic_load_explicit(&count, memory_order_relaxed);
}

static void set_count(size_t n)
{
	atomic_store_explicit(&count, n, memory_order_relaxed);
}

static bool overlaps(const struct shim_region *r, uintptr_t addr, uintptr_t end)
{
	return r->addr < end && addr < r->addr + r->len;
}

/* End of [addr, addr+len), clamped so a huge len cannot wrap. */
static uintptr_t range_end(uintptr_t addr, size_t len)
{
	return addr + len < addr ? UINTPTR_MAX : addr + len;
}

/* The part [s, e) of @r as a range. */
static struct shim_range part(const struct shim_region *r, uintptr_t s,
			      uintptr_t e)
{
	return (struct shim_range){
		.addr = s, .len = e - s, .offset = r->offset + (s - r->addr),
		.dev = r->dev, .ino = r->ino, .sent = r->sent, .kind = r->kind,
		.fork = r->fork, .memfd = r->memfd,
	};
}

/* Cut @r at @at (inside it): @r keeps the left part, a new entry the right. */
static int split(struct shim_region *r, uintptr_t at)
{
	struct shim_region *right;
	size_t n = count;

	if (n >= SHIM_REGIONS_MAX)
		return -ENOSPC;
	right = &table[n];
	*right = *r;
	right->addr = at;
	right->len = r->addr + r->len - at;
	right->offset = r->offset + (at - r->addr);
	r->len = at - r->addr;
	set_count(n + 1);
	return 0;
}

bool shim_regions_overlap(uintptr_t addr, size_t len)
{
	uintptr_t end = range_end(addr, len);
	bool hit = false;

	shim_regions_lock();
	for (size_t i = 0; i < count && !hit; i++)
		hit = overlaps(&table[i], addr, end);
	shim_regions_unlock();
	return hit;
}

int shim_regions_add(const struct shim_region *r)
{
	int ret = -ENOSPC;

	shim_regions_lock();
	if (count < SHIM_REGIONS_MAX) {
		table[count] = *r;
		set_count(count + 1);
		ret = 0;
	}
	shim_regions_unlock();
	return ret;
}

int shim_regions_set_sent(uintptr_t addr, bool sent)
{
	int ret = -ENOENT;

	shim_regions_lock();
	for (size_t i = 0; i < count; i++) {
		if (table[i].addr == addr) {
			table[i].sent = sent;
			ret = 0;
			break;
		}
	}
	shim_regions_unlock();
	return ret;
}

size_t shim_regions_carve(uintptr_t addr, size_t len, struct shim_range *out)
{
	uintptr_t end = range_end(addr, len);
	bool lost = false;
	size_t n = 0, i = 0;

	shim_regions_lock();
	while (i < count) {
		struct shim_region *r = &table[i];
		uintptr_t rend = r->addr + r->len;
		uintptr_t s = r->addr > addr ? r->addr : addr;
		uintptr_t e = rend < end ? rend : end;

		if (!overlaps(r, addr, end)) {
			i++;
			continue;
		}
		out[n++] = part(r, s, e);
		if (s > r->addr && e < rend) {
			/* A hole in the middle: the right part needs an entry. */
			if (split(r, e)) {
				/* Untracked memory must not stay managed. */
				out[n++] = part(r, e, rend);
				lost = true;
			}
			r->len = s - r->addr;
			i++;
		} else if (s > r->addr) {
			r->len = s - r->addr;
			i++;
		} else if (e < rend) {
			r->offset += e - r->addr;
			r->len = rend - e;
			r->addr = e;
			i++;
		} else {
			*r = table[count - 1];
			set_count(count - 1);
		}
	}
	shim_regions_unlock();
	if (lost)
		shim_log(SHIM_LOG_WARN, "region table full; the rest of a split "
			 "guest region runs unmanaged");
	return n;
}

size_t shim_regions_find(uintptr_t addr, size_t len, struct shim_range *out)
{
	uintptr_t end = range_end(addr, len);
	size_t n = 0;

	shim_regions_lock();
	for (size_t i = 0; i < count; i++) {
		const struct shim_region *r = &table[i];
		uintptr_t rend = r->addr + r->len;

		if (overlaps(r, addr, end))
			out[n++] = part(r, r->addr > addr ? r->addr : addr,
					rend < end ? rend : end);
	}
	shim_regions_unlock();
	/* Insertion sort: n is small, and callers walk in address order. */
	for (size_t i = 1; i < n; i++) {
		struct shim_range x = out[i];
		size_t j = i;

		for (; j && out[j - 1].addr > x.addr; j--)
			out[j] = out[j - 1];
		out[j] = x;
	}
	return n;
}

int shim_regions_get(uintptr_t addr, struct shim_region *out)
{
	int ret = -ENOENT;

	shim_regions_lock();
	for (size_t i = 0; i < count; i++) {
		if (addr >= table[i].addr && addr - table[i].addr < table[i].len) {
			*out = table[i];
			ret = 0;
			break;
		}
	}
	shim_regions_unlock();
	return ret;
}

int shim_regions_mark(uintptr_t addr, size_t len, uint8_t set, uint8_t clear,
		      bool anon_only)
{
	uintptr_t end = range_end(addr, len);
	int ret = 0;

	shim_regions_lock();
	/* Entries split off here lie outside the range: the loop skips them. */
	for (size_t i = 0; i < count; i++) {
		struct shim_region *r = &table[i];

		if (!overlaps(r, addr, end) ||
		    (anon_only && r->kind != SHIM_KIND_ANON))
			continue;
		if ((r->addr < addr && split(r, addr)) ||
		    (r->addr + r->len > end && split(r, end))) {
			ret = -ENOSPC;
			continue;
		}
		if (r->addr < addr)
			continue; /* the middle part was appended: visited later */
		r->fork = (uint8_t)((r->fork | set) & ~clear);
	}
	shim_regions_unlock();
	return ret;
}

bool shim_regions_backed_by(dev_t dev, ino_t ino)
{
	bool hit = false;

	shim_regions_lock();
	for (size_t i = 0; i < count && !hit; i++)
		hit = table[i].sent && table[i].dev == dev &&
		      table[i].ino == ino;
	shim_regions_unlock();
	return hit;
}

bool shim_regions_child_fd_used(int memfd)
{
	for (size_t i = 0; i < count; i++)
		if (table[i].memfd == memfd)
			return true;
	return false;
}

bool shim_regions_fd_used(int memfd)
{
	bool hit;

	shim_regions_lock();
	hit = shim_regions_child_fd_used(memfd);
	shim_regions_unlock();
	return hit;
}

void shim_regions_child_sweep(bool (*fn)(struct shim_region *r, void *arg),
			      void *arg)
{
	size_t i = 0;

	while (i < count) {
		if (fn(&table[i], arg)) {
			table[i] = table[count - 1];
			set_count(count - 1);
		} else {
			i++;
		}
	}
}
