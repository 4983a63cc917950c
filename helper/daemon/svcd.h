/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmswapd, the service that starts helpers outside the VMM (svc.h has the
 * protocol). What its files share.
 */
#ifndef VS_SVCD_H
#define VS_SVCD_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include <vmswap/svc.h>

#define SVCD_MAX_GROUPS 64

struct svcd_cfg {
	char sock[VMSWAP_SVC_PATH_MAX];     /* the listening socket */
	char run_root[VMSWAP_SVC_PATH_MAX]; /* <pid>/ directories go here */
	char helper[PATH_MAX];              /* vmswap-helper */
	bool has_group;                     /* peers in this group may ask */
	gid_t group;
	char group_name[64];
};

/* The process on the other end of a connection. */
struct svcd_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int pidfd;                          /* pins pid against reuse */
	gid_t groups[SVCD_MAX_GROUPS];      /* supplementary */
	int ngroups;
};

/* listen.c: the socket from systemd (*activated) or our own. 0 or -errno. */
int svcd_listen(const struct svcd_cfg *c, int *fd, bool *activated, char *why, size_t n);

/* peer.c: who @conn is, and whether it may ask. 0 or -errno, @why set. */
int svcd_peer_get(int conn, struct svcd_peer *p, char *why, size_t n);
int svcd_peer_allowed(const struct svcd_cfg *c, const struct svcd_peer *p, char *why, size_t n);
/* Is the peer still the process it was (not exited, pid not reused)? */
bool svcd_peer_alive(const struct svcd_peer *p);

/* rundir.c: <root>/<pid>/ for the peer, owned by it, mode 0700. */
int svcd_rundir_make(const struct svcd_cfg *c, const struct svcd_peer *p, char *why, size_t n);
/*
 * Remove the directories of VMMs that are gone and whose helper is gone.
 * Returns how many VMMs are gone whose helper is still leaving.
 */
int svcd_rundir_sweep(const struct svcd_cfg *c);

/* spawn.c: start the helper as the peer, @conn as its shim socket. */
int svcd_spawn(const struct svcd_cfg *c, const struct svcd_peer *p, int conn,
	       const struct vmswap_svc_start *m, char *why, size_t n);

/*
 * serve.c: one connection, from START to the reply. Returns the pidfd of
 * a VMM whose helper it started (the caller watches it, to remove the run
 * directory when the VMM is gone), else -1.
 */
int svcd_serve(const struct svcd_cfg *c, int conn);

#endif
