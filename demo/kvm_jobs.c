/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Page jobs done by the KVM guest: a vCPU thread gathers its pages into
 * mailbox requests of up to TVM_KVM_BATCH entries, runs each, and checks
 * the checksums the guest reports against the model.
 *
 * The model is updated as entries are added, not after the run: a churn
 * batch may hold one page twice, and its second entry must expect what
 * the first one writes. Only this thread reads or writes its pages' gens
 * while a job runs, so nothing can see the early update.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvm.h"

/* What the guest's checksum of page pno must be, from the model alone. */
static uint32_t want_csum(const struct tvm_guest *g, uint64_t pno)
{
	uint64_t page[TVM_PAGE_WORDS];

	tvm_pattern_fill(page, g->seed, pno, g->gen[pno]);
	return tvm_kvm_csum(page);
}

void tvm_kvm_batch_begin(struct tvm_kvm_batch *b, struct tvm_kvm_vcpu *v,
			 struct tvm_guest *g, uint32_t ops, uint32_t limit)
{
	b->vcpu = v;
	b->g = g;
	b->ops = ops;
	b->limit = limit && limit < TVM_KVM_BATCH ? limit : TVM_KVM_BATCH;
	v->mbox->count = 0;
	v->mbox->ops = ops;
	v->mbox->seed = tvm_kvm_seed32(g->seed);
}

void tvm_kvm_batch_add(struct tvm_kvm_batch *b, uint64_t pno,
		       struct tvm_result *res)
{
	struct tvm_kvm_mbox *m = b->vcpu->mbox;
	uint32_t i = m->count;

	m->ent[i].pno = (uint32_t)pno; /* < 2^20: guest memory is under 3 GiB */
	m->ent[i].gen = 0;
	b->want_gen[i] = b->g->gen[pno];
	if (b->ops & TVM_KVM_SUM)
		b->want[i] = want_csum(b->g, pno);
	if (b->ops & TVM_KVM_WRITE) {
		m->ent[i].gen = tvm_next_gen(b->g->gen[pno]) | TVM_GEN_KVM;
		b->g->gen[pno] = m->ent[i].gen;
	}
	m->count = i + 1;
	if (m->count == b->limit)
		tvm_kvm_batch_flush(b, res);
}

/*
 * A read-only check that failed is read again from the host side: if the
 * host sees the right data, the guest was shown something else (a KVM
 * mapping vmswap failed to update), which is worth telling apart.
 */
static void report(struct tvm_kvm_batch *b, uint32_t i, uint32_t got)
{
	const struct tvm_kvm_mbox *m = b->vcpu->mbox;
	uint64_t pno = m->ent[i].pno;
	uint32_t gen = b->want_gen[i];
	const char *host = "";

	if (!tvm_page_report(b->g))
		return;
	if (!(b->ops & TVM_KVM_WRITE))
		host = tvm_pattern_check(tvm_guest_page(b->g, pno), b->g->seed, pno,
					 gen, NULL) ? ", host read differs too" :
			", host read matches the model";
	fprintf(stderr, "toyvmm[%d]: kvm page %" PRIu64 ": guest checksum %08x, "
		"want %08x (gen %u%s)%s\n", (int)getpid(), pno, got, b->want[i],
		gen & ~TVM_GEN_KVM, gen & TVM_GEN_KVM ? ", kvm pattern" : "", host);
}

void tvm_kvm_batch_flush(struct tvm_kvm_batch *b, struct tvm_result *res)
{
	struct tvm_kvm_mbox *m = b->vcpu->mbox;
	int r;

	if (!m->count)
		return;
	r = tvm_kvm_vcpu_exec(b->vcpu);
	if (r) {
		if (!res->err)
			res->err = r;
		m->count = 0;
		return;
	}
	for (uint32_t i = 0; i < m->count && (b->ops & TVM_KVM_SUM); i++) {
		if (m->sum[i] == b->want[i])
			continue;
		tvm_note_mismatch(res, m->ent[i].pno);
		report(b, i, m->sum[i]);
	}
	res->pages += m->count;
	m->count = 0;
}
