//  common/clock.h: the clocks. Only actors read them; pure modules get `now` as an argument.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_CLOCK_H
#define CB_CLOCK_H

#include <stdint.h>

//  Monotonic milliseconds / microseconds, for deadlines and latency.
int64_t cb_clock_mono_ms(void);
int64_t cb_clock_mono_us(void);
//  Wall-clock microseconds since the epoch.
int64_t cb_clock_wall_us(void);

//  The one LWW timestamp format: wall-clock microseconds, made strictly increasing per
//  process (a hybrid clock: never goes back when the wall clock does, never repeats).
//  Ties between writers are broken by the writer id carried beside it. Thread safe.
uint64_t cb_clock_lww_now(void);

#endif
