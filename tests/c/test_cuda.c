/* test_cuda: the CUDA backend against the CPU backend.
 *
 * Every op that reaches a backend kernel runs on CPU tensors and on copies of the same values on the
 * device under test (DUT). The DUT's results are brought back to the host and compared element-wise;
 * a mismatch prints the first differing elements (flat index, got, expected). Where the op is
 * differentiable, a backward from its first output (with a random upstream gradient unless the
 * output has one element) runs on both sides and the input gradients are compared the same way.
 * Inputs are random (rt_uniform_ / rt_normal_ on the CPU with a seeded generator) plus hand-picked
 * edge values: NaN, +-inf, values that overflow i64/u8, ties, exact zeros, empty tensors.
 *
 * Tolerances: |got - want| <= rtol * |want| + atol with atol = rtol * max(1, max |want|):
 *   f64 rtol 1e-10, f32 rtol 1e-5 (TOL_F64, TOL_F32);
 *   i64 and u8 results, casts (bf16's included), copies, fills, rt_uniform_ and rt_bernoulli_: exact;
 *   bf16 products and convolutions: f32's x 10 (the same exact products summed in another order);
 *   rt_normal_: about one ulp (f32 rtol 2^-23, f64 rtol 1e-12; atol 0).
 *
 * Without a usable GPU, main prints "test_cuda: skipped: <why>" and exits 77 (CTest: skipped).
 *
 * With RETORT_EMULATE_CUDA=1 the cuda device is the CPU kernels under the cuda tag
 * (core/src/backend/emulated_cuda.c): every case must pass, which checks the test itself and the
 * device plumbing (transfers, mixed-device errors, memory accounting) on a machine without a GPU;
 * CTest runs it so as test_cuda_emulated. The out-of-memory test then only tries what host memory
 * must refuse, and not at all under AddressSanitizer (whose allocator aborts on huge requests).
 *
 * After each case the test waits for the device, so an asynchronous fault is reported against the case
 * that queued it; RETORT_CUDA_SYNC=1 narrows it down to the op. A fault that loses the GPU context
 * stops the program (every later case would fail the same way).
 *
 * Each case is one COMPARE(name, fn, ctx, opts, inputs...) line: fn computes the op from its inputs
 * (making any views it needs itself, so strided layouts are exercised on both devices) and returns
 * up to MAX_OUT outputs. The program ends by printing the number of cases and tensor comparisons. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TOL_F64 1e-10
#define TOL_F32 1e-5
#define ULP_F32 FLT_EPSILON /* rt_normal_ */
#define ULP_F64 1e-12

#define MAX_IN 6
#define MAX_OUT 4

#define IN(...) ((struct rt_tensor *const[]){__VA_ARGS__})
#define NIN(...) ((int)(sizeof((struct rt_tensor *const[]){__VA_ARGS__}) / sizeof(struct rt_tensor *)))
#define NDIMS(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define TRY(expr)                                                                                                 \
    do {                                                                                                          \
        if ((st = (expr)) != RT_OK)                                                                               \
            goto done;                                                                                            \
    } while (0)
#define FOR_FLOAT(dt) for (enum rt_dtype dt = RT_F32; dt <= RT_F64; dt++)
/* the dtypes ops compute in: all but bf16 (the last one, a storage dtype: test_casts, test_bf16_products) */
#define FOR_DTYPE(dt) for (enum rt_dtype dt = RT_F32; dt < RT_BF16; dt++)
#define FOR_STORED_DTYPE(dt) for (enum rt_dtype dt = RT_F32; dt <= RT_BF16; dt++)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const enum rt_device dut = RT_CUDA; /* the device under test */
static bool emulated;                        /* RETORT_EMULATE_CUDA: the DUT's memory is host memory */
static struct rt_rng gen;            /* all random inputs */
static long n_cases, n_compared;

/* A formatted name; eight rotating buffers, enough for one COMPARE line. */
static const char *fmt(const char *f, ...) H_PRINTF(1, 2);
static const char *fmt(const char *f, ...)
{
    static char bufs[8][192];
    static int next;
    char *b = bufs[next++ % 8];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, sizeof bufs[0], f, ap);
    va_end(ap);
    return b;
}

/* ================================================================== inputs */

/* Uniform values in [lo, hi) on the CPU; integer dtypes get them truncated toward zero. */
static struct rt_tensor *rnd_shape(enum rt_dtype dt, int nd, const int64_t *shape, double lo, double hi)
{
    struct rt_tensor *f = NULL, *t = NULL;
    enum rt_dtype fdt = rt_dtype_is_float(dt) ? dt : RT_F64;
    if (!CHECK_OK(rt_tensor_empty(fdt, RT_CPU, nd, shape, &f)))
        return NULL;
    if (!CHECK_OK(rt_uniform_(f, &gen, lo, hi))) {
        rt_tensor_release(f);
        return NULL;
    }
    if (fdt == dt)
        return f;
    CHECK_OK(rt_to_dtype(f, dt, &t));
    rt_tensor_release(f);
    return t;
}

/* Integer values in [lo, hi) (truncated) stored as dt: ties and exact zeros on purpose. */
static struct rt_tensor *rndq_shape(enum rt_dtype dt, int nd, const int64_t *shape, double lo, double hi)
{
    struct rt_tensor *i = rnd_shape(RT_I64, nd, shape, lo, hi), *t = NULL;
    if (!i || dt == RT_I64)
        return i;
    CHECK_OK(rt_to_dtype(i, dt, &t));
    rt_tensor_release(i);
    return t;
}

static struct rt_tensor *rndn_shape(enum rt_dtype dt, int nd, const int64_t *shape, double mean, double std)
{
    struct rt_tensor *t = NULL;
    if (CHECK_OK(rt_tensor_empty(dt, RT_CPU, nd, shape, &t)) && !CHECK_OK(rt_normal_(t, &gen, mean, std))) {
        rt_tensor_release(t);
        t = NULL;
    }
    return t;
}

/* The usual range of a dtype: [-2, 2) for floats, [-50, 50) for i64, [0, 256) for u8. */
static struct rt_tensor *rndd_shape(enum rt_dtype dt, int nd, const int64_t *shape)
{
    double lo = dt == RT_U8 ? 0 : dt == RT_I64 ? -50 : -2, hi = dt == RT_U8 ? 256 : dt == RT_I64 ? 50 : 2;
    return rnd_shape(dt, nd, shape, lo, hi);
}

#define RND(dt, lo, hi, ...) rnd_shape((dt), NDIMS(__VA_ARGS__), H_SHAPE(__VA_ARGS__), (lo), (hi))
#define RNDQ(dt, lo, hi, ...) rndq_shape((dt), NDIMS(__VA_ARGS__), H_SHAPE(__VA_ARGS__), (lo), (hi))
#define RNDN(dt, mean, std, ...) rndn_shape((dt), NDIMS(__VA_ARGS__), H_SHAPE(__VA_ARGS__), (mean), (std))
#define RNDD(dt, ...) rndd_shape((dt), NDIMS(__VA_ARGS__), H_SHAPE(__VA_ARGS__))

/* (4, 8) edge values of dt: NaN, infinities, values beyond the range of i64 and u8, halves, ... */
static struct rt_tensor *specials(enum rt_dtype dt)
{
    static const double fv[32] = {NAN,   INFINITY, -INFINITY, 0.0,    -0.0,  1e-30, -1e-30, 0.5,
                                  -0.5,  1.5,      -2.5,      255.0,  255.7, 256.0, 300.0,  -1.0,
                                  -300., 3e9,      -3e9,      9.3e18, 1e19,  -1e19, 1e30,   -1e30,
                                  42.0,  7.25,     -7.75,     1.0,    2.0,   100.0, 88.0,   -88.0};
    static const int64_t iv[32] = {INT64_MIN, INT64_MAX, -1, 0, 1, 255, 256, -256, ((int64_t)1 << 53) + 1,
                                   -((int64_t)1 << 53) - 1, (int64_t)1 << 40, 12345678901, -5, 7, 100, -100,
                                   INT64_MAX - 1, INT64_MIN + 1, 3, -3, 1000, -1000, 65535, 65536,
                                   ((int64_t)1 << 62) + 12345, -((int64_t)1 << 62), 2, -2, 42, -42, 9, -9};
    static const uint8_t uv[32] = {0, 1, 2, 3, 7, 9, 42, 100, 127, 128, 129, 200, 250, 254, 255, 5,
                                   0, 255, 128, 64, 32, 16, 8, 4, 99, 101, 17, 170, 85, 240, 15, 1};
    struct rt_tensor *t = NULL;
    const int64_t shape[2] = {4, 8};
    if (dt == RT_I64)
        CHECK_OK(rt_tensor_from_data(RT_I64, 2, shape, iv, &t));
    else if (dt == RT_U8)
        CHECK_OK(rt_tensor_from_data(RT_U8, 2, shape, uv, &t));
    else
        t = h_tensor(dt, 2, shape, fv);
    return t;
}

/* A fresh contiguous copy of t on dev, outside any graph. */
static struct rt_tensor *copy_to(struct rt_tensor *t, enum rt_device dev)
{
    struct rt_tensor *r = NULL;
    bool was = rt_grad_set_enabled(false);
    enum rt_status st = rt_tensor_device(t) == dev ? rt_clone(t, &r) : rt_to_device(t, dev, &r);
    rt_grad_set_enabled(was);
    return CHECK_OK(st) ? r : NULL;
}

/* ================================================================== comparing */

enum { CMP_TOL, CMP_EXACT, CMP_ULP };

/* i64 elements compared as integers (doubles would drop the low bits of values beyond 2^53) */
static bool compare_i64(const char *file, int line, const char *what, const struct rt_tensor *got,
                        const struct rt_tensor *want)
{
    int64_t n = rt_tensor_numel(want), bad = 0;
    size_t bytes = sizeof(int64_t) * (size_t)(n > 0 ? n : 1);
    int64_t *g = malloc(bytes), *e = malloc(bytes);
    bool ok = g && e && rt_tensor_to_host(got, RT_I64, g) == RT_OK && rt_tensor_to_host(want, RT_I64, e) == RT_OK;
    if (!ok)
        ok = h_fail(file, line, "%s: reading the values failed: %s", what, rt_error_msg());
    for (int64_t i = 0; ok && i < n; i++) {
        if (g[i] == e[i])
            continue;
        if (bad == 0)
            h_fail(file, line, "%s: values differ (exact):", what);
        if (bad < 5)
            printf("    [%lld] got %lld expected %lld\n", (long long)i, (long long)g[i], (long long)e[i]);
        bad++;
    }
    if (bad)
        printf("    %lld of %lld elements differ\n", (long long)bad, (long long)n);
    else if (ok)
        h_pass();
    free(g);
    free(e);
    return ok && bad == 0;
}

/* got (on the DUT) against want (on the CPU): device, dtype, shape, then every element. */
static bool compare_tensors(const char *file, int line, const char *what, struct rt_tensor *got,
                            struct rt_tensor *want, int mode, double tol_mul)
{
    n_compared++;
    if (!got || !want)
        return h_fail(file, line, "%s: the %s result is missing", what, got ? "cpu" : rt_device_name(dut));
    if (rt_tensor_device(got) != dut)
        return h_fail(file, line, "%s: result on %s, expected %s", what, rt_device_name(rt_tensor_device(got)),
                      rt_device_name(dut));
    if (got->dtype != want->dtype)
        return h_fail(file, line, "%s: dtype %s, expected %s", what, rt_dtype_name(got->dtype),
                      rt_dtype_name(want->dtype));
    if (!h_check_shape(got, want->ndim, want->shape, what, file, line))
        return false;
    struct rt_tensor *host = NULL; /* a plain download: no conversion kernel between us and the data */
    if (!h_check_ok(rt_to_device(got, RT_CPU, &host), "rt_to_device(result, RT_CPU)", file, line))
        return false;
    double rtol = 0, atol = 0;
    if (rt_dtype_is_float(want->dtype) && mode == CMP_ULP)
        rtol = want->dtype == RT_F32 ? ULP_F32 : ULP_F64;
    else if (rt_dtype_is_float(want->dtype) && mode == CMP_TOL)
        rtol = (want->dtype == RT_F32 ? TOL_F32 : TOL_F64) * (tol_mul > 0 ? tol_mul : 1);
    int64_t n = rt_tensor_numel(want);
    if (want->dtype == RT_I64) {
        bool ok = compare_i64(file, line, what, host, want);
        rt_tensor_release(host);
        return ok;
    }
    double *g = h_values(host), *e = h_values(want);
    bool ok;
    if (!g || !e) {
        ok = h_fail(file, line, "%s: reading the values failed: %s", what, rt_error_msg());
    } else {
        double scale = 1;
        for (int64_t i = 0; i < n; i++)
            if (isfinite(e[i]) && fabs(e[i]) > scale)
                scale = fabs(e[i]);
        if (mode == CMP_TOL)
            atol = rtol * scale;
        ok = h_array_close(g, e, n, rtol, atol, what, file, line);
    }
    free(g);
    free(e);
    rt_tensor_release(host);
    return ok;
}

/* An op under test: outputs go to out[0..MAX_OUT) (unused ones stay NULL). */
typedef enum rt_status (*op_fn)(struct rt_tensor *const *in, void *ctx, struct rt_tensor **out);

struct opts {
    unsigned grad;       /* bit i: input i requires grad; its gradient is compared after a backward */
    int mode;            /* CMP_TOL (default), CMP_EXACT or CMP_ULP */
    double tol;          /* multiplies the default tolerance (0: 1) */
    enum rt_status fail; /* RT_OK, or the status both devices must fail with */
};
#define O(...) ((struct opts){__VA_ARGS__})

/* Runs fn on CPU copies of the inputs and on DUT copies, compares outputs and requested gradients. */
static bool compare_at(const char *file, int line, const char *name_in, op_fn fn, void *ctx, struct opts o, int n,
                       struct rt_tensor *const *inputs)
{
    char name[192]; /* name_in may sit in a fmt() buffer that the names below reuse */
    snprintf(name, sizeof name, "%s", name_in);
    struct rt_tensor *ci[MAX_IN] = {0}, *di[MAX_IN] = {0}, *co[MAX_OUT] = {0}, *dout[MAX_OUT] = {0};
    struct rt_tensor *cg = NULL, *dg = NULL;
    long compared0 = n_compared;
    bool ok = true;
    n_cases++;
    if (n > MAX_IN)
        return h_fail(file, line, "%s: %d inputs, at most %d", name, n, MAX_IN);
    for (int i = 0; i < n; i++)
        if (!inputs[i])
            return h_fail(file, line, "%s: input %d could not be made", name, i);
    for (int i = 0; i < n && ok; i++) {
        ci[i] = copy_to(inputs[i], RT_CPU);
        di[i] = copy_to(inputs[i], dut);
        ok = ci[i] && di[i];
        if (ok && (o.grad >> i & 1u))
            ok = h_check_ok(rt_requires_grad_(ci[i], true), "rt_requires_grad_", file, line) &&
                 h_check_ok(rt_requires_grad_(di[i], true), "rt_requires_grad_", file, line);
    }
    if (!ok)
        goto done;

    enum rt_status sc = fn(ci, ctx, co);
    char cmsg[512];
    snprintf(cmsg, sizeof cmsg, "%s", rt_error_msg());
    enum rt_status sd = fn(di, ctx, dout);
    if (o.fail != RT_OK) { /* an expected refusal: both devices must refuse the same way */
        n_compared++;
        if (sc == o.fail && sd == o.fail)
            ok = h_pass();
        else
            ok = h_fail(file, line, "%s: expected %s from both; cpu returned %s (%s), %s returned %s (%s)", name,
                        rt_status_name(o.fail), rt_status_name(sc), cmsg, rt_device_name(dut), rt_status_name(sd),
                        rt_error_msg());
        goto done;
    }
    if (sc != RT_OK || sd != RT_OK) {
        ok = h_fail(file, line, "%s: cpu returned %s (%s); %s returned %s (%s)", name, rt_status_name(sc), cmsg,
                    rt_device_name(dut), rt_status_name(sd), sd != RT_OK ? rt_error_msg() : "");
        goto done;
    }
    for (int k = 0; k < MAX_OUT; k++)
        if (co[k] || dout[k])
            ok &= compare_tensors(file, line, fmt("%s: output %d", name, k), dout[k], co[k], o.mode, o.tol);

