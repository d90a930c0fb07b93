//  tests/system/consistency_check.c: the anomaly checker of issue 4 (also the bench, see
//  docs/benchmarks.md). Against a running cluster (cb up): registers rw0..rw4 (the
//  examples/rw_step.so function) and random DAGs of 2 to 5 of them, then runs requests of
//  those DAGs at one consistency level from --clients threads while --writers threads keep
//  overwriting the same keys. Keys are drawn from a Zipf distribution. Every function reads
//  and writes keys given as arguments and returns what it saw (examples/rw_step.c); the
//  sink's result holds the records of the whole request, from which the checker counts:
//    rr_anomalies   requests in which one key was read at two different versions (what
//                   REPEATABLE_READ prevents; LWW allows it)
//    causal_stale   requests in which a read returned a version of a key older than, or
//                   concurrent with, a version of that key the request had read causally
//                   before (in the same function earlier, or in an upstream function)
//    causal_dep     requests in which a read returned a version of a key older than, or
//                   concurrent with (or no version, where) a dependency of a version the
//                   request had read causally before: a version read without its dependencies
//  and latency per request (p50/p99, also divided by the DAG's depth). The causal counts
//  need versions with clocks: at the causal levels functions read with "R:" (rw_step
//  records the version's clock and dependencies) keys of their own (`<prefix>s<i>` for
//  single, `<prefix>m<i>` for multi, which hold causal values), which the writers write
//  straight to the KVS as causal values (the KVS's clock ticked at the writer's id). --self-check runs the counting on records with planted
//  violations (no cluster): the counts must find them, and nothing in clean records.
//  One line of results on stdout:
//  `level rr requests 200 ok 198 failed 2 rr_anomalies 0 causal_stale 0 causal_dep 0 ...`.
//  Exit 0 when the run completed (anomalies are data, not failures), 1 on a setup error.
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/faas.h"
#include "common/alloc.h"
#include "common/value.h"
#include "lattices/lattice.h"
#include "proto/wire.h"

#define C_MAX_FNS 5
#define C_MAX_DAGS 16
#define C_MAX_KEYS 256
#define C_MAX_OPS 4

typedef struct {
    int n;                           //  functions rw0..rw{n-1}
    int from[C_MAX_FNS * C_MAX_FNS], to[C_MAX_FNS * C_MAX_FNS];
    int n_edges;
    int depth;                       //  functions on the longest path
} c_dag_t;

static struct {
    const char *scheduler;
    const char *so;
    int level;
    int requests, clients, writers, keys, dags;
    unsigned seed;
    double zipf;
    int sleep_ms;
    bool setup;
    const char *prefix;
    c_dag_t dag[C_MAX_DAGS];
    double cdf[C_MAX_KEYS];
    atomic_int next;
    atomic_int ok, failed, rr_anomalies, causal_stale, causal_dep, stop;
    double *lat_ms, *lat_norm;       //  per request; < 0 when it failed
    char **errors;                   //  a few failure messages
    pthread_mutex_t lock;
    int n_errors;
} g;

static uint64_t c_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double c_unit(uint64_t *s)
{
    return (double)(c_rand(s) >> 11) / 9007199254740992.0;
}

static int c_key(uint64_t *s)
{
    double u = c_unit(s);
    for (int i = 0; i < g.keys; i++)
        if (u <= g.cdf[i])
            return i;
    return g.keys - 1;
}

static double c_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static cb_faas_t *c_client(void)
{
    cb_faas_config_t cfg = {.scheduler = g.scheduler, .timeout_ms = 20000};
    cb_faas_t *f = cb_faas_new(&cfg);
    if (!f) {
        fprintf(stderr, "consistency_check: cannot make a client for %s\n", g.scheduler);
        exit(1);
    }
    return f;
}

