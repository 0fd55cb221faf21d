/* Device -> backend table (ops dispatch through this, so no device #ifdefs leak into them), and
 * the helpers every backend shares. */
#include "backend/backend.h"

const struct rt_backend *rt_backend_for(enum rt_device d)
{
    switch (d) {
    case RT_CPU:
        return rt_backend_cpu();
    case RT_CUDA:
#ifdef RETORT_HAVE_CUDA
        return rt_backend_cuda();
#else
        return NULL;
#endif
    default:
        return NULL;
    }
}

int rt_backend_coalesce(int nd, const int64_t *shape, int k, const int64_t *const *strides, int64_t *oshape,
                        int64_t (*ostrides)[RT_MAX_DIMS])
{
    int o = 0;
    for (int d = 0; d < nd; d++) {
        if (shape[d] == 1)
            continue;
        bool merge = o > 0;
        for (int s = 0; s < k && merge; s++)
            merge = ostrides[s][o - 1] == strides[s][d] * shape[d];
        if (merge) {
            oshape[o - 1] *= shape[d];
            for (int s = 0; s < k; s++)
                ostrides[s][o - 1] = strides[s][d];
        } else {
            oshape[o] = shape[d];
            for (int s = 0; s < k; s++)
                ostrides[s][o] = strides[s][d];
            o++;
        }
    }
    if (o == 0) { /* all dims size 1: one element */
        oshape[0] = 1;
        for (int s = 0; s < k; s++)
            ostrides[s][0] = 1;
        o = 1;
    }
    return o;
}
