/* IDX reader (plain and gzip; good file, bad magic, wrong type code, bad dims, truncated, trailing
 * data, a header claiming more than the file can hold) with fixtures written by the test itself,
 * and the crop/flip augmentation kernel (values against a naive reference, determinism per (seed, epoch, id), batching independence). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "retort/data.h"

static const char *dir; /* h_tmpdir(): removed by h_finish */

/* Writes an IDX file: header bytes, dims (big-endian), then ndata bytes of data (value i % 251). */
static void write_idx(const char *path, bool gz, unsigned char b0, unsigned char b1, unsigned char type, int ndim,
                      const uint32_t *dims, long ndata)
{
    unsigned char *buf = malloc(4 + 4 * (size_t)ndim + (size_t)ndata + 1);
    size_t n = 0;
    buf[n++] = b0;
    buf[n++] = b1;
    buf[n++] = type;
    buf[n++] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[n++] = (unsigned char)(dims[i] >> 24);
        buf[n++] = (unsigned char)(dims[i] >> 16);
        buf[n++] = (unsigned char)(dims[i] >> 8);
        buf[n++] = (unsigned char)dims[i];
    }
    for (long i = 0; i < ndata; i++)
        buf[n++] = (unsigned char)(i % 251);
    if (gz) {
        gzFile g = gzopen(path, "wb");
        gzwrite(g, buf, (unsigned)n);
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
    }
    free(buf);
}

static void test_idx_good(void)
{
    for (int gz = 0; gz < 2; gz++) {
        const char *p = h_tmp_path(gz ? "images.gz" : "images");
        write_idx(p, gz, 0, 0, 0x08, 3, (const uint32_t[]){5, 3, 4}, 60);
        struct rt_tensor *t = NULL;
        if (CHECK_OK(rt_idx_read(p, &t))) {
            CHECK(t->dtype == RT_U8, "dtype u8");
            CHECK_SHAPE(t, 3, 5, 3, 4);
            CHECK(h_elem(t, 0) == 0 && h_elem(t, 59) == 59, "values");
        }
        rt_tensor_release(t);
        p = h_tmp_path(gz ? "labels.gz" : "labels");
        write_idx(p, gz, 0, 0, 0x08, 1, (const uint32_t[]){300}, 300);
        if (CHECK_OK(rt_idx_read(p, &t))) {
            CHECK_SHAPE(t, 1, 300);
            CHECK(h_elem(t, 299) == 48, "wraps (299 mod 251)");
        }
        rt_tensor_release(t);
    }
}

static void test_idx_errors(void)
{
    struct rt_tensor *t = NULL;
    CHECK_STATUS(rt_idx_read(h_tmp_path("missing"), &t), RT_ERR_IO, "No such file");
    const char *p = h_tmp_path("bad");
    write_idx(p, false, 0x1f, 0x00, 0x08, 1, (const uint32_t[]){4}, 4);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT, "is not an IDX file: bad magic 1f 00 08 01");
    write_idx(p, true, 0, 0, 0x0d, 1, (const uint32_t[]){4}, 16);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT, "unsupported IDX type code 0x0d (only 0x08, unsigned byte)");
    write_idx(p, false, 0, 0, 0x08, 0, NULL, 0);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT, "0 dims in the header");
    write_idx(p, false, 0, 0, 0x08, 3, (const uint32_t[]){10, 28, 28}, 10 * 28 * 28 - 1);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT, "is truncated: the header says (10,28,28) = 7840 bytes of data, the file has 7839");
    CHECK(strstr(rt_error_msg(), p) != NULL, "names the file: %s", rt_error_msg());
    write_idx(p, true, 0, 0, 0x08, 3, (const uint32_t[]){10, 28, 28}, 100);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT, "is truncated");
    /* an empty first dim with huge others: refused before any size or stride is computed */
    write_idx(p, false, 0, 0, 0x08, 3, (const uint32_t[]){0, 0xffffffffu, 0xffffffffu}, 0);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT, "dims in the header are implausibly large");
    write_idx(p, false, 0, 0, 0x08, 3, (const uint32_t[]){2, 2, 2}, 9);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT, "more data than the header's dims declare");
    FILE *f = fopen(p, "wb");
    fwrite("\0\0", 1, 2, f);
    fclose(f);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT, "only 2 bytes");
    write_idx(p, false, 0, 0, 0x08, 3, (const uint32_t[]){2, 2, 2}, 0); /* header cut inside the dims */
    f = fopen(p, "r+b");
    CHECK(ftruncate(fileno(f), 8) == 0, "truncate");
    fclose(f);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT, "declares 3 dims but ends after 4 of 12 bytes");
    /* a corrupt gzip stream */
    write_idx(p, true, 0, 0, 0x08, 1, (const uint32_t[]){4000}, 4000);
    f = fopen(p, "r+b");
    fseek(f, 20, SEEK_SET);
    fwrite("garbagegarbagegarbage", 1, 21, f);
    fclose(f);
    CHECK(rt_idx_read(p, &t) == RT_ERR_FORMAT, "corrupt gzip: %s", rt_error_msg());
    CHECK(t == NULL, "no tensor on failure");
}

