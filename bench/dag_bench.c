//  bench/dag_bench.c: cb-bench, the composition benchmark of the Cloudburst paper against a
//  running cluster: square(incr(x)) as a 2-function DAG, and the same computation as one
//  function (a one-shot call), each call closed loop with one in flight; in the same run,
//  the floor: a bare ZeroMQ PUSH/PULL round trip between this process and a forked echo
//  child (the same socket pattern a call uses: the request pushed one way, the reply pushed
//  back to our own PULL socket).
//
//    cb-bench [--scheduler ADDR] [--kvs ADDR] [--port-offset N] [-n CALLS] [--warmup N]
//             [--rounds R] [--dag NAME] [--fn NAME] [--x X] [--no-future] [--no-dag]
//             [--sched] [--floor-only] [--csv FILE]
//
//  The cluster must hold the DAG (default "bench_dag": incr -> square) and the function
//  (default "incr_square"); bench/run.sh registers them. Each kind of call runs in R rounds
//  that take turns (floor, DAG, one-shot, DAG + future, floor, ...) so that a slow period of
//  a shared machine falls on all of them. With --sched, a fifth row: a request the scheduler
//  answers itself (list DAGs, which it reads from the KVS). Every latency is kept (no histogram): percentiles
//  are exact. Exit status: 0 when every call returned the right result, 1 when one did not,
//  2 for bad options.
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "client/faas.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/value.h"

#define S_FLOOR_BYTES 64
#define S_CALL_TIMEOUT_MS 2000

typedef struct {
    const char *name;
    int64_t *us;                //  owned latencies, one per successful call
    size_t n;
    size_t cap;
    size_t errors;
    char first_error[512];
    double elapsed_s;           //  wall time of all its rounds
} s_series_t;

static void s_record(s_series_t *s, int64_t us)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->us = cb_realloc(s->us, s->cap * sizeof *s->us);
    }
    s->us[s->n++] = us;
}

static void s_error(s_series_t *s, const char *what)
{
    if (!s->errors++)
        snprintf(s->first_error, sizeof s->first_error, "%s", what);
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

//  Exact percentile p (0..100) of sorted v[0..n): the smallest value with at least p% of
//  the values at or below it.
static int64_t s_pct(const int64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    return v[(rank > n ? n : rank) - 1];
}

//  --------------------------------------------------------------------------------------
//  The floor: a ZeroMQ echo child

typedef struct {
    pid_t pid;
    void *ctx;
    void *pull;
    void *push;
} s_floor_t;

//  Reads a line (an endpoint) from fd within 5 s. 0 or -1.
static int s_read_line(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) != 1)
            return -1;
        ssize_t n = read(fd, buf + len, 1);
        if (n <= 0)
            return -1;
        if (buf[len] == '\n')
            break;
        len++;
    }
    buf[len] = '\0';
    return 0;
}

static void s_write_line(int fd, const char *text)
{
    char buf[300];
    int n = snprintf(buf, sizeof buf, "%s\n", text);
    if (write(fd, buf, (size_t)n) != n)
        _exit(1);
}

//  Binds a PULL socket on an ephemeral loopback port; its endpoint goes into endpoint.
static void *s_bind_pull(void *ctx, char *endpoint, size_t cap)
{
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    int zero = 0;
    zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(pull, "tcp://127.0.0.1:*") != 0)
        return NULL;
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, endpoint, &cap);
    return pull;
}

//  The echo child: sends back every message until an empty one, or until its parent is gone.
static void s_echo_child(int to_parent, int from_parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    void *ctx = zmq_ctx_new();
    char mine[256], theirs[256];
    void *pull = s_bind_pull(ctx, mine, sizeof mine);
    if (!pull)
        _exit(1);
    s_write_line(to_parent, mine);
    if (s_read_line(from_parent, theirs, sizeof theirs) != 0)
        _exit(1);
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int zero = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(push, theirs);
    for (;;) {
        zmq_pollitem_t item = {pull, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 1000) == 0) {
            if (getppid() == 1)
                break;
            continue;
        }
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, pull, 0) < 0)
            break;
        bool stop = zmq_msg_size(&msg) == 0;
        if (!stop)
            zmq_msg_send(&msg, push, 0);
        zmq_msg_close(&msg);
        if (stop)
            break;
    }
    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    _exit(0);
}

