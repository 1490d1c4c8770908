/* opl — jet ops (core/jet.h): linear layer, tanh and product on stacked Taylor components.
 * Each op: constructor (shape checks, arena output, one tape node), forward kernel, backward
 * kernel that accumulates into the inputs' gradients. */
#include <limits.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "core/jet.h"
#include "core/internal.h"
#include "core/ops.h"

static int spec_ok(opl_ctx *c, const char *op, opl_jet_spec s) {
  if (s.nx < 0 || s.nx > OPL_JET_MAX_NX || s.nt < 0 || s.nt > 1) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: jet of %d x-derivatives and %d t-derivatives, expected 0..%d and 0..1", op,
                  s.nx, s.nt, OPL_JET_MAX_NX);
    return 0;
  }
  return 1;
}

/* The nesting level of the calling thread's parallel regions (0 outside any). */
static int par_level(void) {
#ifdef _OPENMP
  return omp_get_level();
#else
  return 0;
#endif
}

/* Index of the calling thread in the parallel region an OPL_PFOR opened at level lvl + 1, or 0
 * on its serial branch (which may itself run on thread 1 of an enclosing region, a team's slice,
 * core/par.h: its thread number is not an index into this op's per-thread scratch). */
static int thread_id(int lvl) {
#ifdef _OPENMP
  return omp_get_level() > lvl ? omp_get_thread_num() : 0;
#else
  (void)lvl;
  return 0;
#endif
}

/* x must be rank 3 with first extent K. */
static int jet_shape_ok(opl_ctx *c, const char *op, const char *what, const opl_tensor *x, opl_jet_spec s) {
  if (!opl_check_input(c, op, what, x, 3, 0)) return 0;
  if (x->shape[0] != opl_jet_k(s)) {
    char b[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: %s %s must be (K, N, D) with K = %d (1 + %d x-derivatives + %d t)", op, what,
                  opl_shape_str(b, x->rank, x->shape), opl_jet_k(s), s.nx, s.nt);
    return 0;
  }
  return 1;
}

/* ------------------------------------------------------------ jet_linear */

/* Row-major C (m, n) = op(A) op(B) + beta C. */
static void gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const opl_real *a, int64_t lda,
                 const opl_real *b, int64_t ldb, opl_real beta, opl_real *cc, int64_t ldc) {
  opl_gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1,
           a, (int)lda, b, (int)ldb, beta, cc, (int)ldc);
}

/* Backward: gy [K, N, Out], x [K, N, In], w [Out, In]; iarg = (K, N, In, Out).
 * gx (+)= gy w (written when fresh); gw += gy^T x over all K N rows; gb += column sums of gy's
 * component 0 (double). */
static void jet_linear_bw(opl_node *nd) {
  int64_t K = nd->iarg[0], N = nd->iarg[1], In = nd->iarg[2], Out = nd->iarg[3];
  const opl_real *gy = nd->out->grad, *x = nd->in[0]->data, *w = nd->in[1]->data;
  int fresh;
  opl_real *gx = opl_node_grad_write(nd, 0, &fresh), *gw = opl_node_grad(nd, 1);
  opl_real *gb = nd->in[2] ? opl_node_grad(nd, 2) : NULL;
  if (opl_ctx_status(nd->ctx)) return;
  if (gx) gemm(0, 0, K * N, In, Out, gy, Out, w, In, fresh ? 0 : 1, gx, In);
  if (gw) gemm(1, 0, Out, In, K * N, gy, Out, x, In, 1, gw, In);
  if (gb) {
    double *acc = opl_arena_calloc(nd->ctx, (size_t)Out * sizeof(double));
    if (!acc) return;
    for (int64_t r = 0; r < N; r++)
      for (int64_t j = 0; j < Out; j++) acc[j] += (double)gy[r * Out + j];
    for (int64_t j = 0; j < Out; j++) gb[j] += (opl_real)acc[j];
  }
}

opl_tensor *opl_jet_linear(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b) {
  const char *op = "jet_linear";
  if (!opl_check_input(c, op, "x", x, 3, 0) || !opl_check_input(c, op, "w", w, 2, 0)) return NULL;
  if (b && !opl_check_input(c, op, "b", b, 1, 0)) return NULL;
  char b1[96], b2[96];
  int64_t K = x->shape[0], N = x->shape[1], In = x->shape[2], Out = w->shape[0];
  if (w->shape[1] != In || (b && b->shape[0] != Out)) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "jet_linear: x %s (K, N, In) does not match w %s (Out, In)%s",
                  opl_shape_str(b1, x->rank, x->shape), opl_shape_str(b2, w->rank, w->shape),
                  b && b->shape[0] != Out ? " and its bias" : "");
    return NULL;
  }
  if (K * N > INT_MAX || In > INT_MAX || Out > INT_MAX) {
    opl_ctx_error(c, OPL_ERR_ARG, "jet_linear: x %s too large for BLAS", opl_shape_str(b1, x->rank, x->shape));
    return NULL;
  }
  opl_tensor *y = opl_new(c, OPL_DIMS(K, N, Out));
  if (!y) return NULL;
  gemm(0, 1, K * N, Out, In, x->data, In, w->data, In, 0, y->data, Out);
  if (b)
    for (int64_t r = 0; r < N; r++)
      for (int64_t j = 0; j < Out; j++) y->data[r * Out + j] += b->data[j];
  opl_tensor *in[3] = {x, w, b};
  opl_node *nd = opl_record(c, op, jet_linear_bw, y, 3, in);
  if (nd) nd->iarg[0] = K, nd->iarg[1] = N, nd->iarg[2] = In, nd->iarg[3] = Out;
  return y;
}

/* ------------------------------------------------------------ jet_tanh */

/* tanh's derivatives are those of core/jet.h as functions of s = tanh(h0) and d1 = 1 - s^2, with
 * d1 computed as sech(h0)^2 from h0 itself: 1 - s^2 loses d1's relative accuracy where |s| nears
 * 1 (saturated units, where d1 is small and a rounding of s is a large part of it), and every
 * derivative component carries a factor d1. Backward recomputes s and d1 from h0 (no reading of
 * the output's value), so the forward keeps no more than its input.
 *
 * y = tanh(x), d = 1 - tanh(x)^2 on n values: x, y, d [n]. */
