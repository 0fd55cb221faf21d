/* The kernels behind the CUDA backend table, one declaration per entry of struct rt_backend
 * (signatures exactly as there; pointers are device memory). Files: cuda_elementwise.cu (copy, fill,
 * unary, binary, where, axpy), cuda_reduce.cu, cuda_gemm.cu, cuda_softmax.cu, cuda_index.cu,
 * cuda_random.cu, cuda_conv.cu (im2col, col2im), cuda_pool.cu, cuda_norm.cu, cuda_loss.cu (cross
 * entropy), cuda_kd.cu, cuda_attention.cu, cuda_activation.cu (leaky relu), cuda_optim.cu (sgd). */
#ifndef RETORT_CUDA_KERNELS_H
#define RETORT_CUDA_KERNELS_H

#include "backend/cuda/cuda_internal.cuh"

/* cuBLAS handle on the backend's stream (cuda_gemm.cu); on failure writes why and returns an error */
enum rt_status rt_cuda_blas_start(cudaStream_t stream, char *why, size_t why_len);

enum rt_status rt_cuda_copy(const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,
                            enum rt_dtype src_dt);
enum rt_status rt_cuda_fill(enum rt_dtype dt, int64_t n, double value, void *dst);
enum rt_status rt_cuda_unary(enum rt_unary_op op, enum rt_dtype dt, int64_t n, const void *x, void *y, double a,
                             double b);
enum rt_status rt_cuda_binary(enum rt_binary_op op, enum rt_dtype dt, int ndim, const int64_t *shape, const void *a,
                              const int64_t *astride, const void *b, const int64_t *bstride, void *out);
enum rt_status rt_cuda_where(enum rt_dtype dt, int64_t n, const uint8_t *cond, const void *a, const void *b,
                             void *out);
enum rt_status rt_cuda_reduce(enum rt_reduce_op op, enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner,
                              const void *x, void *out, int64_t *idx, double p);
enum rt_status rt_cuda_gemm(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                            const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb,
                            int64_t stride_b, double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch);
enum rt_status rt_cuda_gemm_bias(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a,
                                 int64_t lda, const void *b, int64_t ldb, const void *bias, void *c, int64_t ldc,
                                 bool *done);
enum rt_status rt_cuda_softmax(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner, double inv_t,
                               const void *x, void *y);
enum rt_status rt_cuda_softmax_backward(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner,
                                        double inv_t, const void *y, const void *gy, void *gx);
enum rt_status rt_cuda_check_index(const char *op, const char *what, int64_t n, const int64_t *ix, int64_t base,
                                   int64_t limit, int64_t ignore, int64_t *out);
enum rt_status rt_cuda_index_select(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                    int64_t m, const void *x, void *out);
enum rt_status rt_cuda_index_copy(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                  int64_t m, const void *src, void *out);
enum rt_status rt_cuda_gather(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                              const int64_t *index, const void *x, void *out);
enum rt_status rt_cuda_scatter_add(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                                   const int64_t *index, const void *src, void *out);
enum rt_status rt_cuda_index_add(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                 int64_t m, const void *src, void *out);
enum rt_status rt_cuda_uniform(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double lo, double hi,
                               void *out);
enum rt_status rt_cuda_normal(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double mean, double std,
                              void *out);
enum rt_status rt_cuda_dropout(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double keep, double scale,
                               const void *x, void *y, void *mask);
enum rt_status rt_cuda_im2col(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *col);
enum rt_status rt_cuda_col2im(enum rt_dtype dt, const struct rt_conv_geom *g, const void *col, void *x);
enum rt_status rt_cuda_max_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y,
                                  int64_t *idx);
enum rt_status rt_cuda_max_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, const int64_t *idx,
                                           const void *gy, void *gx);
enum rt_status rt_cuda_avg_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad,
                                  const void *x, void *y);
enum rt_status rt_cuda_avg_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad,
                                           const void *gy, void *gx);
enum rt_status rt_cuda_adaptive_avg_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y);
enum rt_status rt_cuda_adaptive_avg_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, const void *gy,
                                                    void *gx);
enum rt_status rt_cuda_batch_norm_stats(enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x, void *mean,
                                        void *var);
enum rt_status rt_cuda_batch_norm_apply(enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x,
                                        const void *mean, const void *invstd, const void *weight, const void *bias,
                                        void *y);
enum rt_status rt_cuda_batch_norm_backward(enum rt_dtype dt, bool training, int64_t n, int64_t c, int64_t s,
                                           const void *x, const void *gy, const void *mean, const void *invstd,
                                           const void *weight, void *gx, void *gw, void *gb);
enum rt_status rt_cuda_class_rows(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const int64_t *labels,
                                  const void *cw, int64_t ignore, void *w, int64_t *safe);
enum rt_status rt_cuda_cross_entropy(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                     const int64_t *labels, const void *weights, int64_t ignore, double smoothing,
                                     void *loss, void *lse, void *rw);
enum rt_status rt_cuda_cross_entropy_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                              const int64_t *labels, const void *weights, int64_t ignore,
                                              double smoothing, const void *lse, const void *gloss,
                                              int64_t gloss_stride, const void *gden, void *gx);
enum rt_status rt_cuda_count_correct(enum rt_dtype dt, int64_t n, int64_t c, const void *x, const int64_t *labels,
                                     int64_t base, void *out);
enum rt_status rt_cuda_weighted_mean(enum rt_dtype dt, int64_t n, const void *rows, const void *rw, void *out,
                                     void *den);
enum rt_status rt_cuda_kd(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t,
                          bool probs, double T, const int64_t *labels, int64_t ignore, void *kl, void *ce, void *keep);
enum rt_status rt_cuda_kd_reduce(enum rt_dtype dt, int64_t n, const void *kl, const void *ce, const void *keep,
                                 const void *w, double soft, double hard, double T2, void *loss,
                                void *terms);
enum rt_status rt_cuda_kd_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs,
                                   double T, const int64_t *labels, const void *keep, const void *w,
                                   const void *terms, const void *gloss, double soft, double hard, void *gs);
enum rt_status rt_cuda_attention_map(enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p, const void *f,
                                     void *y, void *norm);
enum rt_status rt_cuda_attention_map_backward(enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p,
                                              const void *f, const void *y, const void *norm, const void *gy,
                                              void *gf);
enum rt_status rt_cuda_leaky_relu(enum rt_dtype dt, int64_t n, double slope, const void *x, void *y);
enum rt_status rt_cuda_leaky_relu_backward(enum rt_dtype dt, int64_t n, double slope, const void *x, const void *gy,
                                           void *gx);
enum rt_status rt_cuda_axpy(enum rt_dtype dt, int64_t n, double alpha, const void *x, void *y);
enum rt_status rt_cuda_accumulate(double *acc, const struct rt_accumulate_args *a);
enum rt_status rt_cuda_sgd_update(enum rt_dtype dt, int k, const struct rt_sgd_param *ps,
                                  const struct rt_sgd_opts *o);
enum rt_status rt_cuda_adam_update(enum rt_dtype dt, int k, const struct rt_adam_param *ps,
                                   const struct rt_adam_opts *o);

#endif
