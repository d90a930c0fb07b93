//  tests/system/client_failover.c: the client library's failover against real anna-server
//  nodes, some of them stopped (SIGSTOP) or absent. Run by t_client_failover.sh.
//  Usage:
//    client_failover failover A_ROUTING A_WORKER A_PID B_ROUTING B_WORKER B_PID DEAD_ADDR
//        two single-thread nodes A and B; DEAD_ADDR is a port nothing listens on. A key is
//        aimed (cb_kvs_cache_set) at A's worker while A is stopped: the call goes on to B,
//        A becomes a suspect that later calls avoid; with A and B stopped, -ETIMEDOUT within
//        the bound of kvs.h; routing lists whose first entry is dead or stopped; a routing
//        tier that does not answer the retry's lookup (the other cached replica is used).
//    client_failover all ROUTING PID DEAD_WORKER
//        a node with --threads 2 --replication 2 --gossip-ms 60000: level ALL fails naming a
//        replica that does not answer, works again with the routing tier's list, and does
//        not skip suspects.
//    client_failover replica ROUTING KEY I      prints KEY as read from its replica I alone
//    client_failover put-replica ROUTING KEY I ELEM   adds ELEM to the SET KEY on replica I
//  Prints one "ok: ..." line per check; on the first failure "FAIL: file:line: what", exit 1
//  (after resuming every server it stopped).
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "client/kvs.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "lattices/lattice.h"
#include "tests/system/stopped.h"

static pid_t s_pids[2];                         //  servers this program may stop

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond);                          \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
            for (int p_ = 0; p_ < 2; p_++)                                                   \
                if (s_pids[p_] > 0)                                                          \
                    kill(s_pids[p_], SIGCONT);                                               \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

//  A timing check's slack: scheduling on a loaded 2-core machine under ASan.
#define SLACK_MS 900

static cb_kvs_t *s_client(const char *routing, int timeout_ms)
{
    cb_kvs_config_t config = {.routing = routing, .timeout_ms = timeout_ms};
    cb_kvs_t *kvs = cb_kvs_new(&config);
    CHECK(kvs, "cb_kvs_new(%s): %s", routing, strerror(errno));
    return kvs;
}

static bool s_lww_is(const lat_t *v, const char *text)
{
    return v->kind == LAT_LWW && v->u.lww.value.len == strlen(text)
           && !memcmp(v->u.lww.value.data, text, strlen(text));
}

//  SIGSTOP waits until the server is stopped (tests/system/stopped.h says why).
static void s_signal(pid_t pid, int sig)
{
    CHECK(kill(pid, sig) == 0, "kill(%d, %d): %s", (int)pid, sig, strerror(errno));
    CHECK(sig != SIGSTOP || ts_wait_stopped(pid, 2000), "server %d not stopped 2 s after SIGSTOP",
          (int)pid);
}

//  GET of key, which must hold LWW text; returns how long it took (ms).
static int64_t s_get_ok(cb_kvs_t *kvs, const char *key, const char *text)
{
    lat_t v;
    int64_t t0 = cb_clock_mono_ms();
    int rc = cb_kvs_get(kvs, key, &v);
    int64_t took = cb_clock_mono_ms() - t0;
    CHECK(rc == 0 && s_lww_is(&v, text), "get %s: %d: %s", key, rc, cb_kvs_last_error(kvs));
    lat_fini(&v);
    return took;
}

//  ---- failover --------------------------------------------------------------------------

