//  client/cb_main.c: `cb`, the command line of the FaaS runtime, and the supervisor of a
//  local cluster.
//
//    cb [GLOBAL OPTIONS] VERB [ARGS]      (cb help)
//
//  Every verb prints its result on stdout, or one `cb: ...` line on stderr and exits non-zero:
//  1 when the operation failed, 2 for a bad command line. Nothing waits without a bound.
//
//  `cb up` forks a daemonised supervisor (its own session) that starts anna-server,
//  cb-scheduler, and per node one cb-cache and E cb-executors, all from the folder of this
//  binary; it restarts any child that dies (with a backoff) and stops them all on SIGTERM.
//  It writes into its run directory (--dir, $CB_DIR, or ./.cb):
//      supervisor.pid   its pid (removed when it exits)
//      cluster          the cluster's addresses and shape, read by every other verb
//      state            one line per child: name, pid, restarts, up/down (rewritten on change)
//      logs/NAME.log    the output of each child, and supervisor.log
//  `cb up` itself returns only once the scheduler reports every executor and every cache,
//  or fails after --wait seconds, stopping what it started.
//  SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/faas.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/value.h"

#define S_DEFAULT_TIMEOUT_MS 5000
#define S_SCHEDULER_PORT 5000
#define S_REPORT_PORT 5007
#define S_KVS_ROUTING_PORT 6450
#define S_CACHE_PORT 5100       //  + 2 x node: routing, + 1: data
#define S_MAX_NODES 16
#define S_MAX_EXECUTORS 64
#define S_UP_WAIT_S 30
//  Supervisor: a child is given this long to stop on SIGTERM before SIGKILL.
#define S_STOP_GRACE_MS 5000
//  Restart backoff: 100 ms doubling to 5 s; a child that ran this long starts over at 100 ms.
#define S_BACKOFF_MIN_MS 100
#define S_BACKOFF_MAX_MS 5000
#define S_STABLE_MS 10000

//  --------------------------------------------------------------------------------------
//  Options and messages

typedef struct {
    const char *dir;            //  run directory (resolved)
    const char *scheduler;      //  NULL: from the run dir or the port offset
    const char *kvs;
    int port_offset;            //  -1 when not given
    int timeout_ms;
    char sched_buf[300];
    char kvs_buf[300];
} s_global_t;

//  The words of the command line after the global options, with the verb's own flags.
typedef struct {
    char **pos;                 //  positional words, borrowed from argv
    int n_pos;
    char **flag_names;          //  "--edge", borrowed
    char **flag_values;         //  NULL for a switch
    int n_flags;
} s_words_t;

static int s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_fail(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("cb: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    return 1;
}

static int s_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_usage_error(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("cb: ", stderr);
    vfprintf(stderr, fmt, args);
    fputs(" (cb help)\n", stderr);
    va_end(args);
    return 2;
}

//  Parses a decimal integer in [min, max]. 0 or -EINVAL.
static int s_parse_int(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static const char *s_flag(const s_words_t *w, const char *name)
{
    const char *found = NULL;
    for (int i = 0; i < w->n_flags; i++)
        if (!strcmp(w->flag_names[i], name))
            found = w->flag_values[i] ? w->flag_values[i] : "";
    return found;
}

//  Every flag given must be one of allowed (a NULL-terminated list); 0 or 2 (after a message).
static int s_flags_check(const s_words_t *w, const char *verb, const char *const *allowed)
{
    for (int i = 0; i < w->n_flags; i++) {
        bool ok = !strcmp(w->flag_names[i], "--timeout");    //  global
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(*a, w->flag_names[i]);
        if (!ok)
            return s_usage_error("%s: unknown option %s", verb, w->flag_names[i]);
    }
    return 0;
}

//  --------------------------------------------------------------------------------------
//  Files of the run directory

static void s_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        buf[0] = '\0';
}

//  Reads a small text file (at most cap - 1 bytes) into buf. 0 or negative errno.
static int s_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    int err = n < 0 ? -errno : 0;
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return err;
}

//  Writes text to path atomically (tmp + rename) so that a reader never sees half of it.
static int s_write_file(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = -errno;
            close(fd);
            unlink(tmp);
            return err;
        }
        done += (size_t)n;
    }
    close(fd);
    return rename(tmp, path) == 0 ? 0 : -errno;
}

//  Value of "name value" line in text, copied into out. true when found.
static bool s_field(const char *text, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, name, n) && p[n] == ' ') {
            const char *v = p + n + 1, *e = strchr(v, '\n');
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= cap)
                return false;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

//  Pid of the live supervisor of dir, or 0. A pid file whose process is gone, or is no
//  longer a `cb` (the pid was reused), counts as none.
static pid_t s_supervisor_pid(const char *dir)
{
    char path[PATH_MAX], buf[64], exe[PATH_MAX], link[64];
    s_path(path, sizeof path, dir, "supervisor.pid");
    long pid;
    if (s_read_file(path, buf, sizeof buf) != 0)
        return 0;
    buf[strcspn(buf, "\n")] = '\0';
    if (s_parse_int(buf, 1, INT_MAX, &pid) != 0 || kill((pid_t)pid, 0) != 0)
        return 0;
    snprintf(link, sizeof link, "/proc/%ld/exe", pid);
    ssize_t n = readlink(link, exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        const char *base = strrchr(exe, '/');
        base = base ? base + 1 : exe;
        if (strncmp(base, "cb", 2) != 0 || (base[2] && base[2] != ' '))
            return 0;
    }
    return (pid_t)pid;
}

//  --------------------------------------------------------------------------------------
//  Addresses: flags, else the run dir's cluster file, else the defaults of the port offset.

static void s_resolve(s_global_t *g)
{
    char path[PATH_MAX], text[4096] = "";
    s_path(path, sizeof path, g->dir, "cluster");
    bool have_file = g->port_offset < 0 && s_read_file(path, text, sizeof text) == 0;
    int offset = g->port_offset < 0 ? 0 : g->port_offset;
    if (!g->scheduler) {
        if (!(have_file && s_field(text, "scheduler", g->sched_buf, sizeof g->sched_buf)))
            snprintf(g->sched_buf, sizeof g->sched_buf, "tcp://127.0.0.1:%d",
                     S_SCHEDULER_PORT + offset);
        g->scheduler = g->sched_buf;
    }
    if (!g->kvs) {
        if (!(have_file && s_field(text, "kvs", g->kvs_buf, sizeof g->kvs_buf)))
            snprintf(g->kvs_buf, sizeof g->kvs_buf, "tcp://127.0.0.1:%d",
                     S_KVS_ROUTING_PORT + offset);
        g->kvs = g->kvs_buf;
    }
}

static cb_faas_t *s_client(s_global_t *g)
{
    s_resolve(g);
    cb_faas_config_t config = {.scheduler = g->scheduler, .kvs_routing = g->kvs,
                               .timeout_ms = g->timeout_ms};
    cb_faas_t *faas = cb_faas_new(&config);
    if (!faas) {
        if (errno == EINVAL)
            s_fail("bad address: scheduler '%s', kvs '%s' (expected tcp://HOST:PORT)",
                   g->scheduler, g->kvs);
        else
            s_fail("cannot open a client socket: %s", strerror(errno));
    }
    return faas;
}

static int s_fail_faas(cb_faas_t *faas, int rc)
{
    const char *msg = cb_faas_last_error(faas);
    return s_fail("%s", *msg ? msg : cb_strerror(rc));
}

//  --------------------------------------------------------------------------------------
//  Values and arguments

static void s_print_value(FILE *out, const cb_value_t *v)
{
    char *text = cb_value_format(v);
    fprintf(out, "%s\n", text);
    cb_free(text);
}

//  Parses a command-line argument: "@key" is a KVS reference, anything else a typed value.
static int s_parse_arg(const char *text, cb_value_t *value, cb_faas_arg_t *arg)
{
    memset(value, 0, sizeof *value);
    if (text[0] == '@') {
        if (!text[1])
            return s_usage_error("'@' needs a key: @KEY reads the argument from the KVS");
        arg->ref = text + 1;
        arg->value = NULL;
        return 0;
    }
    if (cb_value_parse(text, value) != 0)
        return s_usage_error("bad value '%s' (3, 2.5, str:text, int:3, float:2.5, bytes:\\x00)",
                             text);
    arg->ref = NULL;
    arg->value = value;
    return 0;
}

