/* SPDX-License-Identifier: BSD-3-Clause */
/* Finding a VMM under the run root and checking that its helper lives. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_common.h"
#include "vmswap/util.h"

/* A positive decimal int with nothing around it (but an optional '\n'). */
static int parse_pid(const char *s, size_t len, int *out)
{
	long v = 0;

	if (len && s[len - 1] == '\n')
		len--;
	if (!len || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v <= 0 || v > INT_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/*
 * The numeric directories under the run root, sorted, in a malloc'd array
 * (NULL when empty). A missing root is an empty list, not an error.
 */
int vs_ctl_list_pids(int **pids, size_t *n)
{
	char root[256];
	struct dirent *de;
	int *v = NULL, r;
	size_t cnt = 0, cap = 0;
	DIR *d;

	*pids = NULL;
	*n = 0;
	r = vmswap_run_root(root, sizeof(root));
	if (r)
		return r;
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct stat st;
		int pid;

		if (parse_pid(de->d_name, strlen(de->d_name), &pid))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (cnt == cap) {
			int *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = pid;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_int);
	*pids = v;
	*n = cnt;
	return 0;
}

int vs_ctl_read_helper_pid(int vmm_pid, pid_t *out)
{
	char path[PATH_MAX], buf[32];
	ssize_t len;
	int fd, r, pid;

	r = vmswap_run_path(path, sizeof(path), vmm_pid, VMSWAP_PIDFILE_NAME);
	if (r)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf));
	r = len < 0 ? -errno : 0;
	close(fd);
	if (r)
		return r;
	/* pid > 0 matters: kill(0, 0) or kill(-1, 0) would mean something else. */
	if (len == sizeof(buf) || parse_pid(buf, (size_t)len, &pid))
		return -EINVAL;
	*out = pid;
	return 0;
}

/* EPERM: it exists, it merely belongs to someone else. */
bool vs_ctl_alive(pid_t pid)
{
	return pid > 0 && (!kill(pid, 0) || errno == EPERM);
}

/* The VMM pids under the run root, or an exit code after a message. */
int vs_ctl_run_pids(int **pids, size_t *n)
{
	char root[256];
	int r;

	if (vmswap_run_root(root, sizeof(root))) {
		vs_ctl_err("cannot locate the run directory (set %s or XDG_RUNTIME_DIR)",
			   VMSWAP_ENV_RUN_DIR);
		return VS_EXIT_NOHELPER;
	}
	r = vs_ctl_list_pids(pids, n);
	if (r) {
		vs_ctl_err("cannot read the run directory %s: %s", root, strerror(-r));
		return VS_EXIT_NOHELPER;
	}
	return 0;
}

/* The only VMM under the run roots, or an exit code after a message. */
static int pick_only(int *pid)
{
	char roots[2][256];
	int *pids = NULL, nroots = vs_ctl_roots(roots, 2), r = 0;
	size_t n = 0;

	for (int i = 0; i < nroots && !r; i++) {
		int *more;
		size_t k;

		vs_ctl_use_root(roots[i]);
		r = vs_ctl_run_pids(&more, &k);
		if (!r && k) {
			int *all = realloc(pids, (n + k) * sizeof(*pids));

			if (all) {
				memcpy(all + n, more, k * sizeof(*more));
				pids = all;
				n += k;
			}
		}
		if (!r)
			free(more);
	}
	if (r) {
		free(pids);
		return r;
	}
	if (n == 1) {
		*pid = pids[0];
		free(pids);
		return vs_ctl_use_root_of(*pid) ? VS_EXIT_NOHELPER : 0;
	}
	if (!n) {
		char root[256] = "?";

		vmswap_run_root(root, sizeof(root));
		vs_ctl_err("no VMM runs under vmswap (nothing in %s)", root);
	} else {
		char list[128] = "";
		size_t o = 0;

		for (size_t i = 0; i < n && o < sizeof(list) - 16; i++)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%d", i ? " " : "", pids[i]);
		vs_ctl_err("several VMMs; use -p PID (found %s%s)", list, o >= sizeof(list) - 16 ? " ..." : "");
	}
	free(pids);
	return n ? VS_EXIT_USAGE : VS_EXIT_NOHELPER;
}

/*
 * Resolve pid (0: the only VMM) to its run directory and, when helper.pid
 * is readable, its helper pid (else 0). Returns 0, or an exit code after
 * printing what is missing.
 */
int vs_ctl_target_find(int pid, struct vs_ctl_target *t)
{
	char path[PATH_MAX];
	struct stat st;
	int r;

	if (!pid && (r = pick_only(&pid)))
		return r;
	vs_ctl_use_root_of(pid);
	r = vmswap_run_path(path, sizeof(path), pid, NULL);
	if (r == -ENOENT) {
		vs_ctl_err("cannot locate the run directory (set %s or XDG_RUNTIME_DIR)",
			   VMSWAP_ENV_RUN_DIR);
		return VS_EXIT_NOHELPER;
	}
	if (r) {
		vs_ctl_err("run directory path for pid %d too long (check %s)", pid,
			   VMSWAP_ENV_RUN_DIR);
		return VS_EXIT_NOHELPER;
	}
	if (stat(path, &st)) {
		if (errno == ENOENT && vs_ctl_alive(pid))
			vs_ctl_err("pid %d has no vmswap helper (no %s): it does not run under "
				   "libvmswap.so, or runs unmanaged (a bad VMSWAP_* setting is "
				   "reported on its stderr)", pid, path);
		else
			vs_ctl_err("no vmswap run directory for pid %d (%s: %s)", pid, path,
				   strerror(errno));
		return VS_EXIT_NOHELPER;
	}
	t->vmm_pid = pid;
	t->helper_pid = 0;
	vs_ctl_read_helper_pid(pid, &t->helper_pid);
	return 0;
}

/* 0 when t's helper runs, else an exit code after saying why not. */
int vs_ctl_target_check(struct vs_ctl_target *t)
{
	char path[PATH_MAX] = VMSWAP_PIDFILE_NAME;
	int r;

	r = vs_ctl_read_helper_pid(t->vmm_pid, &t->helper_pid);
	if (r) {
		vmswap_run_path(path, sizeof(path), t->vmm_pid, VMSWAP_PIDFILE_NAME);
		if (r == -ENOENT)
			vs_ctl_err("no vmswap helper for pid %d (no %s)", t->vmm_pid, path);
		else
			vs_ctl_err("no vmswap helper for pid %d (%s: %s)", t->vmm_pid, path,
				   r == -EINVAL ? "not a pid" : strerror(-r));
		return VS_EXIT_NOHELPER;
	}
	if (!vs_ctl_alive(t->helper_pid)) {
		vs_ctl_err("vmswap helper for pid %d is not running (helper pid %d is gone)",
			   t->vmm_pid, (int)t->helper_pid);
		return VS_EXIT_NOHELPER;
	}
	return 0;
}

int vs_ctl_target_open(int pid, struct vs_ctl_target *t)
{
	int rc = vs_ctl_target_find(pid, t);

	return rc ? rc : vs_ctl_target_check(t);
}
