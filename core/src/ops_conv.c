/* 2-D convolution by im2col + GEMM. Images are processed in chunks whose column buffer stays under
 * RT_CONV_CHUNK_BYTES: per chunk and group, im2col writes col (K, b*L) (K = C/groups*kh*kw,
 * L = OH*OW, b images) and one batched GEMM, W_g (O/groups, K) @ col's L columns of each image,
 * writes every output pixel of the chunk in place (NCHW, no reordering pass).
 * Backward per chunk and group: dW_g (+)= gy_g (Og, b*L) @ col^T, dcol = W_g^T @ gy_g, col2im(dcol)
 * into dx; db sums gy over images and pixels in one pass (the batch-norm backward's channel sums).
 * im2col/col2im and the GEMM's tiles all run on the OpenMP team (the CPU backend's only thread pool).
 * A backend with direct kernels (conv2d / conv2d_backward: the CPU's oneDNN path) is asked first and
 * may leave a shape to this path.
 *
 * bf16 (retort/bf16.h): with a bf16 input or weight, or under bf16 autocast with f32 ones, x and w are
 * rounded to bf16 copies and the output is f32, accumulated in f32: the backend's conv2d_bf16 (the
 * CPU's oneDNN) where it has one, else this file's im2col path with bf16 operands (col, and gy in
 * the GEMMs) and f32 results (y, dx, dw, dcol) through gemm_bf16 (CUDA: the tensor cores). The node
 * saves the bf16 copies; its backward rounds gy to bf16 and writes f32 gx and gw; the bias gradient
 * is the f32 channel sum of gy, as in f32. */
#include "nn_internal.h"

struct conv {
    int64_t N, C, H, W, O, G, Cg, Og, kh, kw, OH, OW, K, L, nb;
    struct rt_conv_geom geom; /* n filled per chunk */
};

