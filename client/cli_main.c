//  client/cli_main.c: anna-cli, the command-line client of the KVS.
//
//    anna-cli [--routing ADDR[,ADDR...]] [--timeout MS] [--ack one|all] [--client-id ID]
//             [--echo] [--file FILE | -c COMMAND] [--help]
//
//  Reads commands one per line from a terminal (with an `anna> ` prompt), a pipe or a file,
//  or runs the one command given with -c. Every command prints one result line (MGET one
//  per key) or one `ERROR: ...` line on stdout, and the session goes on after an error.
//  Exit status: 0 if every command succeeded, 1 if any failed (not counted in an
//  interactive session, which exits 0), 2 for bad options or an unreadable file.
//  It must never crash, whatever the input: lines are bounded, arguments are parsed with
//  their lengths, every byte printed back is escaped.
//  SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client/kvs.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "lattices/lattice.h"

#define S_DEFAULT_ROUTING "tcp://127.0.0.1:6450"
#define S_DEFAULT_TIMEOUT_MS 2000
//  Longer lines are refused (and skipped to their end) rather than read into memory.
#define S_MAX_LINE (4u << 20)
#define S_STATS_KEY "ANNA_METADATA|stats"

typedef struct {
    char *data;                 //  owned, NUL-terminated (may also hold NUL bytes inside)
    size_t len;
    size_t cap;
    bool too_long;              //  the line was longer than S_MAX_LINE and was cut
} s_line_t;

typedef struct {
    const char *data;           //  borrowed from the parse buffer, NUL-terminated
    size_t len;                 //  may be less than strlen when the argument holds NULs
} s_arg_t;

typedef struct {
    cb_kvs_t *kvs;
    const char *routing;
    int timeout_ms;
    cb_kvs_level_t ack;         //  level of every GET and PUT verb (--ack, ACK)
    char client_id[80];         //  vector clock id of this session's causal writes
    bool echo;                  //  print each command before its result
    bool quit;
} s_cli_t;

typedef struct {
    const char *name;
    int min_args;               //  after the verb
    int max_args;               //  -1: no limit
    const char *needs;          //  "a key and a value": completes "PUT needs ..."
    const char *usage;
    const char *help;
    int (*run)(s_cli_t *cli, const s_arg_t *args, int n);
} s_cmd_t;

//  --------------------------------------------------------------------------------------
//  Output

//  Prints bytes so that a terminal shows them safely and they read back unambiguously:
//  printable ASCII as is, backslash doubled (if asked), anything else as \xNN.
static void s_print_text(const void *data, size_t len, bool double_backslash)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\\' && double_backslash)
            fputs("\\\\", stdout);
        else if (p[i] >= 0x20 && p[i] < 0x7f)
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    }
}

static void s_print_bytes(const void *data, size_t len)
{
    s_print_text(data, len, true);
}

//  Echo of an input line: as typed, except bytes a terminal should not interpret.
static void s_print_echo(const void *data, size_t len)
{
    fputs("> ", stdout);
    s_print_text(data, len, false);
    putchar('\n');
}

//  Writes text for a message into buf: escaped like s_print_bytes, cut after max bytes.
static void s_quote(const void *data, size_t len, size_t max, char *buf, size_t cap)
{
    const unsigned char *p = data;
    size_t o = 0, i = 0;
    for (; i < len && i < max && o + 8 < cap; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '\'')
            buf[o++] = (char)p[i];
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", p[i]);
    }
    if (i < len && o + 4 <= cap)
        o += (size_t)snprintf(buf + o, cap - o, "...");
    buf[o] = '\0';
}

static int s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_fail(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("ERROR: ", stdout);
    vprintf(fmt, args);
    putchar('\n');
    va_end(args);
    return -1;
}

//  Reports a failed library call: the library's own words, or for a timeout, what to check.
static int s_fail_kvs(const s_cli_t *cli, int rc)
{
    //  With ALL, the library's words say which replica did not answer.
    if (rc == -ETIMEDOUT && cli->ack == CB_KVS_ALL)
        return s_fail("timed out after %d ms: %s", cli->timeout_ms, cb_kvs_last_error(cli->kvs));
    if (rc == -ETIMEDOUT)
        return s_fail("timed out after %d ms (is anna-server running at %s?)", cli->timeout_ms,
                      cli->routing);
    const char *why = cb_kvs_last_error(cli->kvs);
    return s_fail("%s", *why ? why : cb_strerror(rc));
}

