/* Devices: whether one can be used, what it is, its memory, and waiting for it.
 * Tensors carry their device (rt_tensor_device); ops run on their operands' device and refuse
 * operands on two devices. RT_CPU is always available; RT_CUDA when the build found nvcc and the
 * machine has a GPU. */
#ifndef RETORT_DEVICE_H
#define RETORT_DEVICE_H

#include "common.h"

/* Whether d can be used; when not, *why (if given) is a static sentence saying why. */
bool rt_device_available(enum rt_device d, const char **why);
/* One line naming the hardware ("" when unavailable). */
const char *rt_device_describe(enum rt_device d);
/* Waits until all work queued on d has finished; reports a fault an earlier kernel left. */
enum rt_status rt_device_synchronize(enum rt_device d);
/* How many times the host has waited for d since start: every read of d's memory (item, copy to the
 * host) and every synchronize. A training step that waits stalls the GPU while the host catches up;
 * the count shows where. Always 0 for RT_CPU. */
uint64_t rt_device_waits(enum rt_device d);
/* How much work has been queued on d since start: kernels, library calls (cuBLAS) and copies, one
 * each. A small model's step on a GPU costs about a launch's host time per launch, so this is the
 * count to bring down. 0 for a device that does not count (the CPU, the emulated cuda device). */
uint64_t rt_device_launches(enum rt_device d);

struct rt_device_memory {
    size_t in_use;        /* bytes held by live tensor storages */
    size_t peak_in_use;   /* the most in_use has been since start or rt_device_reset_peak */
    size_t cached;        /* freed blocks the allocator keeps for reuse */
    size_t peak_reserved; /* the most the allocator has held from the system (in use + cached) */
};
void rt_device_memory(enum rt_device d, struct rt_device_memory *out);
void rt_device_reset_peak(enum rt_device d);
/* Gives d's cached blocks back to the system; returns the bytes released. */
size_t rt_device_empty_cache(enum rt_device d);

/* Debug mode: wait for every kernel as it is launched, so an asynchronous fault is reported by the
 * op that caused it (slow). Also switched on by the environment variable RETORT_CUDA_SYNC=1. */
void rt_device_set_sync_debug(bool on);
bool rt_device_sync_debug(void);

#endif
