/* libFuzzer target: PNG/JPEG decoding (core/src/image.c) and the batch decoder that resizes
 * (image_batch.c, image_resize.c), as retort.data.imageFolder uses them.
 * Seeds: tests/fuzz/make_corpus.py (PIL-written PNGs of every colour type and depth, interlaced,
 * with transparency; baseline, progressive, grey and CMYK JPEGs; a few pixels each).
 * Each input is decoded from memory to grey and to RGB, and decoded from its file and resized to
 * 5x7 RGB by rt_image_decode_batch. Promises checked: both decodes agree (same status; the grey
 * image is PIL's luma of the RGB one, which also holds for grey sources, since luma(v, v, v) = v);
 * the batch decode succeeds exactly when the single decode does; a refusal names the function and
 * the file; nothing is left alive. */
#include "fuzz_common.h"

static uint8_t luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_alive before = fuzz_alive_now();
    const char *name = "fuzz-input";
    struct rt_image grey, rgb;
    enum rt_status sg = rt_image_decode_memory(data, size, name, 1, &grey);
    if (sg != RT_OK)
        fuzz_expect_refusal(sg, "rt_image_decode", name);
    enum rt_status sc = rt_image_decode_memory(data, size, name, 3, &rgb);
    if (sc != RT_OK)
        fuzz_expect_refusal(sc, "rt_image_decode", name);
    FUZZ_CHECK(sg == sc || sg == RT_ERR_OOM || sc == RT_ERR_OOM, "grey status %d, RGB status %d", (int)sg, (int)sc);
    if (sg == RT_OK && sc == RT_OK) {
        FUZZ_CHECK(grey.height == rgb.height && grey.width == rgb.width && grey.channels == 1 && rgb.channels == 3,
                   "grey %lldx%lldx%d, RGB %lldx%lldx%d", (long long)grey.height, (long long)grey.width,
                   grey.channels, (long long)rgb.height, (long long)rgb.width, rgb.channels);
        int64_t npix = grey.height * grey.width;
        for (int64_t i = 0; i < npix; i++) {
            const uint8_t *p = rgb.pixels + 3 * i;
            FUZZ_CHECK(grey.pixels[i] == luma(p[0], p[1], p[2]), "pixel %lld: grey %d, luma of RGB (%d, %d, %d) %d",
                       (long long)i, grey.pixels[i], p[0], p[1], p[2], luma(p[0], p[1], p[2]));
        }
    }
    rt_image_free(&grey);
    rt_image_free(&rgb);

    const char *path = fuzz_write_input("image", ".img", data, size);
    struct rt_tensor *t = NULL;
    enum rt_status sb = rt_image_decode_batch(&path, 1, 5, 7, 3, NULL, NULL, &t);
    if (sb != RT_OK) {
        FUZZ_CHECK(t == NULL, "a refusal left *out set");
        fuzz_expect_accepted(false, "rt_image_decode_batch", rt_error_msg());
        FUZZ_CHECK(sc != RT_OK || sb == RT_ERR_OOM, "the batch decoder refused what rt_image_decode_memory read: %s",
                   rt_error_msg());
        fuzz_expect_refusal(sb, "rt_image_decode", path);
    } else {
        FUZZ_CHECK(sc == RT_OK, "the batch decoder read what rt_image_decode_memory refused");
        FUZZ_CHECK(t->dtype == RT_U8 && t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == 3 && t->shape[2] == 5 &&
                       t->shape[3] == 7,
                   "unexpected batch shape");
        rt_tensor_release(t);
    }
    fuzz_expect_released(before, "rt_image_decode");
    return 0;
}
