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

/* |k| of FFT index i on an axis of n points, in numpy/torch fftfreq order (n even: k = 0..n/2-1,
 * then -n/2..-1, so index n/2 is |k| = n/2; n odd: k = 0..(n-1)/2, then -(n-1)/2..-1, no
 * Nyquist bin), truncated as HsLoss: |k| >= OPL_H1_KMAX counts as 0. */
static double kt(int64_t i, int64_t n) {
  int64_t k = i <= n / 2 ? i : n - i;
  return k < OPL_H1_KMAX ? (double)k : 0.0;
}

/* The weights of the Parseval form on the half spectrum: real (X (Y/2+1) 2), entry (i, j, re|im) =
 * sqrt(m_j (1 + kx'(i)^2 + ky'(j)^2)), m_j the number of full-spectrum columns that half-spectrum
 * column j stands for (1 for j = 0 and, Y even, j = Y/2; 2 for the others, whose mirror -j holds
 * the conjugate spectrum of the mirrored row, and |k| is even in both axes). So for real z with
 * Z = rfft2(z), sum over (i, j, re|im) of (t_ij Z_ij)^2 = sum over the full spectrum of
 * (1 + kx'^2 + ky'^2) |Z_k|^2, on any X and Y. */
static opl_tensor *h1_weights(opl_ctx *c, int64_t X, int64_t Y) {
  int64_t Yh = Y / 2 + 1;
  opl_tensor *w = opl_new(c, OPL_DIMS(X * Yh * 2));
  if (!w) return NULL;
  for (int64_t i = 0; i < X; i++)
    for (int64_t j = 0; j < Yh; j++) {
      double a = kt(i, X), b = kt(j, Y), m = j == 0 || 2 * j == Y ? 1.0 : 2.0;
      w->data[2 * (i * Yh + j)] = w->data[2 * (i * Yh + j) + 1] = (opl_real)sqrt(m * (1 + a * a + b * b));
    }
  return w;
}

/* The weighted half spectrum t . rfft2(z): z (N, C, X, Y) real, t (X (Y/2+1) 2) from h1_weights
 * -> real (N, C, X (Y/2+1) 2), whose squared norm per sample is X Y times the sample's squared H1
 * norm (HsLoss's, summed over channels).
 * Why this form: it takes one forward transform per tensor and one elementwise product. The
 * filter form G z = irfft(sqrt(w) . rfft z) adds an inverse transform each way, and the former
 * path, core's spectral convolution keeping every mode (whose equal-size mode blocks cannot hold
 * an odd axis's k = 0..(X-1)/2, -(X-1)/2..-1), also a per-mode product. Loss + backward, batch 8,
 * one channel, one thread, release build, the forms interleaved (bench/bench_h1.c, `bench_h1 60
 * 1`, load average 13 on 2 shared cores): 256^2: this form 12.2 ms, the filter form from core ops
 * 21.3 ms (1.7x), the spectral convolution 42.4 ms (3.5x); 85^2: 1.3 ms, 6.5 ms (4.9x), and
 * 1.6 ms (1.2x, at 84^2). In four other runs (load 13-14, 1 and 2 threads) this form was the
 * fastest each time. */
static opl_tensor *h1_spectrum(opl_ctx *c, opl_tensor *z, opl_tensor *t) {
  if (!z || !t) return NULL;
  int64_t flat[3] = {z->shape[0], z->shape[1], t->numel};
  return opl_mul(c, opl_reshape(c, opl_view_as_real(c, opl_rfft(c, z, 2)), 3, flat), t);
}

opl_tensor *opl_h1_rel_loss(opl_ctx *c, opl_tensor *pred, opl_tensor *y, opl_reduction red) {
  if (opl_ctx_status(c)) return NULL;
  if (!opl_check_input(c, "h1_rel_loss", "pred", pred, 4, 0) || !opl_check_input(c, "h1_rel_loss", "y", y, 4, 0))
    return NULL;
  char b1[96], b2[96];
  if (!opl_shape_eq(pred->rank, pred->shape, y->rank, y->shape)) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "h1_rel_loss: prediction %s and target %s must have one shape (N, C, X, Y)",
                  opl_shape_str(b1, pred->rank, pred->shape), opl_shape_str(b2, y->rank, y->shape));
    return NULL;
  }
  opl_tensor *t = h1_weights(c, pred->shape[2], pred->shape[3]);
  return opl_rel_lp_loss(c, h1_spectrum(c, pred, t), h1_spectrum(c, y, t), 2, red);
}

int opl_h1_rel_per_sample(const opl_real *pred, const opl_real *y, int64_t n, int64_t C, int64_t X, int64_t Y,
                          double *out, opl_err *err) {
  if (!pred || !y || !out) return opl_err_set(err, OPL_ERR_ARG, "h1_rel_per_sample: NULL array");
  if (n < 1 || C < 1 || X < 1 || Y < 1)
    return opl_err_set(err, OPL_ERR_SHAPE, "h1_rel_per_sample: shape [%lld, %lld, %lld, %lld], expected [n, C, X, Y] >= 1",
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
