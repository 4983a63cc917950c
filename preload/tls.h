/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef SHIM_TLS_H
#define SHIM_TLS_H

/*
 * Thread-local flags of the shim. initial-exec: the library is preloaded,
 * so its TLS is static and an access never calls into the dynamic linker
 * (which could allocate, and so recurse into mmap).
 */
#define SHIM_TLS __thread __attribute__((tls_model("initial-exec")))

#endif
