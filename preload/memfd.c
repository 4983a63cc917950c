/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memfds are known two ways: those made through our memfd_create() are
 * recorded by file identity (so a dup or a reused fd number cannot fool
 * us, and /proc need not be mounted); those made with a raw syscall are
 * recognised by their /proc/self/fd link, "/memfd:NAME (deleted)".
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "memfd.h"

#define RECS 64
#define NAME_LEN 256 /* a memfd name has at most 249 bytes */

static struct rec {
	dev_t dev;
	ino_t ino; /* 0: free */
	char name[NAME_LEN];
} recs[RECS];
static unsigned int next_rec;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void shim_memfd_lock(void)
{
	pthread_mutex_lock(&lock);
}

void shim_memfd_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

void shim_memfd_record(int fd, const char *name)
{
	struct rec *slot = NULL;
	struct stat st;

	if (fstat(fd, &st))
		return;
	shim_memfd_lock();
	for (unsigned int i = 0; i < RECS && !slot; i++)
		if (recs[i].ino == st.st_ino && recs[i].dev == st.st_dev)
			slot = &recs[i];
	/* Oldest first: /proc still names memfds that fell out. */
	if (!slot)
		slot = &recs[next_rec++ % RECS];
	slot->dev = st.st_dev;
	slot->ino = st.st_ino;
	snprintf(slot->name, sizeof(slot->name), "%s", name ? name : "");
	shim_memfd_unlock();
}

static bool lookup(const struct stat *st, char *name, size_t n)
{
	bool hit = false;

	shim_memfd_lock();
	for (unsigned int i = 0; i < RECS && !hit; i++) {
		if (recs[i].ino == st->st_ino && recs[i].dev == st->st_dev) {
			snprintf(name, n, "%s", recs[i].name);
			hit = true;
		}
	}
	shim_memfd_unlock();
	return hit;
}

bool shim_memfd_ours(const struct stat *st)
{
	char name[NAME_LEN];

	return lookup(st, name, sizeof(name));
}

int shim_memfd_name(int fd, const struct stat *st, char *name, size_t n)
{
	static const char pre[] = "/memfd:", post[] = " (deleted)";
	char path[32], link[NAME_LEN + 32];
	size_t plen = sizeof(pre) - 1, slen = sizeof(post) - 1;
	ssize_t len;

	if (!S_ISREG(st->st_mode))
		return -ENOENT;
	if (lookup(st, name, n))
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	len = readlink(path, link, sizeof(link) - 1);
	if (len < 0)
		return -errno;
	link[len] = '\0';
	if ((size_t)len < plen + slen || memcmp(link, pre, plen) ||
	    memcmp(link + len - slen, post, slen))
		return -ENOENT;
	snprintf(name, n, "%.*s", (int)((size_t)len - plen - slen), link + plen);
	return 0;
}