/* A header that claims more data than the file can hold is refused before the tensor is allocated
 * (found by tests/fuzz/fuzz_idx: 20 bytes asked for 327 GB). The claims here (2^39 bytes) are more
 * than any allocator grants: had the reader tried, the status would be RT_ERR_OOM. */
static void test_idx_claims_beyond_the_file(void)
{
    struct rt_tensor *t = NULL;
    const char *p = h_tmp_path("claims");
    write_idx(p, false, 0, 0, 0x08, 2, (const uint32_t[]){1u << 20, 1u << 19}, 10);
    CHECK_STATUS(rt_idx_read(p, &t), RT_ERR_FORMAT,
                 "is truncated: the header says (1048576,524288) = 549755813888 bytes of data, the file has 10");
    CHECK(strstr(rt_error_msg(), p) != NULL, "names the file: %s", rt_error_msg());
    /* gzip: 10 bytes of data compress to a few dozen, which expand to at most 1032 times that */
    const char *gz = h_tmp_path("claims.gz");
    write_idx(gz, true, 0, 0, 0x08, 2, (const uint32_t[]){1u << 20, 1u << 19}, 10);
    CHECK_STATUS(rt_idx_read(gz, &t), RT_ERR_FORMAT, "more than");
    CHECK(strstr(rt_error_msg(), "bytes of gzip can hold (deflate expands at most 1032:1)") != NULL, "says why: %s",
          rt_error_msg());
    CHECK(strstr(rt_error_msg(), gz) != NULL, "names the file: %s", rt_error_msg());
    /* a claim within the ratio but beyond the stream is still read and found truncated */
    write_idx(gz, true, 0, 0, 0x08, 1, (const uint32_t[]){20000}, 10);
    CHECK_STATUS(rt_idx_read(gz, &t), RT_ERR_FORMAT,
                 "is truncated: the header says (20000) = 20000 bytes of data, the file has 10");
    /* a gzip stream of highly compressible data that does expand ~1000:1 is read whole */
    write_idx(gz, true, 0, 0, 0x08, 1, (const uint32_t[]){1u << 22}, 0);
    gzFile g = gzopen(gz, "wb9");
    unsigned char head[8] = {0, 0, 8, 1, 0, 0x40, 0, 0}; /* (4194304) */
    gzwrite(g, head, 8);
    unsigned char *zeros = calloc(1u << 22, 1);
    gzwrite(g, zeros, 1u << 22);
    gzclose(g);
    free(zeros);
    if (CHECK_OK(rt_idx_read(gz, &t)))
        CHECK_SHAPE(t, 1, 4194304);
    rt_tensor_release(t);
    t = NULL;
    CHECK_STATUS(rt_idx_read(dir, &t), RT_ERR_IO, "not a regular file");
    CHECK(t == NULL, "no tensor on failure");
}

/* naive reference of one example */
static double ref_pixel(const struct rt_tensor *b, int64_t n, int64_t c, int64_t y, int64_t x, int64_t pad, bool flip,
                        uint64_t seed, uint64_t epoch, int64_t id)
{
    int64_t dy, dx;
    bool fl;
    rt_augment_params(pad, flip, seed, epoch, id, &dy, &dx, &fl);
    int64_t C = b->shape[1], H = b->shape[2], W = b->shape[3];
    int64_t cx = fl ? W - 1 - x : x;
    int64_t sy = y + dy - pad, sx = cx + dx - pad;
    if (sy < 0 || sy >= H || sx < 0 || sx >= W)
        return 0;
    return h_elem(b, ((n * C + c) * H + sy) * W + sx);
}

