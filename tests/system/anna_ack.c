//  tests/system/anna_ack.c: acknowledgement levels ONE and ALL of the client library against
//  a node with --threads 2 --replication 2 and a gossip period long enough (60 s) that no
//  gossip happens during the test: whatever a replica holds, a request put there.
//  Usage:
//    anna_ack levels ROUTING SERVER_PID
//        PUT ALL reaches both replicas; PUT ONE only the one it went to; GET ALL merges the
//        replicas (and is KEY_DNE only when none holds the key); a stopped server fails
//        PUT ALL with a timeout, within its bound.
//    anna_ack write ROUTING PREFIX N     PUTs PREFIX0..PREFIX<N-1> with level ALL
//    anna_ack check ROUTING PREFIX N     each replica of each key holds its value (level ONE
//                                        aimed at each replica in turn)
//  Prints one "ok: ..." line per check; "FAIL: ..." and exit 1 on the first failure.
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "client/kvs.h"
#include "common/clock.h"
#include "common/err.h"
#include "lattices/lattice.h"

#define TIMEOUT_MS 2000    //  generous: the test machine may be loaded (ASan, other jobs)

static pid_t s_server;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond);                          \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
            if (s_server > 0)                                                                \
                kill(s_server, SIGCONT);                                                     \
            exit(1);                                                                         \
        }                                                                                    \
        printf("ok: ");                                                                      \
        printf(__VA_ARGS__);                                                                 \
        printf("\n");                                                                        \
    } while (0)

static cb_kvs_t *s_client(const char *routing)
{
    cb_kvs_config_t config = {.routing = routing, .timeout_ms = TIMEOUT_MS};
    cb_kvs_t *kvs = cb_kvs_new(&config);
    if (!kvs) {
        printf("FAIL: cannot create a client for %s\n", routing);
        exit(1);
    }
    return kvs;
}

//  The replicas of key (after a lookup made by a GET ALL). Returns how many (<= 8).
static size_t s_replicas(cb_kvs_t *kvs, const char *key, char addrs[][128])
{
    cb_kvs_cache_set(kvs, key, NULL, 0);
    lat_t v;
    cb_kvs_get_level(kvs, key, CB_KVS_ALL, &v);
    lat_fini(&v);
    size_t n = cb_kvs_cache_count(kvs, key);
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(addrs[i], 128, "%s", cb_kvs_cache_addr(kvs, key, i));
    return n < 8 ? n : 8;
}

//  GET (level ONE) aimed at one replica.
static int s_get_at(cb_kvs_t *kvs, const char *address, const char *key, lat_t *out)
{
    const char *addrs[] = {address};
    cb_kvs_cache_set(kvs, key, addrs, 1);
    return cb_kvs_get(kvs, key, out);
}

static int s_put_at(cb_kvs_t *kvs, const char *address, const char *key, const lat_t *value)
{
    const char *addrs[] = {address};
    cb_kvs_cache_set(kvs, key, addrs, 1);
    return cb_kvs_put(kvs, key, value);
}

static bool s_lww_is(const lat_t *v, const char *text)
{
    return v->kind == LAT_LWW && v->u.lww.value.len == strlen(text) &&
           memcmp(v->u.lww.value.data, text, strlen(text)) == 0;
}

static void s_set1(lat_t *v, const char *item)
{
    lat_init(v, LAT_SET);
    lat_set_insert(&v->u.set, item, strlen(item));
}

