//  tests/system/stopped.h: waiting until a process stopped with SIGSTOP really is stopped.
//  kill() returns before the target stops: a thread busy on another CPU (or a vCPU the host
//  has not scheduled yet) stops a little later, and could still answer a request sent at
//  once. A test that needs a silent server waits with ts_wait_stopped() after kill(SIGSTOP).
//  Header-only (static inline), for the C test drivers of tests/system.
//  SPDX-License-Identifier: Apache-2.0
#ifndef TESTS_SYSTEM_STOPPED_H
#define TESTS_SYSTEM_STOPPED_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/clock.h"

//  True when every thread of pid is stopped (state T or t in /proc/PID/task/*/stat).
static inline bool ts_all_stopped(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return false;
    bool stopped = true;
    struct dirent *d;
    while (stopped && (d = readdir(dir))) {
        if (d->d_name[0] == '.')
            continue;
        char stat_path[400], buf[512];
        snprintf(stat_path, sizeof stat_path, "%s/%s/stat", path, d->d_name);
        FILE *f = fopen(stat_path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        const char *paren = strrchr(buf, ')');     //  the command name may hold anything
        stopped = paren && (paren[1] == ' ') && (paren[2] == 'T' || paren[2] == 't');
    }
    closedir(dir);
    return stopped;
}

//  Waits until every thread of pid is stopped, timeout_ms at most. True if it is.
static inline bool ts_wait_stopped(pid_t pid, int timeout_ms)
{
    int64_t give_up = cb_clock_mono_ms() + timeout_ms;
    while (!ts_all_stopped(pid)) {
        if (cb_clock_mono_ms() >= give_up)
            return false;
        usleep(1000);
    }
    return true;
}

#endif
