//  tests/system/client_api.c: the client library against a real anna-server node.
//  Usage: client_api ROUTING_ADDR SERVER_PID PORT_OFFSET [REPLICATED_ROUTING_ADDR]
//  (run by t_client.sh, which starts the node with --threads 2, and a second node with
//  --threads 2 --replication 2 whose routing address is the optional last argument).
//  Prints one "ok: ..." line per check; on the first failure prints "FAIL: file:line: what"
//  and exits 1 (after resuming the server if it stopped it).
//  What only a broken peer can produce (undecodable replies, NO_SERVERS, WRONG_THREAD after
//  a fresh lookup...) is tested against the fault injector of client_faults.c instead.
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "client/kvs.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "lattices/lattice.h"
#include "tests/system/stopped.h"

static const char *s_routing;
static const char *s_routing_replicated;        //  NULL when not given
static pid_t s_server;
static int s_offset;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond);                          \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
            kill(s_server, SIGCONT);                                                         \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static cb_kvs_t *s_client(int timeout_ms)
{
    cb_kvs_config_t config = {.routing = s_routing, .timeout_ms = timeout_ms};
    cb_kvs_t *kvs = cb_kvs_new(&config);
    CHECK(kvs, "cb_kvs_new: %s", strerror(errno));
    return kvs;
}

static void s_lww(lat_t *v, const char *text)
{
    lat_init(v, LAT_LWW);
    lat_lww_assign(v, cb_clock_lww_now(), 7, text, strlen(text));
}

static bool s_lww_is(const lat_t *v, const char *text)
{
    return v->kind == LAT_LWW && v->u.lww.value.len == strlen(text)
           && !memcmp(v->u.lww.value.data, text, strlen(text));
}

//  PUT a, GET it back: equal to a. PUT b: GET gives want (the merge of a and b).
static void s_roundtrip(cb_kvs_t *kvs, const char *key, lat_t *a, lat_t *b, lat_t *want)
{
    lat_t got;
    int rc = cb_kvs_put(kvs, key, a);
    CHECK(rc == 0, "put %s (%s): %s", key, lat_kind_name(a->kind), cb_kvs_last_error(kvs));
    rc = cb_kvs_get(kvs, key, &got);
    CHECK(rc == 0, "get %s: %s", key, cb_kvs_last_error(kvs));
    char *ga = lat_format(&got), *wa = lat_format(a);
    CHECK(lat_equal(&got, a), "%s: got %s, want %s", key, ga, wa);
    cb_free(ga);
    cb_free(wa);
    lat_fini(&got);
    rc = cb_kvs_put(kvs, key, b);
    CHECK(rc == 0, "put %s again: %s", key, cb_kvs_last_error(kvs));
    rc = cb_kvs_get(kvs, key, &got);
    CHECK(rc == 0, "get %s again: %s", key, cb_kvs_last_error(kvs));
    char *gb = lat_format(&got), *wb = lat_format(want);
    CHECK(lat_equal(&got, want), "%s after merge: got %s, want %s", key, gb, wb);
    printf("ok: %-13s %s\n", lat_kind_name(want->kind), gb);
    cb_free(gb);
    cb_free(wb);
    lat_fini(&got);
    lat_fini(a);
    lat_fini(b);
    lat_fini(want);
}

static void s_clock(lat_vclock_t *vc, const char *id, uint32_t count)
{
    *vc = (lat_vclock_t){0};
    lat_vclock_bump(vc, id, count);
}

