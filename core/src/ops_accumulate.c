/* Running sums of one-element values into an f64 accumulator, all in one backend call: what a
 * training loop adds up every step (loss, correct predictions, loss terms) costs one launch on a
 * GPU instead of one per value. */
#include "backend/backend.h"
#include "internal.h"

enum rt_status rt_accumulate_(struct rt_tensor *acc, int n, struct rt_tensor *const *v, const double *w,
                              const int64_t *slot)
{
    static const char *op = "rt_accumulate_";
    if (acc->dtype != RT_F64 || acc->ndim != 1 || !rt_tensor_is_contiguous(acc))
        return rt_error(RT_ERR_ARG, "%s: the accumulator must be a contiguous f64 vector, got %s with %d dims", op,
                        rt_dtype_name(acc->dtype), acc->ndim);
    if (n < 0 || n > RT_ACCUMULATE_MAX)
        return rt_error(RT_ERR_ARG, "%s: %d values; at most %d at a time", op, n, RT_ACCUMULATE_MAX);
    enum rt_status st = rt__check_inplace(op, acc);
    if (st != RT_OK)
        return st;
    struct rt_accumulate_args a = {.n = n};
    for (int i = 0; i < n; i++) {
        if (v[i]->dtype != RT_F32 && v[i]->dtype != RT_F64)
            return rt_error(RT_ERR_DTYPE, "%s: value %d must be f32 or f64, got %s", op, i + 1,
                            rt_dtype_name(v[i]->dtype));
        if (rt_tensor_numel(v[i]) != 1)
            return rt_error(RT_ERR_SHAPE, "%s: value %d must have one element, got %lld", op, i + 1,
                            (long long)rt_tensor_numel(v[i]));
        st = rt__same_device(op, acc, v[i]);
        if (st != RT_OK)
            return st;
        if (slot[i] < 0 || slot[i] >= acc->shape[0])
            return rt_error(RT_ERR_ARG, "%s: the slot of value %d is outside the accumulator (%lld slots)", op,
                            i + 1, (long long)acc->shape[0]);
        for (int j = 0; j < i; j++)
            if (slot[j] == slot[i])
                return rt_error(RT_ERR_ARG, "%s: values %d and %d go to the same slot", op, j + 1, i + 1);
        a.v[i] = rt__ptr(v[i]), a.dt[i] = (unsigned char)v[i]->dtype, a.slot[i] = slot[i], a.w[i] = w[i];
    }
    if (n == 0)
        return RT_OK;
    st = rt__backend(acc)->accumulate(rt__ptr(acc), &a);
    if (st == RT_OK)
        rt__bump_version(acc);
    return st;
}
