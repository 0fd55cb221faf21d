/* Fused cross entropy (log-softmax + NLL, optional class weights, ignore index and label
 * smoothing as PyTorch 1.13) over rows of logits (n, c), and its backward. One row per iteration,
 * sums in double; rows are split across threads. class_rows: the checked labels' per-row weights;
 * weighted_mean: a class loss's mean over those weights; count_correct: the rows predicted right. */
#include "backend/cpu/cpu_nn.h"

#define DEF_CE(SUF, T)                                                                                            \
    static void ce_fwd_##SUF(int64_t n, int64_t c, const T *x, const int64_t *lab, const T *w, int64_t ignore,    \
                             double eps, T *loss, T *lse)                                                         \
    {                                                                                                             \
        _Pragma("omp parallel for if (n * c >= RT_CPU_PARALLEL_MIN) schedule(static)")                           \
        for (int64_t i = 0; i < n; i++) {                                                                         \
            const T *r = x + i * c;                                                                               \
            double m = -INFINITY, s = 0;                                                                          \
            for (int64_t j = 0; j < c; j++)                                                                       \
                m = (double)r[j] > m ? (double)r[j] : m;                                                          \
            for (int64_t j = 0; j < c; j++)                                                                       \
                s += exp((double)r[j] - m);                                                                       \
            double z = m + log(s);                                                                                \
            lse[i] = (T)z;                                                                                        \
            if (lab[i] == ignore) {                                                                               \
                loss[i] = 0;                                                                                      \
                continue;                                                                                         \
            }                                                                                                     \
            int64_t y = lab[i];                                                                                   \
            double l = (1 - eps) * (w ? (double)w[y] : 1.0) * (z - (double)r[y]);                                 \
            if (eps != 0) {                                                                                       \
                double sm = 0;                                                                                    \
                for (int64_t j = 0; j < c; j++)                                                                   \
                    sm += (w ? (double)w[j] : 1.0) * (z - (double)r[j]);                                          \
                l += eps / (double)c * sm;                                                                        \
            }                                                                                                     \
            loss[i] = (T)l;                                                                                       \
        }                                                                                                         \
    }                                                                                                             \
    /* d loss_i / d x_ij = p_j ((1-e) w_y + e/C W) - (1-e) w_y [j == y] - e/C w_j,  W = sum_k w_k */            \
    static void ce_bwd_##SUF(int64_t n, int64_t c, const T *x, const int64_t *lab, const T *w, int64_t ignore,    \
                             double eps, const T *lse, const T *gl, int64_t gs, const T *gden, T *gx)             \
    {                                                                                                             \
        double W = 0;                                                                                             \
        for (int64_t j = 0; j < c; j++)                                                                           \
            W += w ? (double)w[j] : 1.0;                                                                          \
        _Pragma("omp parallel for if (n * c >= RT_CPU_PARALLEL_MIN) schedule(static)")                           \
        for (int64_t i = 0; i < n; i++) {                                                                         \
            const T *r = x + i * c;                                                                               \
            T *o = gx + i * c;                                                                                    \
            if (lab[i] == ignore) {                                                                               \
                for (int64_t j = 0; j < c; j++)                                                                   \
                    o[j] = 0;                                                                                     \
                continue;                                                                                         \
            }                                                                                                     \
            int64_t y = lab[i];                                                                                   \
            double g = (double)gl[i * gs] / (gden ? (double)gden[0] : 1.0), z = (double)lse[i];                   \
            double wy = (1 - eps) * (w ? (double)w[y] : 1.0);                                                     \
            double a = wy + eps / (double)c * W;                                                                  \
            for (int64_t j = 0; j < c; j++) {                                                                     \
                double p = exp((double)r[j] - z);                                                                 \
                double d = p * a - eps / (double)c * (w ? (double)w[j] : 1.0) - (j == y ? wy : 0.0);              \
                o[j] = (T)(g * d);                                                                                \
            }                                                                                                     \
        }                                                                                                         \
    }
DEF_CE(f32, float)
DEF_CE(f64, double)

