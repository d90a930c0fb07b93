//  anna/config.c: one table of options drives the flags, the config file and --help, so the
//  three cannot disagree on names or defaults. The parsing machinery is common/opts.h.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anna/wal.h"
#include "common/opts.h"

#define S_MAX_OFFSET (65535 - ANNA_PORT_ROUTING)
#define S_MAX_VALUE_LIMIT ((int64_t)1 << 30)

//  Kinds of the CB_OPTS_CUSTOM options.
enum { S_IP, S_TEXT, S_DIR, S_FSYNC };

#define S_FIELD(field) offsetof(anna_config_t, field), sizeof(((anna_config_t *)0)->field)
#define S_INT(field) CB_OPTS_INT, 0, S_FIELD(field)
#define S_SIZE(field) CB_OPTS_SIZE, 0, S_FIELD(field)
#define S_FLAG(field) CB_OPTS_FLAG, 0, S_FIELD(field)
#define S_CUSTOM(kind, field) CB_OPTS_CUSTOM, kind, S_FIELD(field)

static const cb_opts_t s_options[] = {
    {"config", CB_OPTS_FILE, 0, 0, 0, "FILE",
     "read options from FILE (`name = value` lines, # comments)"},
    {"bind", S_CUSTOM(S_IP, bind), "IP", "IPv4 address to listen on"},
    {"public-ip", S_CUSTOM(S_IP, public_ip), "IP",
     "address advertised to clients (default: the bind address)"},
    {"threads", S_INT(threads), "N", "worker threads, one key shard each (1..50)"},
    {"replication", S_INT(replication), "L", "copies of each key across threads (1..threads)"},
    {"port-offset", S_INT(port_offset), "N",
     "added to every port (keys 6200+t, gossip 6250+t, routing 6450)"},
    {"gossip-ms", S_INT(gossip_ms), "MS", "period of replica gossip in milliseconds"},
    {"max-value-bytes", S_SIZE(max_value_bytes), "N",
     "largest value (PUT payload or merged value); K/M/G suffixes"},
    {"vnodes", S_INT(vnodes), "N", "virtual points per thread on the hash ring"},
    {"max-subscriptions", S_INT(max_subscriptions), "N",
     "push subscriptions (key, cache) the node keeps at most"},
    {"resp", S_FLAG(resp), NULL, "serve the Redis protocol (RESP2) on port 6379 + port-offset"},
    {"resp-port", S_INT(resp_port), "P",
     "serve the Redis protocol on port P exactly (0: off unless --resp)"},
    {"resp-password", S_CUSTOM(S_TEXT, resp_password), "PW",
     "Redis clients must AUTH with PW (better in a config file)"},
    {"resp-max-clients", S_INT(resp_max_clients), "N", "Redis protocol connections served at once"},
    {"resp-threads", S_INT(resp_threads), "N",
     "Redis protocol I/O threads (0: one per worker thread)"},
    {"wal-dir", S_CUSTOM(S_DIR, wal_dir), "DIR",
     "keep a write-ahead log per thread in DIR, replayed on start"},
    {"fsync", S_CUSTOM(S_FSYNC, fsync_policy), "POLICY",
     "when the log is synced: always, everyms:N or never"},
    {"wal-compact-bytes", S_SIZE(wal_compact_bytes), "N",
     "compact a thread's log past N bytes (0: never); K/M/G"},
    {"seed", S_CUSTOM(S_IP, seed), "IP",
     "join the cluster of the node at IP (same ports, same layout)"},
    {"global-replication", S_INT(global_replication), "G",
     "owner nodes of each key in a cluster (1..64)"},
    {"heartbeat-ms", S_INT(heartbeat_ms), "MS", "period of heartbeats to every member"},
    {"node-timeout-ms", S_INT(node_timeout_ms), "MS",
     "a member not heard from for MS is removed from the cluster"},
    {"anti-entropy-ms", S_INT(anti_entropy_ms), "MS",
     "re-gossip every key to its other owners every MS (0: never)"},
    {"move-batch", S_INT(move_batch), "N",
     "keys a thread hands over per loop iteration when owners change"},
    {"leave-timeout-ms", S_INT(leave_timeout_ms), "MS",
     "at most MS for handing keys over when a node leaves"},
    {"help", S_FLAG(help), NULL, "print this help and exit"},
    {"version", S_FLAG(version), NULL, "print the version and exit"},
};
#define S_NOPTIONS (sizeof s_options / sizeof s_options[0])
#define s_fail cb_opts_fail

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
    self->global_replication = 2;
    self->heartbeat_ms = 500;
    self->node_timeout_ms = 3000;
    self->anti_entropy_ms = 30000;
    self->move_batch = 256;
    self->leave_timeout_ms = 10000;
}

