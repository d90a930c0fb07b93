//  lattices/lattice.h: every value the KVS stores is one of these lattices; PUT is merge.
//  Pure: libc and common/ only. No I/O, no threads, no clock, no protobuf.
//  Values are transparent structs embedded in containers: _init before use, _fini after;
//  a lat_t owns everything it points to. Not thread safe (a value has one owner).
//  SPDX-License-Identifier: Apache-2.0
#ifndef LAT_LATTICE_H
#define LAT_LATTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "common/rand.h"

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

//  +inf is reserved for the bottom element (+inf, empty value), so that bottom is below every
//  value; -0.0 is stored as 0.0 so that equal values have equal bytes.
typedef struct {
    double priority;        //  never NaN; +inf only in the bottom element
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
//  Borrowed static name, the proto LatticeType name: "LWW", "SET", "SINGLE_CAUSAL",
//  "MULTI_CAUSAL", "ORDERED_SET", "PRIORITY", "BOOL", "MAX", "MAP", "VECTOR_CLOCK";
//  "NONE" for LAT_NONE and unknown kinds.
const char *lat_kind_name(lat_kind_t kind);
//  Parses a name as printed by lat_kind_name (case-insensitive; "VCLOCK" is also accepted).
//  LAT_NONE if unknown.
lat_kind_t lat_kind_parse(const char *name);

//  Initialises self as the bottom element of kind: LWW (ts 0, writer 0, empty), empty SET
//  and causal values, PRIORITY (+inf, empty), BOOL false, MAX INT64_MIN, empty MAP and
//  VCLOCK. LAT_NONE gives an empty value of no kind.
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
//  A one-line text rendering for people (the CLI). Caller owns result. Stable (golden tests):
//    bytes      `"..."`: bytes 0x20..0x7e as text except `"` -> `\"` and `\` -> `\\`;
//               every other byte as `\xNN` (two lowercase hex digits)
//    ids, keys  of clocks and deps: bare when non-empty and every byte is printable ASCII
//               other than space and `"\{}:,`; otherwise quoted like bytes
//    LWW        `"hello"` (the value only: timestamps are not stable across runs)
//    SET, ORDERED_SET  `{"a", "b"}` in byte order; empty `{}`
//    SINGLE_CAUSAL     `{"v1", "v2"} vc={c1:2, c2:1}`: the distinct values of all versions in
//                      byte order, then the join of their clocks (lat_causal_clock); `{} vc={}`
//    MULTI_CAUSAL      as single, then ` deps={k1:{c1:1}, k2:{c2:3}}`: the dependencies of
//                      all versions joined per key (always printed, `deps={}` when none)
//    PRIORITY   `"v" (priority 1.5)`: the priority as the shortest %g form that reads back
//               exactly (%.15g, else %.17g): `1.5`, `-2`, `1e+300`, `inf`, `-inf`
//    BOOL       `true` / `false`          MAX  `42`, `-9223372036854775808`
//    MAP        `{"k": <value>, "k2": <value>}` in key order; empty `{}`
//    VECTOR_CLOCK  `{a:1, b:2}`; empty `{}`
//    NONE       `<none>`
char *lat_format(const lat_t *self);
//  Approximate bytes held (payloads plus bookkeeping), for stats and size limits.
size_t lat_size(const lat_t *self);

//  ---- per type -----------------------------------------------------------------------------

//  Sets an LWW value (self must be LAT_LWW); copies data.
void lat_lww_assign(lat_t *self, uint64_t ts, uint32_t writer, const void *data, size_t len);
//  Sets a priority value (self must be LAT_PRIORITY); copies data. priority must be neither
//  NaN nor +inf (reserved for bottom); -0.0 is stored as 0.0.
void lat_priority_assign(lat_t *self, double priority, const void *data, size_t len);

//  Inserts a copy of data into a set (LAT_SET or LAT_ORDERED_SET). True if it was new.
bool lat_set_insert(lat_set_t *set, const void *data, size_t len);
bool lat_set_contains(const lat_set_t *set, const void *data, size_t len);
void lat_set_fini(lat_set_t *set);
//  Restores the set invariant after a caller (a decoder) appended owned items to
//  set->items in any order, duplicates allowed: sorts and frees duplicates. O(n) when the
//  items are already sorted and unique, O(n log n) otherwise.
void lat_set_normalize(lat_set_t *set);

typedef enum {
    LAT_VC_EQUAL,
    LAT_VC_LESS,        //  a happened before b
    LAT_VC_GREATER,     //  b happened before a
    LAT_VC_CONCURRENT,
} lat_vc_order_t;

//  0 for ids absent from the clock.
uint32_t lat_vclock_get(const lat_vclock_t *vc, const char *id);
//  Sets id to max(current, count); copies id. True if it changed (never for count 0).
bool lat_vclock_bump(lat_vclock_t *vc, const char *id, uint32_t count);
//  Increments id by one (a new local event); saturates at UINT32_MAX rather than wrap,
//  since a peer can send any count.
void lat_vclock_tick(lat_vclock_t *vc, const char *id);
//  Pointwise max of other into vc. True if vc changed.
bool lat_vclock_merge(lat_vclock_t *vc, const lat_vclock_t *other);
lat_vc_order_t lat_vclock_compare(const lat_vclock_t *a, const lat_vclock_t *b);
//  dst must be uninitialised or finalised. Caller owns dst.
void lat_vclock_copy(lat_vclock_t *dst, const lat_vclock_t *src);
void lat_vclock_fini(lat_vclock_t *vc);
//  Restores the clock invariant after a caller (a decoder) appended owned entries to
//  vc->items in any order: drops count-0 entries, sorts by id, joins duplicate ids by max.
void lat_vclock_normalize(lat_vclock_t *vc);

//  Adds dependency (key, clock) to deps (both copied), merging clocks if key is already
//  there. An empty clock adds nothing: deps never hold empty clocks.
void lat_deps_add(lat_deps_t *deps, const char *key, const lat_vclock_t *clock);
void lat_deps_fini(lat_deps_t *deps);
//  dst must be uninitialised or finalised. Caller owns dst.
void lat_deps_copy(lat_deps_t *dst, const lat_deps_t *src);
//  Restores the deps invariant after a caller appended owned entries in any order (each
//  clock already normalised): drops empty clocks, sorts by key, joins duplicate keys.
void lat_deps_normalize(lat_deps_t *deps);

//  Merges one version (copied) into a causal value: kept only if no version dominates it;
//  drops the versions it dominates. deps may be NULL, and are ignored for
//  LAT_SINGLE_CAUSAL. True if self changed.
bool lat_causal_add(lat_t *self, const lat_vclock_t *clock, const lat_deps_t *deps,
                    const void *value, size_t len);
//  Restores the causal invariant after a caller (a decoder) appended owned versions to
//  self->u.causal.items in any order: canonical order, versions equal in clock and value
//  joined (deps merged), strictly dominated versions dropped, deps dropped for
//  LAT_SINGLE_CAUSAL. Equals adding them one by one with lat_causal_add, but costs
//  O(n log n + d^2) clock comparisons for d distinct clocks instead of O(n^2) copies.
void lat_causal_normalize(lat_t *self);
//  The join of all version clocks (what the public wire format calls the value's clock).
//  Caller owns *out (initialise it zeroed).
void lat_causal_clock(const lat_t *self, lat_vclock_t *out);

//  Borrowed pointer to the lattice at key, valid until the map changes; NULL if absent.
const lat_t *lat_map_get(const lat_map_t *map, const void *key, size_t len);
//  Merges value (copied) into the entry at key, creating it if absent. Entries of different
//  kinds at one key join by kind number (the larger kind wins), so merge stays total.
//  Returns 1 if changed, 0 if not.
int lat_map_merge_at(lat_map_t *map, const void *key, size_t len, const lat_t *value);
//  Restores the map invariant after a caller (a decoder) appended owned entries to
//  map->items in any order: sorts by key and joins the entries of duplicate keys as
//  lat_map_merge_at does.
void lat_map_normalize(lat_map_t *map);

//  ---- test support -------------------------------------------------------------------------

//  A random value of kind for property tests: small alphabets, timestamps and clock ids
//  so that merges of independently drawn values interact (equal timestamps, shared
//  elements, concurrent clocks, kind conflicts in maps). Maps nest at most two levels.
//  Caller owns *out (uninitialised before the call).
void lat_random(lat_t *out, lat_kind_t kind, cb_rand_t *rand);
//  Adds the version {id: count} of the C string value to a causal value, depending (under
//  LAT_MULTI_CAUSAL) on dep_key at {id: dep_count} when dep_key is not NULL: a short way to
//  build values in tests. True if self changed.
bool lat_causal_add_simple(lat_t *self, const char *id, uint32_t count, const char *dep_key,
                           uint32_t dep_count, const char *value);
//  The seed of property tests: LAT_SEED from the environment if set, else a fixed default.
uint64_t lat_test_seed(void);

//  ---- self-tests (property tests of the merge laws; seeded) ------------------------------
void lat_lattice_test(bool verbose);    //  the laws, for every kind
void lat_lww_test(bool verbose);        //  LWW and PRIORITY unit tests
void lat_set_test(bool verbose);
void lat_vclock_test(bool verbose);     //  clocks and deps
void lat_causal_test(bool verbose);
void lat_map_test(bool verbose);
void lat_format_test(bool verbose);     //  the lat_format golden strings

#endif
