/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * enable's headroom check: /proc/<pid>/cgroup parsing, the walk up a
 * memory cgroup tree for the tightest limit (a fake tree in a temp dir,
 * v1 and v2), MemAvailable, OOM-kill counters, and the verdict.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../helper/ops/headroom.h"
#include "../helper/sys/memcg.h"

#define MIB (1ull << 20)

static char root[64];

static void tree_init(void)
{
	snprintf(root, sizeof(root), "/tmp/vmswap-memcg-XXXXXX");
	cr_assert(mkdtemp(root), "mkdtemp: %s", strerror(errno));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void tree_fini(void)
{
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(headroom, .init = tree_init, .fini = tree_fini);

/* root/<rel> holds @text; its directories are made. */
static void put(const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(path, 0700);
		*s = '/';
	}
	f = fopen(path, "w");
	cr_assert(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static void putu(const char *rel, unsigned long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu\n", v);
	put(rel, buf);
}

Test(headroom, parse_v2_needs_the_memory_controller)
{
	struct vs_memcg cg;
	char want[128];

	put("cgroup.controllers", "cpuset cpu io memory pids\n");
	cr_assert_eq(vs_memcg_parse(root, "0::/vm.slice/vm1\n", &cg), 0);
	cr_assert_eq(cg.version, 2);
	cr_assert_str_eq(cg.path, "/vm.slice/vm1");
	cr_assert_str_eq(cg.root, root);

	put("cgroup.controllers", "cpu io pids\n");
	cr_assert_eq(vs_memcg_parse(root, "0::/vm.slice/vm1\n", &cg), -ENOENT);
	cr_assert_eq(cg.version, 0);

	/* Hybrid: the v1 memory line wins over the v2 one. */
	cr_assert_eq(vs_memcg_parse(root, "9:name=systemd:/\n4:memory:/api/x\n0::/\n", &cg), 0);
	cr_assert_eq(cg.version, 1);
	cr_assert_str_eq(cg.path, "/api/x");
	snprintf(want, sizeof(want), "%s/memory", root);
	cr_assert_str_eq(cg.root, want);
	cr_assert_eq(vs_memcg_parse(root, "3:cpu,memory:/y", &cg), 0);
	cr_assert_eq(cg.version, 1);
	cr_assert_str_eq(cg.path, "/y");
	/* Not memory: "memory" only as part of another word. */
	cr_assert_eq(vs_memcg_parse(root, "3:memoryx:/y\n", &cg), -ENOENT);
	/* Outside our cgroup namespace. */
	cr_assert_eq(vs_memcg_parse(root, "4:memory:/../other\n", &cg), -ENOENT);
	cr_assert_eq(vs_memcg_parse(root, "", &cg), -ENOENT);
}

Test(headroom, v2_tightest_limit_among_ancestors)
{
	struct vs_memcg cg;
	struct vs_memcg_room room;

	put("cgroup.controllers", "memory\n");
	/* The root has no limit files; a: 1000 MiB with 900 used (20 of it page cache). */
	putu("a/memory.max", 1000 * MIB);
	put("a/memory.high", "max\n");
	putu("a/memory.current", 900 * MIB);
	put("a/memory.stat", "anon 100\nfile 300\nactive_anon 5\ninactive_file 15728640\n"
			      "active_file 5242880\nshmem 1\n");
	/* a/b: no limit of its own. */
	put("a/b/memory.max", "max\n");
	put("a/b/memory.high", "max\n");
	putu("a/b/memory.current", 600 * MIB);
	cr_assert_eq(vs_memcg_parse(root, "0::/a/b\n", &cg), 0);
	cr_assert_eq(vs_memcg_room(&cg, &room), 0);
	cr_assert_eq(room.limit, 1000 * MIB);
	cr_assert_eq(room.free, 100 * MIB + 20 * MIB);
	cr_assert_str_eq(room.path, "/a");

	/* b's own memory.high, tighter, wins. */
	putu("a/b/memory.high", 650 * MIB);
	cr_assert_eq(vs_memcg_room(&cg, &room), 0);
	cr_assert_eq(room.limit, 650 * MIB);
	cr_assert_eq(room.free, 50 * MIB);
	cr_assert_str_eq(room.path, "/a/b");

	/* Over the limit (usage past it): no room, never a wrap-around. */
	putu("a/b/memory.current", 700 * MIB);
	cr_assert_eq(vs_memcg_room(&cg, &room), 0);
	cr_assert_eq(room.free, 0);

	/* No limit anywhere. */
	put("a/b/memory.high", "max\n");
	put("a/memory.max", "max\n");
	cr_assert_eq(vs_memcg_room(&cg, &room), 0);
	cr_assert_eq(room.limit, VS_MEMCG_NONE);
}

Test(headroom, v1_limits_and_unlimited)
{
	struct vs_memcg cg;
	struct vs_memcg_room room;
	uint64_t kills = 7;

	put("memory/memory.limit_in_bytes", "9223372036854771712\n");
	putu("memory/memory.usage_in_bytes", 5000 * MIB);
	put("memory/api/memory.limit_in_bytes", "9223372036854771712\n");
	putu("memory/api/memory.usage_in_bytes", 700 * MIB);
	putu("memory/api/x/memory.limit_in_bytes", 600 * MIB);
	putu("memory/api/x/memory.usage_in_bytes", 530 * MIB);
	put("memory/api/x/memory.stat", "cache 1\ninactive_file 99999999\ntotal_inactive_file 4194304\n"
					 "total_active_file 6291456\n");
	put("memory/api/x/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
	cr_assert_eq(vs_memcg_parse(root, "4:memory:/api/x\n0::/\n", &cg), 0);
	cr_assert_eq(vs_memcg_room(&cg, &room), 0);
	cr_assert_eq(room.limit, 600 * MIB);
	cr_assert_eq(room.free, 70 * MIB + 10 * MIB, "free %llu", (unsigned long long)room.free);
	cr_assert_str_eq(room.path, "/api/x");
	cr_assert_eq(vs_memcg_oom_kills(&cg, &kills), 0);
	cr_assert_eq(kills, 3);

	/* An unreadable level is an error, not "no limit". */
	put("memory/api/memory.limit_in_bytes", "garbage\n");
	cr_assert_eq(vs_memcg_room(&cg, &room), -EINVAL);
}

Test(headroom, v2_oom_kills_and_meminfo)
{
	struct vs_memcg cg;
	uint64_t v = 0;
	char path[PATH_MAX];

	put("cgroup.controllers", "memory\n");
	put("vm/memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n");
	cr_assert_eq(vs_memcg_parse(root, "0::/vm\n", &cg), 0);
	cr_assert_eq(vs_memcg_oom_kills(&cg, &v), 0);
	cr_assert_eq(v, 1);

	put("meminfo", "MemTotal:       24683548 kB\nMemFree:        24365940 kB\n"
		       "MemAvailable:     819200 kB\nBuffers:  1 kB\n");
	snprintf(path, sizeof(path), "%s/meminfo", root);
	cr_assert_eq(vs_meminfo_available(path, &v), 0);
	cr_assert_eq(v, 800 * MIB);
	put("meminfo", "MemTotal: 1 kB\n");
	cr_assert_eq(vs_meminfo_available(path, &v), -ENOENT);
}

Test(headroom, verdict_names_the_tightest)
{
	struct vs_memcg_room room = { .free = 80 * MIB, .limit = 600 * MIB, .path = "/api/x" };
	struct vs_headroom h = { .need = 512 * MIB + VS_HEADROOM_MARGIN };
	char msg[256] = "";

	/* The cgroup is tighter than the host. */
	vs_headroom_judge(&h, &room, "the VMM's", "/api/x", 4096 * MIB);
	cr_assert_eq(h.free, 80 * MIB);
	cr_assert_eq(vs_headroom_verdict(&h, msg, sizeof(msg)), -ENOMEM);
	cr_assert_str_eq(msg, "enable needs 528 MiB of staging; the VMM's memory cgroup has 80 MiB "
			      "free (limit 600 MiB, /api/x)");

	/* An ancestor's limit. */
	vs_headroom_judge(&h, &room, "the helper's", "/api/x/vm", 4096 * MIB);
	vs_headroom_verdict(&h, msg, sizeof(msg));
	cr_assert_str_eq(msg, "enable needs 528 MiB of staging; the helper's memory cgroup has "
			      "80 MiB free under the limit of /api/x (600 MiB)");

	/* The host is tighter. */
	vs_headroom_judge(&h, &room, "the VMM's", "/api/x", 70 * MIB);
	cr_assert_eq(h.limit, 0);
	vs_headroom_verdict(&h, msg, sizeof(msg));
	cr_assert_str_eq(msg, "enable needs 528 MiB of staging; the host has 70 MiB available");

	/* No cgroup limit: the host decides; it fits. */
	room.limit = VS_MEMCG_NONE;
	room.free = VS_MEMCG_NONE;
	vs_headroom_judge(&h, &room, "the VMM's", "/api/x", 600 * MIB);
	cr_assert_eq(vs_headroom_verdict(&h, msg, sizeof(msg)), 0);
	vs_headroom_judge(&h, NULL, "the VMM's", NULL, h.need);
	cr_assert_eq(vs_headroom_verdict(&h, msg, sizeof(msg)), 0, "exactly enough fits");
	vs_headroom_judge(&h, NULL, "the VMM's", NULL, h.need - 1);
	cr_assert_eq(vs_headroom_verdict(&h, msg, sizeof(msg)), -ENOMEM);
}