//  How GET shows a value: an LWW value as its text alone, any other kind as its kind name
//  and lat_format's rendering (`SET {"a", "b"}`).
static void s_print_value(const lat_t *value)
{
    if (value->kind == LAT_LWW) {
        s_print_bytes(value->u.lww.value.data, value->u.lww.value.len);
    } else {
        char *text = lat_format(value);
        printf("%s %s", lat_kind_name(value->kind), text);
        cb_free(text);
    }
}

//  --------------------------------------------------------------------------------------
//  Parsing

static int s_hex(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

//  Splits a line into arguments. Words are separated by blanks; "..." groups with the
//  escapes \\ \" \' \n \t \r \0 \xNN; '...' groups with no escapes; outside quotes a
//  backslash escapes the same way (and "\ " is a space); a word starting with # begins a
//  comment. Pieces concatenate (a"b c" is one word). *args points into *buf_p (owned by the
//  caller, freed with cb_free). Returns the number of words, or -1 with *error set.
static int s_split(const char *line, size_t len, s_arg_t **args_p, char **buf_p, char *error,
                   size_t error_cap)
{
    char *buf = cb_malloc(2 * len + 2);     //  every word plus its NUL fits
    s_arg_t *args = NULL;
    size_t n = 0, cap = 0, o = 0, i = 0;
    *buf_p = buf;
    *args_p = NULL;
    for (;;) {
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'
                           || line[i] == '\v' || line[i] == '\f'))
            i++;
        if (i >= len || line[i] == '#')
            break;
        size_t start = o;
        char quote = 0;
        while (i < len) {
            char c = line[i];
            if (!quote && (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'))
                break;
            i++;
            if (quote == '\'') {
                if (c == '\'')
                    quote = 0;
                else
                    buf[o++] = c;
            } else if (c == '"') {
                quote = quote ? 0 : '"';
            } else if (c == '\'' && !quote) {
                quote = '\'';
            } else if (c == '\\') {
                if (i >= len) {
                    snprintf(error, error_cap, "a backslash ends the line");
                    goto fail;
                }
                char e = line[i++];
                switch (e) {
                case '\\': case '"': case '\'': case ' ': case '#':
                    buf[o++] = e;
                    break;
                case 'n':
                    buf[o++] = '\n';
                    break;
                case 't':
                    buf[o++] = '\t';
                    break;
                case 'r':
                    buf[o++] = '\r';
                    break;
                case '0':
                    buf[o++] = '\0';
                    break;
                case 'x': {
                    int hi = i < len ? s_hex((unsigned char)line[i]) : -1;
                    int lo = i + 1 < len ? s_hex((unsigned char)line[i + 1]) : -1;
                    if (hi < 0 || lo < 0) {
                        snprintf(error, error_cap, "\\x needs two hex digits");
                        goto fail;
                    }
                    buf[o++] = (char)(hi * 16 + lo);
                    i += 2;
                    break;
                }
                default: {
                    char q[16];
                    s_quote(&e, 1, 1, q, sizeof q);
                    snprintf(error, error_cap, "unknown escape '\\%s' (use \\\\ for a backslash)", q);
                    goto fail;
                }
                }
            } else {
                buf[o++] = c;
            }
        }
        if (quote) {
            snprintf(error, error_cap, "unterminated %s quote", quote == '"' ? "double" : "single");
            goto fail;
        }
        buf[o++] = '\0';
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            args = cb_realloc(args, cap * sizeof *args);
        }
        args[n].data = buf + start;
        args[n].len = o - 1 - start;
        n++;
    }
    *args_p = args;
    return (int)n;
fail:
    cb_free(args);
    return -1;
}

//  --------------------------------------------------------------------------------------
//  Commands

//  Keys are C strings in the library and the wire format: no NUL inside.
static int s_check_key(const s_arg_t *key)
{
    if (strlen(key->data) != key->len)
        return s_fail("keys cannot contain NUL bytes");
    return 0;
}

//  Every read and write of a verb goes through these two, at the session's level.
static int s_kvs_get(s_cli_t *cli, const char *key, lat_t *out)
{
    return cb_kvs_get_level(cli->kvs, key, cli->ack, out);
}

