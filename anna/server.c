//  anna/server.c: start-up and shut-down of the actors. Sockets are bound here, on the
//  caller's thread, so that a port in use fails anna_server_new with a clear message; each
//  actor's thread then takes its sockets over (pthread_create is the memory barrier ZeroMQ
//  asks for when a socket changes threads). Stopping is zmq_ctx_shutdown: every blocking
//  call in the actors returns ETERM, they close their sockets and end.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/server.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <zmq.h>

#include "anna/membership.h"
#include "anna/resp.h"
#include "anna/routing.h"
#include "anna/worker.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

struct _anna_server_t {
    anna_config_t config;       //  copy
    void *ctx;                  //  ZeroMQ context of every actor
    anna_routing_t *routing;
    anna_worker_t **workers;    //  config.threads entries
    anna_resp_t *resp;          //  RESP front end; NULL when off
    void *ctl;                  //  PULL inproc: joined / refused, hand-over done
    bool running;               //  every actor started
    bool stopped;
};

//  Reply sockets each actor may cache, from the file descriptor limit (raised to the hard
//  limit first). Half the descriptors are left for incoming client connections; a cached
//  reply socket costs two (its connection and its mailbox).
static size_t s_reply_budget(int threads)
{
    struct rlimit rl;
    rlim_t nofile = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 1 << 20 ? 1 << 20
                                                                                : rl.rlim_max;
            if (want > rl.rlim_cur) {
                struct rlimit raised = {want, rl.rlim_max};
                if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
                    rl.rlim_cur = want;
            }
        }
        nofile = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : rl.rlim_cur;
    }
    size_t avail = nofile > 128 ? (size_t)nofile - 64 : 64;
    size_t per_actor = avail / 2 / (size_t)(threads + 1) / 2;
    return per_actor < 8 ? 8 : per_actor > 1024 ? 1024 : per_actor;
}

//  Waits up to timeout_ms for a message of type on the control socket; returns it (caller
//  frees with cluster_message__free_unpacked(msg, NULL)) or NULL.
static ClusterMessage *s_await(anna_server_t *self, ClusterMessageType type,
                               ClusterMessageType or_type, int64_t deadline)
{
    for (;;) {
        long wait = (long)(deadline - cb_clock_mono_ms());
        if (wait < 0)
            return NULL;
        zmq_pollitem_t item = {self->ctl, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, wait) < 0 && errno != EINTR)
            return NULL;
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->ctl, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        const char *why;
        ClusterMessage *m = anna_membership_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), NULL,
                                                   &why);
        zmq_msg_close(&msg);
        if (m && (m->type == type || m->type == or_type))
            return m;
        if (m)
            cluster_message__free_unpacked(m, NULL);
    }
}

//  A node with a seed is ready once the seed answered: it then knows the members.
static bool s_await_join(anna_server_t *self, char *err, size_t errlen)
{
    const anna_config_t *c = &self->config;
    int64_t wait_ms = 10000 + (int64_t)c->node_timeout_ms;
    ClusterMessage *m = s_await(self, CLUSTER_MESSAGE_TYPE__CLUSTER_JOIN,
                                CLUSTER_MESSAGE_TYPE__CLUSTER_REFUSED,
                                cb_clock_mono_ms() + wait_ms);
    if (!m) {
        snprintf(err, errlen, "cannot join the cluster: no answer from seed tcp://%s:%d within "
                 "%" PRId64 " ms", c->seed, ANNA_PORT_CLUSTER + c->port_offset, wait_ms);
        return false;
    }
    bool ok = m->type == CLUSTER_MESSAGE_TYPE__CLUSTER_JOIN;
    if (!ok)
        snprintf(err, errlen, "the cluster refused this node: %s", m->error_message);
    cluster_message__free_unpacked(m, NULL);
    return ok;
}

