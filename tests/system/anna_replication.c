//  tests/system/anna_replication.c: replication across the threads of one node by gossip
//  (anna-server --threads 2 --replication 2 --gossip-ms 50). A PUT on one owner reaches the
//  other within a bounded wait; concurrent SET PUTs on both owners converge to the union on
//  both; repeated rounds keep converging; the gossip counters show the traffic.
//  Usage: anna_replication PORT_OFFSET
//  SPDX-License-Identifier: Apache-2.0
#include "tests/system/anna_testlib.h"

#define CONVERGE_MS 5000

//  Polls GET key on address until the value equals want (or the time is up).
static bool s_wait_value(tl_client_t *c, const char *address, const char *key, const lat_t *want,
                         int64_t *waited_ms)
{
    int64_t start = cb_clock_mono_ms();
    for (;;) {
        lat_t got;
        int err = tl_get(c, address, key, &got);
        bool same = err == ANNA_ERROR__NO_ERROR && lat_equal(&got, want);
        lat_fini(&got);
        *waited_ms = cb_clock_mono_ms() - start;
        if (same)
            return true;
        if (*waited_ms > CONVERGE_MS)
            return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void s_lww(lat_t *v, uint64_t ts, const char *text)
{
    lat_init(v, LAT_LWW);
    lat_lww_assign(v, ts, 1, text, strlen(text));
}

int main(int argc, char **argv)
{
    if (argc != 2)
        tl_fail("usage: anna_replication PORT_OFFSET");
    tl_client_t c;
    tl_client_init(&c, atoi(argv[1]));
    char addrs[8][128], msg[256];

    //  Routing lists both threads as owners; a client caching 2 addresses is not invalidated.
    size_t n = tl_resolve(&c, "replicated", addrs, 8);
    TL_CHECK(n == 2 && strcmp(addrs[0], addrs[1]) != 0, "routing: two owners (%s, %s)",
             addrs[0], n > 1 ? addrs[1] : "-");
    KeyResponse *resp = tl_request1(&c, addrs[0], REQUEST_TYPE__GET, "replicated", 0, NULL, 0, 2);
    TL_CHECK(!resp->tuples[0]->invalidate, "address_cache_size 2 = owners: no invalidate");
    key_response__free_unpacked(resp, NULL);
    resp = tl_request1(&c, addrs[0], REQUEST_TYPE__GET, "replicated", 0, NULL, 0, 1);
    TL_CHECK(resp->tuples[0]->invalidate, "address_cache_size 1 with 2 owners: invalidate");
    key_response__free_unpacked(resp, NULL);

    //  PUT on A, read on B. B's copy only comes through gossip.
    char a[128], b[128];
    snprintf(a, sizeof a, "%s", addrs[0]);
    snprintf(b, sizeof b, "%s", addrs[1]);
    lat_t v, got;
    s_lww(&v, 1000, "written on A");
    TL_ASSERT(tl_put(&c, a, "replicated", &v, msg, sizeof msg) == 0, "PUT on A: %s", msg);
    int64_t waited;
    TL_CHECK(s_wait_value(&c, b, "replicated", &v, &waited),
             "LWW PUT on thread A is read on thread B after %lld ms", (long long)waited);
    lat_fini(&v);
    //  And the other way round, with a newer value.
    s_lww(&v, 2000, "written on B");
    TL_ASSERT(tl_put(&c, b, "replicated", &v, msg, sizeof msg) == 0, "PUT on B: %s", msg);
    TL_CHECK(s_wait_value(&c, a, "replicated", &v, &waited),
             "newer LWW PUT on B replaces the value on A after %lld ms", (long long)waited);
    //  An older value PUT on A loses everywhere.
    lat_t old;
    s_lww(&old, 1500, "stale");
    TL_ASSERT(tl_put(&c, a, "replicated", &old, msg, sizeof msg) == 0, "stale PUT: %s", msg);
    TL_ASSERT(tl_get(&c, a, "replicated", &got) == 0 && lat_equal(&got, &v), "stale lost on A");
    lat_fini(&got);
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    TL_CHECK(tl_get(&c, b, "replicated", &got) == 0 && lat_equal(&got, &v),
             "an older LWW PUT loses on both replicas");
    lat_fini(&got);
    lat_fini(&old);
    lat_fini(&v);

    //  Concurrent SET PUTs, interleaved on both owners, over several keys: every replica of
    //  every key converges to the union.
    enum { KEYS = 5, ELEMS = 40 };
    lat_t expect[KEYS];
    char keys[KEYS][32], owners[KEYS][2][128];
    for (int k = 0; k < KEYS; k++) {
        snprintf(keys[k], sizeof keys[k], "set-%d", k);
        TL_ASSERT(tl_resolve(&c, keys[k], owners[k], 2) == 2, "two owners for %s", keys[k]);
        lat_init(&expect[k], LAT_SET);
    }
    for (int i = 0; i < ELEMS; i++)
        for (int k = 0; k < KEYS; k++) {
            int side = i % 2;
            char elem[32];
            snprintf(elem, sizeof elem, "%s-elem-%d", side ? "b" : "a", i);
            lat_t one;
            lat_init(&one, LAT_SET);
            lat_set_insert(&one.u.set, elem, strlen(elem));
            TL_ASSERT(tl_put(&c, owners[k][side], keys[k], &one, msg, sizeof msg) == 0,
                      "SET PUT: %s", msg);
            lat_set_insert(&expect[k].u.set, elem, strlen(elem));
            lat_fini(&one);
        }
    for (int k = 0; k < KEYS; k++)
        for (int side = 0; side < 2; side++) {
            TL_ASSERT(s_wait_value(&c, owners[k][side], keys[k], &expect[k], &waited),
                      "%s on %s did not converge to the union of %d elements within %d ms",
                      keys[k], owners[k][side], ELEMS, CONVERGE_MS);
        }
    printf("ok: concurrent SET PUTs on both owners of %d keys converge to the union on both\n",
           KEYS);
    for (int k = 0; k < KEYS; k++)
        lat_fini(&expect[k]);

    //  Gossip counters: both threads sent and received key states, nothing rejected.
    char t0[128], t1[128];
    tl_key_addr(&c, 0, t0, sizeof t0);
    tl_key_addr(&c, 1, t1, sizeof t1);
    char *s0 = tl_stats(&c, t0), *s1 = tl_stats(&c, t1);
    printf("thread 0: %s\nthread 1: %s\n", s0, s1);
    TL_CHECK(tl_counter(s0, "gossip_sent") > 0 && tl_counter(s1, "gossip_sent") > 0 &&
                 tl_counter(s0, "gossip_keys_received") > 0 &&
                 tl_counter(s1, "gossip_keys_received") > 0,
             "both threads sent and merged gossip");
    TL_CHECK(tl_counter(s0, "gossip_rejected") == 0 && tl_counter(s1, "gossip_rejected") == 0,
             "no gossip rejected");
    TL_CHECK(tl_counter(s0, "keys") == 1 + KEYS && tl_counter(s1, "keys") == 1 + KEYS,
             "each thread holds every key (full replication)");
    cb_free(s0);
    cb_free(s1);

    //  Gossip is batched: a burst of PUTs to many keys on one thread is sent in few
    //  messages (one per gossip period), not one per PUT.
    char *before = tl_stats(&c, t0);
    long long sent_before = tl_counter(before, "gossip_sent");
    cb_free(before);
    for (int i = 0; i < 200; i++) {
        char key[32];
        snprintf(key, sizeof key, "burst-%d", i);
        s_lww(&v, 1, key);
        TL_ASSERT(tl_put(&c, t0, key, &v, msg, sizeof msg) == 0, "burst PUT: %s", msg);
        lat_fini(&v);
    }
    s_lww(&v, 1, "burst-199");
    TL_ASSERT(s_wait_value(&c, t1, "burst-199", &v, &waited), "burst reached thread 1");
    lat_fini(&v);
    char *after = tl_stats(&c, t0);
    long long sent = tl_counter(after, "gossip_sent") - sent_before;
    cb_free(after);
    TL_CHECK(sent >= 1 && sent < 100, "200 PUTs were gossiped in %lld messages", sent);

    //  A change set bigger than one gossip message (300 keys of 8000 bytes, 2.4 MB) is
    //  split over several messages, and every key arrives.
    before = tl_stats(&c, t0);
    sent_before = tl_counter(before, "gossip_sent");
    cb_free(before);
    char *big = cb_malloc(8000);
    for (int i = 0; i < 300; i++) {
        char key[32];
        snprintf(key, sizeof key, "bulk-%d", i);
        memset(big, 'a' + i % 26, 8000);
        lat_init(&v, LAT_LWW);
        lat_lww_assign(&v, 5, 1, big, 8000);
        //  Without response address, so that all 300 are merged before the next round.
        cb_bytes_t payload = {0};
        wire_encode(&v, &payload);
        KeyTuple tuple = KEY_TUPLE__INIT;
        tuple.key = key;
        tuple.lattice_type = LATTICE_TYPE__LWW;
        tuple.payload.data = payload.data;
        tuple.payload.len = payload.len;
        KeyTuple *tuples[1] = {&tuple};
        KeyRequest req = KEY_REQUEST__INIT;
        req.type = REQUEST_TYPE__PUT;
        req.tuples = tuples;
        req.n_tuples = 1;
        tl_send_request(&c, t0, &req);
        cb_bytes_fini(&payload);
        lat_fini(&v);
    }
    for (int i = 0; i < 300; i++) {
        char key[32];
        snprintf(key, sizeof key, "bulk-%d", i);
        memset(big, 'a' + i % 26, 8000);
        lat_init(&v, LAT_LWW);
        lat_lww_assign(&v, 5, 1, big, 8000);
        TL_ASSERT(s_wait_value(&c, t1, key, &v, &waited), "%s did not reach thread 1", key);
        lat_fini(&v);
    }
    cb_free(big);
    after = tl_stats(&c, t0);
    sent = tl_counter(after, "gossip_sent") - sent_before;
    printf("thread 0: %s\n", after);
    TL_CHECK(sent >= 3 && tl_counter(after, "gossip_failed") == 0,
             "300 keys of 8000 bytes reached the other replica in %lld gossip messages", sent);
    cb_free(after);

    //  Many keys with empty values (next to no bytes): the gossip is split by key count as
    //  well (65536 keys per message), and every key arrives.
    {
        enum { NTINY = 70000, PER_REQUEST = 10000 };
        char *s0b = tl_stats(&c, t0), *s1b = tl_stats(&c, t1);
        long long sent0 = tl_counter(s0b, "gossip_sent");
        long long keys1 = tl_counter(s1b, "keys");
        cb_free(s0b);
        cb_free(s1b);
        static char names[PER_REQUEST][16];
        KeyTuple *tuples = cb_calloc(PER_REQUEST, sizeof *tuples);
        KeyTuple **ptrs = cb_calloc(PER_REQUEST, sizeof *ptrs);
        for (int base = 0; base < NTINY; base += PER_REQUEST) {
            for (int i = 0; i < PER_REQUEST; i++) {
                snprintf(names[i], sizeof names[i], "t%d", base + i);
                key_tuple__init(&tuples[i]);
                tuples[i].key = names[i];
                tuples[i].lattice_type = LATTICE_TYPE__SET;    //  empty payload: empty set
                ptrs[i] = &tuples[i];
            }
            KeyRequest req = KEY_REQUEST__INIT;
            req.type = REQUEST_TYPE__PUT;
            req.tuples = ptrs;
            req.n_tuples = PER_REQUEST;
            tl_send_request(&c, t0, &req);
        }
        cb_free(tuples);
        cb_free(ptrs);
        long long held = 0;
        for (int i = 0; i < 250 && held < keys1 + NTINY; i++) {
            char *json = tl_stats(&c, t1);
            held = tl_counter(json, "keys");
            cb_free(json);
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        TL_CHECK(held == keys1 + NTINY, "%d keys with empty values all reached thread 1", NTINY);
        char *s0a = tl_stats(&c, t0);
        TL_CHECK(tl_counter(s0a, "gossip_sent") - sent0 >= 2,
                 "they were gossiped in %lld messages (at most 65536 keys each)",
                 tl_counter(s0a, "gossip_sent") - sent0);
        cb_free(s0a);
    }

    tl_client_fini(&c);
    printf("PASS\n");
    return 0;
}