static void s_test_kinds(cb_kvs_t *kvs)
{
    lat_t a, b, w;

    s_lww(&a, "one");
    s_lww(&b, "two");
    lat_copy(&w, &b);
    s_roundtrip(kvs, "api:lww", &a, &b, &w);

    lat_kind_t sets[] = {LAT_SET, LAT_ORDERED_SET};
    for (int s = 0; s < 2; s++) {
        lat_init(&a, sets[s]);
        lat_init(&b, sets[s]);
        lat_init(&w, sets[s]);
        lat_set_insert(&a.u.set, "x", 1);
        lat_set_insert(&a.u.set, "a b", 3);
        lat_set_insert(&b.u.set, "\0bin", 4);
        lat_copy(&w, &a);
        lat_merge(&w, &b);
        s_roundtrip(kvs, s ? "api:oset" : "api:set", &a, &b, &w);
    }

    lat_vclock_t c1, c2;
    s_clock(&c1, "p", 1);
    s_clock(&c2, "q", 1);
    lat_init(&a, LAT_SINGLE_CAUSAL);
    lat_init(&b, LAT_SINGLE_CAUSAL);
    lat_causal_add(&a, &c1, NULL, "v1", 2);
    lat_causal_add(&b, &c2, NULL, "v2", 2);         //  concurrent: both versions stay
    lat_copy(&w, &a);
    lat_merge(&w, &b);
    CHECK(w.u.causal.len == 2, "concurrent versions kept by lat_merge");
    s_roundtrip(kvs, "api:causal", &a, &b, &w);

    lat_deps_t deps = {0};
    lat_deps_add(&deps, "api:causal", &c1);
    lat_init(&a, LAT_MULTI_CAUSAL);
    lat_init(&b, LAT_MULTI_CAUSAL);
    lat_causal_add(&a, &c1, &deps, "m1", 2);
    lat_vclock_tick(&c1, "p");                       //  p:2 dominates p:1: replaces it
    lat_causal_add(&b, &c1, NULL, "m2", 2);
    lat_copy(&w, &b);
    s_roundtrip(kvs, "api:multi", &a, &b, &w);
    lat_deps_fini(&deps);
    lat_vclock_fini(&c1);
    lat_vclock_fini(&c2);

    lat_init(&a, LAT_PRIORITY);
    lat_init(&b, LAT_PRIORITY);
    lat_priority_assign(&a, 2.5, "later", 5);
    lat_priority_assign(&b, -1, "first", 5);
    lat_copy(&w, &b);
    s_roundtrip(kvs, "api:prio", &a, &b, &w);

    lat_init(&a, LAT_MAX);
    lat_init(&b, LAT_MAX);
    a.u.max = 42;
    b.u.max = -5;
    lat_copy(&w, &a);
    s_roundtrip(kvs, "api:max", &a, &b, &w);

    lat_init(&a, LAT_BOOL);
    lat_init(&b, LAT_BOOL);
    b.u.boolean = true;
    lat_copy(&w, &b);
    s_roundtrip(kvs, "api:bool", &a, &b, &w);

    lat_init(&a, LAT_VCLOCK);
    lat_init(&b, LAT_VCLOCK);
    lat_vclock_bump(&a.u.vclock, "n1", 3);
    lat_vclock_bump(&b.u.vclock, "n1", 1);
    lat_vclock_bump(&b.u.vclock, "n2", 9);
    lat_copy(&w, &a);
    lat_merge(&w, &b);
    s_roundtrip(kvs, "api:vclock", &a, &b, &w);

    lat_t inner;
    lat_init(&a, LAT_MAP);
    lat_init(&b, LAT_MAP);
    lat_init(&inner, LAT_MAX);
    inner.u.max = 3;
    lat_map_merge_at(&a.u.map, "m", 1, &inner);
    inner.u.max = 8;
    lat_map_merge_at(&b.u.map, "m", 1, &inner);
    lat_fini(&inner);
    s_lww(&inner, "text");
    lat_map_merge_at(&b.u.map, "t", 1, &inner);
    lat_fini(&inner);
    lat_copy(&w, &a);
    lat_merge(&w, &b);
    s_roundtrip(kvs, "api:map", &a, &b, &w);
}

