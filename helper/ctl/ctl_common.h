/* SPDX-License-Identifier: BSD-3-Clause */
/* Declarations shared by the vmswapctl modules (helper/ctl/). */
#ifndef VS_CTL_COMMON_H
#define VS_CTL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../state/cmd.h"
#include "../sys/memcg.h"

/* Exit codes: part of the CLI contract, scripts and tests rely on them. */
enum vs_ctl_exit {
	VS_EXIT_OK = 0,
	VS_EXIT_REFUSED = 1,  /* the helper answered ok=false */
	VS_EXIT_USAGE = 2,
	VS_EXIT_NOHELPER = 3, /* no such VMM, helper not running, no run dir */
	VS_EXIT_TIMEOUT = 4,
	VS_EXIT_FAILED = 5,   /* the operation ended in state Failed */
};

#define VS_CTL_DEFAULT_TIMEOUT_S 600.0

struct vs_ctl_opts {
	int pid;          /* 0: the only VMM under the run root */
	enum vs_cmd_verb verb;
	bool wait;
	bool json;
	double timeout_s;
	enum vs_cmd_keep keep; /* disable --keep= */
};

/* A VMM whose helper was alive when we looked. */
struct vs_ctl_target {
	int vmm_pid;
	pid_t helper_pid;
};

/* ctl_util.c */
void vs_ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vs_ctl_oneline(char *s);
double vs_ctl_now(void);
void vs_ctl_sleep(double seconds);

/* ctl_target.c */
/* The VMM pids under the run root; 0 or an exit code after a message. */
int vs_ctl_run_pids(int **pids, size_t *n);
int vs_ctl_list_pids(int **pids, size_t *n);
int vs_ctl_read_helper_pid(int vmm_pid, pid_t *out);
bool vs_ctl_alive(pid_t pid);
int vs_ctl_target_find(int pid, struct vs_ctl_target *t);
int vs_ctl_target_check(struct vs_ctl_target *t);
int vs_ctl_target_open(int pid, struct vs_ctl_target *t);

/* ctl_roots.c: the run roots searched, and VMMs by name */
int vs_ctl_roots(char roots[][256], int max);
void vs_ctl_use_root(const char *root);
int vs_ctl_use_root_of(int pid);
int vs_ctl_vmm_name(int pid, char *name, size_t n);
/* The pid of the VMM named @name, its root in use; or an exit code after a message. */
int vs_ctl_find_name(const char *name, int *pid);

/* ctl_send.c */
int vs_ctl_new_id(int vmm_pid, char *id, size_t n);
int vs_ctl_send(const struct vs_ctl_target *t, enum vs_cmd_verb verb, const char *id,
		double deadline);
int vs_ctl_send_error(const struct vs_ctl_target *t, enum vs_cmd_verb verb, int err);
/* keep= for the lines vs_ctl_send() writes from now on (disable --keep). */
void vs_ctl_send_keep(enum vs_cmd_keep keep);

/* ctl_poll.c */
typedef bool (*vs_ctl_done_fn)(const char *json, void *arg);
int vs_ctl_poll(const struct vs_ctl_target *t, double deadline, vs_ctl_done_fn done,
		void *arg, char **json_out);

/* ctl_death.c: why the helper died under a command (the VMM too? the OOM killer?) */
struct vs_ctl_watch {
	int vmm_pid;
	struct vs_memcg cg;   /* the VMM's memory cgroup (version 0: none found) */
	uint64_t kills;       /* its OOM kills before the command */
	bool have_kills;
	int kmsg;             /* /dev/kmsg from its end when the watch began, or -1 */
};
/* Before sending the command. */
void vs_ctl_watch_start(struct vs_ctl_watch *w, int vmm_pid);
void vs_ctl_watch_end(struct vs_ctl_watch *w);
/* The helper died before @what ("answering enable"): say so, and why if known. */
void vs_ctl_report_death(struct vs_ctl_watch *w, pid_t helper_pid, const char *what);

/* ctl_run.c, ctl_status.c, ctl_list.c: each returns an exit code. */
int vs_ctl_run(const struct vs_ctl_opts *o);
int vs_ctl_status(const struct vs_ctl_opts *o);
int vs_ctl_list(void);

/* ctl_table.c */
void vs_ctl_print_table(FILE *f, const char *json, pid_t helper_pid, bool alive);

#endif
