//  executor/executor.c: the executor actor (see executor.h). One thread owns everything here.
//
//  Work reaches the runner as jobs, one at a time, in arrival order: a pin is a LOAD, a
//  one-shot call or a DAG function that fired is a CALL, the error value of a call whose
//  runner died is a PUT. Loads of pinned functions into a new runner jump the queue. While
//  a job runs, the loop keeps taking messages (schedules and triggers wait in the DAG
//  queue, calls in the job queue) and watches the job's deadline: past it, the runner is
//  killed and replaced, and the job ends with CB_TIMEOUT. A runner that dies on its own
//  ends its job with CB_FUNCTION_CRASHED. Either way the node keeps running.
//
//  DAG calls follow docs/faas-design.md: a function fires when it holds its schedule and a
//  trigger per incoming edge (executor/queue.c), runs with its fixed arguments then the
//  upstream results in edge order, and passes its result to each downstream function's
//  executor, or answers the client when it is the sink. A failure answers the client from
//  where it happened and sends downstream a trigger holding an error value, which cancels
//  the functions waiting there (and theirs, transitively) so that they neither run nor
//  answer a second time. A sink whose inputs never come answers CB_TIMEOUT when its
//  schedule expires (an executor upstream died, or a message was lost).
//  SPDX-License-Identifier: Apache-2.0
#include "executor/executor.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zmq.h>

#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "executor/fnlib.h"
#include "executor/queue.h"
#include "executor/runner.h"

//  Jobs waiting for the runner; calls beyond are refused with CB_NO_RESOURCES.
#define S_MAX_JOBS 100000
//  PUSH sockets kept open (least recently used closed first).
#define S_MAX_PUSH 256
//  Messages taken from the socket per loop turn, so that timers and the runner get a turn.
#define S_BATCH 256
//  cb_fn_send messages kept for cb_fn_recv.
#define S_INBOX_MAX 1024
#define S_INBOX_MAX_BYTES (64u << 20)
//  Largest ExecMessage accepted.
#define S_MAX_MESSAGE (256LL << 20)
//  How long a cancelled DAG entry is remembered.
#define S_CANCEL_MEMORY_MS 60000
//  Issue 4: sessions of DAG functions waiting for their triggers, at most (a trigger beyond
//  cancels its call rather than lose what the call read).
#define S_MAX_SESSIONS 100000
//  Pause before starting another runner when the last could not start or died idle.
#define S_REFORK_MS 500

typedef enum { S_JOB_LOAD, S_JOB_UNPIN, S_JOB_CALL, S_JOB_PUT } s_kind_t;
typedef enum { S_FOR_PIN, S_FOR_PRELOAD, S_FOR_CALL, S_FOR_DAG, S_FOR_STORE } s_origin_t;

typedef struct s_job_s s_job_t;
struct s_job_s {
    s_job_t *next;
    s_kind_t kind;
    s_origin_t origin;
    char *function;    //  owned; the key for a PUT
    int timeout_ms;    //  CALL: the bound on the function's run
    int64_t queued_at; //  monotonic ms
    exec_buf_t frame;  //  the job's frame for the runner
    char *request_id;  //  owned; calls
    char *reply_to;    //  owned: the client's address (calls) or the PinAck's
    char *output_key;  //  owned; calls; "" for none
    ExecMessage *msg;  //  owned: DAG functions, the message of their DagSchedule
    char **logs_in;    //  owned: DAG functions, upstream log lines
    size_t n_logs_in;
};

//  Issue 4: what the upstream functions of one waiting DAG function read (repeatable read),
//  joined from its triggers until it fires; dropped when it fires or at its deadline.
typedef struct s_session_s s_session_t;
struct s_session_s {
    s_session_t *next;
    char *id;          //  owned: request id
    char *function;    //  owned: the waiting function
    exec_buf_t reads;  //  concatenated packed SessionReads (one SessionReads)
    int64_t expire_at; //  monotonic ms
};

typedef struct s_inbox_s s_inbox_t;
struct s_inbox_s {
    s_inbox_t *next;
    char *sender;    //  owned
    cb_bytes_t data; //  owned
};

typedef struct {
    char *address; //  owned
    void *sock;    //  PUSH, connected to address
    uint64_t used; //  LRU tick
} s_push_t;

struct _exec_executor_t {
    exec_config_t config; //  strings owned (copies)
    char *id;             //  "<node>/<index>"
    char *address;        //  our PULL socket's endpoint
    char *routing;        //  the runner's KVS routing (cache, else KVS)
    uint32_t incarnation;
    exec_trust_t trust;
    void *zctx;
    void *pull;
    s_push_t pushes[S_MAX_PUSH];
    size_t n_pushes;
    uint64_t push_tick;

    exec_runner_config_t runner_config;
    exec_runner_t *runner; //  NULL only while runners fail to start
    int64_t refork_at;
    s_job_t *running;      //  the job in the runner, or NULL
    int64_t deadline;      //  kill the runner at this time (INT64_MAX: idle)
    bool in_user;          //  the running job runs user code (not loading / I/O)
    bool io_seen;          //  the running job did KVS I/O or loading (not a warm call)
    int64_t busy_since_us; //  the running job started (utilization)
    s_job_t *head, *tail;  //  jobs waiting, oldest first
    size_t n_jobs;

    exec_queue_t *dag;
    s_session_t *sessions;       //  issue 4: sessions of functions waiting for triggers
    size_t n_sessions;
    const uint8_t *done_session; //  the session of the DONE being handled (borrowed)
    size_t done_session_len;
    char **pinned; //  owned names, pinned and loaded
    size_t n_pinned;

    s_inbox_t *inbox_head, *inbox_tail;
    size_t n_inbox;
    size_t inbox_bytes;
    bool recv_waiting; //  the runner waits in cb_fn_recv
    int64_t recv_deadline;

    int64_t report_at;
    int64_t period_start_us;
    int64_t busy_us; //  runner busy time in this report period
    exec_stats_t stats;
    long long warn_ms; //  log rate limit
};

//  --------------------------------------------------------------------------------------
//  Small helpers

static char *s_dup(const char *s)
{
    return cb_strdup(s ? s : "");
}

static void s_warn(exec_executor_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void s_warn(exec_executor_t *self, const char *fmt, ...)
{
    if (!cb_log_ratelimit(&self->warn_ms))
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cb_warn("%s", text);
}

static bool s_is_pinned(const exec_executor_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_pinned; i++)
        if (!strcmp(self->pinned[i], name))
            return true;
    return false;
}

static void s_pin_add(exec_executor_t *self, const char *name)
{
    if (s_is_pinned(self, name))
        return;
    self->pinned = cb_realloc(self->pinned, (self->n_pinned + 1) * sizeof *self->pinned);
    self->pinned[self->n_pinned++] = cb_strdup(name);
}

