//  scheduler/dag.c: a DAG is kept as arrays of function numbers: one block of upstream lists
//  and one of downstream lists (offsets per function), filled from the edges in their given
//  order, which is what makes "inputs in edge order" hold. Names are looked up through a
//  sched_table_t (name -> number + 1).
//  SPDX-License-Identifier: Apache-2.0
#include "scheduler/dag.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "scheduler/table.h"

struct _sched_dag_t {
    size_t n;                   //  functions
    char **names;               //  owned, listed order
    sched_table_t *index;       //  name -> (void *)(uintptr_t)(number + 1)
    uint32_t *up;               //  upstream lists, concatenated
    size_t *up_at;              //  n + 1 offsets into up
    uint32_t *down;             //  downstream lists, concatenated
    size_t *down_at;            //  n + 1 offsets into down
    uint32_t *sources;
    size_t nsources;
    uint32_t *order;            //  topological order
    uint32_t sink;
};

//  ---- messages -----------------------------------------------------------------------------

#define S_QUOTE_MAX (SCHED_QUOTE_BYTES - 4)

const char *sched_dag_quote(const char *name, char buf[SCHED_QUOTE_BYTES])
{
    assert(name && buf);
    size_t i = 0;
    for (; name[i] && i < S_QUOTE_MAX; i++)
        buf[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
    if (name[i])
        buf[i++] = '.', buf[i++] = '.', buf[i++] = '.';
    buf[i] = '\0';
    return buf;
}

static void s_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

//  Appends to err at *at, keeping it terminated when it runs out of room.
static void s_append(char *err, size_t errlen, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_append(char *err, size_t errlen, size_t *at, const char *fmt, ...)
{
    if (!err || *at + 1 >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err + *at, errlen - *at, fmt, ap);
    va_end(ap);
    if (n > 0)
        *at = *at + (size_t)n < errlen ? *at + (size_t)n : errlen - 1;
}

int sched_dag_check_name(const char *what, const char *name, char *err, size_t errlen)
{
    assert(what && name);
    char q[SCHED_QUOTE_BYTES];
    size_t len = strnlen(name, SCHED_NAME_MAX + 1);
    if (len == 0) {
        s_fail(err, errlen, "%s name is empty", what);
        return -EINVAL;
    }
    if (len > SCHED_NAME_MAX) {
        s_fail(err, errlen, "%s name is longer than %d characters", what, SCHED_NAME_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) {
            s_fail(err, errlen, "%s name '%s' has a character other than A-Z a-z 0-9 _ . -",
                   what, sched_dag_quote(name, q));
            return -EINVAL;
        }
    }
    if (strcmp(name, "index") == 0) {
        s_fail(err, errlen, "%s name 'index' is reserved", what);
        return -EINVAL;
    }
    return 0;
}

//  ---- construction -------------------------------------------------------------------------

static int s_lookup(const sched_table_t *index, const char *name)
{
    void *v = sched_table_get(index, name);
    return v ? (int)((uintptr_t)v - 1) : -1;
}

typedef struct {
    uint32_t from, to;
    uint32_t at;                //  position in the given edge list
} s_edge_t;

static int s_edge_cmp(const void *a, const void *b)
{
    const s_edge_t *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    if (x->to != y->to)
        return x->to < y->to ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

//  Fills the upstream and downstream lists (edge order) from the numbered edges.
static void s_build_lists(sched_dag_t *self, const s_edge_t *edges, size_t nedges)
{
    size_t n = self->n;
    self->up_at = cb_calloc(n + 1, sizeof *self->up_at);
    self->down_at = cb_calloc(n + 1, sizeof *self->down_at);
    self->up = cb_malloc((nedges ? nedges : 1) * sizeof *self->up);
    self->down = cb_malloc((nedges ? nedges : 1) * sizeof *self->down);
    for (size_t e = 0; e < nedges; e++) {
        self->up_at[edges[e].to + 1]++;
        self->down_at[edges[e].from + 1]++;
    }
    for (size_t i = 0; i < n; i++) {
        self->up_at[i + 1] += self->up_at[i];
        self->down_at[i + 1] += self->down_at[i];
    }
    size_t *up_fill = cb_malloc(n * sizeof *up_fill);
    size_t *down_fill = cb_malloc(n * sizeof *down_fill);
    memcpy(up_fill, self->up_at, n * sizeof *up_fill);
    memcpy(down_fill, self->down_at, n * sizeof *down_fill);
    for (size_t e = 0; e < nedges; e++) {
        self->up[up_fill[edges[e].to]++] = edges[e].from;
        self->down[down_fill[edges[e].from]++] = edges[e].to;
    }
    cb_free(up_fill);
    cb_free(down_fill);
}

//  Kahn's algorithm. Returns the number of functions ordered: n unless there is a cycle.
static size_t s_topo_order(sched_dag_t *self)
{
    size_t n = self->n;
    size_t *indegree = cb_malloc(n * sizeof *indegree);
    self->order = cb_malloc(n * sizeof *self->order);
    size_t tail = 0;
    for (size_t i = 0; i < n; i++) {
        indegree[i] = self->up_at[i + 1] - self->up_at[i];
        if (indegree[i] == 0)
            self->order[tail++] = (uint32_t)i;
    }
    for (size_t head = 0; head < tail; head++) {
        uint32_t f = self->order[head];
        for (size_t d = self->down_at[f]; d < self->down_at[f + 1]; d++)
            if (--indegree[self->down[d]] == 0)
                self->order[tail++] = self->down[d];
    }
    cb_free(indegree);
    return tail;
}

//  Writes "cycle: a -> b -> a". Every function left out of the topological order has an
//  upstream function also left out, so walking upstream from one never stops and must
//  come back to a function already seen: that loop, read forwards, is a cycle.
static void s_describe_cycle(const sched_dag_t *self, size_t ordered, char *err, size_t errlen)
{
    size_t n = self->n;
    bool *done = cb_calloc(n, sizeof *done);
    for (size_t i = 0; i < ordered; i++)
        done[self->order[i]] = true;
    size_t *seen_at = cb_malloc(n * sizeof *seen_at);
    for (size_t i = 0; i < n; i++)
        seen_at[i] = SIZE_MAX;
    uint32_t *walk = cb_malloc((n + 1) * sizeof *walk);
    size_t len = 0;
    uint32_t f = 0;
    while (done[f])
        f++;
    while (seen_at[f] == SIZE_MAX) {
        seen_at[f] = len;
        walk[len++] = f;
        uint32_t next = UINT32_MAX;
        for (size_t u = self->up_at[f]; u < self->up_at[f + 1] && next == UINT32_MAX; u++)
            if (!done[self->up[u]])
                next = self->up[u];
        assert(next != UINT32_MAX);
        f = next;
    }
    walk[len++] = f;
    size_t at = 0;
    char q[SCHED_QUOTE_BYTES];
    s_append(err, errlen, &at, "cycle:");
    for (size_t i = len; i-- > seen_at[f];)
        s_append(err, errlen, &at, "%s %s", i + 1 == len ? "" : " ->",
                 sched_dag_quote(self->names[walk[i]], q));
    cb_free(done);
    cb_free(seen_at);
    cb_free(walk);
}

sched_dag_t *sched_dag_new(const char *const *functions, size_t nfunctions,
                           const sched_dag_edge_t *edges, size_t nedges,
                           sched_dag_known_fn known, void *arg, char *err, size_t errlen)
{
    assert(nfunctions == 0 || functions);
    assert(nedges == 0 || edges);
    char q1[SCHED_QUOTE_BYTES], q2[SCHED_QUOTE_BYTES];
    if (nfunctions == 0) {
        s_fail(err, errlen, "a DAG needs at least one function");
        return NULL;
    }
    if (nfunctions > SCHED_DAG_MAX_FUNCTIONS) {
        s_fail(err, errlen, "too many functions: %zu (at most %d)", nfunctions,
               SCHED_DAG_MAX_FUNCTIONS);
        return NULL;
    }
    if (nedges > SCHED_DAG_MAX_EDGES) {
        s_fail(err, errlen, "too many edges: %zu (at most %d)", nedges, SCHED_DAG_MAX_EDGES);
        return NULL;
    }
    sched_dag_t *self = cb_calloc(1, sizeof *self);
    self->n = nfunctions;
    self->names = cb_calloc(nfunctions, sizeof *self->names);
    self->index = sched_table_new(NULL);
    s_edge_t *numbered = cb_malloc((nedges ? nedges : 1) * sizeof *numbered);
    bool valid = false;
    for (size_t i = 0; i < nfunctions; i++) {
        assert(functions[i]);
        self->names[i] = cb_strdup(functions[i]);
        if (sched_table_contains(self->index, functions[i])) {
            s_fail(err, errlen, "function '%s' is listed twice", sched_dag_quote(functions[i], q1));
            goto done;
        }
        sched_table_put(self->index, functions[i], (void *)(uintptr_t)(i + 1));
    }
    for (size_t i = 0; known && i < nfunctions; i++)
        if (!known(arg, functions[i])) {
            s_fail(err, errlen, "function '%s' is not registered", sched_dag_quote(functions[i], q1));
            goto done;
        }
    for (size_t e = 0; e < nedges; e++) {
        assert(edges[e].from && edges[e].to);
        int from = s_lookup(self->index, edges[e].from);
        int to = s_lookup(self->index, edges[e].to);
        if (from < 0 || to < 0) {
            s_fail(err, errlen, "edge %s -> %s: '%s' is not a function of the DAG",
                   sched_dag_quote(edges[e].from, q1), sched_dag_quote(edges[e].to, q2),
                   from < 0 ? q1 : q2);
            goto done;
        }
        if (from == to) {
            s_fail(err, errlen, "self-edge %s -> %s", sched_dag_quote(edges[e].from, q1),
                   sched_dag_quote(edges[e].to, q2));
            goto done;
        }
        numbered[e] = (s_edge_t){(uint32_t)from, (uint32_t)to, (uint32_t)e};
    }
    if (nedges > 1) {
        //  Sorted by (from, to, position): a duplicate sits next to its first occurrence.
        //  Report the duplicate that appears first in the given order.
        s_edge_t *sorted = cb_memdup(numbered, nedges * sizeof *sorted);
        qsort(sorted, nedges, sizeof *sorted, s_edge_cmp);
        uint32_t dup = UINT32_MAX;
        for (size_t e = 1; e < nedges; e++)
            if (sorted[e].from == sorted[e - 1].from && sorted[e].to == sorted[e - 1].to &&
                sorted[e].at < dup)
                dup = sorted[e].at;
        cb_free(sorted);
        if (dup != UINT32_MAX) {
            s_fail(err, errlen, "duplicate edge %s -> %s", sched_dag_quote(edges[dup].from, q1),
                   sched_dag_quote(edges[dup].to, q2));
            goto done;
        }
    }
    s_build_lists(self, numbered, nedges);
    size_t ordered = s_topo_order(self);
    if (ordered < nfunctions) {
        s_describe_cycle(self, ordered, err, errlen);
        goto done;
    }
    size_t nsinks = 0;
    for (size_t i = 0; i < nfunctions; i++)
        if (self->down_at[i + 1] == self->down_at[i]) {
            if (nsinks == 0)
                self->sink = (uint32_t)i;
            nsinks++;
        }
    if (nsinks != 1) {
        //  Acyclic and non-empty, so there is at least one sink.
        size_t at = 0;
        s_append(err, errlen, &at, "%zu sinks:", nsinks);
        size_t listed = 0;
        for (size_t i = 0; i < nfunctions; i++)
            if (self->down_at[i + 1] == self->down_at[i])
                s_append(err, errlen, &at, "%s %s", listed++ ? "," : "",
                         sched_dag_quote(self->names[i], q1));
        s_append(err, errlen, &at, " (a DAG needs exactly one)");
        goto done;
    }
    self->sources = cb_malloc(nfunctions * sizeof *self->sources);
    for (size_t i = 0; i < nfunctions; i++)
        if (self->up_at[i + 1] == self->up_at[i])
            self->sources[self->nsources++] = (uint32_t)i;
    valid = true;
done:
    cb_free(numbered);
    if (!valid)
        sched_dag_destroy(&self);
    return self;
}

void sched_dag_destroy(sched_dag_t **self_p)
{
    assert(self_p);
    sched_dag_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++)
        cb_free(self->names[i]);
    cb_free(self->names);
    sched_table_destroy(&self->index);
    cb_free(self->up);
    cb_free(self->up_at);
    cb_free(self->down);
    cb_free(self->down_at);
    cb_free(self->sources);
    cb_free(self->order);
    cb_free(self);
    *self_p = NULL;
}

//  ---- queries ------------------------------------------------------------------------------

size_t sched_dag_size(const sched_dag_t *self)
{
    assert(self);
    return self->n;
}

const char *sched_dag_function(const sched_dag_t *self, size_t i)
{
    assert(self && i < self->n);
    return self->names[i];
}

int sched_dag_find(const sched_dag_t *self, const char *name)
{
    assert(self && name);
    return s_lookup(self->index, name);
}

bool sched_dag_is_source(const sched_dag_t *self, size_t i)
{
    assert(self && i < self->n);
    return self->up_at[i + 1] == self->up_at[i];
}

size_t sched_dag_sink(const sched_dag_t *self)
{
    assert(self);
    return self->sink;
}

const uint32_t *sched_dag_sources(const sched_dag_t *self, size_t *n)
{
    assert(self && n);
    *n = self->nsources;
    return self->sources;
}

const uint32_t *sched_dag_upstream(const sched_dag_t *self, size_t i, size_t *n)
{
    assert(self && i < self->n && n);
    *n = self->up_at[i + 1] - self->up_at[i];
    return self->up + self->up_at[i];
}

const uint32_t *sched_dag_downstream(const sched_dag_t *self, size_t i, size_t *n)
{
    assert(self && i < self->n && n);
    *n = self->down_at[i + 1] - self->down_at[i];
    return self->down + self->down_at[i];
}

const uint32_t *sched_dag_order(const sched_dag_t *self)
{
    assert(self);
    return self->order;
}

//  ---- self-test ----------------------------------------------------------------------------

static bool s_known(void *arg, const char *function)
{
    const char *const *registered = arg;
    for (size_t i = 0; registered[i]; i++)
        if (strcmp(registered[i], function) == 0)
            return true;
    return false;
}

//  Parses "a,b,c|a>b,b>c" into a DAG (test helper; fixed-size buffers).
static sched_dag_t *s_parse(const char *text, char *err, size_t errlen)
{
    static const char *registered[] = {"a", "b", "c", "d", "e", "f", "incr", "square", "sum",
                                       NULL};
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    char *bar = strchr(buf, '|');
    if (bar)
        *bar = '\0';
    const char *functions[32];
    sched_dag_edge_t edges[32];
    size_t nf = 0, ne = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        functions[nf++] = t;
    if (bar)
        for (char *t = strtok_r(bar + 1, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *gt = strchr(t, '>');
            assert(gt);
            *gt = '\0';
            edges[ne++] = (sched_dag_edge_t){t, gt + 1};
        }
    //  The DAG copies every name, so buf may go.
    return sched_dag_new(functions, nf, edges, ne, s_known, registered, err, errlen);
}

static void s_expect_error(const char *text, const char *message)
{
    char err[256] = "";
    sched_dag_t *dag = s_parse(text, err, sizeof err);
    if (dag || strcmp(err, message) != 0) {
        fprintf(stderr, "dag %s: expected error [%s], got [%s]\n", text, message,
                dag ? "valid" : err);
        assert(false);
    }
}

//  The names of a list of function numbers, "a b c".
static const char *s_names(const sched_dag_t *dag, const uint32_t *list, size_t n, char *buf,
                           size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        s_append(buf, len, &at, "%s%s", i ? " " : "", sched_dag_function(dag, list[i]));
    return buf;
}

void sched_dag_test(bool verbose)
{
    //  @selftest
    char err[256], buf[256];
    //  Every invalid case, each with its message, in the order the checks run.
    s_expect_error("", "a DAG needs at least one function");
    s_expect_error("a,b,a|a>b", "function 'a' is listed twice");
    s_expect_error("a,nope|a>nope", "function 'nope' is not registered");
    s_expect_error("a,b|a>c", "edge a -> c: 'c' is not a function of the DAG");
    s_expect_error("a,b|c>a", "edge c -> a: 'c' is not a function of the DAG");
    s_expect_error("a,b|a>b,b>b", "self-edge b -> b");
    s_expect_error("a,b,c|a>b,b>c,a>b", "duplicate edge a -> b");
    s_expect_error("a,b|a>b,b>a", "cycle: a -> b -> a");
    s_expect_error("a,b,c,d|a>b,b>c,c>a,c>d", "cycle: a -> b -> c -> a");
    //  A function downstream of a cycle is not part of it.
    s_expect_error("d,a,b|d>a,a>b,b>a", "cycle: a -> b -> a");
    s_expect_error("a,b,c|a>b,a>c", "2 sinks: b, c (a DAG needs exactly one)");
    s_expect_error("a,b", "2 sinks: a, b (a DAG needs exactly one)");
    s_expect_error("a,b,c,d,e|a>e", "4 sinks: b, c, d, e (a DAG needs exactly one)");
    const char *many[SCHED_DAG_MAX_FUNCTIONS + 1];
    for (size_t i = 0; i <= SCHED_DAG_MAX_FUNCTIONS; i++)
        many[i] = "a";
    assert(!sched_dag_new(many, SCHED_DAG_MAX_FUNCTIONS + 1, NULL, 0, NULL, NULL, err,
                          sizeof err));
    assert(strcmp(err, "too many functions: 257 (at most 256)") == 0);
    //  Messages quote at most 64 characters of a client's name, and only printable ones.
    char lng[100];
    memset(lng, 'x', 99);
    lng[99] = '\0';
    lng[1] = '\n';
    const char *odd[] = {lng, lng};
    assert(!sched_dag_new(odd, 2, NULL, 0, NULL, NULL, err, sizeof err));
    assert(strncmp(err, "function 'x?xxx", 15) == 0 && strstr(err, "x...' is listed twice"));
    //  A short buffer gets a truncated, terminated message.
    char small[12];
    assert(!s_parse("a,b|a>b,b>a", small, sizeof small) && strcmp(small, "cycle: a ->") == 0);

    //  One function: source and sink.
    sched_dag_t *dag = s_parse("incr", err, sizeof err);
    assert(dag && sched_dag_size(dag) == 1 && sched_dag_sink(dag) == 0);
    assert(sched_dag_is_source(dag, 0));
    sched_dag_destroy(&dag);
    sched_dag_destroy(&dag);

    //  A diamond listed out of order: the sink first. Upstream lists follow edge order
    //  (c before b for d), not listing order or numbering.
    dag = s_parse("d,c,b,a|a>b,a>c,c>d,b>d", err, sizeof err);
    assert(dag);
    assert(sched_dag_find(dag, "a") == 3 && sched_dag_find(dag, "zzz") == -1);
    assert(strcmp(sched_dag_function(dag, sched_dag_sink(dag)), "d") == 0);
    size_t n;
    const uint32_t *list = sched_dag_upstream(dag, 0, &n);
    assert(strcmp(s_names(dag, list, n, buf, sizeof buf), "c b") == 0);
    list = sched_dag_downstream(dag, 3, &n);
    assert(strcmp(s_names(dag, list, n, buf, sizeof buf), "b c") == 0);
    list = sched_dag_sources(dag, &n);
    assert(strcmp(s_names(dag, list, n, buf, sizeof buf), "a") == 0);
    assert(sched_dag_is_source(dag, 3) && !sched_dag_is_source(dag, 0));
    //  Kahn's order: sources in listed order, then functions as they become ready,
    //  following edges in order (a>b before a>c).
    assert(strcmp(s_names(dag, sched_dag_order(dag), 4, buf, sizeof buf), "a b c d") == 0);
    sched_dag_destroy(&dag);

    //  Two sources into one sink; a chain.
    dag = s_parse("incr,square,sum|square>sum,incr>sum", err, sizeof err);
    assert(dag);
    list = sched_dag_sources(dag, &n);
    assert(strcmp(s_names(dag, list, n, buf, sizeof buf), "incr square") == 0);
    list = sched_dag_upstream(dag, 2, &n);
    assert(strcmp(s_names(dag, list, n, buf, sizeof buf), "square incr") == 0);
    sched_dag_destroy(&dag);
    dag = s_parse("f,e,d,c,b,a|a>b,b>c,c>d,d>e,e>f", err, sizeof err);
    assert(dag);
    assert(strcmp(s_names(dag, sched_dag_order(dag), 6, buf, sizeof buf), "a b c d e f") == 0);
    sched_dag_destroy(&dag);

    //  No registry: every function counts as registered.
    const char *free_names[] = {"x", "y"};
    sched_dag_edge_t xy = {"x", "y"};
    dag = sched_dag_new(free_names, 2, &xy, 1, NULL, NULL, err, sizeof err);
    assert(dag && sched_dag_sink(dag) == 1);
    sched_dag_destroy(&dag);

    //  Names.
    assert(sched_dag_check_name("function", "incr_2.v-1", err, sizeof err) == 0);
    assert(sched_dag_check_name("function", "", err, sizeof err) == -EINVAL);
    assert(strcmp(err, "function name is empty") == 0);
    assert(sched_dag_check_name("DAG", "a b", err, sizeof err) == -EINVAL);
    assert(strcmp(err, "DAG name 'a b' has a character other than A-Z a-z 0-9 _ . -") == 0);
    assert(sched_dag_check_name("function", "a/b", err, sizeof err) == -EINVAL);
    assert(sched_dag_check_name("function", "index", err, sizeof err) == -EINVAL);
    assert(strcmp(err, "function name 'index' is reserved") == 0);
    char name[SCHED_NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    name[SCHED_NAME_MAX] = '\0';
    assert(sched_dag_check_name("function", name, err, sizeof err) == 0);
    name[SCHED_NAME_MAX] = 'n';
    name[SCHED_NAME_MAX + 1] = '\0';
    assert(sched_dag_check_name("function", name, err, sizeof err) == -EINVAL);
    assert(strcmp(err, "function name is longer than 128 characters") == 0);
    //  @end
    if (verbose)
        printf("  dag ok\n");
}
