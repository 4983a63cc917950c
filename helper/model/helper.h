/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The helper's shared state. One vmswap-helper serves one VMM.
 *
 * Guest memory is tracked per guest memfd ("object"), because a page's
 * identity is (memfd, offset): several mappings in several processes can
 * show the same page. Each object has a page table of 32-bit entries and a
 * staging memfd laid out at the same offsets. A mapping ties a process
 * address range to an object offset; faults are translated through it.
 *
 * Locking: vs.lock guards page tables, objects, procs, maps, counters and
 * the swap-file slot allocator. The fault thread reads a uffd and applies
 * its non-cooperative events (REMOVE, UNMAP, REMAP) in one critical
 * section, so no page can be installed between the kernel releasing a
 * madvise() and the helper learning that the range was discarded.
 */
#ifndef VS_HELPER_H
#define VS_HELPER_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <vmswap/proto.h>

#include "../sys/slots.h"

#define VS_PAGE_SIZE 4096u
#define VS_PAGE_SHIFT 12
#define VS_MAX_PROCS 256
#define VS_MAX_OBJS 64
#define VS_MAX_MAPS 1024
#define VS_MAX_CONNS 320 /* shim connections: every process, and some before HELLO */
#define VS_ERR_MAX 256
#define VS_PUNCHING_MAX 8 /* units punched at once without vs.lock */

/* Page-table entry: bits 0-1 state, bit 2 "has a swap-file slot", 3-31 slot. */
enum vs_pstate {
	VS_P_RESIDENT = 0, /* in the guest memfd, or a hole (reads as zero) */
	VS_P_STAGING = 1,  /* only copy is in the staging memfd, same offset */
	VS_P_FILE = 2,     /* only copy is in the swap file at the slot */
	VS_P_INPLACE = 3,  /* staged in place: the guest memfd holds the only copy,
			    * write-protected in every registered mapping; a write
			    * makes it RESIDENT again (fault/wp.c) */
};
#define VS_PT_STATE_MASK 3u
#define VS_PT_HAS_SLOT 4u
#define VS_PT_SLOT_SHIFT 3

static inline enum vs_pstate vs_pt_state(uint32_t e)
{
	return (enum vs_pstate)(e & VS_PT_STATE_MASK);
}
static inline bool vs_pt_has_slot(uint32_t e)
{
	return e & VS_PT_HAS_SLOT;
}
static inline uint32_t vs_pt_slot(uint32_t e)
{
	return e >> VS_PT_SLOT_SHIFT;
}
static inline uint32_t vs_pt_make(enum vs_pstate st, bool has_slot, uint32_t slot)
{
	return (uint32_t)st | (has_slot ? VS_PT_HAS_SLOT : 0) |
	       (has_slot ? slot << VS_PT_SLOT_SHIFT : 0);
}

enum vs_state {
	VS_READY,
	VS_PENDING,
	VS_TRIM_IN_PROGRESS,
	VS_SWAP_OUT_IN_PROGRESS,
	VS_ACTIVE,
	VS_SWAP_IN_IN_PROGRESS,
	VS_FAILED,
};
const char *vs_state_name(enum vs_state st);

struct vs_obj {
	bool used;
	int fd;               /* the guest memfd (our reference) */
	dev_t dev;
	ino_t ino;
	char name[VMSWAP_NAME_MAX];
	uint64_t npages;      /* pages covered by mappings so far */
	uint32_t *pt;         /* npages entries, a shared mapping of pt_fd: a restarted
			       * helper finds them there (an aligned 32-bit store is whole) */
	int pt_fd;
	int stg_fd;           /* staging memfd, same offsets as the guest memfd */
	ino_t stg_ino, pt_ino;
	uint8_t *stg;         /* helper mapping of stg_fd, npages pages; moves on growth,
			       * so users without vs.lock hold vs.stg_lock for reading */
	uint64_t *copied, *dirty; /* while enable tracks writes (wp.h), wp_pages bits */
	uint64_t wp_pages;
	/* Pages staged in place whose slot holds their bytes (ops/inplace.h), fresh_pages bits */
	uint64_t *fresh;
	uint64_t fresh_pages;
};

struct vs_proc {
	bool used;
	bool dead;
	bool is_vmm;
	pid_t pid;
	int uffd;             /* -1: none */
	bool wp;              /* the uffd can write-protect shmem */
	int pidfd;
	int sock;             /* shim connection, -1 once closed */
	uint32_t gen;         /* bumps on reuse of the slot, checked by the fault thread */
};