static bool s_pin_remove(exec_executor_t *self, const char *name)
{
    for (size_t i = 0; i < self->n_pinned; i++) {
        if (!strcmp(self->pinned[i], name)) {
            cb_free(self->pinned[i]);
            memmove(&self->pinned[i], &self->pinned[i + 1],
                    (self->n_pinned - i - 1) * sizeof *self->pinned);
            self->n_pinned--;
            return true;
        }
    }
    return false;
}

//  --------------------------------------------------------------------------------------
//  Sending

static void *s_push(exec_executor_t *self, const char *address)
{
    for (size_t i = 0; i < self->n_pushes; i++) {
        if (!strcmp(self->pushes[i].address, address)) {
            self->pushes[i].used = ++self->push_tick;
            return self->pushes[i].sock;
        }
    }
    if (strncmp(address, "tcp://", 6) && strncmp(address, "ipc://", 6))
        return NULL;
    void *sock = zmq_socket(self->zctx, ZMQ_PUSH);
    //  A closed socket may still flush what it holds, for a while: replies to a client
    //  must not be cut off because its socket fell out of the cache.
    int linger = 2000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(sock, address) != 0) {
        zmq_close(sock);
        return NULL;
    }
    size_t slot = self->n_pushes;
    if (slot == S_MAX_PUSH) {
        slot = 0;
        for (size_t i = 1; i < self->n_pushes; i++)
            if (self->pushes[i].used < self->pushes[slot].used)
                slot = i;
        zmq_close(self->pushes[slot].sock);
        cb_free(self->pushes[slot].address);
    } else
        self->n_pushes++;
    self->pushes[slot] = (s_push_t){cb_strdup(address), sock, ++self->push_tick};
    return sock;
}

//  Packs msg and pushes it to address without blocking: a peer that does not take its
//  messages loses them (counted), it never stalls the executor. Quiet: no log line (reports
//  to a scheduler that is not there yet would log every period).
static void s_send_to(exec_executor_t *self, const char *address, const ProtobufCMessage *msg,
                      bool quiet)
{
    void *sock = address && *address ? s_push(self, address) : NULL;
    if (!sock) {
        self->stats.dropped++;
        s_warn(self, "cannot send to '%s': not an address", address ? address : "");
        return;
    }
    size_t len = protobuf_c_message_get_packed_size(msg);
    zmq_msg_t frame;
    zmq_msg_init_size(&frame, len);
    protobuf_c_message_pack(msg, zmq_msg_data(&frame));
    if (zmq_msg_send(&frame, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&frame);
        self->stats.dropped++;
        if (!quiet)
            s_warn(self, "dropped a message to %s: %s", address, zmq_strerror(errno));
    }
}

static void s_send(exec_executor_t *self, const char *address, const ProtobufCMessage *msg)
{
    s_send_to(self, address, msg, false);
}

static void s_reply(exec_executor_t *self, const char *address, const char *request_id, int code,
                    const char *message, const uint8_t *result, size_t len, const char *const *logs,
                    size_t n_logs)
{
    Reply reply = REPLY__INIT;
    reply.request_id = (char *)request_id;
    reply.error = (CbError)code;
    reply.error_message = (char *)(message ? message : "");
    reply.result.data = (uint8_t *)result;
    reply.result.len = result ? len : 0;
    reply.logs = (char **)logs;
    reply.n_logs = n_logs;
    s_send(self, address, &reply.base);
}

static void s_report(exec_executor_t *self)
{
    int64_t now_us = cb_clock_mono_us();
    int64_t busy = self->busy_us;
    if (self->running)
        busy += now_us - self->busy_since_us;
    int64_t period = now_us - self->period_start_us;
    self->busy_us = 0;
    self->period_start_us = now_us;
    if (self->running)
        self->busy_since_us = now_us;
    if (!self->config.scheduler || !*self->config.scheduler)
        return;
    ExecutorInfo info = EXECUTOR_INFO__INIT;
    info.id = self->id;
    info.address = self->address;
    info.node = (char *)self->config.node;
    info.pinned = self->pinned;
    info.n_pinned = self->n_pinned;
    info.utilization = period > 0 ? (double)busy / (double)period : 0.0;
    if (info.utilization > 1.0)
        info.utilization = 1.0;
    info.queued = (uint32_t)self->n_jobs;
    info.calls = self->stats.calls;
    info.incarnation = self->incarnation;
    StatusReport report = STATUS_REPORT__INIT;
    report.body_case = STATUS_REPORT__BODY_EXECUTOR;
    report.executor = &info;
    s_send_to(self, self->config.scheduler, &report.base, true);
}

static void s_pin_ack(exec_executor_t *self, const char *address, const char *function, int code,
                      const char *message)
{
    PinAck ack = PIN_ACK__INIT;
    ack.executor = self->address;
    ack.function = (char *)function;
    ack.error = (CbError)code;
    ack.error_message = (char *)(message ? message : "");
    StatusReport report = STATUS_REPORT__INIT;
    report.body_case = STATUS_REPORT__BODY_PIN_ACK;
    report.pin_ack = &ack;
    s_send(self, address, &report.base);
}

//  --------------------------------------------------------------------------------------
//  Jobs

static s_job_t *s_job_new(s_kind_t kind, s_origin_t origin, const char *function)
{
    s_job_t *job = cb_calloc(1, sizeof *job);
    job->kind = kind;
    job->origin = origin;
    job->function = s_dup(function);
    job->timeout_ms = EXEC_IO_MS;
    job->queued_at = cb_clock_mono_ms();
    return job;
}

static void s_job_free(s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (!job)
        return;
    cb_free(job->function);
    exec_buf_fini(&job->frame);
    cb_free(job->request_id);
    cb_free(job->reply_to);
    cb_free(job->output_key);
    if (job->msg)
        exec_message__free_unpacked(job->msg, NULL);
    for (size_t i = 0; i < job->n_logs_in; i++)
        cb_free(job->logs_in[i]);
    cb_free(job->logs_in);
    cb_free(job);
    *job_p = NULL;
}

static void s_enqueue(exec_executor_t *self, s_job_t *job, bool front)
{
    job->next = NULL;
    if (front) {
        job->next = self->head;
        self->head = job;
        if (!self->tail)
            self->tail = job;
    } else {
        if (self->tail)
            self->tail->next = job;
        else
            self->head = job;
        self->tail = job;
    }
    self->n_jobs++;
}

static void s_load_frame(s_job_t *job, bool pinned)
{
    size_t start = exec_frame_begin(&job->frame, EXEC_J_LOAD);
    exec_frame_str(&job->frame, job->function);
    exec_frame_u8(&job->frame, pinned);
    exec_frame_end(&job->frame, start);
}