static void tanh_sech2(int64_t n, const opl_real *x, opl_real *y, opl_real *d) {
#ifdef OPL_DOUBLE
  for (int64_t i = 0; i < n; i++) {
    double a = fabs(x[i]), m = exp(-2 * a), q = 1 / (1 + m);
    y[i] = tanh(x[i]);
    d[i] = a < 0.55 ? 1 - y[i] * y[i] : 4 * m * q * q;
  }
#else
  opl_tanh_sech2_f32(n, x, y, d);
#endif
}

/* The kernels below are written for a fixed number of x-derivatives NX and time derivatives NT
 * (compile-time constants after inlining, one instance per case of a switch), in opl_real, over a
 * contiguous range of points [lo, hi) whose inner loop vectorizes (each component a separate
 * restrict array: with one base pointer and offsets k n the compiler cannot rule out overlap and
 * keeps the loop scalar); s and d1 of point i are s[i - lo] and d[i - lo]. s_m are the derivatives of tanh at h0 (core/jet.h), s5 = -2 (3 s2^2 +
 * 4 s1 s3 + s s4) the one more that the backward pass needs for d y4 / d h0. */

/* Forward on points [lo, hi) of one component stride n: the components of the input (h1..h4, ht)
 * and output (y1..y4, yt) as separate arrays (restrict: they do not overlap, so the loop
 * vectorizes), s [hi - lo] = tanh(h0) and d [hi - lo] = 1 - s^2 of the block; s is also copied
 * to sc [hi - lo] when sc is not NULL (another home of s, in the same pass). */
static inline __attribute__((always_inline)) void tanh_fw_range(
    int64_t lo, int64_t hi, const opl_real *restrict s_, const opl_real *restrict d_, opl_real *restrict sc,
    const opl_real *restrict h1,
    const opl_real *restrict h2, const opl_real *restrict h3, const opl_real *restrict h4, const opl_real *restrict ht,
    opl_real *restrict y1, opl_real *restrict y2, opl_real *restrict y3, opl_real *restrict y4, opl_real *restrict yt,
    const int NX, const int NT) {
  for (int64_t i = lo; i < hi; i++) {
    opl_real s = s_[i - lo], d1 = d_[i - lo], d2 = -2 * s * d1;
    if (sc) sc[i - lo] = s;
    if (NT) yt[i] = d1 * ht[i];
    if (NX >= 1) y1[i] = d1 * h1[i];
    if (NX >= 2) y2[i] = d2 * h1[i] * h1[i] + d1 * h2[i];
    if (NX >= 3) {
      opl_real d3 = -2 * (d1 * d1 + s * d2), a = h1[i], b = h2[i];
      y3[i] = d3 * a * a * a + 3 * d2 * a * b + d1 * h3[i];
      if (NX >= 4) {
        opl_real d4 = -2 * (3 * d1 * d2 + s * d3), c = h3[i];
        y4[i] = d4 * a * a * a * a + 6 * d3 * a * a * b + d2 * (3 * b * b + 4 * a * c) + d1 * h4[i];
      }
    }
  }
}

/* Backward on points [lo, hi): s, d of the block as above, the input's derivative components
 * h1..h4, ht, the output gradient's components g0..g4, gt and the input gradient's q0..q4, qt
 * (separate, non-overlapping arrays); q += (ACC = 1) or = (ACC = 0, q uninitialized on entry). */
static inline __attribute__((always_inline)) void tanh_bw_range(
    int64_t lo, int64_t hi, const opl_real *restrict s_, const opl_real *restrict d_, const opl_real *restrict h1,
    const opl_real *restrict h2, const opl_real *restrict h3, const opl_real *restrict h4, const opl_real *restrict ht,
    const opl_real *restrict g0_, const opl_real *restrict g1, const opl_real *restrict g2,
    const opl_real *restrict g3, const opl_real *restrict g4, const opl_real *restrict gt, opl_real *restrict q0,
    opl_real *restrict q1, opl_real *restrict q2, opl_real *restrict q3, opl_real *restrict q4,
    opl_real *restrict qt, const int NX, const int NT, const int ACC) {
  for (int64_t i = lo; i < hi; i++) {
    opl_real s = s_[i - lo], d1 = d_[i - lo], d2 = -2 * s * d1;
    opl_real d3 = NX >= 2 ? -2 * (d1 * d1 + s * d2) : 0;
    opl_real d4 = NX >= 3 ? -2 * (3 * d1 * d2 + s * d3) : 0;
    opl_real d5 = NX >= 4 ? -2 * (3 * d2 * d2 + 4 * d1 * d3 + s * d4) : 0;
    opl_real a = NX >= 1 ? h1[i] : 0, b = NX >= 2 ? h2[i] : 0, c = NX >= 3 ? h3[i] : 0, e = NX >= 4 ? h4[i] : 0;
    opl_real G1 = NX >= 1 ? g1[i] : 0, G2 = NX >= 2 ? g2[i] : 0, G3 = NX >= 3 ? g3[i] : 0, G4 = NX >= 4 ? g4[i] : 0;
    opl_real g0 = g0_[i] * d1;
    if (NT) g0 += gt[i] * d2 * ht[i];
    if (NX >= 1) g0 += G1 * d2 * a;
    if (NX >= 2) g0 += G2 * (d3 * a * a + d2 * b);
    if (NX >= 3) g0 += G3 * (d4 * a * a * a + 3 * d3 * a * b + d2 * c);
    if (NX >= 4) g0 += G4 * (d5 * a * a * a * a + 6 * d4 * a * a * b + d3 * (3 * b * b + 4 * a * c) + d2 * e);
    q0[i] = (ACC ? q0[i] : 0) + g0;
    if (NT) qt[i] = (ACC ? qt[i] : 0) + gt[i] * d1;
    if (NX >= 1) {
      opl_real r = G1 * d1;
      if (NX >= 2) r += G2 * 2 * d2 * a;
      if (NX >= 3) r += G3 * (3 * d3 * a * a + 3 * d2 * b);
      if (NX >= 4) r += G4 * (4 * d4 * a * a * a + 12 * d3 * a * b + 4 * d2 * c);
      q1[i] = (ACC ? q1[i] : 0) + r;
    }
    if (NX >= 2) {
      opl_real r = G2 * d1;
      if (NX >= 3) r += G3 * 3 * d2 * a;
      if (NX >= 4) r += G4 * (6 * d3 * a * a + 6 * d2 * b);
      q2[i] = (ACC ? q2[i] : 0) + r;
    }
    if (NX >= 3) q3[i] = (ACC ? q3[i] : 0) + G3 * d1 + (NX >= 4 ? G4 * 4 * d2 * a : 0);
    if (NX >= 4) q4[i] = (ACC ? q4[i] : 0) + G4 * d1;
  }
}

