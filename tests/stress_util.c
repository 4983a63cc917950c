/* SPDX-License-Identifier: BSD-3-Clause */
/* Random numbers, the step trace and failing with the replay line; see stress.h. */
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../helper/ctl/ctl_json.h"
#include "stress.h"

/* splitmix64: one stream per layout, the same for the same seed. */
uint64_t st_rand(struct st_run *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t st_below(uint64_t r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

void st_trace(struct st_run *s, const char *fmt, ...)
{
	char *t = s->trace[s->ntrace++ % ST_TRACE];
	int n;
	va_list ap;

	n = snprintf(t, sizeof(s->trace[0]), "[%s c%u] ", s->layout, s->cycle);
	va_start(ap, fmt);
	vsnprintf(t + n, sizeof(s->trace[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	if (s->prm->verbose)
		fprintf(stderr, "stress: %s\n", t);
}

/* Each thread of pid: name, state, wchan and kernel stack, for a hang. */
static void dump_threads(const char *who, pid_t pid)
{
	static char out[64 * 1024];

	if (!h_thread_lines(pid, true, out, sizeof(out)))
		fprintf(stderr, "stress: %s %d: gone\n", who, (int)pid);
	else
		fprintf(stderr, "stress: %s %d threads:\n%s", who, (int)pid, out);
}

void st_fail_at(const char *file, int line, struct st_run *s, const char *fmt, ...)
{
	char msg[1024];
	unsigned first = s->ntrace > ST_TRACE ? s->ntrace - ST_TRACE : 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "stress: FAILED at %s:%d, layout %s, cycle %u: %s\nstress: last steps:\n",
		file, line, s->layout, s->cycle, msg);
	for (unsigned i = first; i < s->ntrace; i++)
		fprintf(stderr, "  %s\n", s->trace[i % ST_TRACE]);
	if (s->vm) {
		char *js = NULL;

		dump_threads("toyvmm", s->vm->pid);
		dump_threads("helper", s->helper);
		if (!vs_status_read(s->vm->pid, &js))
			fprintf(stderr, "stress: status.json:\n%s", js);
		free(js);
	}
	/* Debugging aid: leave the processes as they are for an hour. */
	if (getenv("STRESS_HOLD") && s->vm) {
		fprintf(stderr, "stress: STRESS_HOLD: toyvmm %d and helper %d left as they are\n",
			s->vm->pid, (int)s->helper);
		sleep(3600);
	}
	fprintf(stderr, "stress: replay with STRESS_SEED=%" PRIu64 " STRESS_SIZE=%" PRIu64
		"M STRESS_LAYOUTS=%s STRESS_THREADS=%u STRESS_CYCLES=%u build/test-stress\n",
		s->prm->seed, s->prm->size >> 20, s->layout, s->prm->threads, s->ncycles);
	cr_assert_fail("%s:%d: stress %s cycle %u (seed %" PRIu64 "): %s", file, line, s->layout,
		       s->cycle, s->prm->seed, msg);
	__builtin_unreachable();
}

void st_helper_alive(struct st_run *s)
{
	pid_t now = h_helper_pid(s->vm->pid);

	if (!h_alive(s->helper))
		st_fail(s, "helper %d died", (int)s->helper);
	if (now != s->helper)
		st_fail(s, "helper pid changed from %d to %d", (int)s->helper, (int)now);
}
