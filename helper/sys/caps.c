/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

int vs_caps_drop(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	uint64_t eff, prm;

	if (syscall(SYS_capget, &hdr, d) < 0)
		return -errno;
	eff = (uint64_t)d[1].effective << 32 | d[0].effective;
	prm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which goes next. */
	for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (!(VS_CAPS_KEPT & 1ull << cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EPERM)
			return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	if (!eff && !prm && !d[0].inheritable && !d[1].inheritable)
		return 0;
	eff &= VS_CAPS_KEPT;
	prm &= VS_CAPS_KEPT;
	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(eff >> (32 * i));
		d[i].permitted = (uint32_t)(prm >> (32 * i));
		d[i].inheritable = 0;
	}
	return syscall(SYS_capset, &hdr, d) < 0 ? -errno : 0;
}
