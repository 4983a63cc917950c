/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pages held twice (helper/model/dual.h): guest memory holds a page while its
 * entry says its only copy is staged or in the swap file, because
 * something wrote the memfd behind the helper's back. Swap-in must keep
 * both copies and fail naming them, unless disable keep= chose; trim and
 * out refuse; the cheap check in status sees them. Swap-in goes through
 * pwrite (no mapping) and through UFFDIO_COPY (a registered mapping).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helper/model/dual.h"
#include "../helper/model/helper.h"
#include "../helper/ops/ops.h"
#include "../helper/state/state.h"
#include "fixture.h"
#include "unit_fixture.h"

#define NPAGES 1024
#define GEN_SAVED_FILE 1
#define GEN_SAVED_STG 2
#define GEN_BEHIND 9

static int obj;
static char msg[256];
static const uint64_t behind_pgs[] = { 3, 4, 600 }; /* two in the file, one staged */

static void check_bytes(const uint8_t *got, uint64_t pg, uint64_t gen, const char *where)
{
	static uint8_t want[VS_PAGE_SIZE];

	fx_fill_page(want, pg, gen);
	cr_assert_arr_eq(got, want, VS_PAGE_SIZE, "%s page %llu, want gen %llu", where,
			 (unsigned long long)pg, (unsigned long long)gen);
}

static void check_guest(uint64_t pg, uint64_t gen)
{
	static uint8_t got[VS_PAGE_SIZE];

	cr_assert_eq(pread(vs.objs[obj].fd, got, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)),
		     VS_PAGE_SIZE);
	check_bytes(got, pg, gen, "guest");
}

/* Stage page @pg with @gen and punch it from the guest, as enable would. */
static void stage(uint64_t pg, uint64_t gen)
{
	struct vs_obj *o = &vs.objs[obj];

	fx_fill_page(o->stg + pg * VS_PAGE_SIZE, pg, gen);
	vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, false, 0));
	cr_assert_eq(fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)(pg * VS_PAGE_SIZE), VS_PAGE_SIZE), 0);
}

/* What an unsupported pwrite() to the guest memfd does. */
static void write_behind(uint64_t pg)
{
	static uint8_t buf[VS_PAGE_SIZE];

	fx_fill_page(buf, pg, GEN_BEHIND);
	cr_assert_eq(pwrite(vs.objs[obj].fd, buf, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)),
		     VS_PAGE_SIZE);
}

static bool is_behind(uint64_t pg)
{
	for (unsigned i = 0; i < sizeof(behind_pgs) / sizeof(behind_pgs[0]); i++)
		if (behind_pgs[i] == pg)
			return true;
	return false;
}

static uint64_t saved_gen(uint64_t pg)
{
	return pg < NPAGES / 2 ? GEN_SAVED_FILE : GEN_SAVED_STG;
}

/* The first half in the swap file, the second staged; then the writes behind. */
static void swapped_out_then_written_behind(void)
{
	for (uint64_t pg = 0; pg < NPAGES / 2; pg++)
		stage(pg, GEN_SAVED_FILE);
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	for (uint64_t pg = NPAGES / 2; pg < NPAGES; pg++)
		stage(pg, GEN_SAVED_STG);
	for (unsigned i = 0; i < sizeof(behind_pgs) / sizeof(behind_pgs[0]); i++)
		write_behind(behind_pgs[i]);
}

static int check_pages(void)
{
	uint64_t n;

	pthread_mutex_lock(&vs.lock);
	n = vs_dual_check();
	pthread_mutex_unlock(&vs.lock);
	return (int)n;
}

/* A plain disable: every other page back, the three kept in both places, named. */
static void disable_keeps_both(void)
{
	struct vs_obj *o = &vs.objs[obj];

	vs_dual_set_keep(VS_KEEP_NONE);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), -EEXIST, "%s", msg);
	cr_assert(strstr(msg, "guest memory of unit-dual holds 3 pages also saved"), "%s", msg);
	cr_assert(strstr(msg, "first at pages 0x3, 0x4..."), "%s", msg);
	cr_assert(strstr(msg, "both copies kept"), "%s", msg);
	cr_assert(strstr(vs.last_error, "holds 3 pages"), "last_error: %s", vs.last_error);
	cr_assert_eq(vs_dual_pages(), 3);
	cr_assert_eq(vs.stats.c.swapped, 2);
	cr_assert_eq(vs.stats.c.staging, 1);
	for (uint64_t pg = 0; pg < NPAGES; pg++) {
		uint32_t e = o->pt[pg];

		if (!is_behind(pg)) {
			cr_assert_eq(vs_pt_state(e), VS_P_RESIDENT, "page %llu", (unsigned long long)pg);
			check_guest(pg, saved_gen(pg));
			continue;
		}
		/* Both copies: the guest's bytes, and the saved ones untouched. */
		check_guest(pg, GEN_BEHIND);
		if (pg < NPAGES / 2) {
			cr_assert_eq(vs_pt_state(e), VS_P_FILE, "page %llu", (unsigned long long)pg);
			cr_assert(vs_slots_is_used(&vs.swap.slots, vs_pt_slot(e)));
		} else {
			cr_assert_eq(vs_pt_state(e), VS_P_STAGING, "page %llu", (unsigned long long)pg);
			check_bytes(o->stg + pg * VS_PAGE_SIZE, pg, GEN_SAVED_STG, "staging");
		}
	}
}

