/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interposition: which memfd mappings the shim takes as guest memory,
 * however the program made them (memfd_create or the raw system call,
 * mmap or mmap64, in main or in a library constructor that runs before
 * the shim's), which it must leave alone, and that a swap cycle keeps
 * the data (build/tests/mapper, tests/progs/mapper.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(shim, .init = h_setup, .fini = h_teardown, .timeout = 180);

Test(shim, memfd_create_then_mmap_is_guest)
{
	h_mapper_one_kind("memfd:8M", "guest-memfd");
}

Test(shim, mmap64_is_guest)
{
	h_mapper_one_kind("mmap64:8M", "guest-mmap64");
}

Test(shim, raw_syscall_memfd_is_guest)
{
	h_mapper_one_kind("raw:8M", "guest-raw");
}

/*
 * A mapping that ends inside a 2 MiB unit of a larger memfd: enable (with
 * a staging copy) or out (staged in place) frees whole units, but never
 * the memfd's data past the mapping (mapper's verify reads it back with
 * pread).
 */
static void tail_cycle(const char *mode)
{
	const char *const env[] = { "VMSWAP_LOG=info", mode, NULL };
	bool in_place = !strcmp(mode, "VMSWAP_STAGING=in-place");
	const char *const specs[] = { "memfd-tail:3M", NULL };
	const char *const want[] = { "guest-memfd-tail", NULL };
	struct h_mapper m;
	uint64_t pages;

	h_require_uffd();
	h_mapper_start(&m, "tests/mapper", specs, env);
	pages = h_mapper_taken(&m, want);
	cr_assert_eq(pages, 768);
	h_ok(m.p, "fill");
	h_ctl_ok(m.p->pid, "enable", NULL);
	/* The first unit goes; the second, shared with the tail's data, stays. */
	cr_assert_eq(h_metric(m.p->pid, "staging_pages"), in_place ? 768 : 512);
	h_out(m.p, 512);
	cr_assert_eq(h_metric(m.p->pid, "staging_pages"), 0);
	cr_assert_eq(h_metric(m.p->pid, "swap_pages"), 512);
	h_ok(m.p, "verify");
	h_ok(m.p, "fill");
	h_disable_verify(m.p);
	h_mapper_finish(&m);
}

Test(shim, memfd_data_past_the_mapping_is_left_alone)
{
	tail_cycle("VMSWAP_STAGING=in-place");
}

Test(shim, memfd_data_past_the_mapping_is_left_alone_with_a_staging_copy)
{
	tail_cycle("VMSWAP_STAGING=copy");
}

Test(shim, memfd_data_past_the_mapping_is_left_alone_copying_frozen)
{
	tail_cycle("VMSWAP_PRECOPY=0");
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

/* bin maps guest-early in libearly.so's constructor, before the shim's ran;
 * env must hold LD_DEBUG=files. It is taken with the others in want. */
static void early_mapping_taken(const char *bin, const char *const specs[],
				const char *const env[], const char *const want[])
{
	struct h_mapper m;

	h_require_uffd();
	h_mapper_start(&m, bin, specs, env);
	assert_init_order(m.p, "libearly.so", "libvmswap.so");
	h_mapper_cycle(&m, h_mapper_taken(&m, want));
	h_mapper_finish(&m);
}

Test(shim, constructor_mapping_before_shim_init_ld_preload)
{
	char preload[1024];
	const char *const env[] = { "VMSWAP_LOG=info", "LD_DEBUG=files", preload, NULL };
	const char *const want[] = { "guest-early", NULL };

	/* The loader runs the constructors of preloads last to first. */
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s %s", h_env.shim,
		 h_bin("tests/libearly.so"));
	early_mapping_taken("tests/mapper", NULL, env, want);
}

Test(shim, constructor_mapping_in_dt_needed_library)
{
	const char *const env[] = { "VMSWAP_LOG=info", "LD_DEBUG=files", NULL };
	const char *const specs[] = { "memfd:4M", NULL };
	const char *const want[] = { "guest-early", "guest-memfd", NULL };

	early_mapping_taken("tests/mapper-needed", specs, env, want);
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
		"anon-plain:8M",           /* anonymous, as malloc maps it */
		NULL,
	};
	const char *const want[] = { "guest-memfd", NULL };
	struct h_mapper m;
	char *err;

	h_require_uffd();
	h_mapper_start(&m, "tests/mapper", specs, env);
	err = h_proc_stderr(m.p);
	cr_assert(strstr(err, "\"other-nomatch\" does not match guest-*"),
		  "debug log should say why other-nomatch was skipped:\n%s", err);
	free(err);
	h_mapper_cycle(&m, h_mapper_taken(&m, want));
	h_mapper_finish(&m);
}

Test(shim, no_guest_mapping_starts_no_helper)
{
	const char *const env[] = { "VMSWAP_LOG=info", "VMSWAP_MIN_SIZE=4M", NULL };
	const char *const specs[] = { "private:8M", "exec:8M", "memfd:2M:guest-small",
				      "shmfile:8M", "anon-plain:8M", NULL };
	const char *const want[] = { NULL };
	struct h_mapper m;

	h_mapper_start(&m, "tests/mapper", specs, env);
	h_mapper_taken(&m, want);
	h_ok(m.p, "fill");
	h_ok(m.p, "verify");
	h_mapper_finish(&m);
}

Test(shim, min_size_is_a_lower_bound)
{
	const char *const env[] = { "VMSWAP_LOG=info", "VMSWAP_MIN_SIZE=2M", NULL };
	const char *const specs[] = { "memfd:2M:guest-exact", "memfd:2044K:guest-below", NULL };
	const char *const want[] = { "guest-exact", NULL };

	h_mapper_check("tests/mapper", specs, env, want);
}

Test(shim, munmap_drops_the_region)
{
	const char *const env[] = { "VMSWAP_LOG=info", NULL };
	const char *const specs[] = { "memfd:4M:guest-a", "memfd:8M:guest-b", NULL };
	const char *const want[] = { "guest-a", "guest-b", NULL };
	struct h_mapper m;

	h_mapper_start_guest(&m, specs, env, want);
	h_ok(m.p, "unmap guest-a");
	h_wait_u64_eq(m.p->pid, "regions", 1);
	/* guest-a's memfd never held data: only guest-b's pages can move. */
	h_mapper_cycle(&m, 8u << 20 >> 12);
	h_mapper_finish(&m);
}

Test(shim, every_kind_together_full_cycle)
{
	char preload[1024];
	const char *const env[] = { "VMSWAP_LOG=info", "VMSWAP_MATCH=guest-*", preload, NULL };
	const char *const specs[] = { "memfd:8M", "mmap64:4M", "raw:6M", "private:4M", "exec:4M",
				      "memfd:512K:guest-small", "memfd:4M:other-nomatch",
				      "shmfile:4M", "anon-noreserve:4M", "anon-plain:4M", NULL };
	const char *const want[] = { "guest-early", "guest-memfd", "guest-mmap64", "guest-raw",
				     "anon-noreserve", NULL };

	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s %s", h_env.shim,
		 h_bin("tests/libearly.so"));
	h_mapper_check("tests/mapper", specs, env, want);
}
