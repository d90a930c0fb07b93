//  proto/wire.c: lattice values <-> the Anna payload messages of proto/anna.proto, with
//  protobuf-c. Encoding fills the public fields the way an old Anna client reads them and
//  our extension fields (writer, per-version clocks) so that merges stay lattice joins.
//  Decoding validates every byte a peer sends and never asserts on them. Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "proto/wire.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "anna.pb-c.h"
#include "common/alloc.h"
#include "common/rand.h"

//  Unpacked messages are allocated through cb_malloc like everything else (house style
//  3.2); protobuf-c bounds what it allocates by the input size.
static void *s_pb_alloc(void *data, size_t size)
{
    (void)data;
    return cb_malloc(size);
}

static void s_pb_free(void *data, void *ptr)
{
    (void)data;
    cb_free(ptr);
}

static ProtobufCAllocator s_allocator = {s_pb_alloc, s_pb_free, NULL};

//  ---- encoding -----------------------------------------------------------------------------

//  The temporaries of one encoding (entry structs, pointer arrays, nested payloads), freed
//  together once the message is packed. Strings and bytes are borrowed from the value.
typedef struct {
    void **blocks;
    size_t len;
    size_t cap;
} s_arena_t;

static void *s_arena_adopt(s_arena_t *arena, void *block)
{
    if (arena->len == arena->cap) {
        arena->cap = arena->cap ? arena->cap * 2 : 16;
        arena->blocks = cb_realloc(arena->blocks, arena->cap * sizeof *arena->blocks);
    }
    arena->blocks[arena->len++] = block;
    return block;
}

static void *s_arena_alloc(s_arena_t *arena, size_t count, size_t size)
{
    return count ? s_arena_adopt(arena, cb_calloc(count, size)) : NULL;
}

static void s_arena_fini(s_arena_t *arena)
{
    for (size_t i = 0; i < arena->len; i++)
        cb_free(arena->blocks[i]);
    cb_free(arena->blocks);
    *arena = (s_arena_t){0};
}

//  The four generated vector-clock entry types (one per message with a map<string, uint32>
//  field) share one layout; the encoder builds them as KeyVersion__VectorClockEntry and
//  gives each the descriptor of the field it fills.
#define S_SAME_LAYOUT(T)                                                                           \
    _Static_assert(sizeof(T) == sizeof(KeyVersion__VectorClockEntry) &&                            \
                       offsetof(T, key) == offsetof(KeyVersion__VectorClockEntry, key) &&          \
                       offsetof(T, value) == offsetof(KeyVersion__VectorClockEntry, value),        \
                   #T " differs in layout")
S_SAME_LAYOUT(CausalVersion__VectorClockEntry);
S_SAME_LAYOUT(SingleKeyCausalValue__VectorClockEntry);
S_SAME_LAYOUT(MultiKeyCausalValue__VectorClockEntry);
S_SAME_LAYOUT(VectorClockValue__VectorClockEntry);

//  Returns the array of entry pointers to store in a message's vector_clock field.
static void *s_clock_encode(s_arena_t *arena, const lat_vclock_t *vc,
                            const ProtobufCMessageDescriptor *descriptor)
{
    KeyVersion__VectorClockEntry **entries = s_arena_alloc(arena, vc->len, sizeof *entries);
    KeyVersion__VectorClockEntry *cells = s_arena_alloc(arena, vc->len, sizeof *cells);
    for (size_t i = 0; i < vc->len; i++) {
        protobuf_c_message_init(descriptor, &cells[i]);
        cells[i].key = vc->items[i].id;
        cells[i].value = vc->items[i].count;
        entries[i] = &cells[i];
    }
    return entries;
}

static KeyVersion **s_deps_encode(s_arena_t *arena, const lat_deps_t *deps)
{
    KeyVersion **list = s_arena_alloc(arena, deps->len, sizeof *list);
    KeyVersion *cells = s_arena_alloc(arena, deps->len, sizeof *cells);
    for (size_t i = 0; i < deps->len; i++) {
        key_version__init(&cells[i]);
        cells[i].key = deps->items[i].key;
        cells[i].n_vector_clock = deps->items[i].clock.len;
        cells[i].vector_clock = s_clock_encode(arena, &deps->items[i].clock,
                                               &key_version__vector_clock_entry__descriptor);
        list[i] = &cells[i];
    }
    return list;
}

static ProtobufCBinaryData s_binary(const cb_bytes_t *bytes)
{
    return (ProtobufCBinaryData){bytes->len, bytes->data};
}

static ProtobufCBinaryData *s_set_encode(s_arena_t *arena, const lat_set_t *set)
{
    ProtobufCBinaryData *values = s_arena_alloc(arena, set->len, sizeof *values);
    for (size_t i = 0; i < set->len; i++)
        values[i] = s_binary(&set->items[i]);
    return values;
}

static CausalVersion **s_versions_encode(s_arena_t *arena, const lat_causal_t *causal)
{
    CausalVersion **list = s_arena_alloc(arena, causal->len, sizeof *list);
    CausalVersion *cells = s_arena_alloc(arena, causal->len, sizeof *cells);
    for (size_t i = 0; i < causal->len; i++) {
        const lat_version_t *v = &causal->items[i];
        causal_version__init(&cells[i]);
        cells[i].n_vector_clock = v->clock.len;
        cells[i].vector_clock =
            s_clock_encode(arena, &v->clock, &causal_version__vector_clock_entry__descriptor);
        cells[i].n_dependencies = v->deps.len;
        cells[i].dependencies = s_deps_encode(arena, &v->deps);
        cells[i].value = s_binary(&v->value);
        list[i] = &cells[i];
    }
    return list;
}

//  What an old client sees of a causal value: the join of the version clocks and deps, and
//  the distinct values. Caller finalises the three outputs (initialised zeroed).
static void s_causal_public(const lat_causal_t *causal, lat_vclock_t *clock, lat_deps_t *deps,
                            lat_set_t *values)
{
    for (size_t i = 0; i < causal->len; i++) {
        lat_vclock_merge(clock, &causal->items[i].clock);
        for (size_t d = 0; d < causal->items[i].deps.len; d++)
            lat_deps_add(deps, causal->items[i].deps.items[d].key,
                         &causal->items[i].deps.items[d].clock);
        lat_set_insert(values, causal->items[i].value.data, causal->items[i].value.len);
    }
}

static void s_pack(const ProtobufCMessage *msg, cb_bytes_t *out)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    out->data = len ? cb_malloc(len) : NULL;
    out->len = len ? protobuf_c_message_pack(msg, out->data) : 0;
    assert(out->len == len);
}

