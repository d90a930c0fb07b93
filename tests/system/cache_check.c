//  tests/system/cache_check.c: cb-cache against a real anna-server, through the unmodified
//  KVS client (client/kvs.h) configured with the cache's routing address, plus raw messages
//  where the client cannot produce them. Run by t_cache.sh, one mode per cache it starts:
//    cache_check basic   CACHE_ROUTING KVS_ROUTING SCHEDULER_ADDR
//        read-through, write-through, pushes (a KVS write is seen through the cache without
//        a new fetch), negative entries turned into values by a push, LATTICE and KEY_DNE
//        pass-through, one KVS fetch for many concurrent misses, malformed input, status
//        reports to the scheduler, the hit latency through the cache vs the KVS
//    cache_check evict   CACHE_ROUTING KVS_ROUTING        (cache started with --max-bytes 4K)
//        the byte bound evicts least recently used keys and unsubscribes them
//    cache_check causal  CACHE_ROUTING KVS_ROUTING
//        issue 4, the causal cut: a multi-key causal version written to the KVS whose
//        dependency the KVS does not have yet is not shown by the cache (the previous
//        version stays shown) until the dependency is written, then it is, without a read
//        in between having to miss
//    cache_check timeout CACHE_ROUTING KVS_ROUTING KVS_PID  (cache with --timeout-ms 500)
//        with the KVS stopped (SIGSTOP): hits are served, misses and writes end in TIMEOUT
//        within a bounded time; the cache recovers once the KVS runs again
//  Prints one "ok: ..." line per check; on failure "FAIL: ..." and exit 1 (after resuming
//  the KVS if it stopped it).
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "anna.pb-c.h"
#include "client/kvs.h"
#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "lattices/lattice.h"
#include "proto/wire.h"

static pid_t s_kvs_pid;         //  resumed on failure if we stopped it
static const char *s_cache_routing;
static const char *s_kvs_routing;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond);                          \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
            fflush(stdout);                                                                  \
            if (s_kvs_pid > 0)                                                               \
                kill(s_kvs_pid, SIGCONT);                                                    \
            exit(1);                                                                         \
        }                                                                                    \
        printf("ok: ");                                                                      \
        printf(__VA_ARGS__);                                                                 \
        printf("\n");                                                                        \
    } while (0)

//  Silent on success (checks in loops).
#define ASSERT(cond, ...)                                                                    \
    do {                                                                                     \
        if (!(cond))                                                                         \
            CHECK(cond, __VA_ARGS__);                                                        \
    } while (0)

static cb_kvs_t *s_client(const char *routing, int timeout_ms)
{
    cb_kvs_config_t config = {.routing = routing, .timeout_ms = timeout_ms};
    cb_kvs_t *kvs = cb_kvs_new(&config);
    ASSERT(kvs, "cb_kvs_new(%s): %s", routing, strerror(errno));
    return kvs;
}

