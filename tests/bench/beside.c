/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Information: out's disk beside out's other work. out writes each 2 MiB
 * unit after reading it from the guest's memfd and punches it after the
 * write, on the same CPUs. Here the same O_DIRECT sequential write as
 * bm_dwrite_MiBps runs while a second thread reads and punches a filled
 * memfd of the same size, one unit behind the write, with no write of
 * its own: what the disk gives a writer beside that work on this host.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define UNIT (2u << 20)
#define CHUNK (1u << 20)

struct side {
	int memfd;
	uint64_t len;
	_Atomic uint64_t written; /* bytes the writer finished */
	_Atomic bool stop;
	int err;
};

/* Read and punch every unit the writer has gone past. */
static void *side_main(void *arg)
{
	struct side *s = arg;
	char *buf = aligned_alloc(BM_PAGE, UNIT);
	uint64_t done = 0;

	if (!buf) {
		s->err = ENOMEM;
		return NULL;
	}
	while (done < s->len && !atomic_load(&s->stop)) {
		if (done + UNIT > atomic_load(&s->written)) {
			usleep(50);
			continue;
		}
		if (pread(s->memfd, buf, UNIT, (off_t)done) != UNIT ||
		    fallocate(s->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)done,
			      UNIT) < 0) {
			s->err = errno ? errno : EIO;
			break;
		}
		done += UNIT;
	}
	free(buf);
	return NULL;
}

double bm_dwrite_beside_MiBps(const char *section, uint64_t len)
{
	struct side s = { .len = len / UNIT * UNIT };
	char *buf = aligned_alloc(BM_PAGE, CHUNK);
	int fd = open(bm.swap_dir, O_TMPFILE | O_RDWR | O_CLOEXEC | O_DIRECT, 0600);
	pthread_t t;
	double t0, v = NAN;
	uint64_t off;

	s.memfd = bm_filled_memfd("vmswap-bench-beside", s.len, 5);
	if (fd < 0 || !buf || s.memfd < 0) {
		bm_note(section, "write beside reads and punches: %s",
			fd < 0 ? strerror(errno) : !buf ? "out of memory" : strerror(-s.memfd));
		goto out;
	}
	for (size_t p = 0; p < CHUNK; p += BM_PAGE)
		bm_fill_page(buf + p, 3, p / BM_PAGE);
	if (pthread_create(&t, NULL, side_main, &s)) {
		bm_note(section, "write beside reads and punches: no thread");
		goto out;
	}
	t0 = bm_now();
	for (off = 0; off < s.len; off += CHUNK) {
		*(uint64_t *)buf = off + 1; /* different bytes in every write */
		if (pwrite(fd, buf, CHUNK, (off_t)off) != CHUNK)
			break;
		atomic_store(&s.written, off + CHUNK);
	}
	if (off == s.len)
		v = (double)s.len / BM_MIB / (bm_now() - t0);
	else
		bm_note(section, "write beside reads and punches: %s", strerror(errno ? errno : EIO));
	atomic_store(&s.stop, true);
	pthread_join(t, NULL);
	if (s.err)
		bm_note(section, "reads and punches beside the write: %s", strerror(s.err));
out:
	if (s.memfd >= 0)
		close(s.memfd);
	if (fd >= 0)
		close(fd);
	free(buf);
	return v;
}
