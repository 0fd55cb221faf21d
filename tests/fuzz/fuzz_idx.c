/* libFuzzer target: rt_idx_read (IDX files, plain or gzip-compressed; core/src/idx.c).
 * Seeds: tests/fuzz/make_corpus.py (small images/labels files, plain and .gz).
 * Promises checked: a refusal names rt_idx_read and the file; what is read is a u8 tensor whose
 * dims are the header's and, for a plain file, whose bytes are the file's data exactly (the file
 * is header + data, nothing more); nothing is left alive. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_input("idx", ".idx", data, size);
    struct fuzz_alive before = fuzz_alive_now();
    struct rt_tensor *t = NULL;
    enum rt_status st = rt_idx_read(path, &t);
    if (st != RT_OK) {
        FUZZ_CHECK(t == NULL, "a refusal left *out set");
        fuzz_expect_accepted(false, "rt_idx_read", rt_error_msg());
        fuzz_expect_refusal(st, "rt_idx_read", path);
    } else {
        /* (an empty tensor counts as not contiguous in rt_tensor_is_contiguous: its strides treat a 0 dim as 1) */
        FUZZ_CHECK(t->dtype == RT_U8 && t->ndim >= 1 && t->ndim <= RT_MAX_DIMS &&
                       (rt_tensor_numel(t) == 0 || rt_tensor_is_contiguous(t)),
                   "unexpected tensor: dtype %d, %d dims", (int)t->dtype, t->ndim);
        bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
        if (!gz) { /* an independent reading of the header and the data */
            FUZZ_CHECK(size >= 4 && data[0] == 0 && data[1] == 0 && data[2] == 0x08 && data[3] == t->ndim,
                       "accepted a header that is not 00 00 08 <ndim>");
            size_t off = 4 + 4 * (size_t)t->ndim;
            int64_t numel = 1;
            for (int i = 0; i < t->ndim; i++) {
                const uint8_t *p = data + 4 + 4 * i;
                int64_t d = ((int64_t)p[0] << 24) | ((int64_t)p[1] << 16) | ((int64_t)p[2] << 8) | p[3];
                FUZZ_CHECK(t->shape[i] == d, "dim %d is %lld, the header says %lld", i, (long long)t->shape[i],
                           (long long)d);
                numel *= d;
            }
            FUZZ_CHECK(size == off + (size_t)numel, "accepted %zu bytes for a header that says %zu", size,
                       off + (size_t)numel);
            FUZZ_CHECK(numel == 0 || memcmp(rt_tensor_data(t), data + off, (size_t)numel) == 0,
                       "the tensor's bytes differ from the file's");
        }
        rt_tensor_release(t);
    }
    fuzz_expect_released(before, "rt_idx_read");
    return 0;
}