struct vs_map {
	bool used;
	bool registered;
	int proc;
	int obj;
	uint64_t addr, len, off; /* bytes */
};

struct vs_counters {
	uint64_t copied_from_file;
	uint64_t copied_from_staging;
	uint64_t zeroed;
	uint64_t redundant;     /* trimmed because the swap file held the same bytes */
	uint64_t trimmed_zero;
	uint64_t staging;       /* pages in state STAGING */
	uint64_t inplace;       /* pages in state INPLACE */
	uint64_t unstaged;      /* INPLACE pages made RESIDENT by a write */
	uint64_t written;       /* pages written to the swap file */
	uint64_t swapped;       /* pages in state FILE */
	uint64_t faults;
	uint64_t lat_hist[32];  /* fault service time, log2 microsecond buckets */
	uint64_t lat_max_us;
};

enum vs_op { VS_OP_NONE, VS_OP_ENABLE, VS_OP_TRIM, VS_OP_OUT, VS_OP_DISABLE };

/* The swap file and its slots. */
struct vs_swap {
	int fd;                   /* -1 until the first out */
	bool direct;              /* fd is O_DIRECT */
	bool release;             /* fd holds no page: the worker truncates it when idle */
	char dir[256];            /* set at start */
	struct vs_slots slots;
};

/* What status shows of the work done. */
struct vs_stats {
	struct vs_counters c;
	/* Bumps whenever a page is put into guest memory; enable's copy threads read it. */
	_Atomic uint64_t install_gen;
	uint64_t trans_pages, trans_ms;     /* last transition */
	struct {                  /* the last enable */
		bool tracked;         /* copied before the freeze, writes tracked */
		bool in_place;        /* staged in place (ops/inplace.h) */
		uint64_t frozen_ms;
		uint64_t recopied;    /* pages copied again while frozen */
		uint64_t kept_units;  /* 2 MiB units left resident: written after the thaw */
	} en;
	_Atomic uint64_t progress_done, progress_total;
};

/*
 * The helper's one state. Each group says which lock guards it; "lock"
 * is vs.lock. The order of the locks: helper/README.md.
 */
struct vs_helper {
	pthread_mutex_t lock;

	/* The model. Guarded by lock. */
	pid_t vmm_pid;
	bool managed;
	char reason[VMSWAP_REASON_MAX];
	struct vs_proc procs[VS_MAX_PROCS];
	struct vs_obj objs[VS_MAX_OBJS];
	struct vs_map maps[VS_MAX_MAPS];
	bool registered;          /* mappings are registered on the uffds */

	/* The state machine. Guarded by lock; vs.state is written by state/state.c only. */
	enum vs_state state;
	bool enable_moving;       /* the running enable has started moving pages */
	bool enable_in_place;     /* the running enable is staging in place (status: phase) */
	bool op_running;          /* the worker is inside an operation: objects stay put */
	bool swapin_low;          /* the running disable yields to faults */
	bool wake_swapin;         /* VMSWAP_WAKE_SWAPIN=1: a wake starts a disable (set at start) */
	atomic_bool wake_due;     /* atomic: the fault thread saw a fault from the file while Active */

	/* enable's write-protect tracking (fault/wp.h). Guarded by lock. */
	int wp_phase;             /* enum vs_wp_phase */
	uint64_t wp_dirtied;      /* dirty bits set while tracking */
	bool wp_off;              /* VMSWAP_PRECOPY=0: copy while frozen */
	bool stage_copy;          /* VMSWAP_STAGING=copy: enable copies to a staging memfd */

	/*
	 * 2 MiB units of guest memory that out punches without the lock
	 * (ops/inplace.c): no page goes in there meanwhile, and a fault in
	 * one waits for the punch. Guarded by lock.
	 */
	struct vs_unit_ref { int obj; uint64_t unit; } punching[VS_PUNCHING_MAX];
	int npunching;

	/* Held for writing while a staging mapping moves (a hotplug grows it). */
	pthread_rwlock_t stg_lock;

	/* Guarded by err_lock (model/error.c), not lock: set with and without it. */
	char last_error[VS_ERR_MAX];
	_Atomic uint64_t err_seq;  /* bumps when last_error changes: republish */

