/* opl — ops of explicit Runge-Kutta steps on the tape: a linear combination of up to 8 tensors
 * in one node, and the weighted RMS norm of an embedded error estimate as a differentiable
 * scalar. Their forward arithmetic is the same, operation for operation, as the double-array
 * vector operations of solvers/rk.c, so that in the double build a solve on tape tensors sees
 * the same bits as a solve on plain arrays. */
#include <math.h>
#include <stdio.h>
#include "core/ops.h"
#include "core/internal.h"

/* Elements per block: the output block stays in L1 while the m inputs stream through it once
 * (the block size of solvers/rk.c; per element the order of operations does not depend on it). */
#define LC_BLOCK 512

/* Blocks [blo, bhi) of y = sum_{j<m} a[j] x[j]: y [n], x[j] [n]; per element
 * y = a0 x0, then y += aj xj for j = 1..m-1 in order. */
static void lincomb_blocks(int64_t n, int m, const double *a, const opl_real *const *x,
                           opl_real *y, int64_t blo, int64_t bhi) {
  for (int64_t blk = blo; blk < bhi; blk++) {
    const int64_t lo = blk * LC_BLOCK, len = n - lo < LC_BLOCK ? n - lo : LC_BLOCK;
    opl_real *restrict yb = y + lo;
    const opl_real *restrict x0 = x[0] + lo;
    const opl_real a0 = (opl_real)a[0];
    for (int64_t i = 0; i < len; i++) yb[i] = a0 * x0[i];
    for (int j = 1; j < m; j++) {
      const opl_real *restrict xj = x[j] + lo;
      const opl_real aj = (opl_real)a[j];
      for (int64_t i = 0; i < len; i++) yb[i] += aj * xj[i];
    }
  }
}

void opl_lincomb_kernel(int64_t n, int m, const double *a, const opl_real *const *x, opl_real *y) {
  OPL_ASSERT(m >= 1 && m <= OPL_LINCOMB_MAX, "m = %d", m);
  const int64_t nb = (n + LC_BLOCK - 1) / LC_BLOCK;
  if (n < OPL_PAR_MIN) {
    lincomb_blocks(n, m, a, x, y, 0, nb);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nb; blk++) lincomb_blocks(n, m, a, x, y, blk, blk + 1);
}

typedef struct lincomb_saved {
  int m;
  double a[OPL_LINCOMB_MAX];
  opl_tensor *x[OPL_LINCOMB_MAX];
} lincomb_saved;

/* gx_j [n] += a_j gy [n] for every input j that requires a gradient. */
static void lincomb_bw(opl_node *nd) {
  const lincomb_saved *s = nd->saved;
  const int64_t n = nd->out->numel;
  const opl_real *g = nd->out->grad;
  for (int j = 0; j < s->m; j++) {
    opl_real *gx = opl_grad_of(nd->ctx, s->x[j]);
    if (!gx) continue;
    const opl_real aj = (opl_real)s->a[j];
    OPL_PFOR(i, n, n, gx[i] += aj * g[i];);
  }
}

opl_tensor *opl_lincomb(opl_ctx *c, int m, const double *a, opl_tensor *const *x) {
  if (opl_ctx_status(c)) return NULL;
  if (m < 1 || m > OPL_LINCOMB_MAX || !a || !x) {
    opl_ctx_error(c, OPL_ERR_ARG, "lincomb: m = %d terms (must be 1..%d, with coefficients and tensors)",
                  m, OPL_LINCOMB_MAX);
    return NULL;
  }
  for (int j = 0; j < m; j++) {
    char what[32];
    snprintf(what, sizeof what, "x[%d]", j);
    if (!opl_check_input(c, "lincomb", what, x[j], -1, 0)) return NULL;
    if (!isfinite(a[j])) {
      opl_ctx_error(c, OPL_ERR_ARG, "lincomb: coefficient a[%d] = %g is not finite", j, a[j]);
      return NULL;
    }
    if (!opl_shape_eq(x[j]->rank, x[j]->shape, x[0]->rank, x[0]->shape)) {
      char b1[96], b2[96];
      opl_ctx_error(c, OPL_ERR_SHAPE, "lincomb: x[%d] %s differs from x[0] %s", j,
                    opl_shape_str(b1, x[j]->rank, x[j]->shape), opl_shape_str(b2, x[0]->rank, x[0]->shape));
      return NULL;
    }
  }
  opl_tensor *y = opl_new_like(c, x[0]);
  if (!y) return NULL;
  const opl_real *xd[OPL_LINCOMB_MAX];
  for (int j = 0; j < m; j++) xd[j] = x[j]->data;
  opl_lincomb_kernel(y->numel, m, a, xd, y->data);
  /* The node lists up to OPL_MAX_INPUTS inputs that require a gradient (so that it is recorded)
   * and keeps the full list, as concat does. */
  opl_tensor *in[OPL_MAX_INPUTS] = {0};
  int nin = 0;
  for (int j = 0; j < m && nin < OPL_MAX_INPUTS; j++)
    if (opl_requires_grad(x[j])) in[nin++] = x[j];
  if (!nin) return y;
  opl_node *nd = opl_record_saves(c, "lincomb", lincomb_bw, y, nin, in, 0);
  if (nd) {
    lincomb_saved *s = opl_arena_alloc(c, sizeof *s);
    if (!s) return NULL;
    s->m = m;
    for (int j = 0; j < m; j++) s->a[j] = a[j], s->x[j] = x[j];
    nd->saved = s;
    nd->more = s->x;
    nd->nmore = m;
  }
  return y;
}

