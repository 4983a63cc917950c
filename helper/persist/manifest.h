/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manifest: what a restarted helper needs besides the page tables,
 * in a memfd the keeper holds. Two copies; the generation, written last,
 * says which one is whole (gen & 1), so a crash while writing one leaves
 * the other. Written under vs.lock when objects, processes, mappings,
 * connections, registration or the swap file change, never per page.
 */
#ifndef VS_MANIFEST_H
#define VS_MANIFEST_H

#include <stdint.h>

#include "../model/helper.h"

#define VS_MF_MAGIC 0x766d73776d616e66ull /* "vmswmanf" */
#define VS_MF_VERSION 2

struct vs_mf_obj {
	uint32_t used;
	int32_t fd, stg_fd, pt_fd;
	uint64_t npages;
	uint64_t dev, ino, stg_ino, pt_ino;
	char name[VMSWAP_NAME_MAX];
};

struct vs_mf_proc {
	uint32_t used, is_vmm, wp;
	int32_t pid, uffd, sock;
};

struct vs_mf_map {
	uint32_t used, registered;
	int32_t proc, obj;
	uint64_t addr, len, off;
};

struct vs_mf_conn {
	int32_t fd, proc, is_vmm;
};

struct vs_mf_body {
	int32_t swap_fd, swap_direct, registered;
	int32_t dirfd, control_fd, listen_fd;
	uint32_t recovered;       /* restarts so far */
	uint32_t unmanaged;
	char reason[VMSWAP_REASON_MAX];
	struct vs_mf_obj objs[VS_MAX_OBJS];
	struct vs_mf_proc procs[VS_MAX_PROCS];
	struct vs_mf_map maps[VS_MAX_MAPS];
	struct vs_mf_conn conns[VS_MAX_CONNS];
};

struct vs_manifest {
	uint64_t magic;
	uint32_t version, size;
	uint64_t gen;             /* the whole copy is body[gen & 1] */
	struct vs_mf_body body[2];
};

/* Create the manifest memfd and give it to the keeper. 0 or -errno. */
int vs_manifest_create(void);
/* Map an inherited manifest; *out is the whole copy. 0 or -errno. */
int vs_manifest_open(int fd, const struct vs_mf_body **out);
int vs_manifest_fd(void);
/* The run dir's fds, recorded with every write. */
void vs_manifest_set_rundir(int dirfd, int control_fd, int listen_fd);
void vs_manifest_set_recovered(uint32_t n);
/*
 * Who fills the connection table at every write (control/shimconn.c):
 * each slot's fd (-1: free), process and kind. Unset: every slot free.
 */
typedef void vs_mf_conns_fill(struct vs_mf_conn *conns);
void vs_manifest_set_conns(vs_mf_conns_fill *fill);
uint32_t vs_manifest_recovered(void);
/* Write the model out. vs.lock held. No-op without a manifest. */
void vs_manifest_sync(void);

#endif