/* bf16 convolution operands: x, w, bias each f32 or bf16, on one device */
static enum rt_status bf16_operands(const char *op, struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *bias)
{
    struct rt_tensor *t[3] = {x, w, bias};
    static const char *what[3] = {"input", "weight", "bias"};
    for (int i = 0; i < 3; i++) {
        if (!t[i])
            continue;
        if (t[i]->dtype != RT_F32 && t[i]->dtype != RT_BF16)
            return rt_error(RT_ERR_DTYPE, "%s: a bf16 convolution takes an f32 or bf16 %s, got %s", op, what[i],
                            rt_dtype_name(t[i]->dtype));
        enum rt_status st = rt__same_device(op, x, t[i]);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

static enum rt_status conv_setup_as(struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *bias,
                                    const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2],
                                    int64_t groups, bool bf16, struct conv *c)
{
    static const char *op = "rt_conv2d";
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (!stride || !padding || !dilation)
        return rt_error(RT_ERR_ARG, "%s: stride, padding and dilation must not be NULL", op);
    if (x->ndim != 4)
        return rt_error(RT_ERR_SHAPE, "%s: input must be (N,C,H,W), got %s", op, rt_shape_str(x->ndim, x->shape, a, sizeof a));
    if (w->ndim != 4)
        return rt_error(RT_ERR_SHAPE, "%s: weight must be (O,C/groups,kh,kw), got %s", op,
                        rt_shape_str(w->ndim, w->shape, a, sizeof a));
    enum rt_status st = bf16 ? bf16_operands(op, x, w, bias) : rt__nn_float(op, "input", x);
    if (st == RT_OK && !bf16)
        st = rt__nn_like(op, "weight", w, x);
    if (st == RT_OK && !bf16)
        st = rt__nn_like(op, "bias", bias, x);
    if (st != RT_OK)
        return st;
    for (int i = 0; i < 2; i++) {
        if (stride[i] < 1 || dilation[i] < 1 || padding[i] < 0)
            return rt_error(RT_ERR_ARG, "%s: stride (%lld,%lld) and dilation (%lld,%lld) must be >= 1, padding (%lld,%lld) >= 0",
                            op, (long long)stride[0], (long long)stride[1], (long long)dilation[0],
                            (long long)dilation[1], (long long)padding[0], (long long)padding[1]);
    }
    memset(c, 0, sizeof *c);
    c->N = x->shape[0], c->C = x->shape[1], c->H = x->shape[2], c->W = x->shape[3];
    c->O = w->shape[0], c->kh = w->shape[2], c->kw = w->shape[3], c->G = groups;
    if (groups < 1)
        return rt_error(RT_ERR_ARG, "%s: groups must be >= 1, got %lld", op, (long long)groups);
    if (c->C % groups || c->O % groups)
        return rt_error(RT_ERR_ARG, "%s: groups=%lld must divide the input channels (%lld) and output channels (%lld)",
                        op, (long long)groups, (long long)c->C, (long long)c->O);
    if (w->shape[1] * groups != c->C)
        return rt_error(RT_ERR_SHAPE, "%s: channel mismatch: input %s has %lld channels, weight %s expects %lld "
                        "(%lld per group x %lld groups)", op, rt_shape_str(x->ndim, x->shape, a, sizeof a),
                        (long long)c->C, rt_shape_str(w->ndim, w->shape, b, sizeof b),
                        (long long)(w->shape[1] * groups), (long long)w->shape[1], (long long)groups);
    if (c->kh < 1 || c->kw < 1)
        return rt_error(RT_ERR_SHAPE, "%s: empty kernel in weight %s", op, rt_shape_str(w->ndim, w->shape, a, sizeof a));
    st = rt__nn_vec(op, "bias", bias, c->O);
    if (st != RT_OK)
        return st;
    int64_t eh = dilation[0] * (c->kh - 1) + 1, ew = dilation[1] * (c->kw - 1) + 1;
    int64_t ph = c->H + 2 * padding[0], pw = c->W + 2 * padding[1];
    if (eh > ph || ew > pw)
        return rt_error(RT_ERR_SHAPE, "%s: kernel (%lld,%lld) with dilation (%lld,%lld) spans (%lld,%lld), larger than "
                        "the padded input (%lld,%lld) of %s", op, (long long)c->kh, (long long)c->kw,
                        (long long)dilation[0], (long long)dilation[1], (long long)eh, (long long)ew, (long long)ph,
                        (long long)pw, rt_shape_str(x->ndim, x->shape, a, sizeof a));
    c->OH = (ph - eh) / stride[0] + 1, c->OW = (pw - ew) / stride[1] + 1;
    c->Cg = c->C / groups, c->Og = c->O / groups;
    c->K = c->Cg * c->kh * c->kw, c->L = c->OH * c->OW;
    /* a column's bytes, in the wider of the operand and result dtypes (bf16's dcol is f32) */
    int64_t per = c->K * c->L * (int64_t)rt_dtype_size(bf16 ? RT_F32 : x->dtype);
    c->nb = per > 0 ? (int64_t)(RT_CONV_CHUNK_BYTES / (size_t)per) : c->N;
    c->nb = c->nb < 1 ? 1 : c->nb > c->N ? c->N : c->nb;
    c->geom = (struct rt_conv_geom){.c = c->Cg, .h = c->H, .w = c->W, .kh = c->kh, .kw = c->kw, .sh = stride[0],
                                    .sw = stride[1], .ph = padding[0], .pw = padding[1], .dh = dilation[0],
                                    .dw = dilation[1], .oh = c->OH, .ow = c->OW, .img_stride = c->C * c->H * c->W};
    return bf16 ? RT_OK : rt__nn_kernel(op, x, rt__backend(x)->im2col);
}

static enum rt_status conv_setup(struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *bias,
                                 const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2],
                                 int64_t groups, struct conv *c)
{
    return conv_setup_as(x, w, bias, stride, padding, dilation, groups, false, c);
}

/* gy (N, O, L) slice [n0, n0+b) x group g <-> contiguous (Og, b*L) */
static enum rt_status group_copy(const struct rt_backend *be, enum rt_dtype dt, const struct conv *c, int64_t n0,
                                 int64_t b, int64_t g, void *nchw, void *og_bl, bool to_nchw)
{
    int64_t shape[3] = {c->Og, b, c->L}, s_nchw[3] = {c->L, c->O * c->L, 1}, s_t[3] = {b * c->L, c->L, 1};
    void *p = rt__nn_at(nchw, dt, (n0 * c->O + g * c->Og) * c->L);
    return to_nchw ? rt__nn_copy(be, dt, 3, shape, p, s_nchw, og_bl, s_t) : rt__nn_copy(be, dt, 3, shape, og_bl, s_t, p, s_nchw);
}

/* The im2col path's dtypes: operands (x, w, col, and gy in the GEMMs) in `op`, results (y, dx, dw,
 * dcol) in `res`. Both are the tensors' dtype in f32/f64; bf16 and f32 for a bf16 convolution on a
 * backend without a direct bf16 kernel. */
struct lowering {
    enum rt_dtype op, res;
};

