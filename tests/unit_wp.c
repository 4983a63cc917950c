/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * enable's write-protect tracking on an object no process maps: the
 * copy, the frozen settle of written pages, the punch of whole units
 * and the demotion of a unit written after the thaw. The writes a
 * write-protect fault would report are reported by hand. Every byte is
 * checked against a per-page pattern.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../helper/fault/wp.h"
#include "../helper/model/helper.h"
#include "../helper/ops/enable.h"
#include "../helper/ops/ops.h"
#include "../helper/sys/swapfile.h"
#include "fixture.h"
#include "unit_fixture.h"

#define NPAGES 1536 /* three 2 MiB units */

static int obj;
static uint8_t gen_of[NPAGES]; /* the model: 0 is a hole or a zero page */
static char msg[256];

/* What the VMM does: write page @pg through the memfd. */
static void guest_write(uint64_t pg, uint8_t gen)
{
	unit_guest_write(obj, pg, gen);
	gen_of[pg] = gen;
}

/* ...and what its write-protect fault tells the helper. */
static void reported_write(uint64_t pg, uint8_t gen)
{
	guest_write(pg, gen);
	pthread_mutex_lock(&vs.lock);
	vs_wp_installed(&vs.objs[obj], pg, 1);
	pthread_mutex_unlock(&vs.lock);
}

static void check(const uint8_t *got, uint64_t pg)
{
	static uint8_t want[VS_PAGE_SIZE];

	fx_fill_page(want, pg, gen_of[pg]);
	cr_assert_arr_eq(got, want, VS_PAGE_SIZE, "page %llu", (unsigned long long)pg);
}

static void check_guest(uint64_t pg)
{
	static uint8_t got[VS_PAGE_SIZE];

	cr_assert_eq(pread(vs.objs[obj].fd, got, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)),
		     VS_PAGE_SIZE);
	check(got, pg);
}

static bool has_data(int fd, uint64_t from_pg, uint64_t to_pg)
{
	off_t d = lseek(fd, (off_t)(from_pg * VS_PAGE_SIZE), SEEK_DATA);

	return d >= 0 && d < (off_t)(to_pg * VS_PAGE_SIZE);
}

static void setup(void)
{
	memset(gen_of, 0, sizeof(gen_of));
	obj = unit_setup_obj("unit-wp", NPAGES);
}

TestSuite(wp, .init = setup);

