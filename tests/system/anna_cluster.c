//  tests/system/anna_cluster.c: client side of the cluster tests (t_anna_cluster.sh, nodes on
//  127.0.0.1-3 with the same ports).
//  Usage:
//    anna_cluster fill ROUTING PREFIX N       PUTs PREFIX0..PREFIX<N-1> (value "v<i>"), ALL
//    anna_cluster verify ROUTING PREFIX N     GETs each through ROUTING: value "v<i>"
//    anna_cluster replicas ROUTING PREFIX N G every key has G replica addresses and each
//                                             replica, asked alone, holds "v<i>"
//    anna_cluster load ROUTING MS TIMEOUT_MS MARK OUT
//        PUTs load<i> with level ALL for MS ms, one after another; writes the index of each
//        acknowledged write to OUT. Fails if a call takes longer than the client's bound, or
//        if no write is acknowledged after MARK (a file the script creates when it kills a
//        node) appears.
//    anna_cluster check ROUTING OUT           every write listed in OUT reads back ("v<i>")
//    anna_cluster sets ROUTING PREFIX N ROUNDS WRITER
//        ROUNDS times, adds "<WRITER>-<round>" to the SET of each key PREFIX0..PREFIX<N-1>,
//        level ONE (each PUT to one replica, chosen at random)
//    anna_cluster converge ROUTING PREFIX N REPLICAS ELEMENTS SECONDS
//        waits until every replica of every key, asked alone, holds the same set, of
//        ELEMENTS elements; fails after SECONDS
//  Prints "ok: ..." lines; "FAIL: ..." and exit 1 on the first failure.
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/kvs.h"
#include "common/clock.h"
#include "common/err.h"
#include "lattices/lattice.h"

#define FAIL(...)                                                                            \
    do {                                                                                     \
        printf("FAIL: ");                                                                    \
        printf(__VA_ARGS__);                                                                 \
        printf("\n");                                                                        \
        exit(1);                                                                             \
    } while (0)

static cb_kvs_t *s_client(const char *routing, int timeout_ms)
{
    cb_kvs_config_t config = {.routing = routing, .timeout_ms = timeout_ms};
    cb_kvs_t *kvs = cb_kvs_new(&config);
    if (!kvs)
        FAIL("cannot create a client for %s", routing);
    return kvs;
}

static void s_lww(lat_t *v, const char *text)
{
    lat_init(v, LAT_LWW);
    lat_lww_assign(v, cb_clock_lww_now(), 1, text, strlen(text));
}

//  0 if key holds text; otherwise the error (or -EBADMSG for another value).
static int s_holds(cb_kvs_t *kvs, const char *key, const char *text)
{
    lat_t got;
    int rc = cb_kvs_get(kvs, key, &got);
    if (rc)
        return rc;
    bool same = got.kind == LAT_LWW && got.u.lww.value.len == strlen(text) &&
                !memcmp(got.u.lww.value.data, text, got.u.lww.value.len);
    lat_fini(&got);
    return same ? 0 : -EBADMSG;
}

static int s_fill(const char *routing, const char *prefix, int n)
{
    cb_kvs_t *kvs = s_client(routing, 2000);
    for (int i = 0; i < n; i++) {
        char key[128], text[32];
        snprintf(key, sizeof key, "%s%d", prefix, i);
        snprintf(text, sizeof text, "v%d", i);
        lat_t v;
        s_lww(&v, text);
        int rc = cb_kvs_put_level(kvs, key, &v, CB_KVS_ALL);
        lat_fini(&v);
        if (rc)
            FAIL("PUT ALL %s: %s (%s)", key, cb_strerror(rc), cb_kvs_last_error(kvs));
    }
    printf("ok: %d keys written with ALL through %s\n", n, routing);
    cb_kvs_destroy(&kvs);
    return 0;
}

static int s_verify(const char *routing, const char *prefix, int n)
{
    cb_kvs_t *kvs = s_client(routing, 2000);
    for (int i = 0; i < n; i++) {
        char key[128], text[32];
        snprintf(key, sizeof key, "%s%d", prefix, i);
        snprintf(text, sizeof text, "v%d", i);
        int rc = s_holds(kvs, key, text);
        if (rc)
            FAIL("GET %s through %s: %s (%s)", key, routing, cb_strerror(rc),
                 cb_kvs_last_error(kvs));
    }
    printf("ok: %d keys read back through %s\n", n, routing);
    cb_kvs_destroy(&kvs);
    return 0;
}