    if (o.grad) {
        if (!co[0]->requires_grad || !dout[0]->requires_grad) {
            ok = h_fail(file, line, "%s: output 0 does not require grad (cpu %d, %s %d)", name,
                        co[0]->requires_grad, rt_device_name(dut), dout[0]->requires_grad);
            goto done;
        }
        if (rt_tensor_numel(co[0]) != 1) { /* a random upstream gradient, the same on both sides */
            cg = rnd_shape(co[0]->dtype, co[0]->ndim, co[0]->shape, -1, 1);
            dg = cg ? copy_to(cg, dut) : NULL;
            if (!dg) {
                ok = false;
                goto done;
            }
        }
        bool bc = h_check_ok(rt_backward(co[0], cg, false), "rt_backward (cpu)", file, line);
        bool bd = h_check_ok(rt_backward(dout[0], dg, false), "rt_backward (device under test)", file, line);
        if (!bc || !bd) {
            ok = false;
            goto done;
        }
        for (int i = 0; i < n; i++)
            if (o.grad >> i & 1u)
                ok &= compare_tensors(file, line, fmt("%s: grad of input %d", name, i), di[i]->grad, ci[i]->grad,
                                      o.mode, o.tol);
    }
    /* waits for the queued kernels: an asynchronous fault is reported against this case */
    ok &= h_check_ok(rt_device_synchronize(dut), "rt_device_synchronize", file, line);
    if (!ok && strstr(rt_error_msg(), "context is lost")) {
        printf("test_cuda: stopping after \"%s\": %s\n", name, rt_error_msg());
        h_finish();
        exit(1);
    }
    if (n_compared == compared0)
        ok = h_fail(file, line, "%s: compared nothing", name);
done:
    h_release_array(ci, MAX_IN);
    h_release_array(di, MAX_IN);
    h_release_array(co, MAX_OUT);
    h_release_array(dout, MAX_OUT);
    rt_tensor_release(cg);
    rt_tensor_release(dg);
    return ok;
}
#define COMPARE(name, fn, ctx, opts, ...)                                                                         \
    compare_at(__FILE__, __LINE__, (name), (fn), (ctx), (opts), NIN(__VA_ARGS__), IN(__VA_ARGS__))

/* ================================================================== views */

enum { V_NONE, V_T, V_TLAST, V_SWAP01, V_NARROW, V_PERMUTE, V_SELECT, V_EXPAND, V_T_NARROW, V_FLAT_T, V_COUNT };
static const char *const view_names[V_COUNT] = {
    "contiguous", "transposed (0,last)", "transposed (last two)", "dims 0,1 swapped", "narrowed (last dim)",
    "permuted (2,0,1)", "selected (dim 1)", "expanded (dim 0)", "narrowed and transposed", "flattened transpose"};

/* A view of t of the given kind (a new reference; V_NONE: t itself). */
static enum rt_status view_as(struct rt_tensor *t, int kind, struct rt_tensor **out)
{
    struct rt_tensor *a = NULL;
    enum rt_status st;
    int last = t->ndim - 1;
    int64_t shape[RT_MAX_DIMS];
    switch (kind) {
    case V_T: return rt_transpose(t, 0, last, out);
    case V_TLAST: return rt_transpose(t, last - 1, last, out);
    case V_SWAP01: return rt_transpose(t, 0, 1, out);
    case V_NARROW: return rt_narrow(t, last, 1, t->shape[last] - 2, out);
    case V_PERMUTE: return rt_permute(t, (const int[]){2, 0, 1}, out);
    case V_SELECT: return rt_select(t, 1, 1, out);
    case V_EXPAND:
        memcpy(shape, t->shape, sizeof shape);
        shape[0] = 3;
        return rt_expand(t, t->ndim, shape, out);
    case V_T_NARROW:
        st = rt_narrow(t, 0, 1, t->shape[0] - 1, &a);
        if (st == RT_OK)
            st = rt_transpose(a, 0, last, out);
        rt_tensor_release(a);
        return st;
    case V_FLAT_T:
        st = rt_transpose(t, 0, last, &a);
        if (st == RT_OK)
            st = rt_flatten(a, 0, -1, out);
        rt_tensor_release(a);
        return st;
    default: rt_tensor_retain(t); *out = t; return RT_OK;
    }
}

/* For cases that update their inputs in place: out[first + i] = in[which[i]] (new references) once st
 * is RT_OK, so the updated tensors are what gets compared. Returns st. */
static enum rt_status inputs_as_outputs(enum rt_status st, struct rt_tensor *const *in, struct rt_tensor **out,
                                        int first, int n, const int *which)
{
    for (int i = 0; st == RT_OK && i < n; i++) {
        rt_tensor_retain(in[which[i]]);
        out[first + i] = in[which[i]];
    }
    return st;
}

/* ================================================================== transfers (no kernels) */

static void test_transfers(void)
{
    FOR_DTYPE(dt) {
        struct rt_tensor *x = RNDD(dt, 3, 5, 7), *d = NULL, *back = NULL, *xt = NULL, *dt_ = NULL, *backt = NULL;
        if (CHECK_OK(rt_to_device(x, dut, &d)) && CHECK(rt_tensor_device(d) == dut, "on %s", rt_device_name(dut)) &&
            CHECK_OK(rt_to_device(d, RT_CPU, &back)))
            CHECK_TENSOR_EQUAL(back, x);
        /* a strided source is made contiguous on its own device first */
        if (CHECK_OK(rt_transpose(x, 0, 2, &xt)) && CHECK_OK(rt_to_device(xt, dut, &dt_)) &&
            CHECK_OK(rt_to_device(dt_, RT_CPU, &backt)))
            CHECK_TENSOR_EQUAL(backt, xt);
        /* fingerprints hash the elements in row-major order whatever the device */
        uint64_t h1 = RT_FINGERPRINT_INIT, h2 = RT_FINGERPRINT_INIT, h3 = RT_FINGERPRINT_INIT,
                 h4 = RT_FINGERPRINT_INIT;
        if (d && dt_ && CHECK_OK(rt_tensor_fingerprint(x, &h1)) && CHECK_OK(rt_tensor_fingerprint(d, &h2)) &&
            CHECK_OK(rt_tensor_fingerprint(xt, &h3)) && CHECK_OK(rt_tensor_fingerprint(dt_, &h4)))
            CHECK(h1 == h2 && h3 == h4, "fingerprints differ across devices (%s)", rt_dtype_name(dt));
        RELEASE(x, d, back, xt, dt_, backt);
    }
    /* 0-dim and empty tensors */
    struct rt_tensor *s = NULL, *e = NULL, *ds = NULL, *de = NULL;
    double v = 0;
    REQUIRE_OK(rt_tensor_scalar(RT_F64, 2.75, &s));
    REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(0, 3), &e));
    if (CHECK_OK(rt_to_device(s, dut, &ds)) && CHECK_OK(rt_tensor_item(ds, &v)))
        CHECK(v == 2.75, "item %g", v);
    if (CHECK_OK(rt_to_device(e, dut, &de)))
        CHECK_SHAPE(de, 2, 0, 3);
    RELEASE(s, e, ds, de);

    /* element access on the device */
    struct rt_tensor *x = RND(RT_F64, -1, 1, 3, 4), *d = copy_to(x, dut);
    REQUIRE(d, "copy");
    if (CHECK_OK(rt_tensor_set(d, H_SHAPE(2, 1), -6.5)) && CHECK_OK(rt_tensor_get(d, H_SHAPE(2, 1), &v)))
        CHECK(v == -6.5, "get after set: %g", v);
    double w = 0;
    if (CHECK_OK(rt_tensor_get(d, H_SHAPE(1, 3), &v)) && CHECK_OK(rt_tensor_get(x, H_SHAPE(1, 3), &w)))
        CHECK(v == w, "get %g, cpu %g", v, w);
    RELEASE(x, d);

    /* rt_tensor_new zeroes memory even when the allocator hands back a block just freed */
    struct rt_tensor *junk = NULL, *z = NULL, *zh = NULL;
    REQUIRE_OK(rt_tensor_full(RT_F32, dut, 1, H_SHAPE(40000), 7.5, &junk));
    rt_tensor_release(junk);
    if (CHECK_OK(rt_tensor_new(RT_F32, dut, 1, H_SHAPE(40000), &z)) && CHECK_OK(rt_to_device(z, RT_CPU, &zh))) {
        double *zv = h_values(zh);
        int64_t nonzero = 0;
        for (int64_t i = 0; zv && i < 40000; i++)
            nonzero += zv[i] != 0;
        CHECK(zv && nonzero == 0, "%lld non-zero elements in a new tensor", (long long)nonzero);
        free(zv);
    }
    RELEASE(z, zh);

    /* many uploads queued before any is read: more than the 8 pinned staging slots, each slot reused
     * while earlier copies may still be queued (a reused slot must wait for the copy reading it);
     * one upload larger than a slot goes direct */
    enum { UPLOADS = 20 };
    struct rt_tensor *src[UPLOADS] = {0}, *dev[UPLOADS] = {0};
    for (int i = 0; i < UPLOADS; i++) {
        int64_t n = i == 7 ? (int64_t)3 << 20 : 250000; /* 12 MB for i == 7, 1 MB otherwise */
        REQUIRE_OK(rt_tensor_full(RT_F32, RT_CPU, 1, &n, (double)i + 0.5, &src[i]));
        CHECK_OK(rt_to_device(src[i], dut, &dev[i]));
    }
    for (int i = 0; i < UPLOADS; i++) {
        struct rt_tensor *back = NULL;
        if (dev[i] && CHECK_OK(rt_to_device(dev[i], RT_CPU, &back)))
            CHECK_TENSOR_EQUAL(back, src[i]);
        rt_tensor_release(back);
    }
    for (int i = 0; i < UPLOADS; i++)
        RELEASE(src[i], dev[i]);
}

/* ================================================================== copies, casts, fills */

struct cast_ctx {
    enum rt_dtype to;
    int view;
};

static enum rt_status f_cast(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct cast_ctx *k = c;
    struct rt_tensor *v = NULL;
    enum rt_status st = view_as(in[0], k->view, &v);
    if (st == RT_OK)
        st = k->to == v->dtype ? rt_clone(v, &out[0]) : rt_to_dtype(v, k->to, &out[0]);
    rt_tensor_release(v);
    return st;
}

/* every dtype pair (bf16 included), on edge values and on random values, contiguous and strided */
static void test_casts(void)
{
    FOR_STORED_DTYPE(from) {
        FOR_STORED_DTYPE(to) {
            for (int view = 0; view < 2; view++) {
                struct cast_ctx k = {to, view ? V_T : V_NONE};
                const char *how = view ? " (transposed)" : "";
                struct rt_tensor *s = specials(from);
                bool wide = rt_dtype_is_float(from) || from == RT_BF16;
                struct rt_tensor *r = wide ? RND(from, -1000, 1000, 6, 9) : RNDD(from, 6, 9);
                bool grad = rt_dtype_is_float(from) && rt_dtype_is_float(to);
                COMPARE(fmt("cast %s -> %s, edge values%s", rt_dtype_name(from), rt_dtype_name(to), how), f_cast, &k,
                        O(.mode = CMP_EXACT), s);
                COMPARE(fmt("cast %s -> %s%s", rt_dtype_name(from), rt_dtype_name(to), how), f_cast, &k,
                        O(.mode = CMP_EXACT, .grad = grad), r);
                RELEASE(s, r);
            }
        }
    }
    /* f32 -> bf16 rounding at its edges: ties (low half 0x8000) to even, down (1 + 2^-8) and up
     * (1 + 3 2^-8); just past a tie; a carry into the exponent (65535); the largest f32 (to infinity);
     * subnormals */
    static const double edges[8] = {1.00390625, 1.01171875, -1.00390625, 1.009765625,
                                    65535.0,    3.4028234663852886e38, 1e-40, -3e-39};
    struct rt_tensor *e = h_tensor(RT_F32, 1, (int64_t[]){8}, edges);
    struct cast_ctx k = {RT_BF16, V_NONE};
    COMPARE("cast f32 -> bf16, rounding edges", f_cast, &k, O(.mode = CMP_EXACT), e);
    RELEASE(e);
}

struct view_ctx {
    int view;
};

static enum rt_status f_contiguous(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct rt_tensor *v = NULL;
    enum rt_status st = view_as(in[0], ((struct view_ctx *)c)->view, &v);
    if (st == RT_OK)
        st = rt_contiguous(v, &out[0]);
    rt_tensor_release(v);
    return st;
}

/* dst (5, 4) of one dtype, written through its transpose from src (4, 5) or (5) of another */
static enum rt_status f_copy_into(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    (void)c;
    struct rt_tensor *v = NULL;
    enum rt_status st = rt_transpose(in[0], 0, 1, &v);
    if (st == RT_OK)
        st = rt_copy_(v, in[1]);
    rt_tensor_release(v);
    return inputs_as_outputs(st, in, out, 0, 1, (const int[]){0});
}

static void test_contiguous(void)
{
    for (int view = V_T; view < V_COUNT; view++) {
        struct view_ctx k = {view};
        FOR_DTYPE(dt) {
            struct rt_tensor *x = view == V_EXPAND ? RNDD(dt, 1, 4, 5) : RNDD(dt, 3, 4, 5);
            COMPARE(fmt("contiguous() of a %s %s view", rt_dtype_name(dt), view_names[view]), f_contiguous, &k,
                    O(.mode = CMP_EXACT, .grad = rt_dtype_is_float(dt)), x);
            rt_tensor_release(x);
        }
    }
    FOR_DTYPE(to) {
        FOR_DTYPE(from) {
            struct rt_tensor *dst = RNDD(to, 5, 4), *full = RNDD(from, 4, 5), *row = RNDD(from, 5);
            COMPARE(fmt("copy_ %s into a transposed %s view", rt_dtype_name(from), rt_dtype_name(to)), f_copy_into,
                    NULL, O(.mode = CMP_EXACT), dst, full);
            COMPARE(fmt("copy_ %s (5) broadcast into a transposed %s view", rt_dtype_name(from), rt_dtype_name(to)),
                    f_copy_into, NULL, O(.mode = CMP_EXACT), dst, row);
            RELEASE(dst, full, row);
        }
    }
}

enum { FILL_, FILL_NARROW, FILL_ZERO, FILL_FULL, FILL_NEW };
struct fill_ctx {
    int how;
    double value;
};

static enum rt_status f_fill(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct fill_ctx *k = c;
    struct rt_tensor *x = in[0], *v = NULL;
    enum rt_status st;
    switch (k->how) {
    case FILL_:
        st = rt_fill_(x, k->value);
        break;
    case FILL_NARROW:
        st = rt_narrow(x, 1, 1, 3, &v);
        if (st == RT_OK)
            st = rt_fill_(v, k->value);
        rt_tensor_release(v);
        break;
    case FILL_ZERO:
        st = rt_zero_(x);
        break;
    case FILL_FULL:
        return rt_tensor_full(x->dtype, rt_tensor_device(x), x->ndim, x->shape, k->value, &out[0]);
    default:
        return rt_tensor_new(x->dtype, rt_tensor_device(x), x->ndim, x->shape, &out[0]);
    }
    if (st == RT_OK) {
        rt_tensor_retain(x);
        out[0] = x;
    }
    return st;
}

static void test_fill(void)
{
    static const double values[] = {2.5, -1.25, 300, -7, 1e20, -1e20, NAN, INFINITY, 0};
    static const char *const hows[] = {"fill_", "fill_ of a narrowed view", "zero_", "rt_tensor_full",
                                       "rt_tensor_new"};
    FOR_DTYPE(dt) {
        for (int how = FILL_; how <= FILL_NEW; how++)
            for (size_t i = 0; i < COUNT(values); i++) {
                if ((how == FILL_ZERO || how == FILL_NEW) && i > 0)
                    break;
                struct fill_ctx k = {how, values[i]};
                struct rt_tensor *x = RNDD(dt, 4, 6);
                COMPARE(fmt("%s %g, %s", hows[how], values[i], rt_dtype_name(dt)), f_fill, &k, O(.mode = CMP_EXACT),
                        x);
                rt_tensor_release(x);
            }
        /* large enough for many blocks */
        struct fill_ctx k = {FILL_, -3.5};
        struct rt_tensor *x = RNDD(dt, 300, 1001);
        COMPARE(fmt("fill_ -3.5, %s (300, 1001)", rt_dtype_name(dt)), f_fill, &k, O(.mode = CMP_EXACT), x);
        rt_tensor_release(x);
    }
}

/* ================================================================== element-wise unary */

enum { U_NEG, U_EXP, U_LOG, U_SQRT, U_ABS, U_RELU, U_SIGMOID, U_TANH, U_RECIP, U_POW, U_CLAMP, U_AFFINE, U_CMP };