	/*
	 * The swap side. Guarded by lock; swap.fd is set between operations
	 * only, and read without the lock by the fault path's reads.
	 */
	struct vs_swap swap;

	/* Statistics. Guarded by lock, but for the atomics, read without it. */
	struct vs_stats stats;

	/* The fault thread's fds: set before it starts, then read-only. */
	int fault_epfd;           /* its epoll set */
	int fault_wake_fd;        /* eventfd: stop it */
	atomic_bool stopping;
};

extern struct vs_helper vs;

/*
 * What the layers above hear of model changes, each setting its own:
 * persist/ rewrites the manifest and hands fds to the keeper, fault/wp.c
 * protects a mapping registered while an enable tracks writes. Called
 * with vs.lock held; NULL: nobody listens.
 */
struct vs_model_hooks {
	void (*changed)(void);                   /* procs, objects or mappings changed */
	void (*keep)(int fd);                    /* a new fd to hold across a crash */
	void (*forget)(int fd);                  /* no longer: about to be closed */
	int (*registered)(struct vs_map *m);     /* a mapping registered: 0 or -errno */
};
extern struct vs_model_hooks vs_hooks;

/* A fresh state serving @vmm_pid: no process, object or mapping; Ready. */
void vs_helper_init(pid_t vmm_pid);
/* The guest-memory model (proc.c, obj.c, map.c). All need vs.lock held. */
int vs_proc_add(pid_t pid, int uffd, int sock, bool is_vmm);
void vs_proc_drop(int idx);
int vs_proc_by_pid(pid_t pid);
int vs_obj_get(int memfd, const char *name, uint64_t end_bytes);
/* The object of the memfd with this identity, or -ENOENT. */
int vs_obj_find(dev_t dev, ino_t ino);
int vs_map_check(int proc, int obj, uint64_t addr, uint64_t len, uint64_t off, bool *held);
int vs_map_add(int proc, int obj, uint64_t addr, uint64_t len, uint64_t off);
void vs_map_remove_range(int proc, uint64_t addr, uint64_t len);
void vs_map_move(int proc, uint64_t from, uint64_t to, uint64_t len);
struct vs_map *vs_map_find(int proc, uint64_t addr);
int vs_map_register(struct vs_map *m);
int vs_map_unregister(struct vs_map *m);
int vs_clone_maps(int from_proc, int to_proc);
/* A registered mapping of a live process showing page @pg of @obj, or NULL. */
struct vs_map *vs_map_for_page(int obj, uint64_t pg);
void vs_discard(struct vs_obj *o, uint64_t first, uint64_t count);
int vs_discard_partial(struct vs_obj *o, uint64_t pg, uint32_t from, uint32_t len);
void vs_obj_gc(void);
/* Bytes of the page-table mapping for @npages entries. */
size_t vs_pt_bytes(uint64_t npages);
/* Free staging pages [pg, pg+n) of @o (no-op for n == 0). */
static inline void vs_stg_punch(struct vs_obj *o, uint64_t pg, uint64_t n)
{
	if (n)
		fallocate(o->stg_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(pg * VS_PAGE_SIZE), (off_t)(n * VS_PAGE_SIZE));
}
/* Progress of an operation over every page of every object: starts at 0, returns the total. */
uint64_t vs_progress_start_all(void);
/* last_error: set (and logged), read, cleared; with or without vs.lock. */
void vs_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, not logged: the caller said it its own way. */
void vs_note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vs_get_error(char *buf, size_t n);
void vs_clear_error(void);
/* The same, returning @buf. */
const char *vs_last_error(char *buf, size_t n);

/* Is page @pg of object @obj in a unit being punched? vs.lock held. */
static inline bool vs_punching(int obj, uint64_t pg)
{
	for (int i = 0; i < vs.npunching; i++)
		if (vs.punching[i].obj == obj && vs.punching[i].unit == pg / 512) /* 2 MiB */
			return true;
	return false;
}

/* Page state changes that keep the counters right. vs.lock held. */
void vs_page_set(struct vs_obj *o, uint64_t pg, uint32_t e);
/* Pages staged, in a staging memfd or in place: what status calls staging_pages. */
static inline uint64_t vs_staged_pages(void)
{
	return vs.stats.c.staging + vs.stats.c.inplace;
}

#endif