static int s_replicas(const char *routing, const char *prefix, int n, size_t want)
{
    cb_kvs_t *kvs = s_client(routing, 2000);
    for (int i = 0; i < n; i++) {
        char key[128], text[32];
        snprintf(key, sizeof key, "%s%d", prefix, i);
        snprintf(text, sizeof text, "v%d", i);
        int rc = s_holds(kvs, key, text);          //  also fills the address cache
        if (rc)
            FAIL("GET %s: %s (%s)", key, cb_strerror(rc), cb_kvs_last_error(kvs));
        size_t count = cb_kvs_cache_count(kvs, key);
        if (count != want)
            FAIL("key %s has %zu replicas, expected %zu", key, count, want);
        char addrs[8][128];
        for (size_t r = 0; r < count; r++)
            snprintf(addrs[r], sizeof addrs[r], "%s", cb_kvs_cache_addr(kvs, key, r));
        for (size_t r = 0; r < count; r++) {
            const char *one = addrs[r];
            cb_kvs_cache_set(kvs, key, &one, 1);
            rc = s_holds(kvs, key, text);
            if (rc)
                FAIL("replica %s of %s: %s (%s)", one, key, cb_strerror(rc),
                     cb_kvs_last_error(kvs));
        }
        cb_kvs_cache_set(kvs, key, NULL, 0);
    }
    printf("ok: %d keys on %zu replicas each, every replica holding its value\n", n, want);
    cb_kvs_destroy(&kvs);
    return 0;
}

static int s_load(const char *routing, int ms, int timeout_ms, const char *mark, const char *out)
{
    cb_kvs_t *kvs = s_client(routing, timeout_ms);
    FILE *f = fopen(out, "w");
    if (!f)
        FAIL("cannot write %s", out);
    //  The client's bound for a call at level ALL (client/kvs.h): two calls of at most
    //  (4 + R) x timeout, R = 1 routing address; a second for scheduling on a loaded machine.
    int64_t bound = 2 * 5 * (int64_t)timeout_ms + 1000;
    int64_t end = cb_clock_mono_ms() + ms, worst = 0;
    int acked = 0, failed = 0, acked_after = 0;
    bool marked = false;
    for (int i = 0; cb_clock_mono_ms() < end; i++) {
        if (!marked && access(mark, F_OK) == 0)
            marked = true;
        char key[64], text[32];
        snprintf(key, sizeof key, "load%d", i);
        snprintf(text, sizeof text, "v%d", i);
        lat_t v;
        s_lww(&v, text);
        int64_t t0 = cb_clock_mono_ms();
        int rc = cb_kvs_put_level(kvs, key, &v, CB_KVS_ALL);
        int64_t took = cb_clock_mono_ms() - t0;
        lat_fini(&v);
        if (took > worst)
            worst = took;
        if (took > bound)
            FAIL("PUT ALL %s took %lld ms, over the bound of %lld ms", key, (long long)took,
                 (long long)bound);
        if (rc == 0) {
            fprintf(f, "%d\n", i);
            acked++;
            acked_after += marked;
        } else
            failed++;
    }
    fclose(f);
    printf("ok: load: %d acknowledged, %d failed, %d acknowledged after the kill, slowest "
           "call %lld ms (bound %lld)\n", acked, failed, acked_after, (long long)worst,
           (long long)bound);
    if (!marked)
        FAIL("the kill mark %s never appeared", mark);
    if (acked_after == 0)
        FAIL("no write acknowledged after the kill: the load did not keep going");
    cb_kvs_destroy(&kvs);
    return 0;
}

static int s_check(const char *routing, const char *out)
{
    cb_kvs_t *kvs = s_client(routing, 2000);
    FILE *f = fopen(out, "r");
    if (!f)
        FAIL("cannot read %s", out);
    int i, n = 0;
    while (fscanf(f, "%d", &i) == 1) {
        char key[64], text[32];
        snprintf(key, sizeof key, "load%d", i);
        snprintf(text, sizeof text, "v%d", i);
        int rc = s_holds(kvs, key, text);
        if (rc)
            FAIL("acknowledged write %s lost (through %s): %s (%s)", key, routing,
                 cb_strerror(rc), cb_kvs_last_error(kvs));
        n++;
    }
    fclose(f);
    printf("ok: all %d acknowledged writes read back through %s\n", n, routing);
    cb_kvs_destroy(&kvs);
    return 0;
}

static int s_sets(const char *routing, const char *prefix, int n, int rounds,
                  const char *writer)
{
    cb_kvs_t *kvs = s_client(routing, 2000);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++) {
            char key[128], item[64];
            snprintf(key, sizeof key, "%s%d", prefix, i);
            snprintf(item, sizeof item, "%s-%d", writer, r);
            lat_t v;
            lat_init(&v, LAT_SET);
            lat_set_insert(&v.u.set, item, strlen(item));
            int rc = cb_kvs_put(kvs, key, &v);
            lat_fini(&v);
            if (rc)
                FAIL("PUT %s: %s (%s)", key, cb_strerror(rc), cb_kvs_last_error(kvs));
        }
    printf("ok: writer %s: %d rounds over %d keys\n", writer, rounds, n);
    cb_kvs_destroy(&kvs);
    return 0;
}

