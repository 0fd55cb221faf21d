/* Reader and runner for tests/fixtures/ops.txt: see fixtures.h. Included by the tests that use it. */
#include "fixtures.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ parsing */

static char *fx_tok(char **p)
{
    char *s = *p;
    while (*s && isspace((unsigned char)*s))
        s++;
    if (!*s) {
        *p = s;
        return NULL;
    }
    char *e = s;
    while (*e && !isspace((unsigned char)*e))
        e++;
    if (*e)
        *e++ = '\0';
    *p = e;
    return s;
}

static bool fx_parse_tensor(char *rest, struct rt_tensor **out, const char *path, int lineno)
{
    char *tok = fx_tok(&rest);
    enum rt_dtype dt;
    if (!tok || rt_dtype_parse(tok, &dt) != RT_OK)
        return h_fail(path, lineno, "fixture: bad dtype '%s'", tok ? tok : "");
    tok = fx_tok(&rest);
    char *end;
    long nd = tok ? strtol(tok, &end, 10) : -1;
    if (!tok || *end || nd < 0 || nd > RT_MAX_DIMS)
        return h_fail(path, lineno, "fixture: bad ndim");
    int64_t shape[RT_MAX_DIMS];
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        tok = fx_tok(&rest);
        long long d = tok ? strtoll(tok, &end, 10) : -1;
        if (!tok || *end || d < 0)
            return h_fail(path, lineno, "fixture: bad dim %d", i);
        shape[i] = d;
        n *= d;
    }
    struct rt_tensor *t;
    if (rt_tensor_new(dt, RT_CPU, (int)nd, shape, &t) != RT_OK)
        return h_fail(path, lineno, "fixture: %s", rt_error_msg());
    void *p = rt_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        tok = fx_tok(&rest);
        if (!tok) {
            rt_tensor_release(t);
            return h_fail(path, lineno, "fixture: %lld values expected, got %lld", (long long)n, (long long)i);
        }
        errno = 0;
        if (dt == RT_I64 || dt == RT_U8) {
            long long v = strtoll(tok, &end, 10);
            if (dt == RT_I64)
                ((int64_t *)p)[i] = v;
            else
                ((uint8_t *)p)[i] = (uint8_t)v;
        } else {
            double v = strtod(tok, &end);
            if (dt == RT_F32)
                ((float *)p)[i] = (float)v;
            else
                ((double *)p)[i] = v;
        }
        if (*end) {
            rt_tensor_release(t);
            return h_fail(path, lineno, "fixture: bad value '%s'", tok);
        }
    }
    if (fx_tok(&rest)) {
        rt_tensor_release(t);
        return h_fail(path, lineno, "fixture: more than %lld values", (long long)n);
    }
    *out = t;
    return true;
}

static void fx_case_free(struct fx_case *c)
{
    for (int i = 0; i < c->n_in; i++)
        rt_tensor_release(c->in[i]);
    for (int i = 0; i < c->n_out; i++)
        rt_tensor_release(c->out[i]);
    c->n_in = c->n_out = 0;
}

void fx_free(struct fx_file *f)
{
    for (int i = 0; i < f->n; i++)
        fx_case_free(&f->cases[i]);
    free(f->cases);
    f->cases = NULL;
    f->n = 0;
}

