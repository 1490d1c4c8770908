/* opl — resampling ops: average pooling and interpolation (nearest, (bi/tri)linear, cubic).
 *
 * Both work on x (N, C, *S) with d = rank - 2 spatial axes, d in {1, 2, 3}. Internally the
 * spatial part is padded to three axes (missing axes have extent 1) and N*C is one batch
 * axis B, so one kernel serves 1-D, 2-D and 3-D. Both ops are linear in x; their backward
 * kernels scatter-add, so they parallelize over B only.
 *
 * Semantics follow PyTorch (F.avg_pool{1,2,3}d without padding, ceil_mode = False; and
 * F.interpolate with mode 'nearest' / 'linear' / 'bilinear' / 'trilinear' / 'bicubic',
 * align_corners = False, output size given).
 *
 * Errors: a NULL or non-positive kernel / size, an unknown mode: OPL_ERR_ARG. A rank outside
 * 3..5 or a kernel larger than the input: OPL_ERR_SHAPE. Messages name the shapes. */
#include <stdio.h>
#include <tgmath.h>
#include "core/ops.h"
#include "core/internal.h"

/* Spatial geometry padded to 3 axes: x [B, n0, n1, n2] -> y [B, m0, m1, m2]. */
typedef struct geo3 {
  int64_t B;
  int64_t n[3];
  int64_t m[3];
} geo3;

/* Fill B and n[] from x (rank 3..5), m[] = n[]. */
static void geo3_from(const opl_tensor *x, geo3 *g) {
  int d = x->rank - 2;
  g->B = x->shape[0] * x->shape[1];
  for (int i = 0; i < 3; i++) g->n[i] = g->m[i] = i < d ? x->shape[2 + i] : 1;
}

/* Output tensor (N, C, m[0..d)) for x. */
static opl_tensor *geo3_new_out(opl_ctx *c, const opl_tensor *x, const geo3 *g) {
  int64_t shape[OPL_MAX_RANK] = {x->shape[0], x->shape[1], g->m[0], g->m[1], g->m[2]};
  return opl_new(c, x->rank, shape);
}

/* ------------------------------------------------------------ avgpool */

typedef struct pool_geo {
  geo3 g;
  int64_t k[3];   /* kernel (1 on padded axes) */
  int64_t s[3];   /* stride (1 on padded axes) */
} pool_geo;

/* 1 for the 2-D 2 x 2 window moved by 2 (the U-Nets' pooling), which the kernels below run
 * without the general loops. */
static int pool_2x2(const pool_geo *p) {
  return p->k[0] == 2 && p->k[1] == 2 && p->s[0] == 2 && p->s[1] == 2 && p->g.n[2] == 1 && p->k[2] == 1;
}

/* Forward: x [B, n0, n1, n2] -> y [B, m0, m1, m2], y = mean of the k0 x k1 x k2 window
 * starting at (i0 s0, i1 s1, i2 s2). */
static void avgpool_forward(const pool_geo *p, const opl_real *x, opl_real *y) {
  const int64_t *n = p->g.n, *m = p->g.m, *k = p->k, *s = p->s;
  int64_t nin = n[0] * n[1] * n[2], nout = m[0] * m[1] * m[2];
  double inv = 1.0 / (double)(k[0] * k[1] * k[2]);
#pragma omp parallel for if (p->g.B * nout * k[0] * k[1] * k[2] > OPL_PAR_MIN && p->g.B > 1) \
    schedule(static)
  for (int64_t b = 0; b < p->g.B; b++) {
    const opl_real *xb = x + b * nin;
    opl_real *yb = y + b * nout;
    if (pool_2x2(p)) { /* the same sums in the same order, written out */
      for (int64_t i0 = 0; i0 < m[0]; i0++) {
        const opl_real *restrict r0 = xb + 2 * i0 * n[1], *restrict r1 = r0 + n[1];
        opl_real *restrict yr = yb + i0 * m[1];
        for (int64_t i1 = 0; i1 < m[1]; i1++)
          yr[i1] = (opl_real)(((((double)r0[2 * i1] + r0[2 * i1 + 1]) + r1[2 * i1]) + r1[2 * i1 + 1]) * inv);
      }
      continue;
    }
    for (int64_t i0 = 0; i0 < m[0]; i0++)
      for (int64_t i1 = 0; i1 < m[1]; i1++)
        for (int64_t i2 = 0; i2 < m[2]; i2++) {
          double acc = 0;
          for (int64_t a = 0; a < k[0]; a++)
            for (int64_t bb = 0; bb < k[1]; bb++) {
              const opl_real *row = xb + ((i0 * s[0] + a) * n[1] + i1 * s[1] + bb) * n[2] + i2 * s[2];
              for (int64_t cc = 0; cc < k[2]; cc++) acc += row[cc];
            }
          yb[(i0 * m[1] + i1) * m[2] + i2] = (opl_real)(acc * inv);
        }
  }
}

