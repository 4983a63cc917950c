/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Staging in place on an object no process maps: enable's staging, trim
 * and out freeing whole units only when every data page of the unit has
 * another copy or is zero, a write (reported as its write-protect fault
 * would make it: the page resident again) keeping its unit, a unit with
 * data past the object's end, a failing write losing nothing, clean pages
 * not written twice, and disable. Every byte is checked against a
 * per-page pattern.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "../helper/model/helper.h"
#include "../helper/ops/inplace.h"
#include "../helper/ops/ops.h"
#include "../helper/sys/swapfile.h"
#include "fixture.h"
#include "unit_fixture.h"

#define NPAGES 1536 /* three 2 MiB units */

static int obj;
static uint8_t gen_of[NPAGES]; /* the model: 0 is a hole or a zero page */
static char msg[256];

static void guest_write(uint64_t pg, uint8_t gen)
{
	unit_guest_write(obj, pg, gen);
	gen_of[pg] = gen;
}

/* A write to a staged page, as its write-protect fault has the helper see it first. */
static void reported_write(uint64_t pg, uint8_t gen)
{
	struct vs_obj *o = &vs.objs[obj];
	uint32_t e;

	pthread_mutex_lock(&vs.lock);
	e = o->pt[pg];
	if (vs_pt_state(e) == VS_P_INPLACE)
		vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, vs_pt_has_slot(e), vs_pt_slot(e)));
	pthread_mutex_unlock(&vs.lock);
	guest_write(pg, gen);
}

static void check_all(void)
{
	static uint8_t got[VS_PAGE_SIZE], want[VS_PAGE_SIZE];

	for (uint64_t pg = 0; pg < NPAGES; pg++) {
		cr_assert_eq(pread(vs.objs[obj].fd, got, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)),
			     VS_PAGE_SIZE);
		fx_fill_page(want, pg, gen_of[pg]);
		cr_assert_arr_eq(got, want, VS_PAGE_SIZE, "page %llu", (unsigned long long)pg);
	}
}

static bool has_data(uint64_t from_pg, uint64_t to_pg)
{
	off_t d = lseek(vs.objs[obj].fd, (off_t)(from_pg * VS_PAGE_SIZE), SEEK_DATA);

	return d >= 0 && d < (off_t)(to_pg * VS_PAGE_SIZE);
}

static enum vs_pstate state_of(uint64_t pg)
{
	return vs_pt_state(vs.objs[obj].pt[pg]);
}

static uint64_t stage(void)
{
	uint64_t staged = 0;

	pthread_mutex_lock(&vs.lock);
	cr_assert_eq(vs_inplace_stage_all(&staged), 0);
	pthread_mutex_unlock(&vs.lock);
	cr_assert_eq(vs.stats.c.inplace, staged);
	return staged;
}

static void setup(void)
{
	memset(gen_of, 0, sizeof(gen_of));
	obj = unit_setup_obj("unit-inplace", NPAGES);
}

static void teardown(void)
{
	unsetenv("VMSWAP_TEST_FAIL_WRITE_AFTER");
	vs_swapfile_init_faults();
}

TestSuite(inplace, .init = setup, .fini = teardown);

Test(inplace, staging_marks_data_pages_and_copies_nothing)
{
	for (uint64_t pg = 0; pg < NPAGES; pg += 2)
		guest_write(pg, 1);
	cr_assert_eq(stage(), NPAGES / 2);
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		cr_assert_eq(state_of(pg), pg % 2 ? VS_P_RESIDENT : VS_P_INPLACE, "page %llu",
			     (unsigned long long)pg);
	cr_assert_eq(vs_staged_pages(), NPAGES / 2);
	cr_assert_not(lseek(vs.objs[obj].stg_fd, 0, SEEK_DATA) >= 0, "staging memfd unused");
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs.stats.c.inplace, 0);
	check_all();
}

Test(inplace, out_frees_whole_units_and_leaves_a_written_one_unwritten)
{
	uint64_t data = 0;

	for (uint64_t pg = 0; pg < NPAGES; pg++)
		if (pg % 7)
			guest_write(pg, 1); /* every 7th page a hole */
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		data += gen_of[pg] != 0;
	stage();
	reported_write(600, 2); /* unit 1 is written after enable */
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_not(has_data(0, 512), "unit 0 freed");
	cr_assert_not(has_data(1024, NPAGES), "unit 2 freed");
	for (uint64_t pg = 512; pg < 1024; pg++) {
		cr_assert_eq(state_of(pg), VS_P_RESIDENT, "page %llu of the written unit",
			     (unsigned long long)pg);
		/* It stays anyway, so its other pages were not written either. */
		cr_assert_not(vs_pt_has_slot(vs.objs[obj].pt[pg]));
	}
	for (uint64_t pg = 512; pg < 1024; pg++)
		data -= gen_of[pg] != 0;
	cr_assert_eq(vs.stats.c.swapped, data, "units 0 and 2 are in the file");
	cr_assert_eq(vs.stats.c.written, data, "and nothing else was written");
	cr_assert_eq(vs.stats.c.inplace, 0);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	check_all();
}