bool fx_load(const char *path, struct fx_file *f)
{
    f->n = 0;
    f->cases = NULL;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return h_fail(__FILE__, __LINE__, "cannot open fixture file %s", path);
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, cap_cases = 0;
    struct fx_case *cur = NULL;
    bool ok = true;
    while (ok && getline(&line, &cap, fp) != -1) {
        lineno++;
        char *rest = line;
        char *tag = fx_tok(&rest);
        if (!tag || tag[0] == '#')
            continue;
        if (!strcmp(tag, "case")) {
            if (cur) {
                ok = h_fail(path, lineno, "fixture: 'case' inside case %s", cur->name);
                break;
            }
            if (f->n == cap_cases) {
                cap_cases = cap_cases ? 2 * cap_cases : 64;
                struct fx_case *nc = realloc(f->cases, sizeof *nc * (size_t)cap_cases);
                if (!nc) {
                    ok = h_fail(path, lineno, "fixture: out of memory");
                    break;
                }
                f->cases = nc;
            }
            cur = &f->cases[f->n++];
            memset(cur, 0, sizeof *cur);
            cur->line = lineno;
            char *name = fx_tok(&rest), *op = fx_tok(&rest);
            if (!name || !op) {
                ok = h_fail(path, lineno, "fixture: case needs a name and an op");
                break;
            }
            snprintf(cur->name, sizeof cur->name, "%s", name);
            snprintf(cur->op, sizeof cur->op, "%s", op);
            char *kv;
            while ((kv = fx_tok(&rest))) {
                char *eq = strchr(kv, '=');
                if (!eq || cur->n_params == FX_MAX_PARAMS) {
                    ok = h_fail(path, lineno, "fixture: bad parameter '%s'", kv);
                    break;
                }
                *eq = '\0';
                snprintf(cur->key[cur->n_params], sizeof cur->key[0], "%s", kv);
                snprintf(cur->value[cur->n_params], sizeof cur->value[0], "%s", eq + 1);
                cur->n_params++;
            }
        } else if (!strcmp(tag, "in") || !strcmp(tag, "out")) {
            bool in = tag[0] == 'i';
            if (!cur || (in ? cur->n_in : cur->n_out) == FX_MAX_TENSORS || (in && cur->n_out)) {
                ok = h_fail(path, lineno, "fixture: misplaced '%s' line", tag);
                break;
            }
            struct rt_tensor *t = NULL;
            if (!fx_parse_tensor(rest, &t, path, lineno)) {
                ok = false;
                break;
            }
            if (in)
                cur->in[cur->n_in++] = t;
            else
                cur->out[cur->n_out++] = t;
        } else if (!strcmp(tag, "end")) {
            if (!cur || cur->n_out == 0) {
                ok = h_fail(path, lineno, "fixture: 'end' without a complete case");
                break;
            }
            cur = NULL;
        } else {
            ok = h_fail(path, lineno, "fixture: unknown line tag '%s'", tag);
        }
    }
    if (ok && cur)
        ok = h_fail(path, lineno, "fixture: case %s has no 'end'", cur->name);
    free(line);
    fclose(fp);
    if (!ok)
        fx_free(f);
    return ok;
}

/* ------------------------------------------------------------------ parameters */

static const char *fx_find(const struct fx_case *c, const char *key)
{
    for (int i = 0; i < c->n_params; i++)
        if (!strcmp(c->key[i], key))
            return c->value[i];
    return NULL;
}

bool fx_has(const struct fx_case *c, const char *key) { return fx_find(c, key) != NULL; }

int64_t fx_int(const struct fx_case *c, const char *key, int64_t def)
{
    const char *v = fx_find(c, key);
    return v ? strtoll(v, NULL, 10) : def;
}

double fx_real(const struct fx_case *c, const char *key, double def)
{
    const char *v = fx_find(c, key);
    return v ? strtod(v, NULL) : def;
}

const char *fx_str(const struct fx_case *c, const char *key, const char *def)
{
    const char *v = fx_find(c, key);
    return v ? v : def;
}

int fx_list(const struct fx_case *c, const char *key, int64_t *out, int max)
{
    const char *v = fx_find(c, key);
    if (!v)
        return -1;
    int n = 0;
    while (*v && n < max) {
        char *end;
        out[n++] = strtoll(v, &end, 10);
        v = *end == ',' ? end + 1 : end;
        if (end == v && *v)
            break;
    }
    return n;
}

/* ------------------------------------------------------------------ dispatch */

typedef enum rt_status (*fx_op_fn)(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out);

#define FX_UNARY(nm)                                                                                              \
    static enum rt_status fx_##nm(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)  \
    {                                                                                                             \
        (void)c;                                                                                                  \
        return rt_##nm(in[0], &out[0]);                                                                           \
    }
FX_UNARY(neg)
FX_UNARY(exp)
FX_UNARY(log)
FX_UNARY(sqrt)
FX_UNARY(abs)
FX_UNARY(relu)
FX_UNARY(sigmoid)
FX_UNARY(tanh)
FX_UNARY(reciprocal)
FX_UNARY(sum_all)
FX_UNARY(mean_all)
FX_UNARY(max_all)
FX_UNARY(min_all)
FX_UNARY(logsumexp_all)

