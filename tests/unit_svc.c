/* SPDX-License-Identifier: BSD-3-Clause */
/* Validation of the service protocol: vmswapd trusts nothing a peer sends. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include <vmswap/svc.h>

static struct vmswap_svc_start *good_start(const char *env, size_t len)
{
	struct vmswap_svc_start *m = calloc(1, sizeof(*m));

	cr_assert(m);
	*m = (struct vmswap_svc_start){ .magic = VMSWAP_SVC_MAGIC, .version = VMSWAP_SVC_VERSION,
					.type = VMSWAP_SVC_START, .size = sizeof(*m),
					.vmm_pid = 42, .env_len = (uint32_t)len };
	memcpy(m->env, env, len);
	return m;
}

Test(svc, accepts_a_well_formed_start)
{
	static const char env[] = "VMSWAP_LOG=info\0VMSWAP_SWAP_DIR=/var/tmp";
	struct vmswap_svc_start *m = good_start(env, sizeof(env));

	cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m)), 0);
	m->env_len = 0;
	cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m)), 0, "no settings at all is fine");
	free(m);
}

Test(svc, refuses_bad_headers)
{
	struct vmswap_svc_start *m = good_start("", 0);

	cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m) - 1), -EPROTO, "short");
	m->magic ^= 1;
	cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m)), -EPROTO, "magic");
	m->magic ^= 1;
	m->version = 2;
	cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m)), -EPROTO, "version");
	m->version = VMSWAP_SVC_VERSION;
	m->type = VMSWAP_SVC_REPLY;
	cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m)), -EPROTO, "type");
	m->type = VMSWAP_SVC_START;
	m->size = 12;
	cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m)), -EPROTO, "size field");
	m->size = sizeof(*m);
	m->vmm_pid = 0;
	cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m)), -EBADMSG, "pid 0");
	free(m);
}

Test(svc, refuses_settings_that_are_not_vmswap_ones)
{
	static const struct {
		const char *env;
		size_t len;
		const char *why;
	} bad[] = {
		{ "PATH=/tmp", 10, "not VMSWAP_" },
		{ "LD_PRELOAD=/x.so", 17, "the preload" },
		{ "VMSWAP_LOG", 11, "no =" },
		{ "VMSWAP_=1", 10, "empty name" },
		{ "VMSWAP_LOG=info", 15, "unterminated" },
		{ "VMSWAP_LOG=info\0PATH=/", 23, "a second one not VMSWAP_" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmswap_svc_start *m = good_start(bad[i].env, bad[i].len);

		cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m)), -EBADMSG, "%s", bad[i].why);
		free(m);
	}
	struct vmswap_svc_start *m = good_start("", 0);

	m->env_len = VMSWAP_SVC_ENV_MAX + 1;
	cr_assert_eq(vmswap_svc_check_start(m, sizeof(*m)), -EBADMSG, "env_len past the end");
	free(m);
}

Test(svc, checks_replies)
{
	struct vmswap_svc_reply r = { .magic = VMSWAP_SVC_MAGIC, .version = VMSWAP_SVC_VERSION,
				      .type = VMSWAP_SVC_REPLY, .size = sizeof(r) };

	strcpy(r.run_root, "/run/vmswap");
	cr_assert_eq(vmswap_svc_check_reply(&r, sizeof(r)), 0);
	strcpy(r.run_root, "run/vmswap");
	cr_assert_eq(vmswap_svc_check_reply(&r, sizeof(r)), -EBADMSG, "a relative root");
	r.result = -EPERM;
	cr_assert_eq(vmswap_svc_check_reply(&r, sizeof(r)), 0, "a refusal needs no root");
	r.result = 1;
	cr_assert_eq(vmswap_svc_check_reply(&r, sizeof(r)), -EBADMSG, "a positive result");
	r.result = 0;
	strcpy(r.run_root, "/run");
	memset(r.message, 'x', sizeof(r.message));
	cr_assert_eq(vmswap_svc_check_reply(&r, sizeof(r)), -EBADMSG, "unterminated message");
	cr_assert_eq(vmswap_svc_check_reply(&r, sizeof(r) - 4), -EPROTO, "short");
}
