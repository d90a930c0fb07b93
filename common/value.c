//  common/value.c: cb values (see value.h). Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "value.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define S_MAGIC0 0xCB
#define S_MAGIC1 0x01

void cb_value_fini(cb_value_t *self)
{
    cb_bytes_fini(&self->bytes);
    memset(self, 0, sizeof *self);
}

void cb_value_copy(cb_value_t *dst, const cb_value_t *src)
{
    *dst = *src;
    cb_bytes_copy(&dst->bytes, &src->bytes);
}

void cb_value_set_bytes(cb_value_t *dst, cb_value_type_t type, const void *data, size_t len)
{
    memset(dst, 0, sizeof *dst);
    dst->type = type;
    cb_bytes_set(&dst->bytes, data, len);
}

void cb_value_set_int(cb_value_t *dst, int64_t v)
{
    memset(dst, 0, sizeof *dst);
    dst->type = CB_VALUE_INT64;
    dst->i64 = v;
}

void cb_value_set_float(cb_value_t *dst, double v)
{
    memset(dst, 0, sizeof *dst);
    dst->type = CB_VALUE_FLOAT64;
    dst->f64 = v;
}

static void s_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void cb_value_encode(const cb_value_t *self, cb_bytes_t *out)
{
    bool scalar = self->type == CB_VALUE_INT64 || self->type == CB_VALUE_FLOAT64;
    size_t head = 3 + (self->type == CB_VALUE_USER ? 4 : 0);
    size_t len = head + (scalar ? 8 : self->bytes.len);
    uint8_t *p = cb_malloc(len);
    p[0] = S_MAGIC0;
    p[1] = S_MAGIC1;
    p[2] = (uint8_t)self->type;
    if (self->type == CB_VALUE_USER)
        for (int i = 0; i < 4; i++)
            p[3 + i] = (uint8_t)(self->user_tag >> (8 * i));
    if (self->type == CB_VALUE_INT64)
        s_put_u64(p + head, (uint64_t)self->i64);
    else if (self->type == CB_VALUE_FLOAT64) {
        uint64_t bits;
        memcpy(&bits, &self->f64, 8);
        s_put_u64(p + head, bits);
    } else if (self->bytes.len)
        memcpy(p + head, self->bytes.data, self->bytes.len);
    out->data = p;
    out->len = len;
}

int cb_value_decode(const void *data, size_t len, cb_value_t *out)
{
    const uint8_t *p = data;
    memset(out, 0, sizeof *out);
    if (len < 3 || p[0] != S_MAGIC0 || p[1] != S_MAGIC1) {
        cb_value_set_bytes(out, CB_VALUE_BYTES, data, len);
        return 0;
    }
    cb_value_type_t type = p[2];
    size_t head = 3;
    switch (type) {
    case CB_VALUE_INT64:
    case CB_VALUE_FLOAT64:
        if (len != head + 8)
            return -EPROTO;
        out->type = type;
        if (type == CB_VALUE_INT64)
            out->i64 = (int64_t)s_get_u64(p + head);
        else {
            uint64_t bits = s_get_u64(p + head);
            memcpy(&out->f64, &bits, 8);
        }
        return 0;
    case CB_VALUE_USER:
        if (len < head + 4)
            return -EPROTO;
        out->user_tag = (uint32_t)p[3] | (uint32_t)p[4] << 8 | (uint32_t)p[5] << 16 |
                        (uint32_t)p[6] << 24;
        head += 4;
        //  fall through
    case CB_VALUE_BYTES:
    case CB_VALUE_STRING:
    case CB_VALUE_ERROR: {
        uint32_t tag = out->user_tag;
        cb_value_set_bytes(out, type, p + head, len - head);
        out->user_tag = tag;
        return 0;
    }
    default:
        return -EPROTO;
    }
}

static int s_parse_int(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 0);
    if (!*s || *end || errno)
        return -EINVAL;
    *v = x;
    return 0;
}

static int s_parse_float(const char *s, double *v)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (!*s || *end || errno)
        return -EINVAL;
    *v = x;
    return 0;
}

int cb_value_parse(const char *text, cb_value_t *out)
{
    memset(out, 0, sizeof *out);
    int64_t i;
    double f;
    if (!strncmp(text, "int:", 4)) {
        if (s_parse_int(text + 4, &i))
            return -EINVAL;
        cb_value_set_int(out, i);
    } else if (!strncmp(text, "float:", 6)) {
        if (s_parse_float(text + 6, &f))
            return -EINVAL;
        cb_value_set_float(out, f);
    } else if (!strncmp(text, "str:", 4))
        cb_value_set_bytes(out, CB_VALUE_STRING, text + 4, strlen(text + 4));
    else if (!strncmp(text, "bytes:", 6))
        cb_value_set_bytes(out, CB_VALUE_BYTES, text + 6, strlen(text + 6));
    else if (s_parse_int(text, &i) == 0)
        cb_value_set_int(out, i);
    else if (s_parse_float(text, &f) == 0 && strpbrk(text, ".eE") && !strpbrk(text, "xX"))
        cb_value_set_float(out, f);
    else
        cb_value_set_bytes(out, CB_VALUE_STRING, text, strlen(text));
    return 0;
}