/* Values per block: the block's s and d1 (2 x 16 KiB in float) stay in L1 between the two passes. */
#define JET_BLOCK 4096

/* The case (nx, nt) of a kernel call: one instance per case. */
#define JET_CASES(CALL)                                                   \
  switch (nx * 2 + nt) {                                                  \
    case 0: CALL(0, 0); break;                                            \
    case 1: CALL(0, 1); break;                                            \
    case 2: CALL(1, 0); break;                                            \
    case 3: CALL(1, 1); break;                                            \
    case 4: CALL(2, 0); break;                                            \
    case 5: CALL(2, 1); break;                                            \
    case 6: CALL(3, 0); break;                                            \
    case 7: CALL(3, 1); break;                                            \
    case 8: CALL(4, 0); break;                                            \
    default: CALL(4, 1); break;                                           \
  }

/* One block of points [lo, hi) (hi - lo <= JET_BLOCK) of the forward / backward kernels, for the
 * case (nx, nt); compiled three times, for AVX-512F (16 floats a vector), AVX2 and the baseline,
 * and chosen at load time (the arithmetic is the same, no FMA contraction under C11's default
 * -ffp-contract=off, so all give the same bits). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void tanh_fw_block(int nx, int nt, int64_t lo, int64_t hi, int64_t n, const opl_real *x, opl_real *y,
                          const opl_real *ss, const opl_real *dd, opl_real *sc) {
  /* components (core/jet.h): k-th x-derivative at k n, the t-derivative at (nx + 1) n; the
   * pointers of components a case does not have are never dereferenced */
  const opl_real *ht = x + (nx + 1) * n;
  opl_real *yt = y + (nx + 1) * n;
#define FW(NX, NT) tanh_fw_range(lo, hi, ss, dd, sc, x + n, x + 2 * n, x + 3 * n, x + 4 * n, ht, y + n, y + 2 * n, \
                                 y + 3 * n, y + 4 * n, yt, NX, NT)
#define FW_NOCOPY(NX, NT) tanh_fw_range(lo, hi, ss, dd, NULL, x + n, x + 2 * n, x + 3 * n, x + 4 * n, ht, y + n, \
                                        y + 2 * n, y + 3 * n, y + 4 * n, yt, NX, NT)
  if (sc) JET_CASES(FW) else JET_CASES(FW_NOCOPY)
#undef FW
#undef FW_NOCOPY
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void tanh_bw_block(int nx, int nt, int64_t lo, int64_t hi, int64_t n, const opl_real *x, const opl_real *ss,
                          const opl_real *dd, const opl_real *gy, opl_real *gx) {
  const opl_real *ht = x + (nx + 1) * n, *gt = gy + (nx + 1) * n;
  opl_real *qt = gx + (nx + 1) * n;
#define BW(NX, NT) tanh_bw_range(lo, hi, ss, dd, x + n, x + 2 * n, x + 3 * n, x + 4 * n, ht, gy, gy + n, gy + 2 * n, \
                                 gy + 3 * n, gy + 4 * n, gt, gx, gx + n, gx + 2 * n, gx + 3 * n, gx + 4 * n, qt, NX, NT, 1)
  JET_CASES(BW)
#undef BW
}

/* The same, writing gx instead of accumulating into it. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void tanh_bw_block_write(int nx, int nt, int64_t lo, int64_t hi, int64_t n, const opl_real *x,
                                const opl_real *ss, const opl_real *dd, const opl_real *gy, opl_real *gx) {
  const opl_real *ht = x + (nx + 1) * n, *gt = gy + (nx + 1) * n;
  opl_real *qt = gx + (nx + 1) * n;
#define BW(NX, NT) tanh_bw_range(lo, hi, ss, dd, x + n, x + 2 * n, x + 3 * n, x + 4 * n, ht, gy, gy + n, gy + 2 * n, \
                                 gy + 3 * n, gy + 4 * n, gt, gx, gx + n, gx + 2 * n, gx + 3 * n, gx + 4 * n, qt, NX, NT, 0)
  JET_CASES(BW)
#undef BW
}

/* Forward on points [lo, hi) of x, y [K, n] (any length; blocks of JET_BLOCK on this thread). */
static void tanh_fw_span(int nx, int nt, int64_t lo, int64_t hi, int64_t n, const opl_real *x, opl_real *y) {
  opl_real dd[JET_BLOCK];
  for (int64_t a = lo; a < hi; a += JET_BLOCK) {
    int64_t b = hi - a < JET_BLOCK ? hi : a + JET_BLOCK;
    tanh_sech2(b - a, x + a, y + a, dd);
    tanh_fw_block(nx, nt, a, b, n, x, y, y + a, dd, NULL);
  }
}

/* Backward on points [lo, hi): x [K, n] the input, gy [K, n]; gx [K, n] += (acc) or = (!acc). */
static void tanh_bw_span(int nx, int nt, int64_t lo, int64_t hi, int64_t n, const opl_real *x, const opl_real *gy,
                         opl_real *gx, int acc) {
  opl_real ss[JET_BLOCK], dd[JET_BLOCK];
  for (int64_t a = lo; a < hi; a += JET_BLOCK) {
    int64_t b = hi - a < JET_BLOCK ? hi : a + JET_BLOCK;
    tanh_sech2(b - a, x + a, ss, dd);
    if (acc) tanh_bw_block(nx, nt, a, b, n, x, ss, dd, gy, gx);
    else tanh_bw_block_write(nx, nt, a, b, n, x, ss, dd, gy, gx);
  }
}

/* Forward on points [lo, hi) with s = tanh(x0) and d1 given: ss, dd [n] (x's component 0 is not
 * read); s also copied to sc [n] when not NULL (y's component 0 is not written). */