//  A CALL frame: fixed args (literal values or refs), then upstream results. False (and
//  no frame) when they are too many or too large for one frame.
static bool s_call_frame(s_job_t *job, bool put_result, Arg *const *args, size_t n_args,
                         const cb_bytes_t *inputs, size_t n_inputs, uint32_t consistency,
                         const exec_buf_t *session, const char *session_cache)
{
    size_t total = strlen(job->function) + strlen(job->output_key) + 64;
    if (session)
        total += session->len;
    for (size_t i = 0; i < n_args; i++)
        total += 16 + args[i]->value.len + strlen(args[i]->ref);
    for (size_t i = 0; i < n_inputs; i++)
        total += 16 + inputs[i].len;
    if (n_args + n_inputs > EXEC_MAX_ARGS || total > EXEC_FRAME_MAX)
        return false;
    exec_buf_t *b = &job->frame;
    size_t start = exec_frame_begin(b, EXEC_J_CALL);
    exec_frame_str(b, job->function);
    exec_frame_str(b, job->output_key);
    exec_frame_u8(b, put_result);
    exec_frame_u32(b, (uint32_t)(n_args + n_inputs));
    for (size_t i = 0; i < n_args; i++) {
        bool is_ref = args[i]->ref && *args[i]->ref;
        exec_frame_u8(b, is_ref);
        if (is_ref)
            exec_frame_str(b, args[i]->ref);
        else
            exec_frame_bytes(b, args[i]->value.data, args[i]->value.len);
    }
    for (size_t i = 0; i < n_inputs; i++) {
        exec_frame_u8(b, 0);
        exec_frame_bytes(b, inputs[i].data, inputs[i].len);
    }
    exec_frame_u32(b, consistency);
    exec_frame_bytes(b, session ? session->data : NULL, session ? session->len : 0);
    exec_frame_str(b, job->request_id);
    exec_frame_str(b, session_cache);
    exec_frame_end(b, start);
    return true;
}

//  Stores message as an error value at key (via the runner: the executor does no KVS I/O).
static void s_put_job(exec_executor_t *self, const char *key, const char *message)
{
    s_job_t *job = s_job_new(S_JOB_PUT, S_FOR_STORE, key);
    cb_fn_value_t error = {.type = EXEC_VALUE_ERROR, .data = message, .len = strlen(message)};
    size_t start = exec_frame_begin(&job->frame, EXEC_J_PUT);
    exec_frame_str(&job->frame, key);
    exec_frame_value(&job->frame, &error);
    exec_frame_end(&job->frame, start);
    s_enqueue(self, job, true);
}

//  --------------------------------------------------------------------------------------
//  DAG helpers

static DagSchedule *s_schedule(const s_job_t *job)
{
    return job->msg ? job->msg->schedule : NULL;
}

static const char *s_location(const DagSchedule *s, const char *function)
{
    for (size_t i = 0; i < s->n_locations; i++)
        if (s->locations[i] && !strcmp(s->locations[i]->key, function))
            return s->locations[i]->value;
    return NULL;
}

static bool s_is_sink(const DagSchedule *s, const char *function)
{
    for (size_t i = 0; i < s->dag->n_edges; i++)
        if (s->dag->edges[i] && !strcmp(s->dag->edges[i]->from, function))
            return false;
    return true;
}

static void s_on_trigger(exec_executor_t *self, const char *id, const char *source,
                         const char *target, const uint8_t *result, size_t len,
                         const char *const *logs, size_t n_logs, const uint8_t *session,
                         size_t session_len);

//  The session of (id, function), or NULL; unlinked (the caller owns it) when take.
static s_session_t *s_session_find(exec_executor_t *self, const char *id, const char *function,
                                   bool take)
{
    for (s_session_t **p = &self->sessions; *p; p = &(*p)->next) {
        s_session_t *e = *p;
        if (strcmp(e->id, id) || strcmp(e->function, function))
            continue;
        if (take) {
            *p = e->next;
            e->next = NULL;
            self->n_sessions--;
        }
        return e;
    }
    return NULL;
}

static void s_session_free(s_session_t *e)
{
    if (!e)
        return;
    cb_free(e->id);
    cb_free(e->function);
    exec_buf_fini(&e->reads);
    cb_free(e);
}

//  Joins what a trigger carried into the session of (id, function). False when there is
//  no room for it.
static bool s_session_join(exec_executor_t *self, const char *id, const char *function,
                           const uint8_t *data, size_t len, int64_t expire_at)
{
    s_session_t *e = s_session_find(self, id, function, false);
    if (!e) {
        if (self->n_sessions >= S_MAX_SESSIONS) {
            s_warn(self, "dag call %s: %zu sessions wait here already: cancelling it", id,
                   self->n_sessions);
            return false;
        }
        e = cb_calloc(1, sizeof *e);
        e->id = s_dup(id);
        e->function = s_dup(function);
        exec_buf_init(&e->reads);
        e->expire_at = expire_at;
        e->next = self->sessions;
        self->sessions = e;
        self->n_sessions++;
    }
    exec_buf_append(&e->reads, data, len);
    return true;
}

//  Drops sessions past their deadline (their function never fired here).
static void s_session_expire(exec_executor_t *self, int64_t now)
{
    for (s_session_t **p = &self->sessions; *p;) {
        s_session_t *e = *p;
        if (e->expire_at > now) {
            p = &e->next;
            continue;
        }
        *p = e->next;
        self->n_sessions--;
        s_session_free(e);
    }
}

//  Sends function's result (or, for a cancellation, an error value) to every function
//  downstream of it, in edge order.
static void s_pass_on(exec_executor_t *self, const DagSchedule *s, const char *function,
                      const uint8_t *result, size_t len, const char *const *logs, size_t n_logs,
                      const uint8_t *session, size_t session_len)
{
    for (size_t i = 0; i < s->dag->n_edges; i++) {
        const DagEdge *edge = s->dag->edges[i];
        if (!edge || strcmp(edge->from, function))
            continue;
        const char *where = s_location(s, edge->to);
        if (!where) {
            s_warn(self, "dag call %s: no location for function '%s'", s->id, edge->to);
            self->stats.dropped++;
            continue;
        }
        if (!strcmp(where, self->address)) {
            //  Downstream runs here too: no need to go through the socket.
            s_on_trigger(self, s->id, function, edge->to, result, len, logs, n_logs, session,
                         session_len);
            continue;
        }
        DagTrigger trigger = DAG_TRIGGER__INIT;
        trigger.id = s->id;
        trigger.source = (char *)function;
        trigger.target_function = edge->to;
        trigger.result.data = (uint8_t *)result;
        trigger.result.len = len;
        trigger.logs = (char **)logs;
        trigger.n_logs = n_logs;
        trigger.session.data = (uint8_t *)session;
        trigger.session.len = session_len;
        ExecMessage msg = EXEC_MESSAGE__INIT;
        msg.sender = self->address;
        msg.body_case = EXEC_MESSAGE__BODY_TRIGGER;
        msg.trigger = &trigger;
        s_send(self, where, &msg.base);
    }
}