static void s_test_errors(cb_kvs_t *kvs)
{
    lat_t v;
    int rc = cb_kvs_get(kvs, "api:missing", &v);
    CHECK(rc == -ENOENT && v.kind == LAT_NONE, "got %d (%s)", rc, cb_strerror(rc));
    CHECK(!strcmp(cb_kvs_last_error(kvs), "key 'api:missing' does not exist"), "message: %s",
          cb_kvs_last_error(kvs));
    printf("ok: KEY_DNE -> -ENOENT: %s\n", cb_kvs_last_error(kvs));

    lat_t set;
    lat_init(&set, LAT_SET);
    lat_set_insert(&set.u.set, "s", 1);
    rc = cb_kvs_put(kvs, "api:lww", &set);          //  holds an LWW value
    lat_fini(&set);
    CHECK(rc == -EINVAL, "put SET onto LWW: %d (%s)", rc, cb_strerror(rc));
    const char *msg = cb_kvs_last_error(kvs);
    //  The server's words, naming the key ("key api:lww holds LWW, not SET").
    CHECK(!strncmp(msg, "key ", 4) && strstr(msg, "api:lww") && strstr(msg, "LWW"), "message: %s", msg);
    printf("ok: LATTICE -> -EINVAL: %s\n", msg);
    rc = cb_kvs_get(kvs, "api:lww", &v);            //  and the stored value is untouched
    CHECK(rc == 0 && s_lww_is(&v, "two"), "api:lww changed by a refused PUT");
    lat_fini(&v);

    rc = cb_kvs_get(kvs, "ANNA_METADATA|stats", &v);
    CHECK(rc == 0 && v.kind == LAT_LWW && v.u.lww.value.len > 0 && v.u.lww.value.data[0] == '{',
          "stats: %d (%s)", rc, cb_kvs_last_error(kvs));
    lat_fini(&v);
    printf("ok: ANNA_METADATA|stats is an LWW JSON document\n");
}

//  ---- many keys, several threads --------------------------------------------------------

#define S_THREADS 4
#define S_KEYS 500

static void *s_many_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    cb_kvs_t *kvs = s_client(5000);
    char(*names)[32] = calloc(S_KEYS, sizeof *names);
    const char **keys = calloc(S_KEYS, sizeof *keys);
    lat_t *values = calloc(S_KEYS, sizeof *values);
    cb_kvs_result_t *results = calloc(S_KEYS, sizeof *results);
    for (int i = 0; i < S_KEYS; i++) {
        snprintf(names[i], sizeof names[i], "many:%d:%d", t, i);
        keys[i] = names[i];
        lat_init(&values[i], LAT_SET);
        lat_set_insert(&values[i].u.set, names[i], strlen(names[i]));
    }
    cb_kvs_stats_t before, after;
    cb_kvs_stats(kvs, &before);
    int rc = cb_kvs_put_many(kvs, keys, values, S_KEYS, results);
    cb_kvs_stats(kvs, &after);
    CHECK(rc == 0, "put_many: %s", cb_kvs_last_error(kvs));
    //  One KeyRequest per worker thread that owns some of the keys (2 threads, replication 1).
    CHECK(after.requests - before.requests <= 2 && after.lookups - before.lookups == 1,
          "put_many sent %llu requests, %llu lookups",
          (unsigned long long)(after.requests - before.requests),
          (unsigned long long)(after.lookups - before.lookups));
    for (int i = 0; i < S_KEYS; i++)
        CHECK(results[i].error == 0, "put %s: %s", keys[i], cb_strerror(results[i].error));
    rc = cb_kvs_get_many(kvs, keys, S_KEYS, results);
    CHECK(rc == 0, "get_many: %s", cb_kvs_last_error(kvs));
    for (int i = 0; i < S_KEYS; i++) {
        CHECK(results[i].error == 0 && lat_equal(&results[i].value, &values[i]), "get %s", keys[i]);
        lat_fini(&results[i].value);
        lat_fini(&values[i]);
    }
    //  A batch where some keys are missing: those fail alone.
    const char *mixed[] = {keys[0], "many:absent", keys[1]};
    rc = cb_kvs_get_many(kvs, mixed, 3, results);
    CHECK(rc == 0 && results[0].error == 0 && results[1].error == -ENOENT && results[2].error == 0,
          "mixed batch: %d %d %d", results[0].error, results[1].error, results[2].error);
    for (int i = 0; i < 3; i++)
        lat_fini(&results[i].value);
    free(results);
    free(values);
    free(keys);
    free(names);
    cb_kvs_destroy(&kvs);
    return NULL;
}

