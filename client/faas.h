//  client/faas.h: the C client library of the FaaS runtime (libclient). What the `cb` CLI,
//  the benchmarks, the system tests and users link against to register functions and DAGs
//  and to call them.
//
//  A cb_faas_t owns one ZeroMQ PULL socket bound to an ephemeral port (every Reply comes
//  there), one PUSH socket connected to the scheduler's request port (5000 + port offset),
//  and, made on first use, a KVS client (client/kvs.h) for futures, get and put. Replies are
//  matched by request id: a late reply to an earlier request is dropped, never taken for the
//  answer to a newer one. Every wait is bounded: administrative requests by the configured
//  timeout, calls by the call's own timeout plus a margin.
//  One cb_faas_t belongs to one thread.
//
//  Errors are negative errno values; cb_faas_last_error() gives the words (the scheduler's or
//  executor's message, or ours), cb_faas_last_code() the CbError of proto/cloudburst.proto:
//      CB_NO_SUCH_FUNCTION  -ENOENT          CB_TIMEOUT           -ETIMEDOUT
//      CB_NO_SUCH_DAG       -ENOENT          CB_FUNCTION_FAILED   -EREMOTEIO
//      CB_INVALID           -EINVAL          CB_FUNCTION_CRASHED  -EOWNERDEAD
//      CB_ALREADY_EXISTS    -EEXIST          CB_LOAD_FAILED       -ENOEXEC
//      CB_NO_RESOURCES      -EBUSY           CB_UNTRUSTED         -EPERM
//      CB_TOO_LARGE         -EMSGSIZE        CB_KVS               -EHOSTUNREACH
//      CB_INTERNAL          -EIO             unknown code         -EPROTO
//  and, from the library itself: -ETIMEDOUT (no answer in time: the cluster is down or
//  overloaded), -EINVAL (bad arguments, nothing sent), -EMSGSIZE (a request over
//  CB_FAAS_MAX_REQUEST_BYTES, nothing sent), -EPROTO (an undecodable reply), -ENOENT (a
//  future or key that holds no value), and the KVS client's codes for get/put.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_FAAS_H
#define CB_FAAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/kvs.h"
#include "common/value.h"

typedef struct _cb_faas_t cb_faas_t;

//  The CbError codes of proto/cloudburst.proto, repeated so that users need no protobuf.
typedef enum {
    CB_FAAS_OK = 0,
    CB_FAAS_NO_SUCH_FUNCTION = 1,
    CB_FAAS_NO_SUCH_DAG = 2,
    CB_FAAS_INVALID = 3,
    CB_FAAS_ALREADY_EXISTS = 4,
    CB_FAAS_NO_RESOURCES = 5,
    CB_FAAS_TIMEOUT = 6,
    CB_FAAS_FUNCTION_FAILED = 7,
    CB_FAAS_FUNCTION_CRASHED = 8,
    CB_FAAS_LOAD_FAILED = 9,
    CB_FAAS_UNTRUSTED = 10,
    CB_FAAS_TOO_LARGE = 11,
    CB_FAAS_KVS = 12,
    CB_FAAS_INTERNAL = 13,
} cb_faas_code_t;

//  Consistency levels (proto Consistency), docs/faas-design.md "Consistency levels".
//  REPEATABLE_READ: every read of a key by any function of one call returns the same
//  version. A DAG call whose parallel branches still read different versions of a key (its
//  home cache restarted in between) fails before an inconsistent read reaches a function.
//  SINGLE_CAUSAL / MULTI_CAUSAL: functions read and write causal values (vector clocks;
//  multi-key: with dependencies); a read of a key never returns a version older than, or
//  concurrent with, what the call already depends on; when that cannot be had in time the
//  call fails with CB_KVS and says why. A DAG call that came to depend on two sibling
//  (concurrent) versions of a key fails at its next read of the key.
//  cb_faas_call_dag runs the calls of those two cases again from the start,
//  CB_FAAS_RR_ATTEMPTS times in all at most (the functions' writes happen again).
#define CB_FAAS_RR_ATTEMPTS 4
typedef enum {
    CB_FAAS_LWW = 0,
    CB_FAAS_REPEATABLE_READ = 1,
    CB_FAAS_SINGLE_CAUSAL = 2,
    CB_FAAS_MULTI_CAUSAL = 3,
} cb_faas_consistency_t;

//  Largest request the library sends (a registration with its code, or a call with its
//  arguments); the KVS refuses larger values anyway (anna-server --max-value-bytes).
#define CB_FAAS_MAX_REQUEST_BYTES (64u << 20)
//  Added to a call's timeout for the wait on its reply: placement, transfer, result.
#define CB_FAAS_CALL_MARGIN_MS 2000
//  Default bound of a call's run when the options give none (the executors' default).
#define CB_FAAS_DEFAULT_CALL_TIMEOUT_MS 10000

