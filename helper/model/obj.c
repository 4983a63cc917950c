/* SPDX-License-Identifier: BSD-3-Clause */
/* Guest memfds (objects): their page tables, staging, growth, discards and release. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "copies.h"
#include "helper.h"
#include "model_int.h"

void vs_page_set(struct vs_obj *o, uint64_t pg, uint32_t e)
{
	enum vs_pstate was = vs_pt_state(o->pt[pg]), now = vs_pt_state(e);

	if (was != now) {
		if (was == VS_P_STAGING)
			vs.stats.c.staging--;
		else if (was == VS_P_FILE)
			vs.stats.c.swapped--;
		else if (was == VS_P_INPLACE)
			vs.stats.c.inplace--;
		if (now == VS_P_STAGING)
			vs.stats.c.staging++;
		else if (now == VS_P_FILE)
			vs.stats.c.swapped++;
		else if (now == VS_P_INPLACE)
			vs.stats.c.inplace++;
	}
	o->pt[pg] = e;
}

size_t vs_pt_bytes(uint64_t npages)
{
	return (npages * sizeof(uint32_t) + VS_PAGE_SIZE - 1) & ~(size_t)(VS_PAGE_SIZE - 1);
}

/* The page table lives in pt_fd; new entries read as zero (RESIDENT). vs.lock held. */
static int pt_grow(struct vs_obj *o, uint64_t npages)
{
	size_t old_len = vs_pt_bytes(o->npages), len = vs_pt_bytes(npages);
	void *pt;

	if (o->pt && len <= old_len)
		return 0;
	if (ftruncate(o->pt_fd, (off_t)len) < 0)
		return -errno;
	pt = o->pt ? mremap(o->pt, old_len, len, MREMAP_MAYMOVE)
		   : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, o->pt_fd, 0);
	if (pt == MAP_FAILED)
		return -errno;
	o->pt = pt;
	return 0;
}

static int obj_grow(struct vs_obj *o, uint64_t npages)
{
	size_t old_len = o->npages * VS_PAGE_SIZE, len = npages * VS_PAGE_SIZE;
	void *stg;
	int r;

	if (npages <= o->npages)
		return 0;
	if (ftruncate(o->stg_fd, (off_t)len) < 0)
		return -errno;
	pthread_rwlock_wrlock(&vs.stg_lock);
	stg = o->stg ? mremap(o->stg, old_len, len, MREMAP_MAYMOVE)
		     : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, o->stg_fd, 0);
	if (stg != MAP_FAILED)
		o->stg = stg;
	pthread_rwlock_unlock(&vs.stg_lock);
	if (stg == MAP_FAILED)
		return -errno;
	if (o->copied && vs_copies_grow(o, npages))
		return -ENOMEM;
	r = pt_grow(o, npages);
	if (r)
		return r;
	o->npages = npages;
	return 0;
}

int vs_obj_find(dev_t dev, ino_t ino)
{
	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (vs.objs[i].used && vs.objs[i].dev == dev && vs.objs[i].ino == ino)
			return i;
	return -ENOENT;
}

/*
 * Find or create the object for @memfd, covering at least @end_bytes.
 * Always consumes @memfd (kept by a new object, closed otherwise).
 * Returns the object index or -errno.
 */
int vs_obj_get(int memfd, const char *name, uint64_t end_bytes)
{
	uint64_t npages = (end_bytes + VS_PAGE_SIZE - 1) / VS_PAGE_SIZE;
	struct vs_obj *o = NULL;
	struct stat st;
	char stg_name[VMSWAP_NAME_MAX + 16];
	int idx, r;

	if (fstat(memfd, &st) < 0) {
		r = -errno;
		close(memfd);
		return r;
	}
	idx = vs_obj_find(st.st_dev, st.st_ino);
	if (idx >= 0) {
		close(memfd);
		r = obj_grow(&vs.objs[idx], npages);
		model_changed();
		return r ? r : idx;
	}
	for (idx = 0; idx < VS_MAX_OBJS && vs.objs[idx].used; idx++)
		;
	if (idx == VS_MAX_OBJS) {
		close(memfd);
		return -EMFILE;
	}
	o = &vs.objs[idx];
	memset(o, 0, sizeof(*o));
	snprintf(stg_name, sizeof(stg_name), "vmswap-staging:%s", name);
	o->stg_fd = memfd_create(stg_name, MFD_CLOEXEC);
	snprintf(stg_name, sizeof(stg_name), "vmswap-pt:%s", name);
	o->pt_fd = memfd_create(stg_name, MFD_CLOEXEC);
	if (o->stg_fd < 0 || o->pt_fd < 0) {
		r = -errno;
		if (o->stg_fd >= 0)
			close(o->stg_fd);
		if (o->pt_fd >= 0)
			close(o->pt_fd);
		close(memfd);
		memset(o, 0, sizeof(*o));
		return r;
	}
	r = obj_grow(o, npages);
	if (r) {
		if (o->stg)
			munmap(o->stg, o->npages * VS_PAGE_SIZE);
		if (o->pt)
			munmap(o->pt, vs_pt_bytes(o->npages));
		close(o->stg_fd);
		close(o->pt_fd);
		close(memfd);
		memset(o, 0, sizeof(*o));
		return r;
	}
	o->used = true;
	o->fd = memfd;
	o->dev = st.st_dev;
	o->ino = st.st_ino;
	if (fstat(o->stg_fd, &st) == 0)
		o->stg_ino = st.st_ino;
	if (fstat(o->pt_fd, &st) == 0)
		o->pt_ino = st.st_ino;
	snprintf(o->name, sizeof(o->name), "%s", name);
	/* The keeper first, then the manifest that names them. */
	model_keep(o->fd);
	model_keep(o->stg_fd);
	model_keep(o->pt_fd);
	model_changed();
	return idx;
}