//  Random DAG with one sink: every function but the last has an edge to a later one.
static void c_make_dags(void)
{
    //  Shapes do not depend on --seed: a run with another seed uses the DAGs registered.
    uint64_t s = 0x5DEECE66Dull;
    for (int d = 0; d < g.dags; d++) {
        c_dag_t *dag = &g.dag[d];
        dag->n = 2 + (int)(c_rand(&s) % (C_MAX_FNS - 1));
        dag->n_edges = 0;
        bool has[C_MAX_FNS][C_MAX_FNS] = {{false}};
        for (int i = 0; i < dag->n - 1; i++) {
            int j = i + 1 + (int)(c_rand(&s) % (uint64_t)(dag->n - 1 - i));
            has[i][j] = true;
            if (c_rand(&s) % 3 == 0) {  //  sometimes a second edge: diamonds
                int j2 = i + 1 + (int)(c_rand(&s) % (uint64_t)(dag->n - 1 - i));
                has[i][j2] = true;
            }
        }
        int longest[C_MAX_FNS];
        dag->depth = 1;
        for (int j = 0; j < dag->n; j++) {
            longest[j] = 1;
            for (int i = 0; i < j; i++)
                if (has[i][j]) {
                    dag->from[dag->n_edges] = i;
                    dag->to[dag->n_edges++] = j;
                    if (longest[i] + 1 > longest[j])
                        longest[j] = longest[i] + 1;
                }
            if (longest[j] > dag->depth)
                dag->depth = longest[j];
        }
    }
}

static void c_setup(cb_faas_t *f)
{
    char names[C_MAX_FNS][32];
    for (int i = 0; i < C_MAX_FNS; i++) {
        snprintf(names[i], sizeof names[i], "%srw%d", g.prefix, i);
        if (cb_faas_register_file(f, names[i], g.so, NULL) != 0) {
            fprintf(stderr, "consistency_check: register %s: %s\n", names[i],
                    cb_faas_last_error(f));
            exit(1);
        }
    }
    for (int d = 0; d < g.dags; d++) {
        const c_dag_t *dag = &g.dag[d];
        const char *fns[C_MAX_FNS];
        cb_faas_edge_t edges[C_MAX_FNS * C_MAX_FNS];
        for (int i = 0; i < dag->n; i++)
            fns[i] = names[i];
        for (int e = 0; e < dag->n_edges; e++)
            edges[e] = (cb_faas_edge_t){names[dag->from[e]], names[dag->to[e]]};
        char name[64];
        snprintf(name, sizeof name, "%scc%d", g.prefix, d);
        cb_faas_dag_t spec = {name, fns, (size_t)dag->n, edges, (size_t)dag->n_edges};
        (void)cb_faas_delete_dag(f, name);
        if (cb_faas_register_dag(f, &spec) != 0) {
            fprintf(stderr, "consistency_check: register DAG %s: %s\n", name,
                    cb_faas_last_error(f));
            exit(1);
        }
    }
}

//  ---- counting anomalies in one request's records ------------------------------------------

//  One read of a request's records.
typedef struct {
    char key[64];
    int fn;                 //  the function (rw<fn>) that read it
    bool absent;
    const char *ident;      //  borrowed from the record: the version's identity (value or hex)
    size_t ident_len;
    lat_t version;          //  owned: a causal version ("R:" reads), else LAT_NONE
} c_read_t;

typedef struct {
    bool rr, stale, dep;
} c_verdict_t;

static int c_hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool c_decode_version(const char *hex, size_t len, lat_t *out)
{
    if (len < 1 || hex[0] < '0' || hex[0] > '9' || (len - 1) % 2)
        return false;
    int kind = hex[0] - '0';
    size_t n = (len - 1) / 2;
    uint8_t *bytes = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        int hi = c_hexval(hex[1 + 2 * i]), lo = c_hexval(hex[2 + 2 * i]);
        if (hi < 0 || lo < 0) {
            free(bytes);
            return false;
        }
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    int rc = wire_decode(kind, bytes, n, out);
    free(bytes);
    return rc == 0 && (out->kind == LAT_SINGLE_CAUSAL || out->kind == LAT_MULTI_CAUSAL) &&
           out->u.causal.len == 1;
}

static bool c_covers(const lat_vclock_t *clock, const lat_vclock_t *need)
{
    lat_vc_order_t o = lat_vclock_compare(clock, need);
    return o == LAT_VC_EQUAL || o == LAT_VC_GREATER;
}