static bool s_lww_is(const lat_t *v, const char *text)
{
    return v->kind == LAT_LWW && v->u.lww.value.len == strlen(text) &&
           !memcmp(v->u.lww.value.data, text, strlen(text));
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

//  GET key through kvs and check it holds the LWW text.
static void s_expect(cb_kvs_t *kvs, const char *key, const char *text, const char *what)
{
    lat_t v;
    int rc = cb_kvs_get(kvs, key, &v);
    CHECK(rc == 0 && s_lww_is(&v, text), "%s%s%s", what, rc ? ": " : "",
          rc ? cb_kvs_last_error(kvs) : "");
    lat_fini(&v);
}

//  The cache's counter name (GET of ANNA_METADATA|stats through the cache).
static long long s_stat(cb_kvs_t *cache, const char *name)
{
    lat_t v;
    int rc = cb_kvs_get(cache, "ANNA_METADATA|stats", &v);
    ASSERT(rc == 0 && v.kind == LAT_LWW, "stats: %s", cb_kvs_last_error(cache));
    char *json = cb_strndup((const char *)v.u.lww.value.data, v.u.lww.value.len);
    lat_fini(&v);
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", name);
    const char *p = strstr(json, pattern);
    long long n = p ? strtoll(p + strlen(pattern), NULL, 10) : -1;
    cb_free(json);
    ASSERT(n >= 0, "no counter %s in the cache's stats", name);
    return n;
}

//  The sum over the KVS's threads of a counter (ANNA_METADATA|stats|<t> for t = 0, 1, ...).
static long long s_kvs_stat(cb_kvs_t *kvs, const char *name)
{
    long long sum = 0;
    for (int t = 0; t < 8; t++) {
        char key[64];
        snprintf(key, sizeof key, "ANNA_METADATA|stats|%d", t);
        lat_t v;
        if (cb_kvs_get(kvs, key, &v) != 0)
            break;
        char *json = cb_strndup((const char *)v.u.lww.value.data, v.u.lww.value.len);
        lat_fini(&v);
        char pattern[64];
        snprintf(pattern, sizeof pattern, "\"%s\":", name);
        const char *p = strstr(json, pattern);
        sum += p ? strtoll(p + strlen(pattern), NULL, 10) : 0;
        cb_free(json);
    }
    return sum;
}

//  ---- raw messages -------------------------------------------------------------------------

typedef struct {
    void *ctx;
    void *pull;
    char reply_to[128];
    void *data;                 //  PUSH to the cache's data socket
    void *routing;              //  PUSH to its routing socket
} s_raw_t;

static void s_raw_init(s_raw_t *raw, const char *data_addr)
{
    raw->ctx = zmq_ctx_new();
    raw->pull = zmq_socket(raw->ctx, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt(raw->pull, ZMQ_LINGER, &linger, sizeof linger);
    ASSERT(zmq_bind(raw->pull, "tcp://127.0.0.1:*") == 0, "bind: %s", zmq_strerror(errno));
    size_t len = sizeof raw->reply_to;
    zmq_getsockopt(raw->pull, ZMQ_LAST_ENDPOINT, raw->reply_to, &len);
    raw->data = zmq_socket(raw->ctx, ZMQ_PUSH);
    raw->routing = zmq_socket(raw->ctx, ZMQ_PUSH);
    zmq_setsockopt(raw->data, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(raw->routing, ZMQ_LINGER, &linger, sizeof linger);
    ASSERT(zmq_connect(raw->data, data_addr) == 0, "connect %s", data_addr);
    ASSERT(zmq_connect(raw->routing, s_cache_routing) == 0, "connect %s", s_cache_routing);
}

static void s_raw_fini(s_raw_t *raw)
{
    zmq_close(raw->pull);
    zmq_close(raw->data);
    zmq_close(raw->routing);
    zmq_ctx_term(raw->ctx);
}

static void s_raw_send(void *sock, const void *data, size_t len, bool more)
{
    ASSERT(zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) >= 0, "send: %s",
           zmq_strerror(errno));
}

static void s_raw_request(s_raw_t *raw, int type, const char *id, KeyTuple **tuples, size_t n)
{
    KeyRequest req = KEY_REQUEST__INIT;
    req.type = (RequestType)type;
    req.tuples = tuples;
    req.n_tuples = n;
    req.response_address = raw->reply_to;
    req.request_id = (char *)id;
    size_t len = key_request__get_packed_size(&req);
    uint8_t *buf = cb_malloc(len ? len : 1);
    key_request__pack(&req, buf);
    s_raw_send(raw->data, buf, len, false);
    cb_free(buf);
}

//  The next KeyResponse within timeout_ms (NULL if none). Caller frees.
static KeyResponse *s_raw_response(s_raw_t *raw, int timeout_ms)
{
    zmq_pollitem_t item = {raw->pull, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    ASSERT(zmq_msg_recv(&msg, raw->pull, 0) >= 0, "recv");
    KeyResponse *resp = key_response__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    ASSERT(resp, "undecodable KeyResponse from the cache");
    return resp;
}

//  The cache's data address, as its routing socket gives it.
static void s_data_address(char *out, size_t len)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL), *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 0;
    zmq_setsockopt(pull, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_bind(pull, "tcp://127.0.0.1:*");
    char reply_to[128];
    size_t rlen = sizeof reply_to;
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, reply_to, &rlen);
    zmq_connect(push, s_cache_routing);
    KeyAddressRequest req = KEY_ADDRESS_REQUEST__INIT;
    char *keys[1] = {"any"};
    req.keys = keys;
    req.n_keys = 1;
    req.response_address = reply_to;
    req.request_id = "addr";
    uint8_t buf[256];
    size_t n = key_address_request__get_packed_size(&req);
    key_address_request__pack(&req, buf);
    zmq_send(push, buf, n, 0);
    zmq_pollitem_t item = {pull, 0, ZMQ_POLLIN, 0};
    ASSERT(zmq_poll(&item, 1, 5000) == 1, "no KeyAddressResponse from the cache");
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    zmq_msg_recv(&msg, pull, 0);
    KeyAddressResponse *resp =
        key_address_response__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    ASSERT(resp && resp->n_addresses == 1 && resp->addresses[0]->n_ips == 1 &&
               !strcmp(resp->response_id, "addr"),
           "KeyAddressResponse of the cache: one address for the key");
    snprintf(out, len, "%s", resp->addresses[0]->ips[0]);
    key_address_response__free_unpacked(resp, NULL);
    zmq_close(pull);
    zmq_close(push);
    zmq_ctx_term(ctx);
}

//  ---- modes --------------------------------------------------------------------------------

static void s_latency(cb_kvs_t *cache, cb_kvs_t *kvs)
{
    enum { N = 2000 };
    const cb_kvs_t *who[2] = {cache, kvs};
    double us[2];
    for (int w = 0; w < 2; w++) {
        lat_t v;
        int64_t start = cb_clock_mono_us();
        for (int i = 0; i < N; i++) {
            ASSERT(cb_kvs_get((cb_kvs_t *)who[w], "c-1", &v) == 0, "latency GET");
            lat_fini(&v);
        }
        us[w] = (double)(cb_clock_mono_us() - start) / N;
    }
    printf("ok: GET hit latency: %.1f us through the cache, %.1f us from the KVS (%d GETs, "
           "this build)\n",
           us[0], us[1], N);
}

static void s_basic(const char *scheduler)
{
    cb_kvs_t *cache = s_client(s_cache_routing, 3000);
    cb_kvs_t *kvs = s_client(s_kvs_routing, 3000);
    lat_t v;

    //  Read-through: a key PUT in the KVS is read through the cache; the second read hits.
    ASSERT(cb_kvs_put_lww(kvs, "c-1", "one", 3) == 0, "PUT: %s", cb_kvs_last_error(kvs));
    long long fetches = s_stat(cache, "kvs_fetches"), hits = s_stat(cache, "hits");
    s_expect(cache, "c-1", "one", "a key PUT in the KVS is read through the cache");
    s_expect(cache, "c-1", "one", "and read again");
    CHECK(s_stat(cache, "kvs_fetches") == fetches + 1 && s_stat(cache, "hits") == hits + 1,
          "first read fetched from the KVS, second served from memory");

    //  Write-through: a PUT through the cache is in the KVS when it is acknowledged.
    ASSERT(cb_kvs_put_lww(cache, "c-2", "two", 3) == 0, "PUT: %s", cb_kvs_last_error(cache));
    s_expect(kvs, "c-2", "two", "a PUT through the cache is in the KVS once acknowledged");
    s_expect(cache, "c-2", "two", "and read through the cache");
    //  A PUT through the cache of a cached key updates the cached copy at once.
    ASSERT(cb_kvs_put_lww(cache, "c-1", "uno", 3) == 0, "PUT: %s", cb_kvs_last_error(cache));
    s_expect(cache, "c-1", "uno", "read-your-writes through the cache");

    //  Push: a write straight to the KVS shows through the cache within 2 s, without the
    //  cache fetching the key again.
    fetches = s_stat(cache, "kvs_fetches");
    long long applied = s_stat(cache, "updates_applied");
    ASSERT(cb_kvs_put_lww(kvs, "c-1", "pushed", 6) == 0, "PUT: %s", cb_kvs_last_error(kvs));
    int64_t start = cb_clock_mono_ms(), waited = -1;
    while (cb_clock_mono_ms() - start <= 2000) {
        ASSERT(cb_kvs_get(cache, "c-1", &v) == 0, "GET: %s", cb_kvs_last_error(cache));
        bool seen = s_lww_is(&v, "pushed");
        lat_fini(&v);
        if (seen) {
            waited = cb_clock_mono_ms() - start;
            break;
        }
        s_sleep_ms(5);
    }
    CHECK(waited >= 0, "a PUT straight to the KVS is seen through the cache after %lld ms",
          (long long)waited);
    CHECK(s_stat(cache, "kvs_fetches") == fetches && s_stat(cache, "updates_applied") > applied,
          "by a push: no new fetch, updates applied %lld -> %lld", applied,
          s_stat(cache, "updates_applied"));

    //  KEY_DNE passes through and is cached negatively; the key's creation is pushed and
    //  replaces the negative entry well before it would expire (negative-ms 1000).
    int rc = cb_kvs_get(cache, "c-dne", &v);
    CHECK(rc == -ENOENT, "an absent key: KEY_DNE through the cache (%s)", cb_strerror(rc));
    long long negative = s_stat(cache, "negative_hits");
    rc = cb_kvs_get(cache, "c-dne", &v);
    CHECK(rc == -ENOENT && s_stat(cache, "negative_hits") == negative + 1,
          "asked again: answered from the negative entry");
    ASSERT(cb_kvs_put_lww(kvs, "c-dne", "born", 4) == 0, "PUT: %s", cb_kvs_last_error(kvs));
    start = cb_clock_mono_ms();
    waited = -1;
    while (cb_clock_mono_ms() - start <= 500) {
        rc = cb_kvs_get(cache, "c-dne", &v);
        bool seen = rc == 0 && s_lww_is(&v, "born");
        lat_fini(&v);
        if (seen) {
            waited = cb_clock_mono_ms() - start;
            break;
        }
        s_sleep_ms(5);
    }
    CHECK(waited >= 0, "the key's creation is pushed into the negative entry (%lld ms)",
          (long long)waited);

    //  LATTICE: a cached SET refuses an LWW PUT in the cache; an uncached one in the KVS;
    //  either way the client gets -EINVAL and the message.
    lat_t set;
    lat_init(&set, LAT_SET);
    lat_set_insert(&set.u.set, "a", 1);
    ASSERT(cb_kvs_put(kvs, "c-set", &set) == 0 && cb_kvs_put(kvs, "c-set2", &set) == 0, "PUT");
    ASSERT(cb_kvs_get(cache, "c-set", &v) == 0 && lat_equal(&v, &set), "GET set");
    lat_fini(&v);
    rc = cb_kvs_put_lww(cache, "c-set", "x", 1);
    CHECK(rc == -EINVAL && strstr(cb_kvs_last_error(cache), "holds SET, not LWW"),
          "LWW PUT on a cached SET: LATTICE from the cache (%s)", cb_kvs_last_error(cache));
    rc = cb_kvs_put_lww(cache, "c-set2", "x", 1);
    CHECK(rc == -EINVAL && strstr(cb_kvs_last_error(cache), "holds SET, not LWW"),
          "LWW PUT on an uncached SET: the KVS's LATTICE passes through (%s)",
          cb_kvs_last_error(cache));
    ASSERT(cb_kvs_get(kvs, "c-set", &v) == 0 && lat_equal(&v, &set), "unchanged");
    lat_fini(&v);
    lat_fini(&set);

    //  Many concurrent misses on one key cost one KVS fetch. (a) One request naming the key
    //  ten times: one fetch, nine coalesced.
    ASSERT(cb_kvs_put_lww(kvs, "c-hot", "hot", 3) == 0, "PUT");
    ASSERT(cb_kvs_put_lww(kvs, "c-hot2", "hot", 3) == 0, "PUT");
    fetches = s_stat(cache, "kvs_fetches");
    long long coalesced = s_stat(cache, "coalesced");
    const char *keys[10];
    cb_kvs_result_t results[10];
    for (int i = 0; i < 10; i++)
        keys[i] = "c-hot";
    rc = cb_kvs_get_many(cache, keys, 10, results);
    bool all = rc == 0;
    for (int i = 0; i < 10; i++) {
        all = all && results[i].error == 0 && s_lww_is(&results[i].value, "hot");
        lat_fini(&results[i].value);
    }
    CHECK(all && s_stat(cache, "kvs_fetches") == fetches + 1 &&
              s_stat(cache, "coalesced") == coalesced + 9,
          "one request with 10 misses on a key: every answer right, 1 KVS fetch, 9 coalesced");
    //  (b) 50 requests from one executor, sent back to back before any answer.
    char data_addr[128];
    s_data_address(data_addr, sizeof data_addr);
    s_raw_t raw;
    s_raw_init(&raw, data_addr);
    fetches = s_stat(cache, "kvs_fetches");
    coalesced = s_stat(cache, "coalesced");
    enum { BURST = 50 };
    for (int i = 0; i < BURST; i++) {
        KeyTuple t = KEY_TUPLE__INIT;
        t.key = "c-hot2";
        KeyTuple *tp[1] = {&t};
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        s_raw_request(&raw, REQUEST_TYPE__GET, id, tp, 1);
    }
    int good = 0;
    for (int i = 0; i < BURST; i++) {
        KeyResponse *resp = s_raw_response(&raw, 5000);
        ASSERT(resp, "answer %d of %d of the burst", i, BURST);
        lat_t got;
        if (resp->n_tuples == 1 && resp->tuples[0]->error == 0 &&
            wire_decode((int)resp->tuples[0]->lattice_type, resp->tuples[0]->payload.data,
                        resp->tuples[0]->payload.len, &got) == 0) {
            good += s_lww_is(&got, "hot");
            lat_fini(&got);
        }
        key_response__free_unpacked(resp, NULL);
    }
    CHECK(good == BURST && s_stat(cache, "kvs_fetches") == fetches + 1,
          "%d back-to-back GETs of an uncached key: all answered, 1 KVS fetch (%lld coalesced, "
          "the rest hits)",
          BURST, s_stat(cache, "coalesced") - coalesced);

    //  Malformed input on both sockets: counted, never fatal; what decodes gets an error.
    long long malformed = s_stat(cache, "malformed");
    s_raw_send(raw.data, "\xff\xff\xff", 3, false);
    s_raw_send(raw.routing, "\x0b\x0c", 2, false);
    s_raw_send(raw.data, "", 0, false);
    s_raw_send(raw.routing, "", 0, false);
    s_raw_send(raw.data, "a", 1, true);
    s_raw_send(raw.data, "b", 1, false);
    s_raw_send(raw.routing, "\x12\x03" "abc", 5, true);
    s_raw_send(raw.routing, "x", 1, false);
    //  Decodable but wrong: a bad request type, an empty key, a PUT without a lattice type,
    //  a PUT with a payload that is not an LWWValue.
    KeyTuple bad[4];
    KeyTuple *bp[4];
    for (int i = 0; i < 4; i++) {
        key_tuple__init(&bad[i]);
        bp[i] = &bad[i];
    }
    bad[0].key = "k";
    s_raw_request(&raw, 7, "bad-type", bp, 1);
    bad[1].key = "";
    s_raw_request(&raw, REQUEST_TYPE__GET, "bad-key", &bp[1], 1);
    bad[2].key = "k";
    s_raw_request(&raw, REQUEST_TYPE__PUT, "bad-kind", &bp[2], 1);
    bad[3].key = "k";
    bad[3].lattice_type = LATTICE_TYPE__LWW;
    bad[3].payload.data = (uint8_t *)"\xff\xff\xff\xff";
    bad[3].payload.len = 4;
    s_raw_request(&raw, REQUEST_TYPE__PUT, "bad-payload", &bp[3], 1);
    const char *want[4][2] = {{"bad-type", "request type 7"},
                              {"bad-key", "empty key"},
                              {"bad-kind", "PUT needs a lattice_type"},
                              {"bad-payload", "malformed LWW payload"}};
    for (int i = 0; i < 4; i++) {
        KeyResponse *resp = s_raw_response(&raw, 5000);
        ASSERT(resp && !strcmp(resp->response_id, want[i][0]), "answer to %s", want[i][0]);
        CHECK(resp->n_tuples == 1 && resp->tuples[0]->error == ANNA_ERROR__BAD_REQUEST &&
                  strstr(resp->tuples[0]->error_message, want[i][1]),
              "%s: BAD_REQUEST (%s)", want[i][0], resp->tuples[0]->error_message);
        key_response__free_unpacked(resp, NULL);
    }
    s_expect(cache, "c-1", "pushed", "after garbage on both sockets the cache still answers");
    CHECK(s_stat(cache, "malformed") >= malformed + 6, "malformed messages counted (%lld)",
          s_stat(cache, "malformed") - malformed);
    s_raw_fini(&raw);

    //  Status reports: the scheduler gets NodeInfo and the cached keys.
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt(pull, ZMQ_LINGER, &linger, sizeof linger);
    ASSERT(zmq_bind(pull, scheduler) == 0, "bind %s: %s", scheduler, zmq_strerror(errno));
    bool reported = false;
    start = cb_clock_mono_ms();
    while (!reported && cb_clock_mono_ms() - start < 5000) {
        zmq_pollitem_t item = {pull, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 500) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        zmq_msg_recv(&msg, pull, 0);
        StatusReport *r = status_report__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        ASSERT(r, "undecodable StatusReport");
        if (r->body_case == STATUS_REPORT__BODY_NODE && !strcmp(r->node->node, "n0") &&
            !strcmp(r->node->cache_address, s_cache_routing) && r->node->cached_keys >= 4 &&
            r->node->cached_bytes > 0 && r->n_cached_keys == r->node->cached_keys) {
            for (size_t i = 0; i < r->n_cached_keys; i++)
                reported = reported || !strcmp(r->cached_keys[i], "c-1");
        }
        status_report__free_unpacked(r, NULL);
    }
    CHECK(reported, "the scheduler gets StatusReport{node n0, its routing address, keys incl. c-1}");
    zmq_close(pull);
    zmq_ctx_term(ctx);

    s_latency(cache, kvs);
    cb_kvs_destroy(&cache);
    cb_kvs_destroy(&kvs);
}

static void s_evict(void)
{
    cb_kvs_t *cache = s_client(s_cache_routing, 3000);
    cb_kvs_t *kvs = s_client(s_kvs_routing, 3000);
    enum { KEYS = 20 };
    char value[400];
    memset(value, 'v', sizeof value);
    for (int i = 0; i < KEYS; i++) {
        char key[32];
        snprintf(key, sizeof key, "e-%d", i);
        ASSERT(cb_kvs_put_lww(kvs, key, value, sizeof value) == 0, "PUT");
    }
    long long subs_before = s_kvs_stat(kvs, "subscriptions");
    for (int i = 0; i < KEYS; i++) {
        char key[32];
        snprintf(key, sizeof key, "e-%d", i);
        lat_t v;
        ASSERT(cb_kvs_get(cache, key, &v) == 0 && v.u.lww.value.len == sizeof value,
               "GET %s through the cache", key);
        lat_fini(&v);
    }
    long long keys = s_stat(cache, "keys"), bytes = s_stat(cache, "bytes");
    long long evictions = s_stat(cache, "evictions");
    CHECK(evictions > 0 && keys < KEYS && bytes <= 4096,
          "--max-bytes 4K: %lld evictions, %lld keys, %lld bytes", evictions, keys, bytes);
    //  The most recent key is cached, the first one evicted.
    long long hits = s_stat(cache, "hits"), misses = s_stat(cache, "misses");
    lat_t v;
    char last[32];
    snprintf(last, sizeof last, "e-%d", KEYS - 1);
    ASSERT(cb_kvs_get(cache, last, &v) == 0, "GET");
    lat_fini(&v);
    CHECK(s_stat(cache, "hits") == hits + 1, "the most recently used key is still cached");
    ASSERT(cb_kvs_get(cache, "e-0", &v) == 0 && v.u.lww.value.len == sizeof value, "GET e-0");
    lat_fini(&v);
    CHECK(s_stat(cache, "misses") == misses + 1, "the least recently used was evicted: a miss, "
                                                "fetched again");
    //  Evicted keys were unsubscribed: the KVS holds as many subscriptions for us as keys we
    //  hold, and a write to an evicted key pushes nothing.
    int64_t start = cb_clock_mono_ms();
    long long subs = 0;
    keys = 0;
    while (cb_clock_mono_ms() - start < 2000) {
        subs = s_kvs_stat(kvs, "subscriptions") - subs_before;
        keys = s_stat(cache, "keys");
        if (subs == keys)
            break;
        s_sleep_ms(20);
    }
    CHECK(subs == keys && s_stat(cache, "unsubscribes") > 0,
          "evicted keys are unsubscribed: %lld subscriptions at the KVS for %lld cached keys",
          subs, keys);
    long long updates = s_stat(cache, "updates");
    ASSERT(cb_kvs_put_lww(kvs, "e-5", "new", 3) == 0, "PUT");
    s_sleep_ms(300);
    CHECK(s_stat(cache, "updates") == updates, "a write to an evicted key is not pushed");
    cb_kvs_destroy(&cache);
    cb_kvs_destroy(&kvs);
}

static void s_timeout(pid_t kvs_pid)
{
    cb_kvs_t *cache = s_client(s_cache_routing, 3000);
    cb_kvs_t *kvs = s_client(s_kvs_routing, 3000);
    ASSERT(cb_kvs_put_lww(kvs, "t-cached", "here", 4) == 0, "PUT");
    ASSERT(cb_kvs_put_lww(kvs, "t-known", "known", 5) == 0, "PUT");
    s_expect(cache, "t-cached", "here", "cached before the KVS stops");
    ASSERT(kill(kvs_pid, SIGSTOP) == 0, "SIGSTOP");
    s_kvs_pid = kvs_pid;
    s_expect(cache, "t-cached", "here", "KVS stopped: a hit is still served");
    lat_t v;
    int64_t start = cb_clock_mono_ms();
    int rc = cb_kvs_get(cache, "t-known", &v);
    int64_t took = cb_clock_mono_ms() - start;
    CHECK(rc == -ETIMEDOUT && took < 2000 && strstr(cb_kvs_last_error(cache), "no answer from the KVS"),
          "KVS stopped: a miss ends in TIMEOUT from the cache after %lld ms (%s)",
          (long long)took, cb_kvs_last_error(cache));
    start = cb_clock_mono_ms();
    rc = cb_kvs_put_lww(cache, "t-cached", "w", 1);
    took = cb_clock_mono_ms() - start;
    CHECK(rc == -ETIMEDOUT && took < 2000,
          "KVS stopped: a write ends in TIMEOUT after %lld ms (%s)", (long long)took,
          cb_kvs_last_error(cache));
    //  Several at once, and the cache keeps answering meanwhile.
    const char *keys[3] = {"t-a", "t-b", "t-c"};
    cb_kvs_result_t results[3];
    rc = cb_kvs_get_many(cache, keys, 3, results);
    bool timed_out = true;
    for (int i = 0; i < 3; i++) {
        timed_out = timed_out && results[i].error == -ETIMEDOUT;
        lat_fini(&results[i].value);
    }
    CHECK(timed_out, "three misses in one request: three TIMEOUTs");
    s_expect(cache, "t-cached", "here", "the cache stays alive and serves hits");
    CHECK(s_stat(cache, "kvs_timeouts") >= 3, "timeouts counted (%lld)",
          s_stat(cache, "kvs_timeouts"));
    ASSERT(kill(kvs_pid, SIGCONT) == 0, "SIGCONT");
    s_kvs_pid = 0;
    //  Back to normal once the KVS runs: the stopped-time requests are answered late (and
    //  ignored as late), new ones work.
    s_sleep_ms(200);
    s_expect(cache, "t-known", "known", "KVS resumed: misses are fetched again");
    ASSERT(cb_kvs_put_lww(cache, "t-cached", "after", 5) == 0, "PUT: %s",
           cb_kvs_last_error(cache));
    s_expect(kvs, "t-cached", "after", "and writes go through");
    cb_kvs_destroy(&cache);
    cb_kvs_destroy(&kvs);
}

//  A multi-key causal value of one version {id:count} = text, depending on dkey at {id:dc}
//  when dkey is not NULL. Caller owns *out.
static void s_mk_version(lat_t *out, const char *id, uint32_t count, const char *text,
                         const char *dkey, uint32_t dc)
{
    lat_init(out, LAT_MULTI_CAUSAL);
    lat_causal_add_simple(out, id, count, dkey, dc, text);
}

//  What the cache shows of key: its versions' values joined by "|" ("" for none; "-" if
//  the key does not exist).
static void s_shown(cb_kvs_t *cache, const char *key, char *buf, size_t len)
{
    lat_t v;
    int rc = cb_kvs_get(cache, key, &v);
    ASSERT(rc == 0 || rc == -ENOENT, "GET %s through the cache: %s", key,
           cb_kvs_last_error(cache));
    buf[0] = 0;
    if (rc == -ENOENT) {
        snprintf(buf, len, "-");
        return;
    }
    ASSERT(v.kind == LAT_MULTI_CAUSAL, "%s holds %s", key, lat_kind_name(v.kind));
    size_t at = 0;
    for (size_t i = 0; i < v.u.causal.len && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%.*s", i ? "|" : "",
                               (int)v.u.causal.items[i].value.len,
                               (const char *)v.u.causal.items[i].value.data);
    lat_fini(&v);
}

//  Polls the cache until key shows want, at most ms. True if it did.
static bool s_wait_shown(cb_kvs_t *cache, const char *key, const char *want, int ms, char *buf,
                         size_t len)
{
    for (int waited = 0;; waited += 10) {
        s_shown(cache, key, buf, len);
        if (!strcmp(buf, want) || waited >= ms)
            return !strcmp(buf, want);
        s_sleep_ms(10);
    }
}

static void s_causal(void)
{
    cb_kvs_t *cache = s_client(s_cache_routing, 3000);
    cb_kvs_t *kvs = s_client(s_kvs_routing, 3000);
    char buf[256];
    long long held0 = s_stat(cache, "causal_held"), released0 = s_stat(cache, "causal_released");
    //  x1 depends on y at {a:5}, which the KVS does not have: x exists but shows nothing.
    lat_t v;
    s_mk_version(&v, "a", 1, "x1", "cut_y", 5);
    CHECK(cb_kvs_put(kvs, "cut_x", &v) == 0, "PUT cut_x {a:1} (depends on cut_y {a:5}) to the KVS");
    lat_fini(&v);
    s_shown(cache, "cut_x", buf, sizeof buf);
    CHECK(!strcmp(buf, ""), "the cache holds back cut_x {a:1} while cut_y is missing: [%s]", buf);
    s_sleep_ms(200);
    s_shown(cache, "cut_x", buf, sizeof buf);
    CHECK(!strcmp(buf, ""), "still held back 200 ms later: [%s]", buf);
    //  y at {a:4} is not enough.
    s_mk_version(&v, "a", 4, "y4", NULL, 0);
    CHECK(cb_kvs_put(kvs, "cut_y", &v) == 0, "PUT cut_y {a:4}");
    lat_fini(&v);
    CHECK(s_wait_shown(cache, "cut_y", "y4", 2000, buf, sizeof buf), "cut_y {a:4} shown: [%s]", buf);
    s_shown(cache, "cut_x", buf, sizeof buf);
    CHECK(!strcmp(buf, ""), "cut_y {a:4} does not release cut_x: [%s]", buf);
    //  y at {a:5}: the KVS pushes it, and x becomes visible with no new read of x missing.
    s_mk_version(&v, "a", 5, "y5", NULL, 0);
    CHECK(cb_kvs_put(kvs, "cut_y", &v) == 0, "PUT cut_y {a:5}");
    lat_fini(&v);
    CHECK(s_wait_shown(cache, "cut_x", "x1", 2000, buf, sizeof buf),
          "cut_x {a:1} shown once cut_y {a:5} is: [%s]", buf);
    //  A newer x depending on z: x1 stays shown until z comes.
    s_mk_version(&v, "a", 2, "x2", "cut_z", 1);
    CHECK(cb_kvs_put(kvs, "cut_x", &v) == 0, "PUT cut_x {a:2} (depends on cut_z {a:1})");
    lat_fini(&v);
    s_sleep_ms(200);
    s_shown(cache, "cut_x", buf, sizeof buf);
    CHECK(!strcmp(buf, "x1"), "the previous version stays shown: [%s]", buf);
    s_mk_version(&v, "a", 1, "z1", "cut_y", 5);
    CHECK(cb_kvs_put(kvs, "cut_z", &v) == 0, "PUT cut_z {a:1} (depends on cut_y {a:5}, shown)");
    lat_fini(&v);
    CHECK(s_wait_shown(cache, "cut_x", "x2", 2000, buf, sizeof buf),
          "cut_x {a:2} shown once cut_z is (fetched by the cache itself): [%s]", buf);
    long long held = s_stat(cache, "causal_held") - held0;
    long long released = s_stat(cache, "causal_released") - released0;
    CHECK(held >= 2 && released >= 2, "counters: %lld versions held back, %lld released", held,
          released);
    cb_kvs_destroy(&kvs);
    cb_kvs_destroy(&cache);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4) {
        fprintf(stderr, "usage: cache_check basic|evict|causal|timeout CACHE_ROUTING KVS_ROUTING "
                        "[SCHEDULER|KVS_PID]\n");
        return 2;
    }
    s_cache_routing = argv[2];
    s_kvs_routing = argv[3];
    if (!strcmp(argv[1], "basic") && argc == 5)
        s_basic(argv[4]);
    else if (!strcmp(argv[1], "evict"))
        s_evict();
    else if (!strcmp(argv[1], "causal"))
        s_causal();
    else if (!strcmp(argv[1], "timeout") && argc == 5)
        s_timeout((pid_t)atoi(argv[4]));
    else {
        fprintf(stderr, "cache_check: bad mode or arguments\n");
        return 2;
    }
    printf("PASS %s\n", argv[1]);
    return 0;
}
