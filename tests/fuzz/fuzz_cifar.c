/* libFuzzer target: rt_cifar_read (CIFAR-10/100 binary batches; core/src/cifar.c).
 * Seeds: tests/fuzz/make_corpus.py (a few records of each variant, labels in and near range).
 * Each input is read as CIFAR-10, as CIFAR-100 (fine and coarse labels) and, as CIFAR-10, twice
 * in a row (two files). Promises checked: a refusal names rt_cifar_read and the file; an accepted
 * file is a whole number of records; every image is the record's 3072 pixel bytes and every label
 * the record's label byte, in range; nothing is left alive. */
#include "fuzz_common.h"

static bool read_as(const uint8_t *data, size_t size, const char *path, int variant, bool coarse, int copies)
{
    const char *paths[2] = {path, path};
    struct rt_tensor *x = NULL, *y = NULL;
    enum rt_status st = rt_cifar_read(paths, copies, variant, coarse, &x, &y);
    if (st != RT_OK) {
        FUZZ_CHECK(x == NULL && y == NULL, "a refusal left an output set");
        fuzz_expect_refusal(st, "rt_cifar_read", path);
        return false;
    }
    const size_t lb = variant == 100 ? 2 : 1, rec = lb + RT_CIFAR_PIXELS;
    FUZZ_CHECK(size > 0 && size % rec == 0, "accepted %zu bytes as CIFAR-%d", size, variant);
    const int64_t per = (int64_t)(size / rec), n = per * copies;
    FUZZ_CHECK(x->dtype == RT_U8 && x->ndim == 4 && x->shape[0] == n && x->shape[1] == 3 && x->shape[2] == 32 &&
                   x->shape[3] == 32 && y->dtype == RT_I64 && y->ndim == 1 && y->shape[0] == n,
               "unexpected shapes for %lld records", (long long)n);
    const uint8_t *xd = rt_tensor_data(x);
    const int64_t *yd = rt_tensor_data(y);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *r = data + (size_t)(i % per) * rec;
        int64_t want = variant == 10 ? r[0] : coarse ? r[0] : r[1];
        FUZZ_CHECK(yd[i] == want, "record %lld: label %lld, the file says %lld", (long long)i, (long long)yd[i],
                   (long long)want);
        FUZZ_CHECK(variant == 10 ? r[0] < 10 : (r[0] < 20 && r[1] < 100), "record %lld: accepted labels out of range",
                   (long long)i);
        FUZZ_CHECK(memcmp(xd + (size_t)i * RT_CIFAR_PIXELS, r + lb, RT_CIFAR_PIXELS) == 0,
                   "record %lld: the pixels differ from the file's", (long long)i);
    }
    rt_tensor_release(x);
    rt_tensor_release(y);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_input("cifar", ".bin", data, size);
    struct fuzz_alive before = fuzz_alive_now();
    bool as10 = read_as(data, size, path, 10, false, 1);
    bool as100 = read_as(data, size, path, 100, false, 1);
    bool coarse = read_as(data, size, path, 100, true, 1);
    bool twice = read_as(data, size, path, 10, false, 2);
    FUZZ_CHECK(as100 == coarse && as10 == twice, "the same file read differently: CIFAR-10 %d (twice: %d), "
               "CIFAR-100 fine %d, coarse %d", as10, twice, as100, coarse);
    fuzz_expect_accepted(as10 || as100, "rt_cifar_read", "neither as CIFAR-10 nor as CIFAR-100");
    fuzz_expect_released(before, "rt_cifar_read");
    return 0;
}
