//  client/codec.c: Anna request/response messages <-> plain structs (see codec.h).
//  Everything protobuf-c allocates goes through cb_malloc, and every unpacked message is
//  converted and freed before returning, so no protobuf type leaves this file.
//  SPDX-License-Identifier: Apache-2.0
#include "client/codec.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "anna.pb-c.h"
#include "common/alloc.h"
#include "proto/wire.h"

static void *s_pb_alloc(void *data, size_t size)
{
    (void)data;
    return cb_malloc(size ? size : 1);
}

static void s_pb_free(void *data, void *ptr)
{
    (void)data;
    cb_free(ptr);
}

static ProtobufCAllocator s_allocator = {s_pb_alloc, s_pb_free, NULL};

//  protobuf-c wants `char *` for strings it only reads while packing.
static char *s_unconst(const char *s)
{
    return (char *)(uintptr_t)s;
}

//  Empty strings come back from protobuf-c as a shared static "", which we must not free;
//  NULL stands for "absent" in our structs.
static char *s_dup_or_null(const char *s)
{
    return s && *s ? cb_strdup(s) : NULL;
}

static void s_pack(const ProtobufCMessage *msg, cb_bytes_t *out)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    out->data = len ? cb_malloc(len) : NULL;
    out->len = len;
    if (len) {
        size_t wrote = protobuf_c_message_pack(msg, out->data);
        assert(wrote == len);
    }
}

//  --------------------------------------------------------------------------------------
//  Requests

int cb_codec_key_request(int type, const cb_codec_tuple_t *tuples, size_t n,
                         const char *response_address, const char *request_id, cb_bytes_t *out)
{
    if ((type != CB_CODEC_GET && type != CB_CODEC_PUT) || !n || !tuples || !response_address
        || !request_id || !out)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!tuples[i].key)
            return -EINVAL;
    KeyTuple *items = cb_calloc(n, sizeof *items);
    KeyTuple **ptrs = cb_calloc(n, sizeof *ptrs);
    for (size_t i = 0; i < n; i++) {
        KeyTuple init = KEY_TUPLE__INIT;
        items[i] = init;
        items[i].key = s_unconst(tuples[i].key);
        items[i].lattice_type = (LatticeType)tuples[i].kind;
        items[i].address_cache_size = tuples[i].address_cache_size;
        if (tuples[i].payload_len) {
            items[i].payload.data = (uint8_t *)(uintptr_t)tuples[i].payload;
            items[i].payload.len = tuples[i].payload_len;
        }
        ptrs[i] = &items[i];
    }
    KeyRequest req = KEY_REQUEST__INIT;
    req.type = type == CB_CODEC_GET ? REQUEST_TYPE__GET : REQUEST_TYPE__PUT;
    req.n_tuples = n;
    req.tuples = ptrs;
    req.response_address = s_unconst(response_address);
    req.request_id = s_unconst(request_id);
    s_pack(&req.base, out);
    cb_free(ptrs);
    cb_free(items);
    return 0;
}

int cb_codec_address_request(const char *const *keys, size_t n, const char *response_address,
                             const char *request_id, cb_bytes_t *out)
{
    if (!n || !keys || !response_address || !request_id || !out)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!keys[i])
            return -EINVAL;
    KeyAddressRequest req = KEY_ADDRESS_REQUEST__INIT;
    req.response_address = s_unconst(response_address);
    req.request_id = s_unconst(request_id);
    req.n_keys = n;
    req.keys = (char **)(uintptr_t)keys;
    s_pack(&req.base, out);
    return 0;
}

//  --------------------------------------------------------------------------------------
//  Responses

int cb_codec_reply_decode(const uint8_t *data, size_t len, cb_codec_reply_t *out)
{
    memset(out, 0, sizeof *out);
    KeyResponse *msg = key_response__unpack(&s_allocator, len, data);
    if (!msg)
        return -EPROTO;
    out->response_id = cb_strdup(msg->response_id ? msg->response_id : "");
    out->error = (int)msg->error;
    out->error_message = s_dup_or_null(msg->error_message);
    out->len = msg->n_tuples;
    out->tuples = out->len ? cb_calloc(out->len, sizeof *out->tuples) : NULL;
    for (size_t i = 0; i < out->len; i++) {
        const KeyTuple *t = msg->tuples[i];
        cb_codec_reply_tuple_t *r = &out->tuples[i];
        r->key = cb_strdup(t->key ? t->key : "");
        r->error = (int)t->error;
        r->error_message = s_dup_or_null(t->error_message);
        r->invalidate = t->invalidate;
        lat_init(&r->value, LAT_NONE);
        //  Values of errors are meaningless; an empty payload is a valid encoding (an empty
        //  set, false, 0), so the kind alone says whether there is a value.
        if (t->error == ANNA_ERROR__NO_ERROR && t->lattice_type != LATTICE_TYPE__NONE) {
            r->value_rc = wire_decode((int)t->lattice_type, t->payload.data, t->payload.len,
                                      &r->value);
            if (r->value_rc)
                lat_init(&r->value, LAT_NONE);
        }
    }
    key_response__free_unpacked(msg, &s_allocator);
    return 0;
}