static int s_levels(const char *routing)
{
    cb_kvs_t *kvs = s_client(routing);
    char addrs[8][128];
    size_t n = s_replicas(kvs, "ack-all", addrs);
    CHECK(n == 2 && strcmp(addrs[0], addrs[1]) != 0, "two replicas: %s and %s", addrs[0],
          n > 1 ? addrs[1] : "-");

    //  ALL: both replicas hold the value as soon as the PUT returns.
    lat_t v, got;
    lat_init(&v, LAT_LWW);
    lat_lww_assign(&v, cb_clock_lww_now(), cb_kvs_writer_id(kvs), "to all", 6);
    int rc = cb_kvs_put_level(kvs, "ack-all", &v, CB_KVS_ALL);
    CHECK(rc == 0, "PUT ALL: %s", cb_kvs_last_error(kvs));
    lat_fini(&v);
    for (size_t i = 0; i < 2; i++) {
        rc = s_get_at(kvs, addrs[i], "ack-all", &got);
        CHECK(rc == 0 && s_lww_is(&got, "to all"), "replica %s holds the PUT ALL value",
              addrs[i]);
        lat_fini(&got);
    }

    //  ONE: only the replica it went to (no gossip for 60 s).
    n = s_replicas(kvs, "ack-one", addrs);
    CHECK(n == 2, "ack-one has two replicas");
    lat_init(&v, LAT_LWW);
    lat_lww_assign(&v, cb_clock_lww_now(), cb_kvs_writer_id(kvs), "to one", 6);
    CHECK(s_put_at(kvs, addrs[0], "ack-one", &v) == 0, "PUT ONE at %s", addrs[0]);
    lat_fini(&v);
    rc = s_get_at(kvs, addrs[1], "ack-one", &got);
    CHECK(rc == -ENOENT, "the other replica %s does not hold it yet (%s)", addrs[1],
          cb_strerror(rc));
    //  GET ALL merges the replicas: the value of the one that holds it.
    rc = cb_kvs_get_level(kvs, "ack-one", CB_KVS_ALL, &got);
    CHECK(rc == 0 && s_lww_is(&got, "to one"), "GET ALL finds it on one replica (%s)",
          cb_strerror(rc));
    lat_fini(&got);

    //  Sets written on different replicas: GET ALL is their union, GET ONE one of them.
    n = s_replicas(kvs, "ack-set", addrs);
    CHECK(n == 2, "ack-set has two replicas");
    s_set1(&v, "a");
    CHECK(s_put_at(kvs, addrs[0], "ack-set", &v) == 0, "PUT {a} at replica 0");
    lat_fini(&v);
    s_set1(&v, "b");
    CHECK(s_put_at(kvs, addrs[1], "ack-set", &v) == 0, "PUT {b} at replica 1");
    lat_fini(&v);
    rc = cb_kvs_get_level(kvs, "ack-set", CB_KVS_ALL, &got);
    CHECK(rc == 0 && got.kind == LAT_SET && got.u.set.len == 2, "GET ALL = {a, b}");
    lat_fini(&got);
    rc = s_get_at(kvs, addrs[0], "ack-set", &got);
    CHECK(rc == 0 && got.kind == LAT_SET && got.u.set.len == 1, "GET ONE at replica 0 = {a}");
    lat_fini(&got);

    //  Absent everywhere: KEY_DNE; ALL of another lattice kind: LATTICE from the replicas.
    rc = cb_kvs_get_level(kvs, "ack-absent", CB_KVS_ALL, &got);
    CHECK(rc == -ENOENT && got.kind == LAT_NONE, "GET ALL of an absent key: %s",
          cb_strerror(rc));
    s_set1(&v, "x");
    rc = cb_kvs_put_level(kvs, "ack-all", &v, CB_KVS_ALL);
    CHECK(rc == -EINVAL, "PUT ALL of another kind: %s (%s)", cb_strerror(rc),
          cb_kvs_last_error(kvs));
    lat_fini(&v);

    //  A stopped server: PUT ALL fails with a timeout within its bound (lookup, then at
    //  most two attempts).
    if (s_server > 0) {
        kill(s_server, SIGSTOP);
        int64_t start = cb_clock_mono_ms();
        lat_init(&v, LAT_LWW);
        lat_lww_assign(&v, cb_clock_lww_now(), cb_kvs_writer_id(kvs), "late", 4);
        rc = cb_kvs_put_level(kvs, "ack-all", &v, CB_KVS_ALL);
        int64_t took = cb_clock_mono_ms() - start;
        lat_fini(&v);
        kill(s_server, SIGCONT);
        CHECK(rc == -ETIMEDOUT && took <= 4 * TIMEOUT_MS + 500,
              "PUT ALL to a stopped server: %s after %lld ms (%s)", cb_strerror(rc),
              (long long)took, cb_kvs_last_error(kvs));
    }
    cb_kvs_destroy(&kvs);
    return 0;
}

static int s_write(const char *routing, const char *prefix, long n)
{
    cb_kvs_t *kvs = s_client(routing);
    for (long i = 0; i < n; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s%ld", prefix, i);
        lat_t v;
        lat_init(&v, LAT_LWW);
        lat_lww_assign(&v, cb_clock_lww_now(), cb_kvs_writer_id(kvs), key, strlen(key));
        int rc = cb_kvs_put_level(kvs, key, &v, CB_KVS_ALL);
        lat_fini(&v);
        if (rc) {
            printf("FAIL: PUT ALL %s: %s\n", key, cb_kvs_last_error(kvs));
            return 1;
        }
    }
    printf("ok: %ld PUTs with level ALL\n", n);
    cb_kvs_destroy(&kvs);
    return 0;
}

static int s_check(const char *routing, const char *prefix, long n)
{
    cb_kvs_t *kvs = s_client(routing);
    for (long i = 0; i < n; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s%ld", prefix, i);
        char addrs[8][128];
        size_t m = s_replicas(kvs, key, addrs);
        if (m < 2) {
            printf("FAIL: %s: %zu replicas\n", key, m);
            return 1;
        }
        for (size_t r = 0; r < m; r++) {
            lat_t got;
            int rc = s_get_at(kvs, addrs[r], key, &got);
            bool same = rc == 0 && s_lww_is(&got, key);
            lat_fini(&got);
            if (!same) {
                printf("FAIL: replica %s lost %s: %s\n", addrs[r], key, cb_strerror(rc));
                return 1;
            }
        }
    }
    printf("ok: every replica of %ld keys holds its value\n", n);
    cb_kvs_destroy(&kvs);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "levels")) {
        s_server = (pid_t)atol(argv[3]);
        return s_levels(argv[2]);
    }
    if (argc == 5 && !strcmp(argv[1], "write"))
        return s_write(argv[2], argv[3], atol(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "check"))
        return s_check(argv[2], argv[3], atol(argv[4]));
    fprintf(stderr, "usage: anna_ack levels ROUTING SERVER_PID\n"
                    "       anna_ack write|check ROUTING PREFIX N\n");
    return 2;
}
