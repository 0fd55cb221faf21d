/* tostring(tensor), Torch7 style.
 *
 *   0-dim      "3.5000\n[retort.FloatTensor of size (scalar)]"
 *   1-D        one value per line, then "[retort.FloatTensor of size 3]"
 *   2-D        rows with aligned columns; rows wider than 80 characters are split into blocks
 *              headed "Columns 1 to 9"
 *   n-D        "(i,j,.,.) = " headers, each followed by that 2-D slice indented by one space
 *
 * Number format (Torch7's rules, computed once over all printed values, so every slice shares it):
 * float dtypes always show 4 decimals; i64 and u8 show integers. With m = the number of digits
 * before the point of the largest magnitude (expMax) and of the smallest (expMin, zeros count as
 * 1): when expMax - expMin > 4 values use %11.4e; when expMax > 5 or expMax < 0 a common scale
 * factor is printed first ("0.001 *", formatted with %g as Torch7 does) and values divided by it;
 * otherwise plain %.4f in a column wide enough for the largest value. NaN and infinities print as
 * nan, inf, -inf.
 *
 * Large tensors: above 1000 elements, every dim longer than 6 shows its first and last 3 entries
 * with "..." between (rows, columns, and slices alike).
 *
 * Footer: "[retort.FloatTensor of size 2x3]" (DoubleTensor, LongTensor, ByteTensor), with
 * " on cuda" for device tensors; autograd state is shown inside the bracket: ", grad_fn=AddBackward"
 * for results of recorded ops, ", requires grad" for leaves that require grad. No trailing newline. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind_internal.h"

#define PRINT_SUMMARY_THRESHOLD 1000
#define PRINT_EDGE 3
#define PRINT_LINE_WIDTH 80

enum fmt_mode { FMT_FIXED, FMT_EXP, FMT_INT };

struct fmt {
    enum fmt_mode mode;
    int width;
    double scale; /* 1 when none */
};

struct view {
    const struct rt_tensor *t;
    int ndim;
    int64_t disp[RT_MAX_DIMS]; /* displayed entries per dim */
    int trunc[RT_MAX_DIMS];    /* dim shows first/last PRINT_EDGE entries only */
    double *dv;                /* float dtypes: displayed values, row-major over disp */
    int64_t *iv;               /* integer dtypes */
};

static int64_t actual_index(const struct view *v, int d, int64_t k)
{
    return v->trunc[d] && k >= PRINT_EDGE ? v->t->shape[d] - 2 * PRINT_EDGE + k : k;
}

static void format_value(const struct fmt *f, const struct view *v, int64_t p, char *out, size_t n)
{
    if (f->mode == FMT_INT) {
        snprintf(out, n, "%*lld", f->width, (long long)v->iv[p]);
        return;
    }
    double x = v->dv[p];
    if (isnan(x))
        snprintf(out, n, "%*s", f->width, "nan");
    else if (isinf(x))
        snprintf(out, n, "%*s", f->width, x > 0 ? "inf" : "-inf");
    else if (f->mode == FMT_EXP)
        snprintf(out, n, "%*.4e", f->width, x);
    else
        snprintf(out, n, "%*.4f", f->width, x / f->scale);
}

static int digits_before_point(double a) { return a != 0 ? (int)floor(log10(a)) + 1 : 1; }

static void choose_format(struct fmt *f, const struct view *v, int64_t count)
{
    f->scale = 1;
    if (!v->dv) {
        int w = 1;
        for (int64_t i = 0; i < count; i++) {
            char s[32];
            int len = snprintf(s, sizeof s, "%lld", (long long)v->iv[i]);
            if (v->iv[i] >= 0)
                len++; /* Torch7: one column for the sign */
            if (len > w)
                w = len;
        }
        f->mode = FMT_INT;
        f->width = w;
        return;
    }
    double amax = 0, amin = INFINITY;
    for (int64_t i = 0; i < count; i++) {
        double a = fabs(v->dv[i]);
        if (!isfinite(a))
            continue;
        if (a > amax)
            amax = a;
        if (a < amin)
            amin = a;
    }
    if (!isfinite(amin))
        amin = 0;
    int emax = digits_before_point(amax), emin = digits_before_point(amin);
    if (emax - emin > 4) {
        f->mode = FMT_EXP;
        f->width = (abs(emax) > 99 || abs(emin) > 99) ? 12 : 11;
    } else if (emax > 5 || emax < 0) {
        f->mode = FMT_FIXED;
        f->width = 7;
        f->scale = pow(10, emax - 1);
    } else {
        f->mode = FMT_FIXED;
        f->width = emax == 0 ? 7 : emax + 6;
    }
}

