/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A memory cgroup for the kernel-swap child. MADV_PAGEOUT writes pages to
 * swap, but a page whose write finished stays in the swap cache until
 * something reclaims it: without a reclaim the memory is not given back,
 * and a later re-touch is a minor fault instead of a swap-in. Reclaiming
 * the child's cgroup (memory.force_empty on v1, memory.reclaim on v2)
 * drops those clean pages, so the numbers are of memory really freed and
 * of really cold swap-ins. Created below our own cgroup, removed at exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

static char cg_dir[600];
static bool cg_v2;

/* Our cgroup path for the memory controller: v1 "N:memory:/p" or v2 "0::/p". */
static int own_path(char *path, size_t n, bool *v2)
{
	char line[600];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;

		if (!b)
			continue;
		b[strcspn(b, "\n")] = 0;
		*b = 0;
		if (!strcmp(a + 1, "memory") || (!strcmp(a + 1, "") && r)) {
			*v2 = !strcmp(a + 1, "");
			snprintf(path, n, "%s", b + 1);
			r = 0;
			if (!*v2)
				break; /* a v1 memory hierarchy wins */
		}
	}
	fclose(f);
	return r;
}

int bm_cg_create(char *why, size_t n)
{
	char own[400], base[500], file[700];
	bool v2 = false;
	struct stat st;

	if (own_path(own, sizeof(own), &v2)) {
		snprintf(why, n, "no memory cgroup in /proc/self/cgroup");
		return -1;
	}
	if (v2) {
		snprintf(base, sizeof(base), "/sys/fs/cgroup%s", strcmp(own, "/") ? own : "");
	} else {
		snprintf(base, sizeof(base), "/sys/fs/cgroup/memory%s", strcmp(own, "/") ? own : "");
	}
	if (stat(base, &st) < 0) {
		snprintf(why, n, "cgroup %s: %s", base, strerror(errno));
		return -1;
	}
	/* run.sh names it, so that its trap can remove it even after a SIGKILL. */
	if (getenv("BENCH_CGROUP_NAME") && *getenv("BENCH_CGROUP_NAME"))
		snprintf(cg_dir, sizeof(cg_dir), "%s/%s", base, getenv("BENCH_CGROUP_NAME"));
	else
		snprintf(cg_dir, sizeof(cg_dir), "%s/vmswap-bench-%d", base, (int)getpid());
	if (mkdir(cg_dir, 0755) < 0 && errno != EEXIST) {
		snprintf(why, n, "mkdir %s: %s", cg_dir, strerror(errno));
		cg_dir[0] = 0;
		return -1;
	}
	cg_v2 = v2;
	if (v2) {
		/* The memory controller must be enabled for the new child. */
		char ctl[700], buf[256] = "";
		FILE *f;

		snprintf(ctl, sizeof(ctl), "%s/memory.reclaim", cg_dir);
		if (access(ctl, W_OK)) {
			snprintf(file, sizeof(file), "%s/cgroup.subtree_control", base);
			bm_write_str(file, "+memory");
		}
		if (access(ctl, W_OK)) {
			snprintf(file, sizeof(file), "%s/cgroup.controllers", base);
			if ((f = fopen(file, "re"))) {
				if (!fgets(buf, sizeof(buf), f))
					buf[0] = 0;
				fclose(f);
			}
			buf[strcspn(buf, "\n")] = 0;
			snprintf(why, n, "no memory controller for a child of %s (controllers: %s)",
				 base, buf);
			bm_cg_remove();
			return -1;
		}
	}
	return 0;
}

int bm_cg_join(pid_t pid)
{
	char file[700], s[32];

	if (!cg_dir[0])
		return -ENOENT;
	snprintf(file, sizeof(file), "%s/cgroup.procs", cg_dir);
	snprintf(s, sizeof(s), "%d", (int)pid);
	return bm_write_str(file, s);
}

long long bm_cg_stat(const char *key)
{
	char file[700];

	if (!cg_dir[0])
		return -1;
	snprintf(file, sizeof(file), "%s/memory.stat", cg_dir);
	return bm_kv(file, key);
}

int bm_cg_reclaim(void)
{
	char file[700];

	if (!cg_dir[0])
		return -ENOENT;
	if (cg_v2) {
		snprintf(file, sizeof(file), "%s/memory.reclaim", cg_dir);
		/* EAGAIN when less than asked could be reclaimed: expected. */
		int r = bm_write_str(file, "64G");

		return r == -EAGAIN ? 0 : r;
	}
	snprintf(file, sizeof(file), "%s/memory.force_empty", cg_dir);
	return bm_write_str(file, "0");
}

void bm_cg_remove(void)
{
	if (!cg_dir[0])
		return;
	/* The child may still be exiting; a few tries. */
	for (int i = 0; i < 100 && rmdir(cg_dir) < 0 && errno == EBUSY; i++)
		bm_sleep_ms(10);
	cg_dir[0] = 0;
}
