/* What the simulator's files share: sim_runtime.cpp knows the device memory, sim_cublas.cpp checks
 * library operands against it. */
#ifndef RETORT_CUDA_SIM_INTERNAL_H
#define RETORT_CUDA_SIM_INTERNAL_H

#include <stddef.h>

namespace rt_sim {
/* One line on stderr, prefixed "retort CUDA simulator: " (what a GPU's failure would not say). */
__attribute__((format(printf, 1, 2))) void report(const char *fmt, ...);
/* Does [p, p + n) lie inside memory the device may address? */
bool device_addressable(const void *p, size_t n);
} // namespace rt_sim

/* `case x: return "x";`, for the functions that name a status (cudaGetErrorName, cublasGetStatusString) */
#define RT_SIM_CASE_NAME(x)                                                                                         \
    case x:                                                                                                         \
        return #x;

#endif
