/* SPDX-License-Identifier: BSD-3-Clause */
/* Validation of shim messages: the helper trusts nothing the VMM sends. */
#include <criterion/criterion.h>
#include <errno.h>

#include <vmswap/proto.h>

static struct vmswap_msg_region_add good_add(void)
{
	struct vmswap_msg_region_add m = { .addr = 0x7f0000000000, .len = 64 << 20, .offset = 1 << 20 };

	vmswap_msg_init(&m.hdr, VMSWAP_MSG_REGION_ADD, sizeof(m), 7);
	strcpy(m.name, "guest");
	return m;
}

Test(proto, accepts_well_formed_messages)
{
	struct vmswap_msg_region_add add = good_add();
	struct vmswap_msg_hello h = { .pid = 10, .vmm_pid = 10, .flags = VMSWAP_HELLO_HAS_UFFD };
	struct vmswap_msg_region_del del = { .addr = 0x1000, .len = 0x2000 };
	struct vmswap_msg_discard dis = { .offset = 5, .len = 100 };

	vmswap_msg_init(&h.hdr, VMSWAP_MSG_HELLO, sizeof(h), 1);
	vmswap_msg_init(&del.hdr, VMSWAP_MSG_REGION_DEL, sizeof(del), 2);
	vmswap_msg_init(&dis.hdr, VMSWAP_MSG_DISCARD, sizeof(dis), 3);
	cr_assert_eq(vmswap_msg_check(&add, sizeof(add), 1), 0);
	cr_assert_eq(vmswap_msg_check(&h, sizeof(h), 1), 0);
	cr_assert_eq(vmswap_msg_check(&del, sizeof(del), 0), 0);
	cr_assert_eq(vmswap_msg_check(&dis, sizeof(dis), 1), 0);
	h.flags = 0;
	cr_assert_eq(vmswap_msg_check(&h, sizeof(h), 0), 0, "HELLO without a uffd");
}

Test(proto, rejects_bad_header_and_sizes)
{
	struct vmswap_msg_region_add m = good_add();

	cr_assert_eq(vmswap_msg_check(&m, 3, 1), -EPROTO, "truncated header");
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m) - 1, 1), -EPROTO, "truncated body");
	m.hdr.magic ^= 1;
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 1), -EPROTO, "bad magic");
	m = good_add();
	m.hdr.version = 99;
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 1), -EPROTO, "bad version");
	m = good_add();
	m.hdr.type = 77;
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 1), -EPROTO, "unknown type");
	m = good_add();
	m.hdr.size = sizeof(m) + 8;
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 1), -EPROTO, "size field lies");
}

Test(proto, rejects_wrong_fd_counts)
{
	struct vmswap_msg_region_add m = good_add();
	struct vmswap_msg_hello h = { .pid = 10, .vmm_pid = 10 };

	vmswap_msg_init(&h.hdr, VMSWAP_MSG_HELLO, sizeof(h), 1);
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 0), -EBADMSG, "missing memfd");
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 2), -EBADMSG, "extra fd");
	cr_assert_eq(vmswap_msg_check(&h, sizeof(h), 1), -EBADMSG, "uffd without the flag");
}

Test(proto, rejects_bad_ranges_and_strings)
{
	struct vmswap_msg_region_add m = good_add();
	struct vmswap_msg_hello h = { .pid = 10, .vmm_pid = 10 };

	m.addr += 1;
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 1), -EBADMSG, "unaligned addr");
	m = good_add();
	m.len = 0;
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 1), -EBADMSG, "empty");
	m = good_add();
	m.addr = UINT64_MAX - 4095;
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 1), -EBADMSG, "wraps");
	m = good_add();
	memset(m.name, 'x', sizeof(m.name));
	cr_assert_eq(vmswap_msg_check(&m, sizeof(m), 1), -EBADMSG, "unterminated name");
	vmswap_msg_init(&h.hdr, VMSWAP_MSG_HELLO, sizeof(h), 1);
	h.pid = -1;
	cr_assert_eq(vmswap_msg_check(&h, sizeof(h), 0), -EBADMSG, "bad pid");
	h.pid = 10;
	h.flags = 0x80;
	cr_assert_eq(vmswap_msg_check(&h, sizeof(h), 0), -EBADMSG, "unknown flag");
}
