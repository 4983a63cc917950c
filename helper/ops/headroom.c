/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * enable's headroom check (headroom.h). enable copies every resident
 * guest page to staging before it punches the guest, so for a while it
 * needs that much more memory: in the helper's memory cgroup (staging
 * memfds are the helper's, charged where it runs: the VMM's cgroup, since
 * the shim starts it from the VMM) and in the host. Pages already staged
 * are not in the guest memfds (they were punched) and are not counted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <vmswap/common.h>

#include "../fault/wp.h"
#include "../model/helper.h"
#include "../sys/log.h"
#include "../sys/memcg.h"
#include "headroom.h"

static bool check_on = true;

void vs_headroom_init(void)
{
	const char *s = getenv(VMSWAP_ENV_HEADROOM_CHECK);

	if (s && *s && strcmp(s, "0") && strcmp(s, "1"))
		vs_warn("%s=%s: expected 0 or 1; the headroom check stays on",
			VMSWAP_ENV_HEADROOM_CHECK, s);
	check_on = !(s && !strcmp(s, "0"));
}

bool vs_headroom_enabled(void)
{
	return check_on;
}

static unsigned long long mib_up(uint64_t b)
{
	return (unsigned long long)((b + (1ull << 20) - 1) >> 20);
}

static unsigned long long mib(uint64_t b)
{
	return (unsigned long long)(b >> 20);
}

void vs_headroom_judge(struct vs_headroom *h, const struct vs_memcg_room *room,
		       const char *whose, const char *cg_path, uint64_t host_avail)
{
	h->free = host_avail;
	h->limit = 0;
	snprintf(h->what, sizeof(h->what), "the host has %llu MiB available", mib(host_avail));
	if (!room || room->limit == VS_MEMCG_NONE || room->free >= host_avail)
		return;
	h->free = room->free;
	h->limit = room->limit;
	if (cg_path && strcmp(room->path, cg_path))
		snprintf(h->what, sizeof(h->what),
			 "%s memory cgroup has %llu MiB free under the limit of %s (%llu MiB)", whose,
			 mib(room->free), room->path, mib(room->limit));
	else
		snprintf(h->what, sizeof(h->what), "%s memory cgroup has %llu MiB free (limit %llu MiB, %s)",
			 whose, mib(room->free), mib(room->limit), room->path);
}

int vs_headroom_verdict(const struct vs_headroom *h, char *msg, size_t n)
{
	if (h->need <= h->free)
		return 0;
	snprintf(msg, n, "enable needs %llu MiB of staging; %s", mib_up(h->need), h->what);
	return -ENOMEM;
}

/* Resident guest memory: what enable would copy. */
static uint64_t resident_bytes(void)
{
	uint64_t bytes = 0;

	pthread_mutex_lock(&vs.lock);
	for (int i = 0; i < VS_MAX_OBJS; i++) {
		struct stat st;

		if (vs.objs[i].used && fstat(vs.objs[i].fd, &st) == 0)
			bytes += (uint64_t)st.st_blocks * 512;
	}
	pthread_mutex_unlock(&vs.lock);
	return bytes;
}

int vs_headroom_get(struct vs_headroom *h)
{
	struct vs_memcg self, vmm;
	struct vs_memcg_room room;
	uint64_t avail = VS_MEMCG_NONE;
	bool have_room = false, same, in_place;
	int r;

	pthread_mutex_lock(&vs.lock);
	in_place = !vs.stage_copy && vs_wp_usable();
	pthread_mutex_unlock(&vs.lock);
	/* Staging in place needs no memory: nothing to check. */
	h->need = in_place ? 0 : resident_bytes() + VS_HEADROOM_MARGIN;
	r = vs_meminfo_available("/proc/meminfo", &avail);
	if (r)
		vs_dbg("headroom: no MemAvailable in /proc/meminfo: %s", strerror(-r));
	/* Staging is charged to our cgroup; name it after the VMM's when they are one. */
	if (!vs_memcg_of_pid(VS_MEMCG_ROOT, 0, &self)) {
		r = vs_memcg_room(&self, &room);
		if (r)
			vs_dbg("headroom: cannot read memory cgroup %s: %s", self.path, strerror(-r));
		have_room = !r;
	}
	same = !vs_memcg_of_pid(VS_MEMCG_ROOT, vs.vmm_pid, &vmm) && !strcmp(vmm.path, self.path);
	vs_headroom_judge(h, have_room ? &room : NULL, same ? "the VMM's" : "the helper's",
			  self.path, avail);
	return avail == VS_MEMCG_NONE && !have_room ? -ENOENT : 0;
}

int vs_headroom_check(char *msg, size_t n)
{
	struct vs_headroom h;
	int r;

	if (!check_on)
		return 0;
	r = vs_headroom_get(&h);
	if (r) { /* nothing to judge by: let enable go, as before */
		vs_warn("headroom check: cannot read /proc/meminfo nor a memory cgroup; skipping it");
		return 0;
	}
	vs_dbg("headroom: enable needs %llu MiB; %s", mib_up(h.need), h.what);
	r = vs_headroom_verdict(&h, msg, n);
	if (r)
		vs_set_error("%s", msg);
	return r;
}
