/* Training losses (train/loss.h): the H1 relative loss in closed form on sine fields (including
 * HsLoss's truncation at |k| >= 20), against a direct full 2-D DFT in double on odd and mixed
 * grids (numpy's fftfreq wavenumbers, written out here independently of the library), its
 * gradient by finite differences (1e-6 in the double build) on even and odd grids, bad shapes;
 * the per-sample form on plain arrays. The per-field relative L2 (SineNet's scaled L2): its
 * value against a direct sum, its reductions, gradient rows, bad shapes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/tap.h"
#include "tests/gradcheck.h"
#include "train/loss.h"

static opl_tensor *h1_sum(opl_ctx *c, opl_tensor **in, const void *opt) {
  (void)opt;
  return opl_h1_rel_loss(c, in[0], in[1], OPL_REDUCE_SUM);
}

static opl_tensor *field_sum(opl_ctx *c, opl_tensor **in, const void *opt) {
  (void)opt;
  return opl_field_rel_l2_loss(c, in[0], in[1], OPL_REDUCE_SUM);
}
static opl_tensor *field_mean(opl_ctx *c, opl_tensor **in, const void *opt) {
  (void)opt;
  return opl_field_rel_l2_loss(c, in[0], in[1], OPL_REDUCE_MEAN);
}

/* The per-field relative L2 of p, y (N, C, P) by a direct double sum: red 1 sum over n of the
 * mean over c, 0 the mean over (n, c). */
static double field_direct(const opl_real *p, const opl_real *y, int N, int C, int P, int sum) {
  double t = 0;
  for (int n = 0; n < N; n++)
    for (int k = 0; k < C; k++) {
      double d = 0, v = 0;
      for (int i = 0; i < P; i++) {
        double a = p[(n * C + k) * P + i], b = y[(n * C + k) * P + i];
        d += (a - b) * (a - b), v += b * b;
      }
      t += sqrt(d) / sqrt(v);
    }
  return sum ? t / C : t / (N * C);
}

/* loss of y = sin(2 pi ky0 x) and p = y + eps sin(2 pi kp x') on a 64 x 32 grid; axis_p 0: the
 * perturbation varies along X, 1: along Y. */
static double sine_case(int ky0, int kp, int axis_p, double eps) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *p = opl_new(c, OPL_DIMS(1, 1, 64, 32)), *y = opl_new(c, OPL_DIMS(1, 1, 64, 32));
  for (int i = 0; i < 64; i++)
    for (int j = 0; j < 32; j++) {
      double yv = sin(2 * M_PI * ky0 * j / 32.0);
      double d = axis_p ? sin(2 * M_PI * kp * j / 32.0) : sin(2 * M_PI * kp * i / 64.0);
      y->data[i * 32 + j] = (opl_real)yv;
      p->data[i * 32 + j] = (opl_real)(yv + eps * d);
    }
  opl_tensor *l = opl_h1_rel_loss(c, p, y, OPL_REDUCE_SUM);
  double v = l ? l->data[0] : NAN;
  opl_ctx_free(&c);
  return v;
}

/* numpy.fft.fftfreq(n) * n at index i: 0, 1, ..., (n-1)//2, then -(n//2), ..., -1 */
static int fftfreq(int i, int n) { return i < (n - 1) / 2 + 1 ? i : i - n; }

/* HsLoss (k = 1, truncation at |k| >= 20) of one sample's channels by the definition: the full
 * complex DFT over (X, Y) of each channel, O(X^2 Y^2), in double. Returns sum_k w |D_k|^2 of d
 * [C, X, Y] (d a plain double array). */
static double h1_sq_direct(const double *d, int C, int X, int Y) {
  double s = 0;
  for (int ch = 0; ch < C; ch++)
    for (int kx = 0; kx < X; kx++)
      for (int ky = 0; ky < Y; ky++) {
        double re = 0, im = 0;
        for (int i = 0; i < X; i++)
          for (int j = 0; j < Y; j++) {
            double ph = -2 * M_PI * ((double)kx * i / X + (double)ky * j / Y), v = d[(ch * X + i) * Y + j];
            re += v * cos(ph), im += v * sin(ph);
          }
        int ax = abs(fftfreq(kx, X)), ay = abs(fftfreq(ky, Y));
        ax = ax < 20 ? ax : 0, ay = ay < 20 ? ay : 0;
        s += (1.0 + ax * ax + ay * ay) * (re * re + im * im);
      }
  return s;
}

