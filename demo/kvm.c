/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The KVM side of toyvmm --kvm: the VM, its memslots (slot 0 for code and
 * mailboxes, one per guest-memory region on the very host mapping the
 * rest of toyvmm uses), and vCPUs that run one mailbox request per call.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"

#define KVM_PAGE 4096u

static int set_slot(struct tvm_kvm *k, unsigned slot, uint64_t gpa,
		    uint64_t len, void *host)
{
	struct kvm_userspace_memory_region m = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = len,
		.userspace_addr = (uintptr_t)host,
	};

	return ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0 ? -errno : 0;
}

/*
 * Code and mailboxes live in private anonymous memory, never in a memfd:
 * vmswap must not take them (they are no guest RAM), and a fork()ed
 * child has no use for them (MADV_DONTFORK).
 */
static int map_slot0(struct tvm_kvm *k)
{
	k->slot0_len = (size_t)KVM_PAGE * (1 + k->nvcpus);
	k->slot0 = mmap(NULL, k->slot0_len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (k->slot0 == MAP_FAILED) {
		k->slot0 = NULL;
		return -errno;
	}
	madvise(k->slot0, k->slot0_len, MADV_DONTFORK);
	if (!tvm_kvm_code_build(k->slot0 + TVM_KVM_CODE_GPA, TVM_KVM_MBOX_GPA))
		return -E2BIG;
	return set_slot(k, 0, 0, k->slot0_len, k->slot0);
}

/* *stage names the step that failed, for the caller's message. */
int tvm_kvm_open(struct tvm_kvm *k, unsigned nvcpus, const char **stage)
{
	int r;

	memset(k, 0, sizeof(*k));
	k->sys_fd = k->vm_fd = -1;
	k->nvcpus = nvcpus;
	k->unavailable = true;
	*stage = "open /dev/kvm";
	k->sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->sys_fd < 0)
		return -errno;
	*stage = "KVM_GET_API_VERSION";
	r = ioctl(k->sys_fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION)
		return r < 0 ? -errno : -EPROTONOSUPPORT;
	*stage = "KVM_CAP_USER_MEMORY";
	if (ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0)
		return -EOPNOTSUPP;
	*stage = "KVM_CREATE_VM";
	k->vm_fd = ioctl(k->sys_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0)
		return -errno;
	k->unavailable = false;

	*stage = "KVM_GET_VCPU_MMAP_SIZE";
	r = ioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run))
		return r < 0 ? -errno : -EPROTO;
	k->run_size = (size_t)r;
	r = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	k->max_slots = r > 0 ? (unsigned)r : 32; /* 32: KVM's old fixed number */
	/* Intel without unrestricted guest needs these pages; elsewhere it is
	 * harmless. They must lie outside every memslot. */
	*stage = "KVM_SET_TSS_ADDR";
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)TVM_KVM_TSS_GPA) < 0)
		return -errno;
	*stage = "code memslot";
	r = map_slot0(k);
	if (r)
		return r;
	k->nslots = 1;
	return 0;
}

/*
 * tvm_map_hook: region r becomes a memslot at the guest-physical address
 * of its first page. Pages above the limit would be out of the 32-bit
 * guest's reach: refused with ENOSPC.
 */
int tvm_kvm_map_region(void *arg, const struct tvm_region *r)
{
	struct tvm_kvm *k = arg;
	uint64_t gpa = TVM_KVM_MEM_GPA + r->first_page * TVM_PAGE_SIZE;
	int err;

	if (gpa + r->len > TVM_KVM_GPA_LIMIT) {
		fprintf(stderr, "toyvmm: --kvm: guest memory would end at %" PRIu64
			" MiB guest-physical; the 32-bit guest allows %llu MiB "
			"of guest memory\n", (gpa + r->len) >> 20,
			TVM_KVM_MAX_MEM >> 20);
		return -ENOSPC;
	}
	if (k->nslots >= k->max_slots)
		return -ENOSPC;
	err = set_slot(k, k->nslots, gpa, r->len, r->base);
	if (err) {
		fprintf(stderr, "toyvmm: --kvm: KVM_SET_USER_MEMORY_REGION slot %u: %s\n",
			k->nslots, strerror(-err));
		return err;
	}
	k->nslots++;
	return 0;
}

/* The VM goes once its vCPUs are gone too; guest memory may go after. */
void tvm_kvm_close(struct tvm_kvm *k)
{
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	if (k->slot0)
		munmap(k->slot0, k->slot0_len);
	memset(k, 0, sizeof(*k));
	k->sys_fd = k->vm_fd = -1;
}

/* Flat 4 GiB segment: base 0, limit 4G (4K granules), 32-bit. */
static struct kvm_segment flat(uint16_t selector, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector,
		.type = type, .present = 1, .dpl = 0, .db = 1, .s = 1,
		.l = 0, .g = 1,
	};
}