/* ------------------------------------------------------------ weighted RMS norm */

/* Partial sums over [lo, hi): s += (e_i / w_i)^2, w_i = atol + rtol max(|ya_i|, |yb_i|), and
 * chk += (ya_i - ya_i) + (yb_i - yb_i) (0 for finite values, NaN otherwise), all in double.
 * e, ya, yb [n]. The same statements as dv_wrms_range in solvers/rk.c. */
static void wrms_range(const opl_real *restrict e, const opl_real *restrict ya,
                       const opl_real *restrict yb, double rtol, double atol, int64_t lo,
                       int64_t hi, double *s_out, double *chk_out) {
  double s = 0, chk = 0;
  for (int64_t i = lo; i < hi; i++) {
    double p = fabs((double)ya[i]), q = fabs((double)yb[i]);
    double w = atol + rtol * (p > q ? p : q);
    double r = (double)e[i] / w;
    s += r * r;
    chk += ((double)ya[i] - (double)ya[i]) + ((double)yb[i] - (double)yb[i]);
  }
  *s_out = s;
  *chk_out = chk;
}

struct wrms_args {
  const opl_real *e, *ya, *yb;
  double rtol, atol;
  int64_t n;
};

/* opl_par_sums callback: acc[0] += s, acc[1] += chk over blocks [b0, b1). */
static void wrms_blocks(void *ctx, int64_t b0, int64_t b1, double *acc) {
  const struct wrms_args *a = ctx;
  int64_t lo = b0 * LC_BLOCK, hi = b1 * LC_BLOCK < a->n ? b1 * LC_BLOCK : a->n;
  wrms_range(a->e, a->ya, a->yb, a->rtol, a->atol, lo, hi, &acc[0], &acc[1]);
}

void opl_wrms_sums(int64_t n, const opl_real *e, const opl_real *ya, const opl_real *yb, double rtol,
                   double atol, double sc[2]) {
  if (n < OPL_PAR_MIN) {
    wrms_range(e, ya, yb, rtol, atol, 0, n, &sc[0], &sc[1]);
  } else { /* the same blocks and groups as dv_wrms in solvers/rk.c (core/par.h) */
    struct wrms_args a = {e, ya, yb, rtol, atol, n};
    opl_par_sums((n + LC_BLOCK - 1) / LC_BLOCK, 2, 1, wrms_blocks, &a, sc);
  }
}

double opl_wrms_value(int64_t n, const opl_real *e, const opl_real *ya, const opl_real *yb,
                      double rtol, double atol) {
  double sc[2];
  opl_wrms_sums(n, e, ya, yb, rtol, atol, sc);
  return sqrt(sc[0] / (double)n) + sc[1];
}

/* v = sqrt(S / n), S = sum r_i^2, r_i = e_i / w_i. n is farg[2] when set (opl_wrms_reduced: the
 * count of the whole vector of which e holds a part), else e's size. With gv = dL/dv and v > 0:
 *   ge_i  += gv r_i / (n v w_i)
 *   gw_i   = -gv r_i^2 / (n v w_i), passed to the larger of |ya_i|, |yb_i| (ya on a tie):
 *   gya_i += gw_i rtol sign(ya_i)   (or gyb_i likewise).
 * At v = 0 every r_i is 0 and the (sub)gradient 0 is taken. e, ya, yb, ge, gya, gyb [n]. */