static const struct un_case {
    const char *name;
    int op;
    double a, b;   /* pow exponent; clamp bounds; affine mul, add; compare: scalar, enum rt_cmp */
    double lo, hi; /* float input range */
    bool float_only, quantized;
} un_cases[] = {
    {"neg", U_NEG, 0, 0, -3, 3, false, false},
    {"exp", U_EXP, 0, 0, -5, 5, true, false},
    {"log", U_LOG, 0, 0, 0.05, 4, true, false},
    {"sqrt", U_SQRT, 0, 0, 0.05, 4, true, false},
    {"abs", U_ABS, 0, 0, -3, 3, false, false},
    {"abs at integers (zeros)", U_ABS, 0, 0, -3, 4, false, true},
    {"relu", U_RELU, 0, 0, -3, 3, false, false},
    {"relu at integers (zeros)", U_RELU, 0, 0, -3, 4, false, true},
    {"sigmoid", U_SIGMOID, 0, 0, -30, 30, true, false},
    {"tanh", U_TANH, 0, 0, -4, 4, true, false},
    {"reciprocal", U_RECIP, 0, 0, 0.25, 3, true, false},
    {"pow 2", U_POW, 2, 0, -3, 3, true, false},
    {"pow 0.5", U_POW, 0.5, 0, 0.05, 4, true, false},
    {"pow 3", U_POW, 3, 0, -3, 3, true, false},
    {"pow 1", U_POW, 1, 0, -3, 3, true, false},
    {"pow -1.5", U_POW, -1.5, 0, 0.25, 3, true, false},
    {"pow 2.5", U_POW, 2.5, 0, 0.05, 3, true, false},
    {"clamp [-1.5, 0.75]", U_CLAMP, -1.5, 0.75, -3, 3, false, false},
    {"clamp [-1, 2] at the bounds", U_CLAMP, -1, 2, -3, 4, false, true},
    {"clamp [-0.5, inf]", U_CLAMP, -0.5, INFINITY, -3, 3, false, false},
    {"clamp [-inf, 1.25]", U_CLAMP, -INFINITY, 1.25, -3, 3, false, false},
    {"affine -2.5x + 0.75", U_AFFINE, -2.5, 0.75, -3, 3, false, false},
    {"affine 3x - 2", U_AFFINE, 3, -2, -3, 3, false, false},
    {"compare == 1", U_CMP, 1, RT_CMP_EQ, -3, 4, false, true},
    {"compare != 1", U_CMP, 1, RT_CMP_NE, -3, 4, false, true},
    {"compare < 1", U_CMP, 1, RT_CMP_LT, -3, 4, false, true},
    {"compare <= 1", U_CMP, 1, RT_CMP_LE, -3, 4, false, true},
    {"compare > 1", U_CMP, 1, RT_CMP_GT, -3, 4, false, true},
    {"compare >= 1", U_CMP, 1, RT_CMP_GE, -3, 4, false, true},
    {"compare >= 0.5", U_CMP, 0.5, RT_CMP_GE, -3, 4, false, true},
};

struct un_ctx {
    const struct un_case *u;
    int view;
};

static enum rt_status f_unary(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct un_ctx *k = c;
    const struct un_case *u = k->u;
    struct rt_tensor *x = NULL;
    enum rt_status st = view_as(in[0], k->view, &x);
    if (st != RT_OK)
        return st;
    switch (u->op) {
    case U_NEG: st = rt_neg(x, out); break;
    case U_EXP: st = rt_exp(x, out); break;
    case U_LOG: st = rt_log(x, out); break;
    case U_SQRT: st = rt_sqrt(x, out); break;
    case U_ABS: st = rt_abs(x, out); break;
    case U_RELU: st = rt_relu(x, out); break;
    case U_SIGMOID: st = rt_sigmoid(x, out); break;
    case U_TANH: st = rt_tanh(x, out); break;
    case U_RECIP: st = rt_reciprocal(x, out); break;
    case U_POW: st = rt_pow(x, u->a, out); break;
    case U_CLAMP: st = rt_clamp(x, u->a, u->b, out); break;
    case U_AFFINE: st = rt_affine(x, u->a, u->b, out); break;
    default: st = rt_compare_scalar(x, u->a, (enum rt_cmp)(int)u->b, out); break;
    }
    rt_tensor_release(x);
    return st;
}

struct scal_ctx {
    bool mul;
    double s;
    int view;
};

/* rt_mul_scalar_ / rt_add_scalar_: one in-place kernel on contiguous tensors, a copy back otherwise */
static enum rt_status f_scalar_(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct scal_ctx *k = c;
    struct rt_tensor *v = NULL;
    enum rt_status st = view_as(in[0], k->view, &v);
    if (st == RT_OK)
        st = k->mul ? rt_mul_scalar_(v, k->s) : rt_add_scalar_(v, k->s);
    rt_tensor_release(v);
    return inputs_as_outputs(st, in, out, 0, 1, (const int[]){0});
}

static void test_unary(void)
{
    for (size_t i = 0; i < COUNT(un_cases); i++) {
        const struct un_case *u = &un_cases[i];
        struct un_ctx k = {u, V_NONE};
        FOR_DTYPE(dt) {
            bool flt = rt_dtype_is_float(dt);
            struct rt_tensor *x;
            if (flt)
                x = u->quantized ? RNDQ(dt, u->lo, u->hi, 4, 6) : RND(dt, u->lo, u->hi, 4, 6);
            else
                x = u->quantized ? RNDQ(dt, dt == RT_U8 ? 0 : -3, 4, 4, 6) : RNDD(dt, 4, 6);
            struct opts o = {0};
            if (!flt && u->float_only)
                o.fail = RT_ERR_DTYPE;
            else if (flt && u->op != U_CMP)
                o.grad = 1;
            else
                o.mode = CMP_EXACT;
            COMPARE(fmt("%s, %s", u->name, rt_dtype_name(dt)), f_unary, &k, o, x);
            rt_tensor_release(x);
            if (!flt && u->float_only)
                continue;
            struct rt_tensor *s = specials(dt); /* forward only: NaN, inf, overflow */
            COMPARE(fmt("%s, %s edge values", u->name, rt_dtype_name(dt)), f_unary, &k,
                    O(.mode = flt && u->op != U_CMP ? CMP_TOL : CMP_EXACT), s);
            rt_tensor_release(s);
        }
    }
    /* a strided input goes through a contiguous copy first; long enough for many blocks */
    struct un_ctx k = {&un_cases[1], V_T};
    FOR_FLOAT(dt) {
        struct rt_tensor *x = RND(dt, -2, 2, 5, 4), *big = RND(dt, -2, 2, 257, 513);
        COMPARE(fmt("exp of a transposed %s view", rt_dtype_name(dt)), f_unary, &k, O(.grad = 1), x);
        COMPARE(fmt("exp of a transposed %s (257, 513)", rt_dtype_name(dt)), f_unary, &k, O(.grad = 1), big);
        RELEASE(x, big);
    }
    /* in place */
    FOR_DTYPE(dt) {
        bool flt = rt_dtype_is_float(dt);
        for (int view = 0; view < 2; view++)
            for (int mul = 0; mul < 2; mul++) {
                struct scal_ctx sk = {mul, mul ? (flt ? 2.5 : 3) : (flt ? -1.5 : 7), view ? V_T : V_NONE};
                struct rt_tensor *x = RNDD(dt, 5, 4);
                COMPARE(fmt("%s %g in place, %s%s", mul ? "mul_scalar_" : "add_scalar_", sk.s, rt_dtype_name(dt),
                            view ? " (transposed)" : ""),
                        f_scalar_, &sk, O(.mode = flt ? CMP_TOL : CMP_EXACT), x);
                rt_tensor_release(x);
            }
    }
}

struct leaky_ctx {
    double slope;
};

static enum rt_status f_leaky(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_leaky_relu(in[0], ((struct leaky_ctx *)c)->slope, out);
}

static void test_leaky_relu(void)
{
    static const double slopes[] = {0.01, 0.2, -0.5, 0};
    for (size_t i = 0; i < COUNT(slopes); i++) {
        struct leaky_ctx k = {slopes[i]};
        FOR_FLOAT(dt) {
            struct rt_tensor *x = RND(dt, -3, 3, 7, 9), *q = RNDQ(dt, -3, 4, 7, 9), *s = specials(dt);
            COMPARE(fmt("leaky_relu %g, %s", slopes[i], rt_dtype_name(dt)), f_leaky, &k, O(.grad = 1), x);
            COMPARE(fmt("leaky_relu %g at integers (zeros), %s", slopes[i], rt_dtype_name(dt)), f_leaky, &k,
                    O(.grad = 1), q);
            COMPARE(fmt("leaky_relu %g, %s edge values", slopes[i], rt_dtype_name(dt)), f_leaky, &k, O(0), s);
            RELEASE(x, q, s);
        }
    }
    struct leaky_ctx k = {0.1};
    struct rt_tensor *i = RNDD(RT_I64, 3, 4);
    COMPARE("leaky_relu refuses i64", f_leaky, &k, O(.fail = RT_ERR_DTYPE), i);
    rt_tensor_release(i);
}

/* ================================================================== element-wise binary, where */

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_CMP };

static const struct bin_op {
    const char *name;
    int op;
    enum rt_cmp cmp;
} bin_ops[] = {
    {"add", B_ADD, 0}, {"sub", B_SUB, 0}, {"mul", B_MUL, 0}, {"div", B_DIV, 0}, {"maximum", B_MAX, 0},
    {"minimum", B_MIN, 0}, {"==", B_CMP, RT_CMP_EQ}, {"!=", B_CMP, RT_CMP_NE}, {"<", B_CMP, RT_CMP_LT},
    {"<=", B_CMP, RT_CMP_LE}, {">", B_CMP, RT_CMP_GT}, {">=", B_CMP, RT_CMP_GE},
};

static const struct layout {
    const char *name;
    int nda;
    int64_t a[3];
    int va;
    int ndb;
    int64_t b[3];
    int vb;
} layouts[] = {
    {"(4,5) . (4,5)", 2, {4, 5}, V_NONE, 2, {4, 5}, V_NONE},
    {"(N,C) . (C)", 2, {4, 5}, V_NONE, 1, {5}, V_NONE},
    {"(N,1) . (1,C)", 2, {4, 1}, V_NONE, 2, {1, 5}, V_NONE},
    {"(4,5) . scalar", 2, {4, 5}, V_NONE, 0, {0}, V_NONE},
    {"scalar . (4,5)", 0, {0}, V_NONE, 2, {4, 5}, V_NONE},
    {"transposed . narrowed", 2, {5, 4}, V_T, 2, {4, 7}, V_NARROW},
    {"(2,1,4) . (3,1)", 3, {2, 1, 4}, V_NONE, 2, {3, 1}, V_NONE},
    {"(N,C) . (C) at (300,257)", 2, {300, 257}, V_NONE, 1, {257}, V_NONE},
    {"empty (0,5) . (5)", 2, {0, 5}, V_NONE, 1, {5}, V_NONE},
};

struct bin_ctx {
    int op;
    enum rt_cmp cmp;
    int va, vb;
};

static enum rt_status f_binary(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct bin_ctx *k = c;
    struct rt_tensor *a = NULL, *b = NULL;
    enum rt_status st;
    TRY(view_as(in[0], k->va, &a));
    TRY(view_as(in[1], k->vb, &b));
    switch (k->op) {
    case B_ADD: st = rt_add(a, b, out); break;
    case B_SUB: st = rt_sub(a, b, out); break;
    case B_MUL: st = rt_mul(a, b, out); break;
    case B_DIV: st = rt_div(a, b, out); break;
    case B_MAX: st = rt_maximum(a, b, out); break;
    case B_MIN: st = rt_minimum(a, b, out); break;
    default: st = rt_compare(a, b, k->cmp, out); break;
    }
done:
    RELEASE(a, b);
    return st;
}

/* an operand for op: divisors away from zero for floats (and with zeros for integers), integer-valued
 * floats for comparisons so that == and != see equal elements */
static struct rt_tensor *operand(enum rt_dtype dt, int op, bool divisor, int nd, const int64_t *shape)
{
    bool flt = rt_dtype_is_float(dt);
    if (op == B_CMP)
        return rndq_shape(dt, nd, shape, dt == RT_U8 ? 0 : -2, 3);
    if (op == B_DIV && divisor)
        return flt ? rnd_shape(dt, nd, shape, 0.5, 2) : rnd_shape(dt, nd, shape, dt == RT_U8 ? 0 : -3, 4);
    return rndd_shape(dt, nd, shape);
}

static void test_binary(void)
{
    for (size_t i = 0; i < COUNT(bin_ops); i++)
        for (size_t l = 0; l < COUNT(layouts); l++) {
            const struct layout *L = &layouts[l];
            struct bin_ctx k = {bin_ops[i].op, bin_ops[i].cmp, L->va, L->vb};
            FOR_DTYPE(dt) {
                bool flt = rt_dtype_is_float(dt);
                struct rt_tensor *a = operand(dt, k.op, false, L->nda, L->a);
                struct rt_tensor *b = operand(dt, k.op, true, L->ndb, L->b);
                struct opts o = flt && k.op != B_CMP ? O(.grad = 3) : O(.mode = CMP_EXACT);
                COMPARE(fmt("%s %s, %s", bin_ops[i].name, L->name, rt_dtype_name(dt)), f_binary, &k, o, a, b);
                RELEASE(a, b);
            }
        }
    /* NaN and infinities on either side, forward only */
    for (size_t i = 0; i < COUNT(bin_ops); i++) {
        struct bin_ctx k = {bin_ops[i].op, bin_ops[i].cmp, V_NONE, V_NONE};
        FOR_FLOAT(dt) {
            /* s against a reordering of itself: every pair of edge values meets somewhere */
            struct rt_tensor *s = specials(dt), *r = RND(dt, -3, 3, 4, 8), *t = NULL, *s2 = NULL;
            if (CHECK_OK(rt_transpose(s, 0, 1, &t)) && CHECK_OK(rt_reshape(t, 2, H_SHAPE(4, 8), &s2))) {
                COMPARE(fmt("%s, %s edge values . random", bin_ops[i].name, rt_dtype_name(dt)), f_binary, &k, O(0), s,
                        r);
                COMPARE(fmt("%s, %s random . edge values", bin_ops[i].name, rt_dtype_name(dt)), f_binary, &k, O(0), r,
                        s);
                COMPARE(fmt("%s, %s edge values . edge values", bin_ops[i].name, rt_dtype_name(dt)), f_binary, &k,
                        O(0), s, s2);
            }
            RELEASE(s, r, t, s2);
        }
    }
}

/* integer division: x / 0 is 0, INT64_MIN / -1 is INT64_MIN, truncation toward zero; floats give inf/NaN */
static void test_integer_division(void)
{
    static const int64_t ia[16] = {7, -7, 7, -7, 0, INT64_MIN, INT64_MIN, 5, -5, INT64_MAX, 1, -1, 9, 100, 3, 0};
    static const int64_t ib[16] = {2, 2, -2, -2, 0, -1, 0, 0, 0, -1, 3, 3, -4, 7, 1, 5};
    static const uint8_t ua[8] = {7, 255, 0, 9, 200, 1, 128, 3}, ub[8] = {2, 0, 0, 3, 7, 1, 0, 255};
    struct bin_ctx k = {B_DIV, 0, V_NONE, V_NONE};
    struct rt_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    REQUIRE_OK(rt_tensor_from_data(RT_I64, 1, H_SHAPE(16), ia, &a));
    REQUIRE_OK(rt_tensor_from_data(RT_I64, 1, H_SHAPE(16), ib, &b));
    REQUIRE_OK(rt_tensor_from_data(RT_U8, 1, H_SHAPE(8), ua, &c));
    REQUIRE_OK(rt_tensor_from_data(RT_U8, 1, H_SHAPE(8), ub, &d));
    COMPARE("i64 division by zero and INT64_MIN / -1", f_binary, &k, O(.mode = CMP_EXACT), a, b);
    COMPARE("u8 division by zero", f_binary, &k, O(.mode = CMP_EXACT), c, d);
    RELEASE(a, b, c, d);
    FOR_FLOAT(dt) {
        struct rt_tensor *x = h_tensor(dt, 1, H_SHAPE(4), H_VALS(1, -1, 0, NAN));
        struct rt_tensor *z = h_tensor(dt, 1, H_SHAPE(4), H_VALS(0, 0, 0, 0));
        COMPARE(fmt("%s division by zero", rt_dtype_name(dt)), f_binary, &k, O(0), x, z);
        RELEASE(x, z);
    }
    /* wrapping add/sub/mul of large integers */
    for (int op = B_ADD; op <= B_MUL; op++) {
        struct bin_ctx kw = {op, 0, V_NONE, V_NONE};
        struct rt_tensor *x = RND(RT_I64, -4e18, 4e18, 6, 7), *y = RND(RT_I64, -4e18, 4e18, 6, 7);
        struct rt_tensor *s = specials(RT_I64);
        struct rt_tensor *u = RND(RT_U8, 0, 256, 6, 7), *v = RND(RT_U8, 0, 256, 6, 7), *su = specials(RT_U8);
        COMPARE(fmt("%s wraps, i64", bin_ops[op].name), f_binary, &kw, O(.mode = CMP_EXACT), x, y);
        COMPARE(fmt("%s wraps, i64 edge values", bin_ops[op].name), f_binary, &kw, O(.mode = CMP_EXACT), s, s);
        COMPARE(fmt("%s wraps, u8", bin_ops[op].name), f_binary, &kw, O(.mode = CMP_EXACT), u, v);
        COMPARE(fmt("%s wraps, u8 edge values", bin_ops[op].name), f_binary, &kw, O(.mode = CMP_EXACT), su, su);
        RELEASE(x, y, s, u, v, su);
    }
}

