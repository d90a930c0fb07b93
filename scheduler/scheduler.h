//  scheduler/scheduler.h: the scheduler actor (docs/faas-design.md). One thread owns
//  everything: a PULL socket for client Requests (5000 + offset), a PULL socket for executor
//  and cache StatusReports (5007 + offset), PUSH sockets to executors and to clients'
//  response addresses, and a KVS client for the metadata (functions, DAGs).
//
//  Metadata lives in the KVS; the actor keeps a copy in memory, loaded at start (and on a
//  miss, so that what a second or earlier scheduler registered is found): calls never touch
//  the KVS. Everything else it knows is soft state rebuilt from reports: executors (alive =
//  reported within --dead-ms), node caches, and where functions are pinned (its own pins,
//  plus what executors report as pinned, so a restarted scheduler finds the pins again).
//
//  Registration and deletion requests do their KVS reads and writes synchronously (loopback,
//  bounded by --kvs-timeout-ms). A DAG registration waits for PinAcks without blocking the
//  loop: it is a pending record answered when the acks are in, or at --pin-timeout-ms.
//  SPDX-License-Identifier: Apache-2.0
#ifndef SCHED_SCHEDULER_H
#define SCHED_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scheduler/config.h"

typedef struct _sched_scheduler_t sched_scheduler_t;

typedef struct {
    uint64_t requests;          //  Requests decoded
    uint64_t malformed;         //  Requests that did not decode (dropped)
    uint64_t bad_address;       //  Requests whose response address we refuse (dropped)
    uint64_t replies;           //  Replies sent
    uint64_t replies_dropped;   //  Replies that could not be queued
    uint64_t errors;            //  error Replies among them
    uint64_t calls;             //  call_function dispatched
    uint64_t dag_calls;         //  call_dag dispatched
    uint64_t schedules;         //  DagSchedules sent
    uint64_t reports;           //  StatusReports decoded
    uint64_t bad_reports;       //  StatusReports that did not decode or made no sense
    uint64_t pins;              //  PinFunctions sent
    uint64_t pin_acks;          //  PinAcks received
    uint64_t pin_failures;      //  PinAcks with an error, and pins never acknowledged
    uint64_t unpins;            //  unpin messages sent
    uint64_t exec_dropped;      //  messages to executors that could not be queued
    uint64_t kvs_errors;        //  KVS requests that failed
} sched_stats_t;

//  Binds the sockets, connects the KVS client and tries a first metadata load (retried by
//  the actor until it works). NULL with a message in err when a socket cannot be bound.
//  config is copied. Caller owns result.
sched_scheduler_t *sched_scheduler_new(const sched_config_t *config, char *err, size_t errlen);
//  Starts the actor thread. Returns 0 or a negative errno.
int sched_scheduler_start(sched_scheduler_t *self);
//  Stops the actor (it closes its sockets and ends) and waits for its thread. Idempotent.
void sched_scheduler_stop(sched_scheduler_t *self);
//  Stops if needed, frees everything. Idempotent; sets *self_p to NULL.
void sched_scheduler_destroy(sched_scheduler_t **self_p);

//  "tcp://ip:port" of the request and status sockets. Borrowed; valid until destroy.
const char *sched_scheduler_request_address(const sched_scheduler_t *self);
const char *sched_scheduler_status_address(const sched_scheduler_t *self);
//  Whether the first metadata load has succeeded, and what it found (for the "ready" line;
//  call before start). err gets the KVS error when not loaded.
bool sched_scheduler_loaded(const sched_scheduler_t *self, size_t *functions, size_t *dags,
                            char *err, size_t errlen);
//  Counters; only after stop (the actor owns them while it runs).
void sched_scheduler_stats(const sched_scheduler_t *self, sched_stats_t *out);
//  One line of every counter, "cb-scheduler: requests=... ", to out. Only after stop.
void sched_scheduler_report(const sched_scheduler_t *self, FILE *out);

#endif
