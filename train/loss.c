/* opl train — training losses (see loss.h). */
#include <math.h>
#include <string.h>
#include "train/loss.h"

const char *opl_loss_name(opl_loss_kind k) {
  return k == OPL_LOSS_H1 ? "h1" : k == OPL_LOSS_L2 ? "l2" : k == OPL_LOSS_L2_FIELD ? "l2-field" : "unknown";
}

int opl_loss_parse(const char *s) {
  if (s && !strcmp(s, "l2")) return OPL_LOSS_L2;
  if (s && !strcmp(s, "h1")) return OPL_LOSS_H1;
  if (s && !strcmp(s, "l2-field")) return OPL_LOSS_L2_FIELD;
  return -1;
}

/* |k| of FFT index i on an axis of n points (n even: index n/2 is -n/2), truncated as HsLoss. */
static double kt(int64_t i, int64_t n) {
  int64_t k = i < n / 2 ? i : n - i;
  return k < OPL_H1_KMAX ? (double)k : 0.0;
}

/* The multiplier sqrt(1 + kx'^2 + ky'^2) as spectral-convolution weights: complex
 * (1, 1, X, Y/2+1) in the arena, imaginary parts zero (rows in FFT order: with m0 = X/2 the
 * spectral convolution's blocks [0, m0) and [m0, 2 m0) are k = 0..X/2-1 and -X/2..-1). */
static opl_tensor *h1_weights(opl_ctx *c, int64_t X, int64_t Y) {
  int64_t Yh = Y / 2 + 1;
  opl_tensor *w = opl_new_flags(c, OPL_DIMS(1, 1, X, Yh), OPL_T_COMPLEX);
  if (!w) return NULL;
  for (int64_t i = 0; i < X; i++)
    for (int64_t j = 0; j < Yh; j++) {
      double a = kt(i, X), b = kt(j, Y);
      w->data[2 * (i * Yh + j)] = (opl_real)sqrt(1 + a * a + b * b);
      w->data[2 * (i * Yh + j) + 1] = 0;
    }
  return w;
}

/* G z: z (M, 1, X, Y) -> (M, 1, X, Y), w from h1_weights. */
static opl_tensor *h1_filter(opl_ctx *c, opl_tensor *z, opl_tensor *w) {
  if (!z || !w) return NULL;
  int modes[2] = {(int)(z->shape[2] / 2), (int)(z->shape[3] / 2 + 1)};
  return opl_spectral_conv(c, z, w, 2, modes);
}

opl_tensor *opl_h1_rel_loss(opl_ctx *c, opl_tensor *pred, opl_tensor *y, opl_reduction red) {
  if (opl_ctx_status(c)) return NULL;
  if (!opl_check_input(c, "h1_rel_loss", "pred", pred, 4, 0) || !opl_check_input(c, "h1_rel_loss", "y", y, 4, 0))
    return NULL;
  char b1[96], b2[96];
  if (!opl_shape_eq(pred->rank, pred->shape, y->rank, y->shape) || pred->shape[2] % 2) {
    opl_ctx_error(c, OPL_ERR_SHAPE,
                  "h1_rel_loss: prediction %s and target %s must have one shape (N, C, X, Y) with X even (the "
                  "wavenumbers of HsLoss)",
                  opl_shape_str(b1, pred->rank, pred->shape), opl_shape_str(b2, y->rank, y->shape));
    return NULL;
  }
  int64_t flat[4] = {pred->shape[0] * pred->shape[1], 1, pred->shape[2], pred->shape[3]};
  opl_tensor *w = h1_weights(c, pred->shape[2], pred->shape[3]);
  opl_tensor *gp = opl_reshape(c, h1_filter(c, opl_reshape(c, pred, 4, flat), w), 4, pred->shape);
  opl_tensor *gy = opl_reshape(c, h1_filter(c, opl_reshape(c, y, 4, flat), w), 4, y->shape);
  return opl_rel_lp_loss(c, gp, gy, 2, red);
}

int opl_h1_rel_per_sample(const opl_real *pred, const opl_real *y, int64_t n, int64_t C, int64_t X, int64_t Y,
                          double *out, opl_err *err) {
  if (!pred || !y || !out) return opl_err_set(err, OPL_ERR_ARG, "h1_rel_per_sample: NULL array");
  if (n < 1 || C < 1 || X < 2 || Y < 1 || X % 2)
    return opl_err_set(err, OPL_ERR_SHAPE,
                       "h1_rel_per_sample: shape [%lld, %lld, %lld, %lld], expected [n, C, X, Y] >= 1 with X even "
                       "(the wavenumbers of HsLoss)",
                       (long long)n, (long long)C, (long long)X, (long long)Y);
  opl_ctx *c = opl_ctx_new(0);
  if (!c) return opl_err_set(err, OPL_ERR_NOMEM, "h1_rel_per_sample: out of memory");
  const int64_t per = C * X * Y;
  int st = OPL_OK;
  for (int64_t j = 0; j < n && !st; j++) {
    opl_ctx_reset(c);
    opl_tensor *p = opl_new(c, OPL_DIMS(1, C, X, Y)), *t = opl_new(c, OPL_DIMS(1, C, X, Y));
    if (p && t) {
      memcpy(p->data, pred + j * per, sizeof(opl_real) * (size_t)per);
      memcpy(t->data, y + j * per, sizeof(opl_real) * (size_t)per);
    }
    opl_tensor *l = p && t ? opl_h1_rel_loss(c, p, t, OPL_REDUCE_SUM) : NULL;
    if (!l || opl_ctx_status(c)) {
      int cs = opl_ctx_status(c);
      st = opl_err_set(err, cs ? cs : OPL_ERR_NOMEM, "h1_rel_per_sample: sample %lld: %s", (long long)j,
                       cs ? opl_ctx_errmsg(c) : "out of memory");
    } else {
      out[j] = l->data[0];
    }
  }
  opl_ctx_free(&c);
  return st;
}

opl_tensor *opl_field_rel_l2_loss(opl_ctx *c, opl_tensor *pred, opl_tensor *y, opl_reduction red) {
  if (opl_ctx_status(c)) return NULL;
  if (!opl_check_input(c, "field_rel_l2_loss", "pred", pred, -1, 0) ||
      !opl_check_input(c, "field_rel_l2_loss", "y", y, -1, 0))
    return NULL;
  char b1[96], b2[96];
  if (pred->rank < 3 || !opl_shape_eq(pred->rank, pred->shape, y->rank, y->shape)) {
    opl_ctx_error(c, OPL_ERR_SHAPE,
                  "field_rel_l2_loss: prediction %s and target %s must have one shape (N, C, *S) with at least one "
                  "spatial axis",
                  opl_shape_str(b1, pred->rank, pred->shape), opl_shape_str(b2, y->rank, y->shape));
    return NULL;
  }
  /* (N, C, *S) -> (N C, *S): one row per (sample, channel), so core's summed relative L2 is
   * sum_nc r_nc */
  int64_t s[OPL_MAX_RANK];
  int64_t N = pred->shape[0], C = pred->shape[1];
  s[0] = N * C;
  for (int i = 2; i < pred->rank; i++) s[i - 1] = pred->shape[i];
  opl_tensor *l = opl_rel_lp_loss(c, opl_reshape(c, pred, pred->rank - 1, s), opl_reshape(c, y, y->rank - 1, s), 2,
                                  OPL_REDUCE_SUM);
  return opl_scale(c, l, red == OPL_REDUCE_MEAN ? 1.0 / (double)(N * C) : 1.0 / (double)C);
}
