/* Content fingerprints (FNV-1a, 64 bit): cheap, stable across runs and machines, and enough to tell
 * one teacher or dataset from another (not a cryptographic hash). Tensors are hashed from a host
 * copy in row-major order in blocks (a non-contiguous tensor is made contiguous first). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FNV_PRIME 0x100000001b3ULL
#define BLOCK_BYTES ((size_t)1 << 22)

void rt_fingerprint_bytes(const void *data, size_t n, uint64_t *h)
{
    const unsigned char *p = data;
    uint64_t v = *h;
    for (size_t i = 0; i < n; i++) {
        v ^= p[i];
        v *= FNV_PRIME;
    }
    *h = v;
}

enum rt_status rt_tensor_fingerprint(const struct rt_tensor *t, uint64_t *h)
{
    if (!t || !h)
        return rt_error(RT_ERR_ARG, "rt_tensor_fingerprint: tensor and hash are required");
    const char *name = rt_dtype_name(t->dtype);
    rt_fingerprint_bytes(name, strlen(name) + 1, h);
    int64_t nd = t->ndim;
    rt_fingerprint_bytes(&nd, sizeof nd, h);
    rt_fingerprint_bytes(t->shape, (size_t)t->ndim * sizeof t->shape[0], h);
    int64_t n = rt_tensor_numel(t);
    if (n == 0)
        return RT_OK;
    /* a contiguous version (no graph: this is not a differentiable op), copied to the host block by block */
    size_t es = rt_dtype_size(t->dtype);
    struct rt_tensor *c = NULL;
    enum rt_status st = rt__contig_raw((struct rt_tensor *)t, &c);
    int64_t step = (int64_t)(BLOCK_BYTES / es);
    void *buf = st == RT_OK ? malloc((size_t)(n < step ? n : step) * es) : NULL;
    if (st == RT_OK && !buf)
        st = rt_error(RT_ERR_OOM, "rt_tensor_fingerprint: out of memory");
    for (int64_t at = 0; st == RT_OK && at < n; at += step) {
        size_t len = (size_t)(n - at < step ? n - at : step) * es;
        st = rt__download(rt__backend(c), buf, (const char *)rt__ptr(c) + (size_t)at * es, len);
        if (st == RT_OK)
            rt_fingerprint_bytes(buf, len, h);
    }
    free(buf);
    rt_tensor_release(c);
    return st;
}
