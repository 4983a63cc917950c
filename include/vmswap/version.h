/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Version and install paths, as the build was configured (the Makefile
 * writes build/gen/vmswap_config.h from VERSION, PREFIX and LIBEXECDIR).
 */
#ifndef VMSWAP_VERSION_H
#define VMSWAP_VERSION_H

#include "vmswap_config.h"

/* Where `make install` puts the helper; the shim and vmswapd look there. */
#define VMSWAP_INSTALLED_HELPER VMSWAP_LIBEXECDIR "/vmswap/vmswap-helper"
/* Members of this group may use vmswap: /dev/userfaultfd and vmswapd's socket. */
#define VMSWAP_GROUP "vmswap"

#endif
