//  scheduler/policy.c: executors and nodes in growable arrays, looked up by name through
//  tables holding number + 1. A pick is one pass over the candidates; the node hit counts
//  are memoised per pick (stamped with a pick counter, so nothing is cleared between picks)
//  because many executors share a node. No allocation on the pick path.
//  SPDX-License-Identifier: Apache-2.0
#include "scheduler/policy.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/rand.h"

struct _sched_policy_t {
    sched_policy_config_t config;
    cb_rand_t rand;
    sched_exec_t *execs;
    size_t nexecs;
    size_t execs_cap;
    sched_table_t *exec_index;  //  id -> number + 1
    sched_node_t *nodes;
    size_t nnodes;
    size_t nodes_cap;
    sched_table_t *node_index;  //  name -> number + 1
    //  Per-node memo of the current pick's hit count, valid when stamp == pick_stamp.
    size_t *hits;
    uint64_t *stamp;
    uint64_t pick_stamp;
};

sched_policy_t *sched_policy_new(const sched_policy_config_t *config)
{
    assert(config && config->dead_ms > 0 && config->random_pct >= 0 && config->random_pct <= 100);
    sched_policy_t *self = cb_calloc(1, sizeof *self);
    self->config = *config;
    cb_rand_seed(&self->rand, config->seed);
    self->exec_index = sched_table_new(NULL);
    self->node_index = sched_table_new(NULL);
    return self;
}

void sched_policy_destroy(sched_policy_t **self_p)
{
    assert(self_p);
    sched_policy_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nexecs; i++) {
        cb_free(self->execs[i].id);
        cb_free(self->execs[i].address);
    }
    for (size_t i = 0; i < self->nnodes; i++) {
        cb_free(self->nodes[i].name);
        cb_free(self->nodes[i].cache_address);
        sched_table_destroy(&self->nodes[i].keys);
    }
    cb_free(self->execs);
    cb_free(self->nodes);
    cb_free(self->hits);
    cb_free(self->stamp);
    sched_table_destroy(&self->exec_index);
    sched_table_destroy(&self->node_index);
    cb_free(self);
    *self_p = NULL;
}

//  ---- reports ------------------------------------------------------------------------------

static uint32_t s_node_number(sched_policy_t *self, const char *name)
{
    void *v = sched_table_get(self->node_index, name);
    if (v)
        return (uint32_t)((uintptr_t)v - 1);
    if (self->nnodes == self->nodes_cap) {
        self->nodes_cap = self->nodes_cap ? self->nodes_cap * 2 : 8;
        self->nodes = cb_realloc(self->nodes, self->nodes_cap * sizeof *self->nodes);
        self->hits = cb_realloc(self->hits, self->nodes_cap * sizeof *self->hits);
        self->stamp = cb_realloc(self->stamp, self->nodes_cap * sizeof *self->stamp);
    }
    uint32_t n = (uint32_t)self->nnodes++;
    sched_node_t *node = &self->nodes[n];
    memset(node, 0, sizeof *node);
    node->name = cb_strdup(name);
    node->cache_address = cb_strdup("");
    node->keys = sched_table_new(NULL);
    self->stamp[n] = 0;
    sched_table_put(self->node_index, name, (void *)(uintptr_t)(n + 1));
    return n;
}

