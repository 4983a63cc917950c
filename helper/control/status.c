/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmswap/common.h>

#include "../fault/fault.h"
#include "../fault/fault_read.h"
#include "../fault/fault_ws.h"
#include "../fault/wp.h"
#include "../model/dual.h"
#include "../model/helper.h"
#include "../ops/headroom.h"
#include "../persist/keeper.h"
#include "../persist/manifest.h"
#include "../state/state.h"
#include "../sys/sandbox.h"
#include "../sys/swapfile.h"
#include "status.h"

struct sbuf {
	char *p;
	size_t n, len;
	bool overflow;
};

static void put(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	r = vsnprintf(b->p + b->len, b->n - b->len, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= b->n - b->len)
		b->overflow = true;
	else
		b->len += (size_t)r;
}

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void put_str(struct sbuf *b, const char *s)
{
	put(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			put(b, "\\%c", c);
		else if (c < 0x20)
			put(b, "\\u%04x", c);
		else
			put(b, "%c", c);
	}
	put(b, "\"");
}

static uint64_t resident_pages(void)
{
	uint64_t pages = 0;

	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct stat st;

		/* A memfd's blocks are its allocated pages: O(1), touches nothing. */
		if (vs.objs[i].used && fstat(vs.objs[i].fd, &st) == 0)
			pages += (uint64_t)st.st_blocks * 512 / VS_PAGE_SIZE;
	}
	return pages;
}

/* Who serves the VMM: pids, restarts, management, sandbox and engines. vs.lock held. */
static void put_header(struct sbuf *b)
{
	const struct vs_restart_info *ri = vs_keep_restart_info();

	put(b, "{\"vmm_pid\":%d,\"helper_pid\":%d,\"keeper_pid\":%d,\"recovered\":%u,"
		"\"restarts\":%u,\"restart_streak\":%u,\"restart_delay_ms\":%u,"
		"\"last_restart\":%lld,\"managed\":%s,\"reason\":", (int)vs.vmm_pid,
	    (int)getpid(), (int)vs_keeper_pid(), vs_manifest_recovered(), ri->restarts,
	    ri->streak, ri->delay_ms, (long long)ri->at, vs.managed ? "true" : "false");
	put_str(b, vs.reason);
	put(b, ",\"seccomp\":%s,\"seccomp_syscalls\":%d", vs_sandbox_active() ? "true" : "false",
	    vs_sandbox_active() ? vs_sandbox_allowed() : 0);
	put(b, ",\"fault_io\":\"%s\",\"wake_swapin\":%s", vs_fault_read_engine(),
	    vs.wake_swapin ? "true" : "false");
	put(b, ",\n \"state\":\"%s\",\n", vs_state_name(vs.state));
}

/* The counters. vs.lock held. */
static void put_metrics(struct sbuf *b)
{
	uint64_t guest = 0, p50, p99, swap_bytes = 0, ws_pref, ws_hits, ws_rec;
	int nprocs = 0, nmaps = 0;
	struct stat st;

	for (int i = 0; i < VS_MAX_OBJS; i++)
		if (vs.objs[i].used)
			guest += vs.objs[i].npages;
	for (int i = 0; i < VS_MAX_PROCS; i++)
		nprocs += vs.procs[i].used && !vs.procs[i].dead;
	for (int i = 0; i < VS_MAX_MAPS; i++)
		nmaps += vs.maps[i].used;
	if (vs.swap.fd >= 0 && fstat(vs.swap.fd, &st) == 0)
		swap_bytes = (uint64_t)st.st_size;
	vs_fault_latency(&p50, &p99);
	vs_ws_stats(&ws_pref, &ws_hits, &ws_rec);
	put(b, " \"metrics\":{\"resident_pages\":%llu,\"copied_from_file_pages\":%llu,"
		"\"copied_from_staging_pages\":%llu,\"zeroed_pages\":%llu,"
		"\"redundant_pages\":%llu,\"staging_pages\":%llu,\"swap_pages\":%llu,",
	    (unsigned long long)resident_pages(), (unsigned long long)vs.stats.c.copied_from_file,
	    (unsigned long long)vs.stats.c.copied_from_staging, (unsigned long long)vs.stats.c.zeroed,
	    (unsigned long long)vs.stats.c.redundant, (unsigned long long)vs_staged_pages(),
	    (unsigned long long)vs.stats.c.swapped);
	put(b, "\"guest_pages\":%llu,\"trimmed_zero_pages\":%llu,\"trimmed_clean_pages\":%llu,"
		"\"swap_file_bytes\":%llu,\"swap_slots_used\":%u,\"faults\":%llu,"
		"\"fault_p50_us\":%llu,\"fault_p99_us\":%llu,\"fault_max_us\":%llu,"
		"\"swap_read_errors\":%llu,\"double_pages\":%llu,\"processes\":%d,\"regions\":%d,"
		"\"prefetched_pages\":%llu,\"prefetch_hits\":%llu,\"working_set_pages\":%llu,"
		"\"staged_in_place_pages\":%llu,\"unstaged_pages\":%llu,\"written_pages\":%llu},\n",
	    (unsigned long long)guest, (unsigned long long)vs.stats.c.trimmed_zero,
	    (unsigned long long)vs.stats.c.redundant, (unsigned long long)swap_bytes,
	    vs.swap.slots.in_use, (unsigned long long)vs.stats.c.faults, (unsigned long long)p50,
	    (unsigned long long)p99, (unsigned long long)vs.stats.c.lat_max_us,
	    (unsigned long long)vs_swapfile_read_errors(), (unsigned long long)vs_dual_pages(),
	    nprocs, nmaps, (unsigned long long)ws_pref, (unsigned long long)ws_hits,
	    (unsigned long long)ws_rec, (unsigned long long)vs.stats.c.inplace,
	    (unsigned long long)vs.stats.c.unstaged, (unsigned long long)vs.stats.c.written);
}

