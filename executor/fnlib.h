//  executor/fnlib.h: the runner's side of the user library: what stands behind a
//  cb_fn_ctx_t, and the runner's blocking frame I/O with its executor. Internal to the
//  executor (functions see only executor/function.h). Lives in the runner process, on its
//  only thread; the cb_fn_* symbols it defines are exported from cb-executor (-rdynamic)
//  and bound by each function .so when it is loaded.
//  SPDX-License-Identifier: Apache-2.0
#ifndef EXEC_FNLIB_H
#define EXEC_FNLIB_H

#include <stdbool.h>
#include <stddef.h>

#include "client/kvs.h"
#include "executor/causal.h"
#include "executor/frame.h"
#include "executor/function.h"

#define EXEC_MAX_LOG_LINES 1000
#define EXEC_MAX_LOG_LINE 4096
#define EXEC_MAX_ERROR 4096
#define EXEC_MAX_SEND (16u << 20)

//  Frames of the runner protocol (see runner.h).
enum {
    EXEC_J_LOAD = 'L',
    EXEC_J_UNPIN = 'U',
    EXEC_J_CALL = 'C',
    EXEC_J_PUT = 'P',
    EXEC_M_INBOX = 'I',
    EXEC_R_IO = 'i',
    EXEC_R_RUN = 'r',
    EXEC_R_SEND = 's',
    EXEC_R_RECV = 'v',
    EXEC_R_DONE = 'd',
};

typedef struct exec_block_s exec_block_t;

//  Most versions one request's session carries (reads beyond are not snapshotted: they
//  fail, so that a request never reads inconsistently).
#define EXEC_MAX_SESSION_READS 4096
//  Bound on one read at the request's home cache (above the cache's own KVS bound, 5 s).
#define EXEC_HOME_TIMEOUT_MS 6000
//  Causal levels: how long a read waits for this node's cache to catch up with what the
//  request depends on (the cache is subscribed to the key, so the KVS pushes newer
//  versions), before the call fails rather than read something older. Below the call's
//  own default timeout.
#define EXEC_CAUSAL_WAIT_MS 5000
//  The error of a causal read whose request depends on concurrent versions (siblings) of
//  the key: the cache shows versions whose join covers what the request depends on, none
//  of them alone. cb_faas_call_dag re-runs such requests (client/faas.c knows this text).
#define EXEC_CAUSAL_SIBLINGS "the request depends on concurrent versions (siblings) of"
//  Home caches (and PUSH sockets) a runner keeps connected.
#define EXEC_HOME_SOCKETS 8

struct cb_fn_ctx {
    //  The runner's, for its life.
    int fd;                     //  the socket to the executor
    const char *executor_id;    //  borrowed: this executor's address
    const char *writer_id;      //  borrowed: this executor's id, the clock entry of its
                                //  causal writes (one writer: its calls run one at a time)
    cb_kvs_config_t kvs_config; //  for the client made at first use; strings borrowed
    cb_kvs_t *kvs;              //  owned; NULL until first use
    exec_buf_t aux;             //  frames read during a call (INBOX answers)
    exec_buf_t out;             //  a frame being written
    //  Per call.
    const char *function; //  borrowed: the function running
    exec_block_t *arena;  //  owned: cb_fn_alloc memory, freed at the end of the call
    char *error;          //  owned: the cb_fn_error message, or NULL
    char **logs;          //  owned lines
    size_t n_logs;
    size_t logs_dropped; //  lines past EXEC_MAX_LOG_LINES
    uint32_t consistency; //  proto Consistency of the call
    exec_read_t *reads;   //  owned: the request's session (REPEATABLE_READ, causal levels)
    size_t n_reads, reads_cap;
    char *session_error;  //  owned: why a session read failed (fails the call), or NULL
    const char *request_id;    //  borrowed, per call: the request's id ("" if none)
    const char *session_cache; //  borrowed, per call: routing address of the request's home
                               //  cache for REPEATABLE_READ ("": none)
    //  The runner's own Anna client of home caches (made at first use).
    void *zctx, *zpull;
    char zpull_ep[256];
    void *zpush[EXEC_HOME_SOCKETS];             //  PUSH sockets, connected to zpush_to[i]
    char zpush_to[EXEC_HOME_SOCKETS][256];
    char home_routing[EXEC_HOME_SOCKETS][256];  //  home caches known: routing -> data address
    char home_data[EXEC_HOME_SOCKETS][256];
    const char *home;          //  per call: the data address of session_cache, once known
    uint64_t zseq;
};

void exec_fnctx_init(cb_fn_ctx_t *ctx, int fd, const char *executor_id, const char *writer_id,
                     const cb_kvs_config_t *kvs_config);
void exec_fnctx_fini(cb_fn_ctx_t *ctx);
//  A call of function (borrowed; must outlive the call) begins / ends. End frees what the
//  call allocated: its arena, logs and error.
void exec_fnctx_begin(cb_fn_ctx_t *ctx, const char *function);
void exec_fnctx_end(cb_fn_ctx_t *ctx);
//  The call's consistency level and the session its upstream functions read (a packed
//  SessionReads; may be empty). Call after exec_fnctx_begin. 0, or -EPROTO if malformed.
int exec_fnctx_session_load(cb_fn_ctx_t *ctx, uint32_t consistency, const void *data, size_t len);
//  The session after the call (upstream reads and this call's; under the causal levels
//  its writes too), packed into out (empty under LWW). Caller owns out.
void exec_fnctx_session_pack(const cb_fn_ctx_t *ctx, cb_bytes_t *out);
//  Reads key the way the call's consistency level says (the session first). Under the
//  causal levels *out is a causal value of the one version read. 0, -ENOENT, -EINVAL (a
//  causal level on a key that is not causal), -ESTALE (the level cannot be kept:
//  ctx->session_error says why), or the KVS's errors.
int exec_fnctx_read(cb_fn_ctx_t *ctx, const char *key, lat_t *out);
//  The cb value bytes of a value exec_fnctx_read returned (borrowed from v): an LWW
//  value's under LWW and REPEATABLE_READ, the one version's under the causal levels. NULL
//  if v is not such a value (the key holds another lattice type).
const cb_bytes_t *exec_fnctx_value_bytes(const cb_fn_ctx_t *ctx, const lat_t *v);
//  The sink of a repeatable-read request is done: tells the home cache to drop its
//  snapshots (no answer; they expire anyway).
void exec_fnctx_session_done(cb_fn_ctx_t *ctx);
//  The runner's KVS client (made at first use). NULL if it cannot be made; then err says why.
cb_kvs_t *exec_fnctx_kvs(cb_fn_ctx_t *ctx, char *err, size_t errlen);
//  A copy of data[0..len) followed by a NUL, in the call's arena.
void *exec_fnctx_dup(cb_fn_ctx_t *ctx, const void *data, size_t len);

//  Writes all of buf to fd (blocking). 0, or -errno (-EPIPE when the executor is gone).
int exec_chan_write(int fd, const exec_buf_t *buf);
//  Reads exactly one frame from fd into buf (its old content is dropped), waiting at most
//  timeout_ms (< 0: no limit). 1 with *type and *body (borrowing buf); -ETIMEDOUT; -EPIPE
//  at end of stream; -EPROTO for a bad length.
int exec_chan_read(int fd, exec_buf_t *buf, int timeout_ms, uint8_t *type, exec_reader_t *body);

#endif
