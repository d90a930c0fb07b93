//  bench/kvs_bench.c: anna-bench, a load generator for the KVS in the manner of redis-benchmark.
//  Each generator thread drives its share of the logical clients from one event loop: one PULL
//  socket for all its responses, one PUSH socket per server worker, requests matched to clients
//  by request_id. A client has at most --pipeline requests in flight (closed loop), or requests
//  are sent on a schedule (--rate, open loop, latency measured from the scheduled time).
//  Speaks the public Anna protocol directly: KeyRequest/KeyResponse through a small codec of
//  its own (byte-identical to protobuf-c, checked by the self-test), key addresses asked from
//  the routing tier once, in batches, before the run (anna.pb-c.h). Latency goes into
//  log-linear histograms (HdrHistogram-style, no per-sample storage); the main thread prints
//  one line per epoch. docs/benchmarks.md has the user's side.
//  SPDX-License-Identifier: Apache-2.0
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <zmq.h>

#include "anna.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/rand.h"

//  ---- histogram -----------------------------------------------------------------------------
//  Log-linear buckets over uint64 values (we record nanoseconds). Values below 2^S get one bucket
//  each; above, every power of two is split into 2^(S-1) equal buckets, so a bucket's width is
//  at most 1/2^(S-1) of its values: with S = 8 a reported percentile is within 0.8% of the
//  exact one, whatever the range. 7424 buckets, 58 KiB. Kept here, with bench_ names and its
//  own prototypes, so it can move to its own file unchanged.

#define BENCH_HIST_S 8
#define BENCH_HIST_HALF (1u << (BENCH_HIST_S - 1))
#define BENCH_HIST_BUCKETS ((1u << BENCH_HIST_S) + (64 - BENCH_HIST_S) * BENCH_HIST_HALF)

typedef struct {
    uint64_t counts[BENCH_HIST_BUCKETS];
    uint64_t n;        //  values recorded
    uint64_t min, max; //  exact; min is UINT64_MAX when n == 0
    uint64_t sum;      //  exact sum, for the mean
} bench_hist_t;

void bench_hist_reset(bench_hist_t *self);
void bench_hist_record(bench_hist_t *self, uint64_t value);
//  Adds every value of other into self.
void bench_hist_merge(bench_hist_t *self, const bench_hist_t *other);
//  The value at percentile p (0..100): the upper bound of the bucket holding the value of rank
//  ceil(p% of n), clamped to [min, max]; never below the exact percentile. 0 when empty.
uint64_t bench_hist_percentile(const bench_hist_t *self, double p);
double bench_hist_mean(const bench_hist_t *self);
void bench_hist_test(bool verbose);

static unsigned s_hist_index(uint64_t v)
{
    if (v < (1u << BENCH_HIST_S))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - (BENCH_HIST_S - 1);
    unsigned top = (unsigned)(v >> shift); //  in [HALF, 2 * HALF)
    return (1u << BENCH_HIST_S) + (shift - 1) * BENCH_HIST_HALF + (top - BENCH_HIST_HALF);
}

//  Largest value that falls into bucket i.
static uint64_t s_hist_upper(unsigned i)
{
    if (i < (1u << BENCH_HIST_S))
        return i;
    unsigned j = i - (1u << BENCH_HIST_S);
    unsigned shift = j / BENCH_HIST_HALF + 1;
    uint64_t top = j % BENCH_HIST_HALF + BENCH_HIST_HALF;
    uint64_t lower = top << shift;
    return lower + ((uint64_t)1 << shift) - 1;
}

void bench_hist_reset(bench_hist_t *self)
{
    memset(self, 0, sizeof *self);
    self->min = UINT64_MAX;
}

void bench_hist_record(bench_hist_t *self, uint64_t value)
{
    self->counts[s_hist_index(value)]++;
    self->n++;
    self->sum += value;
    if (value < self->min)
        self->min = value;
    if (value > self->max)
        self->max = value;
}

void bench_hist_merge(bench_hist_t *self, const bench_hist_t *other)
{
    if (other->n == 0)
        return;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        self->counts[i] += other->counts[i];
    self->n += other->n;
    self->sum += other->sum;
    if (other->min < self->min)
        self->min = other->min;
    if (other->max > self->max)
        self->max = other->max;
}

uint64_t bench_hist_percentile(const bench_hist_t *self, double p)
{
    if (self->n == 0)
        return 0;
    double want = ceil(p / 100.0 * (double)self->n);
    uint64_t rank = want < 1 ? 1 : want > (double)self->n ? self->n : (uint64_t)want;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += self->counts[i];
        if (seen >= rank) {
            uint64_t v = s_hist_upper(i);
            return v < self->min ? self->min : v > self->max ? self->max : v;
        }
    }
    return self->max;
}

double bench_hist_mean(const bench_hist_t *self)
{
    return self->n ? (double)self->sum / (double)self->n : 0.0;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_hist_test(bool verbose)
{
    //  @selftest
    //  Every bucket bound maps back into its own bucket, and buckets tile the range in order.
    for (unsigned i = 0; i + 1 < BENCH_HIST_BUCKETS; i++) {
        assert(s_hist_index(s_hist_upper(i)) == i);
        assert(s_hist_index(s_hist_upper(i) + 1) == i + 1);
    }
    assert(s_hist_index(UINT64_MAX) == BENCH_HIST_BUCKETS - 1);

    bench_hist_t *h = cb_malloc(sizeof *h), *a = cb_malloc(sizeof *a), *b = cb_malloc(sizeof *b);
    bench_hist_reset(h);
    assert(bench_hist_percentile(h, 50) == 0 && bench_hist_mean(h) == 0.0);

    //  Percentiles against exact ones over a wide, skewed sample (seeded).
    enum { N = 200000 };
    uint64_t *v = cb_malloc(N * sizeof *v);
    cb_rand_t r;
    cb_rand_seed(&r, 42);
    bench_hist_reset(a);
    bench_hist_reset(b);
    uint64_t sum = 0;
    for (int i = 0; i < N; i++) {
        v[i] = (uint64_t)pow(2.0, cb_rand_unit(&r) * 40.0); //  log-uniform over [1, 2^40)
        sum += v[i];
        bench_hist_record(h, v[i]);
        bench_hist_record(i % 3 ? a : b, v[i]);
    }
    qsort(v, N, sizeof *v, s_cmp_u64);
    assert(h->n == N && h->min == v[0] && h->max == v[N - 1] && h->sum == sum);
    const double ps[] = {0, 1, 10, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        double want = ceil(ps[k] / 100.0 * N);
        uint64_t exact = v[want < 1 ? 0 : (size_t)want - 1];
        uint64_t got = bench_hist_percentile(h, ps[k]);
        double err = fabs((double)got - (double)exact) / (double)exact;
        if (verbose)
            printf("  p%-6g exact %" PRIu64 " hist %" PRIu64 " err %.4f\n", ps[k], exact, got, err);
        assert(got >= exact && err <= 1.0 / BENCH_HIST_HALF);
    }
    //  Merging two parts gives the histogram of the whole.
    bench_hist_merge(a, b);
    assert(memcmp(a, h, sizeof *h) == 0);
    //  Small values are exact (one bucket each).
    bench_hist_reset(h);
    for (uint64_t x = 1; x <= 100; x++)
        bench_hist_record(h, x);
    assert(bench_hist_percentile(h, 50) == 50 && bench_hist_percentile(h, 99) == 99);
    assert(bench_hist_mean(h) == 50.5);
    cb_free(v);
    cb_free(h);
    cb_free(a);
    cb_free(b);
    //  @end
    if (verbose)
        printf("bench_hist: ok (%u buckets)\n", BENCH_HIST_BUCKETS);
}

//  ---- configuration -------------------------------------------------------------------------

#define BENCH_KEY_LEN 16       //  "key:%012d": the key names redis-benchmark -r uses
#define BENCH_ADDR_BATCH 1000  //  keys per KeyAddressRequest
#define BENCH_MAX_REPLICAS 8   //  addresses kept per key
#define BENCH_DRAIN_MAX 1024   //  responses handled before timers are looked at
#define BENCH_PRELOAD_SLOTS 64 //  requests in flight per thread during --preload
#define BENCH_MAX_ROUTING 16   //  addresses in a --routing list

typedef struct {
    const char *routing;                      //  routing endpoint(s), as given
    char routing_list[BENCH_MAX_ROUTING][256]; //  routing split at commas
    int n_routing;
    bool ack_all;        //  --ack all: every request goes to every replica of its key
    const char *bind_ip; //  IP our response sockets bind to
    int clients;         //  logical clients, spread over the threads
    int threads;         //  generator threads
    int pipeline;        //  requests in flight per client (closed loop)
    uint64_t keys;       //  key space size
    size_t value_size;   //  bytes per PUT value
    double zipf;         //  0 = uniform
    double read_ratio;   //  fraction of GETs
    double duration_s;   //  run length, unless requests > 0
    uint64_t requests;   //  total requests to send (0 = use duration)
    double epoch_s;      //  progress line interval; 0 = none
    double rate;         //  open loop: requests per second in total; 0 = closed loop
    bool preload;        //  PUT every key once before the run
    int timeout_ms;      //  a request unanswered this long is a timeout
    uint64_t seed;       //  PRNG seed (keys, ops, values)
    const char *csv;     //  append results here (header when the file is new)
    const char *json;    //  write results here
    const char *label;   //  name of the run in csv/json
} bench_config_t;

//  What can go wrong with a request, by kind. The server's AnnaError codes map onto these.
typedef enum {
    BENCH_ERR_TIMEOUT, //  no answer within --timeout (the client sends a new request)
    BENCH_ERR_SEND,    //  the request could not be queued (peer's queue full)
    BENCH_ERR_DECODE,  //  reply unreadable, or a GET value not an LWW value
    BENCH_ERR_WRONG_THREAD,
    BENCH_ERR_LATTICE,
    BENCH_ERR_NO_SERVERS,
    BENCH_ERR_SERVER_TIMEOUT,
    BENCH_ERR_BAD_REQUEST,
    BENCH_ERR_TOO_LARGE,
    BENCH_ERR_OTHER,
    BENCH_ERR_COUNT
} bench_err_t;

static const char *const s_err_names[BENCH_ERR_COUNT] = {
    "timeout",    "send",           "decode",      "wrong_thread", "lattice",
    "no_servers", "server_timeout", "bad_request", "too_large",    "other"};

enum { BENCH_OP_GET, BENCH_OP_PUT, BENCH_OP_COUNT };
static const char *const s_op_names[BENCH_OP_COUNT] = {"GET", "PUT"};

typedef struct {
    uint64_t ops[BENCH_OP_COUNT]; //  answered requests (values, misses, server errors)
    uint64_t misses;              //  GETs answered KEY_DNE (not errors)
    uint64_t errors[BENCH_ERR_COUNT];
    uint64_t late; //  answers that came after their timeout (ignored)
} bench_counts_t;

static uint64_t s_counts_errors(const bench_counts_t *c)
{
    uint64_t n = 0;
    for (int e = 0; e < BENCH_ERR_COUNT; e++)
        n += c->errors[e];
    return n;
}

static void s_counts_add(bench_counts_t *self, const bench_counts_t *other)
{
    for (int o = 0; o < BENCH_OP_COUNT; o++)
        self->ops[o] += other->ops[o];
    self->misses += other->misses;
    for (int e = 0; e < BENCH_ERR_COUNT; e++)
        self->errors[e] += other->errors[e];
    self->late += other->late;
}

//  ---- shared, read-only during a run --------------------------------------------------------

typedef struct {
    uint8_t n;                        //  replicas
    uint16_t ids[BENCH_MAX_REPLICAS]; //  indexes into bench_keyspace_t.addrs
} bench_replicas_t;

typedef struct {
    uint64_t n;             //  keys
    char *names;            //  n * (BENCH_KEY_LEN + 1), NUL-terminated names
    uint32_t *set_of;       //  key -> index into sets
    bench_replicas_t *sets; //  distinct replica sets (few)
    size_t n_sets;
    char **addrs; //  distinct worker endpoints, owned
    size_t n_addrs;
    cb_zipf_t zipf;
} bench_keyspace_t;

static const char *s_key_name(const bench_keyspace_t *ks, uint64_t k)
{
    return ks->names + k * (BENCH_KEY_LEN + 1);
}

//  ---- time ----------------------------------------------------------------------------------

static int64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void s_sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    nanosleep(&ts, NULL);
}

