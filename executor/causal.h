//  executor/causal.h: the pure part of the causal consistency levels (issue 4): what a
//  request's session requires of a key, which version of a causal value a read returns, and
//  the clock and dependencies of a write. No I/O: the runner (fnlib.c) does the reads and
//  writes. Sessions are arrays of exec_read_t owned by the caller.
//  SPDX-License-Identifier: Apache-2.0
#ifndef EXEC_CAUSAL_H
#define EXEC_CAUSAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/bytes.h"
#include "lattices/lattice.h"

//  One version a request observed. Under REPEATABLE_READ: what every later read of key in
//  the same request returns (two entries for one key: parallel branches read different
//  versions, a conflict). Under the causal levels: a version the request read or wrote, as
//  a causal value of exactly one version (in `version`); the session's dependencies are
//  the join of all entries.
typedef struct {
    char *key;           //  owned
    bool absent;         //  the key did not exist
    int kind;            //  lattice kind of payload
    cb_bytes_t payload;  //  owned: wire encoding of the version
    lat_t version;       //  owned: the decoded version for causal kinds, else LAT_NONE
} exec_read_t;

//  True for the two causal lattice kinds.
bool exec_causal_kind(int kind);

//  What the session requires of a read of key, into *out (zeroed by the caller): the join
//  of the clocks of the session's versions of key and, when multi, of every version's
//  dependency on key. Empty when the session requires nothing.
void exec_causal_need(const exec_read_t *reads, size_t n, const char *key, bool multi,
                      lat_vclock_t *out);

//  The dependencies a multi-key causal write of key carries, into *out (zeroed by the
//  caller): every version the session holds (its clock, at its key) and their
//  dependencies, joined per key; key itself is left out (its clock covers it).
void exec_causal_deps(const exec_read_t *reads, size_t n, const char *key, lat_deps_t *out);

//  The version of a causal value a read returns when the session requires need: among the
//  versions whose clock is equal to or after need, the one with the largest clock sum, then
//  the bytewise largest value, then the last in canonical order. A deterministic choice, so
//  every reader of the same value picks the same version. Index into value->u.causal.items,
//  or -1 when no version satisfies need (the reader's copy is behind the session).
int exec_causal_pick(const lat_t *value, const lat_vclock_t *need);

//  True if clock is equal to or after need (an empty need is always satisfied).
bool exec_causal_covers(const lat_vclock_t *clock, const lat_vclock_t *need);

//  *out (uninitialised) becomes a causal value of kind holding a copy of version alone
//  (dependencies dropped for LAT_SINGLE_CAUSAL).
void exec_causal_one(lat_t *out, lat_kind_t kind, const lat_version_t *version);

//  The clock of a write: the join of need (what the request read of the key) and of the
//  versions the writer's copy of the key shows (current, may be NULL or of another kind),
//  then one tick at writer. Dominating what the writer can see keeps the key's antichain
//  small; the tick makes the clock new. *out zeroed by the caller.
void exec_causal_write_clock(const lat_t *current, const lat_vclock_t *need, const char *writer,
                             lat_vclock_t *out);

void exec_causal_test(bool verbose);

#endif
