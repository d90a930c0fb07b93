//  anna/store.c: open-addressing hash table (linear probing) of slot -> entry index, over a
//  dense array of entries. The slots are 8 bytes (a 32-bit hash tag and the index), so a probe
//  touches one cache line and rarely an entry whose key does not match; the dense entries make
//  iteration and gossip cheap, and a rehash moves only the slots. Deletion shifts back the
//  following slots of the cluster (no tombstones) and moves the last entry into the hole.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/store.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "anna/ring.h"
#include "common/alloc.h"
#include "common/rand.h"

//  Not the ring's seed: the keys of one shard are the ones whose ring hash falls in this
//  thread's arcs, so table slots must come from an independent hash.
#define S_SEED 0x5eed5eedULL
#define S_MIN_SLOTS 16

//  Keys up to this length live inside the entry: a lookup then touches the slot and the
//  entry only, not a third cache line (most keys are short: "user:000123", "key:...").
#define S_INLINE_KEY 24

typedef struct {
    uint64_t hash;              //  anna_hash(key, S_SEED)
    uint32_t klen;              //  strlen(key)
    uint32_t mark;              //  1 + position in the change set; 0 if not in it
    size_t size;                //  lat_size(&value) when it last changed
    lat_t value;                //  owned
    union {
        char *ptr;              //  klen >= S_INLINE_KEY: owned, NUL-terminated
        char inline_[S_INLINE_KEY];     //  klen < S_INLINE_KEY: NUL-terminated
    } key;
} s_entry_t;

static inline const char *s_key(const s_entry_t *e)
{
    return e->klen < S_INLINE_KEY ? e->key.inline_ : e->key.ptr;
}

static inline void s_key_free(s_entry_t *e)
{
    if (e->klen >= S_INLINE_KEY)
        cb_free(e->key.ptr);
}

typedef struct {
    uint32_t tag;               //  high 32 bits of the hash: skips most non-matching entries
    uint32_t idx;               //  1 + entry index; 0 = empty slot
} s_slot_t;

struct _anna_store_t {
    s_slot_t *slots;            //  power-of-two table, at most 3/4 full
    size_t mask;                //  number of slots - 1
    s_entry_t *entries;         //  dense, entries[0..count)
    size_t count;
    size_t entries_cap;
    uint32_t *marked;           //  change set: entry indices
    size_t nmarked;
    size_t marked_cap;
    size_t data_bytes;          //  sum of klen + 1 + size over entries
};

static size_t s_round_pow2(size_t n)
{
    size_t p = S_MIN_SLOTS;
    while (p < n)
        p <<= 1;
    return p;
}

anna_store_t *anna_store_new(size_t capacity_hint)
{
    anna_store_t *self = cb_calloc(1, sizeof *self);
    size_t nslots = s_round_pow2(capacity_hint + capacity_hint / 3 + 1);
    self->slots = cb_calloc(nslots, sizeof *self->slots);
    self->mask = nslots - 1;
    self->entries_cap = capacity_hint ? capacity_hint : 8;
    self->entries = cb_malloc(self->entries_cap * sizeof *self->entries);
    return self;
}

void anna_store_destroy(anna_store_t **self_p)
{
    assert(self_p);
    anna_store_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        s_key_free(&self->entries[i]);
        lat_fini(&self->entries[i].value);
    }
    cb_free(self->entries);
    cb_free(self->slots);
    cb_free(self->marked);
    cb_free(self);
    *self_p = NULL;
}

//  Slot holding key, or the empty slot where it would go (*found says which).
static size_t s_find(const anna_store_t *self, const char *key, size_t klen, uint64_t hash,
                     bool *found)
{
    uint32_t tag = (uint32_t)(hash >> 32);
    size_t i = (size_t)hash & self->mask;
    for (;;) {
        const s_slot_t *slot = &self->slots[i];
        if (slot->idx == 0) {
            *found = false;
            return i;
        }
        if (slot->tag == tag) {
            const s_entry_t *e = &self->entries[slot->idx - 1];
            if (e->klen == klen && memcmp(s_key(e), key, klen) == 0) {
                *found = true;
                return i;
            }
        }
        i = (i + 1) & self->mask;
    }
}