static void tanh_fw_span_sd(int nx, int nt, int64_t lo, int64_t hi, int64_t n, const opl_real *x, opl_real *y,
                            const opl_real *ss, const opl_real *dd, opl_real *sc) {
  for (int64_t a = lo; a < hi; a += JET_BLOCK)
    tanh_fw_block(nx, nt, a, hi - a < JET_BLOCK ? hi : a + JET_BLOCK, n, x, y, ss + a, dd + a, sc ? sc + a : NULL);
}

/* Backward on points [lo, hi) with s and d1 given: ss, dd [n]; gx (+)= as tanh_bw_span. */
static void tanh_bw_span_sd(int nx, int nt, int64_t lo, int64_t hi, int64_t n, const opl_real *x, const opl_real *ss,
                            const opl_real *dd, const opl_real *gy, opl_real *gx, int acc) {
  for (int64_t a = lo; a < hi; a += JET_BLOCK) {
    int64_t b = hi - a < JET_BLOCK ? hi : a + JET_BLOCK;
    if (acc) tanh_bw_block(nx, nt, a, b, n, x, ss + a, dd + a, gy, gx);
    else tanh_bw_block_write(nx, nt, a, b, n, x, ss + a, dd + a, gy, gx);
  }
}

/* Forward: x, y [K, n] with n = N D; components as core/jet.h. Threaded over blocks. */
static void jet_tanh_forward(int nx, int nt, int64_t n, const opl_real *x, opl_real *y) {
  int64_t nb = (n + JET_BLOCK - 1) / JET_BLOCK;
  OPL_PFOR(b, nb, n * (1 + nx + nt) * 2,
           tanh_fw_span(nx, nt, b * JET_BLOCK, b + 1 < nb ? (b + 1) * JET_BLOCK : n, n, x, y););
}

/* Backward: x [K, n] the input, gy [K, n]; gx [K, n] += (acc) or = (!acc). Threaded over blocks. */
static void jet_tanh_backward(int nx, int nt, int64_t n, const opl_real *x, const opl_real *gy, opl_real *gx,
                              int acc) {
  int64_t nb = (n + JET_BLOCK - 1) / JET_BLOCK;
  OPL_PFOR(b, nb, n * (1 + nx + nt) * 4,
           tanh_bw_span(nx, nt, b * JET_BLOCK, b + 1 < nb ? (b + 1) * JET_BLOCK : n, n, x, gy, gx, acc););
}

static void jet_tanh_bw(opl_node *nd) {
  int nx = (int)nd->iarg[0], nt = (int)nd->iarg[1];
  int64_t n = nd->iarg[2];
  int fresh;
  opl_real *gx = opl_node_grad_write(nd, 0, &fresh);
  if (!gx || opl_ctx_status(nd->ctx)) return;
  jet_tanh_backward(nx, nt, n, nd->in[0]->data, nd->out->grad, gx, !fresh);
}

opl_tensor *opl_jet_tanh(opl_ctx *c, opl_tensor *x, opl_jet_spec s) {
  const char *op = "jet_tanh";
  if (opl_ctx_status(c)) return NULL;
  if (!spec_ok(c, op, s) || !jet_shape_ok(c, op, "x", x, s)) return NULL;
  int64_t n = x->shape[1] * x->shape[2];
  opl_tensor *y = opl_new_like(c, x);
  if (!y) return NULL;
  jet_tanh_forward(s.nx, s.nt, n, x->data, y->data);
  opl_tensor *in[1] = {x};
  opl_node *nd = opl_record(c, op, jet_tanh_bw, y, 1, in);
  if (nd) nd->iarg[0] = s.nx, nd->iarg[1] = s.nt, nd->iarg[2] = n;
  return y;
}

/* ------------------------------------------------------------ jet_linear_tanh */

/* The hidden layer y = tanh(x w^T + b) of a jet in one op: one GEMM over all K N rows into the
 * pre-activation h [K, N, Out] (kept for backward), then one pass over blocks of rows that adds
 * the bias to h's value component, takes tanh and propagates the derivative components
 * (Faa di Bruno, core/jet.h) while the block is in cache. Backward: the tanh jet's backward
 * writes gh [K, N, Out] (scratch), then gx (+)= gh w, gw += gh^T x and gb += column sums of gh's
 * component 0, the two GEMMs again over all K N rows. The same arithmetic, so the same bits, as
 * jet_tanh(jet_linear). */

/* Rows of one block of the fused pass: about JET_BLOCK values per component. */
static int64_t lt_rows(int64_t Out) { return Out >= JET_BLOCK ? 1 : JET_BLOCK / Out; }

/* Forward pass on rows [r0, r1): h [K, N, Out] the pre-activation (component 0 gets + b), b [Out]
 * or NULL, y [K, N, Out]. */
static void lt_fw_rows(int nx, int nt, int64_t r0, int64_t r1, int64_t N, int64_t Out, opl_real *h, const opl_real *b,
                       opl_real *y) {
  if (b)
    for (int64_t r = r0; r < r1; r++)
      for (int64_t j = 0; j < Out; j++) h[r * Out + j] += b[j];
  tanh_fw_span(nx, nt, r0 * Out, r1 * Out, N * Out, h, y);
}

/* Backward: iarg = (K, N, In, Out, nx, nt); saved = h [K, N, Out]; gy [K, N, Out]. */
static void jet_linear_tanh_bw(opl_node *nd) {
  int64_t K = nd->iarg[0], N = nd->iarg[1], In = nd->iarg[2], Out = nd->iarg[3];
  int nx = (int)nd->iarg[4], nt = (int)nd->iarg[5];
  opl_ctx *c = nd->ctx;
  const opl_real *h = nd->saved, *gy = nd->out->grad, *x = nd->in[0]->data, *w = nd->in[1]->data;
  int fresh;
  opl_real *gx = opl_node_grad_write(nd, 0, &fresh), *gw = opl_node_grad(nd, 1);
  opl_real *gb = nd->in[2] ? opl_node_grad(nd, 2) : NULL;
  if (opl_ctx_status(c)) return;
  int64_t n = N * Out;
  opl_real *gh = opl_arena_alloc(c, (size_t)(K * n) * sizeof(opl_real)); /* [K, N, Out] */
  if (!gh) return;
  jet_tanh_backward(nx, nt, n, h, gy, gh, 0);
  if (gx) gemm(0, 0, K * N, In, Out, gh, Out, w, In, fresh ? 0 : 1, gx, In);
  if (gw) gemm(1, 0, Out, In, K * N, gh, Out, x, In, 1, gw, In);
  if (gb) {
    double *acc = opl_arena_calloc(c, (size_t)Out * sizeof(double));
    if (!acc) return;
    for (int64_t r = 0; r < N; r++)
      for (int64_t j = 0; j < Out; j++) acc[j] += (double)gh[r * Out + j];
    for (int64_t j = 0; j < Out; j++) gb[j] += (opl_real)acc[j];
  }
}

