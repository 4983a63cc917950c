/* SPDX-License-Identifier: BSD-3-Clause */
/* Putting pages back into guest memory for disable; see swapin.h. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../model/dual.h"
#include "../model/helper.h"
#include "../sys/log.h"
#include "../sys/uffd.h"
#include "swapin.h"
/*
 * Install @count pages of @o from @pg with bytes at @src. vs.lock held.
 * Returns the number of pages installed, *dup telling that guest memory
 * already holds the page right after them, or -EAGAIN when an event must
 * be read first.
 */
static int64_t install(struct vs_obj *o, int obj, uint64_t pg, uint64_t count, const uint8_t *src,
		       bool *dup)
{
	struct vs_map *m = vs_map_for_page(obj, pg);
	uint64_t done = 0;
	int r;

	*dup = false;
	if (!m) {
		/* Nobody maps it, so nobody can fault or discard it meanwhile. */
		off_t at = (off_t)(pg * VS_PAGE_SIZE), d = lseek(o->fd, at, SEEK_DATA);

		if (d == at) {
			*dup = true;
			return 0;
		}
		if (d > at && (uint64_t)(d - at) / VS_PAGE_SIZE < count)
			count = (uint64_t)(d - at) / VS_PAGE_SIZE;
		ssize_t w = pwrite(o->fd, src, count * VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE));

		if (w < (ssize_t)VS_PAGE_SIZE)
			return w < 0 ? -errno : -EIO;
		return w / VS_PAGE_SIZE;
	}
	/* Stay inside this mapping. */
	uint64_t room = (m->off + m->len - pg * VS_PAGE_SIZE) / VS_PAGE_SIZE;

	if (count > room)
		count = room;
	r = vs_uffd_copy(vs.procs[m->proc].uffd, m->addr + pg * VS_PAGE_SIZE - m->off, src,
			 count * VS_PAGE_SIZE, &done);
	if (r == -EEXIST) {
		*dup = true; /* the next page is present */
		return (int64_t)(done / VS_PAGE_SIZE);
	}
	if (r == -ESRCH || r == -ENOENT) {
		if (r == -ESRCH)
			vs.procs[m->proc].dead = true;
		else
			m->used = false;
		return done ? (int64_t)(done / VS_PAGE_SIZE) : -EAGAIN;
	}
	if (r && !done)
		return r;
	return (int64_t)(done / VS_PAGE_SIZE);
}

/* Mark @n pages from @pg resident again (keeping slots) and drop staging. */
static void settle(struct vs_obj *o, uint64_t pg, uint64_t n)
{
	bool staged = false;

	vs.stats.install_gen++;
	for (uint64_t i = pg; i < pg + n; i++) {
		uint32_t e = o->pt[i];

		if (vs_pt_state(e) == VS_P_STAGING) {
			staged = true;
			vs.stats.c.copied_from_staging++;
		} else if (vs_pt_state(e) == VS_P_FILE) {
			vs.stats.c.copied_from_file++;
		}
		vs_page_set(o, i, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e), vs_pt_slot(e)));
	}
	if (staged)
		vs_stg_punch(o, pg, n);
}

/*
 * Guest memory holds page @pg of the half's object, which is saved too,
 * with bytes @src. Both stay (noted), unless disable keep= chose. Returns
 * 1 when the page is dealt with, 0 when guest memory no longer holds it
 * (look again), or -errno. vs.lock held.
 */
static int dual_page(struct in_half *h, uint64_t pg, const uint8_t *src)
{
	struct vs_obj *o = h->o;
	uint32_t e = o->pt[pg];

	if (!vs_dual_in_guest(o, pg))
		return 0;
	switch (vs_dual_keep()) {
	case VS_KEEP_GUEST:
		vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e), vs_pt_slot(e)));
		if (vs_pt_state(e) == VS_P_STAGING)
			vs_stg_punch(o, pg, 1);
		h->kept_guest++;
		return 1;
	case VS_KEEP_SAVED:
		/* The page exists, so pwrite overwrites it and allocates nothing. */
		if (pwrite(o->fd, src, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)) != VS_PAGE_SIZE)
			return errno ? -errno : -EIO;
		settle(o, pg, 1);
		h->moved++;
		h->kept_saved++;
		return 1;
	default:
		vs_dual_note();
		return 1;
	}
}

/*
 * install() and settle() up to @count pages from @pg, bytes at @src, a
 * page guest memory already holds going to dual_page(). Returns the pages
 * passed (> 0) or -errno; -EAGAIN: look again later. vs.lock held.
 */
int64_t vs_swapin_put_pages(struct in_half *h, uint64_t pg, uint64_t count, const uint8_t *src)
{
	bool dup;
	int64_t k = install(h->o, h->obj, pg, count, src, &dup);
	int r;

	if (k < 0)
		return k;
	if (k) {
		settle(h->o, pg, (uint64_t)k);
		h->moved += (uint64_t)k;
	}
	if (!dup)
		return k ? k : -EAGAIN;
	r = dual_page(h, pg + (uint64_t)k, src + (uint64_t)k * VS_PAGE_SIZE);
	if (r < 0)
		return k ? k : r;
	return k + r ? k + r : -EAGAIN;
}

/* 0, or the error of install() (recorded); -EAGAIN is retried. */
int vs_swapin_result(const struct vs_obj *o, int64_t k)
{
	if (k >= 0 || k == -EAGAIN)
		return 0;
	vs_set_error("putting pages of %s back: %s", o->name, strerror((int)-k));
	return (int)k;
}

/*
 * Install the file pages just read into h->buf: slot slot0 + i belongs to
 * page pgs[i]. Each run of adjacent pages goes in with one copy, after a
 * check under the lock that it is unchanged. Advances h->pg. vs.lock held.
 */
int64_t vs_swapin_put(struct in_half *h, const uint64_t *pgs, uint64_t n, uint32_t slot0)
{
	struct vs_obj *o = h->o;
	uint64_t i = 0;

	while (i < n) {
		uint64_t j = i;

		while (j < n && (j == i || pgs[j] == pgs[j - 1] + 1) && pgs[j] < o->npages &&
		       vs_pt_state(o->pt[pgs[j]]) == VS_P_FILE && vs_pt_slot(o->pt[pgs[j]]) == slot0 + j)
			j++;
		if (j == i) {
			i++; /* changed meanwhile (faulted in, discarded): the next pass sees it */
			continue;
		}
		/* Pieces: a mapping's end, or a page held twice, ends one copy. */
		while (i < j) {
			int64_t k = vs_swapin_put_pages(h, pgs[i], j - i, h->buf + i * VS_PAGE_SIZE);

			if (k <= 0) {
				h->pg = pgs[i];
				return k;
			}
			i += (uint64_t)k;
		}
	}
	h->pg = pgs[n - 1] + 1;
	return 0;
}
