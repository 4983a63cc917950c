/* SPDX-License-Identifier: BSD-3-Clause */
/* Per-test environment and its cleanup; see harness.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../helper/ctl/ctl_json.h"
#include "harness.h"
#include <vmswap/svc.h>
#include "vmswap/common.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

struct h_env h_env;
struct h_proc *h_procs[H_MAX_PROCS];
int h_nprocs;

double h_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void h_nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *h_bin(const char *name)
{
	static char bufs[4][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", h_env.build, name);
	return b;
}

void h_setup(void)
{
	const char *b = getenv("VMSWAP_BUILD_DIR");
	char tmpl[] = "/tmp/vmswap-test-XXXXXX";

	signal(SIGPIPE, SIG_IGN); /* a dead child's stdin must give EPIPE */
	memset(&h_env, 0, sizeof(h_env));
	h_nprocs = 0;
	cr_assert(realpath(b && *b ? b : "build", h_env.build),
		  "build dir not found (run from the top directory, or set VMSWAP_BUILD_DIR)");
	snprintf(h_env.shim, sizeof(h_env.shim), "%s/libvmswap.so", h_env.build);
	cr_assert(access(h_env.shim, R_OK) == 0, "%s missing: run make first", h_env.shim);
	cr_assert(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	snprintf(h_env.dir, sizeof(h_env.dir), "%s", tmpl);
	snprintf(h_env.run, sizeof(h_env.run), "%s/run", tmpl);
	snprintf(h_env.swap, sizeof(h_env.swap), "%s/swap", tmpl);
	cr_assert(mkdir(h_env.run, 0700) == 0 && mkdir(h_env.swap, 0700) == 0);

	/* What the test process sees is what the children inherit. */
	setenv(VMSWAP_ENV_RUN_DIR, h_env.run, 1);
	setenv(VMSWAP_ENV_SWAP_DIR, h_env.swap, 1);
	setenv(VMSWAP_ENV_MIN_SIZE, "1M", 1);
	/* Debugging aid: VMSWAP_TEST_LOG=info puts helper and shim logs in the
	 * children's stderr files (kept with VMSWAP_TEST_KEEP=1). */
	if (getenv("VMSWAP_TEST_LOG"))
		setenv(VMSWAP_ENV_LOG, getenv("VMSWAP_TEST_LOG"), 1);
	else
		unsetenv(VMSWAP_ENV_LOG);
	unsetenv(VMSWAP_ENV_MATCH);
	unsetenv(VMSWAP_ENV_DISABLE);
	unsetenv(VMSWAP_ENV_HELPER);
	unsetenv(VMSWAP_ENV_TEST_NO_UFFD);
	unsetenv(VMSWAP_ENV_TEST_FAIL_WRITE_AFTER);
	unsetenv(VMSWAP_ENV_TEST_FAIL_READS);
	unsetenv("LD_PRELOAD");
	/* A vmswapd running on this host is not the tests' (e2e_service.c starts its own). */
	setenv(VMSWAP_ENV_SERVICE_SOCKET, "none", 1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

void h_teardown(void)
{
	for (int i = 0; i < h_nprocs; i++) {
		struct h_proc *p = h_procs[i];

		if (!p->reaped) {
			kill(p->pid, SIGKILL);
			while (waitpid(p->pid, &p->wstatus, 0) < 0 && errno == EINTR)
				;
			p->reaped = true;
		}
	}
	/* A helper outliving its VMM would be a bug the tests report; here we
	 * only make sure none is left behind. */
	for (int i = 0; i < h_nprocs; i++) {
		struct h_proc *p = h_procs[i];

		if (h_rundir_exists(p->pid) && !h_wait_rundir_gone(p->pid)) {
			pid_t hp = h_helper_pid(p->pid);
			uint64_t keeper = 0;
			char *json = NULL;

			/* The keeper first, or it would restart the helper. */
			if (!vs_status_read(p->pid, &json) &&
			    !vs_json_get_u64(json, "keeper_pid", &keeper) && keeper > 1)
				kill((pid_t)keeper, SIGKILL);
			free(json);
			if (hp > 0)
				kill(hp, SIGKILL);
		}
		close(p->in_fd);
		close(p->out_fd);
		free(p);
	}
	h_nprocs = 0;
	if (h_env.dir[0] && getenv("VMSWAP_TEST_KEEP"))
		fprintf(stderr, "harness: kept %s\n", h_env.dir);
	else if (h_env.dir[0])
		nftw(h_env.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	h_env.dir[0] = '\0';
}

void h_require_uffd(void)
{
	int fd = -1, dev, err = ENOSYS;

#ifdef SYS_userfaultfd
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	err = errno;
#endif
	if (fd < 0 && (dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC)) >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(dev);
	}
	if (fd < 0)
		h_skip("userfaultfd unavailable to uid %d (%s); needs "
		       "vm.unprivileged_userfaultfd=1, /dev/userfaultfd access or root",
		       (int)getuid(), strerror(err));
	close(fd);
}


int h_dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	cr_assert(d, "opendir %s: %s", path, strerror(errno));
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}