static int s_encode(const lat_t *value, cb_bytes_t *out, int depth);

static int s_encode_map(const lat_map_t *map, cb_bytes_t *out, int depth, s_arena_t *arena)
{
    if (depth > WIRE_MAX_DEPTH)
        return -EINVAL;
    MapValue msg = MAP_VALUE__INIT;
    msg.n_entries = map->len;
    msg.entries = s_arena_alloc(arena, map->len, sizeof *msg.entries);
    MapEntry *cells = s_arena_alloc(arena, map->len, sizeof *cells);
    for (size_t i = 0; i < map->len; i++) {
        map_entry__init(&cells[i]);
        cells[i].key = s_binary(&map->items[i].key);
        cells[i].lattice_type = (LatticeType)map->items[i].value->kind;
        cb_bytes_t payload = {0};
        int rc = s_encode(map->items[i].value, &payload, depth + 1);
        if (rc)
            return rc;
        if (payload.data)
            s_arena_adopt(arena, payload.data);
        cells[i].payload = s_binary(&payload);
        msg.entries[i] = &cells[i];
    }
    s_pack(&msg.base, out);
    return 0;
}

static int s_encode_causal(const lat_t *value, cb_bytes_t *out, s_arena_t *arena)
{
    if (value->u.causal.len > WIRE_MAX_VERSIONS)
        return -EMSGSIZE;
    const lat_causal_t *causal = &value->u.causal;
    lat_vclock_t clock = {0};
    lat_deps_t deps = {0};
    lat_set_t values = {0};
    s_causal_public(causal, &clock, &deps, &values);
    if (value->kind == LAT_SINGLE_CAUSAL) {
        SingleKeyCausalValue msg = SINGLE_KEY_CAUSAL_VALUE__INIT;
        msg.n_vector_clock = clock.len;
        msg.vector_clock =
            s_clock_encode(arena, &clock, &single_key_causal_value__vector_clock_entry__descriptor);
        msg.n_values = values.len;
        msg.values = s_set_encode(arena, &values);
        msg.n_versions = causal->len;
        msg.versions = s_versions_encode(arena, causal);
        s_pack(&msg.base, out);
    } else {
        MultiKeyCausalValue msg = MULTI_KEY_CAUSAL_VALUE__INIT;
        msg.n_vector_clock = clock.len;
        msg.vector_clock =
            s_clock_encode(arena, &clock, &multi_key_causal_value__vector_clock_entry__descriptor);
        msg.n_dependencies = deps.len;
        msg.dependencies = s_deps_encode(arena, &deps);
        msg.n_values = values.len;
        msg.values = s_set_encode(arena, &values);
        msg.n_versions = causal->len;
        msg.versions = s_versions_encode(arena, causal);
        s_pack(&msg.base, out);
    }
    lat_vclock_fini(&clock);
    lat_deps_fini(&deps);
    lat_set_fini(&values);
    return 0;
}

static int s_encode(const lat_t *value, cb_bytes_t *out, int depth)
{
    s_arena_t arena = {0};
    int rc = 0;
    *out = (cb_bytes_t){0};
    switch (value->kind) {
    case LAT_LWW: {
        LWWValue msg = LWWVALUE__INIT;
        msg.timestamp = value->u.lww.ts;
        msg.value = s_binary(&value->u.lww.value);
        msg.writer = value->u.lww.writer;
        s_pack(&msg.base, out);
        break;
    }
    case LAT_SET:
    case LAT_ORDERED_SET: {
        SetValue msg = SET_VALUE__INIT;
        msg.n_values = value->u.set.len;
        msg.values = s_set_encode(&arena, &value->u.set);
        s_pack(&msg.base, out);
        break;
    }
    case LAT_SINGLE_CAUSAL:
    case LAT_MULTI_CAUSAL:
        rc = s_encode_causal(value, out, &arena);
        break;
    case LAT_PRIORITY: {
        PriorityValue msg = PRIORITY_VALUE__INIT;
        msg.priority = value->u.priority.priority;
        msg.value = s_binary(&value->u.priority.value);
        s_pack(&msg.base, out);
        break;
    }
    case LAT_BOOL: {
        BoolValue msg = BOOL_VALUE__INIT;
        msg.value = value->u.boolean;
        s_pack(&msg.base, out);
        break;
    }
    case LAT_MAX: {
        MaxValue msg = MAX_VALUE__INIT;
        msg.value = value->u.max;
        s_pack(&msg.base, out);
        break;
    }
    case LAT_MAP:
        rc = s_encode_map(&value->u.map, out, depth, &arena);
        break;
    case LAT_VCLOCK: {
        VectorClockValue msg = VECTOR_CLOCK_VALUE__INIT;
        msg.n_vector_clock = value->u.vclock.len;
        msg.vector_clock = s_clock_encode(&arena, &value->u.vclock,
                                          &vector_clock_value__vector_clock_entry__descriptor);
        s_pack(&msg.base, out);
        break;
    }
    case LAT_NONE:
    default:
        rc = -EINVAL;
        break;
    }
    s_arena_fini(&arena);
    return rc;
}

int wire_encode(const lat_t *value, cb_bytes_t *out)
{
    return s_encode(value, out, 1);
}