Test(inplace, zero_pages_are_not_written_and_go_alone)
{
	/* Unit 0: every other page zero (data, but zero bytes); unit 1: written later. */
	static const uint8_t zero[VS_PAGE_SIZE];

	for (uint64_t pg = 0; pg < 1024; pg++) {
		if (pg % 2)
			guest_write(pg, 1);
		else
			cr_assert_eq(pwrite(vs.objs[obj].fd, zero, VS_PAGE_SIZE,
					    (off_t)(pg * VS_PAGE_SIZE)), VS_PAGE_SIZE);
	}
	stage();
	reported_write(513, 2);
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs.stats.c.trimmed_zero, 512, "every zero page dropped");
	cr_assert_not(has_data(0, 512), "unit 0 freed");
	for (uint64_t pg = 512; pg < 1024; pg += 2)
		cr_assert_not(has_data(pg, pg + 1), "zero page %llu of the kept unit punched",
			      (unsigned long long)pg);
	cr_assert(has_data(513, 514));
	cr_assert_eq(vs.stats.c.swapped, 256, "only unit 0's data pages are in the file");
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	check_all();
}

Test(inplace, data_past_the_object_keeps_its_unit)
{
	struct vs_obj *o = &vs.objs[obj];
	static uint8_t buf[VS_PAGE_SIZE];

	for (uint64_t pg = 0; pg < NPAGES; pg++)
		guest_write(pg, 1);
	/* The object covers 1.5 units of the last one's memfd data: shrink it. */
	pthread_mutex_lock(&vs.lock);
	o->npages = NPAGES - 256;
	pthread_mutex_unlock(&vs.lock);
	stage();
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_not(has_data(0, 1024));
	cr_assert(has_data(1024, NPAGES - 256), "the last unit stays: data past the object");
	cr_assert_eq(pread(o->fd, buf, VS_PAGE_SIZE, (off_t)((NPAGES - 1) * VS_PAGE_SIZE)),
		     VS_PAGE_SIZE);
	cr_assert(fx_page_is(buf, NPAGES - 1, 1));
	pthread_mutex_lock(&vs.lock);
	o->npages = NPAGES;
	pthread_mutex_unlock(&vs.lock);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	check_all();
}

Test(inplace, a_failing_write_loses_nothing)
{
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		guest_write(pg, 1);
	stage();
	setenv("VMSWAP_TEST_FAIL_WRITE_AFTER", "1", 1);
	vs_swapfile_init_faults();
	cr_assert_lt(vs_op_out(msg, sizeof(msg)), 0, "out should fail: %s", msg);
	cr_assert_eq(vs.stats.c.swapped + vs.stats.c.inplace, NPAGES, "every page somewhere");
	cr_assert_gt(vs.stats.c.inplace, 0, "the rest stays staged");
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		if (state_of(pg) == VS_P_INPLACE)
			cr_assert(has_data(pg, pg + 1), "staged page %llu still in guest memory",
				  (unsigned long long)pg);
	unsetenv("VMSWAP_TEST_FAIL_WRITE_AFTER");
	vs_swapfile_init_faults();
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	check_all();
}

Test(inplace, clean_pages_go_back_to_their_slot_unwritten)
{
	uint64_t written;

	struct vs_obj *o = &vs.objs[obj];
	static uint8_t buf[VS_PAGE_SIZE] __attribute__((aligned(4096))); /* O_DIRECT */

	/* Every page faulted back from the file earlier: it kept its slot. */
	for (uint64_t pg = 0; pg < NPAGES; pg++) {
		uint32_t slot;

		guest_write(pg, 1);
		fx_fill_page(buf, pg, 1);
		cr_assert_eq(vs_slots_alloc(&vs.swap.slots, &slot), 0);
		cr_assert_eq(vs_swapfile_write(vs.swap.fd, slot, buf, 1), 0);
		o->pt[pg] = vs_pt_make(VS_P_RESIDENT, true, slot);
	}
	/* A page of unit 0 changed since. */
	guest_write(3, 2);
	stage();
	cr_assert_eq(vs_op_trim(msg, sizeof(msg)), 0, "%s", msg);
	/* Units 1 and 2 are clean: back to the file; unit 0 stays, 511 of its pages fresh. */
	cr_assert_eq(vs.stats.c.redundant, 1024);
	cr_assert_not(has_data(512, NPAGES));
	cr_assert(has_data(0, 512));
	written = vs.stats.c.written;
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs.stats.c.swapped, NPAGES);
	cr_assert_eq(vs.stats.trans_pages, 512);
	cr_assert_eq(vs.stats.c.written - written, 1, "only the page that changed is written");
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	check_all();
}
