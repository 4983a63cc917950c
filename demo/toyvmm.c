/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * toyvmm [--size SIZE] [--regions N] [--separate-memfds] [--threads T]
 *        [--seed S] [--name NAME] [--kvm] [--sandbox] [-name guest=VMNAME]
 *
 * A toy VMM for the vmswap demo and end-to-end tests: memfd-backed guest
 * memory, vCPU threads that fill and verify it, and a line-based command
 * loop on stdin (see cmd.c). Run it under LD_PRELOAD=libvmswap.so.
 *
 * --kvm: each vCPU thread also runs a KVM vCPU whose guest code can do
 * the page work (kvm-* commands; see kvm.h). Exit status 77 when the
 * machine has no usable KVM, so that tests can skip.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm.h"
#include "toyvmm.h"
#include "vmswap/util.h"

#define MAX_REGIONS 1024u
#define MAX_THREADS 1024u
#define MAX_NAME 200 /* memfd names stop at 249 bytes; leave room for "-hpN" */
#define EXIT_SKIP 77 /* the automake convention for "cannot run here" */

struct opts {
	uint64_t size;
	unsigned regions, threads;
	bool separate, kvm, sandbox;
	enum tvm_layout anon; /* TVM_MEMFD: not anonymous */
	uint64_t seed;
	const char *name;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: toyvmm [--size SIZE] [--regions N] [--separate-memfds]\n"
		"              [--threads T] [--seed S] [--name NAME] [--kvm]\n"
		"              [--anon[=firecracker|qemu]] [--sandbox] [-name guest=VMNAME]\n"
		"  --sandbox: start under a seccomp filter like QEMU's -sandbox spawn=deny\n"
		"          (starting a process kills toyvmm with SIGSYS)\n"
		"  -name guest=VMNAME: the VM's name, spelled as QEMU's (vmswapctl -n)\n"
		"  --anon: anonymous guest memory, mapped MAP_NORESERVE (firecracker,\n"
		"          the default) or MAP_FIXED in a PROT_NONE reservation (qemu)\n"
		"  SIZE: bytes with K/M/G suffix (default 256M), a multiple of N*2M\n"
		"  --kvm: vCPUs also run guest code under KVM (kvm-* commands);\n"
		"         guest memory, hotplug included, at most %lluM; exit 77\n"
		"         if KVM is unavailable\n"
		"  commands on stdin, one per line, each answered by one ok/err line\n"
		"  (demo/cmd.c), among them:\n"
		"    views start|stop  a thread maps, checks, moves and unmaps second\n"
		"        views of region 0's memfd (not with --anon)\n"
		"    view-try shared|private|exec  map one such view once: mapped, or\n"
		"        the errno (private and executable views of guest memory: EACCES)\n"
		"    ptouch N seq|rev|rand [COUNT [SEED]]  N threads (1..16) read their\n"
		"        own shares of the guest at once, checking every page; rand\n"
		"        touches COUNT random pages per share (default share/8) and\n"
		"        answers p50_us/p99_us of the first accesses\n",
		TVM_KVM_MAX_MEM >> 20);
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "regions", required_argument, NULL, 'r' },
		{ "separate-memfds", no_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 'e' },
		{ "name", required_argument, NULL, 'n' },
		{ "kvm", no_argument, NULL, 'k' },
		{ "anon", optional_argument, NULL, 'a' },
		{ "sandbox", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	int c;

	*o = (struct opts){ .size = 256ull << 20, .regions = 1, .threads = 2,
			    .seed = 1, .name = "toyvmm-guest" };
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (vmswap_parse_size(optarg, &o->size))
				goto bad;
			break;
		case 'r':
			if (parse_uint(optarg, 1, MAX_REGIONS, &o->regions))
				goto bad;
			break;
		case 'S':
			o->separate = true;
			break;
		case 'k':
			o->kvm = true;
			break;
		case 'x':
			o->sandbox = true;
			break;
		case 'a':
			if (!optarg || !strcmp(optarg, "firecracker"))
				o->anon = TVM_ANON;
			else if (!strcmp(optarg, "qemu"))
				o->anon = TVM_ANON_QEMU;
			else
				goto bad;
			break;
		case 't':
			if (parse_uint(optarg, 1, MAX_THREADS, &o->threads))
				goto bad;
			break;
		case 'e':
			errno = 0;
			o->seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end || *optarg == '-')
				goto bad;
			break;
		case 'n':
			if (!*optarg || strlen(optarg) > MAX_NAME)
				goto bad;
			o->name = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "toyvmm: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->size || o->size % (o->regions * TVM_REGION_ALIGN)) {
		fprintf(stderr, "toyvmm: --size must be a non-zero multiple of "
			"regions * 2M\n");
		return -EINVAL;
	}
	if (o->kvm && o->size > TVM_KVM_MAX_MEM) {
		fprintf(stderr, "toyvmm: --kvm allows at most %lluM of guest memory "
			"(the 32-bit guest addresses it below 3G)\n",
			TVM_KVM_MAX_MEM >> 20);
		return -EINVAL;
	}
	return 0;
