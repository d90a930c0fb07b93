//  executor/function.h: the C ABI that user functions are written against (ABI version 1).
//
//  A function is a shared object that exports two symbols:
//
//      #include "executor/function.h"
//
//      const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;
//
//      int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs,
//                    cb_fn_value_t *result)
//      {
//          if (nargs != 1 || args[0].type != CB_FN_INT64)
//              return cb_fn_error(ctx, "expected one int argument");
//          return cb_fn_return_int(ctx, result, args[0].i64 + 1);
//      }
//
//  Build it with no link flags (the cb_fn_* calls are resolved in the executor at load time):
//      cc -shared -fPIC -I<repo> incr.c -o incr.so
//  and register it with `cb register incr incr.so` (`--sign KEYFILE` to sign it, which
//  executors started with --trusted-keys require; see docs/faas-design.md).
//
//  How a function runs. The executor loads the .so in a runner child process (from a memfd,
//  never from a file path) and calls cb_fn_run once per invocation, one call at a time, on
//  the runner's main thread. The runner lives across calls, so globals and constructors
//  persist between calls of the same loaded function (a warm cache is allowed), but nothing
//  may rely on them: a runner is replaced after any crash or timeout, and functions that are
//  not pinned may be unloaded at any time. A crash (signal) or a call that runs past its
//  timeout ends that call with an error (CB_FUNCTION_CRASHED / CB_TIMEOUT) and costs a new
//  runner; other calls are not affected. Do not fork, install signal handlers, or touch file
//  descriptors you did not open: the runner talks to its executor over one of them.
//
//  Arguments. args[0..nargs) are the call's fixed arguments in the order the caller gave
//  them, then (in a DAG) the results of the upstream functions in the order of the DAG's
//  edges. Their memory is borrowed: valid until cb_fn_run returns. The payload of a BYTES,
//  STRING or USER value is followed by a NUL byte that len does not count, so a STRING
//  without embedded NULs is also a C string.
//
//  Result. cb_fn_run returns 0 and sets *result (typically with a cb_fn_return_* helper,
//  which copies into memory the runtime owns), or returns non-zero after cb_fn_error() to
//  fail the call with CB_FUNCTION_FAILED and that message. *result starts as empty BYTES. A
//  function may also fill *result itself; its data must then stay valid after cb_fn_run
//  returns: static storage, or memory from cb_fn_alloc().
//
//  Errors from the library calls below are negative errno values (0 = success), e.g.
//  -ENOENT (no such key), -EINVAL (bad argument, or the key holds another lattice type),
//  -ETIMEDOUT (the cache or KVS did not answer), -EMSGSIZE (too large).
//
//  Compatibility. CB_FN_ABI_VERSION changes when any type or prototype here changes
//  incompatibly; an executor refuses (CB_LOAD_FAILED) an object whose cb_fn_abi_version it
//  does not support. This header includes only libc headers.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_FN_FUNCTION_H
#define CB_FN_FUNCTION_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CB_FN_ABI_VERSION 1u

//  The context of one call: handed to cb_fn_run, valid until it returns. Opaque.
typedef struct cb_fn_ctx cb_fn_ctx_t;

//  Value types; the numbers are those of the cb value encoding (common/value.h), so a value
//  a function stores with cb_fn_put reads back with the same type anywhere in the system.
typedef enum {
    CB_FN_BYTES = 0,   //  uninterpreted bytes (also: any KVS value not written as a cb value)
    CB_FN_STRING = 1,  //  text; by convention UTF-8
    CB_FN_INT64 = 2,   //  i64
    CB_FN_FLOAT64 = 3, //  f64
    CB_FN_USER = 4,    //  bytes with the user's own type number in user_tag
} cb_fn_type_t;

