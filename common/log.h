//  common/log.h: one-line log records on stderr: time, level, component, message.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_LOG_H
#define CB_LOG_H

#include <stdbool.h>

typedef enum { CB_LOG_DEBUG, CB_LOG_INFO, CB_LOG_WARN, CB_LOG_ERROR } cb_log_level_t;

//  Records below `level` are dropped. Default INFO; CB_LOG=debug|info|warn|error overrides.
void cb_log_set_level(cb_log_level_t level);
void cb_log_set_name(const char *name);     //  borrowed; must outlive logging
void cb_log(cb_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

//  Rate limit for logs driven by peers: true at most once per second per call site.
//  `last_ms` belongs to one thread (a per-thread or per-actor field, never a shared static).
bool cb_log_ratelimit(long long *last_ms);

#define cb_debug(...) cb_log(CB_LOG_DEBUG, __VA_ARGS__)
#define cb_info(...) cb_log(CB_LOG_INFO, __VA_ARGS__)
#define cb_warn(...) cb_log(CB_LOG_WARN, __VA_ARGS__)
#define cb_error(...) cb_log(CB_LOG_ERROR, __VA_ARGS__)

#endif
