/* SPDX-License-Identifier: BSD-3-Clause */
/* The manifest memfd; see manifest.h. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keeper.h"
#include "manifest.h"

static int mf_fd = -1;
static struct vs_manifest *mf;
static int rd_dirfd = -1, rd_control = -1, rd_listen = -1;
static uint32_t recovered;
static vs_mf_conns_fill *conns_fill;

static size_t mf_size(void)
{
	return (sizeof(struct vs_manifest) + VS_PAGE_SIZE - 1) & ~(size_t)(VS_PAGE_SIZE - 1);
}

int vs_manifest_create(void)
{
	int fd = memfd_create("vmswap-manifest", MFD_CLOEXEC);
	void *p;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)mf_size()) < 0 ||
	    (p = mmap(NULL, mf_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		int r = -errno;

		close(fd);
		return r;
	}
	mf = p;
	mf_fd = fd;
	vs_keep(fd);
	vs_hooks.changed = vs_manifest_sync;
	return 0;
}

int vs_manifest_open(int fd, const struct vs_mf_body **out)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size < mf_size())
		return -EINVAL;
	p = mmap(NULL, mf_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	mf = p;
	if (mf->magic != VS_MF_MAGIC || mf->version != VS_MF_VERSION ||
	    mf->size != sizeof(*mf) || !mf->gen) {
		munmap(p, mf_size());
		mf = NULL;
		return -EPROTO;
	}
	mf_fd = fd;
	vs_hooks.changed = vs_manifest_sync;
	*out = &mf->body[__atomic_load_n(&mf->gen, __ATOMIC_ACQUIRE) & 1];
	recovered = (*out)->recovered;
	return 0;
}

int vs_manifest_fd(void)
{
	return mf_fd;
}

void vs_manifest_set_rundir(int dirfd, int control_fd, int listen_fd)
{
	rd_dirfd = dirfd;
	rd_control = control_fd;
	rd_listen = listen_fd;
}

void vs_manifest_set_recovered(uint32_t n)
{
	recovered = n;
}

uint32_t vs_manifest_recovered(void)
{
	return recovered;
}

void vs_manifest_set_conns(vs_mf_conns_fill *fill)
{
	conns_fill = fill;
}

void vs_manifest_sync(void)
{
	uint64_t next;
	struct vs_mf_body *b;

	if (!mf)
		return;
	next = mf->gen + 1;
	b = &mf->body[next & 1];
	memset(b, 0, sizeof(*b));
	b->swap_fd = vs.swap.fd;
	b->swap_direct = vs.swap.direct;
	b->registered = vs.registered;
	b->dirfd = rd_dirfd;
	b->control_fd = rd_control;
	b->listen_fd = rd_listen;
	b->recovered = recovered;
	b->unmanaged = !vs.managed;
	memcpy(b->reason, vs.reason, sizeof(b->reason));
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		const struct vs_obj *o = &vs.objs[i];

		if (!o->used)
			continue;
		b->objs[i] = (struct vs_mf_obj){
			.used = 1, .fd = o->fd, .stg_fd = o->stg_fd, .pt_fd = o->pt_fd,
			.npages = o->npages, .dev = o->dev, .ino = o->ino,
			.stg_ino = o->stg_ino, .pt_ino = o->pt_ino,
		};
		memcpy(b->objs[i].name, o->name, sizeof(o->name));
	}
	for (int i = 0; i < VS_MAX_PROCS; i++) {
		const struct vs_proc *p = &vs.procs[i];

		if (p->used)
			b->procs[i] = (struct vs_mf_proc){
				.used = 1, .is_vmm = p->is_vmm, .wp = p->wp,
				.pid = p->pid, .uffd = p->uffd, .sock = p->sock,
			};
	}
	for (int i = 0; i < VS_MAX_MAPS; i++) {
		const struct vs_map *m = &vs.maps[i];

		if (m->used)
			b->maps[i] = (struct vs_mf_map){
				.used = 1, .registered = m->registered, .proc = m->proc,
				.obj = m->obj, .addr = m->addr, .len = m->len, .off = m->off,
			};
	}
	for (int i = 0; i < VS_MAX_CONNS; i++)
		b->conns[i] = (struct vs_mf_conn){ .fd = -1, .proc = -1 };
	if (conns_fill)
		conns_fill(b->conns);
	mf->magic = VS_MF_MAGIC;
	mf->version = VS_MF_VERSION;
	mf->size = sizeof(*mf);
	/* Last: the copy just written becomes the one to read. */
	__atomic_store_n(&mf->gen, next, __ATOMIC_RELEASE);
}
