/* Image decoding and resampling (retort/image.h), with fixtures written by the test itself through
 * libpng's and libjpeg's encoders: PNG colour types and depths against the pixels written (grey,
 * grey+alpha, RGB, RGBA, palettes with tRNS, 1/2/4/16-bit, Adam7 interlacing), PIL's luma
 * formula against its closed form, JPEG round trips; every error path (truncated at every cut
 * point, flipped bits, garbage, empty, huge headers, bad arguments) returning a status and a
 * message naming the file, printing nothing and leaking nothing (run it under ASan); the resize
 * against a naive double-precision loop and closed forms; the batch decode against single
 * decodes, on 1 and 2 threads, strict and tolerant. (PIL itself is the reference of
 * tests/lua/image_folder_spec.lua.) */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "harness.h"
#include "retort/image.h"

static const char *dir; /* h_tmpdir(): removed by h_finish */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(unsigned n) { return (unsigned)(h_uniform(&rng_state) * n); }

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* A PNG through libpng's writer. samples: h rows of w * channels(color) samples, 8- or 16-bit
 * values in host order (uint16_t for depth 16, uint8_t otherwise, one sample per byte even when
 * depth < 8: packed here). */
static void write_png(const char *path, int w, int h, int color, int depth, bool interlace, const void *samples,
                      const png_color *palette, int npal, const uint8_t *trans, int ntrans, const png_color_16 *tcolor)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "write_png failed\n");
        exit(1);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette)
        png_set_PLTE(png, info, palette, npal);
    if (trans || tcolor)
        png_set_tRNS(png, info, trans, ntrans, tcolor);
    png_write_info(png, info);
    int ch = color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_PALETTE ? 1
             : color == PNG_COLOR_TYPE_GRAY_ALPHA                        ? 2
             : color == PNG_COLOR_TYPE_RGB                               ? 3
                                                                         : 4;
    size_t rowbytes = png_get_rowbytes(png, info);
    uint8_t *rows = calloc((size_t)h, rowbytes);
    png_bytep *rp = malloc(sizeof(png_bytep) * (size_t)h);
    for (int y = 0; y < h; y++) {
        uint8_t *r = rows + (size_t)y * rowbytes;
        rp[y] = r;
        for (int i = 0; i < w * ch; i++) {
            if (depth == 16) {
                uint16_t v = ((const uint16_t *)samples)[(size_t)y * w * ch + i];
                r[2 * i] = (uint8_t)(v >> 8), r[2 * i + 1] = (uint8_t)v;
            } else if (depth == 8) {
                r[i] = ((const uint8_t *)samples)[(size_t)y * w * ch + i];
            } else {
                unsigned v = ((const uint8_t *)samples)[(size_t)y * w * ch + i];
                int per = 8 / depth, shift = 8 - depth * (i % per + 1);
                r[i / per] |= (uint8_t)(v << shift);
            }
        }
    }
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rp);
    free(rows);
    fclose(f);
}

static void write_jpeg(const char *path, int w, int h, int comps, J_COLOR_SPACE cs, int quality, const uint8_t *px)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = comps, c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* The closed form PIL's convert("L") computes: ITU-R 601-2 luma, R 299/1000 + G 587/1000 +
 * B 114/1000, in its 16-bit fixed point with rounding. */
static uint8_t pil_luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16);
}

/* decodes path and checks it against want (h x w x channels) */
static bool decoded_equals(const char *path, int channels, int w, int h, const uint8_t *want)
{
    struct rt_image img;
    if (!CHECK_OK(rt_image_decode_file(path, channels, &img)))
        return false;
    bool ok = CHECK(img.width == w && img.height == h && img.channels == channels, "%s: %lldx%lldx%d", path,
                    (long long)img.width, (long long)img.height, img.channels);
    int bad = 0;
    for (int i = 0; ok && i < w * h * channels; i++)
        if (img.pixels[i] != want[i] && bad++ < 5)
            h_fail(__FILE__, __LINE__, "%s (%d channels): sample %d is %d, expected %d", path, channels, i,
                   img.pixels[i], want[i]);
    rt_image_free(&img);
    return ok && bad == 0;
}

enum { W = 13, H = 9 };

