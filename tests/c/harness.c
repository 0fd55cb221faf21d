/* The tiny test harness: see harness.h. */
#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int n_passed, n_failed;
static long n_checks;
static int cur_failures;
static const char *cur_name = "";
static bool expecting;
static int n_expected;

void h_expect_failures_begin(void)
{
    expecting = true;
    n_expected = 0;
}

int h_expect_failures_end(void)
{
    expecting = false;
    return n_expected;
}

const char *h_current_test(void) { return cur_name; }

void h_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  note (%s): ", cur_name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

bool h_pass(void)
{
    n_checks++;
    return true;
}

bool h_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (expecting) {
        printf("  expected failure %s:%d: ", file, line);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        n_expected++;
        return false;
    }
    printf("  FAIL %s:%d (%s): ", file, line, cur_name);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    cur_failures++;
    n_checks++;
    return false;
}

/* RETORT_TEST_ONLY=name,name,... runs only those tests of a program (a GPU's sanitizers, a bisection). */
static bool selected(const char *name)
{
    const char *only = getenv("RETORT_TEST_ONLY");
    size_t n = strlen(name);
    for (const char *p = only && *only ? only : NULL; p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return !only || !*only;
}

void run(const char *name, h_test_fn fn)
{
    if (!selected(name))
        return;
    cur_name = name;
    cur_failures = 0;
    rt_error_clear();
    int64_t live0 = rt_tensor_live_count();
    size_t mem0 = rt_memory_in_use(RT_CPU), dev0 = rt_memory_in_use(RT_CUDA);
    fn();
    rt_grad_set_enabled(true);
    int64_t live1 = rt_tensor_live_count();
    size_t mem1 = rt_memory_in_use(RT_CPU), dev1 = rt_memory_in_use(RT_CUDA);
    if (live1 != live0 || mem1 != mem0)
        h_fail(__FILE__, __LINE__, "%s leaked: %lld live tensors (was %lld), %zu bytes in use (was %zu)", name,
               (long long)live1, (long long)live0, mem1, mem0);
    if (dev1 != dev0)
        h_fail(__FILE__, __LINE__, "%s leaked: %zu CUDA bytes in use (was %zu)", name, dev1, dev0);
    if (cur_failures == 0) {
        n_passed++;
        printf("ok   %s\n", name);
    } else {
        n_failed++;
        printf("FAIL %s (%d failed checks)\n", name, cur_failures);
    }
    fflush(stdout);
    rt_error_clear();
    cur_name = "";
}

static char tmp_dir[256];

const char *h_tmpdir(const char *tag)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/retort-test-%s-XXXXXX", tag);
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    return tmp_dir;
}

const char *h_tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tmp_dir, name);
    return p;
}

unsigned char *h_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL; /* + 1: an empty file is not NULL */
    if (buf)
        *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

int h_finish(void)
{
    if (tmp_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp_dir);
        tmp_dir[0] = '\0';
    }
    printf("%ld checks\n", n_checks);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    fflush(stdout);
    return n_failed > 0 ? 1 : 0;
}

bool h_check_ok(enum rt_status st, const char *expr, const char *file, int line)
{
    n_checks++;
    if (st == RT_OK)
        return true;
    return h_fail(file, line, "%s returned %s: %s", expr, rt_status_name(st), rt_error_msg());
}

bool h_check_status(enum rt_status st, enum rt_status want, const char *substr, const char *expr, const char *file,
                    int line)
{
    n_checks++;
    if (st == RT_OK)
        return h_fail(file, line, "%s succeeded; expected %s containing \"%s\"", expr, rt_status_name(want), substr);
    if (st != want)
        return h_fail(file, line, "%s returned %s (\"%s\"); expected %s", expr, rt_status_name(st), rt_error_msg(),
                      rt_status_name(want));
    const char *msg = rt_error_msg();
    if (!msg || !strstr(msg, substr))
        return h_fail(file, line, "%s: message \"%s\" does not contain \"%s\"", expr, msg ? msg : "(null)", substr);
    return true;
}

static bool close_enough(double g, double e, double rtol, double atol)
{
    if (isnan(e) || isnan(g))
        return isnan(e) && isnan(g);
    if (isinf(e) || isinf(g))
        return g == e;
    return fabs(g - e) <= atol + rtol * fabs(e);
}

bool h_check_close(double a, double b, double tol, const char *ea, const char *eb, const char *file, int line)
{
    n_checks++;
    if (close_enough(a, b, tol, tol))
        return true;
    return h_fail(file, line, "CHECK_CLOSE(%s, %s): %.17g vs %.17g (diff %.3g, tol %.3g)", ea, eb, a, b, fabs(a - b),
                  tol);
}