void cb_codec_reply_fini(cb_codec_reply_t *self)
{
    if (!self)
        return;
    for (size_t i = 0; i < self->len; i++) {
        cb_free(self->tuples[i].key);
        cb_free(self->tuples[i].error_message);
        lat_fini(&self->tuples[i].value);
    }
    cb_free(self->tuples);
    cb_free(self->response_id);
    cb_free(self->error_message);
    memset(self, 0, sizeof *self);
}

int cb_codec_addresses_decode(const uint8_t *data, size_t len, cb_codec_addresses_t *out)
{
    memset(out, 0, sizeof *out);
    KeyAddressResponse *msg = key_address_response__unpack(&s_allocator, len, data);
    if (!msg)
        return -EPROTO;
    out->response_id = cb_strdup(msg->response_id ? msg->response_id : "");
    out->error = (int)msg->error;
    out->len = msg->n_addresses;
    out->addresses = out->len ? cb_calloc(out->len, sizeof *out->addresses) : NULL;
    for (size_t i = 0; i < out->len; i++) {
        const KeyAddressResponse__KeyAddress *a = msg->addresses[i];
        cb_codec_key_address_t *r = &out->addresses[i];
        r->key = cb_strdup(a->key ? a->key : "");
        r->ips = a->n_ips ? cb_calloc(a->n_ips, sizeof *r->ips) : NULL;
        for (size_t j = 0; j < a->n_ips; j++)
            if (a->ips[j] && *a->ips[j])        //  an empty address cannot be connected to
                r->ips[r->n_ips++] = cb_strdup(a->ips[j]);
    }
    key_address_response__free_unpacked(msg, &s_allocator);
    return 0;
}

void cb_codec_addresses_fini(cb_codec_addresses_t *self)
{
    if (!self)
        return;
    for (size_t i = 0; i < self->len; i++) {
        for (size_t j = 0; j < self->addresses[i].n_ips; j++)
            cb_free(self->addresses[i].ips[j]);
        cb_free(self->addresses[i].ips);
        cb_free(self->addresses[i].key);
    }
    cb_free(self->addresses);
    cb_free(self->response_id);
    memset(self, 0, sizeof *self);
}

//  --------------------------------------------------------------------------------------
//  The server's direction (self-tests, round trips)

int cb_codec_request_decode(const uint8_t *data, size_t len, cb_codec_request_t *out)
{
    memset(out, 0, sizeof *out);
    KeyRequest *msg = key_request__unpack(&s_allocator, len, data);
    if (!msg)
        return -EPROTO;
    out->type = (int)msg->type;
    out->response_address = cb_strdup(msg->response_address ? msg->response_address : "");
    out->request_id = cb_strdup(msg->request_id ? msg->request_id : "");
    out->len = msg->n_tuples;
    out->tuples = out->len ? cb_calloc(out->len, sizeof *out->tuples) : NULL;
    for (size_t i = 0; i < out->len; i++) {
        const KeyTuple *t = msg->tuples[i];
        cb_codec_request_tuple_t *r = &out->tuples[i];
        r->key = cb_strdup(t->key ? t->key : "");
        r->kind = (int)t->lattice_type;
        r->address_cache_size = t->address_cache_size;
        cb_bytes_set(&r->payload, t->payload.data, t->payload.len);
    }
    key_request__free_unpacked(msg, &s_allocator);
    return 0;
}

void cb_codec_request_fini(cb_codec_request_t *self)
{
    if (!self)
        return;
    for (size_t i = 0; i < self->len; i++) {
        cb_free(self->tuples[i].key);
        cb_bytes_fini(&self->tuples[i].payload);
    }
    cb_free(self->tuples);
    cb_free(self->response_address);
    cb_free(self->request_id);
    memset(self, 0, sizeof *self);
}

