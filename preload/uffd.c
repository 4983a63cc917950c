/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vmswap/version.h>

#include "uffd.h"

#ifndef USERFAULTFD_IOC_NEW /* headers older than Linux 6.1 */
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

int shim_uffd_create(int *dev_err)
{
	int fd = -1, err = ENOSYS, dev;

#ifdef SYS_userfaultfd
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	err = errno;
#endif
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		*dev_err = errno;
		return -err;
	}
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	*dev_err = fd < 0 ? errno : 0;
	close(dev);
	return fd >= 0 ? fd : -err;
}

static const char *ename(int err)
{
	const char *s = strerrorname_np(err);

	return s ? s : "?";
}

void shim_uffd_reason(int err, int dev_err, char *buf, size_t n)
{
	/* The system call needs the sysctl or CAP_SYS_PTRACE; then the device decides. */
	if (err == EPERM && dev_err == ENOENT)
		snprintf(buf, n, "userfaultfd unavailable: vm.unprivileged_userfaultfd=0 and no "
			 "/dev/userfaultfd here (libvirt: cgroup_device_acl)");
	else if (err == EPERM && dev_err == EACCES)
		snprintf(buf, n, "userfaultfd unavailable: /dev/userfaultfd not open to uid %u "
			 "(group " VMSWAP_GROUP ", see vmswap(7))", (unsigned)geteuid());
	else if (err == EPERM && dev_err == EPERM)
		snprintf(buf, n, "userfaultfd unavailable: vm.unprivileged_userfaultfd=0 and "
			 "/dev/userfaultfd blocked by the device cgroup");
	else if (err == ENOSYS && dev_err == ENOENT)
		snprintf(buf, n, "userfaultfd unavailable (ENOSYS: kernel "
			 "without userfaultfd, or blocked by seccomp)");
	else
		snprintf(buf, n, "userfaultfd unavailable (%s: %s; "
			 "/dev/userfaultfd: %s)", ename(err), strerror(err),
			 ename(dev_err));
}
