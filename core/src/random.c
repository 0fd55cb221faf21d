/* Counter-based random numbers: value i of a draw is a pure function of (seed, offset + i),
 * so the same seed gives the same numbers on any thread count or device. */
#include <math.h>
#include <stdlib.h>

#include "backend/hostdev.h"
#include "internal.h"

static struct rt_rng default_rng = {0x5eed, 0};

void rt_rng_init(struct rt_rng *g, uint64_t seed)
{
    g->seed = seed;
    g->offset = 0;
}

struct rt_rng *rt_rng_default(void) { return &default_rng; }

void rt_manual_seed(uint64_t seed) { rt_rng_init(&default_rng, seed); }

/* splitmix64 finaliser applied to a (seed, counter) mix: statistically solid and cheap. */
uint64_t rt_rng_bits(uint64_t seed, uint64_t c) { return rt__rng_mix(seed, c); }

typedef enum rt_status (*fill_fn)(enum rt_dtype, int64_t, uint64_t, uint64_t, double, double, void *);

/* Runs a backend fill on a contiguous buffer, then copies into t when t is a strided view. */
static enum rt_status random_fill(const char *name, struct rt_tensor *t, struct rt_rng *g, bool normal, double a,
                                  double b)
{
    if (!g)
        g = &default_rng;
    enum rt_status st = rt__check_inplace(name, t);
    if (st != RT_OK)
        return st;
    if (!rt_dtype_is_float(t->dtype))
        return rt__not_float(name, t->dtype);
    int64_t n = rt_tensor_numel(t);
    const struct rt_backend *be = rt__backend(t);
    fill_fn fill = normal ? be->normal : be->uniform;
    if (rt_tensor_is_contiguous(t)) {
        st = fill(t->dtype, n, g->seed, g->offset, a, b, rt__ptr(t));
    } else {
        struct rt_tensor *tmp;
        st = rt_tensor_empty(t->dtype, t->storage->device, t->ndim, t->shape, &tmp);
        if (st == RT_OK)
            st = fill(t->dtype, n, g->seed, g->offset, a, b, rt__ptr(tmp));
        if (st == RT_OK) {
            struct rt_strided d = rt__strided(t), s = rt__strided(tmp);
            st = be->copy(&d, t->dtype, &s, t->dtype);
        }
        rt_tensor_release(tmp);
    }
    if (st == RT_OK) {
        g->offset += (uint64_t)n;
        rt__bump_version(t);
    }
    return st;
}

enum rt_status rt_uniform_(struct rt_tensor *t, struct rt_rng *g, double lo, double hi)
{
    if (!(lo <= hi))
        return rt_error(RT_ERR_ARG, "rt_uniform_: lower bound %g is above upper bound %g", lo, hi);
    return random_fill("rt_uniform_", t, g, false, lo, hi);
}

enum rt_status rt_normal_(struct rt_tensor *t, struct rt_rng *g, double mean, double std)
{
    if (!(std >= 0))
        return rt_error(RT_ERR_ARG, "rt_normal_: std must be >= 0, got %g", std);
    return random_fill("rt_normal_", t, g, true, mean, std);
}

enum rt_status rt_bernoulli_(struct rt_tensor *t, struct rt_rng *g, double p)
{
    if (!(p >= 0 && p <= 1))
        return rt_error(RT_ERR_ARG, "rt_bernoulli_: p must be in [0, 1], got %g", p);
    enum rt_status st = rt__check_inplace("rt_bernoulli_", t);
    if (st != RT_OK)
        return st;
    struct rt_tensor *u, *mask;
    st = rt_tensor_empty(RT_F64, t->storage->device, t->ndim, t->shape, &u);
    if (st != RT_OK)
        return st;
    st = rt_uniform_(u, g, 0.0, 1.0);
    if (st == RT_OK)
        st = rt_compare_scalar(u, p, RT_CMP_LT, &mask);
    rt_tensor_release(u);
    if (st != RT_OK)
        return st;
    bool was = rt_grad_set_enabled(false);
    st = rt_copy_(t, mask);
    rt_grad_set_enabled(was);
    rt_tensor_release(mask);
    return st;
}

enum rt_status rt_randperm(int64_t n, struct rt_rng *g, struct rt_tensor **out)
{
    if (n < 0)
        return rt_error(RT_ERR_ARG, "rt_randperm: n must be >= 0, got %lld", (long long)n);
    if (!g)
        g = &default_rng;
    struct rt_tensor *t;
    enum rt_status st = rt_tensor_empty(RT_I64, RT_CPU, 1, &n, &t);
    if (st != RT_OK)
        return st;
    int64_t *p = rt_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        p[i] = i;
    /* Fisher-Yates from the top; draw i uses counter offset + i. */
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t r = rt_rng_bits(g->seed, g->offset + (uint64_t)i);
        int64_t j = (int64_t)(r % (uint64_t)(i + 1));
        int64_t tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    g->offset += (uint64_t)n;
    *out = t;
    return RT_OK;
}

enum rt_status rt_randint(int64_t lo, int64_t hi, int ndim, const int64_t *shape, struct rt_rng *g,
                          struct rt_tensor **out)
{
    if (hi <= lo)
        return rt_error(RT_ERR_ARG, "rt_randint: empty range [%lld, %lld)", (long long)lo, (long long)hi);
    if (!g)
        g = &default_rng;
    struct rt_tensor *t;
    enum rt_status st = rt_tensor_empty(RT_I64, RT_CPU, ndim, shape, &t);
    if (st != RT_OK)
        return st;
    int64_t n = rt_tensor_numel(t), *p = rt_tensor_data(t);
    uint64_t span = (uint64_t)(hi - lo);
    for (int64_t i = 0; i < n; i++)
        p[i] = lo + (int64_t)(rt_rng_bits(g->seed, g->offset + (uint64_t)i) % span);
    g->offset += (uint64_t)n;
    *out = t;
    return RT_OK;
}
