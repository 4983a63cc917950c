/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Recovery after a helper crash; see recover.h. Every fd the manifest
 * names must be one we inherited and of the expected kind (an fd number
 * the dead helper had closed may since name something else).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "control/shimconn.h"
#include "model/helper.h"
#include "persist/keeper.h"
#include "persist/manifest.h"
#include "recover.h"
#include "state/state.h"
#include "sys/fdkind.h"
#include "sys/freeze.h"
#include "sys/log.h"
#include "sys/uffd.h"

#define FD_BITS 65536

static uint64_t inherited[FD_BITS / 64];

static bool is_inherited(int fd)
{
	return fd >= 0 && fd < FD_BITS && (inherited[fd / 64] >> (fd % 64) & 1);
}

static void set_inherited(int fd, bool on)
{
	if (fd < 0 || fd >= FD_BITS)
		return;
	if (on)
		inherited[fd / 64] |= 1ull << (fd % 64);
	else
		inherited[fd / 64] &= ~(1ull << (fd % 64));
}

void vs_recover_scan_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd = (int)strtol(de->d_name, NULL, 10);

		if (de->d_name[0] != '.' && fd != dirfd(d))
			set_inherited(fd, true);
	}
	closedir(d);
}

/* An inherited fd that is still the file of inode @ino (dev @dev unless 0). */
static bool fd_is_file(int fd, uint64_t dev, uint64_t ino)
{
	struct stat st;

	return is_inherited(fd) && fstat(fd, &st) == 0 && st.st_ino == ino &&
	       (!dev || st.st_dev == dev);
}

static int find_manifest(void)
{
	for (int fd = 3; fd < FD_BITS; fd++)
		if (is_inherited(fd) && vs_fd_link_is(fd, "/memfd:vmswap-manifest"))
			return fd;
	return -ENOENT;
}

static int map_obj(struct vs_obj *o, const struct vs_mf_obj *m)
{
	struct stat st;
	void *p;

	if (!fd_is_file(m->fd, m->dev, m->ino) || !fd_is_file(m->stg_fd, 0, m->stg_ino) ||
	    !fd_is_file(m->pt_fd, 0, m->pt_ino))
		return -EBADF;
	if (fstat(m->stg_fd, &st) < 0 || (uint64_t)st.st_size < m->npages * VS_PAGE_SIZE ||
	    fstat(m->pt_fd, &st) < 0 || (uint64_t)st.st_size < vs_pt_bytes(m->npages))
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	p = mmap(NULL, vs_pt_bytes(m->npages), PROT_READ | PROT_WRITE, MAP_SHARED, m->pt_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	o->pt = p;
	p = mmap(NULL, m->npages * VS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, m->stg_fd, 0);
	if (p == MAP_FAILED) {
		munmap(o->pt, vs_pt_bytes(m->npages));
		return -errno;
	}
	o->stg = p;
	o->used = true;
	o->fd = m->fd;
	o->stg_fd = m->stg_fd;
	o->pt_fd = m->pt_fd;
	o->dev = (dev_t)m->dev;
	o->ino = (ino_t)m->ino;
	o->stg_ino = (ino_t)m->stg_ino;
	o->pt_ino = (ino_t)m->pt_ino;
	o->npages = m->npages;
	memcpy(o->name, m->name, sizeof(o->name));
	o->name[sizeof(o->name) - 1] = 0;
	return 0;
}

/*
 * Counters and slots from the page table; staging copies of resident
 * pages (an enable's copies not punched yet) are dropped.
 */
static void settle_obj(struct vs_obj *o)
{
	uint64_t run = 0;

	for (uint64_t pg = 0; pg < o->npages; pg++) {
		uint32_t e = o->pt[pg];

		if (vs_pt_has_slot(e) && vs.swap.fd >= 0) {
			if (vs_slots_take(&vs.swap.slots, vs_pt_slot(e)))
				vs_warn("slot %u of %s used twice", vs_pt_slot(e), o->name);
		} else if (vs_pt_has_slot(e)) {
			o->pt[pg] = e &= VS_PT_STATE_MASK; /* no file: no slot either */
		}
		if (vs_pt_state(e) == VS_P_INPLACE) /* in guest memory: resident again */
			o->pt[pg] = e = (e & ~VS_PT_STATE_MASK) | VS_P_RESIDENT;
		if (vs_pt_state(e) == VS_P_STAGING)
			vs.stats.c.staging++;
		else if (vs_pt_state(e) == VS_P_FILE)
			vs.stats.c.swapped++;
		if (vs_pt_state(e) == VS_P_RESIDENT) {
			run++;
			continue;
		}
		vs_stg_punch(o, pg - run, run);
		run = 0;
	}
	vs_stg_punch(o, o->npages - run, run);
}

static int load_proc(int i, const struct vs_mf_proc *m)
{
	struct vs_proc *p = &vs.procs[i];
	int pidfd;

	if (m->uffd >= 0 && (!is_inherited(m->uffd) ||
			     !vs_fd_link_is(m->uffd, "anon_inode:[userfaultfd]")))
		return -EBADF;
	pidfd = (int)syscall(SYS_pidfd_open, m->pid, 0);
	if (pidfd < 0)
		return -errno; /* exited meanwhile */
	*p = (struct vs_proc){ .used = true, .is_vmm = m->is_vmm, .pid = m->pid,
			       .uffd = m->uffd, .wp = m->wp, .pidfd = pidfd,
			       .sock = is_inherited(m->sock) ? m->sock : -1, .gen = 1 };
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	if (p->uffd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.u64 = (uint64_t)p->gen << 32 | (uint32_t)i };

		fcntl(p->uffd, F_SETFD, FD_CLOEXEC);
		if (epoll_ctl(vs.fault_epfd, EPOLL_CTL_ADD, p->uffd, &ev) < 0) {
			int r = -errno;

			close(pidfd);
			p->used = false;
			return r;
		}
	}
	return 0;
}

