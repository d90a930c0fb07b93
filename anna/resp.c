//  anna/resp.c: the RESP front end. Each RESP thread runs one loop (Redis's ae shape, on
//  epoll, edge-triggered):
//    1. wait for sockets: clients, the listener, the stop eventfd, and the ZeroMQ PULL socket
//       on which workers answer;
//    2. read the answers of the workers and complete the commands they belong to;
//    3. read and parse the clients' input; every key command becomes one or more tuples
//       appended to the open KeyRequest ("run") of the key's primary owner;
//    4. seal and send every open run (one message per worker and request type per loop
//       iteration, whatever the number of clients and pipelined commands: the batching is
//       what makes a per-message transport fast);
//    5. write each client's replies in one send.
//  Replies leave in command order per connection even though commands of one pipeline go to
//  different workers: each connection keeps a ring of its commands in flight, results fill
//  their command's slot, and only the completed prefix of the ring is written.
//  Ordering between commands on one key holds because a connection's tuples for one worker
//  travel in order on one PUSH socket, and a run is sealed whenever the request type changes
//  (GET k; SET k v; GET k is three messages, answered in that order by the worker).
//  The workers are reached with the public protocol (KeyRequest / KeyResponse) over inproc
//  ZeroMQ sockets of the server's context: the worker's inproc key socket, handled like its
//  TCP key port, and an inproc PULL of our own for the answers (anna/worker.h). No ZeroMQ I/O
//  thread is involved: a request costs one wake-up of the worker, an answer one of us.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/resp.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "anna/placement.h"
#include "anna/ring.h"
#include "anna/resp_codec.h"
#include "anna/resp_proto.h"
#include "anna/worker.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "lattices/lattice.h"

//  Request types and errors of proto/anna.proto (numbers; the generated header is not
//  needed here).
#define S_REQ_GET 1
#define S_REQ_PUT 2
#define S_E_KEY_DNE 1
#define S_E_WRONG_THREAD 2
#define S_E_TIMEOUT 3
#define S_E_LATTICE 4
#define S_E_BAD_REQUEST 16
#define S_E_TOO_LARGE 17
#define S_LAT_LWW 1
#define S_LAT_SET 2
#define S_LAT_ORDERED_SET 5

//  Commands in flight per connection before we stop parsing its input (Redis has no such
//  bound; it needs none because it answers each command at once).
#define S_MAX_PENDING 1024
//  Commands in flight per connection before its first reply tells their size.
#define S_FIRST_PENDING 32
//  Replies waiting to be written, per connection, above which we stop parsing its input:
//  a client that does not read its replies stops being served instead of growing us.
#define S_OUT_LIMIT (1 << 20)
//  Bytes read from one connection per loop iteration (fairness between connections).
#define S_READ_BUDGET (256 * 1024)
#define S_READ_MIN (16 * 1024)
//  Replies ready at the head of a connection's ring wait for the rest of its pipeline (one
//  send per pipeline, not one per worker answer) unless this much is waiting.
#define S_FLUSH_PARTIAL (32 * 1024)
//  Buffers above these sizes are freed when they empty (idle connections stay small).
#define S_KEEP_IO (64 * 1024)
#define S_KEEP_CMD (16 * 1024)
//  A run is sealed before it grows past this many tuples or bytes (a single big tuple goes
//  alone), keeping each message far below the worker's limit of max-value-bytes + 1 MiB.
#define S_RUN_MAX_TUPLES 4096
#define S_RUN_MAX_BYTES (1 << 20)
//  Messages at least this large are handed to ZeroMQ without a copy.
#define S_ZERO_COPY_BYTES (64 * 1024)
//  KeyRequests in flight per worker above which we stop parsing (back pressure; also keeps
//  the worker's reply queue to us, 1000 messages, from overflowing).
#define S_MAX_INFLIGHT 256
//  A KeyRequest unanswered this long fails its commands (a worker never drops one while we
//  read our socket; this is the safety net that keeps a client from waiting forever).
#define S_TIMEOUT_MS 30000
//  Requests in flight per worker before an open run waits for an answer instead of being sent
//  at the end of the loop iteration (adaptive batching, as a group commit: an idle worker
//  gets each command at once; a busy one gets fewer, larger requests, and every request
//  costs a wake-up and two protobuf walks on each side whatever its size).
#define S_PIPELINE_DEPTH 2
//  Answers read per loop iteration, and connections accepted.
#define S_DRAIN_MAX 1024
#define S_ACCEPT_MAX 64

#define S_WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"

//  ---- types --------------------------------------------------------------------------------

typedef enum {
    S_OP_READY,                 //  reply in buf already (PING, errors, ...)
    S_OP_GET,
    S_OP_SET,
    S_OP_MGET,
    S_OP_MSET,
    S_OP_EXISTS,
    S_OP_DEL,
    S_OP_SADD,
    S_OP_SISMEMBER,
    S_OP_SCARD,
    S_OP_SMEMBERS,
    S_OP_TYPE,
    S_OP_STRLEN,
    S_OP_INFO,
    S_OP_DBSIZE,
} s_op_t;

//  A part of a command's buffer: a key (DEL), a member (SADD), a sub-result (MGET, INFO).
typedef struct {
    size_t off;
    size_t len;
    int state;                  //  DEL: 1 if the key holds a live value
} s_span_t;

//  One command of a connection, from parse to reply. Slots of the ring are reused, with
//  their buffers, so that the steady state allocates nothing per command.
typedef struct {
    s_op_t op;
    bool done;                  //  every result is in
    bool direct;                //  the reply was written to the connection's out already
    bool failed;                //  buf holds an error reply (the first error wins)
    int phase;                  //  DEL: 0 = reading the keys, 1 = writing tombstones
    uint32_t pending;           //  results still to come
    uint32_t nsub;              //  keys (MGET, EXISTS, DEL, MSET, INFO)
    int64_t count;              //  integer reply being computed
    anna_resp_buf_t buf;        //  reply, or the parts it is assembled from
    s_span_t *spans;
    size_t spans_cap;
} s_cmd_t;

typedef struct {
    int fd;                     //  -1 when the slot is free
    uint32_t index;             //  in the loop's conns
    uint32_t gen;               //  bumped on close: results for an old connection are dropped
    uint64_t id;                //  CLIENT ID
    anna_resp_buf_t in;         //  bytes read, not yet parsed
    anna_resp_parser_t parser;
    anna_resp_buf_t out;        //  replies not yet written
    size_t out_sent;            //  bytes of out written
    s_cmd_t *cmds;              //  ring of commands in flight, cmds_cap a power of two
    size_t cmds_cap;
    uint64_t head;              //  oldest command not replied to
    uint64_t tail;              //  next command
    bool readable;              //  the socket may have bytes (edge-triggered epoll)
    bool writable;
    bool eof;                   //  the peer shut its side: answer what came, then close
    bool closing;               //  QUIT or a protocol error: close once replies are out
    bool barrier;               //  a DEL is deciding what to write: parse nothing more yet
    bool authed;
    size_t avg_reply;           //  moving average of this client's reply sizes
    bool queued;                //  in the work list
    bool dirty;                 //  in the write list
    char *name;                 //  CLIENT SETNAME; owned
} s_conn_t;

//  Where one tuple's result goes.
typedef struct {
    uint32_t conn;
    uint32_t gen;
    uint64_t cmd;               //  command sequence number in the connection
    uint32_t sub;               //  which of the command's tuples
} s_target_t;

//  One KeyRequest: being built (open) or sent and waiting for its answer (in flight).
typedef struct {
    uint64_t seq;               //  its request_id; 0 = slot free
    bool in_flight;
    uint32_t worker;
    int64_t sent_ms;
    uint64_t next;              //  next in-flight request to the same worker (0: none)
    s_target_t *targets;
    size_t ntargets;
    size_t cap;
} s_batch_t;

//  The open KeyRequest to one worker, and that worker's in-flight requests (answers come
//  back in the order sent: a FIFO whose head must be the next answer).
typedef struct {
    anna_resp_buf_t msg;
    int type;
    uint64_t seq;               //  open batch, or 0
    size_t ntuples;
    uint64_t fifo_head;         //  oldest in-flight request, 0 if none
    uint64_t fifo_tail;
    uint32_t inflight;
} s_run_t;

//  Counters published for other threads (INFO) and the report; written by the owner only.
typedef struct {
    _Atomic uint64_t v[8];
} s_published_t;

//  Primary owner of a key without the ring's binary search (the top RESP-side cost in a
//  profile): the local ring's points sit at anna_hash("<thread>#<v>") (anna/ring.c,
//  anna/placement.c; pinned by their self-tests), so we compute them, and a table indexed by
//  the top 16 bits of the key's hash gives the owner of every bucket that holds no point.
//  The few buckets that do hold one fall back to a binary search of our sorted points.
//  Checked against anna_placement_owners at start-up; on any disagreement it is not used.
//  16 KiB of table: small enough to stay in L1 next to everything else (a 128 KiB table
//  missed the cache on most lookups in a profile); about 2.5% of buckets hold a point.
#define S_OWNER_BITS 14
#define S_OWNER_MIXED UINT8_MAX
typedef struct {
    uint64_t pos;
    uint32_t id;
} s_point_t;

typedef struct {
    s_point_t *points;          //  sorted by (pos, id), as the ring sorts them
    size_t npoints;
    uint8_t *bucket;            //  owner per bucket, or S_OWNER_MIXED
    bool usable;                //  agreed with anna_placement on the sample keys
} s_owners_t;

typedef struct s_loop s_loop_t;

struct _anna_resp_t {
    anna_config_t config;       //  copy
    void *ctx;                  //  borrowed
    int port;
    int stop_fd;                //  eventfd: readable once stop is asked
    int64_t started_ms;
    s_loop_t **loops;           //  config.threads
    int nloops;
    _Atomic int clients;        //  connections of the node
    _Atomic uint64_t next_client_id;
    s_published_t *published;   //  per loop
    bool stopped;
};

struct s_loop {
    anna_resp_t *owner;
    const anna_config_t *config;    //  the owner's
    uint32_t index;
    int listen_fd;
    int epoll_fd;
    void *pull;                 //  PULL: answers of the workers
    int pull_fd;
    void **push;                //  PUSH per worker, to its inproc key socket
    char address[96];           //  our response address
    anna_placement_t *placement;
    s_owners_t owners;
    uint32_t writer;            //  LWW writer id of our SETs
    s_conn_t **conns;
    size_t nconns;
    size_t conns_cap;
    uint32_t *free_conns;
    size_t nfree;
    size_t free_cap;
    uint32_t *work;             //  connections to look at next iteration
    size_t nwork;
    size_t work_cap;
    uint32_t *working;          //  the list being processed (swapped with work)
    size_t working_cap;
    uint32_t *dirty;            //  connections with replies to write
    size_t ndirty;
    size_t dirty_cap;
    s_run_t *runs;              //  per worker
    s_batch_t *batches;         //  indexed by seq & (nbatches - 1)
    size_t nbatches;
    uint64_t next_seq;
    anna_resp_stats_t stats;
    bool stopping;
    bool answers_left;          //  the last drain stopped at its cap, not at an empty queue
    pthread_t tid;
    bool started;
    bool joined;
    long long log_last;
};

//  ---- small helpers ------------------------------------------------------------------------

static void s_publish(s_loop_t *self)
{
    s_published_t *p = &self->owner->published[self->index];
    const uint64_t *v = &self->stats.connections;
    for (int i = 0; i < 8; i++)
        atomic_store_explicit(&p->v[i], v[i], memory_order_relaxed);
}

static void s_list_add(uint32_t **list, size_t *n, size_t *cap, uint32_t value)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *list = cb_realloc(*list, *cap * sizeof **list);
    }
    (*list)[(*n)++] = value;
}

