/* bench_h1 — the H1 relative loss (train/loss.h) forward + backward in its three possible forms,
 * at the MgNO Darcy shapes (batch 8, one channel): 85 x 85 (the fno preset subsampled by 5) and
 * 256 x 256 (the rough set as stored):
 *   parseval  opl_h1_rel_loss: relative L2 of t . rfft2(p) against t . rfft2(y) on the half
 *             spectrum (t: sqrt of the H1 weight times the column multiplicity);
 *   filter    G p, G y with G = irfft(sqrt(w) . rfft(.)) as core ops (rfft, view_as_real, mul,
 *             a complex view of the product, irfft), then their relative L2;
 *   sconv     the same G through opl_spectral_conv keeping every mode (the former path; its
 *             mode blocks need an even X, so 84 x 84 stands in for 85 x 85).
 * Medians after warm-up, the forms interleaved; loss + backward into the prediction's gradient.
 *
 * usage: bench_h1 [iterations (default 30) [threads (default 1)]] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/ops.h"
#include "train/loss.h"
#include "bench/bench.h"

/* |k| in fftfreq order, truncated at OPL_H1_KMAX (as train/loss.c). */
static double kt(int64_t i, int64_t n) {
  int64_t k = i <= n / 2 ? i : n - i;
  return k < OPL_H1_KMAX ? (double)k : 0.0;
}

/* The complex view of a real (..., 2) tensor (the inverse of opl_view_as_real), with its own
 * tape node: gradients are stored alike, so backward adds them through. Bench only. */
static void as_complex_bw(opl_node *nd) {
  opl_real *g = opl_node_grad(nd, 0);
  if (g)
    for (int64_t i = 0; i < opl_nreal(nd->out); i++) g[i] += nd->out->grad[i];
}
/* G z: z (N, 1, X, Y) -> (N, 1, X, Y), filter form from core ops; w real (X (Y/2+1) 2). */
static opl_tensor *filter_ops(opl_ctx *c, opl_tensor *z, opl_tensor *w) {
  int64_t X = z->shape[2], Yh = z->shape[3] / 2 + 1, flat[3] = {z->shape[0], 1, X * Yh * 2};
  opl_tensor *s = opl_mul(c, opl_reshape(c, opl_view_as_real(c, opl_rfft(c, z, 2)), 3, flat), w);
  if (!s) return NULL;
  /* complex view of s: the same storage, shape (N, 1, X, Y/2+1) */
  opl_tensor *v = opl_view(c, s, 3, s->shape); /* an arena struct on s's data */
  if (!v) return NULL;
  int64_t cs[4] = {z->shape[0], 1, X, Yh};
  v->rank = 4;
  for (int i = 0; i < 5; i++) v->shape[i] = i < 4 ? cs[i] : 0;
  v->numel = s->numel / 2;
  v->flags |= OPL_T_COMPLEX;
  opl_record(c, "as_complex", as_complex_bw, v, 1, &s);
  return opl_irfft(c, v, 2, z->shape[3]);
}

typedef enum { PARSEVAL, FILTER, SCONV } form;
static const char *form_name[] = {"parseval", "filter", "sconv"};

/* One loss + backward of form f on p, y (N, 1, X, Y) in context c; returns the seconds taken and
 * the loss in *v. */