/* Mark what the model uses; whatever is left over is closed and forgotten. */
static void claim(int fd)
{
	if (fd >= 0)
		set_inherited(fd, false);
}

static void release_unclaimed(int keeper_fd)
{
	for (int fd = 3; fd < FD_BITS; fd++) {
		if (!is_inherited(fd) || fd == keeper_fd)
			continue;
		vs_dbg("recover: closing fd %d the model does not name", fd);
		vs_keep_close(fd);
		set_inherited(fd, false);
	}
}

/* The run dir's fds, from the manifest: adopted and claimed. 0 or -errno with *why. */
static int adopt_rundir(pid_t vmm_pid, const struct vs_mf_body *b, struct vs_rundir *rd,
			char *why, size_t n)
{
	int r;

	if (!is_inherited(b->dirfd) || !is_inherited(b->control_fd) ||
	    !is_inherited(b->listen_fd)) {
		snprintf(why, n, "run dir fds not inherited");
		return -EBADF;
	}
	for (int fd = 3; fd < FD_BITS; fd++)
		if (is_inherited(fd))
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	r = vs_rundir_adopt(rd, vmm_pid, b->dirfd, b->control_fd, b->listen_fd, why, n);
	if (r)
		return r;
	claim(b->dirfd);
	claim(b->control_fd);
	claim(b->listen_fd);
	vs_manifest_set_rundir(b->dirfd, b->control_fd, b->listen_fd);
	return 0;
}

/* Objects, then processes, then the mappings between them. vs.lock held. */
static void load_model(const struct vs_mf_body *b, int *procs, int *objs)
{
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		const struct vs_mf_obj *m = &b->objs[i];
		int r;

		if (!m->used)
			continue;
		r = map_obj(&vs.objs[i], m);
		if (r) {
			vs_err("recover: guest memfd %.64s lost (%s); its pages out of guest "
			       "memory are gone", m->name, strerror(-r));
			continue;
		}
		settle_obj(&vs.objs[i]);
		claim(m->fd);
		claim(m->stg_fd);
		claim(m->pt_fd);
		(*objs)++;
	}
	for (int i = 0; i < VS_MAX_PROCS; i++) {
		const struct vs_mf_proc *m = &b->procs[i];
		int r;

		if (!m->used)
			continue;
		r = load_proc(i, m);
		if (r) {
			vs_info("recover: pid %d dropped: %s", m->pid, strerror(-r));
			continue;
		}
		claim(vs.procs[i].uffd);
		(*procs)++;
	}
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		const struct vs_mf_map *m = &b->maps[i];

		if (!m->used || m->proc < 0 || m->proc >= VS_MAX_PROCS || m->obj < 0 ||
		    m->obj >= VS_MAX_OBJS || !vs.procs[m->proc].used || !vs.objs[m->obj].used)
			continue;
		vs.maps[i] = (struct vs_map){ .used = true, .registered = m->registered,
					      .proc = m->proc, .obj = m->obj, .addr = m->addr,
					      .len = m->len, .off = m->off };
	}
}

