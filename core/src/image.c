/* Decoding one PNG or JPEG (from a file or from memory) to 8-bit grey or RGB, converted as PIL
 * converts (retort/image.h states the rules).
 *
 * Why it is written this way:
 * - The whole file is read first and decoded from memory: one read per file, the format is told
 *   by its signature, and a truncated file is seen as such by both decoders.
 * - libpng and libjpeg report errors by calling a handler that must not return (their default
 *   ones print and exit). Ours format the library's message into a buffer and longjmp back; all
 *   memory that can be live at that point is owned by pointers declared volatile in the function
 *   that called setjmp, so the error path frees it. Warnings are swallowed (the core never
 *   prints), except libjpeg's "premature end of data", which is a truncated file: an error here
 *   (PIL refuses a truncated JPEG too; libjpeg alone would pad it with grey).
 * - A header that claims more pixels than the file's bytes can encode is refused before anything
 *   is allocated for the image: a PNG's rows come from a deflate stream (at most 1032 bytes out
 *   per byte in), a Huffman-coded JPEG spends at least a bit per 8x8 block. Without this a
 *   300-byte file could make the decoders allocate and fill hundreds of megabytes of padding.
 * - libpng is asked for 8-bit samples (16-bit: high byte), palettes expanded to RGB and small
 *   grey depths scaled to 8 bits; tRNS is not expanded. Alpha, if any remains, is dropped in
 *   the conversion to `channels`, which is written once here for both formats (PIL's formulas);
 *   decoded samples that already are what was asked (RGB for 3 channels, grey for 1) become the
 *   result as they are, without a copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "internal.h"
#include "retort/image.h"

#define MAX_FILE_BYTES ((int64_t)1 << 31) /* a larger file is refused before it is read */
/* deflate's largest expansion (a 258-byte match coded in 2 bits): a PNG's raw rows cannot be more
 * than this many times the file's size */
#define DEFLATE_MAX_RATIO 1032

/* Kinds of decoded samples before the conversion to 1 or 3 channels. */
enum layout { GREY = 1, GREY_ALPHA = 2, RGB = 3, RGBA = 4, CMYK_INVERTED = 5 };

static const char *src_name(const char *name) { return name ? name : "(memory)"; }

static enum rt_status check_pixels(const char *name, const char *format, int64_t w, int64_t h)
{
    if (w <= 0 || h <= 0)
        return rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: the %s header gives a size of %lld x %lld pixels",
                        src_name(name), format, (long long)w, (long long)h);
    if (w > RT_IMAGE_MAX_PIXELS / h)
        return rt_error(RT_ERR_FORMAT,
                        "rt_image_decode: %s: the %s is %lld x %lld pixels, more than the %lld allowed "
                        "(a decompression bomb?)",
                        src_name(name), format, (long long)w, (long long)h, (long long)RT_IMAGE_MAX_PIXELS);
    return RT_OK;
}

/* PIL's ITU-R 601-2 luma in 16-bit fixed point (Convert.c, L24). */
static inline uint8_t luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