/* Backward: gy [B, m0, m1, m2] -> gx [B, n0, n1, n2] accumulated: each output gradient is
 * spread evenly over its window (windows may overlap when stride < kernel). */
static void avgpool_backward(const pool_geo *p, const opl_real *gy, opl_real *gx) {
  const int64_t *n = p->g.n, *m = p->g.m, *k = p->k, *s = p->s;
  int64_t nin = n[0] * n[1] * n[2], nout = m[0] * m[1] * m[2];
  opl_real inv = (opl_real)(1.0 / (double)(k[0] * k[1] * k[2]));
#pragma omp parallel for if (p->g.B * nout * k[0] * k[1] * k[2] > OPL_PAR_MIN && p->g.B > 1) \
    schedule(static)
  for (int64_t b = 0; b < p->g.B; b++) {
    opl_real *xb = gx + b * nin;
    const opl_real *yb = gy + b * nout;
    if (pool_2x2(p)) {
      for (int64_t i0 = 0; i0 < m[0]; i0++) {
        opl_real *restrict r0 = xb + 2 * i0 * n[1], *restrict r1 = r0 + n[1];
        const opl_real *restrict yr = yb + i0 * m[1];
        for (int64_t i1 = 0; i1 < m[1]; i1++) {
          const opl_real g = yr[i1] * inv;
          r0[2 * i1] += g, r0[2 * i1 + 1] += g, r1[2 * i1] += g, r1[2 * i1 + 1] += g;
        }
      }
      continue;
    }
    for (int64_t i0 = 0; i0 < m[0]; i0++)
      for (int64_t i1 = 0; i1 < m[1]; i1++)
        for (int64_t i2 = 0; i2 < m[2]; i2++) {
          opl_real g = yb[(i0 * m[1] + i1) * m[2] + i2] * inv;
          for (int64_t a = 0; a < k[0]; a++)
            for (int64_t bb = 0; bb < k[1]; bb++) {
              opl_real *row = xb + ((i0 * s[0] + a) * n[1] + i1 * s[1] + bb) * n[2] + i2 * s[2];
              for (int64_t cc = 0; cc < k[2]; cc++) row[cc] += g;
            }
        }
  }
}

static void avgpool_bw(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  if (gx) avgpool_backward(nd->saved, nd->out->grad, gx);
}

/* Average pooling of x (N, C, *S), d = rank - 2 in {1, 2, 3}, over windows kernel[0..d)
 * moved by stride[0..d) (stride NULL or stride[i] == 0: stride = kernel), no padding:
 * S'_i = floor((S_i - kernel_i) / stride_i) + 1, requiring kernel_i <= S_i. */
