/* libFuzzer target: rt_npy_read_header and rt_npy_read (.npy files; core/src/npy.c).
 * Seeds: tests/fuzz/make_corpus.py (numpy.save of every dtype retort reads, versions 1.0-3.0,
 * 0-dim and empty arrays).
 * Promises checked: the header reader and the reader agree (both refuse, or both accept the same
 * header); a refusal names rt_npy_read and the file; an accepted file is exactly header + data;
 * the elements equal the file's little-endian values, decoded here independently (integers
 * sign- or zero-extended to i64); nothing is left alive. */
#include "fuzz_common.h"

/* the element of the file's data at index i, as the reader's dtype would hold it */
static void expect_element(const uint8_t *p, const struct rt_npy_header *h, const struct rt_tensor *t, int64_t i)
{
    char kind = h->descr[1];
    int isize = atoi(h->descr + 2);
    uint64_t v = 0;
    for (int b = isize - 1; b >= 0; b--)
        v = (v << 8) | p[(size_t)i * (size_t)isize + (size_t)b];
    const uint8_t *d = (const uint8_t *)rt_tensor_data(t);
    if (t->dtype == RT_F32 || t->dtype == RT_F64 || t->dtype == RT_U8) {
        FUZZ_CHECK(memcmp(d + (size_t)i * (size_t)isize, p + (size_t)i * (size_t)isize, (size_t)isize) == 0,
                   "element %lld differs from the file's bytes", (long long)i);
        return;
    }
    FUZZ_CHECK(t->dtype == RT_I64, "descr '%s' read as dtype %d", h->descr, (int)t->dtype);
    int64_t want;
    if (kind == 'i' && isize < 8 && ((v >> (8 * isize - 1)) & 1))
        want = (int64_t)(v | (~(uint64_t)0 << (8 * isize)));
    else
        want = (int64_t)v;
    FUZZ_CHECK(kind != 'u' || v <= (uint64_t)INT64_MAX, "accepted a uint64 above 2^63 - 1");
    FUZZ_CHECK(((const int64_t *)rt_tensor_data(t))[i] == want, "element %lld: %lld, the file holds %lld",
               (long long)i, (long long)((const int64_t *)rt_tensor_data(t))[i], (long long)want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_input("npy", ".npy", data, size);
    struct fuzz_alive before = fuzz_alive_now();
    struct rt_npy_header hh;
    enum rt_status sh = rt_npy_read_header(path, &hh);
    if (sh != RT_OK)
        fuzz_expect_refusal(sh, "rt_npy_read", path);
    struct rt_tensor *t = NULL;
    struct rt_npy_header h;
    enum rt_status st = rt_npy_read(path, &t, &h);
    if (st != RT_OK) {
        FUZZ_CHECK(t == NULL, "a refusal left *out set");
        fuzz_expect_accepted(false, "rt_npy_read", rt_error_msg());
        /* a header that reads may still hold data that does not: a uint64 above 2^63 - 1 */
        FUZZ_CHECK(sh != RT_OK || (strcmp(hh.descr + 1, "u8") == 0 && strstr(rt_error_msg(), "does not fit in i64")),
                   "the header was accepted but the data refused (status %d): %s", (int)st, rt_error_msg());
        fuzz_expect_refusal(st, "rt_npy_read", path);
    } else {
        FUZZ_CHECK(sh == RT_OK, "rt_npy_read_header refused a file rt_npy_read reads");
        FUZZ_CHECK(memcmp(&h, &hh, sizeof h) == 0, "the two readers disagree on the header");
        FUZZ_CHECK(h.data_offset >= 10 && (uint64_t)h.data_offset + (uint64_t)h.data_bytes == size,
                   "accepted a %zu-byte file holding %lld + %lld bytes", size, (long long)h.data_offset,
                   (long long)h.data_bytes);
        FUZZ_CHECK(t->ndim == h.ndim && (rt_tensor_numel(t) == 0 || rt_tensor_is_contiguous(t)),
                   "tensor of %d dims for a %d-dim header", t->ndim, h.ndim);
        for (int i = 0; i < h.ndim; i++)
            FUZZ_CHECK(t->shape[i] == h.shape[i], "dim %d differs from the header", i);
        int64_t n = rt_tensor_numel(t);
        for (int64_t i = 0; i < n; i++)
            expect_element(data + h.data_offset, &h, t, i);
        rt_tensor_release(t);
    }
    fuzz_expect_released(before, "rt_npy_read");
    return 0;
}