static void s_print_logs(const cb_faas_result_t *res)
{
    for (size_t i = 0; i < res->n_logs; i++)
        fprintf(stderr, "log: %s\n", res->logs[i]);
}

//  Call options from --output-key, --timeout, --consistency. 0 or 2.
static int s_call_opts(const s_words_t *w, cb_faas_call_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->output_key = s_flag(w, "--output-key");
    if (opts->output_key && !*opts->output_key)
        return s_usage_error("--output-key needs a key");
    const char *t = s_flag(w, "--timeout");
    long v;
    if (t) {
        if (s_parse_int(t, 1, 3600000, &v) != 0)
            return s_usage_error("--timeout needs milliseconds between 1 and 3600000");
        opts->timeout_ms = (int)v;
    }
    const char *c = s_flag(w, "--consistency");
    if (c) {
        //  Long names and short ones (lww|rr|single|multi), in Consistency order.
        static const char *const names[] = {"lww", "repeatable-read", "single-causal",
                                            "multi-causal"};
        static const char *const short_names[] = {"lww", "rr", "single", "multi"};
        bool found = false;
        for (int i = 0; i < 4 && !found; i++)
            if (!strcmp(c, names[i]) || !strcmp(c, short_names[i])) {
                opts->consistency = (cb_faas_consistency_t)i;
                found = true;
            }
        if (!found)
            return s_usage_error("--consistency is one of lww, rr (repeatable-read), "
                                 "single (single-causal), multi (multi-causal)");
    }
    return 0;
}

//  Prints a call's outcome: the value, or the future's key (--async), or the value read from
//  the future. Returns the exit status.
static int s_finish_call(cb_faas_t *faas, int rc, cb_faas_result_t *res, const s_words_t *w,
                         const cb_faas_call_opts_t *opts)
{
    s_print_logs(res);
    if (rc)
        return s_fail_faas(faas, rc);
    if (res->output_key) {
        if (s_flag(w, "--async")) {
            printf("%s\n", res->output_key);
            return 0;
        }
        int wait = (opts->timeout_ms > 0 ? opts->timeout_ms : CB_FAAS_DEFAULT_CALL_TIMEOUT_MS)
                   + CB_FAAS_CALL_MARGIN_MS;
        cb_value_t v;
        rc = cb_faas_future_get(faas, res->output_key, wait, &v);
        if (rc)
            return s_fail_faas(faas, rc);
        s_print_value(stdout, &v);
        cb_value_fini(&v);
        return 0;
    }
    s_print_value(stdout, &res->value);
    return 0;
}

//  --------------------------------------------------------------------------------------
//  Verbs that talk to a running cluster

static int s_cmd_register(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {"--sign", NULL};
    if (s_flags_check(w, "register", allowed))
        return 2;
    if (w->n_pos != 2)
        return s_usage_error("usage: cb register NAME FILE.so [--sign SECRETKEYFILE]");
    const char *name = w->pos[0], *file = w->pos[1], *sign = s_flag(w, "--sign");
    if (!cb_faas_name_valid(name))
        return s_usage_error("invalid function name '%s' (1..128 of A-Z a-z 0-9 _ . -)", name);
    uint8_t sk[CB_FAAS_SECRET_KEY_BYTES];
    if (sign) {
        int rc = cb_faas_key_read(sign, sk, sizeof sk);
        if (rc == -EINVAL)
            return s_fail("%s is not a secret key (expected %d hex digits, as cb keygen writes)",
                          sign, 2 * CB_FAAS_SECRET_KEY_BYTES);
        if (rc)
            return s_fail("cannot read key %s: %s", sign, strerror(-rc));
    }
    cb_faas_t *faas = s_client(g);
    if (!faas)
        return 1;
    int rc = cb_faas_register_file(faas, name, file, sign ? sk : NULL);
    sodium_memzero(sk, sizeof sk);
    int status = rc ? s_fail_faas(faas, rc) : 0;
    if (!rc)
        printf("registered %s%s\n", name, sign ? " (signed)" : "");
    cb_faas_destroy(&faas);
    return status;
}

static int s_print_names(s_global_t *g, bool dags)
{
    cb_faas_t *faas = s_client(g);
    if (!faas)
        return 1;
    cb_faas_names_t names;
    int rc = dags ? cb_faas_list_dags(faas, &names) : cb_faas_list_functions(faas, &names);
    int status = rc ? s_fail_faas(faas, rc) : 0;
    for (size_t i = 0; i < names.len; i++)
        printf("%s\n", names.names[i]);
    cb_faas_names_fini(&names);
    cb_faas_destroy(&faas);
    return status;
}

static int s_cmd_functions(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {NULL};
    if (s_flags_check(w, "functions", allowed))
        return 2;
    if (w->n_pos)
        return s_usage_error("usage: cb functions");
    return s_print_names(g, false);
}

static int s_cmd_dags(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {NULL};
    if (s_flags_check(w, "dags", allowed))
        return 2;
    if (w->n_pos)
        return s_usage_error("usage: cb dags");
    return s_print_names(g, true);
}

static int s_cmd_delete(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {NULL};
    if (s_flags_check(w, "delete", allowed))
        return 2;
    if (w->n_pos != 1)
        return s_usage_error("usage: cb delete NAME");
    cb_faas_t *faas = s_client(g);
    if (!faas)
        return 1;
    int rc = cb_faas_delete_function(faas, w->pos[0]);
    int status = rc ? s_fail_faas(faas, rc) : 0;
    if (!rc)
        printf("deleted %s\n", w->pos[0]);
    cb_faas_destroy(&faas);
    return status;
}

//  cb dag create NAME FN... [--edge A:B ...]: without --edge the functions form a chain in
//  the order given; with --edge exactly the edges given (in that order: it is the order of
//  a function's inputs).
static int s_dag_create(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {"--edge", NULL};
    if (s_flags_check(w, "dag create", allowed))
        return 2;
    if (w->n_pos < 3)
        return s_usage_error("usage: cb dag create NAME FN... [--edge FROM:TO ...]");
    const char *name = w->pos[1];
    size_t n_fns = (size_t)w->n_pos - 2;
    const char **fns = cb_calloc(n_fns, sizeof *fns);
    for (size_t i = 0; i < n_fns; i++)
        fns[i] = w->pos[2 + i];
    size_t n_edges = 0;
    for (int i = 0; i < w->n_flags; i++)
        n_edges += !strcmp(w->flag_names[i], "--edge");
    bool chain = n_edges == 0;
    if (chain)
        n_edges = n_fns - 1;
    cb_faas_edge_t *edges = n_edges ? cb_calloc(n_edges, sizeof *edges) : NULL;
    char **bufs = n_edges ? cb_calloc(n_edges, sizeof *bufs) : NULL;
    int status = 0;
    if (chain) {
        for (size_t i = 0; i + 1 < n_fns; i++)
            edges[i] = (cb_faas_edge_t){fns[i], fns[i + 1]};
    } else {
        size_t e = 0;
        for (int i = 0; i < w->n_flags && !status; i++) {
            if (strcmp(w->flag_names[i], "--edge"))
                continue;
            bufs[e] = cb_strdup(w->flag_values[i]);
            char *colon = strchr(bufs[e], ':');
            if (!colon || colon == bufs[e] || !colon[1] || strchr(colon + 1, ':')) {
                status = s_usage_error("--edge needs FROM:TO, not '%s'", w->flag_values[i]);
                break;
            }
            *colon = '\0';
            edges[e] = (cb_faas_edge_t){bufs[e], colon + 1};
            e++;
        }
    }
    cb_faas_t *faas = status ? NULL : s_client(g);
    if (!status && !faas)
        status = 1;
    if (faas) {
        cb_faas_dag_t dag = {name, fns, n_fns, edges, n_edges};
        int rc = cb_faas_register_dag(faas, &dag);
        if (rc) {
            status = s_fail_faas(faas, rc);
        } else {
            printf("created DAG %s:", name);
            if (!n_edges)
                printf(" %s", fns[0]);
            for (size_t i = 0; i < n_edges; i++)
                printf("%s %s -> %s", i ? "," : "", edges[i].from, edges[i].to);
            printf("\n");
        }
        cb_faas_destroy(&faas);
    }
    for (size_t i = 0; i < n_edges; i++)
        cb_free(bufs ? bufs[i] : NULL);
    cb_free(bufs);
    cb_free(edges);
    cb_free(fns);
    return status;
}

