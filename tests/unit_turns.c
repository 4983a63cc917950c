/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * out's turns (helper/ops/out_turns.c): writers that take turns in one
 * order, prepare for random times and end some turns without writing,
 * write in exactly the order the turns were taken; ending a turn twice
 * or early never blocks a later one.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "../helper/ops/out.h"

#define WRITERS 4
#define TOTAL 600

static pthread_mutex_t take_lock = PTHREAD_MUTEX_INITIALIZER; /* vs.lock's part */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t wrote[TOTAL];
static int nwrote, ntaken;

static bool ends_early(uint64_t t)
{
	return t % 5 == 3; /* a unit of zero pages, or an error */
}

static bool serving;      /* the disk-thread test: */
static pthread_t disk;    /* the thread serving */
static bool off_disk;     /* a write ran elsewhere */
static bool wrong_result; /* a writer got another write's result */
static int live;          /* writers not finished, in the disk-thread test */

/* A turn's write: logs its turn; its result tells the turn back. */
static int write_turn(void *arg)
{
	uint64_t t = *(uint64_t *)arg;

	pthread_mutex_lock(&log_lock);
	wrote[nwrote++] = t;
	if (serving && !pthread_equal(pthread_self(), disk))
		off_disk = true;
	pthread_mutex_unlock(&log_lock);
	usleep(50); /* the write */
	return -(int)(t % 1000) - 1;
}

static void *writer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	for (;;) {
		uint64_t t;

		pthread_mutex_lock(&take_lock);
		if (ntaken == TOTAL) {
			pthread_mutex_unlock(&take_lock);
			break;
		}
		ntaken++;
		t = vs_out_turn_take();
		pthread_mutex_unlock(&take_lock);
		usleep((useconds_t)(rand_r(&seed) % 400)); /* its read, its punch */
		if (ends_early(t)) {
			vs_out_turn_done(t);
			continue;
		}
		if (serving || rand_r(&seed) % 2) {
			if (vs_out_turn_run(t, write_turn, &t) != -(int)(t % 1000) - 1)
				wrong_result = true;
		} else {
			vs_out_turn_wait(t);
			write_turn(&t);
			vs_out_turn_done(t);
		}
		if (rand_r(&seed) % 2)
			vs_out_turn_done(t); /* an error path ending it again */
	}
	pthread_mutex_lock(&take_lock);
	if (serving && --live == 0)
		vs_out_turns_stop();
	pthread_mutex_unlock(&take_lock);
	return NULL;
}

static void check_order(int expect)
{
	cr_assert_eq(nwrote, expect, "%d writes, expected %d", nwrote, expect);
	for (int i = 1; i < nwrote; i++)
		cr_assert_lt(wrote[i - 1], wrote[i], "write %d: turn %llu after turn %llu", i,
			     (unsigned long long)wrote[i], (unsigned long long)wrote[i - 1]);
}

Test(turns, writes_go_in_the_order_turns_were_taken, .timeout = 60)
{
	pthread_t th[WRITERS];
	int expect = 0;

	vs_out_turns_reset();
	for (uintptr_t i = 0; i < WRITERS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, writer, (void *)(i + 1)), 0);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	for (uint64_t t = 0; t < TOTAL; t++)
		expect += !ends_early(t);
	check_order(expect);
	cr_assert(!wrong_result, "a writer got another write's result");
}

/*
 * The same with a disk thread: every write runs on it, in turn order,
 * each writer gets its own write's result, turns ended without a write
 * hold nothing back, and it returns once the writers stopped it.
 */
Test(turns, a_disk_thread_runs_every_write_in_order, .timeout = 60)
{
	pthread_t th[WRITERS];
	int expect = 0;

	vs_out_turns_reset();
	serving = true;
	disk = pthread_self();
	live = WRITERS;
	pthread_mutex_lock(&take_lock);
	for (uintptr_t i = 0; i < WRITERS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, writer, (void *)(i + 7)), 0);
	vs_out_turns_disk();
	pthread_mutex_unlock(&take_lock);
	vs_out_turns_serve();
	for (int i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	cr_assert(!off_disk, "a write ran off the disk thread");
	cr_assert(!wrong_result, "a writer got another write's result");
	for (uint64_t t = 0; t < TOTAL; t++)
		expect += !ends_early(t);
	check_order(expect);
	/* Served and gone: a write now runs in its own thread again. */
	serving = false;
	{
		uint64_t t = vs_out_turn_take();

		cr_assert_eq(vs_out_turn_run(t, write_turn, &t), -(int)(t % 1000) - 1);
		cr_assert_eq(wrote[nwrote - 1], t, "the write after serving did not run");
	}
}

Test(turns, ended_turns_never_block, .timeout = 10)
{
	uint64_t a, b, c;

	vs_out_turns_reset();
	a = vs_out_turn_take();
	b = vs_out_turn_take();
	c = vs_out_turn_take();
	cr_assert(a < b && b < c);
	vs_out_turn_done(b); /* before its time */
	vs_out_turn_done(b);
	vs_out_turn_done(a);
	vs_out_turn_wait(c); /* returns: nothing before it is held */
	vs_out_turn_done(c);
	vs_out_turn_wait(vs_out_turn_take());
}