static void s_failover(char **argv)
{
    const char *a_routing = argv[0], *a_worker = argv[1];
    const char *b_routing = argv[3], *b_worker = argv[4], *dead = argv[6];
    s_pids[0] = (pid_t)atoi(argv[2]);
    s_pids[1] = (pid_t)atoi(argv[5]);
    const int T = 400;
    cb_kvs_t *kvs = s_client(b_routing, T);
    CHECK(cb_kvs_put_lww(kvs, "fo:k", "v", 1) == 0, "put: %s", cb_kvs_last_error(kvs));
    CHECK(cb_kvs_cache_count(kvs, "fo:k") == 1 && !strcmp(cb_kvs_cache_addr(kvs, "fo:k", 0), b_worker),
          "fo:k lives on B (%s)", b_worker);

    //  (a) The key aimed at A's worker, A stopped: no answer in T, A suspected, a fresh
    //  lookup (B's routing tier) gives B's worker, which answers. One timeout, one retry.
    s_signal(s_pids[0], SIGSTOP);
    cb_kvs_stats_t before, after;
    cb_kvs_stats(kvs, &before);
    cb_kvs_cache_set(kvs, "fo:k", &a_worker, 1);
    int64_t took = s_get_ok(kvs, "fo:k", "v");
    cb_kvs_stats(kvs, &after);
    CHECK(took >= T - 20 && took < T + SLACK_MS, "failover GET took %lld ms", (long long)took);
    CHECK(after.timeouts == before.timeouts + 1 && after.retries == before.retries + 1,
          "timeouts +%llu retries +%llu", (unsigned long long)(after.timeouts - before.timeouts),
          (unsigned long long)(after.retries - before.retries));
    printf("ok: GET whose replica is stopped answered by another in %lld ms (timeout %d)\n",
           (long long)took, T);

    cb_kvs_cache_set(kvs, "fo:p", &a_worker, 1);
    int64_t t0 = cb_clock_mono_ms();
    CHECK(cb_kvs_put_lww(kvs, "fo:p", "w", 1) == 0, "failover put: %s", cb_kvs_last_error(kvs));
    took = cb_clock_mono_ms() - t0;
    CHECK(took < T + SLACK_MS, "failover PUT took %lld ms", (long long)took);
    s_get_ok(kvs, "fo:p", "w");
    printf("ok: PUT whose replica is stopped written to another in %lld ms\n", (long long)took);

    //  Later calls avoid the suspect: with both A and B cached for the key, every call goes
    //  to B (at random, 20 calls would hit A with probability 1 - 2^-20). B says the cache
    //  is stale (it is not a replica set it computes), so the pair is set again each time.
    const char *ab[] = {a_worker, b_worker};
    cb_kvs_stats(kvs, &before);
    int64_t slowest = 0;
    for (int i = 0; i < 20; i++) {
        cb_kvs_cache_set(kvs, "fo:k", ab, 2);
        took = s_get_ok(kvs, "fo:k", "v");
        slowest = took > slowest ? took : slowest;
        cb_kvs_cache_set(kvs, "fo:p", ab, 2);
        CHECK(cb_kvs_put_lww(kvs, "fo:p", "w", 1) == 0, "put: %s", cb_kvs_last_error(kvs));
    }
    cb_kvs_stats(kvs, &after);
    CHECK(after.timeouts == before.timeouts && after.retries == before.retries,
          "timeouts +%llu retries +%llu", (unsigned long long)(after.timeouts - before.timeouts),
          (unsigned long long)(after.retries - before.retries));
    CHECK(slowest < T / 2, "a GET took %lld ms", (long long)slowest);
    printf("ok: 40 calls with [stopped A, B] cached: none sent to the suspect (timeouts +0, "
           "slowest GET %lld ms)\n", (long long)slowest);

    //  A batch: keys aimed at A go on to B in the same call; one timeout for all of them.
    const char *keys[] = {"fo:k", "fo:p", "fo:k"};
    for (int i = 0; i < 2; i++)
        cb_kvs_cache_set(kvs, keys[i], &a_worker, 1);
    cb_kvs_result_t res[3];
    cb_kvs_stats(kvs, &before);
    CHECK(cb_kvs_get_many(kvs, keys, 3, res) == 0, "get_many: %s", cb_kvs_last_error(kvs));
    cb_kvs_stats(kvs, &after);
    for (int i = 0; i < 3; i++) {
        CHECK(res[i].error == 0 && s_lww_is(&res[i].value, i == 1 ? "w" : "v"), "result %d", i);
        lat_fini(&res[i].value);
    }
    CHECK(after.timeouts == before.timeouts + 1, "batch timeouts +%llu",
          (unsigned long long)(after.timeouts - before.timeouts));
    printf("ok: a batch aimed at the stopped replica answered by another, one timeout\n");

    //  The only routing address is on the stopped node: after the timeout of A's worker the
    //  fresh lookup gets no answer either, and the key goes to the other replica it had
    //  cached. A fresh client picks A or B at random: new clients until one picks A first.
    bool via_a = false;
    for (int round = 0; round < 12 && !via_a; round++) {
        cb_kvs_t *solo = s_client(a_routing, T);
        cb_kvs_cache_set(solo, "fo:k", ab, 2);
        took = s_get_ok(solo, "fo:k", "v");
        cb_kvs_stats(solo, &after);
        via_a = after.timeouts > 0;
        CHECK(!via_a || (after.timeouts == 2 && took >= 2 * T - 30 && took < 2 * T + SLACK_MS),
              "timeouts %llu, %lld ms", (unsigned long long)after.timeouts, (long long)took);
        cb_kvs_destroy(&solo);
    }
    CHECK(via_a, "no client picked the stopped replica first in 12 tries");
    printf("ok: routing tier and replica stopped: the other cached replica answered in %lld ms\n",
           (long long)took);

    //  (b) Every replica stopped (B's routing tier with it): -ETIMEDOUT within the bound,
    //  (4 + routing addresses) x T = 6 T; in fact after 4 waits: a worker, both routing
    //  addresses (the retry's lookup), then the other cached worker. The message names both.
    s_signal(s_pids[1], SIGSTOP);
    char list[600];
    snprintf(list, sizeof list, "%s,%s", b_routing, a_routing);
    cb_kvs_t *both = s_client(list, T);
    cb_kvs_cache_set(both, "fo:k", ab, 2);
    lat_t v;
    t0 = cb_clock_mono_ms();
    int rc = cb_kvs_get(both, "fo:k", &v);
    took = cb_clock_mono_ms() - t0;
    CHECK(rc == -ETIMEDOUT && v.kind == LAT_NONE, "get: %d (%s)", rc, cb_kvs_last_error(both));
    CHECK(took >= 4 * T - 30 && took < 6 * T + 100, "all stopped: took %lld ms", (long long)took);
    CHECK(strstr(cb_kvs_last_error(both), a_worker) && strstr(cb_kvs_last_error(both), b_worker),
          "names both replicas: %s", cb_kvs_last_error(both));
    printf("ok: every replica and routing address stopped: -ETIMEDOUT in %lld ms (bound %d): %s\n",
           (long long)took, 6 * T, cb_kvs_last_error(both));
    cb_kvs_cache_set(both, "fo:k", ab, 2);
    lat_t one;
    lat_init(&one, LAT_LWW);
    lat_lww_assign(&one, cb_clock_lww_now(), 9, "x", 1);
    t0 = cb_clock_mono_ms();
    rc = cb_kvs_put_level(both, "fo:k", &one, CB_KVS_ALL);
    took = cb_clock_mono_ms() - t0;
    CHECK(rc == -ETIMEDOUT && took < 6 * T, "PUT ALL: %d after %lld ms", rc, (long long)took);
    CHECK(strstr(cb_kvs_last_error(both), "replica tcp://"), "names the replica: %s",
          cb_kvs_last_error(both));
    printf("ok: PUT ALL with every replica stopped: -ETIMEDOUT in %lld ms: %s\n", (long long)took,
           cb_kvs_last_error(both));
    lat_fini(&one);
    cb_kvs_destroy(&both);
    s_signal(s_pids[1], SIGCONT);

    //  (c) Routing lists. Nothing listens at the first address: the lookup moves on after
    //  T, and the next calls start with the address that answered.
    snprintf(list, sizeof list, "%s,%s", dead, b_routing);
    cb_kvs_t *r = s_client(list, T);
    t0 = cb_clock_mono_ms();
    s_get_ok(r, "fo:k", "v");
    took = cb_clock_mono_ms() - t0;
    cb_kvs_stats(r, &after);
    CHECK(took >= T - 20 && took < T + SLACK_MS && after.lookups == 2 && after.timeouts == 1,
          "dead first routing address: %lld ms, lookups %llu, timeouts %llu", (long long)took,
          (unsigned long long)after.lookups, (unsigned long long)after.timeouts);
    t0 = cb_clock_mono_ms();
    CHECK(cb_kvs_get(r, "fo:absent", &v) == -ENOENT, "absent: %s", cb_kvs_last_error(r));
    took = cb_clock_mono_ms() - t0;
    cb_kvs_stats(r, &before);
    CHECK(took < T / 2 && before.timeouts == 1, "second call: %lld ms, timeouts %llu",
          (long long)took, (unsigned long long)before.timeouts);
    printf("ok: routing list with a dead first address: served after one timeout, the next "
           "call asks the live one (%lld ms)\n", (long long)took);
    cb_kvs_destroy(&r);

    //  A stopped (SIGSTOP) routing tier first in the list: the same.
    snprintf(list, sizeof list, "%s,%s", a_routing, b_routing);
    r = s_client(list, T);
    t0 = cb_clock_mono_ms();
    s_get_ok(r, "fo:k", "v");
    took = cb_clock_mono_ms() - t0;
    CHECK(took >= T - 20 && took < T + SLACK_MS, "stopped first routing: %lld ms", (long long)took);
    printf("ok: routing list with a stopped first routing tier: served in %lld ms\n",
           (long long)took);
    cb_kvs_destroy(&r);

    //  Every routing address dead or stopped: a clear error after one wait for each.
    snprintf(list, sizeof list, "%s,%s", dead, a_routing);
    r = s_client(list, T);
    t0 = cb_clock_mono_ms();
    rc = cb_kvs_get(r, "fo:k", &v);
    took = cb_clock_mono_ms() - t0;
    CHECK(rc == -ETIMEDOUT && took >= 2 * T - 30 && took < 2 * T + SLACK_MS,
          "all routing dead: %d after %lld ms", rc, (long long)took);
    CHECK(strstr(cb_kvs_last_error(r), "none of the 2 routing addresses answered within 400 ms"),
          "message: %s", cb_kvs_last_error(r));
    printf("ok: every routing address dead: -ETIMEDOUT in %lld ms: %s\n", (long long)took,
           cb_kvs_last_error(r));
    cb_kvs_destroy(&r);
    s_signal(s_pids[0], SIGCONT);

    //  A answers again: the key aimed at it is served by it.
    cb_kvs_cache_set(kvs, "fo:a", &a_worker, 1);
    rc = cb_kvs_get(kvs, "fo:a", &v);
    CHECK(rc == -ENOENT, "A after SIGCONT: %d: %s", rc, cb_kvs_last_error(kvs));
    printf("ok: the resumed node answers\n");
    cb_kvs_destroy(&kvs);
}

