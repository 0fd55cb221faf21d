/* bf16 on the CPU: the cast kernel (copies where either side is bf16) and the bf16 unit query.
 *
 * Casts go element by element through f32 (bf16 -> f32 is exact; f64/i64/u8 -> bf16 go through f32
 * first, so an f64 is rounded twice: f64 -> f32 nearest, then f32 -> bf16 nearest even; integers
 * above 2^24 likewise). bf16 -> i64/u8 truncates as the f32 -> integer casts do (saturating through
 * int64, NaN -> 0). The contiguous f32 <-> bf16 case, the one autocast runs every step, is a flat
 * vectorised loop split over the OpenMP team above RT_CPU_PARALLEL_MIN elements.
 *
 * The unit is oneDNN's effective ISA (dnnl_get_effective_cpu_isa): AMX when oneDNN runs its
 * avx512_core_amx kernels, AVX512-BF16 for avx512_core_bf16. Anything below has no bf16 unit here:
 * oneDNN 2.6 would emulate bf16 on plain AVX-512 at a fraction of f32's speed, and mixed precision
 * exists to be faster, so autocast is refused with a message rather than silently slower. */
#include <stdatomic.h>
#include <stdio.h>

#include "backend/cpu/cpu_bf16.h"
#include "backend/cpu/cpu_clones.h"
#include "retort/bf16.h"

#ifdef RETORT_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

static atomic_uint_least64_t kernel_calls;

void rt_cpu_bf16_count(void) { atomic_fetch_add_explicit(&kernel_calls, 1, memory_order_relaxed); }
uint64_t rt_bf16_kernel_calls(void) { return atomic_load_explicit(&kernel_calls, memory_order_relaxed); }

const char *rt_bf16_unit(const char **isa, const char **library, const char **why)
{
    const char *unit = NULL, *name = "none", *lib = "none", *reason = NULL;
#ifdef RETORT_HAVE_DNNL
    static char libname[48];
    const dnnl_version_t *v = dnnl_version();
    snprintf(libname, sizeof libname, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
    lib = libname;
    dnnl_cpu_isa_t i = dnnl_get_effective_cpu_isa();
    switch (i) {
    case dnnl_cpu_isa_avx512_core_amx: unit = "amx", name = "avx512_core_amx"; break;
    case dnnl_cpu_isa_avx512_core_bf16: unit = "avx512_bf16", name = "avx512_core_bf16"; break;
    case dnnl_cpu_isa_avx512_core_vnni: name = "avx512_core_vnni"; break;
    case dnnl_cpu_isa_avx512_core: name = "avx512_core"; break;
    case dnnl_cpu_isa_avx2_vnni: name = "avx2_vnni"; break;
    case dnnl_cpu_isa_avx2: name = "avx2"; break;
    case dnnl_cpu_isa_avx: name = "avx"; break;
    case dnnl_cpu_isa_sse41: name = "sse41"; break;
    default: name = "other"; break;
    }
    if (!unit)
        reason = "oneDNN runs on this CPU with neither AMX nor AVX512-BF16 (effective ISA below avx512_core_bf16;"
                 " ONEDNN_MAX_CPU_ISA may cap it); use f32";
#else
    reason = "retort was built without oneDNN (libdnnl-dev), which runs the bf16 kernels; use f32";
#endif
    if (isa)
        *isa = name;
    if (library)
        *library = lib;
    if (why)
        *why = reason;
    return unit;
}

/* The flat conversions autocast runs every step (each product's f32 operands to bf16), compiled for
 * AVX-512 and AVX2 as well: the x86-64-v2 loop converted the MLP teacher's weights at a third of the
 * speed and took 11% of its bf16 step. */
RT_CPU_CLONES void rt_bf16_from_f32_n(int64_t n, const float *src, uint16_t *dst)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dst[i] = rt_bf16_from_f32(src[i]);
}

RT_CPU_CLONES void rt_bf16_to_f32_n(int64_t n, const uint16_t *src, float *dst)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dst[i] = rt_bf16_to_f32(src[i]);
}

/* one element of any dtype as f32, and back */
static inline float load_f(enum rt_dtype dt, const char *p)
{
    switch (dt) {
    case RT_F32: return *(const float *)p;
    case RT_F64: return (float)*(const double *)p;
    case RT_I64: return (float)*(const int64_t *)p;
    case RT_U8: return (float)*(const uint8_t *)p;
    default: return rt_bf16_to_f32(*(const uint16_t *)p);
    }
}

