/* Per-thread error message, dtype/device names, interruption flag. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char error_buf[1024];
static volatile int interrupt_flag; /* set from a signal handler: plain int store */

const char *rt_error_msg(void) { return error_buf; }

enum rt_status rt_error(enum rt_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_buf, sizeof error_buf, fmt, ap);
    va_end(ap);
    return st;
}

void rt_error_prefix(const char *ctx)
{
    char tmp[sizeof error_buf];
    size_t n = (size_t)snprintf(tmp, sizeof tmp, "%s: ", ctx);
    if (n < sizeof tmp) {
        memcpy(tmp + n, error_buf, sizeof tmp - n - 1);
        tmp[sizeof tmp - 1] = '\0';
    }
    memcpy(error_buf, tmp, sizeof error_buf);
}

void rt_error_clear(void) { error_buf[0] = '\0'; }

const char *rt_status_name(enum rt_status st)
{
    static const char *names[] = {"ok", "bad argument", "shape mismatch", "dtype error", "device error",
                                  "out of memory", "I/O error", "format error", "autograd error",
                                  "interrupted", "internal error"};
    return (unsigned)st < sizeof names / sizeof *names ? names[st] : "unknown status";
}

size_t rt_dtype_size(enum rt_dtype dt)
{
    switch (dt) {
    case RT_F32: return 4;
    case RT_F64: return 8;
    case RT_I64: return 8;
    case RT_U8: return 1;
    case RT_BF16: return 2;
    default: return 0;
    }
}

const char *rt_dtype_name(enum rt_dtype dt)
{
    switch (dt) {
    case RT_F32: return "f32";
    case RT_F64: return "f64";
    case RT_I64: return "i64";
    case RT_U8: return "u8";
    case RT_BF16: return "bf16";
    default: return "?";
    }
}

bool rt_dtype_is_float(enum rt_dtype dt) { return dt == RT_F32 || dt == RT_F64; }

enum rt_status rt_dtype_parse(const char *s, enum rt_dtype *out)
{
    static const struct { const char *name; enum rt_dtype dt; } names[] = {
        {"f32", RT_F32}, {"float", RT_F32}, {"float32", RT_F32}, {"f64", RT_F64}, {"double", RT_F64},
        {"float64", RT_F64}, {"i64", RT_I64}, {"long", RT_I64}, {"int64", RT_I64}, {"u8", RT_U8},
        {"byte", RT_U8}, {"uint8", RT_U8}, {"bf16", RT_BF16}, {"bfloat16", RT_BF16}};
    for (size_t i = 0; s && i < sizeof names / sizeof *names; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].dt;
            return RT_OK;
        }
    return rt_error(RT_ERR_ARG, "unknown dtype '%s' (expected f32, f64, i64, u8 or bf16)", s ? s : "(null)");
}

const char *rt_device_name(enum rt_device d) { return d == RT_CUDA ? "cuda" : "cpu"; }

void rt_interrupt_request(void) { interrupt_flag = 1; }
bool rt_interrupt_pending(void) { return interrupt_flag != 0; }
void rt_interrupt_clear(void) { interrupt_flag = 0; }
