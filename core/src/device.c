/* Device queries, answered by each device's backend table (NULL entries mean "nothing to do"). */
#include <string.h>

#include "internal.h"

static int sync_debug = -1; /* -1: not yet read from RETORT_CUDA_SYNC */
/* times the host waited for each device: downloads and synchronizes (ops run on one thread) */
static uint64_t waits[RT_DEVICE_COUNT];

static void count_wait(enum rt_device d)
{
    if (d != RT_CPU && (unsigned)d < RT_DEVICE_COUNT)
        waits[d]++;
}

uint64_t rt_device_waits(enum rt_device d) { return (unsigned)d < RT_DEVICE_COUNT ? waits[d] : 0; }

uint64_t rt_device_launches(enum rt_device d)
{
    const struct rt_backend *be = rt_backend_for(d);
    return be && be->launches && rt_device_available(d, NULL) ? be->launches() : 0;
}

enum rt_status rt__download(const struct rt_backend *be, void *host_dst, const void *src, size_t nbytes)
{
    count_wait(be->device);
    return be->download(host_dst, src, nbytes);
}

bool rt_device_available(enum rt_device d, const char **why)
{
    const struct rt_backend *be = rt_backend_for(d);
    const char *reason = NULL;
    if (!be)
        reason = (unsigned)d < RT_DEVICE_COUNT ? "this build has no backend for it (built without nvcc)"
                                                : "no such device";
    else if (be->available && !be->available(&reason) && !reason)
        reason = "the backend reports it unavailable";
    if (why)
        *why = reason;
    return reason == NULL;
}

const char *rt_device_describe(enum rt_device d)
{
    const struct rt_backend *be = rt_backend_for(d);
    if (!be || !rt_device_available(d, NULL))
        return "";
    return be->describe ? be->describe() : be->name;
}

enum rt_status rt_device_synchronize(enum rt_device d)
{
    const char *why;
    if (!rt_device_available(d, &why))
        return rt_error(RT_ERR_DEVICE, "rt_device_synchronize: %s is not available: %s", rt_device_name(d), why);
    const struct rt_backend *be = rt_backend_for(d);
    count_wait(d);
    return be->synchronize ? be->synchronize() : RT_OK;
}

void rt_device_memory(enum rt_device d, struct rt_device_memory *out)
{
    memset(out, 0, sizeof *out);
    out->in_use = rt_memory_in_use(d);
    out->peak_in_use = rt__memory_peak(d);
    const struct rt_backend *be = rt_backend_for(d);
    if (be && be->cache_stats && rt_device_available(d, NULL))
        be->cache_stats(&out->cached, &out->peak_reserved);
}

void rt_device_reset_peak(enum rt_device d) { rt__memory_reset_peak(d); }

size_t rt_device_empty_cache(enum rt_device d)
{
    const struct rt_backend *be = rt_backend_for(d);
    return be && be->empty_cache && rt_device_available(d, NULL) ? be->empty_cache() : 0;
}

void rt_device_set_sync_debug(bool on) { sync_debug = on; }

bool rt_device_sync_debug(void)
{
    if (sync_debug < 0)
        sync_debug = rt_backend_env_flag("RETORT_CUDA_SYNC");
    return sync_debug != 0;
}
