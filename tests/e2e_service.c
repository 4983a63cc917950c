/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmswapd: helpers started outside the VMM. Each test starts its own
 * service on a socket in its temp dir, with the test's run dir as the
 * service's run root, and points the VMM at it (VMSWAP_SERVICE_SOCKET).
 * Non-root VMMs run as nobody (setpriv), members or not of a test group
 * that the service and /dev/userfaultfd are given for the test; every
 * byte is checked against toyvmm's model.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <vmswap/svc.h>

#include "harness.h"

#define NOBODY 65534
#define TEST_GID 64321 /* a group of the test's own, no /etc/group entry needed */
#define UFFD_DEV "/dev/userfaultfd"

static char sock[400], env_sock[460];
static struct h_proc *svc;

static void need_root(void)
{
	if (geteuid())
		cr_skip_test("vmswapd starts helpers as other users: needs root");
}

/* vmswapd on the test's socket and run dir; @group: NULL for none given. */
static void svc_start(const char *group)
{
	const char *argv[12] = { h_bin("vmswapd"), "--foreground", "--socket", sock, "--run-dir",
				 h_env.run, "--log", "info" };
	int n = 8;

	if (group) {
		argv[n++] = "--group";
		argv[n++] = group;
	}
	argv[n] = NULL;
	svc = h_spawn(argv, NULL, true);
	for (int i = 0; i < 500 && access(sock, F_OK); i++)
		h_nap_ms(10);
	cr_assert(!access(sock, F_OK), "vmswapd made no socket %s:\n%s", sock,
		  h_proc_stderr(svc));
}

static void init(void)
{
	h_setup();
	snprintf(sock, sizeof(sock), "%s/vmswapd.sock", h_env.dir);
	snprintf(env_sock, sizeof(env_sock), "%s=%s", VMSWAP_ENV_SERVICE_SOCKET, sock);
}

TestSuite(service, .init = init, .fini = h_teardown, .timeout = 240);

/* The VMM's stderr holds @needle (the shim's own words). */
static void assert_said(struct h_vm *vm, const char *needle)
{
	char *err = h_proc_stderr(vm->p);

	cr_assert(strstr(err, needle), "no \"%s\" in the VMM's stderr:\n%s", needle, err);
	free(err);
}

Test(service, starts_the_helper_outside_the_vmm)
{
	const char *env[] = { env_sock, "VMSWAP_LOG=info", NULL };
	struct h_vm *vm;
	char *log;

	need_root();
	svc_start(NULL);
	vm = h_vm_start("--size 64M --regions 2", env, true);
	assert_said(vm, "vmswap: helper started by vmswapd for pid");
	h_vm_cycle_verified(vm);
	h_vm_finish(vm);
	log = h_proc_stderr(svc);
	cr_assert(strstr(log, "started a helper for pid"), "vmswapd said:\n%s", log);
	free(log);
}