static void test_augment_values(void)
{
    struct rt_tensor *b = h_iota(RT_F32, 4, H_SHAPE(6, 2, 5, 7)), *out = NULL, *u8 = NULL, *out8 = NULL;
    const int64_t ids[6] = {10, 11, 12, 13, 14, 15};
    REQUIRE_OK(rt_augment_crop_flip(b, 2, true, 42, 3, ids, &out));
    int mism = 0, flips = 0;
    for (int64_t n = 0; n < 6; n++) {
        int64_t dy, dx;
        bool fl;
        rt_augment_params(2, true, 42, 3, ids[n], &dy, &dx, &fl);
        CHECK(dy >= 0 && dy <= 4 && dx >= 0 && dx <= 4, "offsets in range");
        flips += fl;
        for (int64_t c = 0; c < 2; c++)
            for (int64_t y = 0; y < 5; y++)
                for (int64_t x = 0; x < 7; x++) {
                    double want = ref_pixel(b, n, c, y, x, 2, true, 42, 3, ids[n]);
                    double got = h_elem(out, ((n * 2 + c) * 5 + y) * 7 + x);
                    mism += got != want;
                }
    }
    CHECK(mism == 0, "%d mismatches against the naive reference", mism);
    /* u8 gives the same values */
    REQUIRE_OK(rt_to_dtype(b, RT_U8, &u8));
    REQUIRE_OK(rt_augment_crop_flip(u8, 2, true, 42, 3, ids, &out8));
    struct rt_tensor *want8 = NULL;
    REQUIRE_OK(rt_to_dtype(out, RT_U8, &want8));
    CHECK_TENSOR_EQUAL(out8, want8);
    RELEASE(out, out8, want8);
    /* pad 0, no flip: identity */
    REQUIRE_OK(rt_augment_crop_flip(b, 0, false, 42, 3, ids, &out));
    CHECK_TENSOR_EQUAL(out, b);
    RELEASE(out);
    /* errors */
    CHECK_STATUS(rt_augment_crop_flip(b, 6, true, 1, 1, NULL, &out), RT_ERR_ARG, "pad 6 out of range [0, 5]");
    struct rt_tensor *v = NULL;
    REQUIRE_OK(rt_view(b, 2, H_SHAPE(12, 35), &v));
    CHECK_STATUS(rt_augment_crop_flip(v, 1, true, 1, 1, NULL, &out), RT_ERR_SHAPE, "expected a batch (N,C,H,W), got shape (12,35)");
    RELEASE(b, u8, v);
}

static void test_augment_determinism(void)
{
    /* 64 examples of 1x8x8: the same example gets the same output whatever batch it is in */
    struct rt_tensor *all = h_rand(RT_F32, 4, H_SHAPE(64, 1, 8, 8), 0, 1, 9), *whole = NULL, *again = NULL;
    int64_t ids[64];
    for (int i = 0; i < 64; i++)
        ids[i] = 1000 + i;
    REQUIRE_OK(rt_augment_crop_flip(all, 3, true, 7, 2, ids, &whole));
    REQUIRE_OK(rt_augment_crop_flip(all, 3, true, 7, 2, ids, &again));
    CHECK_TENSOR_EQUAL(again, whole);
    RELEASE(again);
    /* batches of 5 (last one short), through narrow views */
    for (int64_t s = 0; s < 64; s += 5) {
        int64_t len = s + 5 <= 64 ? 5 : 64 - s;
        struct rt_tensor *part = NULL, *aug = NULL, *ref = NULL;
        REQUIRE_OK(rt_narrow(all, 0, s, len, &part));
        REQUIRE_OK(rt_augment_crop_flip(part, 3, true, 7, 2, ids + s, &aug));
        REQUIRE_OK(rt_narrow(whole, 0, s, len, &ref));
        CHECK_TENSOR_EQUAL(aug, ref);
        RELEASE(part, aug, ref);
    }
    /* another epoch or seed changes crops; the flip happens about half the time */
    int diff_epoch = 0, diff_seed = 0, flips = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t a, b, c, d, e, g;
        bool f1, f2, f3;
        rt_augment_params(4, true, 7, 2, i, &a, &b, &f1);
        rt_augment_params(4, true, 7, 3, i, &c, &d, &f2);
        rt_augment_params(4, true, 8, 2, i, &e, &g, &f3);
        diff_epoch += a != c || b != d || f1 != f2;
        diff_seed += a != e || b != g || f1 != f3;
        flips += f1;
    }
    CHECK(diff_epoch > 900 && diff_seed > 900, "epoch/seed change the draws: %d %d", diff_epoch, diff_seed);
    CHECK(flips > 430 && flips < 570, "flip rate %d / 1000", flips);
    /* thread count does not matter (large batch takes the OpenMP path) */
    struct rt_tensor *big = h_rand(RT_F32, 4, H_SHAPE(512, 3, 32, 32), 0, 1, 4), *o1 = NULL, *o2 = NULL;
    int nt = rt_get_num_threads();
    rt_set_num_threads(1);
    CHECK_OK(rt_augment_crop_flip(big, 4, true, 5, 1, NULL, &o1));
    rt_set_num_threads(2);
    CHECK_OK(rt_augment_crop_flip(big, 4, true, 5, 1, NULL, &o2));
    rt_set_num_threads(nt);
    CHECK_TENSOR_EQUAL(o1, o2);
    RELEASE(all, whole, big, o1, o2);
}

int main(void)
{
    dir = h_tmpdir("idx");
    RUN(test_idx_good);
    RUN(test_idx_errors);
    RUN(test_idx_claims_beyond_the_file);
    RUN(test_augment_values);
    RUN(test_augment_determinism);
    return h_finish();
}
