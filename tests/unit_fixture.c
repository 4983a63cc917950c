/* SPDX-License-Identifier: BSD-3-Clause */
#include <criterion/criterion.h>
#include <stdint.h>
#include <errno.h>
#include <unistd.h>

#include "../helper/model/helper.h"
#include "fixture.h"
#include "unit_fixture.h"

int unit_setup_obj(const char *name, uint64_t npages)
{
	int r = fx_state(getpid()), obj;

	if (r == -EOPNOTSUPP)
		cr_skip_test("O_TMPFILE is not supported in /tmp");
	cr_assert_eq(r, 0, "fixture: %s", strerror(-r));
	obj = fx_object(name, npages);
	cr_assert_geq(obj, 0, "fixture: %s", strerror(-obj));
	return obj;
}

void unit_guest_write(int obj, uint64_t pg, uint8_t gen)
{
	static uint8_t buf[VS_PAGE_SIZE];

	fx_fill_page(buf, pg, gen);
	cr_assert_eq(pwrite(vs.objs[obj].fd, buf, VS_PAGE_SIZE, (off_t)(pg * VS_PAGE_SIZE)),
		     VS_PAGE_SIZE);
}
