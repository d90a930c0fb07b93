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

struct cb_fn_ctx {
    //  The runner's, for its life.
    int fd;                     //  the socket to the executor
    const char *executor_id;    //  borrowed: this executor's address
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
};

void exec_fnctx_init(cb_fn_ctx_t *ctx, int fd, const char *executor_id,
                     const cb_kvs_config_t *kvs_config);
void exec_fnctx_fini(cb_fn_ctx_t *ctx);
//  A call of function (borrowed; must outlive the call) begins / ends. End frees what the
//  call allocated: its arena, logs and error.
void exec_fnctx_begin(cb_fn_ctx_t *ctx, const char *function);
void exec_fnctx_end(cb_fn_ctx_t *ctx);
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
