/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The helper's side of the shim connection, fed through a real
 * SOCK_SEQPACKET socketpair with SCM_RIGHTS: every malformed or
 * unacceptable message gets an error reply, leaves no received fd open
 * and changes no process, object or mapping, and the connection (and the
 * others) keep being served.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helper/control/shimconn.h"
#include "../helper/control/shimmsg.h"
#include "../helper/control/shimpeer.h"
#include "../helper/model/helper.h"
#include "fixture.h"

#define GUEST_BYTES (4u << 20)
#define BASE 0x7f0000000000ull

static int shim_end;          /* the shim's end of the VMM's connection */
static struct vs_conn *conn;  /* the helper's end */
static int memfd;             /* a guest memfd of GUEST_BYTES */
static uint32_t seq;
static uint32_t last_flags;   /* flags of the last reply request_on() read */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int guest_memfd(uint64_t bytes)
{
	int fd = fx_memfd("unit-guest", bytes);

	cr_assert_geq(fd, 0);
	return fd;
}

static int make_uffd(int flags)
{
	int fd = fx_uffd(flags);

	if (fd < 0)
		cr_skip_test("no userfaultfd: %s", strerror(-fd));
	return fd;
}

static void setup(void)
{
	int sv[2];

	vs_helper_init(getpid());
	vs.fault_epfd = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_geq(vs.fault_epfd, 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	shim_end = sv[0];
	conn = vs_conn_add(sv[1], true);
	cr_assert_not_null(conn);
	memfd = guest_memfd(GUEST_BYTES);
	seq = 100;
}

TestSuite(shimconn, .init = setup);

/* A second connection, as from shim.sock; *sock gets the shim's end. */
static struct vs_conn *other_conn(int *sock)
{
	int sv[2];
	struct vs_conn *c;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	*sock = sv[0];
	c = vs_conn_add(sv[1], false);
	cr_assert_not_null(c);
	return c;
}

/*
 * One packet from the shim, handled by the helper; the reply's result.
 * The connection must stay open, and exactly one well-formed reply (with
 * the request's seq, when it had a header) must come back.
 */
static int request_on(int sock, struct vs_conn *c, const void *buf, size_t len,
		      const int *fds, int nfds, char *why, size_t n)
{
	struct vmswap_msg_reply rep;

	cr_assert_eq(fx_send(sock, buf, len, fds, nfds), 0);
	cr_assert_eq(vs_conn_handle(c), 0, "the helper dropped the connection");
	cr_assert_eq(fx_recv_reply(sock, false, &rep), 0, "no well-formed reply");
	last_flags = rep.flags;
	if (len >= sizeof(struct vmswap_msg_hdr))
		cr_assert_eq(rep.hdr.seq, ((const struct vmswap_msg_hdr *)buf)->seq);
	cr_assert_eq(fx_recv_reply(sock, false, &rep), -EAGAIN, "a second reply");
	if (rep.result)
		cr_assert(rep.message[0], "an error reply must say why");
	if (why)
		snprintf(why, n, "%s", rep.message);
	return rep.result;
}

static int request(const void *buf, size_t len, const int *fds, int nfds)
{
	return request_on(shim_end, conn, buf, len, fds, nfds, NULL, 0);
}

static struct vmswap_msg_hello hello_msg(pid_t pid, bool has_uffd)
{
	return fx_hello(pid, getpid(), has_uffd, ++seq);
}

static struct vmswap_msg_region_add add_msg(uint64_t addr, uint64_t len, uint64_t off)
{
	return fx_region_add(addr, len, off, ++seq);
}

static struct vmswap_msg_region_del del_msg(uint64_t addr, uint64_t len)
{
	return fx_region_del(addr, len, ++seq);
}

static struct vmswap_msg_discard discard_msg(uint64_t off, uint64_t len)
{
	return fx_discard(off, len, ++seq);
}

/* The VMM's HELLO with a fresh uffd (the helper keeps its own copy). */
static void hello(void)
{
	struct vmswap_msg_hello h = hello_msg(getpid(), true);
	int uffd = make_uffd(O_NONBLOCK);

	cr_assert_eq(request(&h, sizeof(h), &uffd, 1), 0);
	close(uffd);
	cr_assert_geq(conn->proc, 0);
}

static int add_region(int fd, uint64_t addr, uint64_t len, uint64_t off)
{
	struct vmswap_msg_region_add m = add_msg(addr, len, off);

	return request(&m, sizeof(m), &fd, 1);
}

static int nmaps(void)
{
	int n = 0;

	for (int i = 0; i < VS_MAX_MAPS; i++)
		n += vs.maps[i].used;
	return n;
}

static int nobjs(void)
{
	int n = 0;

	for (int i = 0; i < VS_MAX_OBJS; i++)
		n += vs.objs[i].used;
	return n;
}

/* What a refused message must leave as it was. */
struct snap {
	struct vs_proc procs[VS_MAX_PROCS];
	struct vs_map maps[VS_MAX_MAPS];
	struct { bool used; int fd, stg_fd; uint64_t npages; uint32_t *pt; } objs[VS_MAX_OBJS];
	bool managed;
	struct vs_counters c;
	int fds;
};

static void snap_take(struct snap *s)
{
	memcpy(s->procs, vs.procs, sizeof(s->procs));
	memcpy(s->maps, vs.maps, sizeof(s->maps));
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];

		s->objs[i].used = o->used;
		s->objs[i].fd = o->fd;
		s->objs[i].stg_fd = o->stg_fd;
		s->objs[i].npages = o->npages;
		s->objs[i].pt = NULL;
		if (o->used) {
			s->objs[i].pt = malloc(o->npages * sizeof(uint32_t));
			cr_assert_not_null(s->objs[i].pt);
			memcpy(s->objs[i].pt, o->pt, o->npages * sizeof(uint32_t));
		}
	}
	s->managed = vs.managed;
	s->c = vs.stats.c;
	s->fds = count_fds();
}

