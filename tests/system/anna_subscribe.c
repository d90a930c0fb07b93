//  tests/system/anna_subscribe.c: push subscriptions (our protocol extension) against real
//  anna-servers. Node 1 (--threads 2 --replication 2 --gossip-ms 50): a GET with subscribe
//  registers the update address even for an absent key; a PUT by another client is pushed
//  as KeyRequest{PUT} without response address within a bounded wait; a PUT that changes
//  nothing is not pushed; a PUT on the other replica is pushed after gossip; changes of one
//  request are batched in one push; unsubscribe (answered, or fire and forget) stops the
//  pushes; bad update addresses and the per-key bound are refused; a subscriber that never
//  reads loses pushes, then (after 10 s of failures) its subscriptions. Node 2 (--threads 1
//  --max-subscriptions 2): the node bound refuses with TOO_LARGE and frees up on unsubscribe.
//  Usage: anna_subscribe PORT_OFFSET_1 PORT_OFFSET_2
//  SPDX-License-Identifier: Apache-2.0
#include "tests/system/anna_testlib.h"

#include "anna/subs.h"

#define PUSH_WAIT_MS 2000

typedef struct {
    void *pull;                 //  where the nodes push updates
    char address[128];
} s_sub_t;

static void s_sub_init(tl_client_t *c, s_sub_t *sub)
{
    sub->pull = zmq_socket(c->ctx, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt(sub->pull, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(sub->pull, "tcp://127.0.0.1:*") != 0)
        tl_fail("bind update socket: %s", zmq_strerror(errno));
    size_t len = sizeof sub->address;
    zmq_getsockopt(sub->pull, ZMQ_LAST_ENDPOINT, sub->address, &len);
}

//  The next update pushed to sub within timeout_ms, NULL if none. Caller owns result.
static KeyRequest *s_wait_push(s_sub_t *sub, int timeout_ms)
{
    zmq_pollitem_t item = {sub->pull, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sub->pull, 0) < 0)
        tl_fail("recv update: %s", zmq_strerror(errno));
    KeyRequest *req = key_request__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    if (!req)
        tl_fail("undecodable update");
    return req;
}

//  A one-tuple GET with the subscription flags. respond: ask for an answer (and wait for
//  it; caller owns the result), else fire and forget (NULL).
static KeyResponse *s_get_flags(tl_client_t *c, const char *address, const char *key,
                                bool subscribe, bool unsubscribe, const char *update,
                                bool respond)
{
    char id[32];
    tl_new_id(c, id, sizeof id);
    KeyTuple tuple = KEY_TUPLE__INIT;
    tuple.key = (char *)key;
    tuple.subscribe = subscribe;
    tuple.unsubscribe = unsubscribe;
    KeyTuple *tuples[1] = {&tuple};
    KeyRequest req = KEY_REQUEST__INIT;
    req.type = REQUEST_TYPE__GET;
    req.tuples = tuples;
    req.n_tuples = 1;
    req.response_address = respond ? c->reply_to : "";
    req.request_id = id;
    req.update_address = (char *)(update ? update : "");
    tl_send_request(c, address, &req);
    if (!respond)
        return NULL;
    KeyResponse *resp = tl_wait_response(c, id, TL_TIMEOUT_MS);
    if (!resp || resp->n_tuples != 1)
        tl_fail("no answer to the subscription GET of %s", key);
    return resp;
}

//  Subscribes sub to key at address; returns the tuple's error.
static int s_subscribe(tl_client_t *c, const char *address, const char *key, const char *update,
                       char *msg, size_t msglen)
{
    KeyResponse *resp = s_get_flags(c, address, key, true, false, update, true);
    int error = resp->tuples[0]->error;
    snprintf(msg, msglen, "%s", resp->tuples[0]->error_message);
    key_response__free_unpacked(resp, NULL);
    return error;
}

static void s_lww(lat_t *v, uint64_t ts, const char *text)
{
    lat_init(v, LAT_LWW);
    lat_lww_assign(v, ts, 7, text, strlen(text));
}

//  Checks that push holds key with value want.
static bool s_push_has(const KeyRequest *push, const char *key, const lat_t *want)
{
    for (size_t i = 0; i < push->n_tuples; i++) {
        const KeyTuple *t = push->tuples[i];
        if (strcmp(t->key, key) != 0)
            continue;
        lat_t got;
        if (wire_decode((int)t->lattice_type, t->payload.data, t->payload.len, &got) != 0)
            tl_fail("pushed value of %s does not decode", key);
        bool same = lat_equal(&got, want);
        lat_fini(&got);
        return same;
    }
    return false;
}