static int s_kvs_put(s_cli_t *cli, const char *key, const lat_t *value)
{
    return cb_kvs_put_level(cli->kvs, key, value, cli->ack);
}

static int s_put(s_cli_t *cli, const s_arg_t *key, const lat_t *value)
{
    int rc = s_kvs_put(cli, key->data, value);
    if (rc)
        return s_fail_kvs(cli, rc);
    printf("OK\n");
    return 0;
}

//  GET and its typed forms: want is the kind the verb expects, LAT_NONE for any.
static int s_get_kind(s_cli_t *cli, const s_arg_t *key, lat_kind_t want)
{
    if (s_check_key(key))
        return -1;
    lat_t value;
    int rc = s_kvs_get(cli, key->data, &value);
    if (rc)
        return s_fail_kvs(cli, rc);
    if (want != LAT_NONE && value.kind != want) {
        char q[300];
        s_quote(key->data, key->len, 64, q, sizeof q);
        s_fail("key '%s' holds %s, not %s", q, lat_kind_name(value.kind), lat_kind_name(want));
        lat_fini(&value);
        return -1;
    }
    s_print_value(&value);
    putchar('\n');
    lat_fini(&value);
    return 0;
}

static int s_cmd_get(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    return s_get_kind(cli, &args[0], LAT_NONE);
}

static int s_cmd_get_set(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    return s_get_kind(cli, &args[0], LAT_SET);
}

static int s_cmd_get_ordered_set(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    return s_get_kind(cli, &args[0], LAT_ORDERED_SET);
}

static int s_cmd_get_causal(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    return s_get_kind(cli, &args[0], LAT_SINGLE_CAUSAL);
}

static int s_cmd_get_multi_causal(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    return s_get_kind(cli, &args[0], LAT_MULTI_CAUSAL);
}

static int s_cmd_get_priority(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    return s_get_kind(cli, &args[0], LAT_PRIORITY);
}

static int s_cmd_get_max(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    return s_get_kind(cli, &args[0], LAT_MAX);
}

static int s_cmd_get_bool(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    return s_get_kind(cli, &args[0], LAT_BOOL);
}

static int s_cmd_put(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    if (s_check_key(&args[0]))
        return -1;
    lat_t value;
    lat_init(&value, LAT_LWW);
    lat_lww_assign(&value, cb_clock_lww_now(), cb_kvs_writer_id(cli->kvs), args[1].data,
                   args[1].len);
    int rc = s_put(cli, &args[0], &value);
    lat_fini(&value);
    return rc;
}

static int s_put_set_kind(s_cli_t *cli, const s_arg_t *args, int n, lat_kind_t kind)
{
    if (s_check_key(&args[0]))
        return -1;
    lat_t value;
    lat_init(&value, kind);
    for (int i = 1; i < n; i++)
        lat_set_insert(&value.u.set, args[i].data, args[i].len);
    int rc = s_put(cli, &args[0], &value);
    lat_fini(&value);
    return rc;
}

static int s_cmd_put_set(s_cli_t *cli, const s_arg_t *args, int n)
{
    return s_put_set_kind(cli, args, n, LAT_SET);
}

static int s_cmd_put_ordered_set(s_cli_t *cli, const s_arg_t *args, int n)
{
    return s_put_set_kind(cli, args, n, LAT_ORDERED_SET);
}

//  The clock a causal write of key should carry: the join of the stored versions' clocks
//  (when the key holds a value of this kind) with our own entry one past it, so that the
//  new version dominates everything this session has seen, as a client-id counter does in
//  the original anna-cli. A missing key starts from the empty clock.
static int s_causal_clock(s_cli_t *cli, const s_arg_t *key, lat_kind_t kind, lat_vclock_t *clock)
{
    lat_t stored;
    int rc = s_kvs_get(cli, key->data, &stored);
    if (rc && rc != -ENOENT)
        return s_fail_kvs(cli, rc);
    if (rc == 0 && stored.kind == kind)
        lat_causal_clock(&stored, clock);
    lat_fini(&stored);
    //  A stored value of another kind is left for the server to refuse, with its message.
    lat_vclock_tick(clock, cli->client_id);
    return 0;
}

