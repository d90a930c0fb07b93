//  scheduler/main.c: cb-scheduler: flags -> sched_scheduler_new -> "ready" line -> wait for
//  SIGINT or SIGTERM -> stop, report counters, exit 0. No logic beyond that.
//  SPDX-License-Identifier: Apache-2.0
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "common/log.h"
#include "scheduler/config.h"
#include "scheduler/scheduler.h"

int main(int argc, char **argv)
{
    cb_log_set_name("cb-scheduler");
    sched_config_t config;
    sched_config_defaults(&config);
    char err[512];
    if (sched_config_parse(&config, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "cb-scheduler: %s (try --help)\n", err);
        return 2;
    }
    if (config.help) {
        sched_config_usage(stdout);
        return 0;
    }
    //  Signals are taken by sigwait here, never delivered to the actor (threads inherit the
    //  mask), so no ZeroMQ or KVS call of the actor is interrupted.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    sched_scheduler_t *scheduler = sched_scheduler_new(&config, err, sizeof err);
    if (!scheduler) {
        fprintf(stderr, "cb-scheduler: %s\n", err);
        return 1;
    }
    size_t functions = 0, dags = 0;
    char metadata[sizeof err + 64];
    if (sched_scheduler_loaded(scheduler, &functions, &dags, err, sizeof err))
        snprintf(metadata, sizeof metadata, "%zu function%s and %zu DAG%s loaded", functions,
                 functions == 1 ? "" : "s", dags, dags == 1 ? "" : "s");
    else
        snprintf(metadata, sizeof metadata, "metadata not loaded yet (%s), retrying", err);
    int rc = sched_scheduler_start(scheduler);
    if (rc) {
        fprintf(stderr, "cb-scheduler: cannot start its thread\n");
        sched_scheduler_destroy(&scheduler);
        return 1;
    }
    fprintf(stderr, "cb-scheduler ready: requests %s, status %s, kvs %s, %s\n",
            sched_scheduler_request_address(scheduler),
            sched_scheduler_status_address(scheduler), config.kvs, metadata);
    fflush(stderr);

    int sig = 0;
    sigwait(&stop, &sig);
    cb_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sched_scheduler_stop(scheduler);
    sched_scheduler_report(scheduler, stderr);
    sched_scheduler_destroy(&scheduler);
    return 0;
}