/* Protected mode straight away: no GDT in memory is needed, since
 * KVM_SET_SREGS loads the hidden segment state directly. */
static int enter_protected_mode(int fd)
{
	struct kvm_sregs s;

	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	s.cs = flat(0x08, 0xb);                         /* code: exec/read, accessed */
	s.ds = s.es = s.fs = s.gs = s.ss = flat(0x10, 0x3); /* data: read/write, accessed */
	s.cr0 = (s.cr0 | 1) & ~(1ull << 31);            /* PE on, PG off */
	s.cr4 = 0;
	s.efer = 0;
	return ioctl(fd, KVM_SET_SREGS, &s) < 0 ? -errno : 0;
}

int tvm_kvm_vcpu_create(struct tvm_kvm *k, unsigned id, struct tvm_kvm_vcpu *v)
{
	const char *what = "KVM_CREATE_VCPU";
	int r;

	memset(v, 0, sizeof(*v));
	v->fd = -1;
	if (id >= k->nvcpus)
		return -EINVAL;
	v->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		r = -errno;
		goto fail;
	}
	what = "mmap kvm_run";
	v->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		r = -errno;
		goto fail;
	}
	v->mbox_gpa = TVM_KVM_MBOX_GPA + id * KVM_PAGE;
	v->mbox = (struct tvm_kvm_mbox *)(k->slot0 + v->mbox_gpa);
	v->run_size = k->run_size;
	what = "KVM_SET_SREGS";
	r = enter_protected_mode(v->fd);
	if (r)
		goto fail;
	v->fresh = true;
	return 0;
fail:
	fprintf(stderr, "toyvmm: --kvm: vCPU %u: %s: %s\n", id, what, strerror(-r));
	tvm_kvm_vcpu_destroy(v);
	return r;
}

void tvm_kvm_vcpu_destroy(struct tvm_kvm_vcpu *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	memset(v, 0, sizeof(*v));
	v->fd = -1;
}

static int load_regs(struct tvm_kvm_vcpu *v)
{
	struct kvm_regs regs = {
		.rip = TVM_KVM_CODE_GPA,
		.rsi = v->mbox_gpa,
		.rflags = 0x2, /* bit 1 is reserved-one; IF stays 0 */
	};

	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	v->fresh = false;
	return 0;
}

static void describe_exit(const struct tvm_kvm_vcpu *v)
{
	const struct kvm_run *run = v->run;
	struct kvm_regs regs = { 0 };

	ioctl(v->fd, KVM_GET_REGS, &regs);
	fprintf(stderr, "toyvmm[%d]: KVM vCPU: unexpected exit %u at rip %#llx",
		(int)getpid(), run->exit_reason, (unsigned long long)regs.rip);
	if (run->exit_reason == KVM_EXIT_IO)
		fprintf(stderr, " (io port %#x size %u dir %u)", run->io.port,
			run->io.size, run->io.direction);
	else if (run->exit_reason == KVM_EXIT_MMIO)
		fprintf(stderr, " (mmio gpa %#llx: no memslot there)",
			(unsigned long long)run->mmio.phys_addr);
	else if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		fprintf(stderr, " (internal error %u)", run->internal.suberror);
	else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		fprintf(stderr, " (entry failure %#llx)", (unsigned long long)
			run->fail_entry.hardware_entry_failure_reason);
	fputc('\n', stderr);
}

/*
 * Run the request in v->mbox to completion. KVM_RUN is resumed after a
 * signal (vmswap's freeze stops the VMM with SIGSTOP, which makes it
 * return EINTR) and after KVM_EXIT_INTR: the guest simply continues. On
 * any failure the registers are reloaded before the next request.
 */
int tvm_kvm_vcpu_exec(struct tvm_kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t done;
	int r;

	if (v->fresh && (r = load_regs(v)))
		return r;
	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			r = -errno;
			fprintf(stderr, "toyvmm[%d]: KVM_RUN: %s\n", (int)getpid(),
				strerror(-r));
			break;
		}
		if (run->exit_reason == KVM_EXIT_INTR)
			continue;
		if (run->exit_reason != KVM_EXIT_IO || run->io.port != TVM_KVM_PORT ||
		    run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 ||
		    run->io.count != 1) {
			describe_exit(v);
			r = -EIO;
			break;
		}
		memcpy(&done, (const uint8_t *)run + run->io.data_offset, sizeof(done));
		if (done == v->mbox->count)
			return 0;
		fprintf(stderr, "toyvmm[%d]: KVM guest did %u of %u entries\n",
			(int)getpid(), done, v->mbox->count);
		r = -EPROTO;
		break;
	}
	v->fresh = true;
	return r;
}