/* The shim connections that were open: sockets inherited, adopted. vs.lock held. */
static void load_conns(const struct vs_mf_body *b)
{
	for (int i = 0; i < VS_MAX_CONNS; i++) {
		const struct vs_mf_conn *m = &b->conns[i];
		int proc = m->proc >= 0 && m->proc < VS_MAX_PROCS && vs.procs[m->proc].used
			   ? m->proc : -1;
		struct stat st;

		if (m->fd <= 0 || !is_inherited(m->fd) || fstat(m->fd, &st) < 0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		if (!vs_conn_adopt(m->fd, proc, m->is_vmm))
			break;
		fcntl(m->fd, F_SETFL, fcntl(m->fd, F_GETFL) | O_NONBLOCK);
		claim(m->fd);
	}
}

int vs_recover_load(pid_t vmm_pid, int keeper_fd, struct vs_rundir *rd, char *why, size_t n)
{
	const struct vs_mf_body *b;
	struct stat st;
	int mfd, r, procs = 0, objs = 0;

	set_inherited(keeper_fd, false);
	snprintf(why, n, "no manifest among the inherited fds");
	mfd = find_manifest();
	if (mfd < 0)
		return mfd;
	snprintf(why, n, "manifest unreadable");
	if ((r = vs_manifest_open(mfd, &b)))
		return r;
	fcntl(mfd, F_SETFD, FD_CLOEXEC);
	claim(mfd);
	if ((r = adopt_rundir(vmm_pid, b, rd, why, n)))
		return r;

	pthread_mutex_lock(&vs.lock);
	vs.managed = !b->unmanaged;
	memcpy(vs.reason, b->reason, sizeof(vs.reason));
	vs.reason[sizeof(vs.reason) - 1] = 0;
	if (is_inherited(b->swap_fd) && fstat(b->swap_fd, &st) == 0 && S_ISREG(st.st_mode)) {
		vs.swap.fd = b->swap_fd;
		vs.swap.direct = b->swap_direct;
		claim(vs.swap.fd);
	}
	load_model(b, &procs, &objs);
	load_conns(b);
	vs.registered = b->registered;
	for (int i = 0; i < VS_MAX_MAPS; i++)
		vs.registered |= vs.maps[i].used && vs.maps[i].registered;
	vs_manifest_set_recovered(b->recovered + 1);
	release_unclaimed(keeper_fd);
	vs_manifest_sync();
	vs_warn("recovered after a helper crash (restart %u): %d processes, %d guest memfds, "
		"%llu pages in staging, %llu in the swap file", vs_manifest_recovered(), procs,
		objs, (unsigned long long)vs.stats.c.staging, (unsigned long long)vs.stats.c.swapped);
	pthread_mutex_unlock(&vs.lock);
	return 0;
}

/* Wake every thread waiting on a fault in any mapping; they fault again if need be. */
static void wake_all(void)
{
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];
		struct vs_proc *p = &vs.procs[m->proc];

		if (m->used && p->used && p->uffd >= 0)
			vs_uffd_wake(p->uffd, m->addr, m->len);
	}
}

void vs_recover_resume(void)
{
	static pid_t pids[VS_FREEZE_MAX];
	int n = vs_descendants(vs.vmm_pid, pids, VS_FREEZE_MAX);

	/* The dead helper may have frozen the VMM for an enable. */
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGCONT);
	pthread_mutex_lock(&vs.lock);
	for (int i = 0; i < VS_MAX_PROCS; i++)
		if (vs.procs[i].used)
			kill(vs.procs[i].pid, SIGCONT);
	/* Unprotect (which wakes blocked writers); the page contents decide from here. */
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];
		struct vs_proc *p = &vs.procs[m->proc];

		if (!m->used || !m->registered || !p->used || p->uffd < 0 || !p->wp)
			continue;
		for (int tries = 0; tries < 10000; tries++) {
			int r = vs_uffd_writeprotect(p->uffd, m->addr, m->len, false);

			if (r != -EAGAIN)
				break;
			/* A pending event: the fault thread reads it first. */
			pthread_mutex_unlock(&vs.lock);
			usleep(50);
			pthread_mutex_lock(&vs.lock);
			if (!m->used || !p->used)
				break;
		}
	}
	wake_all();
	vs_note_error("the helper died and was restarted (restart %u); every page is swapped "
		      "back in", vs_manifest_recovered());
	pthread_mutex_unlock(&vs.lock);
	vs_state_recover();
}

void vs_recover_finish(void)
{
	pthread_mutex_lock(&vs.lock);
	wake_all();
	vs_info("recovery done: state %s", vs_state_name(vs.state));
	pthread_mutex_unlock(&vs.lock);
}