//  Stores one value of a table option that takes one (cb_opts_set_fn).
static int s_set(void *cfg, const cb_opts_t *opt, const char *value, char *err, size_t errlen)
{
    anna_config_t *self = cfg;
    const char *name = opt->name;
    char *field = (char *)self + opt->offset;
    if (opt->type != CB_OPTS_CUSTOM)
        return cb_opts_store(self, opt, value, "", err, errlen);
    if (opt->kind == S_IP) {
        struct in_addr addr;
        if (strlen(value) >= opt->size || inet_pton(AF_INET, value, &addr) != 1)
            return s_fail(err, errlen, "%s: not an IPv4 address: %s", name, value);
    } else if (opt->kind == S_DIR) {
        if (!*value || strlen(value) >= opt->size)
            return s_fail(err, errlen, "%s: empty or longer than %zu bytes", name,
                          opt->size - 1);
    } else if (opt->kind == S_FSYNC) {
        anna_fsync_t policy;
        int ms = self->fsync_ms;
        if (anna_wal_parse_fsync(value, &policy, &ms))
            return s_fail(err, errlen, "%s: not always, everyms:N (N 1..60000) or never: %s",
                          name, value);
        self->fsync_policy = (int)policy;
        self->fsync_ms = ms;
        return 0;
    } else if (strlen(value) >= opt->size) {
        return s_fail(err, errlen, "%s: longer than %zu bytes", name, opt->size - 1);
    }
    snprintf(field, opt->size, "%s", value);
    return 0;
}

int anna_config_set(anna_config_t *self, const char *name, const char *value, char *err,
                    size_t errlen)
{
    assert(self && name && value);
    const cb_opts_t *opt = cb_opts_find(s_options, S_NOPTIONS, name, strlen(name));
    if (!opt || opt->type == CB_OPTS_FLAG || opt->type == CB_OPTS_FILE)
        return s_fail(err, errlen, "unknown option %s", name);
    return s_set(self, opt, value, err, errlen);
}

int anna_config_parse_file(anna_config_t *self, const char *path, char *err, size_t errlen)
{
    assert(self && path);
    return cb_opts_parse_file(s_options, S_NOPTIONS, self, s_set, path, err, errlen);
}

int anna_config_parse_args(anna_config_t *self, int argc, char **argv, char *err, size_t errlen)
{
    assert(self && argv);
    const cb_opts_t *opt;
    const char *value;
    //  Pass 1: syntax of every argument, and the config file, so flags win over the file.
    for (int i = 1; i < argc; i++) {
        int rc = cb_opts_next(s_options, S_NOPTIONS, argc, argv, &i, &opt, &value, err, errlen);
        if (rc)
            return rc;
        if (opt->type == CB_OPTS_FILE) {
            rc = anna_config_parse_file(self, value, err, errlen);
            if (rc)
                return rc < 0 && rc != -EINVAL ? -EINVAL : rc;
        }
    }
    for (int i = 1; i < argc; i++) {
        int rc = cb_opts_next(s_options, S_NOPTIONS, argc, argv, &i, &opt, &value, err, errlen);
        assert(rc == 0);
        if (opt->type == CB_OPTS_FLAG) {
            *(bool *)((char *)self + opt->offset) = true;
        } else if (opt->type != CB_OPTS_FILE) {
            char msg[256];
            if (s_set(self, opt, value, msg, sizeof msg))
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
    if (self->global_replication < 1 || self->global_replication > 64)
        return s_fail(err, errlen, "global-replication must be 1..64 (got %d)",
                      self->global_replication);
    if (self->heartbeat_ms < 10 || self->heartbeat_ms > 600000)
        return s_fail(err, errlen, "heartbeat-ms must be 10..600000 (got %d)",
                      self->heartbeat_ms);
    //  A member must miss a few heartbeats before it is taken for dead.
    if (self->node_timeout_ms < 3 * self->heartbeat_ms || self->node_timeout_ms > 3600000)
        return s_fail(err, errlen, "node-timeout-ms must be 3 x heartbeat-ms..3600000 (got %d)",
                      self->node_timeout_ms);
    if (self->anti_entropy_ms != 0 &&
        (self->anti_entropy_ms < 100 || self->anti_entropy_ms > 86400000))
        return s_fail(err, errlen, "anti-entropy-ms must be 0 or 100..86400000 (got %d)",
                      self->anti_entropy_ms);
    if (self->move_batch < 1 || self->move_batch > 1000000)
        return s_fail(err, errlen, "move-batch must be 1..1000000 (got %d)", self->move_batch);
    if (self->leave_timeout_ms < 0 || self->leave_timeout_ms > 3600000)
        return s_fail(err, errlen, "leave-timeout-ms must be 0..3600000 (got %d)",
                      self->leave_timeout_ms);
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
        const cb_opts_t *opt = &s_options[i];
        char dflt[96] = "";
        if (!strcmp(opt->name, "bind"))
            snprintf(dflt, sizeof dflt, " [%s]", def.bind);
        else if (!strcmp(opt->name, "threads"))
            snprintf(dflt, sizeof dflt, " [%d: online cores]", def.threads);
        else if (opt->type == CB_OPTS_INT && strcmp(opt->name, "resp-port") &&
                 strcmp(opt->name, "resp-threads"))
            snprintf(dflt, sizeof dflt, " [%d]", *(const int *)((char *)&def + opt->offset));
        else if (opt->type == CB_OPTS_SIZE)
            snprintf(dflt, sizeof dflt, " [%" PRId64 " = 64M]",
                     *(const int64_t *)((char *)&def + opt->offset));
        else if (!strcmp(opt->name, "wal-dir"))
            snprintf(dflt, sizeof dflt, " [none: no log]");
        else if (!strcmp(opt->name, "fsync"))
            snprintf(dflt, sizeof dflt, " [always]");
        cb_opts_usage_line(out, opt, dflt);
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
