/* SPDX-License-Identifier: BSD-3-Clause */
/* The guest-memory model: processes, guest memfds (objects) and mappings. */
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

static void model_changed(void)
{
	if (vs_hooks.changed)
		vs_hooks.changed();
}

static void model_keep(int fd)
{
	if (vs_hooks.keep && fd >= 0)
		vs_hooks.keep(fd);
}

/* Out of the keeper, then closed. */
static void model_close(int fd)
{
	if (fd < 0)
		return;
	if (vs_hooks.forget)
		vs_hooks.forget(fd);
	close(fd);
}

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
	vs.swap_fd = -1;
	vs.fault_epfd = vs.fault_wake_fd = -1;
	vs.state = VS_READY;
	vs_slots_init(&vs.slots);
	for (int i = 0; i < VS_MAX_PROCS; i++)
		vs.procs[i].uffd = vs.procs[i].pidfd = vs.procs[i].sock = -1;
}

/* Its own lock: errors are set with and without vs.lock held. */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

/* last_error from @fmt; logged as an error when @log. */
static void put_error(bool log, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void put_error(bool log, const char *fmt, va_list ap)
{
	char buf[VS_ERR_MAX];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	pthread_mutex_lock(&err_lock);
	memcpy(vs.last_error, buf, sizeof(buf));
	vs.err_seq++;
	pthread_mutex_unlock(&err_lock);
	if (log)
		vs_err("%s", buf);
}

void vs_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_error(true, fmt, ap);
	va_end(ap);
}

void vs_note_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_error(false, fmt, ap);
	va_end(ap);
}

void vs_get_error(char *buf, size_t n)
{
	pthread_mutex_lock(&err_lock);
	snprintf(buf, n, "%s", vs.last_error);
	pthread_mutex_unlock(&err_lock);
}

void vs_clear_error(void)
{
	pthread_mutex_lock(&err_lock);
	vs.last_error[0] = '\0';
	vs.err_seq++;
	pthread_mutex_unlock(&err_lock);
}

const char *vs_last_error(char *buf, size_t n)
{
	vs_get_error(buf, n);
	return buf;
}

void vs_page_set(struct vs_obj *o, uint64_t pg, uint32_t e)
{
	enum vs_pstate was = vs_pt_state(o->pt[pg]), now = vs_pt_state(e);

	if (was != now) {
		if (was == VS_P_STAGING)
			vs.c.staging--;
		else if (was == VS_P_FILE)
			vs.c.swapped--;
		if (now == VS_P_STAGING)
			vs.c.staging++;
		else if (now == VS_P_FILE)
			vs.c.swapped++;
	}
	o->pt[pg] = e;
}

int vs_proc_by_pid(pid_t pid)
{
	for (int i = 0; i < VS_MAX_PROCS; i++)
		if (vs.procs[i].used && vs.procs[i].pid == pid)
			return i;
	return -ENOENT;
}

/*
 * Add a process. Takes @uffd (may be -1) when it succeeds; on failure
 * @uffd is still the caller's. @sock is the connection's, never closed here.
 * Returns the proc index or -errno.
 */
int vs_proc_add(pid_t pid, int uffd, int sock, bool is_vmm)
{
	struct vs_proc *p = NULL;
	bool wp = false;
	int idx, pidfd, r;

	for (idx = 0; idx < VS_MAX_PROCS; idx++) {
		if (!vs.procs[idx].used) {
			p = &vs.procs[idx];
			break;
		}
	}
	if (!p)
		return -EMFILE;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	r = uffd >= 0 ? vs_uffd_api(uffd, &wp) : 0;
	if (!r && uffd >= 0) {
		/* The fault thread checks the generation before it uses the slot. */
		struct epoll_event ev = {
			.events = EPOLLIN,
			.data.u64 = (uint64_t)(p->gen + 1) << 32 | (uint32_t)idx,
		};

		if (epoll_ctl(vs.fault_epfd, EPOLL_CTL_ADD, uffd, &ev) < 0)
			r = -errno;
	}
	if (r) {
		close(pidfd);
		return r;
	}
	p->used = true;
	p->dead = false;
	p->is_vmm = is_vmm;
	p->pid = pid;
	p->uffd = uffd;
	p->wp = wp;
	p->pidfd = pidfd;
	p->sock = sock;
	p->gen++;
	if (uffd >= 0)
		model_keep(uffd);
	model_changed();
	return idx;
}