/* PIL's MULDIV255: a * b / 255 rounded, in integers. */
static inline int muldiv255(int a, int b)
{
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

static inline int clip8(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* Converts npix pixels of the given layout to `channels` (1 or 3) interleaved samples (one loop
 * per case, so each is a simple loop the compiler can unroll). */
static void convert_pixels(const uint8_t *src, enum layout lay, int64_t npix, int channels, uint8_t *dst)
{
    int step = lay == CMYK_INVERTED ? 4 : (int)lay; /* bytes per source pixel */
    if (lay == GREY || lay == GREY_ALPHA) {
        for (int64_t i = 0; i < npix; i++) {
            uint8_t v = src[step * i];
            if (channels == 1)
                dst[i] = v;
            else
                dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = v;
        }
    } else if (lay == RGB || lay == RGBA) {
        if (channels == 1) {
            for (int64_t i = 0; i < npix; i++)
                dst[i] = luma(src[step * i], src[step * i + 1], src[step * i + 2]);
        } else if (lay == RGB) {
            memcpy(dst, src, (size_t)(3 * npix));
        } else {
            for (int64_t i = 0; i < npix; i++)
                dst[3 * i] = src[4 * i], dst[3 * i + 1] = src[4 * i + 1], dst[3 * i + 2] = src[4 * i + 2];
        }
    } else { /* Adobe CMYK: stored inverted; PIL's cmyk2rgb on the un-inverted values */
        for (int64_t i = 0; i < npix; i++) {
            const uint8_t *p = src + 4 * i;
            int nk = p[3]; /* 255 - K with K = 255 - stored */
            unsigned r = (unsigned)clip8(nk - muldiv255(255 - p[0], nk));
            unsigned g = (unsigned)clip8(nk - muldiv255(255 - p[1], nk));
            unsigned b = (unsigned)clip8(nk - muldiv255(255 - p[2], nk));
            if (channels == 1)
                dst[i] = luma(r, g, b);
            else
                dst[3 * i] = (uint8_t)r, dst[3 * i + 1] = (uint8_t)g, dst[3 * i + 2] = (uint8_t)b;
        }
    }
}

/* The decoded samples as the output image: handed over when they already are `channels` samples
 * a pixel (*samples is then NULL), else converted into a new buffer. */
static enum rt_status finish(const char *name, uint8_t **samples, enum layout lay, int64_t w, int64_t h,
                             int channels, struct rt_image *out)
{
    if ((lay == RGB && channels == 3) || (lay == GREY && channels == 1)) {
        out->height = h, out->width = w, out->channels = channels, out->pixels = *samples;
        *samples = NULL;
        return RT_OK;
    }
    uint8_t *px = malloc((size_t)(w * h * channels));
    if (!px)
        return rt_error(RT_ERR_OOM, "rt_image_decode: %s: out of memory for %lld x %lld pixels", src_name(name),
                        (long long)w, (long long)h);
    convert_pixels(*samples, lay, w * h, channels, px);
    out->height = h, out->width = w, out->channels = channels, out->pixels = px;
    return RT_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* PNG */

struct png_ctx {
    const uint8_t *data;
    size_t size, pos;
    int truncated;
    char msg[256];
};

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_read_mem(png_structp png, png_bytep buf, size_t n)
{
    struct png_ctx *c = png_get_io_ptr(png);
    if (n > c->size - c->pos) {
        c->truncated = 1;
        png_longjmp(png, 1);
    }
    memcpy(buf, c->data + c->pos, n);
    c->pos += n;
}

static enum rt_status decode_png(const uint8_t *data, size_t size, const char *name, int channels,
                                 struct rt_image *out)
{
    struct png_ctx ctx = {.data = data, .size = size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return rt_error(RT_ERR_OOM, "rt_image_decode: %s: out of memory (libpng)", src_name(name));
    }
    uint8_t *volatile samples = NULL;
    png_bytep *volatile rows = NULL;
    volatile enum rt_status st = RT_OK;
    if (setjmp(png_jmpbuf(png))) {
        if (st == RT_OK && ctx.truncated)
            st = rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: truncated PNG: the file ends after %zu bytes, "
                          "before the image is complete", src_name(name), size);
        else if (st == RT_OK)
            st = rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: corrupt PNG: %s", src_name(name), ctx.msg);
        goto done;
    }
    png_set_read_fn(png, &ctx, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if ((st = check_pixels(name, "PNG", w, h)) != RT_OK)
        goto done;
    /* the raw rows (before any transform) come out of the IDAT's deflate stream, which the file
     * holds: a header claiming more than the file can expand to is refused before the image is
     * allocated (a few hundred bytes may not ask for hundreds of megabytes) */
    uint64_t raw = (uint64_t)h * (uint64_t)png_get_rowbytes(png, info); /* <= 8 bytes per pixel: < 2^31 */
    if (raw / DEFLATE_MAX_RATIO > size) {
        st = rt_error(RT_ERR_FORMAT,
                      "rt_image_decode: %s: truncated or corrupt PNG: its %u x %u pixels are %llu bytes of rows, "
                      "more than its %zu bytes can hold (deflate expands at most %d:1)",
                      src_name(name), w, h, (unsigned long long)raw, size, DEFLATE_MAX_RATIO);
        goto done;
    }
    png_set_strip_16(png); /* high byte */
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int pc = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || pc < 1 || pc > 4 || rowbytes != (size_t)w * (size_t)pc) {
        st = rt_error(RT_ERR_INTERNAL, "rt_image_decode: %s: libpng gave %d-bit samples, %d channels, %zu bytes a row",
                      src_name(name), png_get_bit_depth(png, info), pc, rowbytes);
        goto done;
    }
    samples = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!samples || !rows) {
        st = rt_error(RT_ERR_OOM, "rt_image_decode: %s: out of memory for %u x %u pixels", src_name(name), w, h);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = samples + (size_t)y * rowbytes;
    png_read_image(png, rows);
    /* the image is complete; what follows it (IEND, text) is not read, as PIL does not */
    uint8_t *decoded = samples;
    st = finish(name, &decoded, (enum layout)pc, w, h, channels, out);
    samples = decoded; /* NULL when handed over */
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    free(samples);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* JPEG */

struct jpeg_ctx {
    struct jpeg_error_mgr mgr; /* first: libjpeg hands back a pointer to it */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int truncated;
};

static void jpeg_on_error(j_common_ptr cinfo)
{
    struct jpeg_ctx *c = (struct jpeg_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, c->msg);
    longjmp(c->jump, 1);
}

/* level -1: a warning (corrupt data libjpeg works around); >= 0: trace messages */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    struct jpeg_ctx *c = (struct jpeg_ctx *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        c->truncated = 1;
}

static void jpeg_on_output(j_common_ptr cinfo) { (void)cinfo; }

static enum rt_status decode_jpeg(const uint8_t *data, size_t size, const char *name, int channels,
                                  struct rt_image *out)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.mgr);
    ctx.mgr.error_exit = jpeg_on_error;
    ctx.mgr.emit_message = jpeg_on_message;
    ctx.mgr.output_message = jpeg_on_output;
    uint8_t *volatile samples = NULL;
    volatile int created = 0;
    volatile enum rt_status st = RT_OK;
    if (setjmp(ctx.jump)) {
        if (st == RT_OK && ctx.truncated) /* the end of the data made the structure invalid */
            st = rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: truncated JPEG: the data ends after %zu bytes, before "
                          "the image is complete (libjpeg: %s)", src_name(name), size, ctx.msg);
        else if (st == RT_OK)
            st = rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: corrupt JPEG: %s", src_name(name), ctx.msg);
        goto done;
    }
    jpeg_create_decompress(&cinfo);
    created = 1;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if ((st = check_pixels(name, "JPEG", cinfo.image_width, cinfo.image_height)) != RT_OK)
        goto done;
    /* Huffman coding spends at least one bit on every 8x8 block of every component (its DC code),
     * so the file's bits bound its blocks. A header that claims more is refused here, before
     * jpeg_start_decompress allocates for the image (a progressive one: all its coefficients);
     * libjpeg would otherwise pad the missing data with grey (with a warning) and decode it all.
     * Arithmetic coding has no such floor: a flat image can be tiny, so none is checked there. */
    if (!cinfo.arith_code) {
        uint64_t blocks = 0;
        for (int c = 0; c < cinfo.num_components; c++)
            blocks += (uint64_t)cinfo.comp_info[c].width_in_blocks * cinfo.comp_info[c].height_in_blocks;
        if (blocks / 8 > size) {
            st = rt_error(RT_ERR_FORMAT,
                          "rt_image_decode: %s: truncated or corrupt JPEG: %u x %u pixels in %d components are "
                          "%llu blocks of 8x8, which need at least %llu bytes of Huffman-coded data (a bit each); "
                          "the file has %zu",
                          src_name(name), cinfo.image_width, cinfo.image_height, cinfo.num_components,
                          (unsigned long long)blocks, (unsigned long long)((blocks + 7) / 8), size);
            goto done;
        }
    }
    enum layout lay;
    switch (cinfo.num_components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE, lay = GREY; break;
    case 3: cinfo.out_color_space = JCS_RGB, lay = RGB; break;
    case 4: cinfo.out_color_space = JCS_CMYK, lay = CMYK_INVERTED; break;
    default:
        st = rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: a JPEG with %d colour components (expected 1, 3 or 4)",
                      src_name(name), cinfo.num_components);
        goto done;
    }
    jpeg_start_decompress(&cinfo);
    int64_t w = cinfo.output_width, h = cinfo.output_height, pc = cinfo.output_components;
    if (pc != (lay == GREY ? 1 : lay == RGB ? 3 : 4)) {
        st = rt_error(RT_ERR_INTERNAL, "rt_image_decode: %s: libjpeg gave %d components", src_name(name), (int)pc);
        goto done;
    }
    samples = malloc((size_t)(w * h * pc));
    if (!samples) {
        st = rt_error(RT_ERR_OOM, "rt_image_decode: %s: out of memory for %lld x %lld pixels", src_name(name),
                      (long long)w, (long long)h);
        goto done;
    }
    while (cinfo.output_scanline < cinfo.output_height && !ctx.truncated) {
        JSAMPROW row = samples + (size_t)cinfo.output_scanline * (size_t)(w * pc);
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    if (ctx.truncated) {
        st = rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: truncated JPEG: the data ends after %zu bytes, before the "
                      "image is complete", src_name(name), size);
        goto done;
    }
    uint8_t *decoded = samples;
    st = finish(name, &decoded, lay, w, h, channels, out);
    samples = decoded; /* NULL when handed over */
