/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * enable's headroom check: staging needs as much memory as the guest has
 * resident, beside the guest, until the punch. Refuse an enable that
 * would not fit in the memory cgroup the staging is charged to (the
 * helper's, which it shares with the VMM that started it) or in the
 * host's available memory, before anything moves.
 */
#ifndef VS_HEADROOM_H
#define VS_HEADROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../sys/memcg.h"

/* Beside the copy: the helper's own allocations, the guest growing meanwhile. */
#define VS_HEADROOM_MARGIN (16ull << 20)

struct vs_headroom {
	uint64_t need;        /* bytes: resident guest memory + the margin */
	uint64_t free;        /* bytes under the tightest of the limits below */
	uint64_t limit;       /* the cgroup limit that gave free; 0 when the host did */
	char what[VS_MEMCG_PATH_MAX + 160]; /* who gave free, e.g. "the host has N MiB available" */
};

/* Reads VMSWAP_HEADROOM_CHECK once, at setup; a bad value is warned about. */
void vs_headroom_init(void);
/* The check is on (VMSWAP_HEADROOM_CHECK is not 0). */
bool vs_headroom_enabled(void);
/* What enable needs now and the room it has. No lock held. 0 or -errno. */
int vs_headroom_get(struct vs_headroom *h);
/*
 * Before enable moves anything, no lock held: 0 when the staging fits
 * (or the check is off, or nothing can be read), else -ENOMEM with the
 * reason in @msg and last_error.
 */
int vs_headroom_check(char *msg, size_t n);

/* The parts, for tests. */
/*
 * Fill h->free, h->limit and h->what from a cgroup's room (NULL: none;
 * @whose: "the VMM's" or "the helper's") and the host's MemAvailable.
 */
void vs_headroom_judge(struct vs_headroom *h, const struct vs_memcg_room *room,
		       const char *whose, const char *cg_path, uint64_t host_avail);
/* 0 when h->need fits in h->free, else -ENOMEM and the refusal in @msg. */
int vs_headroom_verdict(const struct vs_headroom *h, char *msg, size_t n);

#endif
