/* A tiny test harness for the retort C core.
 *
 *   static void test_something(void) {
 *       struct rt_tensor *t;
 *       REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, (int64_t[]){2, 3}, &t));  // returns from the test on failure
 *       CHECK(t->ndim == 2, "ndim %d", t->ndim);
 *       CHECK_STATUS(rt_narrow(t, 0, 1, 5, &v), RT_ERR_ARG, "out of bounds");
 *       rt_tensor_release(t);
 *   }
 *   int main(void) { RUN(test_something); return h_finish(); }
 *
 * Every test runs inside a leak check: the number of live tensors and the CPU and CUDA bytes in use
 * must be the same after the test as before it, else the test fails with "<name> leaked ...". After each
 * test the harness turns grad mode back on and clears the error message.
 * A program ends by printing exactly "N passed, M failed" (N, M count tests) and exits 1 when M > 0.
 *
 * CHECK_OK / CHECK_STATUS / CHECK_CLOSE / CHECK_TENSOR_* are expressions yielding true on success,
 * so `if (!CHECK_OK(...)) goto done;` works; REQUIRE_OK returns from the (void) test function. */
#ifndef RETORT_TEST_HARNESS_H
#define RETORT_TEST_HARNESS_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <retort/retort.h>

#ifndef RETORT_FIXTURES_DIR
#define RETORT_FIXTURES_DIR "tests/fixtures"
#endif

#if defined(__GNUC__)
#define H_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define H_PRINTF(a, b)
#endif

/* --- running --- */
typedef void (*h_test_fn)(void);
/* Runs one test (skipped unless named in RETORT_TEST_ONLY=name,name,... when that is set). */
void run(const char *name, h_test_fn fn);
#define RUN(fn) run(#fn, fn)
/* Prints "N passed, M failed"; returns the exit status for main (0 or 1). */
int h_finish(void);
/* A fresh directory for a test program's files, /tmp/retort-test-<tag>-XXXXXX (the program exits 1
 * when it cannot be made); h_finish removes it with everything in it. */
const char *h_tmpdir(const char *tag);
/* <that directory>/<name>, in one of 8 rotating buffers (a few paths may be held at once). */
const char *h_tmp_path(const char *name);
/* The bytes of the file at path in a malloc'ed buffer (the caller frees it) and their count in *n;
 * NULL when the file cannot be opened or read. */
unsigned char *h_slurp(const char *path, size_t *n);
/* Name of the running test ("" outside tests). */
const char *h_current_test(void);
/* Skip the rest of the test with a note (counts as passed). */
void h_note(const char *fmt, ...) H_PRINTF(1, 2);

/* Self-tests of the checkers: between these calls failures are printed as "expected failure" and
 * not counted against the test; the end call returns how many there were. */
void h_expect_failures_begin(void);
int h_expect_failures_end(void);

/* --- checks (each returns true on success; failures print file:line and count against the test) --- */
bool h_fail(const char *file, int line, const char *fmt, ...) H_PRINTF(3, 4); /* always returns false */
bool h_pass(void);                                                         /* counts a check; true */
bool h_check_ok(enum rt_status st, const char *expr, const char *file, int line);
bool h_check_status(enum rt_status st, enum rt_status want, const char *substr, const char *expr, const char *file,
                    int line);
bool h_check_close(double a, double b, double tol, const char *ea, const char *eb, const char *file, int line);