static void snap_same(struct snap *s, const char *what)
{
	cr_assert_eq(count_fds(), s->fds, "%s: fds leaked", what);
	cr_assert_eq(memcmp(s->procs, vs.procs, sizeof(s->procs)), 0, "%s: processes changed", what);
	cr_assert_eq(memcmp(s->maps, vs.maps, sizeof(s->maps)), 0, "%s: mappings changed", what);
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct vs_obj *o = &vs.objs[i];

		cr_assert_eq(o->used, s->objs[i].used, "%s: object %d", what, i);
		if (!o->used)
			continue;
		cr_assert_eq(o->fd, s->objs[i].fd, "%s: object %d", what, i);
		cr_assert_eq(o->stg_fd, s->objs[i].stg_fd, "%s: object %d", what, i);
		cr_assert_eq(o->npages, s->objs[i].npages, "%s: object %d grew", what, i);
		cr_assert_eq(memcmp(o->pt, s->objs[i].pt, o->npages * sizeof(uint32_t)), 0,
			     "%s: page table of object %d", what, i);
		free(s->objs[i].pt);
	}
	cr_assert_eq(vs.managed, s->managed, "%s", what);
	cr_assert_eq(memcmp(&vs.stats.c, &s->c, sizeof(s->c)), 0, "%s: counters changed", what);
}

/* Send a packet that must be refused with @want, changing nothing. */
static void refused_on(int sock, struct vs_conn *c, const void *buf, size_t len,
		       const int *fds, int nfds, int want, const char *what)
{
	struct snap s;
	char why[VMSWAP_REASON_MAX];
	int r;

	snap_take(&s);
	r = request_on(sock, c, buf, len, fds, nfds, why, sizeof(why));
	cr_assert_eq(r, want, "%s: got %d (%s), want %d", what, r, why, want);
	snap_same(&s, what);
}

static void refused(const void *buf, size_t len, const int *fds, int nfds, int want,
		    const char *what)
{
	refused_on(shim_end, conn, buf, len, fds, nfds, want, what);
}

