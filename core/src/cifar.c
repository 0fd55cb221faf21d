/* CIFAR-10 / CIFAR-100 binary batches (see retort/data.h, rt_cifar_read).
 *
 * The files are read as distributed on the CIFAR page ("binary version"): fixed-size records, no
 * header. A record's 3072 pixel bytes are already in (3, 32, 32) order (1024 R, then G, then B, each
 * row-major), so each record is one memcpy into the image tensor. The sizes of every file are checked
 * before anything is allocated, and the records are read in blocks of RECORDS_PER_READ through one
 * buffer. Label bytes are checked as they are read: a CIFAR-100 record's coarse and fine labels are
 * both checked whichever one is returned, since either out of range means the file is not CIFAR-100. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "retort/data.h"

#define PIXELS RT_CIFAR_PIXELS /* 3 * 32 * 32 */
#define RECORDS_PER_READ 1024
/* More records than this is not a CIFAR file (the real sets hold 60000); it also bounds every byte
 * count below far from overflow. */
#define MAX_RECORDS ((int64_t)1 << 28)

static int label_bytes(int variant) { return variant == 100 ? 2 : 1; }

/* Size of an open regular file in bytes; -1 (errno set) on failure, -2 when it is not a regular file
 * (a directory opens for reading on Linux and reports a meaningless size). */
static int64_t file_size(FILE *f)
{
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return -1;
    if (!S_ISREG(sb.st_mode))
        return -2;
    return (int64_t)sb.st_size;
}

/* Checks one file's size and returns its record count through *records. */
static enum rt_status check_size(const char *path, int variant, int64_t bytes, int64_t *records)
{
    const int64_t rec = label_bytes(variant) + PIXELS;
    if (bytes == 0)
        return rt_error(RT_ERR_FORMAT, "rt_cifar_read: %s is empty (expected records of %lld bytes: %s + 3072 pixels)",
                        path, (long long)rec, variant == 100 ? "coarse and fine label bytes" : "a label byte");
    if (bytes % rec != 0) {
        const int64_t other = (variant == 100 ? 1 : 2) + PIXELS;
        const char *hint = bytes % other == 0
                               ? (variant == 100 ? " (it looks like a CIFAR-10 file: 3073-byte records)"
                                                 : " (it looks like a CIFAR-100 file: 3074-byte records)")
                               : " (truncated or not a CIFAR file)";
        return rt_error(RT_ERR_FORMAT,
                        "rt_cifar_read: %s has %lld bytes, not a whole number of CIFAR-%d records of %lld bytes: "
                        "%lld records and %lld bytes left over%s",
                        path, (long long)bytes, variant, (long long)rec, (long long)(bytes / rec),
                        (long long)(bytes % rec), hint);
    }
    if (bytes / rec > MAX_RECORDS)
        return rt_error(RT_ERR_FORMAT,
                        "rt_cifar_read: %s holds %lld records, more than a CIFAR file can (at most %lld)",
                        path, (long long)(bytes / rec), (long long)MAX_RECORDS);
    *records = bytes / rec;
    return RT_OK;
}

/* Reads `records` records of f into x/y starting at record `first` of the output. */
static enum rt_status read_records(FILE *f, const char *path, int variant, bool coarse, int64_t records,
                                   unsigned char *buf, uint8_t *x, int64_t *y)
{
    const int lb = label_bytes(variant);
    const size_t rec = (size_t)lb + PIXELS;
    for (int64_t done = 0; done < records;) {
        int64_t n = records - done < RECORDS_PER_READ ? records - done : RECORDS_PER_READ;
        size_t got = fread(buf, rec, (size_t)n, f);
        if (got != (size_t)n)
            return rt_error(RT_ERR_IO, "rt_cifar_read: %s: read failed at record %lld of %lld: %s", path,
                            (long long)(done + (int64_t)got), (long long)records,
                            ferror(f) ? strerror(errno) : "the file ended early (did it change while being read?)");
        for (int64_t i = 0; i < n; i++) {
            const unsigned char *r = buf + (size_t)i * rec;
            int64_t index = done + i; /* 0-based record number in this file */
            if (variant == 10) {
                if (r[0] >= 10)
                    return rt_error(RT_ERR_FORMAT, "rt_cifar_read: %s: record %lld has label %d, expected 0..9", path,
                                    (long long)index, r[0]);
                y[index] = r[0];
            } else {
                if (r[0] >= 20)
                    return rt_error(RT_ERR_FORMAT, "rt_cifar_read: %s: record %lld has coarse label %d, expected 0..19",
                                    path, (long long)index, r[0]);
                if (r[1] >= 100)
                    return rt_error(RT_ERR_FORMAT, "rt_cifar_read: %s: record %lld has fine label %d, expected 0..99",
                                    path, (long long)index, r[1]);
                y[index] = coarse ? r[0] : r[1];
            }
            memcpy(x + (size_t)index * PIXELS, r + lb, PIXELS);
        }
        done += n;
    }
    return RT_OK;
}