//  ---- level ALL -------------------------------------------------------------------------

static void s_all(char **argv)
{
    const char *routing = argv[0], *dead = argv[2];
    s_pids[0] = (pid_t)atoi(argv[1]);
    const int T = 400;
    cb_kvs_t *kvs = s_client(routing, T);
    lat_t v;
    CHECK(cb_kvs_get(kvs, "all:k", &v) == -ENOENT, "fresh key: %s", cb_kvs_last_error(kvs));
    CHECK(cb_kvs_cache_count(kvs, "all:k") == 2, "two replicas");
    char w0[128], w1[128];
    snprintf(w0, sizeof w0, "%s", cb_kvs_cache_addr(kvs, "all:k", 0));
    snprintf(w1, sizeof w1, "%s", cb_kvs_cache_addr(kvs, "all:k", 1));

    //  A replica that does not answer fails ALL, naming it, after one timeout.
    const char *live_dead[] = {w0, dead};
    cb_kvs_cache_set(kvs, "all:k", live_dead, 2);
    lat_t x;
    lat_init(&x, LAT_LWW);
    lat_lww_assign(&x, cb_clock_lww_now(), 9, "x", 1);
    int64_t t0 = cb_clock_mono_ms();
    int rc = cb_kvs_put_level(kvs, "all:k", &x, CB_KVS_ALL);
    int64_t took = cb_clock_mono_ms() - t0;
    CHECK(rc == -ETIMEDOUT && took >= T - 20 && took < T + SLACK_MS, "PUT ALL: %d in %lld ms",
          rc, (long long)took);
    CHECK(strstr(cb_kvs_last_error(kvs), dead), "names %s: %s", dead, cb_kvs_last_error(kvs));
    printf("ok: PUT ALL with a silent replica: -ETIMEDOUT in %lld ms: %s\n", (long long)took,
           cb_kvs_last_error(kvs));
    //  Its cache entry is gone: the next call uses the routing tier's replicas, and works.
    CHECK(cb_kvs_put_level(kvs, "all:k", &x, CB_KVS_ALL) == 0, "PUT ALL again: %s",
          cb_kvs_last_error(kvs));
    CHECK(cb_kvs_cache_count(kvs, "all:k") == 2, "the routing tier's two replicas");
    printf("ok: PUT ALL with the routing tier's replicas succeeds again\n");

    //  Suspects are not skipped by ALL: stop the node, let a GET ALL time out on both
    //  replicas (both become suspects), resume it; PUT ALL must still reach both, as reading
    //  each replica alone shows (no gossip during the test).
    cb_kvs_stats_t before, after;
    cb_kvs_stats(kvs, &before);
    s_signal(s_pids[0], SIGSTOP);
    rc = cb_kvs_get_level(kvs, "all:k", CB_KVS_ALL, &v);
    s_signal(s_pids[0], SIGCONT);
    cb_kvs_stats(kvs, &after);
    CHECK(rc == -ETIMEDOUT && after.timeouts == before.timeouts + 2,
          "GET ALL with the node stopped: %d, timeouts +%llu", rc,
          (unsigned long long)(after.timeouts - before.timeouts));
    const char *pair[] = {w0, w1};
    cb_kvs_cache_set(kvs, "all:s", pair, 2);
    lat_t set;
    lat_init(&set, LAT_SET);
    lat_set_insert(&set.u.set, "both", 4);
    CHECK(cb_kvs_put_level(kvs, "all:s", &set, CB_KVS_ALL) == 0, "PUT ALL after SIGCONT: %s",
          cb_kvs_last_error(kvs));
    for (int i = 0; i < 2; i++) {
        cb_kvs_cache_set(kvs, "all:s", &pair[i], 1);
        rc = cb_kvs_get(kvs, "all:s", &v);
        CHECK(rc == 0 && v.kind == LAT_SET && lat_set_contains(&v.u.set, "both", 4),
              "replica %s: %d: %s", pair[i], rc, cb_kvs_last_error(kvs));
        lat_fini(&v);
    }
    printf("ok: PUT ALL reaches both replicas after both were suspected\n");
    lat_fini(&set);
    lat_fini(&x);
    cb_kvs_destroy(&kvs);
}

