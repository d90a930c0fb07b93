//  executor/main.c: cb-executor: flags -> exec_executor_new -> serve until SIGINT/SIGTERM.
//  No logic beyond that.
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "executor/executor.h"
#include "executor/runner.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: cb-executor [options]\n"
            "Runs functions (shared objects built against executor/function.h) for the\n"
            "scheduler, in a runner child process. Prints a line with \"ready\" and its\n"
            "address once it takes messages.\n"
            "  --node NAME            node name (n0); the id is NAME/INDEX\n"
            "  --index I              executor index on the node (0)\n"
            "  --scheduler ADDR       the scheduler's report socket, for ExecutorInfo and pin\n"
            "                         acks (tcp://127.0.0.1:5007); \"\" for none\n"
            "  --cache ADDR           the node cache's routing address (the runner's KVS)\n"
            "  --kvs ADDR             the KVS routing address, used when there is no cache\n"
            "                         (tcp://127.0.0.1:6450)\n"
            "  --bind IP              address to take messages on, ephemeral port (127.0.0.1)\n"
            "  --trusted-keys FILE    run only code signed by these Ed25519 keys (one hex key\n"
            "                         a line)\n"
            "  --call-timeout-ms N    a call's bound when the call sets none (10000)\n"
            "  --report-ms N          report period (1000)\n"
            "  --help\n");
}

static int s_int(const char *text, const char *flag, int min, int max)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < min || v > max) {
        fprintf(stderr, "cb-executor: %s wants an integer in [%d, %d], not '%s'\n", flag, min, max,
                text);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    //  The executor starts its runners as `cb-executor --runner ...` (executor/runner.h).
    if (argc > 1 && !strcmp(argv[1], "--runner"))
        exec_runner_main(argc, argv);
    cb_log_set_name("cb-executor");
    exec_config_t config;
    exec_config_defaults(&config);
    enum { O_NODE = 1, O_INDEX, O_SCHED, O_CACHE, O_KVS, O_BIND, O_KEYS, O_TIMEOUT, O_REPORT };
    static const struct option options[] = {
        {"node", required_argument, NULL, O_NODE},
        {"index", required_argument, NULL, O_INDEX},
        {"scheduler", required_argument, NULL, O_SCHED},
        {"cache", required_argument, NULL, O_CACHE},
        {"kvs", required_argument, NULL, O_KVS},
        {"bind", required_argument, NULL, O_BIND},
        {"trusted-keys", required_argument, NULL, O_KEYS},
        {"call-timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"report-ms", required_argument, NULL, O_REPORT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case O_NODE:
            config.node = optarg;
            break;
        case O_INDEX:
            config.index = s_int(optarg, "--index", 0, 1 << 20);
            break;
        case O_SCHED:
            config.scheduler = optarg;
            break;
        case O_CACHE:
            config.cache = optarg;
            break;
        case O_KVS:
            config.kvs = optarg;
            break;
        case O_BIND:
            config.bind_ip = optarg;
            break;
        case O_KEYS:
            config.trusted_keys = optarg;
            break;
        case O_TIMEOUT:
            config.call_timeout_ms = s_int(optarg, "--call-timeout-ms", 1, 3600000);
            break;
        case O_REPORT:
            config.report_ms = s_int(optarg, "--report-ms", 10, 3600000);
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "cb-executor: try --help\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cb-executor: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    if (!*config.node) {
        fprintf(stderr, "cb-executor: --node must not be empty\n");
        return 2;
    }

    //  Stop signals arrive on a descriptor the loop polls; blocked before any thread
    //  exists so that ZeroMQ's threads never take them. The runner unblocks them.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int stop_fd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (stop_fd < 0) {
        perror("cb-executor: signalfd");
        return 1;
    }

    char err[512];
    exec_executor_t *executor = exec_executor_new(&config, err, sizeof err);
    if (!executor) {
        fprintf(stderr, "cb-executor: %s\n", err);
        return 1;
    }
    printf("cb-executor %s ready at %s (pid %d, KVS via %s)\n", exec_executor_id(executor),
           exec_executor_address(executor), (int)getpid(),
           config.cache && *config.cache ? config.cache : config.kvs);
    fflush(stdout);
    int rc = exec_executor_run(executor, stop_fd);
    exec_stats_t stats;
    exec_executor_stats(executor, &stats);
    cb_info("stopping: %llu calls (%llu failed), %llu runners, %llu malformed, %llu dropped, "
            "%llu dropped from the inbox, warm runner round trip %.1f us on average",
            (unsigned long long)stats.calls, (unsigned long long)stats.failed,
            (unsigned long long)stats.runners, (unsigned long long)stats.malformed,
            (unsigned long long)stats.dropped, (unsigned long long)stats.inbox_dropped,
            stats.runner_calls ? (double)stats.runner_us / (double)stats.runner_calls : 0.0);
    exec_executor_destroy(&executor);
    close(stop_fd);
    return rc == 0 ? 0 : 1;
}
