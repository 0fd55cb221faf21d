/* GEMM through oneDNN's matmul primitive: f32 x f32 -> f32 (rt_cpu_gemm's f32 products, when its
 * path is dnnl) and bf16 x bf16 -> f32 with f32 accumulation (the bf16 kernel, rt_cpu_gemm_bf16).
 *
 * Why oneDNN: it JITs kernels for the CPU it runs on (AVX-512, AVX512-BF16's vdpbf16ps, AMX tiles),
 * where Debian's OpenBLAS 0.3.21 has no bf16 GEMM at all (cblas.h declares cblas_sbgemm but the
 * library is built without BUILD_BFLOAT16: `nm -D` finds no sbgemm) and its sgemm runs the kernels
 * of whatever core type it is told (OPENBLAS_CORETYPE). Measured on the AMD EPYC (Zen 5, AVX512-BF16,
 * no AMX) of this project's test machine, 256x800x784, one thread: oneDNN bf16 matmul 426 GFLOP/s,
 * oneDNN f32 matmul 221, OpenBLAS sgemm 110 (with OPENBLAS_CORETYPE=Haswell, as that machine's
 * environment sets).
 *
 * Operands are described to oneDNN as plain strided memory (transposition and leading dimensions
 * as strides; a batch stride of 0 as a broadcast batch of 1), so nothing is packed or copied here.
 * alpha is oneDNN's output scale, beta != 0 its sum post-op. Primitives are cached in a small LRU
 * table keyed by the whole geometry and the OpenMP thread count, as the convolutions' are
 * (cpu_conv_dnnl.c), and run on the caller's OpenMP team (Debian's libdnnl is built on OpenMP). */
#include "backend/cpu/cpu_bf16.h"

#ifdef RETORT_HAVE_DNNL

#include <omp.h>
#include <pthread.h>

#include <oneapi/dnnl/dnnl.h>

#include "backend/cpu/cpu_dnnl.h"
#include "retort/tensor.h"

struct mm_key {
    int64_t m, n, k, lda, ldb, ldc, sa, sb, sc, batch;
    double alpha, beta;
    int ta, tb, threads, bf16;
};

struct mm_entry {
    struct mm_key key;
    uint64_t hash, used; /* hash of key, compared first; used: LRU clock, 0 for an empty slot */
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
};

/* A step of a distillation run multiplies many shapes (teacher and student layers, forward and both
 * gradients, the last partial batch, evaluation batches): with 32 slots a 40-shape cycle missed on
 * every call, 9.1 us a small product against 5.7 when it fits (oneDNN's own primitive cache keeps a
 * miss from costing a JIT). The hash keeps the lookup cheap over 64. */
#define MM_SLOTS 64

static pthread_mutex_t mm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mm_entry mm_cache[MM_SLOTS];
static uint64_t mm_clock;
static dnnl_engine_t mm_engine;
static dnnl_stream_t mm_stream;

static void mm_clear(struct mm_entry *e)
{
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    if (e->a)
        dnnl_memory_destroy(e->a);
    if (e->b)
        dnnl_memory_destroy(e->b);
    if (e->c)
        dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

/* (batch, rows, cols) of a stored matrix seen as op(X): rows r and cols c after the transpose */
static dnnl_status_t md_of(dnnl_memory_desc_t *md, dnnl_data_type_t t, int64_t batch, int64_t bstride, int64_t r,
                           int64_t c, int64_t ld, bool trans)
{
    if (batch > 1 && bstride == 0)
        batch = 1; /* shared by every product: oneDNN broadcasts a batch dim of 1 */
    dnnl_dims_t dims = {batch, r, c};
    dnnl_dims_t strides = {bstride ? bstride : r * c, trans ? 1 : ld, trans ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 3, dims, t, strides);
}

static enum rt_status mm_build(const struct mm_key *k, struct mm_entry *e)
{
    enum rt_status st = RT_OK;
    dnnl_memory_desc_t a, b, c;
    dnnl_matmul_desc_t d;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const char *op = k->bf16 ? "rt_matmul (bf16)" : "rt_matmul";
    st = rt_cpu_dnnl_ready(op, &mm_engine, &mm_stream);
    if (st != RT_OK)
        return st;
    dnnl_data_type_t src = k->bf16 ? dnnl_bf16 : dnnl_f32;
    RT_DNNL_TRY(op, md_of(&a, src, k->batch, k->sa, k->m, k->k, k->lda, k->ta));
    RT_DNNL_TRY(op, md_of(&b, src, k->batch, k->sb, k->k, k->n, k->ldb, k->tb));
    RT_DNNL_TRY(op, md_of(&c, dnnl_f32, k->batch, k->sc, k->m, k->n, k->ldc, false));
    RT_DNNL_TRY(op, dnnl_matmul_desc_init(&d, &a, &b, NULL, &c));
    RT_DNNL_TRY(op, dnnl_primitive_attr_create(&attr));
    if (k->alpha != 1) {
        float scale = (float)k->alpha;
        RT_DNNL_TRY(op, dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale));
    }
    if (k->beta != 0) {
        RT_DNNL_TRY(op, dnnl_post_ops_create(&po));
        RT_DNNL_TRY(op, dnnl_post_ops_append_sum(po, (float)k->beta));
        RT_DNNL_TRY(op, dnnl_primitive_attr_set_post_ops(attr, po));
    }
    RT_DNNL_TRY(op, dnnl_primitive_desc_create(&pd, &d, attr, mm_engine, NULL));
    RT_DNNL_TRY(op, dnnl_primitive_create(&e->prim, pd));
    RT_DNNL_TRY(op, dnnl_memory_create(&e->a, &a, mm_engine, DNNL_MEMORY_NONE));
    RT_DNNL_TRY(op, dnnl_memory_create(&e->b, &b, mm_engine, DNNL_MEMORY_NONE));
    RT_DNNL_TRY(op, dnnl_memory_create(&e->c, &c, mm_engine, DNNL_MEMORY_NONE));
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return st;
}

