//  executor/fnlib.c: the user library (function.h) as the runner implements it, and the
//  runner's blocking frame I/O (see fnlib.h).
//
//  Everything a function receives is borrowed until its call ends: values and messages are
//  copied into the call's arena (a list of malloc'ed blocks freed by exec_fnctx_end), each
//  followed by a NUL so that strings are C strings. Messages go through the executor: a
//  send is a SEND frame the executor forwards; a receive asks the executor (RECV) and waits
//  for its INBOX answer, so the runner needs no sockets of its own beyond the KVS client.
//  SPDX-License-Identifier: Apache-2.0
#include "executor/fnlib.h"

#include <errno.h>
#include <poll.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "proto/wire.h"

struct exec_block_s {
    exec_block_t *next;
    alignas(max_align_t) unsigned char data[];
};

void exec_fnctx_init(cb_fn_ctx_t *ctx, int fd, const char *executor_id,
                     const cb_kvs_config_t *kvs_config)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->fd = fd;
    ctx->executor_id = executor_id;
    ctx->kvs_config = *kvs_config;
}

void exec_fnctx_fini(cb_fn_ctx_t *ctx)
{
    exec_fnctx_end(ctx);
    cb_kvs_destroy(&ctx->kvs);
    exec_buf_fini(&ctx->aux);
    exec_buf_fini(&ctx->out);
}

void exec_fnctx_begin(cb_fn_ctx_t *ctx, const char *function)
{
    ctx->function = function;
}

void exec_fnctx_end(cb_fn_ctx_t *ctx)
{
    while (ctx->arena) {
        exec_block_t *next = ctx->arena->next;
        cb_free(ctx->arena);
        ctx->arena = next;
    }
    cb_free(ctx->error);
    ctx->error = NULL;
    for (size_t i = 0; i < ctx->n_logs; i++)
        cb_free(ctx->logs[i]);
    cb_free(ctx->logs);
    ctx->logs = NULL;
    ctx->n_logs = ctx->logs_dropped = 0;
    ctx->function = NULL;
}

cb_kvs_t *exec_fnctx_kvs(cb_fn_ctx_t *ctx, char *err, size_t errlen)
{
    if (!ctx->kvs) {
        ctx->kvs = cb_kvs_new(&ctx->kvs_config);
        if (!ctx->kvs && err)
            snprintf(err, errlen, "cannot make a KVS client for %s: %s", ctx->kvs_config.routing,
                     strerror(errno));
    }
    return ctx->kvs;
}

void *cb_fn_alloc(cb_fn_ctx_t *ctx, size_t size)
{
    exec_block_t *block = cb_malloc(sizeof *block + size);
    block->next = ctx->arena;
    ctx->arena = block;
    return block->data;
}

void *exec_fnctx_dup(cb_fn_ctx_t *ctx, const void *data, size_t len)
{
    unsigned char *p = cb_fn_alloc(ctx, len + 1);
    if (len)
        memcpy(p, data, len);
    p[len] = 0;
    return p;
}

//  --------------------------------------------------------------------------------------
//  Frame I/O

