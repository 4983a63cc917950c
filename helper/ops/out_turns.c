/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The order of out's writes (out.h): one at a time, in the order their
 * slots were taken, all on one disk thread that does nothing else.
 * Measured here against four writes in flight, against each writer
 * writing its own batch once every earlier turn ended (the disk then
 * waited about a tenth of the time for the next writer to wake), and
 * against the writer that finished a write running the next ready one
 * (it also reads and punches, so the next write waited for that): this
 * was the fastest.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "out.h"

#define TURNS 16 /* more than the writers: each holds at most one turn */

/* A turn's write, handed to the disk thread by the writer that holds the turn. */
struct job {
	uint64_t turn;
	int (*fn)(void *);
	void *arg;
	int r;
	bool ran;
	pthread_cond_t cv; /* its writer waits for ran */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t taken;       /* turns handed out */
	uint64_t held[TURNS]; /* turns taken and not ended; UINT64_MAX: a free place */
	bool disk;            /* a disk thread runs the writes (vs_out_turns_serve) */
	bool stop;            /* ... until this, with no job left */
	struct job *jobs[TURNS];
} turns = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 }, false, false, { 0 } };

void vs_out_turns_reset(void)
{
	pthread_mutex_lock(&turns.mu);
	turns.taken = 0;
	turns.disk = false;
	turns.stop = false;
	for (int i = 0; i < TURNS; i++) {
		turns.held[i] = UINT64_MAX;
		turns.jobs[i] = NULL;
	}
	pthread_mutex_unlock(&turns.mu);
}

uint64_t vs_out_turn_take(void)
{
	uint64_t t;
	int i = 0;

	pthread_mutex_lock(&turns.mu);
	t = turns.taken++;
	while (i < TURNS - 1 && turns.held[i] != UINT64_MAX)
		i++;
	turns.held[i] = t; /* a free place: writers < TURNS */
	pthread_mutex_unlock(&turns.mu);
	return t;
}

/* turns.mu held: is a turn before @turn still held? */
static bool earlier_held(uint64_t turn)
{
	for (int i = 0; i < TURNS; i++)
		if (turns.held[i] < turn)
			return true;
	return false;
}

/* turns.mu held: end @turn, if it is still held. */
static void end_turn(uint64_t turn)
{
	for (int i = 0; i < TURNS; i++) {
		if (turns.held[i] == turn) {
			turns.held[i] = UINT64_MAX;
			pthread_cond_broadcast(&turns.cv);
		}
	}
}

void vs_out_turn_done(uint64_t turn)
{
	pthread_mutex_lock(&turns.mu);
	end_turn(turn);
	pthread_mutex_unlock(&turns.mu);
}

void vs_out_turn_wait(uint64_t turn)
{
	pthread_mutex_lock(&turns.mu);
	while (earlier_held(turn))
		pthread_cond_wait(&turns.cv, &turns.mu);
	pthread_mutex_unlock(&turns.mu);
}

int vs_out_turn_run(uint64_t turn, int (*fn)(void *), void *arg)
{
	struct job j = { turn, fn, arg, 0, false, PTHREAD_COND_INITIALIZER };
	int i = 0, r;

	pthread_mutex_lock(&turns.mu);
	if (!turns.disk) {
		pthread_mutex_unlock(&turns.mu);
		vs_out_turn_wait(turn);
		r = fn(arg);
		vs_out_turn_done(turn);
		return r;
	}
	while (i < TURNS - 1 && turns.jobs[i])
		i++;
	turns.jobs[i] = &j; /* a free place: writers < TURNS */
	pthread_cond_broadcast(&turns.cv);
	while (!j.ran)
		pthread_cond_wait(&j.cv, &turns.mu);
	pthread_mutex_unlock(&turns.mu);
	pthread_cond_destroy(&j.cv);
	return j.r;
}

void vs_out_turns_disk(void)
{
	pthread_mutex_lock(&turns.mu);
	turns.disk = true;
	turns.stop = false;
	pthread_mutex_unlock(&turns.mu);
}

void vs_out_turns_serve(void)
{
	pthread_mutex_lock(&turns.mu);
	for (;;) {
		int best = -1;

		for (int i = 0; i < TURNS; i++)
			if (turns.jobs[i] && (best < 0 || turns.jobs[i]->turn < turns.jobs[best]->turn))
				best = i;
		if (best >= 0 && !earlier_held(turns.jobs[best]->turn)) {
			struct job *j = turns.jobs[best];

			turns.jobs[best] = NULL;
			pthread_mutex_unlock(&turns.mu);
			j->r = j->fn(j->arg);
			pthread_mutex_lock(&turns.mu);
			end_turn(j->turn);
			j->ran = true;
			pthread_cond_signal(&j->cv);
			continue;
		}
		if (best < 0 && turns.stop)
			break;
		pthread_cond_wait(&turns.cv, &turns.mu);
	}
	turns.disk = false;
	pthread_mutex_unlock(&turns.mu);
}

void vs_out_turns_stop(void)
{
	pthread_mutex_lock(&turns.mu);
	turns.stop = true;
	pthread_cond_broadcast(&turns.cv);
	pthread_mutex_unlock(&turns.mu);
}