/* Fills v->dv or v->iv (a GC-owned buffer pushed on the stack) with the displayed values. */
static int64_t gather_values(lua_State *L, struct view *v)
{
    const struct rt_tensor *t = v->t;
    int64_t numel = rt_tensor_numel(t);
    int summarize = numel > PRINT_SUMMARY_THRESHOLD;
    int64_t count = 1;
    for (int d = 0; d < t->ndim; d++) {
        v->trunc[d] = summarize && t->shape[d] > 2 * PRINT_EDGE;
        v->disp[d] = v->trunc[d] ? 2 * PRINT_EDGE : t->shape[d];
        count *= v->disp[d];
    }
    int is_float = rtb_dtype_real(t->dtype);
    void *buf = lua_newuserdatauv(L, (size_t)(count > 0 ? count : 1) * 8, 0);
    v->dv = is_float ? buf : NULL;
    v->iv = is_float ? NULL : buf;
    if (!summarize) {
        if (count > 0)
            RTB_CALL(L, rt_tensor_to_host(t, is_float ? RT_F64 : RT_I64, buf));
        return count;
    }
    int64_t k[RT_MAX_DIMS] = {0}, idx[RT_MAX_DIMS];
    for (int64_t p = 0; p < count; p++) {
        for (int d = 0; d < t->ndim; d++)
            idx[d] = actual_index(v, d, k[d]);
        if (t->dtype == RT_I64 && rt_tensor_device(t) == RT_CPU) {
            const int64_t *q = rt_tensor_data(t);
            for (int d = 0; d < t->ndim; d++)
                q += idx[d] * t->stride[d];
            v->iv[p] = *q;
        } else {
            double x;
            RTB_CALL(L, rt_tensor_get(t, idx, &x));
            if (is_float)
                v->dv[p] = x;
            else
                v->iv[p] = (int64_t)x;
        }
        for (int d = t->ndim - 1; d >= 0; d--) { /* row-major odometer */
            if (++k[d] < v->disp[d])
                break;
            k[d] = 0;
        }
    }
    return count;
}

static void add_value(luaL_Buffer *b, const struct fmt *f, const struct view *v, int64_t p)
{
    char s[64];
    format_value(f, v, p, s, sizeof s);
    luaL_addstring(b, s);
}

/* The 2-D slice whose first displayed value is at position base; dims d0 (rows), d0+1 (cols). */
static void print_matrix(luaL_Buffer *b, const struct fmt *f, const struct view *v, int64_t base, int d0,
                         const char *indent)
{
    int64_t rows = v->disp[d0], cols = v->disp[d0 + 1];
    int rtrunc = v->trunc[d0], ctrunc = v->trunc[d0 + 1];
    int64_t per_line = cols;
    if (!ctrunc) {
        per_line = (PRINT_LINE_WIDTH - (int64_t)strlen(indent)) / (f->width + 1);
        if (per_line < 1)
            per_line = 1;
        if (per_line > cols)
            per_line = cols;
    }
    for (int64_t c0 = 0; c0 < cols || (cols == 0 && c0 == 0); c0 += per_line) {
        int64_t c1 = c0 + per_line < cols ? c0 + per_line : cols;
        if (per_line < cols) {
            if (c0 > 0)
                luaL_addchar(b, '\n');
            luaL_addstring(b, indent);
            lua_pushfstring(b->L, "Columns %I to %I\n", (lua_Integer)(c0 + 1), (lua_Integer)c1);
            luaL_addvalue(b);
        }
        for (int64_t r = 0; r < rows; r++) {
            if (rtrunc && r == PRINT_EDGE) {
                luaL_addstring(b, indent);
                luaL_addstring(b, "...\n");
            }
            luaL_addstring(b, indent);
            for (int64_t c = c0; c < c1; c++) {
                if (c > c0)
                    luaL_addchar(b, ' ');
                if (ctrunc && c == PRINT_EDGE)
                    luaL_addstring(b, "... ");
                add_value(b, f, v, base + r * cols + c);
            }
            luaL_addchar(b, '\n');
        }
        if (cols == 0)
            break;
    }
}

