/* SPDX-License-Identifier: BSD-3-Clause */
/* Leveled logging to stderr, "vmswap-helper[pid]: " prefixed. */
#ifndef VS_LOG_H
#define VS_LOG_H

enum vs_log_level { VS_LOG_ERROR, VS_LOG_WARN, VS_LOG_INFO, VS_LOG_DEBUG };

/* Parse "error|warn|info|debug" (NULL or "" = warn). 0 or -EINVAL. */
int vs_log_parse_level(const char *s, enum vs_log_level *out);
void vs_log_set_level(enum vs_log_level level);
/* The program name in each line (default vmswap-helper). */
void vs_log_set_name(const char *name);
void vs_log(enum vs_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define vs_err(...) vs_log(VS_LOG_ERROR, __VA_ARGS__)
#define vs_warn(...) vs_log(VS_LOG_WARN, __VA_ARGS__)
#define vs_info(...) vs_log(VS_LOG_INFO, __VA_ARGS__)
#define vs_dbg(...) vs_log(VS_LOG_DEBUG, __VA_ARGS__)

#endif