//  True if every replica of key holds the same set of `elements` elements.
static bool s_converged(cb_kvs_t *kvs, const char *key, size_t replicas, size_t elements,
                        char *why, size_t whylen)
{
    cb_kvs_cache_set(kvs, key, NULL, 0);
    lat_t first;
    int rc = cb_kvs_get(kvs, key, &first);           //  fills the address cache
    if (rc) {
        snprintf(why, whylen, "GET %s: %s", key, cb_strerror(rc));
        return false;
    }
    lat_fini(&first);
    size_t count = cb_kvs_cache_count(kvs, key);
    if (count != replicas) {
        snprintf(why, whylen, "%s has %zu replicas, expected %zu", key, count, replicas);
        return false;
    }
    char addrs[16][128];
    for (size_t r = 0; r < count; r++)
        snprintf(addrs[r], sizeof addrs[r], "%s", cb_kvs_cache_addr(kvs, key, r));
    bool same = true;
    lat_t values[16];
    for (size_t r = 0; r < count; r++) {
        const char *one = addrs[r];
        cb_kvs_cache_set(kvs, key, &one, 1);
        rc = cb_kvs_get(kvs, key, &values[r]);
        if (rc) {
            lat_init(&values[r], LAT_NONE);
            snprintf(why, whylen, "replica %s of %s: %s", one, key, cb_strerror(rc));
            same = false;
        } else if (values[r].kind != LAT_SET || values[r].u.set.len != elements) {
            snprintf(why, whylen, "replica %s of %s holds %zu elements, expected %zu", one, key,
                     values[r].kind == LAT_SET ? values[r].u.set.len : 0, elements);
            same = false;
        } else if (r > 0 && values[0].kind == LAT_SET && !lat_equal(&values[0], &values[r])) {
            snprintf(why, whylen, "replicas of %s differ", key);
            same = false;
        }
    }
    for (size_t r = 0; r < count; r++)
        lat_fini(&values[r]);
    cb_kvs_cache_set(kvs, key, NULL, 0);
    return same;
}

static int s_converge(const char *routing, const char *prefix, int n, size_t replicas,
                      size_t elements, int seconds)
{
    cb_kvs_t *kvs = s_client(routing, 2000);
    int64_t start = cb_clock_mono_ms(), deadline = start + 1000LL * seconds;
    char why[300] = "";
    for (int round = 1;; round++) {
        int apart = 0;
        for (int i = 0; i < n; i++) {
            char key[128];
            snprintf(key, sizeof key, "%s%d", prefix, i);
            if (!s_converged(kvs, key, replicas, elements, why, sizeof why))
                apart++;
        }
        if (apart == 0) {
            printf("ok: %d keys: all %zu replicas hold the same %zu elements after %lld ms "
                   "(%d checks)\n", n, replicas, elements,
                   (long long)(cb_clock_mono_ms() - start), round);
            break;
        }
        if (cb_clock_mono_ms() > deadline)
            FAIL("%d keys still differ after %d s, e.g. %s", apart, seconds, why);
        if (round == 1)
            printf("ok: right after the writes, %d of %d keys differ between replicas "
                   "(e.g. %s)\n", apart, n, why);
        usleep(300 * 1000);
    }
    cb_kvs_destroy(&kvs);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "fill") && argc == 5)
        return s_fill(argv[2], argv[3], atoi(argv[4]));
    if (!strcmp(mode, "verify") && argc == 5)
        return s_verify(argv[2], argv[3], atoi(argv[4]));
    if (!strcmp(mode, "replicas") && argc == 6)
        return s_replicas(argv[2], argv[3], atoi(argv[4]), (size_t)atoi(argv[5]));
    if (!strcmp(mode, "load") && argc == 7)
        return s_load(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5], argv[6]);
    if (!strcmp(mode, "sets") && argc == 7)
        return s_sets(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), argv[6]);
    if (!strcmp(mode, "converge") && argc == 8)
        return s_converge(argv[2], argv[3], atoi(argv[4]), (size_t)atoi(argv[5]),
                          (size_t)atoi(argv[6]), atoi(argv[7]));
    if (!strcmp(mode, "check") && argc == 4)
        return s_check(argv[2], argv[3]);
    fprintf(stderr, "usage: see the header of tests/system/anna_cluster.c\n");
    return 2;
}
