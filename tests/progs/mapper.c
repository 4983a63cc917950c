/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mapper SPEC...: maps memory in the ways the shim must (or must not)
 * take as guest memory, then serves commands on stdin like toyvmm (one
 * line in, one "ok ..."/"err ..." line out), so a test can run a swap
 * cycle on it and check every byte afterwards.
 *
 *   SPEC := KIND:SIZE[:NAME]     SIZE: <n>K or <n>M; NAME: memfd name,
 *                                default "guest-KIND"
 *   KIND := memfd    memfd_create() + mmap(), MAP_SHARED, RW
 *         | mmap64   memfd_create() + mmap64()
 *         | memfd-tail  memfd_create() of SIZE + 1 MiB, only SIZE mapped; the
 *                  tail holds data of its own (written with pwrite), which
 *                  verify also checks (with pread): nothing may touch it
 *         | raw      syscall(SYS_memfd_create) + mmap()
 *         | private  memfd_create() + mmap(MAP_PRIVATE)
 *         | exec     memfd_create() + mmap(PROT_READ|PROT_WRITE|PROT_EXEC)
 *         | shmfile  a /dev/shm file (shmem, but not a memfd), MAP_SHARED
 *         | anon-noreserve  MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE (Firecracker)
 *         | anon-qemu       PROT_NONE reservation, then MAP_FIXED RW inside (QEMU)
 *         | anon-plain      MAP_PRIVATE|MAP_ANONYMOUS (as malloc does)
 *   anon-* have no memfd: NAME is only a label, default the kind.
 * A mapping "guest-early" is added when libearly.so is loaded (early.c).
 *
 * Commands: list (" NAME=0xADDR+0xLEN" each), fill (every page of every
 * mapping gets its next generation), verify (all bytes against the
 * model), unmap NAME, dontneed NAME (MADV_DONTNEED: anonymous memory then
 * reads zero, shared memory keeps its data), fork-write NAME adopt|keep (a
 * child writes the next generation; the parent then expects it, or its
 * own data: copy-on-write), quit.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapper.h"
#include "mix.h"

#define MAX_MAPS 16
#define PAGE 4096u

struct map {
	char name[64];
	uint8_t *addr;
	size_t len;
	uint32_t gen; /* 0: never written, reads zero */
	bool anon;    /* private anonymous: DONTNEED zeroes it */
	bool priv;    /* MAP_PRIVATE of a file: DONTNEED has no simple model */
	bool tail;    /* memfd-tail: the memfd's bytes past len are TAIL_BYTE */
	int tail_fd;  /* then the memfd */
};

#define TAIL_BYTES (1u << 20)
#define TAIL_BYTE 0xa5

static struct map maps[MAX_MAPS];
static unsigned nmaps;

/* Word w of page p of mapping k at generation g; never 0 for g > 0. */
static uint64_t word(unsigned k, size_t p, unsigned w, uint32_t g)
{
	return g ? prog_mix(((uint64_t)k << 56) ^ ((uint64_t)p << 20) ^ ((uint64_t)g << 9) ^ w) | 1 : 0;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s)
		return -EINVAL;
	if (*end == 'K')
		v <<= 10;
	else if (*end == 'M')
		v <<= 20;
	else
		return -EINVAL;
	*out = v;
	return end[1] == '\0' || end[1] == ':' ? 0 : -EINVAL;
}

