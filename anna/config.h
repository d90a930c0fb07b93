//  anna/config.h: anna-server configuration: defaults, command-line flags, an optional
//  config file (`key = value` lines with the long flag names, `#` comments), validation.
//  Pure apart from reading the config file. Used by main.c before any thread starts.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_CONFIG_H
#define ANNA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

//  Ports, Anna §2.11: key requests on 6200+t, gossip on 6250+t, routing on 6450, each plus
//  the port offset. Fifty ports per range, so at most fifty threads.
#define ANNA_PORT_KEYS 6200
#define ANNA_PORT_GOSSIP 6250
#define ANNA_PORT_ROUTING 6450
//  Cluster membership (join, heartbeat, leave) between the nodes' routing threads: 6400.
#define ANNA_PORT_CLUSTER 6400
#define ANNA_MAX_THREADS 50
//  The RESP front end's default port (Redis's), plus the port offset, with --resp.
#define ANNA_PORT_RESP 6379

#define ANNA_VERSION "0.1.0"

typedef struct {
    char bind[64];              //  IPv4 address the sockets bind to
    char public_ip[64];         //  address advertised to clients; "" = same as bind
    int threads;                //  worker threads (key shards)
    int replication;            //  replicas of each key across threads (<= threads)
    int port_offset;            //  added to every port
    int gossip_ms;              //  gossip period
    int64_t max_value_bytes;    //  largest value a PUT may carry or a key may grow to
    int vnodes;                 //  virtual points per thread on the ring
    int max_subscriptions;      //  push subscriptions of the node, shared among its threads
    //  RESP (Redis protocol) front end, anna/resp.h: off unless resp or resp_port is set.
    bool resp;                  //  --resp: serve RESP on ANNA_PORT_RESP + port_offset
    int resp_port;              //  --resp-port: serve RESP on exactly this port; 0 = see resp
    char resp_password[256];    //  --resp-password: clients must AUTH with it; "" = no AUTH
    int resp_max_clients;       //  --resp-max-clients: RESP connections of the node at once
    int resp_threads;           //  --resp-threads: RESP I/O threads; 0 = one per worker thread
    //  Write-ahead log, one per worker thread (anna/wal.h): off unless wal_dir is set.
    char wal_dir[1024];         //  --wal-dir: directory of the logs; "" = no log
    int fsync_policy;           //  --fsync: an anna_fsync_t (always, everyms:N, never)
    int fsync_ms;               //  --fsync everyms:N: N
    int64_t wal_compact_bytes;  //  --wal-compact-bytes: compact a log past this size; 0 = never
    //  Cluster (anna/cluster.h, anna/membership.h): nodes are named by their public IP and
    //  use the same ports (and port offset) as one another.
    char seed[64];              //  --seed: IP of a node to join through; "" = start alone
    int global_replication;     //  --global-replication: owner nodes of each key (G)
    int heartbeat_ms;           //  --heartbeat-ms: period of heartbeats to every member
    int node_timeout_ms;        //  --node-timeout-ms: a member silent this long is removed
    int anti_entropy_ms;        //  --anti-entropy-ms: period of full re-gossip; 0 = never
    int move_batch;             //  --move-batch: keys handed over per loop iteration
    int leave_timeout_ms;       //  --leave-timeout-ms: bound on the hand-over at shutdown
    bool help;                  //  --help given: print usage, exit 0
    bool version;               //  --version given
} anna_config_t;

//  Fills self with the defaults (threads = online cores, at most ANNA_MAX_THREADS).
void anna_config_defaults(anna_config_t *self);

//  Applies argv[1..argc) over self. A --config FILE is read first, wherever it appears, so
//  flags override the file. On error returns -EINVAL and writes a one-line message to err
//  (e.g. "unknown option --foo"). Does not validate ranges: call anna_config_validate.
int anna_config_parse_args(anna_config_t *self, int argc, char **argv, char *err, size_t errlen);
//  Applies a config file. Returns 0, -EINVAL (bad line: message says file:line) or the
//  negative errno of opening it.
int anna_config_parse_file(anna_config_t *self, const char *path, char *err, size_t errlen);
//  Sets one option by its long name (without "--"). Returns 0 or -EINVAL with a message.
int anna_config_set(anna_config_t *self, const char *name, const char *value, char *err,
                    size_t errlen);
//  Checks ranges and combinations; fills public_ip from bind. Returns 0 or -EINVAL with a
//  message such as "threads must be 1..50".
int anna_config_validate(anna_config_t *self, char *err, size_t errlen);
//  The advertised IP (public_ip, or bind when unset). Borrowed from self.
const char *anna_config_public_ip(const anna_config_t *self);

//  The TCP port the RESP front end listens on (resp_port, else ANNA_PORT_RESP + port_offset
//  with resp), or 0 when it is off.
int anna_config_resp_port(const anna_config_t *self);

//  Writes the usage text with the defaults to out.
void anna_config_usage(FILE *out);

void anna_config_test(bool verbose);

#endif