static int s_cmd_dag(s_global_t *g, const s_words_t *w)
{
    if (w->n_pos >= 1 && !strcmp(w->pos[0], "create"))
        return s_dag_create(g, w);
    if (w->n_pos >= 1 && !strcmp(w->pos[0], "delete")) {
        static const char *const allowed[] = {NULL};
        if (s_flags_check(w, "dag delete", allowed))
            return 2;
        if (w->n_pos != 2)
            return s_usage_error("usage: cb dag delete NAME");
        cb_faas_t *faas = s_client(g);
        if (!faas)
            return 1;
        int rc = cb_faas_delete_dag(faas, w->pos[1]);
        int status = rc ? s_fail_faas(faas, rc) : 0;
        if (!rc)
            printf("deleted DAG %s\n", w->pos[1]);
        cb_faas_destroy(&faas);
        return status;
    }
    if (w->n_pos >= 1 && !strcmp(w->pos[0], "list"))
        return s_print_names(g, true);
    return s_usage_error("usage: cb dag create NAME FN... [--edge FROM:TO ...] | "
                         "cb dag delete NAME | cb dags");
}

static int s_cmd_call(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {"--output-key", "--timeout", "--consistency",
                                          "--async", NULL};
    if (s_flags_check(w, "call", allowed))
        return 2;
    if (w->n_pos < 1)
        return s_usage_error("usage: cb call FN [ARG...] [--output-key K] [--timeout MS]");
    cb_faas_call_opts_t opts;
    if (s_call_opts(w, &opts))
        return 2;
    if (s_flag(w, "--async") && !opts.output_key)
        return s_usage_error("--async needs --output-key");
    size_t n = (size_t)w->n_pos - 1;
    cb_value_t *values = cb_calloc(n + 1, sizeof *values);
    cb_faas_arg_t *args = cb_calloc(n + 1, sizeof *args);
    int status = 0;
    for (size_t i = 0; i < n && !status; i++)
        status = s_parse_arg(w->pos[1 + i], &values[i], &args[i]);
    cb_faas_t *faas = status ? NULL : s_client(g);
    if (!status && !faas)
        status = 1;
    if (faas) {
        cb_faas_result_t res;
        int rc = cb_faas_call_function(faas, w->pos[0], args, n, &opts, &res);
        status = s_finish_call(faas, rc, &res, w, &opts);
        cb_faas_result_fini(&res);
        cb_faas_destroy(&faas);
    }
    for (size_t i = 0; i < n; i++)
        cb_value_fini(&values[i]);
    cb_free(values);
    cb_free(args);
    return status;
}

//  cb call-dag NAME [--arg FN=VALUE ...]: arguments of one function are given in order;
//  they are grouped per function here.
static int s_cmd_call_dag(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {"--arg", "--output-key", "--timeout",
                                          "--consistency", "--async", NULL};
    if (s_flags_check(w, "call-dag", allowed))
        return 2;
    if (w->n_pos != 1)
        return s_usage_error("usage: cb call-dag NAME [--arg FN=VALUE ...] [--output-key K] "
                             "[--timeout MS]");
    cb_faas_call_opts_t opts;
    if (s_call_opts(w, &opts))
        return 2;
    if (s_flag(w, "--async") && !opts.output_key)
        return s_usage_error("--async needs --output-key");
    size_t n = (size_t)w->n_flags;     //  an upper bound on the number of --arg
    cb_value_t *values = cb_calloc(n + 1, sizeof *values);
    cb_faas_arg_t *args = cb_calloc(n + 1, sizeof *args);
    char **fn_of = cb_calloc(n + 1, sizeof *fn_of);
    cb_faas_fn_args_t *groups = cb_calloc(n + 1, sizeof *groups);
    cb_faas_arg_t *grouped = cb_calloc(n + 1, sizeof *grouped);
    size_t n_args = 0, n_groups = 0;
    int status = 0;
    for (int i = 0; i < w->n_flags && !status; i++) {
        if (strcmp(w->flag_names[i], "--arg"))
            continue;
        const char *eq = strchr(w->flag_values[i], '=');
        if (!eq || eq == w->flag_values[i]) {
            status = s_usage_error("--arg needs FN=VALUE, not '%s'", w->flag_values[i]);
            break;
        }
        fn_of[n_args] = cb_strndup(w->flag_values[i], (size_t)(eq - w->flag_values[i]));
        status = s_parse_arg(eq + 1, &values[n_args], &args[n_args]);
        n_args++;
    }
    //  Group by function, keeping the order of the command line within each.
    size_t k = 0;
    for (size_t i = 0; i < n_args && !status; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(fn_of[i], fn_of[j]);
        if (seen)
            continue;
        groups[n_groups] = (cb_faas_fn_args_t){fn_of[i], &grouped[k], 0};
        for (size_t j = i; j < n_args; j++)
            if (!strcmp(fn_of[i], fn_of[j])) {
                grouped[k++] = args[j];
                groups[n_groups].n++;
            }
        n_groups++;
    }
    cb_faas_t *faas = status ? NULL : s_client(g);
    if (!status && !faas)
        status = 1;
    if (faas) {
        cb_faas_result_t res;
        int rc = cb_faas_call_dag(faas, w->pos[0], groups, n_groups, &opts, &res);
        status = s_finish_call(faas, rc, &res, w, &opts);
        cb_faas_result_fini(&res);
        cb_faas_destroy(&faas);
    }
    for (size_t i = 0; i < n_args; i++) {
        cb_value_fini(&values[i]);
        cb_free(fn_of[i]);
    }
    cb_free(values);
    cb_free(args);
    cb_free(fn_of);
    cb_free(groups);
    cb_free(grouped);
    return status;
}

static int s_cmd_get(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {"--wait", NULL};
    if (s_flags_check(w, "get", allowed))
        return 2;
    if (w->n_pos != 1 || !*w->pos[0])
        return s_usage_error("usage: cb get KEY [--wait MS]");
    long wait = 0;
    const char *wt = s_flag(w, "--wait");
    if (wt && s_parse_int(wt, 1, 3600000, &wait) != 0)
        return s_usage_error("--wait needs milliseconds between 1 and 3600000");
    cb_faas_t *faas = s_client(g);
    if (!faas)
        return 1;
    cb_value_t v;
    int rc = wt ? cb_faas_future_get(faas, w->pos[0], (int)wait, &v)
                : cb_faas_get(faas, w->pos[0], &v);
    int status = rc ? s_fail_faas(faas, rc) : 0;
    if (!rc) {
        if (v.type == CB_VALUE_ERROR) {
            char *text = cb_value_format(&v);
            status = s_fail("key '%s' holds a failed call's %s", w->pos[0], text);
            cb_free(text);
        } else {
            s_print_value(stdout, &v);
        }
    }
    cb_value_fini(&v);
    cb_faas_destroy(&faas);
    return status;
}

static int s_cmd_put(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {NULL};
    if (s_flags_check(w, "put", allowed))
        return 2;
    if (w->n_pos != 2 || !*w->pos[0])
        return s_usage_error("usage: cb put KEY VALUE");
    cb_value_t v;
    if (cb_value_parse(w->pos[1], &v) != 0)
        return s_usage_error("bad value '%s' (3, 2.5, str:text, int:3, float:2.5, bytes:\\x00)",
                             w->pos[1]);
    cb_faas_t *faas = s_client(g);
    int status = faas ? 0 : 1;
    if (faas) {
        int rc = cb_faas_put(faas, w->pos[0], &v);
        status = rc ? s_fail_faas(faas, rc) : 0;
        if (!rc)
            printf("OK\n");
        cb_faas_destroy(&faas);
    }
    cb_value_fini(&v);
    return status;
}

