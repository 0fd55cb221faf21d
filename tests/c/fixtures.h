/* Reader and runner for tests/fixtures/ops.txt (reference values computed with PyTorch).
 * The format is documented in tests/README.md and at the top of tests/fixtures/gen_fixtures.py. */
#ifndef RETORT_TEST_FIXTURES_H
#define RETORT_TEST_FIXTURES_H

#include "harness.h"

#define FX_MAX_TENSORS 8
#define FX_MAX_PARAMS 8

struct fx_case {
    char name[64];
    char op[32];
    int n_params;
    char key[FX_MAX_PARAMS][16];
    char value[FX_MAX_PARAMS][64];
    int n_in, n_out;
    struct rt_tensor *in[FX_MAX_TENSORS];
    struct rt_tensor *out[FX_MAX_TENSORS];
    int line; /* line of the `case` header */
};

struct fx_file {
    int n;
    struct fx_case *cases;
};

/* Parse a fixture file; on failure records a test failure and returns false (nothing leaks). */
bool fx_load(const char *path, struct fx_file *f);
void fx_free(struct fx_file *f);

/* Parameters (fall back to def when absent). */
bool fx_has(const struct fx_case *c, const char *key);
int64_t fx_int(const struct fx_case *c, const char *key, int64_t def);
double fx_real(const struct fx_case *c, const char *key, double def);
const char *fx_str(const struct fx_case *c, const char *key, const char *def);
int fx_list(const struct fx_case *c, const char *key, int64_t *out, int max); /* count, or -1 when absent */

/* Does the runner know this op? */
bool fx_known_op(const char *op);
/* The ops the runner knows, by position (0 .. fx_op_count()-1). */
int fx_op_count(void);
const char *fx_op_name(int i);
/* Run one case on the given inputs (the case's own, or re-laid-out copies) and compare every output
 * with the expected one (f32: 1e-6 + 1e-5|e|; f64: 1e-12 + 1e-12|e|; integers exact). */
bool fx_run_case(const struct fx_case *c, struct rt_tensor *const *inputs);
/* A non-contiguous tensor with t's shape and values (transposed storage for >= 2 dims, stride 2 for
 * 1-D; 0-dim tensors are returned as a new reference to t). */
struct rt_tensor *fx_strided_copy(struct rt_tensor *t);

#endif