//  Waits for a push holding key = want (other pushes are skipped). Returns the ms waited,
//  or fails.
static int64_t s_expect_push(s_sub_t *sub, const char *key, const lat_t *want, const char *what)
{
    int64_t start = cb_clock_mono_ms();
    for (;;) {
        int64_t left = start + PUSH_WAIT_MS - cb_clock_mono_ms();
        KeyRequest *push = left > 0 ? s_wait_push(sub, (int)left) : NULL;
        if (!push)
            tl_fail("%s: no push of %s within %d ms", what, key, PUSH_WAIT_MS);
        TL_ASSERT(push->type == REQUEST_TYPE__PUT && !push->response_address[0],
                  "a push is a PUT without response address");
        bool ok = s_push_has(push, key, want);
        key_request__free_unpacked(push, NULL);
        if (ok) {
            int64_t waited = cb_clock_mono_ms() - start;
            printf("ok: %s (pushed after %lld ms)\n", what, (long long)waited);
            return waited;
        }
    }
}

static void s_expect_no_push(s_sub_t *sub, int ms, const char *what)
{
    KeyRequest *push = s_wait_push(sub, ms);
    if (push) {
        tl_fail("%s: got a push of %zu tuples (first %s)", what, push->n_tuples,
                push->n_tuples ? push->tuples[0]->key : "-");
    }
    printf("ok: %s\n", what);
}