struct add_ctx {
    double alpha;
};

/* rt_add_: one axpy kernel for same-shape contiguous floats, the broadcast path otherwise */
static enum rt_status f_add_(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return inputs_as_outputs(rt_add_(in[0], in[1], ((struct add_ctx *)c)->alpha), in, out, 0, 1, (const int[]){0});
}

static void test_add_inplace(void)
{
    struct add_ctx k = {-0.75}, one = {1};
    FOR_DTYPE(dt) {
        bool flt = rt_dtype_is_float(dt);
        struct rt_tensor *t = RNDD(dt, 30, 41), *o = RNDD(dt, 30, 41), *row = RNDD(dt, 41);
        COMPARE(fmt("add_ alpha -0.75, %s", rt_dtype_name(dt)), f_add_, &k, O(.mode = flt ? CMP_TOL : CMP_EXACT), t,
                o);
        COMPARE(fmt("add_ alpha 1, %s", rt_dtype_name(dt)), f_add_, &one, O(.mode = flt ? CMP_TOL : CMP_EXACT), t, o);
        COMPARE(fmt("add_ broadcast row, %s", rt_dtype_name(dt)), f_add_, &k, O(.mode = flt ? CMP_TOL : CMP_EXACT),
                t, row);
        RELEASE(t, o, row);
    }
}

enum { W_SAME, W_BCAST, W_BCAST2 };
static const char *const where_names[] = {"all (4,5)", "cond (4,1), a (4,5), b scalar", "cond (5), a (4,1), b (1,5)"};

static enum rt_status f_where(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    (void)c;
    struct rt_tensor *cond = NULL;
    enum rt_status st = rt_compare_scalar(in[0], 0.0, RT_CMP_GT, &cond);
    if (st == RT_OK)
        st = rt_where(cond, in[1], in[2], out);
    rt_tensor_release(cond);
    return st;
}

static void test_where(void)
{
    FOR_DTYPE(dt) {
        for (int l = W_SAME; l <= W_BCAST2; l++) {
            struct rt_tensor *c, *a, *b;
            if (l == W_SAME)
                c = RND(RT_F64, -1, 1, 4, 5), a = RNDD(dt, 4, 5), b = RNDD(dt, 4, 5);
            else if (l == W_BCAST)
                c = RND(RT_F64, -1, 1, 4, 1), a = RNDD(dt, 4, 5), b = rnd_shape(dt, 0, NULL, 0, 9);
            else
                c = RND(RT_F64, -1, 1, 5), a = RNDD(dt, 4, 1), b = RNDD(dt, 1, 5);
            bool flt = rt_dtype_is_float(dt);
            COMPARE(fmt("where %s, %s", where_names[l], rt_dtype_name(dt)), f_where, NULL,
                    flt ? O(.grad = 6) : O(.mode = CMP_EXACT), c, a, b);
            RELEASE(c, a, b);
        }
    }
}

/* ================================================================== reductions */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_LSE, R_NORM, R_ARGMAX, R_ARGMIN };

static const struct red_op {
    const char *name;
    int op;
    double p;
    bool float_only, diff;
} red_ops[] = {
    {"sum", R_SUM, 0, false, true},         {"mean", R_MEAN, 0, true, true},
    {"max", R_MAX, 0, false, true},         {"min", R_MIN, 0, false, true},
    {"logsumexp", R_LSE, 0, true, true},    {"norm p=1", R_NORM, 1, true, true},
    {"norm p=2", R_NORM, 2, true, true},    {"norm p=3", R_NORM, 3, true, true},
    {"norm p=inf", R_NORM, INFINITY, true, true}, {"argmax", R_ARGMAX, 0, false, false},
    {"argmin", R_ARGMIN, 0, false, false},
};

#define DIM_ALL 99
struct red_ctx {
    int op;
    double p;
    int dim; /* DIM_ALL: the rt_*_all variant */
    bool keep;
};

static enum rt_status f_reduce(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct red_ctx *k = c;
    struct rt_tensor *x = in[0], *flat = NULL;
    enum rt_status st;
    if (k->dim == DIM_ALL) {
        switch (k->op) {
        case R_SUM: return rt_sum_all(x, out);
        case R_MEAN: return rt_mean_all(x, out);
        case R_MAX: return rt_max_all(x, out);
        case R_MIN: return rt_min_all(x, out);
        case R_LSE: return rt_logsumexp_all(x, out);
        case R_NORM: return rt_norm_all(x, k->p, out);
        default:
            st = rt_flatten(x, 0, -1, &flat);
            if (st == RT_OK)
                st = k->op == R_ARGMAX ? rt_argmax(flat, 0, false, out) : rt_argmin(flat, 0, false, out);
            rt_tensor_release(flat);
            return st;
        }
    }
    switch (k->op) {
    case R_SUM: return rt_sum(x, k->dim, k->keep, out);
    case R_MEAN: return rt_mean(x, k->dim, k->keep, out);
    case R_MAX: return rt_max(x, k->dim, k->keep, &out[0], &out[1]);
    case R_MIN: return rt_min(x, k->dim, k->keep, &out[0], &out[1]);
    case R_LSE: return rt_logsumexp(x, k->dim, k->keep, out);
    case R_NORM: return rt_norm(x, k->p, k->dim, k->keep, out);
    case R_ARGMAX: return rt_argmax(x, k->dim, k->keep, out);
    default: return rt_argmin(x, k->dim, k->keep, out);
    }
}

/* every reduction of ops (a mask over red_ops) over each dim of x (both keepdims) and over all */
static void reduce_all_ways(const char *tag, struct rt_tensor *x, unsigned ops, bool grad, bool all)
{
    bool flt = rt_dtype_is_float(x->dtype);
    for (size_t i = 0; i < COUNT(red_ops); i++) {
        const struct red_op *r = &red_ops[i];
        if (!(ops >> i & 1u))
            continue;
        struct opts o = {0};
        if (!flt && r->float_only)
            o.fail = RT_ERR_DTYPE;
        else if (flt && r->diff && grad)
            o.grad = 1;
        if (!flt || !r->diff)
            o.mode = CMP_EXACT;
        for (int d = 0; d <= x->ndim; d++)
            for (int keep = 0; keep < 2; keep++) {
                if (d == x->ndim && (keep || !all))
                    continue;
                struct red_ctx k = {r->op, r->p, d == x->ndim ? DIM_ALL : d, keep};
                if (d == x->ndim)
                    COMPARE(fmt("%s over all, %s %s", r->name, rt_dtype_name(x->dtype), tag), f_reduce, &k, o, x);
                else
                    COMPARE(fmt("%s dim %d%s, %s %s", r->name, d, keep ? " keepdim" : "", rt_dtype_name(x->dtype),
                                tag),
                            f_reduce, &k, o, x);
            }
    }
}

#define ALL_RED 0x7FFu
#define RED_MASK(...) red_mask((const int[]){__VA_ARGS__, -1})
static unsigned red_mask(const int *ops)
{
    unsigned m = 0;
    for (; *ops >= 0; ops++)
        for (size_t i = 0; i < COUNT(red_ops); i++)
            if (red_ops[i].op == *ops)
                m |= 1u << i;
    return m;
}

static void test_reductions(void)
{
    FOR_DTYPE(dt) {
        struct rt_tensor *x = RNDD(dt, 3, 4, 5);
        reduce_all_ways("(3,4,5)", x, ALL_RED, true, true);
        rt_tensor_release(x);
    }
    FOR_FLOAT(dt) {
        /* ties: the first extremum wins; gradients of max_all/norm inf are shared between ties */
        struct rt_tensor *q = RNDQ(dt, -2, 3, 3, 4, 5);
        reduce_all_ways("(3,4,5) with ties", q, ALL_RED, true, true);
        /* NaN and infinities: the first NaN wins and propagates */
        struct rt_tensor *s = specials(dt);
        reduce_all_ways("edge values", s, ALL_RED, false, true);
        /* long rows (inner == 1) and long columns (inner > 1): many threads per output */
        struct rt_tensor *rows = RND(dt, -1, 1, 3, 5000), *cols = RND(dt, -1, 1, 2, 3000, 3);
        unsigned big = RED_MASK(R_SUM, R_MEAN, R_MAX, R_MIN, R_LSE, R_NORM, R_ARGMAX);
        reduce_all_ways("(3,5000)", rows, big, true, true);
        reduce_all_ways("(2,3000,3)", cols, big, true, false);
        /* empty dims: sums are 0, means NaN, logsumexp -inf; max/min refuse */
        struct rt_tensor *e = RND(dt, -1, 1, 3, 0, 4);
        reduce_all_ways("(3,0,4)", e, RED_MASK(R_SUM, R_MEAN, R_LSE, R_NORM), true, true);
        struct red_ctx k = {R_MAX, 0, 1, false};
        COMPARE(fmt("max over an empty dim refuses, %s", rt_dtype_name(dt)), f_reduce, &k, O(.fail = RT_ERR_SHAPE), e);
        RELEASE(q, s, rows, cols, e);
    }
    struct rt_tensor *huge = RND(RT_F32, 0, 1, 1 << 18);
    struct red_ctx k = {R_SUM, 0, DIM_ALL, false};
    COMPARE("sum of 2^18 f32", f_reduce, &k, O(.grad = 1), huge);
    rt_tensor_release(huge);
    FOR_DTYPE(dt) {
        struct rt_tensor *s = specials(dt);
        if (!rt_dtype_is_float(dt))
            reduce_all_ways("edge values", s, RED_MASK(R_SUM, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN), false, true);
        rt_tensor_release(s);
    }
}

static enum rt_status f_sum_to(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    (void)c;
    return rt_sum_to_shape(in[0], 2, H_SHAPE(3, 1), out);
}

static void test_sum_to_shape(void)
{
    FOR_FLOAT(dt) {
        struct rt_tensor *x = RND(dt, -1, 1, 2, 3, 4);
        COMPARE(fmt("sum_to_shape (2,3,4) -> (3,1), %s", rt_dtype_name(dt)), f_sum_to, NULL, O(.grad = 1), x);
        rt_tensor_release(x);
    }
}

/* ================================================================== matrix products */

enum { M_MM, M_LINEAR, M_LINEAR_NOBIAS, M_LINEAR_BIAS_SLICE, M_BMM };

static const struct mm_case {
    const char *name;
    int kind;
    int nda;
    int64_t a[3];
    int va;
    int ndb;
    int64_t b[3];
    int vb;
} mm_cases[] = {
    {"2-D", M_MM, 2, {5, 7}, V_NONE, 2, {7, 3}, V_NONE},
    {"batched", M_MM, 3, {2, 5, 7}, V_NONE, 3, {2, 7, 3}, V_NONE},
    {"batched x 2-D", M_MM, 3, {2, 5, 7}, V_NONE, 2, {7, 3}, V_NONE},
    {"2-D x batched", M_MM, 2, {5, 7}, V_NONE, 3, {2, 7, 3}, V_NONE},
    {"a transposed", M_MM, 2, {7, 5}, V_T, 2, {7, 3}, V_NONE},
    {"b transposed", M_MM, 2, {5, 7}, V_NONE, 2, {3, 7}, V_T},
    {"both transposed, batched", M_MM, 3, {2, 7, 5}, V_TLAST, 3, {2, 3, 7}, V_TLAST},
    {"a narrowed (lda > k)", M_MM, 2, {5, 10}, V_NARROW, 2, {8, 3}, V_NONE},
    {"b narrowed (ldb > n)", M_MM, 2, {5, 7}, V_NONE, 2, {7, 6}, V_NARROW},
    {"batch dim strided", M_MM, 3, {5, 2, 7}, V_SWAP01, 3, {2, 7, 3}, V_NONE},
    {"k == 0", M_MM, 2, {4, 0}, V_NONE, 2, {0, 3}, V_NONE},
    {"k == 0, batched", M_MM, 3, {2, 4, 0}, V_NONE, 3, {2, 0, 3}, V_NONE},
    {"vector x matrix", M_MM, 1, {7}, V_NONE, 2, {7, 3}, V_NONE},
    {"matrix x vector", M_MM, 2, {5, 7}, V_NONE, 1, {7}, V_NONE},
    {"vector . vector", M_MM, 1, {7}, V_NONE, 1, {7}, V_NONE},
    {"(64,96) x (96,80)", M_MM, 2, {64, 96}, V_NONE, 2, {96, 80}, V_NONE},
    {"(3,33,65) x (3,65,17)", M_MM, 3, {3, 33, 65}, V_NONE, 3, {3, 65, 17}, V_NONE},
    {"linear", M_LINEAR, 2, {6, 7}, V_NONE, 2, {4, 7}, V_NONE},
    {"linear, no bias", M_LINEAR_NOBIAS, 2, {6, 7}, V_NONE, 2, {4, 7}, V_NONE},
    {"linear, transposed input", M_LINEAR, 2, {7, 6}, V_T, 2, {4, 7}, V_NONE},
    {"linear (128,300) x (100,300)^T", M_LINEAR, 2, {128, 300}, V_NONE, 2, {100, 300}, V_NONE},
    /* a GPU adds an aligned bias in the product's epilogue; these take the bias fill and a GEMM */
    {"linear, bias a slice at offset 1", M_LINEAR_BIAS_SLICE, 2, {6, 7}, V_NONE, 2, {4, 7}, V_NONE},
    {"linear, input narrowed (lda > k)", M_LINEAR, 2, {6, 9}, V_NARROW, 2, {4, 7}, V_NONE},
    {"linear, weight a transposed view", M_LINEAR, 2, {6, 7}, V_NONE, 2, {7, 4}, V_T},
    {"bmm", M_BMM, 3, {3, 4, 5}, V_NONE, 3, {3, 5, 2}, V_NONE},
};

static enum rt_status f_matmul(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    const struct mm_case *m = c;
    struct rt_tensor *a = NULL, *b = NULL;
    enum rt_status st;
    TRY(view_as(in[0], m->va, &a));
    TRY(view_as(in[1], m->vb, &b));
    switch (m->kind) {
    case M_MM: st = rt_matmul(a, b, out); break;
    case M_LINEAR: st = rt_linear(a, b, in[2], out); break;
    case M_LINEAR_NOBIAS: st = rt_linear(a, b, NULL, out); break;
    case M_LINEAR_BIAS_SLICE: {
        struct rt_tensor *bias = NULL;
        st = rt_narrow(in[2], 0, 1, b->shape[0], &bias);
        if (st == RT_OK)
            st = rt_linear(a, b, bias, out);
        rt_tensor_release(bias);
        break;
    }
    default: st = rt_bmm(a, b, out); break;
    }
done:
    RELEASE(a, b);
    return st;
}

static void test_matmul(void)
{
    for (size_t i = 0; i < COUNT(mm_cases); i++) {
        const struct mm_case *m = &mm_cases[i];
        FOR_FLOAT(dt) {
            struct rt_tensor *a = rndn_shape(dt, m->nda, m->a, 0, 1), *b = rndn_shape(dt, m->ndb, m->b, 0, 1);
            int64_t out_features = m->vb == V_T ? m->b[1] : m->b[0]; /* of a linear's weight */
            struct rt_tensor *bias = RND(dt, -1, 1, out_features + (m->kind == M_LINEAR_BIAS_SLICE));
            COMPARE(fmt("matmul %s, %s", m->name, rt_dtype_name(dt)), f_matmul, (void *)m,
                    O(.grad = m->kind == M_LINEAR || m->kind == M_LINEAR_BIAS_SLICE ? 7 : 3), a, b, bias);
            RELEASE(a, b, bias);
        }
    }
    struct rt_tensor *a = RNDD(RT_I64, 3, 4), *b = RNDD(RT_I64, 4, 2);
    COMPARE("matmul refuses i64", f_matmul, (void *)&mm_cases[0], O(.fail = RT_ERR_DTYPE), a, b);
    RELEASE(a, b);
}

