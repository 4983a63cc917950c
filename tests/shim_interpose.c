/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interposition: which mappings the shim takes as guest memory, however
 * the program made them, and that a swap cycle keeps their data. The
 * program is build/tests/mapper (tests/progs/mapper.c). What was taken
 * is read from the shim's info lines ("guest region ADDR+LEN (memfd
 * "NAME" ...) managed") and checked against the helper's status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(shim, .init = h_setup, .fini = h_teardown, .timeout = 180);

#define MAX_MAPS 16

struct mapping {
	char name[64];
	unsigned long addr, len;
};

struct mapper {
	struct h_proc *p;
	struct mapping maps[MAX_MAPS]; /* from "list" */
	int n;
};

/* Parse " NAME=0xADDR+0xLEN" words of a list answer. */
static void parse_list(struct mapper *m, const char *ans)
{
	const char *s = strchr(ans, ' ');

	m->n = 0;
	while (s && (s = strchr(s + 1, ' ')) && m->n < MAX_MAPS) {
		struct mapping *x = &m->maps[m->n];

		cr_assert(sscanf(s + 1, "%63[^=]=%lx+%lx", x->name, &x->addr, &x->len) == 3,
			  "bad list answer: %s", ans);
		m->n++;
	}
}

/* Start bin (under build/) with the specs, under the shim plus env. */
static void mapper_start(struct mapper *m, const char *bin, const char *const specs[],
			 const char *const env[])
{
	const char *argv[MAX_MAPS + 2];
	int n = 0;

	argv[n++] = h_bin(bin);
	for (int i = 0; specs && specs[i]; i++)
		argv[n++] = specs[i];
	argv[n] = NULL;
	m->p = h_spawn(argv, env, false);
	parse_list(m, h_ok(m->p, "list"));
}

static const struct mapping *mapping_named(const struct mapper *m, const char *name)
{
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->maps[i].name, name))
			return &m->maps[i];
	cr_assert_fail("mapper has no mapping %s", name);
	return NULL;
}

/*
 * Exactly the memfds named in want (NULL-ended) were taken: one shim
 * "managed" line each, at the address mapper reports, and the helper
 * shows that many regions and their pages. Returns the guest pages.
 */
static uint64_t assert_taken(const struct mapper *m, const char *const want[])
{
	char *err = h_proc_stderr(m->p), *line, *save = NULL;
	uint64_t pages = 0;
	int nwant = 0, seen = 0;

	while (want[nwant])
		nwant++;
	for (line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long addr, len;
		char name[64];
		bool wanted = false;
		const char *g = strstr(line, "vmswap: guest region ");

		if (!g || !strstr(line, ") managed"))
			continue;
		cr_assert(sscanf(g, "vmswap: guest region %lx+%lx (memfd \"%63[^\"]\"", &addr, &len,
				 name) == 3, "unexpected shim line: %s", line);
		for (int i = 0; i < nwant; i++)
			wanted |= !strcmp(want[i], name);
		cr_assert(wanted, "memfd %s was taken as guest memory, but should not be", name);
		const struct mapping *x = mapping_named(m, name);

		cr_assert_eq(addr, x->addr, "%s taken at %#lx, mapped at %#lx", name, addr, x->addr);
		cr_assert_eq(len, x->len, "%s taken with length %#lx of %#lx", name, len, x->len);
		pages += len / 4096;
		seen++;
	}
	free(err);
	cr_assert_eq(seen, nwant, "%d guest regions taken, want %d", seen, nwant);
	if (nwant) {
		h_wait_u64_eq(m->p->pid, "regions", (uint64_t)nwant);
		cr_assert_eq(h_metric(m->p->pid, "guest_pages"), pages);
	} else {
		cr_assert(!h_rundir_exists(m->p->pid), "a helper started for no guest memory");
	}
	return pages;
}

/* fill, enable, out, verify, disable, verify; guest pages all in the file. */
static void cycle(const struct mapper *m, uint64_t guest_pages)
{
	int pid = m->p->pid;
	char *js;

	h_ok(m->p, "fill");
	h_ctl_ok(pid, "enable", NULL);
	cr_assert_eq(h_metric(pid, "staging_pages"), guest_pages);
	h_ctl_ok(pid, "out", "--wait", NULL);
	js = h_wait_state(pid, "Active");
	cr_assert_eq(h_json_u64(js, "swap_pages"), guest_pages);
	free(js);
	h_ok(m->p, "verify");
	h_ok(m->p, "fill");
	h_ctl_ok(pid, "disable", "--wait", NULL);
	free(h_wait_state(pid, "Ready"));
	h_ok(m->p, "verify");
}

static void finish(struct mapper *m)
{
	int st;

	h_ok(m->p, "quit");
	st = h_proc_wait(m->p, H_EXIT_TIMEOUT_S);
	cr_assert(st == 0, "mapper exit status %#x", st);
	cr_assert(h_wait_rundir_gone(m->p->pid), "helper of mapper %d outlived it", m->p->pid);
}

/* One kind of guest mapping, alone. */
static void one_kind(const char *spec, const char *name)
{
	const char *const env[] = { "VMSWAP_LOG=info", NULL };
	const char *const specs[] = { spec, NULL };
	const char *const want[] = { name, NULL };
	struct mapper m;

	h_require_uffd();
	mapper_start(&m, "tests/mapper", specs, env);
	cycle(&m, assert_taken(&m, want));
	finish(&m);
}

Test(shim, memfd_create_then_mmap_is_guest)
{
	one_kind("memfd:8M", "guest-memfd");
}

Test(shim, mmap64_is_guest)
{
	one_kind("mmap64:8M", "guest-mmap64");
}

Test(shim, raw_syscall_memfd_is_guest)
{
	one_kind("raw:8M", "guest-raw");
}

