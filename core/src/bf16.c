/* bfloat16 conversions in bulk and the autocast mode (retort/bf16.h). The mode is per thread, as
 * grad mode is: a data-loader thread never sees the training thread's autocast. */
#include "internal.h"

static _Thread_local enum rt_dtype autocast_mode = RT_F32;

enum rt_status rt_autocast_set(enum rt_dtype mode, enum rt_dtype *previous)
{
    if (mode != RT_F32 && mode != RT_BF16)
        return rt_error(RT_ERR_ARG, "rt_autocast_set: autocast takes f32 (off) or bf16, not %s",
                        (unsigned)mode < RT_DTYPE_COUNT ? rt_dtype_name(mode) : "an unknown dtype");
    const char *why = NULL;
    /* a GPU multiplies bf16 on its tensor cores whatever the CPU has; a CPU product without a unit
     * then fails at the op, saying so */
    if (mode == RT_BF16 && !rt_bf16_unit(NULL, NULL, &why) && !rt_device_available(RT_CUDA, NULL))
        return rt_error(RT_ERR_DEVICE, "rt_autocast_set: bf16 autocast needs a CPU bf16 unit or a GPU: %s", why);
    if (previous)
        *previous = autocast_mode;
    autocast_mode = mode;
    return RT_OK;
}

enum rt_dtype rt_autocast_get(void) { return autocast_mode; }

enum rt_status rt__not_float(const char *op, enum rt_dtype dt)
{
    if (dt == RT_BF16)
        return rt_error(RT_ERR_DTYPE, "%s: bf16 tensors are not supported; convert with :float()", op);
    return rt_error(RT_ERR_DTYPE, "%s: needs a float tensor, got %s", op,
                    (unsigned)dt < RT_DTYPE_COUNT ? rt_dtype_name(dt) : "an unknown dtype");
}
