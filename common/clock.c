//  common/clock.c
//  SPDX-License-Identifier: Apache-2.0
#include "clock.h"

#include <stdatomic.h>
#include <time.h>

int64_t cb_clock_mono_ms(void)
{
    return cb_clock_mono_us() / 1000;
}

int64_t cb_clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cb_clock_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t cb_clock_lww_now(void)
{
    static _Atomic uint64_t last;
    uint64_t wall = (uint64_t)cb_clock_wall_us();
    uint64_t prev = atomic_load(&last);
    for (;;) {
        uint64_t next = wall > prev ? wall : prev + 1;
        if (atomic_compare_exchange_weak(&last, &prev, next))
            return next;
    }
}
