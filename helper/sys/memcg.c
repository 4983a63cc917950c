/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Memory cgroups and host memory from their files (see memcg.h). Only
 * open(O_RDONLY), read and close: the helper calls this inside its
 * seccomp sandbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memcg.h"

/* v1 writes "unlimited" as PAGE_COUNTER_MAX pages, just below 2^63. */
#define UNLIMITED_FROM (1ull << 62)

int vs_memcg_read(const char *path, char *buf, size_t n)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (len < n - 1) {
		ssize_t r = read(fd, buf + len, n - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			close(fd);
			return e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return (int)len;
}

/* "key value" (or "key: value") lines: the value of @key. 0 or -ENOENT. */
static int key_u64(const char *text, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		char *end;

		if (strncmp(l, key, kl) || (l[kl] != ' ' && l[kl] != ':' && l[kl] != '\t'))
			continue;
		errno = 0;
		*v = strtoull(l + kl + (l[kl] == ':'), &end, 10);
		return errno || end == l + kl ? -EINVAL : 0;
	}
	return -ENOENT;
}

/* A file holding one number, or "max" (VS_MEMCG_NONE). */
static int file_u64(const char *dir, const char *name, uint64_t *v)
{
	char path[VS_MEMCG_PATH_MAX * 2 + 64], buf[64], *end;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	r = vs_memcg_read(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (!strncmp(buf, "max", 3)) {
		*v = VS_MEMCG_NONE;
		return 0;
	}
	errno = 0;
	*v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	if (*v >= UNLIMITED_FROM)
		*v = VS_MEMCG_NONE;
	return 0;
}

/* Does the space-separated list @list hold @word? */
static bool has_word(const char *list, const char *word, char sep)
{
	size_t wl = strlen(word);

	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, (char[]){ sep, '\n', '\0' });

		if (len == wl && !strncmp(p, word, wl))
			return true;
		p += len;
		if (*p != sep)
			break;
		p++;
	}
	return false;
}

int vs_memcg_parse(const char *root, const char *text, struct vs_memcg *cg)
{
	const char *v2 = NULL;
	char buf[256];

	memset(cg, 0, sizeof(*cg));
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		const char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		const char *nl = strchr(l, '\n');
		size_t plen;

		if (!c2 || (nl && c2 > nl))
			continue;
		plen = nl ? (size_t)(nl - c2 - 1) : strlen(c2 + 1);
		if (c2 == c1 + 1) {
			if (!strncmp(l, "0::", 3))
				v2 = l;
			continue;
		}
		/* v1: "N:ctl,ctl:/path" with memory among the controllers. */
		char ctl[128];

		snprintf(ctl, sizeof(ctl), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
		if (!has_word(ctl, "memory", ',') || plen == 0 || plen >= sizeof(cg->path))
			continue;
		cg->version = 1;
		snprintf(cg->root, sizeof(cg->root), "%s/memory", root);
		snprintf(cg->path, sizeof(cg->path), "%.*s", (int)plen, c2 + 1);
		break;
	}
	if (!cg->version && v2) {
		/* A v2 hierarchy at @root, and its memory controller on. */
		char path[VS_MEMCG_PATH_MAX + 32];
		size_t plen = strcspn(v2 + 3, "\n");

		snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
		if (plen == 0 || plen >= sizeof(cg->path) || vs_memcg_read(path, buf, sizeof(buf)) < 0 ||
		    !has_word(buf, "memory", ' '))
			return -ENOENT;
		cg->version = 2;
		snprintf(cg->root, sizeof(cg->root), "%s", root);
		snprintf(cg->path, sizeof(cg->path), "%.*s", (int)plen, v2 + 3);
	}
	/* Outside our cgroup namespace ("/../x"): not reachable under @root. */
	if (!cg->version || cg->path[0] != '/' || strstr(cg->path, "/..")) {
		cg->version = 0;
		return -ENOENT;
	}
	return 0;
}

