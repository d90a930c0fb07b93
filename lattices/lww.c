//  lattices/lww.c: the register lattices, last-writer-wins and priority. Each holds one value
//  under a total order, so merge keeps the greater and the join laws follow from the order
//  being total. A merge whose incoming value loses does not allocate (KVS hot path).
//  Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "lattices/lattice.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "lattices/internal.h"

//  Replaces self's bytes with a copy of src, reusing self's buffer: realloc to a similar
//  size is in place with jemalloc, which makes overwriting a hot key cheap.
static void s_bytes_replace(cb_bytes_t *self, const cb_bytes_t *src)
{
    if (src->len == 0) {
        cb_bytes_fini(self);
        return;
    }
    self->data = cb_realloc(self->data, src->len);
    memcpy(self->data, src->data, src->len);
    self->len = src->len;
}

//  (ts, writer) alone is not total when two writers reuse a writer id (or old clients send
//  writer 0 with equal timestamps); the value bytes make it total so that merge commutes.
int lat_lww_cmp(const lat_lww_t *a, const lat_lww_t *b)
{
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->writer != b->writer)
        return a->writer < b->writer ? -1 : 1;
    return cb_bytes_cmp(&a->value, &b->value);
}

bool lat_lww_merge(lat_lww_t *self, const lat_lww_t *other)
{
    if (lat_lww_cmp(other, self) <= 0)
        return false;
    self->ts = other->ts;
    self->writer = other->writer;
    s_bytes_replace(&self->value, &other->value);
    return true;
}

void lat_lww_assign(lat_t *self, uint64_t ts, uint32_t writer, const void *data, size_t len)
{
    assert(self->kind == LAT_LWW);
    assert(data || len == 0);
    cb_bytes_t src = {(uint8_t *)data, len};
    self->u.lww.ts = ts;
    self->u.lww.writer = writer;
    s_bytes_replace(&self->u.lww.value, &src);
}

//  Lower priority wins; among equal priorities the smaller value wins (Anna keeps the
//  current value on ties, which depends on arrival order).
int lat_priority_cmp(const lat_priority_t *a, const lat_priority_t *b)
{
    if (a->priority != b->priority)
        return a->priority < b->priority ? 1 : -1;
    return cb_bytes_cmp(&b->value, &a->value);
}

bool lat_priority_merge(lat_priority_t *self, const lat_priority_t *other)
{
    if (lat_priority_cmp(other, self) <= 0)
        return false;
    self->priority = other->priority;
    s_bytes_replace(&self->value, &other->value);
    return true;
}

void lat_priority_assign(lat_t *self, double priority, const void *data, size_t len)
{
    assert(self->kind == LAT_PRIORITY);
    assert(!isnan(priority) && priority != INFINITY);
    assert(data || len == 0);
    cb_bytes_t src = {(uint8_t *)data, len};
    self->u.priority.priority = priority == 0 ? 0.0 : priority;
    s_bytes_replace(&self->u.priority.value, &src);
}

//  ---- self-test ----------------------------------------------------------------------------

static lat_t s_lww(uint64_t ts, uint32_t writer, const char *text)
{
    lat_t v;
    lat_init(&v, LAT_LWW);
    lat_lww_assign(&v, ts, writer, text, strlen(text));
    return v;
}

static lat_t s_prio(double priority, const char *text)
{
    lat_t v;
    lat_init(&v, LAT_PRIORITY);
    lat_priority_assign(&v, priority, text, strlen(text));
    return v;
}

void lat_lww_test(bool verbose)
{
    //  Timestamp first, then writer, then bytes; merge reports whether it changed.
    lat_t a = s_lww(10, 1, "a");
    lat_t b = s_lww(10, 2, "b");
    lat_t c = s_lww(10, 2, "c");
    lat_t old = s_lww(9, 99, "zzz");
    lat_t cur;
    lat_copy(&cur, &a);
    assert(lat_merge(&cur, &b) == 1 && lat_equal(&cur, &b)); //  writer breaks ts tie
    assert(lat_merge(&cur, &a) == 0 && lat_equal(&cur, &b));
    assert(lat_merge(&cur, &c) == 1 && lat_equal(&cur, &c)); //  bytes break the rest
    assert(lat_merge(&cur, &b) == 0 && lat_equal(&cur, &c));
    //  A losing merge neither changes nor reallocates the stored bytes.
    const uint8_t *data = cur.u.lww.value.data;
    assert(lat_merge(&cur, &old) == 0 && cur.u.lww.value.data == data);
    assert(lat_leq(&old, &cur) && !lat_leq(&cur, &old) && lat_leq(&cur, &cur));
    lat_t later = s_lww(11, 0, "");
    assert(lat_merge(&cur, &later) == 1 && cur.u.lww.value.len == 0 && !cur.u.lww.value.data);
    //  Bottom is below everything, including the empty value at ts 0.
    lat_t bottom;
    lat_init(&bottom, LAT_LWW);
    lat_t zero = s_lww(0, 0, "");
    assert(lat_equal(&bottom, &zero) && lat_leq(&bottom, &a));
    assert(lat_merge(&bottom, &a) == 1 && lat_equal(&bottom, &a));
    lat_t *all[] = {&a, &b, &c, &old, &cur, &later, &bottom, &zero};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        lat_fini(all[i]);

    //  Priority: lowest wins, ties to the smaller bytes, -0 is 0, bottom is (+inf, "").
    lat_t p = s_prio(2.5, "p");
    lat_t q = s_prio(1.0, "q");
    lat_t r = s_prio(1.0, "a");
    lat_t neg = s_prio(-0.0, "n");
    lat_t pos = s_prio(0.0, "n");
    assert(lat_merge(&p, &q) == 1 && lat_equal(&p, &q));
    assert(lat_merge(&p, &r) == 1 && lat_equal(&p, &r));
    assert(lat_merge(&p, &q) == 0 && lat_equal(&p, &r));
    assert(lat_equal(&neg, &pos) && !signbit(neg.u.priority.priority));
    lat_t pb;
    lat_init(&pb, LAT_PRIORITY);
    assert(pb.u.priority.priority == INFINITY && lat_leq(&pb, &q) && !lat_leq(&q, &pb));
    lat_t lowest = s_prio(-INFINITY, "");
    assert(lat_merge(&pb, &lowest) == 1 && lat_leq(&p, &pb));
    lat_t *prios[] = {&p, &q, &r, &neg, &pos, &pb, &lowest};
    for (size_t i = 0; i < sizeof prios / sizeof prios[0]; i++)
        lat_fini(prios[i]);
    if (verbose)
        printf("  lww: tie-breaks, no-alloc loss, priority order OK\n");
}
