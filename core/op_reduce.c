/* opl — reductions and losses: sum, mean (all elements or one axis), relative Lp loss, MSE.
 *
 * Every sum is accumulated in double whatever opl_real is, so a float32 tensor of a few
 * million elements sums to within a few ulps of the exact value. Each op: a constructor (shape
 * checks, arena output, tape node), a forward kernel and a backward kernel on flat arrays that
 * accumulates into the inputs' gradients. */
#include <tgmath.h>
#include "core/ops.h"
#include "core/internal.h"

/* Elements per block of the blocked reductions: large enough to amortize a thread's setup,
 * small enough that its double accumulator lives on the stack. */
#define RED_BLK 256
#define LOSS_BLK 4096

/* ------------------------------------------------------------ sum / mean of all elements */

/* Deterministic parallel sums. An OpenMP reduction(+) adds the threads' partial sums in the
 * order the threads finish, which with 3 or more threads changes the rounding from run to
 * run. Here the blocks are cut into at most RED_GROUPS groups fixed by n alone, each group's
 * sum goes to its own slot, and the slots are added in order: the same bits on every run and
 * every thread count. */
#define RED_GROUPS 64

/* Group g of ng over nblk blocks: blocks [*b0, *b1). */
static void red_group(int64_t nblk, int64_t ng, int64_t g, int64_t *b0, int64_t *b1) {
  *b0 = nblk * g / ng;
  *b1 = nblk * (g + 1) / ng;
}

/* Returns sum(x) in double, over blocks of LOSS_BLK shared among the threads: x [n]. */
static double sum_all_forward(int64_t n, const opl_real *x) {
  double part[RED_GROUPS];
  int64_t nblk = (n + LOSS_BLK - 1) / LOSS_BLK, ng = nblk < RED_GROUPS ? nblk : RED_GROUPS;
  OPL_PFOR(g, ng, n, {
    int64_t b0, b1;
    red_group(nblk, ng, g, &b0, &b1);
    double s = 0;
    for (int64_t b = b0; b < b1; b++) {
      int64_t i0 = b * LOSS_BLK;
      s += opl_dsum(x + i0, n - i0 < LOSS_BLK ? n - i0 : LOSS_BLK);
    }
    part[g] = s;
  });
  double s = 0;
  for (int64_t g = 0; g < ng; g++) s += part[g];
  return s;
}

/* gx[i] += g (the output gradient, already scaled for a mean): gx [n] accumulated. */
static void sum_all_backward(int64_t n, opl_real g, opl_real *gx) {
#pragma omp parallel for if (n > OPL_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) gx[i] += g;
}

/* Tape node of sum / mean: farg[0] = 1 or 1/n. */
static void sum_all_bw(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  if (gx) sum_all_backward(nd->in[0]->numel, (opl_real)(nd->farg[0] * nd->out->grad[0]), gx);
}

/* Sum (mean = 0) or mean (mean = 1) of all elements of a real tensor x, as a tensor of
 * shape (1). Records one node whose backward adds the (scaled) output gradient to every
 * element of x's gradient. NULL on error (complex or NULL x). */
static opl_tensor *reduce_all(opl_ctx *c, const char *op, opl_tensor *x, int mean) {
  if (!opl_check_input(c, op, "x", x, -1, 0)) return NULL;
  opl_tensor *y = opl_new(c, OPL_DIMS(1));
  if (!y) return NULL;
  double scale = mean ? 1.0 / (double)x->numel : 1.0;
  y->data[0] = (opl_real)(scale * sum_all_forward(x->numel, x->data));
  opl_node *nd = opl_record_saves(c, op, sum_all_bw, y, 1, &x, 0);
  if (nd) nd->farg[0] = scale;
  return y;
}

opl_tensor *opl_sum(opl_ctx *c, opl_tensor *x) { return reduce_all(c, "sum", x, 0); }
opl_tensor *opl_mean(opl_ctx *c, opl_tensor *x) { return reduce_all(c, "mean", x, 1); }

/* ------------------------------------------------------------ sum / mean over one axis */

/* y[o, i] = scale * sum_d x[o, d, i]: x [outer, D, inner], y [outer, inner].
 * Blocks of RED_BLK consecutive i are summed into a double accumulator, so the reads of x stay
 * contiguous whatever the axis; the last axis (inner = 1) is summed row by row with opl_dsum. */
