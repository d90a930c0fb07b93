//  tests/system/anna_basic.c: PUT/GET of every lattice kind against a running anna-server
//  (--threads 2, replication 1) through the raw protocol: routing, merge results, multi-tuple
//  requests, KEY_DNE, LATTICE on a kind mismatch (stored value unchanged), WRONG_THREAD,
//  the invalidate flag, request ids, reserved keys and the stats key.
//  Usage: anna_basic PORT_OFFSET
//  SPDX-License-Identifier: Apache-2.0
#include "tests/system/anna_testlib.h"

static const lat_kind_t s_kinds[] = {LAT_LWW,  LAT_SET,      LAT_ORDERED_SET, LAT_SINGLE_CAUSAL,
                                     LAT_MULTI_CAUSAL, LAT_PRIORITY, LAT_BOOL, LAT_MAX,
                                     LAT_MAP,  LAT_VCLOCK};
#define NKINDS (sizeof s_kinds / sizeof s_kinds[0])

//  A hand-made, non-bottom value of each kind (so that "stored" is visible).
static void s_value(lat_t *v, lat_kind_t kind, int variant)
{
    char text[32];
    snprintf(text, sizeof text, "value-%d", variant);
    lat_init(v, kind);
    lat_vclock_t clock = {0};
    switch (kind) {
    case LAT_LWW:
        lat_lww_assign(v, 1000 + (uint64_t)variant, 7, text, strlen(text));
        break;
    case LAT_SET:
    case LAT_ORDERED_SET:
        lat_set_insert(&v->u.set, text, strlen(text));
        lat_set_insert(&v->u.set, "common", 6);
        break;
    case LAT_SINGLE_CAUSAL:
    case LAT_MULTI_CAUSAL: {
        //  Variants have concurrent clocks, so the merge keeps both versions.
        lat_vclock_bump(&clock, variant ? "b" : "a", 1);
        lat_deps_t deps = {0};
        lat_vclock_t dep = {0};
        lat_vclock_bump(&dep, "x", 2);
        lat_deps_add(&deps, "other-key", &dep);
        lat_causal_add(v, &clock, &deps, text, strlen(text));
        lat_deps_fini(&deps);
        lat_vclock_fini(&dep);
        lat_vclock_fini(&clock);
        break;
    }
    case LAT_PRIORITY:
        lat_priority_assign(v, variant ? 1.5 : 2.5, text, strlen(text));
        break;
    case LAT_BOOL:
        v->u.boolean = variant != 0;
        break;
    case LAT_MAX:
        v->u.max = variant ? -5 : 42;
        break;
    case LAT_MAP: {
        lat_t inner;
        lat_init(&inner, LAT_MAX);
        inner.u.max = variant;
        lat_map_merge_at(&v->u.map, "shared", 6, &inner);
        lat_map_merge_at(&v->u.map, text, strlen(text), &inner);
        lat_fini(&inner);
        break;
    }
    case LAT_VCLOCK:
        lat_vclock_bump(&v->u.vclock, "n1", (uint32_t)(3 - variant));
        lat_vclock_bump(&v->u.vclock, variant ? "n2" : "n3", 1);
        break;
    default:
        tl_fail("no sample value for kind %d", kind);
    }
}

static void s_expect_equal(const lat_t *got, const lat_t *want, const char *what)
{
    if (!lat_equal(got, want)) {
        char *g = lat_format(got), *w = lat_format(want);
        tl_fail("%s: got %s, want %s", what, g, w);
    }
}

