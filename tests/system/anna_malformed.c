//  tests/system/anna_malformed.c: hostile and broken input to a running anna-server
//  (--threads 2 --max-value-bytes 1024): garbage, truncated KeyRequests, empty and
//  multi-frame messages, unknown lattice types, undecodable payloads, empty keys, bad
//  request types, oversize values (PUT and merged), requests without or with unusable
//  response addresses, a client that never reads, junk on the gossip and routing ports and
//  a message over the size limit. Each is answered as the protocol says or counted and
//  dropped; afterwards the node still answers correctly and its counters add up.
//  Usage: anna_malformed PORT_OFFSET
//  SPDX-License-Identifier: Apache-2.0
#include "tests/system/anna_testlib.h"

#define MAX_VALUE 1024

//  A key owned by thread `thread` (2 threads, replication 1).
static void s_key_on(tl_client_t *c, int thread, const char *prefix, char key[64])
{
    for (int i = 0; i < 500; i++) {
        char owner[128];
        snprintf(key, 64, "%s-%d", prefix, i);
        tl_owner(c, key, owner);
        if (tl_thread_of(c, owner) == thread)
            return;
    }
    tl_fail("no key of thread %d found", thread);
}

//  A packed KeyRequest. Caller frees *buf.
static size_t s_pack(RequestType type, const char *key, int lattice_type, const void *payload,
                     size_t payload_len, const char *reply_to, const char *id, uint8_t **buf)
{
    KeyTuple tuple = KEY_TUPLE__INIT;
    tuple.key = (char *)key;
    tuple.lattice_type = (LatticeType)lattice_type;
    tuple.payload.data = (uint8_t *)payload;
    tuple.payload.len = payload_len;
    KeyTuple *tuples[1] = {&tuple};
    KeyRequest req = KEY_REQUEST__INIT;
    req.type = type;
    req.tuples = tuples;
    req.n_tuples = 1;
    req.response_address = (char *)(reply_to ? reply_to : "");
    req.request_id = (char *)id;
    size_t len = key_request__get_packed_size(&req);
    *buf = cb_malloc(len);
    key_request__pack(&req, *buf);
    return len;
}

static void s_lww_payload(cb_bytes_t *out, size_t size)
{
    lat_t v;
    lat_init(&v, LAT_LWW);
    char *data = cb_malloc(size ? size : 1);
    memset(data, 'v', size);
    lat_lww_assign(&v, 1, 1, data, size);
    cb_free(data);
    wire_encode(&v, out);
    lat_fini(&v);
}

//  Expects the one-tuple reply to `id` to carry error (and msg in its message).
static void s_expect_error(tl_client_t *c, const char *id, int error, const char *msg,
                           const char *what)
{
    KeyResponse *resp = tl_wait_response(c, id, TL_TIMEOUT_MS);
    TL_ASSERT(resp, "%s: no reply", what);
    TL_ASSERT(resp->n_tuples == 1, "%s: %zu tuples", what, resp->n_tuples);
    const KeyTuple *t = resp->tuples[0];
    TL_CHECK((int)t->error == error && strstr(t->error_message, msg),
             "%s: error %d \"%s\"", what, t->error, t->error_message);
    key_response__free_unpacked(resp, NULL);
}