/* In the loader's "calling init:" trace, a's constructor ran before b's. */
static void assert_init_order(const struct h_proc *p, const char *a, const char *b)
{
	char *err = h_proc_stderr(p), *line, *save = NULL;
	int pos = 0, pa = 0, pb = 0;

	for (line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strstr(line, "calling init:"))
			continue;
		pos++;
		if (strstr(line, a) && !pa)
			pa = pos;
		if (strstr(line, b) && !pb)
			pb = pos;
	}
	free(err);
	cr_assert(pa && pb, "no loader init trace for %s and %s (LD_DEBUG ignored?)", a, b);
	cr_assert_lt(pa, pb, "%s's constructor should run before %s's: this test needs it", a, b);
}

Test(shim, constructor_mapping_before_shim_init_ld_preload)
{
	char preload[1024];
	const char *const env[] = { "VMSWAP_LOG=info", "LD_DEBUG=files", preload, NULL };
	const char *const want[] = { "guest-early", NULL };
	struct mapper m;

	h_require_uffd();
	/* The loader runs the constructors of preloads last to first. */
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s %s", h_env.shim,
		 h_bin("tests/libearly.so"));
	mapper_start(&m, "tests/mapper", NULL, env);
	assert_init_order(m.p, "libearly.so", "libvmswap.so");
	cycle(&m, assert_taken(&m, want));
	finish(&m);
}

Test(shim, constructor_mapping_in_dt_needed_library)
{
	const char *const env[] = { "VMSWAP_LOG=info", "LD_DEBUG=files", NULL };
	const char *const specs[] = { "memfd:4M", NULL };
	const char *const want[] = { "guest-early", "guest-memfd", NULL };
	struct mapper m;

	h_require_uffd();
	mapper_start(&m, "tests/mapper-needed", specs, env);
	assert_init_order(m.p, "libearly.so", "libvmswap.so");
	cycle(&m, assert_taken(&m, want));
	finish(&m);
}

Test(shim, non_guest_mappings_are_not_taken)
{
	const char *const env[] = { "VMSWAP_LOG=debug", "VMSWAP_MIN_SIZE=1M",
				    "VMSWAP_MATCH=guest-*", NULL };
	const char *const specs[] = {
		"memfd:8M",                /* the one guest region */
		"private:8M",              /* MAP_PRIVATE */
		"exec:8M",                 /* PROT_EXEC */
		"memfd:1020K:guest-small", /* below VMSWAP_MIN_SIZE */
		"memfd:8M:other-nomatch",  /* name does not match VMSWAP_MATCH */
		"shmfile:8M:guest-shm",    /* shmem, but not a memfd */
		NULL,
	};
	const char *const want[] = { "guest-memfd", NULL };
	struct mapper m;
	char *err;

	h_require_uffd();
	mapper_start(&m, "tests/mapper", specs, env);
	err = h_proc_stderr(m.p);
	cr_assert(strstr(err, "\"other-nomatch\" does not match guest-*"),
		  "debug log should say why other-nomatch was skipped:\n%s", err);
	free(err);
	cycle(&m, assert_taken(&m, want));
	finish(&m);
}

Test(shim, no_guest_mapping_starts_no_helper)
{
	const char *const env[] = { "VMSWAP_LOG=info", "VMSWAP_MIN_SIZE=4M", NULL };
	const char *const specs[] = { "private:8M", "exec:8M", "memfd:2M:guest-small",
				      "shmfile:8M", NULL };
	const char *const want[] = { NULL };
	struct mapper m;

	mapper_start(&m, "tests/mapper", specs, env);
	assert_taken(&m, want);
	h_ok(m.p, "fill");
	h_ok(m.p, "verify");
	finish(&m);
}

Test(shim, min_size_is_a_lower_bound)
{
	const char *const env[] = { "VMSWAP_LOG=info", "VMSWAP_MIN_SIZE=2M", NULL };
	const char *const specs[] = { "memfd:2M:guest-exact", "memfd:2044K:guest-below", NULL };
	const char *const want[] = { "guest-exact", NULL };
	struct mapper m;

	h_require_uffd();
	mapper_start(&m, "tests/mapper", specs, env);
	cycle(&m, assert_taken(&m, want));
	finish(&m);
}

Test(shim, munmap_drops_the_region)
{
	const char *const env[] = { "VMSWAP_LOG=info", NULL };
	const char *const specs[] = { "memfd:4M:guest-a", "memfd:8M:guest-b", NULL };
	const char *const want[] = { "guest-a", "guest-b", NULL };
	struct mapper m;

	h_require_uffd();
	mapper_start(&m, "tests/mapper", specs, env);
	assert_taken(&m, want);
	h_ok(m.p, "unmap guest-a");
	h_wait_u64_eq(m.p->pid, "regions", 1);
	/* guest-a's memfd never held data: only guest-b's pages can move. */
	cycle(&m, 8u << 20 >> 12);
	finish(&m);
}

Test(shim, every_kind_together_full_cycle)
{
	char preload[1024];
	const char *const env[] = { "VMSWAP_LOG=info", "VMSWAP_MATCH=guest-*", preload, NULL };
	const char *const specs[] = { "memfd:8M", "mmap64:4M", "raw:6M", "private:4M", "exec:4M",
				      "memfd:512K:guest-small", "memfd:4M:other-nomatch",
				      "shmfile:4M", NULL };
	const char *const want[] = { "guest-early", "guest-memfd", "guest-mmap64", "guest-raw",
				     NULL };
	struct mapper m;

	h_require_uffd();
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s %s", h_env.shim,
		 h_bin("tests/libearly.so"));
	mapper_start(&m, "tests/mapper", specs, env);
	cycle(&m, assert_taken(&m, want));
	finish(&m);
}
