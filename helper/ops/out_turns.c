/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The order of out's writes (out.h): one at a time, in the order their
 * slots were taken. Measured here against four writes in flight and
 * against one thread writing every ready batch for the others: this,
 * where each writer writes its own batch once every earlier turn ended,
 * was the fastest.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "out.h"

#define TURNS 16 /* more than the writers: each holds at most one turn */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t taken;       /* turns handed out */
	uint64_t held[TURNS]; /* turns taken and not ended; UINT64_MAX: a free place */
} turns = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 } };

void vs_out_turns_reset(void)
{
	pthread_mutex_lock(&turns.mu);
	turns.taken = 0;
	for (int i = 0; i < TURNS; i++)
		turns.held[i] = UINT64_MAX;
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

void vs_out_turn_done(uint64_t turn)
{
	pthread_mutex_lock(&turns.mu);
	for (int i = 0; i < TURNS; i++) {
		if (turns.held[i] == turn) {
			turns.held[i] = UINT64_MAX;
			pthread_cond_broadcast(&turns.cv);
		}
	}
	pthread_mutex_unlock(&turns.mu);
}

void vs_out_turn_wait(uint64_t turn)
{
	bool before;

	pthread_mutex_lock(&turns.mu);
	do {
		before = false;
		for (int i = 0; i < TURNS && !before; i++)
			before = turns.held[i] < turn;
		if (before)
			pthread_cond_wait(&turns.cv, &turns.mu);
	} while (before);
	pthread_mutex_unlock(&turns.mu);
}
