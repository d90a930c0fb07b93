//  executor/queue.h: the DAG bookkeeping of one executor: which functions of which calls
//  wait for which upstream results (docs/faas-design.md, "DAG call", steps 3 and 5). Pure:
//  no I/O, no clock (callers pass `now`, monotonic ms). Owned by the executor's thread.
//
//  An entry is one (call id, function). It fires once it holds its schedule and one trigger
//  per incoming edge; its inputs are then the upstream results in the order of the DAG's
//  edges, whatever order they arrived in. Triggers that come before their schedule wait for
//  it. Duplicates (a second schedule, a second trigger from the same source, anything for
//  an entry that already fired, was cancelled or expired) are ignored: a finished entry is
//  remembered as a tombstone for as long as it could have waited. Entries that wait past
//  their deadline come out of exec_queue_expire.
//  SPDX-License-Identifier: Apache-2.0
#ifndef EXEC_QUEUE_H
#define EXEC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

typedef struct _exec_queue_t exec_queue_t;

//  Frees a schedule the queue holds (the executor's decoded DagSchedule message).
typedef void(exec_queue_free_fn)(void *schedule);

//  A function that is ready to run (or that expired). Value type: the caller takes schedule
//  (sets it to NULL), then exec_fired_fini frees the rest.
typedef struct {
    char *id;           //  owned: the call's request id
    char *function;     //  owned: the target function
    void *schedule;     //  owned; NULL for an expired entry that never got one
    cb_bytes_t *inputs; //  owned: upstream results in edge order (n_inputs of them)
    size_t n_inputs;
    char **logs; //  owned: upstream log lines, in edge order of their trigger
    size_t n_logs;
    size_t n_missing; //  expired only: incoming edges that sent no trigger
} exec_fired_t;

void exec_fired_fini(exec_fired_t *self);

typedef enum {
    EXEC_QUEUE_WAITING,   //  kept; waits for more
    EXEC_QUEUE_FIRED,     //  *fired is set: run it now
    EXEC_QUEUE_IGNORED,   //  a duplicate, a trigger from no incoming edge, or finished
    EXEC_QUEUE_CANCELLED, //  a schedule for a call already cancelled here
} exec_queue_rc_t;

//  free_schedule frees the schedules left in the queue when it is destroyed.
exec_queue_t *exec_queue_new(exec_queue_free_fn *free_schedule);
//  Frees every entry and schedule. Idempotent; sets *self_p to NULL.
void exec_queue_destroy(exec_queue_t **self_p);

//  The schedule of (id, function), whose incoming edges come from sources[0..n_sources) in
//  edge order (n_sources 0: it fires at once). It may wait until deadline. On WAITING the
//  queue owns schedule; on FIRED it is fired->schedule (caller owns *fired, uninitialised
//  before); on IGNORED and CANCELLED the caller keeps it. id, function, sources are copied.
exec_queue_rc_t exec_queue_schedule(exec_queue_t *self, const char *id, const char *function,
                                    const char *const *sources, size_t n_sources, void *schedule,
                                    int64_t deadline, int64_t now, exec_fired_t *fired);
//  A trigger: source's result for (id, function), with the log lines so far. result and
//  logs are copied. An entry created by this trigger (no schedule yet) waits until
//  deadline_if_new. FIRED as above.
exec_queue_rc_t exec_queue_trigger(exec_queue_t *self, const char *id, const char *function,
                                   const char *source, const void *result, size_t len,
                                   const char *const *logs, size_t n_logs, int64_t deadline_if_new,
                                   int64_t now, exec_fired_t *fired);
//  The call failed upstream of (id, function): drops what waits there and remembers the
//  entry as finished until forget_at (so a later schedule returns CANCELLED). Returns the
//  schedule that waited (caller owns; to pass the cancellation on), or NULL.
void *exec_queue_cancel(exec_queue_t *self, const char *id, const char *function,
                        int64_t forget_at);
//  Takes out one entry whose deadline passed (caller owns *expired, uninitialised before)
//  and returns true; false when there is none. Also forgets tombstones that are due.
bool exec_queue_expire(exec_queue_t *self, int64_t now, exec_fired_t *expired);
//  The earliest deadline of any entry or tombstone; INT64_MAX when empty.
int64_t exec_queue_next_deadline(const exec_queue_t *self);
//  Entries waiting (tombstones not counted).
size_t exec_queue_waiting(const exec_queue_t *self);

void exec_queue_test(bool verbose);

#endif