/* After whatever came before, a good region is still taken (and then dropped again). */
static void still_serving(void)
{
	uint64_t addr = BASE + (1ull << 40);
	struct vmswap_msg_region_del d = del_msg(addr, GUEST_BYTES);
	int maps = nmaps();

	cr_assert_eq(add_region(memfd, addr, GUEST_BYTES, 0), 0);
	cr_assert_eq(nmaps(), maps + 1);
	cr_assert_not_null(vs_map_find(conn->proc, addr + GUEST_BYTES - 1));
	cr_assert_eq(request(&d, sizeof(d), NULL, 0), 0);
	cr_assert_eq(nmaps(), maps);
}

Test(shimconn, good_messages_are_taken)
{
	struct vmswap_msg_discard dm = discard_msg(0, 2 * VS_PAGE_SIZE);
	struct vmswap_msg_region_del dl = del_msg(BASE, GUEST_BYTES / 2);
	int fds = count_fds();
	struct vs_map *m;

	hello();
	cr_assert_eq(count_fds(), fds + 2, "the uffd and the pidfd kept");
	cr_assert_eq(add_region(memfd, BASE, GUEST_BYTES, 0), 0);
	cr_assert_eq(nobjs(), 1);
	cr_assert_eq(count_fds(), fds + 5, "the memfd, its staging memfd and its page-table memfd kept");
	m = vs_map_find(conn->proc, BASE + 5 * VS_PAGE_SIZE);
	cr_assert_not_null(m);
	cr_assert_eq(m->len, GUEST_BYTES);
	cr_assert_eq(vs.objs[m->obj].npages, GUEST_BYTES / VS_PAGE_SIZE);
	vs_page_set(&vs.objs[m->obj], 1, vs_pt_make(VS_P_STAGING, false, 0));
	cr_assert_eq(request(&dm, sizeof(dm), &memfd, 1), 0);
	cr_assert_eq(vs_pt_state(vs.objs[m->obj].pt[1]), VS_P_RESIDENT, "discarded");
	cr_assert_eq(request(&dl, sizeof(dl), NULL, 0), 0);
	cr_assert_null(vs_map_find(conn->proc, BASE));
	cr_assert_not_null(vs_map_find(conn->proc, BASE + GUEST_BYTES / 2));
	cr_assert_eq(count_fds(), fds + 5);
	still_serving();
}

Test(shimconn, wrong_sizes)
{
	struct vmswap_msg_region_add m = add_msg(BASE, GUEST_BYTES, 0);
	union { struct vmswap_msg_region_add m; char b[VMSWAP_MSG_MAX + 88]; } big;

	hello();
	refused(&m, 0, NULL, 0, -EPROTO, "zero-length packet");
	refused(&m, 0, &memfd, 1, -EPROTO, "zero-length packet with an fd");
	refused(&m, 3, &memfd, 1, -EPROTO, "shorter than a header");
	refused(&m, sizeof(m.hdr), &memfd, 1, -EPROTO, "a header alone");
	refused(&m, sizeof(m) - 1, &memfd, 1, -EPROTO, "truncated body");
	m.hdr.size = sizeof(m) - 8;
	refused(&m, sizeof(m) - 8, &memfd, 1, -EPROTO, "short, size field agreeing");
	memset(&big, 0, sizeof(big));
	big.m = add_msg(BASE, GUEST_BYTES, 0);
	big.m.hdr.size = sizeof(big.m) + 8;
	refused(&big, sizeof(big.m) + 8, &memfd, 1, -EPROTO, "long, size field agreeing");
	big.m.hdr.size = sizeof(big);
	refused(&big, sizeof(big), &memfd, 1, -EPROTO, "longer than any message");
	m = add_msg(BASE, GUEST_BYTES, 0);
	m.hdr.size = sizeof(m) + 4;
	refused(&m, sizeof(m), &memfd, 1, -EPROTO, "size field lies");
	m = add_msg(BASE, GUEST_BYTES, 0);
	m.hdr.magic = 0;
	refused(&m, sizeof(m), &memfd, 1, -EPROTO, "bad magic");
	still_serving();
}

Test(shimconn, unknown_and_unexpected_types)
{
	struct vmswap_msg_region_add m = add_msg(BASE, GUEST_BYTES, 0);
	struct vmswap_msg_reply rep = { .result = 0 };

	hello();
	m.hdr.type = 77;
	refused(&m, sizeof(m), &memfd, 1, -EPROTO, "unknown type");
	m.hdr.type = 0;
	refused(&m, sizeof(m), NULL, 0, -EPROTO, "type 0");
	vmswap_msg_init(&rep.hdr, VMSWAP_MSG_REPLY, sizeof(rep), ++seq);
	refused(&rep, sizeof(rep), NULL, 0, -EPROTO, "a REPLY from the shim");
	still_serving();
}

