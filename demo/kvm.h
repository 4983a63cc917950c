/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * toyvmm --kvm: vCPUs that run real guest code under KVM, so guest memory
 * is also touched from kernel mode (KVM's own faults on the host mapping),
 * a different userfaultfd path from a user-space memcpy.
 *
 * Guest-physical layout (32-bit protected mode, flat, no paging):
 *   [0, 4K)                  code (kvm_guest.c)            } slot 0: private
 *   [4K + 4K*i, +4K)         mailbox of vCPU i              } anonymous memory
 *   [2M + 4K*p, +4K)         guest page p, all regions in order, one memslot
 *                            per region, ending below 3 GiB
 */
#ifndef TOYVMM_KVM_H
#define TOYVMM_KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "toyvmm.h"

#define TVM_KVM_CODE_GPA  0x0u
#define TVM_KVM_MBOX_GPA  0x1000u      /* vCPU i's mailbox: + i * 4K */
/* 2 MiB: guest pages line up with host huge pages. */
#define TVM_KVM_MEM_GPA   0x200000u
/* 32-bit flat addressing reaches 4 GiB; stay well clear of the pages KVM
 * keeps just under 4 GiB (TSS, identity map) and of any MMIO hole. */
#define TVM_KVM_GPA_LIMIT (3ull << 30)
#define TVM_KVM_MAX_MEM   (TVM_KVM_GPA_LIMIT - TVM_KVM_MEM_GPA)
#define TVM_KVM_TSS_GPA   0xfffbd000u
#define TVM_KVM_PORT      0x10u        /* the guest's "request done" out */

#define TVM_KVM_BATCH 256u             /* pages per KVM_RUN at most */

/* Mailbox ops bits. */
#define TVM_KVM_SUM   1u  /* checksum each page into sum[] */
#define TVM_KVM_WRITE 2u  /* then write it with the pattern of ent[].gen */

/*
 * One request, in the vCPU's mailbox page; the guest reads it at ESI.
 * The guest code hard-codes these offsets (kvm_guest.c checks them).
 */
struct tvm_kvm_mbox {
	uint32_t count;  /* entries */
	uint32_t ops;
	uint32_t seed;   /* tvm_kvm_seed32() */
	uint32_t pad;
	struct {
		uint32_t pno;
		uint32_t gen; /* gen to write (TVM_KVM_WRITE) */
	} ent[TVM_KVM_BATCH];
	uint32_t sum[TVM_KVM_BATCH];
};

struct tvm_kvm {
	int sys_fd;          /* /dev/kvm */
	int vm_fd;
	size_t run_size;     /* KVM_GET_VCPU_MMAP_SIZE */
	uint8_t *slot0;      /* code + mailboxes */
	size_t slot0_len;
	unsigned nvcpus;     /* mailboxes in slot0 */
	unsigned nslots;     /* memslots in use, slot 0 included */
	unsigned max_slots;
	bool unavailable;    /* the failure means "no KVM here" (exit 77) */
};

struct tvm_kvm_vcpu {
	int fd;
	struct kvm_run *run;
	size_t run_size;
	struct tvm_kvm_mbox *mbox;
	uint32_t mbox_gpa;
	bool fresh;          /* registers must be (re)loaded before KVM_RUN */
};

/* kvm.c */
int tvm_kvm_open(struct tvm_kvm *k, unsigned nvcpus, const char **stage);
int tvm_kvm_map_region(void *k, const struct tvm_region *r);
void tvm_kvm_close(struct tvm_kvm *k);
int tvm_kvm_vcpu_create(struct tvm_kvm *k, unsigned id, struct tvm_kvm_vcpu *v);
int tvm_kvm_vcpu_exec(struct tvm_kvm_vcpu *v);
void tvm_kvm_vcpu_destroy(struct tvm_kvm_vcpu *v);

/* kvm_jobs.c: pages gathered into mailbox requests, results checked. */
struct tvm_kvm_batch {
	struct tvm_kvm_vcpu *vcpu;
	struct tvm_guest *g;
	uint32_t ops;
	uint32_t limit;                /* flush at this many entries */
	uint32_t want[TVM_KVM_BATCH];  /* expected checksums */
	uint32_t want_gen[TVM_KVM_BATCH]; /* the gens they were computed from */
};

void tvm_kvm_batch_begin(struct tvm_kvm_batch *b, struct tvm_kvm_vcpu *v,
			 struct tvm_guest *g, uint32_t ops, uint32_t limit);
void tvm_kvm_batch_add(struct tvm_kvm_batch *b, uint64_t pno,
		       struct tvm_result *res);
void tvm_kvm_batch_flush(struct tvm_kvm_batch *b, struct tvm_result *res);

#endif