static enum rt_status scratch(enum rt_dtype dt, const struct rt_tensor *like, int64_t n, struct rt_tensor **out)
{
    return rt_tensor_empty(dt, rt_tensor_device(like), 1, &n, out);
}

/* The bias of group g's Og channels written over their planes of b images of y (N, O, L): the GEMM
 * then adds to it (beta = 1), which saves a separate pass over the output for the bias. */
static enum rt_status fill_bias(const struct rt_backend *be, enum rt_dtype dt, const struct conv *c, void *yg,
                                int64_t b, const struct rt_tensor *bias, int64_t g)
{
    struct rt_strided d = {.data = yg, .ndim = 3, .shape = {b, c->Og, c->L}, .stride = {c->O * c->L, c->L, 1}};
    struct rt_strided s = {.data = rt__nn_at(rt__ptr(bias), dt, g * c->Og * bias->stride[0]), .ndim = 3,
                           .shape = {b, c->Og, c->L}, .stride = {0, bias->stride[0], 0}};
    return be->copy(&d, dt, &s, bias->dtype);
}

/* C (t.res) = op(A) op(B) + beta C with A and B in t.op, batched as gemm's arguments are */
static enum rt_status lowered_gemm(const struct rt_backend *be, struct lowering t, bool ta, bool tb, int64_t m,
                                   int64_t n, int64_t k, const void *a, int64_t lda, int64_t sa, const void *b,
                                   int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc, int64_t sc,
                                   int64_t batch)
{
    if (t.op == RT_BF16)
        return be->gemm_bf16(ta, tb, m, n, k, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
    return be->gemm(t.op, ta, tb, m, n, k, 1.0, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

/* y (N, O, OH, OW, in t.res, all written) by im2col + GEMM, chunk by chunk and group by group; xc and wc
 * contiguous in t.op, bias (t.res) or NULL. */
static enum rt_status im2col_forward(const struct rt_backend *be, const struct conv *c, struct lowering t,
                                     const struct rt_tensor *xc, const struct rt_tensor *wc,
                                     const struct rt_tensor *bias, struct rt_tensor *y)
{
    struct rt_tensor *col = NULL;
    enum rt_status st = scratch(t.op, xc, c->K * c->nb * c->L, &col);
    for (int64_t n0 = 0; st == RT_OK && n0 < c->N; n0 += c->nb) {
        if (rt_interrupt_pending()) {
            st = rt_error(RT_ERR_INTERRUPTED, "rt_conv2d: interrupted");
            break;
        }
        int64_t b = c->N - n0 < c->nb ? c->N - n0 : c->nb;
        struct rt_conv_geom geom = c->geom;
        geom.n = b;
        for (int64_t gi = 0; st == RT_OK && gi < c->G; gi++) {
            int64_t xoff = n0 * c->C * c->H * c->W + gi * c->Cg * c->H * c->W;
            st = be->im2col(t.op, &geom, rt__nn_at(rt__ptr(xc), t.op, xoff), rt__ptr(col));
            const void *wg = rt__nn_at(rt__ptr(wc), t.op, gi * c->Og * c->K);
            /* one GEMM per image, batched, straight into its output planes: image i's columns of col
             * are [i L, (i + 1) L), and its rows of y start at (n0 + i) O L + g Og L */
            void *yg = rt__nn_at(rt__ptr(y), t.res, (n0 * c->O + gi * c->Og) * c->L);
            if (st == RT_OK && bias)
                st = fill_bias(be, t.res, c, yg, b, bias, gi);
            if (st == RT_OK)
                st = lowered_gemm(be, t, false, false, c->Og, c->L, c->K, wg, c->K, 0, rt__ptr(col), b * c->L, c->L,
                                  bias ? 1.0 : 0.0, yg, c->L, c->O * c->L, b);
        }
    }
    rt_tensor_release(col);
    return st;
}

/* dx and/or dw (either may be NULL; in t.res, all written) from gc (gy, contiguous in t.op) by im2col +
 * GEMM: per chunk and group, dW_g (+)= gy_g col^T and dcol = W_g^T gy_g, col2im'd into dx. */
static enum rt_status im2col_backward(const struct rt_backend *be, const struct conv *c, struct lowering t,
                                      const struct rt_tensor *xc, const struct rt_tensor *wc,
                                      const struct rt_tensor *gc, struct rt_tensor *dx, struct rt_tensor *dw)
{
    enum rt_status st = RT_OK;
    struct rt_tensor *col = NULL, *gt = NULL, *dcol = NULL;
    if (dw)
        RT_TRY(scratch(t.op, xc, c->K * c->nb * c->L, &col));
    if (dx)
        RT_TRY(scratch(t.res, xc, c->K * c->nb * c->L, &dcol));
    if (c->nb > 1)
        RT_TRY(scratch(t.op, xc, c->Og * c->nb * c->L, &gt));
    for (int64_t n0 = 0; n0 < c->N; n0 += c->nb) {
        if (rt_interrupt_pending()) {
            st = rt_error(RT_ERR_INTERRUPTED, "Conv2dBackward: interrupted");
            goto done;
        }
        int64_t b = c->N - n0 < c->nb ? c->N - n0 : c->nb, bl = b * c->L;
        struct rt_conv_geom geom = c->geom;
        geom.n = b;
        for (int64_t gi = 0; gi < c->G; gi++) {
            const void *gyg; /* (Og, b*L) */
            if (b == 1)
                gyg = rt__nn_at(rt__ptr(gc), t.op, (n0 * c->O + gi * c->Og) * c->L);
            else {
                RT_TRY(group_copy(be, t.op, c, n0, b, gi, rt__ptr(gc), rt__ptr(gt), false));
                gyg = rt__ptr(gt);
            }
            int64_t xoff = n0 * c->C * c->H * c->W + gi * c->Cg * c->H * c->W;
            if (dw) {
                RT_TRY(be->im2col(t.op, &geom, rt__nn_at(rt__ptr(xc), t.op, xoff), rt__ptr(col)));
                RT_TRY(lowered_gemm(be, t, false, true, c->Og, c->K, bl, gyg, bl, 0, rt__ptr(col), bl, 0,
                                    n0 ? 1.0 : 0.0, rt__nn_at(rt__ptr(dw), t.res, gi * c->Og * c->K), c->K, 0, 1));
            }
            if (dx) {
                const void *wg = rt__nn_at(rt__ptr(wc), t.op, gi * c->Og * c->K);
                RT_TRY(lowered_gemm(be, t, true, false, c->K, bl, c->Og, wg, c->K, 0, gyg, bl, 0, 0.0, rt__ptr(dcol),
                                    bl, 0, 1));
                RT_TRY(be->col2im(t.res, &geom, rt__ptr(dcol), rt__nn_at(rt__ptr(dx), t.res, xoff)));
            }
        }
    }
done:
    rt_tensor_release(col);
    rt_tensor_release(gt);
    rt_tensor_release(dcol);
    return st;
}

static struct rt_conv2d_shape direct_shape(const struct conv *c)
{
    struct rt_conv2d_shape s = {.g = c->geom, .o = c->O, .groups = c->G};
    s.g.n = c->N, s.g.c = c->C;
    return s;
}

static enum rt_status vjp_conv2d(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin);
static enum rt_status vjp_conv2d_bf16(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin);

/* t as a contiguous tensor of dtype dt, without autograd (new ref) */
static enum rt_status contig_as(struct rt_tensor *t, enum rt_dtype dt, struct rt_tensor **out)
{
    if (t->dtype == dt)
        return rt__contig_raw(t, out);
    bool was = rt_grad_set_enabled(false);
    enum rt_status st = rt_to_dtype(t, dt, out); /* a fresh contiguous copy */
    rt_grad_set_enabled(was);
    return st;
}

static enum rt_status conv2d_bf16(struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *bias,
                                  const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2],
                                  int64_t groups, struct rt_tensor **out)
{
    struct conv c;
    enum rt_status st = conv_setup_as(x, w, bias, stride, padding, dilation, groups, true, &c);
    if (st != RT_OK)
        return st;
    const struct rt_backend *be = rt__backend(x);
    struct rt_tensor *xb = NULL, *wb = NULL, *bc = NULL, *y = NULL;
    int64_t yshape[4] = {c.N, c.O, c.OH, c.OW};
    RT_TRY(contig_as(x, RT_BF16, &xb));
    RT_TRY(contig_as(w, RT_BF16, &wb));
    bool work = c.N * c.O * c.L > 0 && c.K > 0;
    RT_TRY((work ? rt_tensor_empty : rt_tensor_new)(RT_F32, rt_tensor_device(x), 4, yshape, &y));
    if (bias)
        RT_TRY(contig_as(bias, RT_F32, &bc));
    if (work && be->conv2d_bf16) {
        struct rt_conv2d_shape s = direct_shape(&c);
        RT_TRY(be->conv2d_bf16(&s, rt__ptr(xb), rt__ptr(wb), bc ? rt__ptr(bc) : NULL, rt__ptr(y)));
    } else if (work)
        RT_TRY(im2col_forward(be, &c, (struct lowering){RT_BF16, RT_F32}, xb, wb, bc, y));
    struct rt_tensor *in[3] = {x, w, bias};
    if (rt__needs_grad(bias ? 3 : 2, in)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, "Conv2dBackward", vjp_conv2d_bf16, bias ? 3 : 2, in, &node));
        node->i[0] = stride[0], node->i[1] = stride[1], node->i[2] = padding[0], node->i[3] = padding[1];
        node->i[4] = dilation[0], node->i[5] = dilation[1], node->i[6] = groups;
        RT_TRY(rt__save(node, xb));
        RT_TRY(rt__save(node, wb));
    }
done:
    rt_tensor_release(xb);
    rt_tensor_release(wb);
    rt_tensor_release(bc);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}

