//  cache/store.c: entries in a cache_map_t by key and on one doubly linked LRU list (head =
//  most recently used). Each entry counts its own bytes (struct, key, lat_size of the value,
//  encoding), and the store keeps the sum, so accounting is O(1) per change. The encoding is
//  made on the first lookup after a change and kept until the next change: a key read many
//  times between writes is encoded once.
//  SPDX-License-Identifier: Apache-2.0
#include "cache/store.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/map.h"
#include "common/alloc.h"
#include "proto/wire.h"

typedef struct s_entry s_entry_t;
struct s_entry {
    char *key;                  //  owned; the map's key
    lat_t value;                //  LAT_NONE: negative entry
    cb_bytes_t payload;         //  encoding of value; valid when encoded
    bool encoded;
    size_t bytes;               //  what this entry counts for
    int64_t since_ms;
    uint32_t home;
    uint32_t pins;
    s_entry_t *prev;            //  towards the most recently used
    s_entry_t *next;            //  towards the least recently used
};

struct _cache_store_t {
    cache_map_t *map;           //  key -> s_entry_t
    s_entry_t *head;            //  most recently used
    s_entry_t *tail;            //  least recently used
    size_t bytes;
    size_t max_bytes;
};

cache_store_t *cache_store_new(size_t max_bytes)
{
    cache_store_t *self = cb_calloc(1, sizeof *self);
    self->map = cache_map_new();
    self->max_bytes = max_bytes;
    return self;
}

static void s_entry_free(s_entry_t *e)
{
    lat_fini(&e->value);
    cb_bytes_fini(&e->payload);
    cb_free(e->key);
    cb_free(e);
}

void cache_store_destroy(cache_store_t **self_p)
{
    assert(self_p);
    cache_store_t *self = *self_p;
    if (!self)
        return;
    for (s_entry_t *e = self->head, *next; e; e = next) {
        next = e->next;
        s_entry_free(e);
    }
    cache_map_destroy(&self->map);
    cb_free(self);
    *self_p = NULL;
}

//  Recounts e's bytes after a change to its value or encoding.
static void s_account(cache_store_t *self, s_entry_t *e)
{
    size_t bytes = sizeof *e + strlen(e->key) + 1 + e->payload.len;
    if (e->value.kind != LAT_NONE)
        bytes += lat_size(&e->value);
    self->bytes = self->bytes - e->bytes + bytes;
    e->bytes = bytes;
}

static void s_unlink(cache_store_t *self, s_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        self->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        self->tail = e->prev;
    e->prev = e->next = NULL;
}

static void s_push_front(cache_store_t *self, s_entry_t *e)
{
    e->prev = NULL;
    e->next = self->head;
    if (self->head)
        self->head->prev = e;
    else
        self->tail = e;
    self->head = e;
}

//  The value changed: the kept encoding is stale.
static void s_changed(cache_store_t *self, s_entry_t *e)
{
    cb_bytes_fini(&e->payload);
    e->encoded = false;
    s_account(self, e);
}

static void s_view(s_entry_t *e, cache_view_t *view)
{
    if (!view)
        return;
    view->value = &e->value;
    view->payload = &e->payload;
    view->since_ms = e->since_ms;
    view->home = e->home;
    view->pins = e->pins;
}

static bool s_lookup(cache_store_t *self, const char *key, cache_view_t *view, bool touch)
{
    assert(self && key);
    s_entry_t *e = cache_map_get(self->map, key);
    if (!e)
        return false;
    if (touch && self->head != e) {
        s_unlink(self, e);
        s_push_front(self, e);
    }
    if (view && !e->encoded && e->value.kind != LAT_NONE) {
        int rc = wire_encode(&e->value, &e->payload);
        assert(rc == 0);            //  values come from wire_decode or merges of them
        (void)rc;
        e->encoded = true;
        s_account(self, e);
    }
    s_view(e, view);
    return true;
}

bool cache_store_get(cache_store_t *self, const char *key, cache_view_t *view)
{
    return s_lookup(self, key, view, true);
}

bool cache_store_peek(cache_store_t *self, const char *key, cache_view_t *view)
{
    return s_lookup(self, key, view, false);
}

void cache_store_put(cache_store_t *self, const char *key, lat_t *value, uint32_t home,
                     int64_t now_ms)
{
    assert(self && key && value);
    s_entry_t *e = cache_map_get(self->map, key);
    if (e) {
        lat_fini(&e->value);
        s_unlink(self, e);
    } else {
        e = cb_calloc(1, sizeof *e);
        e->key = cb_strdup(key);
        cache_map_put(self->map, e->key, e);
    }
    e->value = *value;
    memset(value, 0, sizeof *value);
    e->home = home;
    e->since_ms = now_ms;
    s_push_front(self, e);
    s_changed(self, e);
}