static void add_footer(luaL_Buffer *b, const struct rt_tensor *t)
{
    luaL_addchar(b, '[');
    luaL_addstring(b, rtb_type_name(t->dtype));
    luaL_addstring(b, " of size ");
    if (t->ndim == 0)
        luaL_addstring(b, "(scalar)");
    for (int d = 0; d < t->ndim; d++) {
        char s[32];
        snprintf(s, sizeof s, d ? "x%lld" : "%lld", (long long)t->shape[d]);
        luaL_addstring(b, s);
    }
    if (rt_tensor_device(t) != RT_CPU) {
        luaL_addstring(b, " on ");
        luaL_addstring(b, rt_device_name(rt_tensor_device(t)));
    }
    const char *fn = rt_tensor_grad_fn_name(t);
    if (fn) {
        luaL_addstring(b, ", grad_fn=");
        luaL_addstring(b, fn);
    } else if (t->requires_grad) {
        luaL_addstring(b, ", requires grad");
    }
    luaL_addchar(b, ']');
}

static void print_scalar(luaL_Buffer *b, const struct view *v)
{
    char s[64];
    if (v->iv) {
        snprintf(s, sizeof s, "%lld", (long long)v->iv[0]);
    } else {
        double x = v->dv[0], a = fabs(x);
        if (isnan(x))
            snprintf(s, sizeof s, "nan");
        else if (isinf(x))
            snprintf(s, sizeof s, x > 0 ? "inf" : "-inf");
        else if (a == 0 || (a >= 1e-4 && a < 1e6))
            snprintf(s, sizeof s, "%.4f", x);
        else
            snprintf(s, sizeof s, "%.4e", x);
    }
    luaL_addstring(b, s);
    luaL_addchar(b, '\n');
}

void rtb_push_tostring(lua_State *L, struct rt_tensor *t)
{
    struct view v = {.t = t, .ndim = t->ndim};
    int64_t count = rt_tensor_numel(t) > 0 ? gather_values(L, &v) : 0;
    struct fmt f;
    choose_format(&f, &v, count);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (count > 0) {
        if (t->ndim == 0) {
            print_scalar(&b, &v);
        } else {
            if (f.mode == FMT_FIXED && f.scale != 1) {
                char s[48];
                snprintf(s, sizeof s, "%g *\n", f.scale);
                luaL_addstring(&b, s);
            }
            if (t->ndim == 1) {
                for (int64_t i = 0; i < v.disp[0]; i++) {
                    if (v.trunc[0] && i == PRINT_EDGE)
                        luaL_addstring(&b, "...\n");
                    add_value(&b, &f, &v, i);
                    luaL_addchar(&b, '\n');
                }
            } else if (t->ndim == 2) {
                print_matrix(&b, &f, &v, 0, 0, "");
            } else {
                int lead = t->ndim - 2;
                int64_t slice = v.disp[t->ndim - 2] * v.disp[t->ndim - 1];
                int64_t nslices = count / slice;
                int64_t k[RT_MAX_DIMS] = {0};
                for (int64_t s = 0; s < nslices; s++) {
                    int gap = 0;
                    for (int d = lead - 1; d >= 0 && !gap; d--) {
                        if (v.trunc[d] && k[d] == PRINT_EDGE) {
                            int inner_zero = 1;
                            for (int e = d + 1; e < lead; e++)
                                inner_zero &= k[e] == 0;
                            gap = inner_zero;
                        }
                    }
                    if (s > 0)
                        luaL_addchar(&b, '\n');
                    if (gap)
                        luaL_addstring(&b, "...\n\n");
                    luaL_addchar(&b, '(');
                    for (int d = 0; d < lead; d++) {
                        char num[32];
                        snprintf(num, sizeof num, "%lld,", (long long)(actual_index(&v, d, k[d]) + 1));
                        luaL_addstring(&b, num);
                    }
                    luaL_addstring(&b, ".,.) = \n");
                    print_matrix(&b, &f, &v, s * slice, t->ndim - 2, " ");
                    for (int d = lead - 1; d >= 0; d--) {
                        if (++k[d] < v.disp[d])
                            break;
                        k[d] = 0;
                    }
                }
            }
        }
    }
    add_footer(&b, t);
    luaL_pushresult(&b);
    if (count > 0)
        lua_remove(L, -2); /* the value buffer */
}

/* x:print() — prints tostring(x) to stdout (REPL convenience, like print(x)). */
static int m_print(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    rtb_push_tostring(L, t);
    lua_writestring(lua_tostring(L, -1), lua_rawlen(L, -1));
    lua_writeline();
    return 0;
}

void rtb_open_print(lua_State *L, int methods_idx)
{
    lua_pushvalue(L, methods_idx);
    lua_pushcfunction(L, m_print);
    lua_setfield(L, -2, "print");
    lua_pop(L, 1);
}