Test(wp, written_pages_are_copied_again_and_whole_units_punched)
{
	struct vs_obj *o = &vs.objs[obj];
	uint64_t none = 0, moved = 0, data = 0;

	/* Data everywhere but a hole in unit 1. */
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		if (pg < 600 || pg >= 700)
			guest_write(pg, 1);
	pthread_mutex_lock(&vs.lock);
	cr_assert_eq(vs_wp_begin(), 0);
	cr_assert_eq(vs.wp_phase, VS_WP_TRACK);
	pthread_mutex_unlock(&vs.lock);
	cr_assert_eq(vs_stage_all(false, &none), 0);
	cr_assert_eq(vs.stats.c.staging, 0, "the copy alone stages nothing");

	/* While the VMM runs: rewrites, a discard, a hole filled. */
	reported_write(5, 2);
	reported_write(1000, 2);
	reported_write(650, 3);
	cr_assert_eq(fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       7 * VS_PAGE_SIZE, VS_PAGE_SIZE), 0);
	gen_of[7] = 0;
	pthread_mutex_lock(&vs.lock);
	vs_discard(o, 7, 1);
	cr_assert_eq(vs.wp_dirtied, 3);

	/* Frozen: staging now equals the guest for every data page. */
	cr_assert_eq(vs_wp_settle_frozen(), 0);
	cr_assert_eq(vs.wp_phase, VS_WP_PUNCH);
	for (uint64_t pg = 0; pg < NPAGES; pg++) {
		cr_assert_eq(vs_bit(o->copied, pg), gen_of[pg] != 0, "page %llu",
			     (unsigned long long)pg);
		if (gen_of[pg])
			check(o->stg + pg * VS_PAGE_SIZE, pg);
	}
	pthread_mutex_unlock(&vs.lock);

	/*
	 * After the thaw, a write in unit 2 keeps that unit resident, and so
	 * does a hole filled in unit 1: punching would take the new page.
	 */
	reported_write(1100, 4);
	reported_write(690, 6);
	cr_assert_eq(vs.stats.en.kept_units, 2);
	for (uint64_t pg = 512; pg < NPAGES; pg++)
		cr_assert_not(vs_bit(o->copied, pg));
	cr_assert_not(has_data(o->stg_fd, 512, NPAGES), "copies of units 1 and 2 dropped");

	cr_assert_eq(vs_wp_punch_all(&moved), 0);
	for (uint64_t pg = 0; pg < 512; pg++)
		data += gen_of[pg] != 0;
	cr_assert_eq(moved, data);
	cr_assert_eq(vs.stats.c.staging, data);
	cr_assert_not(has_data(o->fd, 0, 512), "unit 0 punched");
	for (uint64_t pg = 0; pg < NPAGES; pg++) {
		enum vs_pstate want = pg < 512 && gen_of[pg] ? VS_P_STAGING : VS_P_RESIDENT;

		cr_assert_eq(vs_pt_state(o->pt[pg]), want, "page %llu", (unsigned long long)pg);
	}
	pthread_mutex_lock(&vs.lock);
	vs_wp_end();
	cr_assert_eq(vs.wp_phase, VS_WP_OFF);
	cr_assert_null(o->copied);
	pthread_mutex_unlock(&vs.lock);

	/* And all of it comes back. */
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		check_guest(pg);
}

Test(wp, ending_early_keeps_every_page_resident)
{
	struct vs_obj *o = &vs.objs[obj];
	uint64_t none = 0;

	for (uint64_t pg = 0; pg < NPAGES; pg += 3)
		guest_write(pg, 5);
	pthread_mutex_lock(&vs.lock);
	cr_assert_eq(vs_wp_begin(), 0);
	pthread_mutex_unlock(&vs.lock);
	cr_assert_eq(vs_stage_all(false, &none), 0);
	cr_assert(has_data(o->stg_fd, 0, NPAGES));
	pthread_mutex_lock(&vs.lock);
	vs_wp_end(); /* say the freeze failed */
	pthread_mutex_unlock(&vs.lock);
	cr_assert_not(has_data(o->stg_fd, 0, NPAGES), "copies dropped");
	cr_assert_eq(vs.stats.c.staging, 0);
	for (uint64_t pg = 0; pg < NPAGES; pg++) {
		cr_assert_eq(vs_pt_state(o->pt[pg]), VS_P_RESIDENT);
		check_guest(pg);
	}
}

Test(wp, bitmaps_grow_with_the_object)
{
	struct vs_obj *o = &vs.objs[obj];
	int fd = dup(o->fd);

	pthread_mutex_lock(&vs.lock);
	cr_assert_eq(vs_wp_begin(), 0);
	vs_bit_set(o->copied, NPAGES - 1);
	cr_assert_eq(ftruncate(fd, 2 * NPAGES * VS_PAGE_SIZE), 0);
	cr_assert_eq(vs_obj_get(fd, "unit-wp", 2 * NPAGES * VS_PAGE_SIZE), obj);
	cr_assert_eq(o->wp_pages, 2 * NPAGES);
	cr_assert(vs_bit(o->copied, NPAGES - 1), "old bits kept");
	for (uint64_t pg = NPAGES; pg < 2 * NPAGES; pg++)
		cr_assert_not(vs_bit(o->copied, pg) || vs_bit(o->dirty, pg));
	vs_wp_end();
	pthread_mutex_unlock(&vs.lock);
}