//  ---- decoding -----------------------------------------------------------------------------

//  Room for need items in a decoder's {items, len, cap} array; returns the array, which may
//  have moved. Decoders know the count up front, so this is one allocation per array.
static void *s_grow(void *items, size_t *cap, size_t need, size_t item_size)
{
    if (need <= *cap)
        return items;
    *cap = need;
    return cb_realloc(items, need * item_size);
}

//  Appends the entries of a generated map<string, uint32> field (any of the four entry
//  types, each read through its own type) to vc, then restores the clock invariant: zero
//  counts dropped, duplicate ids joined by max.
#define S_CLOCK_DECODE(vc, n, entries)                                                             \
    do {                                                                                           \
        (vc)->items = s_grow((vc)->items, &(vc)->cap, (vc)->len + (n), sizeof *(vc)->items);       \
        for (size_t i_ = 0; i_ < (n); i_++)                                                        \
            if ((entries)[i_]->value)                                                              \
                (vc)->items[(vc)->len++] =                                                         \
                    (lat_vc_entry_t){cb_strdup((entries)[i_]->key), (entries)[i_]->value};         \
        lat_vclock_normalize(vc);                                                                  \
    } while (0)

static void s_deps_decode(lat_deps_t *deps, size_t n, KeyVersion *const *list)
{
    deps->items = s_grow(deps->items, &deps->cap, deps->len + n, sizeof *deps->items);
    for (size_t i = 0; i < n; i++) {
        lat_dep_t *dep = &deps->items[deps->len++];
        dep->key = cb_strdup(list[i]->key);
        dep->clock = (lat_vclock_t){0};
        S_CLOCK_DECODE(&dep->clock, list[i]->n_vector_clock, list[i]->vector_clock);
    }
    lat_deps_normalize(deps);
}

static void s_set_decode(lat_set_t *set, size_t n, const ProtobufCBinaryData *values)
{
    set->items = s_grow(set->items, &set->cap, set->len + n, sizeof *set->items);
    for (size_t i = 0; i < n; i++)
        cb_bytes_set(&set->items[set->len++], values[i].data, values[i].len);
    lat_set_normalize(set);
}

static size_t s_deps_entries(const lat_deps_t *deps)
{
    size_t entries = deps->len;
    for (size_t i = 0; i < deps->len; i++)
        entries += deps->items[i].clock.len;
    return entries;
}

//  Versions sent by us carry their own clocks; an old client sends only the public fields,
//  which mean "each of these values, under this clock (and these deps)". Versions are
//  appended as they come and put in order once (lat_causal_normalize).
static int s_causal_decode(lat_t *out, const ProtobufCBinaryData *values, size_t n_values,
                           const lat_vclock_t *clock, const lat_deps_t *deps, size_t n_versions,
                           CausalVersion *const *versions)
{
    lat_causal_t *causal = &out->u.causal;
    if (n_versions == 0) {
        //  Each value gets its own copy of the clock and deps: bound the copies, or a small
        //  message with many values and a large clock would expand without limit.
        lat_set_t distinct = {0};
        s_set_decode(&distinct, n_values, values);
        size_t per_version = 1 + clock->len + (deps ? s_deps_entries(deps) : 0);
        if (distinct.len > WIRE_MAX_EXPANSION / per_version) {
            lat_set_fini(&distinct);
            return -EMSGSIZE;
        }
        causal->items = s_grow(causal->items, &causal->cap, distinct.len, sizeof *causal->items);
        for (size_t i = 0; i < distinct.len; i++) {
            lat_version_t *version = &causal->items[causal->len++];
            lat_vclock_copy(&version->clock, clock);
            version->deps = (lat_deps_t){0};
            if (deps && out->kind == LAT_MULTI_CAUSAL)
                lat_deps_copy(&version->deps, deps);
            version->value = distinct.items[i]; //  moved
        }
        cb_free(distinct.items);
        lat_causal_normalize(out);
        return 0;
    }
    if (n_versions > WIRE_MAX_VERSIONS)
        return -EMSGSIZE;
    causal->items = s_grow(causal->items, &causal->cap, n_versions, sizeof *causal->items);
    for (size_t i = 0; i < n_versions; i++) {
        const CausalVersion *in = versions[i];
        if (out->kind == LAT_SINGLE_CAUSAL && in->n_dependencies)
            return -EPROTO;
        lat_version_t *version = &causal->items[causal->len++];
        *version = (lat_version_t){0};
        S_CLOCK_DECODE(&version->clock, in->n_vector_clock, in->vector_clock);
        s_deps_decode(&version->deps, in->n_dependencies, in->dependencies);
        cb_bytes_set(&version->value, in->value.data, in->value.len);
    }
    lat_causal_normalize(out);
    return 0;
}

static int s_decode(int kind, const uint8_t *data, size_t len, lat_t *out, int depth);

static int s_decode_map(lat_map_t *map, const uint8_t *data, size_t len, int depth)
{
    if (depth > WIRE_MAX_DEPTH)
        return -EPROTO;
    MapValue *msg = map_value__unpack(&s_allocator, len, data);
    if (!msg)
        return -EPROTO;
    int rc = 0;
    map->items = s_grow(map->items, &map->cap, msg->n_entries, sizeof *map->items);
    for (size_t i = 0; i < msg->n_entries && rc == 0; i++) {
        const MapEntry *entry = msg->entries[i];
        lat_t *value = cb_malloc(sizeof *value);
        rc = s_decode((int)entry->lattice_type, entry->payload.data, entry->payload.len, value,
                      depth + 1);
        if (rc) {
            cb_free(value);
            if (rc == -EINVAL)
                rc = -EPROTO; //  an unknown nested kind is bad content, not a bad argument
            break;
        }
        lat_map_entry_t *item = &map->items[map->len++];
        cb_bytes_set(&item->key, entry->key.data, entry->key.len);
        item->value = value;
    }
    if (rc == 0)
        lat_map_normalize(map);
    map_value__free_unpacked(msg, &s_allocator);
    return rc;
}

