/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trim, out and swap-in on an object no process maps, so no uffd is
 * needed: staged pages go to the swap file and come back into the guest
 * memfd with pwrite. Every byte is checked against a per-page pattern.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../helper/model/dual.h"
#include "../helper/model/helper.h"
#include "../helper/ops/ops.h"
#include "../helper/sys/swapfile.h"
#include "fixture.h"
#include "unit_fixture.h"

#define NPAGES 1536 /* 6 MiB: three 2 MiB units */

static int obj;
static char msg[256];

/* Compare page @pg of the guest memfd with the pattern (pread never allocates). */
static void check_guest(uint64_t pg, uint64_t gen)
{
	static uint8_t got[VS_PAGE_SIZE], want[VS_PAGE_SIZE];

	cr_assert_eq(pread(vs.objs[obj].fd, got, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)),
		     VS_PAGE_SIZE);
	fx_fill_page(want, pg, gen);
	cr_assert_arr_eq(got, want, VS_PAGE_SIZE, "page %llu", (unsigned long long)pg);
}

/* Put page @pg in staging with pattern @gen and punch it from the guest, as enable would. */
static void stage(uint64_t pg, uint64_t gen, bool keep_slot, uint32_t slot)
{
	struct vs_obj *o = &vs.objs[obj];

	fx_fill_page(o->stg + pg * VS_PAGE_SIZE, pg, gen);
	vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, keep_slot, slot));
	cr_assert_eq(fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)(pg * VS_PAGE_SIZE), VS_PAGE_SIZE), 0);
}

static void setup(void)
{
	obj = unit_setup_obj("unit-ops", NPAGES);
}

TestSuite(ops, .init = setup);

Test(ops, out_then_swap_in_restores_every_byte)
{
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		if (pg % 7)
			stage(pg, pg % 5, false, 0); /* every fifth is a zero page */
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs.stats.c.staging, 0);
	cr_assert_eq(vs.stats.c.swapped, NPAGES - (NPAGES + 6) / 7);
	cr_assert_eq(vs.swap.slots.in_use, vs.stats.c.swapped);
	cr_assert_eq(vs_slots_end(&vs.swap.slots), vs.stats.c.swapped, "file is dense");
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		if (pg % 7)
			cr_assert_eq(vs_pt_state(vs.objs[obj].pt[pg]), VS_P_FILE);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs.stats.c.swapped, 0);
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		check_guest(pg, pg % 7 ? pg % 5 : 0);
	cr_assert_eq(vs.swap.slots.in_use, 0);
	/* The worker gives the blocks back once disable has returned. */
	cr_assert(vs.swap.release);
	vs_swap_release();
	cr_assert_eq(lseek(vs.swap.fd, 0, SEEK_END), 0, "swap file truncated");
}

