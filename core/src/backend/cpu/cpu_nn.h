/* The CPU kernels of the neural-network ops (cpu_conv.c, cpu_pool.c, cpu_norm.c, cpu_loss.c, cpu_kd.c, cpu_attention.c,
 * cpu_activation.c); signatures exactly as in struct rt_backend. Float dtypes only. */
#ifndef RETORT_CPU_NN_H
#define RETORT_CPU_NN_H

#include "backend/cpu/cpu_internal.h"

enum rt_status rt_cpu_im2col(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *col);
enum rt_status rt_cpu_col2im(enum rt_dtype dt, const struct rt_conv_geom *g, const void *col, void *x);
enum rt_status rt_cpu_conv2d(enum rt_dtype dt, const struct rt_conv2d_shape *s, const void *x, const void *w,
                             const void *b, void *y, bool *done);
enum rt_status rt_cpu_conv2d_backward(enum rt_dtype dt, const struct rt_conv2d_shape *s, const void *x,
                                      const void *w, const void *gy, void *gx, void *gw, bool *done);
/* oneDNN's direct convolutions (cpu_conv_dnnl.c, built with RETORT_HAVE_DNNL): f32 only; *done false
 * when oneDNN has no kernel for the shape. Signatures as rt_cpu_conv2d's. */
enum rt_status rt_cpu_dnnl_conv2d(const struct rt_conv2d_shape *s, const float *x, const float *w, const float *b,
                                  float *y, bool *done);
enum rt_status rt_cpu_dnnl_conv2d_backward(const struct rt_conv2d_shape *s, const float *x, const float *w,
                                           const float *gy, float *gx, float *gw, bool *done);
enum rt_status rt_cpu_max_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y,
                                 int64_t *idx);
enum rt_status rt_cpu_max_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, const int64_t *idx,
                                          const void *gy, void *gx);
enum rt_status rt_cpu_avg_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad,
                                 const void *x, void *y);
enum rt_status rt_cpu_avg_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad,
                                          const void *gy, void *gx);
enum rt_status rt_cpu_adaptive_avg_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y);
enum rt_status rt_cpu_adaptive_avg_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, const void *gy,
                                                   void *gx);
enum rt_status rt_cpu_batch_norm_stats(enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x, void *mean,
                                       void *var);
enum rt_status rt_cpu_batch_norm_apply(enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x,
                                       const void *mean, const void *invstd, const void *weight, const void *bias,
                                       void *y);
enum rt_status rt_cpu_batch_norm_backward(enum rt_dtype dt, bool training, int64_t n, int64_t c, int64_t s,
                                          const void *x, const void *gy, const void *mean, const void *invstd,
                                          const void *weight, void *gx, void *gw, void *gb);
enum rt_status rt_cpu_class_rows(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const int64_t *labels,
                                 const void *cw, int64_t ignore, void *w, int64_t *safe);
enum rt_status rt_cpu_cross_entropy(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                    const int64_t *labels, const void *weights, int64_t ignore, double smoothing,
                                    void *loss, void *lse, void *rw);
enum rt_status rt_cpu_cross_entropy_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                             const int64_t *labels, const void *weights, int64_t ignore,
                                             double smoothing, const void *lse, const void *gloss, int64_t gloss_stride,
                                             const void *gden, void *gx);
enum rt_status rt_cpu_count_correct(enum rt_dtype dt, int64_t n, int64_t c, const void *x, const int64_t *labels,
                                    int64_t base, void *out);
enum rt_status rt_cpu_weighted_mean(enum rt_dtype dt, int64_t n, const void *rows, const void *rw, void *out,
                                    void *den);
enum rt_status rt_cpu_attention_map(enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p, const void *f,
                                    void *y, void *norm);
enum rt_status rt_cpu_attention_map_backward(enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p,
                                             const void *f, const void *y, const void *norm, const void *gy,
                                             void *gf);
enum rt_status rt_cpu_kd(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t,
                         bool probs, double T, const int64_t *labels, int64_t ignore, void *kl, void *ce, void *keep);
enum rt_status rt_cpu_kd_reduce(enum rt_dtype dt, int64_t n, const void *kl, const void *ce, const void *keep,
                                const void *w, double soft, double hard, double T2, void *loss,
                                void *terms);
enum rt_status rt_cpu_kd_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs,
                                  double T, const int64_t *labels, const void *keep, const void *w,
                                  const void *terms, const void *gloss, double soft, double hard, void *gs);
enum rt_status rt_cpu_leaky_relu(enum rt_dtype dt, int64_t n, double slope, const void *x, void *y);
enum rt_status rt_cpu_leaky_relu_backward(enum rt_dtype dt, int64_t n, double slope, const void *x, const void *gy,
                                          void *gx);

#endif
