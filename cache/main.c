//  cache/main.c: cb-cache: flags -> cache_new -> run until SIGINT or SIGTERM -> print the
//  counters, exit 0. No logic beyond that.
//  SPDX-License-Identifier: Apache-2.0
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/config.h"
#include "common/log.h"

int main(int argc, char **argv)
{
    cb_log_set_name("cb-cache");
    cache_config_t config;
    cache_config_defaults(&config);
    char err[512];
    if (cache_config_parse_args(&config, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "cb-cache: %s (try --help)\n", err);
        return 2;
    }
    if (config.help) {
        cache_config_usage(stdout);
        return 0;
    }
    //  Signals arrive on a descriptor the loop polls, never as an interruption of a ZeroMQ
    //  call; a stray SIGPIPE must not kill the cache.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int stop_fd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (stop_fd < 0) {
        perror("cb-cache: signalfd");
        return 1;
    }
    cache_t *cache = cache_new(&config, err, sizeof err);
    if (!cache) {
        fprintf(stderr, "cb-cache: %s\n", err);
        close(stop_fd);
        return 1;
    }
    fprintf(stderr,
            "cb-cache ready: node %s, routing %s, data %s, updates %s, kvs %s, max-bytes %lld\n",
            config.node, cache_routing_address(cache), cache_data_address(cache),
            cache_updates_address(cache), config.kvs, (long long)config.max_bytes);
    fflush(stderr);
    int rc = cache_run(cache, stop_fd);
    struct signalfd_siginfo info;
    if (read(stop_fd, &info, sizeof info) == (ssize_t)sizeof info)
        cb_info("%s: stopping", info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
    cache_stats_t stats;
    cache_stats(cache, &stats);
    char line[2048];
    cache_stats_format(&stats, config.node, false, line, sizeof line);
    fprintf(stderr, "cb-cache %s\n", line);
    fflush(stderr);
    cache_destroy(&cache);
    close(stop_fd);
    return rc == 0 ? 0 : 1;
}