static void sum_axis_forward(int64_t outer, int64_t D, int64_t inner, double scale,
                             const opl_real *x, opl_real *y) {
  if (inner == 1) {
#pragma omp parallel for if (outer * D > OPL_PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++) y[o] = (opl_real)(scale * opl_dsum(x + o * D, D));
    return;
  }
  int64_t nblk = (inner + RED_BLK - 1) / RED_BLK;
#pragma omp parallel for collapse(2) if (outer * D * inner > OPL_PAR_MIN) schedule(static)
  for (int64_t o = 0; o < outer; o++)
    for (int64_t b = 0; b < nblk; b++) {
      double acc[RED_BLK];
      int64_t i0 = b * RED_BLK, len = inner - i0 < RED_BLK ? inner - i0 : RED_BLK;
      for (int64_t i = 0; i < len; i++) acc[i] = 0;
      for (int64_t d = 0; d < D; d++) {
        const opl_real *xs = x + (o * D + d) * inner + i0;
        for (int64_t i = 0; i < len; i++) acc[i] += (double)xs[i];
      }
      opl_real *ys = y + o * inner + i0;
      for (int64_t i = 0; i < len; i++) ys[i] = (opl_real)(scale * acc[i]);
    }
}

/* gx[o, d, i] += scale * gy[o, i]: gy [outer, inner], gx [outer, D, inner] accumulated. */
static void sum_axis_backward(int64_t outer, int64_t D, int64_t inner, opl_real scale,
                              const opl_real *gy, opl_real *gx) {
#pragma omp parallel for collapse(2) if (outer * D * inner > OPL_PAR_MIN) schedule(static)
  for (int64_t o = 0; o < outer; o++)
    for (int64_t d = 0; d < D; d++) {
      const opl_real *g = gy + o * inner;
      opl_real *gs = gx + (o * D + d) * inner;
      for (int64_t i = 0; i < inner; i++) gs[i] += scale * g[i];
    }
}

/* Tape node of sum_axis / mean_axis: iarg = (outer, D, inner), farg[0] = 1 or 1/D. */
static void sum_axis_bw(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  if (gx)
    sum_axis_backward(nd->iarg[0], nd->iarg[1], nd->iarg[2], (opl_real)nd->farg[0],
                      nd->out->grad, gx);
}

/* Sum or mean of x over one axis (negative axis counts from the end). The output has x's
 * shape without that axis, or with extent 1 there when keepdim; reducing the only axis of a
 * rank-1 tensor without keepdim gives shape (1). OPL_ERR_ARG for an axis out of range. */
static opl_tensor *reduce_axis(opl_ctx *c, const char *op, opl_tensor *x, int axis, int keepdim,
                               int mean) {
  if (!opl_check_input(c, op, "x", x, -1, 0)) return NULL;
  int ax = opl_axis_norm(axis, x->rank);
  if (ax < 0) {
    char b1[96];
    opl_ctx_error(c, OPL_ERR_ARG, "%s: axis %d out of range for x %s", op, axis,
                  opl_shape_str(b1, x->rank, x->shape));
    return NULL;
  }
  int64_t shape[OPL_MAX_RANK];
  int rank = 0;
  for (int i = 0; i < x->rank; i++) {
    if (i != ax)
      shape[rank++] = x->shape[i];
    else if (keepdim)
      shape[rank++] = 1;
  }
  if (rank == 0) shape[rank++] = 1;
  opl_tensor *y = opl_new(c, rank, shape);
  if (!y) return NULL;
  int64_t outer = opl_prod(x->shape, 0, ax), D = x->shape[ax];
  int64_t inner = opl_prod(x->shape, ax + 1, x->rank);
  double scale = mean ? 1.0 / (double)D : 1.0;
  sum_axis_forward(outer, D, inner, scale, x->data, y->data);
  opl_node *nd = opl_record_saves(c, op, sum_axis_bw, y, 1, &x, 0);
  if (nd) nd->iarg[0] = outer, nd->iarg[1] = D, nd->iarg[2] = inner, nd->farg[0] = scale;
  return y;
}