bool h_array_close(const double *got, const double *expected, int64_t n, double rtol, double atol, const char *what,
                   const char *file, int line)
{
    n_checks++;
    int64_t bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (close_enough(got[i], expected[i], rtol, atol))
            continue;
        if (bad < 5) {
            if (bad == 0)
                h_fail(file, line, "%s: values differ (rtol %.3g, atol %.3g):", what, rtol, atol);
            printf("    [%lld] got %.17g expected %.17g\n", (long long)i, got[i], expected[i]);
        }
        double d = fabs(got[i] - expected[i]);
        if (d > worst || isnan(d))
            worst = d;
        bad++;
    }
    if (bad) {
        printf("    %lld of %lld elements differ, max abs diff %.3g\n", (long long)bad, (long long)n, worst);
        return false;
    }
    return true;
}

bool h_check_shape(const struct rt_tensor *t, int ndim, const int64_t *shape, const char *what, const char *file,
                   int line)
{
    n_checks++;
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (!t)
        return h_fail(file, line, "%s is NULL", what);
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (same)
        return true;
    return h_fail(file, line, "%s has shape %s, expected %s", what, rt_shape_str(t->ndim, t->shape, a, sizeof a),
                  rt_shape_str(ndim, shape, b, sizeof b));
}

double *h_values(const struct rt_tensor *t)
{
    int64_t n = rt_tensor_numel(t);
    double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!v)
        return NULL;
    if (rt_tensor_to_host(t, RT_F64, v) != RT_OK) {
        free(v);
        return NULL;
    }
    return v;
}

bool h_tensor_values(const struct rt_tensor *got, const double *expected, int64_t n, double rtol, double atol,
                     const char *what, const char *file, int line)
{
    if (!got)
        return h_fail(file, line, "%s is NULL", what);
    if (rt_tensor_numel(got) != n)
        return h_fail(file, line, "%s has %lld elements, expected %lld", what, (long long)rt_tensor_numel(got),
                      (long long)n);
    double *g = h_values(got);
    if (!g)
        return h_fail(file, line, "%s: rt_tensor_to_host failed: %s", what, rt_error_msg());
    bool ok = h_array_close(g, expected, n, rtol, atol, what, file, line);
    free(g);
    return ok;
}

bool h_tensor_close(const struct rt_tensor *got, const struct rt_tensor *expected, double rtol, double atol,
                    const char *what, const char *file, int line)
{
    if (!got || !expected)
        return h_fail(file, line, "%s: NULL tensor", what);
    if (!h_check_shape(got, expected->ndim, expected->shape, what, file, line))
        return false;
    double *e = h_values(expected);
    if (!e)
        return h_fail(file, line, "%s: rt_tensor_to_host failed: %s", what, rt_error_msg());
    bool ok = h_tensor_values(got, e, rt_tensor_numel(expected), rtol, atol, what, file, line);
    free(e);
    return ok;
}

struct rt_tensor *h_tensor(enum rt_dtype dt, int ndim, const int64_t *shape, const double *values)
{
    struct rt_tensor *t = NULL;
    enum rt_status st = rt_tensor_new(dt, RT_CPU, ndim, shape, &t);
    if (st != RT_OK) {
        h_fail(__FILE__, __LINE__, "h_tensor: %s", rt_error_msg());
        return NULL;
    }
    int64_t n = rt_tensor_numel(t);
    void *p = rt_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        double v = values[i];
        switch (dt) {
        case RT_F32: ((float *)p)[i] = (float)v; break;
        case RT_F64: ((double *)p)[i] = v; break;
        case RT_I64: ((int64_t *)p)[i] = (int64_t)v; break;
        case RT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
        case RT_BF16: ((uint16_t *)p)[i] = rt_bf16_from_f32((float)v); break;
        default: break;
        }
    }
    return t;
}

double h_uniform(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

struct rt_tensor *h_rand(enum rt_dtype dt, int ndim, const int64_t *shape, double lo, double hi, uint64_t seed)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * h_uniform(&s);
    struct rt_tensor *t = h_tensor(dt, ndim, shape, v);
    free(v);
    return t;
}

struct rt_tensor *h_iota(enum rt_dtype dt, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = (double)i;
    struct rt_tensor *t = h_tensor(dt, ndim, shape, v);
    free(v);
    return t;
}

double h_elem(const struct rt_tensor *t, int64_t flat)
{
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t i = flat % t->shape[d];
        flat /= t->shape[d];
        off += i * t->stride[d];
    }
    const char *base = (const char *)t->storage->data;
    switch (t->dtype) {
    case RT_F32: return ((const float *)base)[off];
    case RT_F64: return ((const double *)base)[off];
    case RT_I64: return (double)((const int64_t *)base)[off];
    case RT_U8: return ((const uint8_t *)base)[off];
    default: return NAN;
    }
}

void h_release(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        rt_tensor_release(va_arg(ap, struct rt_tensor *));
    va_end(ap);
}

void h_release_array(struct rt_tensor *const *ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rt_tensor_release(ts[i]);
}
