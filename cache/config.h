//  cache/config.h: cb-cache configuration: defaults, command-line flags, validation.
//  Pure. Used by cache/main.c before the cache starts.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CACHE_CONFIG_H
#define CACHE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CACHE_ADDR_MAX 256

typedef struct {
    char node[64];              //  node name, "n0"
    char kvs[CACHE_ADDR_MAX];   //  the KVS routing tier
    char routing[CACHE_ADDR_MAX];   //  where executors ask for addresses (bound)
    char data[CACHE_ADDR_MAX];  //  where executors send KeyRequests (bound)
    char updates[CACHE_ADDR_MAX];   //  where the KVS pushes updates (bound)
    char scheduler[CACHE_ADDR_MAX]; //  where status reports go; "" = none
    int port_offset;            //  added to the default ports (not to explicit addresses)
    int64_t max_bytes;          //  memory bound of the cached values
    int report_ms;              //  period of status reports
    int timeout_ms;             //  bound on every wait for the KVS
    int negative_ms;            //  how long a KEY_DNE answer is cached; 0 = never
    int64_t max_value_bytes;    //  largest message accepted from executors and the KVS, minus
                                //  1 MiB of slack (as anna-server)
    bool help;                  //  --help given: print usage, exit 0
} cache_config_t;

//  Fills self with the defaults: node n0, KVS tcp://127.0.0.1:6450, routing
//  tcp://127.0.0.1:6460, data tcp://127.0.0.1:6461, updates tcp://127.0.0.1:* (an ephemeral
//  port), no scheduler, 256 MiB, reports every 1000 ms, timeout 5000 ms, KEY_DNE cached
//  1000 ms, values up to 64 MiB. The fixed ports move with --port-offset.
void cache_config_defaults(cache_config_t *self);
//  Applies argv[1..argc) over self ("--name value" or "--name=value"). On error returns
//  -EINVAL with a one-line message in err. Then checks ranges and addresses.
int cache_config_parse_args(cache_config_t *self, int argc, char **argv, char *err,
                            size_t errlen);
//  Writes the usage text with the defaults to out.
void cache_config_usage(FILE *out);

void cache_config_test(bool verbose);

#endif