int exec_chan_write(int fd, const exec_buf_t *buf)
{
    for (size_t done = 0; done < buf->len;) {
        ssize_t n = write(fd, buf->data + done, buf->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

//  Reads exactly len bytes into p before deadline (monotonic ms; INT64_MAX: none).
static int s_read_exact(int fd, uint8_t *p, size_t len, int64_t deadline)
{
    while (len) {
        if (deadline != INT64_MAX) {
            int64_t left = deadline - cb_clock_mono_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int rc = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
            if (rc < 0 && errno != EINTR)
                return -errno;
            if (rc <= 0)
                continue;
        }
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int exec_chan_read(int fd, exec_buf_t *buf, int timeout_ms, uint8_t *type, exec_reader_t *body)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : cb_clock_mono_ms() + timeout_ms;
    buf->len = 0;
    uint8_t *head = exec_buf_reserve(buf, 4);
    int rc = s_read_exact(fd, head, 4, deadline);
    if (rc)
        return rc;
    uint32_t n = (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16 |
                 (uint32_t)head[3] << 24;
    if (n == 0 || n > EXEC_FRAME_MAX)
        return -EPROTO;
    buf->len = 4;
    //  Once a frame has started, the rest follows at once: wait for it without a limit
    //  rather than leave the stream in the middle of a frame.
    rc = s_read_exact(fd, exec_buf_reserve(buf, n), n, INT64_MAX);
    if (rc)
        return rc;
    buf->len += n;
    size_t used;
    return exec_frame_parse(buf->data, buf->len, type, body, &used);
}

//  --------------------------------------------------------------------------------------
//  Results and errors

int cb_fn_return_int(cb_fn_ctx_t *ctx, cb_fn_value_t *result, int64_t v)
{
    (void)ctx;
    *result = cb_fn_int(v);
    return 0;
}

int cb_fn_return_float(cb_fn_ctx_t *ctx, cb_fn_value_t *result, double v)
{
    (void)ctx;
    *result = cb_fn_float(v);
    return 0;
}

int cb_fn_return_bytes(cb_fn_ctx_t *ctx, cb_fn_value_t *result, const void *data, size_t len)
{
    *result = cb_fn_bytes(exec_fnctx_dup(ctx, data, len), len);
    return 0;
}

int cb_fn_return_string(cb_fn_ctx_t *ctx, cb_fn_value_t *result, const char *text)
{
    size_t len = strlen(text);
    *result = cb_fn_bytes(exec_fnctx_dup(ctx, text, len), len);
    result->type = CB_FN_STRING;
    return 0;
}

int cb_fn_return_user(cb_fn_ctx_t *ctx, cb_fn_value_t *result, uint32_t user_tag, const void *data,
                      size_t len)
{
    *result = cb_fn_bytes(exec_fnctx_dup(ctx, data, len), len);
    result->type = CB_FN_USER;
    result->user_tag = user_tag;
    return 0;
}

int cb_fn_return_value(cb_fn_ctx_t *ctx, cb_fn_value_t *result, const cb_fn_value_t *value)
{
    *result = *value;
    if (value->type != CB_FN_INT64 && value->type != CB_FN_FLOAT64)
        result->data = exec_fnctx_dup(ctx, value->data, value->len);
    return 0;
}

int cb_fn_error(cb_fn_ctx_t *ctx, const char *fmt, ...)
{
    char text[EXEC_MAX_ERROR];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cb_free(ctx->error);
    ctx->error = cb_strdup(text);
    return -1;
}

void cb_fn_log(cb_fn_ctx_t *ctx, const char *fmt, ...)
{
    if (ctx->n_logs >= EXEC_MAX_LOG_LINES) {
        ctx->logs_dropped++;
        return;
    }
    char line[EXEC_MAX_LOG_LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!ctx->logs)
        ctx->logs = cb_malloc(EXEC_MAX_LOG_LINES * sizeof *ctx->logs);
    ctx->logs[ctx->n_logs++] = cb_strdup(line);
}

const char *cb_fn_name(cb_fn_ctx_t *ctx)
{
    return ctx->function;
}

//  --------------------------------------------------------------------------------------
//  State

int cb_fn_get(cb_fn_ctx_t *ctx, const char *key, cb_fn_value_t *out)
{
    memset(out, 0, sizeof *out);
    cb_kvs_t *kvs = exec_fnctx_kvs(ctx, NULL, 0);
    if (!kvs)
        return -EHOSTUNREACH;
    lat_t v;
    int rc = cb_kvs_get(kvs, key, &v);
    if (rc)
        return rc;
    if (v.kind != LAT_LWW) {
        lat_fini(&v);
        return -EINVAL;
    }
    const uint8_t *copy = exec_fnctx_dup(ctx, v.u.lww.value.data, v.u.lww.value.len);
    rc = exec_value_view(copy, v.u.lww.value.len, out);
    lat_fini(&v);
    if (rc == 0 && out->type == EXEC_VALUE_ERROR)
        rc = -EINVAL;
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

int cb_fn_put(cb_fn_ctx_t *ctx, const char *key, const cb_fn_value_t *value)
{
    bool scalar = value->type == CB_FN_INT64 || value->type == CB_FN_FLOAT64;
    if (!exec_value_type_ok(value->type) || (!scalar && value->len && !value->data))
        return -EINVAL;
    cb_kvs_t *kvs = exec_fnctx_kvs(ctx, NULL, 0);
    if (!kvs)
        return -EHOSTUNREACH;
    size_t n = exec_value_size(value);
    uint8_t *bytes = cb_malloc(n);
    exec_value_write(value, bytes);
    int rc = cb_kvs_put_lww(kvs, key, bytes, n);
    cb_free(bytes);
    return rc;
}

int cb_fn_get_lattice(cb_fn_ctx_t *ctx, const char *key, uint32_t *kind, const void **payload,
                      size_t *len)
{
    *kind = 0;
    *payload = NULL;
    *len = 0;
    cb_kvs_t *kvs = exec_fnctx_kvs(ctx, NULL, 0);
    if (!kvs)
        return -EHOSTUNREACH;
    lat_t v;
    int rc = cb_kvs_get(kvs, key, &v);
    if (rc)
        return rc;
    cb_bytes_t bytes = {0};
    rc = wire_encode(&v, &bytes);
    if (rc == 0) {
        *kind = (uint32_t)v.kind;
        *payload = exec_fnctx_dup(ctx, bytes.data, bytes.len);
        *len = bytes.len;
    }
    cb_bytes_fini(&bytes);
    lat_fini(&v);
    return rc;
}

int cb_fn_put_lattice(cb_fn_ctx_t *ctx, const char *key, uint32_t kind, const void *payload,
                      size_t len)
{
    if (!lat_kind_valid((int)kind))
        return -EINVAL;
    lat_t v;
    if (wire_decode((int)kind, payload, len, &v) != 0)
        return -EINVAL;
    cb_kvs_t *kvs = exec_fnctx_kvs(ctx, NULL, 0);
    int rc = kvs ? cb_kvs_put(kvs, key, &v) : -EHOSTUNREACH;
    lat_fini(&v);
    return rc;
}

//  --------------------------------------------------------------------------------------
//  Messages

const char *cb_fn_getid(cb_fn_ctx_t *ctx)
{
    return ctx->executor_id;
}

int cb_fn_send(cb_fn_ctx_t *ctx, const char *executor_id, const void *data, size_t len)
{
    if (!executor_id || (strncmp(executor_id, "tcp://", 6) && strncmp(executor_id, "ipc://", 6)))
        return -EINVAL;
    if (len > EXEC_MAX_SEND || strlen(executor_id) > 1024)
        return -EMSGSIZE;
    if (len && !data)
        return -EINVAL;
    ctx->out.len = 0;
    size_t start = exec_frame_begin(&ctx->out, EXEC_R_SEND);
    exec_frame_str(&ctx->out, executor_id);
    exec_frame_bytes(&ctx->out, data, len);
    exec_frame_end(&ctx->out, start);
    return exec_chan_write(ctx->fd, &ctx->out);
}

int cb_fn_recv(cb_fn_ctx_t *ctx, cb_fn_message_t *out, int timeout_ms)
{
    memset(out, 0, sizeof *out);
    if (timeout_ms < 0)
        timeout_ms = 0;
    ctx->out.len = 0;
    size_t start = exec_frame_begin(&ctx->out, EXEC_R_RECV);
    exec_frame_u32(&ctx->out, (uint32_t)timeout_ms);
    exec_frame_end(&ctx->out, start);
    int rc = exec_chan_write(ctx->fd, &ctx->out);
    if (rc)
        return rc;
    //  The executor answers by the deadline it was given (or kills us when the call's
    //  own timeout comes first); the margin only guards against an executor gone wrong.
    for (;;) {
        uint8_t type;
        exec_reader_t r;
        rc = exec_chan_read(ctx->fd, &ctx->aux, timeout_ms + 5000, &type, &r);
        if (rc < 0)
            return rc == -EPIPE ? -EPIPE : -ETIMEDOUT;
        if (type != EXEC_M_INBOX)
            continue; //  nothing else is sent during a call; skip what is not ours
        bool found = exec_read_u8(&r);
        const char *sender = exec_read_str(&r);
        size_t len;
        const uint8_t *data = exec_read_bytes(&r, &len);
        if (!exec_read_done(&r) || !found)
            return -ETIMEDOUT;
        out->sender = exec_fnctx_dup(ctx, sender, strlen(sender));
        out->data = exec_fnctx_dup(ctx, data, len);
        out->len = len;
        return 0;
    }
}
