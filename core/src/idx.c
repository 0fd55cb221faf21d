/* IDX reader (MNIST / Fashion-MNIST), plain or gzip-compressed (see retort/data.h).
 *
 * The header's dims are checked against what the file can hold before the tensor is allocated, so
 * a few bytes that claim a huge shape are refused instead of allocating it: a plain file holds its
 * size less the header; a gzip stream at most DEFLATE_MAX_RATIO bytes per compressed byte (the
 * limit of deflate's format: a 258-byte match coded in 2 bits). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "internal.h"
#include "retort/data.h"

#define DEFLATE_MAX_RATIO 1032

/* Reads exactly n bytes unless the file ends; returns the count read or -1 on a zlib error. */
static int64_t read_full(gzFile g, void *buf, int64_t n)
{
    int64_t got = 0;
    while (got < n) {
        unsigned chunk = (unsigned)((n - got) > (1 << 30) ? (1 << 30) : (n - got));
        int r = gzread(g, (char *)buf + got, chunk);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += r;
    }
    return got;
}

static const char *gz_msg(gzFile g)
{
    int err = 0;
    const char *m = gzerror(g, &err);
    return err == Z_ERRNO ? strerror(errno) : (m && m[0] ? m : "read error");
}

enum rt_status rt_idx_read(const char *path, struct rt_tensor **out)
{
    *out = NULL;
    if (!path)
        return rt_error(RT_ERR_ARG, "rt_idx_read: path is NULL");
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return rt_error(RT_ERR_IO, "rt_idx_read: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(probe), &sb) != 0) {
        int e = errno;
        fclose(probe);
        return rt_error(RT_ERR_IO, "rt_idx_read: cannot stat %s: %s", path, strerror(e));
    }
    fclose(probe);
    if (!S_ISREG(sb.st_mode))
        return rt_error(RT_ERR_IO, "rt_idx_read: cannot read %s: not a regular file", path);
    const int64_t file_bytes = (int64_t)sb.st_size;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return rt_error(RT_ERR_IO, "rt_idx_read: cannot open %s: %s", path, strerror(errno));
    gzbuffer(g, 1 << 17);
    enum rt_status st = RT_OK;
    struct rt_tensor *t = NULL;
    unsigned char hdr[4];
    int64_t r = read_full(g, hdr, 4);
    if (r < 0) {
        st = rt_error(RT_ERR_FORMAT, "rt_idx_read: %s: %s", path, gz_msg(g));
        goto done;
    }
    if (r < 4) {
        st = rt_error(RT_ERR_FORMAT, "rt_idx_read: %s is not an IDX file: only %lld bytes, a header needs 4",
                      path, (long long)r);
        goto done;
    }
    if (hdr[0] != 0 || hdr[1] != 0) {
        st = rt_error(RT_ERR_FORMAT,
                      "rt_idx_read: %s is not an IDX file: bad magic %02x %02x %02x %02x (expected 00 00 <type> <ndims>)",
                      path, hdr[0], hdr[1], hdr[2], hdr[3]);
        goto done;
    }
    if (hdr[2] != 0x08) {
        st = rt_error(RT_ERR_FORMAT, "rt_idx_read: %s: unsupported IDX type code 0x%02x (only 0x08, unsigned byte)",
                      path, hdr[2]);
        goto done;
    }
    int ndim = hdr[3];
    if (ndim < 1 || ndim > RT_MAX_DIMS) {
        st = rt_error(RT_ERR_FORMAT, "rt_idx_read: %s: %d dims in the header (expected 1..%d)", path, ndim,
                      RT_MAX_DIMS);
        goto done;
    }
    unsigned char dims[4 * RT_MAX_DIMS];
    r = read_full(g, dims, 4 * ndim);
    if (r != 4 * ndim) {
        st = rt_error(RT_ERR_FORMAT, "rt_idx_read: %s is truncated: the header declares %d dims but ends after %lld of %d bytes",
                      path, ndim, (long long)(r < 0 ? 0 : r), 4 * ndim);
        goto done;
    }
    /* span counts an empty dim as 1, so (0, 2^32 - 1, 2^32 - 1) is refused like (1, 2^32 - 1, 2^32 - 1) */
    int64_t shape[RT_MAX_DIMS], numel = 1, span = 1;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *p = dims + 4 * i;
        shape[i] = ((int64_t)p[0] << 24) | ((int64_t)p[1] << 16) | ((int64_t)p[2] << 8) | (int64_t)p[3];
        int64_t d = shape[i] > 0 ? shape[i] : 1;
        if (span > ((int64_t)1 << 40) / d) {
            st = rt_error(RT_ERR_FORMAT, "rt_idx_read: %s: dims in the header are implausibly large", path);
            goto done;
        }
        span *= d;
        numel *= shape[i];
    }
    char sbuf[RT_SHAPE_STR_MAX];
    const int64_t data_bytes = file_bytes - 4 - 4 * (int64_t)ndim; /* of a plain file */
    if (gzdirect(g) && numel > data_bytes) {
        st = rt_error(RT_ERR_FORMAT,
                      "rt_idx_read: %s is truncated: the header says %s = %lld bytes of data, the file has %lld", path,
                      rt_shape_str(ndim, shape, sbuf, sizeof sbuf), (long long)numel, (long long)data_bytes);
        goto done;
    }
    if (!gzdirect(g) && numel / DEFLATE_MAX_RATIO > file_bytes) {
        st = rt_error(RT_ERR_FORMAT,
                      "rt_idx_read: %s is truncated or corrupt: the header says %s = %lld bytes of data, more than "
                      "%lld bytes of gzip can hold (deflate expands at most %d:1)",
                      path, rt_shape_str(ndim, shape, sbuf, sizeof sbuf), (long long)numel, (long long)file_bytes,
                      DEFLATE_MAX_RATIO);
        goto done;
    }
    if ((st = rt_tensor_empty(RT_U8, RT_CPU, ndim, shape, &t)) != RT_OK)
        goto done;
    r = read_full(g, rt_tensor_data(t), numel);
    if (r < 0) {
        st = rt_error(RT_ERR_FORMAT, "rt_idx_read: %s: %s", path, gz_msg(g));
        goto done;
    }
    if (r < numel) {
        st = rt_error(RT_ERR_FORMAT, "rt_idx_read: %s is truncated: the header says %s = %lld bytes of data, the file has %lld",
                      path, rt_shape_str(ndim, shape, sbuf, sizeof sbuf), (long long)numel, (long long)r);
        goto done;
    }
    unsigned char extra;
    r = read_full(g, &extra, 1);
    if (r != 0) {
        st = rt_error(RT_ERR_FORMAT, "rt_idx_read: %s: %s", path,
                      r < 0 ? gz_msg(g) : "more data than the header's dims declare (corrupt or wrong header)");
        goto done;
    }
done:
    gzclose(g);
    if (st != RT_OK)
        rt_tensor_release(t);
    else
        *out = t;
    return st;
}
