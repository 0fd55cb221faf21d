/* Finite-difference gradient checks in f64.
 *
 * A check takes a function that builds an output (any shape) from input tensors, and the inputs.
 * Every f64 input is differentiated; other dtypes (i64 indices, u8 conditions) are passed through.
 * The scalar checked is L = sum(out * W) for fixed pseudo-random weights W (so every output element
 * matters and non-scalar outputs work); autograd runs rt_backward(out, W). Each f64 input becomes
 * a leaf "base" (contiguous f64, requires grad) and the function receives a view of it, built
 * afresh at every evaluation, in up to four layouts:
 *   GC_CONTIG     the leaf itself
 *   GC_TRANSPOSE  transpose(base', -1, -2) of a transposed copy (1-D: select(base (n,2), 1, 0), stride 2)
 *   GC_NARROW     narrow(base, -1, 1, n) of a base padded along the last dim (offset, row stride)
 *   GC_EXPAND     expand(base (1,...), shape): a broadcast view with stride 0 along dim 0
 *                 (its values repeat the first slice; skipped when shape[0] == 1 or 0-dim)
 * Autograd's gradient for each base is compared with central differences
 * (L(x + eps) - L(x - eps)) / 2eps, eps = 1e-6, passing when |a - n| <= tol * (1 + |n|), tol = 1e-6.
 * The function is evaluated with grad mode on (analytic) and off (numeric); it must not keep
 * references to its inputs and must return a new reference in *out. */
#ifndef RETORT_TEST_GRADCHECK_H
#define RETORT_TEST_GRADCHECK_H

#include "harness.h"

typedef enum rt_status (*gc_fn)(struct rt_tensor *const *in, void *ctx, struct rt_tensor **out);

enum {
    GC_CONTIG = 1,
    GC_TRANSPOSE = 2,
    GC_NARROW = 4,
    GC_EXPAND = 8,
    GC_STRIDED = GC_CONTIG | GC_TRANSPOSE | GC_NARROW, /* for functions whose inputs must not repeat values */
    GC_ALL = 15
};

#define GC_EPS 1e-6
#define GC_TOL 1e-6

bool gradcheck_ex(const char *what, gc_fn f, void *ctx, int n, struct rt_tensor *const *inputs, unsigned modes,
                  double eps, double tol, const char *file, int line);
#define GRADCHECK(what, f, ctx, n, inputs, modes)                                                                 \
    gradcheck_ex((what), (f), (ctx), (n), (inputs), (modes), GC_EPS, GC_TOL, __FILE__, __LINE__)
#define GRADCHECK_TOL(what, f, ctx, n, inputs, modes, tol)                                                        \
    gradcheck_ex((what), (f), (ctx), (n), (inputs), (modes), GC_EPS, (tol), __FILE__, __LINE__)

#endif