//  Inside a case of s_decode: unpacks msg, or sets rc and leaves the switch.
#define S_UNPACK(type, prefix)                                                                     \
    type *msg = prefix##__unpack(&s_allocator, len, data);                                         \
    if (!msg) {                                                                                    \
        rc = -EPROTO;                                                                              \
        break;                                                                                     \
    }

static int s_decode(int kind, const uint8_t *data, size_t len, lat_t *out, int depth)
{
    static const uint8_t empty[1];
    if (!lat_kind_valid(kind)) {
        lat_init(out, LAT_NONE);
        return -EINVAL;
    }
    if (!data)
        data = empty;
    lat_init(out, (lat_kind_t)kind);
    int rc = 0;
    switch (out->kind) {
    case LAT_LWW: {
        S_UNPACK(LWWValue, lwwvalue);
        out->u.lww.ts = msg->timestamp;
        out->u.lww.writer = msg->writer;
        cb_bytes_set(&out->u.lww.value, msg->value.data, msg->value.len);
        lwwvalue__free_unpacked(msg, &s_allocator);
        break;
    }
    case LAT_SET:
    case LAT_ORDERED_SET: {
        S_UNPACK(SetValue, set_value);
        s_set_decode(&out->u.set, msg->n_values, msg->values);
        set_value__free_unpacked(msg, &s_allocator);
        break;
    }
    case LAT_SINGLE_CAUSAL: {
        S_UNPACK(SingleKeyCausalValue, single_key_causal_value);
        lat_vclock_t clock = {0};
        S_CLOCK_DECODE(&clock, msg->n_vector_clock, msg->vector_clock);
        rc = s_causal_decode(out, msg->values, msg->n_values, &clock, NULL, msg->n_versions,
                             msg->versions);
        lat_vclock_fini(&clock);
        single_key_causal_value__free_unpacked(msg, &s_allocator);
        break;
    }
    case LAT_MULTI_CAUSAL: {
        S_UNPACK(MultiKeyCausalValue, multi_key_causal_value);
        lat_vclock_t clock = {0};
        lat_deps_t deps = {0};
        S_CLOCK_DECODE(&clock, msg->n_vector_clock, msg->vector_clock);
        s_deps_decode(&deps, msg->n_dependencies, msg->dependencies);
        rc = s_causal_decode(out, msg->values, msg->n_values, &clock, &deps, msg->n_versions,
                             msg->versions);
        lat_vclock_fini(&clock);
        lat_deps_fini(&deps);
        multi_key_causal_value__free_unpacked(msg, &s_allocator);
        break;
    }
    case LAT_PRIORITY: {
        S_UNPACK(PriorityValue, priority_value);
        double priority = msg->priority;
        //  +inf is bottom's priority: only bottom itself (empty value) may carry it
        if (isnan(priority) || (priority == INFINITY && msg->value.len > 0))
            rc = -EPROTO;
        else {
            out->u.priority.priority = priority == 0 ? 0.0 : priority;
            cb_bytes_set(&out->u.priority.value, msg->value.data, msg->value.len);
        }
        priority_value__free_unpacked(msg, &s_allocator);
        break;
    }
    case LAT_BOOL: {
        S_UNPACK(BoolValue, bool_value);
        out->u.boolean = msg->value;
        bool_value__free_unpacked(msg, &s_allocator);
        break;
    }
    case LAT_MAX: {
        S_UNPACK(MaxValue, max_value);
        out->u.max = msg->value;
        max_value__free_unpacked(msg, &s_allocator);
        break;
    }
    case LAT_MAP:
        rc = s_decode_map(&out->u.map, data, len, depth);
        break;
    case LAT_VCLOCK: {
        S_UNPACK(VectorClockValue, vector_clock_value);
        S_CLOCK_DECODE(&out->u.vclock, msg->n_vector_clock, msg->vector_clock);
        vector_clock_value__free_unpacked(msg, &s_allocator);
        break;
    }
    case LAT_NONE:
        rc = -EINVAL;
        break;
    }
    if (rc)
        lat_fini(out);
    return rc;
}

int wire_decode(int kind, const uint8_t *data, size_t len, lat_t *out)
{
    return s_decode(kind, data, len, out, 1);
}

//  ---- self-test ----------------------------------------------------------------------------

static const lat_kind_t s_all_kinds[] = {
    LAT_LWW,      LAT_SET,  LAT_SINGLE_CAUSAL, LAT_MULTI_CAUSAL, LAT_ORDERED_SET,
    LAT_PRIORITY, LAT_BOOL, LAT_MAX,           LAT_MAP,          LAT_VCLOCK};
#define S_NKINDS (sizeof s_all_kinds / sizeof s_all_kinds[0])

static void s_fail(const char *what, const lat_t *value, uint64_t seed, int round)
{
    char *text = value ? lat_format(value) : NULL;
    fprintf(stderr, "wire: %s: kind %s, LAT_SEED=%llu, case %d, value %s\n", what,
            value ? lat_kind_name(value->kind) : "-", (unsigned long long)seed, round,
            text ? text : "-");
    cb_free(text);
}

//  encode -> decode gives the value back, and encoding is canonical (re-encoding the
//  decoded value gives the same bytes).
static void s_check_roundtrip(const lat_t *value, uint64_t seed, int round)
{
    cb_bytes_t bytes, again;
    int rc = wire_encode(value, &bytes);
    assert(rc == 0);
    lat_t back;
    rc = wire_decode(value->kind, bytes.data, bytes.len, &back);
    bool ok = rc == 0 && lat_equal(&back, value);
    if (!ok)
        s_fail("round trip", value, seed, round);
    assert(ok);
    assert(wire_encode(&back, &again) == 0);
    ok = cb_bytes_eq(&bytes, &again);
    if (!ok)
        s_fail("encoding not canonical", value, seed, round);
    assert(ok);
    lat_fini(&back);
    cb_bytes_fini(&bytes);
    cb_bytes_fini(&again);
}