Test(shimconn, missing_and_extra_fds)
{
	struct vmswap_msg_region_add m = add_msg(BASE, GUEST_BYTES, 0);
	struct vmswap_msg_region_del d = del_msg(BASE, GUEST_BYTES);
	struct vmswap_msg_discard dm = discard_msg(0, VS_PAGE_SIZE);
	struct vmswap_msg_hello h = hello_msg(getpid(), true);
	int two[2] = { memfd, memfd }, many[FX_MAX_FDS];

	hello();
	for (int i = 0; i < FX_MAX_FDS; i++)
		many[i] = memfd;
	refused(&m, sizeof(m), NULL, 0, -EBADMSG, "REGION_ADD without its memfd");
	refused(&dm, sizeof(dm), NULL, 0, -EBADMSG, "DISCARD without its memfd");
	refused(&h, sizeof(h), NULL, 0, -EBADMSG, "HELLO with HAS_UFFD and no fd");
	refused(&m, sizeof(m), two, 2, -EBADMSG, "REGION_ADD with two fds");
	refused(&m, sizeof(m), many, FX_MAX_FDS, -EBADMSG, "REGION_ADD with eight fds");
	refused(&d, sizeof(d), &memfd, 1, -EBADMSG, "REGION_DEL with an fd");
	h = hello_msg(getpid(), false);
	refused(&h, sizeof(h), &memfd, 1, -EBADMSG, "HELLO with an fd and no HAS_UFFD");
	still_serving();
}

