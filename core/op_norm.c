/* opl — normalization ops: group norm, instance norm, layer norm.
 *
 * References:
 *   Wu & He, "Group Normalization", ECCV 2018 (eqs. 1-3: statistics over groups of channels).
 *   Ulyanov, Vedaldi & Lempitsky, "Instance Normalization: The Missing Ingredient for Fast
 *     Stylization", 2016 (one group per channel).
 *   Ba, Kiros & Hinton, "Layer Normalization", 2016 (statistics over the trailing axes).
 * Semantics follow PyTorch: biased variance, eps inside the square root,
 * y = (x - mean) / sqrt(var + eps) * gamma + beta.
 *
 * All three are one kernel. x is viewed as [B, G, Cg, S]: each of the B*G groups is a
 * contiguous run of M = Cg*S values normalized by its own mean and variance, and the affine
 * parameters are indexed by p = g*Cg + cg (P = G*Cg of them), constant over S.
 *   group norm     (N, C, *S):  B = N, G = groups, Cg = C / G, S = prod(*S)
 *   instance norm  (N, C, *S):  as group norm with G = C
 *   layer norm     (..., *T):   B = prod(...), G = 1, Cg = prod(*T), S = 1
 * Statistics and all backward reductions are accumulated in double. Backward uses the
 * closed form for xhat = (x - mu) rstd over a group of M values:
 *   dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dxhat = dy gamma,
 *   dgamma_p = sum dy xhat,  dbeta_p = sum dy   (sums over b and s).
 *
 * Errors: groups < 1, nd out of range, eps < 0 or not finite: OPL_ERR_ARG. groups not
 * dividing C, gamma/beta of the wrong shape, x of too small a rank: OPL_ERR_SHAPE. */
#include <stdio.h>
#include <string.h>
#include <tgmath.h>
#include "core/ops.h"
#include "core/internal.h"

typedef struct norm_geo {
  int64_t B, G, Cg, S;
  double eps;
  double *mean;   /* [B*G] */
  double *rstd;   /* [B*G] 1 / sqrt(var + eps) */
} norm_geo;

/* The lane sums of opl_dsum (internal.h) with two accumulations per element. */
#define NL OPL_LANES

/* The sums of d and d^2 over xs [M], d = xs - k (k: a shift, the group's first value, so that the
 * variance S2 / M - (S1 / M)^2 does not cancel away when the mean is large against the spread). */
static void lane_sums(const opl_real *restrict xs, int64_t M, double k, double *s1, double *s2) {
  const opl_lane_d2 kk = {k, k};
  opl_lane_d2 va[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}}, vb[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
  int64_t i = 0;
  for (; i + NL <= M; i += NL) {
    opl_lane_d2 x[4];
    opl_lane_ld4(xs + i, x, x + 1), opl_lane_ld4(xs + i + 4, x + 2, x + 3);
    for (int j = 0; j < 4; j++) {
      const opl_lane_d2 d = x[j] - kk;
      va[j] += d;
      vb[j] += d * d;
    }
  }
  double a[NL], b[NL];
  opl_lane_spill(va, a), opl_lane_spill(vb, b);
  for (int l = 0; i < M; i++, l++) {
    const double d = (double)xs[i] - k;
    a[l] += d;
    b[l] += d * d;
  }
  double u = 0, v = 0;
  for (int l = 0; l < NL; l++) u += a[l], v += b[l];
  *s1 = u, *s2 = v;
}

/* *sd += sum of gs g, *sdx += sum of gs g (xs - mu) over xs, gs [n] (the backward's two sums
 * for one row of one affine parameter g) */