static int s_floor_start(s_floor_t *f)
{
    int to_parent[2], from_parent[2];
    if (pipe(to_parent) != 0 || pipe(from_parent) != 0)
        return -1;
    fflush(NULL);
    f->pid = fork();
    if (f->pid < 0)
        return -1;
    if (f->pid == 0) {
        close(to_parent[0]);
        close(from_parent[1]);
        s_echo_child(to_parent[1], from_parent[0]);
    }
    close(to_parent[1]);
    close(from_parent[0]);
    f->ctx = zmq_ctx_new();
    char mine[256], theirs[256];
    f->pull = s_bind_pull(f->ctx, mine, sizeof mine);
    int rc = f->pull ? 0 : -1;
    if (rc == 0)
        s_write_line(from_parent[1], mine);
    if (rc == 0 && s_read_line(to_parent[0], theirs, sizeof theirs) != 0)
        rc = -1;
    close(to_parent[0]);
    close(from_parent[1]);
    if (rc)
        return rc;
    f->push = zmq_socket(f->ctx, ZMQ_PUSH);
    int zero = 0;
    zmq_setsockopt(f->push, ZMQ_LINGER, &zero, sizeof zero);
    return zmq_connect(f->push, theirs);
}

//  One round trip: 64 bytes there and back. Latency in us, or -1 after 2 s without answer.
static int64_t s_floor_once(s_floor_t *f)
{
    char buf[S_FLOOR_BYTES];
    memset(buf, 'x', sizeof buf);
    int64_t t0 = cb_clock_mono_us();
    if (zmq_send(f->push, buf, sizeof buf, 0) != (int)sizeof buf)
        return -1;
    zmq_pollitem_t item = {f->pull, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, S_CALL_TIMEOUT_MS) != 1)
        return -1;
    if (zmq_recv(f->pull, buf, sizeof buf, 0) != (int)sizeof buf)
        return -1;
    return cb_clock_mono_us() - t0;
}

static void s_floor_stop(s_floor_t *f)
{
    if (f->push)
        zmq_send(f->push, "", 0, ZMQ_DONTWAIT);
    if (f->pid > 0) {
        for (int i = 0; i < 100 && waitpid(f->pid, NULL, WNOHANG) == 0; i++)
            usleep(10000);
        if (waitpid(f->pid, NULL, WNOHANG) == 0) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, NULL, 0);
        }
    }
    if (f->push)
        zmq_close(f->push);
    if (f->pull)
        zmq_close(f->pull);
    if (f->ctx)
        zmq_ctx_term(f->ctx);
}

//  --------------------------------------------------------------------------------------
//  Calls

typedef enum { S_FLOOR, S_SCHED, S_DAG, S_ONE_SHOT, S_FUTURE, S_KINDS } s_kind_t;

typedef struct {
    cb_faas_t *faas;
    s_floor_t floor;
    const char *dag;
    const char *fn;
    int64_t x;
    int64_t expect;
    uint64_t seq;               //  output keys of the future runs
    char prefix[32];
} s_bench_t;

//  One call of the given kind; records its latency or its error.
static void s_once(s_bench_t *b, s_kind_t kind, s_series_t *s, bool record)
{
    if (kind == S_FLOOR) {
        int64_t us = s_floor_once(&b->floor);
        if (us < 0)
            s_error(s, "the echo child did not answer");
        else if (record)
            s_record(s, us);
        return;
    }
    if (kind == S_SCHED) {
        //  One request the scheduler answers itself: the cost of its hop.
        cb_faas_names_t names;
        int64_t t0 = cb_clock_mono_us();
        int rc = cb_faas_list_dags(b->faas, &names);
        int64_t us = cb_clock_mono_us() - t0;
        cb_faas_names_fini(&names);
        if (rc)
            s_error(s, cb_faas_last_error(b->faas));
        else if (record)
            s_record(s, us);
        return;
    }
    cb_value_t x;
    cb_value_set_int(&x, b->x);
    cb_faas_arg_t arg = {&x, NULL};
    cb_faas_fn_args_t fn_args = {"incr", &arg, 1};
    cb_faas_call_opts_t opts = {NULL, S_CALL_TIMEOUT_MS, CB_FAAS_LWW};
    char key[64];
    if (kind == S_FUTURE) {
        snprintf(key, sizeof key, "bench/%s/%" PRIu64, b->prefix, b->seq++);
        opts.output_key = key;
    }
    cb_faas_result_t res;
    cb_value_t v;
    memset(&v, 0, sizeof v);
    int64_t t0 = cb_clock_mono_us();
    int rc = kind == S_ONE_SHOT ? cb_faas_call_function(b->faas, b->fn, &arg, 1, &opts, &res)
                                : cb_faas_call_dag(b->faas, b->dag, &fn_args, 1, &opts, &res);
    const cb_value_t *got = &res.value;
    if (rc == 0 && kind == S_FUTURE) {
        rc = cb_faas_future_get(b->faas, key, S_CALL_TIMEOUT_MS, &v);
        got = &v;
    }
    int64_t us = cb_clock_mono_us() - t0;
    if (rc)
        s_error(s, cb_faas_last_error(b->faas));
    else if (got->type != CB_VALUE_INT64 || got->i64 != b->expect)
        s_error(s, "wrong result");
    else if (record)
        s_record(s, us);
    cb_faas_result_fini(&res);
    cb_value_fini(&v);
    cb_value_fini(&x);
}

