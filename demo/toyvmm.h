/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * toyvmm: a toy "VMM" whose guest memory is memfd-backed and whose vCPU
 * threads write and verify a deterministic pattern, so that vmswap can be
 * shown (and tested) to move the memory away and bring it back intact.
 *
 * Guest pages are 4 KiB and numbered globally across regions: region 0's
 * pages first, then region 1's, hotplugged regions appended. The model
 * gen[page] says what each page must hold: 0 = all zeros, g > 0 = the
 * pattern of (seed, page, g). Bit TVM_GEN_KVM of g says which pattern:
 * the host's (64-bit splitmix words) or the one the KVM guest writes
 * (32-bit words, see kvm_guest.c); the other 31 bits count writes. vCPU
 * thread i owns the pages p with p % nthreads == i, so model updates
 * never race.
 */
#ifndef TOYVMM_H
#define TOYVMM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#define TVM_PAGE_SIZE 4096u
#define TVM_PAGE_WORDS (TVM_PAGE_SIZE / sizeof(uint64_t))
#define TVM_REGION_ALIGN (2ull << 20) /* region sizes: whole 2 MiB (THP) units */
#define TVM_GEN_KVM 0x80000000u /* gen flag: the page holds the KVM guest's pattern */

/* pattern.c: page content as a pure function of (seed, page, gen). */
uint64_t tvm_splitmix64(uint64_t x);
uint64_t tvm_xorshift64(uint64_t *state);
uint64_t tvm_pattern_word(uint64_t seed, uint64_t pno, uint32_t gen, unsigned w);
void tvm_pattern_fill(void *page, uint64_t seed, uint64_t pno, uint32_t gen);
int tvm_pattern_check(const void *page, uint64_t seed, uint64_t pno,
		      uint32_t gen, unsigned *bad_word);

/* kvm_guest.c: the guest program, and host mirrors of what it computes. */
size_t tvm_kvm_code_build(uint8_t *buf, size_t cap);
uint32_t tvm_kvm_seed32(uint64_t seed);
uint32_t tvm_kvm_key(uint64_t seed, uint64_t pno, uint32_t gen);
uint32_t tvm_kvm_word(uint32_t key, unsigned w);
uint32_t tvm_kvm_csum(const void *page);

/* guestmem.c: regions, the model, and per-page operations. */
struct tvm_region {
	uint8_t *base;        /* host address of the mapping */
	uint64_t len;         /* bytes */
	int fd;               /* memfd (shared by all regions unless separate) */
	uint64_t off;         /* offset of the mapping in fd */
	uint64_t first_page;  /* global number of the region's first page */
};

/* Called for each new region once it is mapped, before it counts as guest
 * memory; an error unmaps it again (KVM mode adds a memslot here). */
struct tvm_map_hook {
	int (*fn)(void *arg, const struct tvm_region *r);
	void *arg;
};

/* How guest memory is made: memfd(s), or anonymous as Firecracker or QEMU do. */
enum tvm_layout { TVM_MEMFD, TVM_MEMFD_SEPARATE, TVM_ANON, TVM_ANON_QEMU };

struct tvm_guest {
	enum tvm_layout layout;
	struct tvm_region *regions;
	unsigned nregions;
	uint64_t npages;
	uint32_t *gen;        /* calloc'd: must never live in guest memory */
	uint64_t seed;
	const char *name;
	atomic_int report_budget; /* mismatches still worth a stderr line */
	struct tvm_map_hook hook;
};

int tvm_guest_init(struct tvm_guest *g, uint64_t size, unsigned nregions,
		   enum tvm_layout layout, const char *name, uint64_t seed,
		   const struct tvm_map_hook *hook);
int tvm_guest_hotplug(struct tvm_guest *g, uint64_t size, unsigned *index);
void tvm_guest_destroy(struct tvm_guest *g);
uint8_t *tvm_guest_page(const struct tvm_guest *g, uint64_t pno);
int tvm_guest_balloon(struct tvm_guest *g, uint64_t start, uint64_t count);
uint32_t tvm_next_gen(uint32_t gen);
bool tvm_page_report(struct tvm_guest *g);
void tvm_page_write(struct tvm_guest *g, uint64_t pno);
void tvm_page_zero(struct tvm_guest *g, uint64_t pno);
int tvm_page_verify(struct tvm_guest *g, uint64_t pno);

/* vcpu.c: persistent vCPU threads running page jobs in parallel. */
enum tvm_op {
	TVM_OP_NONE,
	TVM_OP_WRITE,     /* pages in range get gen+1 */
	TVM_OP_ZERO_HALF, /* even pages memset 0 (gen 0), odd pages gen+1 */
	TVM_OP_VERIFY,    /* pages in range compared to the model */
	TVM_OP_CHURN,     /* random own page: verify, then write, until stopped */
	TVM_OP_KVM_WRITE, /* the same three, done by guest code under KVM */
	TVM_OP_KVM_VERIFY,
	TVM_OP_KVM_CHURN,
	TVM_OP_EXIT,
};