int cache_store_merge(cache_store_t *self, const char *key, const lat_t *value)
{
    assert(self && key && value && value->kind != LAT_NONE);
    s_entry_t *e = cache_map_get(self->map, key);
    if (!e)
        return -ENOENT;
    if (e->value.kind == LAT_NONE) {
        lat_copy(&e->value, value);
        s_changed(self, e);
        return 1;
    }
    int rc = lat_merge(&e->value, value);
    if (rc == 1)
        s_changed(self, e);
    return rc;
}

static void s_remove(cache_store_t *self, s_entry_t *e)
{
    cache_map_remove(self->map, e->key);
    s_unlink(self, e);
    self->bytes -= e->bytes;
    s_entry_free(e);
}

bool cache_store_remove(cache_store_t *self, const char *key)
{
    s_entry_t *e = cache_map_get(self->map, key);
    if (!e)
        return false;
    s_remove(self, e);
    return true;
}

bool cache_store_pin(cache_store_t *self, const char *key, int delta)
{
    assert(delta == 1 || delta == -1);
    s_entry_t *e = cache_map_get(self->map, key);
    if (!e)
        return false;
    assert(delta > 0 || e->pins > 0);
    e->pins = (uint32_t)((int64_t)e->pins + delta);
    return true;
}

size_t cache_store_evict(cache_store_t *self, cache_store_evict_fn *fn, void *arg)
{
    size_t evicted = 0;
    //  From the least recently used end, stepping over pinned entries: pins are few (one per
    //  write in flight), so the walk is short.
    s_entry_t *e = self->tail;
    while (self->bytes > self->max_bytes && e) {
        s_entry_t *prev = e->prev;
        if (e->pins == 0) {
            if (fn)
                fn(arg, e->key, e->home);
            s_remove(self, e);
            evicted++;
        }
        e = prev;
    }
    return evicted;
}

size_t cache_store_count(const cache_store_t *self)
{
    return cache_map_count(self->map);
}

size_t cache_store_bytes(const cache_store_t *self)
{
    return self->bytes;
}

size_t cache_store_max_bytes(const cache_store_t *self)
{
    return self->max_bytes;
}

void cache_store_keys(const cache_store_t *self, size_t max, cache_store_key_fn *fn, void *arg)
{
    size_t n = 0;
    for (const s_entry_t *e = self->head; e && n < max; e = e->next, n++)
        fn(arg, e->key);
}

//  ---- self-test ----------------------------------------------------------------------------

static void s_lww(lat_t *v, uint64_t ts, const char *text)
{
    lat_init(v, LAT_LWW);
    lat_lww_assign(v, ts, 1, text, strlen(text));
}

typedef struct {
    char keys[16][16];
    uint32_t homes[16];
    size_t n;
} s_seen_t;

static void s_on_evict(void *arg, const char *key, uint32_t home)
{
    s_seen_t *seen = arg;
    assert(seen->n < 16);
    snprintf(seen->keys[seen->n], sizeof seen->keys[0], "%s", key);
    seen->homes[seen->n++] = home;
}

static void s_on_key(void *arg, const char *key)
{
    s_on_evict(arg, key, 0);
}

