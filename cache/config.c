//  cache/config.c: one table of options drives parsing and --help, so the two cannot
//  disagree on names. The parsing machinery is common/opts.h.
//  SPDX-License-Identifier: Apache-2.0
#include "cache/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "anna/pushcache.h"
#include "common/opts.h"

#define S_PORT_KVS 6450
#define S_PORT_ROUTING 6460
#define S_PORT_DATA 6461

//  Kinds of the CB_OPTS_CUSTOM options.
enum { S_ADDR, S_BIND, S_TEXT };

#define S_FIELD(field) offsetof(cache_config_t, field), sizeof(((cache_config_t *)0)->field)
#define S_INT(field) CB_OPTS_INT, 0, S_FIELD(field)
#define S_SIZE(field) CB_OPTS_SIZE, 0, S_FIELD(field)
#define S_CUSTOM(kind, field) CB_OPTS_CUSTOM, kind, S_FIELD(field)

static const cb_opts_t s_options[] = {
    {"node", S_CUSTOM(S_TEXT, node), "NAME", "node name, in reports and stats"},
    {"kvs", S_CUSTOM(S_ADDR, kvs), "ADDR", "routing address of the KVS"},
    {"routing", S_CUSTOM(S_BIND, routing), "ADDR",
     "where executors ask for addresses (KeyAddressRequest)"},
    {"data", S_CUSTOM(S_BIND, data), "ADDR", "where executors send KeyRequests"},
    {"updates", S_CUSTOM(S_BIND, updates), "ADDR", "where the KVS pushes updates of cached keys"},
    {"scheduler", S_CUSTOM(S_ADDR, scheduler), "ADDR",
     "where status reports go (none if not given)"},
    {"port-offset", S_INT(port_offset), "N",
     "added to the default ports of --kvs, --routing and --data"},
    {"max-bytes", S_SIZE(max_bytes), "N", "memory for cached values, K/M/G suffixes; LRU beyond"},
    {"report-ms", S_INT(report_ms), "MS", "period of status reports to the scheduler"},
    {"timeout-ms", S_INT(timeout_ms), "MS", "bound on every wait for the KVS"},
    {"negative-ms", S_INT(negative_ms), "MS", "how long a KEY_DNE answer is cached (0: never)"},
    {"max-value-bytes", S_SIZE(max_value_bytes), "N", "largest value accepted (as anna-server's)"},
    {"help", CB_OPTS_FLAG, 0, S_FIELD(help), NULL, "print this help and exit"},
};
#define S_NOPTIONS (sizeof s_options / sizeof s_options[0])
#define s_fail cb_opts_fail

static void s_default_ports(cache_config_t *self)
{
    snprintf(self->kvs, sizeof self->kvs, "tcp://127.0.0.1:%d", S_PORT_KVS + self->port_offset);
    snprintf(self->routing, sizeof self->routing, "tcp://127.0.0.1:%d",
             S_PORT_ROUTING + self->port_offset);
    snprintf(self->data, sizeof self->data, "tcp://127.0.0.1:%d",
             S_PORT_DATA + self->port_offset);
}

void cache_config_defaults(cache_config_t *self)
{
    assert(self);
    memset(self, 0, sizeof *self);
    snprintf(self->node, sizeof self->node, "n0");
    s_default_ports(self);
    snprintf(self->updates, sizeof self->updates, "tcp://127.0.0.1:*");
    self->max_bytes = (int64_t)256 << 20;
    self->report_ms = 1000;
    self->timeout_ms = 5000;
    self->negative_ms = 1000;
    self->max_value_bytes = 64 << 20;
}

//  An address we may bind: ipc://path, or tcp://IPv4:port with port a number or * (any).
static bool s_bind_ok(const char *address)
{
    size_t len = strlen(address);
    if (strncmp(address, "ipc://", 6) == 0)
        return len > 6 && len - 6 < 100;
    if (strncmp(address, "tcp://", 6) != 0 || len >= CACHE_ADDR_MAX)
        return false;
    const char *colon = strrchr(address + 6, ':');
    if (!colon)
        return false;
    char ip[CACHE_ADDR_MAX];
    size_t hlen = (size_t)(colon - (address + 6));
    memcpy(ip, address + 6, hlen);
    ip[hlen] = '\0';
    struct in_addr addr;
    if (inet_pton(AF_INET, ip, &addr) != 1)
        return false;
    if (!strcmp(colon + 1, "*"))
        return true;
    int64_t port;
    return cb_opts_parse_int64(colon + 1, &port) && port >= 1 && port <= 65535;
}