static int s_cmd_put_causal(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    if (s_check_key(&args[0]))
        return -1;
    lat_vclock_t clock = {0};
    if (s_causal_clock(cli, &args[0], LAT_SINGLE_CAUSAL, &clock)) {
        lat_vclock_fini(&clock);
        return -1;
    }
    lat_t value;
    lat_init(&value, LAT_SINGLE_CAUSAL);
    lat_causal_add(&value, &clock, NULL, args[1].data, args[1].len);
    int rc = s_put(cli, &args[0], &value);
    lat_fini(&value);
    lat_vclock_fini(&clock);
    return rc;
}

//  PUT_MULTI_CAUSAL key value [dep...]: each dependency is recorded with the clock its key
//  holds now, which must be a causal value.
static int s_cmd_put_multi_causal(s_cli_t *cli, const s_arg_t *args, int n)
{
    for (int i = 0; i < n; i++)
        if (i != 1 && s_check_key(&args[i]))
            return -1;
    lat_deps_t deps = {0};
    lat_vclock_t clock = {0};
    lat_t value;
    lat_init(&value, LAT_MULTI_CAUSAL);
    int rc = 0;
    for (int i = 2; i < n && rc == 0; i++) {
        lat_t dep;
        char q[300];
        s_quote(args[i].data, args[i].len, 64, q, sizeof q);
        int got = s_kvs_get(cli, args[i].data, &dep);
        if (got == -ENOENT)
            rc = s_fail("dependency '%s' does not exist", q);
        else if (got)
            rc = s_fail_kvs(cli, got);
        else if (dep.kind != LAT_SINGLE_CAUSAL && dep.kind != LAT_MULTI_CAUSAL)
            rc = s_fail("dependency '%s' holds %s, not a causal value", q, lat_kind_name(dep.kind));
        else {
            lat_vclock_t dep_clock = {0};
            lat_causal_clock(&dep, &dep_clock);
            lat_deps_add(&deps, args[i].data, &dep_clock);
            lat_vclock_fini(&dep_clock);
        }
        lat_fini(&dep);
    }
    if (rc == 0)
        rc = s_causal_clock(cli, &args[0], LAT_MULTI_CAUSAL, &clock);
    if (rc == 0) {
        lat_causal_add(&value, &clock, &deps, args[1].data, args[1].len);
        rc = s_put(cli, &args[0], &value);
    }
    lat_fini(&value);
    lat_vclock_fini(&clock);
    lat_deps_fini(&deps);
    return rc;
}

