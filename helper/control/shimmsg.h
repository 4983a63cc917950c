/* SPDX-License-Identifier: BSD-3-Clause */
/* Messages on a shim connection: received, checked, carried out, answered. */
#ifndef VS_SHIMMSG_H
#define VS_SHIMMSG_H

#include "shimconn.h"

/* Read and answer one message. 0, or -errno when the connection is done. */
int vs_conn_handle(struct vs_conn *c);

#endif
