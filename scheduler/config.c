//  scheduler/config.c: one table of integer options (name, field, range) drives parsing,
//  validation and the usage text, so that they cannot disagree.
//  SPDX-License-Identifier: Apache-2.0
#include "scheduler/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    size_t offset;
    int size;                   //  sizeof the field: int or int64_t
    int64_t min, max;
    const char *help;
} s_int_option_t;

static const s_int_option_t s_ints[] = {
    {"port-offset", offsetof(sched_config_t, port_offset), sizeof(int), 0, 60000,
     "added to the request (5000) and status (5007) ports"},
    {"dead-ms", offsetof(sched_config_t, dead_ms), sizeof(int), 100, 3600000,
     "an executor silent this long is dead"},
    {"pin-replicas", offsetof(sched_config_t, pin_replicas), sizeof(int), 1, 16,
     "executors each DAG function is pinned on"},
    {"pin-timeout-ms", offsetof(sched_config_t, pin_timeout_ms), sizeof(int), 10, 600000,
     "wait for executors to acknowledge pins"},
    {"default-timeout-ms", offsetof(sched_config_t, default_timeout_ms), sizeof(int), 1,
     3600000, "a call's timeout when the client gives none"},
    {"max-code-bytes", offsetof(sched_config_t, max_code_bytes), sizeof(int64_t), 1,
     (int64_t)1 << 30, "largest function code accepted"},
    {"random-pct", offsetof(sched_config_t, random_pct), sizeof(int), 0, 100,
     "percent of calls placed at random among candidates"},
    {"kvs-timeout-ms", offsetof(sched_config_t, kvs_timeout_ms), sizeof(int), 10, 60000,
     "bound on each KVS request"},
};
#define S_NINTS (sizeof s_ints / sizeof s_ints[0])

void sched_config_defaults(sched_config_t *self)
{
    assert(self);
    memset(self, 0, sizeof *self);
    snprintf(self->bind, sizeof self->bind, "127.0.0.1");
    self->dead_ms = 3000;
    self->pin_replicas = 2;
    self->pin_timeout_ms = 5000;
    self->default_timeout_ms = 10000;
    self->max_code_bytes = 16 << 20;
    self->random_pct = 20;
    self->kvs_timeout_ms = 1000;
}

static void s_set_int(sched_config_t *self, const s_int_option_t *o, int64_t v)
{
    char *field = (char *)self + o->offset;
    if (o->size == (int)sizeof(int))
        *(int *)field = (int)v;
    else
        *(int64_t *)field = v;
}

static int64_t s_get_int(const sched_config_t *self, const s_int_option_t *o)
{
    const char *field = (const char *)self + o->offset;
    return o->size == (int)sizeof(int) ? *(const int *)field : *(const int64_t *)field;
}

static int s_set(sched_config_t *self, const char *name, const char *value, char *err,
                 size_t errlen)
{
    if (strcmp(name, "kvs") == 0) {
        if (strncmp(value, "tcp://", 6) != 0 && strncmp(value, "ipc://", 6) != 0) {
            snprintf(err, errlen, "--kvs must be a tcp:// or ipc:// address, not '%.64s'",
                     value);
            return -EINVAL;
        }
        if (strlen(value) >= sizeof self->kvs) {
            snprintf(err, errlen, "--kvs is too long");
            return -EINVAL;
        }
        snprintf(self->kvs, sizeof self->kvs, "%s", value);
        return 0;
    }
    if (strcmp(name, "bind") == 0) {
        struct in_addr a;
        if (strlen(value) >= sizeof self->bind || inet_pton(AF_INET, value, &a) != 1) {
            snprintf(err, errlen, "--bind must be an IPv4 address, not '%.64s'", value);
            return -EINVAL;
        }
        snprintf(self->bind, sizeof self->bind, "%s", value);
        return 0;
    }
    if (strcmp(name, "seed") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-') {
            snprintf(err, errlen, "--seed must be a non-negative integer, not '%.64s'", value);
            return -EINVAL;
        }
        self->seed = v;
        return 0;
    }
    for (size_t i = 0; i < S_NINTS; i++) {
        const s_int_option_t *o = &s_ints[i];
        if (strcmp(name, o->name) != 0)
            continue;
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            snprintf(err, errlen, "--%s must be %" PRId64 "..%" PRId64 ", not '%.64s'", o->name,
                     o->min, o->max, value);
            return -EINVAL;
        }
        s_set_int(self, o, v);
        return 0;
    }
    snprintf(err, errlen, "unknown option --%.64s", name);
    return -EINVAL;
}