//  Whatever the bytes, decoding fails cleanly or yields a value that keeps every invariant:
//  it round-trips and merges with itself without change.
static int s_decode_any(int kind, const uint8_t *data, size_t len)
{
    lat_t value;
    int rc = wire_decode(kind, data, len, &value);
    assert(rc == 0 || rc == -EPROTO || rc == -EINVAL || rc == -EMSGSIZE);
    if (rc) {
        assert(value.kind == LAT_NONE);
        return rc;
    }
    s_check_roundtrip(&value, 0, -1);
    lat_t copy;
    lat_copy(&copy, &value);
    assert(lat_merge(&copy, &value) == 0 && lat_equal(&copy, &value));
    lat_fini(&copy);
    lat_fini(&value);
    return 0;
}

static void s_test_roundtrip(uint64_t seed, bool verbose)
{
    enum { CASES = 1000 };
    for (size_t k = 0; k < S_NKINDS; k++) {
        cb_rand_t rand;
        cb_rand_seed(&rand, seed * 7 + s_all_kinds[k]);
        size_t total = 0;
        for (int round = 0; round < CASES; round++) {
            lat_t value;
            lat_random(&value, s_all_kinds[k], &rand);
            //  merged values have more versions and entries than single draws
            if (round % 2) {
                lat_t more;
                lat_random(&more, s_all_kinds[k], &rand);
                lat_merge(&value, &more);
                lat_fini(&more);
            }
            s_check_roundtrip(&value, seed, round);
            cb_bytes_t bytes;
            wire_encode(&value, &bytes);
            total += bytes.len;
            cb_bytes_fini(&bytes);
            lat_fini(&value);
        }
        if (verbose)
            printf("  round trip %-13s %d values, %zu bytes\n", lat_kind_name(s_all_kinds[k]),
                   CASES, total);
    }
}

static void s_test_robust(uint64_t seed, bool verbose)
{
    cb_rand_t rand;
    cb_rand_seed(&rand, seed ^ 0x5eed);
    size_t cases = 0, accepted = 0;
    //  Every prefix, and single-byte corruptions, of valid encodings.
    for (size_t k = 0; k < S_NKINDS; k++) {
        for (int round = 0; round < 100; round++) {
            lat_t value;
            lat_random(&value, s_all_kinds[k], &rand);
            cb_bytes_t bytes;
            assert(wire_encode(&value, &bytes) == 0);
            for (size_t cut = 0; cut < bytes.len; cut++, cases++) {
                //  a copy of exactly cut bytes, so ASan sees any read past the end
                uint8_t *prefix = cb_memdup(bytes.data, cut);
                accepted += s_decode_any(value.kind, prefix, cut) == 0;
                cb_free(prefix);
            }
            for (int flip = 0; flip < 20 && bytes.len; flip++, cases++) {
                uint8_t *bad = cb_memdup(bytes.data, bytes.len);
                bad[cb_rand_below(&rand, bytes.len)] ^= (uint8_t)(1 + cb_rand_below(&rand, 255));
                accepted += s_decode_any(value.kind, bad, bytes.len) == 0;
                cb_free(bad);
            }
            cb_bytes_fini(&bytes);
            lat_fini(&value);
        }
    }
    //  Garbage: random bytes, half of them built from plausible tags and lengths.
    for (int round = 0; round < 20000; round++, cases++) {
        uint8_t buf[64];
        size_t len = cb_rand_below(&rand, sizeof buf + 1);
        for (size_t i = 0; i < len; i++) {
            if (round % 2 && cb_rand_below(&rand, 2))
                buf[i] = (uint8_t)((1 + cb_rand_below(&rand, 4)) << 3 | cb_rand_below(&rand, 6));
            else if (round % 2)
                buf[i] = (uint8_t)cb_rand_below(&rand, 8);
            else
                buf[i] = (uint8_t)cb_rand_next(&rand);
        }
        int kind = round % 5 == 4 ? (int)cb_rand_below(&rand, 25)
                                  : (int)s_all_kinds[cb_rand_below(&rand, S_NKINDS)];
        uint8_t *exact = cb_memdup(buf, len);
        int rc = s_decode_any(kind, exact, len);
        accepted += rc == 0;
        assert(rc != -EINVAL || !lat_kind_valid(kind));
        cb_free(exact);
    }
    if (verbose)
        printf("  robustness: %zu truncated/corrupt/garbage payloads, %zu decoded, none "
               "crashed\n",
               cases, accepted);
}

//  An empty payload is the message with every field at its default (proto3).
static void s_test_empty(void)
{
    for (size_t k = 0; k < S_NKINDS; k++) {
        lat_t value, expect;
        assert(wire_decode(s_all_kinds[k], NULL, 0, &value) == 0);
        lat_init(&expect, s_all_kinds[k]);
        if (expect.kind == LAT_PRIORITY)
            lat_priority_assign(&expect, 0.0, NULL, 0); //  not bottom: bottom is +inf
        else if (expect.kind == LAT_MAX)
            expect.u.max = 0; //  not bottom: INT64_MIN
        assert(lat_equal(&value, &expect));
        lat_fini(&value);
        lat_fini(&expect);
    }
    lat_t value;
    assert(wire_decode(LAT_NONE, NULL, 0, &value) == -EINVAL && value.kind == LAT_NONE);
    assert(wire_decode(7, NULL, 0, &value) == -EINVAL);
    assert(wire_decode(-1, NULL, 0, &value) == -EINVAL);
    lat_init(&value, LAT_NONE);
    cb_bytes_t bytes;
    assert(wire_encode(&value, &bytes) == -EINVAL && !bytes.data);
}

static void s_pack_test(const ProtobufCMessage *msg, cb_bytes_t *out)
{
    s_pack(msg, out);
}

