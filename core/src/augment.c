/* Data augmentation kernels (see retort/data.h): random crop with zero padding + horizontal flip,
 * seeded per (seed, epoch, example id) so results never depend on batching or threads. */
#include <string.h>

#include "internal.h"
#include "retort/data.h"
#include "retort/random.h"

void rt_augment_params(int64_t pad, bool flip, uint64_t seed, uint64_t epoch, int64_t example_id, int64_t *dy,
                       int64_t *dx, bool *flipped)
{
    uint64_t r = rt_rng_bits(rt_rng_bits(seed, epoch), (uint64_t)example_id);
    uint64_t span = (uint64_t)(2 * pad + 1);
    *dy = pad > 0 ? (int64_t)((r & 0xffffff) % span) : 0;
    *dx = pad > 0 ? (int64_t)(((r >> 24) & 0xffffff) % span) : 0;
    *flipped = flip && ((r >> 63) & 1);
}

#define CROP_KERNEL(T)                                                                                            \
    static void crop_##T(const T *src, T *dst, int64_t n, int64_t c, int64_t h, int64_t w, int64_t pad, bool flip, \
                         uint64_t seed, uint64_t epoch, const int64_t *ids)                                       \
    {                                                                                                             \
        _Pragma("omp parallel for schedule(static) if (n * c * h * w > (1 << 18))")                              \
        for (int64_t i = 0; i < n; i++) {                                                                         \
            int64_t dy, dx;                                                                                       \
            bool fl;                                                                                              \
            rt_augment_params(pad, flip, seed, epoch, ids ? ids[i] : i, &dy, &dx, &fl);                           \
            for (int64_t ch = 0; ch < c; ch++) {                                                                  \
                const T *s = src + (i * c + ch) * h * w;                                                          \
                T *d = dst + (i * c + ch) * h * w;                                                                \
                for (int64_t y = 0; y < h; y++) {                                                                 \
                    int64_t sy = y + dy - pad;                                                                    \
                    T *drow = d + y * w;                                                                          \
                    if (sy < 0 || sy >= h) {                                                                      \
                        memset(drow, 0, (size_t)w * sizeof(T));                                                   \
                        continue;                                                                                 \
                    }                                                                                             \
                    const T *srow = s + sy * w;                                                                   \
                    for (int64_t x = 0; x < w; x++) {                                                             \
                        int64_t cx = fl ? w - 1 - x : x; /* position in the cropped window */                   \
                        int64_t sx = cx + dx - pad;                                                               \
                        drow[x] = (sx >= 0 && sx < w) ? srow[sx] : (T)0;                                          \
                    }                                                                                             \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }

CROP_KERNEL(uint8_t)
CROP_KERNEL(float)
CROP_KERNEL(double)

enum rt_status rt_augment_crop_flip(struct rt_tensor *batch, int64_t pad, bool flip, uint64_t seed, uint64_t epoch,
                                    const int64_t *example_ids, struct rt_tensor **out)
{
    *out = NULL;
    if (!batch)
        return rt_error(RT_ERR_ARG, "rt_augment_crop_flip: batch is NULL");
    char sb[RT_SHAPE_STR_MAX];
    if (batch->ndim != 4)
        return rt_error(RT_ERR_SHAPE, "rt_augment_crop_flip: expected a batch (N,C,H,W), got shape %s",
                        rt_shape_str(batch->ndim, batch->shape, sb, sizeof sb));
    if (batch->dtype == RT_I64)
        return rt_error(RT_ERR_DTYPE, "rt_augment_crop_flip: dtype i64 not supported (u8, f32 or f64)");
    if (rt_tensor_device(batch) != RT_CPU)
        return rt_error(RT_ERR_DEVICE, "rt_augment_crop_flip: the batch must be on the CPU, got %s",
                        rt_device_name(rt_tensor_device(batch)));
    int64_t n = batch->shape[0], c = batch->shape[1], h = batch->shape[2], w = batch->shape[3];
    if (pad < 0 || pad > h || pad > w)
        return rt_error(RT_ERR_ARG, "rt_augment_crop_flip: pad %lld out of range [0, %lld] for images %lldx%lld",
                        (long long)pad, (long long)(h < w ? h : w), (long long)h, (long long)w);
    struct rt_tensor *src = NULL, *dst = NULL;
    enum rt_status st = rt__contig_raw(batch, &src);
    if (st == RT_OK)
        st = rt_tensor_empty(batch->dtype, RT_CPU, 4, batch->shape, &dst);
    if (st != RT_OK)
        goto fail;
    if (n * c * h * w > 0) {
        switch (batch->dtype) {
        case RT_U8:
            crop_uint8_t(rt_tensor_data(src), rt_tensor_data(dst), n, c, h, w, pad, flip, seed, epoch, example_ids);
            break;
        case RT_F32:
            crop_float(rt_tensor_data(src), rt_tensor_data(dst), n, c, h, w, pad, flip, seed, epoch, example_ids);
            break;
        case RT_F64:
            crop_double(rt_tensor_data(src), rt_tensor_data(dst), n, c, h, w, pad, flip, seed, epoch, example_ids);
            break;
        default:
            st = rt_error(RT_ERR_INTERNAL, "rt_augment_crop_flip: dtype");
            goto fail;
        }
    }
    rt_tensor_release(src);
    *out = dst;
    return RT_OK;
fail:
    rt_tensor_release(src);
    rt_tensor_release(dst);
    return st;
}