sched_exec_event_t sched_policy_report(sched_policy_t *self, const sched_exec_report_t *report,
                                       int64_t now, uint32_t *index, bool *moved)
{
    assert(self && report && report->id && report->address && report->node && index);
    sched_exec_event_t event = SCHED_EXEC_SAME;
    void *v = sched_table_get(self->exec_index, report->id);
    uint32_t i;
    if (v)
        i = (uint32_t)((uintptr_t)v - 1);
    else {
        if (self->nexecs == self->execs_cap) {
            self->execs_cap = self->execs_cap ? self->execs_cap * 2 : 8;
            self->execs = cb_realloc(self->execs, self->execs_cap * sizeof *self->execs);
        }
        i = (uint32_t)self->nexecs++;
        memset(&self->execs[i], 0, sizeof self->execs[i]);
        self->execs[i].id = cb_strdup(report->id);
        self->execs[i].address = cb_strdup(report->address);
        sched_table_put(self->exec_index, report->id, (void *)(uintptr_t)(i + 1));
        event = SCHED_EXEC_NEW;
    }
    sched_exec_t *e = &self->execs[i];
    if (event != SCHED_EXEC_NEW && e->incarnation != report->incarnation)
        event = SCHED_EXEC_RESTARTED;
    bool changed = strcmp(e->address, report->address) != 0;
    if (changed) {
        cb_free(e->address);
        e->address = cb_strdup(report->address);
    }
    if (moved)
        *moved = changed;
    e->node = s_node_number(self, report->node);
    e->utilization = report->utilization;
    e->queued = report->queued;
    e->calls = report->calls;
    e->incarnation = report->incarnation;
    e->last_report_ms = now;
    e->sent = 0;
    e->declared_dead = false;
    *index = i;
    return event;
}

void sched_policy_report_node(sched_policy_t *self, const char *node, const char *cache_address,
                              uint64_t cached_keys, uint64_t cached_bytes,
                              const char *const *keys, size_t nkeys, int64_t now)
{
    assert(self && node && cache_address && (nkeys == 0 || keys));
    //  Numbered first: s_node_number may move the array, and the order in which an
    //  expression like &self->nodes[s_node_number(...)] reads self->nodes is unspecified.
    uint32_t number = s_node_number(self, node);
    sched_node_t *n = &self->nodes[number];
    if (strcmp(n->cache_address, cache_address) != 0) {
        cb_free(n->cache_address);
        n->cache_address = cb_strdup(cache_address);
    }
    n->cached_keys = cached_keys;
    n->cached_bytes = cached_bytes;
    n->last_report_ms = now;
    sched_table_clear(n->keys);
    for (size_t k = 0; k < nkeys; k++)
        sched_table_put(n->keys, keys[k], NULL);
}

//  ---- queries ------------------------------------------------------------------------------

size_t sched_policy_count(const sched_policy_t *self)
{
    assert(self);
    return self->nexecs;
}

sched_exec_t *sched_policy_executor(sched_policy_t *self, uint32_t index)
{
    assert(self && index < self->nexecs);
    return &self->execs[index];
}

int sched_policy_find(const sched_policy_t *self, const char *id)
{
    assert(self && id);
    void *v = sched_table_get(self->exec_index, id);
    return v ? (int)((uintptr_t)v - 1) : -1;
}

bool sched_policy_alive(const sched_policy_t *self, uint32_t index, int64_t now)
{
    assert(self && index < self->nexecs);
    return now - self->execs[index].last_report_ms <= self->config.dead_ms;
}

size_t sched_policy_alive_count(const sched_policy_t *self, int64_t now)
{
    assert(self);
    size_t n = 0;
    for (size_t i = 0; i < self->nexecs; i++)
        n += sched_policy_alive(self, (uint32_t)i, now);
    return n;
}

size_t sched_policy_node_count(const sched_policy_t *self)
{
    assert(self);
    return self->nnodes;
}

const sched_node_t *sched_policy_node(const sched_policy_t *self, uint32_t node)
{
    assert(self && node < self->nnodes);
    return &self->nodes[node];
}

size_t sched_policy_node_hits(const sched_policy_t *self, uint32_t node,
                              const char *const *refs, size_t n)
{
    assert(self && node < self->nnodes);
    const sched_table_t *keys = self->nodes[node].keys;
    if (sched_table_size(keys) == 0)
        return 0;
    size_t hits = 0;
    for (size_t r = 0; r < n; r++)
        hits += sched_table_contains(keys, refs[r]);
    return hits;
}

