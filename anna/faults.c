//  anna/faults.c: fault injection choices. Contract in faults.h.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/faults.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int anna_faults_parse(anna_faults_t *self, const char *spec, uint64_t stream, char *err,
                      size_t errlen)
{
    memset(self, 0, sizeof *self);
    self->delay_ms = 100;
    uint64_t seed = 1;
    if (!spec || !*spec)
        return 0;
    char buf[256];
    if (strlen(spec) >= sizeof buf) {
        snprintf(err, errlen, "ANNA_FAULTS: longer than %zu bytes", sizeof buf - 1);
        return -EINVAL;
    }
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        char *end = NULL;
        if (!eq) {
            snprintf(err, errlen, "ANNA_FAULTS: '%s' is not name=value", item);
            return -EINVAL;
        }
        *eq = '\0';
        const char *value = eq + 1;
        double *p = !strcmp(item, "drop") ? &self->drop
                    : !strcmp(item, "dup") ? &self->dup
                    : !strcmp(item, "delay") ? &self->delay
                                             : NULL;
        if (p) {
            *p = strtod(value, &end);
            if (end == value || *end || *p < 0 || *p > 1) {
                snprintf(err, errlen, "ANNA_FAULTS: %s must be a probability 0..1", item);
                return -EINVAL;
            }
        } else if (!strcmp(item, "seed") || !strcmp(item, "delay-ms")) {
            unsigned long long v = strtoull(value, &end, 10);
            if (end == value || *end || (!strcmp(item, "delay-ms") && (v < 1 || v > 60000))) {
                snprintf(err, errlen, "ANNA_FAULTS: bad %s '%s'", item, value);
                return -EINVAL;
            }
            if (!strcmp(item, "seed"))
                seed = v;
            else
                self->delay_ms = (int)v;
        } else {
            snprintf(err, errlen, "ANNA_FAULTS: unknown fault '%s' (drop, dup, delay, "
                     "delay-ms, seed)", item);
            return -EINVAL;
        }
    }
    if (self->drop + self->dup + self->delay > 1.0) {
        snprintf(err, errlen, "ANNA_FAULTS: drop + dup + delay must be at most 1");
        return -EINVAL;
    }
    cb_rand_seed(&self->rand, seed * 0x9e3779b97f4a7c15ULL + stream);
    self->on = true;
    return 0;
}

anna_fault_t anna_faults_next(anna_faults_t *self, int *delay_ms)
{
    if (!self->on)
        return ANNA_FAULT_NONE;
    double u = cb_rand_unit(&self->rand);
    if (u < self->drop)
        return ANNA_FAULT_DROP;
    if (u < self->drop + self->dup)
        return ANNA_FAULT_DUP;
    if (u < self->drop + self->dup + self->delay) {
        *delay_ms = 1 + (int)cb_rand_below(&self->rand, (uint64_t)self->delay_ms);
        return ANNA_FAULT_DELAY;
    }
    return ANNA_FAULT_NONE;
}

void anna_faults_test(bool verbose)
{
    anna_faults_t f;
    char err[200];
    assert(anna_faults_parse(&f, "", 0, err, sizeof err) == 0 && !f.on);
    int d = 0;
    assert(anna_faults_next(&f, &d) == ANNA_FAULT_NONE);
    assert(anna_faults_parse(&f, "drop=2", 0, err, sizeof err) == -EINVAL);
    assert(anna_faults_parse(&f, "drop=0.6,dup=0.6", 0, err, sizeof err) == -EINVAL);
    assert(anna_faults_parse(&f, "lose=0.1", 0, err, sizeof err) == -EINVAL &&
           strstr(err, "unknown"));
    assert(anna_faults_parse(&f, "drop", 0, err, sizeof err) == -EINVAL);
    assert(anna_faults_parse(&f, "delay-ms=0", 0, err, sizeof err) == -EINVAL);
    //  The rates come out as asked, and a seed replays the same sequence.
    assert(anna_faults_parse(&f, "seed=7,drop=0.2,dup=0.1,delay=0.3,delay-ms=50", 3, err,
                             sizeof err) == 0);
    int counts[4] = {0};
    anna_fault_t first[64];
    for (int i = 0; i < 10000; i++) {
        anna_fault_t k = anna_faults_next(&f, &d);
        if (i < 64)
            first[i] = k;
        if (k == ANNA_FAULT_DELAY)
            assert(d >= 1 && d <= 50);
        counts[k]++;
    }
    assert(counts[ANNA_FAULT_DROP] > 1700 && counts[ANNA_FAULT_DROP] < 2300);
    assert(counts[ANNA_FAULT_DUP] > 800 && counts[ANNA_FAULT_DUP] < 1200);
    assert(counts[ANNA_FAULT_DELAY] > 2700 && counts[ANNA_FAULT_DELAY] < 3300);
    anna_faults_t g;
    assert(anna_faults_parse(&g, "seed=7,drop=0.2,dup=0.1,delay=0.3,delay-ms=50", 3, err,
                             sizeof err) == 0);
    for (int i = 0; i < 64; i++)
        assert(anna_faults_next(&g, &d) == first[i]);
    if (verbose)
        printf(" faults: spec parsing, rates, replay by seed\n");
}