static void s_clock_of(lat_vclock_t *vc, const char *id, uint32_t count)
{
    *vc = (lat_vclock_t){0};
    lat_vclock_bump(vc, id, count);
}

//  Messages built the way an old Anna client builds them (no extension fields).
static void s_test_old_clients(void)
{
    lat_t value, expect;
    cb_bytes_t bytes;

    //  LWWValue without writer: writer 0.
    LWWValue lww = LWWVALUE__INIT;
    lww.timestamp = 17;
    lww.value = (ProtobufCBinaryData){2, (uint8_t *)"hi"};
    s_pack_test(&lww.base, &bytes);
    assert(wire_decode(LAT_LWW, bytes.data, bytes.len, &value) == 0);
    lat_init(&expect, LAT_LWW);
    lat_lww_assign(&expect, 17, 0, "hi", 2);
    assert(lat_equal(&value, &expect));
    lat_fini(&value);
    lat_fini(&expect);
    cb_bytes_fini(&bytes);

    //  SetValue, unsorted with duplicates.
    ProtobufCBinaryData items[] = {{1, (uint8_t *)"b"}, {1, (uint8_t *)"a"}, {1, (uint8_t *)"b"}};
    SetValue set = SET_VALUE__INIT;
    set.n_values = 3;
    set.values = items;
    s_pack_test(&set.base, &bytes);
    assert(wire_decode(LAT_SET, bytes.data, bytes.len, &value) == 0);
    assert(value.u.set.len == 2 && lat_set_contains(&value.u.set, "a", 1));
    lat_fini(&value);
    cb_bytes_fini(&bytes);

    //  SingleKeyCausalValue with public fields only: each value a version under the clock.
    SingleKeyCausalValue__VectorClockEntry entry =
        SINGLE_KEY_CAUSAL_VALUE__VECTOR_CLOCK_ENTRY__INIT;
    SingleKeyCausalValue__VectorClockEntry zero = SINGLE_KEY_CAUSAL_VALUE__VECTOR_CLOCK_ENTRY__INIT;
    entry.key = "py";
    entry.value = 1;
    zero.key = "gone";
    SingleKeyCausalValue__VectorClockEntry *entries[] = {&entry, &zero};
    SingleKeyCausalValue single = SINGLE_KEY_CAUSAL_VALUE__INIT;
    single.n_vector_clock = 2;
    single.vector_clock = entries;
    single.n_values = 2;
    single.values = items;
    s_pack_test(&single.base, &bytes);
    assert(wire_decode(LAT_SINGLE_CAUSAL, bytes.data, bytes.len, &value) == 0);
    cb_bytes_fini(&bytes);
    lat_vclock_t clock;
    s_clock_of(&clock, "py", 1);
    lat_init(&expect, LAT_SINGLE_CAUSAL);
    lat_causal_add(&expect, &clock, NULL, "a", 1);
    lat_causal_add(&expect, &clock, NULL, "b", 1);
    assert(lat_equal(&value, &expect) && value.u.causal.len == 2);
    //  and what we send back reads the same to that client: clock {py:1}, values a, b
    assert(wire_encode(&value, &bytes) == 0);
    SingleKeyCausalValue *seen = single_key_causal_value__unpack(NULL, bytes.len, bytes.data);
    assert(seen && seen->n_vector_clock == 1 && strcmp(seen->vector_clock[0]->key, "py") == 0);
    assert(seen->vector_clock[0]->value == 1 && seen->n_values == 2 && seen->n_versions == 2);
    single_key_causal_value__free_unpacked(seen, NULL);
    cb_bytes_fini(&bytes);
    lat_fini(&value);
    lat_fini(&expect);

    //  MultiKeyCausalValue with public fields only: the public deps go with every value.
    MultiKeyCausalValue__VectorClockEntry mentry = MULTI_KEY_CAUSAL_VALUE__VECTOR_CLOCK_ENTRY__INIT;
    mentry.key = "py";
    mentry.value = 1;
    MultiKeyCausalValue__VectorClockEntry *mentries[] = {&mentry};
    KeyVersion__VectorClockEntry dentry = KEY_VERSION__VECTOR_CLOCK_ENTRY__INIT;
    dentry.key = "other";
    dentry.value = 4;
    KeyVersion__VectorClockEntry *dentries[] = {&dentry};
    KeyVersion dep = KEY_VERSION__INIT;
    dep.key = "k";
    dep.n_vector_clock = 1;
    dep.vector_clock = dentries;
    KeyVersion *deps[] = {&dep, &dep};
    MultiKeyCausalValue multi = MULTI_KEY_CAUSAL_VALUE__INIT;
    multi.n_vector_clock = 1;
    multi.vector_clock = mentries;
    multi.n_dependencies = 2;
    multi.dependencies = deps;
    multi.n_values = 1;
    multi.values = items;
    s_pack_test(&multi.base, &bytes);
    assert(wire_decode(LAT_MULTI_CAUSAL, bytes.data, bytes.len, &value) == 0);
    cb_bytes_fini(&bytes);
    lat_vclock_t dep_clock;
    s_clock_of(&dep_clock, "other", 4);
    lat_deps_t expect_deps = {0};
    lat_deps_add(&expect_deps, "k", &dep_clock);
    lat_init(&expect, LAT_MULTI_CAUSAL);
    lat_causal_add(&expect, &clock, &expect_deps, "b", 1);
    assert(lat_equal(&value, &expect));
    lat_fini(&value);
    lat_fini(&expect);
    lat_deps_fini(&expect_deps);
    lat_vclock_fini(&dep_clock);

    //  A single-key version must not carry dependencies.
    CausalVersion version = CAUSAL_VERSION__INIT;
    version.n_dependencies = 1;
    version.dependencies = deps;
    CausalVersion *versions[] = {&version};
    single = (SingleKeyCausalValue)SINGLE_KEY_CAUSAL_VALUE__INIT;
    single.n_versions = 1;
    single.versions = versions;
    s_pack_test(&single.base, &bytes);
    assert(wire_decode(LAT_SINGLE_CAUSAL, bytes.data, bytes.len, &value) == -EPROTO);
    //  (the same bytes are a fine multi-key value: field 100 is versions in both)
    assert(wire_decode(LAT_MULTI_CAUSAL, bytes.data, bytes.len, &value) == 0);
    assert(value.u.causal.len == 1 && value.u.causal.items[0].deps.len == 1);
    lat_fini(&value);
    cb_bytes_fini(&bytes);
    lat_vclock_fini(&clock);

    //  Priority: NaN and +inf with a value are refused; -0 reads as 0; bottom round-trips.
    PriorityValue prio = PRIORITY_VALUE__INIT;
    prio.priority = NAN;
    s_pack_test(&prio.base, &bytes);
    assert(wire_decode(LAT_PRIORITY, bytes.data, bytes.len, &value) == -EPROTO);
    cb_bytes_fini(&bytes);
    prio.priority = INFINITY;
    prio.value = items[0];
    s_pack_test(&prio.base, &bytes);
    assert(wire_decode(LAT_PRIORITY, bytes.data, bytes.len, &value) == -EPROTO);
    cb_bytes_fini(&bytes);
    prio.priority = -0.0;
    s_pack_test(&prio.base, &bytes);
    assert(wire_decode(LAT_PRIORITY, bytes.data, bytes.len, &value) == 0);
    assert(value.u.priority.priority == 0 && !signbit(value.u.priority.priority));
    lat_fini(&value);
    cb_bytes_fini(&bytes);
    lat_init(&expect, LAT_PRIORITY);
    s_check_roundtrip(&expect, 0, 0);
    lat_fini(&expect);

    //  VectorClockValue: zero counts dropped, duplicate ids joined by max.
    VectorClockValue__VectorClockEntry v1 = VECTOR_CLOCK_VALUE__VECTOR_CLOCK_ENTRY__INIT;
    VectorClockValue__VectorClockEntry v2 = VECTOR_CLOCK_VALUE__VECTOR_CLOCK_ENTRY__INIT;
    VectorClockValue__VectorClockEntry v3 = VECTOR_CLOCK_VALUE__VECTOR_CLOCK_ENTRY__INIT;
    v1.key = "b";
    v1.value = 3;
    v2.key = "a";
    v3.key = "b";
    v3.value = 5;
    VectorClockValue__VectorClockEntry *ventries[] = {&v1, &v2, &v3};
    VectorClockValue vcv = VECTOR_CLOCK_VALUE__INIT;
    vcv.n_vector_clock = 3;
    vcv.vector_clock = ventries;
    s_pack_test(&vcv.base, &bytes);
    assert(wire_decode(LAT_VCLOCK, bytes.data, bytes.len, &value) == 0);
    assert(value.u.vclock.len == 1 && lat_vclock_get(&value.u.vclock, "b") == 5);
    lat_fini(&value);
    cb_bytes_fini(&bytes);
}

