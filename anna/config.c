//  anna/config.c: one table of options drives the flags, the config file and --help, so the
//  three cannot disagree on names or defaults.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anna/wal.h"

#define S_MAX_OFFSET (65535 - ANNA_PORT_ROUTING)
#define S_MAX_VALUE_LIMIT ((int64_t)1 << 30)

typedef enum { S_IP, S_INT, S_SIZE, S_FILE, S_FLAG, S_TEXT } s_type_t;

typedef struct {
    const char *name;           //  long flag without "--", and config file key
    s_type_t type;
    const char *arg;            //  placeholder in --help
    const char *help;
} s_option_t;

static const s_option_t s_options[] = {
    {"config", S_FILE, "FILE", "read options from FILE (`name = value` lines, # comments)"},
    {"bind", S_IP, "IP", "IPv4 address to listen on"},
    {"public-ip", S_IP, "IP", "address advertised to clients (default: the bind address)"},
    {"threads", S_INT, "N", "worker threads, one key shard each (1..50)"},
    {"replication", S_INT, "L", "copies of each key across threads (1..threads)"},
    {"port-offset", S_INT, "N", "added to every port (keys 6200+t, gossip 6250+t, routing 6450)"},
    {"gossip-ms", S_INT, "MS", "period of replica gossip in milliseconds"},
    {"max-value-bytes", S_SIZE, "N", "largest value (PUT payload or merged value); K/M/G suffixes"},
    {"vnodes", S_INT, "N", "virtual points per thread on the hash ring"},
    {"max-subscriptions", S_INT, "N", "push subscriptions (key, cache) the node keeps at most"},
    {"resp", S_FLAG, NULL, "serve the Redis protocol (RESP2) on port 6379 + port-offset"},
    {"resp-port", S_INT, "P", "serve the Redis protocol on port P exactly (0: off unless --resp)"},
    {"resp-password", S_TEXT, "PW", "Redis clients must AUTH with PW (better in a config file)"},
    {"resp-max-clients", S_INT, "N", "Redis protocol connections served at once"},
    {"resp-threads", S_INT, "N", "Redis protocol I/O threads (0: one per worker thread)"},
    {"wal-dir", S_TEXT, "DIR", "keep a write-ahead log per thread in DIR, replayed on start"},
    {"fsync", S_TEXT, "POLICY", "when the log is synced: always, everyms:N or never"},
    {"wal-compact-bytes", S_SIZE, "N", "compact a thread's log past N bytes (0: never); K/M/G"},
    {"help", S_FLAG, NULL, "print this help and exit"},
    {"version", S_FLAG, NULL, "print the version and exit"},
};
#define S_NOPTIONS (sizeof s_options / sizeof s_options[0])

