//  lattices/lattice.h: every value the KVS stores is one of these lattices; PUT is merge.
//  Pure: libc and common/alloc only. No I/O, no threads, no clock, no protobuf.
//  Values are transparent structs embedded in containers: _init before use, _fini after;
//  a lat_t owns everything it points to. Not thread safe (a value has one owner).
//  SPDX-License-Identifier: Apache-2.0
#ifndef LAT_LATTICE_H
#define LAT_LATTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

//  The numbers are the wire LatticeType values (proto/anna.proto).
typedef enum {
    LAT_NONE = 0,
    LAT_LWW = 1,            //  last writer wins on (timestamp, writer), then on value bytes
    LAT_SET = 2,            //  grow-only set of byte strings
    LAT_SINGLE_CAUSAL = 3,  //  concurrent versions, each with a vector clock
    LAT_MULTI_CAUSAL = 4,   //  as single causal, each version also with dependencies
    LAT_ORDERED_SET = 5,    //  a set read in byte order (same representation as LAT_SET)
    LAT_PRIORITY = 6,       //  lowest priority wins, ties to the smaller value bytes
    LAT_BOOL = 16,          //  false < true
    LAT_MAX = 17,           //  largest int64 wins
    LAT_MAP = 18,           //  key -> lattice, merged per key
    LAT_VCLOCK = 19,        //  vector clock: id -> counter, pointwise max
} lat_kind_t;

typedef struct {
    uint64_t ts;            //  cb_clock_lww_now() microseconds, or an old client's timestamp
    uint32_t writer;        //  breaks timestamp ties; 0 for writers that send none
    cb_bytes_t value;       //  owned
} lat_lww_t;

typedef struct {
    cb_bytes_t *items;      //  owned, sorted by cb_bytes_cmp, no duplicates
    size_t len;
    size_t cap;
} lat_set_t;

typedef struct {
    char *id;               //  owned node/client id
    uint32_t count;         //  > 0: entries with count 0 are never stored
} lat_vc_entry_t;

typedef struct {
    lat_vc_entry_t *items;  //  owned, sorted by id, unique ids
    size_t len;
    size_t cap;
} lat_vclock_t;

typedef struct {
    char *key;              //  owned
    lat_vclock_t clock;     //  the version of key depended on
} lat_dep_t;

typedef struct {
    lat_dep_t *items;       //  owned, sorted by key, one entry per key
    size_t len;
    size_t cap;
} lat_deps_t;

typedef struct {
    lat_vclock_t clock;     //  this version's clock
    lat_deps_t deps;        //  empty for single-key causal values
    cb_bytes_t value;       //  owned
} lat_version_t;

//  A causal value is the antichain of its maximal versions: merge takes the union and drops
//  every version whose clock is strictly dominated by another's. Versions are kept in a
//  canonical order (by clock, then value) so that equal values compare equal.
typedef struct {
    lat_version_t *items;
    size_t len;
    size_t cap;
} lat_causal_t;

typedef struct {
    double priority;        //  never NaN
    cb_bytes_t value;       //  owned
} lat_priority_t;

typedef struct lat_s lat_t;

typedef struct {
    cb_bytes_t key;         //  owned
    lat_t *value;           //  owned
} lat_map_entry_t;

typedef struct {
    lat_map_entry_t *items; //  owned, sorted by key, unique keys
    size_t len;
    size_t cap;
} lat_map_t;

struct lat_s {
    lat_kind_t kind;
    union {
        lat_lww_t lww;
        lat_set_t set;          //  LAT_SET and LAT_ORDERED_SET
        lat_causal_t causal;    //  LAT_SINGLE_CAUSAL and LAT_MULTI_CAUSAL
        lat_priority_t priority;
        bool boolean;
        int64_t max;
        lat_map_t map;
        lat_vclock_t vclock;
    } u;
};

//  ---- generic ------------------------------------------------------------------------------

//  True for the kinds above except LAT_NONE.
bool lat_kind_valid(int kind);
//  Borrowed static name ("LWW", "SET", ...); "NONE" for unknown kinds.
const char *lat_kind_name(lat_kind_t kind);
//  Parses a name as printed by lat_kind_name (case-insensitive). LAT_NONE if unknown.
lat_kind_t lat_kind_parse(const char *name);

