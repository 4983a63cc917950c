/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tiny reader for the status.json that vmswap-helper publishes. Not a
 * general JSON parser: it relies on keys being unique outside "replies".
 * A key is looked up among the members of the top-level object first,
 * then inside nested objects (so "resident_pages" finds
 * metrics.resident_pages); arrays are never searched.
 * Everything returns 0 or -errno: -ENOENT key missing, -EINVAL malformed
 * or wrong type, -ERANGE number too big, -ENOSPC string truncated.
 * Linked by vmswapctl and by the e2e tests: depends on no other ctl file.
 */
#ifndef VS_CTL_JSON_H
#define VS_CTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int vs_json_get_u64(const char *json, const char *key, uint64_t *out);

/* Unescapes \" \\ \/ \b \f \n \r \t \uXXXX (UTF-8). On -ENOSPC buf holds
 * the truncated, NUL-terminated prefix. */
int vs_json_get_str(const char *json, const char *key, char *buf, size_t n);

int vs_json_get_bool(const char *json, const char *key, bool *out);

/* The newest entry of "replies" whose "id" equals id: its "ok" and its
 * "message" (msg may be NULL). -ENOENT when no entry has that id. */
int vs_json_find_reply(const char *json, const char *id, bool *ok, char *msg, size_t n);

/* Call fn for each integer member of the object under obj_key, in order;
 * other members are skipped. Stops at and returns fn's first non-zero. */
typedef int (*vs_json_u64_fn)(const char *key, uint64_t val, void *arg);
int vs_json_each_u64(const char *json, const char *obj_key, vs_json_u64_fn fn, void *arg);

/*
 * Read <run dir>/<vmm_pid>/status.json into a malloc'd NUL-terminated
 * buffer (caller frees). A read that is short or not one complete JSON
 * object is retried once; then -EBADMSG, which pollers may treat as
 * transient. -ENOENT when there is no status (yet).
 */
int vs_status_read(int vmm_pid, char **json_out);

#endif