//  PUT v1, GET == v1; PUT v2, GET == merge(v1, v2); and random pairs of the kind.
static void s_test_kind(tl_client_t *c, lat_kind_t kind)
{
    const char *name = lat_kind_name(kind);
    char key[64], owner[128], msg[256];
    snprintf(key, sizeof key, "basic-%s", name);
    tl_owner(c, key, owner);
    lat_t v1, v2, got, merged;
    s_value(&v1, kind, 0);
    s_value(&v2, kind, 1);
    TL_ASSERT(tl_put(c, owner, key, &v1, msg, sizeof msg) == ANNA_ERROR__NO_ERROR,
              "PUT %s: %s", name, msg);
    TL_ASSERT(tl_get(c, owner, key, &got) == ANNA_ERROR__NO_ERROR, "GET %s after PUT", name);
    s_expect_equal(&got, &v1, name);
    lat_fini(&got);
    TL_ASSERT(tl_put(c, owner, key, &v2, msg, sizeof msg) == ANNA_ERROR__NO_ERROR,
              "second PUT %s: %s", name, msg);
    lat_copy(&merged, &v1);
    lat_merge(&merged, &v2);
    TL_ASSERT(tl_get(c, owner, key, &got) == ANNA_ERROR__NO_ERROR, "GET %s after merge", name);
    s_expect_equal(&got, &merged, name);
    TL_ASSERT(!lat_equal(&merged, &v1) || kind == LAT_LWW || kind == LAT_BOOL || kind == LAT_MAX,
              "%s sample values do not exercise a merge", name);
    lat_fini(&got);
    lat_fini(&v1);
    lat_fini(&v2);
    lat_fini(&merged);

    //  Random values: the stored value is always the join of everything PUT.
    cb_rand_t rnd;
    cb_rand_seed(&rnd, 77 + (uint64_t)kind);
    snprintf(key, sizeof key, "random-%s", name);
    tl_owner(c, key, owner);
    lat_t expect;
    lat_init(&expect, kind);
    for (int i = 0; i < 8; i++) {
        lat_t r;
        lat_random(&r, kind, &rnd);
        TL_ASSERT(tl_put(c, owner, key, &r, msg, sizeof msg) == ANNA_ERROR__NO_ERROR,
                  "random PUT %s: %s", name, msg);
        lat_merge(&expect, &r);
        lat_fini(&r);
    }
    TL_ASSERT(tl_get(c, owner, key, &got) == ANNA_ERROR__NO_ERROR, "GET random %s", name);
    s_expect_equal(&got, &expect, name);
    lat_fini(&got);
    lat_fini(&expect);
    printf("ok: %s: PUT, GET, merge of two PUTs and of 8 random values\n", name);
}

//  Two keys owned by different threads (with 2 threads and replication 1).
static void s_keys_per_thread(tl_client_t *c, char key0[64], char key1[64])
{
    bool have0 = false, have1 = false;
    for (int i = 0; i < 200 && !(have0 && have1); i++) {
        char key[64], owner[128];
        snprintf(key, sizeof key, "spread-%d", i);
        tl_owner(c, key, owner);
        int t = tl_thread_of(c, owner);
        TL_ASSERT(t == 0 || t == 1, "routing address %s is not a worker of this node", owner);
        if (t == 0 && !have0) {
            snprintf(key0, 64, "%s", key);
            have0 = true;
        } else if (t == 1 && !have1) {
            snprintf(key1, 64, "%s", key);
            have1 = true;
        }
    }
    TL_CHECK(have0 && have1, "routing spreads keys over both threads");
}

static void s_lww(lat_t *v, uint64_t ts, const char *text)
{
    lat_init(v, LAT_LWW);
    lat_lww_assign(v, ts, 1, text, strlen(text));
}

