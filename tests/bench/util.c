/* SPDX-License-Identifier: BSD-3-Clause */
/* Time, statistics, /proc readers, the page pattern and a tiny JSON lookup. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double bm_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user + nice + system + irq + softirq of every CPU; idle, iowait and steal are not work. */
double bm_cpu_busy_ms(void)
{
	unsigned long long v[7];
	FILE *f = fopen("/proc/stat", "re");
	long hz = sysconf(_SC_CLK_TCK);
	int n;

	if (!f)
		return NAN;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &v[6]);
	fclose(f);
	return n == 7 && hz > 0 ? (double)(v[0] + v[1] + v[2] + v[5] + v[6]) * 1000.0 / (double)hz
				: NAN;
}

void bm_sleep_ms(double ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void bm_log(const char *fmt, ...)
{
	static double t0;
	va_list ap;

	if (!t0)
		t0 = bm_now();
	fprintf(stderr, "[%6.1fs] ", bm_now() - t0);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bm_pct(double *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)ceil(p / 100.0 * (double)n);
	return v[i ? i - 1 : 0];
}

uint64_t bm_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t bm_page_word0(uint64_t seed, uint64_t pno)
{
	uint64_t s = seed * 0x2545f4914f6cdd1dull ^ pno;

	return bm_rand(&s) | 1; /* never zero */
}

/* xorshift from a per-page seed: about memory speed, and never a zero page. */
void bm_fill_page(void *page, uint64_t seed, uint64_t pno)
{
	uint64_t *w = page, x = bm_page_word0(seed, pno);

	w[0] = x;
	for (unsigned i = 1; i < BM_PAGE / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

int bm_filled_memfd(const char *name, uint64_t len, uint64_t seed)
{
	int fd = memfd_create(name, MFD_CLOEXEC), e;
	char *m;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0 ||
	    (m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		e = errno;
		close(fd);
		return -e;
	}
	for (uint64_t p = 0; p < len; p += BM_PAGE)
		bm_fill_page(m + p, seed, p / BM_PAGE);
	munmap(m, len);
	return fd;
}

long long bm_kv(const char *path, const char *key)
{
	size_t kl = strlen(key);
	char line[512];
	long long v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, kl) && (line[kl] == ' ' || line[kl] == '\t' ||
						 line[kl] == ':')) {
			v = strtoll(line + kl + (line[kl] == ':'), NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

long long bm_proc_kb(pid_t pid, const char *key)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return bm_kv(path, key);
}

int bm_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;
	size_t len = strlen(s);

	if (fd < 0)
		return -errno;
	if (write(fd, s, len) != (ssize_t)len)
		r = -errno ? -errno : -EIO;
	close(fd);
	return r;
}

/* The value after "key": — keys are unique in status.json. */
static const char *json_val(const char *json, const char *key)
{
	char pat[128];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(json, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ' || *p == '\n' || *p == '\t')
		p++;
	if (*p++ != ':')
		return NULL;
	while (*p == ' ' || *p == '\n' || *p == '\t')
		p++;
	return p;
}

int bm_json_u64(const char *json, const char *key, uint64_t *out)
{
	const char *p = json_val(json, key);
	char *end;

	if (!p || *p < '0' || *p > '9')
		return -ENOENT;
	*out = strtoull(p, &end, 10);
	return 0;
}

int bm_json_str(const char *json, const char *key, char *buf, size_t n)
{
	const char *p = json_val(json, key);
	size_t i = 0;

	if (!p || *p++ != '"')
		return -ENOENT;
	for (; *p && *p != '"' && i + 1 < n; p++)
		buf[i++] = *p == '\\' && p[1] ? *++p : *p;
	buf[i] = 0;
	return 0;
}

void *bm_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE); /* 4 KiB pages, as swap sees them */
	return p;
}

void bm_unmap(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

/* A file without a name in @dir (O_TMPFILE, else unlinked at once); fd or -errno. */
int bm_open_tmp(const char *dir)
{
	char path[600];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd < 0 ? -errno : fd;
	snprintf(path, sizeof(path), "%s/vmswap-bench-io.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}