enum rt_status rt_cpu_class_rows(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const int64_t *labels,
                                 const void *cw, int64_t ignore, void *w, int64_t *safe)
{
    enum rt_status st = rt_backend_float_only(op, dt);
    if (st == RT_OK)
        st = rt_cpu_check_index(op, "label", n, labels, 0, c, ignore, NULL);
    if (st != RT_OK)
        return st;
    for (int64_t i = 0; i < n; i++) {
        bool kept = labels[i] != ignore;
        rt__float_set(dt == RT_F32, w, i, !kept ? 0.0 : !cw ? 1.0 : rt__float_at(dt == RT_F32, cw, labels[i]));
        if (safe)
            safe[i] = kept ? labels[i] : 0;
    }
    return RT_OK;
}

enum rt_status rt_cpu_cross_entropy(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                    const int64_t *labels, const void *weights, int64_t ignore, double smoothing,
                                    void *loss, void *lse, void *rw)
{
    /* the labels are checked (and the row weights written) before any row: a bad one fails the op */
    enum rt_status st = rw ? rt_cpu_class_rows(op, dt, n, c, labels, weights, ignore, rw, NULL)
                           : rt_cpu_check_index(op, "label", n, labels, 0, c, ignore, NULL);
    if (st == RT_OK)
        st = rt_backend_float_only(op, dt);
    if (st == RT_OK && dt == RT_F32)
        ce_fwd_f32(n, c, logits, labels, weights, ignore, smoothing, loss, lse);
    else if (st == RT_OK)
        ce_fwd_f64(n, c, logits, labels, weights, ignore, smoothing, loss, lse);
    return st;
}

enum rt_status rt_cpu_cross_entropy_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                             const int64_t *labels, const void *weights, int64_t ignore,
                                             double smoothing, const void *lse, const void *gloss, int64_t gloss_stride,
                                             const void *gden, void *gx)
{
    enum rt_status st = rt_backend_float_only("cross_entropy backward", dt);
    if (st == RT_OK && dt == RT_F32)
        ce_bwd_f32(n, c, logits, labels, weights, ignore, smoothing, lse, gloss, gloss_stride, gden, gx);
    else if (st == RT_OK)
        ce_bwd_f64(n, c, logits, labels, weights, ignore, smoothing, lse, gloss, gloss_stride, gden, gx);
    return st;
}

enum rt_status rt_cpu_weighted_mean(enum rt_dtype dt, int64_t n, const void *rows, const void *rw, void *out, void *den)
{
    enum rt_status st = rt_backend_float_only("weighted_mean", dt);
    if (st != RT_OK)
        return st;
    bool f32 = dt == RT_F32;
    double sr = 0, sw = 0;
    for (int64_t i = 0; i < n; i++) {
        sr += rt__float_at(f32, rows, i);
        sw += rt__float_at(f32, rw, i);
    }
    rt__float_set(f32, out, 0, sr / sw);
    rt__float_set(f32, den, 0, sw);
    return RT_OK;
}

/* the row's argmax as rt_argmax takes it: the first NaN, else the first largest */
#define DEF_ARGMAX_ROW(SUF, T)                                                                                    \
    static int64_t argmax_row_##SUF(const T *r, int64_t c)                                                       \
    {                                                                                                             \
        int64_t bi = 0;                                                                                           \
        for (int64_t j = 1; j < c && r[bi] == r[bi]; j++)                                                         \
            if (r[j] != r[j] || r[j] > r[bi])                                                                     \
                bi = j;                                                                                           \
        return bi;                                                                                                \
    }
DEF_ARGMAX_ROW(f32, float)
DEF_ARGMAX_ROW(f64, double)

enum rt_status rt_cpu_count_correct(enum rt_dtype dt, int64_t n, int64_t c, const void *x, const int64_t *labels,
                                    int64_t base, void *out)
{
    enum rt_status st = rt_backend_float_only("count_correct", dt);
    if (st != RT_OK)
        return st;
    int64_t hits = 0;
    for (int64_t i = 0; c > 0 && i < n; i++) {
        int64_t p = dt == RT_F32 ? argmax_row_f32((const float *)x + i * c, c)
                                 : argmax_row_f64((const double *)x + i * c, c);
        hits += labels[i] - base == p;
    }
    rt__float_set(dt == RT_F32, out, 0, (double)hits);
    return RT_OK;
}