static void s_work(s_loop_t *self, s_conn_t *conn)
{
    if (!conn->queued) {
        conn->queued = true;
        s_list_add(&self->work, &self->nwork, &self->work_cap, conn->index);
    }
}

static void s_dirty(s_loop_t *self, s_conn_t *conn)
{
    if (!conn->dirty) {
        conn->dirty = true;
        s_list_add(&self->dirty, &self->ndirty, &self->dirty_cap, conn->index);
    }
}

static s_span_t *s_cmd_spans(s_cmd_t *cmd, size_t n)
{
    if (n > cmd->spans_cap) {
        cmd->spans_cap = n > 2 * cmd->spans_cap ? n : 2 * cmd->spans_cap;
        cmd->spans = cb_realloc(cmd->spans, cmd->spans_cap * sizeof *cmd->spans);
    }
    return cmd->spans;
}

static bool s_arg_is(const char *base, const anna_resp_arg_t *arg, const char *word)
{
    size_t len = strlen(word);
    return arg->len == len && strncasecmp(base + arg->off, word, len) == 0;
}

//  A key we can store: non-empty (the worker refuses empty keys), without NUL (keys travel
//  as proto strings, read up to the first NUL), within ANNA_MAX_KEY_BYTES. NULL if fine.
static const char *s_key_problem(const char *base, const anna_resp_arg_t *arg)
{
    if (arg->len == 0)
        return "ERR empty keys are not supported by this store";
    if (arg->len > ANNA_MAX_KEY_BYTES)
        return "ERR key longer than 65536 bytes";
    if (memchr(base + arg->off, '\0', arg->len))
        return "ERR keys must not contain NUL bytes";
    return NULL;
}

//  ---- batches and runs ---------------------------------------------------------------------

static s_batch_t *s_batch(s_loop_t *self, uint64_t seq)
{
    s_batch_t *b = &self->batches[seq & (self->nbatches - 1)];
    return b->seq == seq ? b : NULL;
}

//  Doubles the batch table until every busy batch has a slot of its own and the slot of
//  next_seq is free. Rare: only when more requests are in flight than the table holds.
static void s_batches_grow(s_loop_t *self)
{
    size_t cap = self->nbatches;
    while (true) {
        cap *= 2;
        s_batch_t *table = cb_calloc(cap, sizeof *table);
        bool clash = table[self->next_seq & (cap - 1)].seq != 0;
        for (size_t i = 0; !clash && i < self->nbatches; i++) {
            s_batch_t *b = &self->batches[i];
            if (b->seq == 0)
                continue;
            s_batch_t *dst = &table[b->seq & (cap - 1)];
            if (dst->seq != 0 || (b->seq & (cap - 1)) == (self->next_seq & (cap - 1)))
                clash = true;
            else
                *dst = *b;
        }
        if (clash) {
            cb_free(table);
            continue;
        }
        for (size_t i = 0; i < self->nbatches; i++)
            if (self->batches[i].seq == 0)
                cb_free(self->batches[i].targets);
        cb_free(self->batches);
        self->batches = table;
        self->nbatches = cap;
        return;
    }
}

static void s_seal(s_loop_t *self, uint32_t w);

//  The target slot of a new tuple of `type` for worker w, in its open run (sealing the run
//  first if the type changes or it is full). The caller then appends the tuple's bytes to
//  self->runs[w].msg.
static s_target_t *s_enqueue(s_loop_t *self, uint32_t w, int type, size_t bytes)
{
    s_run_t *run = &self->runs[w];
    if (run->seq && (run->type != type || run->ntuples >= S_RUN_MAX_TUPLES ||
                     (run->msg.len > 0 && run->msg.len + bytes > S_RUN_MAX_BYTES)))
        s_seal(self, w);
    if (!run->seq) {
        if (self->batches[self->next_seq & (self->nbatches - 1)].seq != 0)
            s_batches_grow(self);
        uint64_t seq = self->next_seq++;
        s_batch_t *b = &self->batches[seq & (self->nbatches - 1)];
        b->seq = seq;
        b->in_flight = false;
        b->worker = w;
        b->next = 0;
        b->ntargets = 0;
        run->seq = seq;
        run->type = type;
        run->ntuples = 0;
        run->msg.len = 0;
    }
    s_batch_t *b = s_batch(self, run->seq);
    if (b->ntargets == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->targets = cb_realloc(b->targets, b->cap * sizeof *b->targets);
    }
    run->ntuples++;
    return &b->targets[b->ntargets++];
}

static void s_target_set(s_target_t *t, const s_conn_t *conn, uint64_t cmd, uint32_t sub)
{
    t->conn = conn->index;
    t->gen = conn->gen;
    t->cmd = cmd;
    t->sub = sub;
}

static int s_point_cmp(const void *a, const void *b)
{
    const s_point_t *pa = a, *pb = b;
    if (pa->pos != pb->pos)
        return pa->pos < pb->pos ? -1 : 1;
    return (pa->id > pb->id) - (pa->id < pb->id);
}

//  Owner of the first point at or after hash, wrapping around.
static uint32_t s_owners_search(const s_owners_t *o, uint64_t hash)
{
    size_t lo = 0, hi = o->npoints;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->points[mid].pos < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return o->points[lo == o->npoints ? 0 : lo].id;
}

static void s_owners_build(s_owners_t *o, uint32_t threads, uint32_t vnodes)
{
    o->npoints = (size_t)threads * vnodes;
    o->points = cb_malloc(o->npoints * sizeof *o->points);
    size_t n = 0;
    for (uint32_t t = 0; t < threads; t++)
        for (uint32_t v = 0; v < vnodes; v++) {
            char name[32];
            int len = snprintf(name, sizeof name, "%" PRIu32 "#%" PRIu32, t, v);
            o->points[n].pos = anna_hash(name, (size_t)len, 0);
            o->points[n++].id = t;
        }
    qsort(o->points, o->npoints, sizeof *o->points, s_point_cmp);
    size_t nbuckets = (size_t)1 << S_OWNER_BITS;
    o->bucket = cb_malloc(nbuckets * sizeof *o->bucket);
    for (size_t b = 0; b < nbuckets; b++)
        o->bucket[b] = (uint8_t)s_owners_search(o, (uint64_t)b << (64 - S_OWNER_BITS));
    //  A bucket holding a point has two owners: mark it.
    for (size_t i = 0; i < o->npoints; i++)
        o->bucket[o->points[i].pos >> (64 - S_OWNER_BITS)] = S_OWNER_MIXED;
}

static void s_owners_fini(s_owners_t *o)
{
    cb_free(o->points);
    cb_free(o->bucket);
    memset(o, 0, sizeof *o);
}

static uint32_t s_owner(s_loop_t *self, const void *key, size_t len)
{
    //  Reserved keys (stats) have fixed homes, one thread has every key: the placement
    //  knows; 'A' is where "ANNA_METADATA|" starts.
    const s_owners_t *o = &self->owners;
    if (o->usable && (len == 0 || *(const char *)key != 'A')) {
        uint64_t hash = anna_hash(key, len, 0);
        uint8_t w = o->bucket[hash >> (64 - S_OWNER_BITS)];
        return w != S_OWNER_MIXED ? w : s_owners_search(o, hash);
    }
    uint32_t owners[ANNA_MAX_THREADS];
    anna_placement_owners(self->placement, key, len, owners);
    return owners[0];           //  always the primary: read-your-writes for RESP clients
}

//  Compares s_owner with the placement on sample keys; the table is used only if they agree.
static bool s_owners_check(s_loop_t *self, size_t samples)
{
    for (size_t i = 0; i < samples; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, "key:%012zu", i * 7919);
        uint32_t want[ANNA_MAX_THREADS];
        anna_placement_owners(self->placement, key, (size_t)len, want);
        if (s_owner(self, key, (size_t)len) != want[0])
            return false;
    }
    return true;
}

static void s_enqueue_get(s_loop_t *self, const s_conn_t *conn, uint64_t cmd, uint32_t sub,
                          const void *key, size_t klen)
{
    uint32_t w = s_owner(self, key, klen);
    s_target_set(s_enqueue(self, w, S_REQ_GET, klen + 8), conn, cmd, sub);
    anna_resp_codec_get(&self->runs[w].msg, key, klen);
}

static void s_enqueue_put_lww(s_loop_t *self, const s_conn_t *conn, uint64_t cmd, uint32_t sub,
                              const void *key, size_t klen, uint32_t writer, const void *value,
                              size_t vlen)
{
    uint32_t w = s_owner(self, key, klen);
    s_target_set(s_enqueue(self, w, S_REQ_PUT, klen + vlen + 40), conn, cmd, sub);
    anna_resp_codec_put_lww(&self->runs[w].msg, key, klen, cb_clock_lww_now(), writer, value,
                            vlen);
}

static void s_free_msg(void *data, void *hint)
{
    (void)hint;
    cb_free(data);
}

static void s_fail_batch(s_loop_t *self, s_batch_t *b, const char *why);

static void s_seal(s_loop_t *self, uint32_t w)
{
    s_run_t *run = &self->runs[w];
    if (!run->seq)
        return;
    s_batch_t *b = s_batch(self, run->seq);
    char id[24];
    int idlen = snprintf(id, sizeof id, "%" PRIu64, run->seq);
    anna_resp_codec_finish(&run->msg, run->type, self->address, id, (size_t)idlen);
    int rc;
    if (run->msg.len >= S_ZERO_COPY_BYTES) {
        zmq_msg_t msg;
        zmq_msg_init_data(&msg, run->msg.data, run->msg.len, s_free_msg, NULL);
        run->msg.data = NULL;
        run->msg.len = run->msg.cap = 0;
        rc = zmq_msg_send(&msg, self->push[w], ZMQ_DONTWAIT);
        if (rc < 0)
            zmq_msg_close(&msg);
    } else
        rc = zmq_send(self->push[w], run->msg.data, run->msg.len, ZMQ_DONTWAIT);
    run->seq = 0;
    run->msg.len = 0;
    self->stats.batches++;
    self->stats.tuples += b->ntargets;
    b->in_flight = true;
    b->sent_ms = cb_clock_mono_ms();
    if (rc < 0) {
        //  Only when the context is shutting down (the high-water mark is off).
        s_fail_batch(self, b, "ERR cannot reach the worker thread (stopping?)");
        return;
    }
    if (run->fifo_tail)
        s_batch(self, run->fifo_tail)->next = b->seq;
    else
        run->fifo_head = b->seq;
    run->fifo_tail = b->seq;
    run->inflight++;
}

//  ---- connections --------------------------------------------------------------------------

static s_conn_t *s_conn_at(s_loop_t *self, uint32_t index, uint32_t gen)
{
    if (index >= self->nconns)
        return NULL;
    s_conn_t *c = self->conns[index];
    return c && c->fd >= 0 && c->gen == gen ? c : NULL;
}

static void s_cmd_reset(s_cmd_t *cmd)
{
    cmd->done = cmd->direct = cmd->failed = false;
    cmd->phase = 0;
    cmd->pending = cmd->nsub = 0;
    cmd->count = 0;
    cmd->buf.len = 0;
    anna_resp_buf_shrink(&cmd->buf, S_KEEP_CMD);
}

static void s_conn_close(s_loop_t *self, s_conn_t *conn)
{
    if (conn->fd < 0)
        return;
    close(conn->fd);            //  also leaves the epoll set
    conn->fd = -1;
    conn->gen++;
    for (size_t i = 0; i < conn->cmds_cap; i++) {
        anna_resp_buf_fini(&conn->cmds[i].buf);
        cb_free(conn->cmds[i].spans);
    }
    cb_free(conn->cmds);
    conn->cmds = NULL;
    conn->cmds_cap = 0;
    anna_resp_buf_fini(&conn->in);
    anna_resp_buf_fini(&conn->out);
    anna_resp_parser_fini(&conn->parser);
    cb_free(conn->name);
    conn->name = NULL;
    s_list_add(&self->free_conns, &self->nfree, &self->free_cap, conn->index);
    atomic_fetch_sub_explicit(&self->owner->clients, 1, memory_order_relaxed);
    self->stats.connections--;
}

