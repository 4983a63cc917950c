/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writing a batch of pages to the swap file, for out (op_out.c and
 * out_inplace.c); see out.h. A page may leave guest memory or staging
 * only once this returned 0 for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <string.h>
#include <unistd.h>

#include "../model/helper.h"
#include "../sys/swapfile.h"
#include "out.h"

#define TURNS 16 /* more than the writers: each holds at most one turn */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t taken;       /* turns handed out */
	uint64_t held[TURNS]; /* turns taken and not ended; UINT64_MAX: free */
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
	for (int i = 0; i < TURNS; i++)
		if (turns.held[i] == turn) {
			turns.held[i] = UINT64_MAX;
			pthread_cond_broadcast(&turns.cv);
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

int vs_out_write(const uint8_t *base, const uint64_t *pg, const uint32_t *slot, uint64_t count,
		 uint64_t turn, const char **what)
{
	struct iovec iov[OUT_BATCH];
	uint32_t lo = UINT32_MAX, hi = 0;
	uint64_t i = 0;
	int r = 0;

	vs_out_turn_wait(turn);
	while (i < count && !r) {
		uint64_t j = i + 1;
		int cnt = 1;

		iov[0].iov_base = (void *)(base + pg[i] * VS_PAGE_SIZE);
		iov[0].iov_len = VS_PAGE_SIZE;
		for (; j < count && slot[j] == slot[i] + (j - i); j++) {
			if (pg[j] == pg[j - 1] + 1) {
				iov[cnt - 1].iov_len += VS_PAGE_SIZE;
			} else {
				iov[cnt].iov_base = (void *)(base + pg[j] * VS_PAGE_SIZE);
				iov[cnt++].iov_len = VS_PAGE_SIZE;
			}
		}
		r = vs_swapfile_writev(vs.swap.fd, slot[i], iov, cnt);
		lo = slot[i] < lo ? slot[i] : lo;
		hi = slot[j - 1] + 1 > hi ? slot[j - 1] + 1 : hi;
		i = j;
	}
	vs_out_turn_done(turn);
	*what = "writing";
	if (r || vs.swap.direct || !count)
		return r;
	if (fdatasync(vs.swap.fd) < 0) {
		*what = "syncing";
		return -errno;
	}
	/* Clean now: give the host its memory as we go, not at the end. */
	posix_fadvise(vs.swap.fd, (off_t)lo * VS_PAGE_SIZE, (off_t)(hi - lo) * VS_PAGE_SIZE,
		      POSIX_FADV_DONTNEED);
	return 0;
}