//  Poll timeout in ms for a deadline: rounded up, so that we never wake before it.
static long s_poll_ms(int64_t deadline_ns, int64_t now_ns)
{
    if (deadline_ns <= now_ns)
        return 0;
    int64_t ms = (deadline_ns - now_ns + 999999) / 1000000;
    return ms > 1000 ? 1000 : (long)ms;
}

//  ---- codec of the two hot messages --------------------------------------------------------
//  The generator encodes every KeyRequest and decodes every KeyResponse itself. The generated
//  protobuf-c code works by reflection and allocates for every message, and on a 2-core
//  machine each cycle the generator spends is taken from the server it measures. The bytes are
//  exactly those protobuf-c produces (the self-test checks it), and decoding validates as
//  much as we read. The address look-ups, done once, use protobuf-c.

#define BENCH_ID_LEN 16 //  request ids: slot and sequence number, 8 hex digits each

static size_t s_pb_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *s_pb_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

//  A length-delimited field: one-byte tag (fields 1..15), length, bytes.
static uint8_t *s_pb_bytes(uint8_t *p, uint8_t tag, const void *data, size_t len)
{
    *p++ = tag;
    p = s_pb_varint(p, len);
    memcpy(p, data, len);
    return p + len;
}

typedef struct {
    bool put;        //  PUT of an LWW value, else GET
    const char *key; //  borrowed, non-empty
    size_t key_len;
    uint64_t ts;          //  PUT: LWW timestamp
    uint32_t writer;      //  PUT: LWW writer id
    const uint8_t *value; //  PUT: value bytes, borrowed
    size_t value_len;
    const char *response_address;
    size_t response_address_len;
    const char *request_id; //  BENCH_ID_LEN characters
} bench_request_t;

//  Bytes s_request_encode writes for req.
static size_t s_request_size(const bench_request_t *req, size_t *tuple_len, size_t *lww_len)
{
    *lww_len = 0;
    *tuple_len = 1 + s_pb_varint_len(req->key_len) + req->key_len;
    if (req->put) {
        if (req->ts)
            *lww_len += 1 + s_pb_varint_len(req->ts);
        if (req->value_len)
            *lww_len += 1 + s_pb_varint_len(req->value_len) + req->value_len;
        if (req->writer)
            *lww_len += 2 + s_pb_varint_len(req->writer);
        *tuple_len += 2; //  lattice_type = LWW
        if (*lww_len)
            *tuple_len += 1 + s_pb_varint_len(*lww_len) + *lww_len;
    }
    return 2 + 1 + s_pb_varint_len(*tuple_len) + *tuple_len + 1 +
           s_pb_varint_len(req->response_address_len) + req->response_address_len + 2 +
           BENCH_ID_LEN;
}

//  Encodes req into buf (at least s_request_size bytes). Returns the length.
static size_t s_request_encode(const bench_request_t *req, uint8_t *buf)
{
    size_t tuple_len, lww_len;
    size_t total = s_request_size(req, &tuple_len, &lww_len);
    uint8_t *p = buf;
    *p++ = 0x08; //  1: type
    *p++ = req->put ? REQUEST_TYPE__PUT : REQUEST_TYPE__GET;
    *p++ = 0x12; //  2: tuples
    p = s_pb_varint(p, tuple_len);
    p = s_pb_bytes(p, 0x0a, req->key, req->key_len); //  KeyTuple 1: key
    if (req->put) {
        *p++ = 0x10; //  KeyTuple 2: lattice_type
        *p++ = LATTICE_TYPE__LWW;
        if (lww_len) {
            *p++ = 0x22; //  KeyTuple 4: payload (an LWWValue)
            p = s_pb_varint(p, lww_len);
            if (req->ts) {
                *p++ = 0x08; //  LWWValue 1: timestamp
                p = s_pb_varint(p, req->ts);
            }
            if (req->value_len) //  LWWValue 2: value
                p = s_pb_bytes(p, 0x12, req->value, req->value_len);
            if (req->writer) {
                *p++ = 0xa0; //  LWWValue 100: writer (two-byte tag)
                *p++ = 0x06;
                p = s_pb_varint(p, req->writer);
            }
        }
    }
    p = s_pb_bytes(p, 0x1a, req->response_address, req->response_address_len); //  3
    p = s_pb_bytes(p, 0x22, req->request_id, BENCH_ID_LEN);                    //  4
    assert((size_t)(p - buf) == total);
    return total;
}

typedef struct {
    const uint8_t *p, *end;
} bench_pb_t;

