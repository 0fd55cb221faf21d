/* Helpers shared by the files of the Lua binding (not public API).
 *
 * Conventions of the binding (DESIGN.md §3):
 * - A tensor is a full userdata "retort.Tensor" holding one reference to a struct rt_tensor.
 *   __gc and __close release it; both are idempotent, and a closed tensor raises
 *   "retort.Tensor is closed" when used.
 * - Results are pushed through slots: rtb_slot() pushes an empty userdata first, then the core
 *   writes its new reference into the slot. A Lua error (even out of memory) therefore never
 *   leaks a core tensor: whatever the core produced is owned by a userdata the GC will collect.
 * - Lua is 1-based. Dims given by users are 1-based (negative dims count from the end: -1 is the
 *   last dim) and are converted to the core's 0-based dims here. Positions (narrow's start,
 *   select's index, get/set indices) are 1-based too. Index tensors given to indexSelect, gather
 *   and scatterAdd hold 1-based indices (class labels 1..C); the binding checks their range and
 *   subtracts 1. Indices returned to Lua (max/min indices, argmax/argmin, randperm) are 1-based.
 * - Argument errors use luaL_argerror, so they read "bad argument #2 to 'narrow' (...)". As in
 *   lauxlib, a method call x:narrow(...) does not count self, so x's first explicit argument is #1.
 * - Core failures raise the core's message (rt_error_msg(), which names the op and shapes) with a
 *   leading "rt_" removed: "matmul: inner dims differ: (2,3) x (4,5)".
 */
#ifndef RETORT_BIND_INTERNAL_H
#define RETORT_BIND_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>

#include "retort/retort.h"
#include "retort_bind.h"

#define RTB_TENSOR_MT "retort.Tensor"
#define RTB_GUARD_MT "retort.GradGuard"

/* Values of dt are real numbers: Lua floats when read, 4 decimals when printed (f32, f64, bf16). */
static inline bool rtb_dtype_real(enum rt_dtype dt) { return rt_dtype_is_float(dt) || dt == RT_BF16; }

struct rtb_tensor {
    struct rt_tensor *t; /* NULL once closed (or while a slot is being filled) */
};

/* --- userdata (bind_tensor.c) --- */
/* Pushes an empty tensor userdata and returns its slot for the core to fill. Applies GC pressure. */
struct rt_tensor **rtb_slot(lua_State *L);
/* Pushes a new userdata holding a new reference to t (retained here). */
void rtb_push_ref(lua_State *L, struct rt_tensor *t);
/* The tensor at idx, or an argument error (not a tensor / closed). */
struct rt_tensor *rtb_check(lua_State *L, int idx);
/* The tensor at idx or NULL when the value is not a retort.Tensor (closed tensors still error). */
struct rt_tensor *rtb_test(lua_State *L, int idx);
/* Raises the core's last error (leading "rt_" stripped). Never returns. */
int rtb_core_error(lua_State *L);
/* The same for a known status: RT_ERR_INTERRUPTED is raised as "interrupted! (<where>)", the error
 * Ctrl-C raises in Lua, and the core's interrupt flag is consumed, so one Ctrl-C is delivered once
 * (the host's hook, still set, then finds nothing pending). Never returns. */
int rtb_status_error(lua_State *L, enum rt_status st);
/* Raises when the status is not RT_OK. */
#define RTB_CALL(L, expr)                                                                          \
    do {                                                                                           \
        enum rt_status rtb_st_ = (expr);                                                           \
        if (rtb_st_ != RT_OK)                                                                      \
            rtb_status_error(L, rtb_st_);                                                          \
    } while (0)

/* "retort.FloatTensor", ... */
const char *rtb_type_name(enum rt_dtype dt);
/* dtype argument: a string ("f32"/"float", "f64"/"double", "i64"/"long", "u8"/"byte"). */
enum rt_dtype rtb_check_dtype(lua_State *L, int arg);
enum rt_dtype rtb_opt_dtype(lua_State *L, int arg, enum rt_dtype def);
/* 1-based (or negative) user dim at arg -> 0-based dim in [0, ndim). */
int rtb_check_dim(lua_State *L, int arg, int ndim);
int rtb_opt_dim(lua_State *L, int arg, int ndim, int def0);
/* Same conversion for a dim value that did not come from the stack. */
int rtb_dim_value(lua_State *L, int arg, lua_Integer d, int ndim);
/* Sizes given either as a table at `first` or as integer varargs starting there.
 * allow_minus1: one -1 entry is allowed (view/reshape/expand). Returns the next argument index. */
int rtb_check_sizes(lua_State *L, int first, int *ndim, int64_t *shape, int allow_minus1);
/* device argument: "cpu" or "cuda" */
enum rt_device rtb_check_device(lua_State *L, int arg);
/* Adds the functions of l to the table at stack index idx (the methods table or the module). */
void rtb_register(lua_State *L, int idx, const luaL_Reg *l);
/* Memory accounting for the GC pressure heuristic. */
size_t rtb_memory_total(void);

/* --- registration tables --- */
void rtb_open_tensor(lua_State *L, int methods); /* metatable + query methods into methods */
void rtb_open_view(lua_State *L, int methods);
void rtb_open_ops(lua_State *L, int methods, int module);
void rtb_open_create(lua_State *L, int module);
void rtb_open_autograd(lua_State *L, int methods, int module);
void rtb_open_print(lua_State *L, int methods);
void rtb_open_sys(lua_State *L, int module); /* clock, isatty */
void rtb_open_optim(lua_State *L, int module); /* fused optimizer updates */
void rtb_open_h5(lua_State *L, int module);  /* h5Create, h5Open: the retort.H5File userdata */
void rtb_open_npy(lua_State *L, int module); /* readNpy */
void rtb_open_fingerprint(lua_State *L, int module); /* fingerprinter: fingerprints built piece by piece */
void rtb_open_data(lua_State *L, int module); /* readIdx, augmentCropFlip, shufflePermutation, get/setRngState */
void rtb_open_image(lua_State *L, int module); /* decodeImage(s), listFiles, listSubdirs */
void rtb_open_cifar(lua_State *L, int module); /* readCifar */
void rtb_open_nn(lua_State *L, int methods, int module); /* conv2d, pools, batchNorm, ..., losses */
void rtb_open_device(lua_State *L, int module); /* deviceAvailable, synchronize, deviceMemory, ... */
void rtb_open_onnx(lua_State *L, int module); /* onnxAvailable, onnxSave (retort.onnx writes through it) */
void rtb_open_dist(lua_State *L, int module); /* dist: ranks, collectives, the gradient reducer */
void rtb_open_bf16(lua_State *L, int module); /* autocast, autocastMode, bf16Info */
/* tostring of a tensor (pushes the string). */
void rtb_push_tostring(lua_State *L, struct rt_tensor *t);

#endif