#define CHECK(cond, ...) ((cond) ? h_pass() : h_fail(__FILE__, __LINE__, "CHECK(" #cond ") failed: " __VA_ARGS__))
#define CHECK_OK(expr) h_check_ok((expr), #expr, __FILE__, __LINE__)
#define REQUIRE_OK(expr)                                                                                          \
    do {                                                                                                          \
        if (!h_check_ok((expr), #expr, __FILE__, __LINE__))                                                       \
            return;                                                                                               \
    } while (0)
#define REQUIRE(cond, ...)                                                                                        \
    do {                                                                                                          \
        if (!CHECK(cond, __VA_ARGS__))                                                                            \
            return;                                                                                               \
    } while (0)
/* expr must fail with status st and rt_error_msg() must contain substr. */
#define CHECK_STATUS(expr, st, substr) h_check_status((expr), (st), (substr), #expr, __FILE__, __LINE__)
/* |a - b| <= tol * (1 + |b|)  (absolute near zero, relative for large values); NaN == NaN. */
#define CHECK_CLOSE(a, b, tol) h_check_close((double)(a), (double)(b), (tol), #a, #b, __FILE__, __LINE__)

/* --- tensor comparisons: print the first 5 mismatches (flat index, got, expected), llm.c-style --- */
/* Same shape, and every element |g - e| <= atol + rtol * |e| (NaN matches NaN, inf matches same inf).
 * Dtypes may differ: both are read as double. */
bool h_tensor_close(const struct rt_tensor *got, const struct rt_tensor *expected, double rtol, double atol,
                    const char *what, const char *file, int line);
bool h_tensor_values(const struct rt_tensor *got, const double *expected, int64_t n, double rtol, double atol,
                     const char *what, const char *file, int line);
/* Compare two host arrays. */
bool h_array_close(const double *got, const double *expected, int64_t n, double rtol, double atol,
                   const char *what, const char *file, int line);
bool h_check_shape(const struct rt_tensor *t, int ndim, const int64_t *shape, const char *what, const char *file,
                   int line);
#define CHECK_TENSOR_CLOSE(got, exp, rtol, atol) h_tensor_close((got), (exp), (rtol), (atol), #got, __FILE__, __LINE__)
#define CHECK_TENSOR_EQUAL(got, exp) h_tensor_close((got), (exp), 0, 0, #got, __FILE__, __LINE__)
#define CHECK_TENSOR_VALUES(got, vals, n, rtol, atol)                                                            \
    h_tensor_values((got), (vals), (n), (rtol), (atol), #got, __FILE__, __LINE__)
#define CHECK_SHAPE(t, ndim, ...) h_check_shape((t), (ndim), (const int64_t[]){__VA_ARGS__}, #t, __FILE__, __LINE__)
#define CHECK_SHAPE0(t) h_check_shape((t), 0, NULL, #t, __FILE__, __LINE__)

/* --- helpers to build tensors (return NULL and record a failure on error) --- */
/* A tensor of dtype dt and the given shape from n double values (converted). */
struct rt_tensor *h_tensor(enum rt_dtype dt, int ndim, const int64_t *shape, const double *values);
#define H_SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define H_VALS(...) ((const double[]){__VA_ARGS__})
/* Uniform random values in [lo, hi) from a private seeded generator (deterministic per seed). */
struct rt_tensor *h_rand(enum rt_dtype dt, int ndim, const int64_t *shape, double lo, double hi, uint64_t seed);
/* 0, 1, 2, ... (numel values) in dt. */
struct rt_tensor *h_iota(enum rt_dtype dt, int ndim, const int64_t *shape);
/* All elements as doubles (row-major) in a malloc'ed array (NULL on failure). */
double *h_values(const struct rt_tensor *t);
/* Element at a flat row-major position, read through shape/strides by hand (independent of rt_tensor_get). */
double h_elem(const struct rt_tensor *t, int64_t flat);
/* A plain deterministic pseudo-random double in [0, 1) from a state (xorshift). */
double h_uniform(uint64_t *state);
/* Release a list of tensors (NULL entries fine). */
void h_release(int n, ...);
void h_release_array(struct rt_tensor *const *ts, size_t n);
/* RELEASE(a, b, c): release every listed tensor (the count is computed). */
#define RELEASE(...)                                                                                              \
    h_release_array((struct rt_tensor *const[]){__VA_ARGS__},                                                     \
                    sizeof((struct rt_tensor *const[]){__VA_ARGS__}) / sizeof(struct rt_tensor *))

#endif
