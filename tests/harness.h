/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test harness for the end-to-end and interposition tests (Criterion).
 *
 * Every test runs in its own Criterion worker process. h_setup() (the
 * suites' .init) makes a private temp dir with run/ and swap/ under it
 * and points VMSWAP_RUN_DIR, VMSWAP_SWAP_DIR and VMSWAP_MIN_SIZE=1M at
 * it; h_teardown() (.fini) kills whatever the test started and is still
 * running, waits for the helpers to go, and removes the temp dir. A
 * child is also started with PR_SET_PDEATHSIG, so even a test killed by
 * a timeout leaves no VMM behind (the helper follows its VMM).
 *
 * Functions named h_*_ok and the h_status/h_wait_* family assert (with
 * cr_assert) and so end the test on failure; the others return 0/-errno.
 * Binaries are found under $VMSWAP_BUILD_DIR, default "build" (tests run
 * from the top directory). To debug a failure: VMSWAP_TEST_LOG=info (or
 * debug) sets VMSWAP_LOG for the children, VMSWAP_TEST_KEEP=1 keeps the
 * temp dir with their stderr files (procN.stderr).
 */
#ifndef VS_TEST_HARNESS_H
#define VS_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Generous: the suite must survive a loaded 2-core machine. */
#define H_CMD_TIMEOUT_S 120.0   /* one toyvmm/mapper command */
#define H_CTL_TIMEOUT_S 120.0   /* one vmswapctl run */
#define H_STATE_TIMEOUT_S 60.0  /* waiting for a state or a metric */
#define H_EXIT_TIMEOUT_S 20.0   /* a process or helper going away */
#define H_ANSWER_MAX 1024

/*
 * For a VMM's env: enable copies every page to a staging memfd and
 * punches guest memory, as before staging in place became the default.
 */
#define H_STAGING_COPY "VMSWAP_STAGING=copy"

/* ---- harness.c: per-test environment ---- */

struct h_env {
	char dir[256];   /* the test's temp dir */
	char run[300];   /* VMSWAP_RUN_DIR */
	char swap[300];  /* VMSWAP_SWAP_DIR */
	char build[256]; /* absolute build dir */
	char shim[300];  /* absolute path of libvmswap.so */
};
extern struct h_env h_env;

void h_setup(void);
void h_teardown(void);

/* Skip (never pass) when this kernel/user cannot create a userfaultfd. */
void h_require_uffd(void);
/* Skip the test, cleaning up first: Criterion runs no .fini after a skip. */
#define h_skip(...)                         \
	do {                                \
		h_teardown();               \
		cr_skip_test(__VA_ARGS__);  \
	} while (0)

/* "<build>/<name>", in one of 4 rotating static buffers. */
const char *h_bin(const char *name);

double h_now(void);
void h_nap_ms(unsigned ms);
/* Entries of directory path other than . and ..; asserts it can be read. */
int h_dir_entries(const char *path);

/* ---- harness_proc.c: child processes ---- */

/* A child speaking the line protocol: one command line in, one answer line out. */
struct h_proc {
	pid_t pid;
	int in_fd, out_fd;
	char errpath[320];        /* its stderr (and its helper's) goes here */
	char buf[4096];
	size_t have;
	char last[H_ANSWER_MAX];  /* the last answer, without '\n' */
	bool reaped;
	int wstatus;
};

/*
 * Start argv[0] (a path) with LD_PRELOAD=<shim> unless no_shim. env lists
 * overrides on top of our environment: "K=V" sets, "K" unsets; NULL-ended,
 * may be NULL; an "LD_PRELOAD=..." there replaces ours. stdin and stdout
 * are pipes, stderr a file. Asserts on failure. The harness owns the proc.
 */
struct h_proc *h_spawn(const char *const argv[], const char *const env[], bool no_shim);

/* Send one command (no '\n'), read one answer into p->last. 0, -ETIMEDOUT, -EPIPE... */
int h_cmd(struct h_proc *p, double timeout_s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The two halves of h_cmd, for a command left running while the test does
 * other things: send one command line; read the next answer into p->last. */
int h_send(struct h_proc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int h_recv(struct h_proc *p, double timeout_s);
/* The answer to fmt, which must start with "ok"; asserts, returns p->last.
 * A macro so that a failure names the test's line. */
#define h_ok(p, ...) h_ok_at(__FILE__, __LINE__, p, __VA_ARGS__)
const char *h_ok_at(const char *file, int line, struct h_proc *p, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Wait for exit; returns the waitpid status, or -ETIMEDOUT. */
int h_proc_wait(struct h_proc *p, double timeout_s);
void h_proc_kill(struct h_proc *p, int sig);
/* Its stderr so far (malloc'd, NUL-terminated; "" when none). */
char *h_proc_stderr(const struct h_proc *p);
/* Lines of text containing needle. */
int h_count_lines(const char *text, const char *needle);

/* Every process a test started, for h_teardown. */
#define H_MAX_PROCS 16
extern struct h_proc *h_procs[H_MAX_PROCS];
extern int h_nprocs;

/* ---- harness_ctl.c: vmswapctl ---- */

struct h_ctl {
	int rc;            /* exit code; 128+sig when killed; -1 timeout */
	char out[8192];
	char err[8192];
};

/* Run build/vmswapctl with the NULL-ended args. Asserts it could run. */
void h_ctl_run(struct h_ctl *c, const char *arg, ...) __attribute__((sentinel));
/* Same, with "-p <pid>" first. */
void h_ctl_pid(struct h_ctl *c, int pid, const char *arg, ...) __attribute__((sentinel));
/* "-p <pid> args..." must exit 0; returns its stdout (static, reused). */
#define h_ctl_ok(pid, ...) h_ctl_ok_at(__FILE__, __LINE__, pid, __VA_ARGS__)
const char *h_ctl_ok_at(const char *file, int line, int pid, const char *arg, ...)
	__attribute__((sentinel));

/* ---- harness_status.c: status.json, the control FIFO, the run dir ---- */

/* status.json as published now (malloc'd). Asserts it can be read. */
char *h_status(int pid);
/* Ask the helper to republish (over the FIFO) and return the fresh one. */
char *h_status_fresh(int pid);
/*
 * The same for failure messages after a wait timed out: NULL when the
 * helper did not answer within 5 s, never asserts. If it shows what was
 * waited for, the helper had got there without publishing it.
 */
char *h_status_nudged(int pid);
/*
 * One line per thread of @pid into @out: "tid comm state wchan", and
 * " | kernel stack" with @stack. Returns the length, 0 when @pid is gone.
 */
size_t h_thread_lines(pid_t pid, bool stack, char *out, size_t n);
uint64_t h_json_u64(const char *json, const char *key);
void h_json_str(const char *json, const char *key, char *buf, size_t n);
/* "state" of json must be state. */
void h_assert_state(const char *json, const char *state);
/* One metric from a fresh status. */
uint64_t h_metric(int pid, const char *key);
/* Poll until "state" == state; returns that status (malloc'd). */
char *h_wait_state(int pid, const char *state);
/* Poll until key == want. */
void h_wait_u64_eq(int pid, const char *key, uint64_t want);

/* Raw bytes into <run>/<pid>/control. 0 or -errno. */
int h_fifo_write_n(int pid, const char *data, size_t len);
int h_fifo_write(int pid, const char *data);
/* Wait for the reply with that id; returns its ok, msg gets its message. */
bool h_reply_wait(int pid, const char *id, char *msg, size_t n);
/* Send line (no '\n') over the FIFO and wait for reply id; returns its ok. */
bool h_fifo_reply(int pid, const char *line, const char *id, char *msg, size_t n);

bool h_rundir_exists(int pid);
/* true once <run>/<pid> is gone (within H_EXIT_TIMEOUT_S). */
bool h_wait_rundir_gone(int pid);
pid_t h_helper_pid(int pid);
bool h_alive(pid_t pid);
/* true once pid is gone or a zombie (within H_EXIT_TIMEOUT_S). */
bool h_wait_dead(pid_t pid);

/*
 * ---- harness_swap.c: swap steps on any program under the shim ----
 * p is toyvmm's, mapper's or exec-vmm's h_proc (its pid is the VMM's);
 * "verify" is the program's own check of every byte against its model.
 * Macros, so that a failure names the test's line.
 */
/* enable, then out --wait: state Active. */
#define h_swap_out(p) h_swap_out_at(__FILE__, __LINE__, p)
/* out --wait (from Pending): state Active, with swap_pages pages in the
 * swap file (not checked when H_ANY). */
#define h_out(p, swap_pages) h_out_at(__FILE__, __LINE__, p, swap_pages)
#define H_ANY UINT64_MAX
/* disable --wait: state Ready. */
#define h_disable(p) h_disable_at(__FILE__, __LINE__, p)
/* disable --wait, state Ready, then verify. */
#define h_disable_verify(p) h_disable_verify_at(__FILE__, __LINE__, p)
/* The same, and Ready with nothing left in staging or in the swap file. */
#define h_disable_verify_empty(p) h_disable_verify_empty_at(__FILE__, __LINE__, p)
/* From Pending: out --wait (Active), verify (every page faults back),
 * disable --wait (Ready), verify. */
#define h_out_verify_disable_verify(p) h_out_verify_disable_verify_at(__FILE__, __LINE__, p)
/* enable, out --wait (Active), verify, disable --wait (Ready). */
#define h_swap_out_verify_disable(p) h_swap_out_verify_disable_at(__FILE__, __LINE__, p)
/* enable, which must move exactly n pages (state_transition.pages), all
 * of them to staging (staging_pages == n). */
#define h_enable_staged(p, n) h_enable_staged_at(__FILE__, __LINE__, p, n)
/* The command (printf-style) answers ok, and changes metric by exactly want. */
#define h_ok_delta(p, metric, want, ...) \
	h_ok_delta_at(__FILE__, __LINE__, p, metric, want, __VA_ARGS__)
/* cmd (verify, kvm-verify) answers ok, having faulted in exactly zeroed
 * zero pages and copied from_file pages from the swap file. */
#define h_verify_sources(p, cmd, zeroed, from_file) \
	h_verify_sources_at(__FILE__, __LINE__, p, cmd, zeroed, from_file)
/* Poll until "state" is Ready, with nothing left in staging or in the file. */
void h_wait_ready_empty(int pid);

void h_swap_out_at(const char *file, int line, struct h_proc *p);
void h_out_at(const char *file, int line, struct h_proc *p, uint64_t swap_pages);
void h_disable_at(const char *file, int line, struct h_proc *p);
void h_disable_verify_at(const char *file, int line, struct h_proc *p);
void h_disable_verify_empty_at(const char *file, int line, struct h_proc *p);
void h_out_verify_disable_verify_at(const char *file, int line, struct h_proc *p);
void h_swap_out_verify_disable_at(const char *file, int line, struct h_proc *p);
void h_enable_staged_at(const char *file, int line, struct h_proc *p, uint64_t n);
void h_verify_sources_at(const char *file, int line, struct h_proc *p, const char *cmd,
			 uint64_t zeroed, uint64_t from_file);
void h_ok_delta_at(const char *file, int line, struct h_proc *p, const char *metric,
		   uint64_t want, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- harness_vm.c: the toy VMM ---- */

struct h_vm {
	struct h_proc *p;
	int pid;
	uint64_t pages;   /* guest pages (4 KiB) */
	unsigned regions;
	unsigned kills;   /* helpers the test killed: h_vm_finish wants that many restarts */
};

/*
 * Start toyvmm with "--threads 2" and the space-separated extra args.
 * When managed, skip the test if no userfaultfd can be made, and wait
 * until the helper published all regions, managed. Skips when toyvmm
 * exits 77 (--kvm without a usable KVM), with toyvmm's reason.
 */
struct h_vm *h_vm_start(const char *args, const char *const env[], bool managed);
/* The same for a toyvmm started otherwise (under setpriv, say): "info", then wait. */
struct h_vm *h_vm_adopt(struct h_proc *p, bool managed);
/* Managed, then "fill": every page holds data. */
struct h_vm *h_vm_start_filled(const char *args, const char *const env[]);
/* Send quit, expect exit 0, and the helper's run dir to disappear. */
void h_vm_finish(struct h_vm *vm);
/* RssShmem of the VMM in KiB, from toyvmm's "rss". */
uint64_t h_vm_rss_shmem_kb(struct h_vm *vm);
/* Field "key=<n>" of the last answer. Asserts it is there. */
uint64_t h_answer_u64(const char *answer, const char *key);

/* ---- harness_scen.c: scenarios run on several guest layouts ---- */

/* fill, enable, trim, out, verify, disable, verify, checking the page
 * accounting at each step: every page staged, then in the file, then each
 * back from the file exactly once, nothing left after disable. */
void h_vm_cycle_verified(struct h_vm *vm);
/* "<churn> stop" (churn or kvm-churn) found no mismatch, and it ran. */
void h_churn_stop_ok(struct h_proc *p, const char *churn);
/* On a filled VMM: churn start; enable, out; enable, trim, out (incremental,
 * still churning); disable; churn stop without a mismatch; verify. */
void h_vm_churn_through_swap(struct h_vm *vm);
/* fill, swap out, hotplug mib MiB while Active (one more region, its pages
 * added), write the new region, enable moves just those, out, verify,
 * disable, verify. Updates vm->pages and vm->regions. */
void h_vm_hotplug_while_active(struct h_vm *vm, unsigned mib);

/*
 * ---- harness_crash.c: the helper killed (SIGKILL) and the keeper's recovery ----
 */
/* status.json, retried while it is rewritten; on failure the VMM's stderr says why. */
char *h_crash_status(struct h_vm *vm);
/* SIGKILL the helper (counted in vm->kills); the VMM still answers. Its pid. */
pid_t h_kill_helper(struct h_vm *vm);
/* A new helper (not @dead) published Ready after its nth restart, everything swapped in. */
void h_wait_recovered(struct h_vm *vm, pid_t dead, uint64_t n);
/* Poll until the state is @state, enable's phase @phase (NULL: any), and with
 * @partway the operation has done part of its work, not all. */
void h_wait_op(struct h_vm *vm, const char *state, const char *phase, bool partway);

/*
 * ---- harness_swapdir.c: a swap dir that fills up ----
 * A tmpfs of @size (mount's size=) at <temp dir>/small, in a mount
 * namespace of this test's own, which its children share: the mount
 * cannot outlive them. Skips without root or without mount. Its path.
 */
const char *h_small_swap_dir(const char *size);
void h_small_swap_dir_resize(const char *size);
/* For the test's .fini (which runs before the suite's): the temp dir must hold no mount. */
void h_small_swap_dir_unmount(void);
/*
 * out --wait into a full swap dir: exit 5, state Failed, last_error and
 * vmswapctl naming ENOSPC, every page staged or in the file and some of
 * each. *staging and *swap as status says; returns that status (free it).
 */
char *h_out_into_full_dir(struct h_vm *vm, uint64_t *staging, uint64_t *swap);

/* ---- harness_mapper.c: build/tests/mapper (tests/progs/mapper.c) ---- */

#define H_MAPPER_MAX 16

struct h_mapping {
	char name[64];   /* memfd name, or the label of an anon-* mapping */
	unsigned long addr, len;
};

struct h_mapper {
	struct h_proc *p;
	struct h_mapping maps[H_MAPPER_MAX]; /* from its "list" */
	int n;
};

/* Start build/<bin> with the specs (NULL-ended, may be NULL), under the
 * shim plus env, and read its list of mappings. */
void h_mapper_start(struct h_mapper *m, const char *bin, const char *const specs[],
		    const char *const env[]);
/* Skip without a userfaultfd; start build/tests/mapper and check that
 * exactly want was taken (h_mapper_taken); returns their pages. */
uint64_t h_mapper_start_guest(struct h_mapper *m, const char *const specs[],
			      const char *const env[], const char *const want[]);
/*
 * Exactly the mappings in want (labels, NULL-ended) were taken: one shim
 * "managed" line each (needs VMSWAP_LOG=info), at the address and length
 * mapper reports, under the mapping's memfd name ("vmswap-anon" for
 * anon-*); the helper shows that many regions (none: no helper at all).
 * Returns their pages.
 */
uint64_t h_mapper_taken(const struct h_mapper *m, const char *const want[]);
/* fill, enable, out, verify, fill, disable, verify; guest_pages staged and
 * swapped out exactly. */
void h_mapper_cycle(const struct h_mapper *m, uint64_t guest_pages);
/* quit, exit 0, the helper gone. */
void h_mapper_finish(struct h_mapper *m);
/* One spec alone (VMSWAP_LOG=info): taken as name, and a cycle keeps it. */
void h_mapper_one_kind(const char *spec, const char *name);
/* Skip without a userfaultfd; build/<bin> with specs and env takes exactly
 * want (env needs VMSWAP_LOG=info), a cycle keeps the data, quit. */
void h_mapper_check(const char *bin, const char *const specs[], const char *const env[],
		    const char *const want[]);

#endif
