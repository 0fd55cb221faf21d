/* CIFAR binary reader (rt_cifar_read): records written by the test itself from a seeded byte pattern
 * and read back against a naive per-element reference (label byte, pixel (c, h, w) at record offset
 * label bytes + c*1024 + h*32 + w), several files read in order, fine and coarse labels; and every
 * error path (missing, empty, truncated, CIFAR-10 file read as CIFAR-100, labels out of range, bad
 * arguments) with its status, a message naming the file, and no leak (the harness checks). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "retort/data.h"

/* byte j of record i of file `salt`: a fixed pattern that differs per file, record and position */
static unsigned char pixel(int salt, long i, long j)
{
    return (unsigned char)((i * 131 + j * 7 + salt * 29 + j / 1024) % 256);
}
static unsigned char fine_label(int salt, long i) { return (unsigned char)((i * 37 + salt) % 100); }
static unsigned char coarse_label(int salt, long i) { return (unsigned char)((i * 11 + salt) % 20); }
static unsigned char c10_label(int salt, long i) { return (unsigned char)((i * 3 + salt) % 10); }

/* Writes n records of CIFAR-`variant` (labels from the pattern), then `extra` more bytes. */
static void write_cifar(const char *path, int variant, int salt, long n, long extra)
{
    FILE *f = fopen(path, "wb");
    for (long i = 0; i < n; i++) {
        if (variant == 100) {
            fputc(coarse_label(salt, i), f);
            fputc(fine_label(salt, i), f);
        } else {
            fputc(c10_label(salt, i), f);
        }
        for (long j = 0; j < RT_CIFAR_PIXELS; j++)
            fputc(pixel(salt, i, j), f);
    }
    for (long j = 0; j < extra; j++)
        fputc(0, f);
    fclose(f);
}

/* Overwrites one byte of a file. */
static void poke(const char *path, long offset, unsigned char v)
{
    FILE *f = fopen(path, "r+b");
    fseek(f, offset, SEEK_SET);
    fputc(v, f);
    fclose(f);
}

static void test_cifar100_fine_and_coarse(void)
{
    const char *p = h_tmp_path("train.bin");
    write_cifar(p, 100, 1, 1500, 0); /* more than one read block (1024 records) */
    for (int coarse = 0; coarse < 2; coarse++) {
        struct rt_tensor *x = NULL, *y = NULL;
        if (!CHECK_OK(rt_cifar_read(&p, 1, 100, coarse, &x, &y)))
            continue;
        CHECK(x->dtype == RT_U8 && y->dtype == RT_I64, "dtypes u8 / i64");
        CHECK_SHAPE(x, 4, 1500, 3, 32, 32);
        CHECK_SHAPE(y, 1, 1500);
        const uint8_t *xd = rt_tensor_data(x);
        const int64_t *yd = rt_tensor_data(y);
        long bad = 0, badl = 0;
        for (long i = 0; i < 1500; i++) {
            if (yd[i] != (coarse ? coarse_label(1, i) : fine_label(1, i)))
                badl++;
            for (long c = 0; c < 3; c++)
                for (long h = 0; h < 32; h++)
                    for (long w = 0; w < 32; w++)
                        bad += xd[((i * 3 + c) * 32 + h) * 32 + w] != pixel(1, i, c * 1024 + h * 32 + w);
        }
        CHECK(bad == 0, "%ld pixels differ", bad);
        CHECK(badl == 0, "%ld labels differ (coarse %d)", badl, coarse);
        RELEASE(x, y);
    }
}

static void test_cifar10_batches_in_order(void)
{
    const char *paths[3] = {h_tmp_path("b1.bin"), h_tmp_path("b2.bin"), h_tmp_path("b3.bin")};
    long counts[3] = {3, 1, 4};
    for (int k = 0; k < 3; k++)
        write_cifar(paths[k], 10, k + 5, counts[k], 0);
    struct rt_tensor *x = NULL, *y = NULL;
    if (!CHECK_OK(rt_cifar_read(paths, 3, 10, false, &x, &y)))
        return;
    CHECK_SHAPE(x, 4, 8, 3, 32, 32);
    const uint8_t *xd = rt_tensor_data(x);
    const int64_t *yd = rt_tensor_data(y);
    long row = 0, bad = 0;
    for (int k = 0; k < 3; k++)
        for (long i = 0; i < counts[k]; i++, row++) {
            bad += yd[row] != c10_label(k + 5, i);
            for (long j = 0; j < RT_CIFAR_PIXELS; j++)
                bad += xd[row * RT_CIFAR_PIXELS + j] != pixel(k + 5, i, j);
        }
    CHECK(bad == 0, "%ld values differ", bad);
    RELEASE(x, y);
}