//  The size limits: WIRE_MAX_VERSIONS versions, WIRE_MAX_EXPANSION for old clients.
static void s_test_limits(void)
{
    //  WIRE_MAX_VERSIONS pairwise concurrent versions ({c<i>: 1}) go through, one more not.
    lat_t value, back;
    lat_init(&value, LAT_SINGLE_CAUSAL);
    for (int i = 0; i <= WIRE_MAX_VERSIONS; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", i);
        lat_vclock_t clock = {0};
        lat_vclock_bump(&clock, id, 1);
        if (i < WIRE_MAX_VERSIONS)
            lat_causal_add(&value, &clock, NULL, "v", 1);
        else {
            s_check_roundtrip(&value, 0, 0);
            lat_causal_add(&value, &clock, NULL, "v", 1);
        }
        lat_vclock_fini(&clock);
    }
    assert(value.u.causal.len == WIRE_MAX_VERSIONS + 1);
    cb_bytes_t bytes;
    assert(wire_encode(&value, &bytes) == -EMSGSIZE && !bytes.data);
    //  the same versions built by hand
    CausalVersion *versions = cb_calloc(WIRE_MAX_VERSIONS + 1, sizeof *versions);
    CausalVersion **list = cb_calloc(WIRE_MAX_VERSIONS + 1, sizeof *list);
    CausalVersion__VectorClockEntry *entries = cb_calloc(WIRE_MAX_VERSIONS + 1, sizeof *entries);
    CausalVersion__VectorClockEntry **entry_list =
        cb_calloc(WIRE_MAX_VERSIONS + 1, sizeof *entry_list);
    for (size_t i = 0; i <= WIRE_MAX_VERSIONS; i++) {
        causal_version__init(&versions[i]);
        causal_version__vector_clock_entry__init(&entries[i]);
        entries[i].key = value.u.causal.items[i].clock.items[0].id;
        entries[i].value = 1;
        entry_list[i] = &entries[i];
        versions[i].n_vector_clock = 1;
        versions[i].vector_clock = &entry_list[i];
        list[i] = &versions[i];
    }
    SingleKeyCausalValue msg = SINGLE_KEY_CAUSAL_VALUE__INIT;
    msg.n_versions = WIRE_MAX_VERSIONS + 1;
    msg.versions = list;
    s_pack(&msg.base, &bytes);
    assert(wire_decode(LAT_SINGLE_CAUSAL, bytes.data, bytes.len, &back) == -EMSGSIZE);
    cb_bytes_fini(&bytes);

    //  An old client's clock of 1000 entries over 1100 distinct values expands past the
    //  limit; over 1000 values with duplicates it does not.
    SingleKeyCausalValue__VectorClockEntry **clock = cb_calloc(1000, sizeof *clock);
    for (size_t i = 0; i < 1000; i++)
        clock[i] = (SingleKeyCausalValue__VectorClockEntry *)&entries[i];
    for (size_t i = 0; i < 1000; i++)
        entries[i].base.descriptor = &single_key_causal_value__vector_clock_entry__descriptor;
    ProtobufCBinaryData *values = cb_calloc(1100, sizeof *values);
    char *texts = cb_malloc(1100 * 8);
    for (size_t i = 0; i < 1100; i++) {
        snprintf(texts + i * 8, 8, "%zu", i % (i < 1000 ? 1000 : 1100));
        values[i] = (ProtobufCBinaryData){strlen(texts + i * 8), (uint8_t *)texts + i * 8};
    }
    msg = (SingleKeyCausalValue)SINGLE_KEY_CAUSAL_VALUE__INIT;
    msg.n_vector_clock = 1000;
    msg.vector_clock = clock;
    msg.n_values = 1100;
    msg.values = values;
    s_pack(&msg.base, &bytes);
    assert(wire_decode(LAT_SINGLE_CAUSAL, bytes.data, bytes.len, &back) == -EMSGSIZE);
    cb_bytes_fini(&bytes);
    for (size_t i = 1000; i < 1100; i++) //  now 1100 values, 1000 distinct
        values[i] = values[i - 1000];
    s_pack(&msg.base, &bytes);
    assert(wire_decode(LAT_SINGLE_CAUSAL, bytes.data, bytes.len, &back) == 0);
    assert(back.u.causal.len == 1000 && back.u.causal.items[0].clock.len == 1000);
    lat_fini(&back);
    cb_bytes_fini(&bytes);
    cb_free(texts);
    cb_free(values);
    cb_free(clock);
    cb_free(versions);
    cb_free(list);
    cb_free(entries);
    cb_free(entry_list);
    lat_fini(&value);
}