//  Counts what one request's records (rec) show, for a DAG of that shape. A function's
//  records appear once per path to the sink (diamonds repeat them): later copies are
//  skipped. Returns false for records that cannot be parsed.
static bool c_analyse(const char *rec, const c_dag_t *dag, c_verdict_t *out)
{
    memset(out, 0, sizeof *out);
    //  Functions causally before each function: its ancestors in the DAG.
    unsigned anc[C_MAX_FNS] = {0};
    for (int j = 0; j < dag->n; j++)
        for (int e = 0; e < dag->n_edges; e++)
            if (dag->to[e] == j)
                anc[j] |= 1u << dag->from[e] | anc[dag->from[e]];
    c_read_t *reads = NULL;
    size_t n = 0, cap = 0;
    unsigned seen = 0;
    int fn = -1;
    bool skip = false, parsed = true;
    for (const char *p = rec; *p && parsed;) {
        const char *end = strchr(p, ',');
        if (!end)
            break;
        size_t len = (size_t)(end - p);
        if (*p == '#') {
            //  "#<prefix>rw<d>": a function's own records start.
            fn = len >= 2 && p[len - 1] >= '0' && p[len - 1] < '0' + C_MAX_FNS ? p[len - 1] - '0'
                                                                               : -1;
            parsed = fn >= 0 && fn < dag->n;
            skip = parsed && (seen >> fn & 1);
            if (parsed)
                seen |= 1u << fn;
        } else if (*p != '!' && !skip) {
            const char *at = memchr(p, '@', len), *tilde = memchr(p, '~', len);
            const char *sep = at ? at : tilde;
            if (!sep || fn < 0 || (size_t)(sep - p) >= sizeof reads->key) {
                parsed = false;
                break;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                reads = realloc(reads, cap * sizeof *reads);
            }
            c_read_t *r = &reads[n];
            memset(r, 0, sizeof *r);
            snprintf(r->key, sizeof r->key, "%.*s", (int)(sep - p), p);
            r->fn = fn;
            r->ident = sep + 1;
            r->ident_len = (size_t)(end - sep - 1);
            lat_init(&r->version, LAT_NONE);
            if (at)
                r->absent = r->ident_len == 1 && r->ident[0] == '-';
            else if (!c_decode_version(r->ident, r->ident_len, &r->version)) {
                lat_fini(&r->version);
                parsed = false;
                break;
            }
            n++;
        }
        p = end + 1;
    }
    for (size_t i = 0; i < n && parsed; i++) {
        const c_read_t *r = &reads[i];
        for (size_t j = 0; j < i; j++)
            if (!strcmp(reads[j].key, r->key) &&
                (reads[j].ident_len != r->ident_len ||
                 memcmp(reads[j].ident, r->ident, r->ident_len)))
                out->rr = true;
        //  What the reads causally before r require of r's key.
        lat_vclock_t same = {0}, dep = {0};
        for (size_t j = 0; j < n; j++) {
            const c_read_t *q = &reads[j];
            bool before = (q->fn == r->fn && j < i) || (anc[r->fn] >> q->fn & 1);
            if (!before || q->version.kind == LAT_NONE)
                continue;
            const lat_version_t *v = &q->version.u.causal.items[0];
            if (!strcmp(q->key, r->key))
                lat_vclock_merge(&same, &v->clock);
            for (size_t d = 0; d < v->deps.len; d++)
                if (!strcmp(v->deps.items[d].key, r->key))
                    lat_vclock_merge(&dep, &v->deps.items[d].clock);
        }
        if (r->version.kind != LAT_NONE) {
            const lat_vclock_t *clock = &r->version.u.causal.items[0].clock;
            out->stale |= !c_covers(clock, &same);
            out->dep |= !c_covers(clock, &dep);
        } else if (r->absent) {
            out->stale |= same.len > 0;
            out->dep |= dep.len > 0;
        }
        lat_vclock_fini(&same);
        lat_vclock_fini(&dep);
    }
    for (size_t i = 0; i < n; i++)
        lat_fini(&reads[i].version);
    free(reads);
    return parsed;
}

//  ---- self-check: planted violations ---------------------------------------------------------

