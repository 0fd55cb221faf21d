/* Device -> backend table. Ops dispatch through this, so no device #ifdefs leak into them. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

bool rt_backend_env_flag(const char *name)
{
    const char *env = getenv(name);
    return env && *env && strcmp(env, "0") != 0;
}

const struct rt_backend *rt_backend_for(enum rt_device d)
{
    switch (d) {
    case RT_CPU:
        return rt_backend_cpu();
    case RT_CUDA: {
        const struct rt_backend *emulated = rt_backend_emulated_cuda();
#ifdef RETORT_HAVE_CUDA
        return emulated ? emulated : rt_backend_cuda();
#else
        return emulated;
#endif
    }
    default:
        return NULL;
    }
}
