/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: vmswapd's check of a START request
 * (vmswap_svc_check_start in include/vmswap/svc.h), which is all that
 * stands between a peer's bytes and the helper's environment. The input
 * is the packet as recvmsg() leaves it in vmswapd's buffer. Whatever the
 * check accepts must be a list of terminated VMSWAP_NAME=value entries
 * inside env_len, as spawn.c walks it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmswap/svc.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmswap_svc_start m;
	size_t len = size > sizeof(m) ? sizeof(m) : size, n = 0;

	memset(&m, 0, sizeof(m));
	memcpy(&m, data, len);
	if (vmswap_svc_check_start(&m, len))
		return 0;
	must(len == sizeof(m) && m.vmm_pid > 0 && m.env_len <= sizeof(m.env));
	for (size_t i = 0; i < m.env_len; i += strlen(m.env + i) + 1, n++) {
		const char *e = m.env + i, *eq = memchr(e, '=', m.env_len - i);

		must(!strncmp(e, "VMSWAP_", 7) && eq && eq > e + 7);
		must(i + strlen(e) < m.env_len);
	}
	must(n <= sizeof(m.env) / 10);
	return 0;
}