/* ================================================================== softmax */

struct sm_ctx {
    bool log;
    int dim;
    double T;
    int view;
};

static enum rt_status f_softmax(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct sm_ctx *k = c;
    struct rt_tensor *x = NULL;
    enum rt_status st = view_as(in[0], k->view, &x);
    if (st == RT_OK)
        st = k->log ? rt_log_softmax(x, k->dim, k->T, out) : rt_softmax(x, k->dim, k->T, out);
    rt_tensor_release(x);
    return st;
}

static void test_softmax(void)
{
    static const double temps[] = {1, 2.5, 0.3};
    FOR_FLOAT(dt) {
        struct rt_tensor *x = RND(dt, -4, 4, 2, 5, 7), *xt = RND(dt, -4, 4, 7, 5), *rows = RND(dt, -4, 4, 4, 1500);
        struct rt_tensor *mid = RND(dt, -4, 4, 3, 600, 2), *ext = RND(dt, -1e4, 1e4, 4, 9), *one = RND(dt, -1, 1, 3, 1);
        for (int log = 0; log < 2; log++) {
            const char *nm = log ? "log_softmax" : "softmax";
            for (size_t t = 0; t < COUNT(temps); t++)
                for (int dim = -1; dim < 3; dim++) {
                    struct sm_ctx k = {log, dim, temps[t], V_NONE};
                    COMPARE(fmt("%s dim %d T %g, %s (2,5,7)", nm, dim, temps[t], rt_dtype_name(dt)), f_softmax, &k,
                            O(.grad = 1), x);
                }
            struct sm_ctx kt = {log, 1, 2, V_T}, kr = {log, 1, 1.5, V_NONE}, ke = {log, 1, 1, V_NONE},
                          k0 = {log, 1, 1, V_NONE};
            COMPARE(fmt("%s of a transposed %s view", nm, rt_dtype_name(dt)), f_softmax, &kt, O(.grad = 1), xt);
            COMPARE(fmt("%s over rows of 1500, %s", nm, rt_dtype_name(dt)), f_softmax, &kr, O(.grad = 1), rows);
            COMPARE(fmt("%s over a middle dim of 600, %s", nm, rt_dtype_name(dt)), f_softmax, &kr, O(.grad = 1), mid);
            COMPARE(fmt("%s of logits +-1e4, %s", nm, rt_dtype_name(dt)), f_softmax, &ke, O(.grad = 1), ext);
            COMPARE(fmt("%s over a dim of size 1, %s", nm, rt_dtype_name(dt)), f_softmax, &k0, O(.grad = 1), one);
        }
        RELEASE(x, xt, rows, mid, ext, one);
    }
}

/* ================================================================== indexing, joining */

struct dim_ctx {
    int dim;
};

static enum rt_status f_index_select(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_index_select(in[0], ((struct dim_ctx *)c)->dim, in[1], out);
}

static enum rt_status f_gather(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_gather(in[0], ((struct dim_ctx *)c)->dim, in[1], out);
}

static enum rt_status f_scatter_add(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_scatter_add(in[0], ((struct dim_ctx *)c)->dim, in[1], in[2], out);
}

static void test_index_select(void)
{
    /* repeated indices: the backward (index_add) sums several rows into one */
    struct {
        int dim;
        int n;
        double idx[6];
    } cases[] = {{0, 5, {4, 0, 4, 2, 4}}, {1, 3, {3, 3, 0}}, {2, 6, {2, 0, 2, 1, 1, 2}}, {-1, 2, {1, 1}},
                 {0, 0, {0}}};
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct dim_ctx k = {cases[i].dim};
        FOR_DTYPE(dt) {
            struct rt_tensor *x = RNDD(dt, 5, 4, 3), *ix = h_tensor(RT_I64, 1, H_SHAPE(cases[i].n), cases[i].idx);
            bool flt = rt_dtype_is_float(dt);
            COMPARE(fmt("index_select dim %d (%d indices), %s", cases[i].dim, cases[i].n, rt_dtype_name(dt)),
                    f_index_select, &k, flt ? O(.grad = 1) : O(.mode = CMP_EXACT), x, ix);
            RELEASE(x, ix);
        }
    }
    FOR_FLOAT(dt) { /* many rows into few: long sums in the backward */
        struct dim_ctx k = {0};
        struct rt_tensor *x = RND(dt, -1, 1, 7, 300), *ix = RND(RT_I64, 0, 7, 2000);
        COMPARE(fmt("index_select 2000 of 7 rows, %s", rt_dtype_name(dt)), f_index_select, &k, O(.grad = 1), x, ix);
        RELEASE(x, ix);
    }
}

/* index_copy_ into a clone of x (in place on the device's copy), distinct indices: the result does not
 * depend on which of two equal indices a GPU writes last */
static enum rt_status f_index_copy(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct dim_ctx *k = c;
    enum rt_status st = rt_clone(in[0], &out[0]);
    if (st == RT_OK)
        st = rt_index_copy_(out[0], k->dim, in[1], in[2]);
    return st;
}

static void test_index_copy(void)
{
    struct {
        int dim, n;
        double idx[4];
    } cases[] = {{0, 3, {4, 0, 2}}, {1, 2, {3, 1}}, {2, 3, {2, 0, 1}}, {0, 0, {0}}};
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct dim_ctx k = {cases[i].dim};
        int64_t sshape[3] = {5, 4, 3};
        sshape[cases[i].dim] = cases[i].n;
        FOR_DTYPE(dt) {
            struct rt_tensor *x = RNDD(dt, 5, 4, 3), *ix = h_tensor(RT_I64, 1, H_SHAPE(cases[i].n), cases[i].idx);
            struct rt_tensor *src = rndd_shape(dt, 3, sshape);
            COMPARE(fmt("index_copy_ dim %d (%d indices), %s", cases[i].dim, cases[i].n, rt_dtype_name(dt)),
                    f_index_copy, &k, O(.mode = CMP_EXACT), x, ix, src);
            RELEASE(x, ix, src);
        }
    }
}

static void test_gather_scatter(void)
{
    struct {
        int dim, nd;
        int64_t x[3], ix[3];
    } cases[] = {
        {1, 2, {4, 5}, {4, 3}},
        {1, 2, {4, 5}, {4, 9}},
        {0, 2, {4, 5}, {6, 5}},
        {1, 3, {3, 4, 5}, {3, 6, 5}},
        {-1, 3, {3, 4, 5}, {3, 4, 2}},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        int d = cases[i].dim < 0 ? cases[i].dim + cases[i].nd : cases[i].dim;
        struct dim_ctx k = {cases[i].dim};
        FOR_DTYPE(dt) {
            bool flt = rt_dtype_is_float(dt);
            struct rt_tensor *x = rndd_shape(dt, cases[i].nd, cases[i].x);
            struct rt_tensor *ix = rnd_shape(RT_I64, cases[i].nd, cases[i].ix, 0, (double)cases[i].x[d]);
            struct rt_tensor *src = rndd_shape(dt, cases[i].nd, cases[i].ix);
            COMPARE(fmt("gather case %zu, %s", i, rt_dtype_name(dt)), f_gather, &k,
                    flt ? O(.grad = 1) : O(.mode = CMP_EXACT), x, ix);
            COMPARE(fmt("scatter_add case %zu (repeated indices), %s", i, rt_dtype_name(dt)), f_scatter_add, &k,
                    flt ? O(.grad = 5) : O(.mode = CMP_EXACT), x, ix, src);
            RELEASE(x, ix, src);
        }
    }
    FOR_FLOAT(dt) { /* everything onto few slots: heavy collisions */
        struct dim_ctx k = {1};
        struct rt_tensor *x = RND(dt, -1, 1, 3, 4), *ix = RND(RT_I64, 0, 4, 3, 5000), *src = RND(dt, -1, 1, 3, 5000);
        COMPARE(fmt("scatter_add 5000 into 4 slots, %s", rt_dtype_name(dt)), f_scatter_add, &k, O(.grad = 5), x, ix,
                src);
        RELEASE(x, ix, src);
    }
}

static enum rt_status f_cat(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_cat(3, in, ((struct dim_ctx *)c)->dim, out);
}

static enum rt_status f_stack(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_stack(3, in, ((struct dim_ctx *)c)->dim, out);
}

static void test_cat_stack(void)
{
    FOR_DTYPE(dt) {
        struct opts o = rt_dtype_is_float(dt) ? O(.grad = 7) : O(.mode = CMP_EXACT);
        struct dim_ctx k0 = {0}, k1 = {1}, k2 = {2};
        struct rt_tensor *a = RNDD(dt, 2, 3, 4), *b = RNDD(dt, 2, 1, 4), *c = RNDD(dt, 2, 5, 4);
        struct rt_tensor *p = RNDD(dt, 1, 3, 4), *q = RNDD(dt, 3, 3, 4);
        COMPARE(fmt("cat dim 1, %s", rt_dtype_name(dt)), f_cat, &k1, o, a, b, c);
        COMPARE(fmt("cat dim 0, %s", rt_dtype_name(dt)), f_cat, &k0, o, p, a, q);
        COMPARE(fmt("stack dim 0, %s", rt_dtype_name(dt)), f_stack, &k0, o, a, a, a);
        COMPARE(fmt("stack dim 2, %s", rt_dtype_name(dt)), f_stack, &k2, o, a, a, a);
        RELEASE(a, b, c, p, q);
    }
}

/* ================================================================== random numbers */

enum { RNG_UNIFORM, RNG_NORMAL, RNG_BERNOULLI };
struct rng_ctx {
    int kind;
    double a, b;
    uint64_t seed;
    int view;
};

static enum rt_status rng_fill(const struct rng_ctx *k, struct rt_tensor *t, struct rt_rng *g)
{
    switch (k->kind) {
    case RNG_UNIFORM: return rt_uniform_(t, g, k->a, k->b);
    case RNG_NORMAL: return rt_normal_(t, g, k->a, k->b);
    default: return rt_bernoulli_(t, g, k->a);
    }
}

/* two draws from one generator (the counter advances): into a view of in[0], then into a new tensor */
static enum rt_status f_random(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct rng_ctx *k = c;
    struct rt_rng g;
    rt_rng_init(&g, k->seed);
    g.offset = 1000003; /* a counter base that is not 0 */
    struct rt_tensor *v = NULL;
    enum rt_status st;
    TRY(view_as(in[0], k->view, &v));
    TRY(rng_fill(k, v, &g));
    rt_tensor_retain(in[0]);
    out[0] = in[0];
    TRY(rt_tensor_empty_like(in[0], &out[1]));
    TRY(rng_fill(k, out[1], &g));
done:
    rt_tensor_release(v);
    return st;
}

static void test_random(void)
{
    static const char *const kinds[] = {"uniform_", "normal_", "bernoulli_"};
    struct rng_ctx cases[] = {
        {RNG_UNIFORM, -2, 3, 7, V_NONE},  {RNG_UNIFORM, -2, 3, 8, V_T},    {RNG_UNIFORM, 0.5, 0.5, 9, V_NONE},
        {RNG_UNIFORM, 0, 1e-3, 10, V_NONE}, {RNG_NORMAL, 1.5, 2, 11, V_NONE}, {RNG_NORMAL, -1, 0.25, 12, V_T},
        {RNG_NORMAL, 3, 0, 13, V_NONE},   {RNG_BERNOULLI, 0.3, 0, 14, V_NONE}, {RNG_BERNOULLI, 0.7, 0, 15, V_T},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct rng_ctx *k = &cases[i];
        int mode = k->kind == RNG_NORMAL ? CMP_ULP : CMP_EXACT;
        FOR_DTYPE(dt) {
            if (k->kind != RNG_BERNOULLI && !rt_dtype_is_float(dt))
                continue;
            struct rt_tensor *x = RNDD(dt, 37, 1000);
            COMPARE(fmt("%s(%g, %g) seed %llu%s, %s", kinds[k->kind], k->a, k->b, (unsigned long long)k->seed,
                        k->view ? " into a transposed view" : "", rt_dtype_name(dt)),
                    f_random, k, O(.mode = mode), x);
            rt_tensor_release(x);
        }
    }
    FOR_FLOAT(dt) { /* 2^20 elements: grid-stride loops */
        struct rng_ctx u = {RNG_UNIFORM, -1, 1, 21, V_NONE}, n = {RNG_NORMAL, 0, 1, 22, V_NONE};
        struct rt_tensor *x = RNDD(dt, 1024, 1024);
        COMPARE(fmt("uniform_ 2^20, %s", rt_dtype_name(dt)), f_random, &u, O(.mode = CMP_EXACT), x);
        COMPARE(fmt("normal_ 2^20, %s", rt_dtype_name(dt)), f_random, &n, O(.mode = CMP_ULP), x);
        rt_tensor_release(x);
    }
    struct rng_ctx u = {RNG_UNIFORM, 0, 1, 1, V_NONE};
    struct rt_tensor *i = RNDD(RT_I64, 3, 4);
    COMPARE("uniform_ refuses i64", f_random, &u, O(.fail = RT_ERR_DTYPE), i);
    rt_tensor_release(i);
}

struct drop_ctx {
    double p;
    uint64_t seed;
};

static enum rt_status f_dropout(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct drop_ctx *k = c;
    struct rt_rng g;
    rt_rng_init(&g, k->seed);
    return rt_dropout(in[0], k->p, true, &g, out);
}

/* The mask is random: on the DUT, the fraction of zeros must fit p and kept elements must be x / (1 - p).
 * The generator is counter-based (random.h: the same numbers on any device), so the CPU gives the same
 * mask and the outputs and gradients are compared as well. */
static void test_dropout(void)
{
    static const double ps[] = {0.3, 0.5, 0.9};
    FOR_FLOAT(dt) {
        for (size_t i = 0; i < COUNT(ps); i++) {
            double p = ps[i];
            struct drop_ctx k = {p, 100 + i};
            struct rt_tensor *x = RND(dt, 0.5, 1.5, 128, 256), *d = copy_to(x, dut), *y = NULL, *yh = NULL;
            if (d && CHECK_OK(f_dropout(IN(d), &k, &y)) && CHECK_OK(rt_to_device(y, RT_CPU, &yh))) {
                int64_t n = rt_tensor_numel(x), zeros = 0, bad = 0;
                double *xv = h_values(x), *yv = h_values(yh), tol = dt == RT_F32 ? TOL_F32 : TOL_F64;
                for (int64_t j = 0; xv && yv && j < n; j++) {
                    if (yv[j] == 0)
                        zeros++;
                    else if (fabs(yv[j] - xv[j] / (1 - p)) > tol * fabs(yv[j]))
                        bad++;
                }
                double frac = (double)zeros / (double)n, sigma = sqrt(p * (1 - p) / (double)n);
                CHECK(fabs(frac - p) < 5 * sigma, "dropout p=%g: %.4f of the elements are zero", p, frac);
                CHECK(bad == 0, "dropout p=%g: %lld kept elements are not x / (1 - p)", p, (long long)bad);
                free(xv);
                free(yv);
            }
            COMPARE(fmt("dropout p=%g, %s", p, rt_dtype_name(dt)), f_dropout, &k, O(.grad = 1), x);
            RELEASE(x, d, y, yh);
        }
        struct drop_ctx all = {1, 5};
        struct rt_tensor *x = RND(dt, -1, 1, 6, 7);
        COMPARE(fmt("dropout p=1, %s", rt_dtype_name(dt)), f_dropout, &all, O(.grad = 1), x);
        rt_tensor_release(x);
    }
}

/* ================================================================== convolution, pooling */

struct conv_ctx {
    int64_t stride[2], padding[2], dilation[2], groups;
    bool bias;
    int view; /* of the input: V_TLAST swaps H and W */
};

static enum rt_status f_conv(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct conv_ctx *k = c;
    struct rt_tensor *x = NULL;
    enum rt_status st = view_as(in[0], k->view, &x);
    if (st == RT_OK)
        st = rt_conv2d(x, in[1], k->bias ? in[2] : NULL, k->stride, k->padding, k->dilation, k->groups, out);
    rt_tensor_release(x);
    return st;
}

