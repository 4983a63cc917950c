/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The guest program run by every KVM vCPU, assembled at startup by a few
 * lines of emitter, and host-side mirrors of the two things it computes:
 * the pattern it writes and the checksum it reads. 32-bit protected mode,
 * flat segments, no paging, no stack, no interrupts (IF=0).
 *
 * On entry ESI = the vCPU's mailbox (struct tvm_kvm_mbox). For each entry
 * i < count the guest takes page P = TVM_KVM_MEM_GPA + pno * 4K and
 *   SUM:   sum[i] = FNV-1a over P's 1024 32-bit words, in order;
 *   WRITE: then word w of P = key + w * STEP, with
 *          key = pno * MUL_PNO ^ gen * MUL_GEN ^ seed.
 * Then it reports count with `out 0x10, eax` (KVM_EXIT_IO) and, when run
 * again, starts over on the mailbox's next request: the host loads the
 * registers only once.
 *
 * Both touch every word, so every byte of every page is checked or
 * written. Any single changed word changes the checksum (each step is a
 * bijection of the running value); the key is injective in pno and in
 * gen, so a stale or misplaced page differs in every word.
 *
 * The word loops are unrolled 32 times: where KVM has to emulate the
 * guest (no VMX/SVM, e.g. under PVM) each instruction costs about a
 * microsecond, and this halves the instructions per word to two.
 */
#include <stddef.h>
#include <string.h>

#include "kvm.h"

#define MUL_PNO  0x9E3779B1u
#define MUL_GEN  0x85EBCA77u
#define STEP     0x2545F491u /* odd: the words of a page are all distinct */
#define FNV_BASE 0x811C9DC5u
#define FNV_MUL  0x01000193u
#define UNROLL   32u         /* words per loop pass; 4 * 32 - 4 fits a disp8 */

#define CODE_MAX 1024u

_Static_assert(offsetof(struct tvm_kvm_mbox, count) == 0x0, "mbox count");
_Static_assert(offsetof(struct tvm_kvm_mbox, ops) == 0x4, "mbox ops");
_Static_assert(offsetof(struct tvm_kvm_mbox, seed) == 0x8, "mbox seed");
_Static_assert(offsetof(struct tvm_kvm_mbox, ent) == 0x10, "mbox ent");
_Static_assert(offsetof(struct tvm_kvm_mbox, sum) == 0x810, "mbox sum");
_Static_assert(sizeof(struct tvm_kvm_mbox) <= 0x1000, "mbox fits a page");
_Static_assert(TVM_PAGE_SIZE % (4 * UNROLL) == 0 && 4 * UNROLL <= 128,
	       "unrolled pass");

struct emit {
	uint8_t *p;
	size_t n;
};

static void bytes(struct emit *e, const uint8_t *b, size_t n)
{
	if (e->n + n <= CODE_MAX)
		memcpy(e->p + e->n, b, n);
	e->n += n;
}

#define OP(e, ...) bytes(e, (const uint8_t[]){ __VA_ARGS__ }, \
			 sizeof((const uint8_t[]){ __VA_ARGS__ }))
#define LE32(v) (uint8_t)(v), (uint8_t)((v) >> 8), (uint8_t)((v) >> 16), \
		(uint8_t)((v) >> 24)

/* Set the rel32 operand at `at` (a jump ending right after it) to `to`. */
static void rel32_at(struct emit *e, size_t at, size_t to)
{
	uint32_t rel = (uint32_t)(to - (at + 4));

	if (at + 4 <= CODE_MAX)
		memcpy(e->p + at, &rel, 4);
}

/* Jump to an offset already emitted. cc: 0x84 je, 0x85 jne, 0 jmp. */
static void jump_back(struct emit *e, uint8_t cc, size_t to)
{
	if (cc)
		OP(e, 0x0F, cc, 0, 0, 0, 0);
	else
		OP(e, 0xE9, 0, 0, 0, 0);
	rel32_at(e, e->n - 4, to);
}

/* Forward jump: returns where its operand goes, for land(). */
static size_t jump_fwd(struct emit *e, uint8_t cc)
{
	OP(e, 0x0F, cc, 0, 0, 0, 0);
	return e->n - 4;
}

static void land(struct emit *e, size_t operand)
{
	rel32_at(e, operand, e->n);
}