//  cb keygen DIR: DIR/cb.key (secret, mode 0600) and DIR/cb.pub (public; usable as a
//  --trusted-keys file as is).
static int s_cmd_keygen(s_global_t *g, const s_words_t *w)
{
    (void)g;
    static const char *const allowed[] = {"--force", NULL};
    if (s_flags_check(w, "keygen", allowed))
        return 2;
    if (w->n_pos != 1)
        return s_usage_error("usage: cb keygen DIR [--force]");
    const char *dir = w->pos[0];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return s_fail("cannot make %s: %s", dir, strerror(errno));
    char skp[PATH_MAX], pkp[PATH_MAX];
    s_path(skp, sizeof skp, dir, "cb.key");
    s_path(pkp, sizeof pkp, dir, "cb.pub");
    if (!skp[0] || !pkp[0])
        return s_fail("path too long: %s", dir);
    if (!s_flag(w, "--force") && access(skp, F_OK) == 0)
        return s_fail("%s exists: not overwriting a key (--force to replace it)", skp);
    if (sodium_init() < 0)
        return s_fail("libsodium cannot start");
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    char skhex[2 * sizeof sk + 2], pkhex[2 * sizeof pk + 2];
    sodium_bin2hex(skhex, sizeof skhex, sk, sizeof sk);
    sodium_bin2hex(pkhex, sizeof pkhex, pk, sizeof pk);
    strcat(skhex, "\n");
    strcat(pkhex, "\n");
    sodium_memzero(sk, sizeof sk);
    int status = 0;
    int fd = open(skp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, skhex, strlen(skhex)) != (ssize_t)strlen(skhex))
        status = s_fail("cannot write %s: %s", skp, strerror(errno));
    if (fd >= 0)
        close(fd);
    sodium_memzero(skhex, sizeof skhex);
    if (!status && s_write_file(pkp, pkhex) != 0)
        status = s_fail("cannot write %s: %s", pkp, strerror(errno));
    if (!status)
        printf("secret key %s (keep it private; cb register --sign %s)\n"
               "public key %s (cb up --trusted-keys %s)\n", skp, skp, pkp, pkp);
    return status;
}

//  --------------------------------------------------------------------------------------
//  The supervisor

typedef struct {
    char name[64];              //  "kvs", "scheduler", "cache-n0", "executor-n0-1"
    char *argv[40];             //  owned strings
    int argc;
    pid_t pid;                  //  0 when not running
    unsigned restarts;
    int64_t started_ms;
    int64_t next_start_ms;      //  when down: when to start it again
    int backoff_ms;
    int last_status;            //  wait status of its last exit
} s_child_t;

typedef struct {
    char dir[PATH_MAX];         //  absolute run directory
    char bin[PATH_MAX];         //  folder of the binaries
    char trusted[PATH_MAX];     //  absolute --trusted-keys file or ""
    int nodes;
    int executors;
    int kvs_threads;
    long max_value_bytes;       //  0: the programs' defaults
    int offset;
    char scheduler[128];        //  request address
    char report[128];           //  status report address
    char kvs[128];              //  KVS routing address
    s_child_t *children;
    int n_children;
    bool stopping;              //  children that exit now are not restarted
    int64_t started_wall_s;
} s_sup_t;

static void s_child_arg(s_child_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_child_arg(s_child_t *c, const char *fmt, ...)
{
    char buf[PATH_MAX + 64];
    va_list args;
    va_start(args, fmt);
    vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    if (c->argc < (int)(sizeof c->argv / sizeof c->argv[0]) - 1)
        c->argv[c->argc++] = cb_strdup(buf);
}

static s_child_t *s_child_add(s_sup_t *sup, const char *name, const char *binary)
{
    s_child_t *c = &sup->children[sup->n_children++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    s_child_arg(c, "%s/%s", sup->bin, binary);
    c->backoff_ms = S_BACKOFF_MIN_MS;
    return c;
}

//  The cache of node i listens on the node's address, ports 5100 + 2i (routing) and
//  5101 + 2i (data), plus the offset. tcp rather than ipc: with ipc sockets, lookups of a
//  freshly forked runner were seen to go unanswered for seconds now and then.
static void s_cache_addresses(const s_sup_t *sup, int i, char *routing, char *data, size_t cap)
{
    snprintf(routing, cap, "tcp://127.0.0.%d:%d", i + 1, S_CACHE_PORT + sup->offset + 2 * i);
    snprintf(data, cap, "tcp://127.0.0.%d:%d", i + 1, S_CACHE_PORT + sup->offset + 2 * i + 1);
}

//  The command lines of every process of the cluster (flags of docs/faas-design.md and of
//  each program's --help).
static void s_sup_plan(s_sup_t *sup)
{
    sup->children = cb_calloc((size_t)(2 + sup->nodes * (1 + sup->executors)), sizeof *sup->children);
    s_child_t *c = s_child_add(sup, "kvs", "anna-server");
    s_child_arg(c, "--port-offset");
    s_child_arg(c, "%d", sup->offset);
    s_child_arg(c, "--threads");
    s_child_arg(c, "%d", sup->kvs_threads);
    if (sup->max_value_bytes) {
        s_child_arg(c, "--max-value-bytes");
        s_child_arg(c, "%ld", sup->max_value_bytes);
    }
    c = s_child_add(sup, "scheduler", "cb-scheduler");
    s_child_arg(c, "--port-offset");
    s_child_arg(c, "%d", sup->offset);
    s_child_arg(c, "--kvs");
    s_child_arg(c, "%s", sup->kvs);
    for (int i = 0; i < sup->nodes; i++) {
        char name[64], routing[PATH_MAX + 32], data[PATH_MAX + 32];
        s_cache_addresses(sup, i, routing, data, sizeof routing);
        snprintf(name, sizeof name, "cache-n%d", i);
        c = s_child_add(sup, name, "cb-cache");
        s_child_arg(c, "--node");
        s_child_arg(c, "n%d", i);
        s_child_arg(c, "--updates");
        s_child_arg(c, "tcp://127.0.0.%d:*", i + 1);
        s_child_arg(c, "--routing");
        s_child_arg(c, "%s", routing);
        s_child_arg(c, "--data");
        s_child_arg(c, "%s", data);
        s_child_arg(c, "--kvs");
        s_child_arg(c, "%s", sup->kvs);
        s_child_arg(c, "--scheduler");
        s_child_arg(c, "%s", sup->report);
        if (sup->max_value_bytes) {
            s_child_arg(c, "--max-value-bytes");
            s_child_arg(c, "%ld", sup->max_value_bytes);
        }
        for (int j = 0; j < sup->executors; j++) {
            snprintf(name, sizeof name, "executor-n%d-%d", i, j);
            c = s_child_add(sup, name, "cb-executor");
            s_child_arg(c, "--node");
            s_child_arg(c, "n%d", i);
            s_child_arg(c, "--index");
            s_child_arg(c, "%d", j);
            s_child_arg(c, "--bind");
            s_child_arg(c, "127.0.0.%d", i + 1);
            s_child_arg(c, "--cache");
            s_child_arg(c, "%s", routing);
            s_child_arg(c, "--scheduler");
            s_child_arg(c, "%s", sup->report);
            if (sup->trusted[0]) {
                s_child_arg(c, "--trusted-keys");
                s_child_arg(c, "%s", sup->trusted);
            }
        }
    }
}

static void s_sup_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_sup_log(const char *fmt, ...)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "%s supervisor: ", when);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    fflush(stderr);
}

static void s_sup_write_state(const s_sup_t *sup)
{
    size_t cap = 256 + (size_t)sup->n_children * 160, len = 0;
    char *text = cb_malloc(cap);
    len += (size_t)snprintf(text + len, cap - len, "supervisor %d %lld\n", (int)getpid(),
                            (long long)sup->started_wall_s);
    for (int i = 0; i < sup->n_children; i++) {
        const s_child_t *c = &sup->children[i];
        len += (size_t)snprintf(text + len, cap - len, "child %s %d %u %s\n", c->name,
                                (int)c->pid, c->restarts, c->pid ? "up" : "down");
    }
    char path[PATH_MAX];
    s_path(path, sizeof path, sup->dir, "state");
    s_write_file(path, text);
    cb_free(text);
}

static void s_sup_start(s_sup_t *sup, s_child_t *c)
{
    char log[PATH_MAX + 80];
    snprintf(log, sizeof log, "%s/logs/%s.log", sup->dir, c->name);
    pid_t pid = fork();
    if (pid < 0) {
        s_sup_log("cannot fork for %s: %s", c->name, strerror(errno));
        c->next_start_ms = cb_clock_mono_ms() + c->backoff_ms;
        return;
    }
    if (pid == 0) {
        //  The child: its own signal mask and dispositions, its log, and death with us so
        //  that a SIGKILLed supervisor leaves nothing behind.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            if (fd > STDERR_FILENO)
                close(fd);
        }
        execv(c->argv[0], c->argv);
        fprintf(stderr, "supervisor: cannot run %s: %s\n", c->argv[0], strerror(errno));
        _exit(127);
    }
    c->pid = pid;
    c->started_ms = cb_clock_mono_ms();
    s_sup_log("started %s (pid %d)%s", c->name, (int)pid, c->restarts ? " again" : "");
}