//  Appends "key~<kind><hex>," for a version of key with clock {a:ca} and an optional
//  dependency dkey {a:da}.
static void c_plant(char *buf, size_t size, const char *key, uint32_t ca, const char *dkey,
                    uint32_t da)
{
    lat_t v;
    lat_init(&v, LAT_MULTI_CAUSAL);
    lat_causal_add_simple(&v, "a", ca, dkey, da, "val");
    cb_bytes_t bytes = {0};
    if (wire_encode(&v, &bytes) != 0) {
        fprintf(stderr, "consistency_check: self-check: cannot encode a version\n");
        exit(1);
    }
    size_t n = strlen(buf);
    n += (size_t)snprintf(buf + n, size - n, "%s~%d", key, (int)LAT_MULTI_CAUSAL);
    for (size_t i = 0; i < bytes.len && n + 3 < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%02x", bytes.data[i]);
    snprintf(buf + n, size - n, ",");
    cb_bytes_fini(&bytes);
    lat_fini(&v);
}

static int c_self_check(void)
{
    //  rw0 -> rw1, rw0 -> rw2, rw1 -> rw3, rw2 -> rw3: rw1 and rw2 are parallel.
    c_dag_t dag = {.n = 4, .from = {0, 0, 1, 2}, .to = {1, 2, 3, 3}, .n_edges = 4, .depth = 3};
    struct {
        const char *what;
        bool rr, stale, dep;
    } want[] = {
        {"x depends on y@3, then downstream y@1", false, false, true},
        {"x@2, then x@1 in the same function", true, true, false},
        {"y@3 and y@1 in parallel branches", true, false, false},
        {"y@1, then x (depends on y@3), then y@3", true, false, false},
        {"x depends on y@3, then y absent", false, false, true},
        {"a diamond repeats rw0's records", false, false, false},
        {"LWW reads of two values", true, false, false},
    };
    char rec[8][4096];
    memset(rec, 0, sizeof rec);
    strcat(rec[0], "#rw0,");
    c_plant(rec[0], sizeof rec[0], "x", 2, "y", 3);
    strcat(rec[0], "#rw1,");
    c_plant(rec[0], sizeof rec[0], "y", 1, NULL, 0);
    strcat(rec[1], "#rw0,");
    c_plant(rec[1], sizeof rec[1], "x", 2, NULL, 0);
    c_plant(rec[1], sizeof rec[1], "x", 1, NULL, 0);
    strcat(rec[2], "#rw1,");
    c_plant(rec[2], sizeof rec[2], "y", 3, NULL, 0);
    strcat(rec[2], "#rw2,");
    c_plant(rec[2], sizeof rec[2], "y", 1, NULL, 0);
    strcat(rec[3], "#rw0,");
    c_plant(rec[3], sizeof rec[3], "y", 1, NULL, 0);
    strcat(rec[3], "#rw1,");
    c_plant(rec[3], sizeof rec[3], "x", 2, "y", 3);
    c_plant(rec[3], sizeof rec[3], "y", 3, NULL, 0);
    strcat(rec[4], "#rw0,");
    c_plant(rec[4], sizeof rec[4], "x", 2, "y", 3);
    strcat(rec[4], "#rw3,y@-,");
    for (int i = 0; i < 2; i++) {
        strcat(rec[5], "#rw0,");
        c_plant(rec[5], sizeof rec[5], "y", 1, NULL, 0);
    }
    strcat(rec[5], "#rw3,");
    c_plant(rec[5], sizeof rec[5], "y", 1, NULL, 0);
    strcat(rec[6], "#rw0,k@W1-1,!k@f1,#rw1,k@W2-7,");
    int bad = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        c_verdict_t v;
        bool parsed = c_analyse(rec[i], &dag, &v);
        bool good = parsed && v.rr == want[i].rr && v.stale == want[i].stale && v.dep == want[i].dep;
        printf("self-check %s: %s: rr %d stale %d dep %d\n", good ? "ok" : "WRONG", want[i].what,
               v.rr, v.stale, v.dep);
        bad += !good;
    }
    c_verdict_t v;
    if (c_analyse("#rw9,x@1,", &dag, &v) || c_analyse("#rw0,x~4zz,", &dag, &v)) {
        printf("self-check WRONG: malformed records were accepted\n");
        bad++;
    }
    printf("self-check %s\n", bad ? "FAILED" : "passed");
    return bad ? 1 : 0;
}

