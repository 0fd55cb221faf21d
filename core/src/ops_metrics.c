/* Classification metrics computed where the scores are: the count of rows predicted right, in one
 * kernel and without reading anything back, so a training loop on a GPU can sum it every step. */
#include "nn_internal.h"

enum rt_status rt_count_correct(struct rt_tensor *scores, struct rt_tensor *labels, int64_t base,
                                struct rt_tensor **out)
{
    static const char *op = "rt_count_correct";
    enum rt_status st = rt__nn_class_args(op, "scores", scores, labels);
    if (st == RT_OK)
        st = rt__nn_kernel(op, scores, rt__backend(scores)->count_correct);
    if (st != RT_OK)
        return st;
    int64_t N = scores->shape[0], C = scores->shape[1];
    struct rt_tensor *xc = NULL, *lc = NULL, *y = NULL;
    RT_TRY(rt__contig_raw(scores, &xc));
    RT_TRY(rt__contig_raw(labels, &lc));
    RT_TRY(rt_tensor_empty(scores->dtype, rt_tensor_device(scores), 0, NULL, &y));
    RT_TRY(rt__backend(scores)->count_correct(scores->dtype, N, C, rt__ptr(xc), rt__ptr(lc), base, rt__ptr(y)));
done:
    rt__release_all(2, (struct rt_tensor *[]){xc, lc});
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