/* The case libvirt makes: QEMU under -sandbox spawn=deny may not fork. */
Test(service, sandboxed_vmm_is_managed_through_the_service)
{
	const char *env[] = { env_sock, "VMSWAP_LOG=info", NULL };
	struct h_vm *vm;
	struct h_ctl c;

	need_root();
	svc_start(NULL);
	vm = h_vm_start("--size 64M --sandbox -name guest=vm-sbx", env, true);
	h_ok(vm->p, "fill");
	/* By name, as libvirt users do. */
	h_ctl_run(&c, "-n", "vm-sbx", "enable", NULL);
	cr_assert_eq(c.rc, 0, "enable by name: %s", c.err);
	h_ctl_run(&c, "-n", "vm-sbx", "out", "--wait", NULL);
	cr_assert_eq(c.rc, 0, "out by name: %s", c.err);
	cr_assert_eq(h_metric(vm->pid, "swap_pages"), vm->pages);
	h_ok(vm->p, "verify");
	h_ctl_run(&c, "list", NULL);
	cr_assert(strstr(c.out, "vm-sbx"), "list shows no name:\n%s", c.out);
	h_ctl_run(&c, "-n", "vm-sbx", "disable", "--wait", NULL);
	cr_assert_eq(c.rc, 0, "disable by name: %s", c.err);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

Test(service, sandboxed_vmm_without_a_service_runs_unmanaged_and_lives)
{
	const char *env[] = { env_sock, NULL };
	struct h_vm *vm;
	int st;

	need_root();
	/* Proof that the filter bites: a fork kills toyvmm with SIGSYS. */
	vm = h_vm_start("--size 16M --sandbox", (const char *[]){ "VMSWAP_DISABLE=1", NULL },
			false);
	h_send(vm->p, "fork-verify");
	st = h_proc_wait(vm->p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
		  "toyvmm --sandbox survived a fork (status %#x)", st);
	free(vm);

	/* No service at that path: the shim must not start the helper itself. */
	vm = h_vm_start("--size 64M --sandbox", env, false);
	h_ok(vm->p, "fill");
	h_ok(vm->p, "verify");
	assert_said(vm, "runs under a seccomp filter");
	cr_assert(!h_rundir_exists(vm->pid), "a helper was started in the sandbox");
	h_ok(vm->p, "quit");
	st = h_proc_wait(vm->p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "toyvmm did not exit cleanly: %#x", st);
	free(vm);
}

/* A socket file nobody listens on (a service that died): the shim starts the helper itself. */
Test(service, dead_service_falls_back_to_starting_the_helper)
{
	const char *env[] = { env_sock, "VMSWAP_LOG=info", NULL };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct h_vm *vm;

	need_root();
	cr_assert(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock) < (int)sizeof(sa.sun_path));
	cr_assert(s >= 0 && !bind(s, (struct sockaddr *)&sa, sizeof(sa)));
	close(s); /* bound, never listening: connect is refused */
	vm = h_vm_start("--size 32M", env, true);
	assert_said(vm, "the vmswap service did not start the helper");
	assert_said(vm, "vmswap: helper started by /");
	h_vm_cycle_verified(vm);
	h_vm_finish(vm);
}

/* ---- non-root VMMs ---- */

static int dev_lock = -1;
static struct stat dev_saved;

/* Give /dev/userfaultfd to TEST_GID, mode @mode, until restore_dev(). */
static void lend_dev(mode_t mode)
{
	/* One test at a time changes the device (tests run in parallel). */
	dev_lock = open("/tmp/vmswap-test-userfaultfd.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	cr_assert(dev_lock >= 0 && !flock(dev_lock, LOCK_EX));
	if (stat(UFFD_DEV, &dev_saved))
		cr_skip_test("no %s on this host", UFFD_DEV);
	cr_assert(!chown(UFFD_DEV, dev_saved.st_uid, TEST_GID) && !chmod(UFFD_DEV, mode),
		  "cannot lend %s: %s", UFFD_DEV, strerror(errno));
	cr_log_info("%s lent to gid %d, mode %o, for this test", UFFD_DEV, TEST_GID, mode);
}

static void restore_dev(void)
{
	if (dev_lock >= 0 && dev_saved.st_mode) {
		if (chown(UFFD_DEV, dev_saved.st_uid, dev_saved.st_gid) ||
		    chmod(UFFD_DEV, dev_saved.st_mode & 07777))
			fprintf(stderr, "e2e_service: cannot restore %s: %s\n", UFFD_DEV,
				strerror(errno));
	}
	if (dev_lock >= 0)
		close(dev_lock);
	dev_lock = -1;
	h_teardown();
}

/* What a helper running as nobody needs of the test's dirs. */
static void open_dirs(void)
{
	cr_assert(!chmod(h_env.dir, 0755) && !chmod(h_env.run, 0755) &&
		  !chmod(h_env.swap, 01777));
}

/* toyvmm as nobody, in TEST_GID or not. */
static struct h_vm *nobody_vm(bool in_group, const char *size, bool managed)
{
	char groups[32];
	const char *argv[] = { "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534",
			       "--groups", groups, h_bin("toyvmm"), "--threads", "2", "--size",
			       size, NULL };
	const char *env[] = { env_sock, "VMSWAP_LOG=info", NULL };

	if (access(argv[0], X_OK))
		cr_skip_test("no setpriv (util-linux) to run a VMM as another user");
	snprintf(groups, sizeof(groups), "%d", in_group ? TEST_GID : NOBODY);
	return h_vm_adopt(h_spawn(argv, env, false), managed);
}

static uid_t uid_of(pid_t pid)
{
	char path[64], line[256];
	unsigned uid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	cr_assert(f, "no %s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %u", &uid) == 1)
			break;
	fclose(f);
	return uid;
}

