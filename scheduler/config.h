//  scheduler/config.h: cb-scheduler configuration: defaults, command-line flags, validation.
//  Pure; used by main.c before the actor starts.
//  SPDX-License-Identifier: Apache-2.0
#ifndef SCHED_CONFIG_H
#define SCHED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

//  Ports (docs/faas-design.md), plus the port offset: client requests, executor and cache
//  reports. The KVS routing port of the same offset is the default --kvs.
#define SCHED_PORT_REQUESTS 5000
#define SCHED_PORT_STATUS 5007
#define SCHED_PORT_KVS_ROUTING 6450

typedef struct {
    char kvs[256];              //  KVS routing address; "" = tcp://127.0.0.1:(6450 + offset)
    char bind[16];              //  IPv4 address (dotted quad) the sockets bind to
    int port_offset;            //  added to both ports (and to the default KVS port)
    int dead_ms;                //  an executor that has not reported for this long is dead
    int pin_replicas;           //  executors each DAG function is pinned on (fewer if fewer)
    int pin_timeout_ms;         //  bound on the wait for PinAcks of a DAG registration
    int default_timeout_ms;     //  a call's timeout when the client gives none
    int64_t max_code_bytes;     //  largest function code accepted (CB_TOO_LARGE above)
    int random_pct;             //  share of calls placed at random (policy.h)
    int kvs_timeout_ms;         //  bound on each KVS request
    uint64_t seed;              //  placement PRNG; 0 = from the clock and pid
    bool help;                  //  --help: print usage, exit 0
} sched_config_t;

void sched_config_defaults(sched_config_t *self);
//  Applies argv[1..argc) over self ("--flag value" or "--flag=value") and validates. Returns
//  0, or -EINVAL with a one-line message in err ("unknown option --foo", "--dead-ms must be
//  100..3600000"). Fills kvs from the port offset when not given.
int sched_config_parse(sched_config_t *self, int argc, char **argv, char *err, size_t errlen);
//  The address clients and executors reach us at for a port: bind, or 127.0.0.1 when bound
//  to every interface. Writes "tcp://ip:port" to buf.
void sched_config_address(const sched_config_t *self, int port, char *buf, size_t len);
//  Writes the usage text with the defaults to out.
void sched_config_usage(FILE *out);

void sched_config_test(bool verbose);

#endif