static void setup(void)
{
	obj = unit_setup_obj("unit-dual", NPAGES);
}

TestSuite(dual, .init = setup);

Test(dual, disable_keeps_both_copies_then_keep_saved_restores_them)
{
	swapped_out_then_written_behind();
	cr_assert_eq(check_pages(), 3, "the cheap check sees them before disable");
	disable_keeps_both();
	/* Again: still both, still named, nothing else to do. */
	disable_keeps_both();

	vs_dual_set_keep(VS_KEEP_SAVED);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert(strstr(msg, "of 3 pages held twice, kept the saved copies"), "%s", msg);
	cr_assert_eq(vs.stats.c.staging + vs.stats.c.swapped, 0);
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		check_guest(pg, saved_gen(pg));
	cr_assert_eq(check_pages(), 0);
	cr_assert_eq(vs_dual_pages(), 0);
}

Test(dual, keep_guest_keeps_the_bytes_written_behind)
{
	struct vs_obj *o = &vs.objs[obj];
	off_t d;

	swapped_out_then_written_behind();
	disable_keeps_both();
	vs_dual_set_keep(VS_KEEP_GUEST);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	cr_assert(strstr(msg, "of 3 pages held twice, kept guest memory's bytes"), "%s", msg);
	cr_assert_eq(vs.stats.c.staging + vs.stats.c.swapped, 0);
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		check_guest(pg, is_behind(pg) ? GEN_BEHIND : saved_gen(pg));
	d = lseek(o->stg_fd, 0, SEEK_DATA);
	cr_assert(d < 0, "staging copy dropped (data at %lld)", (long long)d);
	cr_assert_eq(vs.swap.slots.in_use, 0);
}

/* Through UFFDIO_COPY: the double shows as EEXIST on a registered mapping. */
Test(dual, swap_in_through_a_registered_mapping)
{
	uint64_t len = NPAGES * VS_PAGE_SIZE;
	int uffd = fx_uffd(O_NONBLOCK), idx;
	uint8_t *guest;

	if (uffd < 0)
		cr_skip_test("userfaultfd unavailable: %s", strerror(-uffd));
	/* No fault thread: nothing here touches a hole through the mapping. */
	vs.fault_epfd = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_geq(vs.fault_epfd, 0);
	idx = vs_proc_add(getpid(), uffd, -1, true);
	cr_assert_geq(idx, 0, "vs_proc_add: %s", strerror(-idx));
	guest = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vs.objs[obj].fd, 0);
	cr_assert_neq(guest, MAP_FAILED);
	cr_assert_eq(vs_map_add(idx, obj, (uint64_t)(uintptr_t)guest, len, 0), 0);
	vs.wp_off = true; /* missing mode only: nothing here serves write-protect faults */
	for (int i = 0; i < VS_MAX_MAPS; i++)
		if (vs.maps[i].used)
			cr_assert_eq(vs_map_register(&vs.maps[i]), 0);
	cr_assert_not_null(vs_map_for_page(obj, 0));

	swapped_out_then_written_behind();
	disable_keeps_both();
	vs_dual_set_keep(VS_KEEP_SAVED);
	cr_assert_eq(vs_op_disable(msg, sizeof(msg)), 0, "%s", msg);
	for (uint64_t pg = 0; pg < NPAGES; pg++) {
		check_guest(pg, saved_gen(pg));
		check_bytes(guest + pg * VS_PAGE_SIZE, pg, saved_gen(pg), "mapping");
	}
	munmap(guest, len);
}

Test(dual, trim_and_out_refuse_and_change_nothing)
{
	stage(10, 0); /* a zero page trim would drop */
	stage(11, 5);
	write_behind(10);
	cr_assert_eq(vs_op_trim(msg, sizeof(msg)), -EEXIST, "%s", msg);
	cr_assert(strstr(msg, "holds 1 page also saved (first at page 0xa)"), "%s", msg);
	cr_assert_eq(vs_pt_state(vs.objs[obj].pt[10]), VS_P_STAGING, "not trimmed");
	cr_assert_eq(vs.stats.c.trimmed_zero, 0);
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), -EEXIST, "%s", msg);
	cr_assert_eq(vs.stats.c.staging, 2);
	cr_assert_eq(vs.swap.slots.in_use, 0);
	check_guest(10, GEN_BEHIND);
}

/*
 * A quiet Active state goes to Failed when the check sees them, once
 * (the same finding does not set last_error again). Pages guest memory
 * legitimately holds (resident, and data past every mapping) are not
 * taken for doubles.
 */