static void s_test_many(void)
{
    pthread_t threads[S_THREADS];
    for (int t = 0; t < S_THREADS; t++)
        CHECK(pthread_create(&threads[t], NULL, s_many_thread, (void *)(intptr_t)t) == 0, "thread");
    for (int t = 0; t < S_THREADS; t++)
        pthread_join(threads[t], NULL);
    printf("ok: put_many/get_many of %d keys in each of %d threads\n", S_KEYS, S_THREADS);
}

//  One batch of many keys: one request per worker, answers matched in linear time.
static void s_test_big_batch(void)
{
    enum { N = 20000 };
    cb_kvs_t *kvs = s_client(10000);
    char(*names)[32] = calloc(N, sizeof *names);
    const char **keys = calloc(N, sizeof *keys);
    lat_t *values = calloc(N, sizeof *values);
    cb_kvs_result_t *results = calloc(N, sizeof *results);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "big:%d", i);
        keys[i] = names[i];
        lat_init(&values[i], LAT_MAX);
        values[i].u.max = i;
    }
    int64_t t0 = cb_clock_mono_ms();
    int rc = cb_kvs_put_many(kvs, keys, values, N, results);
    CHECK(rc == 0, "put_many: %s", cb_kvs_last_error(kvs));
    rc = cb_kvs_get_many(kvs, keys, N, results);
    CHECK(rc == 0, "get_many: %s", cb_kvs_last_error(kvs));
    int64_t took = cb_clock_mono_ms() - t0;
    for (int i = 0; i < N; i++) {
        CHECK(results[i].error == 0 && lat_equal(&results[i].value, &values[i]), "%s", keys[i]);
        lat_fini(&results[i].value);
    }
    cb_kvs_stats_t st;
    cb_kvs_stats(kvs, &st);
    CHECK(st.requests <= 4 && st.lookups == 1, "%llu requests, %llu lookups",
          (unsigned long long)st.requests, (unsigned long long)st.lookups);
    printf("ok: put_many + get_many of %d keys in one batch each: %lld ms\n", N, (long long)took);
    free(results);
    free(values);
    free(keys);
    free(names);
    cb_kvs_destroy(&kvs);
}

//  ---- routing, WRONG_THREAD, invalidate --------------------------------------------------

static void s_test_routing(cb_kvs_t *kvs)
{
    char worker0[64], worker1[64];
    snprintf(worker0, sizeof worker0, "tcp://127.0.0.1:%d", 6200 + s_offset);
    snprintf(worker1, sizeof worker1, "tcp://127.0.0.1:%d", 6200 + s_offset + 1);
    CHECK(cb_kvs_put_lww(kvs, "api:route", "r", 1) == 0, "put: %s", cb_kvs_last_error(kvs));
    CHECK(cb_kvs_cache_count(kvs, "api:route") == 1, "one cached address (replication 1)");
    lat_t got;
    CHECK(cb_kvs_get(kvs, "api:route", &got) == 0 && got.u.lww.writer == cb_kvs_writer_id(kvs),
          "put_lww stamps the client's writer id");
    lat_fini(&got);
    const char *owner = cb_kvs_cache_addr(kvs, "api:route", 0);
    CHECK(!strcmp(owner, worker0) || !strcmp(owner, worker1), "owner %s", owner);
    char right[64];
    snprintf(right, sizeof right, "%s", owner);
    const char *wrong = strcmp(right, worker0) ? worker0 : worker1;
    printf("ok: routing says api:route lives on %s\n", right);

    //  Aim the request at the other thread: it answers WRONG_THREAD, the client looks the
    //  key up again and retries once, and the caller sees a plain success.
    cb_kvs_stats_t before, after;
    cb_kvs_stats(kvs, &before);
    cb_kvs_cache_set(kvs, "api:route", &wrong, 1);
    lat_t v;
    int rc = cb_kvs_get(kvs, "api:route", &v);
    CHECK(rc == 0 && s_lww_is(&v, "r"), "get via the wrong thread: %s", cb_kvs_last_error(kvs));
    lat_fini(&v);
    cb_kvs_stats(kvs, &after);
    CHECK(after.wrong_thread == before.wrong_thread + 1 && after.retries == before.retries + 1,
          "wrong_thread %llu -> %llu", (unsigned long long)before.wrong_thread,
          (unsigned long long)after.wrong_thread);
    //  One fresh lookup (the wrong address came from the cache), one request per attempt.
    CHECK(after.lookups == before.lookups + 1 && after.requests == before.requests + 2,
          "lookups +%llu requests +%llu", (unsigned long long)(after.lookups - before.lookups),
          (unsigned long long)(after.requests - before.requests));
    CHECK(!strcmp(cb_kvs_cache_addr(kvs, "api:route", 0), right), "cache refreshed");
    printf("ok: WRONG_THREAD: dropped, looked up again, retried once\n");

    //  Claim two cached addresses where the server computes one: it still answers and sets
    //  invalidate, and the client forgets the key's addresses.
    const char *two[] = {right, right};
    cb_kvs_cache_set(kvs, "api:route", two, 2);
    cb_kvs_stats(kvs, &before);
    rc = cb_kvs_get(kvs, "api:route", &v);
    CHECK(rc == 0 && s_lww_is(&v, "r"), "get with a stale cache: %s", cb_kvs_last_error(kvs));
    lat_fini(&v);
    cb_kvs_stats(kvs, &after);
    CHECK(after.invalidations == before.invalidations + 1, "invalidate set by the server");
    CHECK(cb_kvs_cache_count(kvs, "api:route") == 0, "cache dropped after invalidate");
    CHECK(cb_kvs_put_lww(kvs, "api:route", "r", 1) == 0 && cb_kvs_cache_count(kvs, "api:route") == 1,
          "looked up again");
    printf("ok: invalidate: cached addresses dropped, next request looks up again\n");
}