#define FX_BINARY(nm)                                                                                             \
    static enum rt_status fx_##nm(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)  \
    {                                                                                                             \
        (void)c;                                                                                                  \
        return rt_##nm(in[0], in[1], &out[0]);                                                                    \
    }
FX_BINARY(add)
FX_BINARY(sub)
FX_BINARY(mul)
FX_BINARY(div)
FX_BINARY(maximum)
FX_BINARY(minimum)
FX_BINARY(matmul)
FX_BINARY(bmm)

#define FX_REDUCE(nm)                                                                                             \
    static enum rt_status fx_##nm(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)  \
    {                                                                                                             \
        return rt_##nm(in[0], (int)fx_int(c, "dim", 0), fx_int(c, "keepdim", 0) != 0, &out[0]);                  \
    }
FX_REDUCE(sum)
FX_REDUCE(mean)
FX_REDUCE(logsumexp)
FX_REDUCE(argmax)
FX_REDUCE(argmin)

static enum rt_status fx_pow(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_pow(in[0], fx_real(c, "e", 1), &out[0]);
}
static enum rt_status fx_clamp(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_clamp(in[0], fx_real(c, "lo", -INFINITY), fx_real(c, "hi", INFINITY), &out[0]);
}
static enum rt_status fx_affine(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_affine(in[0], fx_real(c, "mul", 1), fx_real(c, "add", 0), &out[0]);
}
static bool fx_cmp(const struct fx_case *c, enum rt_cmp *op)
{
    static const char *names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
    const char *s = fx_str(c, "cmp", "");
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i])) {
            *op = (enum rt_cmp)i;
            return true;
        }
    return false;
}
static enum rt_status fx_compare(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    enum rt_cmp op;
    if (!fx_cmp(c, &op))
        return rt_error(RT_ERR_ARG, "fixture: bad cmp");
    return rt_compare(in[0], in[1], op, &out[0]);
}
static enum rt_status fx_compare_scalar(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    enum rt_cmp op;
    if (!fx_cmp(c, &op))
        return rt_error(RT_ERR_ARG, "fixture: bad cmp");
    return rt_compare_scalar(in[0], fx_real(c, "s", 0), op, &out[0]);
}
static enum rt_status fx_where(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    (void)c;
    return rt_where(in[0], in[1], in[2], &out[0]);
}
static enum rt_status fx_norm(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_norm(in[0], fx_real(c, "p", 2), (int)fx_int(c, "dim", 0), fx_int(c, "keepdim", 0) != 0, &out[0]);
}
static enum rt_status fx_norm_all(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_norm_all(in[0], fx_real(c, "p", 2), &out[0]);
}
static enum rt_status fx_max(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_max(in[0], (int)fx_int(c, "dim", 0), fx_int(c, "keepdim", 0) != 0, &out[0], &out[1]);
}
static enum rt_status fx_min(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_min(in[0], (int)fx_int(c, "dim", 0), fx_int(c, "keepdim", 0) != 0, &out[0], &out[1]);
}
static enum rt_status fx_sum_to_shape(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    int64_t shape[RT_MAX_DIMS];
    int n = fx_list(c, "shape", shape, RT_MAX_DIMS);
    return rt_sum_to_shape(in[0], n < 0 ? 0 : n, shape, &out[0]);
}
static enum rt_status fx_linear(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_linear(in[0], in[1], c->n_in > 2 ? in[2] : NULL, &out[0]);
}
static enum rt_status fx_softmax(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_softmax(in[0], (int)fx_int(c, "dim", -1), fx_real(c, "T", 1), &out[0]);
}
static enum rt_status fx_log_softmax(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_log_softmax(in[0], (int)fx_int(c, "dim", -1), fx_real(c, "T", 1), &out[0]);
}
static enum rt_status fx_index_select(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_index_select(in[0], (int)fx_int(c, "dim", 0), in[1], &out[0]);
}
static enum rt_status fx_gather(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_gather(in[0], (int)fx_int(c, "dim", 0), in[1], &out[0]);
}
static enum rt_status fx_scatter_add(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_scatter_add(in[0], (int)fx_int(c, "dim", 0), in[1], in[2], &out[0]);
}
static enum rt_status fx_cat(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_cat(c->n_in, in, (int)fx_int(c, "dim", 0), &out[0]);
}
static enum rt_status fx_stack(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_stack(c->n_in, in, (int)fx_int(c, "dim", 0), &out[0]);
}
static enum rt_status fx_view(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    int64_t shape[RT_MAX_DIMS];
    int n = fx_list(c, "shape", shape, RT_MAX_DIMS);
    /* a view needs compatible strides: view the contiguous form (strided inputs are tested via reshape) */
    struct rt_tensor *ct;
    enum rt_status st = rt_contiguous(in[0], &ct);
    if (st != RT_OK)
        return st;
    st = rt_view(ct, n, shape, &out[0]);
    rt_tensor_release(ct);
    return st;
}
static enum rt_status fx_reshape(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    int64_t shape[RT_MAX_DIMS];
    int n = fx_list(c, "shape", shape, RT_MAX_DIMS);
    return rt_reshape(in[0], n, shape, &out[0]);
}
static enum rt_status fx_expand(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    int64_t shape[RT_MAX_DIMS];
    int n = fx_list(c, "shape", shape, RT_MAX_DIMS);
    return rt_expand(in[0], n, shape, &out[0]);
}
static enum rt_status fx_narrow(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_narrow(in[0], (int)fx_int(c, "dim", 0), fx_int(c, "start", 0), fx_int(c, "length", 1), &out[0]);
}
static enum rt_status fx_select(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_select(in[0], (int)fx_int(c, "dim", 0), fx_int(c, "index", 0), &out[0]);
}
static enum rt_status fx_transpose(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_transpose(in[0], (int)fx_int(c, "d0", 0), (int)fx_int(c, "d1", 1), &out[0]);
}
static enum rt_status fx_permute(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    int64_t d[RT_MAX_DIMS];
    int dims[RT_MAX_DIMS];
    int n = fx_list(c, "dims", d, RT_MAX_DIMS);
    for (int i = 0; i < n; i++)
        dims[i] = (int)d[i];
    return rt_permute(in[0], dims, &out[0]);
}
static enum rt_status fx_unsqueeze(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_unsqueeze(in[0], (int)fx_int(c, "dim", 0), &out[0]);
}
static enum rt_status fx_squeeze(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_squeeze(in[0], (int)fx_int(c, "dim", 0), &out[0]);
}
static enum rt_status fx_flatten(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_flatten(in[0], (int)fx_int(c, "start_dim", 0), (int)fx_int(c, "end_dim", -1), &out[0]);
}
static enum rt_status fx_to_dtype(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_to_dtype(in[0], c->out[0]->dtype, &out[0]);
}