//  ---- one replica alone, for the shell side of the test ---------------------------------

//  Aims key at its replica i alone (after a lookup). Returns the client.
static cb_kvs_t *s_aim(const char *routing, const char *key, const char *index)
{
    cb_kvs_t *kvs = s_client(routing, 2000);
    lat_t v;
    int rc = cb_kvs_get(kvs, key, &v);
    CHECK(rc == 0 || rc == -ENOENT, "lookup %s: %s", key, cb_kvs_last_error(kvs));
    lat_fini(&v);
    size_t i = (size_t)atoi(index);
    CHECK(i < cb_kvs_cache_count(kvs, key), "replica %zu of %zu", i, cb_kvs_cache_count(kvs, key));
    char *addr = cb_strdup(cb_kvs_cache_addr(kvs, key, i));
    const char *p = addr;
    cb_kvs_cache_set(kvs, key, &p, 1);
    cb_free(addr);
    return kvs;
}

static int s_replica(char **argv)
{
    cb_kvs_t *kvs = s_aim(argv[0], argv[1], argv[2]);
    lat_t v;
    int rc = cb_kvs_get(kvs, argv[1], &v);
    if (rc == -ENOENT) {
        printf("missing\n");
    } else {
        CHECK(rc == 0, "get: %s", cb_kvs_last_error(kvs));
        if (v.kind == LAT_LWW) {
            printf("%.*s\n", (int)v.u.lww.value.len, (const char *)v.u.lww.value.data);
        } else {
            char *text = lat_format(&v);
            printf("%s\n", text);
            cb_free(text);
        }
        lat_fini(&v);
    }
    cb_kvs_destroy(&kvs);
    return 0;
}