//  A map nested depth deep: {"d": {"d": ... {"d": 1 (MAX)}}}.
static void s_deep_map(lat_t *out, int depth)
{
    lat_init(out, LAT_MAX);
    out->u.max = 1;
    for (int i = 0; i < depth; i++) {
        lat_t outer;
        lat_init(&outer, LAT_MAP);
        lat_map_merge_at(&outer.u.map, "d", 1, out);
        lat_fini(out);
        *out = outer;
    }
}

//  Wraps payload (a value of kind) as the only entry of a MapValue. Caller owns *out.
static void s_wrap(cb_bytes_t *out, const cb_bytes_t *payload, int kind, const char *key)
{
    MapEntry entry = MAP_ENTRY__INIT;
    entry.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
    entry.lattice_type = (LatticeType)kind;
    entry.payload = (ProtobufCBinaryData){payload->len, payload->data};
    MapEntry *entries[] = {&entry, &entry};
    MapValue map = MAP_VALUE__INIT;
    map.n_entries = strlen(key) ? 2 : 1; //  a key given twice when not empty
    map.entries = entries;
    s_pack(&map.base, out);
}

static void s_test_maps(void)
{
    lat_t value, back;
    cb_bytes_t bytes, wrapped;
    //  WIRE_MAX_DEPTH nested maps are fine both ways; one more is refused both ways.
    s_deep_map(&value, WIRE_MAX_DEPTH);
    s_check_roundtrip(&value, 0, 0);
    assert(wire_encode(&value, &bytes) == 0);
    lat_fini(&value);
    s_wrap(&wrapped, &bytes, LAT_MAP, "");
    assert(wire_decode(LAT_MAP, wrapped.data, wrapped.len, &back) == -EPROTO);
    cb_bytes_fini(&wrapped);
    s_deep_map(&value, WIRE_MAX_DEPTH + 1);
    cb_bytes_t none;
    assert(wire_encode(&value, &none) == -EINVAL && !none.data);
    lat_fini(&value);
    //  Far deeper: refused at the limit, without recursing further.
    for (int i = 0; i < 200; i++) {
        s_wrap(&wrapped, &bytes, LAT_MAP, "");
        cb_bytes_fini(&bytes);
        bytes = wrapped;
    }
    assert(wire_decode(LAT_MAP, bytes.data, bytes.len, &back) == -EPROTO);
    cb_bytes_fini(&bytes);

    //  Duplicate keys are joined; an unknown or bad nested value fails the whole map.
    lat_t max;
    lat_init(&max, LAT_MAX);
    max.u.max = 5;
    assert(wire_encode(&max, &bytes) == 0);
    s_wrap(&wrapped, &bytes, LAT_MAX, "k");
    assert(wire_decode(LAT_MAP, wrapped.data, wrapped.len, &back) == 0);
    assert(back.u.map.len == 1 && lat_equal(lat_map_get(&back.u.map, "k", 1), &max));
    lat_fini(&back);
    cb_bytes_fini(&wrapped);
    s_wrap(&wrapped, &bytes, 7, "k");
    assert(wire_decode(LAT_MAP, wrapped.data, wrapped.len, &back) == -EPROTO);
    cb_bytes_fini(&wrapped);
    s_wrap(&wrapped, &bytes, LAT_NONE, "k");
    assert(wire_decode(LAT_MAP, wrapped.data, wrapped.len, &back) == -EPROTO);
    cb_bytes_fini(&wrapped);
    cb_bytes_t garbage = {(uint8_t *)"\xff\xff\xff", 3};
    s_wrap(&wrapped, &garbage, LAT_SET, "k");
    assert(wire_decode(LAT_MAP, wrapped.data, wrapped.len, &back) == -EPROTO);
    cb_bytes_fini(&wrapped);
    cb_bytes_fini(&bytes);
    lat_fini(&max);
}

void wire_test(bool verbose)
{
    uint64_t seed = lat_test_seed();
    s_test_roundtrip(seed, verbose);
    s_test_empty();
    s_test_old_clients();
    s_test_maps();
    s_test_limits();
    s_test_robust(seed, verbose);
    if (verbose)
        printf("  empty payloads, old-client messages, depth and size limits OK\n");
}