static void lane_dsum(const opl_real *restrict xs, const opl_real *restrict gs, int64_t n, double g, double mu,
                      double *sd, double *sdx) {
  const opl_lane_d2 gg = {g, g}, mm = {mu, mu};
  opl_lane_d2 va[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}}, vb[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
  int64_t i = 0;
  for (; i + NL <= n; i += NL) {
    opl_lane_d2 x[4], y[4];
    opl_lane_ld4(xs + i, x, x + 1), opl_lane_ld4(xs + i + 4, x + 2, x + 3);
    opl_lane_ld4(gs + i, y, y + 1), opl_lane_ld4(gs + i + 4, y + 2, y + 3);
    for (int j = 0; j < 4; j++) {
      const opl_lane_d2 d = y[j] * gg;
      va[j] += d;
      vb[j] += d * (x[j] - mm);
    }
  }
  double a[NL], b[NL];
  opl_lane_spill(va, a), opl_lane_spill(vb, b);
  for (int l = 0; i < n; i++, l++) {
    const double d = (double)gs[i] * g;
    a[l] += d;
    b[l] += d * ((double)xs[i] - mu);
  }
  double s = 0, t = 0;
  for (int l = 0; l < NL; l++) s += a[l], t += b[l];
  *sd += s, *sdx += t;
}

/* The mean and 1/sqrt(variance + eps) of one group xs [M], in double, one pass over xs: the sums of
 * d and d^2 for d = x - x[0] (a shifted data value keeps the difference of the two terms well
 * conditioned: its rounding is relative to (mean - x[0])^2 + variance, not to mean^2). */
static void group_stats(const opl_real *xs, int64_t M, double eps, double *mu, double *rs) {
  const double k = (double)xs[0];
  double s1, s2;
  lane_sums(xs, M, k, &s1, &s2);
  const double md = s1 / (double)M, var = s2 / (double)M - md * md;
  *mu = k + md;
  *rs = 1.0 / sqrt((var > 0 ? var : 0) + eps);
}

/* Row (b, g, cg) of z = GN(x): z = (x - mu) scale + shift for S values, with
 * scale = rstd gamma[p] and shift = beta[p]. The mean is taken as mh + ml (mh = mu rounded to
 * opl_real, ml the rest), subtracted in that order: x - mh is exact for x within a factor 2 of mh
 * (Sterbenz), so a large mean against a small spread keeps the spread's digits.
 * x, z [n] */
static void gn_row(int64_t n, const opl_real *x, double mu, opl_real scale, opl_real shift, opl_real *z) {
  const opl_real mh = (opl_real)mu, ml = (opl_real)(mu - (double)mh);
  for (int64_t i = 0; i < n; i++) z[i] = ((x[i] - mh) - ml) * scale + shift;
}

/* Forward: x, y [B, G, Cg, S]; gamma, beta [G*Cg] or NULL (1 and 0); fills q->mean and
 * q->rstd [B*G]. One pass over each group for the statistics (group_stats), one to normalize. */
static void norm_forward(const norm_geo *q, const opl_real *x, const opl_real *gamma,
                         const opl_real *beta, opl_real *y) {
  int64_t BG = q->B * q->G, M = q->Cg * q->S, S = q->S, Cg = q->Cg;
#pragma omp parallel for if (BG * M > OPL_PAR_MIN && BG > 1) schedule(static)
  for (int64_t bg = 0; bg < BG; bg++) {
    const opl_real *xs = x + bg * M;
    opl_real *ys = y + bg * M;
    double mu, rs;
    group_stats(xs, M, q->eps, &mu, &rs);
    q->mean[bg] = mu;
    q->rstd[bg] = rs;
    int64_t p0 = (bg % q->G) * Cg;
    for (int64_t cg = 0; cg < Cg; cg++) {
      opl_real scale = (opl_real)(rs * (gamma ? (double)gamma[p0 + cg] : 1.0));
      opl_real shift = beta ? beta[p0 + cg] : 0;
      gn_row(S, xs + cg * S, mu, scale, shift, ys + cg * S);
    }
  }
}