int cb_codec_reply_encode(int type, const cb_codec_reply_t *reply, cb_bytes_t *out)
{
    if (!reply || !out)
        return -EINVAL;
    KeyTuple *items = reply->len ? cb_calloc(reply->len, sizeof *items) : NULL;
    KeyTuple **ptrs = reply->len ? cb_calloc(reply->len, sizeof *ptrs) : NULL;
    cb_bytes_t *payloads = reply->len ? cb_calloc(reply->len, sizeof *payloads) : NULL;
    int rc = 0;
    for (size_t i = 0; i < reply->len; i++) {
        const cb_codec_reply_tuple_t *t = &reply->tuples[i];
        KeyTuple init = KEY_TUPLE__INIT;
        items[i] = init;
        items[i].key = s_unconst(t->key ? t->key : "");
        items[i].error = (AnnaError)t->error;
        items[i].invalidate = t->invalidate;
        if (t->error_message)
            items[i].error_message = t->error_message;
        if (t->value.kind != LAT_NONE) {
            if ((rc = wire_encode(&t->value, &payloads[i])) != 0)
                break;
            items[i].lattice_type = (LatticeType)t->value.kind;
            items[i].payload.data = payloads[i].data;
            items[i].payload.len = payloads[i].len;
        }
        ptrs[i] = &items[i];
    }
    if (rc == 0) {
        KeyResponse resp = KEY_RESPONSE__INIT;
        resp.type = (RequestType)type;
        resp.n_tuples = reply->len;
        resp.tuples = ptrs;
        resp.response_id = s_unconst(reply->response_id ? reply->response_id : "");
        resp.error = (AnnaError)reply->error;
        if (reply->error_message)
            resp.error_message = reply->error_message;
        s_pack(&resp.base, out);
    }
    for (size_t i = 0; i < reply->len; i++)
        cb_bytes_fini(&payloads[i]);
    cb_free(payloads);
    cb_free(ptrs);
    cb_free(items);
    return rc;
}

int cb_codec_address_request_decode(const uint8_t *data, size_t len,
                                    cb_codec_address_request_t *out)
{
    memset(out, 0, sizeof *out);
    KeyAddressRequest *msg = key_address_request__unpack(&s_allocator, len, data);
    if (!msg)
        return -EPROTO;
    out->response_address = cb_strdup(msg->response_address ? msg->response_address : "");
    out->request_id = cb_strdup(msg->request_id ? msg->request_id : "");
    out->len = msg->n_keys;
    out->keys = out->len ? cb_calloc(out->len, sizeof *out->keys) : NULL;
    for (size_t i = 0; i < out->len; i++)
        out->keys[i] = cb_strdup(msg->keys[i] ? msg->keys[i] : "");
    key_address_request__free_unpacked(msg, &s_allocator);
    return 0;
}

void cb_codec_address_request_fini(cb_codec_address_request_t *self)
{
    if (!self)
        return;
    for (size_t i = 0; i < self->len; i++)
        cb_free(self->keys[i]);
    cb_free(self->keys);
    cb_free(self->response_address);
    cb_free(self->request_id);
    memset(self, 0, sizeof *self);
}

void cb_codec_addresses_encode(const cb_codec_addresses_t *addresses, cb_bytes_t *out)
{
    size_t n = addresses->len;
    KeyAddressResponse__KeyAddress *items = n ? cb_calloc(n, sizeof *items) : NULL;
    KeyAddressResponse__KeyAddress **ptrs = n ? cb_calloc(n, sizeof *ptrs) : NULL;
    for (size_t i = 0; i < n; i++) {
        KeyAddressResponse__KeyAddress init = KEY_ADDRESS_RESPONSE__KEY_ADDRESS__INIT;
        items[i] = init;
        items[i].key = addresses->addresses[i].key;
        items[i].n_ips = addresses->addresses[i].n_ips;
        items[i].ips = addresses->addresses[i].ips;
        ptrs[i] = &items[i];
    }
    KeyAddressResponse resp = KEY_ADDRESS_RESPONSE__INIT;
    resp.n_addresses = n;
    resp.addresses = ptrs;
    resp.error = (AnnaError)addresses->error;
    resp.response_id = s_unconst(addresses->response_id ? addresses->response_id : "");
    s_pack(&resp.base, out);
    cb_free(ptrs);
    cb_free(items);
}

//  --------------------------------------------------------------------------------------
//  Response id without a full decode