static enum rt_status vjp_conv2d_bf16(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *xb = n->saved[0], *wb = n->saved[1];
    int64_t stride[2] = {n->i[0], n->i[1]}, padding[2] = {n->i[2], n->i[3]}, dilation[2] = {n->i[4], n->i[5]};
    struct conv c;
    enum rt_status st = conv_setup_as(xb, wb, NULL, stride, padding, dilation, n->i[6], true, &c);
    if (st != RT_OK)
        return st;
    const struct rt_backend *be = rt__backend(xb);
    bool need_x = n->next[0] != NULL, need_w = n->next[1] != NULL, need_b = n->n_inputs == 3 && n->next[2];
    struct rt_tensor *gc = NULL, *gb = NULL, *dx = NULL, *dw = NULL;
    RT_TRY(contig_as(g, RT_F32, &gc));
    if (need_b) { /* db[o] = sum of gy over images and pixels, in f32 */
        RT_TRY(rt_tensor_empty(RT_F32, rt_tensor_device(xb), 1, &c.O, &gin[2]));
        RT_TRY(be->batch_norm_backward(RT_F32, false, c.N, c.O, c.L, NULL, rt__ptr(gc), NULL, NULL, NULL, NULL, NULL,
                                       rt__ptr(gin[2])));
    }
    if (!need_x && !need_w)
        goto done;
    bool work = c.N * c.O * c.L > 0 && c.K > 0;
    if (need_x)
        RT_TRY((work ? rt_tensor_empty : rt_tensor_new)(RT_F32, rt_tensor_device(xb), 4, xb->shape, &dx));
    if (need_w)
        RT_TRY((work ? rt_tensor_empty : rt_tensor_new)(RT_F32, rt_tensor_device(xb), 4, wb->shape, &dw));
    if (work)
        RT_TRY(contig_as(gc, RT_BF16, &gb));
    if (work && be->conv2d_backward_bf16) {
        struct rt_conv2d_shape s = direct_shape(&c);
        RT_TRY(be->conv2d_backward_bf16(&s, rt__ptr(xb), rt__ptr(wb), rt__ptr(gb), dx ? rt__ptr(dx) : NULL,
                                        dw ? rt__ptr(dw) : NULL));
    } else if (work)
        RT_TRY(im2col_backward(be, &c, (struct lowering){RT_BF16, RT_F32}, xb, wb, gb, dx, dw));
    gin[0] = dx, dx = NULL;
    gin[1] = dw, dw = NULL;
done:
    rt_tensor_release(gc);
    rt_tensor_release(gb);
    rt_tensor_release(dx);
    rt_tensor_release(dw);
    return st;
}