static void s_rehash(anna_store_t *self, size_t nslots)
{
    cb_free(self->slots);
    self->slots = cb_calloc(nslots, sizeof *self->slots);
    self->mask = nslots - 1;
    for (size_t e = 0; e < self->count; e++) {
        uint64_t hash = self->entries[e].hash;
        size_t i = (size_t)hash & self->mask;
        while (self->slots[i].idx)
            i = (i + 1) & self->mask;
        self->slots[i].tag = (uint32_t)(hash >> 32);
        self->slots[i].idx = (uint32_t)e + 1;
    }
}

static void s_mark(anna_store_t *self, size_t e)
{
    s_entry_t *entry = &self->entries[e];
    if (entry->mark)
        return;
    if (self->nmarked == self->marked_cap) {
        self->marked_cap = self->marked_cap ? self->marked_cap * 2 : 64;
        self->marked = cb_realloc(self->marked, self->marked_cap * sizeof *self->marked);
    }
    self->marked[self->nmarked++] = (uint32_t)e;
    entry->mark = (uint32_t)self->nmarked;
}

//  Appends a new entry for key whose slot is empty; value contents are taken.
static void s_insert(anna_store_t *self, const char *key, size_t klen, uint64_t hash,
                     lat_t *value, int flags)
{
    assert(klen < UINT32_MAX && self->count < UINT32_MAX - 1);
    //  Grow first so that the slot found afterwards stays valid.
    if ((self->count + 1) * 4 > (self->mask + 1) * 3)
        s_rehash(self, (self->mask + 1) * 2);
    bool found;
    size_t i = s_find(self, key, klen, hash, &found);
    assert(!found);
    if (self->count == self->entries_cap) {
        self->entries_cap *= 2;
        self->entries = cb_realloc(self->entries, self->entries_cap * sizeof *self->entries);
    }
    size_t e = self->count++;
    s_entry_t *entry = &self->entries[e];
    entry->klen = (uint32_t)klen;
    if (klen < S_INLINE_KEY) {
        memcpy(entry->key.inline_, key, klen);
        entry->key.inline_[klen] = '\0';
    } else
        entry->key.ptr = cb_strndup(key, klen);
    entry->mark = 0;
    entry->hash = hash;
    entry->value = *value;
    memset(value, 0, sizeof *value);        //  LAT_NONE, owns nothing
    entry->size = lat_size(&entry->value);
    self->data_bytes += klen + 1 + entry->size;
    self->slots[i].tag = (uint32_t)(hash >> 32);
    self->slots[i].idx = (uint32_t)e + 1;
    if (flags & ANNA_STORE_MARK)
        s_mark(self, e);
}

static void s_changed(anna_store_t *self, size_t e, int flags)
{
    s_entry_t *entry = &self->entries[e];
    size_t size = lat_size(&entry->value);
    self->data_bytes = self->data_bytes - entry->size + size;
    entry->size = size;
    if (flags & ANNA_STORE_MARK)
        s_mark(self, e);
}

int anna_store_merge(anna_store_t *self, const char *key, const lat_t *value, int flags)
{
    assert(self && key && value && value->kind != LAT_NONE);
    size_t klen = strlen(key);
    uint64_t hash = anna_hash(key, klen, S_SEED);
    bool found;
    size_t i = s_find(self, key, klen, hash, &found);
    if (!found) {
        lat_t copy;
        lat_copy(&copy, value);
        s_insert(self, key, klen, hash, &copy, flags);
        return 1;
    }
    size_t e = self->slots[i].idx - 1;
    int rc = lat_merge(&self->entries[e].value, value);
    if (rc == 1)
        s_changed(self, e, flags);
    return rc;
}

int anna_store_merge_move(anna_store_t *self, const char *key, lat_t *value, int flags)
{
    assert(self && key && value && value->kind != LAT_NONE);
    size_t klen = strlen(key);
    uint64_t hash = anna_hash(key, klen, S_SEED);
    bool found;
    size_t i = s_find(self, key, klen, hash, &found);
    if (!found) {
        s_insert(self, key, klen, hash, value, flags);
        return 1;
    }
    size_t e = self->slots[i].idx - 1;
    int rc = lat_merge(&self->entries[e].value, value);
    lat_fini(value);
    if (rc == 1)
        s_changed(self, e, flags);
    return rc;
}

