/* SPDX-License-Identifier: BSD-3-Clause */
/* Page-table entries, counters, discards and the mapping table. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../helper/model/helper.h"

static int obj;

static void setup(void)
{
	int fd;

	vs_helper_init(getpid());
	fd = memfd_create("unit-guest", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4 << 20), 0);
	obj = vs_obj_get(fd, "unit-guest", 4 << 20);
	cr_assert_geq(obj, 0);
}

TestSuite(pt, .init = setup);

Test(pt, entry_round_trip)
{
	uint32_t slots[] = { 0, 1, 4095, VS_SLOT_MAX };

	for (unsigned i = 0; i < 4; i++) {
		for (int st = VS_P_RESIDENT; st <= VS_P_FILE; st++) {
			uint32_t e = vs_pt_make((enum vs_pstate)st, true, slots[i]);

			cr_assert_eq(vs_pt_state(e), st);
			cr_assert(vs_pt_has_slot(e));
			cr_assert_eq(vs_pt_slot(e), slots[i]);
			e = vs_pt_make((enum vs_pstate)st, false, slots[i]);
			cr_assert_not(vs_pt_has_slot(e));
			cr_assert_eq(vs_pt_state(e), st);
		}
	}
}

Test(pt, counters_follow_state_changes)
{
	struct vs_obj *o = &vs.objs[obj];

	cr_assert_eq(o->npages, 1024);
	vs_page_set(o, 1, vs_pt_make(VS_P_STAGING, false, 0));
	vs_page_set(o, 2, vs_pt_make(VS_P_STAGING, false, 0));
	vs_page_set(o, 3, vs_pt_make(VS_P_FILE, true, 9));
	cr_assert_eq(vs.stats.c.staging, 2);
	cr_assert_eq(vs.stats.c.swapped, 1);
	vs_page_set(o, 2, vs_pt_make(VS_P_FILE, true, 10));
	vs_page_set(o, 3, vs_pt_make(VS_P_RESIDENT, true, 9));
	cr_assert_eq(vs.stats.c.staging, 1);
	cr_assert_eq(vs.stats.c.swapped, 1);
}

Test(pt, discard_frees_slots_and_staging)
{
	struct vs_obj *o = &vs.objs[obj];
	uint32_t a, b;

	vs_slots_alloc(&vs.swap.slots, &a);
	vs_slots_alloc(&vs.swap.slots, &b);
	memset(o->stg + 10 * VS_PAGE_SIZE, 0xab, VS_PAGE_SIZE);
	vs_page_set(o, 10, vs_pt_make(VS_P_STAGING, true, a));
	vs_page_set(o, 11, vs_pt_make(VS_P_FILE, true, b));
	vs_discard(o, 10, 2);
	cr_assert_eq(vs_pt_state(o->pt[10]), VS_P_RESIDENT);
	cr_assert_not(vs_pt_has_slot(o->pt[10]));
	cr_assert_not(vs_pt_has_slot(o->pt[11]));
	cr_assert_eq(vs.swap.slots.in_use, 0);
	cr_assert_eq(vs.stats.c.staging + vs.stats.c.swapped, 0);
	cr_assert_eq(o->stg[10 * VS_PAGE_SIZE], 0, "staging copy punched");
	vs_discard(o, 1020, 100); /* clipped at the end, no crash */
}

Test(pt, partial_discard_zeroes_staged_bytes)
{
	struct vs_obj *o = &vs.objs[obj];

	memset(o->stg + 5 * VS_PAGE_SIZE, 0x5a, VS_PAGE_SIZE);
	vs_page_set(o, 5, vs_pt_make(VS_P_STAGING, false, 0));
	cr_assert_eq(vs_discard_partial(o, 5, 100, 200), 0);
	for (unsigned i = 0; i < VS_PAGE_SIZE; i++)
		cr_assert_eq(o->stg[5 * VS_PAGE_SIZE + i], i >= 100 && i < 300 ? 0 : 0x5a, "byte %u", i);
	cr_assert_eq(vs_discard_partial(o, 5, 4000, 200), -EINVAL);
}

Test(pt, object_grows_and_is_shared_by_identity)
{
	int fd = dup(vs.objs[obj].fd);

	cr_assert_eq(ftruncate(fd, 8 << 20), 0);
	cr_assert_eq(vs_obj_get(fd, "again", 8 << 20), obj, "same memfd, same object");
	cr_assert_eq(vs.objs[obj].npages, 2048);
	vs.objs[obj].stg[2047 * VS_PAGE_SIZE] = 1; /* staging grew too */
	cr_assert_eq(vs.objs[obj].pt[2047], 0);
}

Test(pt, map_removal_trims_and_splits)
{
	struct vs_map *m;

	vs.procs[0].used = true;
	vs.procs[0].uffd = -1;
	cr_assert_eq(vs_map_add(0, obj, 0x100000, 0x40000, 0x10000), 0);
	/* Punch a hole in the middle: two mappings, offsets kept right. */
	vs_map_remove_range(0, 0x110000, 0x10000);
	m = vs_map_find(0, 0x100000);
	cr_assert(m);
	cr_assert_eq(m->len, 0x10000);
	cr_assert_null(vs_map_find(0, 0x110000));
	m = vs_map_find(0, 0x120000);
	cr_assert(m);
	cr_assert_eq(m->addr, 0x120000);
	cr_assert_eq(m->off, 0x30000);
	cr_assert_eq(m->len, 0x20000);
	/* Trim the head of the second one. */
	vs_map_remove_range(0, 0x118000, 0x10000);
	m = vs_map_find(0, 0x128000);
	cr_assert_eq(m->addr, 0x128000);
	cr_assert_eq(m->off, 0x38000);
	/* A move. */
	vs_map_move(0, 0x128000, 0x900000, 0x18000);
	cr_assert(vs_map_find(0, 0x900000));
	cr_assert_null(vs_map_find(0, 0x128000));
	/* Everything. */
	vs_map_remove_range(0, 0, 0x1000000);
	cr_assert_null(vs_map_find(0, 0x900000));
	cr_assert_null(vs_map_find(0, 0x100000));
}