static bool c_causal(void)
{
    return g.level == CB_FAAS_SINGLE_CAUSAL || g.level == CB_FAAS_MULTI_CAUSAL;
}

//  Keys per level: LWW values (k), single-key causal (s), multi-key causal (m) values.
static char c_key_letter(void)
{
    return g.level == CB_FAAS_SINGLE_CAUSAL ? 's' : g.level == CB_FAAS_MULTI_CAUSAL ? 'm' : 'k';
}

static void *c_requester(void *arg)
{
    uint64_t s = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + g.seed + 7;
    cb_faas_t *f = c_client();
    for (;;) {
        int r = atomic_fetch_add(&g.next, 1);
        if (r >= g.requests)
            break;
        int d = (int)(c_rand(&s) % (uint64_t)g.dags);
        const c_dag_t *dag = &g.dag[d];
        //  Operations per function: 1 to 3 reads or writes of Zipf keys, a sleep between.
        char ops[C_MAX_FNS][C_MAX_OPS][48];
        cb_value_t vals[C_MAX_FNS][C_MAX_OPS];
        cb_faas_arg_t args[C_MAX_FNS][C_MAX_OPS];
        cb_faas_fn_args_t fa[C_MAX_FNS];
        char fnames[C_MAX_FNS][32];
        for (int i = 0; i < dag->n; i++) {
            int nops = 1 + (int)(c_rand(&s) % 3);
            int k = 0;
            for (int o = 0; o < nops; o++) {
                bool write = c_rand(&s) % 4 == 0;
                snprintf(ops[i][k], sizeof ops[i][k], "%c:%s%c%d",
                         write ? 'w' : c_causal() ? 'R' : 'r', g.prefix, c_key_letter(),
                         c_key(&s));
                k++;
                if (o == 0 && g.sleep_ms > 0) {
                    snprintf(ops[i][k], sizeof ops[i][k], "s:%d", g.sleep_ms);
                    k++;
                }
            }
            for (int o = 0; o < k; o++) {
                memset(&vals[i][o], 0, sizeof vals[i][o]);
                cb_value_set_bytes(&vals[i][o], CB_VALUE_STRING, ops[i][o], strlen(ops[i][o]));
                args[i][o] = (cb_faas_arg_t){.value = &vals[i][o]};
            }
            snprintf(fnames[i], sizeof fnames[i], "%srw%d", g.prefix, i);
            fa[i] = (cb_faas_fn_args_t){fnames[i], args[i], (size_t)k};
        }
        char name[64];
        snprintf(name, sizeof name, "%scc%d", g.prefix, d);
        cb_faas_call_opts_t opts = {.consistency = (cb_faas_consistency_t)g.level,
                                    .timeout_ms = 10000};
        cb_faas_result_t out;
        double t0 = c_now_ms();
        int rc = cb_faas_call_dag(f, name, fa, (size_t)dag->n, &opts, &out);
        double ms = c_now_ms() - t0;
        if (rc == 0 && out.value.type == CB_VALUE_STRING) {
            size_t len = out.value.bytes.len;
            char *text = malloc(len + 1);
            memcpy(text, out.value.bytes.data, len);
            text[len] = 0;
            c_verdict_t v;
            if (!c_analyse(text, dag, &v)) {
                fprintf(stderr, "consistency_check: records that do not parse: %.300s\n", text);
                exit(1);
            }
            atomic_fetch_add(&g.rr_anomalies, v.rr);
            atomic_fetch_add(&g.causal_stale, v.stale);
            atomic_fetch_add(&g.causal_dep, v.dep);
            free(text);
            atomic_fetch_add(&g.ok, 1);
            g.lat_ms[r] = ms;
            g.lat_norm[r] = ms / dag->depth;
        } else {
            atomic_fetch_add(&g.failed, 1);
            g.lat_ms[r] = g.lat_norm[r] = -1;
            pthread_mutex_lock(&g.lock);
            if (g.n_errors < 5)
                g.errors[g.n_errors++] = strdup(rc ? cb_faas_last_error(f) : "non-string result");
            pthread_mutex_unlock(&g.lock);
        }
        cb_faas_result_fini(&out);
        for (int i = 0; i < dag->n; i++)
            for (int o = 0; o < (int)fa[i].n; o++)
                cb_value_fini(&vals[i][o]);
    }
    cb_faas_destroy(&f);
    return NULL;
}