static void s_cancel_downstream(exec_executor_t *self, const DagSchedule *s, const char *function)
{
    static const char why[] = "cancelled: a function upstream failed";
    cb_fn_value_t error = {.type = EXEC_VALUE_ERROR, .data = why, .len = sizeof why - 1};
    uint8_t bytes[64];
    assert(exec_value_size(&error) <= sizeof bytes);
    exec_value_write(&error, bytes);
    s_pass_on(self, s, function, bytes, exec_value_size(&error), NULL, 0, NULL, 0);
}

//  --------------------------------------------------------------------------------------
//  Ends of calls

//  The outcome of a call goes to its client: a Reply, or (output key) nothing when the
//  runner stored it, else a PUT of the error value.
static void s_answer(exec_executor_t *self, s_job_t *job, int code, const char *message,
                     const uint8_t *result, size_t len, const char *const *logs, size_t n_logs,
                     bool stored)
{
    if (job->output_key && *job->output_key) {
        if (code != CB_ERROR__CB_OK && !stored)
            s_put_job(self, job->output_key, message);
    } else if (job->reply_to && *job->reply_to)
        s_reply(self, job->reply_to, job->request_id, code, message, result, len, logs, n_logs);
}

//  A call (one-shot, or a DAG function) ended. stored: the runner already wrote the
//  outcome at the output key (it did unless the runner died).
static void s_call_done(exec_executor_t *self, s_job_t *job, int code, const char *message,
                        const uint8_t *result, size_t len, const char *const *logs, size_t n_logs,
                        bool stored)
{
    self->stats.calls++;
    if (code != CB_ERROR__CB_OK)
        self->stats.failed++;
    //  The call's log so far: upstream lines (edge order), then this function's.
    size_t n_all = job->n_logs_in + n_logs;
    const char **all = cb_malloc((n_all ? n_all : 1) * sizeof *all);
    for (size_t i = 0; i < job->n_logs_in; i++)
        all[i] = job->logs_in[i];
    for (size_t i = 0; i < n_logs; i++)
        all[job->n_logs_in + i] = logs[i];
    DagSchedule *s = s_schedule(job);
    if (!s)
        s_answer(self, job, code, message, result, len, all, n_all, stored);
    else if (s_is_sink(s, job->function))
        s_answer(self, job, code, message, result, len, all, n_all, stored);
    else if (code == CB_ERROR__CB_OK)
        s_pass_on(self, s, job->function, result, len, all, n_all, self->done_session,
                  self->done_session_len);
    else {
        s_answer(self, job, code, message, NULL, 0, all, n_all, stored);
        s_cancel_downstream(self, s, job->function);
    }
    cb_free(all);
}

//  A job ended in the runner (DONE), or the executor ended it (stored false).
static void s_job_done(exec_executor_t *self, s_job_t *job, int code, const char *message,
                       const uint8_t *result, size_t len, const char *const *logs, size_t n_logs,
                       bool stored)
{
    switch (job->kind) {
    case S_JOB_LOAD:
        if (job->origin == S_FOR_PIN) {
            if (code == CB_ERROR__CB_OK)
                s_pin_add(self, job->function);
            else {
                //  A function pinned before whose code is now gone, refused, or fatal to
                //  the runner is pinned no more (the runner dropped it). Only when the KVS
                //  did not answer does the old code stay.
                if (code != CB_ERROR__CB_KVS)
                    s_pin_remove(self, job->function);
                cb_warn("pin of '%s' failed: %s", job->function, message);
            }
            s_pin_ack(self, job->reply_to, job->function, code, message);
            s_report(self);
        } else if (code != CB_ERROR__CB_OK && s_pin_remove(self, job->function)) {
            //  A pinned function that no longer loads in a new runner is unpinned rather
            //  than retried at every restart; the scheduler sees it in the next report.
            cb_warn("unpinned '%s': it failed to load again: %s", job->function, message);
            s_report(self);
        }
        break;
    case S_JOB_UNPIN:
        break;
    case S_JOB_PUT:
        if (code != CB_ERROR__CB_OK)
            s_warn(self, "could not store an error at '%s': %s", job->function, message);
        break;
    case S_JOB_CALL:
        s_call_done(self, job, code, message, result, len, logs, n_logs, stored);
        break;
    }
}

//  --------------------------------------------------------------------------------------
//  The runner

static void s_busy_end(exec_executor_t *self)
{
    self->busy_us += cb_clock_mono_us() - self->busy_since_us;
}

static void s_runner_start(exec_executor_t *self)
{
    char err[256];
    self->runner = exec_runner_new(&self->runner_config, err, sizeof err);
    if (!self->runner) {
        s_warn(self, "cannot start a runner: %s", err);
        self->refork_at = cb_clock_mono_ms() + S_REFORK_MS;
        return;
    }
    self->stats.runners++;
    //  A new runner has nothing loaded: the pinned functions go first, so that the calls
    //  after a crash are warm again. Inserted in reverse to keep the pin order.
    for (size_t i = self->n_pinned; i-- > 0;) {
        s_job_t *job = s_job_new(S_JOB_LOAD, S_FOR_PRELOAD, self->pinned[i]);
        s_load_frame(job, true);
        s_enqueue(self, job, true);
    }
}

//  Ends the running job with code and message, replaces the runner.
static void s_runner_restart(exec_executor_t *self, int code, const char *message)
{
    exec_runner_destroy(&self->runner);
    s_job_t *job = self->running;
    self->running = NULL;
    self->deadline = INT64_MAX;
    self->recv_waiting = false;
    if (job) {
        s_busy_end(self);
        s_job_done(self, job, code, message, NULL, 0, NULL, 0, false);
        s_job_free(&job);
    }
    s_runner_start(self);
}

static void s_runner_died(exec_executor_t *self)
{
    int status = exec_runner_kill(self->runner);
    char how[128], message[512];
    exec_runner_describe(status, how, sizeof how);
    const char *name = self->running ? self->running->function : "";
    if (self->running && self->running->kind == S_JOB_PUT)
        snprintf(message, sizeof message, "the runner crashed storing at '%s': %s", name, how);
    else
        snprintf(message, sizeof message, "function '%s' crashed: %s", name, how);
    if (!self->running) {
        //  Not a function's doing (killed from outside, or it could not even start): wait
        //  a little before the next one rather than spin on a runner that cannot start.
        cb_warn("the idle runner (pid %d) ended: %s", (int)exec_runner_pid(self->runner), how);
        exec_runner_destroy(&self->runner);
        self->refork_at = cb_clock_mono_ms() + S_REFORK_MS;
        return;
    }
    s_runner_restart(self, CB_ERROR__CB_FUNCTION_CRASHED, message);
}