opl_tensor *opl_avgpool(opl_ctx *c, opl_tensor *x, const int *kernel, const int *stride) {
  if (!opl_check_input(c, "avgpool", "x", x, -1, 0)) return NULL;
  char b[96];
  if (x->rank < 3) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "avgpool: x %s must be (N, C, X[, Y[, Z]])",
                  opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  int d = x->rank - 2;
  if (!kernel) {
    opl_ctx_error(c, OPL_ERR_ARG, "avgpool: kernel is NULL");
    return NULL;
  }
  pool_geo p;
  geo3_from(x, &p.g);
  for (int i = 0; i < 3; i++) p.k[i] = 1, p.s[i] = 1;
  for (int i = 0; i < d; i++) {
    int64_t k = kernel[i], s = stride && stride[i] ? stride[i] : k;
    if (k < 1 || s < 1) {
      opl_ctx_error(c, OPL_ERR_ARG, "avgpool: kernel %lld and stride %lld on spatial axis %d must be >= 1",
                    (long long)k, (long long)s, i);
      return NULL;
    }
    if (k > p.g.n[i]) {
      opl_ctx_error(c, OPL_ERR_SHAPE, "avgpool: kernel %lld exceeds extent %lld of spatial axis %d of x %s",
                    (long long)k, (long long)p.g.n[i], i, opl_shape_str(b, x->rank, x->shape));
      return NULL;
    }
    p.k[i] = k;
    p.s[i] = s;
    p.g.m[i] = (p.g.n[i] - k) / s + 1;
  }
  opl_tensor *y = geo3_new_out(c, x, &p.g);
  if (!y) return NULL;
  avgpool_forward(&p, x->data, y->data);
  /* linear: the backward reads only the geometry, so x and y can be released */
  opl_node *nd = opl_record_saves(c, "avgpool", avgpool_bw, y, 1, &x, 0);
  if (nd) {
    pool_geo *sp = opl_arena_alloc(c, sizeof *sp);
    if (!sp) return NULL;
    *sp = p;
    nd->saved = sp;
  }
  return y;
}

/* ------------------------------------------------------------ interp */

/* Separable interpolation weights: on axis i, output index j reads input idx[i][t][j] with
 * weight w[i][t][j] for t < taps[i] (1 for nearest or a padded axis, 2 for linear, 4 for
 * cubic). */
#define INTERP_TAPS 4
typedef struct interp_plan {
  geo3 g;
  int taps[3];
  int64_t *idx[3][INTERP_TAPS];   /* [m[i]] */
  opl_real *w[3][INTERP_TAPS];    /* [m[i]] */
  int x2;                         /* 1: axis 1 is the 4-tap doubling of row2x_check */
} interp_plan;

/* 1 when axis 1 of p (2-D: the last axis) doubles its extent with 4 taps whose weights repeat
 * with period 2 and whose taps are consecutive clamped indices: output 2i reads i - 2 .. i + 1,
 * output 2i + 1 reads i - 1 .. i + 2 (bicubic x2, align_corners = False). The kernels then read
 * a row padded by 2 clamped values on each side instead of gathering through idx. */
static int row2x_check(const interp_plan *p) {
  const int64_t n = p->g.n[1], m = p->g.m[1];
  if (p->taps[1] != 4 || m != 2 * n || p->g.n[2] != 1 || p->g.m[2] != 1) return 0;
  for (int64_t j = 0; j < m; j++)
    for (int t = 0; t < 4; t++) {
      int64_t i = j / 2 - 2 + (j & 1) + t;
      i = i < 0 ? 0 : (i > n - 1 ? n - 1 : i);
      if (p->idx[1][t][j] != i || p->w[1][t][j] != p->w[1][t][j & 1]) return 0;
    }
  return 1;
}

/* Entry k of the adjoint of the doubling row (interp_backward) near the ends, where some of its
 * eight terms fall outside gy's row [2 n]: the terms in range, in the order of the interior. */