Test(service, non_root_vmm_in_the_group_is_managed, .fini = restore_dev)
{
	char group[16], path[600];
	struct h_vm *vm;
	struct stat st;

	need_root();
	lend_dev(0660);
	open_dirs();
	snprintf(group, sizeof(group), "%d", TEST_GID);
	svc_start(group);
	vm = nobody_vm(true, "64M", true);
	snprintf(path, sizeof(path), "%s/%d", h_env.run, vm->pid);
	cr_assert(!lstat(path, &st) && S_ISDIR(st.st_mode) && st.st_uid == NOBODY &&
		  (st.st_mode & 0777) == 0700, "run dir %s: uid %u mode %o", path,
		  (unsigned)st.st_uid, st.st_mode & 0777);
	cr_assert_eq(uid_of(h_helper_pid(vm->pid)), NOBODY, "the helper runs as root");
	h_vm_cycle_verified(vm);
	/* The service removes the run dir the helper cannot (the root is root's). */
	h_vm_finish(vm);
}

Test(service, non_root_vmm_without_userfaultfd_says_why, .fini = restore_dev)
{
	char group[16], reason[256];
	struct h_vm *vm;
	char *json;

	need_root();
	lend_dev(0600); /* the group may use the service, not the device */
	open_dirs();
	snprintf(group, sizeof(group), "%d", TEST_GID);
	svc_start(group);
	vm = nobody_vm(true, "32M", false);
	h_ok(vm->p, "fill");
	h_wait_u64_eq(vm->pid, "processes", 1);
	json = h_status(vm->pid);
	cr_assert(strstr(json, "\"managed\":false"), "managed without a uffd:\n%s", json);
	h_json_str(json, "reason", reason, sizeof(reason));
	cr_assert(strstr(reason, "/dev/userfaultfd not open to uid 65534"), "reason: %s", reason);
	free(json);
	h_ok(vm->p, "verify");
	h_vm_finish(vm);
}

Test(service, vmm_outside_the_group_is_refused_and_lives, .fini = restore_dev)
{
	char group[16];
	struct h_vm *vm;
	int st;

	need_root();
	lend_dev(0660);
	open_dirs();
	snprintf(group, sizeof(group), "%d", TEST_GID);
	svc_start(group);
	vm = nobody_vm(false, "32M", false);
	h_ok(vm->p, "fill");
	h_ok(vm->p, "verify");
	assert_said(vm, "the vmswap service did not start the helper");
	assert_said(vm, "not open to uid 65534");
	cr_assert(!h_rundir_exists(vm->pid), "a helper runs for a VMM the service refused");
	h_ok(vm->p, "quit");
	st = h_proc_wait(vm->p, H_EXIT_TIMEOUT_S);
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	free(vm);
}

/* ---- hostile peers ---- */

static int svc_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	cr_assert(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock) < (int)sizeof(sa.sun_path));
	cr_assert(s >= 0 && !connect(s, (struct sockaddr *)&sa, sizeof(sa)), "connect %s: %s",
		  sock, strerror(errno));
	return s;
}

/* Send @len bytes of @msg, return the service's answer (result, message). */
static int ask(const void *msg, size_t len, char *why, size_t n)
{
	struct vmswap_svc_reply rep;
	int s = svc_connect();
	ssize_t got;

	cr_assert_eq(send(s, msg, len, 0), (ssize_t)len);
	got = recv(s, &rep, sizeof(rep), 0);
	close(s);
	cr_assert_eq(vmswap_svc_check_reply(&rep, got < 0 ? 0 : (size_t)got), 0,
		     "no valid reply (%zd bytes)", got);
	snprintf(why, n, "%s", rep.message);
	return rep.result;
}