/* Forget a process: its mappings, its uffd, its pidfd (its connection is shimconn's). */
void vs_proc_drop(int idx)
{
	struct vs_proc *p = &vs.procs[idx];

	if (!p->used)
		return;
	for (int i = 0; i < VS_MAX_MAPS; i++)
		if (vs.maps[i].used && vs.maps[i].proc == idx)
			vs.maps[i].used = false;
	/* Out of the manifest before the keeper forgets its fds (numbers get reused). */
	p->used = false;
	model_changed();
	if (p->uffd >= 0) {
		epoll_ctl(vs.fault_epfd, EPOLL_CTL_DEL, p->uffd, NULL);
		model_close(p->uffd);
	}
	if (p->pidfd >= 0)
		close(p->pidfd);
	/* Its connection is closed by the main loop when the peer's end goes. */
	p->uffd = p->pidfd = p->sock = -1;
}

size_t vs_pt_bytes(uint64_t npages)
{
	return (npages * sizeof(uint32_t) + VS_PAGE_SIZE - 1) & ~(size_t)(VS_PAGE_SIZE - 1);
}

/* The page table lives in pt_fd; new entries read as zero (RESIDENT). vs.lock held. */
static int pt_grow(struct vs_obj *o, uint64_t npages)
{
	size_t old_len = vs_pt_bytes(o->npages), len = vs_pt_bytes(npages);
	void *pt;

	if (o->pt && len <= old_len)
		return 0;
	if (ftruncate(o->pt_fd, (off_t)len) < 0)
		return -errno;
	pt = o->pt ? mremap(o->pt, old_len, len, MREMAP_MAYMOVE)
		   : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, o->pt_fd, 0);
	if (pt == MAP_FAILED)
		return -errno;
	o->pt = pt;
	return 0;
}

static int obj_grow(struct vs_obj *o, uint64_t npages)
{
	size_t old_len = o->npages * VS_PAGE_SIZE, len = npages * VS_PAGE_SIZE;
	void *stg;
	int r;

	if (npages <= o->npages)
		return 0;
	if (ftruncate(o->stg_fd, (off_t)len) < 0)
		return -errno;
	pthread_rwlock_wrlock(&vs.stg_lock);
	stg = o->stg ? mremap(o->stg, old_len, len, MREMAP_MAYMOVE)
		     : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, o->stg_fd, 0);
	if (stg != MAP_FAILED)
		o->stg = stg;
	pthread_rwlock_unlock(&vs.stg_lock);
	if (stg == MAP_FAILED)
		return -errno;
	if (o->copied && vs_copies_grow(o, npages))
		return -ENOMEM;
	r = pt_grow(o, npages);
	if (r)
		return r;
	o->npages = npages;
	return 0;
}

int vs_obj_find(dev_t dev, ino_t ino)
{
	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (vs.objs[i].used && vs.objs[i].dev == dev && vs.objs[i].ino == ino)
			return i;
	return -ENOENT;
}

/*
 * Find or create the object for @memfd, covering at least @end_bytes.
 * Always consumes @memfd (kept by a new object, closed otherwise).
 * Returns the object index or -errno.
 */
