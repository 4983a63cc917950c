/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The service protocol: how a shim asks vmswapd to start its helper.
 *
 * The shim connects to the service's SOCK_SEQPACKET socket and sends one
 * VMSWAP_SVC_START. vmswapd checks the peer (SO_PEERCRED and its pidfd:
 * the VMM asks for itself only), makes the VMM's run directory, starts
 * vmswap-helper as the VMM's user with this very connection as its shim
 * socket, and answers with one VMSWAP_SVC_REPLY. From then on the
 * connection speaks proto.h, exactly as with a helper the shim started
 * itself (HELLO first). All the VMM does is socket, connect, sendmsg and
 * recvmsg, which a sandboxed VMM (QEMU -sandbox spawn=deny) may do.
 */
#ifndef VMSWAP_SVC_H
#define VMSWAP_SVC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VMSWAP_SVC_MAGIC 0x56535344u /* "VSSD" */
#define VMSWAP_SVC_VERSION 1
#define VMSWAP_SVC_ENV_MAX 2048  /* VMSWAP_* settings passed on to the helper */
#define VMSWAP_SVC_PATH_MAX 108  /* sizeof(sockaddr_un.sun_path) */
#define VMSWAP_SVC_MSG_MAX 128

/* Default socket of the service; VMSWAP_SERVICE_SOCKET names another. */
#define VMSWAP_DEFAULT_SERVICE_SOCKET "/run/vmswap/vmswapd.sock"
#define VMSWAP_ENV_SERVICE_SOCKET "VMSWAP_SERVICE_SOCKET"

enum vmswap_svc_type {
	VMSWAP_SVC_START = 1, /* shim -> vmswapd */
	VMSWAP_SVC_REPLY = 2, /* vmswapd -> shim */
};

struct vmswap_svc_start {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t size;     /* of the whole message */
	int32_t vmm_pid;   /* must be the connecting process */
	uint32_t env_len;  /* bytes used in env */
	/* "NAME=value\0" entries, every NAME starting with VMSWAP_ */
	char env[VMSWAP_SVC_ENV_MAX];
};

struct vmswap_svc_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t size;
	int32_t result;    /* 0: the helper is started on this connection; else -errno */
	char run_root[VMSWAP_SVC_PATH_MAX];  /* where <vmm_pid>/ is, NUL-terminated */
	char message[VMSWAP_SVC_MSG_MAX];    /* why not, NUL-terminated */
};

/*
 * Check a START of @len bytes. Returns 0, or -EPROTO (header, size) or
 * -EBADMSG (an entry that is not VMSWAP_NAME=value, unterminated).
 */
static inline int vmswap_svc_check_start(const struct vmswap_svc_start *m, size_t len)
{
	if (len != sizeof(*m) || m->magic != VMSWAP_SVC_MAGIC ||
	    m->version != VMSWAP_SVC_VERSION || m->type != VMSWAP_SVC_START ||
	    m->size != sizeof(*m))
		return -EPROTO;
	if (m->vmm_pid <= 0 || m->env_len > sizeof(m->env) ||
	    (m->env_len && m->env[m->env_len - 1]))
		return -EBADMSG;
	for (size_t i = 0; i < m->env_len; i += strlen(m->env + i) + 1) {
		const char *e = m->env + i, *eq = strchr(e, '=');

		if (strncmp(e, "VMSWAP_", 7) || !eq || eq == e + 7)
			return -EBADMSG;
	}
	return 0;
}

static inline int vmswap_svc_check_reply(const struct vmswap_svc_reply *m, size_t len)
{
	if (len != sizeof(*m) || m->magic != VMSWAP_SVC_MAGIC ||
	    m->version != VMSWAP_SVC_VERSION || m->type != VMSWAP_SVC_REPLY ||
	    m->size != sizeof(*m))
		return -EPROTO;
	if (!memchr(m->run_root, 0, sizeof(m->run_root)) ||
	    !memchr(m->message, 0, sizeof(m->message)) || m->result > 0 ||
	    (!m->result && m->run_root[0] != '/'))
		return -EBADMSG;
	return 0;
}

#endif
