//  executor/queue.c: schedules and triggers of DAG calls (see queue.h). Pure.
//
//  Entries live in a chained hash table keyed by (id, function) and on one list ordered by
//  deadline (tombstones by the time they are forgotten). Deadlines of one executor mostly
//  grow with arrival time, so an insertion walks back from the tail a step or two.
//  SPDX-License-Identifier: Apache-2.0
#include "executor/queue.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

typedef struct {
    char *source;      //  owned: the upstream function this slot is for
    bool have;         //  its trigger came
    cb_bytes_t result; //  owned
    char **logs;       //  owned lines
    size_t n_logs;
} s_input_t;

typedef struct s_entry_s s_entry_t;
struct s_entry_s {
    s_entry_t *chain;       //  hash chain
    s_entry_t *prev, *next; //  deadline list
    char *id;               //  owned
    char *function;         //  owned
    uint64_t hash;
    int64_t deadline;  //  waiting: when it expires; tombstone: when it is forgotten
    int64_t span;      //  how long it could wait (tombstones live as long)
    bool done;         //  a tombstone: fired, cancelled or expired
    bool cancelled;    //  the tombstone is for a cancelled call
    void *schedule;    //  owned; NULL until the schedule came
    s_input_t *inputs; //  with a schedule: one slot per incoming edge, in edge order;
    size_t n_inputs;   //  before: the early triggers, in arrival order
    size_t n_have;     //  slots filled
};

struct _exec_queue_t {
    exec_queue_free_fn *free_schedule;
    s_entry_t **buckets;
    size_t n_buckets;
    size_t n_entries; //  tombstones included
    size_t n_waiting;
    s_entry_t *head, *tail; //  deadline list, earliest first
};