/* The last transition, the last enable and the memory headroom. vs.lock held. */
static void put_operations(struct sbuf *b, const struct vs_headroom *hr)
{
	put(b, " \"state_transition\":{\"pages\":%llu,\"time_ms\":%llu},\n",
	    (unsigned long long)vs.stats.trans_pages, (unsigned long long)vs.stats.trans_ms);
	put(b, " \"last_enable\":{\"phase\":\"%s\",\"frozen_ms\":%llu,\"tracked\":%s,\"in_place\":%s,"
		"\"recopied_pages\":%llu,\"kept_units\":%llu},\n",
	    vs.wp_phase == VS_WP_TRACK   ? "track"
	    : vs.wp_phase == VS_WP_PUNCH ? "punch"
	    : vs.enable_in_place         ? "in-place"
					 : "off",
	    (unsigned long long)vs.stats.en.frozen_ms,
	    vs.stats.en.tracked ? "true" : "false", vs.stats.en.in_place ? "true" : "false",
	    (unsigned long long)vs.stats.en.recopied, (unsigned long long)vs.stats.en.kept_units);
	put(b, " \"headroom\":{\"check\":%s,\"need_mib\":%llu,\"free_mib\":%llu,\"limit_mib\":%llu,"
		"\"by\":", vs_headroom_enabled() ? "true" : "false",
	    hr ? (unsigned long long)((hr->need + (1ull << 20) - 1) >> 20) : 0ull,
	    hr ? (unsigned long long)(hr->free >> 20) : 0ull,
	    hr ? (unsigned long long)(hr->limit >> 20) : 0ull);
	put_str(b, hr ? hr->what : "");
	put(b, "},\n");
	put(b, " \"progress\":{\"done\":%llu,\"total\":%llu},\n",
	    (unsigned long long)vs.stats.progress_done, (unsigned long long)vs.stats.progress_total);
}

/* last_error and the answers to commands. vs.lock held. */
static void put_replies(struct sbuf *b)
{
	const struct vs_reply *rep;
	char err[VS_ERR_MAX];
	int nrep = vs_state_replies(&rep);

	put(b, " \"last_error\":");
	vs_get_error(err, sizeof(err));
	put_str(b, err);
	put(b, ",\n \"replies\":[");
	for (int i = 0; i < nrep; i++) {
		put(b, "%s\n  {\"id\":", i ? "," : "");
		put_str(b, rep[i].id);
		put(b, ",\"command\":");
		put_str(b, rep[i].command);
		put(b, ",\"ok\":%s,\"message\":", rep[i].ok ? "true" : "false");
		put_str(b, rep[i].message);
		put(b, "}");
	}
	put(b, "],\n");
}

int vs_status_render(char *buf, size_t n)
{
	struct sbuf b = { .p = buf, .n = n };
	static uint64_t seq;
	struct vs_headroom hr;
	/* A few small files: read before taking the lock (it takes it itself). */
	bool have_hr = !vs_headroom_get(&hr);

	pthread_mutex_lock(&vs.lock);
	if (vs.managed)
		vs_state_watch_doubles(); /* what status shows includes pages held twice */
	put_header(&b);
	put_metrics(&b);
	put_operations(&b, have_hr ? &hr : NULL);
	put_replies(&b);
	put(&b, " \"seq\":%llu}\n", (unsigned long long)++seq);
	pthread_mutex_unlock(&vs.lock);
	return b.overflow ? -ENOSPC : (int)b.len;
}

int vs_status_publish(int dirfd)
{
	static char buf[16384];
	const char *tmp = VMSWAP_STATUS_NAME ".tmp";
	int len = vs_status_render(buf, sizeof(buf)), fd, r = 0;

	if (len < 0)
		return len;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)len) != len)
		r = -EIO;
	close(fd);
	if (!r && renameat(dirfd, tmp, dirfd, VMSWAP_STATUS_NAME) < 0)
		r = -errno;
	return r;
}