/* opl_h1_rel_loss (reduction red) on random (N, C, X, Y) fields against the direct DFT. */
static void direct_case(int N, int C, int X, int Y, opl_reduction red, uint64_t seed) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *p = opl_new(c, OPL_DIMS(N, C, X, Y)), *y = opl_new(c, OPL_DIMS(N, C, X, Y));
  int per = C * X * Y;
  double *dd = malloc(sizeof(double) * (size_t)per), *yd = malloc(sizeof(double) * (size_t)per), want = 0;
  for (int n = 0; n < N; n++) {
    for (int k = 0; k < per; k++) {
      y->data[n * per + k] = (opl_real)(2 * gc_uniform(&seed) - 1);
      p->data[n * per + k] = (opl_real)(y->data[n * per + k] + 0.3 * (2 * gc_uniform(&seed) - 1));
      yd[k] = y->data[n * per + k], dd[k] = (double)p->data[n * per + k] - yd[k];
    }
    want += sqrt(h1_sq_direct(dd, C, X, Y) / h1_sq_direct(yd, C, X, Y));
  }
  if (red == OPL_REDUCE_MEAN) want /= N;
  opl_tensor *l = opl_h1_rel_loss(c, p, y, red);
  is_close(l ? l->data[0] : NAN, want, sizeof(opl_real) == 8 ? 1e-12 : 2e-5, 0,
           "(%d, %d, %d, %d) %s against the direct DFT: %s", N, C, X, Y, red == OPL_REDUCE_MEAN ? "mean" : "sum",
           opl_ctx_errmsg(c));
  free(dd), free(yd);
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  double tol = sizeof(opl_real) == 8 ? 1e-12 : 1e-5;
  /* single sines have equal L2 norms, so the ratio is eps sqrt(w(kp) / w(ky0)) */
  is_close(sine_case(1, 3, 1, 1e-2), 1e-2 * sqrt(10.0 / 2.0), tol, 0, "sin k=1 target, k=3 error: eps sqrt(10/2)");
  is_close(sine_case(2, 5, 0, 1e-1), 1e-1 * sqrt(26.0 / 5.0), tol, 0, "k=2 target, k=5 error along X: eps sqrt(26/5)");
  is_close(sine_case(1, 25, 0, 1e-1), 1e-1 * sqrt(1.0 / 2.0), tol, 0,
           "error at |kx| = 25 >= 20: truncated, weight 1: eps sqrt(1/2)");
  is_close(sine_case(4, 4, 1, 0.5), 0.5, tol, 0, "error in the target's own mode: eps");

  static const gc_case rows[] = {
      {"h1_rel_loss sum (2, 3, 8, 6)", h1_sum, NULL, 2, {{4, {2, 3, 8, 6}, 0, 0, 0}, {4, {2, 3, 8, 6}, 0, 0, 1}}, 0, 0},
      {"h1_rel_loss sum (1, 1, 4, 5)", h1_sum, NULL, 2, {{4, {1, 1, 4, 5}, 0, 0, 0}, {4, {1, 1, 4, 5}, 0, 0, 0}}, 0, 0},
      {"h1_rel_loss sum odd (2, 2, 5, 7)", h1_sum, NULL, 2, {{4, {2, 2, 5, 7}, 0, 0, 0}, {4, {2, 2, 5, 7}, 0, 0, 1}}, 0, 0},
      {"h1_rel_loss sum odd X (1, 1, 9, 6)", h1_sum, NULL, 2, {{4, {1, 1, 9, 6}, 0, 0, 0}, {4, {1, 1, 9, 6}, 0, 0, 1}}, 0, 0},
  };
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));

  /* the definition, on odd, mixed and even grids (43: odd with |k| up to 21, so the truncation
   * and the odd axis's last positive bin meet) */
  direct_case(1, 1, 5, 7, OPL_REDUCE_SUM, 1);
  direct_case(2, 1, 9, 9, OPL_REDUCE_SUM, 2);
  direct_case(3, 2, 7, 4, OPL_REDUCE_MEAN, 3);
  direct_case(2, 1, 6, 9, OPL_REDUCE_SUM, 4);
  direct_case(1, 1, 8, 6, OPL_REDUCE_SUM, 5);
  direct_case(1, 1, 1, 5, OPL_REDUCE_SUM, 6);
  direct_case(1, 1, 43, 41, OPL_REDUCE_SUM, 7);

  /* per-field relative L2: fields of very different scales weigh the same (the point of the
   * per-field ratio), against a direct sum; both reductions */
  {
    opl_ctx *fc = opl_ctx_new(0);
    enum { N = 2, C = 3, X = 4, Y = 5, P = X * Y };
    opl_tensor *p = opl_new(fc, OPL_DIMS(N, C, X, Y)), *y = opl_new(fc, OPL_DIMS(N, C, X, Y));
    for (int i = 0; i < N * C * P; i++) {
      double scale = (i / P) % C == 1 ? 1e3 : 1.0; /* field 1 a thousand times larger */
      y->data[i] = (opl_real)(scale * (1.5 + sin(0.7 * i)));
      p->data[i] = (opl_real)(y->data[i] + 0.1 * cos(1.3 * i)); /* one absolute error in every field */
    }
    opl_tensor *ls = opl_field_rel_l2_loss(fc, p, y, OPL_REDUCE_SUM), *lm = opl_field_rel_l2_loss(fc, p, y, OPL_REDUCE_MEAN);
    double ds = field_direct(p->data, y->data, N, C, P, 1), dm = field_direct(p->data, y->data, N, C, P, 0);
    is_close(ls ? ls->data[0] : NAN, ds, tol, 0, "field_rel_l2_loss sum: sum over samples of the mean over fields");
    is_close(lm ? lm->data[0] : NAN, dm, tol, 0, "field_rel_l2_loss mean: the mean over samples and fields");
    /* the small fields' errors count at their own scale, where the relative L2 of the whole
     * sample hides them under the large field's norm */
    opl_tensor *lw = opl_rel_lp_loss(fc, p, y, 2, OPL_REDUCE_SUM);
    ok(ls && lw && ls->data[0] > 100 * lw->data[0], "per field >> per sample when one field is 1000x larger (%g vs %g)",
       ls ? (double)ls->data[0] : NAN, lw ? (double)lw->data[0] : NAN);
    opl_tensor *a = opl_new(fc, OPL_DIMS(2, 3, 4, 5)), *b = opl_new(fc, OPL_DIMS(2, 3, 5, 4));
    ok(opl_field_rel_l2_loss(fc, a, b, OPL_REDUCE_SUM) == NULL && opl_ctx_status(fc) == OPL_ERR_SHAPE &&
           strstr(opl_ctx_errmsg(fc), "(2, 3, 4, 5)") && strstr(opl_ctx_errmsg(fc), "(2, 3, 5, 4)"),
       "field_rel_l2_loss: different shapes refused naming both: %s", opl_ctx_errmsg(fc));
    opl_ctx_free(&fc);
  }
  static const gc_case frows[] = {
      {"field_rel_l2_loss sum (2, 3, 4, 5)", field_sum, NULL, 2, {{4, {2, 3, 4, 5}, 0, 0, 0}, {4, {2, 3, 4, 5}, 0, 0, 1}}, 0, 0},
      {"field_rel_l2_loss mean (3, 2, 6)", field_mean, NULL, 2, {{3, {3, 2, 6}, 0, 0, 0}, {3, {3, 2, 6}, 0, 0, 1}}, 0, 0},
      {"field_rel_l2_loss sum (1, 1, 4, 4)", field_sum, NULL, 2, {{4, {1, 1, 4, 4}, 0, 0, 0}, {4, {1, 1, 4, 4}, 0, 0, 0}}, 0, 0},
  };
  gc_run_table(frows, 3);

  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *a = opl_new(c, OPL_DIMS(1, 1, 5, 4)), *b = opl_new(c, OPL_DIMS(1, 1, 5, 5));
  ok(opl_h1_rel_loss(c, a, b, OPL_REDUCE_SUM) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "(1, 1, 5, 4)") && strstr(opl_ctx_errmsg(c), "(1, 1, 5, 5)"),
     "different shapes refused, naming both: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
  /* per sample on plain arrays: sample 0 the k=1 / k=3 case above, sample 1 the k=2 / k=5 case
   * along X; equal to the batched loss's terms */
  {
    static opl_real pp[2 * 64 * 32], yy[2 * 64 * 32];
    for (int i = 0; i < 64; i++)
      for (int j = 0; j < 32; j++) {
        double y0 = sin(2 * M_PI * j / 32.0), y1 = sin(2 * M_PI * 2 * j / 32.0);
        yy[i * 32 + j] = (opl_real)y0, pp[i * 32 + j] = (opl_real)(y0 + 1e-2 * sin(2 * M_PI * 3 * j / 32.0));
        yy[2048 + i * 32 + j] = (opl_real)y1, pp[2048 + i * 32 + j] = (opl_real)(y1 + 1e-1 * sin(2 * M_PI * 5 * i / 64.0));
      }
    double r[2] = {NAN, NAN};
    opl_err e = {0};
    ok(opl_h1_rel_per_sample(pp, yy, 2, 1, 64, 32, r, &e) == OPL_OK, "h1 per sample: %s", e.msg);
    is_close(r[0], 1e-2 * sqrt(10.0 / 2.0), tol, 0, "per sample 0: eps sqrt(10/2)");
    is_close(r[1], 1e-1 * sqrt(26.0 / 5.0), tol, 0, "per sample 1: eps sqrt(26/5)");
    /* the same two samples read as (2, 1, 63, 32) and (2, 1, 32, 63) fields: any extent, each
     * sample's value equal to the batched loss on it */
    for (int t = 0; t < 2; t++) {
      int64_t X = t ? 32 : 63, Y = t ? 63 : 32;
      double r2[2] = {NAN, NAN};
      int rc = opl_h1_rel_per_sample(pp, yy, 2, 1, X, Y, r2, &e);
      opl_ctx *cc = opl_ctx_new(0);
      opl_tensor *p1 = opl_new(cc, OPL_DIMS(1, 1, X, Y)), *y1 = opl_new(cc, OPL_DIMS(1, 1, X, Y));
      memcpy(p1->data, pp + X * Y, sizeof(opl_real) * (size_t)(X * Y));
      memcpy(y1->data, yy + X * Y, sizeof(opl_real) * (size_t)(X * Y));
      opl_tensor *l1 = opl_h1_rel_loss(cc, p1, y1, OPL_REDUCE_SUM);
      ok(rc == OPL_OK && l1 && r2[1] == l1->data[0] && r2[0] > 0 && isfinite(r2[0]),
         "per sample on (2, 1, %lld, %lld): %g, %g (batched %g) %s", (long long)X, (long long)Y, r2[0], r2[1],
         l1 ? l1->data[0] : NAN, e.msg);
      opl_ctx_free(&cc);
    }
    ok(opl_h1_rel_per_sample(pp, yy, 1, 1, 0, 32, r, &e) == OPL_ERR_SHAPE && strstr(e.msg, "[1, 1, 0, 32]"),
       "per sample, X = 0 refused: %s", e.msg);
    static opl_real zero[64 * 32];
    ok(opl_h1_rel_per_sample(pp, zero, 1, 1, 64, 32, r, &e) != OPL_OK && strstr(e.msg, "sample 0"),
       "per sample, a zero target refused naming the sample: %s", e.msg);
  }
  ok(opl_loss_parse("h1") == OPL_LOSS_H1 && opl_loss_parse("l2") == OPL_LOSS_L2 && opl_loss_parse("h2") == -1 &&
         opl_loss_parse("l2-field") == OPL_LOSS_L2_FIELD && !strcmp(opl_loss_name(OPL_LOSS_L2_FIELD), "l2-field"),
     "loss names");
  return tap_end();
}