//  Reaps every child that exited and schedules its restart.
static void s_sup_reap(s_sup_t *sup)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (int i = 0; i < sup->n_children; i++) {
            s_child_t *c = &sup->children[i];
            if (c->pid != pid)
                continue;
            int64_t now = cb_clock_mono_ms();
            if (now - c->started_ms >= S_STABLE_MS)
                c->backoff_ms = S_BACKOFF_MIN_MS;
            c->pid = 0;
            c->last_status = status;
            c->next_start_ms = now + c->backoff_ms;
            if (sup->stopping)
                s_sup_log("%s stopped (%s %d)", c->name, WIFSIGNALED(status) ? "signal" : "status",
                          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            else if (WIFSIGNALED(status))
                s_sup_log("%s died of signal %d; restart in %d ms", c->name, WTERMSIG(status),
                          c->backoff_ms);
            else
                s_sup_log("%s exited with status %d; restart in %d ms", c->name,
                          WEXITSTATUS(status), c->backoff_ms);
            c->backoff_ms = c->backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS
                                                                 : c->backoff_ms * 2;
        }
    }
}

//  Waits for the kvs's "ready" line (10 s at most) so that the others find it up.
static void s_sup_wait_kvs(s_sup_t *sup, s_child_t *kvs)
{
    char path[PATH_MAX + 80], text[8192];
    snprintf(path, sizeof path, "%s/logs/%s.log", sup->dir, kvs->name);
    for (int i = 0; i < 100; i++) {
        if (s_read_file(path, text, sizeof text) == 0 && strstr(text, "ready"))
            return;
        if (waitpid(kvs->pid, NULL, WNOHANG) == kvs->pid) {
            kvs->pid = 0;               //  the main loop restarts it
            kvs->next_start_ms = cb_clock_mono_ms() + kvs->backoff_ms;
            return;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void s_sup_stop_all(s_sup_t *sup)
{
    sup->stopping = true;
    for (int i = 0; i < sup->n_children; i++)
        if (sup->children[i].pid)
            kill(sup->children[i].pid, SIGTERM);
    int64_t deadline = cb_clock_mono_ms() + S_STOP_GRACE_MS;
    for (;;) {
        s_sup_reap(sup);
        bool any = false;
        for (int i = 0; i < sup->n_children; i++)
            any |= sup->children[i].pid != 0;
        if (!any)
            break;
        if (cb_clock_mono_ms() >= deadline) {
            for (int i = 0; i < sup->n_children; i++)
                if (sup->children[i].pid) {
                    s_sup_log("%s did not stop in %d ms: SIGKILL", sup->children[i].name,
                              S_STOP_GRACE_MS);
                    kill(sup->children[i].pid, SIGKILL);
                    waitpid(sup->children[i].pid, NULL, 0);
                    sup->children[i].pid = 0;
                }
            break;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

//  The supervisor's life: start everything, restart what dies, stop on a signal.
static int s_sup_run(s_sup_t *sup)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    s_sup_log("starting %d node(s) x %d executor(s), port offset %d, in %s", sup->nodes,
              sup->executors, sup->offset, sup->dir);
    s_sup_start(sup, &sup->children[0]);
    s_sup_wait_kvs(sup, &sup->children[0]);
    for (int i = 1; i < sup->n_children; i++)
        s_sup_start(sup, &sup->children[i]);
    s_sup_write_state(sup);

    int stop_signal = 0;
    while (!stop_signal) {
        int64_t now = cb_clock_mono_ms(), wake = now + 1000;
        for (int i = 0; i < sup->n_children; i++)
            if (!sup->children[i].pid && sup->children[i].next_start_ms < wake)
                wake = sup->children[i].next_start_ms;
        int64_t wait = wake > now ? wake - now : 0;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &ts);
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
            stop_signal = sig;
        bool changed = false;
        int before = 0;
        for (int i = 0; i < sup->n_children; i++)
            before += sup->children[i].pid != 0;
        s_sup_reap(sup);
        int after = 0;
        for (int i = 0; i < sup->n_children; i++)
            after += sup->children[i].pid != 0;
        changed = before != after;
        now = cb_clock_mono_ms();
        for (int i = 0; i < sup->n_children && !stop_signal; i++) {
            s_child_t *c = &sup->children[i];
            if (!c->pid && now >= c->next_start_ms) {
                c->restarts++;
                s_sup_start(sup, c);
                changed = true;
            }
        }
        if (changed)
            s_sup_write_state(sup);
    }
    s_sup_log("signal %d: stopping the cluster", stop_signal);
    s_sup_stop_all(sup);
    s_sup_write_state(sup);
    char path[PATH_MAX];
    s_path(path, sizeof path, sup->dir, "supervisor.pid");
    unlink(path);
    s_sup_log("stopped");
    return 0;
}

static void s_sup_free(s_sup_t *sup)
{
    for (int i = 0; i < sup->n_children; i++)
        for (int j = 0; j < sup->children[i].argc; j++)
            cb_free(sup->children[i].argv[j]);
    cb_free(sup->children);
    sup->children = NULL;
    sup->n_children = 0;
}

//  --------------------------------------------------------------------------------------
//  cb up / down / status

//  True if a TCP port on ip can be bound now (nobody listens there).
static bool s_port_free(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

//  Last non-empty line of a log file, for a failure message.
static void s_log_tail(const char *dir, const char *name, char *out, size_t cap)
{
    char path[PATH_MAX + 80];
    static char text[65536];
    out[0] = '\0';
    snprintf(path, sizeof path, "%s/logs/%s.log", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof text - 1 ? size - (off_t)sizeof text + 1 : 0;
    ssize_t n = pread(fd, text, sizeof text - 1, from);
    close(fd);
    if (n <= 0)
        return;
    text[n] = '\0';
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
    const char *line = strrchr(text, '\n');
    line = line ? line + 1 : text;
    size_t len = strlen(line) < cap ? strlen(line) : cap - 1;
    memcpy(out, line, len);
    out[len] = '\0';
}

//  Stops the supervisor of dir: SIGTERM, wait (bounded), then SIGKILL it and what it left.
//  Returns 0 when it is gone.
static int s_stop_supervisor(const char *dir, pid_t pid, bool quiet)
{
    kill(pid, SIGTERM);
    int64_t deadline = cb_clock_mono_ms() + S_STOP_GRACE_MS + 5000;
    while (kill(pid, 0) == 0 && cb_clock_mono_ms() < deadline) {
        //  It may be our own child (cb up cleaning up): reap it, or it stays a zombie.
        waitpid(pid, NULL, WNOHANG);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (kill(pid, 0) != 0)
        return 0;
    if (!quiet)
        fprintf(stderr, "cb: the supervisor (pid %d) did not stop in time: killing it and its "
                "children\n", (int)pid);
    char path[PATH_MAX], text[16384];
    s_path(path, sizeof path, dir, "state");
    if (s_read_file(path, text, sizeof text) == 0) {
        for (char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            char name[64];
            int cpid;
            if (sscanf(p, "child %63s %d", name, &cpid) == 2 && cpid > 0 && getpgid(cpid) >= 0
                && getsid(cpid) == getsid(pid))
                kill(cpid, SIGKILL);
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, WNOHANG);
    s_path(path, sizeof path, dir, "supervisor.pid");
    unlink(path);
    return 0;
}

//  One line about the children the supervisor restarted: which keep dying, for a failure.
static void s_state_problems(const char *dir, char *out, size_t cap)
{
    char path[PATH_MAX], text[16384];
    out[0] = '\0';
    s_path(path, sizeof path, dir, "state");
    if (s_read_file(path, text, sizeof text) != 0)
        return;
    size_t len = 0;
    for (char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        char name[64], up[8];
        int pid;
        unsigned restarts;
        if (sscanf(p, "child %63s %d %u %7s", name, &pid, &restarts, up) == 4
            && (restarts > 0 || strcmp(up, "up"))) {
            char tail[300];
            s_log_tail(dir, name, tail, sizeof tail);
            int n = snprintf(out + len, cap - len, "%s%s restarted %u time%s (logs/%s.log: %s)",
                             len ? "; " : "", name, restarts, restarts == 1 ? "" : "s", name,
                             tail[0] ? tail : "empty");
            if (n < 0 || (size_t)n >= cap - len)
                break;
            len += (size_t)n;
        }
    }
}

//  A trusted-keys file holds one hex public key a line (# comments and blank lines allowed).
//  Checked here so that a secret key, or a typo, is refused before anything starts.
static int s_trusted_check(const char *path)
{
    static char text[65536];
    int rc = s_read_file(path, text, sizeof text);
    if (rc)
        return s_fail("cannot read trusted keys %s: %s", path, strerror(-rc));
    int keys = 0, line_no = 0;
    for (char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        line_no++;
        size_t len = strcspn(p, "\n");
        size_t a = 0;
        while (a < len && isspace((unsigned char)p[a]))
            a++;
        if (a == len || p[a] == '#')
            continue;
        size_t b = len;
        while (b > a && isspace((unsigned char)p[b - 1]))
            b--;
        bool hex = b - a == 2 * CB_FAAS_PUBLIC_KEY_BYTES;
        for (size_t i = a; i < b && hex; i++)
            hex = isxdigit((unsigned char)p[i]);
        if (!hex)
            return s_fail("%s line %d is not a public key (%d hex digits, as cb keygen writes "
                          "to cb.pub)", path, line_no, 2 * CB_FAAS_PUBLIC_KEY_BYTES);
        keys++;
    }
    if (!keys)
        return s_fail("%s holds no public key", path);
    return 0;
}

static int s_cmd_up(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {"--nodes", "--executors", "--kvs-threads",
                                          "--trusted-keys", "--wait", "--max-value-bytes",
                                          NULL};
    if (s_flags_check(w, "up", allowed))
        return 2;
    if (w->n_pos)
        return s_usage_error("usage: cb up [--nodes N] [--executors E] [--kvs-threads T] "
                             "[--port-offset N] [--trusted-keys FILE] [--dir RUNDIR]");
    s_sup_t sup;
    memset(&sup, 0, sizeof sup);
    long v, wait_s = S_UP_WAIT_S;
    const char *f;
    sup.nodes = 1;
    sup.executors = 3;
    sup.kvs_threads = 1;
    if ((f = s_flag(w, "--nodes"))) {
        if (s_parse_int(f, 1, S_MAX_NODES, &v))
            return s_usage_error("--nodes needs a number between 1 and %d", S_MAX_NODES);
        sup.nodes = (int)v;
    }
    if ((f = s_flag(w, "--executors"))) {
        if (s_parse_int(f, 1, S_MAX_EXECUTORS, &v))
            return s_usage_error("--executors needs a number between 1 and %d", S_MAX_EXECUTORS);
        sup.executors = (int)v;
    }
    if ((f = s_flag(w, "--kvs-threads"))) {
        if (s_parse_int(f, 1, 50, &v))
            return s_usage_error("--kvs-threads needs a number between 1 and 50");
        sup.kvs_threads = (int)v;
    }
    if ((f = s_flag(w, "--max-value-bytes"))) {
        if (s_parse_int(f, 1024, 1L << 30, &v))
            return s_usage_error("--max-value-bytes needs a number between 1024 and 2^30");
        sup.max_value_bytes = v;
    }
    if ((f = s_flag(w, "--wait"))) {
        if (s_parse_int(f, 1, 600, &wait_s))
            return s_usage_error("--wait needs seconds between 1 and 600");
    }
    if ((f = s_flag(w, "--trusted-keys"))) {
        if (!realpath(f, sup.trusted))
            return s_fail("cannot read trusted keys %s: %s", f, strerror(errno));
        int rc = s_trusted_check(sup.trusted);
        if (rc)
            return rc;
    }
    sup.offset = g->port_offset < 0 ? 0 : g->port_offset;
    if (sup.offset > 50000)
        return s_usage_error("--port-offset needs a number between 0 and 50000");

    //  The run directory, absolute: the supervisor leaves the caller's cwd.
    if (mkdir(g->dir, 0755) != 0 && errno != EEXIST)
        return s_fail("cannot make the run directory %s: %s", g->dir, strerror(errno));
    if (!realpath(g->dir, sup.dir))
        return s_fail("cannot use the run directory %s: %s", g->dir, strerror(errno));
    pid_t running = s_supervisor_pid(sup.dir);
    if (running)
        return s_fail("a cluster is already running from %s (supervisor pid %d): cb down first",
                      sup.dir, (int)running);
    char logs[PATH_MAX + 8];
    snprintf(logs, sizeof logs, "%s/logs", sup.dir);
    if (mkdir(logs, 0755) != 0 && errno != EEXIST)
        return s_fail("cannot make %s: %s", logs, strerror(errno));

    //  The binaries sit beside this one.
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return s_fail("cannot find my own binary: %s", strerror(errno));
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(sup.bin, sizeof sup.bin, "%s", self);
    static const char *const programs[] = {"anna-server", "cb-scheduler", "cb-cache",
                                           "cb-executor"};
    for (size_t i = 0; i < 4; i++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", sup.bin, programs[i]);
        if (access(path, X_OK) != 0)
            return s_fail("%s is missing: build everything first (make)", path);
    }

    //  Fail now, not after 30 s of restarts, when another cluster holds our ports.
    static const int ports[] = {S_KVS_ROUTING_PORT, S_SCHEDULER_PORT, S_REPORT_PORT};
    for (size_t i = 0; i < 3 + 2 * (size_t)sup.nodes; i++) {
        int port = i < 3 ? ports[i] : S_CACHE_PORT + (int)(i - 3);
        char ip[32];
        snprintf(ip, sizeof ip, "127.0.0.%d", i < 3 ? 1 : (int)(i - 3) / 2 + 1);
        if (!s_port_free(ip, port + sup.offset))
            return s_fail("port %s:%d (%d + offset %d) is in use: another cluster is running "
                          "there (cb down, or choose another --port-offset)", ip,
                          port + sup.offset, port, sup.offset);
    }

    snprintf(sup.scheduler, sizeof sup.scheduler, "tcp://127.0.0.1:%d", S_SCHEDULER_PORT + sup.offset);
    snprintf(sup.report, sizeof sup.report, "tcp://127.0.0.1:%d", S_REPORT_PORT + sup.offset);
    snprintf(sup.kvs, sizeof sup.kvs, "tcp://127.0.0.1:%d", S_KVS_ROUTING_PORT + sup.offset);
    char path[PATH_MAX], text[1024];
    snprintf(text, sizeof text, "scheduler %s\nkvs %s\nport_offset %d\nnodes %d\nexecutors %d\n",
             sup.scheduler, sup.kvs, sup.offset, sup.nodes, sup.executors);
    s_path(path, sizeof path, sup.dir, "cluster");
    if (s_write_file(path, text) != 0)
        return s_fail("cannot write %s: %s", path, strerror(errno));
    s_path(path, sizeof path, sup.dir, "state");
    unlink(path);
    s_sup_plan(&sup);

    //  Daemonise: the supervisor runs in its own session, detached from our terminal, and
    //  sends its pid back through a pipe once its pid file is written.
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        s_sup_free(&sup);
        return s_fail("pipe: %s", strerror(errno));
    }
    fflush(NULL);
    pid_t first = fork();
    if (first < 0) {
        s_sup_free(&sup);
        close(pipefd[0]);
        close(pipefd[1]);
        return s_fail("fork: %s", strerror(errno));
    }
    if (first == 0) {
        close(pipefd[0]);
        setsid();
        pid_t second = fork();
        if (second != 0)
            _exit(second < 0 ? 1 : 0);
        if (chdir("/") != 0)
            _exit(1);
        char log[PATH_MAX + 32];
        snprintf(log, sizeof log, "%s/logs/supervisor.log", sup.dir);
        int devnull = open("/dev/null", O_RDWR);
        int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        if (logfd >= 0) {
            dup2(logfd, STDOUT_FILENO);
            dup2(logfd, STDERR_FILENO);
        }
        if (devnull > STDERR_FILENO)
            close(devnull);
        if (logfd > STDERR_FILENO)
            close(logfd);
        sup.started_wall_s = (int64_t)time(NULL);
        char pidtext[32];
        snprintf(pidtext, sizeof pidtext, "%d\n", (int)getpid());
        s_path(path, sizeof path, sup.dir, "supervisor.pid");
        s_write_file(path, pidtext);
        if (write(pipefd[1], pidtext, strlen(pidtext)) < 0)
            _exit(1);
        close(pipefd[1]);
        //  Nothing inherited stays open: a caller reading our output through a pipe
        //  ($(cb up)) must see its end when cb up exits, not when the cluster stops.
        close_range(3, ~0U, 0);
        int rc = s_sup_run(&sup);
        s_sup_free(&sup);
        exit(rc);
    }
    close(pipefd[1]);
    waitpid(first, NULL, 0);
    s_sup_free(&sup);
    char pidtext[32] = "";
    struct pollfd pfd = {pipefd[0], POLLIN, 0};
    ssize_t got = poll(&pfd, 1, 5000) == 1 ? read(pipefd[0], pidtext, sizeof pidtext - 1) : -1;
    close(pipefd[0]);
    long sup_pid = 0;
    if (got > 0) {
        pidtext[got] = '\0';
        pidtext[strcspn(pidtext, "\n")] = '\0';
        s_parse_int(pidtext, 1, INT_MAX, &sup_pid);
    }
    if (!sup_pid)
        return s_fail("the supervisor did not start (see %s/logs/supervisor.log)", sup.dir);

    //  Ready when the scheduler reports every executor and every node's cache.
    g->port_offset = sup.offset;
    g->scheduler = NULL;
    g->kvs = NULL;
    g->timeout_ms = 500;
    cb_faas_t *faas = s_client(g);
    if (!faas) {
        s_stop_supervisor(sup.dir, (pid_t)sup_pid, true);
        return 1;
    }
    int64_t start = cb_clock_mono_ms(), deadline = start + wait_s * 1000;
    int want_exec = sup.nodes * sup.executors;
    size_t have_exec = 0, have_nodes = 0;
    bool ready = false, sup_dead = false;
    char last_error[512] = "";
    while (!ready && cb_clock_mono_ms() < deadline) {
        if (kill((pid_t)sup_pid, 0) != 0) {
            sup_dead = true;
            break;
        }
        cb_faas_status_t st;
        int rc = cb_faas_status(faas, &st);
        if (rc == 0) {
            have_exec = st.n_executors;
            have_nodes = st.n_nodes;
            ready = have_exec >= (size_t)want_exec && have_nodes >= (size_t)sup.nodes;
        } else {
            snprintf(last_error, sizeof last_error, "%s", cb_faas_last_error(faas));
        }
        cb_faas_status_fini(&st);
        if (!ready) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    cb_faas_destroy(&faas);
    if (!ready) {
        char problems[2048];
        s_state_problems(sup.dir, problems, sizeof problems);
        if (!sup_dead)
            s_stop_supervisor(sup.dir, (pid_t)sup_pid, true);
        if (sup_dead)
            return s_fail("the supervisor exited (see %s/logs/supervisor.log)", sup.dir);
        if (problems[0])
            return s_fail("cluster not ready after %ld s, stopped it: %s", wait_s, problems);
        return s_fail("cluster not ready after %ld s (%zu of %d executors, %zu of %d caches "
                      "reported%s%s), stopped it; logs in %s/logs", wait_s, have_exec,
                      want_exec, have_nodes, sup.nodes, last_error[0] ? "; " : "", last_error,
                      sup.dir);
    }
    printf("cluster up in %.1f s: %d node%s x %d executor%s, scheduler %s, kvs %s\n"
           "run dir %s (logs in logs/); stop it with: cb down%s%s\n",
           (double)(cb_clock_mono_ms() - start) / 1000.0, sup.nodes, sup.nodes == 1 ? "" : "s",
           sup.executors, sup.executors == 1 ? "" : "s", sup.scheduler, sup.kvs, sup.dir,
           getenv("CB_DIR") ? "" : " --dir ", getenv("CB_DIR") ? "" : sup.dir);
    return 0;
}

static int s_cmd_down(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {NULL};
    if (s_flags_check(w, "down", allowed))
        return 2;
    if (w->n_pos)
        return s_usage_error("usage: cb down [--dir RUNDIR]");
    pid_t pid = s_supervisor_pid(g->dir);
    if (!pid) {
        //  A supervisor that was killed leaves its pid file: drop it, so that nothing
        //  mistakes a later process with the same pid for it.
        char path[PATH_MAX];
        s_path(path, sizeof path, g->dir, "supervisor.pid");
        unlink(path);
        printf("no cluster running from %s\n", g->dir);
        return 0;
    }
    s_stop_supervisor(g->dir, pid, false);
    printf("cluster stopped (supervisor pid %d)\n", (int)pid);
    return 0;
}

//  Restarts and pid of a child from the supervisor's state text; -1 when not listed.
static int s_state_child(const char *text, const char *name, int *pid)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        char n[64];
        int cpid;
        unsigned restarts;
        if (sscanf(p, "child %63s %d %u", n, &cpid, &restarts) == 3 && !strcmp(n, name)) {
            *pid = cpid;
            return (int)restarts;
        }
    }
    return -1;
}

static int s_cmd_status(s_global_t *g, const s_words_t *w)
{
    static const char *const allowed[] = {NULL};
    if (s_flags_check(w, "status", allowed))
        return 2;
    if (w->n_pos)
        return s_usage_error("usage: cb status");
    char path[PATH_MAX], state[16384] = "";
    pid_t sup = s_supervisor_pid(g->dir);
    s_path(path, sizeof path, g->dir, "state");
    if (sup)
        s_read_file(path, state, sizeof state);
    cb_faas_t *faas = s_client(g);
    if (!faas)
        return 1;
    cb_faas_status_t st;
    int rc = cb_faas_status(faas, &st);
    if (rc) {
        const char *msg = cb_faas_last_error(faas);
        int status = sup ? s_fail("%s", msg)
                         : s_fail("%s; no cluster was started from %s (cb up)", msg, g->dir);
        cb_faas_status_fini(&st);
        cb_faas_destroy(&faas);
        return status;
    }
    if (sup) {
        long long started = 0;
        sscanf(state, "supervisor %*d %lld", &started);
        printf("cluster from %s, supervisor pid %d, up %llds\n", g->dir, (int)sup,
               started ? (long long)time(NULL) - started : 0);
    }
    printf("scheduler %s, kvs %s\n", g->scheduler, st.kvs_routing[0] ? st.kvs_routing : g->kvs);
    printf("\nexecutors: %zu\n", st.n_executors);
    printf("  %-10s %-26s %-6s %8s %5s %6s %8s  %s\n", "ID", "ADDRESS", "PID", "CALLS", "UTIL",
           "QUEUED", "RESTARTS", "PINNED");
    for (size_t i = 0; i < st.n_executors; i++) {
        const cb_faas_executor_t *e = &st.executors[i];
        //  The supervisor names executor n0/1 "executor-n0-1".
        char name[80], restarts[16] = "-", pidtext[16] = "-";
        snprintf(name, sizeof name, "executor-%s", e->id);
        for (char *p = name; *p; p++)
            if (*p == '/')
                *p = '-';
        int pid = 0, r = state[0] ? s_state_child(state, name, &pid) : -1;
        if (r >= 0) {
            snprintf(restarts, sizeof restarts, "%d", r);
            snprintf(pidtext, sizeof pidtext, "%d", pid);
        }
        char pinned[512] = "";
        size_t len = 0;
        for (size_t k = 0; k < e->pinned.len && len < sizeof pinned - 1; k++) {
            int m = snprintf(pinned + len, sizeof pinned - len, "%s%s", k ? "," : "",
                             e->pinned.names[k]);
            if (m < 0)
                break;
            len += (size_t)m;
        }
        printf("  %-10s %-26s %-6s %8" PRIu64 " %4.0f%% %6u %8s  %s\n", e->id, e->address,
               pidtext, e->calls, 100.0 * e->utilization, e->queued, restarts,
               pinned[0] ? pinned : "-");
    }
    printf("\nnodes: %zu\n", st.n_nodes);
    printf("  %-6s %-50s %8s %12s %8s\n", "NODE", "CACHE", "KEYS", "BYTES", "RESTARTS");
    for (size_t i = 0; i < st.n_nodes; i++) {
        const cb_faas_node_t *nd = &st.nodes[i];
        char name[80], restarts[16] = "-";
        snprintf(name, sizeof name, "cache-%s", nd->node);
        int pid = 0, r = state[0] ? s_state_child(state, name, &pid) : -1;
        if (r >= 0)
            snprintf(restarts, sizeof restarts, "%d", r);
        printf("  %-6s %-50s %8" PRIu64 " %12" PRIu64 " %8s\n", nd->node, nd->cache_address,
               nd->cached_keys, nd->cached_bytes, restarts);
    }
    if (state[0]) {
        int pid = 0, rk = s_state_child(state, "kvs", &pid), rs;
        int spid = 0;
        rs = s_state_child(state, "scheduler", &spid);
        printf("\nkvs pid %d (restarts %d), scheduler pid %d (restarts %d)\n", pid, rk, spid, rs);
    }
    printf("\nfunctions: %zu\n", st.functions.len);
    for (size_t i = 0; i < st.functions.len; i++)
        printf("  %s\n", st.functions.names[i]);
    printf("dags: %zu\n", st.dags.len);
    for (size_t i = 0; i < st.dags.len; i++)
        printf("  %s\n", st.dags.names[i]);
    cb_faas_status_fini(&st);
    cb_faas_destroy(&faas);
    return 0;
}

//  --------------------------------------------------------------------------------------
//  Help and main

static int s_cmd_help(s_global_t *g, const s_words_t *w)
{
    (void)g;
    (void)w;
    printf(
        "usage: cb [GLOBAL OPTIONS] VERB [ARGS]\n"
        "\n"
        "A local cluster:\n"
        "  cb up [--nodes N] [--executors E] [--kvs-threads T] [--trusted-keys FILE] [--wait S]\n"
        "        [--max-value-bytes N]\n"
        "                          start anna-server, cb-scheduler and per node a cb-cache and\n"
        "                          E cb-executors (default 1 node x 3) under a supervisor that\n"
        "                          restarts what dies; returns when the cluster is ready\n"
        "  cb down                 stop it\n"
        "  cb status               executors, nodes, functions, DAGs, restarts\n"
        "\n"
        "Functions and DAGs:\n"
        "  cb register NAME FILE.so [--sign SECRETKEYFILE]\n"
        "  cb functions            list registered functions\n"
        "  cb delete NAME          delete a function\n"
        "  cb dag create NAME FN... [--edge FROM:TO ...]\n"
        "                          without --edge: a chain FN1 -> FN2 -> ...; with --edge:\n"
        "                          exactly those edges, whose order is the order of inputs\n"
        "  cb dags                 list DAGs\n"
        "  cb dag delete NAME\n"
        "\n"
        "Calls (result on stdout, the functions' log lines on stderr):\n"
        "  cb call FN [ARG...] [--output-key K [--async]] [--timeout MS] [--consistency C]\n"
        "  cb call-dag NAME [--arg FN=ARG ...] [--output-key K [--async]] [--timeout MS]\n"
        "                          [--consistency C]\n"
        "                          ARG: 3 (int), 2.5 (float), word (string), str:3, int:3,\n"
        "                          float:2, bytes:\\x00\\x01, or @KEY: the value at a KVS key.\n"
        "                          --output-key: the result goes to the KVS at K and is read\n"
        "                          from there (--async: print K and return at once).\n"
        "                          --timeout: bound on each function's run (default %d ms)\n"
        "                          --consistency: lww (default), rr (repeatable read),\n"
        "                          single (single-key causal), multi (multi-key causal);\n"
        "                          the causal levels read and write causal values\n"
        "\n"
        "The KVS:\n"
        "  cb get KEY [--wait MS]  print the value at KEY (--wait: poll until it exists)\n"
        "  cb put KEY VALUE        write a typed value (as ARG above)\n"
        "\n"
        "  cb keygen DIR           make DIR/cb.key (secret) and DIR/cb.pub (public: a\n"
        "                          --trusted-keys file)\n"
        "  cb help\n"
        "\n"
        "Global options (anywhere on the line):\n"
        "  --dir RUNDIR            run directory of cb up (default $CB_DIR, else ./.cb); the\n"
        "                          other verbs read the cluster's addresses from it\n"
        "  --port-offset N         added to every port (scheduler 5000, kvs 6450)\n"
        "  --scheduler ADDR        scheduler request address (tcp://127.0.0.1:5000)\n"
        "  --kvs ADDR              KVS routing address (tcp://127.0.0.1:6450)\n"
        "  --timeout MS            bound on each request to the cluster (default %d;\n"
        "                          for call and call-dag: bound on each function's run)\n"
        "\n"
        "Exit status: 0 success, 1 the operation failed (one `cb: ...` line on stderr), 2 bad\n"
        "command line.\n",
        CB_FAAS_DEFAULT_CALL_TIMEOUT_MS, S_DEFAULT_TIMEOUT_MS);
    return 0;
}

typedef struct {
    const char *name;
    int (*run)(s_global_t *g, const s_words_t *w);
} s_verb_t;

static const s_verb_t s_verbs[] = {
    {"up", s_cmd_up},           {"down", s_cmd_down},         {"status", s_cmd_status},
    {"register", s_cmd_register}, {"functions", s_cmd_functions}, {"delete", s_cmd_delete},
    {"dag", s_cmd_dag},         {"dags", s_cmd_dags},         {"call", s_cmd_call},
    {"call-dag", s_cmd_call_dag}, {"get", s_cmd_get},         {"put", s_cmd_put},
    {"keygen", s_cmd_keygen},   {"help", s_cmd_help},
};

//  Flags that take a value; any other --word is a switch.
static bool s_takes_value(const char *flag)
{
    static const char *const with_value[] = {
        "--dir", "--scheduler", "--kvs", "--port-offset", "--timeout", "--nodes",
        "--executors", "--kvs-threads", "--trusted-keys", "--wait", "--sign", "--edge",
        "--max-value-bytes",
        "--arg", "--output-key", "--consistency", NULL};
    for (const char *const *p = with_value; *p; p++)
        if (!strcmp(*p, flag))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    //  A closed stdout (cb functions | head) must not kill a request half-way.
    signal(SIGPIPE, SIG_IGN);
    s_global_t g = {.port_offset = -1, .timeout_ms = S_DEFAULT_TIMEOUT_MS};
    s_words_t w = {0};
    w.pos = cb_calloc((size_t)argc + 1, sizeof *w.pos);
    w.flag_names = cb_calloc((size_t)argc + 1, sizeof *w.flag_names);
    w.flag_values = cb_calloc((size_t)argc + 1, sizeof *w.flag_values);
    const char *verb = NULL, *timeout_text = NULL;
    int status = 0;
    bool no_more_flags = false;
    for (int i = 1; i < argc && !status; i++) {
        char *arg = argv[i];
        if (!no_more_flags && !strcmp(arg, "--")) {
            no_more_flags = true;
            continue;
        }
        if (no_more_flags || strncmp(arg, "--", 2) != 0) {
            if (!verb)
                verb = arg;
            else
                w.pos[w.n_pos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--help")) {
            verb = "help";
            continue;
        }
        char *value = NULL, *eq = strchr(arg, '=');
        char name[64];
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
        if (eq) {
            value = eq + 1;
        } else if (s_takes_value(name)) {
            if (i + 1 >= argc) {
                status = s_usage_error("%s needs a value", name);
                break;
            }
            value = argv[++i];
        }
        if (!strcmp(name, "--dir"))
            g.dir = value;
        else if (!strcmp(name, "--scheduler"))
            g.scheduler = value;
        else if (!strcmp(name, "--kvs"))
            g.kvs = value;
        else if (!strcmp(name, "--port-offset")) {
            long v = 0;
            if (!value || s_parse_int(value, 0, 50000, &v))
                status = s_usage_error("--port-offset needs a number between 0 and 50000");
            g.port_offset = (int)v;
        } else {
            if (!strcmp(name, "--timeout"))
                timeout_text = value;
            w.flag_names[w.n_flags] = arg;
            if (eq)
                *eq = '\0';         //  the name alone, the value after it
            w.flag_values[w.n_flags++] = value;
        }
    }
    if (!status && timeout_text) {
        long v;
        if (s_parse_int(timeout_text, 1, 3600000, &v))
            status = s_usage_error("--timeout needs milliseconds between 1 and 3600000");
        else
            g.timeout_ms = (int)v;
    }
    if (!g.dir)
        g.dir = getenv("CB_DIR") && *getenv("CB_DIR") ? getenv("CB_DIR") : ".cb";
    if (!status) {
        if (!verb) {
            s_cmd_help(&g, &w);
            status = 2;
        } else {
            const s_verb_t *found = NULL;
            for (size_t i = 0; i < sizeof s_verbs / sizeof s_verbs[0] && !found; i++)
                if (!strcmp(s_verbs[i].name, verb))
                    found = &s_verbs[i];
            if (!found)
                status = s_usage_error("unknown verb '%s'", verb);
            else
                status = found->run(&g, &w);
        }
    }
    if (fflush(stdout) != 0 && !status)
        status = 1;
    cb_free(w.pos);
    cb_free(w.flag_names);
    cb_free(w.flag_values);
    return status;
}