static void test_cifar_errors(void)
{
    struct rt_tensor *x = NULL, *y = NULL;
    const char *p = h_tmp_path("missing.bin");
    CHECK_STATUS(rt_cifar_read(&p, 1, 100, false, &x, &y), RT_ERR_IO, "missing.bin");
    CHECK(x == NULL && y == NULL, "outputs NULL on failure");

    p = h_tmp_path("adir.bin");
    if (mkdir(p, 0700) != 0)
        perror("mkdir");
    CHECK_STATUS(rt_cifar_read(&p, 1, 100, false, &x, &y), RT_ERR_IO, "adir.bin is not a regular file");

    p = h_tmp_path("empty.bin");
    write_cifar(p, 100, 0, 0, 0);
    CHECK_STATUS(rt_cifar_read(&p, 1, 100, false, &x, &y), RT_ERR_FORMAT, "empty.bin is empty");

    p = h_tmp_path("truncated.bin");
    write_cifar(p, 100, 0, 3, 0);
    if (truncate(p, 3 * 3074 - 100) != 0)
        perror("truncate");
    CHECK_STATUS(rt_cifar_read(&p, 1, 100, false, &x, &y), RT_ERR_FORMAT,
                 "truncated.bin has 9122 bytes, not a whole number of CIFAR-100 records of 3074 bytes");

    p = h_tmp_path("ten.bin"); /* a CIFAR-10 file given as CIFAR-100 */
    write_cifar(p, 10, 0, 2, 0);
    CHECK_STATUS(rt_cifar_read(&p, 1, 100, false, &x, &y), RT_ERR_FORMAT, "looks like a CIFAR-10 file");

    p = h_tmp_path("fine.bin");
    write_cifar(p, 100, 0, 3, 0);
    poke(p, 2 * 3074 + 1, 100);
    CHECK_STATUS(rt_cifar_read(&p, 1, 100, false, &x, &y), RT_ERR_FORMAT,
                 "record 2 has fine label 100, expected 0..99");
    /* the fine label is checked even when the coarse labels are asked for */
    CHECK_STATUS(rt_cifar_read(&p, 1, 100, true, &x, &y), RT_ERR_FORMAT, "fine label 100");

    p = h_tmp_path("coarse.bin");
    write_cifar(p, 100, 0, 3, 0);
    poke(p, 1 * 3074, 20);
    CHECK_STATUS(rt_cifar_read(&p, 1, 100, true, &x, &y), RT_ERR_FORMAT,
                 "record 1 has coarse label 20, expected 0..19");

    const char *two[2] = {h_tmp_path("ok10.bin"), h_tmp_path("bad10.bin")};
    write_cifar(two[0], 10, 0, 2, 0);
    write_cifar(two[1], 10, 0, 2, 0);
    poke(two[1], 3073, 10);
    CHECK_STATUS(rt_cifar_read(two, 2, 10, false, &x, &y), RT_ERR_FORMAT,
                 "bad10.bin: record 1 has label 10, expected 0..9");

    p = two[0];
    CHECK_STATUS(rt_cifar_read(&p, 1, 20, false, &x, &y), RT_ERR_ARG, "variant must be 10 or 100");
    CHECK_STATUS(rt_cifar_read(&p, 1, 10, true, &x, &y), RT_ERR_ARG, "coarse labels exist in CIFAR-100 only");
    CHECK_STATUS(rt_cifar_read(&p, 0, 10, false, &x, &y), RT_ERR_ARG, "expected 1..16 files");
    CHECK_STATUS(rt_cifar_read(&p, 1, 10, false, NULL, &y), RT_ERR_ARG, "must not be NULL");
    CHECK(x == NULL && y == NULL, "outputs NULL on failure");
}

int main(void)
{
    h_tmpdir("cifar"); /* removed by h_finish */
    RUN(test_cifar100_fine_and_coarse);
    RUN(test_cifar10_batches_in_order);
    RUN(test_cifar_errors);
    return h_finish();
}
