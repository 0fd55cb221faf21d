/* Device -> backend table. Ops dispatch through this, so no device #ifdefs leak into them. */
#include "backend/backend.h"

const struct rt_backend *rt_backend_for(enum rt_device d)
{
    switch (d) {
    case RT_CPU:
        return rt_backend_cpu();
    case RT_CUDA:
        if (rt_backend_emulated_cuda())
            return rt_backend_emulated_cuda();
#ifdef RETORT_HAVE_CUDA
        return rt_backend_cuda();
#else
        return NULL;
#endif
    default:
        return NULL;
    }
}
