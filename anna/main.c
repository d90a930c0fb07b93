//  anna/main.c: anna-server: flags and config file -> anna_server_new -> wait for SIGINT or
//  SIGTERM -> stop, report counters, exit 0. No logic beyond that.
//  SPDX-License-Identifier: Apache-2.0
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "anna/config.h"
#include "anna/server.h"
#include "common/log.h"

//  "6200" for one thread, "6200-6203" for four.
static void s_port_range(char *buf, size_t len, int base, int count)
{
    if (count == 1)
        snprintf(buf, len, "%d", base);
    else
        snprintf(buf, len, "%d-%d", base, base + count - 1);
}

int main(int argc, char **argv)
{
    cb_log_set_name("anna-server");
    anna_config_t config;
    anna_config_defaults(&config);
    char err[512];
    if (anna_config_parse_args(&config, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "anna-server: %s (try --help)\n", err);
        return 2;
    }
    if (config.help) {
        anna_config_usage(stdout);
        return 0;
    }
    if (config.version) {
        printf("anna-server %s\n", ANNA_VERSION);
        return 0;
    }
    if (anna_config_validate(&config, err, sizeof err) != 0) {
        fprintf(stderr, "anna-server: %s (try --help)\n", err);
        return 2;
    }

    //  Signals are taken by sigwait here, never delivered to an actor (threads inherit the
    //  mask), so no ZeroMQ call is ever interrupted. SIGPIPE cannot happen with ZeroMQ's
    //  sockets, but a stray one must not kill the node either.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    anna_server_t *server = anna_server_new(&config, err, sizeof err);
    if (!server) {
        fprintf(stderr, "anna-server: %s\n", err);
        return 1;
    }
    char keys[32], gossip[32];
    s_port_range(keys, sizeof keys, ANNA_PORT_KEYS + config.port_offset, config.threads);
    s_port_range(gossip, sizeof gossip, ANNA_PORT_GOSSIP + config.port_offset, config.threads);
    char resp[96] = "";
    if (anna_config_resp_port(&config) > 0)
        snprintf(resp, sizeof resp, ", resp tcp://%s:%d", config.bind,
                 anna_config_resp_port(&config));
    fprintf(stderr,
            "anna-server ready: %d thread%s, keys tcp://%s:%s, gossip tcp://%s:%s, routing "
            "tcp://%s:%d%s, cluster tcp://%s:%d%s%s, replication %d (global %d), advertised "
            "as %s\n",
            config.threads, config.threads == 1 ? "" : "s", config.bind, keys, config.bind,
            gossip, config.bind, ANNA_PORT_ROUTING + config.port_offset, resp, config.bind,
            ANNA_PORT_CLUSTER + config.port_offset, config.seed[0] ? ", joined through " : "",
            config.seed, config.replication, config.global_replication,
            anna_config_public_ip(&config));
    fflush(stderr);

    int sig = 0;
    sigwait(&stop, &sig);
    cb_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    anna_server_stop(server);
    anna_server_report(server, stderr);
    anna_server_destroy(&server);
    return 0;
}
