/* Bilinear resampling of u8 images, reproducing PIL's Image.resize(size, Image.BILINEAR)
 * (Pillow's libImaging/Resample.c, 8 bits per channel) operation for operation, so that retort
 * and a PyTorch pipeline built on PIL feed a network the same pixels:
 *
 * - Per axis: scale = in / out; the triangle filter's support is 1 input pixel when enlarging and
 *   `scale` input pixels when shrinking (the filter widens: antialiasing). Output pixel x is centred
 *   at (x + 0.5) scale; it takes inputs [xmin, xmax) with xmin = (int)(centre - support + 0.5) and
 *   xmax = (int)(centre + support + 0.5) clamped to the image, each weighted tri((i - centre + 0.5) / fs)
 *   (fs = max(scale, 1)), the weights normalised to sum 1 in double precision.
 * - Weights go to 22-bit fixed point (rounded half away from zero); each output is
 *   (2^21 + sum w_i p_i) >> 22 clipped to 0..255.
 * - Horizontal pass first (over the rows the vertical pass will read), rounded to u8, then the
 *   vertical pass; an axis whose size does not change is copied, not filtered.
 * The double arithmetic is written in PIL's order; the build does not contract it into FMAs
 * (ISO C mode, -ffp-contract=off by default), so the weights are the same bits as PIL's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "retort/image.h"

#define PRECISION_BITS (32 - 8 - 2)

static double triangle(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* The filter taps of one axis: for output i, inputs bounds[2i] .. bounds[2i] + bounds[2i+1] - 1
 * with fixed-point weights kk[i * ksize ...]. */
struct taps {
    int64_t ksize;
    int64_t *bounds;
    int32_t *kk;
};

static void taps_free(struct taps *t)
{
    free(t->bounds);
    free(t->kk);
}