/* --- neural-network ops --- */
static void fx_pair(const struct fx_case *c, const char *key, int64_t def, int64_t out[2])
{
    if (fx_list(c, key, out, 2) != 2)
        out[0] = out[1] = def;
}
static enum rt_status fx_conv2d(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    int64_t st[2], pd[2], dl[2];
    fx_pair(c, "stride", 1, st);
    fx_pair(c, "padding", 0, pd);
    fx_pair(c, "dilation", 1, dl);
    return rt_conv2d(in[0], in[1], c->n_in > 2 ? in[2] : NULL, st, pd, dl, fx_int(c, "groups", 1), &out[0]);
}
static enum rt_status fx_max_pool2d(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    int64_t k[2], st[2], pd[2];
    fx_pair(c, "kernel", 1, k);
    fx_pair(c, "stride", 1, st);
    fx_pair(c, "padding", 0, pd);
    return rt_max_pool2d(in[0], k, st, pd, &out[0], &out[1]);
}
static enum rt_status fx_avg_pool2d(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    int64_t k[2], st[2], pd[2];
    fx_pair(c, "kernel", 1, k);
    fx_pair(c, "stride", 1, st);
    fx_pair(c, "padding", 0, pd);
    return rt_avg_pool2d(in[0], k, st, pd, fx_int(c, "cip", 1) != 0, &out[0]);
}
static enum rt_status fx_adaptive_avg_pool2d(const struct fx_case *c, struct rt_tensor *const *in,
                                             struct rt_tensor **out)
{
    return rt_adaptive_avg_pool2d(in[0], fx_int(c, "oh", 1), fx_int(c, "ow", 1), &out[0]);
}
/* running statistics are cloned first (the case's inputs are reused) and returned as outputs 1, 2 */
static enum rt_status fx_batch_norm(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    enum rt_status st = rt_clone(in[1], &out[1]);
    if (st == RT_OK)
        st = rt_clone(in[2], &out[2]);
    if (st == RT_OK)
        st = rt_batch_norm(in[0], out[1], out[2], in[3], in[4], fx_int(c, "training", 1) != 0,
                           fx_real(c, "momentum", 0.1), fx_real(c, "eps", 1e-5), &out[0]);
    return st;
}
static enum rt_status fx_leaky_relu(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_leaky_relu(in[0], fx_real(c, "slope", 0.01), &out[0]);
}
static enum rt_status fx_cross_entropy(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_cross_entropy(in[0], in[1], c->n_in > 2 ? in[2] : NULL, fx_int(c, "ignore", RT_NO_IGNORE),
                            fx_real(c, "smoothing", 0), (enum rt_reduction)fx_int(c, "reduction", 0), &out[0]);
}
static enum rt_status fx_nll_loss(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_nll_loss(in[0], in[1], c->n_in > 2 ? in[2] : NULL, fx_int(c, "ignore", RT_NO_IGNORE),
                       (enum rt_reduction)fx_int(c, "reduction", 0), &out[0]);
}
static enum rt_status fx_mse_loss(const struct fx_case *c, struct rt_tensor *const *in, struct rt_tensor **out)
{
    return rt_mse_loss(in[0], in[1], (enum rt_reduction)fx_int(c, "reduction", 0), &out[0]);
}

