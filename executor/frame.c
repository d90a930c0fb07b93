//  executor/frame.c: frames of the executor <-> runner protocol (see frame.h). Pure.
//  SPDX-License-Identifier: Apache-2.0
#include "executor/frame.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/value.h"

void exec_buf_init(exec_buf_t *self)
{
    memset(self, 0, sizeof *self);
}

void exec_buf_fini(exec_buf_t *self)
{
    cb_free(self->data);
    memset(self, 0, sizeof *self);
}

uint8_t *exec_buf_reserve(exec_buf_t *self, size_t n)
{
    if (self->cap - self->len < n) {
        size_t cap = self->cap ? self->cap : 256;
        while (cap - self->len < n)
            cap *= 2;
        self->data = cb_realloc(self->data, cap);
        self->cap = cap;
    }
    return self->data + self->len;
}

void exec_buf_append(exec_buf_t *self, const void *data, size_t len)
{
    if (!len)
        return;
    memcpy(exec_buf_reserve(self, len), data, len);
    self->len += len;
}

void exec_buf_consume(exec_buf_t *self, size_t n)
{
    assert(n <= self->len);
    //  Readers consume whole frames from the front; what is left is usually a partial
    //  frame of a few bytes, so the move is cheap.
    memmove(self->data, self->data + n, self->len - n);
    self->len -= n;
}

static void s_put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

size_t exec_frame_begin(exec_buf_t *buf, uint8_t type)
{
    size_t start = buf->len;
    exec_buf_reserve(buf, 5);
    buf->len += 4; //  the length, filled in by exec_frame_end
    buf->data[buf->len++] = type;
    return start;
}

void exec_frame_end(exec_buf_t *buf, size_t start)
{
    size_t body = buf->len - start - 4;
    assert(body <= EXEC_FRAME_MAX);
    s_put_le(buf->data + start, body, 4);
}

void exec_frame_u8(exec_buf_t *buf, uint8_t v)
{
    exec_buf_append(buf, &v, 1);
}

void exec_frame_u32(exec_buf_t *buf, uint32_t v)
{
    s_put_le(exec_buf_reserve(buf, 4), v, 4);
    buf->len += 4;
}

void exec_frame_u64(exec_buf_t *buf, uint64_t v)
{
    s_put_le(exec_buf_reserve(buf, 8), v, 8);
    buf->len += 8;
}

void exec_frame_bytes(exec_buf_t *buf, const void *data, size_t len)
{
    assert(len <= EXEC_FRAME_MAX);
    exec_frame_u32(buf, (uint32_t)len);
    exec_buf_append(buf, data, len);
    exec_frame_u8(buf, 0);
}

void exec_frame_str(exec_buf_t *buf, const char *s)
{
    exec_frame_bytes(buf, s ? s : "", s ? strlen(s) : 0);
}

int exec_frame_parse(const uint8_t *data, size_t len, uint8_t *type, exec_reader_t *body,
                     size_t *consumed)
{
    if (len < 4)
        return 0;
    uint64_t n = s_get_le(data, 4);
    if (n == 0 || n > EXEC_FRAME_MAX)
        return -EPROTO;
    if (len - 4 < n)
        return 0;
    *type = data[4];
    body->p = data + 5;
    body->left = (size_t)n - 1;
    body->bad = false;
    *consumed = 4 + (size_t)n;
    return 1;
}

