/* SPDX-License-Identifier: BSD-3-Clause */
/* Double copies: detection and the message naming them; see dual.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cover.h"
#include "../sys/extent.h"
#include "../sys/log.h"
#include "dual.h"

#define FIRST_MAX 2 /* page offsets named in the message */

static enum vs_cmd_keep keep;
static uint64_t noted;

/* The last look: what it found, and what it looked at. */
static struct {
	uint64_t pages;
	int objs;                /* objects with such pages */
	int obj;                 /* the first of them */
	uint64_t first[FIRST_MAX];
	int nfirst;
	struct vs_uncovered u;   /* a process mapping that object unregistered */
	bool have_u;
	/* The cheap check's inputs when the scan last ran: same inputs, same answer. */
	uint64_t blocks, saved, npages;
	bool valid;
	uint64_t clean_excess;   /* blocks past the table's resident pages that the scan cleared */
	char set[VS_ERR_MAX];    /* the message last put into last_error */
} rec;

void vs_dual_set_keep(enum vs_cmd_keep k)
{
	keep = k;
}

enum vs_cmd_keep vs_dual_keep(void)
{
	return keep;
}

bool vs_dual_in_guest(const struct vs_obj *o, uint64_t pg)
{
	off_t at = (off_t)(pg * VS_PAGE_SIZE);

	return lseek(o->fd, at, SEEK_DATA) == at;
}

void vs_dual_note(void)
{
	noted++;
}

uint64_t vs_dual_noted(void)
{
	uint64_t n = noted;

	noted = 0;
	return n;
}

/* Saved pages of @o that guest memory also holds: data extents against the table. */
static uint64_t scan_obj(int obj)
{
	const struct vs_obj *o = &vs.objs[obj];
	off_t size = (off_t)(o->npages * VS_PAGE_SIZE), pos = 0;
	uint64_t found = 0;

	while (pos < size) {
		off_t d, h;

		if (vs_extent_next(o->fd, pos, size, &d, &h) <= 0)
			break;
		for (uint64_t pg = (uint64_t)d / VS_PAGE_SIZE;
		     pg < ((uint64_t)h + VS_PAGE_SIZE - 1) / VS_PAGE_SIZE; pg++) {
			/* A unit out punches unlocked: its bytes are leaving, their copy is saved. */
			if (vs_pt_state(o->pt[pg]) == VS_P_RESIDENT ||
			    vs_pt_state(o->pt[pg]) == VS_P_INPLACE || vs_punching(obj, pg))
				continue;
			if (!found++ && !rec.objs++)
				rec.obj = obj; /* only the first object's pages are named */
			if (rec.obj == obj && rec.nfirst < FIRST_MAX)
				rec.first[rec.nfirst++] = pg;
		}
		pos = h;
	}
	return found;
}

uint64_t vs_dual_scan(void)
{
	int was_obj = rec.obj;
	uint64_t was = rec.pages;
	bool found;

	rec.pages = 0;
	rec.objs = 0;
	rec.nfirst = 0;
	rec.valid = false;
	if (vs.stats.c.staging || vs.stats.c.swapped)
		for (int i = 0; i < VS_MAX_OBJS; i++)
			if (vs.objs[i].used)
				rec.pages += scan_obj(i);
	/* Who touched it: looked up when the finding changes, not on every look. */
	if (rec.pages && (!was || was_obj != rec.obj)) {
		rec.have_u = !vs_uncovered_first(rec.obj, &rec.u, &found) && found;
		if (!rec.have_u)
			rec.have_u = !vs_uncovered_first(-1, &rec.u, &found) && found;
	}
	if (!rec.pages) {
		rec.have_u = false;
		rec.set[0] = '\0'; /* a later finding is news again */
	}
	return rec.pages;
}

uint64_t vs_dual_check(void)
{
	uint64_t blocks = 0, npages = 0, saved = vs.stats.c.staging + vs.stats.c.swapped, excess;

	if (!saved) {
		rec.pages = 0;
		rec.valid = false;
		rec.clean_excess = 0;
		rec.set[0] = '\0';
		return 0;
	}
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct stat st;

		if (!vs.objs[i].used)
			continue;
		npages += vs.objs[i].npages;
		/* A memfd's blocks are its allocated pages: O(1). */
		if (fstat(vs.objs[i].fd, &st) == 0)
			blocks += (uint64_t)st.st_blocks * 512 / VS_PAGE_SIZE;
	}
	if (rec.valid && blocks == rec.blocks && saved == rec.saved && npages == rec.npages)
		return rec.pages;
	/*
	 * Resident entries include holes, so fitting proves nothing; not
	 * fitting means guest memory holds more than the table explains,
	 * or data past the mappings, which the scan clears once.
	 */
	excess = blocks + saved > npages ? blocks + saved - npages : 0;
	if (excess < rec.clean_excess)
		rec.clean_excess = excess;
	if (excess > rec.clean_excess || rec.pages) {
		if (!vs_dual_scan())
			rec.clean_excess = excess;
		rec.blocks = blocks;
		rec.saved = saved;
		rec.npages = npages;
		rec.valid = true;
	}
	return rec.pages;
}

uint64_t vs_dual_pages(void)
{
	return rec.pages;
}

void vs_dual_describe(char *buf, size_t n)
{
	char first[64] = "", who[96];
	int len = 0;

	if (!rec.pages) {
		snprintf(buf, n, "no page is held twice");
		return;
	}
	for (int i = 0; i < rec.nfirst; i++)
		len += snprintf(first + len, sizeof(first) - (size_t)len, "%s%#llx", i ? ", " : "",
				(unsigned long long)rec.first[i]);
	if (rec.have_u)
		snprintf(who, sizeof(who), "pid %d (%s) maps it without userfaultfd", (int)rec.u.pid,
			 rec.u.comm);
	else
		snprintf(who, sizeof(who), "no process maps it without userfaultfd now");
	snprintf(buf, n, "guest memory of %.40s%s holds %llu page%s also saved (first at page%s %s%s); "
		 "%s; both copies kept: see README \"Double copies\"",
		 vs.objs[rec.obj].name, rec.objs > 1 ? " and other memfds" : "",
		 (unsigned long long)rec.pages, rec.pages > 1 ? "s" : "", rec.nfirst > 1 ? "s" : "",
		 first, rec.pages > (uint64_t)rec.nfirst ? "..." : "", who);
}

bool vs_dual_set_error(void)
{
	char msg[VS_ERR_MAX];

	vs_dual_describe(msg, sizeof(msg));
	if (!strcmp(msg, rec.set))
		return false;
	memcpy(rec.set, msg, sizeof(msg));
	vs_set_error("%s", msg);
	return true;
}

int vs_dual_fail(char *msg, size_t n)
{
	vs_dual_set_error();
	snprintf(msg, n, "%s", rec.set);
	return -EEXIST;
}

int vs_dual_refuse(char *msg, size_t n)
{
	return vs_dual_check() ? vs_dual_fail(msg, n) : 0;
}