static inline opl_real row2x_t_edge(const opl_real *y, int64_t n, int64_t k, opl_real e0, opl_real e1, opl_real e2,
                                    opl_real e3, opl_real o0, opl_real o1, opl_real o2, opl_real o3) {
  opl_real acc = 0;
  if (k < n) acc += e0 * y[2 * k];
  if (k >= 1 && k - 1 < n) acc += e1 * y[2 * k - 2] + o0 * y[2 * k - 1];
  if (k >= 2 && k - 2 < n) acc += e2 * y[2 * k - 4] + o1 * y[2 * k - 3];
  if (k >= 3 && k - 3 < n) acc += e3 * y[2 * k - 6] + o2 * y[2 * k - 5];
  if (k >= 4) acc += o3 * y[2 * k - 7];
  return acc;
}

/* The row A [n] padded by 2 clamped values on each side: ap [n + 4], ap[k + 2] = A[clamp(k)]. */
static void row_pad2(const opl_real *A, int64_t n, opl_real *ap) {
  ap[0] = ap[1] = A[0];
  for (int64_t i = 0; i < n; i++) ap[i + 2] = A[i];
  ap[n + 2] = ap[n + 3] = A[n - 1];
}

/* Keys' cubic convolution kernel with a = -0.75 (R. Keys, "Cubic convolution interpolation
 * for digital image processing", IEEE Trans. ASSP 29(6), 1981; PyTorch's
 * cubic_convolution1 / cubic_convolution2 in aten/src/ATen/native/UpSample.h):
 * |s| <= 1: ((a + 2) |s| - (a + 3)) s^2 + 1;  1 < |s| < 2: ((a |s| - 5a) |s| + 8a) |s| - 4a. */
#define CUBIC_A (-0.75)
static double cubic1(double s) { return ((CUBIC_A + 2) * s - (CUBIC_A + 3)) * s * s + 1; }
static double cubic2(double s) { return ((CUBIC_A * s - 5 * CUBIC_A) * s + 8 * CUBIC_A) * s - 4 * CUBIC_A; }

/* Weights of one axis, in -> out samples, into idx[0..4)[out], w[0..4)[out].
 * Nearest (PyTorch 'nearest'): src = floor(j in / out), computed exactly in integers.
 * Linear, align_corners = False (PyTorch upsample_linear1d/bilinear2d/trilinear3d):
 * src = max((j + 0.5) in / out - 0.5, 0), i0 = floor(src), i1 = min(i0 + 1, in - 1),
 * weights 1 - (src - i0) and src - i0.
 * Cubic, align_corners = False (PyTorch upsample_bicubic2d: area_pixel_compute_source_index
 * with cubic = true, then guard_index_and_lambda): src = (j + 0.5) in / out - 0.5, NOT
 * clamped at 0; i0 = min(floor(src), in - 1), t = clamp(src - i0, 0, 1); taps at
 * i0 - 1 .. i0 + 2, each index clamped into [0, in - 1] (the border value is repeated), with
 * weights cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t).
 * Returns the number of taps needed (1, 2 or 4). */
static int interp_axis(int64_t in, int64_t out, opl_interp_mode mode, int64_t *const *idx, opl_real *const *w) {
  int taps = 1;
  for (int64_t j = 0; j < out; j++) {
    for (int t = 0; t < INTERP_TAPS; t++) idx[t][j] = 0, w[t][j] = 0;
    if (mode == OPL_INTERP_NEAREST) {
      int64_t src = j * in / out;
      idx[0][j] = src < in - 1 ? src : in - 1;
      w[0][j] = 1;
      continue;
    }
    double src = ((double)j + 0.5) * (double)in / (double)out - 0.5;
    if (mode == OPL_INTERP_CUBIC) {
      int64_t i0 = (int64_t)floor(src);
      if (i0 > in - 1) i0 = in - 1;
      double t = src - (double)i0;
      t = t < 0 ? 0 : (t > 1 ? 1 : t);
      double wt[4] = {cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)};
      for (int k = 0; k < 4; k++) {
        int64_t i = i0 - 1 + k;
        idx[k][j] = i < 0 ? 0 : (i > in - 1 ? in - 1 : i);
        w[k][j] = (opl_real)wt[k];
      }
      taps = 4;
      continue;
    }
    if (src < 0) src = 0;
    int64_t i0 = (int64_t)src;
    if (i0 > in - 1) i0 = in - 1;
    double l1 = src - (double)i0;
    idx[0][j] = i0;
    idx[1][j] = i0 < in - 1 ? i0 + 1 : i0;
    w[0][j] = (opl_real)(1.0 - l1);
    w[1][j] = (opl_real)l1;
    if (w[1][j] != 0 && taps < 2) taps = 2;
  }
  return taps;
}