struct tvm_result {
	uint64_t pages;      /* pages processed (writes for churn) */
	uint64_t mismatches;
	uint64_t first_bad;  /* lowest mismatching page, valid if mismatches */
	int err;             /* first KVM failure (-errno), 0 if none */
};

struct tvm_vcpu;
struct tvm_kvm;

struct tvm_vcpus {
	struct tvm_guest *guest;
	struct tvm_kvm *kvm;  /* NULL without --kvm */
	unsigned n;
	struct tvm_vcpu *v;
	pthread_mutex_t lock;
	pthread_cond_t kick;  /* main -> vCPUs: a new job */
	pthread_cond_t done;  /* vCPUs -> main: one finished */
	uint64_t job_seq;
	unsigned running;     /* vCPUs still working on job_seq */
	enum tvm_op op;
	uint64_t start, count;
	atomic_bool stop;     /* ends a churn */
	bool churning;
};

void tvm_note_mismatch(struct tvm_result *res, uint64_t pno);
int tvm_vcpus_start(struct tvm_vcpus *vs, struct tvm_guest *g, unsigned n,
		    struct tvm_kvm *kvm);
int tvm_vcpus_run(struct tvm_vcpus *vs, enum tvm_op op, uint64_t start,
		  uint64_t count, struct tvm_result *res);
int tvm_vcpus_churn_start(struct tvm_vcpus *vs, enum tvm_op op);
int tvm_vcpus_churn_stop(struct tvm_vcpus *vs, enum tvm_op op,
			 struct tvm_result *res);
void tvm_vcpus_stop(struct tvm_vcpus *vs);

/* forkops.c: work done by a fork()ed child on the inherited mappings. */
int tvm_fork_verify(struct tvm_guest *g, int *status);
/* Fork @n children that only wait (as a VMM's helper processes would),
 * until tvm_fork_release(), which counts those that did not exit 0. */
#define TVM_HOLD_MAX 1024
int tvm_fork_hold(unsigned n);
int tvm_fork_release(unsigned *failed);
/* A child that never joins the helper, holding guest memory for @ms; reaped by tvm_fork_release(). */
int tvm_fork_unjoined(unsigned ms);
int tvm_fork_write(struct tvm_guest *g, uint64_t start, uint64_t count,
		   int *status);

/* ptouch.c: N threads at once, each reading its own contiguous share. */
#define TVM_PT_MAX_THREADS 16u
enum tvm_pt_mode { TVM_PT_SEQ, TVM_PT_REV, TVM_PT_RAND };

struct tvm_pt_result {
	uint64_t pages;       /* pages read and checked */
	uint64_t mismatches;
	uint64_t first_bad;   /* lowest mismatching page, valid if mismatches */
	double ms;            /* from the common start to the last thread's end */
	double p50_us, p99_us; /* rand: time of each first access */
	double cpu_ms;        /* the machine's busy CPU time during the timed pass */
};

/* rand: @count pages per thread (0: its share / 8), chosen from @seed. */
int tvm_ptouch(struct tvm_guest *g, unsigned n, enum tvm_pt_mode mode, uint64_t count,
	       uint64_t seed, struct tvm_pt_result *res);

/* procstat.c */
int tvm_read_rss(uint64_t *rss_kb, uint64_t *shmem_kb, uint64_t *anon_kb);
double tvm_cpu_busy_ms(void);

/* sandbox.c: QEMU's -sandbox spawn=deny, for this process. 0 or -errno. */
int tvm_sandbox_spawn_deny(void);

/* cmd.c: one command line in, exactly one answer line out. */
/* views.c: second views of guest memory mapped, moved and unmapped. */
struct tvm_views {
	struct tvm_guest *g;
	pthread_t tid;
	bool running;
	atomic_bool stop;
	uint64_t rounds;
	struct tvm_result res; /* pages checked, mismatches, err: a failed map/mremap/munmap */
};

int tvm_views_start(struct tvm_views *v, struct tvm_guest *g);
int tvm_views_stop(struct tvm_views *v);
/* Map and unmap one view of region 0: shared|private|exec. 0 or -errno. */
int tvm_view_try(struct tvm_guest *g, const char *how);

struct tvm_ctx {
	struct tvm_guest guest;
	struct tvm_vcpus vcpus;
	struct tvm_views views;
	struct tvm_kvm *kvm;  /* NULL without --kvm */
	bool quit;
};

void tvm_cmd_exec(struct tvm_ctx *ctx, char *line);

#endif