int vs_obj_get(int memfd, const char *name, uint64_t end_bytes)
{
	uint64_t npages = (end_bytes + VS_PAGE_SIZE - 1) / VS_PAGE_SIZE;
	struct vs_obj *o = NULL;
	struct stat st;
	char stg_name[VMSWAP_NAME_MAX + 16];
	int idx, r;

	if (fstat(memfd, &st) < 0) {
		r = -errno;
		close(memfd);
		return r;
	}
	idx = vs_obj_find(st.st_dev, st.st_ino);
	if (idx >= 0) {
		close(memfd);
		r = obj_grow(&vs.objs[idx], npages);
		model_changed();
		return r ? r : idx;
	}
	for (idx = 0; idx < VS_MAX_OBJS && vs.objs[idx].used; idx++)
		;
	if (idx == VS_MAX_OBJS) {
		close(memfd);
		return -EMFILE;
	}
	o = &vs.objs[idx];
	memset(o, 0, sizeof(*o));
	snprintf(stg_name, sizeof(stg_name), "vmswap-staging:%s", name);
	o->stg_fd = memfd_create(stg_name, MFD_CLOEXEC);
	snprintf(stg_name, sizeof(stg_name), "vmswap-pt:%s", name);
	o->pt_fd = memfd_create(stg_name, MFD_CLOEXEC);
	if (o->stg_fd < 0 || o->pt_fd < 0) {
		r = -errno;
		if (o->stg_fd >= 0)
			close(o->stg_fd);
		if (o->pt_fd >= 0)
			close(o->pt_fd);
		close(memfd);
		memset(o, 0, sizeof(*o));
		return r;
	}
	r = obj_grow(o, npages);
	if (r) {
		if (o->stg)
			munmap(o->stg, o->npages * VS_PAGE_SIZE);
		if (o->pt)
			munmap(o->pt, vs_pt_bytes(o->npages));
		close(o->stg_fd);
		close(o->pt_fd);
		close(memfd);
		memset(o, 0, sizeof(*o));
		return r;
	}
	o->used = true;
	o->fd = memfd;
	o->dev = st.st_dev;
	o->ino = st.st_ino;
	if (fstat(o->stg_fd, &st) == 0)
		o->stg_ino = st.st_ino;
	if (fstat(o->pt_fd, &st) == 0)
		o->pt_ino = st.st_ino;
	snprintf(o->name, sizeof(o->name), "%s", name);
	/* The keeper first, then the manifest that names them. */
	model_keep(o->fd);
	model_keep(o->stg_fd);
	model_keep(o->pt_fd);
	model_changed();
	return idx;
}

struct vs_map *vs_map_find(int proc, uint64_t addr)
{
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];

		if (m->used && m->proc == proc && addr >= m->addr && addr - m->addr < m->len)
			return m;
	}
	return NULL;
}

int vs_map_register(struct vs_map *m)
{
	int r;

	if (m->registered)
		return 0;
	r = vs_uffd_register(vs.procs[m->proc].uffd, m->addr, m->len,
			     vs.procs[m->proc].wp && !vs.wp_off);
	if (!r)
		m->registered = true;
	model_changed();
	return r;
}

int vs_map_unregister(struct vs_map *m)
{
	int r;

	if (!m->registered)
		return 0;
	r = vs_uffd_unregister(vs.procs[m->proc].uffd, m->addr, m->len);
	m->registered = false;
	model_changed();
	return r;
}

static struct vs_map *map_alloc(void)
{
	for (int i = 0; i < VS_MAX_MAPS; i++)
		if (!vs.maps[i].used)
			return &vs.maps[i];
	return NULL;
}

/*
 * Can [addr, addr+len) of @proc show object @obj (-1: a memfd not
 * tracked yet) from byte @off? 0: yes. 1: a mapping of the same pages at
 * the same addresses holds it already (a REMAP event moved it here, or
 * the same region came twice): nothing to add. -EEXIST: it overlaps
 * another mapping, which needs a REGION_DEL first. -EMFILE: the table is
 * full.
 */