opl_tensor *opl_jet_linear_tanh(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b, opl_jet_spec s) {
  const char *op = "jet_linear_tanh";
  if (opl_ctx_status(c)) return NULL;
  if (!spec_ok(c, op, s) || !jet_shape_ok(c, op, "x", x, s) || !opl_check_input(c, op, "w", w, 2, 0)) return NULL;
  if (b && !opl_check_input(c, op, "b", b, 1, 0)) return NULL;
  char b1[96], b2[96];
  int64_t K = x->shape[0], N = x->shape[1], In = x->shape[2], Out = w->shape[0];
  if (w->shape[1] != In || (b && b->shape[0] != Out)) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: x %s (K, N, In) does not match w %s (Out, In)%s", op,
                  opl_shape_str(b1, x->rank, x->shape), opl_shape_str(b2, w->rank, w->shape),
                  b && b->shape[0] != Out ? " and its bias" : "");
    return NULL;
  }
  if (K * N > INT_MAX || In > INT_MAX || Out > INT_MAX) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: x %s too large for BLAS", op, opl_shape_str(b1, x->rank, x->shape));
    return NULL;
  }
  opl_real *h = opl_arena_alloc(c, (size_t)(K * N * Out) * sizeof(opl_real)); /* [K, N, Out] */
  opl_tensor *y = opl_new(c, OPL_DIMS(K, N, Out));
  if (!h || !y) return NULL;
  gemm(0, 1, K * N, Out, In, x->data, In, w->data, In, 0, h, Out);
  int64_t R = lt_rows(Out), nb = (N + R - 1) / R;
  const opl_real *bd = b ? b->data : NULL;
  OPL_PFOR(i, nb, N * Out * K * 2,
           lt_fw_rows(s.nx, s.nt, i * R, i + 1 < nb ? (i + 1) * R : N, N, Out, h, bd, y->data););
  opl_tensor *in[3] = {x, w, b};
  opl_node *nd = opl_record(c, op, jet_linear_tanh_bw, y, 3, in);
  if (nd) {
    nd->iarg[0] = K, nd->iarg[1] = N, nd->iarg[2] = In, nd->iarg[3] = Out, nd->iarg[4] = s.nx, nd->iarg[5] = s.nt;
    nd->saved = h;
  }
  return y;
}

/* ------------------------------------------------------------ jet_mlp */

/* A whole tanh MLP on a jet in one op, processed in tiles of points so that a tile's activations
 * stay in cache from layer to layer. Layer l < L: a_{l+1} = tanh(h_l), h_l = a_l w_l^T + b_l (b on
 * component 0); output u = a_L w_L^T + b_L; a_0 = x. A tile holds the K components of P
 * consecutive points unit-major, as one contiguous [D, K, P] block (row j: unit j's K components
 * of the P points), so each layer of a tile is one GEMM h^T = w a^T of [Out, In] by [In, K P]
 * (OpenBLAS, single-threaded inside the tile loop: the tiles run on the threads). The weight is
 * the small operand and K P the long dimension, which OpenBLAS's kernels block best: measured
 * against the point-major layout [K, P, D] (a^T w^T, Out = 20 the short side), 8 x 20 tanh, tiles
 * of 204 points, 1 thread: forward and input-gradient GEMMs 1.15-1.2x faster with the Haswell
 * kernels and ~2x with the AVX-512 ones (OPENBLAS_CORETYPE=Cooperlake), the weight-gradient GEMM
 * 0.93x and 1.1x.
 * Forward keeps per layer and tile one block (tile-major): [Out_l, K, P] with per unit s = tanh(h0)
 * in place of h0 and the derivative components h_1 .. h_{K-1} (the GEMM's output, contiguous),
 * then [Out_l, P] of d1 = sech^2(h0);
 * backward walks each tile from the output down, rebuilding a_l (s and Faa di Bruno on the kept
 * components) where it needs it (the "checkpointing" of Griewank & Walther, ch. 12, at the
 * granularity of one layer, with no transcendental recomputed), so memory traffic is one write
 * and one read of these blocks instead of several passes per op over arrays of K N D values.
 * Parameter gradients are summed per tile and the tiles added in tile order (in double): the same
 * bits for every thread count. Arithmetic per element is that of jet_linear / jet_tanh. */

typedef struct mlp_saved {
  int L, nx, nt, has_x_grad;
  int64_t K, N, P, T;         /* components, points, points per tile, tiles */
  int64_t dim[OPL_JET_MLP_MAX + 2]; /* dim[0] = F inputs, dim[l + 1] = outputs of layer l */
  int64_t woff[OPL_JET_MLP_MAX + 1], boff[OPL_JET_MLP_MAX + 1], np; /* offsets in a tile's gradients */
  opl_real *hs;               /* the kept blocks of every tile ([Out_l, K, P] then [Out_l, P]): layer l at hoff[l] */
  int64_t hoff[OPL_JET_MLP_MAX + 1];
  opl_tensor **w, **b;        /* [L + 1] each (b[l] may be NULL) */
} mlp_saved;

/* Points per tile: about 16 K values per [D, K, P] block (64 KiB in float), a multiple of 16 so
 * that every unit's rows of P points (the element loops run per row) are whole AVX-512 vectors
 * with no scalar remainder. */
static int64_t mlp_tile_points(int64_t K, int64_t D) {
  int64_t p = 16384 / (K * (D > 0 ? D : 1));
  return p < 16 ? 16 : p / 16 * 16;
}

