//  tests/system/faas_fake_scheduler.c: a scheduler that misbehaves on purpose, for the
//  client library's own tests (t_faas_client.sh). It takes Requests on the scheduler's port
//  and answers from a script keyed by the names in the request:
//    list functions      a stale Reply (another request id) and a garbage frame first, then
//                        the real answer ["alpha", "beta"]: the client must pick the right one
//    call "echo"         the arguments back as a string "[v1 v2 @ref]", two log lines
//    call "err<N>"       CbError N with the message "fake error N"
//    call "errval"       a result that is an error value
//    call "hang"         no answer at all
//    call "late"         the answer after 300 ms
//    call with output key   the key back at once (a future)
//    register function   checks the signature (Ed25519 over name || 0x00 || code) when there
//                        is one: OK "signed", OK, or INVALID "bad signature"
//    register DAG        INVALID with "functions a,b edges a->b,..." so the test sees what
//                        the CLI built
//    call DAG            a string "fn=[args];fn=[args]" of the fixed arguments it got
//    status              two executors on one node
//  Usage: faas_fake_scheduler PORT_OFFSET. Exits on SIGTERM, or after 120 s.
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/value.h"

static volatile sig_atomic_t s_stop;

static void s_on_term(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_send(void *ctx, const char *address, const Reply *reply)
{
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 1000;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(push, address);
    size_t len = reply__get_packed_size(reply);
    uint8_t *buf = cb_malloc(len + 1);
    reply__pack(reply, buf);
    zmq_send(push, buf, len, 0);
    cb_free(buf);
    zmq_close(push);
}

static void s_send_raw(void *ctx, const char *address, const void *data, size_t len)
{
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 1000;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(push, address);
    zmq_send(push, data, len, 0);
    zmq_close(push);
}

//  Appends the text of an argument list to buf: "[3 \"x\" @key]".
static void s_args_text(char *buf, size_t cap, Arg **args, size_t n)
{
    size_t len = strlen(buf);
    len += (size_t)snprintf(buf + len, cap - len, "[");
    for (size_t i = 0; i < n && len < cap; i++) {
        if (args[i]->ref && *args[i]->ref) {
            len += (size_t)snprintf(buf + len, cap - len, "%s@%s", i ? " " : "", args[i]->ref);
            continue;
        }
        cb_value_t v;
        if (cb_value_decode(args[i]->value.data, args[i]->value.len, &v) != 0) {
            len += (size_t)snprintf(buf + len, cap - len, "%s?", i ? " " : "");
            continue;
        }
        char *t = cb_value_format(&v);
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "", t);
        cb_free(t);
        cb_value_fini(&v);
    }
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

static void s_set_string_result(Reply *reply, cb_bytes_t *enc, const char *text)
{
    cb_value_t v;
    cb_value_set_bytes(&v, CB_VALUE_STRING, text, strlen(text));
    cb_value_encode(&v, enc);
    cb_value_fini(&v);
    reply->result.data = enc->data;
    reply->result.len = enc->len;
}

static void s_handle(void *ctx, const Request *req)
{
    Reply reply = REPLY__INIT;
    reply.request_id = req->request_id;
    cb_bytes_t enc = {0};
    char text[4096] = "";
    char *logs[] = {"first log line", "second log line"};
    const char *addr = req->response_address;
    switch (req->op_case) {
    case REQUEST__OP_LIST_FUNCTIONS: {
        Reply stale = REPLY__INIT;
        stale.request_id = "stale-id";
        char *wrong[] = {"wrong"};
        stale.n_names = 1;
        stale.names = wrong;
        s_send(ctx, addr, &stale);
        s_send_raw(ctx, addr, "\xff\xff\xff garbage", 12);
        char *names[] = {"beta", "alpha"};
        reply.n_names = 2;
        reply.names = names;
        s_send(ctx, addr, &reply);
        return;
    }
    case REQUEST__OP_LIST_DAGS:
        break;
    case REQUEST__OP_CALL_FUNCTION: {
        const FunctionCall *call = req->call_function;
        const char *fn = call->function;
        if (call->output_key && *call->output_key) {
            reply.output_key = call->output_key;
        } else if (!strcmp(fn, "hang")) {
            return;
        } else if (!strcmp(fn, "late")) {
            usleep(300000);
            s_set_string_result(&reply, &enc, "late");
        } else if (!strncmp(fn, "err", 3) && strcmp(fn, "errval") != 0) {
            reply.error = (CbError)atoi(fn + 3);
            snprintf(text, sizeof text, "fake error %d", atoi(fn + 3));
            reply.error_message = text;
            reply.n_logs = 1;
            reply.logs = logs;
        } else if (!strcmp(fn, "errval")) {
            cb_value_t v;
            cb_value_set_bytes(&v, CB_VALUE_ERROR, "failed as a value", 17);
            cb_value_encode(&v, &enc);
            cb_value_fini(&v);
            reply.result.data = enc.data;
            reply.result.len = enc.len;
        } else {
            s_args_text(text, sizeof text, call->args, call->n_args);
            snprintf(text + strlen(text), sizeof text - strlen(text), " timeout %u",
                     call->timeout_ms);
            s_set_string_result(&reply, &enc, text);
            reply.n_logs = 2;
            reply.logs = logs;
        }
        break;
    }
    case REQUEST__OP_REGISTER_FUNCTION: {
        const FunctionBlob *b = req->register_function;
        if (b->signature.len) {
            size_t n = strlen(b->name);
            uint8_t *msg = cb_malloc(n + 1 + b->code.len);
            memcpy(msg, b->name, n);
            msg[n] = 0;
            memcpy(msg + n + 1, b->code.data, b->code.len);
            bool good = b->signature.len == crypto_sign_BYTES
                        && b->public_key.len == crypto_sign_PUBLICKEYBYTES
                        && crypto_sign_verify_detached(b->signature.data, msg, n + 1 + b->code.len,
                                                       b->public_key.data) == 0;
            cb_free(msg);
            if (!good) {
                reply.error = CB_ERROR__CB_INVALID;
                reply.error_message = "bad signature";
            }
        }
        break;
    }
    case REQUEST__OP_REGISTER_DAG: {
        const DagSpec *d = req->register_dag;
        size_t len = (size_t)snprintf(text, sizeof text, "functions ");
        for (size_t i = 0; i < d->n_functions && len < sizeof text; i++)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? "," : "",
                                    d->functions[i]);
        len += (size_t)snprintf(text + len, sizeof text - len, " edges ");
        for (size_t i = 0; i < d->n_edges && len < sizeof text; i++)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s->%s", i ? "," : "",
                                    d->edges[i]->from, d->edges[i]->to);
        reply.error = CB_ERROR__CB_INVALID;
        reply.error_message = text;
        break;
    }
    case REQUEST__OP_CALL_DAG: {
        const DagCall *call = req->call_dag;
        //  The map's entries in name order, so the text does not depend on the client's order.
        const char *done[64];
        size_t n_done = 0;
        for (size_t k = 0; k < call->n_args && k < 64; k++) {
            const DagCall__ArgsEntry *best = NULL;
            for (size_t i = 0; i < call->n_args; i++) {
                bool used = false;
                for (size_t j = 0; j < n_done; j++)
                    used |= !strcmp(done[j], call->args[i]->key);
                if (!used && (!best || strcmp(call->args[i]->key, best->key) < 0))
                    best = call->args[i];
            }
            done[n_done++] = best->key;
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s=", k ? ";" : "",
                     best->key);
            s_args_text(text, sizeof text, best->value ? best->value->args : NULL,
                        best->value ? best->value->n_args : 0);
        }
        if (call->output_key && *call->output_key)
            reply.output_key = call->output_key;
        else
            s_set_string_result(&reply, &enc, text);
        break;
    }
    case REQUEST__OP_STATUS: {
        ExecutorInfo e1 = EXECUTOR_INFO__INIT, e2 = EXECUTOR_INFO__INIT;
        e1.id = "n0/1";
        e1.address = "tcp://127.0.0.1:1";
        e1.node = "n0";
        e1.calls = 7;
        e1.utilization = 0.25;
        e2.id = "n0/0";
        e2.address = "tcp://127.0.0.1:2";
        e2.node = "n0";
        char *pinned[] = {"beta", "alpha"};
        e2.n_pinned = 2;
        e2.pinned = pinned;
        ExecutorInfo *es[] = {&e1, &e2};
        NodeInfo n0 = NODE_INFO__INIT;
        n0.node = "n0";
        n0.cache_address = "ipc:///tmp/fake";
        n0.cached_keys = 3;
        NodeInfo *ns[] = {&n0};
        ClusterStatus st = CLUSTER_STATUS__INIT;
        st.n_executors = 2;
        st.executors = es;
        st.n_nodes = 1;
        st.nodes = ns;
        st.kvs_routing = "tcp://127.0.0.1:9";
        reply.status = &st;
        s_send(ctx, addr, &reply);
        return;
    }
    default:
        break;
    }
    s_send(ctx, addr, &reply);
    cb_bytes_fini(&enc);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: faas_fake_scheduler PORT_OFFSET\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    signal(SIGTERM, s_on_term);
    signal(SIGINT, s_on_term);
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", 5000 + atoi(argv[1]));
    if (zmq_bind(pull, endpoint) != 0) {
        fprintf(stderr, "faas_fake_scheduler: cannot bind %s: %s\n", endpoint, zmq_strerror(errno));
        return 1;
    }
    printf("faas_fake_scheduler ready on %s\n", endpoint);
    fflush(stdout);
    int64_t deadline = cb_clock_mono_ms() + 120000;
    while (!s_stop && cb_clock_mono_ms() < deadline) {
        zmq_pollitem_t item = {pull, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 200) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, pull, 0) < 0)
            break;
        Request *req = request__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!req)
            continue;
        s_handle(ctx, req);
        request__free_unpacked(req, NULL);
    }
    int zero = 0;
    zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    return 0;
}
