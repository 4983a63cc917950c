/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The driver's VMM: maps the guest memfd, creates its userfaultfd and
 * hands both to the helper over the connection, as the shim does. Its
 * vCPUs write pages, read them back against the model and discard some
 * (MADV_REMOVE), while the helper swaps the memory out and in.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../fixture.h"
#include "tsan.h"

static struct tv_shared *sh;
static uint8_t *boot_mem, *plug_mem[TV_PLUGS];
static atomic_uint live_pages = TV_BOOT_PAGES;

static uint8_t *page_at(uint64_t pg)
{
	if (pg < TV_BOOT_PAGES)
		return boot_mem + pg * VMSWAP_PAGE_SIZE;
	pg -= TV_BOOT_PAGES;
	return plug_mem[pg / TV_PLUG_PAGES] + pg % TV_PLUG_PAGES * VMSWAP_PAGE_SIZE;
}

/* Which generation the page holds (0: zeros), or -1: none, torn. */
static int found_gen(const uint8_t *p, uint64_t pg)
{
	for (int g = 0; g <= 250; g++)
		if (fx_page_is(p, pg, (uint64_t)g))
			return g;
	return -1;
}

static void bad(uint64_t pg, const char *what)
{
	if (atomic_fetch_add(&sh->mismatches, 1) == 0)
		snprintf(sh->first_bad, sizeof(sh->first_bad),
			 "page %llu (gen %u) %s: it holds gen %d (-1: none), during step %d",
			 (unsigned long long)pg, sh->gen[pg], what, found_gen(page_at(pg), pg),
			 atomic_load(&sh->step));
}

static uint64_t next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *vcpu(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg, x = 0x9e3779b97f4a7c15ull * (id + 1);

	for (unsigned op = 0; !atomic_load(&sh->stop); op++) {
		/* Mostly the first 4 MiB: enable can move the units nobody writes. */
		uint64_t span = next(&x) % 16 ? 1024 : atomic_load(&live_pages);
		uint64_t pg = next(&x) % (span / TV_VCPUS) * TV_VCPUS + id;
		uint8_t *p = page_at(pg);
		unsigned act = (unsigned)(next(&x) % 100);

		if (act < 55) {
			uint8_t gen = (uint8_t)(sh->gen[pg] % 250 + 1);

			fx_fill_page(p, pg, gen);
			sh->gen[pg] = gen;
			atomic_fetch_add(&sh->writes, 1);
		} else if (act < 98) {
			if (!fx_page_is(p, pg, sh->gen[pg]))
				bad(pg, "read back wrong");
			atomic_fetch_add(&sh->reads, 1);
		} else {
			if (madvise(p, VMSWAP_PAGE_SIZE, MADV_REMOVE) == 0)
				sh->gen[pg] = 0;
			else
				bad(pg, strerror(errno));
			atomic_fetch_add(&sh->removes, 1);
		}
		if (op % 16 == 15)
			usleep(1000); /* leave the helper CPU time: this machine has two */
	}
	return NULL;
}

/* One request on the connection, as the shim makes it. 0 or -errno. */
static int request(int sock, const void *msg, size_t len, int fd)
{
	struct vmswap_msg_reply rep;
	int r = fx_send(sock, msg, len, &fd, fd >= 0);

	if (!r)
		r = fx_recv_reply(sock, true, &rep);
	if (!r && rep.result)
		fprintf(stderr, "tsan vmm: the helper refused: %s\n", rep.message);
	return r ? r : rep.result;
}

static int map_region(int sock, int memfd, uint8_t **mem, uint64_t off, uint64_t pages,
		      uint32_t seq)
{
	struct vmswap_msg_region_add m;

	*mem = mmap(NULL, pages * VMSWAP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
		    (off_t)off);
	if (*mem == MAP_FAILED)
		return -errno;
	m = fx_region_add((uint64_t)(uintptr_t)*mem, pages * VMSWAP_PAGE_SIZE, off, seq);
	return request(sock, &m, sizeof(m), memfd);
}

int tv_vmm_main(struct tv_shared *shared, int sock, int memfd)
{
	struct vmswap_msg_hello h = fx_hello(getpid(), getpid(), true, 1);
	int uffd = fx_uffd(O_NONBLOCK), r, failed = 0;
	pthread_t t[TV_VCPUS];

	sh = shared;
	if (uffd < 0) {
		fprintf(stderr, "tsan vmm: no userfaultfd: %s\n", strerror(-uffd));
		return 77;
	}
	r = request(sock, &h, sizeof(h), uffd);
	if (!r)
		r = map_region(sock, memfd, &boot_mem, 0, TV_BOOT_PAGES, 2);
	if (r) {
		fprintf(stderr, "tsan vmm: joining the helper: %s\n", strerror(-r));
		return 1;
	}
	for (uint64_t pg = 0; pg < TV_BOOT_PAGES; pg++) {
		if (pg % 7) { /* and every seventh page a hole */
			fx_fill_page(page_at(pg), pg, 1);
			sh->gen[pg] = 1;
		}
	}
	for (uintptr_t i = 0; i < TV_VCPUS; i++)
		if (pthread_create(&t[i], NULL, vcpu, (void *)i))
			return 1;
	atomic_store(&sh->ready, 1);
	/* Hotplug when asked: the helper grows the object while an operation runs. */
	for (int plugged = 0; !atomic_load(&sh->stop); usleep(1000)) {
		uint64_t first = TV_BOOT_PAGES + (uint64_t)plugged * TV_PLUG_PAGES;

		if (plugged == (int)TV_PLUGS || atomic_load(&sh->plug_req) <= plugged)
			continue;
		r = map_region(sock, memfd, &plug_mem[plugged], first * VMSWAP_PAGE_SIZE,
			       TV_PLUG_PAGES, 3 + (uint32_t)plugged);
		if (r) {
			fprintf(stderr, "tsan vmm: hotplug: %s\n", strerror(-r));
			failed = 1;
			break;
		}
		atomic_store(&live_pages, first + TV_PLUG_PAGES);
		atomic_store(&sh->plugged, ++plugged);
	}
	for (int i = 0; i < TV_VCPUS; i++)
		pthread_join(t[i], NULL);
	for (uint64_t pg = 0; pg < atomic_load(&live_pages); pg++)
		if (!fx_page_is(page_at(pg), pg, sh->gen[pg]))
			bad(pg, "wrong at the end");
	return failed || atomic_load(&sh->mismatches) ? 1 : 0;
}