/* Copy the tile [p0, p0 + P) of a [K, N, D] array into a unit-major [D, K, P] block (dir = 0), or
 * add the block back into the array (dir = 1), or copy it back (dir = 2). */
static void tile_move(int64_t K, int64_t N, int64_t D, int64_t p0, int64_t P, opl_real *arr, opl_real *blk, int dir) {
  for (int64_t k = 0; k < K; k++) {
    opl_real *a = arr + (k * N + p0) * D, *t = blk + k * P;
    for (int64_t i = 0; i < P; i++)
      for (int64_t j = 0; j < D; j++) {
        opl_real *e = t + j * K * P + i;
        if (dir == 0) *e = a[i * D + j];
        else if (dir == 2) a[i * D + j] = *e;
        else a[i * D + j] += *e;
      }
  }
}

/* h [Out, K, P] += b [Out] on every unit's value row. */
static void add_bias_rows(int64_t K, int64_t P, int64_t Out, opl_real *h, const opl_real *b) {
  for (int64_t j = 0; j < Out; j++) {
    opl_real *r = h + j * K * P, v = b[j];
    for (int64_t i = 0; i < P; i++) r[i] += v;
  }
}

/* acc [D] (double) = sums of every unit's value row of g [D, K, P], in 8 interleaved partial sums
 * (one chain of P dependent additions would take its latency P times) added in a fixed order. */
static void value_row_sums(int64_t K, int64_t P, int64_t D, const opl_real *g, double *acc) {
  for (int64_t j = 0; j < D; j++) {
    const opl_real *r = g + j * K * P;
    double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= P; i += 8)
      for (int q = 0; q < 8; q++) v[q] += (double)r[i + q];
    for (; i < P; i++) v[0] += (double)r[i];
    acc[j] = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
  }
}

/* Forward of tile t: x [K, N, F] -> u [K, N, O]; scratch of this thread: xa [F, K, P], a0, a1
 * [Dmax, K, P], uo [O, K, P]. */
static void mlp_fw_tile(const mlp_saved *s, int64_t t, const opl_real *x, opl_real *u, opl_real *xa, opl_real *a0,
                        opl_real *a1, opl_real *uo) {
  int64_t K = s->K, p0 = t * s->P, P = p0 + s->P <= s->N ? s->P : s->N - p0, KP = K * P;
  tile_move(K, s->N, s->dim[0], p0, P, (opl_real *)x, xa, 0);
  const opl_real *cur = xa;
  for (int l = 0; l < s->L; l++) {
    int64_t In = s->dim[l], Out = s->dim[l + 1];
    opl_real *h = s->hs + s->hoff[l] + (K + 1) * p0 * Out, *nxt = cur == a0 ? a1 : a0;
    gemm(0, 0, Out, KP, In, s->w[l]->data, In, cur, KP, 0, h, KP);
    if (s->b[l]) add_bias_rows(K, P, Out, h, s->b[l]->data);
    for (int64_t j = 0; j < Out; j++) {
      opl_real *hj = h + j * KP, *yj = nxt + j * KP, *dj = h + Out * KP + j * P;
      tanh_sech2(P, hj, yj, dj);                                 /* s into a_{l+1}, d1 kept */
      tanh_fw_span_sd(s->nx, s->nt, 0, P, P, hj, yj, yj, dj, hj); /* s also kept in place of h0 */
    }
    cur = nxt;
  }
  int64_t In = s->dim[s->L], O = s->dim[s->L + 1];
  gemm(0, 0, O, KP, In, s->w[s->L]->data, In, cur, KP, 0, uo, KP);
  if (s->b[s->L])
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < P; i++) uo[o * KP + i] += s->b[s->L]->data[o];
  tile_move(K, s->N, O, p0, P, u, uo, 2);
}

/* Backward of tile t from gu [K, N, O]: this tile's parameter gradients into pg [np] (written),
 * gx [K, N, F] += (when not NULL); scratch: xa [F, K, P], a, ga, gh [Dmax, K, P], gt [O, K, P],
 * acc [Dmax] (double). */
static void mlp_bw_tile(const mlp_saved *s, int64_t t, const opl_real *x, const opl_real *gu, opl_real *gx,
                        opl_real *pg, opl_real *xa, opl_real *a, opl_real *ga, opl_real *gh, opl_real *gt,
                        double *acc) {
  int64_t K = s->K, p0 = t * s->P, P = p0 + s->P <= s->N ? s->P : s->N - p0, KP = K * P;
  int L = s->L;
  tile_move(K, s->N, s->dim[L + 1], p0, P, (opl_real *)gu, gt, 0);
  tile_move(K, s->N, s->dim[0], p0, P, (opl_real *)x, xa, 0);
  const opl_real *g = gt; /* gradient of layer l's output, [dim[l + 1], K, P] */
  for (int l = L; l >= 0; l--) {
    int64_t In = s->dim[l], Out = s->dim[l + 1];
    const opl_real *gpre = g; /* gradient of the pre-activation h_l (the output layer has none) */
    if (l < L) {
      const opl_real *hb = s->hs + s->hoff[l] + (K + 1) * p0 * Out;
      for (int64_t j = 0; j < Out; j++) {
        const opl_real *hj = hb + j * KP, *dj = hb + Out * KP + j * P;
        tanh_bw_span_sd(s->nx, s->nt, 0, P, P, hj, hj, dj, g + j * KP, gh + j * KP, 0);
      }
      gpre = gh;
    }
    const opl_real *in = xa; /* a_l: x, or rebuilt from layer l - 1's kept block */
    if (l > 0) {
      const opl_real *hb = s->hs + s->hoff[l - 1] + (K + 1) * p0 * In;
      for (int64_t j = 0; j < In; j++) {
        const opl_real *hj = hb + j * KP, *dj = hb + In * KP + j * P;
        opl_real *aj = a + j * KP;
        tanh_fw_span_sd(s->nx, s->nt, 0, P, P, hj, aj, hj, dj, aj); /* a_l's value: s, from the block */
      }
      in = a;
    }
    gemm(0, 1, Out, In, KP, gpre, KP, in, KP, 0, pg + s->woff[l], In);
    if (s->b[l]) {
      value_row_sums(K, P, Out, gpre, acc);
      for (int64_t j = 0; j < Out; j++) pg[s->boff[l] + j] = (opl_real)acc[j];
    } else {
      for (int64_t j = 0; j < Out; j++) pg[s->boff[l] + j] = 0; /* every entry of pg is summed */
    }
    if (l > 0 || gx) {
      gemm(1, 0, In, KP, Out, s->w[l]->data, In, gpre, KP, 0, ga, KP);
      g = ga;
    }
  }
  if (gx) tile_move(K, s->N, s->dim[0], p0, P, gx, ga, 1);
}