static double step(opl_ctx *c, form f, opl_tensor *p, opl_tensor *y, double *v) {
  int64_t N = p->shape[0], X = p->shape[2], Y = p->shape[3], Yh = Y / 2 + 1;
  opl_ctx_reset(c);
  opl_tensor_zero_grad(p);
  double a = now();
  opl_tensor *l = NULL;
  if (f == PARSEVAL) {
    l = opl_h1_rel_loss(c, p, y, OPL_REDUCE_SUM);
  } else {
    opl_tensor *w = f == SCONV ? opl_new_flags(c, OPL_DIMS(1, 1, X, Yh), OPL_T_COMPLEX)
                               : opl_new(c, OPL_DIMS(X * Yh * 2));
    for (int64_t i = 0; i < X; i++)
      for (int64_t j = 0; j < Yh; j++) {
        double ka = kt(i, X), kb = kt(j, Y), g = sqrt(1 + ka * ka + kb * kb);
        w->data[2 * (i * Yh + j)] = (opl_real)g;
        w->data[2 * (i * Yh + j) + 1] = f == SCONV ? 0 : (opl_real)g;
      }
    opl_tensor *gp, *gy;
    if (f == SCONV) {
      int modes[2] = {(int)(X / 2), (int)Yh};
      int64_t flat[4] = {N, 1, X, Y};
      gp = opl_spectral_conv(c, opl_reshape(c, p, 4, flat), w, 2, modes);
      gy = opl_spectral_conv(c, y, w, 2, modes);
    } else {
      gp = filter_ops(c, p, w);
      gy = filter_ops(c, y, w);
    }
    l = opl_rel_lp_loss(c, gp, gy, 2, OPL_REDUCE_SUM);
  }
  if (!l || opl_backward(c, l) != OPL_OK) {
    printf("%s %lldx%lld failed: %s\n", form_name[f], (long long)X, (long long)Y, opl_ctx_errmsg(c));
    exit(1);
  }
  *v = l->data[0];
  return now() - a;
}

static opl_tensor *field(int64_t X, int64_t Y, int flags, const opl_tensor *y) {
  opl_err err;
  opl_tensor *t = opl_tensor_alloc(OPL_DIMS(8, 1, X, Y), flags, &err);
  uint64_t s = 1;
  for (int64_t i = 0; i < t->numel; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    t->data[i] = y ? y->data[i] + (opl_real)(0.1 * ((double)(s >> 11) / 9007199254740992.0 - 0.5))
                   : (opl_real)sin(0.01 * (double)i);
  }
  return t;
}

/* The three forms at S x S (sconv at the even S - S % 2), batch 8, interleaved iteration by
 * iteration so that a shared machine's load falls on all of them alike. */
static void run(int64_t S, int iters) {
  int64_t Se = S - S % 2;
  opl_tensor *y = field(S, S, 0, NULL), *p = field(S, S, OPL_T_REQGRAD, y);
  opl_tensor *ye = field(Se, Se, 0, NULL), *pe = field(Se, Se, OPL_T_REQGRAD, ye);
  opl_ctx *c = opl_ctx_new(0);
  double *t[3], v[3];
  for (int f = 0; f < 3; f++) t[f] = malloc((size_t)iters * sizeof(double));
  for (int it = -3; it < iters; it++)
    for (int f = 0; f < 3; f++) {
      double dt = f == SCONV ? step(c, SCONV, pe, ye, &v[f]) : step(c, (form)f, p, y, &v[f]);
      if (it >= 0) t[f][it] = dt;
    }
  double m[3];
  for (int f = 0; f < 3; f++) {
    m[f] = median(t[f], iters);
    int64_t e = f == SCONV ? Se : S;
    printf("%-9s (8, 1, %3lld, %3lld): loss + backward %8.3f ms  (loss %.6f)\n", form_name[f], (long long)e,
           (long long)e, 1e3 * m[f], v[f]);
    free(t[f]);
  }
  printf("  at %lld: filter / parseval %.2f, sconv / parseval %.2f\n", (long long)S, m[FILTER] / m[PARSEVAL],
         m[SCONV] / m[PARSEVAL]);
  fflush(stdout);
  opl_ctx_free(&c);
  opl_tensor_free(&p), opl_tensor_free(&y), opl_tensor_free(&pe), opl_tensor_free(&ye);
}

int main(int argc, char **argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 30;
  if (iters < 1) iters = 30;
  opl_set_num_threads(argc > 2 ? atoi(argv[2]) : 1);
  printf("threads %d, %d iterations\n", opl_get_num_threads(), iters);
  run(85, iters);
  run(256, iters);
  return 0;
}
