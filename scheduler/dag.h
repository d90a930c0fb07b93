//  scheduler/dag.h: validation and analysis of a DAG of functions (docs/faas-design.md, "DAG
//  validation"): at least one function, unique names, every function registered, every edge
//  between listed functions, no self-edge or duplicate edge, acyclic, exactly one sink. Each
//  error has its own message. A valid DAG is analysed once, at registration: sources, sink,
//  each function's upstream functions in edge order (the order of its inputs), a
//  topological order. Pure: no I/O, no clock, no protobuf. One owner, not thread safe.
//  SPDX-License-Identifier: Apache-2.0
#ifndef SCHED_DAG_H
#define SCHED_DAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Bounds on what a client may register: the checks are linear, but every DagSchedule of a
//  call carries every function's location, so a call costs O(functions^2) bytes.
#define SCHED_DAG_MAX_FUNCTIONS 256
#define SCHED_DAG_MAX_EDGES 4096
//  Function and DAG names: 1..128 characters of [A-Za-z0-9_.-]; "index" is taken by the
//  funcs/index and dags/index keys.
#define SCHED_NAME_MAX 128

typedef struct {
    const char *from;           //  borrowed
    const char *to;             //  borrowed
} sched_dag_edge_t;

//  Whether function is registered; arg is the caller's.
typedef bool (*sched_dag_known_fn)(void *arg, const char *function);

typedef struct _sched_dag_t sched_dag_t;

//  A client's name as it may appear in a message: its first 64 characters (then "..."),
//  non-printable bytes as '?'. Writes to buf and returns it.
#define SCHED_QUOTE_BYTES 68
const char *sched_dag_quote(const char *name, char buf[SCHED_QUOTE_BYTES]);

//  Checks a name against the rules above. what is "function" or "DAG", for the message:
//  "function name is empty", "DAG name is longer than 128 characters", "function name 'a b'
//  has a character other than A-Z a-z 0-9 _ . -", "DAG name 'index' is reserved".
//  Returns 0, or -EINVAL with the message in err.
int sched_dag_check_name(const char *what, const char *name, char *err, size_t errlen);

//  Validates a DAG given by its functions and edges (all borrowed; copied) and analyses it.
//  known may be NULL (every function counts as registered). Returns a new DAG (caller owns),
//  or NULL with one of these messages in err (the first error in this order):
//    "a DAG needs at least one function"
//    "too many functions: 300 (at most 256)"         "too many edges: ..."
//    "function 'x' is listed twice"
//    "function 'x' is not registered"
//    "edge a -> x: 'x' is not a function of the DAG"
//    "self-edge a -> a"
//    "duplicate edge a -> b"
//    "cycle: a -> b -> a"
//    "2 sinks: b, c (a DAG needs exactly one)"
//  Names in messages are cut at 64 characters and non-printable bytes shown as '?'.
sched_dag_t *sched_dag_new(const char *const *functions, size_t nfunctions,
                           const sched_dag_edge_t *edges, size_t nedges,
                           sched_dag_known_fn known, void *arg, char *err, size_t errlen);
//  Idempotent; sets *self_p to NULL.
void sched_dag_destroy(sched_dag_t **self_p);

//  Functions are numbered in the order they were listed.
size_t sched_dag_size(const sched_dag_t *self);
//  Borrowed; valid until destroy.
const char *sched_dag_function(const sched_dag_t *self, size_t i);
//  Number of function name, or -1 if it is not in the DAG.
int sched_dag_find(const sched_dag_t *self, const char *name);
bool sched_dag_is_source(const sched_dag_t *self, size_t i);
size_t sched_dag_sink(const sched_dag_t *self);
//  The arrays below are borrowed; valid until destroy. *n gets their length.
//  Sources in listed order.
const uint32_t *sched_dag_sources(const sched_dag_t *self, size_t *n);
//  The functions whose results are function i's inputs, in the order of the DAG's edges.
const uint32_t *sched_dag_upstream(const sched_dag_t *self, size_t i, size_t *n);
//  The functions function i triggers, in edge order.
const uint32_t *sched_dag_downstream(const sched_dag_t *self, size_t i, size_t *n);
//  Every function once, each after all its upstream functions (sources first, the sink
//  last); deterministic: Kahn's algorithm, sources in listed order, then each function as
//  its last upstream function is taken, following the edges in their order.
const uint32_t *sched_dag_order(const sched_dag_t *self);

void sched_dag_test(bool verbose);

#endif
