/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * exec-vmm SIZE: a VMM whose helper process is exec'd, as a vhost-user
 * backend or a device process would be. It maps a memfd "guest-exec" of
 * SIZE (K or M suffix) MAP_SHARED, fills it, then fork()s and exec()s
 * itself as "exec-vmm --child FD SIZE" with the memfd as FD; LD_PRELOAD
 * is inherited, so the child runs under the shim too. The child maps the
 * same memfd MAP_SHARED and says "ready" once it has.
 *
 * Commands on stdin, one line in, one "ok ..."/"err ..." line out:
 *   info          ok pid=P child=C pages=N
 *   fill          every page gets the next generation (written here)
 *   verify        every byte here against the model
 *   child-verify  the child checks every byte against the model
 *   child-fill    the child writes the next generation; the model follows
 *   child-quit    the child exits, with status 0
 *   child-start   a new child, fork+exec'd as at the start (after child-quit)
 *   quit          child-quit if need be, then exit 0
 * The child serves "verify G", "fill G" and "quit" from the parent.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mix.h"

#define PAGE 4096u

static uint8_t *mem;
static size_t len;

/* Word w of page p at generation g; never 0 for g > 0, 0 for g == 0. */
static uint64_t word(size_t p, unsigned w, unsigned g)
{
	return g ? prog_mix(((uint64_t)p << 20) ^ ((uint64_t)g << 9) ^ w) | 1 : 0;
}

static void fill(unsigned g)
{
	for (size_t p = 0; p < len / PAGE; p++)
		for (unsigned w = 0; w < PAGE / 8; w++)
			((uint64_t *)(mem + p * PAGE))[w] = word(p, w, g);
}

/* Pages that differ from generation g anywhere; the first one in *first. */
static size_t check(unsigned g, size_t *first)
{
	size_t bad = 0;

	for (size_t p = 0; p < len / PAGE; p++) {
		const uint64_t *pg = (const uint64_t *)(mem + p * PAGE);

		for (unsigned w = 0; w < PAGE / 8; w++) {
			if (pg[w] != word(p, w, g)) {
				if (!bad++)
					*first = p;
				break;
			}
		}
	}
	return bad;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || end[1] || (*end != 'K' && *end != 'M'))
		return -EINVAL;
	*out = v << (*end == 'K' ? 10 : 20);
	return *out && *out % PAGE == 0 ? 0 : -EINVAL;
}

static int map_fd(int fd)
{
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return mem == MAP_FAILED ? -errno : 0;
}

static void reply_verify(unsigned g)
{
	size_t first = 0, bad = check(g, &first);

	if (bad)
		printf("err verify mismatches=%zu first=%zu gen=%u\n", bad, first, g);
	else
		printf("ok verify pages=%zu\n", len / PAGE);
}

/* The exec'd child: serves the parent on stdin/stdout. */
static int child_main(int fd)
{
	char line[128];
	unsigned g;

	if (map_fd(fd)) {
		fprintf(stderr, "exec-vmm child: mmap: %s\n", strerror(errno));
		return 1;
	}
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "verify %u", &g) == 1) {
			reply_verify(g);
		} else if (sscanf(line, "fill %u", &g) == 1) {
			fill(g);
			printf("ok fill\n");
		} else if (!strcmp(line, "quit\n")) {
			printf("ok quit\n");
			return 0;
		} else {
			printf("err unknown command\n");
		}
	}
	return 0;
}

struct child {
	pid_t pid;
	FILE *in, *out; /* its stdin, its stdout */
};

/* fork+exec the child with the memfd fd; 0 once it said "ready". */
static int start_child(struct child *c, int fd, const char *size)
{
	char self[PATH_MAX], fdarg[16], ready[16];
	int to[2], from[2];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return -errno;
	self[n] = '\0';
	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
		return -errno;
	snprintf(fdarg, sizeof(fdarg), "%d", fd);
	fflush(stdout);
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (c->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(to[0], 0) < 0 || dup2(from[1], 1) < 0 || fcntl(fd, F_SETFD, 0) < 0)
			_exit(127);
		execl(self, self, "--child", fdarg, size, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	c->in = fdopen(to[1], "w");
	c->out = fdopen(from[0], "r");
	if (!c->in || !c->out)
		return -ENOMEM;
	setvbuf(c->in, NULL, _IOLBF, 0);
	if (!fgets(ready, sizeof(ready), c->out) || strcmp(ready, "ready\n"))
		return -EPROTO;
	return 0;
}

/* Send a line to the child and copy its answer into ans (without '\n'). */
static int ask(struct child *c, char *ans, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int ask(struct child *c, char *ans, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(c->in, fmt, ap);
	va_end(ap);
	fputc('\n', c->in);
	fflush(c->in);
	if (!fgets(ans, (int)n, c->out))
		return -EPIPE;
	ans[strcspn(ans, "\n")] = '\0';
	return 0;
}

static int child_quit(struct child *c)
{
	char ans[256];
	int st;

	if (!c->pid)
		return 0;
	if (ask(c, ans, sizeof(ans), "quit") || strcmp(ans, "ok quit"))
		return -EPROTO;
	while (waitpid(c->pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	c->pid = 0;
	fclose(c->in);
	fclose(c->out);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

int main(int argc, char **argv)
{
	struct child c = { 0 };
	char line[128], ans[256];
	unsigned gen = 1;
	int fd, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "--child"))
		return parse_size(argv[3], &len) ? 2 : child_main(atoi(argv[2]));
	if (argc != 2 || parse_size(argv[1], &len)) {
		fprintf(stderr, "usage: exec-vmm SIZE\n");
		return 2;
	}
	fd = memfd_create("guest-exec", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)len) || map_fd(fd)) {
		fprintf(stderr, "exec-vmm: guest memory: %s\n", strerror(errno));
		return 1;
	}
	fill(gen);
	r = start_child(&c, fd, argv[1]);
	if (r) {
		fprintf(stderr, "exec-vmm: the exec'd child did not start: %s\n", strerror(-r));
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "info")) {
			printf("ok pid=%d child=%d pages=%zu\n", (int)getpid(), (int)c.pid,
			       len / PAGE);
		} else if (!strcmp(line, "fill")) {
			fill(++gen);
			printf("ok fill pages=%zu\n", len / PAGE);
		} else if (!strcmp(line, "verify")) {
			reply_verify(gen);
		} else if (!strcmp(line, "child-start")) {
			r = c.pid ? -EEXIST : start_child(&c, fd, argv[1]);
			if (r)
				printf("err child-start %s\n", strerror(-r));
			else
				printf("ok child-start child=%d\n", (int)c.pid);
		} else if (!c.pid && !strncmp(line, "child-", 6)) {
			printf("err the child has quit\n");
		} else if (!strcmp(line, "child-verify")) {
			r = ask(&c, ans, sizeof(ans), "verify %u", gen);
			printf("%s%s\n", r ? "err child gone" : ans, r ? "" : " (child)");
		} else if (!strcmp(line, "child-fill")) {
			r = ask(&c, ans, sizeof(ans), "fill %u", gen + 1);
			gen += !r && !strcmp(ans, "ok fill");
			printf("%s%s\n", r ? "err child gone" : ans, r ? "" : " (child)");
		} else if (!strcmp(line, "child-quit") || !strcmp(line, "quit")) {
			r = child_quit(&c);
			if (r)
				printf("err child-quit %s\n", strerror(-r));
			else if (!strcmp(line, "quit"))
				break;
			else
				printf("ok child-quit\n");
		} else {
			printf("err unknown command\n");
		}
	}
	printf("ok quit\n");
	return 0;
}