//  A value. Fixed layout (part of the ABI): 40 bytes on LP64.
typedef struct {
    uint32_t type;     //  a cb_fn_type_t
    uint32_t user_tag; //  CB_FN_USER only: the user's type number
    const void *data;  //  BYTES, STRING, USER payload; NULL allowed when len is 0
    size_t len;        //  payload bytes
    int64_t i64;       //  CB_FN_INT64
    double f64;        //  CB_FN_FLOAT64
} cb_fn_value_t;

//  Constructors of values that borrow their data (for cb_fn_put and the like).
static inline cb_fn_value_t cb_fn_int(int64_t v)
{
    cb_fn_value_t value = {CB_FN_INT64, 0, NULL, 0, v, 0.0};
    return value;
}
static inline cb_fn_value_t cb_fn_float(double v)
{
    cb_fn_value_t value = {CB_FN_FLOAT64, 0, NULL, 0, 0, v};
    return value;
}
static inline cb_fn_value_t cb_fn_bytes(const void *data, size_t len)
{
    cb_fn_value_t value = {CB_FN_BYTES, 0, data, len, 0, 0.0};
    return value;
}
//  text is a C string; its NUL is not part of the value.
static inline cb_fn_value_t cb_fn_string(const char *text)
{
    cb_fn_value_t value = {CB_FN_STRING, 0, text, strlen(text), 0, 0.0};
    return value;
}

//  ---- what every function exports --------------------------------------------------------

//  Must equal the CB_FN_ABI_VERSION the function was built with.
extern const uint32_t cb_fn_abi_version;
//  Runs one call. Returns 0 on success, non-zero on failure (see cb_fn_error).
int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result);

//  ---- results and errors ------------------------------------------------------------------

//  Set *result, copying any payload into runtime-owned memory. Return 0, so that a function
//  can end with `return cb_fn_return_int(ctx, result, v);`.
int cb_fn_return_int(cb_fn_ctx_t *ctx, cb_fn_value_t *result, int64_t v);
int cb_fn_return_float(cb_fn_ctx_t *ctx, cb_fn_value_t *result, double v);
int cb_fn_return_string(cb_fn_ctx_t *ctx, cb_fn_value_t *result, const char *text);
int cb_fn_return_bytes(cb_fn_ctx_t *ctx, cb_fn_value_t *result, const void *data, size_t len);
int cb_fn_return_user(cb_fn_ctx_t *ctx, cb_fn_value_t *result, uint32_t user_tag, const void *data,
                      size_t len);
//  Copies *value (and its payload) into *result.
int cb_fn_return_value(cb_fn_ctx_t *ctx, cb_fn_value_t *result, const cb_fn_value_t *value);