void sched_policy_pinned_add(sched_policy_t *self, uint32_t index, int delta)
{
    assert(self && index < self->nexecs);
    sched_exec_t *e = &self->execs[index];
    if (delta < 0 && (uint32_t)-delta > e->pinned)
        e->pinned = 0;
    else
        e->pinned = (uint32_t)((int64_t)e->pinned + delta);
}

//  ---- decisions ----------------------------------------------------------------------------

static double s_load(const sched_exec_t *e)
{
    return (double)e->queued + (double)e->sent + e->utilization;
}

static size_t s_hits(sched_policy_t *self, uint32_t node, const char *const *refs, size_t n)
{
    if (self->stamp[node] != self->pick_stamp) {
        self->hits[node] = sched_policy_node_hits(self, node, refs, n);
        self->stamp[node] = self->pick_stamp;
    }
    return self->hits[node];
}

int sched_policy_pick(sched_policy_t *self, int64_t now, const uint32_t *candidates,
                      size_t ncandidates, const char *const *refs, size_t nrefs)
{
    assert(self && (nrefs == 0 || refs));
    size_t n = candidates ? ncandidates : self->nexecs;
    size_t eligible = 0;
    for (size_t c = 0; c < n; c++) {
        uint32_t i = candidates ? candidates[c] : (uint32_t)c;
        assert(i < self->nexecs);
        eligible += sched_policy_alive(self, i, now);
    }
    if (eligible == 0)
        return -1;
    int chosen = -1;
    if (self->config.random_pct > 0 &&
        cb_rand_below(&self->rand, 100) < (uint64_t)self->config.random_pct) {
        uint64_t k = cb_rand_below(&self->rand, eligible);
        for (size_t c = 0; c < n && chosen < 0; c++) {
            uint32_t i = candidates ? candidates[c] : (uint32_t)c;
            if (sched_policy_alive(self, i, now) && k-- == 0)
                chosen = (int)i;
        }
    } else {
        self->pick_stamp++;
        size_t best_hits = 0, ties = 0;
        double best_load = 0;
        for (size_t c = 0; c < n; c++) {
            uint32_t i = candidates ? candidates[c] : (uint32_t)c;
            if (!sched_policy_alive(self, i, now))
                continue;
            const sched_exec_t *e = &self->execs[i];
            size_t hits = nrefs ? s_hits(self, e->node, refs, nrefs) : 0;
            double load = s_load(e);
            bool better = chosen < 0 || hits > best_hits ||
                          (hits == best_hits && load < best_load);
            bool tie = chosen >= 0 && hits == best_hits && load == best_load;
            if (better) {
                chosen = (int)i;
                best_hits = hits;
                best_load = load;
                ties = 1;
            } else if (tie && cb_rand_below(&self->rand, ++ties) == 0) {
                chosen = (int)i;     //  reservoir sampling: each tie equally likely
            }
        }
    }
    assert(chosen >= 0);
    self->execs[chosen].sent++;
    return chosen;
}

size_t sched_policy_pin_targets(sched_policy_t *self, int64_t now, size_t n,
                                const uint32_t *exclude, size_t nexclude, uint32_t *out)
{
    assert(self && (nexclude == 0 || exclude) && (n == 0 || out));
    //  node_pins[node] = pins of this function on the node so far (existing, then chosen).
    //  Not the call path: pinning happens at registration and repair, so allocating is fine.
    uint32_t *node_pins = cb_calloc(self->nnodes ? self->nnodes : 1, sizeof *node_pins);
    bool *taken = cb_calloc(self->nexecs ? self->nexecs : 1, sizeof *taken);
    for (size_t x = 0; x < nexclude; x++) {
        assert(exclude[x] < self->nexecs);
        taken[exclude[x]] = true;
        node_pins[self->execs[exclude[x]].node]++;
    }
    size_t found = 0;
    while (found < n) {
        int best = -1;
        size_t ties = 0;
        for (size_t i = 0; i < self->nexecs; i++) {
            if (taken[i] || !sched_policy_alive(self, (uint32_t)i, now))
                continue;
            const sched_exec_t *e = &self->execs[i];
            if (best < 0) {
                best = (int)i;
                ties = 1;
                continue;
            }
            const sched_exec_t *b = &self->execs[best];
            uint32_t en = node_pins[e->node], bn = node_pins[b->node];
            if (en < bn || (en == bn && e->pinned < b->pinned)) {
                best = (int)i;
                ties = 1;
            } else if (en == bn && e->pinned == b->pinned &&
                       cb_rand_below(&self->rand, ++ties) == 0) {
                best = (int)i;
            }
        }
        if (best < 0)
            break;
        taken[best] = true;
        node_pins[self->execs[best].node]++;
        out[found++] = (uint32_t)best;
    }
    cb_free(node_pins);
    cb_free(taken);
    return found;
}

