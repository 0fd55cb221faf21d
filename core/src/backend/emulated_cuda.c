/* The cuda device emulated on the CPU, for tests and device audits on machines without a GPU:
 * RETORT_EMULATE_CUDA=1 makes the cuda device the CPU kernels under the cuda tag. Tensors moved
 * with t:cuda() live in host memory but count as cuda tensors, so code that mixes devices, or
 * forgets to move something, fails exactly where it would on a GPU. Results equal the CPU's. It
 * says nothing about the CUDA kernels themselves (tests/c/test_cuda.c on a GPU does). */
#include <threads.h>

#include "backend/backend.h"

static struct rt_backend emulated;
static bool wanted;
static once_flag once = ONCE_FLAG_INIT;

static bool always(const char **why)
{
    (void)why;
    return true;
}

static const char *describe(void) { return "cuda emulated on the CPU (RETORT_EMULATE_CUDA=1)"; }

static void setup(void)
{
    wanted = rt_backend_env_flag("RETORT_EMULATE_CUDA");
    emulated = *rt_backend_cpu();
    emulated.name = "cuda (emulated)";
    emulated.device = RT_CUDA;
    emulated.available = always;
    emulated.describe = describe;
    /* the blocks are the CPU cache's: report them there only */
    emulated.empty_cache = NULL;
    emulated.cache_stats = NULL;
}

const struct rt_backend *rt_backend_emulated_cuda(void)
{
    call_once(&once, setup);
    return wanted ? &emulated : NULL;
}
