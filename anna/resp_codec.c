//  anna/resp_codec.c: protobuf wire format by hand, for the few messages of proto/anna.proto
//  the RESP front end needs. Encoding writes each tuple's length first, so every size is
//  computed before the bytes are written; decoding walks fields by wire type and skips the
//  unknown ones, as any protobuf reader must (newer workers may add fields).
//  SPDX-License-Identifier: Apache-2.0
#include "anna/resp_codec.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "anna.pb-c.h"
#include "common/alloc.h"
#include "lattices/lattice.h"
#include "proto/wire.h"

//  Tags (field << 3 | wire type) of the fields written.
#define S_TAG_VARINT(f) ((uint32_t)(f) << 3)
#define S_TAG_LEN(f) ((uint32_t)(f) << 3 | 2)

static size_t s_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static char *s_put_varint(char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

//  Size of a length-delimited field of len bytes with a one- or two-byte tag.
static size_t s_len_field_size(uint32_t tag, size_t len)
{
    return s_varint_size(tag) + s_varint_size(len) + len;
}

static char *s_put_len_field(char *p, uint32_t tag, const void *data, size_t len)
{
    p = s_put_varint(p, tag);
    p = s_put_varint(p, len);
    if (len)
        memcpy(p, data, len);
    return p + len;
}

//  A tuple {key, [lattice_type], [payload header]} whose payload body (payload_len bytes)
//  the caller writes next. Returns where the payload body goes; *total is the tuple's
//  whole size including its own tag and length.
static char *s_tuple_begin(anna_resp_buf_t *msg, const void *key, size_t klen, int type,
                           size_t payload_len, size_t *total)
{
    size_t body = s_len_field_size(S_TAG_LEN(1), klen);
    if (type)
        body += s_varint_size(S_TAG_VARINT(2)) + s_varint_size((uint64_t)type) +
                s_len_field_size(S_TAG_LEN(4), payload_len);
    *total = s_len_field_size(S_TAG_LEN(2), body);
    char *p = anna_resp_buf_reserve(msg, *total);
    p = s_put_varint(p, S_TAG_LEN(2));
    p = s_put_varint(p, body);
    p = s_put_len_field(p, S_TAG_LEN(1), key, klen);
    if (type) {
        p = s_put_varint(p, S_TAG_VARINT(2));
        p = s_put_varint(p, (uint64_t)type);
        p = s_put_varint(p, S_TAG_LEN(4));
        p = s_put_varint(p, payload_len);
    }
    return p;
}

size_t anna_resp_codec_get(anna_resp_buf_t *msg, const void *key, size_t klen)
{
    size_t total;
    char *p = s_tuple_begin(msg, key, klen, 0, 0, &total);
    msg->len = (size_t)(p - msg->data);
    return total;
}

size_t anna_resp_codec_put_lww(anna_resp_buf_t *msg, const void *key, size_t klen, uint64_t ts,
                               uint32_t writer, const void *value, size_t vlen)
{
    size_t payload = s_varint_size(S_TAG_VARINT(1)) + s_varint_size(ts) +
                     s_len_field_size(S_TAG_LEN(2), vlen);
    if (writer)
        payload += s_varint_size(S_TAG_VARINT(100)) + s_varint_size(writer);
    size_t total;
    char *p = s_tuple_begin(msg, key, klen, LAT_LWW, payload, &total);
    p = s_put_varint(p, S_TAG_VARINT(1));
    p = s_put_varint(p, ts);
    p = s_put_len_field(p, S_TAG_LEN(2), value, vlen);
    if (writer) {
        p = s_put_varint(p, S_TAG_VARINT(100));
        p = s_put_varint(p, writer);
    }
    msg->len = (size_t)(p - msg->data);
    return total;
}

size_t anna_resp_codec_put_set(anna_resp_buf_t *msg, const void *key, size_t klen,
                               const char *base, const anna_resp_arg_t *args, size_t n)
{
    size_t payload = 0;
    for (size_t i = 0; i < n; i++)
        payload += s_len_field_size(S_TAG_LEN(1), args[i].len);
    size_t total;
    char *p = s_tuple_begin(msg, key, klen, LAT_SET, payload, &total);
    for (size_t i = 0; i < n; i++)
        p = s_put_len_field(p, S_TAG_LEN(1), base + args[i].off, args[i].len);
    msg->len = (size_t)(p - msg->data);
    return total;
}

void anna_resp_codec_finish(anna_resp_buf_t *msg, int type, const char *address,
                            const char *id, size_t idlen)
{
    size_t alen = strlen(address);
    char *p = anna_resp_buf_reserve(msg, 2 + s_len_field_size(S_TAG_LEN(3), alen) +
                                             s_len_field_size(S_TAG_LEN(4), idlen));
    p = s_put_varint(p, S_TAG_VARINT(1));
    p = s_put_varint(p, (uint64_t)type);
    p = s_put_len_field(p, S_TAG_LEN(3), address, alen);
    p = s_put_len_field(p, S_TAG_LEN(4), id, idlen);
    msg->len = (size_t)(p - msg->data);
}

//  ---- reading ------------------------------------------------------------------------------

static bool s_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

typedef struct {
    uint32_t field;
    int wire;                   //  0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
    uint64_t value;             //  varint value
    const uint8_t *data;        //  length-delimited bytes
    size_t len;
} s_field_t;

//  Next field of a message. Returns 1, 0 at the end, -EPROTO.
static int s_next_field(const uint8_t **p, const uint8_t *end, s_field_t *f)
{
    if (*p == end)
        return 0;
    uint64_t tag;
    if (!s_get_varint(p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
        return -EPROTO;
    f->field = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    switch (f->wire) {
    case 0:
        return s_get_varint(p, end, &f->value) ? 1 : -EPROTO;
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if ((size_t)(end - *p) < n)
            return -EPROTO;
        *p += n;
        return 1;
    }
    case 2: {
        uint64_t len;
        if (!s_get_varint(p, end, &len) || len > (uint64_t)(end - *p))
            return -EPROTO;
        f->data = *p;
        f->len = (size_t)len;
        *p += len;
        return 1;
    }
    default:
        return -EPROTO;
    }
}

int anna_resp_codec_response(anna_resp_response_t *self, const uint8_t *data, size_t len)
{
    memset(self, 0, sizeof *self);
    const uint8_t *p = data, *end = data + len;
    s_field_t f;
    int rc;
    while ((rc = s_next_field(&p, end, &f)) == 1) {
        if (f.field == 3 && f.wire == 2) {
            self->id = (const char *)f.data;
            self->id_len = f.len;
        } else if (f.field == 4 && f.wire == 0)
            self->error = (int)f.value;
        else if (f.field == 100 && f.wire == 2) {
            self->error_message = (const char *)f.data;
            self->error_message_len = f.len;
        }
    }
    self->p = data;
    self->end = end;
    return rc;
}

int anna_resp_codec_next_tuple(anna_resp_response_t *self, anna_resp_tuple_t *out)
{
    s_field_t f;
    int rc;
    while ((rc = s_next_field(&self->p, self->end, &f)) == 1) {
        if (f.field != 2 || f.wire != 2)
            continue;
        memset(out, 0, sizeof *out);
        const uint8_t *p = f.data, *end = f.data + f.len;
        s_field_t t;
        while ((rc = s_next_field(&p, end, &t)) == 1) {
            if (t.field == 2 && t.wire == 0)
                out->lattice_type = (int)t.value;
            else if (t.field == 3 && t.wire == 0)
                out->error = (int)t.value;
            else if (t.field == 4 && t.wire == 2) {
                out->payload = t.data;
                out->payload_len = t.len;
            } else if (t.field == 100 && t.wire == 2) {
                out->error_message = (const char *)t.data;
                out->error_message_len = t.len;
            }
        }
        return rc < 0 ? rc : 1;
    }
    return rc;
}

int anna_resp_codec_lww(const uint8_t *data, size_t len, uint64_t *ts, uint32_t *writer,
                        const uint8_t **value, size_t *vlen)
{
    *ts = 0;
    *writer = 0;
    *value = NULL;
    *vlen = 0;
    const uint8_t *p = data, *end = data + len;
    s_field_t f;
    int rc;
    while ((rc = s_next_field(&p, end, &f)) == 1) {
        if (f.field == 1 && f.wire == 0)
            *ts = f.value;
        else if (f.field == 2 && f.wire == 2) {
            *value = f.data;
            *vlen = f.len;
        } else if (f.field == 100 && f.wire == 0)
            *writer = (uint32_t)f.value;
    }
    return rc;
}

int anna_resp_codec_set_next(anna_resp_set_iter_t *it, const uint8_t **item, size_t *len)
{
    s_field_t f;
    int rc;
    while ((rc = s_next_field(&it->p, it->end, &f)) == 1)
        if (f.field == 1 && f.wire == 2) {
            *item = f.data;
            *len = f.len;
            return 1;
        }
    return rc;
}

//  ---- self-test ----------------------------------------------------------------------------

void anna_resp_codec_test(bool verbose)
{
    //  A request we build is what protobuf-c reads back, field for field.
    anna_resp_buf_t msg = {0};
    char big[300];
    memset(big, 'v', sizeof big);
    const char base[] = "abcb";
    anna_resp_arg_t members[3] = {{0, 1}, {1, 2}, {2, 0}};
    anna_resp_codec_get(&msg, "k1", 2);
    size_t before = msg.len;
    size_t n = anna_resp_codec_put_lww(&msg, "key2", 4, 1700000000000000ULL, 0xfffffffe, big,
                                       sizeof big);
    assert(n == msg.len - before);
    anna_resp_codec_put_lww(&msg, "k3", 2, 5, 0, "", 0);
    anna_resp_codec_put_set(&msg, "s", 1, base, members, 3);
    anna_resp_codec_finish(&msg, 2, "ipc://@anna-resp-test", "17", 2);
    KeyRequest *req = key_request__unpack(NULL, msg.len, (const uint8_t *)msg.data);
    assert(req);
    assert(req->type == REQUEST_TYPE__PUT && req->n_tuples == 4);
    assert(!strcmp(req->response_address, "ipc://@anna-resp-test"));
    assert(!strcmp(req->request_id, "17"));
    assert(!strcmp(req->tuples[0]->key, "k1") && req->tuples[0]->lattice_type == 0);
    assert(!strcmp(req->tuples[1]->key, "key2") && req->tuples[1]->lattice_type == LATTICE_TYPE__LWW);
    lat_t v;
    assert(wire_decode(LAT_LWW, req->tuples[1]->payload.data, req->tuples[1]->payload.len,
                       &v) == 0);
    assert(v.u.lww.ts == 1700000000000000ULL && v.u.lww.writer == 0xfffffffe);
    assert(v.u.lww.value.len == sizeof big && !memcmp(v.u.lww.value.data, big, sizeof big));
    lat_fini(&v);
    assert(wire_decode(LAT_LWW, req->tuples[2]->payload.data, req->tuples[2]->payload.len,
                       &v) == 0);
    assert(v.u.lww.ts == 5 && v.u.lww.writer == 0 && v.u.lww.value.len == 0);
    lat_fini(&v);
    assert(req->tuples[3]->lattice_type == LATTICE_TYPE__SET);
    assert(wire_decode(LAT_SET, req->tuples[3]->payload.data, req->tuples[3]->payload.len,
                       &v) == 0);
    assert(v.u.set.len == 3 && lat_set_contains(&v.u.set, "a", 1) &&
           lat_set_contains(&v.u.set, "bc", 2) && lat_set_contains(&v.u.set, "", 0));
    lat_fini(&v);
    key_request__free_unpacked(req, NULL);
    anna_resp_buf_fini(&msg);

    //  A response protobuf-c packs is what we read, payloads included.
    lat_t lww, set;
    lat_init(&lww, LAT_LWW);
    lat_lww_assign(&lww, 99, 7, "hello", 5);
    lat_init(&set, LAT_SET);
    lat_set_insert(&set.u.set, "y", 1);
    lat_set_insert(&set.u.set, "x", 1);
    cb_bytes_t lww_bytes = {0}, set_bytes = {0};
    assert(wire_encode(&lww, &lww_bytes) == 0 && wire_encode(&set, &set_bytes) == 0);
    KeyTuple t0 = KEY_TUPLE__INIT, t1 = KEY_TUPLE__INIT, t2 = KEY_TUPLE__INIT;
    t0.key = "a";
    t0.lattice_type = LATTICE_TYPE__LWW;
    t0.payload.data = lww_bytes.data;
    t0.payload.len = lww_bytes.len;
    t1.key = "b";
    t1.error = ANNA_ERROR__KEY_DNE;
    t2.key = "c";
    t2.lattice_type = LATTICE_TYPE__SET;
    t2.payload.data = set_bytes.data;
    t2.payload.len = set_bytes.len;
    t2.error_message = "why";
    KeyTuple *tuples[3] = {&t0, &t1, &t2};
    KeyResponse resp = KEY_RESPONSE__INIT;
    resp.type = REQUEST_TYPE__GET;
    resp.tuples = tuples;
    resp.n_tuples = 3;
    resp.response_id = "1234";
    resp.error = ANNA_ERROR__BAD_REQUEST;
    resp.error_message = "whole";
    size_t size = key_response__get_packed_size(&resp);
    uint8_t *packed = cb_malloc(size);
    key_response__pack(&resp, packed);
    anna_resp_response_t r;
    assert(anna_resp_codec_response(&r, packed, size) == 0);
    assert(r.id_len == 4 && !memcmp(r.id, "1234", 4) && r.error == ANNA_ERROR__BAD_REQUEST);
    assert(r.error_message_len == 5 && !memcmp(r.error_message, "whole", 5));
    anna_resp_tuple_t t;
    assert(anna_resp_codec_next_tuple(&r, &t) == 1 && t.lattice_type == LAT_LWW && !t.error);
    uint64_t ts;
    uint32_t writer;
    const uint8_t *value;
    size_t vlen;
    assert(anna_resp_codec_lww(t.payload, t.payload_len, &ts, &writer, &value, &vlen) == 0);
    assert(ts == 99 && writer == 7 && vlen == 5 && !memcmp(value, "hello", 5));
    assert(anna_resp_codec_next_tuple(&r, &t) == 1 && t.error == ANNA_ERROR__KEY_DNE);
    assert(anna_resp_codec_next_tuple(&r, &t) == 1 && t.lattice_type == LAT_SET);
    assert(t.error_message_len == 3 && !memcmp(t.error_message, "why", 3));
    anna_resp_set_iter_t it = {t.payload, t.payload + t.payload_len};
    const uint8_t *item;
    size_t ilen;
    assert(anna_resp_codec_set_next(&it, &item, &ilen) == 1 && ilen == 1 && item[0] == 'x');
    assert(anna_resp_codec_set_next(&it, &item, &ilen) == 1 && ilen == 1 && item[0] == 'y');
    assert(anna_resp_codec_set_next(&it, &item, &ilen) == 0);
    assert(anna_resp_codec_next_tuple(&r, &t) == 0);
    //  Every truncation is either broken framing or a shorter valid message: never a read
    //  past the end (ASan watches).
    for (size_t cut = 0; cut < size; cut++) {
        uint8_t *copy = cb_memdup(packed, cut ? cut : 1);
        if (anna_resp_codec_response(&r, copy, cut) == 0)
            while (anna_resp_codec_next_tuple(&r, &t) == 1)
                if (t.payload)
                    (void)anna_resp_codec_lww(t.payload, t.payload_len, &ts, &writer, &value,
                                              &vlen);
        cb_free(copy);
    }
    assert(anna_resp_codec_response(&r, (const uint8_t *)"\x0f", 1) == -EPROTO);
    if (verbose)
        printf("  request and response codecs agree with protobuf-c (%zu-byte response)\n",
               size);
    cb_free(packed);
    cb_bytes_fini(&lww_bytes);
    cb_bytes_fini(&set_bytes);
    lat_fini(&lww);
    lat_fini(&set);
}
