/* Classification metrics computed where the scores are: the count of rows predicted right, in one
 * kernel and without reading anything back, so a training loop on a GPU can sum it every step. */
#include "nn_internal.h"

enum rt_status rt_count_correct(struct rt_tensor *scores, struct rt_tensor *labels, int64_t base,
                                struct rt_tensor **out)
{
    static const char *op = "rt_count_correct";
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (scores->ndim != 2)
        return rt_error(RT_ERR_SHAPE, "%s: scores must be (N,C), got %s", op,
                        rt_shape_str(scores->ndim, scores->shape, a, sizeof a));
    enum rt_status st = rt__nn_float(op, "scores", scores);
    if (st != RT_OK)
        return st;
    if (labels->dtype != RT_I64)
        return rt_error(RT_ERR_DTYPE, "%s: labels must be i64, got %s", op, rt_dtype_name(labels->dtype));
    int64_t N = scores->shape[0], C = scores->shape[1];
    if (labels->ndim != 1 || labels->shape[0] != N)
        return rt_error(RT_ERR_SHAPE, "%s: labels %s do not fit scores %s (expected (%lld))", op,
                        rt_shape_str(labels->ndim, labels->shape, a, sizeof a),
                        rt_shape_str(scores->ndim, scores->shape, b, sizeof b), (long long)N);
    st = rt__same_device(op, scores, labels);
    if (st == RT_OK)
        st = rt__nn_kernel(op, scores, rt__backend(scores)->count_correct);
    if (st != RT_OK)
        return st;
    struct rt_tensor *xc = NULL, *lc = NULL, *y = NULL;
    NN_TRY(rt__contig_raw(scores, &xc));
    NN_TRY(rt__contig_raw(labels, &lc));
    NN_TRY(rt_tensor_empty(scores->dtype, rt_tensor_device(scores), 0, NULL, &y));
    NN_TRY(rt__backend(scores)->count_correct(scores->dtype, N, C, rt__ptr(xc), rt__ptr(lc), base, rt__ptr(y)));
done:
    rt__release_all(2, (struct rt_tensor *[]){xc, lc});
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
