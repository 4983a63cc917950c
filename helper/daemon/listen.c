/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The listening socket: handed over by systemd (vmswapd.socket), or made
 * here, mode 0660 and group vmswap (0600 without the group), so only the
 * users allowed to ask can connect at all.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "svcd.h"

/* A socket file left by a service that is gone: connecting is refused. */
static int remove_stale(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int s, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	r = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? -EADDRINUSE
	    : errno == ECONNREFUSED				 ? 0
								 : -errno;
	close(s);
	if (r)
		return r;
	return unlink(path) < 0 ? -errno : 0;
}

static int own_socket(const struct svcd_cfg *c, int *fd, char *why, size_t n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[VMSWAP_SVC_PATH_MAX], *slash;
	int s, r;

	snprintf(dir, sizeof(dir), "%s", c->sock);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			r = -errno;
			snprintf(why, n, "cannot make %s: %s", dir, strerror(-r));
			return r;
		}
	}
	if ((r = remove_stale(c->sock))) {
		snprintf(why, n, "%s: %s", c->sock,
			 r == -EADDRINUSE ? "another vmswapd listens there"
			 : r == -EEXIST	  ? "exists and is not a socket"
					  : strerror(-r));
		return r;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->sock);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(why, n, "cannot listen on %s: %s", c->sock, strerror(-r));
		if (s >= 0)
			close(s);
		return r;
	}
	if (chmod(c->sock, c->has_group ? 0660 : 0600) < 0 ||
	    (c->has_group && chown(c->sock, geteuid(), c->group) < 0) || listen(s, 64) < 0) {
		r = -errno;
		snprintf(why, n, "cannot set up %s: %s", c->sock, strerror(-r));
		close(s);
		unlink(c->sock);
		return r;
	}
	*fd = s;
	return 0;
}

int svcd_listen(const struct svcd_cfg *c, int *fd, bool *activated, char *why, size_t n)
{
	int k = sd_listen_fds(1);

	*activated = false;
	if (k < 0) {
		snprintf(why, n, "socket activation: %s", strerror(-k));
		return k;
	}
	if (k > 1) {
		snprintf(why, n, "socket activation passed %d sockets; vmswapd takes one", k);
		return -EINVAL;
	}
	if (k == 1) {
		if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
			snprintf(why, n, "the activated socket is not a listening AF_UNIX "
					 "SOCK_SEQPACKET socket (ListenSequentialPacket=)");
			return -EINVAL;
		}
		*fd = SD_LISTEN_FDS_START;
		*activated = true;
		return 0;
	}
	return own_socket(c, fd, why, n);
}
