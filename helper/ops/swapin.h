/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Putting pages back into guest memory for disable (swapin_put.c): one
 * UFFDIO_COPY per run through a registered mapping, a pwrite where no
 * process maps the page, and a page held twice (dual.h) left to disable
 * keep= or to the failure that names it. vs.lock held.
 */
#ifndef VS_SWAPIN_H
#define VS_SWAPIN_H

#include <stdint.h>

#include "../model/helper.h"

#define IN_BATCH 256 /* pages per read, each swap-in thread */

/* One of the two swap-in threads: its half of an object, its buffer. */
struct in_half {
	struct vs_obj *o;
	int obj;
	uint64_t pg, end;
	uint64_t moved;
	uint64_t kept_guest;   /* held twice: guest memory's bytes kept (keep=guest) */
	uint64_t kept_saved;   /* held twice: the saved copy written over them (keep=saved) */
	uint32_t behind;    /* slots from here to the last read are still cached */
	int r;
	uint8_t *buf;       /* IN_BATCH pages */
};


/*
 * Put @count pages of the half's object from @pg back, bytes at @src.
 * Returns the pages passed (> 0) or -errno; -EAGAIN: look again later.
 */
int64_t vs_swapin_put_pages(struct in_half *h, uint64_t pg, uint64_t count, const uint8_t *src);
/*
 * Put the file pages just read into h->buf back: slot @slot0 + i belongs
 * to page @pgs[i]; pages changed meanwhile are skipped. Advances h->pg.
 */
int64_t vs_swapin_put(struct in_half *h, const uint64_t *pgs, uint64_t n, uint32_t slot0);
/* 0, or the error of a put (recorded in last_error); -EAGAIN is retried. */
int vs_swapin_result(const struct vs_obj *o, int64_t k);

#endif