void cache_store_test(bool verbose)
{
    //  @selftest
    //  Entries of equal size: the bound then holds a known number of them.
    lat_t v;
    cache_store_t *probe = cache_store_new(SIZE_MAX);
    s_lww(&v, 1, "0123456789");
    cache_store_put(probe, "k0", &v, 0, 0);
    cache_view_t view;
    assert(cache_store_get(probe, "k0", &view));       //  counts the encoding too
    size_t one = cache_store_bytes(probe);
    cache_store_destroy(&probe);

    cache_store_t *store = cache_store_new(3 * one);
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        s_lww(&v, 1, "0123456789");
        cache_store_put(store, key, &v, (uint32_t)i, 100 + i);
        assert(v.kind == LAT_NONE);                     //  taken
        assert(cache_store_get(store, key, &view));
    }
    assert(cache_store_count(store) == 3 && cache_store_bytes(store) == 3 * one);
    s_seen_t seen = {0};
    assert(cache_store_evict(store, s_on_evict, &seen) == 0);    //  within the bound

    //  LRU order: k0 was used last now, so k1 goes first when k3 comes in.
    assert(cache_store_get(store, "k0", &view) && view.home == 0 && view.since_ms == 100);
    assert(view.value->kind == LAT_LWW && view.payload->len > 0);
    lat_t back;
    assert(wire_decode(LAT_LWW, view.payload->data, view.payload->len, &back) == 0);
    assert(lat_equal(&back, view.value));
    lat_fini(&back);
    assert(cache_store_peek(store, "k1", NULL));          //  peek does not touch
    s_lww(&v, 1, "0123456789");
    cache_store_put(store, "k3", &v, 3, 103);
    assert(cache_store_get(store, "k3", &view));
    assert(cache_store_evict(store, s_on_evict, &seen) == 1);
    assert(seen.n == 1 && !strcmp(seen.keys[0], "k1") && seen.homes[0] == 1);
    assert(!cache_store_get(store, "k1", NULL));
    assert(cache_store_bytes(store) <= cache_store_max_bytes(store));

    //  Pinned entries are never evicted: k2 is the oldest but pinned, so k0 goes.
    assert(cache_store_pin(store, "k2", 1));
    assert(!cache_store_pin(store, "absent", 1));
    s_lww(&v, 1, "0123456789");
    cache_store_put(store, "k4", &v, 4, 104);
    assert(cache_store_get(store, "k4", &view));
    seen.n = 0;
    assert(cache_store_evict(store, s_on_evict, &seen) == 1 && !strcmp(seen.keys[0], "k0"));
    assert(cache_store_get(store, "k2", NULL));
    //  With every entry pinned the store stays over its bound, and evicts once unpinned.
    assert(cache_store_pin(store, "k3", 1) && cache_store_pin(store, "k4", 1));
    s_lww(&v, 1, "0123456789");
    cache_store_put(store, "k5", &v, 5, 105);
    assert(cache_store_pin(store, "k5", 1));
    assert(cache_store_get(store, "k5", &view) && view.pins == 1);
    seen.n = 0;
    assert(cache_store_evict(store, s_on_evict, &seen) == 0);
    assert(cache_store_bytes(store) > cache_store_max_bytes(store));
    assert(cache_store_pin(store, "k3", -1));
    assert(cache_store_evict(store, s_on_evict, &seen) == 1 && !strcmp(seen.keys[0], "k3"));
    assert(cache_store_pin(store, "k2", -1) && cache_store_pin(store, "k4", -1));
    assert(cache_store_pin(store, "k5", -1));

    //  Merge: grows the value and its bytes, drops the stale encoding; no change, no work.
    size_t before = cache_store_bytes(store);
    s_lww(&v, 2, "a much longer value than the one before it");
    assert(cache_store_merge(store, "k4", &v) == 1);
    assert(cache_store_merge(store, "k4", &v) == 0);
    assert(cache_store_get(store, "k4", &view) && lat_equal(view.value, &v));
    assert(cache_store_bytes(store) > before);
    assert(wire_decode(LAT_LWW, view.payload->data, view.payload->len, &back) == 0);
    assert(lat_equal(&back, &v));
    lat_fini(&back);
    assert(cache_store_merge(store, "absent", &v) == -ENOENT);
    lat_fini(&v);
    lat_init(&v, LAT_SET);
    assert(cache_store_merge(store, "k4", &v) == -EINVAL);
    lat_fini(&v);

    //  Negative entries: no value, no encoding; a merge turns one into the value.
    lat_init(&v, LAT_NONE);
    cache_store_put(store, "gone", &v, 9, 200);
    assert(cache_store_get(store, "gone", &view) && view.value->kind == LAT_NONE);
    assert(view.payload->len == 0 && view.since_ms == 200 && view.home == 9);
    s_lww(&v, 5, "now here");
    assert(cache_store_merge(store, "gone", &v) == 1);
    assert(cache_store_get(store, "gone", &view) && lat_equal(view.value, &v));
    lat_fini(&v);
    //  put replaces whatever kind was there.
    lat_init(&v, LAT_SET);
    lat_set_insert(&v.u.set, "x", 1);
    cache_store_put(store, "gone", &v, 9, 300);
    assert(cache_store_get(store, "gone", &view) && view.value->kind == LAT_SET);

    //  Keys most recently used first.
    seen.n = 0;
    cache_store_keys(store, 2, s_on_key, &seen);
    assert(seen.n == 2 && !strcmp(seen.keys[0], "gone") && !strcmp(seen.keys[1], "k4"));

    //  Removing everything brings the bytes back to zero.
    assert(cache_store_remove(store, "gone") && !cache_store_remove(store, "gone"));
    cache_store_t *empty = cache_store_new(0);
    lat_init(&v, LAT_NONE);
    cache_store_put(empty, "x", &v, 0, 0);
    assert(cache_store_evict(empty, NULL, NULL) == 1);
    assert(cache_store_count(empty) == 0 && cache_store_bytes(empty) == 0);
    cache_store_destroy(&empty);
    cache_store_destroy(&store);
    cache_store_destroy(&store);
    //  @end
    if (verbose)
        printf("  store ok: an entry of a 10-byte LWW value counts %zu bytes\n", one);
}