//  A new command at the tail of the ring (the caller checked there is room).
static s_cmd_t *s_cmd_push(s_conn_t *conn, s_op_t op, uint64_t *seq)
{
    if (conn->tail - conn->head == conn->cmds_cap) {
        size_t cap = conn->cmds_cap ? 2 * conn->cmds_cap : 8;
        s_cmd_t *ring = cb_calloc(cap, sizeof *ring);
        for (uint64_t s = conn->head; s < conn->tail; s++)
            ring[s & (cap - 1)] = conn->cmds[s & (conn->cmds_cap - 1)];
        //  The old ring is full: every slot moved.
        cb_free(conn->cmds);
        conn->cmds = ring;
        conn->cmds_cap = cap;
    }
    *seq = conn->tail++;
    s_cmd_t *cmd = &conn->cmds[*seq & (conn->cmds_cap - 1)];
    s_cmd_reset(cmd);
    cmd->op = op;
    return cmd;
}

static s_cmd_t *s_cmd_at(s_conn_t *conn, uint64_t seq)
{
    if (seq < conn->head || seq >= conn->tail)
        return NULL;
    return &conn->cmds[seq & (conn->cmds_cap - 1)];
}

//  Where a reply is written right now: into out when no earlier command is still pending
//  (no copy), else into a READY command that waits its turn.
static anna_resp_buf_t *s_reply(s_conn_t *conn)
{
    if (conn->head == conn->tail)
        return &conn->out;
    uint64_t seq;
    s_cmd_t *cmd = s_cmd_push(conn, S_OP_READY, &seq);
    cmd->done = true;
    return &cmd->buf;
}

//  ---- replies ------------------------------------------------------------------------------

//  Renders the worker stats JSON {"thread":0,"requests":1,...} as INFO fields
//  "requests=1,gets=2,...".
static void s_info_thread(anna_resp_buf_t *out, const char *json, size_t len)
{
    const char *p = json, *end = json + len;
    bool first = true, skip_thread = true;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            break;
        const char *qe = memchr(q + 1, '"', (size_t)(end - q - 1));
        if (!qe)
            break;
        const char *v = qe + 2, *ve = v;
        while (ve < end && *ve != ',' && *ve != '}')
            ve++;
        if (v > end)
            break;
        if (!skip_thread) {
            if (!first)
                anna_resp_buf_append(out, ",", 1);
            anna_resp_buf_append(out, q + 1, (size_t)(qe - q - 1));
            anna_resp_buf_append(out, "=", 1);
            anna_resp_buf_append(out, v, (size_t)(ve - v));
            first = false;
        }
        skip_thread = false;
        p = ve;
    }
}

static uint64_t s_json_u64(const char *json, size_t len, const char *field)
{
    char pat[48];
    int n = snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *p = memmem(json, len, pat, (size_t)n);
    return p ? strtoull(p + n, NULL, 10) : 0;
}

static void s_emit_info(s_loop_t *self, const s_cmd_t *cmd, anna_resp_buf_t *out)
{
    anna_resp_t *owner = self->owner;
    uint64_t keys = 0;
    for (uint32_t i = 0; i < cmd->nsub; i++)
        keys += s_json_u64(cmd->buf.data + cmd->spans[i].off, cmd->spans[i].len, "keys");
    if (cmd->op == S_OP_DBSIZE) {
        anna_resp_put_int(out, (int64_t)keys);
        return;
    }
    uint64_t sum[8] = {0};
    for (int t = 0; t < owner->nloops; t++)
        for (int i = 0; i < 8; i++)
            sum[i] += atomic_load_explicit(&owner->published[t].v[i], memory_order_relaxed);
    anna_resp_buf_t text = {0};
    char line[512];
    int n = snprintf(line, sizeof line,
                     "# Server\r\nredis_version:7.0.0\r\nanna_version:%s\r\nredis_mode:standalone"
                     "\r\nprocess_id:%ld\r\ntcp_port:%d\r\nuptime_in_seconds:%" PRId64
                     "\r\nresp_threads:%d\r\nworker_threads:%d\r\n\r\n# Clients\r\n"
                     "connected_clients:%d\r\nmaxclients:%d\r\n\r\n# Stats\r\n"
                     "total_connections_received:%" PRIu64 "\r\ntotal_commands_processed:%" PRIu64
                     "\r\nrejected_connections:%" PRIu64 "\r\nprotocol_errors:%" PRIu64 "\r\n",
                     ANNA_VERSION, (long)getpid(), owner->port,
                     (cb_clock_mono_ms() - owner->started_ms) / 1000, owner->nloops,
                     self->config->threads,
                     atomic_load_explicit(&owner->clients, memory_order_relaxed),
                     self->config->resp_max_clients, sum[1], sum[3], sum[2], sum[4]);
    anna_resp_buf_append(&text, line, (size_t)n);
    n = snprintf(line, sizeof line,
                 "\r\n# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n\r\n# Threads\r\n",
                 keys);
    anna_resp_buf_append(&text, line, (size_t)n);
    for (int t = 0; t < owner->nloops; t++) {
        uint64_t v[8];
        for (int i = 0; i < 8; i++)
            v[i] = atomic_load_explicit(&owner->published[t].v[i], memory_order_relaxed);
        n = snprintf(line, sizeof line,
                     "resp_thread%d:connections=%" PRIu64 ",accepted=%" PRIu64
                     ",rejected=%" PRIu64 ",commands=%" PRIu64 ",protocol_errors=%" PRIu64
                     ",batches=%" PRIu64 ",tuples=%" PRIu64 ",timeouts=%" PRIu64 "\r\n",
                     t, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
        anna_resp_buf_append(&text, line, (size_t)n);
    }
    for (uint32_t i = 0; i < cmd->nsub; i++) {
        n = snprintf(line, sizeof line, "worker_thread%u:", i);
        anna_resp_buf_append(&text, line, (size_t)n);
        s_info_thread(&text, cmd->buf.data + cmd->spans[i].off, cmd->spans[i].len);
        anna_resp_buf_append(&text, "\r\n", 2);
    }
    anna_resp_put_bulk(out, text.data, text.len);
    anna_resp_buf_fini(&text);
}

//  Appends the reply of a completed command to out.
static void s_emit(s_loop_t *self, s_conn_t *conn, s_cmd_t *cmd)
{
    anna_resp_buf_t *out = &conn->out;
    if (cmd->direct)
        return;
    if (cmd->failed) {
        anna_resp_buf_append(out, cmd->buf.data, cmd->buf.len);
        return;
    }
    switch (cmd->op) {
    case S_OP_MGET:
        anna_resp_put_array(out, cmd->nsub);
        for (uint32_t i = 0; i < cmd->nsub; i++)
            anna_resp_buf_append(out, cmd->buf.data + cmd->spans[i].off, cmd->spans[i].len);
        break;
    case S_OP_MSET:
        anna_resp_put_simple(out, "OK");
        break;
    case S_OP_EXISTS:
    case S_OP_DEL:
    case S_OP_SADD:
        anna_resp_put_int(out, cmd->count);
        break;
    case S_OP_INFO:
    case S_OP_DBSIZE:
        s_emit_info(self, cmd, out);
        break;
    default:
        anna_resp_buf_append(out, cmd->buf.data, cmd->buf.len);
        break;
    }
}

static void s_note_reply(s_conn_t *conn, size_t bytes)
{
    bytes = bytes ? bytes : 1;
    conn->avg_reply = conn->avg_reply ? (7 * conn->avg_reply + bytes) / 8 : bytes;
}

//  Writes the replies of the completed commands at the head of the ring, in order.
static void s_advance(s_loop_t *self, s_conn_t *conn)
{
    bool any = false;
    while (conn->head < conn->tail) {
        s_cmd_t *cmd = &conn->cmds[conn->head & (conn->cmds_cap - 1)];
        if (!cmd->done)
            break;
        size_t before = conn->out.len;
        s_emit(self, conn, cmd);
        if (!cmd->direct)
            s_note_reply(conn, conn->out.len - before);
        s_cmd_reset(cmd);
        conn->head++;
        any = true;
    }
    size_t waiting = conn->out.len - conn->out_sent;
    if ((any || waiting) && (conn->head == conn->tail || waiting >= S_FLUSH_PARTIAL ||
                             conn->closing || conn->eof))
        s_dirty(self, conn);
}

//  A command got its last result.
static void s_complete(s_loop_t *self, s_conn_t *conn, uint64_t seq, s_cmd_t *cmd)
{
    cmd->done = true;
    if (seq == conn->head)
        s_advance(self, conn);
}

//  The first error of a multi-part command wins; later results only count down.
static void s_fail_cmd(s_cmd_t *cmd, const char *text)
{
    if (cmd->failed)
        return;
    cmd->failed = true;
    cmd->buf.len = 0;
    anna_resp_put_error(&cmd->buf, text);
}

//  ---- results ------------------------------------------------------------------------------

typedef enum { S_V_ABSENT, S_V_STRING, S_V_SET, S_V_OTHER, S_V_ERROR } s_vkind_t;

typedef struct {
    s_vkind_t kind;
    const uint8_t *data;        //  STRING: the value; SET: the SetValue payload
    size_t len;
    int lattice;                //  OTHER: the lattice kind
    char error[320];            //  ERROR: the reply text
} s_value_t;

static void s_worker_error(const anna_resp_tuple_t *t, char *buf, size_t len)
{
    int mlen = (int)(t->error_message_len > 256 ? 256 : t->error_message_len);
    switch (t->error) {
    case S_E_LATTICE:
        snprintf(buf, len, "%s", S_WRONGTYPE);
        break;
    case S_E_TIMEOUT:
        snprintf(buf, len, "%.*s", mlen, t->error_message ? t->error_message : "");
        break;
    case S_E_BAD_REQUEST:
    case S_E_TOO_LARGE:
        snprintf(buf, len, "ERR %.*s", mlen, t->error_message ? t->error_message : "");
        break;
    case S_E_WRONG_THREAD:
        //  In a cluster, a key of other nodes (the message names them): RESP clients have no
        //  routing tier, so they must ask one of those.
        if (mlen > 0) {
            snprintf(buf, len, "ERR key %.*s", mlen, t->error_message);
            break;
        }
        //  fall through
    default:
        snprintf(buf, len, "ERR internal error %d from the worker thread: %.*s", t->error, mlen,
                 t->error_message ? t->error_message : "");
        break;
    }
}

//  What a GET tuple found.
static void s_classify(const anna_resp_tuple_t *t, s_value_t *v)
{
    v->kind = S_V_ERROR;
    v->data = NULL;
    v->len = 0;
    v->lattice = 0;
    if (t->error == S_E_KEY_DNE) {
        v->kind = S_V_ABSENT;
        return;
    }
    if (t->error) {
        s_worker_error(t, v->error, sizeof v->error);
        return;
    }
    v->lattice = t->lattice_type;
    if (t->lattice_type == S_LAT_LWW) {
        uint64_t ts;
        uint32_t writer;
        if (anna_resp_codec_lww(t->payload, t->payload_len, &ts, &writer, &v->data, &v->len)) {
            v->len = 0;
            snprintf(v->error, sizeof v->error, "ERR undecodable value from the worker");
            return;
        }
        v->kind = writer == ANNA_RESP_TOMBSTONE_WRITER && v->len == 0 ? S_V_ABSENT : S_V_STRING;
        if (v->kind == S_V_ABSENT)
            v->data = NULL;
    } else if (t->lattice_type == S_LAT_SET || t->lattice_type == S_LAT_ORDERED_SET) {
        v->data = t->payload;
        v->len = t->payload_len;
        //  Redis has no empty sets: an empty one (an Anna client can store it) is absent.
        v->kind = t->payload_len == 0 ? S_V_ABSENT : S_V_SET;
    } else
        v->kind = S_V_OTHER;
}

static const char *s_type_name(const s_value_t *v)
{
    static const char *names[] = {[3] = "single_causal", [4] = "multi_causal", [6] = "priority",
                                  [16] = "bool", [17] = "max", [18] = "map",
                                  [19] = "vector_clock"};
    switch (v->kind) {
    case S_V_ABSENT: return "none";
    case S_V_STRING: return "string";
    case S_V_SET: return "set";
    default:
        return v->lattice >= 0 && v->lattice < 20 && names[v->lattice] ? names[v->lattice]
                                                                       : "unknown";
    }
}

//  Counts members, and checks whether one is in the set (member may be NULL).
static size_t s_set_scan(const s_value_t *v, const void *member, size_t mlen, bool *found)
{
    anna_resp_set_iter_t it = {v->data, v->data + v->len};
    const uint8_t *item;
    size_t ilen, n = 0;
    if (found)
        *found = false;
    while (anna_resp_codec_set_next(&it, &item, &ilen) == 1) {
        n++;
        if (member && found && ilen == mlen && memcmp(item, member, mlen) == 0)
            *found = true;
    }
    return n;
}

//  memcmp order, shorter first on a common prefix: the order our sets are stored in.
static int s_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : alen < blen ? -1 : alen > blen;
}