static char *s_quote(const cb_bytes_t *b, const char *prefix)
{
    size_t cap = strlen(prefix) + b->len * 4 + 3;
    char *s = cb_malloc(cap), *p = s;
    p += sprintf(p, "%s\"", prefix);
    for (size_t i = 0; i < b->len; i++) {
        uint8_t c = b->data[i];
        if (c == '"' || c == '\\')
            p += sprintf(p, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            *p++ = (char)c;
        else
            p += sprintf(p, "\\x%02x", c);
    }
    *p++ = '"';
    *p = '\0';
    return s;
}

char *cb_value_format(const cb_value_t *self)
{
    char buf[64];
    switch (self->type) {
    case CB_VALUE_INT64:
        snprintf(buf, sizeof buf, "%" PRId64, self->i64);
        return cb_strdup(buf);
    case CB_VALUE_FLOAT64:
        snprintf(buf, sizeof buf, "%.17g", self->f64);
        //  The shortest form that reads back exactly.
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, self->f64);
            if (strtod(buf, NULL) == self->f64 || isnan(self->f64))
                break;
        }
        return cb_strdup(buf);
    case CB_VALUE_USER:
        snprintf(buf, sizeof buf, "user(%" PRIu32 "):", self->user_tag);
        return s_quote(&self->bytes, buf);
    case CB_VALUE_ERROR: {
        char *s = cb_malloc(self->bytes.len + 8);
        memcpy(s, "error: ", 7);
        if (self->bytes.len)
            memcpy(s + 7, self->bytes.data, self->bytes.len);
        s[7 + self->bytes.len] = '\0';
        return s;
    }
    case CB_VALUE_BYTES:
        return s_quote(&self->bytes, "bytes:");
    default:
        return s_quote(&self->bytes, "");
    }
}

const char *cb_value_type_name(cb_value_type_t type)
{
    static const char *names[] = {"bytes", "string", "int64", "float64", "user", "error"};
    return (unsigned)type < 6 ? names[type] : "unknown";
}

void cb_value_test(bool verbose)
{
    (void)verbose;
    cb_value_t v, w;
    cb_bytes_t enc = {0};
    //  Round trips of every type.
    cb_value_set_int(&v, -42);
    cb_value_encode(&v, &enc);
    assert(cb_value_decode(enc.data, enc.len, &w) == 0);
    assert(w.type == CB_VALUE_INT64 && w.i64 == -42);
    cb_bytes_fini(&enc);
    cb_value_fini(&w);
    cb_value_set_float(&v, 2.5);
    cb_value_encode(&v, &enc);
    assert(cb_value_decode(enc.data, enc.len, &w) == 0 && w.f64 == 2.5);
    cb_bytes_fini(&enc);
    cb_value_fini(&w);
    cb_value_set_bytes(&v, CB_VALUE_USER, "abc", 3);
    v.user_tag = 0x01020304;
    cb_value_encode(&v, &enc);
    assert(cb_value_decode(enc.data, enc.len, &w) == 0);
    assert(w.type == CB_VALUE_USER && w.user_tag == 0x01020304 && cb_bytes_eq(&w.bytes, &v.bytes));
    cb_value_fini(&v);
    cb_value_fini(&w);
    //  Truncations of a prefixed value never crash; scalars of the wrong size are refused.
    for (size_t n = 0; n < enc.len; n++)
        if (cb_value_decode(enc.data, n, &w) == 0)
            cb_value_fini(&w);
    cb_bytes_fini(&enc);
    uint8_t bad[] = {0xCB, 0x01, 2, 1, 2};
    assert(cb_value_decode(bad, sizeof bad, &w) == -EPROTO);
    uint8_t unknown[] = {0xCB, 0x01, 99};
    assert(cb_value_decode(unknown, sizeof unknown, &w) == -EPROTO);
    //  Unprefixed bytes are BYTES.
    assert(cb_value_decode("hello", 5, &w) == 0 && w.type == CB_VALUE_BYTES && w.bytes.len == 5);
    cb_value_fini(&w);
    //  Parsing and formatting.
    const struct {
        const char *in, *out;
    } cases[] = {{"3", "3"},           {"int:-7", "-7"},   {"2.5", "2.5"},    {"float:1", "1"},
                 {"hello", "\"hello\""}, {"str:3", "\"3\""}, {"bytes:a", "bytes:\"a\""},
                 {"0x10", "16"},        {"1e3", "1e+03"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert(cb_value_parse(cases[i].in, &v) == 0);
        char *s = cb_value_format(&v);
        if (strcmp(s, cases[i].out)) {
            fprintf(stderr, "cb_value: %s formats as %s, want %s\n", cases[i].in, s, cases[i].out);
            assert(!"format");
        }
        cb_free(s);
        cb_value_fini(&v);
    }
    assert(cb_value_parse("int:x", &v) == -EINVAL);
}