void anna_store_replace(anna_store_t *self, const char *key, lat_t *value, int flags)
{
    assert(self && key && value && value->kind != LAT_NONE);
    size_t klen = strlen(key);
    uint64_t hash = anna_hash(key, klen, S_SEED);
    bool found;
    size_t i = s_find(self, key, klen, hash, &found);
    if (!found) {
        s_insert(self, key, klen, hash, value, flags);
        return;
    }
    size_t e = self->slots[i].idx - 1;
    lat_fini(&self->entries[e].value);
    self->entries[e].value = *value;
    memset(value, 0, sizeof *value);
    s_changed(self, e, flags);
}

const lat_t *anna_store_get(const anna_store_t *self, const char *key)
{
    return anna_store_get_size(self, key, NULL);
}

const lat_t *anna_store_get_size(const anna_store_t *self, const char *key, size_t *size)
{
    assert(self && key);
    size_t klen = strlen(key);
    bool found;
    size_t i = s_find(self, key, klen, anna_hash(key, klen, S_SEED), &found);
    if (!found)
        return NULL;
    const s_entry_t *entry = &self->entries[self->slots[i].idx - 1];
    if (size)
        *size = entry->size;
    return &entry->value;
}

//  Slot that points at entry e (which must exist).
static size_t s_slot_of(const anna_store_t *self, size_t e)
{
    size_t i = (size_t)self->entries[e].hash & self->mask;
    while (self->slots[i].idx != e + 1)
        i = (i + 1) & self->mask;
    return i;
}

static void s_unmark(anna_store_t *self, size_t e)
{
    s_entry_t *entry = &self->entries[e];
    if (!entry->mark)
        return;
    size_t pos = entry->mark - 1;
    uint32_t last = self->marked[--self->nmarked];
    if (pos != self->nmarked) {
        self->marked[pos] = last;
        self->entries[last].mark = (uint32_t)pos + 1;
    }
    entry->mark = 0;
}

bool anna_store_remove(anna_store_t *self, const char *key)
{
    assert(self && key);
    size_t klen = strlen(key);
    bool found;
    size_t i = s_find(self, key, klen, anna_hash(key, klen, S_SEED), &found);
    if (!found)
        return false;
    size_t e = self->slots[i].idx - 1;

    //  Backward-shift deletion: a later slot of the cluster moves into the hole unless its
    //  home slot lies cyclically in (hole, slot], where moving it would make it unreachable.
    self->slots[i].idx = 0;
    size_t hole = i;
    for (size_t j = (i + 1) & self->mask; self->slots[j].idx; j = (j + 1) & self->mask) {
        size_t home = (size_t)self->entries[self->slots[j].idx - 1].hash & self->mask;
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays)
            continue;
        self->slots[hole] = self->slots[j];
        self->slots[j].idx = 0;
        hole = j;
    }

    s_unmark(self, e);
    s_entry_t *entry = &self->entries[e];
    self->data_bytes -= entry->klen + 1 + entry->size;
    s_key_free(entry);
    lat_fini(&entry->value);
    size_t last = --self->count;
    if (e != last) {
        //  Keep entries dense: the last one moves into the freed index.
        size_t slot = s_slot_of(self, last);
        self->entries[e] = self->entries[last];
        self->slots[slot].idx = (uint32_t)e + 1;
        if (self->entries[e].mark)
            self->marked[self->entries[e].mark - 1] = (uint32_t)e;
    }
    return true;
}

size_t anna_store_count(const anna_store_t *self)
{
    return self->count;
}

size_t anna_store_bytes(const anna_store_t *self)
{
    return self->data_bytes + (self->mask + 1) * sizeof(s_slot_t) +
           self->entries_cap * sizeof(s_entry_t) + self->marked_cap * sizeof(uint32_t);
}

const char *anna_store_next(const anna_store_t *self, size_t *cursor, const lat_t **value)
{
    assert(self && cursor && value);
    if (*cursor >= self->count)
        return NULL;
    const s_entry_t *entry = &self->entries[(*cursor)++];
    *value = &entry->value;
    return s_key(entry);
}

const char *anna_store_at(const anna_store_t *self, size_t i, const lat_t **value)
{
    assert(self && value && i < self->count);
    *value = &self->entries[i].value;
    return s_key(&self->entries[i]);
}

size_t anna_store_marked(const anna_store_t *self)
{
    return self->nmarked;
}