/* Largest (n1 n2) plane the separable kernels below keep on the stack; larger inputs take the
 * direct kernels. */
#define INTERP_PLANE_MAX 4096

/* Forward: x [B, n0, n1, n2] -> y [B, m0, m1, m2],
 * y[b, j0, j1, j2] = sum over taps of w0[j0] w1[j1] w2[j2] x[b, idx0[j0], idx1[j1], idx2[j2]].
 * Separable: for each (b, j0) the axis-0 taps are applied once to the whole (n1, n2) plane,
 * A = sum_t0 w0 x[b, idx0], then y[b, j0] from A by the axis-1 and axis-2 taps: taps0 n1 n2 / (m1
 * m2) + taps1 taps2 products per output instead of taps0 taps1 taps2 (bicubic x2 in 2-D: 6, not
 * 16). A plane larger than INTERP_PLANE_MAX takes the direct sum. */
static void interp_forward(const interp_plan *p, const opl_real *x, opl_real *y) {
  const int64_t *n = p->g.n, *m = p->g.m;
  int64_t nin = n[0] * n[1] * n[2], nout = m[0] * m[1] * m[2], plane = n[1] * n[2];
  int work = p->taps[0] * p->taps[1] * p->taps[2];
  /* axis 2 a placeholder: extent 1 in and out, one tap of weight 1 */
  const int flat2 = n[2] == 1 && m[2] == 1 && p->taps[2] == 1 && p->idx[2][0][0] == 0 && p->w[2][0][0] == 1;
#pragma omp parallel for if (p->g.B * nout * work > OPL_PAR_MIN && p->g.B > 1) schedule(static)
  for (int64_t b = 0; b < p->g.B; b++) {
    const opl_real *xb = x + b * nin;
    opl_real *yb = y + b * nout;
    if (plane <= INTERP_PLANE_MAX) {
      opl_real A[INTERP_PLANE_MAX];
      for (int64_t j0 = 0; j0 < m[0]; j0++) {
        if (p->taps[0] == 4) { /* the same sums as the loop below, in one pass */
          const opl_real *restrict r0 = xb + p->idx[0][0][j0] * plane, *restrict r1 = xb + p->idx[0][1][j0] * plane,
                                   *restrict r2 = xb + p->idx[0][2][j0] * plane, *restrict r3 = xb + p->idx[0][3][j0] * plane;
          const opl_real a0 = p->w[0][0][j0], a1 = p->w[0][1][j0], a2 = p->w[0][2][j0], a3 = p->w[0][3][j0];
          for (int64_t i = 0; i < plane; i++) A[i] = a0 * r0[i] + a1 * r1[i] + a2 * r2[i] + a3 * r3[i];
        } else {
          for (int64_t i = 0; i < plane; i++) A[i] = 0;
          for (int t0 = 0; t0 < p->taps[0]; t0++) {
            const opl_real w0 = p->w[0][t0][j0], *xr = xb + p->idx[0][t0][j0] * plane;
            for (int64_t i = 0; i < plane; i++) A[i] += w0 * xr[i];
          }
        }
        if (flat2 && p->x2) { /* the same products and sums as below, without the gathers */
          opl_real *restrict yr = yb + j0 * m[1], ap[INTERP_PLANE_MAX + 4];
          const opl_real e0 = p->w[1][0][0], e1 = p->w[1][1][0], e2 = p->w[1][2][0], e3 = p->w[1][3][0];
          const opl_real o0 = p->w[1][0][1], o1 = p->w[1][1][1], o2 = p->w[1][2][1], o3 = p->w[1][3][1];
          row_pad2(A, n[1], ap);
          for (int64_t i = 0; i < n[1]; i++) {
            yr[2 * i] = e0 * ap[i] + e1 * ap[i + 1] + e2 * ap[i + 2] + e3 * ap[i + 3];
            yr[2 * i + 1] = o0 * ap[i + 1] + o1 * ap[i + 2] + o2 * ap[i + 3] + o3 * ap[i + 4];
          }
          continue;
        }
        if (flat2) { /* 2-D: axis 2 is a placeholder (one tap of weight 1 at index 0) */
          opl_real *yr = yb + j0 * m[1];
          for (int64_t j1 = 0; j1 < m[1]; j1++) {
            opl_real acc = 0;
            for (int t1 = 0; t1 < p->taps[1]; t1++) acc += p->w[1][t1][j1] * A[p->idx[1][t1][j1]];
            yr[j1] = acc;
          }
          continue;
        }
        for (int64_t j1 = 0; j1 < m[1]; j1++) {
          opl_real *yr = yb + (j0 * m[1] + j1) * m[2];
          for (int64_t j2 = 0; j2 < m[2]; j2++) {
            opl_real acc = 0;
            for (int t1 = 0; t1 < p->taps[1]; t1++) {
              const opl_real *ar = A + p->idx[1][t1][j1] * n[2];
              opl_real a2 = 0;
              for (int t2 = 0; t2 < p->taps[2]; t2++) a2 += p->w[2][t2][j2] * ar[p->idx[2][t2][j2]];
              acc += p->w[1][t1][j1] * a2;
            }
            yr[j2] = acc;
          }
        }
      }
      continue;
    }
    for (int64_t j0 = 0; j0 < m[0]; j0++)
      for (int64_t j1 = 0; j1 < m[1]; j1++) {
        opl_real *yr = yb + (j0 * m[1] + j1) * m[2];
        for (int64_t j2 = 0; j2 < m[2]; j2++) {
          opl_real acc = 0;
          for (int t0 = 0; t0 < p->taps[0]; t0++)
            for (int t1 = 0; t1 < p->taps[1]; t1++) {
              opl_real w01 = p->w[0][t0][j0] * p->w[1][t1][j1];
              const opl_real *xr = xb + (p->idx[0][t0][j0] * n[1] + p->idx[1][t1][j1]) * n[2];
              for (int t2 = 0; t2 < p->taps[2]; t2++)
                acc += w01 * p->w[2][t2][j2] * xr[p->idx[2][t2][j2]];
            }
          yr[j2] = acc;
        }
      }
  }
}