static void test_png_colour_types(void)
{
    uint8_t rgba[H][W][4], rgb_ref[H * W * 3], l_ref[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 4; c++)
                rgba[y][x][c] = (uint8_t)rnd(256);
    rgba[0][0][0] = 255, rgba[0][0][1] = 255, rgba[0][0][2] = 255; /* the extremes */
    rgba[0][1][0] = 0, rgba[0][1][1] = 0, rgba[0][1][2] = 0;
    for (int interlace = 0; interlace < 2; interlace++) {
        /* RGB and RGBA: RGB as written, alpha dropped; grey by PIL's luma */
        uint8_t rgb[H * W * 3], grey[H * W], ga[H * W * 2];
        for (int p = 0; p < H * W; p++) {
            const uint8_t *s = &rgba[0][0][0] + 4 * p;
            memcpy(rgb + 3 * p, s, 3);
            rgb_ref[3 * p] = s[0], rgb_ref[3 * p + 1] = s[1], rgb_ref[3 * p + 2] = s[2];
            l_ref[p] = pil_luma(s[0], s[1], s[2]);
            grey[p] = s[0];
            ga[2 * p] = s[0], ga[2 * p + 1] = s[3];
        }
        const char *p = h_tmp_path(interlace ? "rgb_i.png" : "rgb.png");
        write_png(p, W, H, PNG_COLOR_TYPE_RGB, 8, interlace, rgb, NULL, 0, NULL, 0, NULL);
        decoded_equals(p, 3, W, H, rgb_ref);
        decoded_equals(p, 1, W, H, l_ref);
        p = h_tmp_path("rgba.png");
        write_png(p, W, H, PNG_COLOR_TYPE_RGBA, 8, interlace, rgba, NULL, 0, NULL, 0, NULL);
        decoded_equals(p, 3, W, H, rgb_ref);
        decoded_equals(p, 1, W, H, l_ref);
        /* grey and grey+alpha: grey as written, repeated for RGB */
        uint8_t grey3[H * W * 3];
        for (int i = 0; i < H * W; i++)
            grey3[3 * i] = grey3[3 * i + 1] = grey3[3 * i + 2] = grey[i];
        p = h_tmp_path("grey.png");
        write_png(p, W, H, PNG_COLOR_TYPE_GRAY, 8, interlace, grey, NULL, 0, NULL, 0, NULL);
        decoded_equals(p, 1, W, H, grey);
        decoded_equals(p, 3, W, H, grey3);
        p = h_tmp_path("grey_alpha.png");
        write_png(p, W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, interlace, ga, NULL, 0, NULL, 0, NULL);
        decoded_equals(p, 1, W, H, grey);
        /* grey with a tRNS colour: ignored */
        p = h_tmp_path("grey_trns.png");
        write_png(p, W, H, PNG_COLOR_TYPE_GRAY, 8, interlace, grey, NULL, 0, NULL, 0,
                  &(png_color_16){.gray = grey[3]});
        decoded_equals(p, 1, W, H, grey);
        /* 16-bit: the high byte */
        uint16_t rgb16[H * W * 3], ga16[H * W * 2];
        for (int i = 0; i < H * W * 3; i++)
            rgb16[i] = (uint16_t)(rgb[i] << 8 | rnd(256));
        for (int i = 0; i < H * W * 2; i++)
            ga16[i] = (uint16_t)(ga[i] << 8 | rnd(256));
        p = h_tmp_path("rgb16.png");
        write_png(p, W, H, PNG_COLOR_TYPE_RGB, 16, interlace, rgb16, NULL, 0, NULL, 0, NULL);
        decoded_equals(p, 3, W, H, rgb_ref);
        decoded_equals(p, 1, W, H, l_ref);
        p = h_tmp_path("ga16.png");
        write_png(p, W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 16, interlace, ga16, NULL, 0, NULL, 0, NULL);
        decoded_equals(p, 1, W, H, grey);
        decoded_equals(p, 3, W, H, grey3);
    }
}

static void test_png_small_depths_and_palettes(void)
{
    for (int depth = 1; depth <= 8; depth *= 2) {
        /* grey at 1, 2, 4, 8 bits: v scaled to 0..255 by repeating its bits (v * 255 / (2^depth - 1)) */
        uint8_t g[H * W], want[H * W];
        int maxv = (1 << depth) - 1;
        for (int i = 0; i < H * W; i++) {
            g[i] = (uint8_t)rnd((unsigned)maxv + 1);
            want[i] = (uint8_t)(g[i] * 255 / maxv);
        }
        g[0] = 0, want[0] = 0, g[1] = (uint8_t)maxv, want[1] = 255;
        char name[32];
        snprintf(name, sizeof name, "grey%d.png", depth);
        write_png(h_tmp_path(name), W, H, PNG_COLOR_TYPE_GRAY, depth, depth == 2, g, NULL, 0, NULL, 0, NULL);
        decoded_equals(h_tmp_path(name), 1, W, H, want);
        /* palettes at 1, 2, 4, 8 bits, with a tRNS chunk (ignored): colours looked up */
        int npal = 1 << depth;
        png_color pal[256];
        uint8_t trans[256];
        for (int i = 0; i < npal; i++) {
            pal[i] = (png_color){(png_byte)rnd(256), (png_byte)rnd(256), (png_byte)rnd(256)};
            trans[i] = (uint8_t)rnd(256);
        }
        uint8_t idx[H * W], rgb[H * W * 3], l[H * W];
        for (int i = 0; i < H * W; i++) {
            idx[i] = (uint8_t)rnd((unsigned)npal);
            png_color c = pal[idx[i]];
            rgb[3 * i] = c.red, rgb[3 * i + 1] = c.green, rgb[3 * i + 2] = c.blue;
            l[i] = pil_luma(c.red, c.green, c.blue);
        }
        snprintf(name, sizeof name, "pal%d.png", depth);
        write_png(h_tmp_path(name), W, H, PNG_COLOR_TYPE_PALETTE, depth, depth == 4, idx, pal, npal, trans,
                  npal > 3 ? npal - 3 : npal, NULL);
        decoded_equals(h_tmp_path(name), 3, W, H, rgb);
        decoded_equals(h_tmp_path(name), 1, W, H, l);
    }
    /* the luma closed form against the exact ratio: within half a level everywhere (a sweep) */
    int worst = 0;
    for (int r = 0; r < 256; r += 5)
        for (int g = 0; g < 256; g += 3)
            for (int b = 0; b < 256; b += 7) {
                double exact = r * 0.299 + g * 0.587 + b * 0.114;
                int d = abs((int)pil_luma((unsigned)r, (unsigned)g, (unsigned)b) - (int)lround(exact));
                worst = d > worst ? d : worst;
            }
    CHECK(worst <= 1, "luma off by %d", worst);
}

