/* retort core: status codes, dtypes, devices, error messages.
 * Every fallible function returns enum rt_status; on failure rt_error_msg() says
 * which function failed and why (with shapes). The core never prints or exits. */
#ifndef RETORT_COMMON_H
#define RETORT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_VERSION_STRING "0.1.0"
#define RT_MAX_DIMS 8

enum rt_status {
    RT_OK = 0,
    RT_ERR_ARG,         /* a bad argument: out of range, NULL, wrong count */
    RT_ERR_SHAPE,       /* shapes that do not fit together */
    RT_ERR_DTYPE,       /* dtype not supported by this op, or mixed dtypes */
    RT_ERR_DEVICE,      /* tensors on different devices, or device unavailable */
    RT_ERR_OOM,         /* allocation failed */
    RT_ERR_IO,          /* file could not be read or written */
    RT_ERR_FORMAT,      /* file content is not what was expected */
    RT_ERR_AUTOGRAD,    /* graph misuse: freed graph, modified saved tensor, ... */
    RT_ERR_INTERRUPTED, /* stopped by rt_interrupt_request() */
    RT_ERR_INTERNAL
};

/* RT_BF16 (bfloat16: f32's sign and 8-bit exponent, 7 mantissa bits) is a storage dtype for mixed
 * precision: casts, copies, views, printing, HDF5 and the bf16 GEMM/convolution kernels take it
 * (retort/bf16.h); every other op refuses it (rt_dtype_is_float is false for it). */
enum rt_dtype { RT_F32 = 0, RT_F64, RT_I64, RT_U8, RT_BF16, RT_DTYPE_COUNT };
enum rt_device { RT_CPU = 0, RT_CUDA, RT_DEVICE_COUNT };

/* Last error message of this thread ("" when none). */
const char *rt_error_msg(void);
/* Record an error and return its status: return rt_error(RT_ERR_SHAPE, "rt_matmul: ..."). */
enum rt_status rt_error(enum rt_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prefix the current message with "ctx: " (for callers that add context). */
void rt_error_prefix(const char *ctx);
void rt_error_clear(void);
const char *rt_status_name(enum rt_status st);

size_t rt_dtype_size(enum rt_dtype dt);
const char *rt_dtype_name(enum rt_dtype dt);      /* "f32", "f64", "i64", "u8", "bf16" */
/* true for f32 and f64, the dtypes arithmetic takes (not bf16: a storage dtype) */
bool rt_dtype_is_float(enum rt_dtype dt);
/* Parse "f32"/"float", "f64"/"double", "i64"/"long", "u8"/"byte", "bf16"/"bfloat16". */
enum rt_status rt_dtype_parse(const char *s, enum rt_dtype *out);
const char *rt_device_name(enum rt_device d);      /* "cpu", "cuda" */

/* Cooperative interruption (Ctrl-C): long loops poll it and return RT_ERR_INTERRUPTED. */
void rt_interrupt_request(void);
bool rt_interrupt_pending(void);
void rt_interrupt_clear(void);

/* Bytes currently held by tensor storages, per device (for GC pressure and leak tests). */
size_t rt_memory_in_use(enum rt_device d);

/* Threads used by element-wise/reduction loops and BLAS (0 = library default). */
void rt_set_num_threads(int n);
int rt_get_num_threads(void);

#endif