typedef struct {
    const char *scheduler;      //  "tcp://127.0.0.1:5000"; borrowed
    const char *kvs_routing;    //  "tcp://127.0.0.1:6450"; NULL = the scheduler's (status)
    const char *bind_ip;        //  IP of the reply socket; NULL = 127.0.0.1
    int timeout_ms;             //  bound on administrative requests; <= 0 = 5000
} cb_faas_config_t;

//  NULL (errno EINVAL) if the config is invalid: scheduler or kvs_routing not tcp:// or
//  ipc://, bind_ip not a concrete IPv4 address, timeout over one hour; or another errno if
//  the sockets cannot be made. Sends nothing: a cluster that is down shows at the first call.
cb_faas_t *cb_faas_new(const cb_faas_config_t *config);
//  Idempotent; sets *self_p to NULL.
void cb_faas_destroy(cb_faas_t **self_p);

//  Text of the last failure ("" after a success). Borrowed; valid until the next call on self.
const char *cb_faas_last_error(const cb_faas_t *self);
//  CbError of the last failure that the cluster reported; CB_FAAS_OK when the library
//  itself failed (timeout, bad arguments) or after a success.
cb_faas_code_t cb_faas_last_code(const cb_faas_t *self);
//  Negative errno for a CbError (table above). Pure.
int cb_faas_errno(cb_faas_code_t code);
//  Borrowed static name of a CbError: "NO_SUCH_FUNCTION", ...; "UNKNOWN" for others.
const char *cb_faas_code_name(cb_faas_code_t code);

//  ---- names ----------------------------------------------------------------------------

typedef struct {
    char **names;               //  owned array of owned names, sorted
    size_t len;
} cb_faas_names_t;
//  Idempotent.
void cb_faas_names_fini(cb_faas_names_t *self);

//  ---- functions ------------------------------------------------------------------------

//  An Ed25519 signing key as libsodium makes it (crypto_sign_keypair): 64-byte secret key.
#define CB_FAAS_SECRET_KEY_BYTES 64
#define CB_FAAS_PUBLIC_KEY_BYTES 32

//  Registers (or replaces) function name with the shared object code[0..len) (borrowed).
//  With secret_key (64 bytes, borrowed; NULL = unsigned), signs name || 0x00 || code with
//  Ed25519 and sends the signature and the public key with it. Names: 1..128 bytes of
//  [A-Za-z0-9_.-]. -EINVAL for a bad name or empty code.
int cb_faas_register_function(cb_faas_t *self, const char *name, const void *code, size_t len,
                              const uint8_t *secret_key);
//  As above with the contents of the file at path. Refuses (-ENOEXEC, nothing sent) a file
//  that is not an ELF shared object, so a typo is reported before any upload.
int cb_faas_register_file(cb_faas_t *self, const char *name, const char *path,
                          const uint8_t *secret_key);
int cb_faas_delete_function(cb_faas_t *self, const char *name);
//  Caller owns *out (cb_faas_names_fini), also on error (then empty).
int cb_faas_list_functions(cb_faas_t *self, cb_faas_names_t *out);

//  ---- DAGs -----------------------------------------------------------------------------

typedef struct {
    const char *from;           //  borrowed
    const char *to;             //  borrowed
} cb_faas_edge_t;

//  Everything borrowed. A function's upstream results are its inputs in the order of edges.
typedef struct {
    const char *name;
    const char *const *functions;
    size_t n_functions;
    const cb_faas_edge_t *edges;
    size_t n_edges;
} cb_faas_dag_t;

//  The scheduler validates (registered functions, acyclic, one sink...: -EINVAL with its
//  message) and pins the functions on executors (-EBUSY when there are too few).
int cb_faas_register_dag(cb_faas_t *self, const cb_faas_dag_t *dag);
int cb_faas_delete_dag(cb_faas_t *self, const char *name);
int cb_faas_list_dags(cb_faas_t *self, cb_faas_names_t *out);

//  ---- calls ----------------------------------------------------------------------------

//  An argument: a literal value, or (ref non-NULL) the value at a KVS key, read next to the
//  function before it runs. Borrowed.
typedef struct {
    const cb_value_t *value;
    const char *ref;
} cb_faas_arg_t;

typedef struct {
    const char *output_key;     //  non-NULL: the result goes to this KVS key (a future)
    int timeout_ms;             //  bound on the function's (each function's) run; <= 0: default
    cb_faas_consistency_t consistency;
} cb_faas_call_opts_t;

