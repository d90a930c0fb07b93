//  anna/faults.h: message fault injection for tests (issue 5): a seeded random choice, per
//  message, to drop it, send it twice, or hold it back a random time (which reorders it
//  against the messages after it). The worker applies it to the gossip it sends when built
//  with -DANNA_FAULTS (the sanitizer build the tests use) and the environment variable
//  ANNA_FAULTS holds a spec such as "seed=7,drop=0.2,dup=0.1,delay=0.3,delay-ms=200".
//  Release builds do not contain the hook. Pure: no I/O, no clock.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_FAULTS_H
#define ANNA_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rand.h"

typedef enum {
    ANNA_FAULT_NONE,            //  send as is
    ANNA_FAULT_DROP,            //  do not send
    ANNA_FAULT_DUP,             //  send twice
    ANNA_FAULT_DELAY,           //  send after *delay_ms
} anna_fault_t;

typedef struct {
    bool on;
    double drop, dup, delay;    //  probabilities, each 0..1, summing to at most 1
    int delay_ms;               //  longest delay
    cb_rand_t rand;
} anna_faults_t;

//  Parses spec ("" or NULL = off) into self; stream makes the sequences of several senders
//  with one seed differ (and repeat from run to run). Returns 0 or -EINVAL with a message.
int anna_faults_parse(anna_faults_t *self, const char *spec, uint64_t stream, char *err,
                      size_t errlen);
//  The fate of the next message; *delay_ms is set for ANNA_FAULT_DELAY.
anna_fault_t anna_faults_next(anna_faults_t *self, int *delay_ms);

void anna_faults_test(bool verbose);

#endif
