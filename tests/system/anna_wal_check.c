//  tests/system/anna_wal_check.c: writes and checks acknowledged writes for the write-ahead
//  log tests (t_anna_wal.sh), through the client library.
//  Usage:
//    anna_wal_check put ROUTING PREFIX N ACKED_FILE [ROUNDS]
//        PUTs PREFIX0..PREFIX<N-1> (LWW "PREFIX<i>=<round>"; ROUNDS times over, default 1)
//        and a SET key PREFIX-set gaining one element per key, appending each acknowledged
//        key and value to ACKED_FILE ("key value" lines, flushed at once). Stops at the
//        first failure (the server was killed): exit 0 after at least one ack, 1 otherwise.
//    anna_wal_check verify ROUTING ACKED_FILE
//        Every acknowledged write is readable: the last acknowledged LWW value of each key,
//        and every acknowledged element of each set. Prints "verified N writes"; exit 1 on
//        the first loss.
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/kvs.h"
#include "common/err.h"
#include "lattices/lattice.h"

static cb_kvs_t *s_connect(const char *routing)
{
    cb_kvs_config_t config = {.routing = routing, .timeout_ms = 2000};
    cb_kvs_t *kvs = cb_kvs_new(&config);
    if (!kvs) {
        fprintf(stderr, "anna_wal_check: cannot create a client for %s\n", routing);
        exit(2);
    }
    return kvs;
}

static int s_put(const char *routing, const char *prefix, long n, const char *path, long rounds)
{
    FILE *acked = fopen(path, "a");
    if (!acked) {
        perror(path);
        return 2;
    }
    cb_kvs_t *kvs = s_connect(routing);
    char set_key[256];
    snprintf(set_key, sizeof set_key, "%s-set", prefix);
    long count = 0;
    int rc = 0;
    for (long r = 0; r < rounds && rc == 0; r++)
        for (long i = 0; i < n && rc == 0; i++) {
            char key[256], value[300];
            snprintf(key, sizeof key, "%s%ld", prefix, i);
            snprintf(value, sizeof value, "%s=%ld", key, r);
            rc = cb_kvs_put_lww(kvs, key, value, strlen(value));
            if (rc)
                break;
            fprintf(acked, "L %s %s\n", key, value);
            fflush(acked);
            count++;
            if (i % 10 == 0) {
                lat_t set;
                lat_init(&set, LAT_SET);
                lat_set_insert(&set.u.set, value, strlen(value));
                rc = cb_kvs_put(kvs, set_key, &set);
                lat_fini(&set);
                if (rc)
                    break;
                fprintf(acked, "S %s %s\n", set_key, value);
                fflush(acked);
                count++;
            }
        }
    if (rc)
        printf("anna_wal_check: stopped after %ld acknowledged writes: %s (%s)\n", count,
               cb_strerror(rc), cb_kvs_last_error(kvs));
    else
        printf("anna_wal_check: %ld acknowledged writes\n", count);
    cb_kvs_destroy(&kvs);
    fclose(acked);
    return count > 0 ? 0 : 1;
}

//  The expected LWW values: the last acknowledged value per key wins (each round writes a
//  newer one), so the file is read in order and the last line of a key is its value.
typedef struct {
    char kind;
    char *key;
    char *value;
    bool superseded;            //  a later acknowledged LWW write of the same key exists
} s_write_t;

static int s_verify(const char *routing, const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        perror(path);
        return 2;
    }
    s_write_t *writes = NULL;
    size_t n = 0, cap = 0;
    char kind;
    char key[512], value[512];
    while (fscanf(file, " %c %511s %511s", &kind, key, value) == 3) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            writes = realloc(writes, cap * sizeof *writes);
            if (!writes)
                abort();
        }
        writes[n++] = (s_write_t){kind, strdup(key), strdup(value), false};
    }
    fclose(file);
    //  Marks superseded LWW writes: quadratic, fine for the few thousand lines of the tests.
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n && writes[i].kind == 'L'; j++)
            if (writes[j].kind == 'L' && !strcmp(writes[i].key, writes[j].key)) {
                writes[i].superseded = true;
                break;
            }
    cb_kvs_t *kvs = s_connect(routing);
    int result = 0;
    size_t checked = 0;
    for (size_t i = 0; i < n && result == 0; i++) {
        if (writes[i].superseded)
            continue;
        lat_t got;
        int rc = cb_kvs_get(kvs, writes[i].key, &got);
        size_t len = strlen(writes[i].value);
        if (rc) {
            printf("FAIL: acknowledged write of %s lost: %s (%s)\n", writes[i].key,
                   cb_strerror(rc), cb_kvs_last_error(kvs));
            result = 1;
        } else if (writes[i].kind == 'L' &&
                   (got.kind != LAT_LWW || got.u.lww.value.len != len ||
                    memcmp(got.u.lww.value.data, writes[i].value, len) != 0)) {
            printf("FAIL: %s does not hold its last acknowledged value %s\n", writes[i].key,
                   writes[i].value);
            result = 1;
        } else if (writes[i].kind == 'S' &&
                   (got.kind != LAT_SET || !lat_set_contains(&got.u.set, writes[i].value, len))) {
            printf("FAIL: set %s lost its acknowledged element %s\n", writes[i].key,
                   writes[i].value);
            result = 1;
        } else
            checked++;
        lat_fini(&got);
    }
    if (result == 0)
        printf("anna_wal_check: verified %zu acknowledged writes (%zu lines)\n", checked, n);
    for (size_t i = 0; i < n; i++) {
        free(writes[i].key);
        free(writes[i].value);
    }
    free(writes);
    cb_kvs_destroy(&kvs);
    return result;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && !strcmp(argv[1], "put"))
        return s_put(argv[2], argv[3], atol(argv[4]), argv[5], argc > 6 ? atol(argv[6]) : 1);
    if (argc == 4 && !strcmp(argv[1], "verify"))
        return s_verify(argv[2], argv[3]);
    fprintf(stderr, "usage: anna_wal_check put ROUTING PREFIX N ACKED_FILE [ROUNDS]\n"
                    "       anna_wal_check verify ROUTING ACKED_FILE\n");
    return 2;
}