static void s_runner_overran(exec_executor_t *self)
{
    s_job_t *job = self->running;
    char message[512];
    if (self->in_user && job->kind == S_JOB_CALL)
        snprintf(message, sizeof message, "function '%s' ran past its %d ms timeout", job->function,
                 job->timeout_ms);
    else if (job->kind == S_JOB_LOAD || job->kind == S_JOB_CALL)
        snprintf(message, sizeof message,
                 "function '%s': loading it or reading its arguments took more than %d ms",
                 job->function, EXEC_IO_MS);
    else
        snprintf(message, sizeof message, "the runner did not answer within %d ms", EXEC_IO_MS);
    s_runner_restart(self, CB_ERROR__CB_TIMEOUT, message);
}

static void s_send_inbox(exec_executor_t *self, const s_inbox_t *msg)
{
    exec_buf_t *out = exec_runner_out(self->runner);
    size_t start = exec_frame_begin(out, EXEC_M_INBOX);
    exec_frame_u8(out, msg != NULL);
    exec_frame_str(out, msg ? msg->sender : "");
    exec_frame_bytes(out, msg ? msg->data.data : NULL, msg ? msg->data.len : 0);
    exec_frame_end(out, start);
    exec_runner_flush(self->runner);
}

//  Answers a waiting cb_fn_recv with the oldest message, if there is one.
static void s_serve_recv(exec_executor_t *self)
{
    if (!self->recv_waiting || !self->inbox_head || !self->runner)
        return;
    s_inbox_t *msg = self->inbox_head;
    self->inbox_head = msg->next;
    if (!self->inbox_head)
        self->inbox_tail = NULL;
    self->n_inbox--;
    self->inbox_bytes -= msg->data.len;
    self->recv_waiting = false;
    s_send_inbox(self, msg);
    cb_free(msg->sender);
    cb_bytes_fini(&msg->data);
    cb_free(msg);
}

static void s_on_user_message(exec_executor_t *self, const char *sender, const uint8_t *data,
                              size_t len)
{
    if (self->n_inbox >= S_INBOX_MAX || self->inbox_bytes + len > S_INBOX_MAX_BYTES) {
        self->stats.inbox_dropped++;
        s_warn(self, "inbox full (%zu messages): dropped a message from %s", self->n_inbox, sender);
        return;
    }
    s_inbox_t *msg = cb_calloc(1, sizeof *msg);
    msg->sender = s_dup(sender);
    cb_bytes_set(&msg->data, data, len);
    if (self->inbox_tail)
        self->inbox_tail->next = msg;
    else
        self->inbox_head = msg;
    self->inbox_tail = msg;
    self->n_inbox++;
    self->inbox_bytes += len;
    s_serve_recv(self);
}

//  A DONE frame: the running job ended.
static bool s_on_done(exec_executor_t *self, exec_reader_t *r)
{
    int code = (int)exec_read_u32(r);
    const char *message = exec_read_str(r);
    size_t len;
    const uint8_t *result = exec_read_bytes(r, &len);
    uint32_t n_logs = exec_read_u32(r);
    if (r->bad || n_logs > EXEC_MAX_LOG_LINES + 1)
        return false;
    const char **logs = cb_malloc((n_logs ? n_logs : 1) * sizeof *logs);
    for (uint32_t i = 0; i < n_logs; i++)
        logs[i] = exec_read_str(r);
    size_t session_len = 0;
    const uint8_t *session = NULL;
    if (!r->bad && r->left > 0)
        session = exec_read_bytes(r, &session_len);
    if (!exec_read_done(r)) {
        cb_free(logs);
        return false;
    }
    s_job_t *job = self->running;
    self->running = NULL;
    self->deadline = INT64_MAX;
    self->recv_waiting = false;
    if (job->kind == S_JOB_CALL && !self->io_seen) {
        self->stats.runner_calls++;
        self->stats.runner_us += (uint64_t)(cb_clock_mono_us() - self->busy_since_us);
    }
    s_busy_end(self);
    self->done_session = session;
    self->done_session_len = session_len;
    s_job_done(self, job, code, message, code == CB_ERROR__CB_OK ? result : NULL, len, logs, n_logs,
               true);
    self->done_session = NULL;
    self->done_session_len = 0;
    s_job_free(&job);
    cb_free(logs);
    return true;
}

//  Takes every frame the runner sent. A frame that breaks the protocol (user code can
//  write on the runner's socket) costs the runner, like a crash.
static void s_runner_input(exec_executor_t *self)
{
    int rc = exec_runner_read(self->runner);
    uint8_t type;
    exec_reader_t r;
    int got;
    while ((got = exec_runner_next(self->runner, &type, &r)) == 1) {
        bool ok = self->running != NULL;
        if (ok && type == EXEC_R_IO) {
            self->in_user = false;
            self->io_seen = true;
            self->deadline = cb_clock_mono_ms() + EXEC_IO_MS;
        } else if (ok && type == EXEC_R_RUN) {
            self->in_user = true;
            self->deadline = cb_clock_mono_ms() + self->running->timeout_ms;
        } else if (ok && type == EXEC_R_SEND) {
            const char *to = exec_read_str(&r);
            size_t len;
            const uint8_t *data = exec_read_bytes(&r, &len);
            ok = exec_read_done(&r);
            if (ok && !strcmp(to, self->address))
                s_on_user_message(self, self->address, data, len);
            else if (ok) {
                ExecMessage msg = EXEC_MESSAGE__INIT;
                msg.sender = self->address;
                msg.body_case = EXEC_MESSAGE__BODY_USER_MESSAGE;
                msg.user_message.data = (uint8_t *)data;
                msg.user_message.len = len;
                s_send(self, to, &msg.base);
            }
        } else if (ok && type == EXEC_R_RECV) {
            uint32_t timeout = exec_read_u32(&r);
            ok = exec_read_done(&r);
            if (ok) {
                self->recv_waiting = true;
                self->recv_deadline = cb_clock_mono_ms() + timeout;
                if (self->inbox_head)
                    s_serve_recv(self);
                else if (timeout == 0) {
                    self->recv_waiting = false;
                    s_send_inbox(self, NULL);
                }
            }
        } else if (ok && type == EXEC_R_DONE)
            ok = s_on_done(self, &r);
        else
            ok = false;
        if (!ok) {
            got = -EPROTO;
            break;
        }
    }
    if (got < 0) {
        char message[256] = "";
        if (self->running)
            snprintf(message, sizeof message,
                     "function '%s' broke the runner protocol (it wrote on the runner's socket?)",
                     self->running->function);
        else
            cb_warn("the idle runner sent a frame: replacing it");
        s_runner_restart(self, CB_ERROR__CB_FUNCTION_CRASHED, message);
    } else if (rc < 0)
        s_runner_died(self);
}