/* Backward: gy [B, m0, m1, m2] -> gx [B, n0, n1, n2] accumulated with the same weights
 * (the transpose of the forward map), separable like the forward: for each (b, j0) the
 * axis-1 / axis-2 taps scatter gy[b, j0] into a (n1, n2) plane A, which the axis-0 taps then
 * add to the rows idx0[j0] of gx. */
static void interp_backward(const interp_plan *p, const opl_real *gy, opl_real *gx) {
  const int64_t *n = p->g.n, *m = p->g.m;
  int64_t nin = n[0] * n[1] * n[2], nout = m[0] * m[1] * m[2], plane = n[1] * n[2];
  int work = p->taps[0] * p->taps[1] * p->taps[2];
  /* axis 2 a placeholder: extent 1 in and out, one tap of weight 1 */
  const int flat2 = n[2] == 1 && m[2] == 1 && p->taps[2] == 1 && p->idx[2][0][0] == 0 && p->w[2][0][0] == 1;
#pragma omp parallel for if (p->g.B * nout * work > OPL_PAR_MIN && p->g.B > 1) schedule(static)
  for (int64_t b = 0; b < p->g.B; b++) {
    opl_real *xb = gx + b * nin;
    const opl_real *yb = gy + b * nout;
    if (plane <= INTERP_PLANE_MAX) {
      opl_real A[INTERP_PLANE_MAX];
      for (int64_t j0 = 0; j0 < m[0]; j0++) {
        for (int64_t i = 0; i < plane; i++) A[i] = 0;
        if (flat2 && p->x2) { /* scatter into the padded row, then fold its 4 border values */
          const opl_real *restrict yr = yb + j0 * m[1];
          const opl_real e0 = p->w[1][0][0], e1 = p->w[1][1][0], e2 = p->w[1][2][0], e3 = p->w[1][3][0];
          const opl_real o0 = p->w[1][0][1], o1 = p->w[1][1][1], o2 = p->w[1][2][1], o3 = p->w[1][3][1];
          const int64_t n1 = n[1];
          opl_real ap[INTERP_PLANE_MAX + 4];
          /* ap[k] for k = i .. i + 4 collects from outputs 2i (k = i .. i + 3) and 2i + 1 (i + 1 .. i + 4);
           * as a gather over k: ap[k] = e0 y[2k] + e1 y[2k - 2] + e2 y[2k - 4] + e3 y[2k - 6]
           *                        + o0 y[2k - 1] + o1 y[2k - 3] + o2 y[2k - 5] + o3 y[2k - 7] */
          int64_t k = 0;
          for (; k < 4; k++) ap[k] = row2x_t_edge(yr, n1, k, e0, e1, e2, e3, o0, o1, o2, o3);
          for (; k < n1; k++) /* the interior, where every term is in range */
            ap[k] = e0 * yr[2 * k] + e1 * yr[2 * k - 2] + o0 * yr[2 * k - 1] + e2 * yr[2 * k - 4] +
                    o1 * yr[2 * k - 3] + e3 * yr[2 * k - 6] + o2 * yr[2 * k - 5] + o3 * yr[2 * k - 7];
          for (; k < n1 + 4; k++) ap[k] = row2x_t_edge(yr, n1, k, e0, e1, e2, e3, o0, o1, o2, o3);
          A[0] += ap[0] + ap[1];
          for (int64_t i = 0; i < n1; i++) A[i] += ap[i + 2];
          A[n1 - 1] += ap[n1 + 2] + ap[n1 + 3];
        } else if (flat2) { /* 2-D: axis 2 is a placeholder (one tap of weight 1 at index 0) */
          const opl_real *yr = yb + j0 * m[1];
          for (int64_t j1 = 0; j1 < m[1]; j1++)
            for (int t1 = 0; t1 < p->taps[1]; t1++) A[p->idx[1][t1][j1]] += p->w[1][t1][j1] * yr[j1];
        }
        for (int64_t j1 = 0; !flat2 && j1 < m[1]; j1++) {
          const opl_real *yr = yb + (j0 * m[1] + j1) * m[2];
          for (int t1 = 0; t1 < p->taps[1]; t1++) {
            opl_real *ar = A + p->idx[1][t1][j1] * n[2];
            const opl_real w1 = p->w[1][t1][j1];
            for (int t2 = 0; t2 < p->taps[2]; t2++)
              for (int64_t j2 = 0; j2 < m[2]; j2++) ar[p->idx[2][t2][j2]] += w1 * p->w[2][t2][j2] * yr[j2];
          }
        }
        for (int t0 = 0; t0 < p->taps[0]; t0++) {
          const opl_real w0 = p->w[0][t0][j0];
          opl_real *xr = xb + p->idx[0][t0][j0] * plane;
          for (int64_t i = 0; i < plane; i++) xr[i] += w0 * A[i];
        }
      }
      continue;
    }
    for (int64_t j0 = 0; j0 < m[0]; j0++)
      for (int64_t j1 = 0; j1 < m[1]; j1++) {
        const opl_real *yr = yb + (j0 * m[1] + j1) * m[2];
        for (int t0 = 0; t0 < p->taps[0]; t0++)
          for (int t1 = 0; t1 < p->taps[1]; t1++) {
            opl_real w01 = p->w[0][t0][j0] * p->w[1][t1][j1];
            opl_real *xr = xb + (p->idx[0][t0][j0] * n[1] + p->idx[1][t1][j1]) * n[2];
            for (int t2 = 0; t2 < p->taps[2]; t2++)
              for (int64_t j2 = 0; j2 < m[2]; j2++)
                xr[p->idx[2][t2][j2]] += w01 * p->w[2][t2][j2] * yr[j2];
          }
      }
  }
}

