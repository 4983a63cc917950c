/* SPDX-License-Identifier: BSD-3-Clause */
#include <criterion/criterion.h>
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../helper/helper.h"
#include "../helper/swapfile.h"
#include "unit_fixture.h"

int unit_setup_obj(const char *name, uint64_t npages)
{
	char dir[] = "/tmp/vmswap-unit-XXXXXX";
	int fd, obj;

	vs_helper_init(getpid());
	cr_assert(mkdtemp(dir));
	vs.swap_fd = vs_swapfile_create(dir, &vs.swap_direct);
	rmdir(dir);
	if (vs.swap_fd == -EOPNOTSUPP)
		cr_skip_test("O_TMPFILE is not supported in /tmp");
	cr_assert_geq(vs.swap_fd, 0);
	fd = memfd_create(name, MFD_CLOEXEC);
	cr_assert_eq(ftruncate(fd, (off_t)(npages * VS_PAGE_SIZE)), 0);
	obj = vs_obj_get(fd, name, npages * VS_PAGE_SIZE);
	cr_assert_geq(obj, 0);
	return obj;
}