static void s_node1(int offset)
{
    tl_client_t c, writer;
    tl_client_init(&c, offset);
    tl_client_init(&writer, offset);
    s_sub_t sub;
    s_sub_init(&c, &sub);
    char addrs[8][128], msg[256];
    TL_ASSERT(tl_resolve(&c, "sub-a", addrs, 8) == 2, "two owners of sub-a");
    char a[128], b[128];
    snprintf(a, sizeof a, "%s", addrs[0]);
    snprintf(b, sizeof b, "%s", addrs[1]);

    //  Subscribing to an absent key answers KEY_DNE and registers anyway: the cache learns
    //  when the key is created.
    TL_CHECK(s_subscribe(&c, a, "sub-a", sub.address, msg, sizeof msg) == ANNA_ERROR__KEY_DNE,
             "subscribe to an absent key: KEY_DNE");
    char *stats = tl_stats(&c, a);
    TL_CHECK(tl_counter(stats, "subscriptions") == 1 && tl_counter(stats, "subscribes") == 1,
             "the owner holds one subscription");
    cb_free(stats);

    //  A PUT by another client is pushed, full value, no response address.
    lat_t v1, v2, v3;
    s_lww(&v1, 1000, "first");
    TL_ASSERT(tl_put(&writer, a, "sub-a", &v1, msg, sizeof msg) == 0, "PUT: %s", msg);
    s_expect_push(&sub, "sub-a", &v1, "a PUT of another client creating the key is pushed");
    //  The same value again changes nothing and is not pushed.
    TL_ASSERT(tl_put(&writer, a, "sub-a", &v1, msg, sizeof msg) == 0, "PUT: %s", msg);
    s_expect_no_push(&sub, 300, "a PUT that changes nothing is not pushed");
    //  A losing (older) value changes nothing either.
    lat_t old;
    s_lww(&old, 10, "older");
    TL_ASSERT(tl_put(&writer, a, "sub-a", &old, msg, sizeof msg) == 0, "PUT: %s", msg);
    s_expect_no_push(&sub, 300, "an older LWW value that loses is not pushed");
    lat_fini(&old);

    //  A PUT on the other replica reaches the subscribed one by gossip, which pushes it.
    s_lww(&v2, 2000, "via gossip");
    TL_ASSERT(tl_put(&writer, b, "sub-a", &v2, msg, sizeof msg) == 0, "PUT on B: %s", msg);
    s_expect_push(&sub, "sub-a", &v2, "a PUT on the other replica is pushed after gossip");

    //  Several subscribed keys changed by one request: one push carrying all of them.
    const char *keys[3] = {"batch-0", "batch-1", "batch-2"};
    char owner[128];
    tl_owner(&c, keys[0], owner);
    for (int i = 0; i < 3; i++) {
        //  Subscribe each key where it is owned; all of them on one thread (replication 2
        //  over 2 threads: every thread owns every key).
        TL_ASSERT(s_subscribe(&c, owner, keys[i], sub.address, msg, sizeof msg) ==
                      ANNA_ERROR__KEY_DNE,
                  "subscribe %s: %s", keys[i], msg);
    }
    KeyTuple tuples[3];
    KeyTuple *ptrs[3];
    cb_bytes_t payload = {0};
    TL_ASSERT(wire_encode(&v1, &payload) == 0, "encode");
    for (int i = 0; i < 3; i++) {
        key_tuple__init(&tuples[i]);
        tuples[i].key = (char *)keys[i];
        tuples[i].lattice_type = LATTICE_TYPE__LWW;
        tuples[i].payload.data = payload.data;
        tuples[i].payload.len = payload.len;
        ptrs[i] = &tuples[i];
    }
    KeyRequest put = KEY_REQUEST__INIT;
    put.type = REQUEST_TYPE__PUT;
    put.tuples = ptrs;
    put.n_tuples = 3;
    put.response_address = "";         //  fire and forget
    tl_send_request(&writer, owner, &put);
    KeyRequest *push = s_wait_push(&sub, PUSH_WAIT_MS);
    TL_CHECK(push && push->n_tuples == 3 && s_push_has(push, "batch-0", &v1) &&
                 s_push_has(push, "batch-1", &v1) && s_push_has(push, "batch-2", &v1),
             "three keys changed by one request: one push of %zu tuples",
             push ? push->n_tuples : 0);
    key_request__free_unpacked(push, NULL);
    cb_bytes_fini(&payload);

    //  Unsubscribe, answered: later PUTs are not pushed. The GET is still answered.
    KeyResponse *resp = s_get_flags(&c, a, "sub-a", false, true, sub.address, true);
    TL_CHECK(resp->tuples[0]->error == ANNA_ERROR__NO_ERROR &&
                 resp->tuples[0]->lattice_type == LATTICE_TYPE__LWW,
             "unsubscribe GET answers the value");
    key_response__free_unpacked(resp, NULL);
    s_lww(&v3, 3000, "after unsubscribe");
    TL_ASSERT(tl_put(&writer, a, "sub-a", &v3, msg, sizeof msg) == 0, "PUT: %s", msg);
    s_expect_no_push(&sub, 500, "after unsubscribe, a PUT is not pushed");
    //  Fire-and-forget unsubscribe, then a PUT on the same connection (ordered after it).
    s_get_flags(&c, owner, "batch-0", false, true, sub.address, false);
    TL_ASSERT(tl_put(&c, owner, "batch-0", &v3, msg, sizeof msg) == 0, "PUT: %s", msg);
    s_expect_no_push(&sub, 500, "fire-and-forget unsubscribe stops pushes too");
    //  batch-1 is still subscribed.
    TL_ASSERT(tl_put(&c, owner, "batch-1", &v3, msg, sizeof msg) == 0, "PUT: %s", msg);
    s_expect_push(&sub, "batch-1", &v3, "the other subscriptions still push");

    //  Refused: no update address, or one we do not connect to.
    TL_CHECK(s_subscribe(&c, a, "sub-a", "", msg, sizeof msg) == ANNA_ERROR__BAD_REQUEST &&
                 strstr(msg, "update_address"),
             "subscribe without update address: BAD_REQUEST (%s)", msg);
    TL_CHECK(s_subscribe(&c, a, "sub-a", "tcp://localhost:9", msg, sizeof msg) ==
                 ANNA_ERROR__BAD_REQUEST,
             "subscribe with a host name: BAD_REQUEST (%s)", msg);
    //  Per-key bound.
    int added = 0, error = 0;
    for (int i = 0; i < ANNA_SUBS_MAX_PER_KEY + 1; i++) {
        char update[64];
        snprintf(update, sizeof update, "tcp://127.0.0.1:%d", 40000 + i);
        error = s_subscribe(&c, a, "crowded", update, msg, sizeof msg);
        if (error == ANNA_ERROR__KEY_DNE)
            added++;
        else
            break;
    }
    TL_CHECK(added == ANNA_SUBS_MAX_PER_KEY && error == ANNA_ERROR__TOO_LARGE,
             "per-key bound: %d subscribers, then TOO_LARGE (%s)", added, msg);
    stats = tl_stats(&c, a);
    printf("thread of A: %s\n", stats);
    TL_CHECK(tl_counter(stats, "pushes") >= 2 && tl_counter(stats, "subs_refused") == 3,
             "push and refusal counters");
    cb_free(stats);
    lat_fini(&v1);
    lat_fini(&v2);
    lat_fini(&v3);

    //  A subscriber that never takes its updates: pushes queue up to the socket's bound,
    //  then are dropped (counted); after ANNA_SUBS_DEAD_FAILURES failures spanning
    //  ANNA_SUBS_DEAD_MS its subscriptions go.
    TL_ASSERT(s_subscribe(&c, a, "dead-k", "tcp://127.0.0.1:1", msg, sizeof msg) ==
                  ANNA_ERROR__KEY_DNE,
              "subscribe dead-k: %s", msg);
    TL_ASSERT(s_subscribe(&c, a, "dead-j", "tcp://127.0.0.1:1", msg, sizeof msg) ==
                  ANNA_ERROR__KEY_DNE,
              "subscribe dead-j: %s", msg);
    stats = tl_stats(&c, a);
    long long subs = tl_counter(stats, "subscriptions");
    cb_free(stats);
    long long dropped = 0;
    int puts = 0;
    for (; puts < 5000 && dropped == 0; puts++) {
        lat_t v;
        s_lww(&v, 10000 + (uint64_t)puts, "never read");
        TL_ASSERT(tl_put(&writer, a, "dead-k", &v, msg, sizeof msg) == 0, "PUT: %s", msg);
        lat_fini(&v);
        if (puts % 100 == 99) {
            stats = tl_stats(&c, a);
            dropped = tl_counter(stats, "push_dropped");
            cb_free(stats);
        }
    }
    TL_CHECK(dropped > 0, "a subscriber not reading: pushes dropped after %d changes", puts);
    struct timespec wait = {ANNA_SUBS_DEAD_MS / 1000, 200 * 1000 * 1000};
    nanosleep(&wait, NULL);
    long long gone = 0;
    for (int i = 0; i < 2 * ANNA_SUBS_DEAD_FAILURES && gone == 0; i++) {
        lat_t v;
        s_lww(&v, 20000 + (uint64_t)i, "never read");
        TL_ASSERT(tl_put(&writer, a, "dead-k", &v, msg, sizeof msg) == 0, "PUT: %s", msg);
        lat_fini(&v);
        stats = tl_stats(&c, a);
        gone = tl_counter(stats, "subs_dropped");
        if (gone)
            TL_CHECK(gone == 2 && tl_counter(stats, "subscriptions") == subs - 2,
                     "after %d s of failures the dead subscriber loses both subscriptions",
                     ANNA_SUBS_DEAD_MS / 1000);
        cb_free(stats);
    }
    TL_ASSERT(gone, "the dead subscriber was never dropped");
    zmq_close(sub.pull);
    tl_client_fini(&writer);
    tl_client_fini(&c);
}