static void jet_mlp_bw(opl_node *nd) {
  opl_ctx *c = nd->ctx;
  const mlp_saved *s = nd->saved;
  opl_tensor *x = nd->more[0];
  opl_real *gx = opl_requires_grad(x) ? opl_grad_of(c, x) : NULL;
  if (opl_ctx_status(c)) return;
  int64_t K = s->K, P = s->P, T = s->T, Dm = 1;
  for (int l = 0; l <= s->L + 1; l++) Dm = s->dim[l] > Dm ? s->dim[l] : Dm;
  int nth = opl_get_num_threads();
  int64_t per = K * P * (s->dim[0] + 3 * Dm + s->dim[s->L + 1]); /* xa, a, ga, gh, gt */
  opl_real *scr = opl_arena_alloc(c, (size_t)(nth * per) * sizeof(opl_real));
  double *accs = opl_arena_alloc(c, (size_t)(nth * Dm) * sizeof(double));
  opl_real *pg = opl_arena_alloc(c, (size_t)(T * s->np) * sizeof(opl_real)); /* [T, np] */
  if (!scr || !accs || !pg) return;
  /* gx: the tiles add disjoint rows, so no two threads touch one element */
  const opl_real *xd = x->data, *gu = nd->out->grad;
  const int lvl = par_level();
#define BW_TILE(t)                                                                                               \
  {                                                                                                              \
    opl_real *m = scr + (int64_t)thread_id(lvl) * per, *xa = m, *a = xa + K * P * s->dim[0], *ga = a + K * P * Dm, \
             *gh = ga + K * P * Dm, *gt = gh + K * P * Dm;                                                       \
    mlp_bw_tile(s, t, xd, gu, gx, pg + t * s->np, xa, a, ga, gh, gt, accs + thread_id(lvl) * Dm);              \
  }
  OPL_PFOR(t, T, K * s->N * Dm * 16 * s->L, BW_TILE(t));
#undef BW_TILE
  /* the tiles' gradients summed in tile order (rows of pg in turn, so the reads are contiguous) */
  double *sum = opl_arena_calloc(c, (size_t)s->np * sizeof(double));
  if (!sum) return;
  for (int64_t t = 0; t < T; t++) {
    const opl_real *row = pg + t * s->np;
    for (int64_t j = 0; j < s->np; j++) sum[j] += (double)row[j];
  }
  for (int l = 0; l <= s->L; l++) {
    opl_real *gw = opl_grad_of(c, s->w[l]), *gb = s->b[l] ? opl_grad_of(c, s->b[l]) : NULL;
    int64_t nw = s->dim[l] * s->dim[l + 1];
    for (int64_t j = 0; gw && j < nw; j++) gw[j] += (opl_real)sum[s->woff[l] + j];
    for (int64_t j = 0; gb && j < s->dim[l + 1]; j++) gb[j] += (opl_real)sum[s->boff[l] + j];
  }
}

opl_tensor *opl_jet_mlp(opl_ctx *c, opl_tensor *x, int L, opl_tensor *const *w, opl_tensor *const *b,
                        opl_jet_spec s) {
  const char *op = "jet_mlp";
  if (opl_ctx_status(c)) return NULL;
  if (!spec_ok(c, op, s) || !jet_shape_ok(c, op, "x", x, s)) return NULL;
  if (L < 0 || L > OPL_JET_MLP_MAX || !w) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: %d hidden layers, expected 0..%d", op, L, OPL_JET_MLP_MAX);
    return NULL;
  }
  char b1[96];
  int64_t K = x->shape[0], N = x->shape[1], dim[OPL_JET_MLP_MAX + 2];
  dim[0] = x->shape[2];
  for (int l = 0; l <= L; l++) {
    if (!opl_check_input(c, op, "w", w[l], 2, 0) || (b && b[l] && !opl_check_input(c, op, "b", b[l], 1, 0)))
      return NULL;
    dim[l + 1] = w[l]->shape[0];
    if (w[l]->shape[1] != dim[l] || (b && b[l] && b[l]->shape[0] != dim[l + 1])) {
      opl_ctx_error(c, OPL_ERR_SHAPE, "%s: layer %d: input (K, N, %lld) does not match w %s (Out, In)%s", op, l,
                    (long long)dim[l], opl_shape_str(b1, w[l]->rank, w[l]->shape),
                    b && b[l] && b[l]->shape[0] != dim[l + 1] ? " and its bias" : "");
      return NULL;
    }
  }
  int64_t Dm = 1;
  for (int l = 0; l <= L + 1; l++) Dm = dim[l] > Dm ? dim[l] : Dm;
  if (K * N > INT_MAX || Dm > INT_MAX) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: x %s too large for BLAS", op, opl_shape_str(b1, x->rank, x->shape));
    return NULL;
  }
  mlp_saved *sv = opl_arena_alloc(c, sizeof *sv);
  opl_tensor **list = opl_arena_alloc(c, (size_t)(2 * L + 3) * sizeof *list);
  if (!sv || !list) return NULL;
  memset(sv, 0, sizeof *sv);
  sv->L = L, sv->nx = s.nx, sv->nt = s.nt, sv->K = K, sv->N = N;
  sv->P = mlp_tile_points(K, Dm);
  if (sv->P > N) sv->P = N > 0 ? N : 1;
  sv->T = (N + sv->P - 1) / sv->P;
  int64_t hn = 0;
  for (int l = 0; l <= L + 1; l++) sv->dim[l] = dim[l];
  for (int l = 0; l <= L; l++) {
    sv->woff[l] = sv->np, sv->np += dim[l] * dim[l + 1];
    sv->boff[l] = sv->np, sv->np += dim[l + 1];
    if (l < L) sv->hoff[l] = hn, hn += (K + 1) * N * dim[l + 1];
  }
  list[0] = x;
  for (int l = 0; l <= L; l++) list[1 + l] = w[l], list[2 + L + l] = b ? b[l] : NULL;
  sv->w = list + 1, sv->b = list + 2 + L;
  sv->hs = opl_arena_alloc(c, (size_t)(hn > 0 ? hn : 1) * sizeof(opl_real));
  opl_tensor *u = opl_new(c, OPL_DIMS(K, N, dim[L + 1]));
  int nth = opl_get_num_threads();
  int64_t per = K * sv->P * (dim[0] + 2 * Dm + dim[L + 1]); /* xa, a0, a1, uo */
  opl_real *scr = opl_arena_alloc(c, (size_t)(nth * per) * sizeof(opl_real));
  if (!sv->hs || !u || !scr) return NULL;
  const opl_real *xd = x->data;
  opl_real *ud = u->data;
  const int lvl = par_level();