//  ---- batches: one request per worker, a key twice ---------------------------------------

static void s_test_batch(void)
{
    cb_kvs_t *kvs = s_client(5000);
    enum { N = 9 };
    const char *keys[N] = {"bat:0", "bat:1", "bat:2", "bat:3", "bat:4",
                           "bat:5", "bat:6", "bat:7", "bat:0"};
    lat_t values[N];
    for (int i = 0; i < N; i++) {
        lat_init(&values[i], LAT_SET);
        char elem[16];
        snprintf(elem, sizeof elem, "e%d", i);
        lat_set_insert(&values[i].u.set, elem, strlen(elem));
    }
    cb_kvs_result_t res[N];
    cb_kvs_stats_t before, after;
    cb_kvs_stats(kvs, &before);
    int rc = cb_kvs_put_many(kvs, keys, values, N, res);
    cb_kvs_stats(kvs, &after);
    CHECK(rc == 0, "put_many: %s", cb_kvs_last_error(kvs));
    for (int i = 0; i < N; i++)
        CHECK(res[i].error == 0 && res[i].value.kind == LAT_NONE, "put %s: %d", keys[i], res[i].error);
    //  The workers the keys live on, as the routing tier said: one request to each.
    char workers[N][64];
    size_t n_workers = 0;
    for (int i = 0; i < N; i++) {
        CHECK(cb_kvs_cache_count(kvs, keys[i]) == 1, "%s cached", keys[i]);
        const char *w = cb_kvs_cache_addr(kvs, keys[i], 0);
        size_t k = 0;
        while (k < n_workers && strcmp(workers[k], w))
            k++;
        if (k == n_workers)
            snprintf(workers[n_workers++], sizeof workers[0], "%s", w);
    }
    CHECK(n_workers == 2, "8 keys spread over %zu of 2 threads", n_workers);
    CHECK(after.requests == before.requests + n_workers && after.lookups == before.lookups + 1,
          "put_many: %llu requests, %llu lookups", (unsigned long long)(after.requests - before.requests),
          (unsigned long long)(after.lookups - before.lookups));
    //  bat:0 was sent twice in one batch: both values merged. Both of its slots answer.
    lat_t want0;
    lat_copy(&want0, &values[0]);
    lat_merge(&want0, &values[N - 1]);
    cb_kvs_stats(kvs, &before);
    rc = cb_kvs_get_many(kvs, keys, N, res);
    cb_kvs_stats(kvs, &after);
    CHECK(rc == 0, "get_many: %s", cb_kvs_last_error(kvs));
    for (int i = 0; i < N; i++) {
        const lat_t *want = (i == 0 || i == N - 1) ? &want0 : &values[i];
        CHECK(res[i].error == 0 && lat_equal(&res[i].value, want), "get %s (slot %d)", keys[i], i);
        lat_fini(&res[i].value);
    }
    CHECK(after.requests == before.requests + n_workers && after.lookups == before.lookups,
          "get_many: %llu requests, %llu lookups", (unsigned long long)(after.requests - before.requests),
          (unsigned long long)(after.lookups - before.lookups));
    CHECK(after.discarded == before.discarded, "nothing discarded");
    for (int i = 0; i < N; i++)
        lat_fini(&values[i]);
    lat_fini(&want0);
    printf("ok: a batch of %d keys (one twice) = one request per worker (%zu), no lookup when cached\n",
           N, n_workers);
    cb_kvs_destroy(&kvs);
}