static int s_put_replica(char **argv)
{
    cb_kvs_t *kvs = s_aim(argv[0], argv[1], argv[2]);
    lat_t set;
    lat_init(&set, LAT_SET);
    lat_set_insert(&set.u.set, argv[3], strlen(argv[3]));
    CHECK(cb_kvs_put(kvs, argv[1], &set) == 0, "put: %s", cb_kvs_last_error(kvs));
    lat_fini(&set);
    cb_kvs_destroy(&kvs);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 9 && !strcmp(argv[1], "failover")) {
        s_failover(argv + 2);
    } else if (argc == 5 && !strcmp(argv[1], "all")) {
        s_all(argv + 2);
    } else if (argc == 5 && !strcmp(argv[1], "replica")) {
        return s_replica(argv + 2);
    } else if (argc == 6 && !strcmp(argv[1], "put-replica")) {
        return s_put_replica(argv + 2);
    } else {
        fprintf(stderr, "usage: client_failover failover A_ROUTING A_WORKER A_PID B_ROUTING "
                        "B_WORKER B_PID DEAD_ADDR\n"
                        "       client_failover all ROUTING PID DEAD_WORKER\n"
                        "       client_failover replica ROUTING KEY I\n"
                        "       client_failover put-replica ROUTING KEY I ELEM\n");
        return 2;
    }
    printf("client_failover: all checks passed\n");
    return 0;
}
