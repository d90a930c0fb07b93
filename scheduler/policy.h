//  scheduler/policy.h: placement decisions. Holds what the scheduler knows of executors (from
//  their periodic StatusReports) and of each node's cache (the keys it holds), and answers:
//  which executor runs this call, and where to pin a function. Pure: no I/O and no clock
//  (`now`, monotonic milliseconds, is passed in), randomness from a seeded PRNG, so a seed and
//  a sequence of reports always give the same decisions. One owner, not thread safe.
//
//  A call goes to an alive candidate executor (one that reported within dead_ms) chosen by
//    1. locality: most of the call's ref keys in the cache of the executor's node,
//    2. load: least (queued + sent since its last report + utilization),
//    3. ties at random;
//  except that random_pct percent of calls go to a uniformly random alive candidate, which
//  keeps stale load reports from herding every call onto one executor and lets a cold
//  executor warm up. Pins are spread: distinct nodes first, then least pinned executors.
//  SPDX-License-Identifier: Apache-2.0
#ifndef SCHED_POLICY_H
#define SCHED_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scheduler/table.h"

typedef struct {
    int64_t dead_ms;            //  an executor silent for longer than this is dead
    int random_pct;             //  0..100: share of calls placed at random among candidates
    uint64_t seed;              //  of the PRNG
} sched_policy_config_t;

//  An executor as the policy sees it. Read-only for callers (through sched_policy_executor),
//  except `user`.
typedef struct {
    char *id;                   //  "<node>/<index>"; owned
    char *address;              //  where it takes ExecMessages; owned
    uint32_t node;              //  node number (sched_policy_node)
    double utilization;         //  busy fraction, as last reported
    uint32_t queued;            //  as last reported
    uint64_t calls;             //  as last reported
    uint32_t incarnation;       //  as last reported
    int64_t last_report_ms;     //  monotonic time of its last report
    uint32_t pinned;            //  functions the scheduler holds pinned here
    uint32_t sent;              //  picks since its last report: load not yet in `queued`
    bool declared_dead;         //  returned by sched_policy_sweep, until it reports again
    void *user;                 //  the caller's (the actor keeps its socket here)
} sched_exec_t;

//  A node as the policy sees it, from its cache's reports.
typedef struct {
    char *name;                 //  owned
    char *cache_address;        //  owned; "" until the cache reports
    uint64_t cached_keys;       //  as reported (the key set below may be capped)
    uint64_t cached_bytes;
    sched_table_t *keys;        //  set of the reported keys; owned
    int64_t last_report_ms;     //  0 until the cache reports
} sched_node_t;

//  One executor report (ExecutorInfo). Strings borrowed.
typedef struct {
    const char *id;
    const char *address;
    const char *node;
    double utilization;
    uint32_t queued;
    uint64_t calls;
    uint32_t incarnation;
} sched_exec_report_t;

typedef enum {
    SCHED_EXEC_NEW,             //  first report of this id
    SCHED_EXEC_SAME,            //  same incarnation as before
    SCHED_EXEC_RESTARTED,       //  a new incarnation: whatever the old one had pinned is gone
} sched_exec_event_t;

typedef struct _sched_policy_t sched_policy_t;

//  Copies config. Caller owns result.
sched_policy_t *sched_policy_new(const sched_policy_config_t *config);
//  Idempotent; sets *self_p to NULL. `user` pointers are the caller's to free first.
void sched_policy_destroy(sched_policy_t **self_p);

//  Records an executor's report received at now. Executors are numbered in order of first
//  report; a number stays valid for the life of the policy (a dead executor keeps it, and
//  gets it back when it returns). *index gets the number; *moved (may be NULL) is set when
//  the address differs from the previous report's. Resets the executor's `sent`.
sched_exec_event_t sched_policy_report(sched_policy_t *self, const sched_exec_report_t *report,
                                       int64_t now, uint32_t *index, bool *moved);
//  Replaces node's cache information with a report received at now: its cache address and
//  counters, and its key set (keys[0..nkeys), borrowed, copied).
void sched_policy_report_node(sched_policy_t *self, const char *node, const char *cache_address,
                              uint64_t cached_keys, uint64_t cached_bytes,
                              const char *const *keys, size_t nkeys, int64_t now);

//  Executors ever seen, alive or not.
size_t sched_policy_count(const sched_policy_t *self);
//  Borrowed; valid until the next report (reports may move the array).
sched_exec_t *sched_policy_executor(sched_policy_t *self, uint32_t index);
//  Number of executor id, or -1.
int sched_policy_find(const sched_policy_t *self, const char *id);
bool sched_policy_alive(const sched_policy_t *self, uint32_t index, int64_t now);
size_t sched_policy_alive_count(const sched_policy_t *self, int64_t now);
size_t sched_policy_node_count(const sched_policy_t *self);
//  Borrowed; valid until the next report.
const sched_node_t *sched_policy_node(const sched_policy_t *self, uint32_t node);
//  How many of refs[0..n) the cache of node holds.
size_t sched_policy_node_hits(const sched_policy_t *self, uint32_t node,
                              const char *const *refs, size_t n);

//  Adds delta to the count of functions pinned on executor index (never below 0).
void sched_policy_pinned_add(sched_policy_t *self, uint32_t index, int delta);

//  Chooses the executor for a call among candidates[0..ncandidates) (executor numbers; NULL
//  means every executor), skipping dead ones; refs[0..nrefs) are the keys the call reads
//  (borrowed). Returns an executor number (and counts the pick in its `sent`), or -1 when no
//  candidate is alive.
int sched_policy_pick(sched_policy_t *self, int64_t now, const uint32_t *candidates,
                      size_t ncandidates, const char *const *refs, size_t nrefs);

//  Chooses up to n distinct alive executors to pin a function on, none in
//  exclude[0..nexclude) (where it is pinned already): first on nodes holding none of its
//  pins yet, then the least pinned, ties at random. Writes them to out[0..n) and returns how
//  many it found. Does not change the pinned counts (the caller adds them when it pins).
size_t sched_policy_pin_targets(sched_policy_t *self, int64_t now, size_t n,
                                const uint32_t *exclude, size_t nexclude, uint32_t *out);

//  Executors that have become dead since the last sweep (each returned once, until it
//  reports again): writes up to cap of their numbers to out, returns how many.
size_t sched_policy_sweep(sched_policy_t *self, int64_t now, uint32_t *out, size_t cap);

void sched_policy_test(bool verbose);

#endif
