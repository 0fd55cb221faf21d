/* What the CPU backend's oneDNN users share (cpu_conv.c and cpu_conv_dnnl.c, cpu_gemm.c and
 * cpu_gemm_dnnl.c): the setting that picks oneDNN or the other path, the error message for a failed
 * oneDNN call, the try-or-goto idiom around such calls, and the lazily created engine and stream.
 * Each user keeps its own engine and stream (and its own lock around them and its primitive cache):
 * a oneDNN stream must not take work from two threads at once. */
#ifndef RETORT_CPU_DNNL_H
#define RETORT_CPU_DNNL_H

#include "backend/cpu/cpu_internal.h"

/* A path setting, VAR=<other>|dnnl|auto (RETORT_CPU_CONV=im2col|..., RETORT_CPU_GEMM=openblas|...), read
 * on each call so a test can switch; unset or empty is auto. */
enum rt_cpu_path { RT_CPU_PATH_OTHER, RT_CPU_PATH_DNNL, RT_CPU_PATH_AUTO };

/* *path from $var; RT_ERR_ARG "<op>: VAR=x: expected <other>, dnnl or auto" for another value, and
 * "<op>: VAR=dnnl, but retort was built without oneDNN ..." on such a build. */
enum rt_status rt_cpu_path_setting(const char *op, const char *var, const char *other, enum rt_cpu_path *path);

#ifdef RETORT_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>

/* RT_ERR_OOM (out of memory) or RT_ERR_INTERNAL: "<op>: oneDNN <call> failed: <why> (status <s>)" */
enum rt_status rt_cpu_dnnl_fail(const char *op, const char *call, dnnl_status_t s);

/* Creates *engine and *stream on first use (the caller holds the lock that guards them). */
enum rt_status rt_cpu_dnnl_ready(const char *op, dnnl_engine_t *engine, dnnl_stream_t *stream);

/* Runs a oneDNN call; on failure sets `st` (an enum rt_status in scope) and jumps to `out`. */
#define RT_DNNL_TRY(op, call)                                                                                     \
    do {                                                                                                          \
        dnnl_status_t ds_ = (call);                                                                               \
        if (ds_ != dnnl_success) {                                                                                \
            st = rt_cpu_dnnl_fail(op, #call, ds_);                                                                \
            goto out;                                                                                             \
        }                                                                                                         \
    } while (0)

/* oneDNN's matmul (cpu_gemm_dnnl.c), gemm's arguments already checked: C (f32) = alpha op(A) op(B) +
 * beta C, with A and B f32, or bf16 (accumulated in f32) when bf16 is true. */
enum rt_status rt_cpu_dnnl_gemm(bool bf16, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                                const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb,
                                int64_t stride_b, double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch);

#endif /* RETORT_HAVE_DNNL */

#endif
