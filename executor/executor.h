//  executor/executor.h: one executor process (cb-executor): its PULL socket, the runner it
//  starts, pins, one-shot calls, DAG schedules and triggers, the inbox of cb_fn_send
//  messages, and reports to the scheduler (docs/faas-design.md, "Calls"). Single-threaded:
//  exec_executor_run polls the socket, the runner's socketpair and a stop descriptor, and
//  never blocks on the runner or on the KVS (the runner does all KVS I/O).
//  SPDX-License-Identifier: Apache-2.0
#ifndef EXEC_EXECUTOR_H
#define EXEC_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _exec_executor_t exec_executor_t;

typedef struct {
    const char *node;         //  "n0"
    int index;                //  id is "<node>/<index>"
    const char *scheduler;    //  where StatusReports go (the scheduler's report socket);
                              //  NULL or "" for none
    const char *cache;        //  the cache's routing address; NULL or "": use kvs
    const char *kvs;          //  the KVS routing address, when there is no cache
    const char *bind_ip;      //  the PULL socket binds tcp://bind_ip:* (ephemeral)
    const char *trusted_keys; //  a trusted-keys file (loader.h), or NULL
    int call_timeout_ms;      //  a call's bound when its message gives none
    int report_ms;            //  ExecutorInfo period
} exec_config_t;

//  Fills the defaults of cb-executor's flags.
void exec_config_defaults(exec_config_t *config);

//  Binds the socket and starts the runner. config is copied. NULL with err set on failure
//  (a bad trusted-keys file, a socket that cannot be bound, no runner).
exec_executor_t *exec_executor_new(const exec_config_t *config, char *err, size_t errlen);
//  Stops the runner, closes the sockets (pending messages get a bounded linger).
//  Idempotent; sets *self_p to NULL.
void exec_executor_destroy(exec_executor_t **self_p);

//  "tcp://127.0.0.1:41234": where it takes ExecMessages. Borrowed; valid until destroy.
const char *exec_executor_address(const exec_executor_t *self);
//  "<node>/<index>". Borrowed; valid until destroy.
const char *exec_executor_id(const exec_executor_t *self);

//  Serves until stop_fd becomes readable (e.g. a signalfd of SIGTERM). Returns 0, or -errno
//  if polling fails.
int exec_executor_run(exec_executor_t *self, int stop_fd);

//  Counters, for the log line at exit and for tests.
typedef struct {
    uint64_t calls;         //  calls finished (one-shot and DAG functions), any outcome
    uint64_t failed;        //  of which ended in an error
    uint64_t runners;       //  runners started (1 + restarts)
    uint64_t malformed;     //  messages that did not decode, or were incomplete
    uint64_t dropped;       //  messages we could not send (peer queue full, bad address)
    uint64_t inbox_dropped; //  user messages dropped because the inbox was full
    uint64_t runner_calls;  //  warm calls (no loading, no refs, no output key) that came back
    uint64_t runner_us;     //  their time from CALL sent to DONE read, in total: the
                            //  runner round trip plus the function's run
} exec_stats_t;
void exec_executor_stats(const exec_executor_t *self, exec_stats_t *out);

#endif