done:
    if (created)
        jpeg_destroy_decompress(&cinfo);
    free(samples);
    return st;
}

/* ------------------------------------------------------------------------------------------ */

static const uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* What a file that is neither PNG nor JPEG looks like, for the message. */
static const char *guess_format(const uint8_t *d, size_t n)
{
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
        return "a GIF image";
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return "a BMP image";
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return "a WebP image";
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0))
        return "a TIFF image";
    if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7')
        return "a PNM image";
    if (n >= 4 && memcmp(d, PNG_SIGNATURE, n < 8 ? n : 8) == 0)
        return "the start of a PNG signature, cut short";
    return NULL;
}

enum rt_status rt_image_decode_memory(const void *data, size_t size, const char *name, int channels,
                                      struct rt_image *out)
{
    if (!out)
        return rt_error(RT_ERR_ARG, "rt_image_decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && size > 0)
        return rt_error(RT_ERR_ARG, "rt_image_decode: %s: data is NULL", src_name(name));
    if (channels != 1 && channels != 3)
        return rt_error(RT_ERR_ARG, "rt_image_decode: channels must be 1 or 3, got %d", channels);
    const uint8_t *d = data;
    if (size == 0)
        return rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: empty file (0 bytes), expected a PNG or JPEG image",
                        src_name(name));
    if (size >= 8 && memcmp(d, PNG_SIGNATURE, 8) == 0)
        return decode_png(d, size, name, channels, out);
    if (size >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return decode_jpeg(d, size, name, channels, out);
    const char *what = guess_format(d, size);
    if (what)
        return rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: not a PNG or JPEG image (it looks like %s)",
                        src_name(name), what);
    return rt_error(RT_ERR_FORMAT,
                    "rt_image_decode: %s: not a PNG or JPEG image (its %zu bytes start with %02x %02x %02x %02x; "
                    "expected 89 50 4e 47 (PNG) or ff d8 ff (JPEG))",
                    src_name(name), size, d[0], size > 1 ? d[1] : 0, size > 2 ? d[2] : 0, size > 3 ? d[3] : 0);
}