static uint64_t s_hash(const char *id, const char *function)
{
    //  FNV-1a over id, a separator byte no string holds, and function.
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
    for (const char *p = function; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    return h;
}

static void s_input_fini(s_input_t *in)
{
    cb_free(in->source);
    cb_bytes_fini(&in->result);
    for (size_t i = 0; i < in->n_logs; i++)
        cb_free(in->logs[i]);
    cb_free(in->logs);
    memset(in, 0, sizeof *in);
}

static void s_inputs_free(s_input_t *inputs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s_input_fini(&inputs[i]);
    cb_free(inputs);
}

static void s_list_unlink(exec_queue_t *self, s_entry_t *e)
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

static void s_list_insert(exec_queue_t *self, s_entry_t *e)
{
    s_entry_t *after = self->tail;
    while (after && after->deadline > e->deadline)
        after = after->prev;
    e->prev = after;
    e->next = after ? after->next : self->head;
    if (e->next)
        e->next->prev = e;
    else
        self->tail = e;
    if (after)
        after->next = e;
    else
        self->head = e;
}

static void s_set_deadline(exec_queue_t *self, s_entry_t *e, int64_t deadline)
{
    s_list_unlink(self, e);
    e->deadline = deadline;
    s_list_insert(self, e);
}

static void s_grow(exec_queue_t *self)
{
    size_t n = self->n_buckets * 2;
    s_entry_t **buckets = cb_calloc(n, sizeof *buckets);
    for (size_t b = 0; b < self->n_buckets; b++) {
        for (s_entry_t *e = self->buckets[b], *next; e; e = next) {
            next = e->chain;
            e->chain = buckets[e->hash % n];
            buckets[e->hash % n] = e;
        }
    }
    cb_free(self->buckets);
    self->buckets = buckets;
    self->n_buckets = n;
}

static s_entry_t *s_find(const exec_queue_t *self, const char *id, const char *function)
{
    uint64_t h = s_hash(id, function);
    for (s_entry_t *e = self->buckets[h % self->n_buckets]; e; e = e->chain)
        if (e->hash == h && !strcmp(e->id, id) && !strcmp(e->function, function))
            return e;
    return NULL;
}

static s_entry_t *s_add(exec_queue_t *self, const char *id, const char *function, int64_t deadline,
                        int64_t now)
{
    if (self->n_entries >= self->n_buckets)
        s_grow(self);
    s_entry_t *e = cb_calloc(1, sizeof *e);
    e->id = cb_strdup(id);
    e->function = cb_strdup(function);
    e->hash = s_hash(id, function);
    e->deadline = deadline;
    e->span = deadline > now ? deadline - now : 0;
    e->chain = self->buckets[e->hash % self->n_buckets];
    self->buckets[e->hash % self->n_buckets] = e;
    s_list_insert(self, e);
    self->n_entries++;
    self->n_waiting++;
    return e;
}

//  Frees e entirely (it leaves the table and the list).
static void s_remove(exec_queue_t *self, s_entry_t *e)
{
    s_entry_t **p = &self->buckets[e->hash % self->n_buckets];
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    s_list_unlink(self, e);
    if (!e->done)
        self->n_waiting--;
    self->n_entries--;
    if (e->schedule)
        self->free_schedule(e->schedule);
    s_inputs_free(e->inputs, e->n_inputs);
    cb_free(e->id);
    cb_free(e->function);
    cb_free(e);
}

//  Turns a waiting entry into a tombstone that lives until forget_at. Its schedule and
//  inputs must have been taken or freed.
static void s_bury(exec_queue_t *self, s_entry_t *e, int64_t forget_at)
{
    assert(!e->done && !e->schedule && !e->inputs);
    e->done = true;
    self->n_waiting--;
    s_set_deadline(self, e, forget_at);
}

//  Moves what e holds into *out and buries e.
static void s_take(exec_queue_t *self, s_entry_t *e, exec_fired_t *out, int64_t forget_at)
{
    memset(out, 0, sizeof *out);
    out->id = cb_strdup(e->id);
    out->function = cb_strdup(e->function);
    out->schedule = e->schedule;
    e->schedule = NULL;
    if (out->schedule) {
        out->inputs = cb_calloc(e->n_inputs ? e->n_inputs : 1, sizeof *out->inputs);
        out->n_inputs = e->n_inputs;
        for (size_t i = 0; i < e->n_inputs; i++) {
            s_input_t *in = &e->inputs[i];
            out->inputs[i] = in->result;
            memset(&in->result, 0, sizeof in->result);
            if (!in->have)
                out->n_missing++;
            if (in->n_logs) {
                out->logs = cb_realloc(out->logs, (out->n_logs + in->n_logs) * sizeof *out->logs);
                memcpy(out->logs + out->n_logs, in->logs, in->n_logs * sizeof *in->logs);
                out->n_logs += in->n_logs;
                cb_free(in->logs);
                in->logs = NULL;
                in->n_logs = 0;
            }
        }
    }
    s_inputs_free(e->inputs, e->n_inputs);
    e->inputs = NULL;
    e->n_inputs = e->n_have = 0;
    s_bury(self, e, forget_at);
}

static void s_fill(s_input_t *in, const char *source, const void *result, size_t len,
                   const char *const *logs, size_t n_logs)
{
    if (!in->source)
        in->source = cb_strdup(source);
    in->have = true;
    cb_bytes_set(&in->result, result, len);
    in->logs = n_logs ? cb_calloc(n_logs, sizeof *in->logs) : NULL;
    for (size_t i = 0; i < n_logs; i++)
        in->logs[i] = cb_strdup(logs[i]);
    in->n_logs = n_logs;
}

void exec_fired_fini(exec_fired_t *self)
{
    assert(!self->schedule);
    for (size_t i = 0; i < self->n_inputs; i++)
        cb_bytes_fini(&self->inputs[i]);
    cb_free(self->inputs);
    for (size_t i = 0; i < self->n_logs; i++)
        cb_free(self->logs[i]);
    cb_free(self->logs);
    cb_free(self->id);
    cb_free(self->function);
    memset(self, 0, sizeof *self);
}

exec_queue_t *exec_queue_new(exec_queue_free_fn *free_schedule)
{
    exec_queue_t *self = cb_calloc(1, sizeof *self);
    self->free_schedule = free_schedule;
    self->n_buckets = 64;
    self->buckets = cb_calloc(self->n_buckets, sizeof *self->buckets);
    return self;
}

void exec_queue_destroy(exec_queue_t **self_p)
{
    exec_queue_t *self = *self_p;
    if (!self)
        return;
    while (self->head)
        s_remove(self, self->head);
    cb_free(self->buckets);
    cb_free(self);
    *self_p = NULL;
}

exec_queue_rc_t exec_queue_schedule(exec_queue_t *self, const char *id, const char *function,
                                    const char *const *sources, size_t n_sources, void *schedule,
                                    int64_t deadline, int64_t now, exec_fired_t *fired)
{
    s_entry_t *e = s_find(self, id, function);
    if (e && e->done)
        return e->cancelled ? EXEC_QUEUE_CANCELLED : EXEC_QUEUE_IGNORED;
    if (e && e->schedule)
        return EXEC_QUEUE_IGNORED;
    if (!e)
        e = s_add(self, id, function, deadline, now);
    else {
        e->span = deadline > now ? deadline - now : 0;
        s_set_deadline(self, e, deadline);
    }
    //  One slot per incoming edge, in edge order; the early triggers move into theirs.
    s_input_t *slots = cb_calloc(n_sources ? n_sources : 1, sizeof *slots);
    size_t have = 0;
    for (size_t s = 0; s < n_sources; s++) {
        slots[s].source = cb_strdup(sources[s]);
        for (size_t i = 0; i < e->n_inputs; i++) {
            s_input_t *early = &e->inputs[i];
            if (early->have && early->source && !strcmp(early->source, sources[s])) {
                cb_free(slots[s].source);
                slots[s] = *early;
                memset(early, 0, sizeof *early);
                have++;
                break;
            }
        }
    }
    s_inputs_free(e->inputs, e->n_inputs); //  triggers from no incoming edge go
    e->inputs = slots;
    e->n_inputs = n_sources;
    e->n_have = have;
    e->schedule = schedule;
    if (e->n_have < e->n_inputs)
        return EXEC_QUEUE_WAITING;
    s_take(self, e, fired, e->deadline > now ? e->deadline : now + e->span);
    return EXEC_QUEUE_FIRED;
}

exec_queue_rc_t exec_queue_trigger(exec_queue_t *self, const char *id, const char *function,
                                   const char *source, const void *result, size_t len,
                                   const char *const *logs, size_t n_logs, int64_t deadline_if_new,
                                   int64_t now, exec_fired_t *fired)
{
    s_entry_t *e = s_find(self, id, function);
    if (e && e->done)
        return EXEC_QUEUE_IGNORED;
    if (!e)
        e = s_add(self, id, function, deadline_if_new, now);
    if (!e->schedule) {
        //  Before the schedule: keep the first trigger of each source.
        for (size_t i = 0; i < e->n_inputs; i++)
            if (!strcmp(e->inputs[i].source, source))
                return EXEC_QUEUE_IGNORED;
        e->inputs = cb_realloc(e->inputs, (e->n_inputs + 1) * sizeof *e->inputs);
        memset(&e->inputs[e->n_inputs], 0, sizeof *e->inputs);
        s_fill(&e->inputs[e->n_inputs++], source, result, len, logs, n_logs);
        e->n_have++;
        return EXEC_QUEUE_WAITING;
    }
    s_input_t *slot = NULL;
    for (size_t i = 0; i < e->n_inputs && !slot; i++)
        if (!e->inputs[i].have && !strcmp(e->inputs[i].source, source))
            slot = &e->inputs[i];
    if (!slot)
        return EXEC_QUEUE_IGNORED;
    s_fill(slot, source, result, len, logs, n_logs);
    if (++e->n_have < e->n_inputs)
        return EXEC_QUEUE_WAITING;
    s_take(self, e, fired, e->deadline > now ? e->deadline : now + e->span);
    return EXEC_QUEUE_FIRED;
}

void *exec_queue_cancel(exec_queue_t *self, const char *id, const char *function, int64_t forget_at)
{
    s_entry_t *e = s_find(self, id, function);
    if (e && e->done) {
        if (!e->cancelled)
            return NULL; //  it ran already: nothing waits here
        if (forget_at > e->deadline)
            s_set_deadline(self, e, forget_at);
        return NULL;
    }
    if (!e)
        e = s_add(self, id, function, forget_at, forget_at);
    void *schedule = e->schedule;
    e->schedule = NULL;
    s_inputs_free(e->inputs, e->n_inputs);
    e->inputs = NULL;
    e->n_inputs = e->n_have = 0;
    e->cancelled = true;
    s_bury(self, e, forget_at);
    return schedule;
}

bool exec_queue_expire(exec_queue_t *self, int64_t now, exec_fired_t *expired)
{
    while (self->head && self->head->deadline <= now) {
        s_entry_t *e = self->head;
        if (e->done) {
            s_remove(self, e);
            continue;
        }
        s_take(self, e, expired, now + e->span);
        return true;
    }
    return false;
}

int64_t exec_queue_next_deadline(const exec_queue_t *self)
{
    return self->head ? self->head->deadline : INT64_MAX;
}

size_t exec_queue_waiting(const exec_queue_t *self)
{
    return self->n_waiting;
}

//  --------------------------------------------------------------------------------------
//  Self-test

static int s_freed;

static void s_test_free(void *schedule)
{
    cb_free(schedule);
    s_freed++;
}

static void *s_sched(const char *tag)
{
    return cb_strdup(tag);
}

static bool s_input_is(const exec_fired_t *f, size_t i, const char *text)
{
    return i < f->n_inputs && f->inputs[i].len == strlen(text) &&
           !memcmp(f->inputs[i].data, text, strlen(text));
}

static void s_fired_free(exec_fired_t *f)
{
    if (f->schedule)
        s_test_free(f->schedule);
    f->schedule = NULL;
    exec_fired_fini(f);
}

void exec_queue_test(bool verbose)
{
    exec_queue_t *q = exec_queue_new(s_test_free);
    exec_fired_t f;
    const char *ab[] = {"a", "b"};
    const char *la[] = {"a says hi"};
    const char *lb[] = {"b one", "b two"};

    //  A source fires at once, and only once.
    assert(exec_queue_schedule(q, "r1", "src", NULL, 0, s_sched("s"), 100, 0, &f) ==
           EXEC_QUEUE_FIRED);
    assert(!strcmp(f.id, "r1") && !strcmp(f.function, "src") && f.n_inputs == 0);
    s_fired_free(&f);
    void *dup = s_sched("dup");
    assert(exec_queue_schedule(q, "r1", "src", NULL, 0, dup, 100, 1, &f) == EXEC_QUEUE_IGNORED);
    s_test_free(dup);

    //  Two inputs: arrival order b, a; inputs in edge order a, b; logs in edge order.
    assert(exec_queue_schedule(q, "r2", "sub", ab, 2, s_sched("sub"), 1000, 0, &f) ==
           EXEC_QUEUE_WAITING);
    assert(exec_queue_waiting(q) == 1);
    assert(exec_queue_trigger(q, "r2", "sub", "b", "B", 1, lb, 2, 1000, 1, &f) ==
           EXEC_QUEUE_WAITING);
    //  A duplicate trigger and one from no incoming edge are ignored.
    assert(exec_queue_trigger(q, "r2", "sub", "b", "X", 1, NULL, 0, 1000, 2, &f) ==
           EXEC_QUEUE_IGNORED);
    assert(exec_queue_trigger(q, "r2", "sub", "zz", "Z", 1, NULL, 0, 1000, 2, &f) ==
           EXEC_QUEUE_IGNORED);
    assert(exec_queue_trigger(q, "r2", "sub", "a", "A", 1, la, 1, 1000, 3, &f) == EXEC_QUEUE_FIRED);
    assert(f.n_inputs == 2 && s_input_is(&f, 0, "A") && s_input_is(&f, 1, "B"));
    assert(f.n_logs == 3 && !strcmp(f.logs[0], "a says hi") && !strcmp(f.logs[2], "b two"));
    assert(f.n_missing == 0 && !strcmp(f.schedule, "sub"));
    s_fired_free(&f);
    assert(exec_queue_waiting(q) == 0);
    //  After firing, a late duplicate trigger does not start a new entry.
    assert(exec_queue_trigger(q, "r2", "sub", "a", "A", 1, NULL, 0, 1000, 4, &f) ==
           EXEC_QUEUE_IGNORED);
    assert(exec_queue_waiting(q) == 0);

    //  Triggers before their schedule wait for it (one of them from no incoming edge).
    assert(exec_queue_trigger(q, "r3", "sub", "b", "B3", 2, NULL, 0, 500, 10, &f) ==
           EXEC_QUEUE_WAITING);
    assert(exec_queue_trigger(q, "r3", "sub", "q", "Q", 1, NULL, 0, 500, 10, &f) ==
           EXEC_QUEUE_WAITING);
    assert(exec_queue_trigger(q, "r3", "sub", "a", "A3", 2, NULL, 0, 500, 11, &f) ==
           EXEC_QUEUE_WAITING);
    assert(exec_queue_schedule(q, "r3", "sub", ab, 2, s_sched("sub3"), 2000, 12, &f) ==
           EXEC_QUEUE_FIRED);
    assert(s_input_is(&f, 0, "A3") && s_input_is(&f, 1, "B3") && f.n_inputs == 2);
    s_fired_free(&f);

    //  Same function, different calls: independent.
    assert(exec_queue_schedule(q, "r4", "sub", ab, 2, s_sched("r4"), 100, 20, &f) ==
           EXEC_QUEUE_WAITING);
    assert(exec_queue_schedule(q, "r5", "sub", ab, 2, s_sched("r5"), 90, 20, &f) ==
           EXEC_QUEUE_WAITING);
    assert(exec_queue_trigger(q, "r4", "sub", "a", "4", 1, NULL, 0, 100, 21, &f) ==
           EXEC_QUEUE_WAITING);
    assert(exec_queue_next_deadline(q) <= 90);

    //  Expiry: r5 (deadline 90) first, then r4 (100) with one missing input; nothing at 89.
    assert(!exec_queue_expire(q, 89, &f));
    assert(exec_queue_expire(q, 95, &f));
    assert(!strcmp(f.id, "r5") && f.n_missing == 2 && !strcmp(f.schedule, "r5"));
    s_fired_free(&f);
    assert(!exec_queue_expire(q, 95, &f));
    assert(exec_queue_expire(q, 100, &f));
    assert(!strcmp(f.id, "r4") && f.n_missing == 1 && s_input_is(&f, 0, "4"));
    s_fired_free(&f);
    //  An expired entry stays a tombstone: a late trigger is ignored...
    assert(exec_queue_trigger(q, "r4", "sub", "b", "late", 4, NULL, 0, 100, 101, &f) ==
           EXEC_QUEUE_IGNORED);
    //  ...and an entry that never got its schedule expires without one.
    assert(exec_queue_trigger(q, "r6", "x", "a", "A", 1, NULL, 0, 150, 100, &f) ==
           EXEC_QUEUE_WAITING);
    assert(exec_queue_expire(q, 150, &f));
    assert(!strcmp(f.id, "r6") && !f.schedule && f.n_inputs == 0);
    s_fired_free(&f);

    //  Cancel: the waiting schedule comes back to the caller; a later schedule of a
    //  cancelled call says CANCELLED; a trigger is ignored.
    assert(exec_queue_schedule(q, "r7", "sub", ab, 2, s_sched("r7"), 1000, 200, &f) ==
           EXEC_QUEUE_WAITING);
    void *back = exec_queue_cancel(q, "r7", "sub", 5000);
    assert(back && !strcmp(back, "r7"));
    s_test_free(back);
    assert(exec_queue_trigger(q, "r7", "sub", "a", "A", 1, NULL, 0, 1000, 201, &f) ==
           EXEC_QUEUE_IGNORED);
    assert(exec_queue_cancel(q, "r8", "sub", 5000) == NULL);
    void *late = s_sched("r8");
    assert(exec_queue_schedule(q, "r8", "sub", ab, 2, late, 1000, 202, &f) == EXEC_QUEUE_CANCELLED);
    s_test_free(late);
    assert(exec_queue_waiting(q) == 0);

    //  Tombstones are forgotten once due: then the same (id, function) is new again.
    while (exec_queue_expire(q, 100000, &f))
        s_fired_free(&f);
    assert(exec_queue_next_deadline(q) == INT64_MAX);
    assert(exec_queue_schedule(q, "r1", "src", NULL, 0, s_sched("again"), 200000, 100000, &f) ==
           EXEC_QUEUE_FIRED);
    s_fired_free(&f);

    //  Many entries (the table grows); destroy frees the schedules still waiting.
    int before = s_freed;
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "m%d", i);
        assert(exec_queue_schedule(q, id, "sub", ab, 2, s_sched(id), 300000 + i % 7, 100000, &f) ==
               EXEC_QUEUE_WAITING);
    }
    for (int i = 0; i < 1000; i += 2) {
        snprintf(id, sizeof id, "m%d", i);
        assert(exec_queue_trigger(q, id, "sub", "a", "A", 1, NULL, 0, 0, 100001, &f) ==
               EXEC_QUEUE_WAITING);
        assert(exec_queue_trigger(q, id, "sub", "b", "B", 1, NULL, 0, 0, 100001, &f) ==
               EXEC_QUEUE_FIRED);
        s_fired_free(&f);
    }
    assert(exec_queue_waiting(q) == 500);
    //  Only the entries that are due come out.
    int n = 0;
    while (exec_queue_expire(q, 300003, &f)) {
        assert(f.schedule);
        s_fired_free(&f);
        n++;
    }
    assert(n > 0 && n < 500);
    exec_queue_destroy(&q);
    assert(q == NULL);
    assert(s_freed - before == 1000);
    exec_queue_destroy(&q);
    if (verbose)
        printf("  queue: firing, edge order, early triggers, duplicates, expiry, cancel\n");
}
