//  common/rand.h: a small seeded PRNG (xoshiro256**) and a Zipf sampler, for property tests
//  and load generators. Deterministic for a seed; not for cryptography.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_RAND_H
#define CB_RAND_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} cb_rand_t;

void cb_rand_seed(cb_rand_t *self, uint64_t seed);
uint64_t cb_rand_next(cb_rand_t *self);
//  Uniform in [0, n); n > 0.
uint64_t cb_rand_below(cb_rand_t *self, uint64_t n);
//  Uniform in [0, 1).
double cb_rand_unit(cb_rand_t *self);

//  Zipf over ranks [0, n) with exponent theta (0 = uniform; 0.99 = YCSB's default).
//  Gray et al.'s rejection-free method: O(n) set-up once, O(1) per sample.
typedef struct {
    uint64_t n;
    double theta, alpha, zetan, eta, half_pow;
} cb_zipf_t;

void cb_zipf_init(cb_zipf_t *self, uint64_t n, double theta);
uint64_t cb_zipf_next(const cb_zipf_t *self, cb_rand_t *rand);

#endif