/* Backward to x: x, gy [B, G, Cg, S], gamma [G*Cg] or NULL; gx [B, G, Cg, S] accumulated. */
static void norm_backward_x(const norm_geo *q, const opl_real *x, const opl_real *gamma,
                            const opl_real *gy, opl_real *gx) {
  int64_t BG = q->B * q->G, M = q->Cg * q->S, S = q->S, Cg = q->Cg;
#pragma omp parallel for if (BG * M > OPL_PAR_MIN && BG > 1) schedule(static)
  for (int64_t bg = 0; bg < BG; bg++) {
    const opl_real *xs = x + bg * M, *gs = gy + bg * M;
    opl_real *gxs = gx + bg * M;
    double mu = q->mean[bg], rs = q->rstd[bg];
    int64_t p0 = (bg % q->G) * Cg;
    double sd = 0, sdx = 0; /* sum dxhat, sum dxhat (x - mu); times rs: sum dxhat xhat */
    for (int64_t cg = 0; cg < Cg; cg++)
      lane_dsum(xs + cg * S, gs + cg * S, S, gamma ? (double)gamma[p0 + cg] : 1.0, mu, &sd, &sdx);
    double md = sd / (double)M, mdx = sdx * rs / (double)M;
    for (int64_t cg = 0; cg < Cg; cg++) {
      double gm = gamma ? (double)gamma[p0 + cg] : 1.0;
      for (int64_t s = 0; s < S; s++) {
        int64_t i = cg * S + s;
        double xh = ((double)xs[i] - mu) * rs;
        gxs[i] += (opl_real)(rs * ((double)gs[i] * gm - md - xh * mdx));
      }
    }
  }
}

/* Backward to the affine parameters: x, gy [B, G, Cg, S]; ggamma, gbeta [G*Cg] accumulated
 * (either may be NULL). Parallel over parameters, so no two threads write one entry. */
static void norm_backward_affine(const norm_geo *q, const opl_real *x, const opl_real *gy,
                                 opl_real *ggamma, opl_real *gbeta) {
  int64_t P = q->G * q->Cg, S = q->S, B = q->B, G = q->G;
#pragma omp parallel for if (B * P * S > OPL_PAR_MIN) schedule(static)
  for (int64_t p = 0; p < P; p++) {
    int64_t g = p / q->Cg;
    double sg = 0, sb = 0;
    for (int64_t b = 0; b < B; b++) {
      double d = 0, dx = 0;
      lane_dsum(x + (b * P + p) * S, gy + (b * P + p) * S, S, 1.0, q->mean[b * G + g], &d, &dx);
      sg += dx * q->rstd[b * G + g];
      sb += d;
    }
    if (ggamma) ggamma[p] += (opl_real)sg;
    if (gbeta) gbeta[p] += (opl_real)sb;
  }
}

static void norm_bw(opl_node *nd) {
  const norm_geo *q = nd->saved;
  const opl_tensor *x = nd->in[0], *gamma = nd->in[1];
  const opl_real *gy = nd->out->grad;
  opl_real *gx = opl_node_grad(nd, 0);
  opl_real *gg = opl_node_grad(nd, 1), *gb = opl_node_grad(nd, 2);
  if (gx) norm_backward_x(q, x->data, gamma ? gamma->data : NULL, gy, gx);
  if (gg || gb) norm_backward_affine(q, x->data, gy, gg, gb);
}

/* Check an optional affine tensor t (gamma or beta): NULL, or real with shape
 * (rank, shape). */
static int check_affine(opl_ctx *c, const char *op, const char *what, const opl_tensor *t,
                        int rank, const int64_t *shape, const opl_tensor *x) {
  if (!t) return 1;
  if (!opl_check_input(c, op, what, t, -1, 0)) return 0;
  if (!opl_shape_eq(t->rank, t->shape, rank, shape)) {
    char b1[96], b2[96], b3[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: %s %s must have shape %s for x %s", op, what,
                  opl_shape_str(b1, t->rank, t->shape), opl_shape_str(b2, rank, shape),
                  opl_shape_str(b3, x->rank, x->shape));
    return 0;
  }
  return 1;
}

static void gng_forward(const norm_geo *q, const opl_real *x, const opl_real *gamma, const opl_real *beta,
                        const opl_real *r, opl_real *y);
static void gng_bw(opl_node *nd);

/* Common tail: allocate statistics and output, run forward, record the node. gelu = 1: the
 * fused gelu(norm(x)) (opl_group_norm_gelu), whose node saves x, gamma and beta only (backward
 * recomputes the normalized values), so its output can be released; r (gelu only, or NULL): a
 * tensor of x's shape added to the output (opl_group_norm_gelu_add), an input the node lists but
 * does not save. */