static int make_fd(const char *kind, const char *name, size_t len)
{
	char path[128];
	int fd;

	if (!strcmp(kind, "raw")) {
		fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
	} else if (!strcmp(kind, "shmfile")) {
		snprintf(path, sizeof(path), "/dev/shm/mapper-%d-%s", (int)getpid(), name);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(path);
	} else {
		fd = memfd_create(name, MFD_CLOEXEC);
	}
	if (fd >= 0 && ftruncate(fd, (off_t)len) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void *map_anon(const char *kind, size_t len)
{
	int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
	void *resv;

	if (!strcmp(kind, "anon-noreserve"))
		return mmap(NULL, len, prot, flags | MAP_NORESERVE, -1, 0);
	if (!strcmp(kind, "anon-plain"))
		return mmap(NULL, len, prot, flags, -1, 0);
	resv = mmap(NULL, len, PROT_NONE, flags | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED)
		return resv;
	return mmap(resv, len, prot, flags | MAP_FIXED, -1, 0);
}

static int add_spec(const char *spec)
{
	char kind[16], name[64];
	const char *colon = strchr(spec, ':'), *nm;
	struct map *m = &maps[nmaps];
	int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED, fd;
	size_t len;

	if (!colon || colon - spec >= (int)sizeof(kind) || nmaps == MAX_MAPS ||
	    parse_size(colon + 1, &len))
		return -EINVAL;
	snprintf(kind, sizeof(kind), "%.*s", (int)(colon - spec), spec);
	nm = strchr(colon + 1, ':');
	if (!strncmp(kind, "anon-", 5)) {
		if (strcmp(kind, "anon-noreserve") && strcmp(kind, "anon-qemu") &&
		    strcmp(kind, "anon-plain"))
			return -EINVAL;
		m->addr = map_anon(kind, len);
		if (m->addr == MAP_FAILED)
			return -errno;
		snprintf(m->name, sizeof(m->name), "%s", nm ? nm + 1 : kind);
		m->len = len;
		m->anon = true;
		m->tail_fd = -1;
		nmaps++;
		return 0;
	}
	snprintf(name, sizeof(name), nm ? "%s" : "guest-%s", nm ? nm + 1 : kind);
	m->priv = !strcmp(kind, "private");
	if (!strcmp(kind, "private"))
		flags = MAP_PRIVATE;
	else if (!strcmp(kind, "exec"))
		prot |= PROT_EXEC;
	else if (strcmp(kind, "memfd") && strcmp(kind, "mmap64") && strcmp(kind, "raw") &&
		 strcmp(kind, "shmfile") && strcmp(kind, "memfd-tail"))
		return -EINVAL;
	m->tail_fd = -1;
	if (!strcmp(kind, "memfd-tail")) {
		static uint8_t tail[TAIL_BYTES];

		fd = make_fd("memfd", name, len);
		memset(tail, TAIL_BYTE, sizeof(tail));
		if (fd < 0 || ftruncate(fd, (off_t)(len + TAIL_BYTES)) ||
		    pwrite(fd, tail, sizeof(tail), (off_t)len) != (ssize_t)sizeof(tail))
			return -errno;
		m->tail_fd = fd;
		m->tail = true;
	} else {
		fd = make_fd(kind, name, len);
	}
	if (fd < 0)
		return -errno;
	if (!strcmp(kind, "mmap64"))
		m->addr = mmap64(NULL, len, prot, flags, fd, 0);
	else
		m->addr = mmap(NULL, len, prot, flags, fd, 0);
	if (m->addr == MAP_FAILED)
		return -errno;
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->len = len;
	nmaps++;
	return 0; /* fd stays open, like a VMM's */
}

static struct map *find(const char *name)
{
	for (unsigned k = 0; k < nmaps; k++)
		if (maps[k].addr && !strcmp(maps[k].name, name))
			return &maps[k];
	return NULL;
}

static void write_map(unsigned k, uint32_t gen)
{
	struct map *m = &maps[k];

	for (size_t p = 0; p < m->len / PAGE; p++)
		for (unsigned w = 0; w < PAGE / 8; w++)
			((uint64_t *)(m->addr + p * PAGE))[w] = word(k, p, w, gen);
}

/* 0, or the first bad page + 1. */
static size_t check_map(unsigned k, uint32_t gen, unsigned *bad_word)
{
	const struct map *m = &maps[k];

	for (size_t p = 0; m->addr && p < m->len / PAGE; p++) {
		const uint64_t *pg = (const uint64_t *)(m->addr + p * PAGE);

		for (unsigned w = 0; w < PAGE / 8; w++) {
			if (pg[w] != word(k, p, w, gen)) {
				*bad_word = w;
				return p + 1;
			}
		}
	}
	return 0;
}

static void cmd_list(void)
{
	printf("ok n=%u", nmaps);
	for (unsigned k = 0; k < nmaps; k++)
		if (maps[k].addr)
			printf(" %s=%p+%#zx", maps[k].name, (void *)maps[k].addr, maps[k].len);
	printf("\n");
}

static void cmd_fill(void)
{
	size_t pages = 0;

	for (unsigned k = 0; k < nmaps; k++) {
		struct map *m = &maps[k];

		if (!m->addr)
			continue;
		write_map(k, ++m->gen);
		pages += m->len / PAGE;
	}
	printf("ok fill pages=%zu\n", pages);
}

/* The memfd's bytes past the mapping, read without mapping them. */
static bool tail_intact(const struct map *m)
{
	static uint8_t buf[TAIL_BYTES];

	if (pread(m->tail_fd, buf, sizeof(buf), (off_t)m->len) != (ssize_t)sizeof(buf))
		return false;
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != TAIL_BYTE)
			return false;
	return true;
}

static void cmd_verify(void)
{
	size_t pages = 0, bad;
	unsigned w = 0;

	for (unsigned k = 0; k < nmaps; k++) {
		if (!maps[k].addr)
			continue;
		if ((bad = check_map(k, maps[k].gen, &w))) {
			printf("err verify %s page=%zu word=%u\n", maps[k].name, bad - 1, w);
			return;
		}
		if (maps[k].tail && !tail_intact(&maps[k])) {
			printf("err verify %s tail past the mapping changed\n", maps[k].name);
			return;
		}
		pages += maps[k].len / PAGE;
	}
	printf("ok verify pages=%zu\n", pages);
}

static void cmd_dontneed(struct map *m)
{
	if (m->priv) {
		printf("err dontneed on a private file mapping is not modelled\n");
		return;
	}
	if (madvise(m->addr, m->len, MADV_DONTNEED)) {
		printf("err dontneed %s\n", strerror(errno));
		return;
	}
	if (m->anon)
		m->gen = 0;
	printf("ok dontneed\n");
}

/* The child checks the parent's data, writes gen+1 and checks that. */
static void cmd_fork_write(struct map *m, bool adopt)
{
	unsigned k = (unsigned)(m - maps), w;
	int st;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("err fork %s\n", strerror(errno));
		return;
	}
	if (pid == 0) {
		if (check_map(k, m->gen, &w))
			_exit(2);
		write_map(k, m->gen + 1);
		_exit(check_map(k, m->gen + 1, &w) ? 3 : 0);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("err fork-write child status %#x\n", st);
		return;
	}
	if (adopt)
		m->gen++;
	printf("ok fork-write\n");
}

