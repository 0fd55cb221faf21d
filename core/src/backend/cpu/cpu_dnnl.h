/* What the CPU backend's oneDNN users share (cpu_conv_dnnl.c, cpu_gemm_dnnl.c): the error message for a
 * failed oneDNN call, the try-or-goto idiom around such calls, and the lazily created engine and
 * stream. Each user keeps its own engine and stream (and its own lock around them and its primitive
 * cache): a oneDNN stream must not take work from two threads at once. */
#ifndef RETORT_CPU_DNNL_H
#define RETORT_CPU_DNNL_H

#ifdef RETORT_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>

#include "backend/cpu/cpu_internal.h"

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

#endif /* RETORT_HAVE_DNNL */

#endif