opl_tensor *opl_sum_axis(opl_ctx *c, opl_tensor *x, int axis, int keepdim) {
  return reduce_axis(c, "sum_axis", x, axis, keepdim, 0);
}
opl_tensor *opl_mean_axis(opl_ctx *c, opl_tensor *x, int axis, int keepdim) {
  return reduce_axis(c, "mean_axis", x, axis, keepdim, 1);
}

/* ------------------------------------------------------------ relative Lp loss */

/* The relative Lp error with which the FNO paper trains and reports (Li et al., "Fourier Neural
 * Operator for Parametric Partial Differential Equations", ICLR 2021, Sec. 5): per sample r_n = ||u_n - v_n||_p / ||v_n||_p, then the mean or
 * the sum over the batch. With d = ||u - v||, s = ||v|| and w the weight of r_n:
 *   p = 2: dr/du =  w (u - v) / (d s),             dr/dv = -w (u - v) / (d s) - w d v / s^3
 *   p = 1: dr/du =  w sign(u - v) / s,             dr/dv = -w sign(u - v) / s - w d sign(v) / s^2
 * (sign(0) = 0 as the subgradient; for p = 2 the first term is 0 when d = 0). */

static inline opl_real sgn(opl_real a) { return (opl_real)((a > 0) - (a < 0)); }

/* Partial sums per (sample, block): u, v [N, M]; part [N, nblk, 2] gets for block b of
 * sample n the sum of |u - v|^p and of |v|^p over its LOSS_BLK elements (p = 1 or 2). */
static void rel_lp_partial(int64_t N, int64_t M, int p, const opl_real *u, const opl_real *v,
                           double *part) {
  int64_t nblk = (M + LOSS_BLK - 1) / LOSS_BLK;
#pragma omp parallel for collapse(2) if (N * M > OPL_PAR_MIN) schedule(static)
  for (int64_t n = 0; n < N; n++)
    for (int64_t b = 0; b < nblk; b++) {
      int64_t i0 = b * LOSS_BLK, len = M - i0 < LOSS_BLK ? M - i0 : LOSS_BLK;
      const opl_real *us = u + n * M + i0, *vs = v + n * M + i0;
      double sd[OPL_LANES] = {0}, sv[OPL_LANES] = {0};
      int64_t i = 0;
      if (p == 1) {
        for (; i + OPL_LANES <= len; i += OPL_LANES)
          for (int k = 0; k < OPL_LANES; k++) {
            sd[k] += fabs((double)us[i + k] - (double)vs[i + k]);
            sv[k] += fabs((double)vs[i + k]);
          }
        for (; i < len; i++) {
          sd[0] += fabs((double)us[i] - (double)vs[i]);
          sv[0] += fabs((double)vs[i]);
        }
      } else {
        for (; i + OPL_LANES <= len; i += OPL_LANES)
          for (int k = 0; k < OPL_LANES; k++) {
            double e = (double)us[i + k] - (double)vs[i + k], f = (double)vs[i + k];
            sd[k] += e * e;
            sv[k] += f * f;
          }
        for (; i < len; i++) {
          double e = (double)us[i] - (double)vs[i], f = (double)vs[i];
          sd[0] += e * e;
          sv[0] += f * f;
        }
      }
      double td = 0, tv = 0;
      for (int k = 0; k < OPL_LANES; k++) td += sd[k], tv += sv[k];
      part[2 * (n * nblk + b)] = td;
      part[2 * (n * nblk + b) + 1] = tv;
    }
}

/* Per-sample norms from rel_lp_partial's part [N, nblk, 2]: dn[N] = ||u_n - v_n||_p and
 * sn[N] = ||v_n||_p. */
static void rel_lp_norms(int64_t N, int64_t nblk, int p, const double *part, double *dn,
                         double *sn) {
  for (int64_t n = 0; n < N; n++) {
    double sd = 0, sv = 0;
    for (int64_t b = 0; b < nblk; b++) sd += part[2 * (n * nblk + b)], sv += part[2 * (n * nblk + b) + 1];
    dn[n] = p == 2 ? sqrt(sd) : sd;
    sn[n] = p == 2 ? sqrt(sv) : sv;
  }
}

/* Backward: u, v [N, M]; dn, sn [N] from the forward pass; w = weight of each r_n times the
 * output gradient. gu, gv [N, M] accumulated (either may be NULL). */
