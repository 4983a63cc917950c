/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * out's turns (helper/ops/out_turns.c): writers that take turns in one
 * order, prepare for random times and end some turns without writing,
 * write in exactly the order the turns were taken; ending a turn twice
 * or early never blocks a later one.
 */
#include <criterion/criterion.h>
#include <pthread.h>
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

static void *writer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	for (;;) {
		uint64_t t;

		pthread_mutex_lock(&take_lock);
		if (ntaken == TOTAL) {
			pthread_mutex_unlock(&take_lock);
			return NULL;
		}
		ntaken++;
		t = vs_out_turn_take();
		pthread_mutex_unlock(&take_lock);
		usleep((useconds_t)(rand_r(&seed) % 400)); /* its read, its punch */
		if (ends_early(t)) {
			vs_out_turn_done(t);
			continue;
		}
		vs_out_turn_wait(t);
		pthread_mutex_lock(&log_lock);
		wrote[nwrote++] = t;
		pthread_mutex_unlock(&log_lock);
		usleep((useconds_t)(rand_r(&seed) % 100)); /* the write */
		vs_out_turn_done(t);
		if (rand_r(&seed) % 2)
			vs_out_turn_done(t); /* an error path ending it again */
	}
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
	cr_assert_eq(nwrote, expect, "%d writes, expected %d", nwrote, expect);
	for (int i = 1; i < nwrote; i++)
		cr_assert_lt(wrote[i - 1], wrote[i], "write %d: turn %llu after turn %llu", i,
			     (unsigned long long)wrote[i], (unsigned long long)wrote[i - 1]);
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