//  One causal write by writer id: the KVS's current clock of key, ticked at "W<id>".
static void c_causal_write(cb_kvs_t *kvs, const char *key, unsigned id, const cb_value_t *value)
{
    lat_kind_t kind = g.level == CB_FAAS_MULTI_CAUSAL ? LAT_MULTI_CAUSAL : LAT_SINGLE_CAUSAL;
    lat_t current;
    lat_vclock_t clock = {0};
    if (cb_kvs_get(kvs, key, &current) == 0) {
        if (current.kind == kind)
            lat_causal_clock(&current, &clock);
        lat_fini(&current);
    }
    char writer[16];
    snprintf(writer, sizeof writer, "W%u", id);
    lat_vclock_tick(&clock, writer);
    cb_bytes_t bytes = {0};
    cb_value_encode(value, &bytes);
    lat_t v;
    lat_init(&v, kind);
    lat_causal_add(&v, &clock, NULL, bytes.data, bytes.len);
    (void)cb_kvs_put(kvs, key, &v);
    lat_fini(&v);
    cb_bytes_fini(&bytes);
    lat_vclock_fini(&clock);
}

static void *c_writer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t s = id * 0xD1B54A32D192ED03ull + g.seed + 11;
    cb_faas_t *f = c_client();
    cb_kvs_t *kvs = c_causal() ? cb_faas_kvs(f) : NULL;
    if (c_causal() && !kvs) {
        fprintf(stderr, "consistency_check: no KVS client: %s\n", cb_faas_last_error(f));
        exit(1);
    }
    for (uint64_t seq = 0; !atomic_load(&g.stop); seq++) {
        char key[48], val[64];
        snprintf(key, sizeof key, "%s%c%d", g.prefix, c_key_letter(), c_key(&s));
        cb_value_t v;
        memset(&v, 0, sizeof v);
        snprintf(val, sizeof val, "W%u-%llu", (unsigned)id, (unsigned long long)seq);
        cb_value_set_bytes(&v, CB_VALUE_STRING, val, strlen(val));
        //  Causal keys hold causal values: a version whose clock dominates what the KVS
        //  holds, ticked at this writer's id (two KVS round trips a write, one more than an
        //  LWW write).
        if (c_causal())
            c_causal_write(kvs, key, (unsigned)id, &v);
        else
            (void)cb_faas_put(f, key, &v);
        cb_value_fini(&v);
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    cb_faas_destroy(&f);
    return NULL;
}

static int c_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double c_pct(const double *v, int n, double p)
{
    if (n == 0)
        return 0;
    int i = (int)ceil(p * n) - 1;
    return v[i < 0 ? 0 : i];
}

static int c_sorted(const double *in, double *out)
{
    int n = 0;
    for (int i = 0; i < g.requests; i++)
        if (in[i] >= 0)
            out[n++] = in[i];
    qsort(out, (size_t)n, sizeof *out, c_cmp);
    return n;
}

static const char *const c_levels[] = {"lww", "rr", "single", "multi"};