static const struct conv_case {
    int64_t n, c, h, w, o, kh, kw;
    struct conv_ctx k;
} conv_cases[] = {
    {2, 3, 5, 6, 4, 3, 3, {{1, 1}, {0, 0}, {1, 1}, 1, true, V_NONE}},
    {2, 3, 5, 6, 4, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1, false, V_NONE}},
    {1, 2, 7, 6, 3, 3, 2, {{2, 3}, {1, 0}, {1, 1}, 1, true, V_NONE}},
    {2, 2, 7, 7, 2, 3, 3, {{1, 1}, {2, 1}, {2, 3}, 1, true, V_NONE}},
    {2, 4, 5, 5, 6, 3, 3, {{1, 2}, {1, 1}, {1, 1}, 2, true, V_NONE}},
    {1, 4, 4, 5, 4, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 4, false, V_NONE}}, /* depthwise 1x1 */
    {3, 6, 6, 4, 3, 2, 2, {{2, 1}, {1, 1}, {1, 1}, 3, true, V_NONE}},
    {2, 3, 6, 5, 4, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1, true, V_TLAST}}, /* input (2,3,5,6) */
    {4, 16, 12, 12, 32, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1, true, V_NONE}},
    {2, 8, 9, 9, 8, 5, 5, {{2, 2}, {2, 2}, {1, 1}, 8, true, V_NONE}}, /* depthwise 5x5 */
};

/* a case's random input, weight and bias in dt (bf16: f32 values rounded) */
static void conv_operands(const struct conv_case *t, enum rt_dtype dt, struct rt_tensor **x, struct rt_tensor **w,
                          struct rt_tensor **b)
{
    enum rt_dtype gen_dt = dt == RT_BF16 ? RT_F32 : dt;
    struct rt_tensor **all[3] = {x, w, b};
    *x = RNDN(gen_dt, 0, 1, t->n, t->c, t->h, t->w);
    *w = RND(gen_dt, -1, 1, t->o, t->c / t->k.groups, t->kh, t->kw);
    *b = RND(gen_dt, -1, 1, t->o);
    for (int i = 0; i < 3 && dt != gen_dt; i++) {
        struct rt_tensor *r = NULL;
        if (*all[i])
            CHECK_OK(rt_to_dtype(*all[i], dt, &r));
        rt_tensor_release(*all[i]);
        *all[i] = r;
    }
}

static void test_conv2d(void)
{
    for (size_t t = 0; t < COUNT(conv_cases); t++) {
        struct conv_ctx k = conv_cases[t].k;
        FOR_FLOAT(dt) {
            struct rt_tensor *x, *w, *b;
            conv_operands(&conv_cases[t], dt, &x, &w, &b);
            COMPARE(fmt("conv2d case %zu, %s", t, rt_dtype_name(dt)), f_conv, &k, O(.grad = k.bias ? 7 : 3), x, w, b);
            RELEASE(x, w, b);
        }
    }
}

/* ================================================================== bf16 products */

struct autocast_ctx {
    op_fn fn;
    void *ctx;
};

/* fn under bf16 autocast: its products take bf16 copies of their f32 operands (retort/bf16.h) */
static enum rt_status f_autocast(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct autocast_ctx *k = c;
    enum rt_dtype prev = RT_F32;
    enum rt_status st = rt_autocast_set(RT_BF16, &prev);
    if (st != RT_OK)
        return st;
    st = k->fn(in, k->ctx, out);
    enum rt_status back = rt_autocast_set(prev, NULL);
    return st != RT_OK ? st : back;
}

/* bf16 products forward and backward, under autocast and from bf16 tensors: the CPU's (oneDNN on its
 * bf16 unit) against the device's (cuBLAS on the tensor cores; convolutions as im2col in bf16 and
 * those products). Both multiply the same bf16 values exactly and accumulate in f32, in different
 * orders, hence 10 x the f32 tolerance. */
static void test_bf16_products(void)
{
    const char *why = NULL;
    if (!rt_bf16_unit(NULL, NULL, &why)) {
        printf("test_cuda: bf16 products: skipped (the CPU reference needs a bf16 unit: %s)\n", why);
        return;
    }
    for (size_t i = 0; i < COUNT(mm_cases); i++) {
        const struct mm_case *m = &mm_cases[i];
        struct autocast_ctx k = {f_matmul, (void *)m};
        struct rt_tensor *a = rndn_shape(RT_F32, m->nda, m->a, 0, 1), *b = rndn_shape(RT_F32, m->ndb, m->b, 0, 1);
        int64_t out_features = m->vb == V_T ? m->b[1] : m->b[0];
        struct rt_tensor *bias = RND(RT_F32, -1, 1, out_features + (m->kind == M_LINEAR_BIAS_SLICE));
        COMPARE(fmt("autocast matmul %s", m->name), f_autocast, &k,
                O(.grad = m->kind == M_LINEAR || m->kind == M_LINEAR_BIAS_SLICE ? 7 : 3, .tol = 10), a, b, bias);
        RELEASE(a, b, bias);
    }
    for (size_t t = 0; t < COUNT(conv_cases); t++) {
        struct conv_ctx ck = conv_cases[t].k;
        struct autocast_ctx k = {f_conv, &ck};
        struct rt_tensor *x, *w, *b;
        conv_operands(&conv_cases[t], RT_F32, &x, &w, &b);
        COMPARE(fmt("autocast conv2d case %zu", t), f_autocast, &k, O(.grad = ck.bias ? 7 : 3, .tol = 10), x, w, b);
        RELEASE(x, w, b);
    }
    /* two chunks of one image each (a column buffer over RT_CONV_CHUNK_BYTES): dW accumulates over them */
    static const struct conv_case big = {2, 64, 128, 128, 2, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1, true, V_NONE}};
    struct conv_ctx bk = big.k;
    struct autocast_ctx k2 = {f_conv, &bk};
    struct rt_tensor *bx, *bw, *bb;
    conv_operands(&big, RT_F32, &bx, &bw, &bb);
    COMPARE("autocast conv2d, (2,64,128,128) in two chunks", f_autocast, &k2, O(.grad = 7, .tol = 10), bx, bw, bb);
    RELEASE(bx, bw, bb);
    /* a bf16 tensor times an f32 one, no autocast: the same kernel, an f32 result */
    struct rt_tensor *a = RND(RT_BF16, -2, 2, 33, 65), *b = RNDN(RT_F32, 0, 1, 65, 17);
    COMPARE("bf16 (33,65) x f32 (65,17)", f_matmul, (void *)&mm_cases[0], O(.tol = 10), a, b);
    RELEASE(a, b);
    struct rt_tensor *x, *w, *bias;
    conv_operands(&conv_cases[8], RT_BF16, &x, &w, &bias);
    struct conv_ctx ck = conv_cases[8].k;
    COMPARE("conv2d of bf16 input, weight and bias", f_conv, &ck, O(.tol = 10), x, w, bias);
    RELEASE(x, w, bias);
}

enum { P_MAX, P_AVG, P_ADAPTIVE };
struct pool_ctx {
    int kind;
    int64_t k[2], s[2], p[2];
    bool cip;
    int64_t oh, ow;
};

static enum rt_status f_pool(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct pool_ctx *k = c;
    switch (k->kind) {
    case P_MAX: return rt_max_pool2d(in[0], k->k, k->s, k->p, &out[0], &out[1]);
    case P_AVG: return rt_avg_pool2d(in[0], k->k, k->s, k->p, k->cip, &out[0]);
    default: return rt_adaptive_avg_pool2d(in[0], k->oh, k->ow, &out[0]);
    }
}

static void test_pool(void)
{
    static const int64_t geoms[][6] = {
        {3, 3, 2, 2, 1, 1}, /* overlapping, padded */
        {2, 3, 1, 2, 1, 0}, {2, 2, 2, 2, 0, 0}, {3, 2, 1, 1, 1, 1},
        {3, 3, 3, 3, 0, 0}, /* stride == kernel with a remainder */
        {1, 1, 1, 1, 0, 0}, {5, 5, 1, 1, 2, 2},
    };
    FOR_FLOAT(dt) {
        struct rt_tensor *x = RND(dt, -2, 2, 2, 3, 7, 8), *q = RNDQ(dt, -2, 3, 2, 3, 7, 8);
        for (size_t g = 0; g < COUNT(geoms); g++) {
            const int64_t *G = geoms[g];
            struct pool_ctx mp = {P_MAX, {G[0], G[1]}, {G[2], G[3]}, {G[4], G[5]}, false, 0, 0};
            COMPARE(fmt("max_pool2d k(%lld,%lld) s(%lld,%lld) p(%lld,%lld), %s", (long long)G[0], (long long)G[1],
                        (long long)G[2], (long long)G[3], (long long)G[4], (long long)G[5], rt_dtype_name(dt)),
                    f_pool, &mp, O(.grad = 1), x);
            COMPARE(fmt("max_pool2d geometry %zu with ties, %s", g, rt_dtype_name(dt)), f_pool, &mp, O(.grad = 1), q);
            for (int cip = 0; cip < 2; cip++) {
                struct pool_ctx ap = {P_AVG, {G[0], G[1]}, {G[2], G[3]}, {G[4], G[5]}, cip, 0, 0};
                COMPARE(fmt("avg_pool2d geometry %zu count_include_pad=%d, %s", g, cip, rt_dtype_name(dt)), f_pool,
                        &ap, O(.grad = 1), x);
            }
        }
        static const int64_t sizes[][2] = {{3, 2}, {1, 1}, {4, 5}, {7, 8}, {9, 10}, {2, 7}};
        for (size_t s = 0; s < COUNT(sizes); s++) {
            struct pool_ctx ad = {P_ADAPTIVE, {0, 0}, {0, 0}, {0, 0}, false, sizes[s][0], sizes[s][1]};
            COMPARE(fmt("adaptive_avg_pool2d (7,8) -> (%lld,%lld), %s", (long long)sizes[s][0], (long long)sizes[s][1],
                        rt_dtype_name(dt)),
                    f_pool, &ad, O(.grad = 1), x);
        }
        struct rt_tensor *s = specials(dt), *s4 = NULL;
        struct pool_ctx mp = {P_MAX, {2, 2}, {2, 2}, {0, 0}, false, 0, 0};
        if (CHECK_OK(rt_reshape(s, 4, H_SHAPE(1, 2, 4, 4), &s4)))
            COMPARE(fmt("max_pool2d of edge values (NaN wins), %s", rt_dtype_name(dt)), f_pool, &mp, O(0), s4);
        RELEASE(x, q, s, s4);
    }
}

/* ================================================================== batch norm */

struct bn_ctx {
    bool training, running, weight, bias;
};

static enum rt_status f_bn(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct bn_ctx *k = c;
    enum rt_status st = rt_batch_norm(in[0], k->running ? in[1] : NULL, k->running ? in[2] : NULL,
                                      k->weight ? in[3] : NULL, k->bias ? in[4] : NULL, k->training, 0.1, 1e-5, out);
    /* the running statistics are updated in place in training */
    return inputs_as_outputs(st, in, out, 1, k->running ? 2 : 0, (const int[]){1, 2});
}

static void test_batch_norm(void)
{
    static const struct bn_ctx cases[] = {
        {true, true, true, true}, {true, false, false, false}, {true, true, true, false},
        {true, false, false, true}, {false, true, true, true}, {false, true, false, false},
    };
    static const int64_t shapes[][4] = {{8, 3, 1, 1}, {4, 3, 5, 2}, {64, 16, 4, 4}};
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct bn_ctx k = cases[i];
        FOR_FLOAT(dt) {
            for (size_t s = 0; s < COUNT(shapes); s++) {
                int nd = s == 0 ? 2 : 4;
                int64_t C = shapes[s][1];
                struct rt_tensor *x = rndn_shape(dt, nd, shapes[s], 0.5, 2), *rm = RND(dt, -0.5, 0.5, C);
                struct rt_tensor *rv = RND(dt, 0.5, 2, C), *w = RND(dt, 0.5, 1.5, C), *b = RND(dt, -1, 1, C);
                unsigned grad = 1u | (k.weight ? 8u : 0) | (k.bias ? 16u : 0);
                COMPARE(fmt("batch_norm %s%s%s%s, %s %s", k.training ? "training" : "eval",
                            k.running ? " running stats" : "", k.weight ? " weight" : "", k.bias ? " bias" : "",
                            rt_dtype_name(dt), nd == 2 ? "(N,C)" : "(N,C,H,W)"),
                        f_bn, &k, O(.grad = grad), x, rm, rv, w, b);
                RELEASE(x, rm, rv, w, b);
            }
        }
    }
}

/* ================================================================== losses */

struct ce_ctx {
    bool weights;
    int64_t ignore;
    double smoothing;
    enum rt_reduction red;
    int kind; /* 0 cross entropy, 1 nll of log_softmax, 2 mse */
};

static enum rt_status f_loss(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct ce_ctx *k = c;
    struct rt_tensor *lp = NULL;
    enum rt_status st;
    switch (k->kind) {
    case 0:
        return rt_cross_entropy(in[0], in[1], k->weights ? in[2] : NULL, k->ignore, k->smoothing, k->red, out);
    case 1:
        st = rt_log_softmax(in[0], 1, 1, &lp);
        if (st == RT_OK)
            st = rt_nll_loss(lp, in[1], k->weights ? in[2] : NULL, k->ignore, k->red, out);
        rt_tensor_release(lp);
        return st;
    default: return rt_mse_loss(in[0], in[1], k->red, out);
    }
}

static void test_cross_entropy(void)
{
    static const char *const reds[] = {"mean", "sum", "none"};
    static const double lab[8] = {0, 2, 4, 2, 1, 3, 2, 0}, lab100[8] = {0, -100, 4, -100, 1, 3, 2, 0},
                        all2[8] = {2, 2, 2, 2, 2, 2, 2, 2};
    static const struct {
        const char *name;
        bool weights;
        int64_t ignore;
        double smoothing;
        const double *labels;
    } cases[] = {
        {"plain", false, RT_NO_IGNORE, 0, lab},
        {"class weights", true, RT_NO_IGNORE, 0, lab},
        {"ignore 2", false, 2, 0, lab},
        {"ignore -100", false, -100, 0, lab100},
        {"smoothing 0.1", false, RT_NO_IGNORE, 0.1, lab},
        {"weights, ignore 2, smoothing 0.2", true, 2, 0.2, lab},
        {"smoothing 1", false, RT_NO_IGNORE, 1, lab},
        {"every sample ignored", true, 2, 0.1, all2},
    };
    for (int red = RT_REDUCE_MEAN; red <= RT_REDUCE_NONE; red++)
        for (size_t i = 0; i < COUNT(cases); i++)
            FOR_FLOAT(dt) {
                struct rt_tensor *x = RND(dt, -3, 3, 8, 5), *y = h_tensor(RT_I64, 1, H_SHAPE(8), cases[i].labels);
                struct rt_tensor *w = RND(dt, 0.2, 2, 5);
                for (int kind = 0; kind < 2; kind++) {
                    if (kind == 1 && cases[i].smoothing > 0)
                        continue;
                    struct ce_ctx k = {cases[i].weights, cases[i].ignore, cases[i].smoothing, (enum rt_reduction)red,
                                       kind};
                    COMPARE(fmt("%s %s, %s, %s", kind ? "nll_loss(log_softmax)" : "cross_entropy", cases[i].name,
                                reds[red], rt_dtype_name(dt)),
                            f_loss, &k, O(.grad = 1), x, y, w);
                }
                RELEASE(x, y, w);
            }
    FOR_FLOAT(dt) { /* 1000 classes: a block per row */
        struct rt_tensor *x = RND(dt, -5, 5, 16, 1000), *y = RND(RT_I64, 0, 1000, 16), *w = RND(dt, 0.2, 2, 1000);
        struct ce_ctx k = {true, RT_NO_IGNORE, 0.1, RT_REDUCE_MEAN, 0};
        COMPARE(fmt("cross_entropy (16,1000) weights smoothing 0.1, %s", rt_dtype_name(dt)), f_loss, &k, O(.grad = 1),
                x, y, w);
        for (int red = RT_REDUCE_MEAN; red <= RT_REDUCE_NONE; red++) {
            struct ce_ctx m = {false, RT_NO_IGNORE, 0, (enum rt_reduction)red, 2};
            struct rt_tensor *a = RND(dt, -2, 2, 6, 7), *b = RND(dt, -2, 2, 6, 7);
            COMPARE(fmt("mse_loss %s, %s", reds[red], rt_dtype_name(dt)), f_loss, &m, O(.grad = 3), a, b);
            RELEASE(a, b);
        }
        RELEASE(x, y, w);
    }
}

/* ------------------------------------------------------------------ knowledge distillation */

struct kd_ctx {
    struct rt_kd_opts o;
    bool labels, weights;
};