Test(shimconn, region_fds_of_the_wrong_kind)
{
	char path[64], tmpl[] = "/tmp/vmswap-unit-XXXXXX";
	struct vmswap_msg_region_add m = add_msg(BASE, GUEST_BYTES, 0);
	struct vmswap_msg_discard dm = discard_msg(0, VS_PAGE_SIZE);
	int p[2], file, ro, sealed, small, uffd, huge;

	hello();
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	refused(&m, sizeof(m), &p[0], 1, -EBADF, "a pipe");
	refused(&dm, sizeof(dm), &p[0], 1, -EBADF, "DISCARD of a pipe");
	file = mkostemp(tmpl, O_CLOEXEC);
	cr_assert_geq(file, 0);
	unlink(tmpl);
	cr_assert_eq(ftruncate(file, GUEST_BYTES), 0);
	refused(&m, sizeof(m), &file, 1, -EBADF, "a regular file");
	uffd = make_uffd(O_NONBLOCK);
	refused(&m, sizeof(m), &uffd, 1, -EBADF, "a userfaultfd");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(ro, 0);
	refused(&m, sizeof(m), &ro, 1, -EBADF, "a read-only memfd");
	sealed = memfd_create("unit-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	cr_assert_eq(ftruncate(sealed, GUEST_BYTES), 0);
	cr_assert_eq(fcntl(sealed, F_ADD_SEALS, F_SEAL_WRITE), 0);
	refused(&m, sizeof(m), &sealed, 1, -EPERM, "a memfd sealed against writes");
	small = guest_memfd(GUEST_BYTES / 2);
	refused(&m, sizeof(m), &small, 1, -EINVAL, "a memfd smaller than the region");
	huge = memfd_create("unit-huge", MFD_CLOEXEC | MFD_HUGETLB);
	if (huge >= 0 && ftruncate(huge, GUEST_BYTES) == 0)
		refused(&m, sizeof(m), &huge, 1, -EOPNOTSUPP, "a hugetlbfs memfd");
	still_serving();
}

Test(shimconn, hello_fds_of_the_wrong_kind)
{
	struct vmswap_msg_hello h = hello_msg(getpid(), true);
	int p[2], blocking = make_uffd(0), used = make_uffd(O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API };

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	refused(&h, sizeof(h), &p[0], 1, -EBADF, "HELLO with a pipe");
	refused(&h, sizeof(h), &memfd, 1, -EBADF, "HELLO with a memfd");
	/* The fault thread reads every uffd until EAGAIN: a blocking one would hang it. */
	refused(&h, sizeof(h), &blocking, 1, -EINVAL, "HELLO with a blocking userfaultfd");
	cr_assert_eq(ioctl(used, UFFDIO_API, &api), 0);
	refused(&h, sizeof(h), &used, 1, -EINVAL, "HELLO with a userfaultfd already set up");
	hello();
	still_serving();
}

Test(shimconn, hello_checks)
{
	struct vmswap_msg_hello h = hello_msg(getpid() + 1, true);
	struct vmswap_msg_region_add m = add_msg(BASE, GUEST_BYTES, 0);
	int uffd = make_uffd(O_NONBLOCK), osock;
	struct vs_conn *other = other_conn(&osock);

	refused(&m, sizeof(m), &memfd, 1, -EPROTO, "REGION_ADD before HELLO");
	refused(&h, sizeof(h), &uffd, 1, -EPERM, "HELLO from another pid");
	h = hello_msg(getpid(), true);
	h.vmm_pid = getpid() + 1;
	refused(&h, sizeof(h), &uffd, 1, -EPERM, "HELLO naming another VMM");
	/* A process on shim.sock must be who its socket says. */
	h = hello_msg(getpid() + 1, true);
	refused_on(osock, other, &h, sizeof(h), &uffd, 1, -EPERM, "HELLO with a forged pid");
	m = add_msg(BASE, GUEST_BYTES, 0);
	refused_on(osock, other, &m, sizeof(m), &memfd, 1, -EPROTO, "other: REGION_ADD before HELLO");
	hello();
	h = hello_msg(getpid(), true);
	refused(&h, sizeof(h), &uffd, 1, -EPROTO, "a second HELLO");
	still_serving();
}

Test(shimconn, region_without_a_uffd)
{
	struct vmswap_msg_hello h = hello_msg(getpid(), false);
	struct vmswap_msg_region_add m = add_msg(BASE, GUEST_BYTES, 0);

	strcpy(h.reason, "unit test");
	cr_assert_eq(request(&h, sizeof(h), NULL, 0), 0);
	cr_assert_not(vs.managed);
	refused(&m, sizeof(m), &memfd, 1, -EPERM, "REGION_ADD of an unmanaged process");
}

Test(shimconn, bad_ranges)
{
	struct vmswap_msg_region_add m;
	struct vmswap_msg_region_del d;
	struct vmswap_msg_discard dm;

	hello();
	cr_assert_eq(add_region(memfd, BASE, GUEST_BYTES, 0), 0);
	m = add_msg(BASE + (1ull << 30) + 1, GUEST_BYTES, 0);
	refused(&m, sizeof(m), &memfd, 1, -EBADMSG, "unaligned address");
	m = add_msg(BASE + (1ull << 30), GUEST_BYTES - 100, 0);
	refused(&m, sizeof(m), &memfd, 1, -EBADMSG, "unaligned length");
	m = add_msg(BASE + (1ull << 30), VS_PAGE_SIZE, 512);
	refused(&m, sizeof(m), &memfd, 1, -EBADMSG, "unaligned offset");
	m = add_msg(BASE + (1ull << 30), 0, 0);
	refused(&m, sizeof(m), &memfd, 1, -EBADMSG, "empty");
	m = add_msg(UINT64_MAX - VS_PAGE_SIZE + 1, 2 * VS_PAGE_SIZE, 0);
	refused(&m, sizeof(m), &memfd, 1, -EBADMSG, "address range wraps");
	m = add_msg(BASE + (1ull << 30), 2 * VS_PAGE_SIZE, UINT64_MAX - VS_PAGE_SIZE + 1);
	refused(&m, sizeof(m), &memfd, 1, -EBADMSG, "offset range wraps");
	m = add_msg(BASE + (1ull << 30), VS_PAGE_SIZE, GUEST_BYTES);
	refused(&m, sizeof(m), &memfd, 1, -EINVAL, "offset at the memfd's end");
	m = add_msg(BASE + (1ull << 30), GUEST_BYTES, 1ull << 50);
	refused(&m, sizeof(m), &memfd, 1, -EINVAL, "offset far past the memfd's end");
	m = add_msg(BASE + (1ull << 30), 1ull << 50, 0);
	refused(&m, sizeof(m), &memfd, 1, -EINVAL, "length far past the memfd's end");
	d = del_msg(BASE + 1, VS_PAGE_SIZE);
	refused(&d, sizeof(d), NULL, 0, -EBADMSG, "REGION_DEL unaligned");
	d = del_msg(UINT64_MAX - VS_PAGE_SIZE + 1, 2 * VS_PAGE_SIZE);
	refused(&d, sizeof(d), NULL, 0, -EBADMSG, "REGION_DEL wraps");
	d = del_msg(BASE, 0);
	refused(&d, sizeof(d), NULL, 0, -EBADMSG, "REGION_DEL empty");
	dm = discard_msg(VS_PAGE_SIZE, 0);
	refused(&dm, sizeof(dm), &memfd, 1, -EBADMSG, "DISCARD empty");
	dm = discard_msg(UINT64_MAX - 10, 20);
	refused(&dm, sizeof(dm), &memfd, 1, -EBADMSG, "DISCARD wraps");
	still_serving();
}

Test(shimconn, discard_past_the_tracked_pages)
{
	struct vmswap_msg_discard dm = discard_msg(GUEST_BYTES + 100, 200);
	struct snap s;

	hello();
	cr_assert_eq(add_region(memfd, BASE, GUEST_BYTES, 0), 0);
	/* The VMM may punch what no mapping covers: nothing of ours is in it. */
	snap_take(&s);
	cr_assert_eq(request(&dm, sizeof(dm), &memfd, 1), 0);
	dm = discard_msg(GUEST_BYTES - 100, 1ull << 40);
	cr_assert_eq(request(&dm, sizeof(dm), &memfd, 1), 0);
	snap_same(&s, "discard past the end");
}

Test(shimconn, overlapping_regions)
{
	int other = guest_memfd(GUEST_BYTES);
	uint64_t half = GUEST_BYTES / 2;
	struct vs_map *m;

	hello();
	cr_assert_eq(add_region(memfd, BASE, GUEST_BYTES, 0), 0);
	/* Without a REGION_DEL first, these would hide part of a live region. */
	{
		struct vmswap_msg_region_add a = add_msg(BASE + half, GUEST_BYTES, 0);

		refused(&a, sizeof(a), &other, 1, -EEXIST, "another memfd over a region");
		a = add_msg(BASE - half, GUEST_BYTES, 0);
		refused(&a, sizeof(a), &memfd, 1, -EEXIST, "the same memfd, other offsets");
		a = add_msg(BASE + half, VS_PAGE_SIZE, 0);
		refused(&a, sizeof(a), &memfd, 1, -EEXIST, "inside, other offset");
	}
	/* The same pages at the same addresses (a mapping a REMAP event moved here). */
	{
		struct vmswap_msg_region_add a = add_msg(BASE + half, VS_PAGE_SIZE, half);
		struct snap s;

		snap_take(&s);
		cr_assert_eq(request(&a, sizeof(a), &memfd, 1), 0);
		snap_same(&s, "a region already known");
	}
	cr_assert_eq(nmaps(), 1);
	m = vs_map_find(conn->proc, BASE + half);
	cr_assert_not_null(m);
	cr_assert_eq(m->addr, BASE);
	cr_assert_eq(m->len, GUEST_BYTES);
	still_serving();
}

Test(shimconn, too_many_mappings)
{
	struct vmswap_msg_region_add m = add_msg(BASE + (1ull << 32), VS_PAGE_SIZE, 0);

	hello();
	for (uint64_t i = 0; i < VS_MAX_MAPS; i++)
		cr_assert_eq(add_region(memfd, BASE + 2 * i * VS_PAGE_SIZE, VS_PAGE_SIZE, 0), 0,
			     "mapping %llu", (unsigned long long)i);
	cr_assert_eq(nmaps(), VS_MAX_MAPS);
	refused(&m, sizeof(m), &memfd, 1, -EMFILE, "one mapping too many");
	/* One that would also grow the object must not grow it either. */
	m = add_msg(BASE + (1ull << 32), VS_PAGE_SIZE, GUEST_BYTES - VS_PAGE_SIZE);
	refused(&m, sizeof(m), &memfd, 1, -EMFILE, "one mapping too many, further in");
}

Test(shimconn, too_many_memfds)
{
	struct vmswap_msg_region_add m = add_msg(BASE + (1ull << 32), VS_PAGE_SIZE, 0);
	int last;

	hello();
	cr_assert_eq(add_region(memfd, BASE, VS_PAGE_SIZE, 0), 0);
	for (uint64_t i = 1; i < VS_MAX_OBJS; i++) {
		int fd = guest_memfd(VS_PAGE_SIZE);

		cr_assert_eq(add_region(fd, BASE + 2 * i * VS_PAGE_SIZE, VS_PAGE_SIZE, 0), 0,
			     "memfd %llu", (unsigned long long)i);
		close(fd);
	}
	cr_assert_eq(nobjs(), VS_MAX_OBJS);
	last = guest_memfd(VS_PAGE_SIZE);
	refused(&m, sizeof(m), &last, 1, -EMFILE, "one memfd too many");
	/* A memfd already known still takes more mappings. */
	cr_assert_eq(add_region(memfd, BASE + (1ull << 33), VS_PAGE_SIZE, 0), 0);
}

Test(shimconn, too_many_processes)
{
	struct vmswap_msg_hello h = hello_msg(getpid(), true);
	int uffd = make_uffd(O_NONBLOCK);

	/* Other processes, as far as the table goes. */
	for (int i = 0; i < VS_MAX_PROCS; i++)
		vs.procs[i] = (struct vs_proc){ .used = true, .pid = 0x3fff0000 + i, .uffd = -1,
						.pidfd = -1, .sock = -1, .gen = 1 };
	refused(&h, sizeof(h), &uffd, 1, -EMFILE, "one process too many");
	cr_assert_lt(conn->proc, 0);
	/* Nothing is out: the refused process may keep its memory unmanaged. */
	cr_assert_eq(last_flags, VMSWAP_REPLY_MAY_KEEP);
	/* Still the first message it waits for. */
	vs.procs[VS_MAX_PROCS - 1].used = false;
	hello();
}

Test(shimconn, garbage_on_one_connection_leaves_the_other)
{
	struct vmswap_msg_region_add m = add_msg(BASE, GUEST_BYTES, 0);
	char junk[200];
	int osock;
	struct vs_conn *other = other_conn(&osock);

	hello();
	cr_assert_eq(add_region(memfd, BASE, GUEST_BYTES, 0), 0);
	memset(junk, 0xa5, sizeof(junk));
	refused_on(osock, other, junk, sizeof(junk), &memfd, 1, -EPROTO, "junk on shim.sock");
	refused_on(osock, other, &m, sizeof(m), &memfd, 1, -EPROTO, "REGION_ADD without HELLO");
	cr_assert_not_null(vs_map_find(conn->proc, BASE));
	still_serving();
	/* A peer that hangs up ends only its own connection. */
	close(osock);
	cr_assert_lt(vs_conn_handle(other), 0);
	vs_conn_close(other);
	still_serving();
}

/* ---- failing closed ---- */

static struct vmswap_msg_giveup giveup_msg(pid_t pid)
{
	struct vmswap_msg_giveup g;

	memset(&g, 0, sizeof(g));
	vmswap_msg_init(&g.hdr, VMSWAP_MSG_GIVEUP, sizeof(g), ++seq);
	g.pid = pid;
	g.err = ETIMEDOUT;
	snprintf(g.reason, sizeof(g.reason), "helper did not\x1b answer");
	return g;
}

/* A GIVEUP gets no reply, and the connection stays. */
static void send_giveup(pid_t pid)
{
	struct vmswap_msg_giveup g = giveup_msg(pid);
	struct vmswap_msg_reply rep;

	cr_assert_eq(fx_send(shim_end, &g, sizeof(g), NULL, 0), 0);
	cr_assert_eq(vs_conn_handle(conn), 0);
	cr_assert_eq(fx_recv_reply(shim_end, false, &rep), -EAGAIN, "a GIVEUP was answered");
}

Test(shimconn, giveup_turns_the_helper_unmanaged)
{
	hello();
	cr_assert(vs.managed);
	send_giveup(getpid());
	cr_assert_not(vs.managed);
	cr_assert(strstr(vs.reason, "stopped waiting for the helper"), "reason: %s", vs.reason);
	cr_assert_null(strchr(vs.reason, 0x1b), "a control byte reached the reason");
	cr_assert_eq(vs.state, VS_READY, "nothing was out: nothing to swap in");
	still_serving();
}

Test(shimconn, giveup_with_pages_out_starts_a_swap_in)
{
	hello();
	vs.state = VS_ACTIVE;
	send_giveup(getpid());
	cr_assert_not(vs.managed);
	cr_assert_eq(vs.state, VS_SWAP_IN_IN_PROGRESS);
}

Test(shimconn, giveup_for_another_process_is_ignored)
{
	hello();
	send_giveup(getpid() + 1);
	cr_assert(vs.managed);
}

Test(shimconn, child_without_uffd_refused_while_pages_are_out)
{
	struct vmswap_msg_hello h = hello_msg(getpid(), false);
	int osock;
	struct vs_conn *other = other_conn(&osock);

	hello();
	vs.stats.c.swapped = 3; /* some pages are only in the swap file */
	vs.state = VS_ACTIVE;
	refused_on(osock, other, &h, sizeof(h), NULL, 0, -EPERM, "a child without a uffd");
	cr_assert_eq(last_flags, 0, "told it may keep memory while pages are out");
	vs.stats.c.swapped = 0;
}

Test(shimconn, refused_while_registered_is_not_told_to_keep)
{
	struct vmswap_msg_hello h = hello_msg(getpid(), true);
	int uffd = make_uffd(O_NONBLOCK);

	for (int i = 0; i < VS_MAX_PROCS; i++)
		vs.procs[i] = (struct vs_proc){ .used = true, .pid = 0x3fff0000 + i, .uffd = -1,
						.pidfd = -1, .sock = -1, .gen = 1 };
	vs.registered = true; /* an enable has begun */
	refused(&h, sizeof(h), &uffd, 1, -EMFILE, "one process too many");
	cr_assert_eq(last_flags, 0);
	vs.registered = false;
}

static int dropped;

static void count_drop(struct vs_conn *c)
{
	(void)c;
	dropped++;
}

Test(shimconn, connections_silent_past_the_deadline_are_dropped)
{
	int osock, osock2;
	struct vs_conn *other = other_conn(&osock), *talker = other_conn(&osock2);
	struct vmswap_msg_hello h = hello_msg(getpid(), false);
	uint64_t now = other->since_ms;

	hello(); /* the VMM's connection, never dropped */
	cr_assert_eq(fx_send(osock2, &h, sizeof(h), NULL, 0), 0); /* waiting to be read */
	vs_conn_drop_silent(now + VS_CONN_HELLO_MS - 1, count_drop);
	cr_assert_eq(dropped, 0, "dropped before the deadline");
	vs_conn_drop_silent(now + VS_CONN_HELLO_MS + 1000, count_drop);
	cr_assert_eq(dropped, 1, "want only the silent connection dropped, got %d", dropped);
	(void)talker;
}

Test(shimconn, peers_outside_the_vmm_tree_are_refused)
{
	char why[VMSWAP_REASON_MAX];
	int sv[2];
	pid_t child;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	/* We are the VMM: our own peer passes. */
	cr_assert_eq(vs_conn_peer_check(sv[1], why, sizeof(why)), 0, "%s", why);
	/* Our parent as the VMM: we descend from it. */
	vs.vmm_pid = getppid();
	cr_assert_eq(vs_conn_peer_check(sv[1], why, sizeof(why)), 0, "%s", why);
	/* A child of ours as the VMM: we are not in its tree. */
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	vs.vmm_pid = child;
	cr_assert_eq(vs_conn_peer_check(sv[1], why, sizeof(why)), -EPERM);
	cr_assert(strstr(why, "is not the VMM"), "why: %s", why);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}
