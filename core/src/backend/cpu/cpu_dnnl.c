/* The oneDNN helpers cpu_dnnl.h declares. */
#include <stdlib.h>

#include "backend/cpu/cpu_dnnl.h"

enum rt_status rt_cpu_path_setting(const char *op, const char *var, const char *other, enum rt_cpu_path *path)
{
    const char *v = getenv(var);
    *path = RT_CPU_PATH_AUTO;
    if (!v || !*v || strcmp(v, "auto") == 0)
        return RT_OK;
    if (strcmp(v, other) == 0) {
        *path = RT_CPU_PATH_OTHER;
        return RT_OK;
    }
    if (strcmp(v, "dnnl") != 0)
        return rt_error(RT_ERR_ARG, "%s: %s=%s: expected %s, dnnl or auto", op, var, v, other);
#ifndef RETORT_HAVE_DNNL
    return rt_error(RT_ERR_ARG, "%s: %s=dnnl, but retort was built without oneDNN (install libdnnl-dev and rebuild)",
                    op, var);
#else
    *path = RT_CPU_PATH_DNNL;
    return RT_OK;
#endif
}

#ifdef RETORT_HAVE_DNNL

static const char *dnnl_why(dnnl_status_t s)
{
    switch (s) {
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "no implementation";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "error";
    }
}

enum rt_status rt_cpu_dnnl_fail(const char *op, const char *call, dnnl_status_t s)
{
    return rt_error(s == dnnl_out_of_memory ? RT_ERR_OOM : RT_ERR_INTERNAL, "%s: oneDNN %s failed: %s (status %d)",
                    op, call, dnnl_why(s), (int)s);
}

enum rt_status rt_cpu_dnnl_ready(const char *op, dnnl_engine_t *engine, dnnl_stream_t *stream)
{
    enum rt_status st = RT_OK;
    if (!*engine)
        RT_DNNL_TRY(op, dnnl_engine_create(engine, dnnl_cpu, 0));
    if (!*stream)
        RT_DNNL_TRY(op, dnnl_stream_create(stream, *engine, dnnl_stream_default_flags));
out:
    return st;
}

#endif