enum rt_status rt_conv2d(struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *bias, const int64_t stride[2],
                         const int64_t padding[2], const int64_t dilation[2], int64_t groups, struct rt_tensor **out)
{
    bool cast = rt_autocast_get() == RT_BF16 && (x->dtype == RT_F32 || x->dtype == RT_BF16) &&
                (w->dtype == RT_F32 || w->dtype == RT_BF16);
    if (cast || x->dtype == RT_BF16 || w->dtype == RT_BF16)
        return conv2d_bf16(x, w, bias, stride, padding, dilation, groups, out);
    struct conv c;
    enum rt_status st = conv_setup(x, w, bias, stride, padding, dilation, groups, &c);
    if (st != RT_OK)
        return st;
    enum rt_dtype dt = x->dtype;
    const struct rt_backend *be = rt__backend(x);
    struct rt_tensor *xc = NULL, *wc = NULL, *y = NULL, *bc = NULL;
    int64_t yshape[4] = {c.N, c.O, c.OH, c.OW};
    RT_TRY(rt__contig_raw(x, &xc));
    RT_TRY(rt__contig_raw(w, &wc));
    RT_TRY(rt_tensor_empty(dt, rt_tensor_device(x), 4, yshape, &y));
    bool direct = false;
    if (c.N * c.O * c.L > 0 && be->conv2d) {
        struct rt_conv2d_shape s = direct_shape(&c);
        if (bias)
            RT_TRY(rt__contig_raw(bias, &bc));
        RT_TRY(be->conv2d(dt, &s, rt__ptr(xc), rt__ptr(wc), bias ? rt__ptr(bc) : NULL, rt__ptr(y), &direct));
    }
    if (!direct && c.N * c.O * c.L > 0)
        RT_TRY(im2col_forward(be, &c, (struct lowering){dt, dt}, xc, wc, bias, y));
    struct rt_tensor *in[3] = {x, w, bias};
    if (rt__needs_grad(bias ? 3 : 2, in)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, "Conv2dBackward", vjp_conv2d, bias ? 3 : 2, in, &node));
        node->i[0] = stride[0], node->i[1] = stride[1], node->i[2] = padding[0], node->i[3] = padding[1];
        node->i[4] = dilation[0], node->i[5] = dilation[1], node->i[6] = groups;
        RT_TRY(rt__save(node, x));
        RT_TRY(rt__save(node, w));
    }