static void rel_lp_backward(int64_t N, int64_t M, int p, double w, const opl_real *u,
                            const opl_real *v, const double *dn, const double *sn, opl_real *gu,
                            opl_real *gv) {
  int64_t nblk = (M + LOSS_BLK - 1) / LOSS_BLK;
#pragma omp parallel for collapse(2) if (N * M > OPL_PAR_MIN) schedule(static)
  for (int64_t n = 0; n < N; n++)
    for (int64_t b = 0; b < nblk; b++) {
      int64_t i0 = b * LOSS_BLK, len = M - i0 < LOSS_BLK ? M - i0 : LOSS_BLK;
      const opl_real *us = u + n * M + i0, *vs = v + n * M + i0;
      opl_real *gus = gu ? gu + n * M + i0 : NULL, *gvs = gv ? gv + n * M + i0 : NULL;
      double d = dn[n], s = sn[n];
      if (p == 2) {
        opl_real a = (opl_real)(d > 0 ? w / (d * s) : 0), bb = (opl_real)(w * d / (s * s * s));
        if (gus)
          for (int64_t i = 0; i < len; i++) gus[i] += a * (us[i] - vs[i]);
        if (gvs)
          for (int64_t i = 0; i < len; i++) gvs[i] -= a * (us[i] - vs[i]) + bb * vs[i];
      } else {
        opl_real a = (opl_real)(w / s), bb = (opl_real)(w * d / (s * s));
        if (gus)
          for (int64_t i = 0; i < len; i++) gus[i] += a * sgn(us[i] - vs[i]);
        if (gvs)
          for (int64_t i = 0; i < len; i++) gvs[i] -= a * sgn(us[i] - vs[i]) + bb * sgn(vs[i]);
      }
    }
}

typedef struct rel_lp_saved {
  double *dn, *sn;   /* [N] per-sample ||u - v||_p and ||v||_p */
} rel_lp_saved;

/* Tape node of rel_lp_loss: iarg = (N, M, p), farg[0] = weight of each r_n (1/N or 1),
 * saved = the per-sample norms. */
static void rel_lp_bw(opl_node *nd) {
  const rel_lp_saved *sv = nd->saved;
  int64_t N = nd->iarg[0], M = nd->iarg[1];
  int p = (int)nd->iarg[2];
  double w = nd->farg[0] * (double)nd->out->grad[0];
  rel_lp_backward(N, M, p, w, nd->in[0]->data, nd->in[1]->data, sv->dn, sv->sn,
                  opl_node_grad(nd, 0), opl_node_grad(nd, 1));
}

/* Checks shared by the losses: u, v real, non-NULL, same shape of rank >= 1. */
static int loss_check(opl_ctx *c, const char *op, const opl_tensor *u, const opl_tensor *v) {
  if (!opl_check_input(c, op, "u", u, -1, 0) || !opl_check_input(c, op, "v", v, -1, 0)) return 0;
  char b1[96], b2[96];
  if (!opl_shape_eq(u->rank, u->shape, v->rank, v->shape) || u->rank < 1) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: u %s and v %s must have the same shape (N, ...)", op,
                  opl_shape_str(b1, u->rank, u->shape), opl_shape_str(b2, v->rank, v->shape));
    return 0;
  }
  return 1;
}

