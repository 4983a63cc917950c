/* SPDX-License-Identifier: BSD-3-Clause */
/* Swap steps on any program under the shim that answers "verify"; see harness.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "harness.h"

void h_swap_out_at(const char *file, int line, struct h_proc *p)
{
	h_ctl_ok_at(file, line, p->pid, "enable", NULL);
	h_out_at(file, line, p, H_ANY);
}

void h_out_at(const char *file, int line, struct h_proc *p, uint64_t swap_pages)
{
	char *js;

	h_ctl_ok_at(file, line, p->pid, "out", "--wait", NULL);
	js = h_wait_state(p->pid, "Active");
	if (swap_pages != H_ANY)
		cr_assert_eq(h_json_u64(js, "swap_pages"), swap_pages,
			     "%s:%d: out should leave %llu pages in the swap file:\n%s", file, line,
			     (unsigned long long)swap_pages, js);
	free(js);
}

void h_disable_at(const char *file, int line, struct h_proc *p)
{
	h_ctl_ok_at(file, line, p->pid, "disable", "--wait", NULL);
	free(h_wait_state(p->pid, "Ready"));
}

void h_wait_ready_empty(int pid)
{
	char *js = h_wait_state(pid, "Ready");

	cr_assert_eq(h_json_u64(js, "staging_pages"), 0, "pid %d: pages left in staging:\n%s",
		     pid, js);
	cr_assert_eq(h_json_u64(js, "swap_pages"), 0, "pid %d: pages left in the swap file:\n%s",
		     pid, js);
	free(js);
}

void h_disable_verify_at(const char *file, int line, struct h_proc *p)
{
	h_disable_at(file, line, p);
	h_ok_at(file, line, p, "verify");
}

void h_disable_verify_empty_at(const char *file, int line, struct h_proc *p)
{
	h_ctl_ok_at(file, line, p->pid, "disable", "--wait", NULL);
	h_wait_ready_empty(p->pid);
	h_ok_at(file, line, p, "verify");
}

void h_out_verify_disable_verify_at(const char *file, int line, struct h_proc *p)
{
	h_out_at(file, line, p, H_ANY);
	h_ok_at(file, line, p, "verify");
	h_disable_verify_at(file, line, p);
}

void h_swap_out_verify_disable_at(const char *file, int line, struct h_proc *p)
{
	h_swap_out_at(file, line, p);
	h_ok_at(file, line, p, "verify");
	h_disable_at(file, line, p);
}

void h_enable_staged_at(const char *file, int line, struct h_proc *p, uint64_t n)
{
	char *js;

	h_ctl_ok_at(file, line, p->pid, "enable", NULL);
	js = h_status_fresh(p->pid);
	cr_assert_eq(h_json_u64(js, "pages"), n,
		     "%s:%d: enable should have moved %llu pages (state_transition.pages):\n%s",
		     file, line, (unsigned long long)n, js);
	cr_assert_eq(h_json_u64(js, "staging_pages"), n, "%s:%d: staging should hold %llu pages:\n%s",
		     file, line, (unsigned long long)n, js);
	free(js);
}

void h_ok_delta_at(const char *file, int line, struct h_proc *p, const char *metric,
		   uint64_t want, const char *fmt, ...)
{
	char cmd[512];
	uint64_t before, got;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	before = h_metric(p->pid, metric);
	h_ok_at(file, line, p, "%s", cmd);
	got = h_metric(p->pid, metric) - before;
	cr_assert_eq(got, want, "%s:%d: '%s' changed %s by %llu, want %llu", file, line, cmd, metric,
		     (unsigned long long)got, (unsigned long long)want);
}

void h_verify_sources_at(const char *file, int line, struct h_proc *p, const char *cmd,
			 uint64_t zeroed, uint64_t from_file)
{
	uint64_t z0 = h_metric(p->pid, "zeroed_pages");
	uint64_t f0 = h_metric(p->pid, "copied_from_file_pages");

	h_ok_at(file, line, p, "%s", cmd);
	cr_assert_eq(h_metric(p->pid, "zeroed_pages") - z0, zeroed,
		     "%s:%d: '%s' should have faulted in %llu zero pages", file, line, cmd,
		     (unsigned long long)zeroed);
	cr_assert_eq(h_metric(p->pid, "copied_from_file_pages") - f0, from_file,
		     "%s:%d: '%s' should have copied %llu pages from the file", file, line, cmd,
		     (unsigned long long)from_file);
}