static void s_print_row(FILE *out, const s_series_t *s, bool csv)
{
    qsort(s->us, s->n, sizeof *s->us, s_cmp_i64);
    double mean = 0;
    for (size_t i = 0; i < s->n; i++)
        mean += (double)s->us[i];
    mean = s->n ? mean / (double)s->n : 0;
    int64_t p50 = s_pct(s->us, s->n, 50), p90 = s_pct(s->us, s->n, 90);
    int64_t p99 = s_pct(s->us, s->n, 99), max = s->n ? s->us[s->n - 1] : 0;
    double rate = s->elapsed_s > 0 ? (double)(s->n + s->errors) / s->elapsed_s : 0;
    if (csv)
        fprintf(out, "%s,%zu,%zu,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%.0f,%.0f\n",
                s->name, s->n, s->errors, p50, p90, p99, max, mean, rate);
    else
        fprintf(out, "| %-34s | %6zu | %6" PRId64 " | %6" PRId64 " | %6" PRId64 " | %7" PRId64
                " | %6.0f | %7.0f | %6zu |\n", s->name, s->n, p50, p90, p99, max, mean, rate,
                s->errors);
}

static int s_usage(FILE *out, int status)
{
    fprintf(out,
            "usage: cb-bench [--scheduler ADDR] [--kvs ADDR] [--port-offset N] [-n CALLS]\n"
            "                [--warmup N] [--rounds R] [--dag NAME] [--fn NAME] [--x X]\n"
            "                [--no-future] [--no-dag] [--sched] [--floor-only] [--csv FILE]\n"
            "\n"
            "The composition benchmark: square(incr(x)) as the DAG NAME (default bench_dag:\n"
            "incr -> square) and as the one function FN (default incr_square), CALLS calls each\n"
            "(default 2000), closed loop with one in flight, plus the same with the DAG's result\n"
            "written to an output key and read back as a future, and the floor: a bare ZeroMQ\n"
            "PUSH/PULL round trip of 64 B to a forked echo process. Latencies in microseconds.\n");
    return status;
}