opl_tensor *opl_rel_lp_loss(opl_ctx *c, opl_tensor *u, opl_tensor *v, int p, opl_reduction red) {
  const char *op = "rel_lp_loss";
  if (!loss_check(c, op, u, v)) return NULL;
  if (p != 1 && p != 2) {
    opl_ctx_error(c, OPL_ERR_ARG, "rel_lp_loss: p = %d, must be 1 or 2", p);
    return NULL;
  }
  if (red != OPL_REDUCE_MEAN && red != OPL_REDUCE_SUM) {
    opl_ctx_error(c, OPL_ERR_ARG, "rel_lp_loss: unknown reduction %d", (int)red);
    return NULL;
  }
  int64_t N = u->shape[0], M = u->numel / N, nblk = (M + LOSS_BLK - 1) / LOSS_BLK;
  double *part = opl_arena_alloc(c, (size_t)(2 * N * nblk) * sizeof(double));
  double *dn = opl_arena_alloc(c, (size_t)N * sizeof(double));
  double *sn = opl_arena_alloc(c, (size_t)N * sizeof(double));
  if (!part || !dn || !sn) return NULL;
  rel_lp_partial(N, M, p, u->data, v->data, part);
  rel_lp_norms(N, nblk, p, part, dn, sn);
  double loss = 0;
  for (int64_t n = 0; n < N; n++) {
    if (!(sn[n] > 0)) {
      char b1[96];
      opl_ctx_error(c, OPL_ERR_ARG, "rel_lp_loss: sample %lld of v %s has ||v||_%d = %g",
                    (long long)n, opl_shape_str(b1, v->rank, v->shape), p, sn[n]);
      return NULL;
    }
    loss += dn[n] / sn[n];
  }
  double w = red == OPL_REDUCE_MEAN ? 1.0 / (double)N : 1.0;
  opl_tensor *y = opl_new(c, OPL_DIMS(1));
  if (!y) return NULL;
  y->data[0] = (opl_real)(w * loss);
  opl_tensor *in[2] = {u, v};
  opl_node *nd = opl_record(c, op, rel_lp_bw, y, 2, in);
  if (nd) {
    rel_lp_saved *s = opl_arena_alloc(c, sizeof *s);
    if (!s) return NULL;
    s->dn = dn, s->sn = sn;
    nd->saved = s;
    nd->iarg[0] = N, nd->iarg[1] = M, nd->iarg[2] = p;
    nd->farg[0] = w;
  }
  return y;
}

/* ------------------------------------------------------------ mean squared error */

/* Returns sum((u - v)^2) in double, over blocks of LOSS_BLK shared among the threads:
 * u, v [n]. */
static double mse_forward(int64_t n, const opl_real *u, const opl_real *v) {
  double part[RED_GROUPS]; /* deterministic order: see sum_all_forward */
  int64_t nblk = (n + LOSS_BLK - 1) / LOSS_BLK, ng = nblk < RED_GROUPS ? nblk : RED_GROUPS;
  OPL_PFOR(g, ng, n, {
    int64_t b0, b1;
    red_group(nblk, ng, g, &b0, &b1);
    double s = 0;
    for (int64_t b = b0; b < b1; b++) {
      int64_t i0 = b * LOSS_BLK, len = n - i0 < LOSS_BLK ? n - i0 : LOSS_BLK;
      const opl_real *us = u + i0, *vs = v + i0;
      double acc[OPL_LANES] = {0};
      int64_t i = 0;
      for (; i + OPL_LANES <= len; i += OPL_LANES)
        for (int k = 0; k < OPL_LANES; k++) {
          double e = (double)us[i + k] - (double)vs[i + k];
          acc[k] += e * e;
        }
      for (; i < len; i++) {
        double e = (double)us[i] - (double)vs[i];
        acc[0] += e * e;
      }
      for (int k = 0; k < OPL_LANES; k++) s += acc[k];
    }
    part[g] = s;
  });
  double s = 0;
  for (int64_t g = 0; g < ng; g++) s += part[g];
  return s;
}

/* gu += a (u - v), gv -= a (u - v) with a = 2 g / n: u, v, gu, gv [n] (gu or gv may be NULL). */
static void mse_backward(int64_t n, opl_real a, const opl_real *u, const opl_real *v,
                         opl_real *gu, opl_real *gv) {
#pragma omp parallel for if (n > OPL_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    opl_real e = a * (u[i] - v[i]);
    if (gu) gu[i] += e;
    if (gv) gv[i] -= e;
  }
}

/* Tape node of mse_loss: inputs u, v. */
static void mse_bw(opl_node *nd) {
  int64_t n = nd->in[0]->numel;
  opl_real a = (opl_real)(2.0 * (double)nd->out->grad[0] / (double)n);
  mse_backward(n, a, nd->in[0]->data, nd->in[1]->data, opl_node_grad(nd, 0), opl_node_grad(nd, 1));
}

opl_tensor *opl_mse_loss(opl_ctx *c, opl_tensor *u, opl_tensor *v) {
  if (!loss_check(c, "mse_loss", u, v)) return NULL;
  opl_tensor *y = opl_new(c, OPL_DIMS(1));
  if (!y) return NULL;
  y->data[0] = (opl_real)(mse_forward(u->numel, u->data, v->data) / (double)u->numel);
  opl_tensor *in[2] = {u, v};
  opl_record(c, "mse_loss", mse_bw, y, 2, in);
  return y;
}