int sched_config_parse(sched_config_t *self, int argc, char **argv, char *err, size_t errlen)
{
    assert(self && err);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            self->help = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%.64s'", arg);
            return -EINVAL;
        }
        char name[64];
        const char *value;
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (len >= sizeof name) {
            snprintf(err, errlen, "unknown option %.64s", arg);
            return -EINVAL;
        }
        memcpy(name, arg + 2, len);
        name[len] = '\0';
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            snprintf(err, errlen, "--%s needs a value", name);
            return -EINVAL;
        }
        int rc = s_set(self, name, value, err, errlen);
        if (rc)
            return rc;
    }
    if (!self->kvs[0])
        snprintf(self->kvs, sizeof self->kvs, "tcp://127.0.0.1:%d",
                 SCHED_PORT_KVS_ROUTING + self->port_offset);
    return 0;
}

void sched_config_address(const sched_config_t *self, int port, char *buf, size_t len)
{
    assert(self && buf);
    const char *ip = strcmp(self->bind, "0.0.0.0") == 0 ? "127.0.0.1" : self->bind;
    snprintf(buf, len, "tcp://%s:%d", ip, port + self->port_offset);
}

void sched_config_usage(FILE *out)
{
    sched_config_t def;
    sched_config_defaults(&def);
    fprintf(out,
            "usage: cb-scheduler [options]\n"
            "The FaaS scheduler: registers functions and DAGs (kept in the KVS), pins DAG\n"
            "functions on executors, places calls. Requests on port 5000, executor and cache\n"
            "reports on port 5007 (each plus --port-offset).\n\n"
            "  --kvs ADDR               KVS routing address [tcp://127.0.0.1:6450 + offset]\n"
            "  --bind IP                address to bind [%s]\n"
            "  --seed N                 placement PRNG seed [0 = from the clock]\n",
            def.bind);
    for (size_t i = 0; i < S_NINTS; i++) {
        char flag[48];
        snprintf(flag, sizeof flag, "--%s N", s_ints[i].name);
        fprintf(out, "  %-24s %s [%" PRId64 "]\n", flag, s_ints[i].help,
                s_get_int(&def, &s_ints[i]));
    }
    fprintf(out, "  --help                   this text\n");
}

//  ---- self-test ----------------------------------------------------------------------------

static int s_parse(sched_config_t *c, const char *line, char *err, size_t errlen)
{
    char buf[512];
    snprintf(buf, sizeof buf, "cb-scheduler %s", line);
    char *argv[32];
    int argc = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, " ", &save); t && argc < 32; t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    sched_config_defaults(c);
    return sched_config_parse(c, argc, argv, err, errlen);
}

void sched_config_test(bool verbose)
{
    //  @selftest
    sched_config_t c;
    char err[256];
    assert(s_parse(&c, "", err, sizeof err) == 0);
    assert(strcmp(c.kvs, "tcp://127.0.0.1:6450") == 0 && c.dead_ms == 3000);
    assert(c.pin_replicas == 2 && c.default_timeout_ms == 10000 && c.random_pct == 20);
    assert(c.max_code_bytes == 16 << 20 && !c.help);
    assert(s_parse(&c, "--port-offset 300 --dead-ms=500 --pin-replicas 3 --seed 9", err,
                   sizeof err) == 0);
    assert(strcmp(c.kvs, "tcp://127.0.0.1:6750") == 0 && c.dead_ms == 500);
    assert(c.pin_replicas == 3 && c.seed == 9 && c.port_offset == 300);
    char addr[96];
    sched_config_address(&c, SCHED_PORT_STATUS, addr, sizeof addr);
    assert(strcmp(addr, "tcp://127.0.0.1:5307") == 0);
    assert(s_parse(&c, "--bind 0.0.0.0 --kvs tcp://10.0.0.1:6450 --max-code-bytes 1024", err,
                   sizeof err) == 0);
    sched_config_address(&c, SCHED_PORT_REQUESTS, addr, sizeof addr);
    assert(strcmp(addr, "tcp://127.0.0.1:5000") == 0 && c.max_code_bytes == 1024);
    assert(strcmp(c.kvs, "tcp://10.0.0.1:6450") == 0);
    assert(s_parse(&c, "--help", err, sizeof err) == 0 && c.help);

    assert(s_parse(&c, "--nope 1", err, sizeof err) == -EINVAL);
    assert(strcmp(err, "unknown option --nope") == 0);
    assert(s_parse(&c, "--dead-ms 5", err, sizeof err) == -EINVAL);
    assert(strcmp(err, "--dead-ms must be 100..3600000, not '5'") == 0);
    assert(s_parse(&c, "--dead-ms", err, sizeof err) == -EINVAL);
    assert(strcmp(err, "--dead-ms needs a value") == 0);
    assert(s_parse(&c, "--pin-replicas x", err, sizeof err) == -EINVAL);
    assert(s_parse(&c, "--bind localhost", err, sizeof err) == -EINVAL);
    assert(s_parse(&c, "--kvs 127.0.0.1:6450", err, sizeof err) == -EINVAL);
    assert(s_parse(&c, "--seed -1", err, sizeof err) == -EINVAL);
    assert(s_parse(&c, "stray", err, sizeof err) == -EINVAL);
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        sched_config_usage(null);
        fclose(null);
    }
    //  @end
    if (verbose)
        printf("  config ok\n");
}