int main(int argc, char **argv)
{
    if (argc != 2)
        tl_fail("usage: anna_basic PORT_OFFSET");
    tl_client_t c;
    tl_client_init(&c, atoi(argv[1]));
    char addr0[128], addr1[128], msg[256];
    tl_key_addr(&c, 0, addr0, sizeof addr0);
    tl_key_addr(&c, 1, addr1, sizeof addr1);

    //  Routing: one address per key with replication 1, on our ports.
    char addrs[8][128];
    size_t n = tl_resolve(&c, "some-key", addrs, 8);
    TL_CHECK(n == 1 && tl_thread_of(&c, addrs[0]) >= 0, "routing: one owner, %s", addrs[0]);

    for (size_t k = 0; k < NKINDS; k++)
        s_test_kind(&c, s_kinds[k]);

    char key0[64], key1[64];
    s_keys_per_thread(&c, key0, key1);

    //  KEY_DNE for a key never written; an empty LWW value is a value, not KEY_DNE.
    lat_t v, got;
    char owner[128];
    tl_owner(&c, "never-written", owner);
    TL_CHECK(tl_get(&c, owner, "never-written", &got) == ANNA_ERROR__KEY_DNE,
             "GET of an absent key: KEY_DNE");
    tl_owner(&c, "empty-value", owner);
    s_lww(&v, 5, "");
    TL_ASSERT(tl_put(&c, owner, "empty-value", &v, msg, sizeof msg) == 0, "PUT empty: %s", msg);
    TL_CHECK(tl_get(&c, owner, "empty-value", &got) == ANNA_ERROR__NO_ERROR &&
                 got.kind == LAT_LWW && got.u.lww.value.len == 0 && got.u.lww.ts == 5,
             "an empty LWW value is stored and read back (not KEY_DNE)");
    lat_fini(&got);
    lat_fini(&v);

    //  LATTICE: a SET PUT onto an LWW key is refused with a message; the value is unchanged.
    tl_owner(&c, "kind-clash", owner);
    s_lww(&v, 10, "the lww value");
    TL_ASSERT(tl_put(&c, owner, "kind-clash", &v, msg, sizeof msg) == 0, "PUT: %s", msg);
    lat_t set;
    lat_init(&set, LAT_SET);
    lat_set_insert(&set.u.set, "x", 1);
    int err = tl_put(&c, owner, "kind-clash", &set, msg, sizeof msg);
    TL_CHECK(err == ANNA_ERROR__LATTICE, "SET PUT onto an LWW key: LATTICE (%d)", err);
    TL_CHECK(strstr(msg, "key kind-clash holds LWW, not SET") != NULL,
             "LATTICE error message: \"%s\"", msg);
    TL_CHECK(tl_get(&c, owner, "kind-clash", &got) == 0 && lat_equal(&got, &v),
             "the LWW value is unchanged after the refused SET PUT");
    lat_fini(&got);
    lat_fini(&set);
    lat_fini(&v);

    //  WRONG_THREAD: a key sent to the thread that does not own it, GET and PUT; the PUT
    //  must not be stored anywhere.
    KeyResponse *resp = tl_request1(&c, addr1, REQUEST_TYPE__GET, key0, 0, NULL, 0, 0);
    TL_CHECK(resp->tuples[0]->error == ANNA_ERROR__WRONG_THREAD,
             "GET of thread 0's key on thread 1: WRONG_THREAD");
    key_response__free_unpacked(resp, NULL);
    s_lww(&v, 1, "misplaced");
    TL_CHECK(tl_put(&c, addr1, key0, &v, msg, sizeof msg) == ANNA_ERROR__WRONG_THREAD,
             "PUT of thread 0's key on thread 1: WRONG_THREAD");
    TL_CHECK(tl_get(&c, addr0, key0, &got) == ANNA_ERROR__KEY_DNE,
             "the misplaced PUT was not stored");
    lat_fini(&v);

    //  Invalidate: set when the client's cached address count differs from the owners (1).
    resp = tl_request1(&c, addr0, REQUEST_TYPE__GET, key0, 0, NULL, 0, 2);
    TL_CHECK(resp->tuples[0]->invalidate, "address_cache_size 2 with 1 owner: invalidate");
    key_response__free_unpacked(resp, NULL);
    resp = tl_request1(&c, addr0, REQUEST_TYPE__GET, key0, 0, NULL, 0, 1);
    TL_CHECK(!resp->tuples[0]->invalidate, "address_cache_size 1: no invalidate");
    key_response__free_unpacked(resp, NULL);
    resp = tl_request1(&c, addr0, REQUEST_TYPE__GET, key0, 0, NULL, 0, 0);
    TL_CHECK(!resp->tuples[0]->invalidate, "address_cache_size 0 (unknown): no invalidate");
    key_response__free_unpacked(resp, NULL);
    resp = tl_request1(&c, addr1, REQUEST_TYPE__GET, key0, 0, NULL, 0, 3);
    TL_CHECK(resp->tuples[0]->error == ANNA_ERROR__WRONG_THREAD && resp->tuples[0]->invalidate,
             "WRONG_THREAD replies carry invalidate too");
    key_response__free_unpacked(resp, NULL);

    //  Multi-tuple PUT then GET on thread 0: tuples answered 1:1 and in order, each on its
    //  own (thread 1's key gets WRONG_THREAD, the others succeed).
    {
        const char *keys[4] = {key0, key1, "", key0};
        lat_t vals[4];
        cb_bytes_t payloads[4] = {{0}};
        KeyTuple tuples[4];
        KeyTuple *ptrs[4];
        for (int i = 0; i < 4; i++) {
            char text[32];
            snprintf(text, sizeof text, "multi-%d", i);
            s_lww(&vals[i], 100 + (uint64_t)i, text);
            wire_encode(&vals[i], &payloads[i]);
            key_tuple__init(&tuples[i]);
            tuples[i].key = (char *)keys[i];
            tuples[i].lattice_type = LATTICE_TYPE__LWW;
            tuples[i].payload.data = payloads[i].data;
            tuples[i].payload.len = payloads[i].len;
            ptrs[i] = &tuples[i];
        }
        KeyRequest req = KEY_REQUEST__INIT;
        req.type = REQUEST_TYPE__PUT;
        req.tuples = ptrs;
        req.n_tuples = 4;
        req.response_address = c.reply_to;
        req.request_id = "multi-put-1";
        tl_send_request(&c, addr0, &req);
        resp = tl_wait_response(&c, "multi-put-1", TL_TIMEOUT_MS);
        TL_CHECK(resp && resp->n_tuples == 4 && resp->type == REQUEST_TYPE__PUT,
                 "multi-tuple PUT: one reply with 4 tuples, response_id = request_id");
        for (int i = 0; i < 4; i++)
            TL_ASSERT(!strcmp(resp->tuples[i]->key, keys[i]), "tuple %d key order", i);
        TL_CHECK(resp->tuples[0]->error == 0 && resp->tuples[1]->error == ANNA_ERROR__WRONG_THREAD &&
                     resp->tuples[2]->error == ANNA_ERROR__BAD_REQUEST &&
                     resp->tuples[3]->error == 0,
                 "multi-tuple PUT: ok, WRONG_THREAD, BAD_REQUEST (empty key), ok");
        key_response__free_unpacked(resp, NULL);
        req.type = REQUEST_TYPE__GET;
        req.request_id = "multi-get-1";
        for (int i = 0; i < 4; i++)
            tuples[i].payload.len = 0;
        tl_send_request(&c, addr0, &req);
        resp = tl_wait_response(&c, "multi-get-1", TL_TIMEOUT_MS);
        TL_ASSERT(resp && resp->n_tuples == 4 && resp->type == REQUEST_TYPE__GET, "multi GET");
        lat_t g;
        TL_ASSERT(resp->tuples[0]->error == 0 && resp->tuples[3]->error == 0, "multi GET ok");
        wire_decode(resp->tuples[3]->lattice_type, resp->tuples[3]->payload.data,
                    resp->tuples[3]->payload.len, &g);
        //  Both tuples of key0 were merged in order: the later timestamp (103) won.
        TL_CHECK(lat_equal(&g, &vals[3]), "multi-tuple GET: the key holds the merge of both PUTs");
        lat_fini(&g);
        key_response__free_unpacked(resp, NULL);
        for (int i = 0; i < 4; i++) {
            lat_fini(&vals[i]);
            cb_bytes_fini(&payloads[i]);
        }
    }

    //  Reserved keys: PUT refused, GET of an unknown one is KEY_DNE.
    s_lww(&v, 1, "x");
    TL_CHECK(tl_put(&c, addr0, "ANNA_METADATA|stats", &v, msg, sizeof msg) ==
                     ANNA_ERROR__BAD_REQUEST &&
                 strstr(msg, "reserved"),
             "PUT of a reserved key: BAD_REQUEST (%s)", msg);
    lat_fini(&v);

    //  Stats: routing sends the stats key to thread 0; each thread answers for itself;
    //  "ANNA_METADATA|stats|1" is thread 1's and nobody else's.
    n = tl_resolve(&c, "ANNA_METADATA|stats", addrs, 8);
    TL_CHECK(n == 1 && tl_thread_of(&c, addrs[0]) == 0, "routing: the stats key lives on thread 0");
    n = tl_resolve(&c, "ANNA_METADATA|stats|1", addrs, 8);
    TL_CHECK(n == 1 && tl_thread_of(&c, addrs[0]) == 1, "routing: stats|1 lives on thread 1");
    char *json = tl_stats(&c, addr0);
    printf("thread 0 stats: %s\n", json);
    TL_CHECK(tl_counter(json, "thread") == 0 && tl_counter(json, "requests") > 10 &&
                 tl_counter(json, "wrong_thread") == 2 && tl_counter(json, "keys") > 0 &&
                 tl_counter(json, "bad_request") == 3 && tl_counter(json, "malformed") == 0,
             "thread 0 stats: thread, requests, keys, wrong_thread=2 (multi-tuple GET+PUT), bad_request=3");
    cb_free(json);
    json = tl_stats(&c, addr1);
    TL_CHECK(tl_counter(json, "thread") == 1 && tl_counter(json, "wrong_thread") == 3,
             "thread 1 stats count its 3 WRONG_THREAD replies: %s", json);
    cb_free(json);
    TL_CHECK(tl_get(&c, addr0, "ANNA_METADATA|stats|1", &got) == ANNA_ERROR__WRONG_THREAD,
             "stats|1 asked of thread 0: WRONG_THREAD");
    TL_CHECK(tl_get(&c, addr1, "ANNA_METADATA|stats|1", &got) == 0 && got.kind == LAT_LWW,
             "stats|1 asked of thread 1: its counters");
    lat_fini(&got);
    tl_owner(&c, "ANNA_METADATA|other", owner);
    TL_CHECK(tl_get(&c, owner, "ANNA_METADATA|other", &got) == ANNA_ERROR__KEY_DNE,
             "GET of an unknown reserved key: KEY_DNE on its owner");

    tl_client_fini(&c);
    printf("PASS\n");
    return 0;
}