done:
    rt_tensor_release(xc);
    rt_tensor_release(wc);
    rt_tensor_release(bc);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}

static enum rt_status vjp_conv2d(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *x = n->saved[0], *w = n->saved[1];
    int64_t stride[2] = {n->i[0], n->i[1]}, padding[2] = {n->i[2], n->i[3]}, dilation[2] = {n->i[4], n->i[5]};
    struct conv c;
    enum rt_status st = conv_setup(x, w, NULL, stride, padding, dilation, n->i[6], &c);
    if (st != RT_OK)
        return st;
    enum rt_dtype dt = x->dtype;
    const struct rt_backend *be = rt__backend(x);
    bool need_x = n->next[0] != NULL, need_w = n->next[1] != NULL, need_b = n->n_inputs == 3 && n->next[2];
    struct rt_tensor *gc = NULL, *xc = NULL, *wc = NULL, *dx = NULL, *dw = NULL;
    RT_TRY(rt__contig_raw(g, &gc));
    if (need_b) { /* db[o] = sum of gy over images and pixels: batch norm's per-channel sum, in one pass */
        RT_TRY(rt_tensor_empty(dt, rt_tensor_device(x), 1, &c.O, &gin[2]));
        RT_TRY(be->batch_norm_backward(dt, false, c.N, c.O, c.L, NULL, rt__ptr(gc), NULL, NULL, NULL, NULL, NULL,
                                       rt__ptr(gin[2])));
    }
    if (!need_x && !need_w)
        goto done;
    RT_TRY(rt__contig_raw(x, &xc));
    RT_TRY(rt__contig_raw(w, &wc));
    /* with work to do, col2im writes every element of dx and each group's first chunk sets its dw
     * (beta 0); else both are zeros */
    bool work = c.N * c.O * c.L > 0 && c.K > 0;
    if (need_x)
        RT_TRY((work ? rt_tensor_empty : rt_tensor_new)(dt, rt_tensor_device(x), 4, x->shape, &dx));
    if (need_w)
        RT_TRY((work ? rt_tensor_empty : rt_tensor_new)(dt, rt_tensor_device(x), 4, w->shape, &dw));
    if (work && be->conv2d_backward) {
        struct rt_conv2d_shape s = direct_shape(&c);
        bool direct = false;
        RT_TRY(be->conv2d_backward(dt, &s, rt__ptr(xc), rt__ptr(wc), rt__ptr(gc), dx ? rt__ptr(dx) : NULL,
                                   dw ? rt__ptr(dw) : NULL, &direct));
        work = !direct;
    }
    if (work)
        RT_TRY(im2col_backward(be, &c, (struct lowering){dt, dt}, xc, wc, gc, dx, dw));
    gin[0] = dx, dx = NULL;
    gin[1] = dw, dw = NULL;
done:
    rt_tensor_release(gc);
    rt_tensor_release(xc);
    rt_tensor_release(wc);
    rt_tensor_release(dx);
    rt_tensor_release(dw);
    return st;
}