Test(dual, watch_fails_a_quiet_state_and_ignores_resident_pages)
{
	static uint8_t page[VS_PAGE_SIZE];
	struct vs_obj *o = &vs.objs[obj];
	uint64_t seq;

	/* Data past the tracked pages: the memfd is larger than its mappings. */
	cr_assert_eq(ftruncate(o->fd, (off_t)(2 * NPAGES * VS_PAGE_SIZE)), 0);
	for (uint64_t pg = NPAGES; pg < NPAGES + 64; pg++) {
		fx_fill_page(page, pg, 3);
		cr_assert_eq(pwrite(o->fd, page, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)),
			     VS_PAGE_SIZE);
	}
	for (uint64_t pg = 0; pg < NPAGES; pg++) {
		if (pg % 2) {
			stage(pg, 1);
		} else {
			fx_fill_page(page, pg, 4);
			cr_assert_eq(pwrite(o->fd, page, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)),
				     VS_PAGE_SIZE);
		}
	}
	cr_assert_eq(vs_op_out(msg, sizeof(msg)), 0, "%s", msg);
	vs.state = VS_ACTIVE;
	pthread_mutex_lock(&vs.lock);
	cr_assert_not(vs_state_watch_doubles());
	pthread_mutex_unlock(&vs.lock);
	cr_assert_eq(vs.state, VS_ACTIVE);
	cr_assert_eq(vs_dual_pages(), 0);

	write_behind(7);
	pthread_mutex_lock(&vs.lock);
	cr_assert(vs_state_watch_doubles());
	cr_assert_eq(vs.state, VS_FAILED);
	seq = vs.err_seq;
	cr_assert_not(vs_state_watch_doubles(), "the same finding changes nothing");
	cr_assert_eq(vs.err_seq, seq);
	pthread_mutex_unlock(&vs.lock);
	cr_assert(strstr(vs.last_error, "holds 1 page also saved (first at page 0x7)"), "%s",
		  vs.last_error);
	cr_assert_eq(vs_dual_pages(), 1);
}

/* A process that maps the memfd without a userfaultfd is named. */
Test(dual, names_the_process_that_maps_it_unregistered)
{
	uint64_t len = NPAGES * VS_PAGE_SIZE;
	int go[2], done[2];
	uint8_t *m;
	pid_t pid;
	char want[64], c = 0;

	for (uint64_t pg = 0; pg < NPAGES; pg++)
		stage(pg, 1);
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(done), 0);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vs.objs[obj].fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* A forked child that never joined: its write fills a hole. */
		m[5 * VS_PAGE_SIZE] = 1;
		if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	munmap(m, len);
	cr_assert_eq(read(done[0], &c, 1), 1);
	cr_assert_eq(check_pages(), 1);
	vs_dual_describe(msg, sizeof(msg));
	snprintf(want, sizeof(want), "pid %d (", (int)pid);
	cr_assert(strstr(msg, want), "%s", msg);
	cr_assert(strstr(msg, "maps it without userfaultfd"), "%s", msg);
	cr_assert_eq(write(go[1], &c, 1), 1);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
}

/*
 * Resident holes hide a page written behind from the block count (the
 * cheap check), so enable, which would stage it, looks page by page.
 */
Test(dual, the_scan_sees_what_the_block_count_cannot)
{
	for (uint64_t pg = 0; pg < 100; pg++)
		stage(pg, 1);
	write_behind(50);
	cr_assert_eq(check_pages(), 0, "1 block against 924 resident entries fits");
	pthread_mutex_lock(&vs.lock);
	cr_assert_eq(vs_dual_scan(), 1);
	cr_assert_eq(vs_dual_check(), 1, "and the check keeps what the scan found");
	pthread_mutex_unlock(&vs.lock);
}

/*
 * out punches a unit without vs.lock once its entries say FILE: until
 * the punch is done, guest memory still holds the bytes. That is not a
 * page held twice (a command's scan meanwhile refused enable); the same
 * unit with no punch under way is.
 */
Test(dual, a_unit_being_punched_is_not_held_twice)
{
	struct vs_obj *o = &vs.objs[obj];
	static uint8_t buf[VS_PAGE_SIZE];
	uint32_t slot;

	pthread_mutex_lock(&vs.lock);
	for (uint64_t pg = 0; pg < 512; pg++) {
		fx_fill_page(buf, pg, GEN_SAVED_FILE);
		cr_assert_eq(pwrite(o->fd, buf, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)),
			     VS_PAGE_SIZE);
		cr_assert_eq(vs_slots_alloc(&vs.swap.slots, &slot), 0);
		vs_page_set(o, pg, vs_pt_make(VS_P_FILE, true, slot));
	}
	vs.punching[0] = (struct vs_unit_ref){ obj, 0 };
	vs.npunching = 1;
	cr_assert_eq(vs_dual_scan(), 0, "pages of a unit being punched counted as held twice");
	cr_assert_eq(vs_dual_check(), 0);
	vs.npunching = 0;
	cr_assert_eq(vs_dual_scan(), 512);
	pthread_mutex_unlock(&vs.lock);
}