int vs_map_check(int proc, int obj, uint64_t addr, uint64_t len, uint64_t off)
{
	bool room = false;

	for (int i = 0; i < VS_MAX_MAPS; i++) {
		const struct vs_map *m = &vs.maps[i];

		room |= !m->used;
		if (!m->used || m->proc != proc || addr + len <= m->addr || addr >= m->addr + m->len)
			continue;
		if (m->obj != obj || addr - m->addr != off - m->off || addr < m->addr ||
		    addr + len > m->addr + m->len)
			return -EEXIST;
		return 1;
	}
	return room ? 0 : -EMFILE;
}

/*
 * Add a mapping (vs_map_check() says when it can). While swap is
 * enabled it is registered at once, so a region that appears later
 * (hotplug) is covered before the VMM uses it.
 */
int vs_map_add(int proc, int obj, uint64_t addr, uint64_t len, uint64_t off)
{
	struct vs_map *m;
	int r = vs_map_check(proc, obj, addr, len, off);

	if (r)
		return r < 0 ? r : 0;
	m = map_alloc();
	*m = (struct vs_map){ .used = true, .proc = proc, .obj = obj,
			      .addr = addr, .len = len, .off = off };
	if (vs.registered && vs.procs[proc].uffd >= 0) {
		r = vs_map_register(m);
		if (!r)
			r = vs_hooks.registered ? vs_hooks.registered(m) : 0;
		if (r) {
			vs_map_unregister(m);
			m->used = false;
			model_changed();
			return r;
		}
	}
	model_changed();
	return 0;
}

/* [addr, addr+len) of @proc is no longer guest memory: trim, split or drop. */
void vs_map_remove_range(int proc, uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;

	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];
		uint64_t mend;

		if (!m->used || m->proc != proc)
			continue;
		mend = m->addr + m->len;
		if (end <= m->addr || addr >= mend)
			continue;
		if (m->registered) {
			uint64_t a = addr > m->addr ? addr : m->addr;
			uint64_t b = end < mend ? end : mend;

			/* Usually gone already; then the kernel has nothing to do. */
			vs_uffd_unregister(vs.procs[proc].uffd, a, b - a);
		}
		if (addr <= m->addr && end >= mend) {
			m->used = false;
		} else if (addr <= m->addr) {
			m->off += end - m->addr;
			m->len = mend - end;
			m->addr = end;
		} else if (end >= mend) {
			m->len = addr - m->addr;
		} else {
			struct vs_map *t = map_alloc();

			if (t) {
				*t = *m;
				t->off = m->off + (end - m->addr);
				t->addr = end;
				t->len = mend - end;
			} else {
				vs_err("mapping table full; dropping tail of %#lx", (unsigned long)m->addr);
			}
			m->len = addr - m->addr;
		}
	}
	model_changed();
}

/* mremap: [from, from+len) now lives at @to. */
void vs_map_move(int proc, uint64_t from, uint64_t to, uint64_t len)
{
	struct vs_map *m = vs_map_find(proc, from);

	if (!m)
		return;
	if (m->addr == from && m->len <= len) {
		m->addr = to;
		model_changed();
		return;
	}
	/* A partial move: forget it; the shim reports the new range. */
	vs_map_remove_range(proc, from, len);
}

/* A forked child inherits its parent's guest mappings at the same addresses. */
int vs_clone_maps(int from_proc, int to_proc)
{
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map m = vs.maps[i];
		int r;

		if (!m.used || m.proc != from_proc)
			continue;
		r = vs_map_add(to_proc, m.obj, m.addr, m.len, m.off);
		if (r == -EINVAL || r == -ENOMEM) {
			/* Not in the child (MADV_DONTFORK): nothing to cover. */
			vs_map_remove_range(to_proc, m.addr, m.len);
			continue;
		}
		if (r)
			return r;
	}
	return 0;
}

/*
 * Pages [first, first+count) of @o were discarded by the VMM (madvise
 * MADV_REMOVE, hole punch): they read as zero from now on.
 */