enum rt_status rt_cifar_read(const char *const *paths, int npaths, int variant, bool coarse, struct rt_tensor **x,
                             struct rt_tensor **y)
{
    if (x)
        *x = NULL;
    if (y)
        *y = NULL;
    if (!x || !y)
        return rt_error(RT_ERR_ARG, "rt_cifar_read: x and y must not be NULL");
    if (variant != 10 && variant != 100)
        return rt_error(RT_ERR_ARG, "rt_cifar_read: variant must be 10 or 100, got %d", variant);
    if (coarse && variant != 100)
        return rt_error(RT_ERR_ARG, "rt_cifar_read: coarse labels exist in CIFAR-100 only");
    if (!paths || npaths < 1 || npaths > RT_CIFAR_MAX_FILES)
        return rt_error(RT_ERR_ARG, "rt_cifar_read: expected 1..%d files, got %d", RT_CIFAR_MAX_FILES,
                        paths ? npaths : 0);
    for (int i = 0; i < npaths; i++)
        if (!paths[i])
            return rt_error(RT_ERR_ARG, "rt_cifar_read: path %d is NULL", i + 1);

    FILE *files[RT_CIFAR_MAX_FILES] = {0};
    int64_t counts[RT_CIFAR_MAX_FILES] = {0};
    int64_t total = 0;
    enum rt_status st = RT_OK;
    struct rt_tensor *tx = NULL, *ty = NULL;
    unsigned char *buf = NULL;
    for (int i = 0; i < npaths; i++) {
        files[i] = fopen(paths[i], "rb");
        if (!files[i]) {
            st = rt_error(RT_ERR_IO, "rt_cifar_read: cannot open %s: %s", paths[i], strerror(errno));
            goto done;
        }
        int64_t bytes = file_size(files[i]);
        if (bytes == -2) {
            st = rt_error(RT_ERR_IO, "rt_cifar_read: %s is not a regular file (a directory?)", paths[i]);
            goto done;
        }
        if (bytes < 0) {
            st = rt_error(RT_ERR_IO, "rt_cifar_read: cannot find the size of %s: %s", paths[i], strerror(errno));
            goto done;
        }
        if ((st = check_size(paths[i], variant, bytes, &counts[i])) != RT_OK)
            goto done;
        total += counts[i]; /* <= RT_CIFAR_MAX_FILES * MAX_RECORDS: no overflow */
    }
    if (total > MAX_RECORDS) {
        st = rt_error(RT_ERR_FORMAT, "rt_cifar_read: the %d files hold %lld records together, more than %lld", npaths,
                      (long long)total, (long long)MAX_RECORDS);
        goto done;
    }
    int64_t xshape[4] = {total, 3, 32, 32};
    if ((st = rt_tensor_empty(RT_U8, RT_CPU, 4, xshape, &tx)) != RT_OK)
        goto done;
    if ((st = rt_tensor_empty(RT_I64, RT_CPU, 1, xshape, &ty)) != RT_OK)
        goto done;
    buf = malloc((size_t)RECORDS_PER_READ * (size_t)(label_bytes(variant) + PIXELS));
    if (!buf) {
        st = rt_error(RT_ERR_OOM, "rt_cifar_read: out of memory for a read buffer");
        goto done;
    }
    uint8_t *xd = rt_tensor_data(tx);
    int64_t *yd = rt_tensor_data(ty);
    int64_t at = 0;
    for (int i = 0; i < npaths; i++) {
        st = read_records(files[i], paths[i], variant, coarse, counts[i], buf, xd + (size_t)at * PIXELS, yd + at);
        if (st != RT_OK)
            goto done;
        at += counts[i];
    }
done:
    free(buf);
    for (int i = 0; i < npaths; i++)
        if (files[i])
            fclose(files[i]);
    if (st != RT_OK) {
        rt_tensor_release(tx);
        rt_tensor_release(ty);
        return st;
    }
    *x = tx;
    *y = ty;
    return RT_OK;
}
