//  common/log.c
//  SPDX-License-Identifier: Apache-2.0
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"

static _Atomic int s_level = -1;
static const char *s_name = "cb";

static int s_env_level(void)
{
    const char *env = getenv("CB_LOG");
    if (!env)
        return CB_LOG_INFO;
    if (!strcasecmp(env, "debug"))
        return CB_LOG_DEBUG;
    if (!strcasecmp(env, "warn"))
        return CB_LOG_WARN;
    if (!strcasecmp(env, "error"))
        return CB_LOG_ERROR;
    return CB_LOG_INFO;
}

void cb_log_set_level(cb_log_level_t level)
{
    s_level = (int)level;
}

void cb_log_set_name(const char *name)
{
    s_name = name;
}

void cb_log(cb_log_level_t level, const char *fmt, ...)
{
    if (s_level < 0)
        s_level = s_env_level();
    if ((int)level < s_level)
        return;
    static const char *tags[] = {"debug", "info", "warn", "error"};
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s %s: ", tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, tags[level], s_name);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    //  One write per record so that records of several threads do not interleave.
    fprintf(stderr, "%s\n", line);
}

bool cb_log_ratelimit(long long *last_ms)
{
    long long now = cb_clock_mono_ms();
    if (now - *last_ms < 1000)
        return false;
    *last_ms = now;
    return true;
}
