/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The guest program run by every KVM vCPU, hand-assembled, and host-side
 * mirrors of the two things it computes: the pattern it writes and the
 * checksum it reads. 32-bit protected mode, flat segments, no paging, no
 * stack, no interrupts (IF=0).
 *
 * On entry ESI = the vCPU's mailbox (struct tvm_kvm_mbox). For each entry
 * i < count the guest takes page P = TVM_KVM_MEM_GPA + pno * 4K and
 *   SUM:   sum[i] = FNV-1a over P's 1024 32-bit words, in order;
 *   WRITE: then word w of P = key ^ w, with
 *          key = pno * 0x9E3779B1 ^ gen * 0x85EBCA77 ^ seed.
 * Then it reports count with `out 0x10, eax` (KVM_EXIT_IO) and, when run
 * again, starts over on the mailbox's next request: the host loads the
 * registers only once.
 *
 * Both functions touch every word, so every byte of every page is checked
 * or written. Any single changed word changes the checksum (each step is
 * a bijection of the running value); the key is injective in pno and in
 * gen, so a stale or misplaced page differs in every word.
 */
#include <stddef.h>

#include "kvm.h"

#define MUL_PNO  0x9E3779B1u
#define MUL_GEN  0x85EBCA77u
#define FNV_BASE 0x811C9DC5u
#define FNV_MUL  0x01000193u

/* The code below hard-codes these. */
_Static_assert(offsetof(struct tvm_kvm_mbox, count) == 0x0, "mbox count");
_Static_assert(offsetof(struct tvm_kvm_mbox, ops) == 0x4, "mbox ops");
_Static_assert(offsetof(struct tvm_kvm_mbox, seed) == 0x8, "mbox seed");
_Static_assert(offsetof(struct tvm_kvm_mbox, ent) == 0x10, "mbox ent");
_Static_assert(offsetof(struct tvm_kvm_mbox, sum) == 0x810, "mbox sum");
_Static_assert(sizeof(struct tvm_kvm_mbox) <= 0x1000, "mbox fits a page");
_Static_assert(TVM_KVM_MEM_GPA == 0x200000 && TVM_KVM_PORT == 0x10 &&
	       TVM_KVM_SUM == 1 && TVM_KVM_WRITE == 2 && TVM_PAGE_SIZE == 4096,
	       "constants in the code");

/* Offsets on the left; branch targets in the comments are offsets too. */
const uint8_t tvm_kvm_code[] = {
	/* start: */
	/* 00 */ 0x31, 0xC9,                         /* xor  ecx, ecx           i = 0 */
	/* next: */
	/* 02 */ 0x3B, 0x0E,                         /* cmp  ecx, [esi]         i == count? */
	/* 04 */ 0x74, 0x67,                         /* je   done (6D) */
	/* 06 */ 0x8B, 0x54, 0xCE, 0x10,             /* mov  edx, [esi+ecx*8+0x10]  pno */
	/* 0A */ 0xC1, 0xE2, 0x0C,                   /* shl  edx, 12 */
	/* 0D */ 0x81, 0xC2, 0x00, 0x00, 0x20, 0x00, /* add  edx, 0x200000      page GPA */
	/* 13 */ 0xF6, 0x46, 0x04, 0x01,             /* test byte [esi+4], SUM */
	/* 17 */ 0x74, 0x20,                         /* jz   write (39) */
	/* 19 */ 0xB8, 0xC5, 0x9D, 0x1C, 0x81,       /* mov  eax, FNV_BASE */
	/* 1E */ 0x31, 0xDB,                         /* xor  ebx, ebx           w = 0 */
	/* sum_loop: */
	/* 20 */ 0x33, 0x04, 0x9A,                   /* xor  eax, [edx+ebx*4] */
	/* 23 */ 0x69, 0xC0, 0x93, 0x01, 0x00, 0x01, /* imul eax, eax, FNV_MUL */
	/* 29 */ 0x43,                               /* inc  ebx */
	/* 2A */ 0x81, 0xFB, 0x00, 0x04, 0x00, 0x00, /* cmp  ebx, 1024 */
	/* 30 */ 0x75, 0xEE,                         /* jne  sum_loop (20) */
	/* 32 */ 0x89, 0x84, 0x8E, 0x10, 0x08, 0x00, 0x00,
						     /* mov  [esi+ecx*4+0x810], eax  sum[i] */
	/* write: */
	/* 39 */ 0xF6, 0x46, 0x04, 0x02,             /* test byte [esi+4], WRITE */
	/* 3D */ 0x74, 0x2B,                         /* jz   advance (6A) */
	/* 3F */ 0x8B, 0x44, 0xCE, 0x10,             /* mov  eax, [esi+ecx*8+0x10]  pno */
	/* 43 */ 0x69, 0xC0, 0xB1, 0x79, 0x37, 0x9E, /* imul eax, eax, MUL_PNO */
	/* 49 */ 0x8B, 0x5C, 0xCE, 0x14,             /* mov  ebx, [esi+ecx*8+0x14]  gen */
	/* 4D */ 0x69, 0xDB, 0x77, 0xCA, 0xEB, 0x85, /* imul ebx, ebx, MUL_GEN */
	/* 53 */ 0x31, 0xD8,                         /* xor  eax, ebx */
	/* 55 */ 0x33, 0x46, 0x08,                   /* xor  eax, [esi+8]       ^ seed: key */
	/* 58 */ 0x31, 0xDB,                         /* xor  ebx, ebx           w = 0 */
	/* write_loop: */
	/* 5A */ 0x89, 0xC7,                         /* mov  edi, eax */
	/* 5C */ 0x31, 0xDF,                         /* xor  edi, ebx           key ^ w */
	/* 5E */ 0x89, 0x3C, 0x9A,                   /* mov  [edx+ebx*4], edi */
	/* 61 */ 0x43,                               /* inc  ebx */
	/* 62 */ 0x81, 0xFB, 0x00, 0x04, 0x00, 0x00, /* cmp  ebx, 1024 */
	/* 68 */ 0x75, 0xF0,                         /* jne  write_loop (5A) */
	/* advance: */
	/* 6A */ 0x41,                               /* inc  ecx */
	/* 6B */ 0xEB, 0x95,                         /* jmp  next (02) */
	/* done: */
	/* 6D */ 0x89, 0xC8,                         /* mov  eax, ecx           entries done */
	/* 6F */ 0xE7, 0x10,                         /* out  0x10, eax          -> KVM_EXIT_IO */
	/* 71 */ 0xEB, 0x8D,                         /* jmp  start (00): next request */
};
const size_t tvm_kvm_code_len = sizeof(tvm_kvm_code);

/* The guest has 32 bits of seed; fold the rest in rather than drop it. */
uint32_t tvm_kvm_seed32(uint64_t seed)
{
	return (uint32_t)(seed ^ seed >> 32);
}

uint32_t tvm_kvm_key(uint64_t seed, uint64_t pno, uint32_t gen)
{
	return (uint32_t)pno * MUL_PNO ^ gen * MUL_GEN ^ tvm_kvm_seed32(seed);
}

uint32_t tvm_kvm_csum(const void *page)
{
	const uint32_t *p = page;
	uint32_t c = FNV_BASE;

	for (unsigned w = 0; w < TVM_PAGE_SIZE / 4; w++)
		c = (c ^ p[w]) * FNV_MUL;
	return c;
}