#define FW_TILE(t)                                                                                                 \
  {                                                                                                                \
    opl_real *m = scr + (int64_t)thread_id(lvl) * per, *xa = m, *a0 = xa + K * sv->P * dim[0], *a1 = a0 + K * sv->P * Dm, \
             *uo = a1 + K * sv->P * Dm;                                                                            \
    mlp_fw_tile(sv, t, xd, ud, xa, a0, a1, uo);                                                                    \
  }
  OPL_PFOR(t, sv->T, K * N * Dm * 8 * L, FW_TILE(t));
#undef FW_TILE
  /* the node lists x and up to 5 parameters that require a gradient; backward reads the full list */
  opl_tensor *in[OPL_MAX_INPUTS] = {x};
  int nin = 1;
  for (int i = 1; i < 2 * L + 3 && nin < OPL_MAX_INPUTS; i++)
    if (list[i] && opl_requires_grad(list[i])) in[nin++] = list[i];
  opl_node *nd = opl_record(c, op, jet_mlp_bw, u, nin, in);
  if (nd) nd->saved = sv, nd->more = list, nd->nmore = 2 * L + 3;
  return u;
}

/* ------------------------------------------------------------ jet_mul */

static const double binom[5][5] = {{1, 0, 0, 0, 0}, {1, 1, 0, 0, 0}, {1, 2, 1, 0, 0}, {1, 3, 3, 1, 0}, {1, 4, 6, 4, 1}};

/* Forward: a, b, y [K, n]. */
static void jet_mul_forward(int nx, int nt, int64_t n, const opl_real *a, const opl_real *b, opl_real *y) {
  OPL_PFOR(i, n, n * (1 + nx) * (2 + nx), {
    for (int k = 0; k <= nx; k++) {
      double acc = 0;
      for (int j = 0; j <= k; j++) acc += binom[k][j] * (double)a[j * n + i] * (double)b[(k - j) * n + i];
      y[k * n + i] = (opl_real)acc;
    }
    if (nt) {
      int64_t t = (int64_t)(nx + 1) * n + i;
      y[t] = (opl_real)((double)a[t] * (double)b[i] + (double)a[i] * (double)b[t]);
    }
  });
}

/* Backward: gy [K, n]; ga += d/da, gb += d/db (either NULL). */
static void jet_mul_backward(int nx, int nt, int64_t n, const opl_real *a, const opl_real *b, const opl_real *gy,
                             opl_real *ga, opl_real *gb) {
  OPL_PFOR(i, n, n * (1 + nx) * (2 + nx), {
    double da[6] = {0, 0, 0, 0, 0, 0}, db[6] = {0, 0, 0, 0, 0, 0};
    for (int k = 0; k <= nx; k++) {
      double g = (double)gy[k * n + i];
      for (int j = 0; j <= k; j++) {
        da[j] += g * binom[k][j] * (double)b[(k - j) * n + i];
        db[k - j] += g * binom[k][j] * (double)a[j * n + i];
      }
    }
    if (nt) {
      int64_t t = (int64_t)(nx + 1) * n + i;
      double g = (double)gy[t];
      da[5] += g * (double)b[i];
      da[0] += g * (double)b[t];
      db[5] += g * (double)a[i];
      db[0] += g * (double)a[t];
    }
    for (int k = 0; k <= nx; k++) {
      if (ga) ga[k * n + i] += (opl_real)da[k];
      if (gb) gb[k * n + i] += (opl_real)db[k];
    }
    if (nt) {
      int64_t t = (int64_t)(nx + 1) * n + i;
      if (ga) ga[t] += (opl_real)da[5];
      if (gb) gb[t] += (opl_real)db[5];
    }
  });
}

static void jet_mul_bw(opl_node *nd) {
  int nx = (int)nd->iarg[0], nt = (int)nd->iarg[1];
  int64_t n = nd->iarg[2];
  opl_real *ga = opl_node_grad(nd, 0), *gb = opl_node_grad(nd, 1);
  if (opl_ctx_status(nd->ctx)) return;
  jet_mul_backward(nx, nt, n, nd->in[0]->data, nd->in[1]->data, nd->out->grad, ga, gb);
}

opl_tensor *opl_jet_mul(opl_ctx *c, opl_tensor *a, opl_tensor *b, opl_jet_spec s) {
  const char *op = "jet_mul";
  if (opl_ctx_status(c)) return NULL;
  if (!spec_ok(c, op, s) || !jet_shape_ok(c, op, "a", a, s) || !jet_shape_ok(c, op, "b", b, s)) return NULL;
  if (!opl_shape_eq(a->rank, a->shape, b->rank, b->shape)) {
    char b1[96], b2[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "jet_mul: a %s and b %s differ", opl_shape_str(b1, a->rank, a->shape),
                  opl_shape_str(b2, b->rank, b->shape));
    return NULL;
  }
  int64_t n = a->shape[1] * a->shape[2];
  opl_tensor *y = opl_new_like(c, a);
  if (!y) return NULL;
  jet_mul_forward(s.nx, s.nt, n, a->data, b->data, y->data);
  opl_tensor *in[2] = {a, b};
  opl_node *nd = opl_record(c, op, jet_mul_bw, y, 2, in);
  if (nd) nd->iarg[0] = s.nx, nd->iarg[1] = s.nt, nd->iarg[2] = n;
  return y;
}
