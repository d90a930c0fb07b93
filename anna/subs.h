//  anna/subs.h: push subscriptions of one worker thread (our extension of the Anna protocol,
//  docs/protocol.md): key -> the update addresses to push its value to when it changes, and
//  the set of subscribed keys changed since the last push. Pure: no I/O, no clock (callers
//  pass `now`). Owned by one worker thread; not thread safe.
//  Costs nothing on the hot path while no key is subscribed, and one hash lookup per
//  changed key otherwise.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_SUBS_H
#define ANNA_SUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Subscribers of one key at most: a cache per node subscribes, so this is the number of
//  nodes whose caches may hold one key.
#define ANNA_SUBS_MAX_PER_KEY 256
//  A subscriber is dropped (every subscription of it) when this many pushes in a row failed
//  and none succeeded for ANNA_SUBS_DEAD_MS: its queue has been full that long, so it is gone
//  or hopelessly behind. A cache that comes back subscribes again at its next miss.
#define ANNA_SUBS_DEAD_FAILURES 64
#define ANNA_SUBS_DEAD_MS 10000

typedef struct _anna_subs_t anna_subs_t;

//  At most max_total subscriptions (key, address pairs) and max_per_key per key (>= 1).
//  max_total 0 refuses every subscription. Caller owns result.
anna_subs_t *anna_subs_new(size_t max_total, size_t max_per_key);
//  Idempotent; sets *self_p to NULL.
void anna_subs_destroy(anna_subs_t **self_p);

//  Subscribes address (copied) to key (copied). now_ms starts the failure clock of a new
//  subscriber. Returns 1 if added, 0 if it was there already, -ENOSPC when max_total
//  subscriptions exist, -EMLINK when key has max_per_key subscribers.
int anna_subs_add(anna_subs_t *self, const char *key, const char *address, int64_t now_ms);
//  Unsubscribes address from key. True if it was subscribed.
bool anna_subs_remove(anna_subs_t *self, const char *key, const char *address);

//  Notes that key's value changed: if anyone subscribes to it, it joins the change set.
void anna_subs_touch(anna_subs_t *self, const char *key);
//  Keys in the change set.
size_t anna_subs_changed(const anna_subs_t *self);
//  Empties the change set, calling fn for each key in it with its subscribers' ids (key and
//  ids borrowed for the call). fn must not change self; results of sends are reported after
//  the drain (anna_subs_result).
typedef void(anna_subs_visit_fn)(void *arg, const char *key, const uint32_t *ids, size_t n);
void anna_subs_drain(anna_subs_t *self, anna_subs_visit_fn *fn, void *arg);

//  The address of subscriber id, NULL if id is no subscriber (any more). Borrowed; valid
//  until the subscriber is removed.
const char *anna_subs_address(const anna_subs_t *self, uint32_t id);
//  Ids are below this bound (for arrays indexed by id). Changes only when a subscriber is
//  added.
uint32_t anna_subs_id_limit(const anna_subs_t *self);
//  Records whether a push to subscriber id was delivered at now_ms. True when the subscriber
//  is dead by the rule above: the caller should anna_subs_drop it.
bool anna_subs_result(anna_subs_t *self, uint32_t id, bool delivered, int64_t now_ms);
//  Removes every subscription of subscriber id (O(subscribed keys)). Returns how many.
size_t anna_subs_drop(anna_subs_t *self, uint32_t id);

//  Subscriptions (key, address pairs), subscribed keys, distinct subscribers.
size_t anna_subs_count(const anna_subs_t *self);
size_t anna_subs_keys(const anna_subs_t *self);
size_t anna_subs_subscribers(const anna_subs_t *self);

void anna_subs_test(bool verbose);

#endif