Test(ops, trim_drops_zero_and_clean_pages_only)
{
	static uint8_t buf[VS_PAGE_SIZE] __attribute__((aligned(4096))); /* O_DIRECT */
	uint32_t s_clean, s_dirty, s_zero;

	/* Page 1 is clean: its slot holds exactly its bytes. Page 2 changed since. */
	vs_slots_alloc(&vs.swap.slots, &s_clean);
	vs_slots_alloc(&vs.swap.slots, &s_dirty);
	vs_slots_alloc(&vs.swap.slots, &s_zero);
	fx_fill_page(buf, 1, 3);
	cr_assert_eq(vs_swapfile_write(vs.swap.fd, s_clean, buf, 1), 0);
	fx_fill_page(buf, 2, 3);
	cr_assert_eq(vs_swapfile_write(vs.swap.fd, s_dirty, buf, 1), 0);
	stage(0, 0, false, 0);        /* zero */
	stage(1, 3, true, s_clean);   /* clean */
	stage(2, 4, true, s_dirty);   /* dirty */
	stage(3, 9, false, 0);        /* plain data */
	stage(4, 0, true, s_zero);    /* zero now, had a copy: the copy is freed */
	cr_assert_eq(vs_op_trim(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs.stats.c.trimmed_zero, 2);
	cr_assert_eq(vs.stats.c.redundant, 1);
	cr_assert_eq(vs_pt_state(vs.objs[obj].pt[0]), VS_P_RESIDENT);
	cr_assert_eq(vs_pt_state(vs.objs[obj].pt[1]), VS_P_FILE);
	cr_assert_eq(vs_pt_slot(vs.objs[obj].pt[1]), s_clean);
	cr_assert_eq(vs_pt_state(vs.objs[obj].pt[2]), VS_P_STAGING);
	cr_assert_not(vs_pt_has_slot(vs.objs[obj].pt[2]), "stale copy forgotten");
	cr_assert_not(vs_slots_is_used(&vs.swap.slots, s_dirty));
	cr_assert_not(vs_slots_is_used(&vs.swap.slots, s_zero));
	cr_assert(vs_slots_is_used(&vs.swap.slots, s_clean));
	cr_assert_eq(vs_pt_state(vs.objs[obj].pt[3]), VS_P_STAGING);
	cr_assert_eq(vs.stats.c.staging, 2);
	/* And everything still comes back right. */
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	check_guest(0, 0);
	check_guest(1, 3);
	check_guest(2, 4);
	check_guest(3, 9);
	check_guest(4, 0);
}

Test(ops, failed_write_keeps_pages_in_staging)
{
	for (uint64_t pg = 0; pg < 600; pg++)
		stage(pg, 1, false, 0);
	close(vs.swap.fd);
	vs.swap.fd = open("/dev/full", O_RDWR | O_CLOEXEC);
	cr_assert_geq(vs.swap.fd, 0);
	cr_assert_neq(vs_op_out(msg, sizeof(msg)), 0);
	cr_assert(strstr(msg, "stay in staging"), "%s", msg);
	cr_assert_eq(vs.stats.c.staging, 600, "nothing lost");
	cr_assert_eq(vs.swap.slots.in_use, 0, "slots of the failed batch given back");
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	for (uint64_t pg = 0; pg < 600; pg++)
		check_guest(pg, 1);
}

Test(ops, second_cycle_after_disable_forgets_old_copies)
{
	/* Cycle 1: pages come back from the file keeping their slots... */
	for (uint64_t pg = 0; pg < 64; pg++)
		stage(pg, 1, false, 0);
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	for (uint64_t pg = 0; pg < 64; pg++)
		cr_assert_not(vs_pt_has_slot(vs.objs[obj].pt[pg]), "page %llu", (unsigned long long)pg);
	/* ...cycle 2 with other bytes must not treat the truncated file as a copy. */
	for (uint64_t pg = 0; pg < 64; pg++)
		stage(pg, 2, false, 0);
	cr_assert_eq(vs_op_trim(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs.stats.c.redundant, 0);
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	for (uint64_t pg = 0; pg < 64; pg++)
		check_guest(pg, 2);
}

/* A buffered file whose sync fails (/dev/null: writes work, fdatasync is EINVAL). */
Test(ops, failed_sync_keeps_pages_in_staging)
{
	for (uint64_t pg = 0; pg < 1100; pg++)
		stage(pg, 2, false, 0);
	close(vs.swap.fd);
	vs.swap.fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	vs.swap.direct = false;
	cr_assert_geq(vs.swap.fd, 0);
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), -EINVAL, "%s", msg);
	cr_assert(strstr(msg, "stay in staging"), "%s", msg);
	cr_assert(strstr(vs.last_error, "syncing the swap file"), "%s", vs.last_error);
	cr_assert_eq(vs.stats.c.staging, 1100, "no page left staging before its sync");
	cr_assert_eq(vs.stats.c.swapped, 0);
	cr_assert_eq(vs.swap.slots.in_use, 0, "slots of the failed batch given back");
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	for (uint64_t pg = 0; pg < 1100; pg++)
		check_guest(pg, 2);
}

/*
 * Swap-in meets a read error (VMSWAP_TEST_FAIL_READS): disable fails and
 * names the slot, the pages not read stay in the file, and a second
 * disable, with reads working again, brings every byte back.
 */
Test(ops, failed_read_fails_disable_and_keeps_pages)
{
	uint64_t back = 0;

	for (uint64_t pg = 0; pg < NPAGES; pg++)
		stage(pg, 3, false, 0);
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(setenv("VMSWAP_TEST_FAIL_READS", "0:1", 1), 0);
	cr_assert_eq(vs_swapfile_init_faults(), 0);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), -EIO, "%s", msg);
	cr_assert(strstr(msg, "reading swap file slot"), "%s", msg);
	cr_assert(strstr(msg, "Input/output error"), "%s", msg);
	cr_assert_eq(vs_swapfile_read_errors(), 1);
	cr_assert_gt(vs.stats.c.swapped, 0, "the failed run stays in the file");
	for (uint64_t pg = 0; pg < NPAGES; pg++) {
		uint32_t e = vs.objs[obj].pt[pg];

		if (vs_pt_state(e) == VS_P_RESIDENT) {
			check_guest(pg, 3);
			back++;
		} else {
			cr_assert_eq(vs_pt_state(e), VS_P_FILE, "page %llu", (unsigned long long)pg);
			cr_assert(vs_slots_is_used(&vs.swap.slots, vs_pt_slot(e)));
		}
	}
	cr_assert_eq(back + vs.stats.c.swapped, NPAGES);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs.stats.c.swapped, 0);
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		check_guest(pg, 3);
}

/*
 * A page marked staged while guest memory still holds it (a helper that
 * died between staging and punching): the recovery's swap-in (keep=guest)
 * keeps the guest's bytes, the newer ones, and still brings back its
 * staged neighbours. A plain disable keeps both (unit_dual.c).
 */
Test(ops, swap_in_keeps_a_page_guest_memory_still_holds)
{
	struct vs_obj *o = &vs.objs[obj];
	static uint8_t page[VS_PAGE_SIZE];

	stage(0, 1, false, 0);
	stage(1, 2, false, 0);
	stage(2, 3, false, 0);
	fx_fill_page(page, 1, 7);
	cr_assert_eq(pwrite(o->fd, page, VS_PAGE_SIZE, VS_PAGE_SIZE), VS_PAGE_SIZE);
	vs_dual_set_keep(VS_KEEP_GUEST);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	check_guest(0, 1);
	check_guest(1, 7);
	check_guest(2, 3);
	cr_assert_eq(vs.stats.c.staging, 0);
}