//  ---- a worker that does not answer, while the routing tier does ---------------------------

static void s_test_dead_worker(void)
{
    const int timeout = 300;
    cb_kvs_t *kvs = s_client(timeout);
    //  Thread 49's port: no thread listens there (the node has 2), so requests sent to it
    //  are never answered, as with a worker that died after the routing tier listed it.
    char dead[64];
    snprintf(dead, sizeof dead, "tcp://127.0.0.1:%d", 6200 + s_offset + 49);
    const char *deadp = dead;
    CHECK(cb_kvs_put_lww(kvs, "dead:a", "a", 1) == 0, "put: %s", cb_kvs_last_error(kvs));
    CHECK(cb_kvs_put_lww(kvs, "dead:b", "b", 1) == 0, "put: %s", cb_kvs_last_error(kvs));
    CHECK(cb_kvs_put_lww(kvs, "dead:c", "c", 1) == 0, "put: %s", cb_kvs_last_error(kvs));
    char owner_a[64];
    snprintf(owner_a, sizeof owner_a, "%s", cb_kvs_cache_addr(kvs, "dead:a", 0));
    cb_kvs_cache_set(kvs, "dead:a", &deadp, 1);
    cb_kvs_cache_set(kvs, "dead:b", &deadp, 1);    //  c keeps its right address

    //  a and c in one batch: c is answered at once; a's worker times out, every key cached on
    //  it is dropped (b too), and a gets its second attempt after a fresh lookup.
    const char *keys[] = {"dead:a", "dead:c"};
    cb_kvs_result_t res[2];
    cb_kvs_stats_t before, after;
    cb_kvs_stats(kvs, &before);
    int64_t t0 = cb_clock_mono_ms();
    int rc = cb_kvs_get_many(kvs, keys, 2, res);
    int64_t took = cb_clock_mono_ms() - t0;
    cb_kvs_stats(kvs, &after);
    CHECK(rc == 0 && !strcmp(cb_kvs_last_error(kvs), ""), "get_many: %s", cb_kvs_last_error(kvs));
    CHECK(res[0].error == 0 && s_lww_is(&res[0].value, "a"), "dead:a: %d", res[0].error);
    CHECK(res[1].error == 0 && s_lww_is(&res[1].value, "c"), "dead:c: %d", res[1].error);
    lat_fini(&res[0].value);
    lat_fini(&res[1].value);
    CHECK(took >= timeout - 10 && took < timeout + 1500, "took %lld ms", (long long)took);
    CHECK(after.timeouts == before.timeouts + 1 && after.retries == before.retries + 1
              && after.lookups == before.lookups + 1 && after.requests == before.requests + 3,
          "timeouts +%llu retries +%llu lookups +%llu requests +%llu",
          (unsigned long long)(after.timeouts - before.timeouts),
          (unsigned long long)(after.retries - before.retries),
          (unsigned long long)(after.lookups - before.lookups),
          (unsigned long long)(after.requests - before.requests));
    CHECK(!strcmp(cb_kvs_cache_addr(kvs, "dead:a", 0), owner_a), "dead:a cached at its owner again");
    CHECK(cb_kvs_cache_count(kvs, "dead:b") == 0, "dead:b (on the suspected worker) dropped");
    CHECK(cb_kvs_cache_count(kvs, "dead:c") == 1, "dead:c kept");
    printf("ok: a worker that does not answer: its keys dropped, retried after a fresh lookup "
           "(%lld ms)\n", (long long)took);
    cb_kvs_destroy(&kvs);
}

