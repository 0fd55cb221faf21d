/* Decoding a batch of image files into one (N, C, H, W) u8 tensor on the OpenMP team
 * (retort/image.h).
 *
 * One file per loop iteration, schedule(dynamic): files differ in size and format, so static
 * chunks would leave a thread idle behind a large JPEG. Each thread keeps one scratch buffer for
 * its resized image. Every example is written by exactly one iteration into its own slot, so the
 * result does not depend on the thread count or the schedule. Errors are per file: the failing
 * thread copies its (thread-local) rt_error message into the shared report under a critical
 * section, keeping the lowest indices, so the message a caller sees is the same on every run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "retort/image.h"

/* Decodes paths[i] into dst (channels planes of height x width); scratch holds height x width x
 * channels bytes. */
static enum rt_status decode_one(const char *path, int64_t height, int64_t width, int channels, uint8_t *scratch,
                                 uint8_t *dst)
{
    struct rt_image img;
    enum rt_status st = rt_image_decode_file(path, channels, &img);
    if (st != RT_OK)
        return st;
    const uint8_t *hwc = img.pixels;
    if (img.height != height || img.width != width) {
        /* one channel: HWC is already the plane; resize straight into it */
        uint8_t *to = channels == 1 ? dst : scratch;
        st = rt_image_resize_bilinear(img.pixels, img.height, img.width, channels, to, height, width);
        if (st != RT_OK) {
            rt_image_free(&img);
            return st;
        }
        hwc = to;
    }
    int64_t plane = height * width;
    if (channels == 1) {
        if (hwc != dst)
            memcpy(dst, hwc, (size_t)plane);
    } else { /* HWC -> CHW */
        uint8_t *r = dst, *g = dst + plane, *b = dst + 2 * plane;
        for (int64_t p = 0; p < plane; p++)
            r[p] = hwc[3 * p], g[p] = hwc[3 * p + 1], b[p] = hwc[3 * p + 2];
    }
    rt_image_free(&img);
    return RT_OK;
}

/* Records the failure of file i (under the critical section). strict: keep only the first. */
static void note_failure(struct rt_image_failures *f, int64_t i, enum rt_status st, int keep)
{
    f->count++;
    int at = f->kept;
    while (at > 0 && f->index[at - 1] > i)
        at--;
    if (at >= keep)
        return;
    int last = f->kept < keep ? f->kept : keep - 1;
    for (int j = last; j > at; j--) {
        f->index[j] = f->index[j - 1];
        f->status[j] = f->status[j - 1];
        memcpy(f->message[j], f->message[j - 1], RT_IMAGE_MESSAGE_MAX);
    }
    f->index[at] = i;
    f->status[at] = st;
    snprintf(f->message[at], RT_IMAGE_MESSAGE_MAX, "%s", rt_error_msg());
    if (f->kept < keep)
        f->kept++;
}

enum rt_status rt_image_decode_batch(const char *const *paths, int64_t n, int64_t height, int64_t width, int channels,
                                     struct rt_image_failures *failures, uint8_t *failed, struct rt_tensor **out)
{
    if (!out)
        return rt_error(RT_ERR_ARG, "rt_image_decode_batch: out is NULL");
    *out = NULL;
    if (n < 0 || (n > 0 && !paths))
        return rt_error(RT_ERR_ARG, "rt_image_decode_batch: %lld paths (need n >= 0 and a path list)", (long long)n);
    if (channels != 1 && channels != 3)
        return rt_error(RT_ERR_ARG, "rt_image_decode_batch: channels must be 1 or 3, got %d", channels);
    if (height < 1 || width < 1 || width > RT_IMAGE_MAX_PIXELS / height)
        return rt_error(RT_ERR_ARG, "rt_image_decode_batch: the size %lld x %lld is not in 1..%lld pixels",
                        (long long)height, (long long)width, (long long)RT_IMAGE_MAX_PIXELS);
    struct rt_tensor *t = NULL;
    /* uninitialised: every example is written by its iteration (zeros when its file fails) */
    enum rt_status st = rt_tensor_empty(RT_U8, RT_CPU, 4, (int64_t[]){n, channels, height, width}, &t);
    if (st != RT_OK)
        return st;
    struct rt_image_failures local;
    struct rt_image_failures *rep = failures ? failures : &local;
    memset(rep, 0, sizeof *rep);
    if (failed)
        memset(failed, 0, (size_t)n);
    int keep = failures ? RT_IMAGE_FAILURES_KEPT : 1;
    uint8_t *data = rt_tensor_data(t);
    int64_t example = (int64_t)channels * height * width;
    int stop = 0; /* 1: interrupted, 2: out of memory for scratch */
#pragma omp parallel if (n > 1)
    {
        uint8_t *scratch = malloc((size_t)example);
        if (!scratch) {
#pragma omp atomic write
            stop = 2;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < n; i++) {
            int s;
#pragma omp atomic read
            s = stop;
            if (s)
                continue;
            if (rt_interrupt_pending()) {
#pragma omp atomic write
                stop = 1;
                continue;
            }
            enum rt_status fs =
                paths[i] ? decode_one(paths[i], height, width, channels, scratch, data + i * example)
                         : rt_error(RT_ERR_ARG, "rt_image_decode_batch: path %lld is NULL", (long long)i);
            if (fs != RT_OK) {
                if (failed)
                    failed[i] = 1;
                memset(data + i * example, 0, (size_t)example);
#pragma omp critical(rt_image_failures)
                note_failure(rep, i, fs, keep);
            }
        }
        free(scratch);
    }
    if (stop == 1)
        st = rt_error(RT_ERR_INTERRUPTED, "rt_image_decode_batch: interrupted");
    else if (stop == 2)
        st = rt_error(RT_ERR_OOM, "rt_image_decode_batch: out of memory for a %lld x %lld scratch image",
                      (long long)height, (long long)width);
    else if (!failures && rep->count > 0)
        st = rt_error(rep->status[0], "%s", rep->message[0]);
    if (st != RT_OK) {
        rt_tensor_release(t);
        return st;
    }
    *out = t;
    return RT_OK;
}
