/* The retort C API from a program of your own: two tensors, a product, its values, and an error.
 *
 *   cc main.c $(pkg-config --cflags --libs retort) -o retort-example && ./retort-example
 *
 * (with retort installed under a prefix pkg-config does not search, first
 * export PKG_CONFIG_PATH=PREFIX/lib/pkgconfig and, to run, LD_LIBRARY_PATH=PREFIX/lib).
 * examples/cmake builds this same file through find_package(retort).
 *
 * Every fallible call returns enum rt_status; on failure rt_error_msg() says which function failed
 * and why. Results come back through out-parameters as new references, dropped with
 * rt_tensor_release (which takes NULL), so one cleanup path serves success and failure alike.
 * Prints A @ B for A = [1..6] as 2x3 and B = [7..12] as 3x2, one line per element. */
#include <stdio.h>

#include <retort/retort.h>

/* Reports a failed call and jumps to the cleanup. */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        enum rt_status st_ = (call);                                                               \
        if (st_ != RT_OK) {                                                                        \
            fprintf(stderr, "%s failed: %s: %s\n", #call, rt_status_name(st_), rt_error_msg());    \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

int main(void) {
    int result = 1;
    struct rt_tensor *a = NULL, *b = NULL, *c = NULL, *bad = NULL;
    const float a_values[6] = {1, 2, 3, 4, 5, 6};
    const float b_values[6] = {7, 8, 9, 10, 11, 12};
    const int64_t a_shape[2] = {2, 3}, b_shape[2] = {3, 2};

    printf("retort %s\n", RT_VERSION_STRING);
    CHECK(rt_tensor_from_data(RT_F32, 2, a_shape, a_values, &a));
    CHECK(rt_tensor_from_data(RT_F32, 2, b_shape, b_values, &b));
    CHECK(rt_matmul(a, b, &c)); /* (2,3) x (3,2) -> (2,2), on OpenBLAS */
    for (int64_t i = 0; i < 2; i++) {
        for (int64_t j = 0; j < 2; j++) {
            const int64_t index[2] = {i, j};
            double value;
            CHECK(rt_tensor_get(c, index, &value));
            printf("c[%lld][%lld] = %g\n", (long long)i, (long long)j, value);
        }
    }

    /* A failure is a status and a message, never an abort: (2,3) x (2,3) does not fit. */
    enum rt_status st = rt_matmul(a, a, &bad);
    if (st != RT_ERR_SHAPE || bad != NULL) {
        fprintf(stderr, "rt_matmul(a, a) should have failed with RT_ERR_SHAPE\n");
        goto done;
    }
    printf("refused: %s: %s\n", rt_status_name(st), rt_error_msg());
    rt_error_clear();
    result = 0;

done:
    rt_tensor_release(bad);
    rt_tensor_release(c);
    rt_tensor_release(b);
    rt_tensor_release(a);
    return result;
}