bad:
	for (const struct option *l = lopts; l->name; l++)
		if (l->val == c)
			fprintf(stderr, "toyvmm: bad value '%s' for --%s\n",
				optarg, l->name);
	return -EINVAL;
}

/* Exits when --kvm cannot work: 77 if there is no KVM to speak of. */
static void open_kvm(struct tvm_kvm *kvm, unsigned threads)
{
	const char *stage;
	int r = tvm_kvm_open(kvm, threads, &stage);

	if (!r)
		return;
	fprintf(stderr, "toyvmm: --kvm: %s: %s%s\n", stage, strerror(-r),
		kvm->unavailable ? " (KVM unavailable)" : "");
	exit(kvm->unavailable ? EXIT_SKIP : 1);
}

/*
 * QEMU's "-name guest=VMNAME" (one dash, which getopt_long would read as
 * short options): dropped from what parse_opts sees, kept in
 * /proc/<pid>/cmdline, where vmswapctl -n looks for it.
 */
static int drop_qemu_name(int argc, char **argv)
{
	int k = 0;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-name") && i + 1 < argc) {
			i++;
			continue;
		}
		argv[k++] = argv[i];
	}
	argv[k] = NULL;
	return k;
}

int main(int argc, char **argv)
{
	static struct tvm_kvm kvm;
	struct tvm_ctx ctx = { 0 };
	struct tvm_map_hook hook = { tvm_kvm_map_region, &kvm };
	struct opts o;
	char *line = NULL;
	size_t cap = 0;
	int r;

	char **args = calloc((size_t)argc + 1, sizeof(*args));

	if (!args)
		return 1;
	memcpy(args, argv, (size_t)argc * sizeof(*args));
	if (parse_opts(drop_qemu_name(argc, args), args, &o))
		return 2;
	free(args);
	if (o.sandbox && (r = tvm_sandbox_spawn_deny())) {
		fprintf(stderr, "toyvmm: --sandbox: %s\n", strerror(-r));
		return 1;
	}
	/* A test that stops reading must not kill us mid-command. */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (o.kvm) {
		open_kvm(&kvm, o.threads);
		ctx.kvm = &kvm;
	}
	r = tvm_guest_init(&ctx.guest, o.size, o.regions,
			   o.anon ? o.anon : o.separate ? TVM_MEMFD_SEPARATE : TVM_MEMFD, o.name,
			   o.seed, o.kvm ? &hook : NULL);
	if (r) {
		fprintf(stderr, "toyvmm: guest memory: %s\n", strerror(-r));
		tvm_guest_destroy(&ctx.guest);
		return 1;
	}
	r = tvm_vcpus_start(&ctx.vcpus, &ctx.guest, o.threads, ctx.kvm);
	if (r) {
		fprintf(stderr, "toyvmm: vcpu threads: %s\n", strerror(-r));
		tvm_vcpus_stop(&ctx.vcpus);
		tvm_guest_destroy(&ctx.guest);
		return 1;
	}

	while (!ctx.quit) {
		char quit[] = "quit";

		if (getline(&line, &cap, stdin) < 0) {
			tvm_cmd_exec(&ctx, quit); /* EOF acts as quit */
			break;
		}
		tvm_cmd_exec(&ctx, line);
	}
	free(line);
	if (ctx.kvm)
		tvm_kvm_close(ctx.kvm); /* the vCPUs went with their threads */
	tvm_guest_destroy(&ctx.guest);
	return 0;
}