void anna_store_drain_marked(anna_store_t *self, anna_store_visit_fn *fn, void *arg)
{
    assert(self && fn);
    //  Take the change set first, so that fn may mark keys again (a gossip send that failed
    //  re-marks its keys for the next round) without disturbing this walk.
    uint32_t *marked = self->marked;
    size_t nmarked = self->nmarked, cap = self->marked_cap;
    self->marked = NULL;
    self->nmarked = self->marked_cap = 0;
    for (size_t m = 0; m < nmarked; m++)
        self->entries[marked[m]].mark = 0;
    for (size_t m = 0; m < nmarked; m++) {
        const s_entry_t *entry = &self->entries[marked[m]];
        fn(arg, s_key(entry), &entry->value);
    }
    if (!self->marked) {
        //  Nothing re-marked: keep the array for the next round.
        self->marked = marked;
        self->marked_cap = cap;
    } else
        cb_free(marked);
}

void anna_store_mark(anna_store_t *self, const char *key)
{
    size_t klen = strlen(key);
    bool found;
    size_t i = s_find(self, key, klen, anna_hash(key, klen, S_SEED), &found);
    if (found)
        s_mark(self, self->slots[i].idx - 1);
}

//  ---- self-test ----------------------------------------------------------------------------

static void s_count_visit(void *arg, const char *key, const lat_t *value)
{
    (void)key;
    assert(value->kind != LAT_NONE);
    (*(size_t *)arg)++;
}

typedef struct {
    anna_store_t *store;
    size_t visited;
} s_remark_t;

//  Re-marks every key it visits, as a failed gossip send does.
static void s_remark_visit(void *arg, const char *key, const lat_t *value)
{
    s_remark_t *ctx = arg;
    (void)value;
    ctx->visited++;
    anna_store_mark(ctx->store, key);
}

//  Every third key is too long to be stored inline in the entry.
static void s_test_key(char *key, size_t len, uint32_t k)
{
    snprintf(key, len, k % 3 ? "key:%" PRIu32 : "a-key-name-longer-than-the-inline-buffer:%" PRIu32,
             k);
}

static void s_lww(lat_t *v, uint64_t ts, const char *text)
{
    lat_init(v, LAT_LWW);
    lat_lww_assign(v, ts, 1, text, strlen(text));
}