static opl_tensor *norm_run(opl_ctx *c, const char *op, opl_tensor *x, opl_tensor *gamma,
                            opl_tensor *beta, norm_geo *geo, int gelu, opl_tensor *r) {
  if (!(geo->eps >= 0) || !isfinite(geo->eps)) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: eps = %g must be finite and >= 0", op, geo->eps);
    return NULL;
  }
  opl_tensor *y = opl_new_like(c, x);
  norm_geo *q = opl_arena_alloc(c, sizeof *q);
  if (!y || !q) return NULL;
  *q = *geo;
  q->mean = opl_arena_alloc(c, (size_t)(q->B * q->G) * sizeof(double));
  q->rstd = opl_arena_alloc(c, (size_t)(q->B * q->G) * sizeof(double));
  if (!q->mean || !q->rstd) return NULL;
  if (gelu)
    gng_forward(q, x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, r ? r->data : NULL, y->data);
  else
    norm_forward(q, x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, y->data);
  opl_tensor *in[4] = {x, gamma, beta, r};
  opl_node *nd = gelu ? opl_record_saves(c, op, gng_bw, y, r ? 4 : 3, in,
                                         OPL_SAVES_IN(0) | OPL_SAVES_IN(1) | OPL_SAVES_IN(2))
                      : opl_record(c, op, norm_bw, y, 3, in);
  if (nd) nd->saved = q, nd->farg[0] = q->eps;
  return y;
}

/* Shared by group norm, instance norm and the fused group norm + GELU (gelu = 1): x (N, C, *S)
 * real with rank >= 2, groups dividing C, gamma / beta (C) or NULL. */
static opl_tensor *group_norm_impl(opl_ctx *c, const char *op, opl_tensor *x, int groups,
                                   opl_tensor *gamma, opl_tensor *beta, double eps, int gelu, opl_tensor *r) {
  if (!opl_check_input(c, op, "x", x, -1, 0)) return NULL;
  char b[96];
  if (x->rank < 2) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: x %s must be (N, C, ...)", op,
                  opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  int64_t C = x->shape[1];
  if (groups < 1) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: groups = %d must be >= 1", op, groups);
    return NULL;
  }
  if (C % groups != 0) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: %d groups do not divide the %lld channels of x %s", op,
                  groups, (long long)C, opl_shape_str(b, x->rank, x->shape));
    return NULL;
  }
  if (!check_affine(c, op, "gamma", gamma, 1, &C, x) || !check_affine(c, op, "beta", beta, 1, &C, x))
    return NULL;
  norm_geo geo = {.B = x->shape[0], .G = groups, .Cg = C / groups,
                  .S = opl_prod(x->shape, 2, x->rank), .eps = eps};
  return norm_run(c, op, x, gamma, beta, &geo, gelu, r);
}

/* Group norm (Wu & He 2018; PyTorch F.group_norm): x (N, C, *S) real, rank >= 2; the C
 * channels form `groups` consecutive groups (groups must divide C); each (sample, group) is
 * normalized to zero mean and unit biased variance with eps inside the square root, then
 * channel c is scaled by gamma[c] and shifted by beta[c] (gamma, beta (C), each may be NULL:
 * 1 and 0). Out: the shape of x. */
opl_tensor *opl_group_norm(opl_ctx *c, opl_tensor *x, int groups, opl_tensor *gamma,
                           opl_tensor *beta, double eps) {
  return group_norm_impl(c, "group_norm", x, groups, gamma, beta, eps, 0, NULL);
}

/* ------------------------------------------------------------ group norm + GELU */

/* Elements of a row handled at once by the fused kernels (z kept on the stack). */
#define GNG_CHUNK 256

/* Forward of y = gelu(GN(x)) (+ r): statistics of each group as norm_forward (group_stats),
 * then z = GN(x) a chunk at a time on the stack and y = gelu(z) (+ r, added to the chunk
 * just written): GN's output is never stored.
 * x, y [B, G, Cg, S]; gamma, beta [G*Cg] or NULL; r [B, G, Cg, S] or NULL; fills q->mean, q->rstd [B*G]. */
