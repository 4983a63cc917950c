/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where VMMs are found, and their names. A user's own helpers live in
 * its run root ($XDG_RUNTIME_DIR/vmswap), those vmswapd started in the
 * service's (/run/vmswap); without VMSWAP_RUN_DIR both are searched. A
 * VMM's name is QEMU's -name guest=NAME (or -name NAME), as libvirt sets it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_common.h"
#include "vmswap/util.h"

int vs_ctl_roots(char roots[][256], int max)
{
	const char *env = getenv(VMSWAP_ENV_RUN_DIR);
	int n = 0;

	if (max > 0 && !vmswap_run_root(roots[0], sizeof(roots[0])))
		n++;
	if (n < max && !(env && *env) &&
	    (!n || strcmp(roots[0], VMSWAP_DEFAULT_RUN_DIR_ROOT)))
		snprintf(roots[n++], sizeof(roots[0]), "%s", VMSWAP_DEFAULT_RUN_DIR_ROOT);
	return n;
}

void vs_ctl_use_root(const char *root)
{
	/* Only this process: every run-directory path below follows it. */
	setenv(VMSWAP_ENV_RUN_DIR, root, 1);
}

int vs_ctl_use_root_of(int pid)
{
	char roots[2][256], path[600];
	struct stat st;
	int n = vs_ctl_roots(roots, 2);

	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%d", roots[i], pid);
		if (!lstat(path, &st) && S_ISDIR(st.st_mode)) {
			vs_ctl_use_root(roots[i]);
			return 0;
		}
	}
	if (n)
		vs_ctl_use_root(roots[0]); /* the messages name the usual place */
	return -ENOENT;
}

int vs_ctl_vmm_name(int pid, char *name, size_t n)
{
	char path[64], buf[8192];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -ENOENT;
	buf[len] = 0;
	for (char *a = buf; a < buf + len; a += strlen(a) + 1) {
		char *v = a + strlen(a) + 1, *comma;

		if (strcmp(a, "-name") || v >= buf + len)
			continue;
		/* "guest=NAME,debug-threads=on", or a bare "NAME" (",," escapes a comma). */
		if (!strncmp(v, "guest=", 6))
			v += 6;
		else if (strchr(v, '='))
			return -ENOENT;
		snprintf(name, n, "%s", v);
		for (comma = name; (comma = strchr(comma, ',')); comma++) {
			if (comma[1] != ',') {
				*comma = 0;
				break;
			}
			memmove(comma, comma + 1, strlen(comma));
		}
		return name[0] ? 0 : -ENOENT;
	}
	return -ENOENT;
}
