/* SPDX-License-Identifier: BSD-3-Clause */
/* The helper's one state (helper.h): its definition, start values and names. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../sys/log.h"
#include "../sys/swapfile.h"
#include "../sys/uffd.h"
#include "copies.h"
#include "helper.h"

struct vs_helper vs;

struct vs_model_hooks vs_hooks;

const char *vs_state_name(enum vs_state st)
{
	static const char *const names[] = {
		"Ready", "Pending", "TrimInProgress", "SwapOutInProgress",
		"Active", "SwapInInProgress", "Failed",
	};
	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "Unknown";
}

void vs_helper_init(pid_t vmm_pid)
{
	memset(&vs, 0, sizeof(vs));
	pthread_mutex_init(&vs.lock, NULL);
	pthread_rwlock_init(&vs.stg_lock, NULL);
	vs.vmm_pid = vmm_pid;
	vs.managed = true;
	vs.swap.fd = -1;
	vs.fault_epfd = vs.fault_wake_fd = -1;
	vs.state = VS_READY;
	vs_slots_init(&vs.swap.slots);
	for (int i = 0; i < VS_MAX_PROCS; i++)
		vs.procs[i].uffd = vs.procs[i].pidfd = vs.procs[i].sock = -1;
}