static void gng_forward(const norm_geo *q, const opl_real *x, const opl_real *gamma, const opl_real *beta,
                        const opl_real *r, opl_real *y) {
  int64_t BG = q->B * q->G, M = q->Cg * q->S, S = q->S, Cg = q->Cg;
#pragma omp parallel for if (BG * M > OPL_PAR_MIN && BG > 1) schedule(static)
  for (int64_t bg = 0; bg < BG; bg++) {
    const opl_real *xs = x + bg * M;
    opl_real *ys = y + bg * M;
    double mu, rs;
    group_stats(xs, M, q->eps, &mu, &rs);
    q->mean[bg] = mu;
    q->rstd[bg] = rs;
    int64_t p0 = (bg % q->G) * Cg;
    opl_real z[GNG_CHUNK];
    for (int64_t cg = 0; cg < Cg; cg++) {
      opl_real scale = (opl_real)(rs * (gamma ? (double)gamma[p0 + cg] : 1.0));
      opl_real shift = beta ? beta[p0 + cg] : 0;
      for (int64_t s0 = 0; s0 < S; s0 += GNG_CHUNK) {
        int64_t n = S - s0 < GNG_CHUNK ? S - s0 : GNG_CHUNK;
        gn_row(n, xs + cg * S + s0, mu, scale, shift, z);
        opl_unary_forward_1t(OPL_GELU, n, z, ys + cg * S + s0);
        if (r) {
          opl_real *restrict yr = ys + cg * S + s0;
          const opl_real *restrict rr = r + bg * M + cg * S + s0;
          for (int64_t i = 0; i < n; i++) yr[i] += rr[i];
        }
      }
    }
  }
}

/* The gradient at GN's output: gz = gy gelu'(z), z = GN(x) recomputed from the saved x, the
 * statistics and the affine parameters.
 * x, gy, gz [B, G, Cg, S] (gz overwritten); gamma, beta [G*Cg] or NULL. */
static void gng_grad_z(const norm_geo *q, const opl_real *x, const opl_real *gamma, const opl_real *beta,
                       const opl_real *gy, opl_real *gz) {
  int64_t rows = q->B * q->G * q->Cg, S = q->S, P = q->G * q->Cg;
#pragma omp parallel for if (rows * S > OPL_PAR_MIN && rows > 1) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t bg = r / q->Cg, p = r % P;
    const double rs = q->rstd[bg];
    const opl_real scale = (opl_real)(rs * (gamma ? (double)gamma[p] : 1.0)), shift = beta ? beta[p] : 0;
    opl_real z[GNG_CHUNK];
    for (int64_t s0 = 0; s0 < S; s0 += GNG_CHUNK) {
      int64_t n = S - s0 < GNG_CHUNK ? S - s0 : GNG_CHUNK, off = r * S + s0;
      gn_row(n, x + off, q->mean[bg], scale, shift, z);
      memset(gz + off, 0, (size_t)n * sizeof *gz);
      opl_unary_backward_1t(OPL_GELU, n, z, z, gy + off, gz + off);
    }
  }
}

/* Backward of gelu(GN(x)): gz = gy gelu'(GN(x)) into scratch (given back to the arena after),
 * then GN's backward kernels with gz. */
static void gng_bw(opl_node *nd) {
  const norm_geo *q = nd->saved;
  const opl_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
  opl_real *gx = opl_node_grad(nd, 0);
  opl_real *gg = opl_node_grad(nd, 1), *gb = opl_node_grad(nd, 2);
  opl_real *gr = nd->nin > 3 ? opl_node_grad(nd, 3) : NULL;
  if (gr) opl_acc(gr, nd->out->grad, x->numel);
  if (!gx && !gg && !gb) return;
  const opl_arena_mark_t mark = opl_arena_mark(nd->ctx);
  opl_real *gz = opl_arena_alloc(nd->ctx, (size_t)x->numel * sizeof *gz);
  if (!gz) return;
  gng_grad_z(q, x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, nd->out->grad, gz);
  if (gx) norm_backward_x(q, x->data, gamma ? gamma->data : NULL, gz, gx);
  if (gg || gb) norm_backward_affine(q, x->data, gz, gg, gb);
  opl_arena_rewind(nd->ctx, mark);
}