//  Initialises self as the bottom element of kind.
void lat_init(lat_t *self, lat_kind_t kind);
//  Frees everything self owns; self becomes LAT_NONE. Idempotent.
void lat_fini(lat_t *self);
//  Deep copy; dst must be uninitialised or finalised. Caller owns dst.
void lat_copy(lat_t *dst, const lat_t *src);
//  Joins other into self (other is not changed, nothing taken). Returns 1 if self changed,
//  0 if not, -EINVAL if the kinds differ (self unchanged).
int lat_merge(lat_t *self, const lat_t *other);
bool lat_equal(const lat_t *a, const lat_t *b);
//  The lattice order: a <= b iff merge(a, b) == b. False across kinds.
bool lat_leq(const lat_t *a, const lat_t *b);
//  A one-line text rendering for people (the CLI): printable bytes as text, others escaped
//  as \xNN; e.g. `{"a", "b"}`, `"v" @ts=..,w=..`. Caller owns result.
char *lat_format(const lat_t *self);
//  Approximate bytes held (payloads plus bookkeeping), for stats and size limits.
size_t lat_size(const lat_t *self);

//  ---- per type -----------------------------------------------------------------------------

//  Sets an LWW value (self must be LAT_LWW); copies data.
void lat_lww_assign(lat_t *self, uint64_t ts, uint32_t writer, const void *data, size_t len);
//  Sets a priority value (self must be LAT_PRIORITY); copies data. priority must not be NaN.
void lat_priority_assign(lat_t *self, double priority, const void *data, size_t len);

//  Inserts a copy of data into a set (LAT_SET or LAT_ORDERED_SET). True if it was new.
bool lat_set_insert(lat_set_t *set, const void *data, size_t len);
bool lat_set_contains(const lat_set_t *set, const void *data, size_t len);
void lat_set_fini(lat_set_t *set);

typedef enum {
    LAT_VC_EQUAL,
    LAT_VC_LESS,        //  a happened before b
    LAT_VC_GREATER,     //  b happened before a
    LAT_VC_CONCURRENT,
} lat_vc_order_t;

//  0 for ids absent from the clock.
uint32_t lat_vclock_get(const lat_vclock_t *vc, const char *id);
//  Sets id to max(current, count). True if it changed.
bool lat_vclock_bump(lat_vclock_t *vc, const char *id, uint32_t count);
//  Increments id by one (a new local event).
void lat_vclock_tick(lat_vclock_t *vc, const char *id);
//  Pointwise max of other into vc. True if vc changed.
bool lat_vclock_merge(lat_vclock_t *vc, const lat_vclock_t *other);
lat_vc_order_t lat_vclock_compare(const lat_vclock_t *a, const lat_vclock_t *b);
void lat_vclock_copy(lat_vclock_t *dst, const lat_vclock_t *src);
void lat_vclock_fini(lat_vclock_t *vc);

//  Adds dependency (key, clock) to deps, merging clocks if key is already there.
void lat_deps_add(lat_deps_t *deps, const char *key, const lat_vclock_t *clock);
void lat_deps_fini(lat_deps_t *deps);

//  Merges one version (copied) into a causal value: kept only if no version dominates it;
//  drops the versions it dominates. deps may be NULL. True if self changed.
bool lat_causal_add(lat_t *self, const lat_vclock_t *clock, const lat_deps_t *deps,
                    const void *value, size_t len);
//  The join of all version clocks (what the public wire format calls the value's clock).
//  Caller owns *out (initialise it zeroed).
void lat_causal_clock(const lat_t *self, lat_vclock_t *out);

//  Borrowed pointer to the lattice at key, valid until the map changes; NULL if absent.
const lat_t *lat_map_get(const lat_map_t *map, const void *key, size_t len);
//  Merges value (copied) into the entry at key, creating it if absent. Entries of different
//  kinds at one key join by kind number (the larger kind wins), so merge stays total.
//  Returns 1 if changed, 0 if not.
int lat_map_merge_at(lat_map_t *map, const void *key, size_t len, const lat_t *value);

//  ---- self-tests (property tests of the merge laws; seeded) ------------------------------
void lat_lattice_test(bool verbose);

#endif