Test(service, hostile_requests_are_refused)
{
	struct vmswap_svc_start *m = calloc(1, sizeof(*m));
	char why[VMSWAP_SVC_MSG_MAX], stale[600];
	const char *env[] = { env_sock, NULL };
	struct h_vm *vm;

	need_root();
	cr_assert(m);
	svc_start(NULL);
	/* A stale run dir of a pid long gone: swept after the next request. */
	snprintf(stale, sizeof(stale), "%s/%d", h_env.run, 999999999);
	cr_assert(!mkdir(stale, 0700));

	cr_assert_eq(ask("junk", 4, why, sizeof(why)), -EPROTO, "junk: %s", why);
	*m = (struct vmswap_svc_start){ .magic = VMSWAP_SVC_MAGIC, .version = VMSWAP_SVC_VERSION,
					.type = VMSWAP_SVC_START, .size = sizeof(*m),
					.vmm_pid = 1 };
	cr_assert_eq(ask(m, sizeof(*m), why, sizeof(why)), -EPERM, "for pid 1: %s", why);
	cr_assert(strstr(why, "asks for itself only"), "%s", why);
	m->vmm_pid = getpid();
	memcpy(m->env, "PATH=/tmp\0", 10);
	m->env_len = 10;
	cr_assert_eq(ask(m, sizeof(*m), why, sizeof(why)), -EBADMSG, "foreign env: %s", why);
	cr_assert(access(stale, F_OK), "the stale run dir %s is still there", stale);

	/* Still serving VMMs after all that. */
	vm = h_vm_start("--size 32M", env, true);
	h_vm_cycle_verified(vm);
	h_vm_finish(vm);
	free(m);
}

/* ---- under systemd: the socket handed over, readiness reported ---- */

Test(service, socket_activation_and_readiness)
{
	const char *tool = "/usr/bin/systemd-socket-activate";
	struct sockaddr_un na = { .sun_family = AF_UNIX };
	char listen[460], notify_env[480], buf[512] = "", *log;
	const char *env[] = { env_sock, "VMSWAP_LOG=info", NULL };
	int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { 20, 0 };
	struct h_vm *vm;
	ssize_t n;

	need_root();
	if (access(tool, X_OK))
		cr_skip_test("no %s (package systemd) to hand vmswapd a socket", tool);
	cr_assert(snprintf(na.sun_path, sizeof(na.sun_path), "%s/notify", h_env.dir) <
		  (int)sizeof(na.sun_path));
	cr_assert(nfd >= 0 && !bind(nfd, (struct sockaddr *)&na, sizeof(na)) &&
		  !setsockopt(nfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	snprintf(listen, sizeof(listen), "--listen=%s", sock);
	snprintf(notify_env, sizeof(notify_env), "--setenv=NOTIFY_SOCKET=%s", na.sun_path);
	svc = h_spawn((const char *[]){ tool, "--seqpacket", listen, notify_env, h_bin("vmswapd"),
					"--foreground", "--run-dir", h_env.run, NULL },
		      NULL, true);
	for (int i = 0; i < 500 && access(sock, F_OK); i++)
		h_nap_ms(10);
	/* The first VMM's connection is what starts the service. */
	vm = h_vm_start("--size 32M", env, true);
	n = recv(nfd, buf, sizeof(buf) - 1, 0);
	cr_assert(n > 0 && strstr(buf, "READY=1"), "no READY=1 on NOTIFY_SOCKET (%zd): %s", n,
		  buf);
	h_vm_cycle_verified(vm);
	h_vm_finish(vm);
	log = h_proc_stderr(svc);
	cr_assert(strstr(log, "listening on the activated socket"), "vmswapd said:\n%s", log);
	free(log);
	close(nfd);
}