/* Group norm followed by GELU (see ops.h): checks as opl_group_norm; the node saves x, gamma and
 * beta (not the normalized values, which backward recomputes), so the output can be released. */
opl_tensor *opl_group_norm_gelu(opl_ctx *c, opl_tensor *x, int groups, opl_tensor *gamma, opl_tensor *beta,
                                double eps) {
  return group_norm_impl(c, "group_norm_gelu", x, groups, gamma, beta, eps, 1, NULL);
}

/* gelu(group_norm(x)) + r (see ops.h): checks as opl_group_norm_gelu, and r real with the shape of
 * x; the residual is added as each chunk of the output is written. */
opl_tensor *opl_group_norm_gelu_add(opl_ctx *c, opl_tensor *x, int groups, opl_tensor *gamma, opl_tensor *beta,
                                    double eps, opl_tensor *r) {
  const char *op = "group_norm_gelu_add";
  if (!opl_check_input(c, op, "x", x, -1, 0) || !opl_check_input(c, op, "r", r, -1, 0)) return NULL;
  if (!opl_shape_eq(r->rank, r->shape, x->rank, x->shape)) {
    char b1[96], b2[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: r %s must have the shape of x %s", op, opl_shape_str(b1, r->rank, r->shape),
                  opl_shape_str(b2, x->rank, x->shape));
    return NULL;
  }
  return group_norm_impl(c, op, x, groups, gamma, beta, eps, 1, r);
}

/* Instance norm (Ulyanov et al. 2016; PyTorch F.instance_norm without running statistics):
 * group norm with one group per channel. x (N, C, *S), gamma / beta (C) or NULL. */
opl_tensor *opl_instance_norm(opl_ctx *c, opl_tensor *x, opl_tensor *gamma, opl_tensor *beta,
                              double eps) {
  if (!opl_check_input(c, "instance_norm", "x", x, -1, 0)) return NULL;
  if (x->rank < 2) return group_norm_impl(c, "instance_norm", x, 1, gamma, beta, eps, 0, NULL);
  int64_t C = x->shape[1];
  if (C > INT32_MAX) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "instance_norm: too many channels (%lld)", (long long)C);
    return NULL;
  }
  return group_norm_impl(c, "instance_norm", x, (int)C, gamma, beta, eps, 0, NULL);
}

/* Layer norm (Ba et al. 2016; PyTorch F.layer_norm with normalized_shape = the trailing nd
 * axes): x (..., *T) real with 1 <= nd <= rank; every index of the leading axes is
 * normalized over the prod(*T) values of its trailing block; gamma, beta have shape *T (rank
 * nd) or are NULL. Out: the shape of x. */
opl_tensor *opl_layer_norm(opl_ctx *c, opl_tensor *x, int nd, opl_tensor *gamma,
                           opl_tensor *beta, double eps) {
  if (!opl_check_input(c, "layer_norm", "x", x, -1, 0)) return NULL;
  char b[96];
  if (nd < 1 || nd > x->rank) {
    opl_ctx_error(c, OPL_ERR_ARG, "layer_norm: nd = %d trailing axes, x %s has rank %d", nd,
                  opl_shape_str(b, x->rank, x->shape), x->rank);
    return NULL;
  }
  const int64_t *tshape = x->shape + (x->rank - nd);
  if (!check_affine(c, "layer_norm", "gamma", gamma, nd, tshape, x) ||
      !check_affine(c, "layer_norm", "beta", beta, nd, tshape, x))
    return NULL;
  norm_geo geo = {.B = opl_prod(x->shape, 0, x->rank - nd), .G = 1,
                  .Cg = opl_prod(x->shape, x->rank - nd, x->rank), .S = 1, .eps = eps};
  return norm_run(c, "layer_norm", x, gamma, beta, &geo, 0, NULL);
}