__attribute__((format(printf, 3, 4))) static int s_fail(char *err, size_t errlen,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

void anna_config_defaults(anna_config_t *self)
{
    assert(self);
    memset(self, 0, sizeof *self);
    snprintf(self->bind, sizeof self->bind, "127.0.0.1");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    self->threads = cores < 1 ? 1 : cores > ANNA_MAX_THREADS ? ANNA_MAX_THREADS : (int)cores;
    self->replication = 1;
    self->port_offset = 0;
    self->gossip_ms = 100;
    self->max_value_bytes = 64 << 20;
    self->vnodes = 200;
    self->max_subscriptions = 1 << 20;
    self->resp_max_clients = 10000;
    self->fsync_policy = ANNA_FSYNC_ALWAYS;
    self->fsync_ms = 100;
    self->wal_compact_bytes = 64 << 20;
}

static const s_option_t *s_option_find(const char *name, size_t len)
{
    for (size_t i = 0; i < S_NOPTIONS; i++)
        if (strlen(s_options[i].name) == len && memcmp(s_options[i].name, name, len) == 0)
            return &s_options[i];
    return NULL;
}

//  Whole-string integer; false on junk, empty or overflow.
static bool s_parse_int64(const char *text, int64_t *out)
{
    if (!*text || isspace((unsigned char)*text))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

//  Integer with an optional binary K/M/G suffix ("64M" = 64 MiB).
static bool s_parse_size(const char *text, int64_t *out)
{
    size_t len = strlen(text);
    int64_t unit = 1;
    if (len > 1) {
        char last = (char)toupper((unsigned char)text[len - 1]);
        unit = last == 'K' ? 1 << 10 : last == 'M' ? 1 << 20 : last == 'G' ? 1 << 30 : 1;
    }
    char digits[32];
    if (unit > 1) {
        if (len - 1 >= sizeof digits)
            return false;
        memcpy(digits, text, len - 1);
        digits[len - 1] = '\0';
        text = digits;
    }
    int64_t v;
    if (!s_parse_int64(text, &v) || v < 0 || v > INT64_MAX / unit)
        return false;
    *out = v * unit;
    return true;
}

int anna_config_set(anna_config_t *self, const char *name, const char *value, char *err,
                    size_t errlen)
{
    assert(self && name && value);
    const s_option_t *opt = s_option_find(name, strlen(name));
    if (!opt || opt->type == S_FLAG || opt->type == S_FILE)
        return s_fail(err, errlen, "unknown option %s", name);
    if (opt->type == S_IP) {
        char *dst = !strcmp(name, "bind") ? self->bind : self->public_ip;
        if (strlen(value) >= sizeof self->bind)
            return s_fail(err, errlen, "%s: not an IPv4 address: %s", name, value);
        struct in_addr addr;
        if (inet_pton(AF_INET, value, &addr) != 1)
            return s_fail(err, errlen, "%s: not an IPv4 address: %s", name, value);
        snprintf(dst, sizeof self->bind, "%s", value);
        return 0;
    }
    if (opt->type == S_TEXT && !strcmp(name, "wal-dir")) {
        if (!*value || strlen(value) >= sizeof self->wal_dir)
            return s_fail(err, errlen, "%s: empty or longer than %zu bytes", name,
                          sizeof self->wal_dir - 1);
        snprintf(self->wal_dir, sizeof self->wal_dir, "%s", value);
        return 0;
    }
    if (opt->type == S_TEXT && !strcmp(name, "fsync")) {
        anna_fsync_t policy;
        int ms = self->fsync_ms;
        if (anna_wal_parse_fsync(value, &policy, &ms))
            return s_fail(err, errlen, "%s: not always, everyms:N (N 1..60000) or never: %s",
                          name, value);
        self->fsync_policy = (int)policy;
        self->fsync_ms = ms;
        return 0;
    }
    if (opt->type == S_TEXT) {
        //  The other text option is the RESP password.
        if (strlen(value) >= sizeof self->resp_password)
            return s_fail(err, errlen, "%s: longer than %zu bytes", name,
                          sizeof self->resp_password - 1);
        snprintf(self->resp_password, sizeof self->resp_password, "%s", value);
        return 0;
    }
    int64_t v;
    if (opt->type == S_SIZE) {
        if (!s_parse_size(value, &v))
            return s_fail(err, errlen, "%s: not a size: %s", name, value);
        if (!strcmp(name, "wal-compact-bytes"))
            self->wal_compact_bytes = v;
        else
            self->max_value_bytes = v;
        return 0;
    }
    if (!s_parse_int64(value, &v) || v < INT_MIN || v > INT_MAX)
        return s_fail(err, errlen, "%s: not an integer: %s", name, value);
    if (!strcmp(name, "threads"))
        self->threads = (int)v;
    else if (!strcmp(name, "replication"))
        self->replication = (int)v;
    else if (!strcmp(name, "port-offset"))
        self->port_offset = (int)v;
    else if (!strcmp(name, "gossip-ms"))
        self->gossip_ms = (int)v;
    else if (!strcmp(name, "vnodes"))
        self->vnodes = (int)v;
    else if (!strcmp(name, "max-subscriptions"))
        self->max_subscriptions = (int)v;
    else if (!strcmp(name, "resp-port"))
        self->resp_port = (int)v;
    else if (!strcmp(name, "resp-max-clients"))
        self->resp_max_clients = (int)v;
    else if (!strcmp(name, "resp-threads"))
        self->resp_threads = (int)v;
    else
        assert(false && "option in the table without a field");
    return 0;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

int anna_config_parse_file(anna_config_t *self, const char *path, char *err, size_t errlen)
{
    assert(self && path);
    FILE *file = fopen(path, "r");
    if (!file) {
        int rc = -errno;
        s_fail(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return rc;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, file)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(file)) {
            rc = s_fail(err, errlen, "%s:%d: line too long", path, lineno);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *text = s_trim(line);
        if (!*text)
            continue;
        char *eq = strchr(text, '=');
        if (!eq) {
            rc = s_fail(err, errlen, "%s:%d: expected `name = value`", path, lineno);
            break;
        }
        *eq = '\0';
        char *name = s_trim(text);
        char *value = s_trim(eq + 1);
        const s_option_t *opt = s_option_find(name, strlen(name));
        if (opt && (opt->type == S_FLAG || opt->type == S_FILE)) {
            rc = s_fail(err, errlen, "%s:%d: option %s is not allowed in a config file", path,
                        lineno, name);
            break;
        }
        char msg[256];
        if (anna_config_set(self, name, value, msg, sizeof msg) != 0)
            rc = s_fail(err, errlen, "%s:%d: %s", path, lineno, msg);
    }
    fclose(file);
    return rc;
}

//  Splits argv[*i] into option and value ("--name=value" or "--name value").
static int s_arg(int argc, char **argv, int *i, const s_option_t **opt_p, const char **value_p,
                 char *err, size_t errlen)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
        return s_fail(err, errlen, "unexpected argument '%s'", arg);
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const s_option_t *opt = s_option_find(name, len);
    if (!opt)
        return s_fail(err, errlen, "unknown option --%.*s", (int)len, name);
    const char *value = NULL;
    if (opt->type == S_FLAG) {
        if (eq)
            return s_fail(err, errlen, "option --%s takes no value", opt->name);
    } else if (eq)
        value = eq + 1;
    else if (*i + 1 < argc)
        value = argv[++*i];
    else
        return s_fail(err, errlen, "option --%s needs a value", opt->name);
    *opt_p = opt;
    *value_p = value;
    return 0;
}

int anna_config_parse_args(anna_config_t *self, int argc, char **argv, char *err, size_t errlen)
{
    assert(self && argv);
    const s_option_t *opt;
    const char *value;
    //  Pass 1: syntax of every argument, and the config file, so flags win over the file.
    for (int i = 1; i < argc; i++) {
        int rc = s_arg(argc, argv, &i, &opt, &value, err, errlen);
        if (rc)
            return rc;
        if (opt->type == S_FILE) {
            rc = anna_config_parse_file(self, value, err, errlen);
            if (rc)
                return rc < 0 && rc != -EINVAL ? -EINVAL : rc;
        }
    }
    for (int i = 1; i < argc; i++) {
        int rc = s_arg(argc, argv, &i, &opt, &value, err, errlen);
        assert(rc == 0);
        if (opt->type == S_FLAG) {
            if (!strcmp(opt->name, "help"))
                self->help = true;
            else if (!strcmp(opt->name, "resp"))
                self->resp = true;
            else
                self->version = true;
        } else if (opt->type != S_FILE) {
            char msg[256];
            if (anna_config_set(self, opt->name, value, msg, sizeof msg))
                return s_fail(err, errlen, "--%s", msg);
        }
    }
    return 0;
}

int anna_config_validate(anna_config_t *self, char *err, size_t errlen)
{
    assert(self);
    if (self->threads < 1 || self->threads > ANNA_MAX_THREADS)
        return s_fail(err, errlen, "threads must be 1..%d (got %d)", ANNA_MAX_THREADS,
                      self->threads);
    if (self->replication < 1 || self->replication > self->threads)
        return s_fail(err, errlen, "replication must be 1..threads (1..%d, got %d)",
                      self->threads, self->replication);
    if (self->port_offset < 0 || self->port_offset > S_MAX_OFFSET)
        return s_fail(err, errlen, "port-offset must be 0..%d (got %d)", S_MAX_OFFSET,
                      self->port_offset);
    if (self->gossip_ms < 1 || self->gossip_ms > 3600000)
        return s_fail(err, errlen, "gossip-ms must be 1..3600000 (got %d)", self->gossip_ms);
    if (self->max_value_bytes < 1 || self->max_value_bytes > S_MAX_VALUE_LIMIT)
        return s_fail(err, errlen, "max-value-bytes must be 1..%" PRId64 " (got %" PRId64 ")",
                      S_MAX_VALUE_LIMIT, self->max_value_bytes);
    if (self->vnodes < 1 || self->vnodes > 10000)
        return s_fail(err, errlen, "vnodes must be 1..10000 (got %d)", self->vnodes);
    if (self->max_subscriptions < 0 || self->max_subscriptions > 1 << 28)
        return s_fail(err, errlen, "max-subscriptions must be 0..%d (got %d)", 1 << 28,
                      self->max_subscriptions);
    if (self->resp_port < 0 || self->resp_port > 65535)
        return s_fail(err, errlen, "resp-port must be 0..65535 (got %d)", self->resp_port);
    if (self->resp_max_clients < 1 || self->resp_max_clients > 1000000)
        return s_fail(err, errlen, "resp-max-clients must be 1..1000000 (got %d)",
                      self->resp_max_clients);
    if (self->resp_threads < 0 || self->resp_threads > ANNA_MAX_THREADS)
        return s_fail(err, errlen, "resp-threads must be 0..%d (got %d)", ANNA_MAX_THREADS,
                      self->resp_threads);
    if (self->wal_compact_bytes != 0 &&
        (self->wal_compact_bytes < 65536 || self->wal_compact_bytes > (int64_t)1 << 40))
        return s_fail(err, errlen, "wal-compact-bytes must be 0 or 64K..1024G (got %" PRId64 ")",
                      self->wal_compact_bytes);
    const char *pub = anna_config_public_ip(self);
    if (!strcmp(pub, "0.0.0.0"))
        return s_fail(err, errlen, "public-ip is required when bind is 0.0.0.0 (clients "
                                   "need an address they can connect to)");
    return 0;
}

const char *anna_config_public_ip(const anna_config_t *self)
{
    return self->public_ip[0] ? self->public_ip : self->bind;
}

int anna_config_resp_port(const anna_config_t *self)
{
    return self->resp_port > 0 ? self->resp_port
           : self->resp       ? ANNA_PORT_RESP + self->port_offset
                              : 0;
}

void anna_config_usage(FILE *out)
{
    anna_config_t def;
    anna_config_defaults(&def);
    fprintf(out, "usage: anna-server [options]\n"
                 "A lattice key-value store node speaking the Anna protocol.\n\noptions:\n");
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        const s_option_t *opt = &s_options[i];
        char flag[48], dflt[96] = "";
        snprintf(flag, sizeof flag, "--%s%s%s", opt->name, opt->arg ? " " : "",
                 opt->arg ? opt->arg : "");
        if (!strcmp(opt->name, "bind"))
            snprintf(dflt, sizeof dflt, " [%s]", def.bind);
        else if (!strcmp(opt->name, "threads"))
            snprintf(dflt, sizeof dflt, " [%d: online cores]", def.threads);
        else if (!strcmp(opt->name, "replication"))
            snprintf(dflt, sizeof dflt, " [%d]", def.replication);
        else if (!strcmp(opt->name, "port-offset"))
            snprintf(dflt, sizeof dflt, " [%d]", def.port_offset);
        else if (!strcmp(opt->name, "gossip-ms"))
            snprintf(dflt, sizeof dflt, " [%d]", def.gossip_ms);
        else if (!strcmp(opt->name, "max-value-bytes"))
            snprintf(dflt, sizeof dflt, " [%" PRId64 " = 64M]", def.max_value_bytes);
        else if (!strcmp(opt->name, "vnodes"))
            snprintf(dflt, sizeof dflt, " [%d]", def.vnodes);
        else if (!strcmp(opt->name, "max-subscriptions"))
            snprintf(dflt, sizeof dflt, " [%d]", def.max_subscriptions);
        else if (!strcmp(opt->name, "resp-max-clients"))
            snprintf(dflt, sizeof dflt, " [%d]", def.resp_max_clients);
        else if (!strcmp(opt->name, "wal-dir"))
            snprintf(dflt, sizeof dflt, " [none: no log]");
        else if (!strcmp(opt->name, "fsync"))
            snprintf(dflt, sizeof dflt, " [always]");
        else if (!strcmp(opt->name, "wal-compact-bytes"))
            snprintf(dflt, sizeof dflt, " [%" PRId64 " = 64M]", def.wal_compact_bytes);
        fprintf(out, "  %-24s %s%s\n", flag, opt->help, dflt);
    }
    fprintf(out, "\nSIGINT or SIGTERM stops the server; it prints per-thread counters and "
                 "exits 0.\nGET of the key \"ANNA_METADATA|stats\" returns the counters of the "
                 "thread asked.\n");
}

//  ---- self-test ----------------------------------------------------------------------------

static int s_parse(anna_config_t *cfg, char *err, size_t errlen, int argc, ...)
{
    char *argv[16] = {"anna-server"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 1; i < argc && i < 16; i++)
        argv[i] = (char *)va_arg(ap, const char *);
    va_end(ap);
    anna_config_defaults(cfg);
    int rc = anna_config_parse_args(cfg, argc, argv, err, errlen);
    return rc ? rc : anna_config_validate(cfg, err, errlen);
}

void anna_config_test(bool verbose)
{
    anna_config_t cfg;
    char err[256];

    anna_config_defaults(&cfg);
    assert(!strcmp(cfg.bind, "127.0.0.1"));
    assert(cfg.threads >= 1 && cfg.threads <= ANNA_MAX_THREADS);
    assert(cfg.replication == 1 && cfg.port_offset == 0 && cfg.gossip_ms == 100);
    assert(cfg.max_value_bytes == 64 << 20);
    assert(anna_config_validate(&cfg, err, sizeof err) == 0);
    assert(!strcmp(anna_config_public_ip(&cfg), "127.0.0.1"));

    assert(s_parse(&cfg, err, sizeof err, 8, "--threads", "2", "--replication=2",
                   "--port-offset", "100", "--max-value-bytes", "1K") == 0);
    assert(cfg.threads == 2 && cfg.replication == 2 && cfg.port_offset == 100);
    assert(cfg.max_value_bytes == 1024);
    assert(s_parse(&cfg, err, sizeof err, 3, "--public-ip", "10.1.2.3") == 0);
    assert(!strcmp(anna_config_public_ip(&cfg), "10.1.2.3"));
    assert(s_parse(&cfg, err, sizeof err, 2, "--help") == 0 && cfg.help);
    assert(s_parse(&cfg, err, sizeof err, 2, "--version") == 0 && cfg.version);
    //  RESP: off by default; --resp is 6379 + offset; --resp-port is exact.
    assert(s_parse(&cfg, err, sizeof err, 1) == 0 && anna_config_resp_port(&cfg) == 0);
    assert(s_parse(&cfg, err, sizeof err, 4, "--resp", "--port-offset", "100") == 0);
    assert(anna_config_resp_port(&cfg) == ANNA_PORT_RESP + 100);
    assert(s_parse(&cfg, err, sizeof err, 7, "--resp", "--port-offset", "100", "--resp-port",
                   "7000", "--resp-password=pw") == 0);
    assert(anna_config_resp_port(&cfg) == 7000 && !strcmp(cfg.resp_password, "pw"));
    //  Write-ahead log: off by default; fsync always unless told.
    assert(s_parse(&cfg, err, sizeof err, 1) == 0 && cfg.wal_dir[0] == '\0');
    assert(cfg.fsync_policy == ANNA_FSYNC_ALWAYS && cfg.wal_compact_bytes == 64 << 20);
    assert(s_parse(&cfg, err, sizeof err, 7, "--wal-dir", "/tmp/w", "--fsync", "everyms:20",
                   "--wal-compact-bytes", "1M") == 0);
    assert(!strcmp(cfg.wal_dir, "/tmp/w") && cfg.fsync_policy == ANNA_FSYNC_EVERY_MS);
    assert(cfg.fsync_ms == 20 && cfg.wal_compact_bytes == 1 << 20);
    assert(s_parse(&cfg, err, sizeof err, 2, "--fsync=never") == 0);
    assert(cfg.fsync_policy == ANNA_FSYNC_NEVER);

    //  Errors say what is wrong, in words a user can act on.
    struct {
        int argc;
        const char *a, *b;
        const char *expect;
    } bad[] = {
        {2, "--foo", NULL, "unknown option --foo"},
        {2, "--foo=1", NULL, "unknown option --foo"},
        {2, "--threads", NULL, "option --threads needs a value"},
        {3, "--threads", "0", "threads must be 1..50"},
        {3, "--threads", "51", "threads must be 1..50"},
        {3, "--threads", "two", "threads: not an integer: two"},
        {3, "--threads", "2x", "threads: not an integer: 2x"},
        {3, "--threads", "99999999999", "threads: not an integer"},
        {3, "--replication", "9", "replication must be 1..threads"},
        {3, "--port-offset", "-1", "port-offset must be"},
        {3, "--port-offset", "60000", "port-offset must be"},
        {3, "--gossip-ms", "0", "gossip-ms must be"},
        {3, "--max-value-bytes", "0", "max-value-bytes must be"},
        {3, "--max-value-bytes", "2G", "max-value-bytes must be"},
        {3, "--max-value-bytes", "lots", "max-value-bytes: not a size"},
        {3, "--bind", "localhost", "bind: not an IPv4 address"},
        {3, "--bind", "0.0.0.0", "public-ip is required"},
        {3, "--vnodes", "0", "vnodes must be"},
        {3, "--max-subscriptions", "-1", "max-subscriptions must be 0.."},
        {3, "--resp-port", "65536", "resp-port must be 0..65535"},
        {3, "--resp-max-clients", "0", "resp-max-clients must be 1..1000000"},
        {3, "--resp-threads", "51", "resp-threads must be 0..50"},
        {3, "--fsync", "sometimes", "fsync: not always, everyms:N"},
        {3, "--fsync", "everyms:0", "fsync: not always, everyms:N"},
        {3, "--wal-dir", "", "wal-dir: empty"},
        {3, "--wal-compact-bytes", "1K", "wal-compact-bytes must be 0 or"},
        {2, "--resp=1", NULL, "option --resp takes no value"},
        {2, "--help=yes", NULL, "option --help takes no value"},
        {2, "stray", NULL, "unexpected argument 'stray'"},
        {3, "--config", "/nonexistent/anna.conf", "cannot open config file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = bad[i].argc == 2
                     ? s_parse(&cfg, err, sizeof err, 2, bad[i].a)
                     : s_parse(&cfg, err, sizeof err, 3, bad[i].a, bad[i].b);
        if (verbose)
            printf("  %s %s -> %s\n", bad[i].a, bad[i].b ? bad[i].b : "", err);
        assert(rc == -EINVAL);
        assert(strstr(err, bad[i].expect));
    }
    //  --threads 2 with --replication 3 is rejected whatever the order of the flags.
    assert(s_parse(&cfg, err, sizeof err, 5, "--replication", "3", "--threads", "2") == -EINVAL);

    //  Config file: comments, blanks, spaces around '='; flags override it in any position.
    char path[] = "/tmp/anna-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert(fd >= 0);
    FILE *file = fdopen(fd, "w");
    fprintf(file, "# a comment\n\n  threads = 3\nreplication=2   # inline comment\n"
                  "gossip-ms = 50\nmax-value-bytes = 2M\n");
    fclose(file);
    assert(s_parse(&cfg, err, sizeof err, 5, "--threads", "4", "--config", path) == 0);
    assert(cfg.threads == 4 && cfg.replication == 2 && cfg.gossip_ms == 50);
    assert(cfg.max_value_bytes == 2 << 20);
    file = fopen(path, "w");
    fprintf(file, "threads = 2\nbogus = 1\n");
    fclose(file);
    assert(s_parse(&cfg, err, sizeof err, 3, "--config", path) == -EINVAL);
    assert(strstr(err, ":2: unknown option bogus"));
    file = fopen(path, "w");
    fprintf(file, "threads 2\n");
    fclose(file);
    assert(s_parse(&cfg, err, sizeof err, 3, "--config", path) == -EINVAL);
    assert(strstr(err, ":1: expected `name = value`"));
    file = fopen(path, "w");
    fprintf(file, "config = other\n");
    fclose(file);
    assert(s_parse(&cfg, err, sizeof err, 3, "--config", path) == -EINVAL);
    assert(strstr(err, "not allowed in a config file"));
    unlink(path);

    //  --help lists every option with its default.
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    anna_config_usage(mem);
    fclose(mem);
    for (size_t i = 0; i < S_NOPTIONS; i++)
        assert(strstr(text, s_options[i].name));
    assert(strstr(text, "[127.0.0.1]") && strstr(text, "[100]"));
    free(text);
}
