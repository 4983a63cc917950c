/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * build/tests/mapper (tests/progs/mapper.c) under the shim, for the
 * interposition tests; see harness.h. What the shim took is read from its
 * info lines ("guest region ADDR+LEN (memfd "NAME" ...) managed") and
 * checked against the helper's status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

/* Parse " NAME=0xADDR+0xLEN" words of a list answer. */
static void parse_list(struct h_mapper *m, const char *ans)
{
	const char *s = strchr(ans, ' ');

	m->n = 0;
	while (s && (s = strchr(s + 1, ' ')) && m->n < H_MAPPER_MAX) {
		struct h_mapping *x = &m->maps[m->n];

		cr_assert(sscanf(s + 1, "%63[^=]=%lx+%lx", x->name, &x->addr, &x->len) == 3,
			  "bad list answer: %s", ans);
		m->n++;
	}
}

/* Start bin (under build/) with the specs, under the shim plus env. */
void h_mapper_start(struct h_mapper *m, const char *bin, const char *const specs[],
			 const char *const env[])
{
	const char *argv[H_MAPPER_MAX + 2];
	int n = 0;

	argv[n++] = h_bin(bin);
	for (int i = 0; specs && specs[i]; i++)
		argv[n++] = specs[i];
	argv[n] = NULL;
	m->p = h_spawn(argv, env, false);
	parse_list(m, h_ok(m->p, "list"));
}

uint64_t h_mapper_start_guest(struct h_mapper *m, const char *const specs[],
			      const char *const env[], const char *const want[])
{
	h_require_uffd();
	h_mapper_start(m, "tests/mapper", specs, env);
	return h_mapper_taken(m, want);
}

static const struct h_mapping *mapping_at(const struct h_mapper *m, unsigned long addr)
{
	for (int i = 0; i < m->n; i++)
		if (m->maps[i].addr == addr)
			return &m->maps[i];
	return NULL;
}

uint64_t h_mapper_taken(const struct h_mapper *m, const char *const want[])
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
		const struct h_mapping *x = mapping_at(m, addr);

		cr_assert(x, "a region at %#lx (memfd %s) was taken, but mapper has no mapping there",
			  addr, name);
		for (int i = 0; i < nwant; i++)
			wanted |= !strcmp(want[i], x->name);
		cr_assert(wanted, "%s was taken as guest memory, but should not be", x->name);
		cr_assert_str_eq(name, strncmp(x->name, "anon-", 5) ? x->name : "vmswap-anon",
				 "%s taken under the name %s", x->name, name);
		cr_assert_eq(len, x->len, "%s taken with length %#lx of %#lx", x->name, len, x->len);
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
void h_mapper_cycle(const struct h_mapper *m, uint64_t guest_pages)
{
	int pid = m->p->pid;

	h_ok(m->p, "fill");
	h_ctl_ok(pid, "enable", NULL);
	cr_assert_eq(h_metric(pid, "staging_pages"), guest_pages);
	h_out(m->p, guest_pages);
	h_ok(m->p, "verify");
	h_ok(m->p, "fill");
	h_disable_verify(m->p);
}

void h_mapper_finish(struct h_mapper *m)
{
	int st;

	h_ok(m->p, "quit");
	st = h_proc_wait(m->p, H_EXIT_TIMEOUT_S);
	cr_assert(st == 0, "mapper exit status %#x", st);
	cr_assert(h_wait_rundir_gone(m->p->pid), "helper of mapper %d outlived it", m->p->pid);
}

void h_mapper_check(const char *bin, const char *const specs[], const char *const env[],
		    const char *const want[])
{
	struct h_mapper m;

	h_require_uffd();
	h_mapper_start(&m, bin, specs, env);
	h_mapper_cycle(&m, h_mapper_taken(&m, want));
	h_mapper_finish(&m);
}

/* One kind of guest mapping, alone. */
void h_mapper_one_kind(const char *spec, const char *name)
{
	const char *const env[] = { "VMSWAP_LOG=info", NULL };
	const char *const specs[] = { spec, NULL };
	const char *const want[] = { name, NULL };

	h_mapper_check("tests/mapper", specs, env, want);
}