static int s_span_cmp(const void *x, const void *y, void *base)
{
    const s_span_t *a = x, *b = y;
    return s_bytes_cmp((const char *)base + a->off, a->len, (const char *)base + b->off,
                       b->len);
}

//  SADD's count: how many of the (sorted, distinct) members are not in the set.
static int64_t s_count_new(const s_cmd_t *cmd, const s_value_t *v)
{
    int64_t fresh = 0;
    anna_resp_set_iter_t it = {v->data, v->data + v->len};
    const uint8_t *item = NULL;
    size_t ilen = 0;
    int more = v->kind == S_V_SET ? anna_resp_codec_set_next(&it, &item, &ilen) : 0;
    for (uint32_t i = 0; i < cmd->nsub; i++) {
        const char *m = cmd->buf.data + cmd->spans[i].off;
        size_t mlen = cmd->spans[i].len;
        int c = 1;
        while (more == 1 && (c = s_bytes_cmp(item, ilen, m, mlen)) < 0)
            more = anna_resp_codec_set_next(&it, &item, &ilen);
        if (more != 1 || c != 0)
            fresh++;
    }
    return fresh;
}

static void s_enqueue_tombstones(s_loop_t *self, s_conn_t *conn, uint64_t seq, s_cmd_t *cmd)
{
    cmd->phase = 1;
    for (uint32_t i = 0; i < cmd->nsub; i++)
        if (cmd->spans[i].state) {
            cmd->pending++;
            s_enqueue_put_lww(self, conn, seq, i, cmd->buf.data + cmd->spans[i].off,
                              cmd->spans[i].len, ANNA_RESP_TOMBSTONE_WRITER, "", 0);
        }
}

//  One tuple's result for command seq of conn.
static void s_result(s_loop_t *self, s_conn_t *conn, uint64_t seq, s_cmd_t *cmd, uint32_t sub,
                     const anna_resp_tuple_t *t)
{
    assert(cmd->pending > 0);
    cmd->pending--;
    s_value_t v;
    //  Single-result commands write straight into out when they are at the head.
    anna_resp_buf_t *dst = &cmd->buf;
    switch (cmd->op) {
    case S_OP_GET:
    case S_OP_SET:
    case S_OP_SCARD:
    case S_OP_SMEMBERS:
    case S_OP_TYPE:
    case S_OP_STRLEN:
        if (seq == conn->head) {
            dst = &conn->out;
            cmd->direct = true;
        }
        break;
    default:
        break;
    }
    size_t before = dst->len;
    switch (cmd->op) {
    case S_OP_GET:
        s_classify(t, &v);
        if (v.kind == S_V_STRING)
            anna_resp_put_bulk(dst, v.data, v.len);
        else if (v.kind == S_V_ABSENT)
            anna_resp_put_nil(dst);
        else
            anna_resp_put_error(dst, v.kind == S_V_ERROR ? v.error : S_WRONGTYPE);
        break;
    case S_OP_SET:
        if (t->error) {
            s_worker_error(t, v.error, sizeof v.error);
            anna_resp_put_error(dst, v.error);
        } else
            anna_resp_put_simple(dst, "OK");
        break;
    case S_OP_STRLEN:
    case S_OP_TYPE:
    case S_OP_SCARD:
    case S_OP_SMEMBERS:
        s_classify(t, &v);
        if (v.kind == S_V_ERROR)
            anna_resp_put_error(dst, v.error);
        else if (cmd->op == S_OP_TYPE)
            anna_resp_put_simple(dst, s_type_name(&v));
        else if (cmd->op == S_OP_STRLEN)
            v.kind == S_V_SET || v.kind == S_V_OTHER ? anna_resp_put_error(dst, S_WRONGTYPE)
                                                     : anna_resp_put_int(dst, (int64_t)v.len);
        else if (v.kind == S_V_STRING || v.kind == S_V_OTHER)
            anna_resp_put_error(dst, S_WRONGTYPE);
        else if (cmd->op == S_OP_SCARD)
            anna_resp_put_int(dst, v.kind == S_V_SET ? (int64_t)s_set_scan(&v, NULL, 0, NULL)
                                                     : 0);
        else if (v.kind == S_V_ABSENT)
            anna_resp_put_array(dst, 0);
        else {
            anna_resp_put_array(dst, (int64_t)s_set_scan(&v, NULL, 0, NULL));
            anna_resp_set_iter_t it = {v.data, v.data + v.len};
            const uint8_t *item;
            size_t ilen;
            while (anna_resp_codec_set_next(&it, &item, &ilen) == 1)
                anna_resp_put_bulk(dst, item, ilen);
        }
        break;
    case S_OP_SISMEMBER: {
        s_classify(t, &v);
        bool found = false;
        if (v.kind == S_V_SET)
            s_set_scan(&v, cmd->buf.data, cmd->buf.len, &found);
        cmd->buf.len = 0;
        if (v.kind == S_V_ERROR)
            anna_resp_put_error(dst, v.error);
        else if (v.kind == S_V_STRING || v.kind == S_V_OTHER)
            anna_resp_put_error(dst, S_WRONGTYPE);
        else
            anna_resp_put_int(dst, found);
        break;
    }
    case S_OP_MGET: {
        if (cmd->failed)
            break;
        s_classify(t, &v);
        s_span_t *span = &cmd->spans[sub];
        span->off = cmd->buf.len;
        //  Redis answers nil for a key of another type in MGET.
        if (v.kind == S_V_STRING)
            anna_resp_put_bulk(&cmd->buf, v.data, v.len);
        else if (v.kind == S_V_ERROR)
            s_fail_cmd(cmd, v.error);
        else
            anna_resp_put_nil(&cmd->buf);
        span->len = cmd->buf.len - span->off;
        break;
    }
    case S_OP_MSET:
        if (t->error) {
            s_worker_error(t, v.error, sizeof v.error);
            s_fail_cmd(cmd, v.error);
        }
        break;
    case S_OP_EXISTS:
        s_classify(t, &v);
        if (v.kind == S_V_ERROR)
            s_fail_cmd(cmd, v.error);
        else if (v.kind != S_V_ABSENT)
            cmd->count++;
        break;
    case S_OP_DEL:
        if (cmd->phase == 0) {
            s_classify(t, &v);
            cmd->spans[sub].state = v.kind == S_V_STRING;
            if (v.kind == S_V_ERROR)
                s_fail_cmd(cmd, v.error);
            else if (v.kind == S_V_SET || v.kind == S_V_OTHER)
                s_fail_cmd(cmd, "ERR DEL removes string values only: this key holds a lattice "
                                "that only grows (nothing was deleted)");
            if (cmd->pending == 0 && !cmd->failed)
                s_enqueue_tombstones(self, conn, seq, cmd);
        } else if (t->error) {
            s_worker_error(t, v.error, sizeof v.error);
            s_fail_cmd(cmd, v.error);
        } else
            cmd->count++;
        if (cmd->pending == 0) {
            conn->barrier = false;
            s_work(self, conn);
        }
        break;
    case S_OP_SADD:
        if (sub == 0) {
            s_classify(t, &v);
            if (v.kind == S_V_ERROR)
                s_fail_cmd(cmd, v.error);
            else if (v.kind == S_V_STRING || v.kind == S_V_OTHER)
                s_fail_cmd(cmd, S_WRONGTYPE);
            else
                cmd->count = s_count_new(cmd, &v);
        } else if (t->error) {
            s_worker_error(t, v.error, sizeof v.error);
            s_fail_cmd(cmd, v.error);
        }
        break;
    case S_OP_INFO:
    case S_OP_DBSIZE: {
        s_classify(t, &v);
        s_span_t *span = &cmd->spans[sub];
        span->off = cmd->buf.len;
        if (v.kind == S_V_STRING)
            anna_resp_buf_append(&cmd->buf, v.data, v.len);
        span->len = cmd->buf.len - span->off;
        break;
    }
    case S_OP_READY:
        assert(false && "a READY command has no results");
        break;
    }
    if (cmd->direct)
        s_note_reply(conn, dst->len - before);
    if (cmd->pending == 0)
        s_complete(self, conn, seq, cmd);
}

static void s_deliver(s_loop_t *self, const s_target_t *target, const anna_resp_tuple_t *t)
{
    s_conn_t *conn = s_conn_at(self, target->conn, target->gen);
    if (!conn)
        return;                 //  closed meanwhile
    s_cmd_t *cmd = s_cmd_at(conn, target->cmd);
    if (cmd && cmd->pending > 0)
        s_result(self, conn, target->cmd, cmd, target->sub, t);
}

//  Removes a batch from its worker's FIFO (it must be the head) and frees its slot.
static void s_batch_release(s_loop_t *self, s_batch_t *b)
{
    if (b->in_flight) {
        s_run_t *run = &self->runs[b->worker];
        if (run->fifo_head == b->seq) {
            run->fifo_head = b->next;
            if (!run->fifo_head)
                run->fifo_tail = 0;
            run->inflight--;
        }
    }
    b->seq = 0;
    b->ntargets = 0;
    b->in_flight = false;
}

//  Delivering a result may enqueue tuples (DEL's second phase), which may grow the batch
//  table and move the batch: the targets array itself stays put (the slot stays busy until
//  released, so nobody reuses it), and the batch is looked up again by seq afterwards.
static void s_fail_batch(s_loop_t *self, s_batch_t *b, const char *why)
{
    anna_resp_tuple_t t = {0};
    t.error = S_E_TIMEOUT;
    t.error_message = why;
    t.error_message_len = strlen(why);
    self->stats.timeouts++;
    if (cb_log_ratelimit(&self->log_last))
        cb_warn("resp thread %" PRIu32 ": request %" PRIu64 " to worker %" PRIu32 " failed: %s",
                self->index, b->seq, b->worker, why);
    uint64_t seq = b->seq;
    s_target_t *targets = b->targets;
    size_t n = b->ntargets;
    for (size_t i = 0; i < n; i++)
        s_deliver(self, &targets[i], &t);
    s_batch_release(self, s_batch(self, seq));
}

