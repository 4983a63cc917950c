/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every mapping of a guest memfd, in any process, must be one the helper
 * registers: an unregistered one would read a punched page as zeros.
 * These read /proc/<pid>/maps of every process. vs.lock held.
 */
#ifndef VS_COVER_H
#define VS_COVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vs_uncovered {
	pid_t pid;
	char comm[32];
	int obj;
	uint64_t start, end;
	bool joining; /* a descendant of the VMM the helper has not heard from yet */
};

/* The first such mapping (of object @only, or of any when -1) in *u, with *found. 0 or -errno. */
int vs_uncovered_first(int only, struct vs_uncovered *u, bool *found);
/*
 * -EBUSY with a message naming the first one, 0 when none, or -errno.
 * -EINPROGRESS when it is a descendant of the VMM whose join has not
 * arrived (a fork child whose shim is joining): worth waiting for.
 */
int vs_find_uncovered(char *msg, size_t n);

#endif