static void interp_bw(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  if (gx) interp_backward(nd->saved, nd->out->grad, gx);
}

/* Resize the trailing d = rank - 2 axes of x (N, C, *S), d in {1, 2, 3}, to size[0..d)
 * (each >= 1) like PyTorch F.interpolate(size=...) with mode 'nearest', for
 * OPL_INTERP_LINEAR 'linear' / 'bilinear' / 'trilinear', and for OPL_INTERP_CUBIC 'bicubic'
 * (Keys' kernel, a = -0.75, borders clamped), all with align_corners = False (separable: the
 * weights of each axis multiply; PyTorch has cubic only in 2-D, here it is the same weights on
 * every axis for d = 1, 2, 3). Down- and up-sampling both allowed (no antialiasing). */
opl_tensor *opl_interp(opl_ctx *c, opl_tensor *x, const int64_t *size, opl_interp_mode mode) {
  if (!opl_check_input(c, "interp", "x", x, -1, 0)) return NULL;
  char b[96];
  if (x->rank < 3) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "interp: x %s must be (N, C, X[, Y[, Z]])",
                  opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  if (mode != OPL_INTERP_NEAREST && mode != OPL_INTERP_LINEAR && mode != OPL_INTERP_CUBIC) {
    opl_ctx_error(c, OPL_ERR_ARG, "interp: unknown mode %d", (int)mode);
    return NULL;
  }
  int d = x->rank - 2;
  if (!size) {
    opl_ctx_error(c, OPL_ERR_ARG, "interp: size is NULL");
    return NULL;
  }
  interp_plan *p = opl_arena_alloc(c, sizeof *p);
  if (!p) return NULL;
  geo3_from(x, &p->g);
  for (int i = 0; i < d; i++) {
    if (size[i] < 1) {
      opl_ctx_error(c, OPL_ERR_ARG, "interp: size %lld for spatial axis %d of x %s must be >= 1",
                    (long long)size[i], i, opl_shape_str(b, x->rank, x->shape));
      return NULL;
    }
    p->g.m[i] = size[i];
  }
  opl_tensor *y = geo3_new_out(c, x, &p->g); /* checks that the output size is sane */
  if (!y) return NULL;
  for (int i = 0; i < 3; i++) {
    int64_t mi = p->g.m[i];
    p->idx[i][0] = opl_arena_alloc(c, INTERP_TAPS * (size_t)mi * sizeof(int64_t));
    p->w[i][0] = opl_arena_alloc(c, INTERP_TAPS * (size_t)mi * sizeof(opl_real));
    if (!p->idx[i][0] || !p->w[i][0]) return NULL;
    for (int t = 1; t < INTERP_TAPS; t++) {
      p->idx[i][t] = p->idx[i][0] + t * mi;
      p->w[i][t] = p->w[i][0] + t * mi;
    }
    p->taps[i] = interp_axis(p->g.n[i], mi, i < d ? mode : OPL_INTERP_NEAREST, p->idx[i], p->w[i]);
  }
  p->x2 = row2x_check(p);
  interp_forward(p, x->data, y->data);
  static const char *names[] = {"interp nearest", "interp linear", "interp cubic"};
  /* linear: the backward reads only the plan, so x and y can be released */
  opl_node *nd = opl_record_saves(c, names[mode], interp_bw, y, 1, &x, 0);
  if (nd) nd->saved = p;
  return y;
}
