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

static bool overlaps(const struct shim_region *r, uintptr_t addr, uintptr_t end)
{
	return r->addr < end && addr < r->addr + r->len;
}

/* End of [addr, addr+len), clamped so a huge len cannot wrap. */
static uintptr_t range_end(uintptr_t addr, size_t len)
{
	return addr + len < addr ? UINTPTR_MAX : addr + len;
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
		atomic_store_explicit(&count, count + 1, memory_order_relaxed);
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
		out[n++] = (struct shim_range){ s, e - s, r->sent };
		if (s > r->addr && e < rend) {
			/* A hole in the middle: the right part needs an entry. */
			if (count < SHIM_REGIONS_MAX) {
				struct shim_region *right = &table[count];

				*right = *r;
				right->addr = e;
				right->len = rend - e;
				right->offset = r->offset + (e - r->addr);
				atomic_store_explicit(&count, count + 1,
						      memory_order_relaxed);
			} else {
				/* Untracked memory must not stay managed. */
				out[n++] = (struct shim_range){ e, rend - e,
								r->sent };
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
			atomic_store_explicit(&count, count - 1,
					      memory_order_relaxed);
		}
	}
	shim_regions_unlock();
	if (lost)
		shim_log(SHIM_LOG_WARN, "region table full; the rest of a split "
			 "guest region runs unmanaged");
	return n;
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