typedef struct {
    cb_value_t value;           //  the result (type CB_VALUE_ERROR never: that is an error)
    char *output_key;           //  owned; the future's key when the call had one, else NULL
    char **logs;                //  owned lines the functions logged (cb_fn_log), in order
    size_t n_logs;
} cb_faas_result_t;
//  Idempotent; leaves *self zeroed.
void cb_faas_result_fini(cb_faas_result_t *self);

//  Calls function name with args[0..n) and waits for its result, at most the call's timeout
//  plus CB_FAAS_CALL_MARGIN_MS. With opts->output_key, returns as soon as the scheduler has
//  placed the call: out->output_key is set and the value is read later with
//  cb_faas_future_get. opts may be NULL. Caller owns *out (cb_faas_result_fini), also on
//  error (then empty, except logs the failed call returned).
int cb_faas_call_function(cb_faas_t *self, const char *name, const cb_faas_arg_t *args,
                          size_t n, const cb_faas_call_opts_t *opts, cb_faas_result_t *out);

//  Fixed arguments of one function of a DAG call. Borrowed.
typedef struct {
    const char *function;
    const cb_faas_arg_t *args;
    size_t n;
} cb_faas_fn_args_t;

//  Calls DAG name; fn_args[0..n) gives fixed arguments to some of its functions (the others
//  get none). Waits as cb_faas_call_function does, with the same ownership rules.
int cb_faas_call_dag(cb_faas_t *self, const char *name, const cb_faas_fn_args_t *fn_args,
                     size_t n, const cb_faas_call_opts_t *opts, cb_faas_result_t *out);

//  Reads the future at key: polls the KVS until the key holds a value or timeout_ms passes
//  (-ETIMEDOUT). A CB_VALUE_ERROR value (the call failed) is returned as -EREMOTEIO with its
//  message in cb_faas_last_error. Caller owns *out (initialised by this call; empty on error).
int cb_faas_future_get(cb_faas_t *self, const char *key, int timeout_ms, cb_value_t *out);

//  ---- the KVS, as functions see it (cb values in LWW keys) -------------------------------

//  Reads key once: -ENOENT when it holds nothing, -EINVAL when it holds another lattice type.
//  Bytes without the cb value prefix read as CB_VALUE_BYTES. Caller owns *out.
int cb_faas_get(cb_faas_t *self, const char *key, cb_value_t *out);
//  Writes value (borrowed) at key as an LWW value stamped now.
int cb_faas_put(cb_faas_t *self, const char *key, const cb_value_t *value);
//  The KVS client that get and put use (made on first use; owned by self, valid until
//  cb_faas_destroy): for lattice types other than cb values in LWW keys. NULL if it cannot
//  be made (cb_faas_last_error says why).
cb_kvs_t *cb_faas_kvs(cb_faas_t *self);

//  ---- status ---------------------------------------------------------------------------

typedef struct {
    char *id;                   //  "<node>/<index>"; owned
    char *address;              //  owned
    char *node;                 //  owned
    cb_faas_names_t pinned;
    double utilization;         //  busy fraction over the last report period
    uint32_t queued;
    uint64_t calls;
    uint32_t incarnation;       //  bumped by the executor at every restart
} cb_faas_executor_t;

typedef struct {
    char *node;                 //  owned
    char *cache_address;        //  owned
    uint64_t cached_keys;
    uint64_t cached_bytes;
} cb_faas_node_t;

typedef struct {
    cb_faas_executor_t *executors;  //  owned array, sorted by id
    size_t n_executors;
    cb_faas_node_t *nodes;          //  owned array, sorted by node
    size_t n_nodes;
    cb_faas_names_t functions;
    cb_faas_names_t dags;
    char *kvs_routing;              //  owned; "" when the scheduler did not say
} cb_faas_status_t;
void cb_faas_status_fini(cb_faas_status_t *self);

//  Asks the scheduler for the cluster's state. Caller owns *out, also on error (then empty).
int cb_faas_status(cb_faas_t *self, cb_faas_status_t *out);

//  ---- small pure helpers, shared with the CLI -------------------------------------------

//  True if name is a valid function or DAG name (1..128 bytes of [A-Za-z0-9_.-]).
bool cb_faas_name_valid(const char *name);
//  Reads a key file: 2 x len hex digits (whitespace around ignored) into out[0..len).
//  0, -ENOENT/-EACCES (cannot open), -EINVAL (not such a key).
int cb_faas_key_read(const char *path, uint8_t *out, size_t len);

void cb_faas_test(bool verbose);

#endif