/* Writes the program to buf (CODE_MAX bytes at least); returns its size. */
size_t tvm_kvm_code_build(uint8_t *buf, size_t cap)
{
	struct emit e = { buf, 0 };
	size_t start, next, loop, to_done, to_write, to_next;

	if (cap < CODE_MAX)
		return 0;
	start = e.n;
	OP(&e, 0x31, 0xC9);                         /* xor  ecx, ecx           i = 0 */
	next = e.n;
	OP(&e, 0x3B, 0x0E);                         /* cmp  ecx, [esi]         i == count? */
	to_done = jump_fwd(&e, 0x84);               /* je   done */
	OP(&e, 0x8B, 0x54, 0xCE, 0x10);             /* mov  edx, [esi+ecx*8+0x10]  pno */
	OP(&e, 0xC1, 0xE2, 0x0C);                   /* shl  edx, 12 */
	OP(&e, 0x81, 0xC2, LE32(TVM_KVM_MEM_GPA));  /* add  edx, MEM_GPA       page */
	OP(&e, 0x8D, 0xBA, LE32(TVM_PAGE_SIZE));    /* lea  edi, [edx+4096]    its end */

	OP(&e, 0xF6, 0x46, 0x04, TVM_KVM_SUM);      /* test byte [esi+4], SUM */
	to_write = jump_fwd(&e, 0x84);              /* jz   write */
	OP(&e, 0xB8, LE32(FNV_BASE));               /* mov  eax, FNV_BASE */
	loop = e.n;
	for (uint8_t d = 0; d < 4 * UNROLL; d += 4) {
		OP(&e, 0x33, 0x42, d);              /* xor  eax, [edx+d] */
		OP(&e, 0x69, 0xC0, LE32(FNV_MUL));  /* imul eax, eax, FNV_MUL */
	}
	OP(&e, 0x81, 0xC2, LE32(4 * UNROLL));       /* add  edx, 4*UNROLL */
	OP(&e, 0x39, 0xFA);                         /* cmp  edx, edi */
	jump_back(&e, 0x85, loop);                  /* jne  sum loop */
	OP(&e, 0x89, 0x84, 0x8E, LE32(0x810));      /* mov  [esi+ecx*4+0x810], eax  sum[i] */
	OP(&e, 0x81, 0xEA, LE32(TVM_PAGE_SIZE));    /* sub  edx, 4096          page again */

	land(&e, to_write);                         /* write: */
	OP(&e, 0xF6, 0x46, 0x04, TVM_KVM_WRITE);    /* test byte [esi+4], WRITE */
	to_next = jump_fwd(&e, 0x84);               /* jz   advance */
	OP(&e, 0x8B, 0x44, 0xCE, 0x10);             /* mov  eax, [esi+ecx*8+0x10]  pno */
	OP(&e, 0x69, 0xC0, LE32(MUL_PNO));          /* imul eax, eax, MUL_PNO */
	OP(&e, 0x8B, 0x5C, 0xCE, 0x14);             /* mov  ebx, [esi+ecx*8+0x14]  gen */
	OP(&e, 0x69, 0xDB, LE32(MUL_GEN));          /* imul ebx, ebx, MUL_GEN */
	OP(&e, 0x31, 0xD8);                         /* xor  eax, ebx */
	OP(&e, 0x33, 0x46, 0x08);                   /* xor  eax, [esi+8]       ^ seed = key */
	OP(&e, 0xBB, LE32(STEP));                   /* mov  ebx, STEP */
	loop = e.n;
	for (uint8_t d = 0; d < 4 * UNROLL; d += 4) {
		OP(&e, 0x89, 0x42, d);              /* mov  [edx+d], eax */
		OP(&e, 0x01, 0xD8);                 /* add  eax, ebx */
	}
	OP(&e, 0x81, 0xC2, LE32(4 * UNROLL));       /* add  edx, 4*UNROLL */
	OP(&e, 0x39, 0xFA);                         /* cmp  edx, edi */
	jump_back(&e, 0x85, loop);                  /* jne  write loop */

	land(&e, to_next);                          /* advance: */
	OP(&e, 0x41);                               /* inc  ecx */
	jump_back(&e, 0, next);                     /* jmp  next */

	land(&e, to_done);                          /* done: */
	OP(&e, 0x89, 0xC8);                         /* mov  eax, ecx           entries done */
	OP(&e, 0xE7, TVM_KVM_PORT);                 /* out  PORT, eax          KVM_EXIT_IO */
	jump_back(&e, 0, start);                    /* jmp  start: next request */
	return e.n <= CODE_MAX ? e.n : 0;
}

/* The guest has 32 bits of seed; fold the rest in rather than drop it. */
uint32_t tvm_kvm_seed32(uint64_t seed)
{
	return (uint32_t)(seed ^ seed >> 32);
}

uint32_t tvm_kvm_key(uint64_t seed, uint64_t pno, uint32_t gen)
{
	return (uint32_t)pno * MUL_PNO ^ gen * MUL_GEN ^ tvm_kvm_seed32(seed);
}

/* 32-bit word w (0..1023) of a page the guest wrote with key. */
uint32_t tvm_kvm_word(uint32_t key, unsigned w)
{
	return key + w * STEP;
}

uint32_t tvm_kvm_csum(const void *page)
{
	const uint32_t *p = page;
	uint32_t c = FNV_BASE;

	for (unsigned w = 0; w < TVM_PAGE_SIZE / 4; w++)
		c = (c ^ p[w]) * FNV_MUL;
	return c;
}
