/* opl — parameter initializers with PyTorch's defaults (see init.h). */
#include <math.h>
#include <stdio.h>
#include "core/internal.h"
#include "core/init.h"

/* A label for messages: "'name' (2, 3)" or "(2, 3)". buf: at least 192 bytes. */
static const char *label(const opl_tensor *t, char *buf, size_t len) {
  char s[96];
  opl_shape_str(s, t->rank, t->shape);
  if (t->name[0]) snprintf(buf, len, "'%s' %s", t->name, s);
  else snprintf(buf, len, "%s", s);
  return buf;
}

/* Common checks: t not NULL with data, r not NULL (if need_rng), complex-ness (cplx: -1 any,
 * 0 real, 1 complex). Returns OPL_OK or the status set in err. */
static int check(const char *op, opl_rng *r, int need_rng, const opl_tensor *t, int cplx,
                 opl_err *err) {
  char b[192];
  if (!t || !t->data) return opl_err_set(err, OPL_ERR_ARG, "%s: tensor is NULL", op);
  if (need_rng && !r) return opl_err_set(err, OPL_ERR_ARG, "%s: rng is NULL", op);
  if (cplx == 0 && opl_is_complex(t))
    return opl_err_set(err, OPL_ERR_ARG, "%s: tensor %s must be real, got a complex tensor", op,
                       label(t, b, sizeof b));
  if (cplx == 1 && !opl_is_complex(t))
    return opl_err_set(err, OPL_ERR_ARG, "%s: tensor %s must be complex, got a real tensor", op,
                       label(t, b, sizeof b));
  return OPL_OK;
}

int64_t opl_init_fan_in(const opl_tensor *w) {
  OPL_ASSERT(w != NULL);
  if (w->rank < 2) return w->numel;
  return opl_prod(w->shape, 1, w->rank);
}

int opl_init_kaiming_uniform(opl_rng *r, opl_tensor *w, int64_t fan_in, double a, opl_err *err) {
  int st = check("kaiming_uniform", r, 1, w, 0, err);
  if (st) return st;
  if (fan_in < 1)
    return opl_err_set(err, OPL_ERR_ARG, "kaiming_uniform: fan_in = %lld must be >= 1",
                       (long long)fan_in);
  if (!isfinite(a))
    return opl_err_set(err, OPL_ERR_ARG, "kaiming_uniform: a = %g must be finite", a);
  double gain = sqrt(2.0 / (1.0 + a * a));
  double bound = gain * sqrt(3.0 / (double)fan_in);
  opl_rng_fill_uniform(r, w->data, opl_nreal(w), -bound, bound);
  return OPL_OK;
}

int opl_init_bias_uniform(opl_rng *r, opl_tensor *b, int64_t fan_in, opl_err *err) {
  int st = check("bias_uniform", r, 1, b, 0, err);
  if (st) return st;
  if (fan_in < 1)
    return opl_err_set(err, OPL_ERR_ARG, "bias_uniform: fan_in = %lld must be >= 1",
                       (long long)fan_in);
  double bound = 1.0 / sqrt((double)fan_in);
  opl_rng_fill_uniform(r, b->data, opl_nreal(b), -bound, bound);
  return OPL_OK;
}

int opl_init_fno_spectral(opl_rng *r, opl_tensor *w, int64_t in_ch, int64_t out_ch,
                          opl_err *err) {
  char b[192];
  int st = check("fno_spectral", r, 1, w, 1, err);
  if (st) return st;
  if (in_ch < 1 || out_ch < 1)
    return opl_err_set(err, OPL_ERR_ARG, "fno_spectral: in_ch = %lld and out_ch = %lld must be >= 1",
                       (long long)in_ch, (long long)out_ch);
  if (w->rank < 2 || w->shape[0] != in_ch || w->shape[1] != out_ch)
    return opl_err_set(err, OPL_ERR_SHAPE,
                       "fno_spectral: weight %s must have shape (%lld, %lld, ...) (in_ch, out_ch, modes)",
                       label(w, b, sizeof b), (long long)in_ch, (long long)out_ch);
  double scale = 1.0 / ((double)in_ch * (double)out_ch);
  opl_rng_fill_uniform(r, w->data, opl_nreal(w), 0.0, scale);
  return OPL_OK;
}

int opl_init_uniform(opl_rng *r, opl_tensor *t, double lo, double hi, opl_err *err) {
  int st = check("init_uniform", r, 1, t, -1, err);
  if (st) return st;
  if (!isfinite(lo) || !isfinite(hi) || lo > hi)
    return opl_err_set(err, OPL_ERR_ARG, "init_uniform: bounds lo = %g, hi = %g must be finite with lo <= hi",
                       lo, hi);
  opl_rng_fill_uniform(r, t->data, opl_nreal(t), lo, hi);
  return OPL_OK;
}

int opl_init_normal(opl_rng *r, opl_tensor *t, double mean, double std, opl_err *err) {
  int st = check("init_normal", r, 1, t, -1, err);
  if (st) return st;
  if (!isfinite(mean) || !isfinite(std) || std < 0)
    return opl_err_set(err, OPL_ERR_ARG, "init_normal: mean = %g, std = %g must be finite with std >= 0",
                       mean, std);
  opl_rng_fill_normal(r, t->data, opl_nreal(t), mean, std);
  return OPL_OK;
}

int opl_init_constant(opl_tensor *t, double value, opl_err *err) {
  int st = check("init_constant", NULL, 0, t, -1, err);
  if (st) return st;
  if (!isfinite(value))
    return opl_err_set(err, OPL_ERR_ARG, "init_constant: value = %g must be finite", value);
  int64_t n = opl_nreal(t);
  opl_real v = (opl_real)value;
  if (opl_is_complex(t)) {
    for (int64_t i = 0; i < n; i += 2) {
      t->data[i] = v;
      t->data[i + 1] = 0;
    }
  } else {
    for (int64_t i = 0; i < n; i++) t->data[i] = v;
  }
  return OPL_OK;
}