//  Starts the next job if the runner is free.
static void s_dispatch(exec_executor_t *self, int64_t now)
{
    while (!self->running && self->runner && self->head) {
        s_job_t *job = self->head;
        self->head = job->next;
        if (!self->head)
            self->tail = NULL;
        self->n_jobs--;
        if (job->kind == S_JOB_CALL && now - job->queued_at > job->timeout_ms) {
            //  Its caller has given up by now: do not spend the runner on it.
            char message[256];
            snprintf(message, sizeof message,
                     "function '%s' waited %" PRId64 " ms for executor %s, past its %d ms "
                     "timeout",
                     job->function, now - job->queued_at, self->id, job->timeout_ms);
            s_job_done(self, job, CB_ERROR__CB_TIMEOUT, message, NULL, 0, NULL, 0, false);
            s_job_free(&job);
            continue;
        }
        exec_buf_t *out = exec_runner_out(self->runner);
        exec_buf_append(out, job->frame.data, job->frame.len);
        self->running = job;
        self->in_user = job->kind == S_JOB_CALL;
        self->io_seen = false;
        self->deadline = now + job->timeout_ms;
        self->busy_since_us = cb_clock_mono_us();
        if (exec_runner_flush(self->runner) != 0)
            s_runner_died(self);
    }
}

//  --------------------------------------------------------------------------------------
//  Messages

//  A call whose arguments do not fit in one runner frame ends at once.
static void s_too_large(exec_executor_t *self, s_job_t *job)
{
    char message[256];
    snprintf(message, sizeof message,
             "function '%s': its arguments are too many or too large (at most %d, %u bytes)",
             job->function, EXEC_MAX_ARGS, EXEC_FRAME_MAX);
    s_job_done(self, job, CB_ERROR__CB_TOO_LARGE, message, NULL, 0, NULL, 0, false);
    s_job_free(&job);
}

static void s_on_pin(exec_executor_t *self, const PinFunction *pin)
{
    const char *ack_to = pin->response_address && *pin->response_address ? pin->response_address
                                                                         : self->config.scheduler;
    if (!pin->function || !*pin->function) {
        s_pin_ack(self, ack_to, "", CB_ERROR__CB_INVALID, "pin without a function name");
        return;
    }
    s_job_t *job = s_job_new(S_JOB_LOAD, S_FOR_PIN, pin->function);
    job->reply_to = s_dup(ack_to);
    s_load_frame(job, true);
    s_enqueue(self, job, false);
}

//  Unpin drops the function from the runner whether or not it was pinned, so that the
//  scheduler can also flush code that changed from executors that ran it unpinned.
static void s_on_unpin(exec_executor_t *self, const char *name)
{
    if (!name || !*name)
        return;
    s_job_t *job = s_job_new(S_JOB_UNPIN, S_FOR_STORE, name);
    size_t start = exec_frame_begin(&job->frame, EXEC_J_UNPIN);
    exec_frame_str(&job->frame, name);
    exec_frame_end(&job->frame, start);
    s_enqueue(self, job, false);
    if (s_pin_remove(self, name))
        s_report(self);
}

static int s_timeout(const exec_executor_t *self, uint32_t timeout_ms)
{
    int t = timeout_ms ? (int)(timeout_ms > 3600000 ? 3600000 : timeout_ms) : 0;
    return t ? t : self->config.call_timeout_ms;
}

static void s_on_call(exec_executor_t *self, const Invocation *inv)
{
    const FunctionCall *call = inv->call;
    if (!call || !call->function || !*call->function) {
        self->stats.malformed++;
        if (inv->response_address && *inv->response_address)
            s_reply(self, inv->response_address, inv->id, CB_ERROR__CB_INVALID,
                    "a call without a function name", NULL, 0, NULL, 0);
        return;
    }
    if (self->n_jobs >= S_MAX_JOBS) {
        char message[256];
        snprintf(message, sizeof message, "executor %s has %zu calls queued", self->id,
                 self->n_jobs);
        if (inv->response_address && *inv->response_address)
            s_reply(self, inv->response_address, inv->id, CB_ERROR__CB_NO_RESOURCES, message, NULL,
                    0, NULL, 0);
        return;
    }
    s_job_t *job = s_job_new(S_JOB_CALL, S_FOR_CALL, call->function);
    job->timeout_ms = s_timeout(self, call->timeout_ms);
    job->request_id = s_dup(inv->id);
    job->reply_to = s_dup(inv->response_address);
    job->output_key = s_dup(call->output_key);
    if (!s_call_frame(job, true, call->args, call->n_args, NULL, 0, (uint32_t)call->consistency,
                      NULL, "")) {
        s_too_large(self, job);
        return;
    }
    s_enqueue(self, job, false);
}

//  A DAG function is ready: its job carries the schedule's message.
static void s_fire(exec_executor_t *self, exec_fired_t *fired)
{
    ExecMessage *msg = fired->schedule;
    fired->schedule = NULL;
    DagSchedule *s = msg->schedule;
    s_job_t *job = s_job_new(S_JOB_CALL, S_FOR_DAG, s->target_function);
    job->timeout_ms = s_timeout(self, s->timeout_ms);
    job->request_id = s_dup(s->id);
    job->reply_to = s_dup(s->response_address);
    job->output_key = s_dup(s->output_key);
    job->msg = msg;
    job->logs_in = fired->logs;
    job->n_logs_in = fired->n_logs;
    fired->logs = NULL;
    fired->n_logs = 0;
    const ArgList *fixed = NULL;
    for (size_t i = 0; i < s->n_args; i++)
        if (s->args[i] && !strcmp(s->args[i]->key, s->target_function))
            fixed = s->args[i]->value;
    s_session_t *session = s_session_find(self, s->id, s->target_function, true);
    bool fits = s_call_frame(job, s_is_sink(s, s->target_function), fixed ? fixed->args : NULL,
                             fixed ? fixed->n_args : 0, fired->inputs, fired->n_inputs,
                             (uint32_t)s->consistency, session ? &session->reads : NULL,
                             s->session_cache);
    s_session_free(session);
    exec_fired_fini(fired);
    if (!fits) {
        s_too_large(self, job);
        return;
    }
    s_enqueue(self, job, false);
}

static void s_free_schedule(void *msg)
{
    exec_message__free_unpacked(msg, NULL);
}