static void test_jpeg_round_trips(void)
{
    enum { JW = 40, JH = 24 };
    uint8_t rgb[JH * JW * 3], grey[JH * JW];
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++) {
            uint8_t *p = rgb + 3 * (y * JW + x);
            p[0] = (uint8_t)(x * 6), p[1] = (uint8_t)(y * 10), p[2] = (uint8_t)((x + y) * 3);
            grey[y * JW + x] = (uint8_t)(x * 3 + y * 4);
        }
    write_jpeg(h_tmp_path("rgb.jpg"), JW, JH, 3, JCS_RGB, 100, rgb);
    write_jpeg(h_tmp_path("grey.jpg"), JW, JH, 1, JCS_GRAYSCALE, 100, grey);
    struct rt_image a, b;
    REQUIRE_OK(rt_image_decode_file(h_tmp_path("rgb.jpg"), 3, &a));
    int worst = 0;
    for (int i = 0; i < JW * JH * 3; i++)
        worst = abs(a.pixels[i] - rgb[i]) > worst ? abs(a.pixels[i] - rgb[i]) : worst;
    CHECK(a.width == JW && a.height == JH && worst <= 12, "RGB JPEG at quality 100 off by %d", worst);
    /* grey from an RGB JPEG: PIL's luma of the decoded RGB */
    if (CHECK_OK(rt_image_decode_file(h_tmp_path("rgb.jpg"), 1, &b))) {
        int bad = 0;
        for (int i = 0; i < JW * JH; i++)
            bad += b.pixels[i] != pil_luma(a.pixels[3 * i], a.pixels[3 * i + 1], a.pixels[3 * i + 2]);
        CHECK(bad == 0, "%d grey pixels are not the luma of the RGB ones", bad);
    }
    rt_image_free(&a);
    rt_image_free(&b);
    REQUIRE_OK(rt_image_decode_file(h_tmp_path("grey.jpg"), 3, &a));
    worst = 0;
    for (int i = 0; i < JW * JH; i++) {
        worst = abs(a.pixels[3 * i] - grey[i]) > worst ? abs(a.pixels[3 * i] - grey[i]) : worst;
        CHECK(a.pixels[3 * i] == a.pixels[3 * i + 1] && a.pixels[3 * i] == a.pixels[3 * i + 2], "grey repeated");
    }
    CHECK(worst <= 4, "grey JPEG off by %d", worst);
    rt_image_free(&a);
    rt_image_free(&a); /* twice: harmless */
    rt_image_free(NULL);
}