static int s_set(cache_config_t *self, const cb_opts_t *opt, const char *value, char *err,
                 size_t errlen)
{
    const char *name = opt->name;
    if (opt->type != CB_OPTS_CUSTOM)
        return cb_opts_store(self, opt, value, "--", err, errlen);
    if (opt->kind == S_TEXT) {
        if (!*value || strlen(value) >= opt->size)
            return s_fail(err, errlen, "--%s: must be 1..%zu characters", name, opt->size - 1);
    } else {
        bool ok = opt->kind == S_ADDR ? anna_pushcache_address_ok(value) : s_bind_ok(value);
        if (!ok || strlen(value) >= opt->size)
            return s_fail(err, errlen, "--%s: not %s: %s", name,
                          opt->kind == S_ADDR ? "tcp://IP:port or ipc://path"
                                              : "tcp://IP:port, tcp://IP:* or ipc://path",
                          value);
    }
    snprintf((char *)self + opt->offset, opt->size, "%s", value);
    return 0;
}

//  Two binds that would collide (two ephemeral ports never do).
static bool s_same(const char *a, const char *b)
{
    return !strcmp(a, b) && !strstr(a, ":*");
}

static int s_validate(cache_config_t *self, char *err, size_t errlen)
{
    if (self->port_offset < 0 || self->port_offset > 65535 - S_PORT_DATA)
        return s_fail(err, errlen, "port-offset must be 0..%d (got %d)", 65535 - S_PORT_DATA,
                      self->port_offset);
    if (self->max_bytes < 1)
        return s_fail(err, errlen, "max-bytes must be at least 1");
    if (self->report_ms < 10 || self->report_ms > 3600000)
        return s_fail(err, errlen, "report-ms must be 10..3600000 (got %d)", self->report_ms);
    if (self->timeout_ms < 1 || self->timeout_ms > 3600000)
        return s_fail(err, errlen, "timeout-ms must be 1..3600000 (got %d)", self->timeout_ms);
    if (self->negative_ms < 0 || self->negative_ms > 3600000)
        return s_fail(err, errlen, "negative-ms must be 0..3600000 (got %d)",
                      self->negative_ms);
    if (self->max_value_bytes < 1 || self->max_value_bytes > (int64_t)1 << 30)
        return s_fail(err, errlen, "max-value-bytes must be 1..1G");
    if (s_same(self->routing, self->data) || s_same(self->routing, self->updates) ||
        s_same(self->data, self->updates))
        return s_fail(err, errlen, "routing, data and updates need distinct addresses");
    return 0;
}

int cache_config_parse_args(cache_config_t *self, int argc, char **argv, char *err,
                            size_t errlen)
{
    assert(self && argv);
    //  --port-offset moves the default ports: applied first, so the flags naming an
    //  address explicitly win whatever their order.
    for (int pass = 0; pass < 2; pass++)
        for (int i = 1; i < argc; i++) {
            const cb_opts_t *opt;
            const char *value;
            int rc = cb_opts_next(s_options, S_NOPTIONS, argc, argv, &i, &opt, &value, err,
                                  errlen);
            if (rc)
                return rc;
            bool offset = !strcmp(opt->name, "port-offset");
            if ((pass == 0) != offset)
                continue;
            if (opt->type == CB_OPTS_FLAG) {
                self->help = true;
                continue;
            }
            rc = s_set(self, opt, value, err, errlen);
            if (rc)
                return rc;
            if (offset) {
                if (self->port_offset < 0 || self->port_offset > 65535 - S_PORT_DATA)
                    return s_validate(self, err, errlen);
                s_default_ports(self);
            }
        }
    return s_validate(self, err, errlen);
}

void cache_config_usage(FILE *out)
{
    cache_config_t def;
    cache_config_defaults(&def);
    fprintf(out,
            "usage: cb-cache [options]\n"
            "The per-node cache of the FaaS runtime: executors use it as their KVS (it speaks "
            "the Anna\nprotocol), it keeps values in memory, fetches misses from the KVS, "
            "writes through, and\nis pushed every change of the keys it holds.\n\noptions:\n");
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        const cb_opts_t *opt = &s_options[i];
        const char *field = (const char *)&def + opt->offset;
        char dflt[CACHE_ADDR_MAX + 32] = "";
        if (!strcmp(opt->name, "updates"))
            snprintf(dflt, sizeof dflt, " [%s: any free port]", def.updates);
        else if (opt->type == CB_OPTS_CUSTOM && strcmp(opt->name, "scheduler"))
            snprintf(dflt, sizeof dflt, " [%s]", field);
        else if (opt->type == CB_OPTS_INT)
            snprintf(dflt, sizeof dflt, " [%d]", *(const int *)field);
        else if (!strcmp(opt->name, "max-bytes"))
            snprintf(dflt, sizeof dflt, " [256M]");
        else if (!strcmp(opt->name, "max-value-bytes"))
            snprintf(dflt, sizeof dflt, " [64M]");
        cb_opts_usage_line(out, opt, dflt);
    }
    fprintf(out,
            "\nExecutors configure their KVS client with the routing address. GET of "
            "\"ANNA_METADATA|stats\"\nthrough the cache returns its counters as JSON. SIGINT "
            "or SIGTERM stops it.\n");
}