void vs_discard(struct vs_obj *o, uint64_t first, uint64_t count)
{
	bool staged = false;

	if (first >= o->npages)
		return;
	if (count > o->npages - first)
		count = o->npages - first;
	for (uint64_t pg = first; pg < first + count; pg++) {
		uint32_t e = o->pt[pg];

		if (vs_pt_state(e) == VS_P_STAGING)
			staged = true;
		if (vs_pt_has_slot(e))
			vs_slots_free(&vs.slots, vs_pt_slot(e));
		vs_page_set(o, pg, vs_pt_make(VS_P_RESIDENT, false, 0));
	}
	vs_copies_drop(o, first, first + count);
	if (staged)
		vs_stg_punch(o, first, count);
}

uint64_t vs_progress_start_all(void)
{
	uint64_t total = 0;

	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (vs.objs[i].used)
			total += vs.objs[i].npages;
	vs.progress_total = total;
	vs.progress_done = 0;
	return total;
}

struct vs_map *vs_map_for_page(int obj, uint64_t pg)
{
	uint64_t off = pg * VS_PAGE_SIZE;

	for (int i = 0; i < VS_MAX_MAPS; i++) {
		struct vs_map *m = &vs.maps[i];
		struct vs_proc *p = &vs.procs[m->proc];

		if (m->used && m->registered && m->obj == obj && off >= m->off &&
		    off - m->off < m->len && p->used && !p->dead && p->uffd >= 0)
			return m;
	}
	return NULL;
}

/*
 * Bytes [from, from+len) of page @pg were punched (a partial-page hole
 * punch zeroes them in place). Zero them in our copy too.
 */
int vs_discard_partial(struct vs_obj *o, uint64_t pg, uint32_t from, uint32_t len)
{
	uint32_t e;

	if (pg >= o->npages || from >= VS_PAGE_SIZE || len > VS_PAGE_SIZE - from)
		return -EINVAL;
	e = o->pt[pg];
	if (vs_pt_state(e) == VS_P_FILE) {
		/* Pull it back into staging, where bytes can be changed. */
		int r = vs_swapfile_read(vs.swap_fd, vs_pt_slot(e), o->stg + pg * VS_PAGE_SIZE, 1);

		if (r)
			return r;
		vs_slots_free(&vs.slots, vs_pt_slot(e));
		vs_page_set(o, pg, vs_pt_make(VS_P_STAGING, false, 0));
		e = o->pt[pg];
	}
	if (vs_pt_state(e) == VS_P_STAGING)
		memset(o->stg + pg * VS_PAGE_SIZE + from, 0, len);
	return 0;
}

/*
 * Release objects no mapping shows any more and whose every page is back
 * in the memfd: nothing of them lives only with us. A later mapping of
 * the same memfd starts a fresh object, all resident. Skipped while the
 * worker runs an operation, which holds object pointers across unlocked
 * stretches.
 */
void vs_obj_gc(void)
{
	if (vs.op_running)
		return;
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];
		bool keep = false;

		if (!o->used)
			continue;
		for (int k = 0; k < VS_MAX_MAPS && !keep; k++)
			keep = vs.maps[k].used && vs.maps[k].obj == i;
		for (uint64_t pg = 0; pg < o->npages && !keep; pg++)
			keep = vs_pt_state(o->pt[pg]) != VS_P_RESIDENT;
		if (keep)
			continue;
		for (uint64_t pg = 0; pg < o->npages; pg++)
			if (vs_pt_has_slot(o->pt[pg]))
				vs_slots_free(&vs.slots, vs_pt_slot(o->pt[pg]));
		vs_dbg("released guest memfd %s", o->name);
		o->used = false;
		model_changed();
		munmap(o->stg, o->npages * VS_PAGE_SIZE);
		munmap(o->pt, vs_pt_bytes(o->npages));
		model_close(o->stg_fd);
		model_close(o->pt_fd);
		model_close(o->fd);
		free(o->copied);
		free(o->dirty);
		memset(o, 0, sizeof(*o));
	}
}
