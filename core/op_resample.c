/* opl — resampling ops: average pooling and interpolation (nearest, (bi/tri)linear).
 *
 * Both work on x (N, C, *S) with d = rank - 2 spatial axes, d in {1, 2, 3}. Internally the
 * spatial part is padded to three axes (missing axes have extent 1) and N*C is one batch
 * axis B, so one kernel serves 1-D, 2-D and 3-D. Both ops are linear in x; their backward
 * kernels scatter-add, so they parallelize over B only.
 *
 * Semantics follow PyTorch (F.avg_pool{1,2,3}d without padding, ceil_mode = False; and
 * F.interpolate with mode 'nearest' / 'linear' / 'bilinear' / 'trilinear',
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
  opl_node *nd = opl_record(c, "avgpool", avgpool_bw, y, 1, &x);
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
 * weight w[i][t][j] for t < taps[i] (1 for nearest or a padded axis, 2 for linear). */
typedef struct interp_plan {
  geo3 g;
  int taps[3];
  int64_t *idx[3][2];   /* [m[i]] */
  opl_real *w[3][2];    /* [m[i]] */
} interp_plan;

/* Weights of one axis, in -> out samples.
 * Nearest (PyTorch 'nearest'): src = floor(j in / out), computed exactly in integers.
 * Linear, align_corners = False (PyTorch upsample_linear1d/bilinear2d/trilinear3d):
 * src = max((j + 0.5) in / out - 0.5, 0), i0 = floor(src), i1 = min(i0 + 1, in - 1),
 * weights 1 - (src - i0) and src - i0.
 * idx0, idx1 [out], w0, w1 [out]. Returns the number of taps needed (1 or 2). */
static int interp_axis(int64_t in, int64_t out, opl_interp_mode mode, int64_t *idx0, int64_t *idx1,
                       opl_real *w0, opl_real *w1) {
  int taps = 1;
  for (int64_t j = 0; j < out; j++) {
    if (mode == OPL_INTERP_NEAREST) {
      int64_t src = j * in / out;
      idx0[j] = idx1[j] = src < in - 1 ? src : in - 1;
      w0[j] = 1, w1[j] = 0;
      continue;
    }
    double src = ((double)j + 0.5) * (double)in / (double)out - 0.5;
    if (src < 0) src = 0;
    int64_t i0 = (int64_t)src;
    if (i0 > in - 1) i0 = in - 1;
    double l1 = src - (double)i0;
    idx0[j] = i0;
    idx1[j] = i0 < in - 1 ? i0 + 1 : i0;
    w0[j] = (opl_real)(1.0 - l1);
    w1[j] = (opl_real)l1;
    if (w1[j] != 0) taps = 2;
  }
  return taps;
}

/* Forward: x [B, n0, n1, n2] -> y [B, m0, m1, m2],
 * y[b, j0, j1, j2] = sum over taps of w0[j0] w1[j1] w2[j2] x[b, idx0[j0], idx1[j1], idx2[j2]]. */
static void interp_forward(const interp_plan *p, const opl_real *x, opl_real *y) {
  const int64_t *n = p->g.n, *m = p->g.m;
  int64_t nin = n[0] * n[1] * n[2], nout = m[0] * m[1] * m[2];
  int work = p->taps[0] * p->taps[1] * p->taps[2];
#pragma omp parallel for if (p->g.B * nout * work > OPL_PAR_MIN && p->g.B > 1) schedule(static)
  for (int64_t b = 0; b < p->g.B; b++) {
    const opl_real *xb = x + b * nin;
    opl_real *yb = y + b * nout;
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
 * (the transpose of the forward map). */
static void interp_backward(const interp_plan *p, const opl_real *gy, opl_real *gx) {
  const int64_t *n = p->g.n, *m = p->g.m;
  int64_t nin = n[0] * n[1] * n[2], nout = m[0] * m[1] * m[2];
  int work = p->taps[0] * p->taps[1] * p->taps[2];
#pragma omp parallel for if (p->g.B * nout * work > OPL_PAR_MIN && p->g.B > 1) schedule(static)
  for (int64_t b = 0; b < p->g.B; b++) {
    opl_real *xb = gx + b * nin;
    const opl_real *yb = gy + b * nout;
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
 * (each >= 1) like PyTorch F.interpolate(size=...) with mode 'nearest' or, for
 * OPL_INTERP_LINEAR, 'linear' / 'bilinear' / 'trilinear' with align_corners = False
 * (separable: the weights of each axis multiply). Down- and up-sampling both allowed. */
opl_tensor *opl_interp(opl_ctx *c, opl_tensor *x, const int64_t *size, opl_interp_mode mode) {
  if (!opl_check_input(c, "interp", "x", x, -1, 0)) return NULL;
  char b[96];
  if (x->rank < 3) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "interp: x %s must be (N, C, X[, Y[, Z]])",
                  opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  if (mode != OPL_INTERP_NEAREST && mode != OPL_INTERP_LINEAR) {
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
    p->idx[i][0] = opl_arena_alloc(c, 2 * (size_t)mi * sizeof(int64_t));
    p->w[i][0] = opl_arena_alloc(c, 2 * (size_t)mi * sizeof(opl_real));
    if (!p->idx[i][0] || !p->w[i][0]) return NULL;
    p->idx[i][1] = p->idx[i][0] + mi;
    p->w[i][1] = p->w[i][0] + mi;
    p->taps[i] = interp_axis(p->g.n[i], mi, i < d ? mode : OPL_INTERP_NEAREST, p->idx[i][0],
                             p->idx[i][1], p->w[i][0], p->w[i][1]);
  }
  interp_forward(p, x->data, y->data);
  opl_node *nd = opl_record(c, mode == OPL_INTERP_NEAREST ? "interp nearest" : "interp linear",
                            interp_bw, y, 1, &x);
  if (nd) nd->saved = p;
  return y;
}
