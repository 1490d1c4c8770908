/* opl — helpers shared by the op files; not part of the public API. */
#ifndef OPL_INTERNAL_H
#define OPL_INTERNAL_H

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "core/opl.h"
#include "core/par.h"

/* Memory for a gradient buffer of an arena tensor: a released buffer of exactly this size if
 * one is free (see run_backward in tensor.c), else fresh arena memory. Uninitialized. */
void *opl_grad_alloc(opl_ctx *c, size_t bytes);

/* Gradient buffer of input i of nd for a kernel that either overwrites or accumulates. If the
 * input is an arena tensor with no gradient yet, the buffer is taken uninitialized (from
 * opl_grad_alloc) and *fresh = 1: the kernel must write every element, which saves zeroing it
 * and a pass of additions. Otherwise *fresh = 0 and the kernel accumulates. NULL when the
 * input needs no gradient (or out of memory, with the sticky error set). */
opl_real *opl_node_grad_write(opl_node *nd, int i, int *fresh);

/* Vectorized float GELU kernels (core/fastmath.c): y = gelu(x) over x, y [n]; and
 * gx += gy * gelu'(x) over x, gy, gx [n]. */
void opl_gelu_forward_f32(int64_t n, const float *restrict x, float *restrict y);
void opl_gelu_backward_f32(int64_t n, const float *restrict x, const float *restrict gy,
                           float *restrict gx);

/* Vectorized float tanh (core/fastmath.c): y = tanh(x) over x, y [n], within 4 ulps. */
void opl_tanh_forward_f32(int64_t n, const float *restrict x, float *restrict y);
/* y = tanh(x) and d = 1 - tanh(x)^2 computed without cancellation (core/fastmath.c): x, y, d [n]. */
void opl_tanh_sech2_f32(int64_t n, const float *restrict x, float *restrict y, float *restrict d);

/* Pointwise activation kernels of opl_unary (core/op_elementwise.c), threaded above the
 * parallel threshold: y = f(x) over x, y [n] (kind is an opl_unary_kind); and
 * gx += gy * f'(x) over x, y = f(x), gy, gx [n]. */
void opl_unary_forward(int kind, int64_t n, const opl_real *x, opl_real *y);
void opl_unary_backward(int kind, int64_t n, const opl_real *x, const opl_real *y,
                        const opl_real *gy, opl_real *gx);
/* The same, on the calling thread only (for use inside a parallel region). */
void opl_unary_forward_1t(int kind, int64_t n, const opl_real *x, opl_real *y);
void opl_unary_backward_1t(int kind, int64_t n, const opl_real *x, const opl_real *y,
                           const opl_real *gy, opl_real *gx);

/* The kernels of channel_linear (core/op_linear.c). Forward: y_n = w x_n + b (acc = 0) or
 * y_n += w x_n + b (acc = 1), n < N; x [N, Ci, S], w [Co, Ci], b [Co] or NULL, y [N, Co, S].
 * Backward from gy [N, Co, S]: gx [N, Ci, S] = w^T gy + beta_x gx, gw [Co, Ci] += sum_n gy_n x_n^T,
 * gb [Co] += sum of gy over n and S; any of gx, gw, gb may be NULL. Takes its scratch from c's
 * arena (records an error and returns nonzero when out of memory). */
void opl_chlin_forward(int64_t N, int64_t Ci, int64_t Co, int64_t S, const opl_real *x,
                       const opl_real *w, const opl_real *b, opl_real *y, int acc);
int opl_chlin_backward(opl_ctx *c, int64_t N, int64_t Ci, int64_t Co, int64_t S, const opl_real *gy,
                       const opl_real *x, const opl_real *w, opl_real *gx, opl_real beta_x,
                       opl_real *gw, opl_real *gb);

/* The convolutions' spatial blocking (core/op_conv.c): each sample's output is lowered and
 * multiplied in slabs of whole axis-0 planes about cols columns wide (cols <= 0: the whole
 * sample at once). Default 512. Returns the previous value. For tests comparing slab sizes, and
 * for measuring. */
int64_t opl_conv_set_slab_cols(int64_t cols);

/* The convolutions' Winograd path (core/op_conv.c) for 2-D 3x3 convolutions with stride 1,
 * dilation 1 and one group: mode -1 chooses per layer shape (the default), 0 always uses
 * im2col, 2 or 4 use F(2x2, 3x3) or F(4x4, 3x3) wherever they apply. opl_conv_set_wino_tiles sets
 * the tiles per chunk (default 128). Both return the previous value. For tests and measuring. */
int opl_conv_set_winograd(int mode);
int64_t opl_conv_set_wino_tiles(int64_t tiles);
/* 0: the Winograd transforms use the baseline x86-64 kernels even where AVX2 copies could run
 * (1, the default, lets them); for tests that check both give the same bits. Returns the previous
 * value. */
int opl_conv_set_wino_avx2(int on);

/* Normalize an axis (negative counts from the end); -1 if out of range. */
static inline int opl_axis_norm(int axis, int rank) {
  if (axis < 0) axis += rank;
  return (axis >= 0 && axis < rank) ? axis : -1;
}

/* Product of shape[lo..hi). */
static inline int64_t opl_prod(const int64_t *shape, int lo, int hi) {
  int64_t p = 1;
  for (int i = lo; i < hi; i++) p *= shape[i];
  return p;
}

/* Sums in double over 8 lanes: lane l adds the entries i = l mod 8 (i < 8 floor(n / 8)), the rest
 * is summed apart, then the lanes are added in order. The same order in every build and on every
 * processor (deterministic), and 8 independent chains instead of one dependent add per element.
 * Written as 4 vectors of 2 doubles, with SSE2's conversions in the float build: the compiler's
 * own vectorization of an 8-lane loop came out half scalar. */
#define OPL_LANES 8
typedef double opl_lane_d2 __attribute__((vector_size(16)));

/* x[0 .. 4) as two vectors of doubles. */
static inline void opl_lane_ld4(const opl_real *x, opl_lane_d2 *lo, opl_lane_d2 *hi) {
#if defined(__SSE2__) && !defined(OPL_DOUBLE)
  const __m128 v = _mm_loadu_ps(x);
  *lo = (opl_lane_d2)_mm_cvtps_pd(v);
  *hi = (opl_lane_d2)_mm_cvtps_pd(_mm_movehl_ps(v, v));
#else
  *lo = (opl_lane_d2){x[0], x[1]};
  *hi = (opl_lane_d2){x[2], x[3]};
#endif
}

/* The 4 vectors v into a [8] in lane order. */
static inline void opl_lane_spill(const opl_lane_d2 *v, double *a) {
  for (int j = 0; j < 4; j++) a[2 * j] = v[j][0], a[2 * j + 1] = v[j][1];
}

/* Returns sum(x) in double: x [n]. */
static inline double opl_dsum(const opl_real *x, int64_t n) {
  opl_lane_d2 v[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
  int64_t i = 0;
  for (; i + OPL_LANES <= n; i += OPL_LANES) {
    opl_lane_d2 u[4];
    opl_lane_ld4(x + i, u, u + 1), opl_lane_ld4(x + i + 4, u + 2, u + 3);
    for (int j = 0; j < 4; j++) v[j] += u[j];
  }
  double acc[OPL_LANES], s = 0;
  opl_lane_spill(v, acc);
  for (; i < n; i++) s += (double)x[i];
  for (int k = 0; k < OPL_LANES; k++) s += acc[k];
  return s;
}

/* Accumulate src into dst (n reals). */
static inline void opl_acc(opl_real *restrict dst, const opl_real *restrict src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

#endif