static const struct {
    const char *name;
    fx_op_fn fn;
} fx_ops[] = {
    {"neg", fx_neg}, {"exp", fx_exp}, {"log", fx_log}, {"sqrt", fx_sqrt}, {"abs", fx_abs}, {"relu", fx_relu},
    {"sigmoid", fx_sigmoid}, {"tanh", fx_tanh}, {"reciprocal", fx_reciprocal}, {"pow", fx_pow},
    {"clamp", fx_clamp}, {"affine", fx_affine}, {"add", fx_add}, {"sub", fx_sub}, {"mul", fx_mul},
    {"div", fx_div}, {"maximum", fx_maximum}, {"minimum", fx_minimum}, {"compare", fx_compare},
    {"compare_scalar", fx_compare_scalar}, {"where", fx_where}, {"sum", fx_sum}, {"mean", fx_mean},
    {"logsumexp", fx_logsumexp}, {"norm", fx_norm}, {"max", fx_max}, {"min", fx_min}, {"argmax", fx_argmax},
    {"argmin", fx_argmin}, {"sum_all", fx_sum_all}, {"mean_all", fx_mean_all}, {"max_all", fx_max_all},
    {"min_all", fx_min_all}, {"norm_all", fx_norm_all}, {"logsumexp_all", fx_logsumexp_all},
    {"sum_to_shape", fx_sum_to_shape}, {"matmul", fx_matmul}, {"bmm", fx_bmm}, {"linear", fx_linear},
    {"softmax", fx_softmax}, {"log_softmax", fx_log_softmax}, {"index_select", fx_index_select},
    {"gather", fx_gather}, {"scatter_add", fx_scatter_add}, {"cat", fx_cat}, {"stack", fx_stack},
    {"view", fx_view}, {"reshape", fx_reshape}, {"expand", fx_expand}, {"narrow", fx_narrow},
    {"select", fx_select}, {"transpose", fx_transpose}, {"permute", fx_permute}, {"unsqueeze", fx_unsqueeze},
    {"squeeze", fx_squeeze}, {"flatten", fx_flatten}, {"to_dtype", fx_to_dtype},
    {"conv2d", fx_conv2d}, {"max_pool2d", fx_max_pool2d}, {"avg_pool2d", fx_avg_pool2d},
    {"adaptive_avg_pool2d", fx_adaptive_avg_pool2d}, {"batch_norm", fx_batch_norm}, {"leaky_relu", fx_leaky_relu},
    {"cross_entropy", fx_cross_entropy}, {"nll_loss", fx_nll_loss}, {"mse_loss", fx_mse_loss},
};