/*
 * Pages [first, first+count) of @o were discarded by the VMM (madvise
 * MADV_REMOVE, hole punch): they read as zero from now on.
 */
void vs_discard(struct vs_obj *o, uint64_t first, uint64_t count)
{
	bool staged = false;

	if (first >= o->npages)
		return;
	if (count > o->npages - first)
		count = o->npages - first;
	for (uint64_t pg = first; pg < first + count; pg++) {
		uint32_t e = o->pt[pg];

		if (vs_pt_state(e) == VS_P_STAGING)
			staged = true;
		if (vs_pt_has_slot(e))
			vs_slots_free(&vs.swap.slots, vs_pt_slot(e));
		vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, false, 0));
	}
	vs_copies_drop(o, first, first + count);
	if (staged)
		vs_stg_punch(o, first, count);
}

/*
 * Bytes [from, from+len) of page @pg were punched (a partial-page hole
 * punch zeroes them in place). Zero them in our copy too.
 */
int vs_discard_partial(struct vs_obj *o, uint64_t pg, uint32_t from, uint32_t len)
{
	uint32_t e;

	if (pg >= o->npages || from >= VS_PAGE_SIZE || len > VS_PAGE_SIZE - from)
		return -EINVAL;
	e = o->pt[pg];
	if (vs_pt_state(e) == VS_P_FILE) {
		/* Pull it back into staging, where bytes can be changed. */
		int r = vs_swapfile_read(vs.swap.fd, vs_pt_slot(e), o->stg + pg * VS_PAGE_SIZE, 1);

		if (r)
			return r;
		vs_slots_free(&vs.swap.slots, vs_pt_slot(e));
		vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, false, 0));
		e = o->pt[pg];
	}
	if (vs_pt_state(e) == VS_P_STAGING)
		memset(o->stg + pg * VS_PAGE_SIZE + from, 0, len);
	/* Staged in place: the memfd's bytes changed under it, so its slot is no copy. */
	if (pg < o->fresh_pages)
		vs_bit_clear(o->fresh, pg);
	return 0;
}

uint64_t vs_progress_start_all(void)
{
	uint64_t total = 0;

	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (vs.objs[i].used)
			total += vs.objs[i].npages;
	vs.stats.progress_total = total;
	vs.stats.progress_done = 0;
	return total;
}

/*
 * Release objects no mapping shows any more and whose every page is back
 * in the memfd: nothing of them lives only with us. A later mapping of
 * the same memfd starts a fresh object, all resident. Skipped while the
 * worker runs an operation, which holds object pointers across unlocked
 * stretches.
 */
void vs_obj_gc(void)
{
	if (vs.op_running)
		return;
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];
		bool keep = false;

		if (!o->used)
			continue;
		for (int k = 0; k < VS_MAX_MAPS && !keep; k++)
			keep = vs.maps[k].used && vs.maps[k].obj == i;
		/* A page staged in place is in the memfd: nothing of it is only ours. */
		for (uint64_t pg = 0; pg < o->npages && !keep; pg++)
			keep = vs_pt_state(o->pt[pg]) == VS_P_STAGING ||
			       vs_pt_state(o->pt[pg]) == VS_P_FILE;
		if (keep)
			continue;
		for (uint64_t pg = 0; pg < o->npages; pg++) {
			if (vs_pt_has_slot(o->pt[pg]))
				vs_slots_free(&vs.swap.slots, vs_pt_slot(o->pt[pg]));
			vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, false, 0));
		}
		vs_dbg("released guest memfd %s", o->name);
		o->used = false;
		model_changed();
		munmap(o->stg, o->npages * VS_PAGE_SIZE);
		munmap(o->pt, vs_pt_bytes(o->npages));
		model_close(o->stg_fd);
		model_close(o->pt_fd);
		model_close(o->fd);
		free(o->copied);
		free(o->dirty);
		free(o->fresh);
		memset(o, 0, sizeof(*o));
	}
}
