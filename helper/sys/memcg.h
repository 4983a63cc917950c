/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Memory cgroups and host memory, read from files only: which memory
 * cgroup a process is in (cgroup v2 or the v1 memory controller), how
 * much room its tightest limit leaves, MemAvailable, OOM-kill counters.
 * Shared by the helper (enable's headroom check) and vmswapctl (why a
 * VMM died). The roots are parameters so tests can use a fake tree.
 */
#ifndef VS_MEMCG_H
#define VS_MEMCG_H

#include <stdint.h>
#include <sys/types.h>

#define VS_MEMCG_ROOT "/sys/fs/cgroup"
#define VS_MEMCG_PATH_MAX 512
#define VS_MEMCG_NONE UINT64_MAX /* no limit */

struct vs_memcg {
	int version;                    /* 1 or 2; 0: no memory cgroup found */
	char root[VS_MEMCG_PATH_MAX];   /* the hierarchy's mount, e.g. /sys/fs/cgroup/memory */
	char path[VS_MEMCG_PATH_MAX];   /* the cgroup inside it, "/" or "/a/b" */
};

/* The tightest level among a cgroup and its ancestors. */
struct vs_memcg_room {
	uint64_t free;                  /* limit - usage + reclaimable page cache */
	uint64_t limit;                 /* VS_MEMCG_NONE: no level has a limit */
	char path[VS_MEMCG_PATH_MAX];   /* the level that has it */
};

/*
 * The memory cgroup named by @text, the contents of a /proc/<pid>/cgroup,
 * under @root (normally VS_MEMCG_ROOT): a v1 line listing the memory
 * controller wins (hybrid systems), else the v2 line "0::/path" when
 * @root is a v2 hierarchy with the memory controller. 0 or -ENOENT.
 */
int vs_memcg_parse(const char *root, const char *text, struct vs_memcg *cg);
/* The same for a live process (@pid 0: ourselves). 0 or -errno. */
int vs_memcg_of_pid(const char *root, pid_t pid, struct vs_memcg *cg);
/* Room under the tightest limit of @cg and its ancestors. 0 or -errno. */
int vs_memcg_room(const struct vs_memcg *cg, struct vs_memcg_room *room);
/* OOM kills counted in @cg (v2 memory.events, v1 memory.oom_control). */
int vs_memcg_oom_kills(const struct vs_memcg *cg, uint64_t *kills);
/* MemAvailable of a meminfo file (normally /proc/meminfo), in bytes. */
int vs_meminfo_available(const char *path, uint64_t *bytes);
/* Up to @n - 1 bytes of a small file, NUL-terminated. Length or -errno. */
int vs_memcg_read(const char *path, char *buf, size_t n);

#endif