static enum rt_status taps_make(int64_t in_size, int64_t out_size, struct taps *t)
{
    memset(t, 0, sizeof *t);
    double scale = (double)in_size / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale; /* the bilinear filter's support is 1 */
    int64_t ksize = (int64_t)ceil(support) * 2 + 1;
    if (ksize > INT64_MAX / 8 / out_size)
        return rt_error(RT_ERR_ARG, "rt_image_resize_bilinear: %lld -> %lld pixels needs too many filter taps",
                        (long long)in_size, (long long)out_size);
    double *pre = malloc(sizeof(double) * (size_t)(out_size * ksize));
    t->bounds = malloc(sizeof(int64_t) * 2 * (size_t)out_size);
    t->kk = malloc(sizeof(int32_t) * (size_t)(out_size * ksize));
    if (!pre || !t->bounds || !t->kk) {
        free(pre);
        taps_free(t);
        return rt_error(RT_ERR_OOM, "rt_image_resize_bilinear: out of memory for the filter taps");
    }
    t->ksize = ksize;
    for (int64_t xx = 0; xx < out_size; xx++) {
        double center = 0.0 + ((double)xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int64_t xmin = (int64_t)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int64_t xmax = (int64_t)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        double *k = pre + xx * ksize;
        int64_t x = 0;
        for (; x < xmax; x++) {
            double w = triangle(((double)(x + xmin) - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        for (; x < ksize; x++)
            k[x] = 0.0;
        t->bounds[2 * xx] = xmin;
        t->bounds[2 * xx + 1] = xmax;
    }
    for (int64_t i = 0; i < out_size * ksize; i++)
        t->kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + pre[i] * (1 << PRECISION_BITS))
                              : (int32_t)(0.5 + pre[i] * (1 << PRECISION_BITS));
    free(pre);
    return RT_OK;
}

static inline uint8_t clip8(int32_t v)
{
    if (v >= (1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* rows of src (width sw) -> rows of dst (width dw), c interleaved channels */
static void pass_horizontal(const uint8_t *src, int64_t sw, int64_t rows, int c, const struct taps *t, uint8_t *dst,
                            int64_t dw)
{
    for (int64_t y = 0; y < rows; y++) {
        const uint8_t *s = src + y * sw * c;
        uint8_t *d = dst + y * dw * c;
        for (int64_t xx = 0; xx < dw; xx++) {
            int64_t xmin = t->bounds[2 * xx], xmax = t->bounds[2 * xx + 1];
            const int32_t *k = t->kk + xx * t->ksize;
            for (int ch = 0; ch < c; ch++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int64_t x = 0; x < xmax; x++)
                    ss += (int32_t)s[(x + xmin) * c + ch] * k[x];
                d[xx * c + ch] = clip8(ss);
            }
        }
    }
}

/* src (sh rows, first_row first) -> dst (dh rows), rows of w pixels of c channels */
static void pass_vertical(const uint8_t *src, int64_t first_row, int64_t w, int c, const struct taps *t, uint8_t *dst,
                          int64_t dh)
{
    int64_t row = w * c;
    for (int64_t yy = 0; yy < dh; yy++) {
        int64_t ymin = t->bounds[2 * yy] - first_row, ymax = t->bounds[2 * yy + 1];
        const int32_t *k = t->kk + yy * t->ksize;
        uint8_t *d = dst + yy * row;
        for (int64_t i = 0; i < row; i++) {
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int64_t y = 0; y < ymax; y++)
                ss += (int32_t)src[(y + ymin) * row + i] * k[y];
            d[i] = clip8(ss);
        }
    }
}

enum rt_status rt_image_resize_bilinear(const uint8_t *src, int64_t sh, int64_t sw, int channels, uint8_t *dst,
                                        int64_t dh, int64_t dw)
{
    if (!src || !dst)
        return rt_error(RT_ERR_ARG, "rt_image_resize_bilinear: src and dst are required");
    if (channels < 1 || channels > 4)
        return rt_error(RT_ERR_ARG, "rt_image_resize_bilinear: channels must be 1..4, got %d", channels);
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1)
        return rt_error(RT_ERR_ARG, "rt_image_resize_bilinear: sizes must be >= 1, got %lld x %lld -> %lld x %lld",
                        (long long)sh, (long long)sw, (long long)dh, (long long)dw);
    if (sw > RT_IMAGE_MAX_PIXELS / sh || dw > RT_IMAGE_MAX_PIXELS / dh)
        return rt_error(RT_ERR_ARG, "rt_image_resize_bilinear: %lld x %lld -> %lld x %lld is more than %lld pixels",
                        (long long)sh, (long long)sw, (long long)dh, (long long)dw, (long long)RT_IMAGE_MAX_PIXELS);
    bool need_h = sw != dw, need_v = sh != dh;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)(sh * sw * channels));
        return RT_OK;
    }
    struct taps th = {0}, tv = {0};
    uint8_t *tmp = NULL;
    enum rt_status st = RT_OK;
    if (need_h && (st = taps_make(sw, dw, &th)) != RT_OK)
        return st;
    if (need_v && (st = taps_make(sh, dh, &tv)) != RT_OK) {
        taps_free(&th);
        return st;
    }
    if (need_h && need_v) {
        /* the rows the vertical pass reads: [first, last) */
        int64_t first = tv.bounds[0], last = tv.bounds[2 * dh - 2] + tv.bounds[2 * dh - 1];
        tmp = malloc((size_t)((last - first) * dw * channels));
        if (!tmp) {
            st = rt_error(RT_ERR_OOM, "rt_image_resize_bilinear: out of memory");
        } else {
            pass_horizontal(src + first * sw * channels, sw, last - first, channels, &th, tmp, dw);
            pass_vertical(tmp, first, dw, channels, &tv, dst, dh);
        }
    } else if (need_h) {
        pass_horizontal(src, sw, sh, channels, &th, dst, dw);
    } else {
        pass_vertical(src, 0, sw, channels, &tv, dst, dh);
    }
    free(tmp);
    taps_free(&th);
    taps_free(&tv);
    return st;
}
