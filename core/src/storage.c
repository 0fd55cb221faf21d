/* Refcounted storage on a device, with the version counter shared by all views. */
#include <stdlib.h>

#include "internal.h"

static size_t memory_in_use[RT_DEVICE_COUNT], memory_peak[RT_DEVICE_COUNT];

size_t rt_memory_in_use(enum rt_device d) { return (unsigned)d < RT_DEVICE_COUNT ? memory_in_use[d] : 0; }
size_t rt__memory_peak(enum rt_device d) { return (unsigned)d < RT_DEVICE_COUNT ? memory_peak[d] : 0; }
void rt__memory_reset_peak(enum rt_device d)
{
    if ((unsigned)d < RT_DEVICE_COUNT)
        memory_peak[d] = memory_in_use[d];
}

enum rt_status rt__storage_new(enum rt_device dev, size_t nbytes, struct rt_storage **out)
{
    const struct rt_backend *be = rt_backend_for(dev);
    if (!be)
        return rt_error(RT_ERR_DEVICE, "device %s is not available in this build", rt_device_name(dev));
    struct rt_storage *s = calloc(1, sizeof *s);
    if (!s)
        return rt_error(RT_ERR_OOM, "out of memory allocating a storage header");
    enum rt_status st = be->alloc(nbytes, &s->data);
    if (st != RT_OK) {
        free(s);
        return st;
    }
    s->refcount = 1;
    s->device = dev;
    s->backend = be;
    s->nbytes = nbytes;
    memory_in_use[dev] += nbytes;
    if (memory_in_use[dev] > memory_peak[dev])
        memory_peak[dev] = memory_in_use[dev];
    *out = s;
    return RT_OK;
}

void rt__storage_release(struct rt_storage *s)
{
    if (!s || --s->refcount > 0)
        return;
    memory_in_use[s->device] -= s->nbytes;
    s->backend->free(s->data, s->nbytes);
    free(s);
}