static void wrms_bw(opl_node *nd) {
  const int64_t n = nd->in[0]->numel;
  const double rtol = nd->farg[0], atol = nd->farg[1], v = nd->out->data[0];
  const double ntot = nd->farg[2] > 0 ? nd->farg[2] : (double)n;
  const double gv = nd->out->grad[0];
  if (!(v > 0) || gv == 0) return;
  const opl_real *e = nd->in[0]->data, *ya = nd->in[1]->data, *yb = nd->in[2]->data;
  opl_real *ge = opl_node_grad(nd, 0), *gya = opl_node_grad(nd, 1), *gyb = opl_node_grad(nd, 2);
  const double scale = gv / (ntot * v);
  for (int64_t i = 0; i < n; i++) {
    double p = fabs((double)ya[i]), q = fabs((double)yb[i]);
    double w = atol + rtol * (p > q ? p : q);
    double r = (double)e[i] / w;
    if (ge) ge[i] += (opl_real)(scale * r / w);
    if (rtol == 0) continue;
    double gw = -scale * r * r / w;
    if (p >= q) {
      if (gya && ya[i] != 0) gya[i] += (opl_real)(gw * rtol * (ya[i] > 0 ? 1 : -1));
    } else {
      if (gyb && yb[i] != 0) gyb[i] += (opl_real)(gw * rtol * (yb[i] > 0 ? 1 : -1));
    }
  }
}

/* opl_wrms and opl_wrms_reduced: check the inputs, then record the node with output value v of
 * a vector of ntot elements (0: e's own size, value computed here). */
static opl_tensor *wrms_node(opl_ctx *c, opl_tensor *e, opl_tensor *ya, opl_tensor *yb, double rtol, double atol,
                             double v, double ntot) {
  if (!opl_check_input(c, "wrms", "e", e, -1, 0) || !opl_check_input(c, "wrms", "ya", ya, -1, 0) ||
      !opl_check_input(c, "wrms", "yb", yb, -1, 0))
    return NULL;
  if (!opl_shape_eq(ya->rank, ya->shape, e->rank, e->shape) ||
      !opl_shape_eq(yb->rank, yb->shape, e->rank, e->shape)) {
    char b1[96], b2[96], b3[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "wrms: e %s, ya %s and yb %s must have one shape",
                  opl_shape_str(b1, e->rank, e->shape), opl_shape_str(b2, ya->rank, ya->shape),
                  opl_shape_str(b3, yb->rank, yb->shape));
    return NULL;
  }
  if (!(rtol >= 0) || !(atol >= 0) || !isfinite(rtol) || !isfinite(atol) || (rtol == 0 && atol == 0)) {
    opl_ctx_error(c, OPL_ERR_ARG, "wrms: rtol = %g, atol = %g (must be finite, >= 0, not both 0)",
                  rtol, atol);
    return NULL;
  }
  if (ntot != 0 && !(ntot >= (double)e->numel && isfinite(ntot))) {
    opl_ctx_error(c, OPL_ERR_ARG, "wrms: the whole vector's %g elements are fewer than the part's %lld", ntot,
                  (long long)e->numel);
    return NULL;
  }
  opl_tensor *y = opl_new(c, OPL_DIMS(1));
  if (!y) return NULL;
  y->data[0] = (opl_real)(ntot > 0 ? v : opl_wrms_value(e->numel, e->data, ya->data, yb->data, rtol, atol));
  opl_tensor *in[3] = {e, ya, yb};
  opl_node *nd = opl_record(c, "wrms", wrms_bw, y, 3, in);
  if (nd) nd->farg[0] = rtol, nd->farg[1] = atol, nd->farg[2] = ntot;
  return y;
}

opl_tensor *opl_wrms(opl_ctx *c, opl_tensor *e, opl_tensor *ya, opl_tensor *yb, double rtol,
                     double atol) {
  return wrms_node(c, e, ya, yb, rtol, atol, 0, 0);
}

opl_tensor *opl_wrms_reduced(opl_ctx *c, opl_tensor *e, opl_tensor *ya, opl_tensor *yb, double rtol, double atol,
                             double value, double ntot) {
  if (opl_ctx_status(c)) return NULL;
  if (!(ntot >= 1)) {
    opl_ctx_error(c, OPL_ERR_ARG, "wrms_reduced: the whole vector has %g elements (must be >= 1)", ntot);
    return NULL;
  }
  return wrms_node(c, e, ya, yb, rtol, atol, value, ntot);
}