void anna_store_test(bool verbose)
{
    anna_store_t *store = anna_store_new(0);
    assert(anna_store_count(store) == 0);
    assert(anna_store_get(store, "a") == NULL);
    assert(!anna_store_remove(store, "a"));

    //  Merge semantics: new key, newer value, older value, other kind.
    lat_t v;
    s_lww(&v, 10, "one");
    assert(anna_store_merge(store, "a", &v, 0) == 1);
    lat_fini(&v);
    s_lww(&v, 20, "two");
    assert(anna_store_merge_move(store, "a", &v, ANNA_STORE_MARK) == 1);
    assert(v.kind == LAT_NONE);
    s_lww(&v, 5, "old");
    assert(anna_store_merge(store, "a", &v, ANNA_STORE_MARK) == 0);
    lat_fini(&v);
    const lat_t *got = anna_store_get(store, "a");
    assert(got && got->kind == LAT_LWW && got->u.lww.ts == 20);
    assert(got->u.lww.value.len == 3 && memcmp(got->u.lww.value.data, "two", 3) == 0);
    lat_t set;
    lat_init(&set, LAT_SET);
    lat_set_insert(&set.u.set, "x", 1);
    assert(anna_store_merge(store, "a", &set, 0) == -EINVAL);
    assert(anna_store_merge_move(store, "a", &set, 0) == -EINVAL);
    assert(set.kind == LAT_NONE);
    assert(anna_store_get(store, "a")->kind == LAT_LWW);
    //  An empty value is a value (unlike the original Anna, where it reads as KEY_DNE).
    lat_init(&v, LAT_LWW);
    assert(anna_store_merge_move(store, "empty", &v, 0) == 1);
    assert(anna_store_get(store, "empty") != NULL);
    //  The change set holds each marked key once.
    assert(anna_store_marked(store) == 1);
    anna_store_mark(store, "a");
    anna_store_mark(store, "empty");
    anna_store_mark(store, "absent");
    assert(anna_store_marked(store) == 2);
    size_t visited = 0;
    anna_store_drain_marked(store, s_count_visit, &visited);
    assert(visited == 2 && anna_store_marked(store) == 0);
    anna_store_mark(store, "a");
    anna_store_mark(store, "empty");
    s_remark_t remark = {store, 0};
    anna_store_drain_marked(store, s_remark_visit, &remark);
    assert(remark.visited == 2 && anna_store_marked(store) == 2);
    visited = 0;
    anna_store_drain_marked(store, s_count_visit, &visited);
    assert(visited == 2 && anna_store_marked(store) == 0);
    size_t size = 0;
    assert(anna_store_get_size(store, "a", &size) && size == lat_size(anna_store_get(store, "a")));
    //  Replace wins whatever the order.
    s_lww(&v, 1, "forced");
    anna_store_replace(store, "a", &v, ANNA_STORE_MARK);
    assert(anna_store_get(store, "a")->u.lww.ts == 1);
    assert(anna_store_marked(store) == 1);
    anna_store_destroy(&store);
    anna_store_destroy(&store);

    //  Random operations against a shadow array: inserts, merges, removals (with the change
    //  set), across several rehashes. The seed is printed so a failure can be replayed.
    uint64_t seed = 0x5107e;
    if (verbose)
        printf("  store random ops, seed %" PRIu64 "\n", seed);
    cb_rand_t rnd;
    cb_rand_seed(&rnd, seed);
    enum { NKEYS = 5000 };
    uint64_t *shadow = cb_calloc(NKEYS, sizeof *shadow);     //  ts stored, 0 = absent
    store = anna_store_new(0);
    size_t present = 0;
    for (int op = 0; op < 200000; op++) {
        uint32_t k = (uint32_t)cb_rand_below(&rnd, NKEYS);
        char key[80];
        s_test_key(key, sizeof key, k);
        uint64_t r = cb_rand_below(&rnd, 10);
        if (r < 7) {
            uint64_t ts = 1 + cb_rand_below(&rnd, 1000);
            s_lww(&v, ts, key);
            int rc = anna_store_merge_move(store, key, &v, r < 3 ? ANNA_STORE_MARK : 0);
            if (!shadow[k]) {
                assert(rc == 1);
                present++;
                shadow[k] = ts;
            } else if (ts >= shadow[k]) {
                assert(rc == (ts > shadow[k]));
                shadow[k] = ts;
            } else
                assert(rc == 0);
        } else if (r < 9) {
            bool removed = anna_store_remove(store, key);
            assert(removed == (shadow[k] != 0));
            if (removed)
                present--;
            shadow[k] = 0;
        } else {
            const lat_t *cur = anna_store_get(store, key);
            assert((cur != NULL) == (shadow[k] != 0));
            assert(!cur || cur->u.lww.ts == shadow[k]);
        }
        assert(anna_store_count(store) == present);
        if (op % 20000 == 0) {
            //  Every marked key is present, once.
            size_t n = anna_store_marked(store);
            visited = 0;
            anna_store_drain_marked(store, s_count_visit, &visited);
            assert(visited == n);
        }
    }
    for (uint32_t k = 0; k < NKEYS; k++) {
        char key[80];
        s_test_key(key, sizeof key, k);
        const lat_t *cur = anna_store_get(store, key);
        assert((cur != NULL) == (shadow[k] != 0));
        assert(!cur || cur->u.lww.ts == shadow[k]);
    }
    size_t cursor = 0, iterated = 0;
    const lat_t *val;
    while (anna_store_next(store, &cursor, &val))
        iterated++;
    assert(iterated == present);
    cb_free(shadow);
    anna_store_destroy(&store);

    //  Many keys: bytes grow with the data; a million keys load in well under a second
    //  in a release build.
    store = anna_store_new(16);
    size_t bytes0 = anna_store_bytes(store);
    const int many = 300000;
    for (int i = 0; i < many; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "user%08d", i);
        (void)n;
        s_lww(&v, 1, "value");
        assert(anna_store_merge_move(store, key, &v, 0) == 1);
    }
    assert(anna_store_count(store) == (size_t)many);
    assert(anna_store_bytes(store) > bytes0 + (size_t)many * 12);
    for (int i = 0; i < many; i += 7) {
        char key[32];
        snprintf(key, sizeof key, "user%08d", i);
        assert(anna_store_get(store, key) != NULL);
    }
    assert(anna_store_get(store, "user") == NULL);
    anna_store_destroy(&store);
}