static void s_handle_response(s_loop_t *self, const uint8_t *data, size_t size)
{
    anna_resp_response_t r;
    char id[24];
    if (anna_resp_codec_response(&r, data, size) != 0 || r.id_len == 0 ||
        r.id_len >= sizeof id) {
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("resp thread %" PRIu32 ": undecodable answer (%zu bytes) dropped",
                    self->index, size);
        return;
    }
    memcpy(id, r.id, r.id_len);
    id[r.id_len] = '\0';
    uint64_t seq = strtoull(id, NULL, 10);
    s_batch_t *b = seq ? s_batch(self, seq) : NULL;
    if (!b || !b->in_flight)
        return;                 //  failed by timeout already
    //  A worker answers in the order it was asked: requests older than this one that are
    //  still waiting will never be answered.
    s_run_t *run = &self->runs[b->worker];
    while (run->fifo_head && run->fifo_head != seq)
        s_fail_batch(self, s_batch(self, run->fifo_head),
                     "ERR the worker thread dropped a request (overloaded?)");
    //  As in s_fail_batch: targets stay put while delivering; b may move.
    s_target_t *targets = b->targets;
    size_t n = b->ntargets;
    anna_resp_tuple_t t;
    size_t i = 0;
    while (i < n && anna_resp_codec_next_tuple(&r, &t) == 1)
        s_deliver(self, &targets[i++], &t);
    if (i < n) {
        memset(&t, 0, sizeof t);
        t.error = r.error ? r.error : S_E_BAD_REQUEST;
        t.error_message = r.error_message_len ? r.error_message : "short answer from the worker";
        t.error_message_len = r.error_message_len ? r.error_message_len : strlen(t.error_message);
        while (i < n)
            s_deliver(self, &targets[i++], &t);
    }
    s_batch_release(self, s_batch(self, seq));
}

static void s_drain_responses(s_loop_t *self)
{
    self->answers_left = true;
    for (int n = 0; n < S_DRAIN_MAX; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            self->answers_left = false;
            return;
        }
        s_handle_response(self, zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
    }
}

static void s_check_timeouts(s_loop_t *self)
{
    int64_t now = cb_clock_mono_ms();
    for (int w = 0; w < self->config->threads; w++) {
        s_run_t *run = &self->runs[w];
        while (run->fifo_head) {
            s_batch_t *b = s_batch(self, run->fifo_head);
            if (now - b->sent_ms < S_TIMEOUT_MS)
                break;
            s_fail_batch(self, b, "ERR the worker thread did not answer in time");
        }
    }
}

//  ---- commands -----------------------------------------------------------------------------

typedef struct {
    const char *name;
    int arity;                  //  Redis convention: n = exactly n words, -n = at least n
    s_op_t op;                  //  S_OP_READY for commands answered here
} s_command_t;

//  Answered by us, with the workers' help for the key commands. GET and SET first: the
//  table is scanned in order.
static const s_command_t s_commands[] = {
    {"get", 2, S_OP_GET},           {"set", -3, S_OP_SET},
    {"mget", -2, S_OP_MGET},        {"mset", -3, S_OP_MSET},
    {"del", -2, S_OP_DEL},          {"unlink", -2, S_OP_DEL},
    {"exists", -2, S_OP_EXISTS},    {"sadd", -3, S_OP_SADD},
    {"smembers", 2, S_OP_SMEMBERS}, {"sismember", 3, S_OP_SISMEMBER},
    {"scard", 2, S_OP_SCARD},       {"type", 2, S_OP_TYPE},
    {"strlen", 2, S_OP_STRLEN},     {"info", -1, S_OP_INFO},
    {"dbsize", 1, S_OP_DBSIZE},     {"ping", -1, S_OP_READY},
    {"echo", 2, S_OP_READY},        {"auth", -2, S_OP_READY},
    {"hello", -1, S_OP_READY},      {"select", 2, S_OP_READY},
    {"quit", -1, S_OP_READY},       {"command", -1, S_OP_READY},
    {"client", -2, S_OP_READY},     {"config", -2, S_OP_READY},
    {"reset", 1, S_OP_READY},
};
#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

//  Redis commands we know but refuse, with the reason.
static const struct {
    const char *names;          //  space-separated, each surrounded by spaces
    const char *why;
} s_refused[] = {
    {" srem spop smove ", "SET values are grow-only lattices: members cannot be removed"},
    {" incr incrby decr decrby incrbyfloat append getset setnx setex psetex msetnx getdel "
     "getex setrange ",
     "values are last-writer-wins lattices: no read-modify-write, conditional write or TTL"},
    {" expire pexpire expireat pexpireat ttl pttl persist ", "keys have no TTL in this store"},
    {" flushall flushdb ", "lattices only grow: use DEL on string keys"},
    {" keys scan randomkey rename renamenx move ", "the RESP front end does not list keys"},
    {" multi exec discard watch unwatch ", "transactions are not supported"},
};

static const s_command_t *s_command_find(const char *name, size_t len)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strlen(s_commands[i].name) == len && strncasecmp(s_commands[i].name, name, len) == 0)
            return &s_commands[i];
    return NULL;
}

