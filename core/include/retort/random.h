/* Seeded, counter-based random numbers: element i of a draw depends only on (seed, offset + i),
 * so results never depend on the thread count. A generator is (seed, offset); every draw
 * advances offset by the number of values it consumed. */
#ifndef RETORT_RANDOM_H
#define RETORT_RANDOM_H

#include "tensor.h"

struct rt_rng {
    uint64_t seed;
    uint64_t offset;
};

void rt_rng_init(struct rt_rng *g, uint64_t seed);
/* The process-wide default generator used when g is NULL. */
struct rt_rng *rt_rng_default(void);
void rt_manual_seed(uint64_t seed); /* reseeds the default generator */

/* 64 random bits for counter value c under seed (splitmix-style mixing). */
uint64_t rt_rng_bits(uint64_t seed, uint64_t c);

/* Fill t (float) in place: U[lo, hi), N(mean, std). Refused on tensors requiring grad with grad on. */
enum rt_status rt_uniform_(struct rt_tensor *t, struct rt_rng *g, double lo, double hi);
enum rt_status rt_normal_(struct rt_tensor *t, struct rt_rng *g, double mean, double std);
/* t filled with 1 where U < p, else 0 (any dtype). */
enum rt_status rt_bernoulli_(struct rt_tensor *t, struct rt_rng *g, double p);
/* i64 tensor with a uniform random permutation of 0..n-1. */
enum rt_status rt_randperm(int64_t n, struct rt_rng *g, struct rt_tensor **out);
/* Integers uniform in [lo, hi) (i64 tensor of given shape). */
enum rt_status rt_randint(int64_t lo, int64_t hi, int ndim, const int64_t *shape, struct rt_rng *g,
                          struct rt_tensor **out);

#endif