int main(int argc, char **argv)
{
	const struct mapper_early *e = dlsym(RTLD_DEFAULT, MAPPER_EARLY_SYM);
	char line[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (e && !e->addr) {
		fprintf(stderr, "mapper: libearly.so could not map: %s\n", strerror(e->err));
		return 1;
	}
	if (e) {
		snprintf(maps[0].name, sizeof(maps[0].name), "%s", e->name);
		maps[0].addr = e->addr;
		maps[0].len = e->len;
		nmaps = 1;
	}
	for (int i = 1; i < argc; i++) {
		int r = add_spec(argv[i]);

		if (r) {
			fprintf(stderr, "mapper: %s: %s\n", argv[i], strerror(-r));
			return 2;
		}
	}
	while (fgets(line, sizeof(line), stdin)) {
		char arg[64], how[16];

		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "list")) {
			cmd_list();
		} else if (!strcmp(line, "fill")) {
			cmd_fill();
		} else if (!strcmp(line, "verify")) {
			cmd_verify();
		} else if (sscanf(line, "unmap %63s", arg) == 1) {
			struct map *m = find(arg);

			if (m && munmap(m->addr, m->len) == 0) {
				m->addr = NULL;
				printf("ok unmap\n");
			} else {
				printf("err unmap %s\n", m ? strerror(errno) : "no such mapping");
			}
		} else if (sscanf(line, "dontneed %63s", arg) == 1 && find(arg)) {
			cmd_dontneed(find(arg));
		} else if (sscanf(line, "fork-write %63s %15s", arg, how) == 2 && find(arg) &&
			   (!strcmp(how, "adopt") || !strcmp(how, "keep"))) {
			cmd_fork_write(find(arg), !strcmp(how, "adopt"));
		} else if (!strcmp(line, "quit")) {
			printf("ok quit\n");
			return 0;
		} else {
			printf("err unknown command\n");
		}
	}
	return 0;
}