/* outputs: the loss, and the terms (kl, ce, kept) as a tensor of the logits' dtype on their device */
static enum rt_status f_kd(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct kd_ctx *k = c;
    struct rt_kd_terms terms = {0};
    enum rt_status st;
    TRY(rt_kd_loss(in[0], in[1], k->labels ? in[2] : NULL, k->weights ? in[3] : NULL, &k->o, &out[0], &terms));
    TRY(rt_stack(4, (struct rt_tensor *[]){terms.kl, terms.ce, terms.kept, terms.kl_scaled}, 0, &out[1]));
done:
    RELEASE(terms.kl, terms.ce, terms.kept, terms.kl_scaled);
    return st;
}

/* softmax(t / T) rows with one exact zero (0 log 0 = 0) */
static struct rt_tensor *teacher_probs(struct rt_tensor *logits, double T)
{
    struct rt_tensor *p = NULL, *r = NULL;
    if (!logits || !CHECK_OK(rt_softmax(logits, 1, T, &p)))
        return NULL;
    double *v = h_values(p);
    if (v) {
        v[1] += v[0];
        v[0] = 0;
        r = h_tensor(p->dtype, 2, p->shape, v);
    }
    free(v);
    rt_tensor_release(p);
    return r;
}

static void test_kd_loss(void)
{
    static const double lab[6] = {0, 2, 4, 2, 1, 3}, all3[6] = {3, 3, 3, 3, 3, 3};
    static const struct {
        double T, alpha;
        int64_t ignore;
        bool probs, labels, weights;
        const double *lab;
    } cases[] = {
        {4, 0.9, RT_NO_IGNORE, false, true, false, lab},  {1, 0.5, RT_NO_IGNORE, false, true, false, lab},
        {20, 1.0, RT_NO_IGNORE, false, false, false, lab}, {3, 0.7, 2, false, true, false, lab},
        {4, 0.9, RT_NO_IGNORE, true, true, false, lab},   {2, 0.6, 1, false, true, true, lab},
        {5, 1.0, RT_NO_IGNORE, true, false, true, lab},   {0.5, 0.3, 2, true, true, true, lab},
        {2, 0.5, 3, false, true, false, all3}, /* every row ignored: NaN */
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct kd_ctx k = {{cases[i].T, cases[i].alpha, cases[i].ignore, cases[i].probs}, cases[i].labels,
                           cases[i].weights};
        FOR_FLOAT(dt) {
            struct rt_tensor *s = RND(dt, -3, 3, 6, 5), *tl = RND(dt, -3, 3, 6, 5);
            struct rt_tensor *t = cases[i].probs ? teacher_probs(tl, cases[i].T) : (rt_tensor_retain(tl), tl);
            struct rt_tensor *y = h_tensor(RT_I64, 1, H_SHAPE(6), cases[i].lab), *w = RND(dt, 0.2, 2, 6);
            COMPARE(fmt("kd_loss T=%g alpha=%g ignore=%lld%s%s%s, %s", cases[i].T, cases[i].alpha,
                        (long long)(cases[i].ignore == RT_NO_IGNORE ? -1 : cases[i].ignore),
                        cases[i].probs ? " teacher probs" : " teacher logits", cases[i].labels ? " labels" : "",
                        cases[i].weights ? " weights" : "", rt_dtype_name(dt)),
                    f_kd, &k, O(.grad = 1), s, t, y, w);
            RELEASE(s, tl, t, y, w);
        }
    }
    FOR_FLOAT(dt) { /* 1000 classes, extreme logits */
        struct kd_ctx k = {{4, 0.9, RT_NO_IGNORE, false}, true, true}, k1 = {{1, 1, RT_NO_IGNORE, false}, false, false};
        struct rt_tensor *s = RND(dt, -8, 8, 8, 1000), *t = RND(dt, -8, 8, 8, 1000), *y = RND(RT_I64, 0, 1000, 8);
        struct rt_tensor *w = RND(dt, 0.2, 2, 8), *se = RND(dt, -1e4, 1e4, 4, 6), *te = RND(dt, -1e4, 1e4, 4, 6);
        COMPARE(fmt("kd_loss (8,1000), %s", rt_dtype_name(dt)), f_kd, &k, O(.grad = 1), s, t, y, w);
        COMPARE(fmt("kd_loss logits +-1e4, %s", rt_dtype_name(dt)), f_kd, &k1, O(.grad = 1), se, te);
        RELEASE(s, t, y, w, se, te);
    }
}

/* ------------------------------------------------------------------ attention maps, pairwise */

struct att_ctx {
    double p;
    int view;
};

static enum rt_status f_attention(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct att_ctx *k = c;
    struct rt_tensor *f = NULL;
    enum rt_status st = view_as(in[0], k->view, &f);
    if (st == RT_OK)
        st = rt_attention_map(f, k->p, out);
    rt_tensor_release(f);
    return st;
}

static void test_attention_map(void)
{
    static const struct {
        double p, lo;
        int view;
    } cases[] = {{2, -1, V_NONE}, {1, -1, V_NONE}, {3, -1, V_NONE}, {0.5, 0.05, V_NONE},
                 {2.5, 0.05, V_NONE}, {2, -1, V_TLAST}, {4, -1, V_NONE}};
    FOR_FLOAT(dt) {
        for (size_t i = 0; i < COUNT(cases); i++) {
            struct att_ctx k = {cases[i].p, cases[i].view};
            struct rt_tensor *f = RND(dt, cases[i].lo, 1, 3, 4, 5, 6);
            COMPARE(fmt("attention_map p=%g%s, %s", cases[i].p, cases[i].view ? " (transposed)" : "",
                        rt_dtype_name(dt)),
                    f_attention, &k, O(.grad = 1), f);
            rt_tensor_release(f);
        }
        /* a sample of zeros: its norm is clamped to 1e-12 */
        struct rt_tensor *f = RND(dt, 0.05, 1, 3, 4, 5, 6), *z = NULL;
        double *v = f ? h_values(f) : NULL;
        if (v) {
            for (int j = 120; j < 240; j++)
                v[j] = 0;
            z = h_tensor(dt, 4, f->shape, v);
        }
        struct att_ctx k1 = {1, V_NONE}, k2 = {2, V_NONE};
        COMPARE(fmt("attention_map p=1 with a zero sample, %s", rt_dtype_name(dt)), f_attention, &k1, O(.grad = 1), z);
        COMPARE(fmt("attention_map p=2 with a zero sample, %s", rt_dtype_name(dt)), f_attention, &k2, O(.grad = 1), z);
        free(v);
        struct rt_tensor *big = RND(dt, -1, 1, 8, 64, 16, 16);
        COMPARE(fmt("attention_map p=2 (8,64,16,16), %s", rt_dtype_name(dt)), f_attention, &k2, O(.grad = 1), big);
        RELEASE(f, z, big);
    }
}

struct pair_ctx {
    enum rt_pairwise kind;
    double eps;
};

static enum rt_status f_pairwise(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct pair_ctx *k = c;
    return rt_pairwise(in[0], k->kind, k->eps, out);
}

static void test_pairwise(void)
{
    static const char *const names[] = {"gram", "cosine", "distance"};
    FOR_FLOAT(dt) {
        for (int kind = RT_PAIR_GRAM; kind <= RT_PAIR_DISTANCE; kind++) {
            struct pair_ctx k = {(enum rt_pairwise)kind, 1e-8};
            struct rt_tensor *x = RND(dt, -1, 1, 6, 5), *big = RND(dt, -1, 1, 64, 100);
            COMPARE(fmt("pairwise %s (6,5), %s", names[kind], rt_dtype_name(dt)), f_pairwise, &k, O(.grad = 1), x);
            COMPARE(fmt("pairwise %s (64,100), %s", names[kind], rt_dtype_name(dt)), f_pairwise, &k, O(.grad = 1),
                    big);
            RELEASE(x, big);
        }
    }
}

/* ================================================================== optimizer */

struct sgd_ctx {
    struct rt_sgd_opts o;
};

/* a first step (the buffer starts as d) and a second one through the buffer */
static enum rt_status f_sgd(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct rt_sgd_opts o = ((struct sgd_ctx *)c)->o;
    o.first = true;
    enum rt_status st = rt_sgd_update_(in[0], in[1], in[2], &o);
    o.first = false;
    if (st == RT_OK)
        st = rt_sgd_update_(in[0], in[1], in[2], &o);
    return inputs_as_outputs(st, in, out, 0, 2, (const int[]){0, 2}); /* parameters, buffers */
}

/* many parameters in one step, as views of three long tensors: sizes around the GPU's chunk (8192)
 * and one beyond a launch's 256 chunks, more parameters than one launch lists (24), an empty one,
 * mixed first steps; then a second step through the buffers */
static const int64_t many_sizes[] = {1, 8191, 8192, 8193, 0, 3 << 20, 5, 65, 4097, 16385, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                     10, 11, 12, 13, 14, 15, 16, 300, 70000, 2, 1};

static enum rt_status f_sgd_many(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    enum { K = COUNT(many_sizes) };
    struct rt_sgd_opts o = ((struct sgd_ctx *)c)->o;
    struct rt_tensor *p[K] = {0}, *g[K] = {0}, *buf[K] = {0};
    bool first[K];
    enum rt_status st = RT_OK;
    int64_t at = 0;
    for (int j = 0; j < K && st == RT_OK; j++) {
        st = rt_narrow(in[0], 0, at, many_sizes[j], &p[j]);
        if (st == RT_OK)
            st = rt_narrow(in[1], 0, at, many_sizes[j], &g[j]);
        if (st == RT_OK)
            st = rt_narrow(in[2], 0, at, many_sizes[j], &buf[j]);
        first[j] = j % 3 == 0;
        at += many_sizes[j];
    }
    if (st == RT_OK)
        st = rt_sgd_update_many_(K, p, g, buf, first, &o);
    o.first = false;
    if (st == RT_OK)
        st = rt_sgd_update_many_(K, p, g, buf, NULL, &o);
    for (int j = 0; j < K; j++)
        RELEASE(p[j], g[j], buf[j]);
    return inputs_as_outputs(st, in, out, 0, 2, (const int[]){0, 2}); /* parameters, buffers */
}

struct adam_ctx {
    struct rt_adam_opts o;
};

/* Adam over the same many views: two steps (t = 1, 2 for most, t = 5, 6 for every fourth), then the
 * parameters and both moments */
static enum rt_status f_adam_many(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    enum { K = COUNT(many_sizes) };
    const struct rt_adam_opts *o = &((struct adam_ctx *)c)->o;
    struct rt_tensor *t[5][K] = {{0}}; /* p, g, m, v, vmax */
    int64_t step[K];
    enum rt_status st = RT_OK;
    int64_t at = 0;
    for (int j = 0; j < K; j++) {
        for (int a = 0; a < 5 && st == RT_OK; a++)
            st = rt_narrow(in[a], 0, at, many_sizes[j], &t[a][j]);
        step[j] = j % 4 == 0 ? 5 : 1;
        at += many_sizes[j];
    }
    for (int s = 0; s < 2 && st == RT_OK; s++) {
        st = rt_adam_update_many_(K, t[0], t[1], t[2], t[3], t[4], step, o);
        for (int j = 0; j < K; j++)
            step[j]++;
    }
    for (int a = 0; a < 5; a++)
        for (int j = 0; j < K; j++)
            rt_tensor_release(t[a][j]);
    return inputs_as_outputs(st, in, out, 0, 3, (const int[]){0, 2, 3}); /* p, m, v */
}

static void test_sgd(void)
{
    static const struct rt_sgd_opts cases[] = {
        {0.1, 0, 0, 0, false, false},      {0.1, 0, 0, 0.01, false, false},   {0.05, 0.9, 0, 0, false, false},
        {0.05, 0.9, 0.1, 5e-4, false, false}, {0.05, 0.9, 0, 1e-4, true, false}, {0.2, 0.5, 0.5, 0, true, false},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct sgd_ctx k = {cases[i]};
        FOR_FLOAT(dt) {
            struct rt_tensor *p = RND(dt, -1, 1, 33, 65), *g = RND(dt, -1, 1, 33, 65), *buf = RND(dt, -1, 1, 33, 65);
            COMPARE(fmt("sgd lr %g momentum %g dampening %g decay %g%s, %s", k.o.lr, k.o.momentum, k.o.dampening,
                        k.o.weight_decay, k.o.nesterov ? " nesterov" : "", rt_dtype_name(dt)),
                    f_sgd, &k, O(0), p, g, buf);
            RELEASE(p, g, buf);
        }
    }
    int64_t total = 0;
    for (size_t j = 0; j < COUNT(many_sizes); j++)
        total += many_sizes[j];
    for (size_t i = 0; i < COUNT(cases); i += 2) {
        struct sgd_ctx k = {cases[i]};
        FOR_FLOAT(dt) {
            struct rt_tensor *p = RND(dt, -1, 1, total), *g = RND(dt, -1, 1, total), *buf = RND(dt, -1, 1, total);
            COMPARE(fmt("sgd of %zu parameters at once, momentum %g%s, %s", COUNT(many_sizes), k.o.momentum,
                        k.o.nesterov ? " nesterov" : "", rt_dtype_name(dt)),
                    f_sgd_many, &k, O(0), p, g, buf);
            RELEASE(p, g, buf);
        }
    }
    static const struct rt_adam_opts adam_cases[] = {
        {1e-3, 0.9, 0.999, 1e-8, 0, false, false},
        {0.05, 0.8, 0.99, 1e-6, 0.1, true, false},
        {0.02, 0.9, 0.999, 1e-8, 0.3, true, true},
    };
    for (size_t i = 0; i < COUNT(adam_cases); i++) {
        struct adam_ctx k = {adam_cases[i]};
        FOR_FLOAT(dt) {
            struct rt_tensor *p = RND(dt, -1, 1, total), *g = RND(dt, -1, 1, total), *m = RND(dt, -1, 1, total),
                             *v = RND(dt, 0, 1, total), *vmax = RND(dt, 0, 1, total);
            COMPARE(fmt("adam%s of %zu parameters at once, decay %g%s, %s", k.o.decoupled ? "w" : "",
                        COUNT(many_sizes), k.o.weight_decay, k.o.amsgrad ? " amsgrad" : "", rt_dtype_name(dt)),
                    f_adam_many, &k, O(0), p, g, m, v, vmax);
            RELEASE(p, g, m, v, vmax);
        }
    }
}

/* ================================================================== devices */

static void check_mixed(const char *what, enum rt_status st)
{
    const char *msg = rt_error_msg();
    if (CHECK(st == RT_ERR_DEVICE, "%s returned %s (\"%s\"), expected RT_ERR_DEVICE", what, rt_status_name(st), msg))
        CHECK(strstr(msg, "cpu") && strstr(msg, rt_device_name(dut)), "%s: message \"%s\" does not name both devices",
              what, msg);
}
#define MIXED(call)                                                                                               \
    do {                                                                                                          \
        r = NULL;                                                                                                 \
        check_mixed(#call, call);                                                                                 \
        rt_tensor_release(r);                                                                                     \
    } while (0)

/* an op mixing a CPU and a DUT tensor fails with RT_ERR_DEVICE and a message naming both devices */
static void test_mixed_devices(void)
{
    struct rt_tensor *c = RND(RT_F32, -1, 1, 4, 5), *d = copy_to(c, dut), *c55 = RND(RT_F32, -1, 1, 5, 5);
    struct rt_tensor *ic = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(1, 3)), *id = copy_to(ic, dut);
    struct rt_tensor *gc = RND(RT_I64, 0, 4, 4, 2), *gd = copy_to(gc, dut), *src = RND(RT_F32, -1, 1, 4, 2);
    struct rt_tensor *lab = h_tensor(RT_I64, 1, H_SHAPE(4), H_VALS(0, 1, 2, 3)), *cond = NULL;
    struct rt_tensor *x4 = RND(RT_F32, -1, 1, 2, 3, 5, 5), *x4d = copy_to(x4, dut);
    struct rt_tensor *w4 = RND(RT_F32, -1, 1, 2, 3, 3, 3);
    struct rt_tensor *rc = RND(RT_F32, 0.5, 1, 3), *r = NULL;
    REQUIRE(c && d && ic && id && gd && lab && x4d && rc, "inputs");
    REQUIRE_OK(rt_compare_scalar(c, 0, RT_CMP_GT, &cond));
    struct rt_kd_opts ko = {2, 1, RT_NO_IGNORE, false};
    struct rt_sgd_opts so = {0.1, 0, 0, 0, false, true};
    const int64_t one[2] = {1, 1}, zero[2] = {0, 0};
    MIXED(rt_add(c, d, &r));
    MIXED(rt_mul(d, c, &r));
    MIXED(rt_compare(d, c, RT_CMP_LT, &r));
    MIXED(rt_matmul(d, c55, &r));
    MIXED(rt_linear(d, c55, NULL, &r));
    MIXED(rt_where(cond, d, d, &r));
    /* copy_ is the one op that crosses devices on purpose (loading CPU weights into a GPU model) */
    if (CHECK_OK(rt_copy_(d, c))) {
        struct rt_tensor *back = NULL;
        if (CHECK_OK(rt_to_device(d, RT_CPU, &back)))
            CHECK_TENSOR_EQUAL(back, c);
        rt_tensor_release(back);
    }
    MIXED(rt_add_(d, c, 0.5));
    MIXED(rt_index_select(d, 1, ic, &r));
    MIXED(rt_gather(d, 1, gc, &r));
    MIXED(rt_scatter_add(d, 1, gd, src, &r));
    MIXED(rt_cat(2, IN(d, c), 0, &r));
    MIXED(rt_cross_entropy(d, lab, NULL, RT_NO_IGNORE, 0, RT_REDUCE_MEAN, &r));
    MIXED(rt_kd_loss(d, c, NULL, NULL, &ko, &r, NULL));
    MIXED(rt_mse_loss(d, c, RT_REDUCE_MEAN, &r));
    MIXED(rt_conv2d(x4d, w4, NULL, one, zero, one, 1, &r));
    MIXED(rt_batch_norm(x4d, rc, rc, NULL, NULL, true, 0.1, 1e-5, &r));
    MIXED(rt_sgd_update_(d, c, NULL, &so));
    RELEASE(c, d, c55, ic, id, gc, gd, src, lab, cond, x4, x4d, w4, rc);
}