int vs_memcg_of_pid(const char *root, pid_t pid, struct vs_memcg *cg)
{
	char path[64], text[4096];
	int r;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/cgroup");
	r = vs_memcg_read(path, text, sizeof(text));
	if (r < 0) {
		memset(cg, 0, sizeof(*cg));
		return r;
	}
	return vs_memcg_parse(root, text, cg);
}

/*
 * One level: its limit and the room under it. The page cache on the file
 * LRU lists counts as room: the kernel reclaims it before an OOM kill.
 * Shared memory (guest memory, staging) is on the anon lists: not room.
 */
static int level(const struct vs_memcg *cg, const char *dir, uint64_t *limit, uint64_t *free)
{
	char path[VS_MEMCG_PATH_MAX * 2 + 64], stat[8192];
	bool v1 = cg->version == 1;
	uint64_t usage, high = VS_MEMCG_NONE, act = 0, inact = 0;
	int r;

	r = file_u64(dir, v1 ? "memory.limit_in_bytes" : "memory.max", limit);
	if (r == -ENOENT) { /* the v2 root has no limit files */
		*limit = VS_MEMCG_NONE;
		return 0;
	}
	if (r)
		return r;
	/* Past memory.high the kernel throttles the allocator hard: a limit too. */
	if (!v1 && !file_u64(dir, "memory.high", &high) && high < *limit)
		*limit = high;
	if (*limit == VS_MEMCG_NONE)
		return 0;
	r = file_u64(dir, v1 ? "memory.usage_in_bytes" : "memory.current", &usage);
	if (r)
		return r;
	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	if (vs_memcg_read(path, stat, sizeof(stat)) > 0) {
		key_u64(stat, v1 ? "total_active_file" : "active_file", &act);
		key_u64(stat, v1 ? "total_inactive_file" : "inactive_file", &inact);
	}
	if (act + inact > usage)
		act = usage, inact = 0;
	*free = (*limit > usage ? *limit - usage : 0) + act + inact;
	return 0;
}

int vs_memcg_room(const struct vs_memcg *cg, struct vs_memcg_room *room)
{
	char dir[VS_MEMCG_PATH_MAX * 2];
	size_t base = strlen(cg->root);

	room->free = room->limit = VS_MEMCG_NONE;
	room->path[0] = '\0';
	if (!cg->version)
		return -ENOENT;
	snprintf(dir, sizeof(dir), "%s%s", cg->root, strcmp(cg->path, "/") ? cg->path : "");
	for (;;) {
		uint64_t limit, free = 0;
		int r = level(cg, dir, &limit, &free);
		char *slash;

		if (r)
			return r;
		if (limit != VS_MEMCG_NONE && free < room->free) {
			room->free = free;
			room->limit = limit;
			snprintf(room->path, sizeof(room->path), "%s",
				 dir[base] ? dir + base : "/");
		}
		if (!dir[base])
			break;
		slash = strrchr(dir + base, '/');
		*slash = '\0';
	}
	return 0;
}

int vs_memcg_oom_kills(const struct vs_memcg *cg, uint64_t *kills)
{
	char path[VS_MEMCG_PATH_MAX * 2 + 32], text[1024];
	int r;

	if (!cg->version)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s%s/%s", cg->root, strcmp(cg->path, "/") ? cg->path : "",
		 cg->version == 1 ? "memory.oom_control" : "memory.events");
	r = vs_memcg_read(path, text, sizeof(text));
	return r < 0 ? r : key_u64(text, "oom_kill", kills);
}

int vs_meminfo_available(const char *path, uint64_t *bytes)
{
	char text[8192];
	uint64_t kb;
	int r = vs_memcg_read(path, text, sizeof(text));

	if (r < 0)
		return r;
	r = key_u64(text, "MemAvailable", &kb);
	if (!r)
		*bytes = kb * 1024;
	return r;
}
