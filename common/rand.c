//  common/rand.c
//  SPDX-License-Identifier: Apache-2.0
#include "rand.h"

#include <math.h>

static uint64_t s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void cb_rand_seed(cb_rand_t *self, uint64_t seed)
{
    //  splitmix64 spreads any seed (0 included) over the whole state.
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        self->s[i] = z ^ (z >> 31);
    }
}

uint64_t cb_rand_next(cb_rand_t *self)
{
    uint64_t *s = self->s;
    uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

uint64_t cb_rand_below(cb_rand_t *self, uint64_t n)
{
    return cb_rand_next(self) % n;
}

double cb_rand_unit(cb_rand_t *self)
{
    return (double)(cb_rand_next(self) >> 11) * 0x1.0p-53;
}

void cb_zipf_init(cb_zipf_t *self, uint64_t n, double theta)
{
    self->n = n;
    self->theta = theta;
    double zetan = 0, zeta2 = 0;
    for (uint64_t i = 1; i <= n; i++)
        zetan += 1.0 / pow((double)i, theta);
    for (uint64_t i = 1; i <= 2 && i <= n; i++)
        zeta2 += 1.0 / pow((double)i, theta);
    self->zetan = zetan;
    self->alpha = theta == 1.0 ? 1.0 : 1.0 / (1.0 - theta);
    self->eta = (1 - pow(2.0 / (double)n, 1 - theta)) / (1 - zeta2 / zetan);
    self->half_pow = 1.0 + pow(0.5, theta);
}

uint64_t cb_zipf_next(const cb_zipf_t *self, cb_rand_t *rand)
{
    if (self->theta <= 0.0 || self->n < 3)
        return cb_rand_below(rand, self->n ? self->n : 1);
    double u = cb_rand_unit(rand);
    double uz = u * self->zetan;
    if (uz < 1.0)
        return 0;
    if (uz < self->half_pow)
        return 1;
    uint64_t r = (uint64_t)((double)self->n * pow(self->eta * u - self->eta + 1, self->alpha));
    return r < self->n ? r : self->n - 1;
}
