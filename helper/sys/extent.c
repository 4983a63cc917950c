/* SPDX-License-Identifier: BSD-3-Clause */
/* Data extents of a file; see extent.h. */
#include <errno.h>
#include <unistd.h>

#include "extent.h"

int vs_extent_next(int fd, off_t pos, off_t size, off_t *d, off_t *h)
{
	*d = lseek(fd, pos, SEEK_DATA);
	if (*d < 0)
		return errno == ENXIO ? 0 : -errno;
	if (*d >= size)
		return 0;
	*h = lseek(fd, *d, SEEK_HOLE);
	if (*h < 0)
		return -errno;
	if (*h > size)
		*h = size;
	return 1;
}