static inline void store_f(enum rt_dtype dt, char *p, float v)
{
    switch (dt) {
    case RT_F32: *(float *)p = v; break;
    case RT_F64: *(double *)p = v; break;
    case RT_I64: *(int64_t *)p = RT_CPU_TO_I64(v); break;
    case RT_U8: *(uint8_t *)p = RT_CPU_TO_U8(v); break;
    default: *(uint16_t *)p = rt_bf16_from_f32(v); break;
    }
}

enum rt_status rt_cpu_cast_bf16(const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,
                                enum rt_dtype src_dt)
{
    enum rt_status st;
    int nd = 0;
    int64_t shape[RT_MAX_DIMS], strides[2][RT_MAX_DIMS];
    int64_t n = rt_backend_cast_bf16_geometry(dst, dst_dt, src, src_dt, &st, &nd, shape, strides);
    if (n == 0)
        return st;
    size_t des = rt_dtype_size(dst_dt), ses = rt_dtype_size(src_dt);
    if (nd == 1 && strides[0][0] == 1 && strides[1][0] == 1) {
        if (dst_dt == src_dt) {
            memcpy(dst->data, src->data, (size_t)n * des);
            return RT_OK;
        }
        if (src_dt == RT_F32 || dst_dt == RT_F32) { /* the autocast path: chunks over the team */
            int64_t chunks = (n + RT_CPU_CHUNK - 1) / RT_CPU_CHUNK;
            _Pragma("omp parallel for if (n >= RT_CPU_PARALLEL_MIN) schedule(static)")
            for (int64_t c = 0; c < chunks; c++) {
                int64_t lo = c * RT_CPU_CHUNK, len = n - lo < RT_CPU_CHUNK ? n - lo : RT_CPU_CHUNK;
                if (src_dt == RT_F32)
                    rt_bf16_from_f32_n(len, (const float *)src->data + lo, (uint16_t *)dst->data + lo);
                else
                    rt_bf16_to_f32_n(len, (const uint16_t *)src->data + lo, (float *)dst->data + lo);
            }
            return RT_OK;
        }
    }
    /* general strided walk: an odometer over the coalesced dims, innermost dim as the loop */
    int64_t idx[RT_MAX_DIMS] = {0}, inner = shape[nd - 1], ds = strides[0][nd - 1], ss = strides[1][nd - 1];
    for (int64_t done = 0; done < n; done += inner) {
        int64_t doff = 0, soff = 0;
        for (int d = 0; d < nd - 1; d++)
            doff += idx[d] * strides[0][d], soff += idx[d] * strides[1][d];
        char *dp = (char *)dst->data + doff * (int64_t)des;
        const char *sp = (const char *)src->data + soff * (int64_t)ses;
        for (int64_t i = 0; i < inner; i++)
            store_f(dst_dt, dp + i * ds * (int64_t)des, load_f(src_dt, sp + i * ss * (int64_t)ses));
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
    return RT_OK;
}

enum rt_status rt_cpu_bf16_ready(const char *op)
{
    const char *why = NULL;
    if (rt_bf16_unit(NULL, NULL, &why))
        return RT_OK;
    return rt_error(RT_ERR_DEVICE, "%s: bf16 needs a CPU bf16 unit: %s", op, why);
}

enum rt_status rt_cpu_conv2d_bf16(const struct rt_conv2d_shape *s, const void *x, const void *w, const void *b,
                                  void *y)
{
    enum rt_status st = rt_cpu_bf16_ready("rt_conv2d");
    if (st != RT_OK)
        return st;
#ifdef RETORT_HAVE_DNNL
    st = rt_cpu_dnnl_conv2d_bf16(s, x, w, (const float *)b, (float *)y);
    if (st == RT_OK)
        rt_cpu_bf16_count();
#endif
    return st;
}

enum rt_status rt_cpu_conv2d_backward_bf16(const struct rt_conv2d_shape *s, const void *x, const void *w,
                                           const void *gy, void *gx, void *gw)
{
    enum rt_status st = rt_cpu_bf16_ready("Conv2dBackward");
    if (st != RT_OK)
        return st;
#ifdef RETORT_HAVE_DNNL
    st = rt_cpu_dnnl_conv2d_backward_bf16(s, x, w, gy, (float *)gx, (float *)gw);
    if (st == RT_OK)
        rt_cpu_bf16_count();
#endif
    return st;
}