enum rt_status rt_image_decode_file(const char *path, int channels, struct rt_image *out)
{
    if (!out)
        return rt_error(RT_ERR_ARG, "rt_image_decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return rt_error(RT_ERR_ARG, "rt_image_decode: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rt_error(RT_ERR_IO, "rt_image_decode: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return rt_error(RT_ERR_IO, "rt_image_decode: cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return rt_error(RT_ERR_IO, "rt_image_decode: %s is not a regular file", path);
    }
    if ((int64_t)sb.st_size > MAX_FILE_BYTES) {
        close(fd);
        return rt_error(RT_ERR_FORMAT, "rt_image_decode: %s: %lld bytes, more than the %lld an image file may have",
                        path, (long long)sb.st_size, (long long)MAX_FILE_BYTES);
    }
    size_t size = (size_t)sb.st_size, got = 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return rt_error(RT_ERR_OOM, "rt_image_decode: %s: out of memory for %zu bytes", path, size);
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return rt_error(RT_ERR_IO, "rt_image_decode: cannot read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break; /* shrank while reading: decode what is there */
        got += (size_t)r;
    }
    close(fd);
    enum rt_status st = rt_image_decode_memory(buf, got, path, channels, out);
    free(buf);
    return st;
}

void rt_image_free(struct rt_image *img)
{
    if (!img)
        return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}