//  Reads a base-128 varint at *pos; false if it runs past end or over 10 bytes.
static bool s_read_varint(const uint8_t *data, size_t len, size_t *pos, uint64_t *value)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*pos >= len)
            return false;
        uint8_t b = data[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *value = v;
            return true;
        }
    }
    return false;
}

int cb_codec_response_id(const uint8_t *data, size_t len, const char **id, size_t *id_len)
{
    size_t pos = 0;
    bool found = false;
    while (pos < len) {
        uint64_t tag, skip;
        if (!s_read_varint(data, len, &pos, &tag) || tag >> 3 == 0 || tag >> 3 > 536870911)
            return -EPROTO;
        switch (tag & 7) {
        case 0:
            if (!s_read_varint(data, len, &pos, &skip))
                return -EPROTO;
            if (tag >> 3 == 3)
                return -EPROTO;         //  field 3 is a string in both messages
            break;
        case 1:
        case 5:
            skip = (tag & 7) == 1 ? 8 : 4;
            if (len - pos < skip || tag >> 3 == 3)
                return -EPROTO;
            pos += skip;
            break;
        case 2:
            if (!s_read_varint(data, len, &pos, &skip) || skip > len - pos)
                return -EPROTO;
            if (tag >> 3 == 3) {        //  the last occurrence wins, as in protobuf itself
                *id = (const char *)data + pos;
                *id_len = (size_t)skip;
                found = true;
            }
            pos += (size_t)skip;
            break;
        default:
            return -EPROTO;             //  groups (3, 4) and reserved types: not ours
        }
    }
    return found ? 0 : -ENOENT;
}

//  --------------------------------------------------------------------------------------
//  @selftest

static bool s_id_is(const uint8_t *data, size_t len, const char *want)
{
    const char *id = NULL;
    size_t n = 0;
    return cb_codec_response_id(data, len, &id, &n) == 0 && n == strlen(want)
           && memcmp(id, want, n) == 0;
}