int main(int argc, char **argv)
{
    g.scheduler = "tcp://127.0.0.1:5000";
    g.so = "examples/rw_step.so";
    g.requests = 100;
    g.clients = 4;
    g.writers = 2;
    g.keys = 8;
    g.dags = 6;
    g.seed = 1;
    g.zipf = 1.0;
    g.sleep_ms = 2;
    g.prefix = "cc_";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--setup")) {
            g.setup = true;
            continue;
        }
        if (!strcmp(a, "--self-check"))
            return c_self_check();
        if (!v) {
            fprintf(stderr, "consistency_check: %s needs a value\n", a);
            return 1;
        }
        i++;
        if (!strcmp(a, "--scheduler"))
            g.scheduler = v;
        else if (!strcmp(a, "--so"))
            g.so = v;
        else if (!strcmp(a, "--prefix"))
            g.prefix = v;
        else if (!strcmp(a, "--level")) {
            g.level = -1;
            for (int l = 0; l < 4; l++)
                if (!strcmp(v, c_levels[l]))
                    g.level = l;
            if (g.level < 0) {
                fprintf(stderr, "consistency_check: --level is lww, rr, single or multi\n");
                return 1;
            }
        } else if (!strcmp(a, "--requests"))
            g.requests = atoi(v);
        else if (!strcmp(a, "--clients"))
            g.clients = atoi(v);
        else if (!strcmp(a, "--writers"))
            g.writers = atoi(v);
        else if (!strcmp(a, "--keys"))
            g.keys = atoi(v);
        else if (!strcmp(a, "--dags"))
            g.dags = atoi(v);
        else if (!strcmp(a, "--seed"))
            g.seed = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--zipf"))
            g.zipf = atof(v);
        else if (!strcmp(a, "--sleep-ms"))
            g.sleep_ms = atoi(v);
        else {
            fprintf(stderr, "consistency_check: unknown flag %s\n", a);
            return 1;
        }
    }
    if (g.requests < 1 || g.clients < 1 || g.clients > 64 || g.writers < 0 || g.writers > 64 ||
        g.keys < 1 || g.keys > C_MAX_KEYS || g.dags < 1 || g.dags > C_MAX_DAGS ||
        g.sleep_ms < 0 || g.sleep_ms > 1000 || strlen(g.prefix) > 8) {
        fprintf(stderr, "consistency_check: a flag is out of range\n");
        return 1;
    }
    double total = 0;
    for (int i = 0; i < g.keys; i++)
        total += 1.0 / pow(i + 1, g.zipf);
    double acc = 0;
    for (int i = 0; i < g.keys; i++) {
        acc += 1.0 / pow(i + 1, g.zipf) / total;
        g.cdf[i] = acc;
    }
    g.cdf[g.keys - 1] = 1.0;
    c_make_dags();
    pthread_mutex_init(&g.lock, NULL);
    g.lat_ms = calloc((size_t)g.requests, sizeof *g.lat_ms);
    g.lat_norm = calloc((size_t)g.requests, sizeof *g.lat_norm);
    g.errors = calloc(5, sizeof *g.errors);
    if (g.setup) {
        cb_faas_t *f = c_client();
        c_setup(f);
        cb_faas_destroy(&f);
    }
    pthread_t writers[64], clients[64];
    for (int i = 0; i < g.writers; i++)
        pthread_create(&writers[i], NULL, c_writer, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < g.clients; i++)
        pthread_create(&clients[i], NULL, c_requester, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < g.clients; i++)
        pthread_join(clients[i], NULL);
    atomic_store(&g.stop, 1);
    for (int i = 0; i < g.writers; i++)
        pthread_join(writers[i], NULL);
    double *sorted = calloc((size_t)g.requests, sizeof *sorted);
    int n = c_sorted(g.lat_ms, sorted);
    double p50 = c_pct(sorted, n, 0.5), p99 = c_pct(sorted, n, 0.99);
    n = c_sorted(g.lat_norm, sorted);
    double n50 = c_pct(sorted, n, 0.5), n99 = c_pct(sorted, n, 0.99);
    printf("level %s requests %d ok %d failed %d rr_anomalies %d causal_stale %d causal_dep %d "
           "p50_ms %.2f p99_ms %.2f p50_per_depth_ms %.2f p99_per_depth_ms %.2f\n",
           c_levels[g.level], g.requests, atomic_load(&g.ok), atomic_load(&g.failed),
           atomic_load(&g.rr_anomalies), atomic_load(&g.causal_stale),
           atomic_load(&g.causal_dep), p50, p99, n50, n99);
    for (int i = 0; i < g.n_errors; i++) {
        fprintf(stderr, "consistency_check: a failed request: %s\n", g.errors[i]);
        free(g.errors[i]);
    }
    free(g.errors);
    free(sorted);
    free(g.lat_ms);
    free(g.lat_norm);
    pthread_mutex_destroy(&g.lock);
    return 0;
}