//  Polls thread's stats until counter reaches want (gossip arrives on another socket than
//  the stats request, so there is no ordering to rely on).
static long long s_wait_counter(tl_client_t *c, const char *address, const char *name,
                                long long want)
{
    long long v = -1;
    for (int i = 0; i < 100; i++) {
        char *json = tl_stats(c, address);
        v = tl_counter(json, name);
        cb_free(json);
        if (v >= want)
            return v;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        tl_fail("usage: anna_malformed PORT_OFFSET");
    int offset = atoi(argv[1]);
    tl_client_t c;
    tl_client_init(&c, offset);
    char t0[128], t1[128], g0[128], routing[128];
    tl_key_addr(&c, 0, t0, sizeof t0);
    tl_key_addr(&c, 1, t1, sizeof t1);
    tl_gossip_addr(&c, 0, g0, sizeof g0);
    tl_routing_addr(&c, routing, sizeof routing);
    char k0[64], k1[64], grow[64], quiet[64];
    s_key_on(&c, 0, "mal", k0);
    s_key_on(&c, 1, "mal", k1);
    s_key_on(&c, 0, "grow", grow);
    s_key_on(&c, 0, "quiet", quiet);
    uint8_t *buf;
    size_t len;
    long long malformed = 0, bad_request = 0, too_large = 0, bad_address = 0;

    //  1. Undecodable messages on the key port: no reply address is known, so they are
    //  counted and dropped. All go through one PUSH socket, like the stats request after
    //  them, so they are handled before it.
    tl_send_raw(&c, t0, "\xff\xff\xff\xff\xff", 5, false);     //  unterminated varint
    tl_send_raw(&c, t0, "\x12\x05" "ab", 4, false);             //  length past the end
    malformed += 2;
    len = s_pack(REQUEST_TYPE__GET, "truncated-key-long-enough", 0, NULL, 0, c.reply_to,
                 "never-1", &buf);
    TL_ASSERT(len > 20, "packed request too short");
    tl_send_raw(&c, t0, buf, 10, false);        //  truncated inside the tuple's key
    cb_free(buf);
    malformed++;
    tl_send_raw(&c, t0, "", 0, false);                          //  zero-byte frame
    malformed++;
    len = s_pack(REQUEST_TYPE__GET, k0, 0, NULL, 0, c.reply_to, "never-2", &buf);
    tl_send_raw(&c, t0, buf, len, true);                        //  valid frame + another one
    tl_send_raw(&c, t0, "extra", 5, false);
    cb_free(buf);
    malformed++;

    //  2. Decodable requests with bad content: BAD_REQUEST / TOO_LARGE with a message.
    cb_bytes_t ok_payload = {0};
    s_lww_payload(&ok_payload, 10);
    len = s_pack(REQUEST_TYPE__PUT, k0, 99, ok_payload.data, ok_payload.len, c.reply_to,
                 "unknown-type", &buf);
    tl_send_raw(&c, t0, buf, len, false);
    cb_free(buf);
    s_expect_error(&c, "unknown-type", ANNA_ERROR__BAD_REQUEST, "unknown lattice type 99",
                   "PUT with lattice type 99");
    bad_request++;
    len = s_pack(REQUEST_TYPE__PUT, k0, LAT_NONE, ok_payload.data, ok_payload.len, c.reply_to,
                 "no-type", &buf);
    tl_send_raw(&c, t0, buf, len, false);
    cb_free(buf);
    s_expect_error(&c, "no-type", ANNA_ERROR__BAD_REQUEST, "lattice_type",
                   "PUT without lattice type");
    bad_request++;
    len = s_pack(REQUEST_TYPE__PUT, k0, LAT_LWW, "\xff\xff\xff", 3, c.reply_to, "bad-payload",
                 &buf);
    tl_send_raw(&c, t0, buf, len, false);
    cb_free(buf);
    s_expect_error(&c, "bad-payload", ANNA_ERROR__BAD_REQUEST, "malformed LWW payload",
                   "PUT with an undecodable LWW payload");
    bad_request++;
    len = s_pack(REQUEST_TYPE__GET, "", 0, NULL, 0, c.reply_to, "empty-key", &buf);
    tl_send_raw(&c, t0, buf, len, false);
    cb_free(buf);
    s_expect_error(&c, "empty-key", ANNA_ERROR__BAD_REQUEST, "empty key", "GET of an empty key");
    bad_request++;
    cb_bytes_t big = {0};
    s_lww_payload(&big, 2000);
    len = s_pack(REQUEST_TYPE__PUT, k0, LAT_LWW, big.data, big.len, c.reply_to, "too-big", &buf);
    tl_send_raw(&c, t0, buf, len, false);
    cb_free(buf);
    cb_bytes_fini(&big);
    s_expect_error(&c, "too-big", ANNA_ERROR__TOO_LARGE, "exceeds max-value-bytes 1024",
                   "PUT of a 2000-byte value with --max-value-bytes 1024");
    too_large++;
    lat_t got;
    TL_CHECK(tl_get(&c, t0, k0, &got) == ANNA_ERROR__KEY_DNE,
             "none of the refused PUTs stored anything");

    //  A SET may not grow past the limit by merges either; the stored value stays as it was.
    lat_t first, second;
    char elem[600];
    memset(elem, 'a', sizeof elem);
    lat_init(&first, LAT_SET);
    lat_set_insert(&first.u.set, elem, sizeof elem);
    char msg[256];
    TL_ASSERT(tl_put(&c, t0, grow, &first, msg, sizeof msg) == 0, "first SET PUT: %s", msg);
    memset(elem, 'b', sizeof elem);
    lat_init(&second, LAT_SET);
    lat_set_insert(&second.u.set, elem, sizeof elem);
    int err = tl_put(&c, t0, grow, &second, msg, sizeof msg);
    TL_CHECK(err == ANNA_ERROR__TOO_LARGE && strstr(msg, "merged value"),
             "a SET merge past the limit: TOO_LARGE \"%s\"", msg);
    too_large++;
    TL_CHECK(tl_get(&c, t0, grow, &got) == 0 && lat_equal(&got, &first),
             "the SET keeps its value after the refused merge");
    lat_fini(&got);
    TL_CHECK(tl_put(&c, t0, grow, &first, msg, sizeof msg) == ANNA_ERROR__NO_ERROR,
             "re-PUT of what the SET already holds succeeds (idempotent, nothing grows)");

    //  Keys longer than 64 KiB are refused (the request itself is within the size limit).
    {
        char *longkey = cb_malloc(70001);
        memset(longkey, 'k', 70000);
        longkey[70000] = '\0';
        len = s_pack(REQUEST_TYPE__GET, longkey, 0, NULL, 0, c.reply_to, "long-key", &buf);
        tl_send_raw(&c, t0, buf, len, false);
        cb_free(buf);
        cb_free(longkey);
        KeyResponse *resp = tl_wait_response(&c, "long-key", TL_TIMEOUT_MS);
        TL_CHECK(resp && resp->n_tuples == 1 &&
                     resp->tuples[0]->error == ANNA_ERROR__BAD_REQUEST &&
                     strstr(resp->tuples[0]->error_message, "longer than 65536"),
                 "a 70000-byte key: BAD_REQUEST");
        key_response__free_unpacked(resp, NULL);
        bad_request++;
    }
    lat_fini(&first);
    lat_fini(&second);

    //  A GET naming one key thousands of times: the reply is bounded (4 x max-value-bytes
    //  + 1 MiB), tuples past the bound are TOO_LARGE, and each tuple is still answered.
    {
        enum { REPEAT = 3000 };
        KeyTuple *tuples = cb_calloc(REPEAT, sizeof *tuples);
        KeyTuple **ptrs = cb_calloc(REPEAT, sizeof *ptrs);
        for (int i = 0; i < REPEAT; i++) {
            key_tuple__init(&tuples[i]);
            tuples[i].key = grow;
            ptrs[i] = &tuples[i];
        }
        KeyRequest req = KEY_REQUEST__INIT;
        req.type = REQUEST_TYPE__GET;
        req.tuples = ptrs;
        req.n_tuples = REPEAT;
        req.response_address = c.reply_to;
        req.request_id = "repeat";
        tl_send_request(&c, t0, &req);
        KeyResponse *resp = tl_wait_response(&c, "repeat", TL_TIMEOUT_MS);
        TL_ASSERT(resp && resp->n_tuples == REPEAT, "repeated GET: reply with every tuple");
        int ok = 0, refused = 0;
        for (int i = 0; i < REPEAT; i++) {
            if (resp->tuples[i]->error == ANNA_ERROR__NO_ERROR)
                ok++;
            else if (resp->tuples[i]->error == ANNA_ERROR__TOO_LARGE &&
                     strstr(resp->tuples[i]->error_message, "fewer keys per request"))
                refused++;
        }
        TL_CHECK(ok > 100 && refused > 100 && ok + refused == REPEAT &&
                     resp->tuples[0]->error == 0 && resp->tuples[REPEAT - 1]->error != 0,
                 "GET of one key %d times: %d answered, %d TOO_LARGE (reply bound)", REPEAT,
                 ok, refused);
        too_large += refused;
        key_response__free_unpacked(resp, NULL);
        cb_free(tuples);
        cb_free(ptrs);
    }

    //  Too many tuples for one request (300000 empty ones in 600 KB): refused as a whole
    //  before unpacking, with an answer.
    {
        enum { NTUPLES = 300000 };
        size_t alen = strlen(c.reply_to);
        size_t cap = 16 + alen + 16 + 2 * (size_t)NTUPLES;
        uint8_t *raw = cb_malloc(cap), *p = raw;
        *p++ = 0x08;                            //  type = GET
        *p++ = 0x01;
        *p++ = 0x1a;                            //  response_address
        *p++ = (uint8_t)alen;
        memcpy(p, c.reply_to, alen);
        p += alen;
        *p++ = 0x22;                            //  request_id
        *p++ = 5;
        memcpy(p, "flood", 5);
        p += 5;
        for (int i = 0; i < NTUPLES; i++) {
            *p++ = 0x12;                        //  an empty tuple
            *p++ = 0x00;
        }
        tl_send_raw(&c, t0, raw, (size_t)(p - raw), false);
        cb_free(raw);
        KeyResponse *resp = tl_wait_response(&c, "flood", TL_TIMEOUT_MS);
        TL_CHECK(resp && resp->error == ANNA_ERROR__BAD_REQUEST && resp->n_tuples == 0 &&
                     strstr(resp->error_message, "at most 262144"),
                 "a request of %d tuples: BAD_REQUEST \"%s\"", NTUPLES,
                 resp ? resp->error_message : "(no reply)");
        key_response__free_unpacked(resp, NULL);
        bad_request++;
    }

    //  Request types other than GET and PUT: the response and every tuple say BAD_REQUEST.
    for (int type = 0; type <= 7; type += 7) {
        KeyTuple a = KEY_TUPLE__INIT, b = KEY_TUPLE__INIT;
        a.key = k0;
        b.key = k1;
        KeyTuple *tuples[2] = {&a, &b};
        KeyRequest req = KEY_REQUEST__INIT;
        req.type = (RequestType)type;
        req.tuples = tuples;
        req.n_tuples = 2;
        req.response_address = c.reply_to;
        char id[32];
        snprintf(id, sizeof id, "type-%d", type);
        req.request_id = id;
        tl_send_request(&c, t0, &req);
        KeyResponse *resp = tl_wait_response(&c, id, TL_TIMEOUT_MS);
        TL_CHECK(resp && resp->error == ANNA_ERROR__BAD_REQUEST && resp->n_tuples == 2 &&
                     resp->tuples[0]->error == ANNA_ERROR__BAD_REQUEST &&
                     resp->tuples[1]->error == ANNA_ERROR__BAD_REQUEST &&
                     strstr(resp->error_message, "not GET or PUT"),
                 "request type %d: BAD_REQUEST on the response and each tuple", type);
        key_response__free_unpacked(resp, NULL);
        bad_request++;
    }

    //  3. No response address: the PUT is merged, nothing is sent.
    cb_bytes_t quiet_payload = {0};
    s_lww_payload(&quiet_payload, 5);
    len = s_pack(REQUEST_TYPE__PUT, quiet, LAT_LWW, quiet_payload.data, quiet_payload.len, NULL,
                 "silent", &buf);
    tl_send_raw(&c, t0, buf, len, false);
    cb_free(buf);
    tl_expect_silence(&c, 300, "no reply to a PUT without response address");
    TL_CHECK(tl_get(&c, t0, quiet, &got) == 0 && got.kind == LAT_LWW && got.u.lww.value.len == 5,
             "the PUT without response address was merged");
    lat_fini(&got);

    //  Unusable response addresses: host names, inproc, garbage. The PUT is still merged.
    const char *unusable[] = {"tcp://localhost:9", "inproc://anna", "nonsense"};
    for (size_t i = 0; i < 3; i++) {
        len = s_pack(REQUEST_TYPE__PUT, quiet, LAT_LWW, quiet_payload.data, quiet_payload.len,
                     unusable[i], "unusable", &buf);
        tl_send_raw(&c, t0, buf, len, false);
        cb_free(buf);
        bad_address++;
    }
    //  A response address nobody listens on, many times: the replies queue up to the
    //  high-water mark, then are dropped; the thread never blocks.
    for (int i = 0; i < 3000; i++) {
        len = s_pack(REQUEST_TYPE__GET, quiet, 0, NULL, 0, "tcp://127.0.0.1:1", "dead", &buf);
        tl_send_raw(&c, t0, buf, len, false);
        cb_free(buf);
    }
    cb_bytes_fini(&quiet_payload);
    cb_bytes_fini(&ok_payload);

    char *json = tl_stats(&c, t0);
    printf("thread 0 stats: %s\n", json);
    TL_CHECK(tl_counter(json, "malformed") == malformed, "malformed=%lld on the key port",
             malformed);
    TL_CHECK(tl_counter(json, "bad_request") == bad_request, "bad_request=%lld", bad_request);
    TL_CHECK(tl_counter(json, "too_large") == too_large, "too_large=%lld", too_large);
    TL_CHECK(tl_counter(json, "bad_address") == bad_address, "bad_address=%lld", bad_address);
    TL_CHECK(tl_counter(json, "replies_dropped") > 0,
             "replies to a dead address were dropped, not waited for (%lld)",
             tl_counter(json, "replies_dropped"));
    cb_free(json);
    tl_expect_silence(&c, 200, "no reply to any undecodable or multi-frame message");

    //  4. The gossip port: junk and a GET are malformed; a key state for a key thread 0
    //  does not own, one of an unknown kind and an undecodable one are rejected.
    tl_send_raw(&c, g0, "\xff\xff\xff", 3, false);
    malformed++;
    len = s_pack(REQUEST_TYPE__GET, k0, 0, NULL, 0, NULL, "gossip-get", &buf);
    tl_send_raw(&c, g0, buf, len, false);
    cb_free(buf);
    malformed++;
    cb_bytes_t payload = {0};
    s_lww_payload(&payload, 4);
    const struct {
        const char *key;
        int type;
        const void *data;
        size_t len;
    } rejects[] = {{k1, LAT_LWW, payload.data, payload.len},
                   {k0, 42, payload.data, payload.len},
                   {k0, LAT_LWW, "\xff", 1},
                   {"", LAT_LWW, payload.data, payload.len},
                   {"ANNA_METADATA|stats", LAT_LWW, payload.data, payload.len}};
    for (size_t i = 0; i < sizeof rejects / sizeof rejects[0]; i++) {
        len = s_pack(REQUEST_TYPE__PUT, rejects[i].key, rejects[i].type, rejects[i].data,
                     rejects[i].len, NULL, "", &buf);
        tl_send_raw(&c, g0, buf, len, false);
        cb_free(buf);
    }
    //  And a good one, last: once it is merged, the ones before it were handled.
    len = s_pack(REQUEST_TYPE__PUT, k0, LAT_LWW, payload.data, payload.len, NULL, "", &buf);
    tl_send_raw(&c, g0, buf, len, false);
    cb_free(buf);
    cb_bytes_fini(&payload);
    TL_CHECK(s_wait_counter(&c, t0, "gossip_keys_received", 1) == 1,
             "a valid gossip PUT is merged");
    json = tl_stats(&c, t0);
    TL_CHECK(tl_counter(json, "gossip_rejected") == 5 && tl_counter(json, "malformed") == malformed,
             "gossip: 5 key states rejected, malformed=%lld", malformed);
    cb_free(json);
    TL_CHECK(tl_get(&c, t0, k0, &got) == 0 && got.u.lww.value.len == 4,
             "the gossiped value is readable");
    lat_fini(&got);

    //  5. The routing port: junk, an empty frame, a request without response address.
    tl_send_raw(&c, routing, "\xff\xff", 2, false);
    tl_send_raw(&c, routing, "", 0, false);
    KeyAddressRequest areq = KEY_ADDRESS_REQUEST__INIT;
    char *akeys[1] = {"x"};
    areq.keys = akeys;
    areq.n_keys = 1;
    len = key_address_request__get_packed_size(&areq);
    buf = cb_malloc(len);
    key_address_request__pack(&areq, buf);
    tl_send_raw(&c, routing, buf, len, false);
    cb_free(buf);
    //  Too many keys in one address request: refused as a whole, but answered.
    {
        enum { NKEYS = 70000 };
        char **many = cb_calloc(NKEYS, sizeof *many);
        for (int i = 0; i < NKEYS; i++)
            many[i] = "k";
        KeyAddressRequest huge_req = KEY_ADDRESS_REQUEST__INIT;
        huge_req.keys = many;
        huge_req.n_keys = NKEYS;
        huge_req.response_address = c.reply_to;
        huge_req.request_id = "many-keys";
        len = key_address_request__get_packed_size(&huge_req);
        buf = cb_malloc(len);
        key_address_request__pack(&huge_req, buf);
        tl_send_raw(&c, routing, buf, len, false);
        cb_free(buf);
        cb_free(many);
        uint8_t *data;
        TL_ASSERT(tl_recv_raw(&c, TL_TIMEOUT_MS, &data, &len), "no answer to 70000 keys");
        KeyAddressResponse *resp = key_address_response__unpack(NULL, len, data);
        cb_free(data);
        TL_CHECK(resp && !strcmp(resp->response_id, "many-keys") &&
                     resp->error == ANNA_ERROR__BAD_REQUEST && resp->n_addresses == 0,
                 "an address request for 70000 keys: BAD_REQUEST, no addresses");
        key_address_response__free_unpacked(resp, NULL);
    }
    char addrs[4][128];
    TL_CHECK(tl_resolve(&c, "after-junk", addrs, 4) == 1,
             "routing answers after junk, empty frames and address-less requests");

    //  6. A message over the size limit (max-value-bytes + 1 MiB) is refused by ZeroMQ on
    //  the connection (which is closed); it is never delivered, and other clients are served.
    {
        tl_client_t rogue;
        tl_client_init(&rogue, offset);
        size_t huge = (size_t)MAX_VALUE + (2u << 20);
        uint8_t *junk = cb_malloc(huge);
        memset(junk, 0x0a, huge);
        tl_send_raw(&rogue, t0, junk, huge, false);
        cb_free(junk);
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
        tl_client_fini(&rogue);
    }
    json = tl_stats(&c, t0);
    TL_CHECK(tl_counter(json, "malformed") == malformed,
             "an oversize message never reaches the worker (malformed still %lld)", malformed);
    cb_free(json);

    //  7. Still healthy: correct PUT/GET on both threads.
    for (int t = 0; t < 2; t++) {
        char key[64], owner[128];
        s_key_on(&c, t, "final", key);
        tl_owner(&c, key, owner);
        lat_t v;
        lat_init(&v, LAT_SET);
        lat_set_insert(&v.u.set, "alive", 5);
        TL_ASSERT(tl_put(&c, owner, key, &v, msg, sizeof msg) == 0, "final PUT: %s", msg);
        TL_CHECK(tl_get(&c, owner, key, &got) == 0 && lat_equal(&got, &v),
                 "thread %d still answers PUT and GET correctly", t);
        lat_fini(&got);
        lat_fini(&v);
    }
    TL_CHECK(c.skipped == 0, "no reply arrived that was not asked for (%d, last \"%s\")",
             c.skipped, c.last_skipped);
    tl_client_fini(&c);
    printf("PASS\n");
    return 0;
}