static bool s_pb_read_varint(bench_pb_t *r, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

//  The next field of a message: 1 with its number and either its varint value (*v) or its
//  bytes (*data, *len; wire type 2); 0 at the end; -1 if malformed. Fixed-width fields are
//  skipped over (returned with *v = 0); groups are refused.
static int s_pb_field(bench_pb_t *r, uint32_t *field, int *wire, uint64_t *v, const uint8_t **data,
                      size_t *len)
{
    if (r->p == r->end)
        return 0;
    uint64_t tag;
    if (!s_pb_read_varint(r, &tag) || tag >> 3 == 0 || tag >> 3 > UINT32_MAX)
        return -1;
    *field = (uint32_t)(tag >> 3);
    *wire = (int)(tag & 7);
    *v = 0;
    switch (*wire) {
    case 0:
        return s_pb_read_varint(r, v) ? 1 : -1;
    case 1:
    case 5: {
        size_t n = *wire == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return -1;
        r->p += n;
        return 1;
    }
    case 2:
        if (!s_pb_read_varint(r, v) || *v > (uint64_t)(r->end - r->p))
            return -1;
        *data = r->p;
        *len = (size_t)*v;
        r->p += *len;
        return 1;
    default:
        return -1;
    }
}

typedef struct {
    const uint8_t *id; //  response_id, borrowed from the message
    size_t id_len;
    uint64_t error; //  KeyResponse.error
    size_t n_tuples;
    uint64_t t_error; //  of the first tuple
    uint64_t t_lattice;
    const uint8_t *t_payload;
    size_t t_payload_len;
} bench_reply_t;

//  Reads what the generator needs from a KeyResponse. 0, or -1 if malformed.
static int s_reply_decode(const uint8_t *data, size_t len, bench_reply_t *out)
{
    memset(out, 0, sizeof *out);
    bench_pb_t r = {data, data + len};
    uint32_t field;
    int wire, rc;
    uint64_t v;
    const uint8_t *d = NULL;
    size_t n = 0;
    while ((rc = s_pb_field(&r, &field, &wire, &v, &d, &n)) == 1) {
        if (field == 3 && wire == 2) {
            out->id = d;
            out->id_len = n;
        } else if (field == 4 && wire == 0)
            out->error = v;
        else if (field == 2 && wire == 2) {
            if (out->n_tuples++)
                continue; //  we send one key: only the first tuple matters
            bench_pb_t t = {d, d + n};
            uint32_t tf;
            int tw, trc;
            const uint8_t *td = NULL;
            size_t tn = 0;
            while ((trc = s_pb_field(&t, &tf, &tw, &v, &td, &tn)) == 1) {
                if (tf == 2 && tw == 0)
                    out->t_lattice = v;
                else if (tf == 3 && tw == 0)
                    out->t_error = v;
                else if (tf == 4 && tw == 2) {
                    out->t_payload = td;
                    out->t_payload_len = tn;
                } else if (tf <= 9 && tw != (tf == 1 || tf == 4 || tf == 7 ? 2 : 0))
                    return -1;
            }
            if (trc < 0)
                return -1;
        } else if ((field == 1 && wire != 0) || (field == 3 && wire != 2) ||
                   (field == 4 && wire != 0) || (field == 2 && wire != 2))
            return -1;
    }
    return rc < 0 ? -1 : 0;
}

//  Checks an LWWValue payload as a client would decode it. True if well formed.
static bool s_lww_check(const uint8_t *data, size_t len)
{
    bench_pb_t r = {data, data + len};
    uint32_t field;
    int wire, rc;
    uint64_t v;
    const uint8_t *d;
    size_t n;
    while ((rc = s_pb_field(&r, &field, &wire, &v, &d, &n)) == 1)
        if ((field == 1 && wire != 0) || (field == 2 && wire != 2) || (field == 100 && wire != 0))
            return false;
    return rc == 0;
}

//  Writes the request id of slot i's request number seq: BENCH_ID_LEN hex digits.
static void s_request_id(char *out, uint32_t i, uint32_t seq)
{
    static const char hex[] = "0123456789abcdef";
    for (int k = 7; k >= 0; k--, i >>= 4, seq >>= 4) {
        out[k] = hex[i & 15];
        out[8 + k] = hex[seq & 15];
    }
}

static bool s_parse_hex32(const uint8_t *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < 8; k++) {
        uint8_t c = s[k];
        uint32_t d = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
                     : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                                            : 16;
        if (d == 16)
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

void bench_codec_test(bool verbose);

void bench_codec_test(bool verbose)
{
    //  @selftest
    cb_rand_t r;
    cb_rand_seed(&r, 7);
    uint8_t *value = cb_malloc(5000), *mine = cb_malloc(20000), *ref = cb_malloc(20000);
    for (size_t b = 0; b < 5000; b++)
        value[b] = (uint8_t)cb_rand_next(&r);
    const size_t sizes[] = {0, 1, 8, 127, 128, 300, 4096, 5000};
    char id[BENCH_ID_LEN + 1] = {0};
    for (int round = 0; round < 2000; round++) {
        //  Requests: byte for byte what protobuf-c packs.
        char key[40], ra[80];
        snprintf(key, sizeof key, "key:%012" PRIu64, cb_rand_below(&r, 1000000));
        snprintf(ra, sizeof ra, "tcp://127.0.0.%d:%d", (int)cb_rand_below(&r, 255),
                 (int)cb_rand_below(&r, 65536));
        s_request_id(id, (uint32_t)cb_rand_next(&r), (uint32_t)cb_rand_next(&r));
        bench_request_t req = {
            .put = round % 2,
            .key = key,
            .key_len = strlen(key),
            .ts = round % 7 ? cb_rand_next(&r) >> cb_rand_below(&r, 64) : 0,
            .writer = round % 5 ? (uint32_t)cb_rand_next(&r) : 0,
            .value = value,
            .value_len = sizes[cb_rand_below(&r, sizeof sizes / sizeof sizes[0])],
            .response_address = ra,
            .response_address_len = strlen(ra),
            .request_id = id,
        };
        size_t tl, ll;
        size_t len = s_request_encode(&req, mine);
        assert(len == s_request_size(&req, &tl, &ll));

        LWWValue lww = LWWVALUE__INIT;
        lww.timestamp = req.ts;
        lww.writer = req.writer;
        lww.value.data = value;
        lww.value.len = req.value_len;
        uint8_t payload[5100];
        KeyTuple tuple = KEY_TUPLE__INIT;
        KeyTuple *tuples[1] = {&tuple};
        KeyRequest kr = KEY_REQUEST__INIT;
        tuple.key = key;
        if (req.put) {
            tuple.lattice_type = LATTICE_TYPE__LWW;
            tuple.payload.len = lwwvalue__pack(&lww, payload);
            tuple.payload.data = payload;
        }
        kr.type = req.put ? REQUEST_TYPE__PUT : REQUEST_TYPE__GET;
        kr.n_tuples = 1;
        kr.tuples = tuples;
        kr.response_address = ra;
        kr.request_id = id;
        size_t ref_len = key_request__pack(&kr, ref);
        assert(ref_len == len && memcmp(ref, mine, len) == 0);

        //  Replies: what protobuf-c packs, with fields we skip, decodes to the same values.
        KeyTuple rt[3];
        KeyTuple *rtp[3] = {&rt[0], &rt[1], &rt[2]};
        KeyResponse resp = KEY_RESPONSE__INIT;
        resp.type = kr.type;
        resp.response_id = id;
        resp.error = (AnnaError)cb_rand_below(&r, 3);
        resp.error_message = round % 3 ? "" : "some reason";
        resp.n_tuples = (size_t)cb_rand_below(&r, 4);
        resp.tuples = rtp;
        for (int t = 0; t < 3; t++) {
            key_tuple__init(&rt[t]);
            rt[t].key = key;
            rt[t].error = (AnnaError)cb_rand_below(&r, 2) * (AnnaError)cb_rand_below(&r, 18);
            rt[t].lattice_type = round % 4 ? LATTICE_TYPE__LWW : LATTICE_TYPE__SET;
            rt[t].payload = tuple.payload;
            rt[t].invalidate = round % 3 == 1;
            rt[t].address_cache_size = (uint32_t)cb_rand_below(&r, 3);
            rt[t].error_message = t ? "x" : "";
        }
        len = key_response__pack(&resp, mine);
        bench_reply_t rep;
        assert(s_reply_decode(mine, len, &rep) == 0);
        assert(rep.id_len == BENCH_ID_LEN && !memcmp(rep.id, id, BENCH_ID_LEN));
        assert(rep.error == (uint64_t)resp.error && rep.n_tuples == resp.n_tuples);
        if (resp.n_tuples) {
            assert(rep.t_error == (uint64_t)rt[0].error);
            assert(rep.t_lattice == (uint64_t)rt[0].lattice_type);
            assert(rep.t_payload_len == rt[0].payload.len);
            assert(!rep.t_payload_len || !memcmp(rep.t_payload, payload, rep.t_payload_len));
            assert(!req.put || s_lww_check(rep.t_payload, rep.t_payload_len));
        }
        //  Damaged replies never crash or read outside the buffer (ASan build).
        for (size_t cut = 0; cut < len && cut < 64; cut++)
            (void)s_reply_decode(mine, cut, &rep);
        mine[cb_rand_below(&r, len)] ^= (uint8_t)(1 + cb_rand_below(&r, 255));
        (void)s_reply_decode(mine, len, &rep);
    }
    uint32_t a, b;
    s_request_id(id, 0xdeadbeef, 42);
    assert(!strcmp(id, "deadbeef0000002a"));
    assert(s_parse_hex32((const uint8_t *)id, &a) && s_parse_hex32((const uint8_t *)id + 8, &b));
    assert(a == 0xdeadbeef && b == 42);
    assert(!s_parse_hex32((const uint8_t *)"0000000g", &a));
    cb_free(value);
    cb_free(mine);
    cb_free(ref);
    //  @end
    if (verbose)
        printf("bench_codec: ok\n");
}

//  ---- generator threads ---------------------------------------------------------------------

typedef struct {
    int64_t start_ns;    //  latency starts here (scheduled time in open loop)
    int64_t deadline_ns; //  timeout
    uint32_t seq;        //  request_id of the request in flight
    uint8_t op;          //  BENCH_OP_*
    bool busy;           //  a request is in flight
    uint8_t pending;     //  --ack all: replicas yet to answer
    int8_t err;          //  --ack all: first error a replica answered, -1 for none
    bool hit;            //  --ack all: a replica returned a value (a GET is a miss if none did)
} bench_slot_t;

//  One phase of the run, the same for every thread (preload, then measure).
typedef struct {
    bool preload; //  PUT keys [key_lo, key_hi) of each thread once, in order
    int64_t start_ns;
    int64_t end_ns; //  stop sending at this time (INT64_MAX: use quota)
    double rate;    //  per thread, requests per second; 0 = closed loop
} bench_phase_t;

typedef struct {
    int id;
    const bench_config_t *cfg;
    const bench_keyspace_t *ks;
    const bench_phase_t *phase;
    pthread_t thread;

    void *pull;        //  all responses to this thread
    char endpoint[64]; //  its address, sent as response_address
    size_t endpoint_len;
    int pull_fd;             //  ZMQ_FD of pull: readable when its events may have changed
    void **push;             //  one per keyspace address, connected
    bench_slot_t *slots;     //  slots_cap of them; n_slots in use in this phase
    uint32_t n_slots;        //  clients * pipeline of this thread (preload: at least 64)
    uint32_t n_client_slots; //  clients * pipeline of this thread
    uint32_t slots_cap;
    uint32_t *idle; //  stack of slot indexes with nothing in flight
    uint32_t n_idle;
    uint32_t n_busy;

    cb_rand_t rand;
    uint32_t writer; //  LWW writer id
    uint8_t *value;  //  value_size bytes, the PUT payload
    uint8_t *buf;    //  packing buffer
    size_t buf_cap;

    uint64_t quota;            //  requests this thread may still send (UINT64_MAX: no limit)
    uint64_t key_next, key_hi; //  preload: next key, end of this thread's range
    int64_t next_due_ns;       //  open loop: when the next request is due
    int64_t next_scan_ns;      //  next look for timed-out slots
    bool send_blocked;         //  a send failed: wait for the next scan before retrying
    int64_t last_ns;           //  time of the last answer or timeout

    //  Totals of the phase: touched only by this thread until it is joined.
    bench_hist_t *hist[BENCH_OP_COUNT];
    bench_counts_t counts;

    //  The current epoch: the main thread takes and resets it under lock.
    pthread_mutex_t lock;
    bench_hist_t *epoch_hist;
    bench_counts_t epoch_counts;
    atomic_bool done;
} bench_thread_t;

//  Set by SIGINT/SIGTERM: stop sending, finish the requests in flight, print what we have.
static atomic_bool s_interrupted;

static void s_on_signal(int sig)
{
    (void)sig;
    atomic_store(&s_interrupted, true);
}

static bool s_can_send(const bench_thread_t *self, int64_t now)
{
    if (atomic_load_explicit(&s_interrupted, memory_order_relaxed))
        return false;
    if (self->phase->preload)
        return self->key_next < self->key_hi;
    return now < self->phase->end_ns && self->quota > 0;
}

static void s_slot_free(bench_thread_t *self, uint32_t i)
{
    self->slots[i].busy = false;
    self->n_busy--;
    self->idle[self->n_idle++] = i;
}

static uint8_t *s_buf_reserve(bench_thread_t *self, size_t size)
{
    if (size > self->buf_cap) {
        self->buf_cap = size * 2;
        self->buf = cb_realloc(self->buf, self->buf_cap);
    }
    return self->buf;
}

//  Every function below that changes slots or statistics runs with self->lock held: the main
//  thread reads the epoch statistics under it. The lock is taken once per batch of answers.

//  Sends one request from slot i. On failure the slot stays idle and sending pauses until the
//  next timeout scan (a full queue means the server is not reading: don't spin on it).
static void s_slot_send(bench_thread_t *self, uint32_t i, int64_t start_ns)
{
    const bench_config_t *cfg = self->cfg;
    const bench_keyspace_t *ks = self->ks;
    bench_slot_t *slot = &self->slots[i];
    uint64_t key;
    bool get;
    if (self->phase->preload) {
        key = self->key_next++;
        get = false;
    } else {
        key = cb_zipf_next(&ks->zipf, &self->rand);
        get = cfg->read_ratio >= 1.0 || cb_rand_unit(&self->rand) < cfg->read_ratio;
        if (self->quota != UINT64_MAX)
            self->quota--;
    }
    const bench_replicas_t *set = &ks->sets[ks->set_of[key]];

    char request_id[BENCH_ID_LEN];
    s_request_id(request_id, i, ++slot->seq);
    const char *name = s_key_name(ks, key);
    bench_request_t req = {
        .put = !get,
        .key = name,
        .key_len = BENCH_KEY_LEN,
        .ts = get ? 0 : cb_clock_lww_now(),
        .writer = self->writer,
        .value = self->value,
        .value_len = cfg->value_size,
        .response_address = self->endpoint,
        .response_address_len = self->endpoint_len,
        .request_id = request_id,
    };
    size_t tuple_len, lww_len;
    uint8_t *buf = s_buf_reserve(self, s_request_size(&req, &tuple_len, &lww_len));
    size_t req_len = s_request_encode(&req, buf);

    slot->op = get ? BENCH_OP_GET : BENCH_OP_PUT;
    //  ONE: a replica at random. ALL: the same request (same id) to each replica; the answers
    //  are counted in s_thread_handle. A send that fails part way leaves the slot idle: the
    //  answers of the replicas that got it come back with an old id and count as late.
    uint8_t first = 0, count = 1;
    if (cfg->ack_all)
        count = set->n;
    else if (set->n > 1)
        first = (uint8_t)cb_rand_below(&self->rand, set->n);
    int sent = 0;
    for (uint8_t r = first; r < first + count; r++, sent++)
        if (zmq_send(self->push[set->ids[r]], buf, req_len, ZMQ_DONTWAIT) < 0)
            break;
    if (sent < count) {
        self->counts.errors[BENCH_ERR_SEND]++;
        self->epoch_counts.errors[BENCH_ERR_SEND]++;
        self->idle[self->n_idle++] = i;
        self->send_blocked = true;
        if (self->phase->preload)
            self->key_next--; //  that key is sent again after the pause
        return;
    }
    slot->busy = true;
    slot->pending = count;
    slot->err = -1;
    slot->hit = false;
    slot->start_ns = start_ns;
    slot->deadline_ns = s_now_ns() + (int64_t)cfg->timeout_ms * 1000000;
    self->n_busy++;
}

//  Sends from idle slots while the phase allows: all of them in closed loop, those whose turn
//  has come in open loop.
static void s_thread_pump(bench_thread_t *self, int64_t now)
{
    if (self->phase->rate > 0 && !self->phase->preload) {
        int64_t interval = (int64_t)(1e9 / self->phase->rate);
        while (self->n_idle && !self->send_blocked && self->next_due_ns <= now &&
               s_can_send(self, self->next_due_ns)) {
            uint32_t i = self->idle[--self->n_idle];
            s_slot_send(self, i, self->next_due_ns);
            self->next_due_ns += interval;
        }
        return;
    }
    while (self->n_idle && !self->send_blocked && s_can_send(self, now)) {
        uint32_t i = self->idle[--self->n_idle];
        s_slot_send(self, i, now);
    }
}

//  Records the outcome of slot i's request (err < 0: answered without error).
static void s_thread_record(bench_thread_t *self, uint32_t i, int err, bool miss, int64_t now)
{
    bench_slot_t *slot = &self->slots[i];
    if (err == BENCH_ERR_TIMEOUT) {
        self->counts.errors[err]++;
        self->epoch_counts.errors[err]++;
    } else {
        uint64_t ns = (uint64_t)(now - slot->start_ns);
        bench_hist_record(self->hist[slot->op], ns);
        bench_hist_record(self->epoch_hist, ns);
        self->counts.ops[slot->op]++;
        self->epoch_counts.ops[slot->op]++;
        if (err >= 0) {
            self->counts.errors[err]++;
            self->epoch_counts.errors[err]++;
        }
        if (miss) {
            self->counts.misses++;
            self->epoch_counts.misses++;
        }
    }
    self->last_ns = now;
    s_slot_free(self, i);
}

static int s_anna_error(uint64_t e)
{
    switch (e) {
    case ANNA_ERROR__NO_ERROR:
        return -1;
    case ANNA_ERROR__WRONG_THREAD:
        return BENCH_ERR_WRONG_THREAD;
    case ANNA_ERROR__TIMEOUT:
        return BENCH_ERR_SERVER_TIMEOUT;
    case ANNA_ERROR__LATTICE:
        return BENCH_ERR_LATTICE;
    case ANNA_ERROR__NO_SERVERS:
        return BENCH_ERR_NO_SERVERS;
    case ANNA_ERROR__BAD_REQUEST:
        return BENCH_ERR_BAD_REQUEST;
    case ANNA_ERROR__TOO_LARGE:
        return BENCH_ERR_TOO_LARGE;
    default:
        return BENCH_ERR_OTHER;
    }
}

//  Handles one KeyResponse. A reply we cannot match to a request in flight is counted as late
//  (its request already timed out) or as a decode error; it never frees a slot.
static void s_thread_handle(bench_thread_t *self, const uint8_t *data, size_t len, int64_t now)
{
    bench_reply_t reply;
    uint32_t i, seq;
    if (s_reply_decode(data, len, &reply) < 0 || reply.id_len != BENCH_ID_LEN ||
        !s_parse_hex32(reply.id, &i) || !s_parse_hex32(reply.id + 8, &seq) ||
        i >= self->slots_cap) {
        self->counts.errors[BENCH_ERR_DECODE]++;
        self->epoch_counts.errors[BENCH_ERR_DECODE]++;
        return;
    }
    bench_slot_t *slot = &self->slots[i];
    if (!slot->busy || slot->seq != seq) {
        self->counts.late++;
        self->epoch_counts.late++;
        return;
    }
    int err = s_anna_error(reply.error);
    bool miss = false;
    if (err < 0 && reply.n_tuples < 1)
        err = BENCH_ERR_DECODE;
    if (err < 0) {
        if (reply.t_error == ANNA_ERROR__KEY_DNE && slot->op == BENCH_OP_GET)
            miss = true;
        else
            err = s_anna_error(reply.t_error);
        //  A GET must bring back an LWW value, decodable as a real client would decode it.
        if (err < 0 && !miss && slot->op == BENCH_OP_GET &&
            (reply.t_lattice != LATTICE_TYPE__LWW ||
             !s_lww_check(reply.t_payload, reply.t_payload_len)))
            err = BENCH_ERR_DECODE;
    }
    if (self->cfg->ack_all) {
        //  Done when every replica answered: failed if one failed, a miss if none held it.
        if (err >= 0 && slot->err < 0)
            slot->err = (int8_t)err;
        slot->hit |= err < 0 && !miss;
        if (--slot->pending > 0)
            return;
        err = slot->err;
        miss = err < 0 && !slot->hit;
    }
    s_thread_record(self, i, err, miss, now);
}

//  Timeouts: every slot whose deadline passed is freed (and so sends a new request).
static void s_thread_scan(bench_thread_t *self, int64_t now)
{
    for (uint32_t i = 0; i < self->n_slots; i++)
        if (self->slots[i].busy && self->slots[i].deadline_ns <= now)
            s_thread_record(self, i, BENCH_ERR_TIMEOUT, false, now);
    self->send_blocked = false;
    //  Scan often enough that a timeout is seen within ~5% of --timeout (at most every 50 ms).
    int64_t every = (int64_t)self->cfg->timeout_ms * 1000000 / 20;
    if (every > 50000000)
        every = 50000000;
    if (every < 1000000)
        every = 1000000;
    self->next_scan_ns = now + every;
}

//  Sleeps until an answer may be waiting or until wake_ns. zmq_poll() would round the timeout
//  to milliseconds, which would turn an open-loop schedule into 1 ms bursts; so we wait on the
//  socket's ZMQ_FD with a nanosecond timeout instead. That descriptor only says "look at
//  ZMQ_EVENTS", and reading ZMQ_EVENTS re-arms it: so look first, sleep only if nothing is
//  there. A missed edge costs at most the time to wake_ns (the timeout scan bounds it), never a
//  hang. 0, or -1 if the socket is gone (context terminated).
static int s_thread_wait(bench_thread_t *self, int64_t wake_ns, int64_t now)
{
    uint32_t events = 0;
    size_t size = sizeof events;
    if (zmq_getsockopt(self->pull, ZMQ_EVENTS, &events, &size) < 0)
        return zmq_errno() == EINTR ? 0 : -1;
    if ((events & ZMQ_POLLIN) || wake_ns <= now)
        return 0;
    int64_t ns = wake_ns - now;
    if (ns > 1000000000)
        ns = 1000000000;
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    struct pollfd pfd = {.fd = self->pull_fd, .events = POLLIN};
    ppoll(&pfd, 1, &ts, NULL);
    return 0;
}

static void *s_thread_main(void *arg)
{
    bench_thread_t *self = arg;
    const bench_phase_t *phase = self->phase;
    //  Sleep as long as asked, not up to 50 us more (the default timer slack): open loop.
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    int64_t now = s_now_ns();
    self->next_due_ns = phase->start_ns;
    self->send_blocked = false;
    self->last_ns = now;
    pthread_mutex_lock(&self->lock);
    s_thread_scan(self, now);
    s_thread_pump(self, now);
    pthread_mutex_unlock(&self->lock);

    zmq_msg_t msg;
    zmq_msg_init(&msg);
    for (;;) {
        now = s_now_ns();
        if (self->n_busy == 0 && !s_can_send(self, now))
            break;
        int64_t wake = self->next_scan_ns;
        if (s_can_send(self, now)) {
            if (phase->end_ns < wake)
                wake = phase->end_ns;
            if (phase->rate > 0 && self->n_idle && self->next_due_ns < wake)
                wake = self->next_due_ns;
        }
        if (s_thread_wait(self, wake, now) < 0)
            break;

        pthread_mutex_lock(&self->lock);
        for (int n = 0; n < BENCH_DRAIN_MAX; n++) {
            if (zmq_msg_recv(&msg, self->pull, ZMQ_DONTWAIT) < 0)
                break;
            now = s_now_ns();
            s_thread_handle(self, zmq_msg_data(&msg), zmq_msg_size(&msg), now);
            s_thread_pump(self, now);
        }
        now = s_now_ns();
        if (now >= self->next_scan_ns)
            s_thread_scan(self, now);
        s_thread_pump(self, now);
        pthread_mutex_unlock(&self->lock);
    }
    zmq_msg_close(&msg);
    atomic_store(&self->done, true);
    return NULL;
}

static int s_thread_init(bench_thread_t *self, int id, void *ctx, const bench_config_t *cfg,
                         const bench_keyspace_t *ks)
{
    memset(self, 0, sizeof *self);
    self->id = id;
    self->cfg = cfg;
    self->ks = ks;
    pthread_mutex_init(&self->lock, NULL);
    for (int o = 0; o < BENCH_OP_COUNT; o++)
        self->hist[o] = cb_malloc(sizeof(bench_hist_t));
    self->epoch_hist = cb_malloc(sizeof(bench_hist_t));
    bench_hist_reset(self->epoch_hist);

    //  Clients are spread evenly; each has `pipeline` slots.
    int clients = cfg->clients / cfg->threads + (id < cfg->clients % cfg->threads);
    self->n_client_slots = (uint32_t)clients * (uint32_t)cfg->pipeline;
    self->slots_cap =
        self->n_client_slots > BENCH_PRELOAD_SLOTS ? self->n_client_slots : BENCH_PRELOAD_SLOTS;
    self->slots = cb_calloc(self->slots_cap, sizeof *self->slots);
    self->idle = cb_calloc(self->slots_cap, sizeof *self->idle);

    cb_rand_seed(&self->rand, cfg->seed * 1000003u + (uint64_t)id);
    self->writer = (uint32_t)cb_rand_next(&self->rand) | 1;
    self->value = cb_malloc(cfg->value_size ? cfg->value_size : 1);
    for (size_t b = 0; b < cfg->value_size; b++)
        self->value[b] = (uint8_t)('a' + cb_rand_below(&self->rand, 26));

    int linger = 0, hwm = 100000;
    self->pull = zmq_socket(ctx, ZMQ_PULL);
    zmq_setsockopt(self->pull, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    char bind[80];
    snprintf(bind, sizeof bind, "tcp://%s:*", cfg->bind_ip);
    size_t len = sizeof self->endpoint;
    if (zmq_bind(self->pull, bind) < 0 ||
        zmq_getsockopt(self->pull, ZMQ_LAST_ENDPOINT, self->endpoint, &len) < 0) {
        fprintf(stderr, "anna-bench: cannot bind %s: %s\n", bind, zmq_strerror(zmq_errno()));
        return -1;
    }
    self->endpoint_len = strlen(self->endpoint);
    size_t fd_size = sizeof self->pull_fd;
    if (zmq_getsockopt(self->pull, ZMQ_FD, &self->pull_fd, &fd_size) < 0) {
        fprintf(stderr, "anna-bench: no ZMQ_FD: %s\n", zmq_strerror(zmq_errno()));
        return -1;
    }
    self->push = cb_calloc(ks->n_addrs, sizeof *self->push);
    for (size_t a = 0; a < ks->n_addrs; a++) {
        self->push[a] = zmq_socket(ctx, ZMQ_PUSH);
        zmq_setsockopt(self->push[a], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(self->push[a], ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (zmq_connect(self->push[a], ks->addrs[a]) < 0) {
            fprintf(stderr, "anna-bench: cannot connect to %s: %s\n", ks->addrs[a],
                    zmq_strerror(zmq_errno()));
            return -1;
        }
    }
    return 0;
}

static void s_thread_fini(bench_thread_t *self)
{
    if (self->pull)
        zmq_close(self->pull);
    for (size_t a = 0; self->push && a < self->ks->n_addrs; a++)
        if (self->push[a])
            zmq_close(self->push[a]);
    cb_free(self->push);
    cb_free(self->slots);
    cb_free(self->idle);
    cb_free(self->value);
    cb_free(self->buf);
    for (int o = 0; o < BENCH_OP_COUNT; o++)
        cb_free(self->hist[o]);
    cb_free(self->epoch_hist);
    pthread_mutex_destroy(&self->lock);
}

//  Readies a thread for a phase: statistics zeroed, every slot idle. Sequence numbers carry
//  on, so that a late answer from an earlier phase is still recognised as late.
static void s_thread_prepare(bench_thread_t *self, const bench_phase_t *phase, uint64_t quota,
                             uint64_t key_lo, uint64_t key_hi)
{
    self->phase = phase;
    self->quota = quota;
    self->key_next = key_lo;
    self->key_hi = key_hi;
    for (int o = 0; o < BENCH_OP_COUNT; o++)
        bench_hist_reset(self->hist[o]);
    bench_hist_reset(self->epoch_hist);
    memset(&self->counts, 0, sizeof self->counts);
    memset(&self->epoch_counts, 0, sizeof self->epoch_counts);
    //  The preload is not measured: it uses more slots, so that it is quick even with -c 1.
    self->n_slots = phase->preload ? self->slots_cap : self->n_client_slots;
    self->n_idle = 0;
    self->n_busy = 0;
    for (uint32_t i = 0; i < self->slots_cap; i++)
        self->slots[i].busy = false;
    for (uint32_t i = self->n_slots; i-- > 0;)
        self->idle[self->n_idle++] = i;
    atomic_store(&self->done, false);
}

//  ---- key space and addresses ---------------------------------------------------------------

static uint16_t s_keyspace_addr(bench_keyspace_t *ks, const char *addr)
{
    for (size_t a = 0; a < ks->n_addrs; a++)
        if (!strcmp(ks->addrs[a], addr))
            return (uint16_t)a;
    ks->addrs = cb_realloc(ks->addrs, (ks->n_addrs + 1) * sizeof *ks->addrs);
    ks->addrs[ks->n_addrs] = cb_strdup(addr);
    return (uint16_t)ks->n_addrs++;
}

static uint32_t s_keyspace_set(bench_keyspace_t *ks, const bench_replicas_t *set)
{
    for (size_t s = 0; s < ks->n_sets; s++)
        if (ks->sets[s].n == set->n &&
            !memcmp(ks->sets[s].ids, set->ids, set->n * sizeof set->ids[0]))
            return (uint32_t)s;
    ks->sets = cb_realloc(ks->sets, (ks->n_sets + 1) * sizeof *ks->sets);
    ks->sets[ks->n_sets] = *set;
    return (uint32_t)ks->n_sets++;
}

//  "key:000000000042" -> 42; false for anything else or out of range.
static bool s_key_parse(const char *name, uint64_t n, uint64_t *out)
{
    if (strlen(name) != BENCH_KEY_LEN || strncmp(name, "key:", 4))
        return false;
    uint64_t k = 0;
    for (int i = 4; i < BENCH_KEY_LEN; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        k = k * 10 + (uint64_t)(name[i] - '0');
    }
    *out = k;
    return k < n;
}

//  Waits for the KeyAddressResponse with request id `id`. Caller owns result; NULL on timeout.
static KeyAddressResponse *s_routing_wait(void *pull, const char *id, int64_t deadline_ns)
{
    for (;;) {
        int64_t now = s_now_ns();
        if (now >= deadline_ns)
            return NULL;
        zmq_pollitem_t items[] = {{pull, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 1, s_poll_ms(deadline_ns, now)) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        KeyAddressResponse *resp =
            key_address_response__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (resp && !strcmp(resp->response_id, id))
            return resp;
        if (resp)
            key_address_response__free_unpacked(resp, NULL); //  stale answer of a retry
    }
}

//  Asks the routing tier for the owners of keys [lo, hi): first routing address `first` of
//  the list (batches are spread over the list), then the next ones. An address that does
//  not answer in time is given up for the rest of the set-up (*dead): after one try when
//  there are others, after three when it is the only one (a request lost while connecting).
//  NO_SERVERS (a node still starting) is waited out for up to 10 s. 0 or -1 (message printed).
static int s_keyspace_resolve_batch(bench_keyspace_t *ks, const bench_config_t *cfg, void **push,
                                    bool *dead, int first, void *pull, const char *endpoint,
                                    uint64_t lo, uint64_t hi)
{
    char **names = cb_malloc((size_t)(hi - lo) * sizeof *names);
    for (uint64_t k = lo; k < hi; k++)
        names[k - lo] = (char *)s_key_name(ks, k);
    char id[32];
    snprintf(id, sizeof id, "addr-%" PRIu64, lo);
    KeyAddressRequest req = KEY_ADDRESS_REQUEST__INIT;
    req.response_address = (char *)endpoint;
    req.n_keys = (size_t)(hi - lo);
    req.keys = names;
    req.request_id = id;
    size_t len = key_address_request__get_packed_size(&req);
    uint8_t *buf = cb_malloc(len);
    key_address_request__pack(&req, buf);
    cb_free(names);

    int wait_ms = cfg->timeout_ms < 1000 ? 1000 : cfg->timeout_ms;
    int64_t give_up = s_now_ns() + 10 * (int64_t)1000000000;
    int tries_each = cfg->n_routing == 1 ? 3 : 1;
    KeyAddressResponse *resp = NULL;
    for (int k = 0; k < cfg->n_routing && !resp; k++) {
        int r = (first + k) % cfg->n_routing;
        for (int attempt = 0; attempt < tries_each && !dead[r]; attempt++) {
            if (zmq_send(push[r], buf, len, ZMQ_DONTWAIT) < 0)
                break;
            resp = s_routing_wait(pull, id, s_now_ns() + (int64_t)wait_ms * 1000000);
            if (resp && resp->error == ANNA_ERROR__NO_SERVERS && s_now_ns() < give_up) {
                key_address_response__free_unpacked(resp, NULL);
                resp = NULL;
                s_sleep_ns(100000000);
                attempt--;
                continue;
            }
            if (resp)
                break;
        }
        if (!resp && !dead[r]) {
            dead[r] = true;
            if (cfg->n_routing > 1)
                fprintf(stderr, "anna-bench: no answer from the routing tier at %s; trying "
                        "the next address\n", cfg->routing_list[r]);
        }
    }
    cb_free(buf);
    if (!resp) {
        fprintf(stderr, "anna-bench: no answer from the routing tier at %s\n", cfg->routing);
        return -1;
    }
    if (resp->error != ANNA_ERROR__NO_ERROR) {
        fprintf(stderr, "anna-bench: routing tier answered error %d\n", (int)resp->error);
        key_address_response__free_unpacked(resp, NULL);
        return -1;
    }
    for (size_t a = 0; a < resp->n_addresses; a++) {
        const KeyAddressResponse__KeyAddress *ka = resp->addresses[a];
        uint64_t k;
        if (!s_key_parse(ka->key, ks->n, &k) || k < lo || k >= hi || ka->n_ips == 0)
            continue;
        bench_replicas_t set = {0};
        for (size_t r = 0; r < ka->n_ips && set.n < BENCH_MAX_REPLICAS; r++)
            set.ids[set.n++] = s_keyspace_addr(ks, ka->ips[r]);
        ks->set_of[k] = s_keyspace_set(ks, &set);
    }
    key_address_response__free_unpacked(resp, NULL);
    for (uint64_t k = lo; k < hi; k++)
        if (ks->set_of[k] == UINT32_MAX) {
            fprintf(stderr, "anna-bench: routing tier gave no address for %s\n", s_key_name(ks, k));
            return -1;
        }
    if (ks->n_addrs > UINT16_MAX) {
        fprintf(stderr, "anna-bench: too many server addresses\n");
        return -1;
    }
    return 0;
}

static int s_keyspace_init(bench_keyspace_t *ks, const bench_config_t *cfg, void *ctx)
{
    memset(ks, 0, sizeof *ks);
    ks->n = cfg->keys;
    ks->names = cb_malloc((size_t)ks->n * (BENCH_KEY_LEN + 1));
    ks->set_of = cb_malloc((size_t)ks->n * sizeof *ks->set_of);
    for (uint64_t k = 0; k < ks->n; k++) {
        char *name = ks->names + k * (BENCH_KEY_LEN + 1);
        memcpy(name, "key:", 4);
        uint64_t rest = k; //  12 digits (keys < 10^12)
        for (int i = BENCH_KEY_LEN - 1; i >= 4; i--, rest /= 10)
            name[i] = (char)('0' + rest % 10);
        name[BENCH_KEY_LEN] = '\0';
        ks->set_of[k] = UINT32_MAX;
    }
    cb_zipf_init(&ks->zipf, ks->n, cfg->zipf);

    int linger = 0;
    void *push[BENCH_MAX_ROUTING] = {NULL};
    bool dead[BENCH_MAX_ROUTING] = {false};
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    zmq_setsockopt(pull, ZMQ_LINGER, &linger, sizeof linger);
    char bind[80], endpoint[64];
    snprintf(bind, sizeof bind, "tcp://%s:*", cfg->bind_ip);
    size_t len = sizeof endpoint;
    int rc = 0;
    for (int r = 0; r < cfg->n_routing && rc == 0; r++) {
        push[r] = zmq_socket(ctx, ZMQ_PUSH);
        zmq_setsockopt(push[r], ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_connect(push[r], cfg->routing_list[r]) < 0) {
            fprintf(stderr, "anna-bench: bad routing address %s: %s\n", cfg->routing_list[r],
                    zmq_strerror(zmq_errno()));
            rc = -1;
        }
    }
    if (rc == 0 && (zmq_bind(pull, bind) < 0 ||
                    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, endpoint, &len) < 0)) {
        fprintf(stderr, "anna-bench: cannot bind %s: %s\n", bind, zmq_strerror(zmq_errno()));
        rc = -1;
    }
    for (uint64_t lo = 0, b = 0; lo < ks->n && rc == 0; lo += BENCH_ADDR_BATCH, b++) {
        uint64_t hi = lo + BENCH_ADDR_BATCH < ks->n ? lo + BENCH_ADDR_BATCH : ks->n;
        rc = s_keyspace_resolve_batch(ks, cfg, push, dead, (int)(b % (uint64_t)cfg->n_routing),
                                      pull, endpoint, lo, hi);
    }
    for (int r = 0; r < cfg->n_routing; r++)
        if (push[r])
            zmq_close(push[r]);
    zmq_close(pull);
    return rc;
}

static void s_keyspace_fini(bench_keyspace_t *ks)
{
    for (size_t a = 0; a < ks->n_addrs; a++)
        cb_free(ks->addrs[a]);
    cb_free(ks->addrs);
    cb_free(ks->sets);
    cb_free(ks->names);
    cb_free(ks->set_of);
}

//  ---- running a phase, epochs ---------------------------------------------------------------

typedef struct {
    double t_s; //  end of the epoch, seconds since the start
    double ops_per_s;
    uint64_t p50_ns, p99_ns;
    uint64_t errors;
} bench_epoch_t;

typedef struct {
    bench_epoch_t *items;
    size_t len;
    size_t cap;
} bench_epochs_t;

static void s_fmt_latency(char *buf, size_t size, uint64_t ns)
{
    double us = (double)ns / 1000.0;
    if (us < 10)
        snprintf(buf, size, "%.1f us", us);
    else if (us < 1000)
        snprintf(buf, size, "%.0f us", us);
    else if (us < 10000)
        snprintf(buf, size, "%.2f ms", us / 1000);
    else if (us < 1000000)
        snprintf(buf, size, "%.1f ms", us / 1000);
    else
        snprintf(buf, size, "%.2f s", us / 1e6);
}

//  Takes every thread's epoch statistics (resetting them) and prints one progress line.
static void s_epoch_report(bench_thread_t *threads, int n, bench_hist_t *agg, int number,
                           double t_s, double len_s, bench_epochs_t *epochs)
{
    bench_counts_t counts = {0};
    bench_hist_reset(agg);
    for (int t = 0; t < n; t++) {
        pthread_mutex_lock(&threads[t].lock);
        bench_hist_merge(agg, threads[t].epoch_hist);
        s_counts_add(&counts, &threads[t].epoch_counts);
        bench_hist_reset(threads[t].epoch_hist);
        memset(&threads[t].epoch_counts, 0, sizeof threads[t].epoch_counts);
        pthread_mutex_unlock(&threads[t].lock);
    }
    bench_epoch_t e = {
        .t_s = t_s,
        .ops_per_s = (double)(counts.ops[0] + counts.ops[1]) / len_s,
        .p50_ns = bench_hist_percentile(agg, 50),
        .p99_ns = bench_hist_percentile(agg, 99),
        .errors = s_counts_errors(&counts),
    };
    if (epochs->len == epochs->cap) {
        epochs->cap = epochs->cap ? epochs->cap * 2 : 64;
        epochs->items = cb_realloc(epochs->items, epochs->cap * sizeof *epochs->items);
    }
    epochs->items[epochs->len++] = e;
    char p50[32] = "-", p99[32] = "-";
    if (agg->n) {
        s_fmt_latency(p50, sizeof p50, e.p50_ns);
        s_fmt_latency(p99, sizeof p99, e.p99_ns);
    }
    printf("epoch %d: %.0f ops/s, p50 %s, p99 %s, errors %" PRIu64, number, e.ops_per_s, p50, p99,
           e.errors);
    if (counts.errors[BENCH_ERR_TIMEOUT])
        printf(" (timeouts %" PRIu64 ")", counts.errors[BENCH_ERR_TIMEOUT]);
    printf("\n");
    fflush(stdout);
}

//  Runs one phase on every thread and waits for them; prints epoch lines when epochs != NULL.
//  Returns 0, or -1 if a thread could not be started.
static int s_phase_run(bench_thread_t *threads, int n, const bench_config_t *cfg,
                       bench_epochs_t *epochs)
{
    int started = 0;
    for (; started < n; started++)
        if (pthread_create(&threads[started].thread, NULL, s_thread_main, &threads[started])) {
            fprintf(stderr, "anna-bench: cannot start a thread\n");
            break;
        }
    if (epochs && cfg->epoch_s > 0 && started == n) {
        bench_hist_t *agg = cb_malloc(sizeof *agg);
        int64_t start = threads[0].phase->start_ns;
        int64_t len = (int64_t)(cfg->epoch_s * 1e9);
        int64_t next = start + len;
        for (int number = 1;;) {
            int64_t now = s_now_ns();
            if (now >= next) {
                s_epoch_report(threads, n, agg, number++, (double)(next - start) / 1e9,
                               (double)len / 1e9, epochs);
                next += len;
                continue;
            }
            bool all_done = true;
            for (int t = 0; t < n; t++)
                all_done &= atomic_load(&threads[t].done);
            if (all_done)
                break;
            //  Short naps, so that the end of the run is seen soon.
            s_sleep_ns(next - now < 20000000 ? next - now : 20000000);
        }
        cb_free(agg);
    }
    for (int t = 0; t < started; t++)
        pthread_join(threads[t].thread, NULL);
    return started == n ? 0 : -1;
}

//  ---- results -------------------------------------------------------------------------------

typedef struct {
    double elapsed_s;
    bench_hist_t *hist[BENCH_OP_COUNT + 1]; //  GET, PUT, ALL
    bench_counts_t counts;
} bench_result_t;

static void s_result_collect(bench_result_t *res, bench_thread_t *threads, int n, int64_t start_ns)
{
    for (int o = 0; o <= BENCH_OP_COUNT; o++) {
        res->hist[o] = cb_malloc(sizeof(bench_hist_t));
        bench_hist_reset(res->hist[o]);
    }
    memset(&res->counts, 0, sizeof res->counts);
    int64_t last = start_ns;
    for (int t = 0; t < n; t++) {
        for (int o = 0; o < BENCH_OP_COUNT; o++) {
            bench_hist_merge(res->hist[o], threads[t].hist[o]);
            bench_hist_merge(res->hist[BENCH_OP_COUNT], threads[t].hist[o]);
        }
        s_counts_add(&res->counts, &threads[t].counts);
        if (threads[t].last_ns > last)
            last = threads[t].last_ns;
    }
    res->elapsed_s = (double)(last - start_ns) / 1e9;
    if (res->elapsed_s <= 0)
        res->elapsed_s = 1e-9;
}

static void s_result_fini(bench_result_t *res)
{
    for (int o = 0; o <= BENCH_OP_COUNT; o++)
        cb_free(res->hist[o]);
}

static const char *s_row_name(int o)
{
    return o == BENCH_OP_COUNT ? "ALL" : s_op_names[o];
}

static void s_result_print(const bench_result_t *res)
{
    const bench_hist_t *all = res->hist[BENCH_OP_COUNT];
    printf("result: %" PRIu64 " ops in %.2f s = %.0f ops/s", all->n, res->elapsed_s,
           (double)all->n / res->elapsed_s);
    for (int o = 0; o < BENCH_OP_COUNT; o++)
        if (res->hist[o]->n)
            printf(", %s %.0f/s", s_op_names[o], (double)res->hist[o]->n / res->elapsed_s);
    printf("\n%-8s %10s %10s %10s %10s %10s %10s\n", "latency", "mean", "p50", "p90", "p99",
           "p99.9", "max");
    for (int o = 0; o <= BENCH_OP_COUNT; o++) {
        const bench_hist_t *h = res->hist[o];
        if (!h->n || (o == BENCH_OP_COUNT && (!res->hist[0]->n || !res->hist[1]->n)))
            continue; //  ALL only when it differs from the one op that ran
        char c[6][32];
        s_fmt_latency(c[0], sizeof c[0], (uint64_t)bench_hist_mean(h));
        s_fmt_latency(c[1], sizeof c[1], bench_hist_percentile(h, 50));
        s_fmt_latency(c[2], sizeof c[2], bench_hist_percentile(h, 90));
        s_fmt_latency(c[3], sizeof c[3], bench_hist_percentile(h, 99));
        s_fmt_latency(c[4], sizeof c[4], bench_hist_percentile(h, 99.9));
        s_fmt_latency(c[5], sizeof c[5], h->max);
        printf("  %-6s %10s %10s %10s %10s %10s %10s\n", s_row_name(o), c[0], c[1], c[2], c[3],
               c[4], c[5]);
    }
    const bench_counts_t *c = &res->counts;
    printf("errors %" PRIu64, s_counts_errors(c));
    bool first = true;
    for (int e = 0; e < BENCH_ERR_COUNT; e++)
        if (c->errors[e]) {
            printf("%s%s %" PRIu64, first ? " (" : ", ", s_err_names[e], c->errors[e]);
            first = false;
        }
    printf("%s, misses %" PRIu64 ", late answers %" PRIu64 "\n", first ? "" : ")", c->misses,
           c->late);
    fflush(stdout);
}

//  Writes one JSON string (labels are user text).
static void s_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static double s_us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static int s_result_csv(const bench_result_t *res, const bench_config_t *cfg)
{
    FILE *f = fopen(cfg->csv, "a");
    if (!f) {
        fprintf(stderr, "anna-bench: cannot write %s: %s\n", cfg->csv, strerror(errno));
        return -1;
    }
    if (ftell(f) == 0)
        fprintf(f, "label,op,clients,threads,pipeline,keys,value_size,zipf,read_ratio,rate,"
                   "elapsed_s,ops,ops_per_s,mean_us,p50_us,p90_us,p99_us,p999_us,max_us,"
                   "errors,timeouts,misses\n");
    for (int o = BENCH_OP_COUNT; o >= 0; o--) {
        const bench_hist_t *h = res->hist[o];
        if (o < BENCH_OP_COUNT && !h->n)
            continue;
        //  Errors and timeouts are per run, not per op: given on the ALL row only.
        bool all = o == BENCH_OP_COUNT;
        fprintf(f,
                "%s,%s,%d,%d,%d,%" PRIu64 ",%zu,%g,%g,%g,%.3f,%" PRIu64
                ",%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n",
                cfg->label, s_row_name(o), cfg->clients, cfg->threads, cfg->pipeline, cfg->keys,
                cfg->value_size, cfg->zipf, cfg->read_ratio, cfg->rate, res->elapsed_s, h->n,
                (double)h->n / res->elapsed_s, bench_hist_mean(h) / 1000.0,
                s_us(bench_hist_percentile(h, 50)), s_us(bench_hist_percentile(h, 90)),
                s_us(bench_hist_percentile(h, 99)), s_us(bench_hist_percentile(h, 99.9)),
                s_us(h->max), all ? s_counts_errors(&res->counts) : 0,
                all ? res->counts.errors[BENCH_ERR_TIMEOUT] : 0,
                o != BENCH_OP_PUT ? res->counts.misses : 0);
    }
    return fclose(f) ? -1 : 0;
}

static int s_result_json(const bench_result_t *res, const bench_config_t *cfg,
                         const bench_epochs_t *epochs)
{
    FILE *f = fopen(cfg->json, "w");
    if (!f) {
        fprintf(stderr, "anna-bench: cannot write %s: %s\n", cfg->json, strerror(errno));
        return -1;
    }
    fprintf(f, "{\n  \"label\": ");
    s_json_string(f, cfg->label);
    fprintf(f, ",\n  \"config\": {\"routing\": ");
    s_json_string(f, cfg->routing);
    fprintf(f,
            ", \"clients\": %d, \"threads\": %d, \"pipeline\": %d, \"keys\": %" PRIu64
            ", \"value_size\": %zu, \"zipf\": %g, \"read_ratio\": %g, \"duration_s\": %g"
            ", \"requests\": %" PRIu64 ", \"rate\": %g, \"timeout_ms\": %d, \"preload\": %s"
            ", \"seed\": %" PRIu64 ", \"ack\": \"%s\"},\n",
            cfg->clients, cfg->threads, cfg->pipeline, cfg->keys, cfg->value_size, cfg->zipf,
            cfg->read_ratio, cfg->requests ? 0.0 : cfg->duration_s, cfg->requests, cfg->rate,
            cfg->timeout_ms, cfg->preload ? "true" : "false", cfg->seed,
            cfg->ack_all ? "all" : "one");
    const bench_hist_t *all = res->hist[BENCH_OP_COUNT];
    fprintf(f, "  \"elapsed_s\": %.3f,\n  \"ops\": %" PRIu64 ",\n  \"ops_per_s\": %.1f,\n",
            res->elapsed_s, all->n, (double)all->n / res->elapsed_s);
    fprintf(f, "  \"latency_us\": {");
    for (int o = BENCH_OP_COUNT, first = 1; o >= 0; o--) {
        const bench_hist_t *h = res->hist[o];
        if (o < BENCH_OP_COUNT && !h->n)
            continue;
        fprintf(f,
                "%s\n    \"%s\": {\"count\": %" PRIu64 ", \"mean\": %.1f, \"p50\": %.1f, "
                "\"p90\": %.1f, \"p99\": %.1f, \"p99.9\": %.1f, \"max\": %.1f}",
                first ? "" : ",", s_row_name(o), h->n, bench_hist_mean(h) / 1000.0,
                s_us(bench_hist_percentile(h, 50)), s_us(bench_hist_percentile(h, 90)),
                s_us(bench_hist_percentile(h, 99)), s_us(bench_hist_percentile(h, 99.9)),
                s_us(h->max));
        first = 0;
    }
    fprintf(f, "\n  },\n  \"errors\": {\"total\": %" PRIu64, s_counts_errors(&res->counts));
    for (int e = 0; e < BENCH_ERR_COUNT; e++)
        fprintf(f, ", \"%s\": %" PRIu64, s_err_names[e], res->counts.errors[e]);
    fprintf(f, "},\n  \"misses\": %" PRIu64 ",\n  \"late\": %" PRIu64 ",\n  \"epochs\": [",
            res->counts.misses, res->counts.late);
    for (size_t i = 0; i < epochs->len; i++) {
        const bench_epoch_t *e = &epochs->items[i];
        fprintf(f,
                "%s\n    {\"t_s\": %.3f, \"ops_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
                "\"errors\": %" PRIu64 "}",
                i ? "," : "", e->t_s, e->ops_per_s, s_us(e->p50_ns), s_us(e->p99_ns), e->errors);
    }
    fprintf(f, "%s]\n}\n", epochs->len ? "\n  " : "");
    return fclose(f) ? -1 : 0;
}

//  ---- options -------------------------------------------------------------------------------

static void s_usage(FILE *f)
{
    fprintf(
        f,
        "usage: anna-bench [options]\n"
        "Load generator for the KVS: N clients, each with one request in flight (closed loop),\n"
        "driven asynchronously by T threads, GETs and PUTs of LWW values over the Anna protocol.\n"
        "\n"
        "  --routing ADDR       routing endpoint (default tcp://127.0.0.1:6450), or a list\n"
        "                       ADDR,ADDR,... (up to 16): the address lookups before the run\n"
        "                       are spread over it, and one that does not answer is skipped\n"
        "      --ack one|all    one: each request goes to one replica of its key (default);\n"
        "                       all: to every replica, done when all of them answered (a PUT\n"
        "                       acknowledged by all, a GET read from all; a miss if none had it)\n"
        "  --bind-ip IP         IP the response sockets bind to (default 127.0.0.1)\n"
        "  -c, --clients N      concurrent clients (default 50)\n"
        "  -t, --threads T      generator threads; clients are spread over them (default 1)\n"
        "  -P, --pipeline P     requests in flight per client (default 1)\n"
        "  -k, --keys K         key count; keys are key:000000000000.. (default 100000)\n"
        "  -d, --value-size B   PUT value size in bytes (default 8)\n"
        "      --zipf THETA     key popularity: 0 = uniform, 0 < THETA < 1 = Zipf (default 0.99,\n"
        "                       YCSB's; rank 0 hottest)\n"
        "  -r, --read-ratio R   fraction of GETs, 0..1 (default 0.5)\n"
        "      --duration SEC   run length (default 10)\n"
        "  -n, --requests N     send N requests in total instead of running for a duration\n"
        "      --rate OPS       open loop: send OPS requests/s in total on a fixed schedule and\n"
        "                       measure latency from the scheduled time (default 0 = closed loop)\n"
        "      --epoch SEC      progress line interval; 0 = none (default 1)\n"
        "      --preload        PUT every key once before the run (not measured)\n"
        "      --timeout MS     a request unanswered after MS counts as a timeout and the\n"
        "                       client sends a new one (default 1000)\n"
        "      --seed N         seed of keys, ops and values (default 1)\n"
        "      --csv FILE       append result rows (header written when FILE is new)\n"
        "      --json FILE      write the result and the epochs as JSON\n"
        "      --label NAME     name of the run in CSV/JSON (default \"anna\")\n"
        "      --quick          short run for CI: 2 s, 1000 keys, --preload, timeout 500 ms\n"
        "                       (options after it still apply)\n"
        "      --self-test      run the self-tests (histogram, message codec) and exit\n"
        "  -h, --help           this text\n"
        "\n"
        "Exit status: 0 when the run completed (errors are reported, not fatal), 1 when it\n"
        "could not start (no routing answer, bind failure), 2 for bad options.\n");
}

static bool s_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool s_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool s_parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (!s_parse_u64(s, (uint64_t)lo, (uint64_t)hi, &v))
        return false;
    *out = (int)v;
    return true;
}

enum {
    OPT_ROUTING = 256,
    OPT_ACK,
    OPT_BIND_IP,
    OPT_ZIPF,
    OPT_DURATION,
    OPT_RATE,
    OPT_EPOCH,
    OPT_PRELOAD,
    OPT_TIMEOUT,
    OPT_SEED,
    OPT_CSV,
    OPT_JSON,
    OPT_LABEL,
    OPT_QUICK,
    OPT_SELF_TEST
};

//  0 to run, 1 to exit 0 (help, self-test), 2 for a bad option (message printed).
static int s_config_parse(bench_config_t *cfg, int argc, char **argv)
{
    *cfg = (bench_config_t){
        .routing = "tcp://127.0.0.1:6450",
        .bind_ip = "127.0.0.1",
        .clients = 50,
        .threads = 1,
        .pipeline = 1,
        .keys = 100000,
        .value_size = 8,
        .zipf = 0.99,
        .read_ratio = 0.5,
        .duration_s = 10,
        .epoch_s = 1,
        .timeout_ms = 1000,
        .seed = 1,
        .label = "anna",
    };
    static const struct option opts[] = {
        {"routing", required_argument, NULL, OPT_ROUTING},
        {"ack", required_argument, NULL, OPT_ACK},
        {"bind-ip", required_argument, NULL, OPT_BIND_IP},
        {"clients", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"pipeline", required_argument, NULL, 'P'},
        {"keys", required_argument, NULL, 'k'},
        {"value-size", required_argument, NULL, 'd'},
        {"zipf", required_argument, NULL, OPT_ZIPF},
        {"read-ratio", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"requests", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, OPT_RATE},
        {"epoch", required_argument, NULL, OPT_EPOCH},
        {"preload", no_argument, NULL, OPT_PRELOAD},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"seed", required_argument, NULL, OPT_SEED},
        {"csv", required_argument, NULL, OPT_CSV},
        {"json", required_argument, NULL, OPT_JSON},
        {"label", required_argument, NULL, OPT_LABEL},
        {"quick", no_argument, NULL, OPT_QUICK},
        {"self-test", no_argument, NULL, OPT_SELF_TEST},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t u;
    int opt, index = -1;
    bool ok = true;
    opterr = 0;
    while (ok) {
        index = -1;
        opt = getopt_long(argc, argv, ":c:t:P:k:d:r:n:h", opts, &index);
        if (opt == -1)
            break;
        switch (opt) {
        case OPT_ROUTING:
            cfg->routing = optarg;
            break;
        case OPT_ACK:
            ok = !strcmp(optarg, "one") || !strcmp(optarg, "all");
            cfg->ack_all = !strcmp(optarg, "all");
            break;
        case OPT_BIND_IP:
            cfg->bind_ip = optarg;
            break;
        case 'c':
            ok = s_parse_int(optarg, 1, 1000000, &cfg->clients);
            break;
        case 't':
            ok = s_parse_int(optarg, 1, 256, &cfg->threads);
            break;
        case 'P':
            ok = s_parse_int(optarg, 1, 4096, &cfg->pipeline);
            break;
        case 'k':
            ok = s_parse_u64(optarg, 1, 100000000, &cfg->keys);
            break;
        case 'd':
            ok = s_parse_u64(optarg, 0, 64u << 20, &u);
            cfg->value_size = (size_t)u;
            break;
        case OPT_ZIPF:
            ok = s_parse_double(optarg, 0, 0.999999, &cfg->zipf);
            break;
        case 'r':
            ok = s_parse_double(optarg, 0, 1, &cfg->read_ratio);
            break;
        case OPT_DURATION:
            ok = s_parse_double(optarg, 0.001, 1e7, &cfg->duration_s);
            cfg->requests = 0;
            break;
        case 'n':
            ok = s_parse_u64(optarg, 1, UINT64_MAX / 2, &cfg->requests);
            break;
        case OPT_RATE:
            ok = s_parse_double(optarg, 0, 1e9, &cfg->rate);
            break;
        case OPT_EPOCH:
            ok = s_parse_double(optarg, 0, 1e6, &cfg->epoch_s);
            break;
        case OPT_PRELOAD:
            cfg->preload = true;
            break;
        case OPT_TIMEOUT:
            ok = s_parse_int(optarg, 1, 3600000, &cfg->timeout_ms);
            break;
        case OPT_SEED:
            ok = s_parse_u64(optarg, 0, UINT64_MAX, &cfg->seed);
            break;
        case OPT_CSV:
            cfg->csv = optarg;
            break;
        case OPT_JSON:
            cfg->json = optarg;
            break;
        case OPT_LABEL:
            cfg->label = optarg;
            break;
        case OPT_QUICK:
            cfg->duration_s = 2;
            cfg->requests = 0;
            cfg->keys = 1000;
            cfg->preload = true;
            cfg->timeout_ms = 500;
            break;
        case OPT_SELF_TEST:
            bench_hist_test(true);
            bench_codec_test(true);
            printf("anna-bench self-test OK\n");
            return 1;
        case 'h':
            s_usage(stdout);
            return 1;
        case ':':
            fprintf(stderr, "anna-bench: %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "anna-bench: unknown option %s (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (!ok) {
        if (index >= 0)
            fprintf(stderr, "anna-bench: bad value '%s' for --%s (try --help)\n", optarg,
                    opts[index].name);
        else
            fprintf(stderr, "anna-bench: bad value '%s' for -%c (try --help)\n", optarg, opt);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "anna-bench: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (cfg->threads > cfg->clients)
        cfg->threads = cfg->clients;
    //  The routing list: each address tcp:// or ipc://, no empty entry, at most 16.
    cfg->n_routing = 0;
    for (const char *p = cfg->routing;; p++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (cfg->n_routing == BENCH_MAX_ROUTING || len <= 6 ||
            len >= sizeof cfg->routing_list[0] || (strncmp(p, "tcp://", 6) && strncmp(p, "ipc://", 6))) {
            fprintf(stderr, "anna-bench: bad --routing '%s': expected tcp://HOST:PORT, or up to "
                    "%d of them separated by commas\n", cfg->routing, BENCH_MAX_ROUTING);
            return 2;
        }
        memcpy(cfg->routing_list[cfg->n_routing], p, len);
        cfg->routing_list[cfg->n_routing++][len] = '\0';
        if (!end)
            break;
        p = end;
    }
    return 0;
}

//  ---- main ----------------------------------------------------------------------------------

int main(int argc, char **argv)
{
    bench_config_t cfg;
    int rc = s_config_parse(&cfg, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, cfg.threads);
    bench_keyspace_t ks;
    bench_thread_t *threads = cb_calloc((size_t)cfg.threads, sizeof *threads);
    int ready = 0;
    rc = 1;
    if (s_keyspace_init(&ks, &cfg, ctx) < 0)
        goto done;
    for (; ready < cfg.threads; ready++)
        if (s_thread_init(&threads[ready], ready, ctx, &cfg, &ks) < 0) {
            ready++;
            goto done;
        }

    if (cfg.preload) {
        bench_phase_t phase = {.preload = true, .end_ns = INT64_MAX};
        for (int t = 0; t < cfg.threads; t++)
            s_thread_prepare(&threads[t], &phase, 0, cfg.keys * (uint64_t)t / (uint64_t)cfg.threads,
                             cfg.keys * (uint64_t)(t + 1) / (uint64_t)cfg.threads);
        phase.start_ns = s_now_ns();
        if (s_phase_run(threads, cfg.threads, &cfg, NULL) < 0)
            goto done;
        bench_result_t res;
        s_result_collect(&res, threads, cfg.threads, phase.start_ns);
        uint64_t errors = s_counts_errors(&res.counts);
        printf("preload: %" PRIu64 " keys of %zu B in %.2f s, errors %" PRIu64 "\n", cfg.keys,
               cfg.value_size, res.elapsed_s, errors);
        if (errors)
            fprintf(stderr,
                    "anna-bench: warning: %" PRIu64 " errors in the preload: some keys "
                    "may hold no value\n",
                    errors);
        s_result_fini(&res);
        if (atomic_load(&s_interrupted)) {
            rc = 130;
            goto done;
        }
    }

    printf("anna-bench: %s, %d client%s x %d in flight on %d thread%s, %" PRIu64
           " keys (%s), %zu B values, %.0f%% GET, ",
           cfg.routing, cfg.clients, cfg.clients > 1 ? "s" : "", cfg.pipeline, cfg.threads,
           cfg.threads > 1 ? "s" : "", cfg.keys, cfg.zipf > 0 ? "zipf" : "uniform", cfg.value_size,
           cfg.read_ratio * 100);
    if (cfg.zipf > 0)
        printf("zipf %g, ", cfg.zipf);
    if (cfg.requests)
        printf("%" PRIu64 " requests", cfg.requests);
    else
        printf("%g s", cfg.duration_s);
    if (cfg.rate > 0)
        printf(", open loop at %.0f/s", cfg.rate);
    if (cfg.ack_all)
        printf(", ack all");
    printf("\n");

    bench_phase_t phase = {.rate = cfg.rate / cfg.threads};
    for (int t = 0; t < cfg.threads; t++) {
        uint64_t quota = UINT64_MAX;
        if (cfg.requests)
            quota = cfg.requests / (uint64_t)cfg.threads +
                    ((uint64_t)t < cfg.requests % (uint64_t)cfg.threads);
        s_thread_prepare(&threads[t], &phase, quota, 0, 0);
    }
    phase.start_ns = s_now_ns();
    phase.end_ns = cfg.requests ? INT64_MAX : phase.start_ns + (int64_t)(cfg.duration_s * 1e9);
    bench_epochs_t epochs = {0};
    if (s_phase_run(threads, cfg.threads, &cfg, &epochs) < 0)
        goto done;
    bench_result_t res;
    s_result_collect(&res, threads, cfg.threads, phase.start_ns);
    s_result_print(&res);
    rc = 0;
    if (cfg.csv && s_result_csv(&res, &cfg) < 0)
        rc = 1;
    if (cfg.json && s_result_json(&res, &cfg, &epochs) < 0)
        rc = 1;
    s_result_fini(&res);
    cb_free(epochs.items);

done:
    for (int t = 0; t < ready; t++)
        s_thread_fini(&threads[t]);
    cb_free(threads);
    if (ks.names)
        s_keyspace_fini(&ks);
    zmq_ctx_term(ctx);
    return rc;
}