static enum rt_status mm_run(const struct mm_key *k, const void *a, const void *b, void *c)
{
    const char *op = k->bf16 ? "rt_matmul (bf16)" : "rt_matmul";
    enum rt_status st = RT_OK;
    pthread_mutex_lock(&mm_lock);
    struct mm_entry *e = NULL, *lru = &mm_cache[0];
    uint64_t h = RT_FINGERPRINT_INIT;
    rt_fingerprint_bytes(k, sizeof *k, &h);
    for (int i = 0; i < MM_SLOTS && !e; i++) {
        if (mm_cache[i].used && mm_cache[i].hash == h && memcmp(&mm_cache[i].key, k, sizeof *k) == 0)
            e = &mm_cache[i];
        else if (mm_cache[i].used < lru->used)
            lru = &mm_cache[i];
    }
    if (!e) {
        mm_clear(lru);
        st = mm_build(k, lru);
        if (st != RT_OK) {
            mm_clear(lru);
            goto out;
        }
        lru->key = *k, lru->hash = h;
        e = lru;
    }
    e->used = ++mm_clock;
    RT_DNNL_TRY(op, dnnl_memory_set_data_handle(e->a, (void *)a));
    RT_DNNL_TRY(op, dnnl_memory_set_data_handle(e->b, (void *)b));
    RT_DNNL_TRY(op, dnnl_memory_set_data_handle(e->c, c));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    RT_DNNL_TRY(op, dnnl_primitive_execute(e->prim, mm_stream, 3, args));
    RT_DNNL_TRY(op, dnnl_stream_wait(mm_stream));
out:
    pthread_mutex_unlock(&mm_lock);
    return st;
}

enum rt_status rt_cpu_dnnl_gemm(bool bf16, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                                const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb,
                                int64_t stride_b, double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch)
{
    if (batch > 1 && stride_a == 0 && stride_b == 0) { /* oneDNN wants a batched source: one product each */
        enum rt_status st = RT_OK;
        for (int64_t bi = 0; bi < batch && st == RT_OK; bi++)
            st = rt_cpu_dnnl_gemm(bf16, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta,
                                  (float *)c + bi * stride_c, ldc, 0, 1);
        return st;
    }
    struct mm_key key;
    memset(&key, 0, sizeof key); /* compared with memcmp */
    key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    key.sa = batch > 1 ? stride_a : 0, key.sb = batch > 1 ? stride_b : 0, key.sc = batch > 1 ? stride_c : 0;
    key.batch = batch, key.alpha = alpha, key.beta = beta, key.ta = ta, key.tb = tb, key.bf16 = bf16;
    key.threads = omp_get_max_threads();
    if (batch > 1 && key.sc == 0)
        return rt_error(RT_ERR_INTERNAL, "rt_cpu_dnnl_gemm: batched output without a batch stride");
    return mm_run(&key, a, b, c);
}
#endif /* RETORT_HAVE_DNNL */

enum rt_status rt_cpu_gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                                int64_t stride_a, const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,
                                int64_t ldc, int64_t stride_c, int64_t batch)
{
    bool empty;
    enum rt_status st = rt_backend_gemm_bf16_args(ta, tb, m, n, k, batch, &lda, &ldb, &ldc, &empty);
    if (st != RT_OK || empty)
        return st;
    if (k == 0) { /* nothing to multiply: C = beta * C */
        for (int64_t bi = 0; bi < batch; bi++)
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    float *p = (float *)c + bi * stride_c + i * ldc + j;
                    *p = beta == 0 ? 0.0f : (float)(beta * *p);
                }
        return RT_OK;
    }
    st = rt_cpu_bf16_ready("rt_matmul");
    if (st != RT_OK)
        return st;
#ifdef RETORT_HAVE_DNNL
    st = rt_cpu_dnnl_gemm(true, ta, tb, m, n, k, 1.0, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c,
                          batch);
    if (st == RT_OK)
        rt_cpu_bf16_count();
#endif
    return st;
}