static fx_op_fn fx_lookup(const char *op)
{
    for (size_t i = 0; i < sizeof fx_ops / sizeof fx_ops[0]; i++)
        if (!strcmp(fx_ops[i].name, op))
            return fx_ops[i].fn;
    return NULL;
}

bool fx_known_op(const char *op) { return fx_lookup(op) != NULL; }

int fx_op_count(void) { return (int)(sizeof fx_ops / sizeof fx_ops[0]); }

const char *fx_op_name(int i) { return fx_ops[i].name; }

bool fx_run_case(const struct fx_case *c, struct rt_tensor *const *inputs)
{
    fx_op_fn fn = fx_lookup(c->op);
    if (!fn)
        return h_fail(RETORT_FIXTURES_DIR "/ops.txt", c->line, "case %s: unknown op %s", c->name, c->op);
    struct rt_tensor *got[FX_MAX_TENSORS] = {0};
    enum rt_status st = fn(c, inputs, got);
    if (st != RT_OK)
        return h_fail(RETORT_FIXTURES_DIR "/ops.txt", c->line, "case %s: rt_%s failed: %s", c->name, c->op,
                      rt_error_msg());
    bool ok = true;
    for (int i = 0; i < c->n_out; i++) {
        const struct rt_tensor *e = c->out[i];
        char what[128];
        snprintf(what, sizeof what, "case %s (line %d) output %d", c->name, c->line, i);
        if (!got[i]) {
            ok = h_fail(__FILE__, __LINE__, "%s: missing", what);
            continue;
        }
        if (got[i]->dtype != e->dtype) {
            ok = h_fail(__FILE__, __LINE__, "%s: dtype %s, expected %s", what, rt_dtype_name(got[i]->dtype),
                        rt_dtype_name(e->dtype));
            continue;
        }
        double rtol = 0, atol = 0;
        if (e->dtype == RT_F32)
            rtol = 1e-5, atol = 1e-6;
        else if (e->dtype == RT_F64)
            rtol = 1e-12, atol = 1e-12;
        ok &= h_tensor_close(got[i], e, rtol, atol, what, RETORT_FIXTURES_DIR "/ops.txt", c->line);
    }
    for (int i = 0; i < FX_MAX_TENSORS; i++)
        rt_tensor_release(got[i]);
    return ok;
}

struct rt_tensor *fx_strided_copy(struct rt_tensor *t)
{
    int nd = t->ndim;
    int64_t n = rt_tensor_numel(t);
    if (nd == 0 || n == 0) {
        rt_tensor_retain(t);
        return t;
    }
    struct rt_tensor *base = NULL, *v = NULL;
    size_t es = rt_dtype_size(t->dtype);
    if (nd >= 2) {
        int64_t ts[RT_MAX_DIMS];
        memcpy(ts, t->shape, sizeof ts);
        ts[nd - 1] = t->shape[nd - 2];
        ts[nd - 2] = t->shape[nd - 1];
        if (rt_tensor_new(t->dtype, RT_CPU, nd, ts, &base) != RT_OK)
            return NULL;
        if (rt_transpose(base, -1, -2, &v) != RT_OK) {
            rt_tensor_release(base);
            return NULL;
        }
    } else {
        int64_t s2[2] = {t->shape[0], 3};
        if (rt_tensor_new(t->dtype, RT_CPU, 2, s2, &base) != RT_OK)
            return NULL;
        if (rt_select(base, 1, 1, &v) != RT_OK) {
            rt_tensor_release(base);
            return NULL;
        }
    }
    rt_tensor_release(base);
    /* write t's values through v's strides by hand */
    const char *src = rt_tensor_data(t);
    char *dst = (char *)v->storage->data;
    for (int64_t k = 0; k < n; k++) {
        int64_t off = v->offset, flat = k, soff = t->offset, f2 = k;
        for (int d = nd - 1; d >= 0; d--) {
            off += (flat % v->shape[d]) * v->stride[d];
            flat /= v->shape[d];
            soff += (f2 % t->shape[d]) * t->stride[d];
            f2 /= t->shape[d];
        }
        memcpy(dst + off * (int64_t)es, (const char *)t->storage->data + soff * (int64_t)es, es);
    }
    (void)src;
    return v;
}