//  ---- self-test ----------------------------------------------------------------------------

static int s_parse(cache_config_t *cfg, char *err, size_t errlen, int argc, ...)
{
    char *argv[16] = {"cb-cache"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    cache_config_defaults(cfg);
    return cache_config_parse_args(cfg, argc, argv, err, errlen);
}

void cache_config_test(bool verbose)
{
    //  @selftest
    cache_config_t cfg;
    char err[256];
    assert(s_parse(&cfg, err, sizeof err, 1) == 0);
    assert(!strcmp(cfg.kvs, "tcp://127.0.0.1:6450") && !strcmp(cfg.data, "tcp://127.0.0.1:6461"));
    assert(cfg.max_bytes == 256 << 20 && cfg.timeout_ms == 5000 && !cfg.scheduler[0]);
    //  The offset moves the default ports, not the explicit ones, in any order.
    assert(s_parse(&cfg, err, sizeof err, 5, "--data", "ipc:///tmp/d", "--port-offset",
                   "100") == 0);
    assert(!strcmp(cfg.kvs, "tcp://127.0.0.1:6550") && !strcmp(cfg.data, "ipc:///tmp/d"));
    assert(!strcmp(cfg.routing, "tcp://127.0.0.1:6560"));
    assert(s_parse(&cfg, err, sizeof err, 7, "--max-bytes=4K", "--node", "n3", "--updates",
                   "tcp://127.0.0.2:*", "--scheduler=tcp://127.0.0.1:5007") == 0);
    assert(cfg.max_bytes == 4096 && !strcmp(cfg.node, "n3"));
    assert(!strcmp(cfg.updates, "tcp://127.0.0.2:*"));
    assert(!strcmp(cfg.scheduler, "tcp://127.0.0.1:5007"));
    assert(s_parse(&cfg, err, sizeof err, 2, "--help") == 0 && cfg.help);
    struct {
        int argc;
        const char *a, *b;
        const char *expect;
    } bad[] = {
        {2, "--foo", NULL, "unknown option --foo"},
        {2, "stray", NULL, "unexpected argument 'stray'"},
        {2, "--kvs", NULL, "option --kvs needs a value"},
        {3, "--kvs", "localhost:6450", "--kvs: not tcp://IP:port"},
        {3, "--kvs", "tcp://127.0.0.1:*", "--kvs: not tcp://IP:port"},
        {3, "--data", "tcp://host:1", "--data: not tcp://IP:port, tcp://IP:*"},
        {3, "--max-bytes", "0", "max-bytes must be"},
        {3, "--max-bytes", "lots", "--max-bytes: not a size"},
        {3, "--timeout-ms", "0", "timeout-ms must be"},
        {3, "--negative-ms", "-1", "negative-ms must be"},
        {3, "--report-ms", "x", "--report-ms: not an integer"},
        {3, "--port-offset", "99999", "port-offset must be"},
        {3, "--routing", "tcp://127.0.0.1:6461", "distinct addresses"},
        {2, "--help=1", NULL, "takes no value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = s_parse(&cfg, err, sizeof err, bad[i].argc, bad[i].a, bad[i].b);
        if (rc != -EINVAL || !strstr(err, bad[i].expect)) {
            fprintf(stderr, "%s %s: rc %d, err '%s'\n", bad[i].a, bad[i].b ? bad[i].b : "", rc,
                    err);
            assert(false);
        }
        if (verbose)
            printf("  %s %s -> %s\n", bad[i].a, bad[i].b ? bad[i].b : "", err);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    cache_config_usage(mem);
    fclose(mem);
    for (size_t i = 0; i < S_NOPTIONS; i++)
        assert(strstr(text, s_options[i].name));
    free(text);
    //  @end
}