/* A bad label or index is RT_ERR_ARG with the CPU's message: at the op on the CPU, the emulated
 * device and under sync debug; on a GPU otherwise at the next wait (the check is a kernel), with a
 * note saying so. The record is then cleared and the device works on. */
static void test_bad_index_reports(void)
{
    struct rt_tensor *xc = RND(RT_F32, -1, 1, 4, 3), *x = copy_to(xc, dut);
    struct rt_tensor *labc = h_tensor(RT_I64, 1, H_SHAPE(4), H_VALS(0, 7, 2, 1)), *lab = copy_to(labc, dut);
    struct rt_tensor *ixc = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(1, -2)), *ix = copy_to(ixc, dut);
    struct rt_tensor *goodc = h_tensor(RT_I64, 1, H_SHAPE(4), H_VALS(0, 2, 2, 1)), *good = copy_to(goodc, dut);
    REQUIRE(x && lab && ix && good, "inputs");
    bool was = rt_device_sync_debug();
    /* the class losses check their labels in their own kernels: each reports as index_select does */
    static const char *const want[4] = {"rt_cross_entropy: label 7 at position 1 out of range [0, 2]",
                                        "rt_index_select: index -2 at position 1 out of range [0, 2]",
                                        "rt_kd_loss: label 7 at position 1 out of range [0, 2]",
                                        "rt_nll_loss: label 7 at position 1 out of range [0, 2]"};
    const struct rt_kd_opts kd = {4, 0.5, RT_NO_IGNORE, false};
    for (int debug = 0; debug < 2; debug++) {
        rt_device_set_sync_debug(debug);
        for (int which = 0; which < 4; which++) {
            struct rt_tensor *r = NULL;
            enum rt_status st = which == 0   ? rt_cross_entropy(x, lab, NULL, RT_NO_IGNORE, 0, RT_REDUCE_MEAN, &r)
                                : which == 1 ? rt_index_select(x, 1, ix, &r)
                                : which == 2 ? rt_kd_loss(x, x, lab, NULL, &kd, &r, NULL)
                                             : rt_nll_loss(x, lab, NULL, RT_NO_IGNORE, RT_REDUCE_SUM, &r);
            if (st == RT_OK) {
                CHECK(!emulated && !debug, "%s: no error at the op (sync debug %d)", want[which], debug);
                rt_tensor_release(r);
                CHECK_STATUS(rt_device_synchronize(dut), RT_ERR_ARG, want[which]);
                CHECK(strstr(rt_error_msg(), "found on the GPU after the op returned") != NULL, "late note in: %s",
                      rt_error_msg());
            } else {
                CHECK_STATUS(st, RT_ERR_ARG, want[which]);
            }
            CHECK_OK(rt_device_synchronize(dut)); /* reported once */
        }
    }
    rt_device_set_sync_debug(was);
    struct ce_ctx k = {false, RT_NO_IGNORE, 0, RT_REDUCE_MEAN, 0};
    struct rt_tensor *w = RND(RT_F32, 0.2, 2, 3);
    COMPARE("cross_entropy after bad labels", f_loss, &k, O(.grad = 1), xc, goodc, w);
    RELEASE(xc, x, labc, lab, ixc, ix, goodc, good, w);
}

/* KD refuses a NaN or an infinity in either input, naming the tensor and its row, as the CPU does: at
 * the op there, at the next wait on a GPU (its kernel finds it); then the device works on. */
static void test_kd_non_finite(void)
{
    struct rt_tensor *sc = RND(RT_F32, -1, 1, 4, 3), *tc = RND(RT_F32, -1, 1, 4, 3);
    REQUIRE(sc && tc, "inputs");
    const struct rt_kd_opts kd = {4, 1, RT_NO_IGNORE, false}; /* soft term only: no labels needed */
    static const char *const want[2] = {
        "rt_kd_loss: the teacher's logits (argument 2) hold a non-finite value (NaN or infinity) in row 3",
        "rt_kd_loss: the student's logits (argument 1) hold a non-finite value (NaN or infinity) in row 2"};
    for (int which = 0; which < 2; which++) {
        struct rt_tensor *s2 = NULL, *t2 = NULL;
        REQUIRE_OK(rt_clone(sc, &s2));
        REQUIRE_OK(rt_clone(tc, &t2));
        if (which == 0)
            ((float *)rt_tensor_data(t2))[2 * 3 + 1] = NAN;
        else
            ((float *)rt_tensor_data(s2))[1 * 3 + 2] = -INFINITY;
        struct rt_tensor *s = copy_to(s2, dut), *t = copy_to(t2, dut), *r = NULL;
        REQUIRE(s && t, "copies");
        enum rt_status st = rt_kd_loss(s, t, NULL, NULL, &kd, &r, NULL);
        if (st == RT_OK) {
            CHECK(!emulated && !rt_device_sync_debug(), "%s: no error at the op", want[which]);
            rt_tensor_release(r);
            CHECK_STATUS(rt_device_synchronize(dut), RT_ERR_ARG, want[which]);
        } else {
            CHECK_STATUS(st, RT_ERR_ARG, want[which]);
        }
        CHECK_OK(rt_device_synchronize(dut)); /* reported once */
        RELEASE(s2, t2, s, t);
    }
    RELEASE(sc, tc);
}

/* an allocation far larger than the device fails with RT_ERR_OOM, and the process goes on */
static void test_out_of_memory(void)
{
#if defined(__SANITIZE_ADDRESS__)
    if (emulated) {
        h_note("AddressSanitizer aborts on huge host allocations; skipped on the emulated device");
        return;
    }
#endif
    struct rt_device_memory m0, m1;
    rt_device_memory(dut, &m0);
    static const int64_t sizes[] = {(int64_t)1 << 50, (int64_t)1 << 38};
    for (size_t i = 0; i < COUNT(sizes); i++) {
        if (emulated && i > 0) /* 256 GiB may well fit in host memory with overcommit */
            break;
        struct rt_tensor *t = NULL;
        CHECK_STATUS(rt_tensor_empty(RT_U8, dut, 1, &sizes[i], &t), RT_ERR_OOM, "");
        CHECK(t == NULL, "no tensor on failure");
        rt_tensor_release(t);
    }
    rt_device_memory(dut, &m1);
    CHECK(m1.in_use == m0.in_use, "in use %zu after the failed allocations, %zu before", m1.in_use, m0.in_use);
    CHECK_OK(rt_device_synchronize(dut));
    /* ordinary work still runs */
    FOR_FLOAT(dt) {
        struct rt_tensor *a = RND(dt, -1, 1, 64, 32), *b = RND(dt, -1, 1, 32, 48);
        COMPARE(fmt("matmul after out-of-memory, %s", rt_dtype_name(dt)), f_matmul, (void *)&mm_cases[0],
                O(.grad = 3), a, b, a);
        RELEASE(a, b);
    }
}

/* rt_device_memory: in_use returns to its start value once the tensors are released */
static void test_device_memory(void)
{
    struct rt_device_memory m0, m1, m2, m3;
    rt_device_memory(dut, &m0);
    rt_device_reset_peak(dut);
    struct rt_tensor *x = RND(RT_F32, -1, 1, 256, 300), *d = copy_to(x, dut), *y = NULL, *s = NULL;
    REQUIRE(d, "copy");
    REQUIRE_OK(rt_requires_grad_(d, true));
    if (CHECK_OK(rt_tanh(d, &y)) && CHECK_OK(rt_sum_all(y, &s)))
        CHECK_OK(rt_backward(s, NULL, false));
    rt_device_memory(dut, &m1);
    size_t bytes = 256 * 300 * sizeof(float);
    CHECK(m1.in_use >= m0.in_use + 3 * bytes, "in use %zu, at start %zu: x, tanh(x) and the gradient live",
          m1.in_use, m0.in_use);
    CHECK(m1.peak_in_use >= m1.in_use, "peak %zu < in use %zu", m1.peak_in_use, m1.in_use);
    if (!emulated) /* the emulated device's blocks are the CPU cache's, reported there */
        CHECK(m1.peak_reserved >= m1.in_use, "peak reserved %zu < in use %zu", m1.peak_reserved, m1.in_use);
    RELEASE(x, d, y, s);
    rt_device_memory(dut, &m2);
    CHECK(m2.in_use == m0.in_use, "in use %zu after releasing everything, %zu at start", m2.in_use, m0.in_use);
    CHECK(m2.peak_in_use >= m1.in_use, "the peak %zu forgot %zu", m2.peak_in_use, m1.in_use);
    rt_device_empty_cache(dut);
    rt_device_memory(dut, &m3);
    CHECK(m3.cached == 0, "%zu bytes still cached after rt_device_empty_cache", m3.cached);
    CHECK(m3.in_use == m0.in_use, "in use %zu after emptying the cache, %zu at start", m3.in_use, m0.in_use);
}

/* rt_backward's gradient must be on the root's device. Today rt_backward does not check: a leaf root
 * takes a CPU gradient as its .grad, and the fused VJPs (softmax, pooling, batch norm, ...) would pass
 * a host pointer to device kernels. Fix: a device check in rt_backward (core/src/autograd.c). */
static void test_backward_gradient_device(void)
{
    struct rt_tensor *x = RND(RT_F32, -1, 1, 3, 4), *d = copy_to(x, dut), *g = RND(RT_F32, -1, 1, 3, 4), *y = NULL;
    REQUIRE(d && g, "inputs");
    REQUIRE_OK(rt_requires_grad_(d, true));
    check_mixed("rt_backward(leaf on the device, gradient on the cpu)", rt_backward(d, g, false));
    CHECK(!d->grad || rt_tensor_device(d->grad) == dut, "the leaf's gradient landed on %s",
          rt_device_name(rt_tensor_device(d->grad)));
    if (CHECK_OK(rt_exp(d, &y)))
        check_mixed("rt_backward(exp on the device, gradient on the cpu)", rt_backward(y, g, false));
    RELEASE(x, d, g, y);
}

/* ================================================================== the checker itself */

static void test_compare_selftest(void)
{
    struct rt_tensor *x = RND(RT_F32, 0.5, 1, 3, 4), *y = NULL, *z = NULL, *i = RNDD(RT_I64, 3, 4), *xt = NULL;
    struct rt_tensor *x64 = RND(RT_F64, 0.5, 1, 3, 4), *y64 = NULL, *j = NULL, *n = NULL;
    REQUIRE(x && i && x64, "inputs");
    REQUIRE_OK(rt_affine(x, 1 + 1e-4, 0, &y));         /* 1e-4 relative: beyond f32's 1e-5 */
    REQUIRE_OK(rt_affine(x64, 1 + 1e-8, 0, &y64));     /* beyond f64's 1e-10 */
    REQUIRE_OK(rt_affine(i, 1, 1, &j));                /* integers must be exact */
    REQUIRE_OK(rt_to_dtype(x, RT_F64, &z));            /* wrong dtype */
    REQUIRE_OK(rt_transpose(x, 0, 1, &xt));            /* wrong shape */
    n = h_tensor(RT_F32, 2, H_SHAPE(3, 4), H_VALS(NAN, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
    struct rt_tensor *big = NULL, *big1 = NULL; /* off by one in bits a double does not hold */
    REQUIRE_OK(rt_tensor_from_data(RT_I64, 1, H_SHAPE(2), (const int64_t[]){INT64_MAX, (int64_t)1 << 60}, &big));
    REQUIRE_OK(rt_tensor_from_data(RT_I64, 1, H_SHAPE(2), (const int64_t[]){INT64_MAX - 1, ((int64_t)1 << 60) + 1},
                                   &big1));
    struct rt_tensor *dbig1 = copy_to(big1, dut);
    struct rt_tensor *dx = copy_to(x, dut), *dy = copy_to(y, dut), *dy64 = copy_to(y64, dut), *dj = copy_to(j, dut);
    struct rt_tensor *dz = copy_to(z, dut), *dxt = copy_to(xt, dut), *dn = copy_to(n, dut);
    CHECK(compare_tensors(__FILE__, __LINE__, "identical f32", dx, x, CMP_TOL, 0), "identical tensors differ");
    h_expect_failures_begin();
    compare_tensors(__FILE__, __LINE__, "f32 off by 1e-4", dy, x, CMP_TOL, 0);
    compare_tensors(__FILE__, __LINE__, "f64 off by 1e-8", dy64, x64, CMP_TOL, 0);
    compare_tensors(__FILE__, __LINE__, "i64 off by one", dj, i, CMP_TOL, 0);
    compare_tensors(__FILE__, __LINE__, "i64 off by one beyond 2^53", dbig1, big, CMP_EXACT, 0);
    compare_tensors(__FILE__, __LINE__, "f64 for f32", dz, x, CMP_TOL, 0);
    compare_tensors(__FILE__, __LINE__, "transposed", dxt, x, CMP_TOL, 0);
    compare_tensors(__FILE__, __LINE__, "NaN for a number", dn, x, CMP_TOL, 0);
    compare_tensors(__FILE__, __LINE__, "not exact", dy, x, CMP_EXACT, 0);
    int caught = h_expect_failures_end();
    CHECK(caught == 8, "the checker caught %d of 8 planted differences", caught);
    RELEASE(x, y, z, i, xt, x64, y64, j, n, dx, dy, dy64, dj, dz, dxt, dn, big, big1, dbig1);
}

/* ================================================================== main */

int main(void)
{
    const char *why = NULL;
    if (!rt_device_available(RT_CUDA, &why)) {
        printf("test_cuda: skipped: %s\n", why ? why : "CUDA is not available");
        return 77;
    }
    const char *env = getenv("RETORT_EMULATE_CUDA");
    emulated = env && *env && strcmp(env, "0") != 0;
    printf("test_cuda: comparing cpu against %s\n", rt_device_describe(RT_CUDA));
    fflush(stdout);
    rt_rng_init(&gen, 20240611);

    RUN(test_compare_selftest);
    RUN(test_transfers);
    RUN(test_casts);
    RUN(test_contiguous);
    RUN(test_fill);
    RUN(test_unary);
    RUN(test_leaky_relu);
    RUN(test_binary);
    RUN(test_integer_division);
    RUN(test_add_inplace);
    RUN(test_where);
    RUN(test_reductions);
    RUN(test_sum_to_shape);
    RUN(test_matmul);
    RUN(test_softmax);
    RUN(test_index_select);
    RUN(test_index_copy);
    RUN(test_gather_scatter);
    RUN(test_cat_stack);
    RUN(test_random);
    RUN(test_dropout);
    RUN(test_conv2d);
    RUN(test_bf16_products);
    RUN(test_pool);
    RUN(test_batch_norm);
    RUN(test_cross_entropy);
    RUN(test_kd_loss);
    RUN(test_attention_map);
    RUN(test_pairwise);
    RUN(test_sgd);
    RUN(test_mixed_devices);
    RUN(test_bad_index_reports);
    RUN(test_kd_non_finite);
    RUN(test_device_memory);
    RUN(test_out_of_memory);
    RUN(test_backward_gradient_device);

    printf("test_cuda: %ld cases, %ld tensor comparisons (cpu against %s)\n", n_cases, n_compared,
           rt_device_name(dut));
    return h_finish();
}
