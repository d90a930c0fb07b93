//  lattices/format.c: lat_format, the one-line rendering of a value for people (anna-cli).
//  The exact formats are documented at lat_format in lattice.h; CLI golden tests depend on
//  them, so any change here is a change of a public format. Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "lattices/lattice.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "lattices/internal.h"

typedef struct {
    char *data; //  owned, always NUL-terminated
    size_t len;
    size_t cap;
} s_buf_t;

static void s_buf_reserve(s_buf_t *buf, size_t extra)
{
    if (buf->len + extra + 1 <= buf->cap)
        return;
    size_t cap = buf->cap ? buf->cap * 2 : 64;
    while (cap < buf->len + extra + 1)
        cap *= 2;
    buf->data = cb_realloc(buf->data, cap);
    buf->cap = cap;
}

static void s_buf_add(s_buf_t *buf, const char *text, size_t len)
{
    s_buf_reserve(buf, len);
    memcpy(buf->data + buf->len, text, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

static void s_buf_puts(s_buf_t *buf, const char *text)
{
    s_buf_add(buf, text, strlen(text));
}

static void s_buf_printf(s_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_buf_printf(s_buf_t *buf, const char *fmt, ...)
{
    char small[64];
    va_list args;
    va_start(args, fmt);
    int len = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    assert(len >= 0 && (size_t)len < sizeof small); //  only numbers go through here
    s_buf_add(buf, small, (size_t)len);
}

static void s_buf_quoted(s_buf_t *buf, const uint8_t *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    s_buf_reserve(buf, len * 4 + 2);
    char *out = buf->data + buf->len;
    *out++ = '"';
    for (size_t i = 0; i < len; i++) {
        uint8_t byte = data[i];
        if (byte == '"' || byte == '\\') {
            *out++ = '\\';
            *out++ = (char)byte;
        } else if (byte >= 0x20 && byte <= 0x7e)
            *out++ = (char)byte;
        else {
            *out++ = '\\';
            *out++ = 'x';
            *out++ = hex[byte >> 4];
            *out++ = hex[byte & 15];
        }
    }
    *out++ = '"';
    *out = '\0';
    buf->len = (size_t)(out - buf->data);
}

static void s_buf_bytes(s_buf_t *buf, const cb_bytes_t *bytes)
{
    s_buf_quoted(buf, bytes->data, bytes->len);
}

//  Clock ids and dep keys print bare when that cannot be misread as the punctuation
//  around them.
static void s_buf_name(s_buf_t *buf, const char *name)
{
    size_t len = strlen(name);
    bool bare = len > 0;
    for (size_t i = 0; i < len && bare; i++) {
        unsigned char ch = (unsigned char)name[i];
        bare = ch > 0x20 && ch < 0x7f && !strchr("\"\\{}:,", ch);
    }
    if (bare)
        s_buf_add(buf, name, len);
    else
        s_buf_quoted(buf, (const uint8_t *)name, len);
}

static void s_buf_clock(s_buf_t *buf, const lat_vclock_t *vc)
{
    s_buf_puts(buf, "{");
    for (size_t i = 0; i < vc->len; i++) {
        if (i)
            s_buf_puts(buf, ", ");
        s_buf_name(buf, vc->items[i].id);
        s_buf_printf(buf, ":%" PRIu32, vc->items[i].count);
    }
    s_buf_puts(buf, "}");
}

static void s_buf_set(s_buf_t *buf, const lat_set_t *set)
{
    s_buf_puts(buf, "{");
    for (size_t i = 0; i < set->len; i++) {
        if (i)
            s_buf_puts(buf, ", ");
        s_buf_bytes(buf, &set->items[i]);
    }
    s_buf_puts(buf, "}");
}

//  Shortest of %.15g and %.17g that reads back as the same double.
static void s_buf_double(s_buf_t *buf, double value)
{
    char text[40];
    snprintf(text, sizeof text, "%.15g", value);
    if (strtod(text, NULL) != value)
        snprintf(text, sizeof text, "%.17g", value);
    s_buf_puts(buf, text);
}

static void s_buf_causal(s_buf_t *buf, const lat_t *self)
{
    //  People read the distinct values and the joined clock (what Anna shows); the
    //  per-version clocks are in the wire format for programs.
    const lat_causal_t *causal = &self->u.causal;
    lat_set_t values = {0};
    lat_vclock_t clock = {0};
    lat_deps_t deps = {0};
    for (size_t i = 0; i < causal->len; i++) {
        lat_set_insert(&values, causal->items[i].value.data, causal->items[i].value.len);
        lat_vclock_merge(&clock, &causal->items[i].clock);
        lat_deps_merge(&deps, &causal->items[i].deps);
    }
    s_buf_set(buf, &values);
    s_buf_puts(buf, " vc=");
    s_buf_clock(buf, &clock);
    if (self->kind == LAT_MULTI_CAUSAL) {
        s_buf_puts(buf, " deps={");
        for (size_t i = 0; i < deps.len; i++) {
            if (i)
                s_buf_puts(buf, ", ");
            s_buf_name(buf, deps.items[i].key);
            s_buf_puts(buf, ":");
            s_buf_clock(buf, &deps.items[i].clock);
        }
        s_buf_puts(buf, "}");
    }
    lat_set_fini(&values);
    lat_vclock_fini(&clock);
    lat_deps_fini(&deps);
}

static void s_buf_value(s_buf_t *buf, const lat_t *self)
{
    switch (self->kind) {
    case LAT_LWW:
        s_buf_bytes(buf, &self->u.lww.value);
        break;
    case LAT_SET:
    case LAT_ORDERED_SET:
        s_buf_set(buf, &self->u.set);
        break;
    case LAT_SINGLE_CAUSAL:
    case LAT_MULTI_CAUSAL:
        s_buf_causal(buf, self);
        break;
    case LAT_PRIORITY:
        s_buf_bytes(buf, &self->u.priority.value);
        s_buf_puts(buf, " (priority ");
        s_buf_double(buf, self->u.priority.priority);
        s_buf_puts(buf, ")");
        break;
    case LAT_BOOL:
        s_buf_puts(buf, self->u.boolean ? "true" : "false");
        break;
    case LAT_MAX:
        s_buf_printf(buf, "%" PRId64, self->u.max);
        break;
    case LAT_MAP:
        s_buf_puts(buf, "{");
        for (size_t i = 0; i < self->u.map.len; i++) {
            if (i)
                s_buf_puts(buf, ", ");
            s_buf_bytes(buf, &self->u.map.items[i].key);
            s_buf_puts(buf, ": ");
            s_buf_value(buf, self->u.map.items[i].value);
        }
        s_buf_puts(buf, "}");
        break;
    case LAT_VCLOCK:
        s_buf_clock(buf, &self->u.vclock);
        break;
    case LAT_NONE:
        s_buf_puts(buf, "<none>");
        break;
    }
}

char *lat_format(const lat_t *self)
{
    s_buf_t buf = {0};
    s_buf_reserve(&buf, 0);
    buf.data[0] = '\0';
    s_buf_value(&buf, self);
    return buf.data;
}

//  ---- self-test ----------------------------------------------------------------------------

static void s_expect(lat_t *value, const char *expect, bool verbose)
{
    char *text = lat_format(value);
    if (strcmp(text, expect) != 0)
        fprintf(stderr, "lat_format: got  %s\n            want %s\n", text, expect);
    assert(strcmp(text, expect) == 0);
    if (verbose)
        printf("  %-13s %s\n", lat_kind_name(value->kind), text);
    cb_free(text);
    lat_fini(value);
}

static void s_clock_set(lat_vclock_t *vc, const char *id1, uint32_t c1, const char *id2,
                        uint32_t c2)
{
    *vc = (lat_vclock_t){0};
    lat_vclock_bump(vc, id1, c1);
    lat_vclock_bump(vc, id2, c2);
}

void lat_format_test(bool verbose)
{
    lat_t v;
    lat_init(&v, LAT_LWW);
    lat_lww_assign(&v, 123, 4, "hello", 5);
    s_expect(&v, "\"hello\"", verbose);
    lat_init(&v, LAT_LWW);
    lat_lww_assign(&v, 1, 0, "a\"b\\c\n\x00\xff~ ", 10);
    s_expect(&v, "\"a\\\"b\\\\c\\x0a\\x00\\xff~ \"", verbose);
    lat_init(&v, LAT_LWW);
    s_expect(&v, "\"\"", verbose);

    lat_init(&v, LAT_SET);
    lat_set_insert(&v.u.set, "b", 1);
    lat_set_insert(&v.u.set, "a", 1);
    s_expect(&v, "{\"a\", \"b\"}", verbose);
    lat_init(&v, LAT_ORDERED_SET);
    s_expect(&v, "{}", verbose);

    lat_vclock_t c1, c2;
    lat_init(&v, LAT_SINGLE_CAUSAL);
    s_clock_set(&c1, "c1", 2, "c2", 0);
    s_clock_set(&c2, "c2", 1, "c1", 1);
    lat_causal_add(&v, &c1, NULL, "v2", 2);
    lat_causal_add(&v, &c2, NULL, "v1", 2);
    lat_causal_add(&v, &c2, NULL, "v2", 2);
    s_expect(&v, "{\"v1\", \"v2\"} vc={c1:2, c2:1}", verbose);
    lat_init(&v, LAT_SINGLE_CAUSAL);
    s_expect(&v, "{} vc={}", verbose);

    lat_init(&v, LAT_MULTI_CAUSAL);
    lat_deps_t deps = {0};
    lat_deps_add(&deps, "k", &c2);
    lat_deps_add(&deps, "odd key", &c1);
    lat_causal_add(&v, &c1, &deps, "v1", 2);
    s_expect(&v, "{\"v1\"} vc={c1:2} deps={k:{c1:1, c2:1}, \"odd key\":{c1:2}}", verbose);
    lat_init(&v, LAT_MULTI_CAUSAL);
    lat_causal_add(&v, &c1, NULL, "v1", 2);
    s_expect(&v, "{\"v1\"} vc={c1:2} deps={}", verbose);
    lat_deps_fini(&deps);
    lat_vclock_fini(&c1);
    lat_vclock_fini(&c2);

    lat_init(&v, LAT_PRIORITY);
    lat_priority_assign(&v, 1.5, "v", 1);
    s_expect(&v, "\"v\" (priority 1.5)", verbose);
    lat_init(&v, LAT_PRIORITY);
    lat_priority_assign(&v, 0.1, "", 0);
    s_expect(&v, "\"\" (priority 0.1)", verbose);
    lat_init(&v, LAT_PRIORITY);
    lat_priority_assign(&v, -2, "x", 1);
    s_expect(&v, "\"x\" (priority -2)", verbose);
    lat_init(&v, LAT_PRIORITY);
    s_expect(&v, "\"\" (priority inf)", verbose);

    lat_init(&v, LAT_MAX);
    v.u.max = 42;
    s_expect(&v, "42", verbose);
    lat_init(&v, LAT_MAX);
    s_expect(&v, "-9223372036854775808", verbose);
    lat_init(&v, LAT_BOOL);
    v.u.boolean = true;
    s_expect(&v, "true", verbose);
    lat_init(&v, LAT_BOOL);
    s_expect(&v, "false", verbose);

    lat_init(&v, LAT_VCLOCK);
    lat_vclock_bump(&v.u.vclock, "b", 2);
    lat_vclock_bump(&v.u.vclock, "a", 1);
    s_expect(&v, "{a:1, b:2}", verbose);
    lat_init(&v, LAT_VCLOCK);
    s_expect(&v, "{}", verbose);

    lat_t inner, num;
    lat_init(&v, LAT_MAP);
    lat_init(&inner, LAT_LWW);
    lat_lww_assign(&inner, 1, 0, "hello", 5);
    lat_map_merge_at(&v.u.map, "k", 1, &inner);
    lat_fini(&inner);
    lat_init(&inner, LAT_MAP);
    lat_init(&num, LAT_MAX);
    num.u.max = 7;
    lat_map_merge_at(&inner.u.map, "n", 1, &num);
    lat_map_merge_at(&v.u.map, "k2", 2, &inner);
    lat_fini(&inner);
    lat_fini(&num);
    s_expect(&v, "{\"k\": \"hello\", \"k2\": {\"n\": 7}}", verbose);
    lat_init(&v, LAT_MAP);
    s_expect(&v, "{}", verbose);
    lat_init(&v, LAT_NONE);
    s_expect(&v, "<none>", verbose);
}