//  A graceful leave: the routing thread tells the members, the workers hand their keys to
//  their new owners; we wait for every worker (at most the leave timeout and a margin).
static void s_leave(anna_server_t *self)
{
    if (!self->ctl || !self->running)
        return;
    void *cmd = zmq_socket(self->ctx, ZMQ_PUSH);
    int linger = 0;
    zmq_setsockopt(cmd, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(cmd, ANNA_INPROC_ROUTING_CTL);
    cb_bytes_t bytes = {0};
    anna_membership_encode(CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER, "", 0, "", NULL, NULL, NULL, 0,
                           &bytes);
    zmq_send(cmd, bytes.data, bytes.len, 0);
    cb_bytes_fini(&bytes);
    zmq_close(cmd);
    int64_t deadline = cb_clock_mono_ms() + self->config.leave_timeout_ms + 2000;
    for (int done = 0; done < self->config.threads;) {
        ClusterMessage *m = s_await(self, CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER_DONE,
                                    CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER_DONE, deadline);
        if (!m) {
            cb_warn("leave: %d of %d threads handed their keys over in time", done,
                    self->config.threads);
            return;
        }
        cluster_message__free_unpacked(m, NULL);
        done++;
    }
}

anna_server_t *anna_server_new(const anna_config_t *config, char *err, size_t errlen)
{
    assert(config);
    anna_server_t *self = cb_calloc(1, sizeof *self);
    self->config = *config;
    int threads = config->threads;
    size_t replies = s_reply_budget(threads);
    self->ctx = zmq_ctx_new();
    if (!self->ctx) {
        snprintf(err, errlen, "cannot create ZeroMQ context: %s", zmq_strerror(errno));
        cb_free(self);
        return NULL;
    }
    //  One I/O thread: the workers do the work, and on a small machine every extra thread
    //  competes with them for a core. (The RESP front end does not use it: it reaches the
    //  workers over inproc sockets, which need no I/O thread.)
    zmq_ctx_set(self->ctx, ZMQ_IO_THREADS, 1);
    size_t sockets = (size_t)(threads + 1) * (replies + 64) + 64;
    int limit = zmq_ctx_get(self->ctx, ZMQ_SOCKET_LIMIT);
    if (limit > 0 && sockets > (size_t)limit)
        sockets = (size_t)limit;
    zmq_ctx_set(self->ctx, ZMQ_MAX_SOCKETS, (int)sockets);
    self->workers = cb_calloc((size_t)threads, sizeof *self->workers);
    bool complete = true;
    self->ctl = zmq_socket(self->ctx, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt(self->ctl, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(self->ctl, ANNA_INPROC_SERVER) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", ANNA_INPROC_SERVER, zmq_strerror(errno));
        complete = false;
    }
    for (int t = 0; complete && t < threads; t++) {
        self->workers[t] = anna_worker_new(self->ctx, config, (uint32_t)t, replies, err, errlen);
        complete = self->workers[t] != NULL;
    }
    if (complete) {
        self->routing = anna_routing_new(self->ctx, config, replies, err, errlen);
        complete = self->routing != NULL;
    }
    if (complete && anna_config_resp_port(config) > 0) {
        self->resp = anna_resp_new(self->ctx, config, err, errlen);
        complete = self->resp != NULL;
    }
    for (int t = 0; complete && t < threads; t++) {
        int rc = anna_worker_start(self->workers[t]);
        if (rc) {
            snprintf(err, errlen, "cannot start worker thread: %s", strerror(-rc));
            complete = false;
        }
    }
    if (complete) {
        int rc = anna_routing_start(self->routing);
        if (rc) {
            snprintf(err, errlen, "cannot start routing thread: %s", strerror(-rc));
            complete = false;
        }
    }
    if (complete && self->resp) {
        int rc = anna_resp_start(self->resp);
        if (rc) {
            snprintf(err, errlen, "cannot start RESP threads: %s", strerror(-rc));
            complete = false;
        }
    }
    self->running = complete;
    if (complete && config->seed[0] && strcmp(config->seed, anna_config_public_ip(config)))
        complete = s_await_join(self, err, errlen);
    if (!complete) {
        anna_server_destroy(&self);
        return NULL;
    }
    return self;
}

void anna_server_stop(anna_server_t *self)
{
    assert(self);
    if (self->stopped)
        return;
    s_leave(self);
    //  The RESP threads first: they close their connections and stop sending to workers
    //  that are about to go.
    if (self->resp)
        anna_resp_stop(self->resp);
    if (self->ctl)
        zmq_close(self->ctl);
    self->ctl = NULL;
    zmq_ctx_shutdown(self->ctx);
    if (self->routing)
        anna_routing_join(self->routing);
    for (int t = 0; t < self->config.threads; t++)
        if (self->workers[t])
            anna_worker_join(self->workers[t]);
    self->stopped = true;
}

void anna_server_report(anna_server_t *self, FILE *out)
{
    assert(self && self->stopped);
    for (int t = 0; t < self->config.threads; t++) {
        if (!self->workers[t])
            continue;
        anna_worker_stats_t stats;
        anna_worker_stats(self->workers[t], &stats);
        char line[1024];
        anna_worker_stats_format(&stats, (uint32_t)t, false, line, sizeof line);
        fprintf(out, "anna-server %s\n", line);
    }
    if (self->resp)
        anna_resp_report(self->resp, out);
    if (self->routing) {
        anna_routing_stats_t rs;
        anna_routing_stats(self->routing, &rs);
        fprintf(out,
                "anna-server routing: requests=%" PRIu64 " keys=%" PRIu64 " malformed=%" PRIu64
                " bad_address=%" PRIu64 " replies=%" PRIu64 " replies_dropped=%" PRIu64 "\n",
                rs.requests, rs.keys, rs.malformed, rs.bad_address, rs.replies,
                rs.replies_dropped);
    }
    fflush(out);
}

void anna_server_destroy(anna_server_t **self_p)
{
    assert(self_p);
    anna_server_t *self = *self_p;
    if (!self)
        return;
    anna_server_stop(self);
    if (self->ctl)
        zmq_close(self->ctl);
    //  Actors that never started still hold their sockets: destroy closes them, and only
    //  then can the context terminate.
    anna_resp_destroy(&self->resp);
    anna_routing_destroy(&self->routing);
    for (int t = 0; t < self->config.threads; t++)
        anna_worker_destroy(&self->workers[t]);
    cb_free(self->workers);
    zmq_ctx_term(self->ctx);
    cb_free(self);
    *self_p = NULL;
}