static const char *s_refused_why(const char *name, size_t len)
{
    char word[24];
    if (len + 3 > sizeof word)
        return NULL;
    word[0] = ' ';
    for (size_t i = 0; i < len; i++)
        word[1 + i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    word[len + 1] = ' ';
    word[len + 2] = '\0';
    for (size_t i = 0; i < sizeof s_refused / sizeof s_refused[0]; i++)
        if (strstr(s_refused[i].names, word))
            return s_refused[i].why;
    return NULL;
}

//  "ERR unknown command 'foo', with args beginning with: 'a' 'b' ", as Redis 7 words it.
static void s_unknown(anna_resp_buf_t *out, const char *base, const anna_resp_arg_t *args,
                      size_t nargs)
{
    char text[400];
    int n = snprintf(text, sizeof text, "ERR unknown command '%.*s', with args beginning with: ",
                     (int)(args[0].len > 128 ? 128 : args[0].len), base + args[0].off);
    size_t at = n > 0 ? (size_t)n : 0, start = at;
    for (size_t i = 1; i < nargs && at - start < 128 && at < sizeof text - 1; i++) {
        size_t room = 128 - (at - start);
        n = snprintf(text + at, sizeof text - at, "'%.*s' ",
                     (int)(args[i].len > room ? room : args[i].len), base + args[i].off);
        at += n > 0 ? (size_t)n : 0;
    }
    text[at < sizeof text ? at : sizeof text - 1] = '\0';
    anna_resp_put_error(out, text);
}

//  A decimal integer argument (the whole argument, at most 18 digits).
static bool s_arg_int(const char *base, const anna_resp_arg_t *arg, int64_t *out)
{
    const char *p = base + arg->off;
    size_t i = arg->len && p[0] == '-' ? 1 : 0;
    if (arg->len == i || arg->len - i > 18)
        return false;
    int64_t v = 0;
    for (; i < arg->len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = p[0] == '-' ? -v : v;
    return true;
}

static bool s_password_ok(const char *want, const char *got, size_t glen)
{
    //  Constant time in the length of the attempt.
    size_t wlen = strlen(want);
    unsigned diff = wlen != glen;
    for (size_t i = 0; i < glen; i++)
        diff |= (unsigned char)got[i] ^ (unsigned char)(i < wlen ? want[i] : 0);
    return diff == 0;
}

static void s_hello_reply(s_conn_t *conn, anna_resp_buf_t *out)
{
    anna_resp_put_array(out, 14);
    const char *pairs[][2] = {{"server", "anna"}, {"version", "7.0.0"}};
    for (int i = 0; i < 2; i++) {
        anna_resp_put_bulk(out, pairs[i][0], strlen(pairs[i][0]));
        anna_resp_put_bulk(out, pairs[i][1], strlen(pairs[i][1]));
    }
    anna_resp_put_bulk(out, "proto", 5);
    anna_resp_put_int(out, 2);
    anna_resp_put_bulk(out, "id", 2);
    anna_resp_put_int(out, (int64_t)conn->id);
    anna_resp_put_bulk(out, "mode", 4);
    anna_resp_put_bulk(out, "standalone", 10);
    anna_resp_put_bulk(out, "role", 4);
    anna_resp_put_bulk(out, "master", 6);
    anna_resp_put_bulk(out, "modules", 7);
    anna_resp_put_array(out, 0);
}

//  Commands answered without the workers (QUIT marks the connection closing).
static void s_local(s_loop_t *self, s_conn_t *conn, const char *base,
                    const anna_resp_arg_t *args, size_t nargs)
{
    anna_resp_buf_t *out = s_reply(conn);
    const char *name = base + args[0].off;
    size_t nlen = args[0].len;
    const anna_resp_arg_t *a1 = nargs > 1 ? &args[1] : NULL;
    const char *password = self->config->resp_password;
#define S_IS(word) (nlen == strlen(word) && strncasecmp(name, word, nlen) == 0)
    if (S_IS("quit")) {
        anna_resp_put_simple(out, "OK");
        conn->closing = true;
    } else if (S_IS("auth")) {
        //  AUTH password, or AUTH default password (the only user).
        const anna_resp_arg_t *pw = nargs == 2 ? a1 : nargs == 3 ? &args[2] : NULL;
        if (!pw)
            anna_resp_put_error(out, "ERR syntax error");
        else if (!password[0])
            anna_resp_put_error(out, "ERR AUTH <password> called without any password "
                                     "configured for the default user. Are you sure your "
                                     "configuration is correct?");
        else if ((nargs == 3 && !s_arg_is(base, a1, "default")) ||
                 !s_password_ok(password, base + pw->off, pw->len))
            anna_resp_put_error(out, "WRONGPASS invalid username-password pair or user is "
                                     "disabled.");
        else {
            conn->authed = true;
            anna_resp_put_simple(out, "OK");
        }
    } else if (S_IS("hello")) {
        int64_t ver = 2;
        if (a1 && !s_arg_int(base, a1, &ver)) {
            anna_resp_put_error(out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver != 2) {
            anna_resp_put_error(out, "NOPROTO sorry, this protocol version is not supported.");
            return;
        }
        const char *setname = NULL;
        size_t setname_len = 0;
        for (size_t i = 2; i < nargs; i++) {
            if (s_arg_is(base, &args[i], "auth") && i + 2 < nargs) {
                if (!password[0] || !s_arg_is(base, &args[i + 1], "default") ||
                    !s_password_ok(password, base + args[i + 2].off, args[i + 2].len)) {
                    anna_resp_put_error(out, password[0]
                                                 ? "WRONGPASS invalid username-password pair "
                                                   "or user is disabled."
                                                 : "ERR AUTH <password> called without any "
                                                   "password configured for the default user. "
                                                   "Are you sure your configuration is "
                                                   "correct?");
                    return;
                }
                conn->authed = true;
                i += 2;
            } else if (s_arg_is(base, &args[i], "setname") && i + 1 < nargs) {
                setname = base + args[i + 1].off;
                setname_len = args[i + 1].len;
                i++;
            } else {
                anna_resp_put_errorf(out, "ERR Syntax error in HELLO option '%.*s'",
                                     (int)(args[i].len > 64 ? 64 : args[i].len),
                                     base + args[i].off);
                return;
            }
        }
        if (!conn->authed) {
            anna_resp_put_error(out, "NOAUTH HELLO must be called with the client already "
                                     "authenticated, otherwise the HELLO <proto> AUTH <user> "
                                     "<pass> option can be used to authenticate the client and "
                                     "select the RESP protocol version at the same time");
            return;
        }
        if (setname) {
            cb_free(conn->name);
            conn->name = cb_strndup(setname, setname_len);
        }
        s_hello_reply(conn, out);
    } else if (!conn->authed)
        anna_resp_put_error(out, "NOAUTH Authentication required.");
    else if (S_IS("ping")) {
        if (nargs > 2)
            anna_resp_put_error(out, "ERR wrong number of arguments for 'ping' command");
        else if (a1)
            anna_resp_put_bulk(out, base + a1->off, a1->len);
        else
            anna_resp_put_simple(out, "PONG");
    } else if (S_IS("echo"))
        anna_resp_put_bulk(out, base + a1->off, a1->len);
    else if (S_IS("select")) {
        int64_t db;
        if (!s_arg_int(base, a1, &db))
            anna_resp_put_error(out, "ERR value is not an integer or out of range");
        else if (db != 0)
            anna_resp_put_error(out, "ERR DB index is out of range");
        else
            anna_resp_put_simple(out, "OK");
    } else if (S_IS("reset")) {
        cb_free(conn->name);
        conn->name = NULL;
        conn->authed = !password[0];
        anna_resp_put_simple(out, "RESET");
    } else if (S_IS("command")) {
        //  Enough for redis-cli and client libraries: they fall back when the details are
        //  missing.
        if (nargs == 1 || s_arg_is(base, a1, "docs") || s_arg_is(base, a1, "list"))
            anna_resp_put_array(out, 0);
        else if (s_arg_is(base, a1, "count"))
            anna_resp_put_int(out, (int64_t)S_NCOMMANDS);
        else if (s_arg_is(base, a1, "info")) {
            anna_resp_put_array(out, (int64_t)nargs - 2);
            for (size_t i = 2; i < nargs; i++)
                anna_resp_put_nil(out);
        } else
            anna_resp_put_errorf(out, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
                                 (int)(a1->len > 64 ? 64 : a1->len), base + a1->off);
    } else if (S_IS("client")) {
        if (s_arg_is(base, a1, "setname") && nargs == 3) {
            const char *n = base + args[2].off;
            bool ok = true;
            for (size_t i = 0; i < args[2].len; i++)
                ok &= n[i] > ' ' && n[i] <= '~';
            if (!ok)
                anna_resp_put_error(out, "ERR Client names cannot contain spaces, newlines or "
                                         "special characters.");
            else {
                cb_free(conn->name);
                conn->name = cb_strndup(n, args[2].len);
                anna_resp_put_simple(out, "OK");
            }
        } else if (s_arg_is(base, a1, "getname") && nargs == 2) {
            if (conn->name)
                anna_resp_put_bulk(out, conn->name, strlen(conn->name));
            else
                anna_resp_put_nil(out);
        } else if (s_arg_is(base, a1, "id") && nargs == 2)
            anna_resp_put_int(out, (int64_t)conn->id);
        else if (s_arg_is(base, a1, "setinfo") || s_arg_is(base, a1, "no-evict") ||
                 s_arg_is(base, a1, "no-touch"))
            anna_resp_put_simple(out, "OK");
        else
            anna_resp_put_errorf(out, "ERR unknown subcommand or wrong number of arguments for "
                                      "'%.*s'. Try CLIENT HELP.",
                                 (int)(a1->len > 64 ? 64 : a1->len), base + a1->off);
    } else if (S_IS("config")) {
        //  redis-benchmark reads `save` and `appendonly` to print them: say what is true.
        if (s_arg_is(base, a1, "get") && nargs == 3) {
            const anna_resp_arg_t *p = &args[2];
            if (s_arg_is(base, p, "save") || s_arg_is(base, p, "appendonly")) {
                anna_resp_put_array(out, 2);
                anna_resp_put_bulk(out, base + p->off, p->len);
                if (s_arg_is(base, p, "save"))
                    anna_resp_put_bulk(out, "", 0);
                else
                    anna_resp_put_bulk(out, "no", 2);
            } else
                anna_resp_put_array(out, 0);
        } else
            anna_resp_put_error(out, "ERR only CONFIG GET is supported: anna-server is "
                                     "configured by its options (anna-server --help)");
    } else
        assert(false && "s_local called for a command it does not answer");
#undef S_IS
}

//  Stores the arguments args[from..nargs) in cmd's buffer with one span each.
static void s_keep_args(s_cmd_t *cmd, const char *base, const anna_resp_arg_t *args,
                        size_t from, size_t nargs, size_t step)
{
    size_t n = (nargs - from + step - 1) / step;
    s_span_t *spans = s_cmd_spans(cmd, n);
    cmd->buf.len = 0;
    for (size_t i = 0; i < n; i++) {
        const anna_resp_arg_t *a = &args[from + i * step];
        spans[i].off = cmd->buf.len;
        spans[i].len = a->len;
        spans[i].state = 0;
        anna_resp_buf_append(&cmd->buf, base + a->off, a->len);
    }
    cmd->nsub = (uint32_t)n;
}

//  Runs one parsed command: answers it here or sends its tuples on their way.
static void s_dispatch(s_loop_t *self, s_conn_t *conn, const char *base,
                       const anna_resp_arg_t *args, size_t nargs)
{
    self->stats.commands++;
    const s_command_t *c = s_command_find(base + args[0].off, args[0].len);
    if (!c) {
        const char *why = conn->authed ? s_refused_why(base + args[0].off, args[0].len) : NULL;
        if (!conn->authed)
            anna_resp_put_error(s_reply(conn), "NOAUTH Authentication required.");
        else if (why)
            anna_resp_put_errorf(s_reply(conn), "ERR '%.*s' is not supported: %s",
                                 (int)args[0].len, base + args[0].off, why);
        else
            s_unknown(s_reply(conn), base, args, nargs);
        return;
    }
    if ((c->arity > 0 && (int64_t)nargs != c->arity) ||
        (c->arity < 0 && (int64_t)nargs < -c->arity) ||
        (c->op == S_OP_MSET && nargs % 2 == 0)) {
        anna_resp_put_errorf(s_reply(conn), "ERR wrong number of arguments for '%s' command",
                             c->name);
        return;
    }
    if (c->op == S_OP_READY) {
        s_local(self, conn, base, args, nargs);
        return;
    }
    if (!conn->authed) {
        anna_resp_put_error(s_reply(conn), "NOAUTH Authentication required.");
        return;
    }
    //  Keys: every key argument must be storable before anything is sent.
    size_t first = 1, step = c->op == S_OP_MSET ? 2 : 1;
    size_t last = c->op == S_OP_MGET || c->op == S_OP_MSET || c->op == S_OP_EXISTS ||
                          c->op == S_OP_DEL
                      ? nargs
                  : c->op == S_OP_INFO || c->op == S_OP_DBSIZE ? 1
                                                               : 2;
    for (size_t i = first; i < last; i += step) {
        const char *problem = s_key_problem(base, &args[i]);
        if (problem) {
            anna_resp_put_error(s_reply(conn), problem);
            return;
        }
    }
    if (c->op == S_OP_SET && nargs > 3) {
        anna_resp_put_errorf(s_reply(conn),
                             "ERR SET option '%.*s' is not supported: values are last-writer-"
                             "wins lattices (no conditional write, no TTL)",
                             (int)(args[3].len > 32 ? 32 : args[3].len), base + args[3].off);
        return;
    }
    uint64_t seq;
    s_cmd_t *cmd = s_cmd_push(conn, c->op, &seq);
    const char *key = nargs > 1 ? base + args[1].off : NULL;
    size_t klen = nargs > 1 ? args[1].len : 0;
    switch (c->op) {
    case S_OP_GET:
    case S_OP_SMEMBERS:
    case S_OP_SCARD:
    case S_OP_TYPE:
    case S_OP_STRLEN:
        cmd->pending = 1;
        s_enqueue_get(self, conn, seq, 0, key, klen);
        break;
    case S_OP_SISMEMBER:
        cmd->pending = 1;
        anna_resp_buf_append(&cmd->buf, base + args[2].off, args[2].len);
        s_enqueue_get(self, conn, seq, 0, key, klen);
        break;
    case S_OP_SET:
        cmd->pending = 1;
        s_enqueue_put_lww(self, conn, seq, 0, key, klen, self->writer, base + args[2].off,
                          args[2].len);
        break;
    case S_OP_MGET:
    case S_OP_EXISTS:
        cmd->nsub = (uint32_t)(nargs - 1);
        cmd->pending = cmd->nsub;
        s_cmd_spans(cmd, cmd->nsub);
        for (size_t i = 1; i < nargs; i++)
            s_enqueue_get(self, conn, seq, (uint32_t)(i - 1), base + args[i].off, args[i].len);
        break;
    case S_OP_MSET:
        cmd->nsub = (uint32_t)(nargs / 2);
        cmd->pending = cmd->nsub;
        for (size_t i = 1; i < nargs; i += 2)
            s_enqueue_put_lww(self, conn, seq, (uint32_t)(i / 2), base + args[i].off,
                              args[i].len, self->writer, base + args[i + 1].off,
                              args[i + 1].len);
        break;
    case S_OP_DEL:
        //  Two phases: read every key, then write tombstones over the live strings only.
        //  Later commands of this connection wait (barrier) so that they see the result.
        s_keep_args(cmd, base, args, 1, nargs, 1);
        cmd->pending = cmd->nsub;
        for (uint32_t i = 0; i < cmd->nsub; i++)
            s_enqueue_get(self, conn, seq, i, cmd->buf.data + cmd->spans[i].off,
                          cmd->spans[i].len);
        conn->barrier = true;
        break;
    case S_OP_SADD: {
        //  A GET then the PUT, back to back to the same worker: the GET sees the set as it
        //  was just before this PUT, which tells how many members are new.
        s_keep_args(cmd, base, args, 2, nargs, 1);
        qsort_r(cmd->spans, cmd->nsub, sizeof *cmd->spans, s_span_cmp, cmd->buf.data);
        uint32_t distinct = 0;
        for (uint32_t i = 0; i < cmd->nsub; i++)
            if (distinct == 0 ||
                s_span_cmp(&cmd->spans[distinct - 1], &cmd->spans[i], cmd->buf.data) != 0)
                cmd->spans[distinct++] = cmd->spans[i];
        cmd->nsub = distinct;
        cmd->pending = 2;
        s_enqueue_get(self, conn, seq, 0, key, klen);
        uint32_t w = s_owner(self, key, klen);
        size_t bytes = klen + 16;
        for (size_t i = 2; i < nargs; i++)
            bytes += args[i].len + 6;
        s_target_set(s_enqueue(self, w, S_REQ_PUT, bytes), conn, seq, 1);
        anna_resp_codec_put_set(&self->runs[w].msg, key, klen, base, &args[2], nargs - 2);
        break;
    }
    case S_OP_INFO:
    case S_OP_DBSIZE: {
        //  The counters of every worker, from its stats key.
        cmd->nsub = (uint32_t)self->config->threads;
        cmd->pending = cmd->nsub;
        s_cmd_spans(cmd, cmd->nsub);
        for (uint32_t t = 0; t < cmd->nsub; t++) {
            char stats_key[64];
            int n = snprintf(stats_key, sizeof stats_key, "%s|%u", ANNA_STATS_KEY, t);
            s_enqueue_get(self, conn, seq, t, stats_key, (size_t)n);
        }
        break;
    }
    default:
        assert(false && "every key command is dispatched");
    }
}

//  ---- connection I/O -----------------------------------------------------------------------

static bool s_stalled(const s_loop_t *self, const s_conn_t *conn)
{
    //  The replies of the commands in flight count against the output limit too, at this
    //  client's average reply size: otherwise a client that does not read could still make
    //  us hold S_MAX_PENDING big replies. Until a reply tells the size, S_FIRST_PENDING
    //  commands may be in flight (slow start); one is always allowed.
    size_t inflight = conn->tail - conn->head;
    size_t window = conn->avg_reply ? S_OUT_LIMIT / conn->avg_reply : S_FIRST_PENDING;
    if (conn->barrier || conn->closing || inflight >= S_MAX_PENDING ||
        conn->out.len - conn->out_sent > S_OUT_LIMIT || (inflight > 0 && inflight >= window))
        return true;
    for (int w = 0; w < self->config->threads; w++)
        if (self->runs[w].inflight >= S_MAX_INFLIGHT)
            return true;
    return false;
}

//  Parses and dispatches the complete commands in conn's input, as far as it may.
static void s_parse_input(s_loop_t *self, s_conn_t *conn)
{
    size_t at = 0;
    while (!s_stalled(self, conn) && at < conn->in.len) {
        size_t used;
        const char *error = NULL;
        int rc = anna_resp_parse(&conn->parser, conn->in.data + at, conn->in.len - at, &used,
                                 &error);
        if (rc < 0) {
            anna_resp_put_errorf(s_reply(conn), "ERR %s", error);
            self->stats.protocol_errors++;
            conn->closing = true;
            at = conn->in.len;
            break;
        }
        if (rc == 1)
            s_dispatch(self, conn, conn->in.data + at, conn->parser.args, conn->parser.nargs);
        if (used == 0)
            break;
        at += used;
    }
    anna_resp_buf_consume(&conn->in, at);
    anna_resp_buf_shrink(&conn->in, S_KEEP_IO);
    if (conn->head == conn->tail && conn->out.len > conn->out_sent)
        s_dirty(self, conn);
}

//  Reads what the socket has, up to the budget. Returns false if the connection closed.
static bool s_read(s_loop_t *self, s_conn_t *conn)
{
    size_t got = 0;
    while (conn->readable && got < S_READ_BUDGET) {
        char *p = anna_resp_buf_reserve(&conn->in, S_READ_MIN);
        size_t room = conn->in.cap - conn->in.len;
        ssize_t n = recv(conn->fd, p, room, 0);
        if (n > 0) {
            conn->in.len += (size_t)n;
            got += (size_t)n;
            if ((size_t)n < room)
                conn->readable = false;     //  drained (edge-triggered: the next edge wakes us)
        } else if (n == 0) {
            conn->readable = false;
            conn->eof = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK)
            conn->readable = false;
        else if (errno != EINTR) {
            s_conn_close(self, conn);
            return false;
        }
    }
    return true;
}

//  Writes pending replies. Returns false if the connection closed.
static bool s_write(s_loop_t *self, s_conn_t *conn)
{
    while (conn->writable && conn->out_sent < conn->out.len) {
        ssize_t n = send(conn->fd, conn->out.data + conn->out_sent,
                         conn->out.len - conn->out_sent, MSG_NOSIGNAL);
        if (n > 0)
            conn->out_sent += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            conn->writable = false;
        else if (n < 0 && errno == EINTR)
            continue;
        else {
            s_conn_close(self, conn);
            return false;
        }
    }
    if (conn->out_sent == conn->out.len) {
        conn->out.len = conn->out_sent = 0;
        anna_resp_buf_shrink(&conn->out, S_KEEP_IO);
        if ((conn->closing || conn->eof) && conn->head == conn->tail &&
            (conn->closing || conn->in.len == 0)) {
            s_conn_close(self, conn);
            return false;
        }
    }
    return true;
}

//  Everything a connection can do now: write, read, parse. Stays in the work list if it
//  has to come back without a new epoll event (input left, or stalled).
static void s_conn_work(s_loop_t *self, s_conn_t *conn)
{
    if (conn->out.len > conn->out_sent && !s_write(self, conn))
        return;
    if (!s_stalled(self, conn) && conn->readable && !s_read(self, conn))
        return;
    s_parse_input(self, conn);
    if (conn->eof && !conn->closing && conn->in.len > 0 && conn->head == conn->tail &&
        !conn->barrier && !s_stalled(self, conn)) {
        //  The peer closed in the middle of a command: it will never be complete.
        conn->in.len = 0;
    }
    if ((conn->eof || conn->closing) && conn->head == conn->tail && conn->out.len == 0 &&
        (conn->closing || conn->in.len == 0)) {
        s_conn_close(self, conn);
        return;
    }
    if (conn->readable || s_stalled(self, conn))
        s_work(self, conn);
}

static void s_accept(s_loop_t *self)
{
    for (int n = 0; n < S_ACCEPT_MAX; n++) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(self->listen_fd, (struct sockaddr *)&peer, &plen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED && cb_log_ratelimit(&self->log_last))
                cb_warn("resp thread %" PRIu32 ": accept: %s", self->index, strerror(errno));
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        int clients = atomic_fetch_add_explicit(&self->owner->clients, 1, memory_order_relaxed);
        if (clients >= self->config->resp_max_clients) {
            atomic_fetch_sub_explicit(&self->owner->clients, 1, memory_order_relaxed);
            static const char msg[] = "-ERR max number of clients reached\r\n";
            ssize_t rc = send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
            (void)rc;
            close(fd);
            self->stats.rejected++;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        uint32_t index;
        if (self->nfree)
            index = self->free_conns[--self->nfree];
        else {
            index = (uint32_t)self->nconns;
            if (self->nconns == self->conns_cap) {
                self->conns_cap = self->conns_cap ? 2 * self->conns_cap : 64;
                self->conns = cb_realloc(self->conns, self->conns_cap * sizeof *self->conns);
            }
            self->conns[self->nconns++] = cb_calloc(1, sizeof(s_conn_t));
            self->conns[index]->fd = -1;
            self->conns[index]->index = index;
        }
        s_conn_t *conn = self->conns[index];
        uint32_t gen = conn->gen;
        memset(conn, 0, sizeof *conn);
        conn->index = index;
        conn->gen = gen;
        conn->fd = fd;
        conn->id = atomic_fetch_add_explicit(&self->owner->next_client_id, 1,
                                             memory_order_relaxed);
        conn->authed = self->config->resp_password[0] == '\0';
        conn->writable = true;
        anna_resp_parser_init(&conn->parser, (size_t)self->config->max_value_bytes >
                                                     ANNA_MAX_KEY_BYTES
                                                 ? (size_t)self->config->max_value_bytes
                                                 : ANNA_MAX_KEY_BYTES);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.u64 = index};
        if (epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            conn->fd = -1;
            s_list_add(&self->free_conns, &self->nfree, &self->free_cap, index);
            atomic_fetch_sub_explicit(&self->owner->clients, 1, memory_order_relaxed);
            continue;
        }
        self->stats.accepted++;
        self->stats.connections++;
    }
}

//  ---- the loop -----------------------------------------------------------------------------

#define S_EV_LISTEN (UINT64_MAX - 1)
#define S_EV_STOP (UINT64_MAX - 2)
#define S_EV_ZMQ (UINT64_MAX - 3)

static bool s_any_inflight(const s_loop_t *self)
{
    for (int w = 0; w < self->config->threads; w++)
        if (self->runs[w].fifo_head)
            return true;
    return false;
}

static void *s_run(void *arg)
{
    s_loop_t *self = arg;
    struct epoll_event events[256];
    int64_t next_check = cb_clock_mono_ms() + 1000;
    while (!self->stopping) {
        //  Do not sleep while a connection has input we can act on now.
        int timeout = -1;
        for (size_t i = 0; i < self->nwork && timeout != 0; i++) {
            s_conn_t *c = self->conns[self->work[i]];
            if (c->fd >= 0 && !s_stalled(self, c) && (c->readable || c->in.len))
                timeout = 0;
        }
        //  The PULL socket's descriptor signals arrivals only since the last drain to empty:
        //  answers left over from a capped drain must not wait for the next signal.
        if (self->answers_left)
            timeout = 0;
        if (timeout < 0 && s_any_inflight(self))
            timeout = 1000;
        int n = epoll_wait(self->epoll_fd, events, 256, timeout);
        if (n < 0 && errno != EINTR) {
            cb_error("resp thread %" PRIu32 ": epoll_wait: %s", self->index, strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == S_EV_STOP)
                self->stopping = true;
            else if (tag == S_EV_LISTEN)
                s_accept(self);
            else if (tag != S_EV_ZMQ && tag < self->nconns) {
                s_conn_t *c = self->conns[tag];
                if (c->fd < 0)
                    continue;
                if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    c->readable = true;
                if (events[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                    c->writable = true;
                s_work(self, c);
            }
        }
        if (self->stopping)
            break;
        s_drain_responses(self);
        //  The work list is swapped out first: processing may queue connections again.
        uint32_t *work = self->work;
        size_t nwork = self->nwork, cap = self->work_cap;
        self->work = self->working;
        self->work_cap = self->working_cap;
        self->nwork = 0;
        self->working = work;
        self->working_cap = cap;
        for (size_t i = 0; i < nwork; i++) {
            s_conn_t *c = self->conns[work[i]];
            c->queued = false;
            if (c->fd >= 0)
                s_conn_work(self, c);
        }
        for (int w = 0; w < self->config->threads; w++)
            if (self->runs[w].inflight < S_PIPELINE_DEPTH)
                s_seal(self, (uint32_t)w);
        for (size_t i = 0; i < self->ndirty; i++) {
            s_conn_t *c = self->conns[self->dirty[i]];
            c->dirty = false;
            if (c->fd < 0)
                continue;
            if (s_write(self, c) && (c->eof || c->closing || c->readable || c->in.len))
                s_work(self, c);
        }
        self->ndirty = 0;
        int64_t now = cb_clock_mono_ms();
        if (now >= next_check) {
            s_check_timeouts(self);
            next_check = now + 1000;
        }
        s_publish(self);
    }
    for (size_t i = 0; i < self->nconns; i++)
        s_conn_close(self, self->conns[i]);
    s_publish(self);
    return NULL;
}

//  ---- set-up -------------------------------------------------------------------------------

//  A listening socket on the RESP port. reuseport: shared with the other RESP threads.
static int s_listen(const anna_config_t *config, int port, bool reuseport, char *err,
                    size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create RESP socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, config->bind, &addr.sin_addr);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        (reuseport && listen(fd, 511) != 0)) {
        snprintf(err, errlen, "cannot bind RESP port %s:%d: %s", config->bind, port,
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void s_loop_destroy(s_loop_t **self_p)
{
    s_loop_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nconns; i++) {
        s_conn_close(self, self->conns[i]);
        cb_free(self->conns[i]);
    }
    cb_free(self->conns);
    cb_free(self->free_conns);
    cb_free(self->work);
    cb_free(self->working);
    cb_free(self->dirty);
    if (self->batches)
        for (size_t i = 0; i < self->nbatches; i++)
            cb_free(self->batches[i].targets);
    cb_free(self->batches);
    if (self->runs)
        for (int w = 0; w < self->config->threads; w++)
            anna_resp_buf_fini(&self->runs[w].msg);
    cb_free(self->runs);
    if (self->push)
        for (int w = 0; w < self->config->threads; w++)
            if (self->push[w])
                zmq_close(self->push[w]);
    cb_free(self->push);
    if (self->pull)
        zmq_close(self->pull);
    if (self->listen_fd >= 0)
        close(self->listen_fd);
    if (self->epoll_fd >= 0)
        close(self->epoll_fd);
    anna_placement_destroy(&self->placement);
    s_owners_fini(&self->owners);
    cb_free(self);
    *self_p = NULL;
}

static s_loop_t *s_loop_new(anna_resp_t *owner, uint32_t index, char *err, size_t errlen)
{
    const anna_config_t *config = &owner->config;
    s_loop_t *self = cb_calloc(1, sizeof *self);
    self->owner = owner;
    self->config = config;
    self->index = index;
    self->listen_fd = self->epoll_fd = -1;
    self->nbatches = 256;
    self->batches = cb_calloc(self->nbatches, sizeof *self->batches);
    self->next_seq = 1;
    self->runs = cb_calloc((size_t)config->threads, sizeof *self->runs);
    self->placement = anna_placement_new((uint32_t)config->threads,
                                         (uint32_t)config->replication, (uint32_t)config->vnodes);
    if (config->threads > 1 && config->threads < S_OWNER_MIXED) {
        s_owners_build(&self->owners, (uint32_t)config->threads, (uint32_t)config->vnodes);
        self->owners.usable = true;
        if (!s_owners_check(self, 4096)) {
            self->owners.usable = false;
            cb_warn("resp thread %" PRIu32 ": owner table disagrees with the placement; "
                    "using the placement (slower)", index);
        }
    }
    //  A writer id of our own for SET's LWW stamps; never the tombstone's.
    uint32_t writer = 0;
    while (writer == 0 || writer == ANNA_RESP_TOMBSTONE_WRITER)
        if (getrandom(&writer, sizeof writer, 0) != sizeof writer)
            writer = (uint32_t)getpid() * 2654435761u + index;
    self->writer = writer;
    self->listen_fd = s_listen(config, owner->port, true, err, errlen);
    self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (self->listen_fd < 0 || self->epoll_fd < 0) {
        if (self->epoll_fd < 0)
            snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        s_loop_destroy(&self);
        return NULL;
    }
    //  Requests and answers travel in process (inproc, in the server's context): no ZeroMQ
    //  I/O thread and no socket on the way, one wake-up per hop. A worker accepts this
    //  response address only on its inproc key socket (anna/worker.h).
    snprintf(self->address, sizeof self->address, ANNA_INPROC_RESP "%" PRIu32, index);
    self->pull = zmq_socket(owner->ctx, ZMQ_PULL);
    int zero = 0, linger = 0;
    if (self->pull) {
        //  No high-water mark: what is in flight is bounded by S_MAX_INFLIGHT per worker.
        zmq_setsockopt(self->pull, ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt(self->pull, ZMQ_LINGER, &linger, sizeof linger);
    }
    if (!self->pull || zmq_bind(self->pull, self->address) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", self->address, zmq_strerror(errno));
        s_loop_destroy(&self);
        return NULL;
    }
    size_t fdlen = sizeof self->pull_fd;
    zmq_getsockopt(self->pull, ZMQ_FD, &self->pull_fd, &fdlen);
    self->push = cb_calloc((size_t)config->threads, sizeof *self->push);
    for (int w = 0; w < config->threads; w++) {
        char endpoint[96];
        snprintf(endpoint, sizeof endpoint, ANNA_INPROC_KEYS "%d", w);
        self->push[w] = zmq_socket(owner->ctx, ZMQ_PUSH);
        if (self->push[w]) {
            zmq_setsockopt(self->push[w], ZMQ_SNDHWM, &zero, sizeof zero);
            zmq_setsockopt(self->push[w], ZMQ_LINGER, &linger, sizeof linger);
        }
        if (!self->push[w] || zmq_connect(self->push[w], endpoint) != 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
            s_loop_destroy(&self);
            return NULL;
        }
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = S_EV_LISTEN};
    epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, self->listen_fd, &ev);
    ev.data.u64 = S_EV_STOP;
    epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, owner->stop_fd, &ev);
    ev.data.u64 = S_EV_ZMQ;
    epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, self->pull_fd, &ev);
    return self;
}

int anna_resp_threads(const anna_config_t *config)
{
    return config->resp_threads > 0 ? config->resp_threads : config->threads;
}

anna_resp_t *anna_resp_new(void *ctx, const anna_config_t *config, char *err, size_t errlen)
{
    assert(ctx && config && anna_config_resp_port(config) > 0);
    anna_resp_t *self = cb_calloc(1, sizeof *self);
    self->config = *config;
    self->ctx = ctx;
    self->port = anna_config_resp_port(config);
    self->started_ms = cb_clock_mono_ms();
    atomic_init(&self->clients, 0);
    atomic_init(&self->next_client_id, 1);
    self->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->nloops = anna_resp_threads(config);
    self->loops = cb_calloc((size_t)self->nloops, sizeof *self->loops);
    self->published = cb_calloc((size_t)self->nloops, sizeof *self->published);
    //  SO_REUSEPORT would let us share the port with another process of the same user
    //  instead of failing: a plain bind first proves the port is free.
    int probe = s_listen(config, self->port, false, err, errlen);
    if (probe < 0 || self->stop_fd < 0) {
        if (self->stop_fd < 0)
            snprintf(err, errlen, "eventfd: %s", strerror(errno));
        if (probe >= 0)
            close(probe);
        anna_resp_destroy(&self);
        return NULL;
    }
    close(probe);
    for (int t = 0; t < self->nloops; t++) {
        self->loops[t] = s_loop_new(self, (uint32_t)t, err, errlen);
        if (!self->loops[t]) {
            anna_resp_destroy(&self);
            return NULL;
        }
    }
    return self;
}

int anna_resp_start(anna_resp_t *self)
{
    for (int t = 0; t < self->nloops; t++) {
        s_loop_t *loop = self->loops[t];
        int rc = pthread_create(&loop->tid, NULL, s_run, loop);
        if (rc)
            return -rc;
        loop->started = true;
    }
    return 0;
}

void anna_resp_stop(anna_resp_t *self)
{
    if (self->stopped)
        return;
    if (self->stop_fd >= 0) {
        uint64_t one = 1;
        ssize_t rc = write(self->stop_fd, &one, sizeof one);
        (void)rc;
    }
    for (int t = 0; t < self->nloops; t++) {
        s_loop_t *loop = self->loops[t];
        if (loop && loop->started && !loop->joined) {
            pthread_join(loop->tid, NULL);
            loop->joined = true;
        }
    }
    self->stopped = true;
}

void anna_resp_stats(const anna_resp_t *self, int t, anna_resp_stats_t *out)
{
    assert(t >= 0 && t < self->nloops);
    uint64_t *v = &out->connections;
    for (int i = 0; i < 8; i++)
        v[i] = atomic_load_explicit(&self->published[t].v[i], memory_order_relaxed);
}

void anna_resp_report(const anna_resp_t *self, FILE *out)
{
    for (int t = 0; t < self->nloops; t++) {
        anna_resp_stats_t s;
        anna_resp_stats(self, t, &s);
        fprintf(out,
                "anna-server resp %d: accepted=%" PRIu64 " rejected=%" PRIu64
                " commands=%" PRIu64 " protocol_errors=%" PRIu64 " batches=%" PRIu64
                " tuples=%" PRIu64 " timeouts=%" PRIu64 "\n",
                t, s.accepted, s.rejected, s.commands, s.protocol_errors, s.batches, s.tuples,
                s.timeouts);
    }
    fflush(out);
}

void anna_resp_destroy(anna_resp_t **self_p)
{
    assert(self_p);
    anna_resp_t *self = *self_p;
    if (!self)
        return;
    anna_resp_stop(self);
    for (int t = 0; t < self->nloops; t++)
        s_loop_destroy(&self->loops[t]);
    cb_free(self->loops);
    cb_free(self->published);
    if (self->stop_fd >= 0)
        close(self->stop_fd);
    cb_free(self);
    *self_p = NULL;
}

//  ---- self-test ----------------------------------------------------------------------------

void anna_resp_test(bool verbose)
{
    //  The command table: unique names, lower case, sane arities; refusals name real
    //  commands that the table does not answer.
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const char *n = s_commands[i].name;
        for (const char *p = n; *p; p++)
            assert(*p >= 'a' && *p <= 'z');
        assert(s_command_find(n, strlen(n)) == &s_commands[i]);
        assert(!s_refused_why(n, strlen(n)));
        assert(s_commands[i].arity != 0);
    }
    assert(s_command_find("GeT", 3) == &s_commands[0]);
    assert(s_refused_why("INCR", 4) && s_refused_why("srem", 4) && !s_refused_why("inc", 3));

    //  Error texts as Redis words them.
    anna_resp_buf_t out = {0};
    char base[] = "foobarbaz";
    anna_resp_arg_t args[3] = {{0, 3}, {3, 3}, {6, 3}};
    s_unknown(&out, base, args, 3);
    const char *want = "-ERR unknown command 'foo', with args beginning with: 'bar' 'baz' \r\n";
    assert(out.len == strlen(want) && !memcmp(out.data, want, out.len));
    out.len = 0;
    anna_resp_arg_t key = {0, 0};
    assert(s_key_problem(base, &key));
    key.len = 3;
    assert(!s_key_problem(base, &key));
    char nul[] = "a\0b";
    key.len = 3;
    assert(s_key_problem(nul, &key));
    anna_resp_buf_fini(&out);

    //  Passwords compare whole.
    assert(s_password_ok("secret", "secret", 6));
    assert(!s_password_ok("secret", "secre", 5) && !s_password_ok("secret", "secret!", 7));
    assert(!s_password_ok("secret", "Secret", 6));

    //  SADD's count of new members walks both sorted lists.
    s_cmd_t cmd = {0};
    char members[] = "bdaf";
    anna_resp_arg_t margs[4] = {{0, 1}, {1, 1}, {2, 1}, {3, 1}};
    s_keep_args(&cmd, members, margs, 0, 4, 1);
    qsort_r(cmd.spans, cmd.nsub, sizeof *cmd.spans, s_span_cmp, cmd.buf.data);
    lat_t set;
    lat_init(&set, LAT_SET);
    lat_set_insert(&set.u.set, "b", 1);
    lat_set_insert(&set.u.set, "c", 1);
    lat_set_insert(&set.u.set, "f", 1);
    anna_resp_buf_t payload = {0};
    anna_resp_arg_t items[3] = {{0, 1}, {1, 1}, {2, 1}};
    anna_resp_codec_put_set(&payload, "k", 1, "bcf", items, 3);
    //  The tuple's payload is its last field: find it by reading the tuple back.
    anna_resp_codec_finish(&payload, 2, "ipc://@x", "1", 1);
    anna_resp_response_t r;
    anna_resp_tuple_t t;
    assert(anna_resp_codec_response(&r, (const uint8_t *)payload.data, payload.len) == 0);
    assert(anna_resp_codec_next_tuple(&r, &t) == 1);
    s_value_t v = {.kind = S_V_SET, .data = t.payload, .len = t.payload_len};
    assert(s_count_new(&cmd, &v) == 2);     //  a and d are new; b and f are there
    v.kind = S_V_ABSENT;
    assert(s_count_new(&cmd, &v) == 4);
    bool found;
    v.kind = S_V_SET;
    assert(s_set_scan(&v, "c", 1, &found) == 3 && found);
    assert(s_set_scan(&v, "a", 1, &found) == 3 && !found);
    lat_fini(&set);
    anna_resp_buf_fini(&payload);
    anna_resp_buf_fini(&cmd.buf);
    cb_free(cmd.spans);

    //  The owner table agrees with the placement: every bucket kind, several shapes.
    uint32_t shapes[][2] = {{2, 200}, {3, 7}, {8, 200}, {5, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        s_loop_t loop = {0};
        loop.placement = anna_placement_new(shapes[i][0], 1, shapes[i][1]);
        s_owners_build(&loop.owners, shapes[i][0], shapes[i][1]);
        loop.owners.usable = true;
        assert(s_owners_check(&loop, 20000));
        //  Keys in mixed buckets too: hashes right at and around each point.
        size_t mixed = 0;
        for (size_t b = 0; b < ((size_t)1 << S_OWNER_BITS); b++)
            mixed += loop.owners.bucket[b] == S_OWNER_MIXED;
        assert(mixed > 0 && mixed <= loop.owners.npoints);
        if (verbose)
            printf("  %u threads x %u vnodes: %zu of %d buckets need a search\n",
                   shapes[i][0], shapes[i][1], mixed, 1 << S_OWNER_BITS);
        s_owners_fini(&loop.owners);
        anna_placement_destroy(&loop.placement);
    }

    //  INFO renders the workers' JSON as fields.
    anna_resp_buf_t info = {0};
    const char *json = "{\"thread\":1,\"requests\":7,\"keys\":3}";
    s_info_thread(&info, json, strlen(json));
    assert(info.len == strlen("requests=7,keys=3") && !memcmp(info.data, "requests=7,keys=3",
                                                              info.len));
    assert(s_json_u64(json, strlen(json), "keys") == 3);
    anna_resp_buf_fini(&info);
    if (verbose)
        printf("  %zu commands answered, %zu refusal groups\n", S_NCOMMANDS,
               sizeof s_refused / sizeof s_refused[0]);
}
