/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fault thread against a real userfaultfd of this process.
 *
 * UFFDIO_UNREGISTER wakes the missing faults queued on its range, but a
 * fault whose thread holds only the VMA's lock (not mmap_lock) can queue
 * itself just after that wake, and then sleeps on a range that is no
 * longer registered: UFFDIO_COPY and UFFDIO_ZEROPAGE fail with ENOENT and
 * wake nobody. disable's final unregister met such faults (the stress
 * test found vCPU threads asleep for good after disable). The helper
 * must wake them itself. Here the same state is made without a race:
 * re-registering the range for write-protect only drops its missing
 * mode, and unregistering it then wakes nobody.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../helper/fault/fault.h"
#include "../helper/model/helper.h"
#include "unit_fixture.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#define NPAGES 16
#define FAULT_PAGE 3
#define WAIT_S 20.0 /* only a hang guard */

static volatile uint8_t *guest;
static atomic_bool read_done;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *reader(void *arg)
{
	(void)arg;
	(void)guest[FAULT_PAGE * VS_PAGE_SIZE];
	atomic_store(&read_done, true);
	return NULL;
}

static int open_uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), dev;

	if (fd < 0 && (dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC)) >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(dev);
	}
	return fd;
}

/* "pending:" (queued, unread) or "total:" (also read, not woken) of the uffd. */
static long uffd_faults(int uffd, const char *key)
{
	char path[64], line[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", uffd);
	f = fopen(path, "re");
	cr_assert(f, "cannot read %s", path);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = strtol(line + strlen(key), NULL, 10);
	fclose(f);
	cr_assert_geq(v, 0, "no %s in fdinfo of the uffd", key);
	return v;
}

static void uffd_register(int uffd, uint64_t len, uint64_t mode)
{
	struct uffdio_register reg = {
		.range = { .start = (uint64_t)(uintptr_t)guest, .len = len },
		.mode = mode,
	};

	cr_assert_eq(ioctl(uffd, UFFDIO_REGISTER, &reg), 0, "UFFDIO_REGISTER: %s",
		     strerror(errno));
}

TestSuite(fault);

Test(fault, woken_when_read_after_its_range_was_unregistered)
{
	uint64_t len = NPAGES * VS_PAGE_SIZE;
	struct uffdio_range range;
	pthread_t t;
	double deadline;
	int obj = unit_setup_obj("unit-fault", NPAGES), uffd, idx;

	uffd = open_uffd();
	if (uffd < 0)
		cr_skip_test("userfaultfd unavailable: %s", strerror(errno));
	cr_assert_eq(vs_fault_start(), 0);
	idx = vs_proc_add(getpid(), uffd, -1, true);
	cr_assert_geq(idx, 0, "vs_proc_add: %s", strerror(-idx));
	if (!vs.procs[idx].wp)
		cr_skip_test("no write-protect on shmem here (Linux 5.19)");
	guest = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vs.objs[obj].fd, 0);
	cr_assert_neq(guest, MAP_FAILED);
	cr_assert_eq(vs_map_add(idx, obj, (uint64_t)(uintptr_t)guest, len, 0), 0);
	uffd_register(uffd, len, UFFDIO_REGISTER_MODE_MISSING);

	/* Held: the fault thread reads nothing until the range is gone. */
	pthread_mutex_lock(&vs.lock);
	cr_assert_eq(pthread_create(&t, NULL, reader, NULL), 0);
	for (deadline = now_s() + WAIT_S; uffd_faults(uffd, "pending:") != 1;) {
		cr_assert(now_s() < deadline, "the read never faulted");
		usleep(1000);
	}
	uffd_register(uffd, len, UFFDIO_REGISTER_MODE_WP);
	range = (struct uffdio_range){ .start = (uint64_t)(uintptr_t)guest, .len = len };
	cr_assert_eq(ioctl(uffd, UFFDIO_UNREGISTER, &range), 0);
	if (uffd_faults(uffd, "total:") != 1) {
		pthread_mutex_unlock(&vs.lock);
		cr_skip_test("this kernel woke the fault on unregister without missing mode");
	}
	pthread_mutex_unlock(&vs.lock);

	for (deadline = now_s() + WAIT_S; !atomic_load(&read_done);) {
		cr_assert(now_s() < deadline, "the faulting thread was never woken (fdinfo: %ld "
			  "pending, %ld in all)", uffd_faults(uffd, "pending:"),
			  uffd_faults(uffd, "total:"));
		usleep(1000);
	}
	pthread_join(t, NULL);
	cr_assert_eq(uffd_faults(uffd, "total:"), 0);
	cr_assert_eq(guest[FAULT_PAGE * VS_PAGE_SIZE], 0);
	vs_fault_stop();
}