static void s_node2(int offset)
{
    tl_client_t c;
    tl_client_init(&c, offset);
    s_sub_t sub;
    s_sub_init(&c, &sub);
    char node[128], msg[256];
    tl_key_addr(&c, 0, node, sizeof node);
    TL_ASSERT(s_subscribe(&c, node, "n-1", sub.address, msg, sizeof msg) == ANNA_ERROR__KEY_DNE,
              "subscribe n-1: %s", msg);
    TL_ASSERT(s_subscribe(&c, node, "n-2", sub.address, msg, sizeof msg) == ANNA_ERROR__KEY_DNE,
              "subscribe n-2: %s", msg);
    TL_CHECK(s_subscribe(&c, node, "n-3", sub.address, msg, sizeof msg) ==
                     ANNA_ERROR__TOO_LARGE &&
                 strstr(msg, "max-subscriptions"),
             "--max-subscriptions 2: the third is refused with TOO_LARGE (%s)", msg);
    TL_CHECK(s_subscribe(&c, node, "n-2", sub.address, msg, sizeof msg) == ANNA_ERROR__KEY_DNE,
             "subscribing again to a subscribed key is no new subscription");
    KeyResponse *resp = s_get_flags(&c, node, "n-1", false, true, sub.address, true);
    key_response__free_unpacked(resp, NULL);
    TL_CHECK(s_subscribe(&c, node, "n-3", sub.address, msg, sizeof msg) == ANNA_ERROR__KEY_DNE,
             "after an unsubscribe there is room again");
    //  n-3 is pushed, n-1 is not.
    lat_t v;
    s_lww(&v, 5, "x");
    TL_ASSERT(tl_put(&c, node, "n-1", &v, msg, sizeof msg) == 0, "PUT: %s", msg);
    TL_ASSERT(tl_put(&c, node, "n-3", &v, msg, sizeof msg) == 0, "PUT: %s", msg);
    KeyRequest *push = s_wait_push(&sub, PUSH_WAIT_MS);
    TL_CHECK(push && push->n_tuples == 1 && !strcmp(push->tuples[0]->key, "n-3"),
             "only the subscribed key is pushed");
    key_request__free_unpacked(push, NULL);
    lat_fini(&v);
    zmq_close(sub.pull);
    tl_client_fini(&c);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        tl_fail("usage: anna_subscribe PORT_OFFSET_1 PORT_OFFSET_2");
    s_node1(atoi(argv[1]));
    s_node2(atoi(argv[2]));
    printf("PASS\n");
    return 0;
}