static const uint8_t *s_take(exec_reader_t *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t exec_read_u8(exec_reader_t *r)
{
    const uint8_t *p = s_take(r, 1);
    return p ? *p : 0;
}

uint32_t exec_read_u32(exec_reader_t *r)
{
    const uint8_t *p = s_take(r, 4);
    return p ? (uint32_t)s_get_le(p, 4) : 0;
}

uint64_t exec_read_u64(exec_reader_t *r)
{
    const uint8_t *p = s_take(r, 8);
    return p ? s_get_le(p, 8) : 0;
}

const uint8_t *exec_read_bytes(exec_reader_t *r, size_t *len)
{
    size_t n = exec_read_u32(r);
    const uint8_t *p = r->bad ? NULL : s_take(r, n);
    const uint8_t *nul = p ? s_take(r, 1) : NULL;
    if (!nul || *nul != 0) {
        r->bad = true;
        *len = 0;
        return (const uint8_t *)"";
    }
    *len = n;
    return p;
}

const char *exec_read_str(exec_reader_t *r)
{
    size_t len;
    const uint8_t *p = exec_read_bytes(r, &len);
    if (memchr(p, 0, len)) {
        r->bad = true;
        return "";
    }
    return (const char *)p;
}

bool exec_read_done(const exec_reader_t *r)
{
    return !r->bad && r->left == 0;
}

//  --------------------------------------------------------------------------------------
//  cb value views. The layout is common/value.c's: 0xCB 0x01 <type> [tag u32] <payload>;
//  its self-test below checks that both agree.

#define S_MAGIC0 0xCB
#define S_MAGIC1 0x01

int exec_value_view(const uint8_t *data, size_t len, cb_fn_value_t *out)
{
    memset(out, 0, sizeof *out);
    if (len < 3 || data[0] != S_MAGIC0 || data[1] != S_MAGIC1) {
        out->type = CB_FN_BYTES;
        out->data = data;
        out->len = len;
        return 0;
    }
    uint32_t type = data[2];
    size_t head = 3;
    switch (type) {
    case CB_FN_INT64:
    case CB_FN_FLOAT64: {
        if (len != head + 8)
            return -EPROTO;
        uint64_t bits = s_get_le(data + head, 8);
        out->type = type;
        if (type == CB_FN_INT64)
            out->i64 = (int64_t)bits;
        else
            memcpy(&out->f64, &bits, 8);
        return 0;
    }
    case CB_FN_USER:
        if (len < head + 4)
            return -EPROTO;
        out->user_tag = (uint32_t)s_get_le(data + head, 4);
        head += 4;
        //  fall through
    case CB_FN_BYTES:
    case CB_FN_STRING:
    case EXEC_VALUE_ERROR:
        out->type = type;
        out->data = data + head;
        out->len = len - head;
        return 0;
    default:
        return -EPROTO;
    }
}

bool exec_value_type_ok(uint32_t type)
{
    return type <= CB_FN_USER;
}

size_t exec_value_size(const cb_fn_value_t *v)
{
    if (v->type == CB_FN_INT64 || v->type == CB_FN_FLOAT64)
        return 3 + 8;
    return 3 + (v->type == CB_FN_USER ? 4 : 0) + v->len;
}

void exec_value_write(const cb_fn_value_t *v, uint8_t *p)
{
    p[0] = S_MAGIC0;
    p[1] = S_MAGIC1;
    p[2] = (uint8_t)v->type;
    p += 3;
    if (v->type == CB_FN_INT64)
        s_put_le(p, (uint64_t)v->i64, 8);
    else if (v->type == CB_FN_FLOAT64) {
        uint64_t bits;
        memcpy(&bits, &v->f64, 8);
        s_put_le(p, bits, 8);
    } else {
        if (v->type == CB_FN_USER) {
            s_put_le(p, v->user_tag, 4);
            p += 4;
        }
        if (v->len)
            memcpy(p, v->data, v->len);
    }
}

void exec_frame_value(exec_buf_t *buf, const cb_fn_value_t *v)
{
    size_t n = exec_value_size(v);
    assert(n <= EXEC_FRAME_MAX);
    exec_frame_u32(buf, (uint32_t)n);
    exec_value_write(v, exec_buf_reserve(buf, n + 1));
    buf->data[buf->len + n] = 0;
    buf->len += n + 1;
}

//  --------------------------------------------------------------------------------------
//  Self-test

//  Our encoding of v equals common/value.c's, and both decode it back.
static void s_check_value(const cb_fn_value_t *v, const cb_value_t *ref)
{
    cb_bytes_t want = {0};
    cb_value_encode(ref, &want);
    size_t n = exec_value_size(v);
    assert(n == want.len);
    uint8_t *got = cb_malloc(n + 1);
    exec_value_write(v, got);
    got[n] = 0;
    assert(!memcmp(got, want.data, n));
    cb_fn_value_t back;
    assert(exec_value_view(got, n, &back) == 0);
    assert(back.type == v->type && back.user_tag == v->user_tag && back.len == v->len);
    assert(back.i64 == v->i64 && memcmp(&back.f64, &v->f64, 8) == 0);
    assert(!v->len || !memcmp(back.data, v->data, v->len));
    cb_free(got);
    cb_bytes_fini(&want);
}

void exec_frame_test(bool verbose)
{
    exec_buf_t buf;
    exec_buf_init(&buf);
    //  Two frames back to back, then a partial third.
    size_t start = exec_frame_begin(&buf, 'C');
    exec_frame_u8(&buf, 7);
    exec_frame_u32(&buf, 0xdeadbeef);
    exec_frame_u64(&buf, 0x0123456789abcdefULL);
    exec_frame_str(&buf, "incr");
    exec_frame_bytes(&buf, "\0\1\2", 3);
    exec_frame_str(&buf, NULL);
    exec_frame_end(&buf, start);
    start = exec_frame_begin(&buf, 'd');
    exec_frame_end(&buf, start);
    size_t whole = buf.len;
    start = exec_frame_begin(&buf, 'x');
    exec_frame_u32(&buf, 1);
    exec_frame_end(&buf, start);

    uint8_t type;
    exec_reader_t r;
    size_t used;
    assert(exec_frame_parse(buf.data, 3, &type, &r, &used) == 0);
    assert(exec_frame_parse(buf.data, buf.len, &type, &r, &used) == 1);
    assert(type == 'C');
    assert(exec_read_u8(&r) == 7);
    assert(exec_read_u32(&r) == 0xdeadbeef);
    assert(exec_read_u64(&r) == 0x0123456789abcdefULL);
    assert(!strcmp(exec_read_str(&r), "incr"));
    size_t len;
    const uint8_t *b = exec_read_bytes(&r, &len);
    assert(len == 3 && !memcmp(b, "\0\1\2", 3) && b[3] == 0);
    assert(!strcmp(exec_read_str(&r), ""));
    assert(exec_read_done(&r));
    //  Reading past the end is refused, and stays refused.
    assert(exec_read_u32(&r) == 0 && r.bad && !exec_read_done(&r));
    exec_buf_consume(&buf, used);
    assert(exec_frame_parse(buf.data, buf.len, &type, &r, &used) == 1);
    assert(type == 'd' && exec_read_done(&r));
    exec_buf_consume(&buf, used);
    //  The partial frame: every prefix is incomplete, the whole is there.
    for (size_t n = 0; n < buf.len; n++)
        assert(exec_frame_parse(buf.data, n, &type, &r, &used) == 0);
    assert(exec_frame_parse(buf.data, buf.len, &type, &r, &used) == 1 && type == 'x');
    assert(whole > 0);

    //  Hostile bodies: a str with an embedded NUL, bytes without their NUL, a length that
    //  runs past the body, an empty body, an oversized length.
    exec_buf_t bad;
    exec_buf_init(&bad);
    start = exec_frame_begin(&bad, 's');
    exec_frame_bytes(&bad, "a\0b", 3);
    exec_frame_end(&bad, start);
    assert(exec_frame_parse(bad.data, bad.len, &type, &r, &used) == 1);
    assert(!strcmp(exec_read_str(&r), "") && r.bad);
    bad.len = 0;
    start = exec_frame_begin(&bad, 's');
    exec_frame_u32(&bad, 2);
    exec_frame_u8(&bad, 'h');
    exec_frame_u8(&bad, 'i');
    exec_frame_u8(&bad, 'X'); //  where the NUL should be
    exec_frame_end(&bad, start);
    assert(exec_frame_parse(bad.data, bad.len, &type, &r, &used) == 1);
    exec_read_bytes(&r, &len);
    assert(r.bad && len == 0);
    bad.len = 0;
    start = exec_frame_begin(&bad, 's');
    exec_frame_u32(&bad, 1000);
    exec_frame_end(&bad, start);
    assert(exec_frame_parse(bad.data, bad.len, &type, &r, &used) == 1);
    exec_read_bytes(&r, &len);
    assert(r.bad);
    uint8_t empty[4] = {0, 0, 0, 0};
    assert(exec_frame_parse(empty, 4, &type, &r, &used) == -EPROTO);
    uint8_t huge[5] = {0xff, 0xff, 0xff, 0xff, 'C'};
    assert(exec_frame_parse(huge, 5, &type, &r, &used) == -EPROTO);
    exec_buf_fini(&bad);
    exec_buf_fini(&buf);

    //  Values agree with common/value.c, every type.
    cb_value_t ref;
    cb_value_set_int(&ref, -42);
    s_check_value(&(cb_fn_value_t){.type = CB_FN_INT64, .i64 = -42}, &ref);
    cb_value_fini(&ref);
    cb_value_set_float(&ref, 2.5);
    s_check_value(&(cb_fn_value_t){.type = CB_FN_FLOAT64, .f64 = 2.5}, &ref);
    cb_value_fini(&ref);
    cb_value_set_bytes(&ref, CB_VALUE_STRING, "hello", 5);
    s_check_value(&(cb_fn_value_t){.type = CB_FN_STRING, .data = "hello", .len = 5}, &ref);
    cb_value_fini(&ref);
    cb_value_set_bytes(&ref, CB_VALUE_BYTES, "", 0);
    s_check_value(&(cb_fn_value_t){.type = CB_FN_BYTES}, &ref);
    cb_value_fini(&ref);
    cb_value_set_bytes(&ref, CB_VALUE_USER, "u", 1);
    ref.user_tag = 0x01020304;
    s_check_value(
        &(cb_fn_value_t){.type = CB_FN_USER, .user_tag = 0x01020304, .data = "u", .len = 1}, &ref);
    cb_value_fini(&ref);
    cb_value_set_bytes(&ref, CB_VALUE_ERROR, "boom", 4);
    s_check_value(&(cb_fn_value_t){.type = EXEC_VALUE_ERROR, .data = "boom", .len = 4}, &ref);
    cb_value_fini(&ref);
    //  Raw bytes are BYTES; bad prefixed values are refused.
    cb_fn_value_t v;
    assert(exec_value_view((const uint8_t *)"raw", 3, &v) == 0 && v.type == CB_FN_BYTES);
    assert(v.len == 3);
    const uint8_t short_int[] = {0xCB, 0x01, CB_FN_INT64, 1, 2};
    assert(exec_value_view(short_int, sizeof short_int, &v) == -EPROTO);
    const uint8_t bad_type[] = {0xCB, 0x01, 99};
    assert(exec_value_view(bad_type, sizeof bad_type, &v) == -EPROTO);
    assert(exec_value_type_ok(CB_FN_USER) && !exec_value_type_ok(EXEC_VALUE_ERROR));
    exec_buf_t vb;
    exec_buf_init(&vb);
    start = exec_frame_begin(&vb, 'v');
    exec_frame_value(&vb, &(cb_fn_value_t){.type = CB_FN_STRING, .data = "abc", .len = 3});
    exec_frame_end(&vb, start);
    assert(exec_frame_parse(vb.data, vb.len, &type, &r, &used) == 1);
    const uint8_t *enc = exec_read_bytes(&r, &len);
    assert(exec_read_done(&r) && exec_value_view(enc, len, &v) == 0);
    assert(v.type == CB_FN_STRING && v.len == 3 && !strcmp(v.data, "abc"));
    exec_buf_fini(&vb);
    if (verbose)
        printf("  frames: round trip, partial frames, hostile bodies refused, values\n");
}
