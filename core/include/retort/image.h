/* Images: PNG and JPEG files decoded to 8-bit grey or RGB, resampled as PIL does, and a batch of
 * files decoded into one (N, C, H, W) u8 tensor on the OpenMP team (retort.data.imageFolder).
 *
 * Decoding (image.c): the format is told by the file's first bytes, not its name (a PNG named
 * .jpg decodes). PNG through libpng, JPEG through libjpeg-turbo; their errors come back as a
 * status and a message naming the file (their exit-on-error handlers are replaced, their
 * warnings silenced), never as output or an exit. Every PNG and JPEG colour type is converted to
 * `channels` (1 or 3) the way PIL's Image.open(f).convert("L" / "RGB") does:
 * - 1-, 2-, 4-bit grey scaled to 0..255 (bits replicated); palettes looked up; alpha and tRNS
 *   transparency dropped (convert("RGB") drops them too); 16-bit samples keep their high byte
 *   (v >> 8), as PIL reads 16-bit RGB(A) PNGs. PIL reads 16-bit *grey* PNGs as 32-bit mode "I"
 *   and its convert("L") clamps them (every value over 255 becomes 255); retort keeps the high
 *   byte there too, so a 16-bit grey image is not washed out.
 * - RGB -> grey: L = (19595 R + 38470 G + 7471 B + 32768) >> 16, PIL's fixed-point form of
 *   ITU-R 601-2 L = R 299/1000 + G 587/1000 + B 114/1000 (rounded); grey -> RGB repeats L.
 * - JPEG with libjpeg's defaults (islow DCT, fancy upsampling), as PIL decodes it. 4-channel
 *   (CMYK/YCCK) JPEGs are taken as Adobe-inverted CMYK, as PIL does, and turned into RGB with
 *   PIL's formula R = K' - K' C'/255 (rounded as PIL's MULDIV255, K' = 255 - K, C' = 255 - C).
 * - EXIF orientation is not applied (nor is it by PIL's open or torchvision's ImageFolder).
 * An image of more than RT_IMAGE_MAX_PIXELS pixels is refused before anything is allocated for
 * it (PIL's DecompressionBombError limit), as are zero-sized ones.
 *
 * Resampling (image_resize.c): PIL's Image.resize(size, Image.BILINEAR) reproduced exactly: a
 * separable triangle filter, widened by the scale factor when shrinking (antialiasing), with
 * PIL's coefficient rounding (22-bit fixed point), horizontal pass first, rounding to u8 in
 * between; an axis whose size does not change is not resampled.
 */
#ifndef RETORT_IMAGE_H
#define RETORT_IMAGE_H

#include "tensor.h"

/* PIL's Image.MAX_IMAGE_PIXELS * 2: larger images are refused as decompression bombs. */
#define RT_IMAGE_MAX_PIXELS ((int64_t)178956970)

/* A decoded image: height x width pixels of `channels` interleaved u8 samples (row-major HWC). */
struct rt_image {
    int64_t height, width;
    int channels;      /* 1 (grey) or 3 (RGB) */
    uint8_t *pixels;   /* malloc'ed; rt_image_free releases it */
};

/* Decodes a PNG or JPEG held in memory. `name` (may be NULL) names the source in messages.
 * channels: 1 or 3. On failure out->pixels is NULL and nothing is held: RT_ERR_FORMAT for data
 * that is not PNG/JPEG or is corrupt/truncated (the message says which and what the library
 * reported), RT_ERR_OOM, RT_ERR_ARG for bad arguments. */
enum rt_status rt_image_decode_memory(const void *data, size_t size, const char *name, int channels,
                                      struct rt_image *out);
/* The same for a file (read whole): RT_ERR_IO when it cannot be opened or read. Messages start
 * with "rt_image_decode: <path>: ". */
enum rt_status rt_image_decode_file(const char *path, int channels, struct rt_image *out);
void rt_image_free(struct rt_image *img); /* frees the pixels, leaves a zeroed struct (NULL fine) */

/* Resamples src (sh x sw x channels, HWC u8) to dst (dh x dw x channels, HWC u8) exactly as
 * PIL's Image.resize((dw, dh), Image.BILINEAR) does for mode L (channels 1) or RGB (3). Any
 * channel count 1..4 is accepted. dst must not overlap src. */
enum rt_status rt_image_resize_bilinear(const uint8_t *src, int64_t sh, int64_t sw, int channels, uint8_t *dst,
                                        int64_t dh, int64_t dw);

/* Failures of a tolerant batch decode: how many files failed, and which were the first ones
 * (lowest indices, in order) with their messages. */
#define RT_IMAGE_FAILURES_KEPT 8
#define RT_IMAGE_MESSAGE_MAX 512
struct rt_image_failures {
    int64_t count;
    int kept;                                   /* entries filled below: min(count, RT_IMAGE_FAILURES_KEPT) */
    int64_t index[RT_IMAGE_FAILURES_KEPT];      /* 0-based indices into paths */
    enum rt_status status[RT_IMAGE_FAILURES_KEPT];
    char message[RT_IMAGE_FAILURES_KEPT][RT_IMAGE_MESSAGE_MAX];
};

/* Decodes n files into a new contiguous u8 CPU tensor (n, channels, height, width): each file is
 * decoded, converted to `channels`, resized to height x width (rt_image_resize_bilinear) and
 * stored planar. One file per iteration of an OpenMP parallel loop (dynamic schedule: file sizes
 * vary); results do not depend on the thread count.
 * failures == NULL (strict): any failure fails the call with the message of the failing file of
 * lowest index (naming it), and no tensor is made.
 * failures != NULL (tolerant): a file that fails leaves its example all zeros, is counted and,
 * if among the first RT_IMAGE_FAILURES_KEPT, listed; failed (NULL or n bytes) gets 1 for each
 * failed file and 0 for the others; the call returns RT_OK with the tensor.
 * Either way RT_ERR_INTERRUPTED when rt_interrupt_request() was called during the loop. */
enum rt_status rt_image_decode_batch(const char *const *paths, int64_t n, int64_t height, int64_t width, int channels,
                                     struct rt_image_failures *failures, uint8_t *failed, struct rt_tensor **out);

#endif