size_t sched_policy_sweep(sched_policy_t *self, int64_t now, uint32_t *out, size_t cap)
{
    assert(self && (cap == 0 || out));
    size_t n = 0;
    for (size_t i = 0; i < self->nexecs && n < cap; i++) {
        sched_exec_t *e = &self->execs[i];
        if (!e->declared_dead && !sched_policy_alive(self, (uint32_t)i, now)) {
            e->declared_dead = true;
            out[n++] = (uint32_t)i;
        }
    }
    return n;
}

//  ---- self-test ----------------------------------------------------------------------------

static uint32_t s_report(sched_policy_t *p, const char *id, const char *node, double util,
                         uint32_t queued, uint32_t incarnation, int64_t now)
{
    char address[64];
    snprintf(address, sizeof address, "tcp://127.0.0.1:%d", 7000 + (int)incarnation);
    sched_exec_report_t r = {id, address, node, util, queued, 0, incarnation};
    uint32_t index;
    sched_policy_report(p, &r, now, &index, NULL);
    return index;
}

void sched_policy_test(bool verbose)
{
    //  @selftest
    sched_policy_config_t config = {.dead_ms = 3000, .random_pct = 0, .seed = 42};
    sched_policy_t *p = sched_policy_new(&config);
    assert(sched_policy_pick(p, 0, NULL, 0, NULL, 0) == -1);      //  nobody to run on
    //  A cache may report before any executor of its node (and before any node exists),
    //  and nodes keep coming: their array grows under the reports.
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof name, "early%d", i);
        sched_policy_report_node(p, name, "ipc:///tmp/cache", 0, 0, NULL, 0, 0);
    }
    assert(sched_policy_node_count(p) == 20);
    assert(strcmp(sched_policy_node(p, 19)->name, "early19") == 0);
    sched_policy_destroy(&p);
    p = sched_policy_new(&config);

    //  Reports: numbering, restart detection, moves.
    sched_exec_report_t r = {"n0/0", "tcp://127.0.0.1:7001", "n0", 0, 0, 0, 1};
    uint32_t a, b, c;
    bool moved = true;
    assert(sched_policy_report(p, &r, 1000, &a, &moved) == SCHED_EXEC_NEW && a == 0 && !moved);
    assert(sched_policy_report(p, &r, 1100, &a, &moved) == SCHED_EXEC_SAME && !moved);
    r.incarnation = 2;
    r.address = "tcp://127.0.0.1:7002";
    assert(sched_policy_report(p, &r, 1200, &a, &moved) == SCHED_EXEC_RESTARTED && moved);
    assert(a == 0 && strcmp(sched_policy_executor(p, a)->address, r.address) == 0);
    assert(sched_policy_find(p, "n0/0") == 0 && sched_policy_find(p, "n9/9") == -1);
    b = s_report(p, "n0/1", "n0", 0, 0, 1, 1200);
    c = s_report(p, "n1/0", "n1", 0, 0, 1, 1200);
    assert(b == 1 && c == 2 && sched_policy_node_count(p) == 2);
    assert(sched_policy_executor(p, c)->node == 1);

    //  Locality: the executor whose node caches the call's refs wins over idle ones.
    const char *keys[] = {"big", "other"};
    sched_policy_report_node(p, "n1", "tcp://127.0.0.1:9000", 2, 1 << 20, keys, 2, 1200);
    assert(strcmp(sched_policy_node(p, 1)->cache_address, "tcp://127.0.0.1:9000") == 0);
    const char *refs[] = {"big"};
    for (int i = 0; i < 20; i++)
        assert(sched_policy_pick(p, 1300, NULL, 0, refs, 1) == (int)c);
    assert(sched_policy_node_hits(p, 1, refs, 1) == 1 && sched_policy_node_hits(p, 0, refs, 1) == 0);
    //  More hits beat fewer: n0 caches both keys of a two-ref call, n1 only one.
    const char *both[] = {"big", "small"};
    const char *n0_keys[] = {"big", "small"};
    sched_policy_report_node(p, "n0", "tcp://127.0.0.1:9001", 2, 10, n0_keys, 2, 1300);
    int got = sched_policy_pick(p, 1300, NULL, 0, both, 2);
    assert(got == (int)a || got == (int)b);
    //  A new key set replaces the old one.
    sched_policy_report_node(p, "n1", "tcp://127.0.0.1:9000", 0, 0, NULL, 0, 1400);
    assert(sched_policy_node_hits(p, 1, refs, 1) == 0);

    //  Load: fresh reports (sent reset); the least loaded executor wins, and picks count as
    //  load until the next report, so equal executors share the calls.
    s_report(p, "n0/0", "n0", 0.9, 4, 2, 2000);
    s_report(p, "n0/1", "n0", 0.1, 0, 1, 2000);
    s_report(p, "n1/0", "n1", 0.5, 2, 1, 2000);
    assert(sched_policy_pick(p, 2000, NULL, 0, NULL, 0) == (int)b);
    assert(sched_policy_pick(p, 2000, NULL, 0, NULL, 0) == (int)b);     //  load 1.1 < 2.5
    s_report(p, "n0/0", "n0", 0, 0, 2, 2000);
    s_report(p, "n0/1", "n0", 0, 0, 1, 2000);
    s_report(p, "n1/0", "n1", 0, 0, 1, 2000);
    int count[3] = {0, 0, 0};
    for (int i = 0; i < 30; i++)
        count[sched_policy_pick(p, 2000, NULL, 0, NULL, 0)]++;
    assert(count[0] == 10 && count[1] == 10 && count[2] == 10);
    //  Candidates restrict the choice.
    uint32_t only_c[] = {c};
    assert(sched_policy_pick(p, 2000, only_c, 1, NULL, 0) == (int)c);
    assert(sched_policy_pick(p, 2000, only_c, 0, NULL, 0) == -1);

    //  Dead executors: no report for more than dead_ms. n0/0 and n0/1 last reported at 2000,
    //  n1/0 reports again at 4000; at 5001 only n1/0 is alive.
    s_report(p, "n1/0", "n1", 0, 0, 1, 4000);
    assert(sched_policy_alive(p, a, 5000) && !sched_policy_alive(p, a, 5001));
    assert(sched_policy_alive_count(p, 5001) == 1);
    for (int i = 0; i < 20; i++)
        assert(sched_policy_pick(p, 5001, NULL, 0, NULL, 0) == (int)c);
    uint32_t dead[4];
    uint32_t ab[] = {a, b};
    assert(sched_policy_pick(p, 5001, ab, 2, NULL, 0) == -1);
    assert(sched_policy_sweep(p, 5001, dead, 4) == 2 && dead[0] == a && dead[1] == b);
    assert(sched_policy_sweep(p, 5002, dead, 4) == 0);                  //  once each
    s_report(p, "n0/0", "n0", 0, 0, 2, 5100);                          //  back
    assert(sched_policy_alive(p, a, 5100) && !sched_policy_executor(p, a)->declared_dead);
    assert(sched_policy_sweep(p, 9000, dead, 1) == 1);                  //  capped at 1
    sched_policy_destroy(&p);
    sched_policy_destroy(&p);

    //  Pin targets: spread over nodes, then least pinned; never an excluded or dead one.
    p = sched_policy_new(&config);
    uint32_t e00 = s_report(p, "n0/0", "n0", 0, 0, 1, 0);
    uint32_t e01 = s_report(p, "n0/1", "n0", 0, 0, 1, 0);
    uint32_t e10 = s_report(p, "n1/0", "n1", 0, 0, 1, 0);
    uint32_t e11 = s_report(p, "n1/1", "n1", 0, 0, 1, 0);
    uint32_t out[4];
    assert(sched_policy_pin_targets(p, 0, 2, NULL, 0, out) == 2);
    assert(sched_policy_executor(p, out[0])->node != sched_policy_executor(p, out[1])->node);
    sched_policy_pinned_add(p, e00, 3);
    sched_policy_pinned_add(p, e10, 1);
    assert(sched_policy_pin_targets(p, 0, 2, NULL, 0, out) == 2);
    //  The least pinned of each node (which node comes first is a coin toss).
    assert((out[0] == e11 && out[1] == e01) || (out[0] == e01 && out[1] == e11));
    uint32_t have[] = {e11};
    assert(sched_policy_pin_targets(p, 0, 1, have, 1, out) == 1 && out[0] == e01);
    assert(sched_policy_pin_targets(p, 0, 9, NULL, 0, out) == 4);       //  as many as alive
    sched_policy_pinned_add(p, e00, -10);
    assert(sched_policy_executor(p, e00)->pinned == 0);
    assert(sched_policy_pin_targets(p, 10000, 2, NULL, 0, out) == 0);   //  all dead
    sched_policy_destroy(&p);

    //  Randomness: with random_pct 100 every alive executor gets calls whatever its load or
    //  locality; the same seed gives the same sequence, another seed another one.
    config.random_pct = 100;
    int seq[2][64];
    for (int run = 0; run < 3; run++) {
        config.seed = run < 2 ? 7 : 8;
        p = sched_policy_new(&config);
        s_report(p, "n0/0", "n0", 0.9, 50, 1, 0);
        s_report(p, "n0/1", "n0", 0, 0, 1, 0);
        s_report(p, "n1/0", "n1", 0, 0, 1, 0);
        int hist[3] = {0, 0, 0};
        bool same = true;
        for (int i = 0; i < 64; i++) {
            int pick = sched_policy_pick(p, 0, NULL, 0, NULL, 0);
            hist[pick]++;
            if (run < 2)
                seq[run][i] = pick;
            else
                same = same && seq[0][i] == pick;
        }
        assert(hist[0] > 5 && hist[1] > 5 && hist[2] > 5);
        if (run == 1)
            assert(memcmp(seq[0], seq[1], sizeof seq[0]) == 0);
        if (run == 2)
            assert(!same);
        sched_policy_destroy(&p);
    }
    //  The default share (20%): locality still wins most calls, not all.
    config.random_pct = 20;
    config.seed = 1;
    p = sched_policy_new(&config);
    s_report(p, "n0/0", "n0", 0, 0, 1, 0);
    s_report(p, "n0/1", "n0", 0, 0, 1, 0);
    c = s_report(p, "n1/0", "n1", 0, 0, 1, 0);
    sched_policy_report_node(p, "n1", "", 1, 1, keys, 1, 0);
    int local = 0;
    for (int i = 0; i < 1000; i++)
        local += sched_policy_pick(p, 0, NULL, 0, refs, 1) == (int)c;
    assert(local > 800 && local < 950);     //  expected 800 + 200/3
    sched_policy_destroy(&p);
    //  @end
    if (verbose)
        printf("  policy ok (%d of 1000 calls local at 20%% random)\n", local);
}