/* stderr goes to a file while fn runs; returns the bytes written to it */
static long stderr_bytes(void (*fn)(void))
{
    fflush(stderr);
    int saved = dup(2);
    const char *p = h_tmp_path("stderr.txt");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void expect_failure(const void *data, size_t n, const char *name, enum rt_status want, const char *substr)
{
    struct rt_image img = {.pixels = (uint8_t *)1};
    enum rt_status st = rt_image_decode_memory(data, n, name, 3, &img);
    CHECK(st == want, "%s (%zu bytes): status %s, expected %s (%s)", name, n, rt_status_name(st),
          rt_status_name(want), rt_error_msg());
    CHECK(img.pixels == NULL, "%s: pixels left set", name);
    CHECK(strstr(rt_error_msg(), name) != NULL, "%s: message does not name it: %s", name, rt_error_msg());
    if (substr)
        CHECK(strstr(rt_error_msg(), substr) != NULL, "%s: message '%s' lacks '%s'", name, rt_error_msg(), substr);
}

static void corrupt_files(void)
{
    size_t npng, njpg, nprog;
    uint8_t *png = read_bytes(h_tmp_path("rgb.png"), &npng), *jpg = read_bytes(h_tmp_path("rgb.jpg"), &njpg);
    uint8_t *prog = read_bytes(h_tmp_path("prog.jpg"), &nprog);
    /* every cut point of the PNG (it is small) and every few of the JPEGs */
    for (size_t cut = 0; cut < npng - 12; cut++) { /* the last 12 bytes: IEND, see below */
        char name[64];
        snprintf(name, sizeof name, "rgb.png cut at %zu", cut);
        expect_failure(png, cut, name, RT_ERR_FORMAT, cut == 0 ? "empty file" : NULL);
        if (cut > 60)
            CHECK(strstr(rt_error_msg(), "truncated PNG") != NULL, "%s: %s", name, rt_error_msg());
    }
    /* a PNG cut inside its IEND chunk still holds the whole image: it decodes (PIL does not read IEND either) */
    for (size_t cut = npng - 12; cut < npng; cut++) {
        struct rt_image img;
        if (CHECK_OK(rt_image_decode_memory(png, cut, "no_iend.png", 3, &img)))
            CHECK(img.width == W && img.height == H, "size");
        rt_image_free(&img);
    }
    for (size_t cut = 0; cut < njpg; cut += 7) {
        char name[64];
        snprintf(name, sizeof name, "rgb.jpg cut at %zu", cut);
        expect_failure(jpg, cut, name, RT_ERR_FORMAT, NULL);
        if (cut > 3)
            CHECK(strstr(rt_error_msg(), "truncated JPEG: the data ends after") != NULL, "%s: %s", name,
                  rt_error_msg());
    }
    for (size_t cut = 3; cut < nprog; cut += 11)
        expect_failure(prog, cut, "progressive JPEG cut", RT_ERR_FORMAT, "truncated JPEG");
    /* flipped bits: a PNG's CRCs catch them; whatever happens, no crash, no leak, no output */
    for (size_t at = 8; at < npng; at += 3) {
        uint8_t *c = malloc(npng);
        memcpy(c, png, npng);
        c[at] ^= 0x10;
        struct rt_image img;
        if (rt_image_decode_memory(c, npng, "flipped.png", 3, &img) == RT_OK)
            rt_image_free(&img);
        else
            CHECK(strstr(rt_error_msg(), "flipped.png") != NULL, "%s", rt_error_msg());
        free(c);
    }
    for (size_t at = 2; at < njpg; at += 5) {
        uint8_t *c = malloc(njpg);
        memcpy(c, jpg, njpg);
        c[at] ^= 0xff;
        struct rt_image img;
        if (rt_image_decode_memory(c, njpg, "flipped.jpg", 1, &img) == RT_OK)
            rt_image_free(&img);
        else
            CHECK(strstr(rt_error_msg(), "flipped.jpg") != NULL, "%s", rt_error_msg());
        free(c);
    }
    /* an IDAT byte changed: the chunk's CRC no longer matches */
    uint8_t *c = malloc(npng);
    memcpy(c, png, npng);
    c[npng - 12 - 8] ^= 1; /* inside the last IDAT's data, before its CRC and IEND */
    expect_failure(c, npng, "bad_crc.png", RT_ERR_FORMAT, "corrupt PNG");
    free(c);
    free(png);
    free(jpg);
    free(prog);
    /* not images */
    const char *text = "hello, this is text";
    expect_failure(text, strlen(text), "text.jpg", RT_ERR_FORMAT,
                   "not a PNG or JPEG image (its 19 bytes start with 68 65 6c 6c");
    expect_failure("GIF89a....", 10, "anim.png", RT_ERR_FORMAT, "it looks like a GIF image");
    expect_failure("BM\0\0\0\0", 6, "x.png", RT_ERR_FORMAT, "it looks like a BMP image");
    expect_failure("RIFF\0\0\0\0WEBPVP8 ", 16, "x.jpg", RT_ERR_FORMAT, "it looks like a WebP image");
    expect_failure("\x89PNG\r\n", 6, "short.png", RT_ERR_FORMAT, "the start of a PNG signature, cut short");
    expect_failure("\xff\xd8\xff", 3, "three.jpg", RT_ERR_FORMAT, "truncated JPEG");
    expect_failure("", 0, "zero.png", RT_ERR_FORMAT, "empty file (0 bytes)");
}

static void put_chunk(uint8_t *buf, size_t *n, const char *type, const uint8_t *data, uint32_t len)
{
    uint8_t *p = buf + *n;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(len >> (24 - 8 * i));
    memcpy(p + 4, type, 4);
    if (len)
        memcpy(p + 8, data, len);
    uint32_t crc = (uint32_t)crc32(0, p + 4, 4 + len);
    for (int i = 0; i < 4; i++)
        p[8 + len + i] = (uint8_t)(crc >> (24 - 8 * i));
    *n += 12 + len;
}

/* a PNG whose IHDR claims w x h, then an IDAT of 2 bytes and IEND (valid CRCs) */
static size_t png_header(uint8_t *buf, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(buf, sig, 8);
    uint8_t ihdr[13] = {0};
    for (int i = 0; i < 4; i++) {
        ihdr[i] = (uint8_t)(w >> (24 - 8 * i));
        ihdr[4 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    ihdr[8] = 8, ihdr[9] = 2; /* 8-bit RGB */
    size_t n = 8;
    put_chunk(buf, &n, "IHDR", ihdr, 13);
    put_chunk(buf, &n, "IDAT", (const uint8_t *)"\x78\x9c", 2);
    put_chunk(buf, &n, "IEND", NULL, 0);
    return n;
}

static void huge_and_odd_headers(void)
{
    uint8_t buf[64];
    size_t n = png_header(buf, 100000, 100000);
    expect_failure(buf, n, "bomb.png", RT_ERR_FORMAT, "more than the 178956970 allowed");
    n = png_header(buf, 20000, 9000); /* 180M pixels: just over */
    expect_failure(buf, n, "big.png", RT_ERR_FORMAT, "decompression bomb");
    n = png_header(buf, 0, 5);
    expect_failure(buf, n, "zero_width.png", RT_ERR_FORMAT, "corrupt PNG");
    n = png_header(buf, 4, 4); /* a valid header, then too little image data */
    expect_failure(buf, n, "header_only.png", RT_ERR_FORMAT, "corrupt PNG");
    expect_failure(buf, 33, "ihdr_only.png", RT_ERR_FORMAT, "truncated PNG");
    /* a real JPEG whose SOF0 is patched to claim 65000 x 65000: refused before libjpeg allocates for it */
    size_t njpg;
    uint8_t *jpg = read_bytes(h_tmp_path("rgb.jpg"), &njpg);
    size_t sof = 2;
    while (sof + 9 < njpg && !(jpg[sof] == 0xff && jpg[sof + 1] == 0xc0))
        sof++;
    if (CHECK(sof + 9 < njpg, "no SOF0 marker")) {
        jpg[sof + 5] = 0xfd, jpg[sof + 6] = 0xe8, jpg[sof + 7] = 0xfd, jpg[sof + 8] = 0xe8;
        expect_failure(jpg, njpg, "bomb.jpg", RT_ERR_FORMAT, "the JPEG is 65000 x 65000 pixels, more than the");
    }
    free(jpg);
    /* a JPEG header without its scan: libjpeg's own message */
    static const uint8_t jpeg_hdr[] = {0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0, 8, 0, 8, 3,
                                       1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 0xff, 0xd9};
    expect_failure(jpeg_hdr, sizeof jpeg_hdr, "no_scan.jpg", RT_ERR_FORMAT, "corrupt JPEG: ");
}

/* Headers that claim more pixels than the file's bytes can encode are refused before the image is
 * allocated (found by tests/fuzz/fuzz_image: a 358-byte progressive JPEG claiming 8208 x 8208, which
 * libjpeg padded with grey, allocating and resizing 200 MB). Files as compressible as the formats
 * allow still decode. */
static void claims_beyond_the_file(void)
{
    uint8_t buf[64];
    size_t n = png_header(buf, 10000, 10000); /* 300 MB of RGB rows from a 2-byte IDAT */
    expect_failure(buf, n, "claims.png", RT_ERR_FORMAT,
                   "truncated or corrupt PNG: its 10000 x 10000 pixels are 300000000 bytes of rows, more than its 59 "
                   "bytes can hold (deflate expands at most 1032:1)");
    /* the baseline and progressive JPEGs of the test above, their SOF patched to claim 4000 x 3000
     * (below the pixel limit, 188 K blocks per component at full resolution) */
    const char *names[2] = {"rgb.jpg", "prog.jpg"};
    for (int k = 0; k < 2; k++) {
        size_t njpg;
        uint8_t *jpg = read_bytes(h_tmp_path(names[k]), &njpg);
        size_t sof = 2;
        while (sof + 9 < njpg && !(jpg[sof] == 0xff && (jpg[sof + 1] == 0xc0 || jpg[sof + 1] == 0xc2)))
            sof++;
        if (CHECK(sof + 9 < njpg, "%s: no SOF marker", names[k])) {
            jpg[sof + 5] = 3000 >> 8, jpg[sof + 6] = 3000 & 0xff, jpg[sof + 7] = 4000 >> 8, jpg[sof + 8] = 4000 & 0xff;
            expect_failure(jpg, njpg, names[k], RT_ERR_FORMAT, "truncated or corrupt JPEG: 4000 x 3000 pixels in 3 "
                           "components are");
            CHECK(strstr(rt_error_msg(), "bytes of Huffman-coded data (a bit each)") != NULL, "%s", rt_error_msg());
        }
        free(jpg);
    }
    /* the most compressible images still decode: a flat PNG near deflate's limit, a flat JPEG */
    static uint8_t flat[1500 * 1500 * 3];
    write_png(h_tmp_path("flat.png"), 1500, 1500, PNG_COLOR_TYPE_GRAY, 8, false, flat, NULL, 0, NULL, 0, NULL);
    write_jpeg(h_tmp_path("flat.jpg"), 1500, 1500, 3, JCS_RGB, 10, flat);
    const char *flats[2] = {"flat.png", "flat.jpg"};
    for (int k = 0; k < 2; k++) {
        struct rt_image img;
        if (CHECK_OK(rt_image_decode_file(h_tmp_path(flats[k]), 3, &img)))
            CHECK(img.width == 1500 && img.height == 1500 && img.pixels[3 * 1500 * 1500 - 1] == 0, "%s decodes",
                  flats[k]);
        rt_image_free(&img);
    }
}

static void test_errors_print_nothing_and_leak_nothing(void)
{
    /* fixtures for the corruptions */
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (uint8_t)rnd(256);
    write_png(h_tmp_path("rgb.png"), W, H, PNG_COLOR_TYPE_RGB, 8, false, rgb, NULL, 0, NULL, 0, NULL);
    uint8_t big[64 * 48 * 3];
    for (int i = 0; i < 64 * 48 * 3; i++)
        big[i] = (uint8_t)(i * 7 + rnd(30));
    write_jpeg(h_tmp_path("rgb.jpg"), 64, 48, 3, JCS_RGB, 90, big);
    {
        /* a progressive JPEG: libjpeg's writer with jpeg_simple_progression */
        struct jpeg_compress_struct cj;
        struct jpeg_error_mgr err;
        cj.err = jpeg_std_error(&err);
        jpeg_create_compress(&cj);
        FILE *f = fopen(h_tmp_path("prog.jpg"), "wb");
        jpeg_stdio_dest(&cj, f);
        cj.image_width = 64, cj.image_height = 48, cj.input_components = 3, cj.in_color_space = JCS_RGB;
        jpeg_set_defaults(&cj);
        jpeg_simple_progression(&cj);
        jpeg_start_compress(&cj, TRUE);
        while (cj.next_scanline < cj.image_height) {
            JSAMPROW row = big + (size_t)cj.next_scanline * 64 * 3;
            jpeg_write_scanlines(&cj, &row, 1);
        }
        jpeg_finish_compress(&cj);
        jpeg_destroy_compress(&cj);
        fclose(f);
    }
    long out = stderr_bytes(corrupt_files);
    CHECK(out == 0, "the decoders wrote %ld bytes to stderr", out);
    out = stderr_bytes(huge_and_odd_headers);
    CHECK(out == 0, "the decoders wrote %ld bytes to stderr", out);
    out = stderr_bytes(claims_beyond_the_file);
    CHECK(out == 0, "the decoders wrote %ld bytes to stderr", out);
}

static void test_file_and_argument_errors(void)
{
    struct rt_image img;
    CHECK_STATUS(rt_image_decode_file(h_tmp_path("missing.png"), 3, &img), RT_ERR_IO, "cannot open");
    CHECK(strstr(rt_error_msg(), "missing.png: No such file") != NULL, "%s", rt_error_msg());
    CHECK_STATUS(rt_image_decode_file(dir, 3, &img), RT_ERR_IO, "is not a regular file");
    write_bytes(h_tmp_path("empty.jpg"), "", 0);
    CHECK_STATUS(rt_image_decode_file(h_tmp_path("empty.jpg"), 3, &img), RT_ERR_FORMAT, "empty.jpg: empty file");
    CHECK_STATUS(rt_image_decode_file(NULL, 3, &img), RT_ERR_ARG, "path is NULL");
    CHECK_STATUS(rt_image_decode_file(h_tmp_path("rgb.png"), 2, &img), RT_ERR_ARG, "channels must be 1 or 3, got 2");
    CHECK_STATUS(rt_image_decode_memory(NULL, 5, "x", 3, &img), RT_ERR_ARG, "data is NULL");
    CHECK_STATUS(rt_image_decode_memory("x", 1, "x", 3, NULL), RT_ERR_ARG, "out is NULL");
    uint8_t px[4] = {0};
    CHECK_STATUS(rt_image_resize_bilinear(px, 0, 2, 1, px, 2, 2), RT_ERR_ARG, "sizes must be >= 1");
    CHECK_STATUS(rt_image_resize_bilinear(px, 2, 2, 5, px, 2, 2), RT_ERR_ARG, "channels must be 1..4");
    CHECK_STATUS(rt_image_resize_bilinear(NULL, 2, 2, 1, px, 2, 2), RT_ERR_ARG, "src and dst are required");
    CHECK_STATUS(rt_image_resize_bilinear(px, 1, 1, 1, px, 20000, 20000), RT_ERR_ARG, "more than");
}

/* ------------------------------------------------------------------------------------------ */
/* resampling */

static double tri(double x) { return fabs(x) < 1.0 ? 1.0 - fabs(x) : 0.0; }

/* One axis by the definition: every input pixel i weighted tri((i + 0.5 - centre) / fs), the
 * weights normalised, rounded to nearest; computed in double over the whole row. */
static void naive_axis(const double *in, int64_t n_in, int64_t stride_in, double *out, int64_t n_out,
                       int64_t stride_out, bool round_u8)
{
    double scale = (double)n_in / (double)n_out, fs = scale < 1 ? 1 : scale;
    for (int64_t o = 0; o < n_out; o++) {
        double centre = (o + 0.5) * scale, sum = 0, wsum = 0;
        for (int64_t i = 0; i < n_in; i++) {
            double w = tri((i + 0.5 - centre) / fs);
            sum += w * in[i * stride_in];
            wsum += w;
        }
        double v = sum / wsum;
        out[o * stride_out] = round_u8 ? fmin(255, fmax(0, floor(v + 0.5))) : v;
    }
}

/* the naive 2-pass resize of one channel: horizontal, rounded to u8, then vertical */
static void naive_resize(const uint8_t *src, int64_t sh, int64_t sw, int c, int ch, double *dst, int64_t dh, int64_t dw)
{
    double *in = malloc(sizeof(double) * (size_t)(sh * sw)), *mid = malloc(sizeof(double) * (size_t)(sh * dw));
    for (int64_t i = 0; i < sh * sw; i++)
        in[i] = src[i * c + ch];
    for (int64_t y = 0; y < sh; y++)
        naive_axis(in + y * sw, sw, 1, mid + y * dw, dw, 1, true);
    for (int64_t x = 0; x < dw; x++)
        naive_axis(mid + x, sh, dw, dst + x, dh, dw, true);
    free(in);
    free(mid);
}

static void test_resize_against_naive_loop(void)
{
    static const int64_t sizes[][4] = {{9, 13, 4, 5},   {9, 13, 20, 31}, {40, 7, 13, 21}, {64, 64, 32, 32},
                                       {5, 80, 5, 13},  {17, 3, 6, 3},   {1, 1, 7, 4},    {31, 29, 31, 29},
                                       {200, 150, 9, 11}, {3, 2, 1, 1}};
    int worst = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int64_t sh = sizes[k][0], sw = sizes[k][1], dh = sizes[k][2], dw = sizes[k][3];
        for (int c = 1; c <= 4; c += 2) {
            uint8_t *src = malloc((size_t)(sh * sw * c)), *dst = malloc((size_t)(dh * dw * c));
            double *ref = malloc(sizeof(double) * (size_t)(dh * dw));
            for (int64_t i = 0; i < sh * sw * c; i++)
                src[i] = (uint8_t)rnd(256);
            if (!CHECK_OK(rt_image_resize_bilinear(src, sh, sw, c, dst, dh, dw)))
                break;
            for (int ch = 0; ch < c; ch++) {
                naive_resize(src, sh, sw, c, ch, ref, dh, dw);
                for (int64_t i = 0; i < dh * dw; i++) {
                    int d = abs((int)dst[i * c + ch] - (int)ref[i]);
                    worst = d > worst ? d : worst;
                }
            }
            free(src);
            free(dst);
            free(ref);
        }
    }
    /* the 22-bit fixed-point weights round differently from doubles now and then: one level at most */
    CHECK(worst <= 1, "resize differs from the naive loop by %d levels", worst);
}

static void test_resize_closed_forms(void)
{
    /* [0, 255] doubled: edges replicate, inner pixels at 1/4 and 3/4: 0, 64 (63.75), 191 (191.25), 255 */
    uint8_t two[2] = {0, 255}, four[4];
    REQUIRE_OK(rt_image_resize_bilinear(two, 1, 2, 1, four, 1, 4));
    CHECK(four[0] == 0 && four[1] == 64 && four[2] == 191 && four[3] == 255, "%d %d %d %d", four[0], four[1], four[2],
          four[3]);
    /* halving: the filter widens to 2 input pixels on each side of a centre (antialiasing) */
    uint8_t row[4] = {0, 100, 200, 40}, half[2];
    REQUIRE_OK(rt_image_resize_bilinear(row, 1, 4, 1, half, 1, 2));
    /* output 0: centre 1, inputs 0..2 weighted tri(-0.25), tri(0.25), tri(0.75) = .75, .75, .25 -> /1.75 */
    int want0 = (int)floor((0 * .75 + 100 * .75 + 200 * .25) / 1.75 + 0.5);
    int want1 = (int)floor((100 * .25 + 200 * .75 + 40 * .75) / 1.75 + 0.5);
    CHECK(half[0] == want0 && half[1] == want1, "%d %d, expected %d %d", half[0], half[1], want0, want1);
    /* a constant image stays constant at any size; the same size is a copy */
    uint8_t flat[15 * 11 * 3], out[7 * 23 * 3];
    memset(flat, 77, sizeof flat);
    REQUIRE_OK(rt_image_resize_bilinear(flat, 15, 11, 3, out, 7, 23));
    int bad = 0;
    for (size_t i = 0; i < sizeof out; i++)
        bad += out[i] != 77;
    CHECK(bad == 0, "%d samples of a constant image changed", bad);
    for (size_t i = 0; i < sizeof flat; i++)
        flat[i] = (uint8_t)rnd(256);
    uint8_t same[15 * 11 * 3];
    REQUIRE_OK(rt_image_resize_bilinear(flat, 15, 11, 3, same, 15, 11));
    CHECK(memcmp(flat, same, sizeof flat) == 0, "same size is not a copy");
}

/* ------------------------------------------------------------------------------------------ */
/* batches */

static void test_batch_decode(void)
{
    enum { N = 12 };
    const char *paths[N];
    char names[N][512];
    /* PNGs and JPEGs of different sizes, two bad files among them */
    for (int i = 0; i < N; i++) {
        int w = 5 + 3 * i, h = 20 - i;
        uint8_t *px = malloc((size_t)(w * h * 3));
        for (int k = 0; k < w * h * 3; k++)
            px[k] = (uint8_t)rnd(256);
        snprintf(names[i], sizeof names[i], "%s/b%02d.%s", dir, i, i % 3 == 2 ? "jpg" : "png");
        if (i % 3 == 2)
            write_jpeg(names[i], w, h, 3, JCS_RGB, 90, px);
        else
            write_png(names[i], w, h, PNG_COLOR_TYPE_RGB, 8, i % 2, px, NULL, 0, NULL, 0, NULL);
        paths[i] = names[i];
        free(px);
    }
    for (int channels = 1; channels <= 3; channels += 2) {
        struct rt_tensor *one = NULL, *two = NULL;
        rt_set_num_threads(1);
        REQUIRE_OK(rt_image_decode_batch(paths, N, 10, 12, channels, NULL, NULL, &one));
        rt_set_num_threads(2);
        enum rt_status st = rt_image_decode_batch(paths, N, 10, 12, channels, NULL, NULL, &two);
        if (CHECK_OK(st)) {
            CHECK_SHAPE(two, 4, N, channels, 10, 12);
            CHECK_TENSOR_EQUAL(two, one);
            /* each example: the file decoded and resized on its own, stored planar */
            const uint8_t *t = rt_tensor_data(two);
            int bad = 0;
            for (int i = 0; i < N; i++) {
                struct rt_image img;
                if (!CHECK_OK(rt_image_decode_file(paths[i], channels, &img)))
                    continue;
                uint8_t r[10 * 12 * 3];
                CHECK_OK(rt_image_resize_bilinear(img.pixels, img.height, img.width, channels, r, 10, 12));
                for (int p = 0; p < 120; p++)
                    for (int c = 0; c < channels; c++)
                        bad += t[((size_t)i * channels + c) * 120 + p] != r[p * channels + c];
                rt_image_free(&img);
            }
            CHECK(bad == 0, "%d samples differ from single decodes", bad);
        }
        RELEASE(one, two);
    }
    /* two bad files: strict fails naming the first; tolerant zeroes them and lists them */
    write_bytes(names[7], "junk", 4);
    write_bytes(names[4], "", 0);
    struct rt_tensor *t = NULL;
    CHECK_STATUS(rt_image_decode_batch(paths, N, 8, 8, 3, NULL, NULL, &t), RT_ERR_FORMAT, "b04.png: empty file");
    CHECK(t == NULL, "no tensor on failure");
    struct rt_image_failures rep;
    uint8_t failed[N];
    REQUIRE_OK(rt_image_decode_batch(paths, N, 8, 8, 3, &rep, failed, &t));
    CHECK(rep.count == 2 && rep.kept == 2 && rep.index[0] == 4 && rep.index[1] == 7, "count %lld kept %d",
          (long long)rep.count, rep.kept);
    CHECK(strstr(rep.message[0], "b04.png: empty file") && strstr(rep.message[1], "b07.png: not a PNG or JPEG"),
          "%s | %s", rep.message[0], rep.message[1]);
    CHECK(rep.status[0] == RT_ERR_FORMAT, "status");
    int flagged = 0, nonzero = 0;
    const uint8_t *d = rt_tensor_data(t);
    for (int i = 0; i < N; i++) {
        flagged += failed[i] * (i == 4 || i == 7 ? 1 : 100);
        for (int k = 0; k < 3 * 64; k++)
            nonzero += (i == 4 || i == 7) && d[i * 3 * 64 + k] != 0;
    }
    CHECK(flagged == 2 && nonzero == 0, "flags %d, nonzero samples in failed examples %d", flagged, nonzero);
    RELEASE(t);
    t = NULL;
    /* a missing file is an I/O error; more failures than are kept: the count still says all */
    const char *many[RT_IMAGE_FAILURES_KEPT + 3];
    for (int i = 0; i < RT_IMAGE_FAILURES_KEPT + 3; i++)
        many[i] = h_tmp_path("nope.png");
    CHECK_STATUS(rt_image_decode_batch(many, 2, 4, 4, 1, NULL, NULL, &t), RT_ERR_IO, "cannot open");
    REQUIRE_OK(rt_image_decode_batch(many, RT_IMAGE_FAILURES_KEPT + 3, 4, 4, 1, &rep, NULL, &t));
    CHECK(rep.count == RT_IMAGE_FAILURES_KEPT + 3 && rep.kept == RT_IMAGE_FAILURES_KEPT, "count %lld kept %d",
          (long long)rep.count, rep.kept);
    for (int i = 0; i < rep.kept; i++)
        CHECK(rep.index[i] == i, "kept failures in order: %d is %lld", i, (long long)rep.index[i]);
    RELEASE(t);
    t = NULL;
    /* interruption, empty batches, bad arguments */
    rt_interrupt_request();
    CHECK_STATUS(rt_image_decode_batch(paths, N, 8, 8, 3, NULL, NULL, &t), RT_ERR_INTERRUPTED, "interrupted");
    rt_interrupt_clear();
    REQUIRE_OK(rt_image_decode_batch(NULL, 0, 8, 8, 3, NULL, NULL, &t));
    CHECK_SHAPE(t, 4, 0, 3, 8, 8);
    RELEASE(t);
    t = NULL;
    CHECK_STATUS(rt_image_decode_batch(paths, N, 0, 8, 3, NULL, NULL, &t), RT_ERR_ARG, "size 0 x 8");
    CHECK_STATUS(rt_image_decode_batch(paths, N, 8, 8, 2, NULL, NULL, &t), RT_ERR_ARG, "channels must be 1 or 3");
    CHECK_STATUS(rt_image_decode_batch(NULL, 3, 8, 8, 3, NULL, NULL, &t), RT_ERR_ARG, "paths");
    const char *with_null[2] = {paths[0], NULL};
    CHECK_STATUS(rt_image_decode_batch(with_null, 2, 8, 8, 3, NULL, NULL, &t), RT_ERR_ARG, "path 1 is NULL");
}

int main(void)
{
    dir = h_tmpdir("image");
    RUN(test_png_colour_types);
    RUN(test_png_small_depths_and_palettes);
    RUN(test_jpeg_round_trips);
    RUN(test_errors_print_nothing_and_leak_nothing);
    RUN(test_file_and_argument_errors);
    RUN(test_resize_against_naive_loop);
    RUN(test_resize_closed_forms);
    RUN(test_batch_decode);
    return h_finish();
}