void cb_codec_test(bool verbose)
{
    if (verbose)
        printf(" * codec: request encoding, response decoding, response id scan\n");

    //  A KeyRequest round-trips through the generated code with every field we set.
    uint8_t pay[] = {1, 2, 3};
    cb_codec_tuple_t tuples[2] = {{"k1", 0, NULL, 0, 0}, {"k2", LAT_SET, pay, 3, 2}};
    cb_bytes_t bytes = {0};
    assert(cb_codec_key_request(CB_CODEC_PUT, tuples, 2, "tcp://127.0.0.1:9", "7:1", &bytes) == 0);
    KeyRequest *req = key_request__unpack(&s_allocator, bytes.len, bytes.data);
    assert(req && req->type == REQUEST_TYPE__PUT && req->n_tuples == 2);
    assert(!strcmp(req->request_id, "7:1") && !strcmp(req->response_address, "tcp://127.0.0.1:9"));
    assert(!strcmp(req->tuples[1]->key, "k2") && req->tuples[1]->lattice_type == LATTICE_TYPE__SET);
    assert(req->tuples[1]->payload.len == 3 && req->tuples[1]->address_cache_size == 2);
    assert(req->tuples[0]->payload.len == 0);
    key_request__free_unpacked(req, &s_allocator);
    cb_bytes_fini(&bytes);
    assert(cb_codec_key_request(0, tuples, 2, "a", "b", &bytes) == -EINVAL);
    assert(cb_codec_key_request(CB_CODEC_GET, tuples, 0, "a", "b", &bytes) == -EINVAL);
    assert(cb_codec_key_request(CB_CODEC_GET, tuples, 1, NULL, "b", &bytes) == -EINVAL);

    const char *keys[] = {"a", "b"};
    assert(cb_codec_address_request(keys, 2, "tcp://x:1", "9:2", &bytes) == 0);
    KeyAddressRequest *areq = key_address_request__unpack(&s_allocator, bytes.len, bytes.data);
    assert(areq && areq->n_keys == 2 && !strcmp(areq->keys[1], "b") && !strcmp(areq->request_id, "9:2"));
    key_address_request__free_unpacked(areq, &s_allocator);
    cb_bytes_fini(&bytes);

    //  A KeyResponse as a server would send it: one error tuple with a message, one
    //  invalidated tuple without payload, one undecodable payload, a response-level error.
    KeyTuple t0 = KEY_TUPLE__INIT, t1 = KEY_TUPLE__INIT, t2 = KEY_TUPLE__INIT;
    t0.key = "x";
    t0.error = ANNA_ERROR__LATTICE;
    t0.error_message = "key holds SET, not LWW";
    t1.key = "y";
    t1.invalidate = 1;
    t2.key = "z";
    t2.lattice_type = LATTICE_TYPE__LWW;
    uint8_t junk[] = {0xff, 0xff, 0xff};
    t2.payload.data = junk;
    t2.payload.len = sizeof junk;
    KeyTuple *tp[] = {&t0, &t1, &t2};
    KeyResponse resp = KEY_RESPONSE__INIT;
    resp.n_tuples = 3;
    resp.tuples = tp;
    resp.response_id = "42:7";
    resp.error = ANNA_ERROR__TIMEOUT;
    resp.error_message = "slow";
    s_pack(&resp.base, &bytes);
    assert(s_id_is(bytes.data, bytes.len, "42:7"));
    cb_codec_reply_t reply;
    assert(cb_codec_reply_decode(bytes.data, bytes.len, &reply) == 0);
    assert(!strcmp(reply.response_id, "42:7") && reply.error == CB_ANNA_TIMEOUT);
    assert(!strcmp(reply.error_message, "slow") && reply.len == 3);
    assert(reply.tuples[0].error == CB_ANNA_LATTICE);
    assert(!strcmp(reply.tuples[0].error_message, "key holds SET, not LWW"));
    assert(reply.tuples[0].value.kind == LAT_NONE && reply.tuples[0].value_rc == 0);
    assert(reply.tuples[1].invalidate && !reply.tuples[1].error_message);
    assert(reply.tuples[1].value.kind == LAT_NONE);
    assert(reply.tuples[2].value_rc == -EPROTO && reply.tuples[2].value.kind == LAT_NONE);
    cb_codec_reply_fini(&reply);
    cb_codec_reply_fini(&reply);                //  idempotent
    //  Every truncation of a valid message either decodes or is refused; none crashes.
    for (size_t cut = 0; cut < bytes.len; cut++) {
        if (cb_codec_reply_decode(bytes.data, cut, &reply) == 0)
            cb_codec_reply_fini(&reply);
        const char *id;
        size_t idn;
        (void)cb_codec_response_id(bytes.data, cut, &id, &idn);
    }
    cb_bytes_fini(&bytes);

    //  A KeyAddressResponse: empty addresses are dropped, the id is found the same way.
    char *ips[] = {"tcp://127.0.0.1:6200", "", "tcp://127.0.0.1:6201"};
    KeyAddressResponse__KeyAddress ka = KEY_ADDRESS_RESPONSE__KEY_ADDRESS__INIT;
    ka.key = "k";
    ka.n_ips = 3;
    ka.ips = ips;
    KeyAddressResponse__KeyAddress *kap[] = {&ka};
    KeyAddressResponse aresp = KEY_ADDRESS_RESPONSE__INIT;
    aresp.n_addresses = 1;
    aresp.addresses = kap;
    aresp.response_id = "42:8";
    s_pack(&aresp.base, &bytes);
    assert(s_id_is(bytes.data, bytes.len, "42:8"));
    cb_codec_addresses_t addrs;
    assert(cb_codec_addresses_decode(bytes.data, bytes.len, &addrs) == 0);
    assert(addrs.len == 1 && addrs.addresses[0].n_ips == 2 && addrs.error == 0);
    assert(!strcmp(addrs.addresses[0].ips[1], "tcp://127.0.0.1:6201"));
    cb_codec_addresses_fini(&addrs);
    cb_bytes_fini(&bytes);

    //  Round trips through the server's direction: request decode, reply encode with values.
    assert(cb_codec_key_request(CB_CODEC_PUT, tuples, 2, "tcp://127.0.0.1:9", "7:2", &bytes) == 0);
    cb_codec_request_t dreq;
    assert(cb_codec_request_decode(bytes.data, bytes.len, &dreq) == 0);
    assert(dreq.type == CB_CODEC_PUT && dreq.len == 2 && !strcmp(dreq.request_id, "7:2"));
    assert(!strcmp(dreq.tuples[1].key, "k2") && dreq.tuples[1].kind == LAT_SET);
    assert(dreq.tuples[1].payload.len == 3 && dreq.tuples[1].address_cache_size == 2);
    cb_codec_request_fini(&dreq);
    cb_codec_request_fini(&dreq);
    cb_bytes_fini(&bytes);

    cb_codec_reply_tuple_t rt[2];
    memset(rt, 0, sizeof rt);
    rt[0].key = "a";
    lat_init(&rt[0].value, LAT_LWW);
    lat_lww_assign(&rt[0].value, 123, 4, "hello", 5);
    rt[1].key = "b";
    rt[1].error = CB_ANNA_KEY_DNE;
    rt[1].error_message = "no such key";
    lat_init(&rt[1].value, LAT_NONE);
    cb_codec_reply_t out = {.response_id = "1:1", .tuples = rt, .len = 2};
    assert(cb_codec_reply_encode(CB_CODEC_GET, &out, &bytes) == 0);
    assert(cb_codec_reply_decode(bytes.data, bytes.len, &reply) == 0);
    assert(reply.len == 2 && !strcmp(reply.response_id, "1:1") && reply.error == 0);
    assert(reply.tuples[0].value_rc == 0 && lat_equal(&reply.tuples[0].value, &rt[0].value));
    assert(reply.tuples[1].error == CB_ANNA_KEY_DNE && reply.tuples[1].value.kind == LAT_NONE);
    assert(!strcmp(reply.tuples[1].error_message, "no such key"));
    cb_codec_reply_fini(&reply);
    cb_bytes_fini(&bytes);
    lat_fini(&rt[0].value);

    cb_codec_address_request_t dareq;
    assert(cb_codec_address_request(keys, 2, "tcp://x:1", "9:3", &bytes) == 0);
    assert(cb_codec_address_request_decode(bytes.data, bytes.len, &dareq) == 0);
    assert(dareq.len == 2 && !strcmp(dareq.keys[0], "a") && !strcmp(dareq.response_address, "tcp://x:1"));
    cb_codec_address_request_fini(&dareq);
    cb_bytes_fini(&bytes);
    char *ips2[] = {"tcp://1.2.3.4:5"};
    cb_codec_key_address_t ka2 = {.key = "q", .ips = ips2, .n_ips = 1};
    cb_codec_addresses_t aout = {.response_id = "9:3", .error = CB_ANNA_NO_SERVERS,
                                 .addresses = &ka2, .len = 1};
    cb_codec_addresses_encode(&aout, &bytes);
    assert(cb_codec_addresses_decode(bytes.data, bytes.len, &addrs) == 0);
    assert(addrs.error == CB_ANNA_NO_SERVERS && addrs.len == 1 && !strcmp(addrs.addresses[0].key, "q"));
    assert(!strcmp(addrs.addresses[0].ips[0], "tcp://1.2.3.4:5") && !strcmp(addrs.response_id, "9:3"));
    cb_codec_addresses_fini(&addrs);
    cb_bytes_fini(&bytes);

    //  The id scan refuses malformed bytes and reports a missing id.
    const char *id;
    size_t idn;
    uint8_t no_id[] = {0x08, 0x01};                     //  field 1 varint = 1
    assert(cb_codec_response_id(no_id, sizeof no_id, &id, &idn) == -ENOENT);
    uint8_t bad_wt[] = {0x18, 0x01};                    //  field 3 as a varint
    assert(cb_codec_response_id(bad_wt, sizeof bad_wt, &id, &idn) == -EPROTO);
    uint8_t overrun[] = {0x1a, 0x05, 'a'};              //  length past the end
    assert(cb_codec_response_id(overrun, sizeof overrun, &id, &idn) == -EPROTO);
    uint8_t group[] = {0x1b};                           //  start group
    assert(cb_codec_response_id(group, sizeof group, &id, &idn) == -EPROTO);
    uint8_t field0[] = {0x02, 0x00};
    assert(cb_codec_response_id(field0, sizeof field0, &id, &idn) == -EPROTO);
    uint8_t longvar[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert(cb_codec_response_id(longvar, sizeof longvar, &id, &idn) == -EPROTO);
    uint8_t twice[] = {0x1a, 0x01, 'a', 0x1a, 0x01, 'b'};
    assert(s_id_is(twice, sizeof twice, "b"));
    assert(cb_codec_response_id(NULL, 0, &id, &idn) == -ENOENT);
    assert(cb_codec_reply_decode(bad_wt, sizeof bad_wt, &reply) == -EPROTO);
    assert(cb_codec_addresses_decode(overrun, sizeof overrun, &addrs) == -EPROTO);
    cb_codec_addresses_fini(&addrs);            //  safe after a failed decode
}
//  @end