//  ---- replication 2: every replica cached, address_cache_size agrees ------------------------

static void s_test_replicated(void)
{
    cb_kvs_config_t config = {.routing = s_routing_replicated, .timeout_ms = 5000};
    cb_kvs_t *kvs = cb_kvs_new(&config);
    CHECK(kvs, "cb_kvs_new: %s", strerror(errno));
    CHECK(cb_kvs_put_lww(kvs, "rep:a", "r", 1) == 0, "put: %s", cb_kvs_last_error(kvs));
    CHECK(cb_kvs_cache_count(kvs, "rep:a") == 2, "%zu cached addresses, want 2",
          cb_kvs_cache_count(kvs, "rep:a"));
    char r0[64], r1[64];
    snprintf(r0, sizeof r0, "%s", cb_kvs_cache_addr(kvs, "rep:a", 0));
    snprintf(r1, sizeof r1, "%s", cb_kvs_cache_addr(kvs, "rep:a", 1));
    CHECK(strcmp(r0, r1), "two distinct replicas: %s %s", r0, r1);

    //  GETs go to either replica with address_cache_size 2, which is what the server computes:
    //  no invalidate, the cache stays. Gossip (50 ms) makes the PUT visible on both replicas.
    cb_kvs_stats_t before, after;
    cb_kvs_stats(kvs, &before);
    int in_a_row = 0, tries = 0;
    for (; in_a_row < 20 && tries < 500; tries++) {
        lat_t v;
        int rc = cb_kvs_get(kvs, "rep:a", &v);
        CHECK(rc == 0 || rc == -ENOENT, "get rep:a: %s", cb_kvs_last_error(kvs));
        in_a_row = rc == 0 && s_lww_is(&v, "r") ? in_a_row + 1 : 0;
        lat_fini(&v);
        if (!in_a_row)
            usleep(10 * 1000);
    }
    cb_kvs_stats(kvs, &after);
    CHECK(in_a_row == 20, "rep:a not readable on both replicas after %d tries", tries);
    CHECK(after.invalidations == before.invalidations && after.lookups == before.lookups,
          "invalidations +%llu lookups +%llu",
          (unsigned long long)(after.invalidations - before.invalidations),
          (unsigned long long)(after.lookups - before.lookups));
    CHECK(cb_kvs_cache_count(kvs, "rep:a") == 2, "both replicas still cached");
    printf("ok: replication 2: both replicas cached, %d GETs without invalidate\n", tries);

    //  One cached address where the server computes two: answered, with invalidate.
    const char *one = r0;
    cb_kvs_cache_set(kvs, "rep:a", &one, 1);
    cb_kvs_stats(kvs, &before);
    lat_t v;
    CHECK(cb_kvs_get(kvs, "rep:a", &v) == 0 && s_lww_is(&v, "r"), "get: %s", cb_kvs_last_error(kvs));
    lat_fini(&v);
    cb_kvs_stats(kvs, &after);
    CHECK(after.invalidations == before.invalidations + 1 && cb_kvs_cache_count(kvs, "rep:a") == 0,
          "invalidate for address_cache_size 1 of 2");
    CHECK(cb_kvs_get(kvs, "rep:a", &v) == 0 && cb_kvs_cache_count(kvs, "rep:a") == 2,
          "looked up again: %s", cb_kvs_last_error(kvs));
    lat_fini(&v);
    printf("ok: replication 2: address_cache_size 1 -> invalidate, both replicas looked up again\n");
    cb_kvs_destroy(&kvs);
}

