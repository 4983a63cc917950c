/* SPDX-License-Identifier: BSD-3-Clause */
#include <criterion/criterion.h>
#include <errno.h>
#include <unistd.h>

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