//  Takes ownership of msg (its body is a DagSchedule).
static void s_on_schedule(exec_executor_t *self, ExecMessage *msg)
{
    DagSchedule *s = msg->schedule;
    bool known = false;
    for (size_t i = 0; s->dag && i < s->dag->n_functions && !known; i++)
        known = !strcmp(s->dag->functions[i], s->target_function);
    for (size_t i = 0; s->dag && i < s->dag->n_edges && known; i++)
        known = s->dag->edges[i] != NULL;
    if (!s->id || !*s->id || !known) {
        self->stats.malformed++;
        if (s->response_address && *s->response_address)
            s_reply(self, s->response_address, s->id, CB_ERROR__CB_INVALID,
                    "a DAG schedule whose target function is not in its DAG", NULL, 0, NULL, 0);
        s_free_schedule(msg);
        return;
    }
    //  Incoming edges in edge order: the order of the function's upstream inputs.
    const char **sources = cb_malloc((s->dag->n_edges ? s->dag->n_edges : 1) * sizeof *sources);
    size_t n_sources = 0;
    for (size_t i = 0; i < s->dag->n_edges; i++)
        if (!strcmp(s->dag->edges[i]->to, s->target_function))
            sources[n_sources++] = s->dag->edges[i]->from;
    //  The schedule may wait for every function upstream to run in turn.
    int64_t now = cb_clock_mono_ms();
    size_t depth = s->dag->n_functions ? s->dag->n_functions : 1;
    int64_t deadline = now + (int64_t)s_timeout(self, s->timeout_ms) * (int64_t)depth + 1000;
    exec_fired_t fired;
    exec_queue_rc_t rc = exec_queue_schedule(self->dag, s->id, s->target_function, sources,
                                             n_sources, msg, deadline, now, &fired);
    cb_free(sources);
    if (rc == EXEC_QUEUE_FIRED)
        s_fire(self, &fired);
    else if (rc == EXEC_QUEUE_CANCELLED) {
        //  An upstream failure got here first: pass the cancellation on.
        if (!s_is_sink(s, s->target_function))
            s_cancel_downstream(self, s, s->target_function);
        s_free_schedule(msg);
    } else if (rc == EXEC_QUEUE_IGNORED)
        s_free_schedule(msg);
}

static void s_on_trigger(exec_executor_t *self, const char *id, const char *source,
                         const char *target, const uint8_t *result, size_t len,
                         const char *const *logs, size_t n_logs, const uint8_t *session,
                         size_t session_len)
{
    if (!id || !*id || !target || !*target || !source) {
        self->stats.malformed++;
        return;
    }
    int64_t now = cb_clock_mono_ms();
    cb_fn_value_t v;
    bool lost = session_len && !s_session_join(self, id, target, session, session_len,
                                               now + self->config.call_timeout_ms * 64LL +
                                                   S_CANCEL_MEMORY_MS);
    if (lost || (exec_value_view(result, len, &v) == 0 && v.type == EXEC_VALUE_ERROR)) {
        s_session_free(s_session_find(self, id, target, true));
        ExecMessage *msg = exec_queue_cancel(self->dag, id, target, now + S_CANCEL_MEMORY_MS);
        if (msg) {
            if (!s_is_sink(msg->schedule, target))
                s_cancel_downstream(self, msg->schedule, target);
            s_free_schedule(msg);
        }
        return;
    }
    exec_fired_t fired;
    if (exec_queue_trigger(self->dag, id, target, source, result, len, logs, n_logs,
                           now + self->config.call_timeout_ms, now, &fired) == EXEC_QUEUE_FIRED)
        s_fire(self, &fired);
}

//  Schedules whose inputs never came. The sink answers for the call; the others stay
//  silent (the sink's schedule expires as well).
static void s_expire(exec_executor_t *self, int64_t now)
{
    exec_fired_t f;
    while (exec_queue_expire(self->dag, now, &f)) {
        ExecMessage *msg = f.schedule;
        f.schedule = NULL;
        if (msg && s_is_sink(msg->schedule, f.function)) {
            DagSchedule *s = msg->schedule;
            char message[512];
            snprintf(message, sizeof message,
                     "dag call %s: function '%s' got %zu of its %zu inputs in time (is an "
                     "executor upstream gone?)",
                     f.id, f.function, f.n_inputs - f.n_missing, f.n_inputs);
            s_job_t job = {
                .output_key = s->output_key, .reply_to = s->response_address, .request_id = s->id};
            self->stats.failed++;
            s_answer(self, &job, CB_ERROR__CB_TIMEOUT, message, NULL, 0,
                     (const char *const *)f.logs, f.n_logs, false);
        }
        if (msg)
            s_free_schedule(msg);
        exec_fired_fini(&f);
    }
}

static void s_on_message(exec_executor_t *self, const uint8_t *data, size_t len)
{
    ExecMessage *msg = exec_message__unpack(NULL, len, data);
    if (!msg) {
        self->stats.malformed++;
        s_warn(self, "dropped a message that is not an ExecMessage (%zu bytes)", len);
        return;
    }
    switch (msg->body_case) {
    case EXEC_MESSAGE__BODY_PIN:
        s_on_pin(self, msg->pin);
        break;
    case EXEC_MESSAGE__BODY_UNPIN:
        s_on_unpin(self, msg->unpin);
        break;
    case EXEC_MESSAGE__BODY_CALL:
        s_on_call(self, msg->call);
        break;
    case EXEC_MESSAGE__BODY_SCHEDULE:
        s_on_schedule(self, msg);
        return; //  it took msg
    case EXEC_MESSAGE__BODY_TRIGGER: {
        const DagTrigger *t = msg->trigger;
        s_on_trigger(self, t->id, t->source, t->target_function, t->result.data, t->result.len,
                     (const char *const *)t->logs, t->n_logs, t->session.data, t->session.len);
        break;
    }
    case EXEC_MESSAGE__BODY_USER_MESSAGE:
        s_on_user_message(self, msg->sender, msg->user_message.data, msg->user_message.len);
        break;
    default:
        self->stats.malformed++;
        s_warn(self, "dropped an ExecMessage with no body");
        break;
    }
    exec_message__free_unpacked(msg, NULL);
}

static void s_drain(exec_executor_t *self)
{
    for (int i = 0; i < S_BATCH; i++) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, self->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return;
        }
        s_on_message(self, zmq_msg_data(&frame), zmq_msg_size(&frame));
        zmq_msg_close(&frame);
    }
}

//  --------------------------------------------------------------------------------------
//  Life cycle

void exec_config_defaults(exec_config_t *config)
{
    memset(config, 0, sizeof *config);
    config->node = "n0";
    config->index = 0;
    config->scheduler = "tcp://127.0.0.1:5007";
    config->kvs = "tcp://127.0.0.1:6450";
    config->bind_ip = "127.0.0.1";
    config->call_timeout_ms = 10000;
    config->report_ms = 1000;
}

static char *s_opt_dup(const char *s)
{
    return s ? cb_strdup(s) : NULL;
}

