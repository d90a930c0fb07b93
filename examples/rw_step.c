//  examples/rw_step.c: one step of a read/write workload for the consistency checker
//  (tests/system/consistency_check.c, issue 4). Fixed arguments are STRING operations:
//    "r:KEY"   read KEY (cb_fn_get) and record "KEY@VALUE" ("KEY@-" when it does not exist)
//    "R:KEY"   read KEY as a lattice (cb_fn_get_lattice; the causal levels) and record the
//              version read: "KEY~" then the lattice kind as one digit and the hex of its
//              Anna wire payload (clock, dependencies and value): the checker decodes it.
//              "KEY@-" when it does not exist
//    "w:KEY"   write KEY with a value no one else writes ("f<executor>-<ns>")
//    "s:MS"    sleep MS milliseconds (widens the window for concurrent writers)
//  Upstream results (STRING, the records of the functions before) come first in the
//  result, then this step's own records, which start with "#NAME," (this function's name:
//  the checker knows which function read what, so which reads came causally before which),
//  then its reads: "#rw0,k1@v1,k3@-,k1@v1,". Writes are recorded as "!KEY@VALUE,".
//  A read that fails (a consistency level that cannot be kept) fails the step.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor/function.h"

const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;

//  Causal records carry clocks and dependencies in hex: room for a few hundred of them.
#define RW_MAX (1024 * 1024)

static int s_append(char *buf, size_t *n, const char *fmt1, const char *a, size_t alen,
                    const char *b, size_t blen)
{
    int w = snprintf(buf + *n, RW_MAX - *n, fmt1, (int)alen, a, (int)blen, b);
    if (w < 0 || (size_t)w >= RW_MAX - *n)
        return -1;
    *n += (size_t)w;
    return 0;
}

static int s_is_op(char c)
{
    return c == 'r' || c == 'R' || c == 'w' || c == 's';
}

int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    char *buf = cb_fn_alloc(ctx, RW_MAX);
    if (!buf)
        return cb_fn_error(ctx, "out of memory");
    size_t n = 0;
    buf[0] = 0;
    //  Upstream records first (strings that do not look like operations).
    for (size_t i = 0; i < nargs; i++) {
        if (args[i].type != CB_FN_STRING)
            return cb_fn_error(ctx, "argument %zu is not a string", i + 1);
        const char *s = args[i].data;
        if (args[i].len >= 2 && s[1] == ':' && s_is_op(s[0]))
            continue;
        if (s_append(buf, &n, "%.*s%.*s", s, args[i].len, "", 0))
            return cb_fn_error(ctx, "record too long");
    }
    const char *self = cb_fn_name(ctx);
    if (s_append(buf, &n, "#%.*s%.*s,", self, strlen(self), "", 0))
        return cb_fn_error(ctx, "record too long");
    for (size_t i = 0; i < nargs; i++) {
        const char *s = args[i].data;
        if (!(args[i].len >= 2 && s[1] == ':' && s_is_op(s[0])))
            continue;
        const char *key = s + 2;
        size_t klen = args[i].len - 2;
        if (s[0] == 's') {
            long ms = strtol(key, NULL, 10);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        } else if (s[0] == 'w') {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            char val[256];
            snprintf(val, sizeof val, "f%s-%lld", cb_fn_getid(ctx),
                     (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
            for (char *p = val; *p; p++)
                if (*p == ',' || *p == '@')
                    *p = '_';
            cb_fn_value_t v = cb_fn_string(val);
            int rc = cb_fn_put(ctx, key, &v);
            if (rc)
                return cb_fn_error(ctx, "write '%s' failed (%d)", key, rc);
            if (s_append(buf, &n, "!%.*s@%.*s,", key, klen, val, strlen(val)))
                return cb_fn_error(ctx, "record too long");
        } else {
            //  A read: "r" as a cb value, "R" as the version (lattice payload, in hex).
            cb_fn_value_t v = cb_fn_bytes(NULL, 0);
            uint32_t kind = 0;
            const void *payload = NULL;
            size_t len = 0;
            int rc = s[0] == 'R' ? cb_fn_get_lattice(ctx, key, &kind, &payload, &len)
                                 : cb_fn_get(ctx, key, &v);
            if (rc && rc != -ENOENT)
                return cb_fn_error(ctx, "read '%s' failed (%d)", key, rc);
            if (rc == -ENOENT || s[0] == 'r') {
                if (s_append(buf, &n, "%.*s@%.*s,", key, klen, rc ? "-" : v.data,
                             rc ? 1 : v.len))
                    return cb_fn_error(ctx, "record too long");
                continue;
            }
            if (kind > 9 || n + klen + 3 + 2 * len >= RW_MAX)
                return cb_fn_error(ctx, "record too long");
            n += (size_t)snprintf(buf + n, RW_MAX - n, "%.*s~%u", (int)klen, key, kind);
            static const char hex[] = "0123456789abcdef";
            for (size_t b = 0; b < len; b++) {
                buf[n++] = hex[((const unsigned char *)payload)[b] >> 4];
                buf[n++] = hex[((const unsigned char *)payload)[b] & 15];
            }
            buf[n++] = ',';
            buf[n] = 0;
        }
    }
    return cb_fn_return_string(ctx, result, buf);
}