//  ---- a stopped server: timeouts, and late replies ----------------------------------------

static void s_test_stopped(void)
{
    const int timeout = 500;
    cb_kvs_t *kvs = s_client(timeout);
    CHECK(cb_kvs_put_lww(kvs, "api:late", "old", 3) == 0, "put: %s", cb_kvs_last_error(kvs));
    CHECK(cb_kvs_cache_count(kvs, "api:late") == 1, "cached");
    cb_kvs_t *cold = s_client(timeout);             //  nothing cached: only routing is asked

    CHECK(kill(s_server, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
    CHECK(ts_wait_stopped(s_server, 2000), "server not stopped 2 s after SIGSTOP");
    lat_t v;
    int64_t t0 = cb_clock_mono_ms();
    int rc = cb_kvs_get(kvs, "api:late", &v);
    int64_t took = cb_clock_mono_ms() - t0;
    //  First attempt to the cached worker, then one fresh lookup that also times out.
    CHECK(rc == -ETIMEDOUT && v.kind == LAT_NONE, "warm get: %d (%s)", rc, cb_strerror(rc));
    CHECK(took >= 2 * timeout - 20 && took < 2 * timeout + 700, "warm get took %lld ms",
          (long long)took);
    CHECK(cb_kvs_cache_count(kvs, "api:late") == 0, "suspected worker dropped from the cache");
    printf("ok: stopped server, warm cache: -ETIMEDOUT after %lld ms (%s)\n", (long long)took,
           cb_kvs_last_error(kvs));
    t0 = cb_clock_mono_ms();
    rc = cb_kvs_get(cold, "api:late", &v);
    took = cb_clock_mono_ms() - t0;
    CHECK(rc == -ETIMEDOUT, "cold get: %d", rc);
    CHECK(took >= timeout - 20 && took < timeout + 700, "cold get took %lld ms", (long long)took);
    printf("ok: stopped server, cold cache: -ETIMEDOUT after %lld ms (%s)\n", (long long)took,
           cb_kvs_last_error(cold));
    CHECK(kill(s_server, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));

    //  The server now answers the requests it got while stopped. Those replies carry ids we
    //  gave up on: they must be discarded, never returned as the answers below.
    cb_kvs_stats_t before, after;
    cb_kvs_stats(kvs, &before);
    rc = cb_kvs_put_lww(kvs, "api:late", "new", 3);
    CHECK(rc == 0, "put after SIGCONT: %s", cb_kvs_last_error(kvs));
    rc = cb_kvs_get(kvs, "api:missing-late", &v);
    CHECK(rc == -ENOENT, "a missing key is still missing: %d", rc);
    rc = cb_kvs_get(kvs, "api:late", &v);
    CHECK(rc == 0 && s_lww_is(&v, "new"), "get after SIGCONT: %s", cb_kvs_last_error(kvs));
    lat_fini(&v);
    cb_kvs_stats(kvs, &after);
    CHECK(after.discarded > before.discarded, "late replies discarded: %llu",
          (unsigned long long)(after.discarded - before.discarded));
    printf("ok: %llu late replies discarded, answers matched by request id\n",
           (unsigned long long)(after.discarded - before.discarded));
    cb_kvs_destroy(&cold);
    cb_kvs_destroy(&kvs);
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: client_api ROUTING_ADDR SERVER_PID PORT_OFFSET "
                        "[REPLICATED_ROUTING_ADDR]\n");
        return 2;
    }
    s_routing = argv[1];
    s_routing_replicated = argc == 5 ? argv[4] : NULL;
    s_server = (pid_t)atoi(argv[2]);
    s_offset = atoi(argv[3]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    cb_kvs_t *kvs = s_client(5000);
    s_test_kinds(kvs);
    s_test_errors(kvs);
    s_test_routing(kvs);
    cb_kvs_destroy(&kvs);
    s_test_batch();
    s_test_many();
    s_test_big_batch();
    s_test_dead_worker();
    if (s_routing_replicated)
        s_test_replicated();
    s_test_stopped();
    printf("client_api: all checks passed\n");
    return 0;
}