//  Sets the call's error message (printf format; the latest call wins; long messages are
//  cut at 4 KiB). Returns -1, so that a function can end with `return cb_fn_error(...)`.
//  The caller sees CB_FUNCTION_FAILED "function 'NAME' failed: MESSAGE".
int cb_fn_error(cb_fn_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

//  size bytes of memory (aligned for any type) that lives until the call's result has been
//  sent (then freed by the runtime): scratch space, or a result built in place without a
//  second copy. Aborts
//  the runner (CB_FUNCTION_CRASHED) when out of memory, like malloc failing would.
void *cb_fn_alloc(cb_fn_ctx_t *ctx, size_t size);

//  ---- state: the KVS, through this node's cache --------------------------------------------

//  Reads key as a value. Keys hold last-writer-wins (LWW) values, or, in a call at a causal
//  consistency level, causal values: then the value of the one version the level allows
//  (docs/faas.md, "Consistency levels"). Bytes not written as a cb value read as
//  CB_FN_BYTES. *out's payload is borrowed: valid until the call ends.
//  Returns 0, -ENOENT (no such key), -EINVAL (the key holds another lattice type, or a
//  failed call's error value), -EPROTO (a malformed cb value), -ETIMEDOUT, -ESTALE (the
//  call's consistency level cannot be kept: the call then fails, saying why)...
int cb_fn_get(cb_fn_ctx_t *ctx, const char *key, cb_fn_value_t *out);
//  Writes value at key as an LWW value stamped now (at a causal level: as a causal version
//  after what the call read). 0 means the KVS has it (this node's cache wrote it through);
//  other nodes' caches get it when the KVS pushes the change. value is borrowed.
int cb_fn_put(cb_fn_ctx_t *ctx, const char *key, const cb_fn_value_t *value);

//  Lattice kinds, the numbers of the Anna protocol's LatticeType (proto/anna.proto).
enum {
    CB_FN_LAT_LWW = 1,
    CB_FN_LAT_SET = 2,
    CB_FN_LAT_SINGLE_CAUSAL = 3,
    CB_FN_LAT_MULTI_CAUSAL = 4,
    CB_FN_LAT_ORDERED_SET = 5,
    CB_FN_LAT_PRIORITY = 6,
    CB_FN_LAT_BOOL = 16,
    CB_FN_LAT_MAX = 17,
    CB_FN_LAT_MAP = 18,
    CB_FN_LAT_VCLOCK = 19,
};
//  Any lattice type, as the Anna wire format carries it: *kind is a CB_FN_LAT_* number and
//  the payload is the protobuf message of that kind in proto/anna.proto (LWWValue,
//  SetValue, ...): decode it with protobuf-c code generated from anna.proto. This keeps the
//  ABI free of our lattice structs, which may change. *payload is borrowed until the call
//  ends. At a causal level the value is the one version the level allows (its clock and,
//  multi-key, dependencies included). Returns 0, -ENOENT, -ETIMEDOUT...
int cb_fn_get_lattice(cb_fn_ctx_t *ctx, const char *key, uint32_t *kind, const void **payload,
                      size_t *len);
//  Merges the lattice value (kind + payload, as above) into key. payload is borrowed.
//  Returns 0, -EINVAL (the key holds another kind, or a payload that does not decode), ...
int cb_fn_put_lattice(cb_fn_ctx_t *ctx, const char *key, uint32_t kind, const void *payload,
                      size_t len);

//  ---- messages between running functions ---------------------------------------------------

//  This executor's id: the address other functions send to (e.g. "tcp://127.0.0.1:41234").
//  Borrowed; valid until the call ends.
const char *cb_fn_getid(cb_fn_ctx_t *ctx);
//  Sends len bytes to the executor with id executor_id (possibly this one). Fire and forget:
//  0 means queued for sending, not received. -EINVAL for an id that is not an address,
//  -EMSGSIZE above 16 MiB.
int cb_fn_send(cb_fn_ctx_t *ctx, const char *executor_id, const void *data, size_t len);

typedef struct {
    const char *sender; //  the sending executor's id; borrowed until the call ends
    const void *data;   //  the message; borrowed until the call ends
    size_t len;
} cb_fn_message_t;
//  Takes the oldest message from this executor's inbox, waiting up to timeout_ms for one
//  (0 = do not wait). The wait counts against the call's own timeout: a call still waiting
//  when that runs out ends with CB_TIMEOUT like any other. Messages that arrive while no
//  function is receiving wait in the inbox for later calls (bounded: when it is full, new
//  messages are dropped). Returns 0 with *out set, or -ETIMEDOUT when none came.
int cb_fn_recv(cb_fn_ctx_t *ctx, cb_fn_message_t *out, int timeout_ms);

//  ---- diagnostics --------------------------------------------------------------------------

//  Appends one line (printf format) to the call's log, returned to the caller with the
//  result (Reply.logs; in a DAG, the lines of every function of the call). Bounded: at
//  most 1000 lines of 4 KiB per call; lines beyond are counted and reported in one line.
void cb_fn_log(cb_fn_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
//  The name this function was registered under. Borrowed; valid until the call ends.
const char *cb_fn_name(cb_fn_ctx_t *ctx);

#ifdef __cplusplus
}
#endif

#endif