int main(int argc, char **argv)
{
    const char *scheduler = NULL, *kvs = NULL, *csv = NULL;
    long offset = 0, n = 2000, warmup = 200, rounds = 4, x = 3;
    bool future = true, floor_only = false, dag = true, sched = false;
    s_bench_t b;
    memset(&b, 0, sizeof b);
    b.dag = "bench_dag";
    b.fn = "incr_square";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        long *num = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return s_usage(stdout, 0);
        if (!strcmp(a, "--no-future")) {
            future = false;
            continue;
        }
        if (!strcmp(a, "--sched")) {
            sched = true;
            continue;
        }
        if (!strcmp(a, "--no-dag")) {
            dag = false;
            continue;
        }
        if (!strcmp(a, "--floor-only")) {
            floor_only = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "cb-bench: %s needs a value (--help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--scheduler"))
            scheduler = v;
        else if (!strcmp(a, "--kvs"))
            kvs = v;
        else if (!strcmp(a, "--csv"))
            csv = v;
        else if (!strcmp(a, "--dag"))
            b.dag = v;
        else if (!strcmp(a, "--fn"))
            b.fn = v;
        else if (!strcmp(a, "--port-offset"))
            num = &offset;
        else if (!strcmp(a, "-n"))
            num = &n;
        else if (!strcmp(a, "--warmup"))
            num = &warmup;
        else if (!strcmp(a, "--rounds"))
            num = &rounds;
        else if (!strcmp(a, "--x"))
            num = &x;
        else {
            fprintf(stderr, "cb-bench: unknown option %s (--help)\n", a);
            return 2;
        }
        if (num) {
            errno = 0;
            *num = strtol(v, &end, 10);
            if (!*v || *end || errno || *num < 0 || *num > 10000000) {
                fprintf(stderr, "cb-bench: %s needs a number\n", a);
                return 2;
            }
        }
    }
    if (n < 1 || rounds < 1 || x > 1000000) {
        fprintf(stderr, "cb-bench: -n and --rounds must be positive, --x at most 1000000\n");
        return 2;
    }
    b.x = x;
    b.expect = (x + 1) * (x + 1);
    snprintf(b.prefix, sizeof b.prefix, "%d", (int)getpid());
    char sched_buf[64], kvs_buf[64];
    if (!scheduler) {
        snprintf(sched_buf, sizeof sched_buf, "tcp://127.0.0.1:%ld", 5000 + offset);
        scheduler = sched_buf;
    }
    if (!kvs) {
        snprintf(kvs_buf, sizeof kvs_buf, "tcp://127.0.0.1:%ld", 6450 + offset);
        kvs = kvs_buf;
    }

    //  The echo child first: no ZeroMQ context may exist in this process across fork.
    if (s_floor_start(&b.floor) != 0) {
        fprintf(stderr, "cb-bench: cannot start the echo child\n");
        s_floor_stop(&b.floor);
        return 1;
    }
    if (!floor_only) {
        cb_faas_config_t config = {scheduler, kvs, NULL, 5000};
        b.faas = cb_faas_new(&config);
        if (!b.faas) {
            fprintf(stderr, "cb-bench: bad address %s or %s\n", scheduler, kvs);
            s_floor_stop(&b.floor);
            return 2;
        }
    }

    s_series_t series[S_KINDS];
    memset(series, 0, sizeof series);
    series[S_FLOOR].name = "zmq push/pull round trip (floor)";
    series[S_SCHED].name = "list DAGs (scheduler, KVS read)";
    series[S_DAG].name = "DAG incr -> square";
    series[S_ONE_SHOT].name = "one function incr_square";
    series[S_FUTURE].name = "DAG -> output key -> future get";
    bool run[S_KINDS] = {true, !floor_only && sched, !floor_only && dag, !floor_only,
                         !floor_only && dag && future};

    //  Warm-up: loads and pins everything, fills caches, wakes the cores.
    for (int k = 0; k < S_KINDS; k++)
        for (long i = 0; run[k] && i < warmup; i++)
            s_once(&b, (s_kind_t)k, &series[k], false);
    for (int k = 0; k < S_KINDS; k++)
        if (run[k] && series[k].errors) {
            fprintf(stderr, "cb-bench: warm-up of '%s' failed %zu times: %s\n", series[k].name,
                    series[k].errors, series[k].first_error);
            cb_faas_destroy(&b.faas);
            s_floor_stop(&b.floor);
            return 1;
        }

    printf("cb-bench: scheduler %s, x = %ld, %ld calls of each kind in %ld rounds taking turns, "
           "after %ld warm-up calls; closed loop, one call in flight\n", scheduler, x, n, rounds,
           warmup);
    for (long r = 0; r < rounds; r++) {
        long per = n / rounds + (r < n % rounds);
        for (int k = 0; k < S_KINDS; k++) {
            if (!run[k])
                continue;
            int64_t t0 = cb_clock_mono_us();
            for (long i = 0; i < per; i++)
                s_once(&b, (s_kind_t)k, &series[k], true);
            series[k].elapsed_s += (double)(cb_clock_mono_us() - t0) / 1e6;
        }
    }

    printf("\n| %-34s | %6s | %6s | %6s | %6s | %7s | %6s | %7s | %6s |\n", "latency (us)", "calls",
           "p50", "p90", "p99", "max", "mean", "calls/s", "errors");
    printf("|%s|--:|--:|--:|--:|--:|--:|--:|--:|\n", "---");
    size_t errors = 0;
    for (int k = 0; k < S_KINDS; k++)
        if (run[k]) {
            s_print_row(stdout, &series[k], false);
            errors += series[k].errors;
        }
    for (int k = 0; k < S_KINDS; k++)
        if (run[k] && series[k].errors)
            printf("errors of '%s': %zu, the first: %s\n", series[k].name, series[k].errors,
                   series[k].first_error);
    if (csv) {
        FILE *f = fopen(csv, "a");
        if (!f) {
            fprintf(stderr, "cb-bench: cannot write %s\n", csv);
        } else {
            if (ftell(f) == 0)
                fprintf(f, "test,calls,errors,p50_us,p90_us,p99_us,max_us,mean_us,calls_per_s\n");
            for (int k = 0; k < S_KINDS; k++)
                if (run[k])
                    s_print_row(f, &series[k], true);
            fclose(f);
        }
    }
    for (int k = 0; k < S_KINDS; k++)
        cb_free(series[k].us);
    cb_faas_destroy(&b.faas);
    s_floor_stop(&b.floor);
    return errors ? 1 : 0;
}