static int s_cmd_put_priority(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    if (s_check_key(&args[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    double prio = strtod(args[1].data, &end);
    if (args[1].len == 0 || end != args[1].data + args[1].len || !isfinite(prio)) {
        char q[100];
        s_quote(args[1].data, args[1].len, 32, q, sizeof q);
        return s_fail("PUT_PRIORITY needs a finite number as priority, got '%s'", q);
    }
    lat_t value;
    lat_init(&value, LAT_PRIORITY);
    lat_priority_assign(&value, prio, args[2].data, args[2].len);
    int rc = s_put(cli, &args[0], &value);
    lat_fini(&value);
    return rc;
}

static int s_cmd_put_max(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    if (s_check_key(&args[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    long long num = strtoll(args[1].data, &end, 10);
    if (args[1].len == 0 || end != args[1].data + args[1].len || errno == ERANGE
        || isspace((unsigned char)args[1].data[0])) {
        char q[100];
        s_quote(args[1].data, args[1].len, 32, q, sizeof q);
        return s_fail("PUT_MAX needs a 64-bit integer, got '%s'", q);
    }
    lat_t value;
    lat_init(&value, LAT_MAX);
    value.u.max = (int64_t)num;
    int rc = s_put(cli, &args[0], &value);
    lat_fini(&value);
    return rc;
}

static int s_cmd_put_bool(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)n;
    if (s_check_key(&args[0]))
        return -1;
    bool b;
    if (!strcasecmp(args[1].data, "true") && args[1].len == 4)
        b = true;
    else if (!strcasecmp(args[1].data, "false") && args[1].len == 5)
        b = false;
    else {
        char q[100];
        s_quote(args[1].data, args[1].len, 32, q, sizeof q);
        return s_fail("PUT_BOOL needs true or false, got '%s'", q);
    }
    lat_t value;
    lat_init(&value, LAT_BOOL);
    value.u.boolean = b;
    int rc = s_put(cli, &args[0], &value);
    lat_fini(&value);
    return rc;
}

//  MGET key...: one line per key, `key: value` or `ERROR: ...`, from one batched call.
static int s_cmd_mget(s_cli_t *cli, const s_arg_t *args, int n)
{
    for (int i = 0; i < n; i++)
        if (s_check_key(&args[i]))
            return -1;
    const char **keys = cb_malloc((size_t)n * sizeof *keys);
    cb_kvs_result_t *results = cb_malloc((size_t)n * sizeof *results);
    for (int i = 0; i < n; i++)
        keys[i] = args[i].data;
    int rc = 0;
    if (cli->ack == CB_KVS_ONE) {
        rc = cb_kvs_get_many(cli->kvs, keys, (size_t)n, results);
    } else {
        //  No batched form of ALL: one call per key, each merging every replica.
        for (int i = 0; i < n; i++) {
            results[i].error = s_kvs_get(cli, keys[i], &results[i].value);
            if (results[i].error == -ETIMEDOUT)
                rc = -ETIMEDOUT;
        }
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        char q[300];
        s_quote(args[i].data, args[i].len, 64, q, sizeof q);
        if (results[i].error == -ENOENT) {
            failed = s_fail("key '%s' does not exist", q);
        } else if (results[i].error == -ETIMEDOUT) {
            failed = s_fail_kvs(cli, -ETIMEDOUT);
        } else if (results[i].error) {
            failed = s_fail("key '%s': %s", q, cb_strerror(results[i].error));
        } else {
            s_print_bytes(args[i].data, args[i].len);
            fputs(": ", stdout);
            s_print_value(&results[i].value);
            putchar('\n');
        }
        lat_fini(&results[i].value);
    }
    cb_free(results);
    cb_free(keys);
    return rc || failed ? -1 : 0;
}

static int s_cmd_del(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)cli, (void)args, (void)n;
    return s_fail("DEL is not supported: Anna has no delete (a PUT merges into the stored "
                  "value and can never remove it)");
}

//  STATS: the server's counters, an LWW JSON document under a reserved key.
static int s_cmd_stats(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)args, (void)n;
    lat_t value;
    int rc = cb_kvs_get(cli->kvs, S_STATS_KEY, &value);
    if (rc)
        return s_fail_kvs(cli, rc);
    if (value.kind == LAT_LWW) {
        //  JSON is text: shown as is, except bytes a terminal should not interpret.
        for (size_t i = 0; i < value.u.lww.value.len; i++) {
            unsigned char c = value.u.lww.value.data[i];
            putchar(c >= 0x20 || c == '\n' || c == '\t' ? c : '?');
        }
    } else {
        s_print_value(&value);
    }
    putchar('\n');
    lat_fini(&value);
    return 0;
}

//  ACK [ONE|ALL]: shows or sets the level of the GET and PUT verbs that follow.
static int s_cmd_ack(s_cli_t *cli, const s_arg_t *args, int n)
{
    if (n == 0) {
        printf("%s\n", cli->ack == CB_KVS_ALL ? "ALL" : "ONE");
        return 0;
    }
    if (!strcasecmp(args[0].data, "one") && args[0].len == 3) {
        cli->ack = CB_KVS_ONE;
    } else if (!strcasecmp(args[0].data, "all") && args[0].len == 3) {
        cli->ack = CB_KVS_ALL;
    } else {
        char q[100];
        s_quote(args[0].data, args[0].len, 32, q, sizeof q);
        return s_fail("ACK needs ONE or ALL, got '%s'", q);
    }
    printf("OK\n");
    return 0;
}

static int s_cmd_help(s_cli_t *cli, const s_arg_t *args, int n);

static int s_cmd_quit(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)args, (void)n;
    cli->quit = true;
    return 0;
}

static const s_cmd_t s_commands[] = {
    {"GET", 1, 1, "a key", "GET key", "read a key of any kind (LWW shows its text alone)", s_cmd_get},
    {"PUT", 2, 2, "a key and a value", "PUT key value", "write an LWW value stamped now", s_cmd_put},
    {"GET_SET", 1, 1, "a key", "GET_SET key", "read a SET", s_cmd_get_set},
    {"PUT_SET", 2, -1, "a key and at least one value", "PUT_SET key value...",
     "add values to a SET", s_cmd_put_set},
    {"GET_ORDERED_SET", 1, 1, "a key", "GET_ORDERED_SET key", "read an ORDERED_SET",
     s_cmd_get_ordered_set},
    {"PUT_ORDERED_SET", 2, -1, "a key and at least one value", "PUT_ORDERED_SET key value...",
     "add values to an ORDERED_SET", s_cmd_put_ordered_set},
    {"GET_CAUSAL", 1, 1, "a key", "GET_CAUSAL key", "read a SINGLE_CAUSAL value",
     s_cmd_get_causal},
    {"PUT_CAUSAL", 2, 2, "a key and a value", "PUT_CAUSAL key value",
     "write a SINGLE_CAUSAL value that follows the stored one", s_cmd_put_causal},
    {"GET_MULTI_CAUSAL", 1, 1, "a key", "GET_MULTI_CAUSAL key", "read a MULTI_CAUSAL value",
     s_cmd_get_multi_causal},
    {"PUT_MULTI_CAUSAL", 2, -1, "a key and a value", "PUT_MULTI_CAUSAL key value [dep_key...]",
     "write a MULTI_CAUSAL value depending on causal keys", s_cmd_put_multi_causal},
    {"GET_PRIORITY", 1, 1, "a key", "GET_PRIORITY key", "read a PRIORITY value",
     s_cmd_get_priority},
    {"PUT_PRIORITY", 3, 3, "a key, a priority and a value", "PUT_PRIORITY key priority value",
     "write a PRIORITY value (the lowest priority wins)", s_cmd_put_priority},
    {"GET_MAX", 1, 1, "a key", "GET_MAX key", "read a MAX value", s_cmd_get_max},
    {"PUT_MAX", 2, 2, "a key and an integer", "PUT_MAX key integer",
     "write a MAX value (the largest wins)", s_cmd_put_max},
    {"GET_BOOL", 1, 1, "a key", "GET_BOOL key", "read a BOOL value", s_cmd_get_bool},
    {"PUT_BOOL", 2, 2, "a key and true or false", "PUT_BOOL key true|false",
     "write a BOOL value (true wins)", s_cmd_put_bool},
    {"MGET", 1, -1, "at least one key", "MGET key...", "read several keys in one batch", s_cmd_mget},
    {"DEL", 0, -1, "", "DEL key", "not supported: Anna has no delete", s_cmd_del},
    {"ACK", 0, 1, "", "ACK [ONE|ALL]",
     "show or set how many replicas GET/PUT verbs use (ALL: every one)", s_cmd_ack},
    {"STATS", 0, 0, "", "STATS", "show the server's counters", s_cmd_stats},
    {"HELP", 0, 1, "", "HELP", "show this list", s_cmd_help},
    {"QUIT", 0, -1, "", "QUIT", "end the session (also EXIT, or end of input)", s_cmd_quit},
    {"EXIT", 0, -1, "", "EXIT", NULL, s_cmd_quit},
};
#define S_N_COMMANDS (sizeof s_commands / sizeof s_commands[0])

static int s_cmd_help(s_cli_t *cli, const s_arg_t *args, int n)
{
    (void)cli, (void)args, (void)n;
    printf("Commands (case-insensitive; quote values with spaces: PUT k \"a b\"):\n");
    for (size_t i = 0; i < S_N_COMMANDS; i++)
        if (s_commands[i].help)
            printf("  %-40s %s\n", s_commands[i].usage, s_commands[i].help);
    printf("Lines starting with # are comments. Escapes: \\\\ \\\" \\' \\n \\t \\r \\0 \\xNN\n");
    return 0;
}

//  Runs one line. 0 on success or nothing to do, -1 after printing an error.
static int s_run_line(s_cli_t *cli, const char *line, size_t len)
{
    s_arg_t *args;
    char *buf;
    char error[200];
    int n = s_split(line, len, &args, &buf, error, sizeof error);
    int rc = 0;
    if (n < 0) {
        rc = s_fail("%s", error);
    } else if (n > 0) {
        const s_cmd_t *cmd = NULL;
        for (size_t i = 0; i < S_N_COMMANDS && !cmd; i++)
            if (strlen(args[0].data) == args[0].len && !strcasecmp(args[0].data, s_commands[i].name))
                cmd = &s_commands[i];
        int nargs = n - 1;
        if (!cmd) {
            char q[100];
            s_quote(args[0].data, args[0].len, 32, q, sizeof q);
            rc = s_fail("unknown command '%s' (try HELP)", q);
        } else if (nargs < cmd->min_args) {
            rc = s_fail("%s needs %s (usage: %s)", cmd->name, cmd->needs, cmd->usage);
        } else if (cmd->max_args >= 0 && nargs > cmd->max_args) {
            rc = s_fail("too many arguments for %s (usage: %s; quote values that contain spaces)",
                        cmd->name, cmd->usage);
        } else {
            rc = cmd->run(cli, args + 1, nargs);
        }
    }
    cb_free(args);
    cb_free(buf);
    return rc;
}

//  --------------------------------------------------------------------------------------
//  Input

//  Reads one line (without its newline) into *line. Returns false at end of input with
//  nothing read. A line longer than S_MAX_LINE is read to its end but kept cut, with
//  too_long set.
static bool s_read_line(FILE *in, s_line_t *line)
{
    line->len = 0;
    line->too_long = false;
    int c;
    bool any = false;
    while ((c = getc(in)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (line->len >= S_MAX_LINE) {
            line->too_long = true;
            continue;
        }
        if (line->len + 2 > line->cap) {
            line->cap = line->cap ? line->cap * 2 : 256;
            line->data = cb_realloc(line->data, line->cap);
        }
        line->data[line->len++] = (char)c;
    }
    if (line->data)
        line->data[line->len] = '\0';
    return any;
}

static int s_usage(FILE *out, int status)
{
    fprintf(out,
            "usage: anna-cli [--routing ADDR[,ADDR...]] [--timeout MS] [--ack one|all]\n"
            "                [--client-id ID] [--echo] [--file FILE | -c COMMAND] [--help]\n"
            "\n"
            "A command-line client of the KVS. Reads commands one per line from the terminal\n"
            "(prompt `anna> `), a pipe or FILE, or runs the one COMMAND. Type HELP for the\n"
            "commands.\n"
            "\n"
            "  -r, --routing ADDR   routing tier of the cluster (default %s); a list\n"
            "                       ADDR,ADDR,... (up to 16) is tried in turn when one fails\n"
            "  -t, --timeout MS     bound on each wait for the server (default %d)\n"
            "      --ack one|all    replicas every GET and PUT verb uses: one (default), or all\n"
            "                       (a PUT acknowledged by every replica, a GET merging them;\n"
            "                       the ACK command changes it in a session)\n"
            "      --client-id ID   vector clock id of causal writes (default cli-<random>)\n"
            "      --echo           print each command (`> COMMAND`) before its result\n"
            "  -f, --file FILE      read commands from FILE\n"
            "  -c COMMAND           run one command\n"
            "  -h, --help           this text\n"
            "\n"
            "Results and `ERROR: ...` lines go to stdout. Exit status: 0 when every command\n"
            "succeeded, 1 when one failed (an interactive session always exits 0), 2 for bad\n"
            "options.\n",
            S_DEFAULT_ROUTING, S_DEFAULT_TIMEOUT_MS);
    return status;
}

//  Matches option name (long or short form), with its value as the next argument or after
//  '=' in the long form. Returns 1 and sets *value on a match, 0 if not this option, -1 if
//  the value is missing.
static int s_option(int argc, char **argv, int *i, const char *shrt, const char *lng,
                    const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(lng);
    if (!strncmp(arg, lng, n) && arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (strcmp(arg, lng) && (!shrt || strcmp(arg, shrt)))
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    const char *routing = S_DEFAULT_ROUTING, *file = NULL, *command = NULL, *client_id = NULL;
    const char *timeout_text = NULL, *ack_text = NULL;
    bool echo = false;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int m;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return s_usage(stdout, 0);
        if (!strcmp(argv[i], "--echo")) {
            echo = true;
            continue;
        }
        const char *names[][2] = {{"-r", "--routing"}, {"-t", "--timeout"}, {"-f", "--file"},
                                  {"-c", "--command"}, {NULL, "--client-id"}, {NULL, "--ack"}};
        const char **targets[] = {&routing, &timeout_text, &file, &command, &client_id, &ack_text};
        bool matched = false;
        for (size_t o = 0; o < sizeof targets / sizeof *targets && !matched; o++) {
            m = s_option(argc, argv, &i, names[o][0], names[o][1], &value);
            if (m < 0) {
                fprintf(stderr, "anna-cli: %s needs a value (try --help)\n", argv[i]);
                return 2;
            }
            if (m > 0) {
                *targets[o] = value;
                matched = true;
            }
        }
        if (!matched) {
            fprintf(stderr, "anna-cli: unknown argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }

    int timeout_ms = S_DEFAULT_TIMEOUT_MS;
    if (timeout_text) {
        char *end;
        errno = 0;
        long t = strtol(timeout_text, &end, 10);
        if (!*timeout_text || *end || errno || t < 1 || t > 3600000) {
            fprintf(stderr, "anna-cli: --timeout needs milliseconds between 1 and 3600000\n");
            return 2;
        }
        timeout_ms = (int)t;
    }
    cb_kvs_level_t ack = CB_KVS_ONE;
    if (ack_text && !strcasecmp(ack_text, "all")) {
        ack = CB_KVS_ALL;
    } else if (ack_text && strcasecmp(ack_text, "one")) {
        fprintf(stderr, "anna-cli: --ack needs one or all\n");
        return 2;
    }
    if (file && command) {
        fprintf(stderr, "anna-cli: give --file or -c, not both\n");
        return 2;
    }
    if (client_id) {
        size_t len = strlen(client_id);
        bool ok = len > 0 && len < 64;
        for (size_t i = 0; i < len && ok; i++)
            ok = client_id[i] > 0x20 && client_id[i] < 0x7f;
        if (!ok) {
            fprintf(stderr, "anna-cli: --client-id needs 1 to 63 printable characters\n");
            return 2;
        }
    }

    cb_kvs_config_t config = {.routing = routing, .timeout_ms = timeout_ms};
    cb_kvs_t *kvs = cb_kvs_new(&config);
    if (!kvs) {
        if (errno == EINVAL)
            fprintf(stderr, "anna-cli: bad routing address '%s' (expected tcp://HOST:PORT, or up "
                            "to 16 of them separated by commas)\n", routing);
        else
            fprintf(stderr, "anna-cli: cannot open a client socket: %s\n", strerror(errno));
        return 2;
    }
    //  A closed stdout (anna-cli | head) must end the session, not kill it mid-request.
    signal(SIGPIPE, SIG_IGN);

    s_cli_t cli = {.kvs = kvs, .routing = routing, .timeout_ms = timeout_ms, .ack = ack,
                   .echo = echo};
    if (client_id)
        snprintf(cli.client_id, sizeof cli.client_id, "%s", client_id);
    else
        snprintf(cli.client_id, sizeof cli.client_id, "cli-%08x", cb_kvs_writer_id(kvs));

    int failures = 0, status = 0;
    if (command) {
        if (echo)
            s_print_echo(command, strlen(command));
        failures += s_run_line(&cli, command, strlen(command)) != 0;
    } else {
        FILE *in = stdin;
        if (file && !(in = fopen(file, "r"))) {
            fprintf(stderr, "anna-cli: cannot read '%s': %s\n", file, strerror(errno));
            cb_kvs_destroy(&kvs);
            return 2;
        }
        bool interactive = !file && isatty(STDIN_FILENO);
        s_line_t line = {0};
        while (!cli.quit) {
            if (interactive) {
                fputs("anna> ", stdout);
                fflush(stdout);
            }
            if (!s_read_line(in, &line))
                break;
            if (echo)
                s_print_echo(line.data, line.len);
            if (line.too_long)
                failures += s_fail("line longer than %u bytes; skipped", S_MAX_LINE) != 0;
            else
                failures += s_run_line(&cli, line.data, line.len) != 0;
            if (interactive)
                fflush(stdout);
            if (ferror(stdout))
                break;
        }
        if (interactive && !cli.quit)
            putchar('\n');
        if (interactive)
            failures = 0;
        cb_free(line.data);
        if (in != stdin)
            fclose(in);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        status = 1;
    cb_kvs_destroy(&kvs);
    return failures ? 1 : status;
}