exec_executor_t *exec_executor_new(const exec_config_t *config, char *err, size_t errlen)
{
    exec_executor_t *self = cb_calloc(1, sizeof *self);
    self->config = *config;
    self->config.node = s_dup(config->node);
    self->config.scheduler = s_opt_dup(config->scheduler);
    self->config.cache = s_opt_dup(config->cache);
    self->config.kvs = s_opt_dup(config->kvs);
    self->config.bind_ip =
        s_dup(config->bind_ip && *config->bind_ip ? config->bind_ip : "127.0.0.1");
    self->config.trusted_keys = s_opt_dup(config->trusted_keys);
    if (self->config.call_timeout_ms <= 0)
        self->config.call_timeout_ms = 10000;
    if (self->config.report_ms <= 0)
        self->config.report_ms = 1000;
    self->deadline = INT64_MAX;
    char id[256];
    snprintf(id, sizeof id, "%s/%d", self->config.node, self->config.index);
    self->id = cb_strdup(id);
    self->routing = s_dup(config->cache && *config->cache ? config->cache : config->kvs);
    if (getrandom(&self->incarnation, sizeof self->incarnation, 0) != sizeof self->incarnation)
        self->incarnation = (uint32_t)cb_clock_wall_us();
    self->incarnation |= 1; //  never 0, which reads as "not set"
    self->dag = exec_queue_new(s_free_schedule);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        exec_executor_destroy(&self);
        return NULL;
    }
    if (self->config.trusted_keys &&
        exec_trust_load(&self->trust, self->config.trusted_keys, err, errlen) != 0) {
        exec_executor_destroy(&self);
        return NULL;
    }

    self->zctx = zmq_ctx_new();
    zmq_ctx_set(self->zctx, ZMQ_IO_THREADS, 1);
    self->pull = zmq_socket(self->zctx, ZMQ_PULL);
    int64_t max = S_MAX_MESSAGE;
    zmq_setsockopt(self->pull, ZMQ_MAXMSGSIZE, &max, sizeof max);
    int linger = 0;
    zmq_setsockopt(self->pull, ZMQ_LINGER, &linger, sizeof linger);
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "tcp://%s:*", self->config.bind_ip);
    if (zmq_bind(self->pull, endpoint) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        exec_executor_destroy(&self);
        return NULL;
    }
    size_t len = sizeof endpoint;
    zmq_getsockopt(self->pull, ZMQ_LAST_ENDPOINT, endpoint, &len);
    self->address = cb_strdup(endpoint);

    self->runner_config = (exec_runner_config_t){.routing = self->routing,
                                                 .bind_ip = self->config.bind_ip,
                                                 .executor_id = self->address,
                                                 .writer_id = self->id,
                                                 .trust = &self->trust};
    s_runner_start(self);
    if (!self->runner) {
        snprintf(err, errlen, "cannot start the runner");
        exec_executor_destroy(&self);
        return NULL;
    }
    self->period_start_us = cb_clock_mono_us();
    self->report_at = cb_clock_mono_ms(); //  report at once: the scheduler learns of us
    return self;
}

void exec_executor_destroy(exec_executor_t **self_p)
{
    exec_executor_t *self = *self_p;
    if (!self)
        return;
    exec_runner_destroy(&self->runner);
    s_job_free(&self->running);
    while (self->head) {
        s_job_t *job = self->head;
        self->head = job->next;
        s_job_free(&job);
    }
    exec_queue_destroy(&self->dag);
    while (self->sessions) {
        s_session_t *e = self->sessions;
        self->sessions = e->next;
        s_session_free(e);
    }
    while (self->inbox_head) {
        s_inbox_t *msg = self->inbox_head;
        self->inbox_head = msg->next;
        cb_free(msg->sender);
        cb_bytes_fini(&msg->data);
        cb_free(msg);
    }
    for (size_t i = 0; i < self->n_pinned; i++)
        cb_free(self->pinned[i]);
    cb_free(self->pinned);
    for (size_t i = 0; i < self->n_pushes; i++) {
        zmq_close(self->pushes[i].sock);
        cb_free(self->pushes[i].address);
    }
    if (self->pull)
        zmq_close(self->pull);
    if (self->zctx)
        zmq_ctx_term(self->zctx);
    exec_trust_fini(&self->trust);
    cb_free((char *)self->config.node);
    cb_free((char *)self->config.scheduler);
    cb_free((char *)self->config.cache);
    cb_free((char *)self->config.kvs);
    cb_free((char *)self->config.bind_ip);
    cb_free((char *)self->config.trusted_keys);
    cb_free(self->id);
    cb_free(self->address);
    cb_free(self->routing);
    cb_free(self);
    *self_p = NULL;
}

const char *exec_executor_address(const exec_executor_t *self)
{
    return self->address;
}

const char *exec_executor_id(const exec_executor_t *self)
{
    return self->id;
}

void exec_executor_stats(const exec_executor_t *self, exec_stats_t *out)
{
    *out = self->stats;
}

static int64_t s_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

//  Deadlines: the running job's, a receive's, the DAG queue's, the report's, a runner restart's.
static void s_timers(exec_executor_t *self, int64_t now)
{
    if (self->running && now >= self->deadline)
        s_runner_overran(self);
    if (self->recv_waiting && now >= self->recv_deadline && self->runner) {
        self->recv_waiting = false;
        s_send_inbox(self, NULL);
    }
    if (exec_queue_next_deadline(self->dag) <= now)
        s_expire(self, now);
    if (!self->runner && now >= self->refork_at)
        s_runner_start(self);
    if (now >= self->report_at) {
        s_session_expire(self, now);
        s_report(self);
        self->report_at = now + self->config.report_ms;
    }
}

int exec_executor_run(exec_executor_t *self, int stop_fd)
{
    for (;;) {
        int64_t now = cb_clock_mono_ms();
        s_timers(self, now);
        s_dispatch(self, now);
        int64_t wake = s_min(self->report_at, exec_queue_next_deadline(self->dag));
        if (self->running)
            wake = s_min(wake, self->deadline);
        if (self->recv_waiting)
            wake = s_min(wake, self->recv_deadline);
        if (!self->runner)
            wake = s_min(wake, self->refork_at);
        now = cb_clock_mono_ms();
        long timeout = wake <= now ? 0 : (long)s_min(wake - now, 60000);
        zmq_pollitem_t items[3] = {{self->pull, 0, ZMQ_POLLIN, 0},
                                   {NULL, stop_fd, ZMQ_POLLIN, 0},
                                   {NULL, -1, ZMQ_POLLIN, 0}};
        int n = 2;
        if (self->runner) {
            items[2].fd = exec_runner_fd(self->runner);
            if (exec_runner_pending(self->runner))
                items[2].events |= ZMQ_POLLOUT;
            n = 3;
        }
        if (zmq_poll(items, n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (items[1].revents)
            return 0;
        if (n == 3 && (items[2].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            s_runner_input(self);
        if (self->runner && exec_runner_pending(self->runner) &&
            exec_runner_flush(self->runner) != 0)
            s_runner_died(self);
        if (items[0].revents & ZMQ_POLLIN)
            s_drain(self);
    }
}
