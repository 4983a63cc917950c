/* SPDX-License-Identifier: BSD-3-Clause */
/* Parsed by hand: the fork child may use neither stdio nor malloc. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vma.h"

/* Hex digits at *s; advances *s. False when there are none. */
static bool hex(const char **s, uintptr_t *out)
{
	uintptr_t v = 0;
	const char *p = *s;

	for (;; p++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			break;
		v = v << 4 | (uintptr_t)d;
	}
	if (p == *s)
		return false;
	*s = p;
	*out = v;
	return true;
}

/* "start-end rwxp ..." */
static bool parse(const char *s, struct shim_vma *v)
{
	if (!hex(&s, &v->start) || *s++ != '-' || !hex(&s, &v->end) ||
	    *s++ != ' ' || !s[0] || !s[1] || !s[2])
		return false;
	v->prot = (s[0] == 'r' ? PROT_READ : 0) |
		  (s[1] == 'w' ? PROT_WRITE : 0) | (s[2] == 'x' ? PROT_EXEC : 0);
	return true;
}

int shim_vma_find(uintptr_t addr, struct shim_vma *v)
{
	char buf[4096], line[64];
	size_t ll = 0;
	int fd, ret = -ENOENT;

	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -errno;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			/* Only the start of a line matters; paths can be long. */
			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			ll = 0;
			if (parse(line, v) && v->end > addr) {
				close(fd);
				return 0;
			}
		}
	}
	close(fd);
	return ret;
}

int shim_vma_open(uintptr_t addr)
{
	char path[64] = "/proc/self/map_files/", *p = path + 21;
	struct shim_vma v;
	int r = shim_vma_find(addr, &v), fd;

	if (r)
		return r;
	if (v.start > addr)
		return -ENOENT;
	for (int i = 0; i < 2; i++) {
		uintptr_t x = i ? v.end : v.start;
		char tmp[2 * sizeof(x)];
		int n = 0;

		do
			tmp[n++] = "0123456789abcdef"[x & 15];
		while (x >>= 4);
		while (n)
			*p++ = tmp[--n];
		*p++ = i ? '\0' : '-';
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
