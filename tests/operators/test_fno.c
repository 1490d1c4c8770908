/* FNO (operators/fno.c): forward against a direct (DFT-sum, no FFT) evaluation for d = 1, 2, 3;
 * gradient checks of the whole model (inputs and parameters) and of the rollout; an FNO-1d
 * overfitting 10 samples; save/load; exact resolution invariance of a hand-built operator;
 * parameter counts of the reference scripts; grid, rollout and FNO-3d input values; bad input. */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"
#include "core/init.h"
#include "core/io.h"
#include "core/optim.h"
#include "operators/fno.h"

#ifdef OPL_DOUBLE
#define TOL_DIRECT 1e-11
#define TOL_INVARIANCE 1e-10
#define GC_RTOL_MODEL 0    /* the default, 1e-6 */
#else
#define TOL_DIRECT 2e-5
#define TOL_INVARIANCE 1e-5
/* Finite differences in float (h = 1e-2) through a whole 3-layer model with O(1) weights: the
 * truncation error (h^2/6 times the third derivative) reaches ~1e-2 of the gradient on some
 * rows, so the whole-model rows get 5e-2 in single builds (the double build uses the default). */
#define GC_RTOL_MODEL 5e-2
#endif

/* ------------------------------------------------------------------ helpers */

static opl_tensor *heap(int rank, const int64_t *shape, int flags) {
  opl_err err;
  opl_tensor *t = opl_tensor_alloc(rank, shape, flags, &err);
  OPL_ASSERT(t, "%s", err.msg);
  return t;
}

static void fill_uniform(opl_tensor *t, double lo, double hi, uint64_t *s) {
  for (int64_t i = 0; i < opl_nreal(t); i++) t->data[i] = (opl_real)(lo + (hi - lo) * gc_uniform(s));
}

static double gelu_d(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }

/* A model from cfg with PyTorch-default init from seed, into m / p (p initialized here). */
static int build(opl_fno *m, opl_params *p, const opl_fno_config *cfg, uint64_t seed) {
  opl_params_init(p);
  opl_rng rng;
  opl_rng_seed(&rng, seed);
  opl_err err = {0};
  int st = opl_fno_init(m, p, cfg, &rng, &err);
  if (st) diag("fno init: %s", err.msg);
  return st == OPL_OK;
}

/* ------------------------------------------------------------------ direct evaluation */

/* Signed frequency of flat index kk over the spectral weight's mode axes (fno.h layout). */
static void mode_of(const opl_fno_config *cfg, int64_t kk, int64_t k[3]) {
  int d = cfg->d;
  for (int a = d - 1; a >= 0; a--) {
    int64_t m = cfg->modes[a], ext = a < d - 1 ? 2 * m : m, b = kk % ext;
    kk /= ext;
    k[a] = (a < d - 1 && b >= m) ? b - 2 * m : b;
  }
}

/* Index of point q of a grid of extents n[0..d) on each axis, into j[]. */
static void unravel(int d, const int64_t *n, int64_t q, int64_t *j) {
  for (int a = d - 1; a >= 0; a--) j[a] = q % n[a], q /= n[a];
}

/* out [N, C, P] += the spectral convolution of h [N, C, P] (P = prod Sp) with complex weights
 * wc (C, C, modes...), by direct sums: X_k = sum_q h_q e^{-i theta}, Y_k = sum_i X_k W_k,
 * out_q += (c_k / P) Re(Y_k e^{+i theta}), c_k = 1 on last-axis frequency 0, else 2. */
static void ref_spectral(const opl_fno_config *cfg, const opl_tensor *wc, int64_t N, int64_t C,
                         const int64_t *Sp, const double *h, double *out) {
  int d = cfg->d;
  int64_t P = 1, K = 1;
  for (int a = 0; a < d; a++) P *= Sp[a], K *= (a < d - 1 ? 2 : 1) * cfg->modes[a];
  double *cs = malloc(2 * P * sizeof *cs);
  double complex *X = malloc(C * sizeof *X);
  for (int64_t kk = 0; kk < K; kk++) {
    int64_t k[3], j[3];
    mode_of(cfg, kk, k);
    for (int64_t q = 0; q < P; q++) {
      unravel(d, Sp, q, j);
      double th = 0;
      for (int a = 0; a < d; a++) th += 2 * M_PI * (double)(k[a] * j[a] % Sp[a]) / (double)Sp[a];
      cs[2 * q] = cos(th), cs[2 * q + 1] = sin(th);
    }
    double ck = k[d - 1] == 0 ? 1 : 2;
    for (int64_t n = 0; n < N; n++) {
      for (int64_t i = 0; i < C; i++) {
        double complex s = 0;
        const double *hi = h + (n * C + i) * P;
        for (int64_t q = 0; q < P; q++) s += hi[q] * (cs[2 * q] - I * cs[2 * q + 1]);
        X[i] = s;
      }
      for (int64_t o = 0; o < C; o++) {
        double complex Y = 0;
        for (int64_t i = 0; i < C; i++) {
          const opl_real *w = wc->data + 2 * ((i * C + o) * K + kk);
          Y += X[i] * ((double)w[0] + I * (double)w[1]);
        }
        double *oo = out + (n * C + o) * P;
        for (int64_t q = 0; q < P; q++)
          oo[q] += ck / (double)P * (creal(Y) * cs[2 * q] - cimag(Y) * cs[2 * q + 1]);
      }
    }
  }
  free(cs);
  free(X);
}

/* The whole FNO in plain double loops: x [N, Cin, prod S] -> y [N, Cout, prod S]. */
static void ref_forward(const opl_fno *m, int64_t N, const int64_t *S, const double *x, double *y) {
  const opl_fno_config *cfg = &m->cfg;
  int d = cfg->d;
  int64_t Cin = cfg->in_channels, W = cfg->width, Pj = cfg->proj_channels, Co = cfg->out_channels;
  int64_t P = 1, Pp = 1, Sp[3];
  for (int a = 0; a < d; a++) Sp[a] = S[a] + cfg->pad[a], P *= S[a], Pp *= Sp[a];
  /* padded position of unpadded point q */
  int64_t *pos = malloc(P * sizeof *pos);
  for (int64_t q = 0; q < P; q++) {
    int64_t j[3], r = 0;
    unravel(d, S, q, j);
    for (int a = 0; a < d; a++) r = r * Sp[a] + j[a];
    pos[q] = r;
  }
  double *h = calloc(N * W * Pp, sizeof *h), *t = calloc(N * W * Pp, sizeof *t);
  int64_t Cl = Cin + d;
  for (int64_t n = 0; n < N; n++)
    for (int64_t q = 0; q < P; q++) {
      double f[16];
      int64_t j[3];
      unravel(d, S, q, j);
      for (int64_t c = 0; c < Cin; c++) f[c] = x[(n * Cin + c) * P + q];
      for (int a = 0; a < d; a++) f[Cin + a] = S[a] > 1 ? (double)j[a] / (double)(S[a] - 1) : 0;
      for (int64_t o = 0; o < W; o++) {
        double s = m->fc0_b->data[o];
        for (int64_t c = 0; c < Cl; c++) s += m->fc0_w->data[o * Cl + c] * f[c];
        h[(n * W + o) * Pp + pos[q]] = s;
      }
    }
  for (int l = 0; l < cfg->layers; l++) {
    memset(t, 0, N * W * Pp * sizeof *t);
    ref_spectral(cfg, m->conv[l], N, W, Sp, h, t);
    for (int64_t n = 0; n < N; n++)
      for (int64_t o = 0; o < W; o++)
        for (int64_t q = 0; q < Pp; q++) {
          double s = t[(n * W + o) * Pp + q] + m->w_b[l]->data[o];
          for (int64_t i = 0; i < W; i++) s += m->w_w[l]->data[o * W + i] * h[(n * W + i) * Pp + q];
          t[(n * W + o) * Pp + q] = l + 1 < cfg->layers ? gelu_d(s) : s;
        }
    double *sw = h;
    h = t, t = sw;
  }
  double *pj = malloc(Pj * sizeof *pj);
  for (int64_t n = 0; n < N; n++)
    for (int64_t q = 0; q < P; q++) {
      for (int64_t r = 0; r < Pj; r++) {
        double s = m->fc1_b->data[r];
        for (int64_t i = 0; i < W; i++) s += m->fc1_w->data[r * W + i] * h[(n * W + i) * Pp + pos[q]];
        pj[r] = gelu_d(s);
      }
      for (int64_t o = 0; o < Co; o++) {
        double s = m->fc2_b->data[o];
        for (int64_t r = 0; r < Pj; r++) s += m->fc2_w->data[o * Pj + r] * pj[r];
        y[(n * Co + o) * P + q] = s;
      }
    }
  free(pos), free(h), free(t), free(pj);
}

/* Small configurations for the direct and gradient tests. */
static opl_fno_config small_config(int d) {
  opl_fno_config cfg = opl_fno_config_default(d);
  cfg.in_channels = 2, cfg.out_channels = 2, cfg.width = 4, cfg.layers = 3, cfg.proj_channels = 5;
  if (d == 1) cfg.modes[0] = 4, cfg.pad[0] = 3;
  if (d == 2) cfg.modes[0] = 3, cfg.modes[1] = 2, cfg.pad[0] = 1, cfg.pad[1] = 2;
  if (d == 3) {
    cfg.modes[0] = 2, cfg.modes[1] = 1, cfg.modes[2] = 2, cfg.pad[2] = 2;
    cfg.out_channels = 1;
  }
  return cfg;
}
static const int64_t small_S[4][3] = {{0}, {13}, {7, 6}, {5, 4, 6}};

static void test_direct(int d) {
  opl_fno_config cfg = small_config(d);
  opl_fno m;
  opl_params p;
  if (!build(&m, &p, &cfg, 100 + d)) {
    ok(0, "direct %d-D: build", d);
    return;
  }
  /* Spectral weights of the size of the pointwise ones, so that the Fourier path matters. */
  opl_rng rng;
  opl_rng_seed(&rng, 7);
  for (int l = 0; l < cfg.layers; l++) opl_init_uniform(&rng, m.conv[l], -0.5, 0.5, NULL);
  const int64_t *S = small_S[d];
  int64_t N = 2, shape[5] = {N, cfg.in_channels, S[0], S[1], S[2]}, P = 1;
  for (int a = 0; a < d; a++) P *= S[a];
  opl_tensor *x = heap(d + 2, shape, 0);
  uint64_t s = 99 + d;
  fill_uniform(x, -1, 1, &s);
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *y = opl_fno_forward(c, &m, x);
  int64_t ny = N * cfg.out_channels * P;
  ok(y && y->rank == d + 2 && y->shape[1] == cfg.out_channels && y->numel == ny,
     "forward %d-D: output shape (N, Cout, *S)%s%s", d, y ? "" : ": ", y ? "" : opl_ctx_errmsg(c));
  if (y) {
    double *xd = malloc(x->numel * sizeof *xd), *want = malloc(ny * sizeof *want),
           *got = malloc(ny * sizeof *got), scale = 0;
    for (int64_t i = 0; i < x->numel; i++) xd[i] = x->data[i];
    ref_forward(&m, N, S, xd, want);
    for (int64_t i = 0; i < ny; i++) got[i] = y->data[i], scale = fmax(scale, fabs(want[i]));
    arrays_close(ny, got, want, TOL_DIRECT, TOL_DIRECT * scale,
                 "forward %d-D (pad, %d layers) equals the direct DFT evaluation (max |y| %.3g)", d,
                 cfg.layers, scale);
    free(xd), free(want), free(got);
    /* Inference without a tape takes another path (two ping-pong buffers, arena rewound per
     * layer): it must give the same bits as the recording path, and use less arena memory. */
    opl_ctx *c2 = opl_ctx_new(0);
    opl_ctx_set_grad_enabled(c2, 0);
    opl_tensor *y2 = opl_fno_forward(c2, &m, x);
    int same = y2 && y2->numel == y->numel;
    for (int64_t i = 0; same && i < ny; i++) same = y2->data[i] == y->data[i];
    opl_ctx_stats s1, s2;
    opl_ctx_get_stats(c, &s1);
    opl_ctx_get_stats(c2, &s2);
    ok(same, "forward %d-D without a tape equals the recording forward bit for bit", d);
    ok(s2.arena_high < s1.arena_high, "forward %d-D without a tape: arena high-water %zu < %zu bytes", d,
       s2.arena_high, s1.arena_high);
    opl_ctx_free(&c2);
  }
  opl_ctx_free(&c);
  opl_tensor_free(&x);
  opl_params_free(&p);
}

/* ------------------------------------------------------------------ gradient checks */

enum { S_X, S_FC0W, S_FC0B, S_CONV, S_WW, S_WB, S_FC1W, S_FC1B, S_FC2W, S_FC2B };
#define SLOT(kind, l) ((kind) * 32 + (l))

typedef struct gc_fno {
  const opl_fno *m;
  opl_tensor *x;         /* input used when x is not a gc input */
  int nin;
  int slot[OPL_MAX_INPUTS];
  int rollout;           /* 0: forward; else the number of rollout steps */
  int input3d;           /* > 0: the input is opl_fno3d_input(x, input3d) */
} gc_fno;

static opl_tensor **slot_ptr(opl_fno *m, int s) {
  int l = s % 32;
  switch (s / 32) {
    case S_FC0W: return &m->fc0_w;
    case S_FC0B: return &m->fc0_b;
    case S_CONV: return &m->conv[l];
    case S_WW: return &m->w_w[l];
    case S_WB: return &m->w_b[l];
    case S_FC1W: return &m->fc1_w;
    case S_FC1B: return &m->fc1_b;
    case S_FC2W: return &m->fc2_w;
    case S_FC2B: return &m->fc2_b;
    default: return NULL;
  }
}

/* The model with some parameters replaced by gc inputs, applied to x (a gc input or fixed). */
static opl_tensor *f_fno(opl_ctx *c, opl_tensor **in, const void *opt) {
  const gc_fno *o = opt;
  opl_fno m = *o->m;
  opl_tensor *x = o->x;
  for (int i = 0; i < o->nin; i++) {
    if (o->slot[i] == S_X)
      x = in[i];
    else
      *slot_ptr(&m, o->slot[i]) = in[i];
  }
  if (o->input3d) x = opl_fno3d_input(c, x, o->input3d);
  return o->rollout ? opl_fno_rollout(c, &m, x, o->rollout) : opl_fno_forward(c, &m, x);
}

static opl_tensor *f_input3d(opl_ctx *c, opl_tensor **in, const void *opt) {
  return opl_fno3d_input(c, in[0], *(const int64_t *)opt);
}

/* A gc row named name over the slots of the model (its tensors' shapes). */
static gc_case gc_row(const char *name, gc_fno *o, int nin, const int *slots) {
  gc_case g;
  memset(&g, 0, sizeof g);
  g.name = name, g.fn = f_fno, g.opt = o, g.nin = nin, g.rtol = GC_RTOL_MODEL;
  o->nin = nin;
  for (int i = 0; i < nin; i++) {
    o->slot[i] = slots[i];
    const opl_tensor *t = slots[i] == S_X ? o->x : *slot_ptr((opl_fno *)o->m, slots[i]);
    g.in[i].rank = t->rank;
    memcpy(g.in[i].shape, t->shape, sizeof t->shape);
    g.in[i].cplx = opl_is_complex(t);
  }
  return g;
}

/* Re-initialize every parameter of p with U(-1, 1) (real and imaginary parts alike), so that
 * the gradients are of order 1 and finite differences are far above rounding. */
static void gc_scale_params(opl_params *p, uint64_t seed) {
  opl_rng rng;
  opl_rng_seed(&rng, seed);
  for (int i = 0; i < p->n; i++) opl_init_uniform(&rng, p->t[i], -1, 1, NULL);
}

static void test_gradients(void) {
  opl_fno m[4];
  opl_params p[4];
  opl_tensor *x[4];
  for (int d = 1; d <= 3; d++) {
    opl_fno_config cfg = small_config(d);
    OPL_ASSERT(build(&m[d], &p[d], &cfg, 200 + d));
    gc_scale_params(&p[d], 210 + d);
    int64_t shape[5] = {2, cfg.in_channels, small_S[d][0], small_S[d][1], small_S[d][2]};
    x[d] = heap(d + 2, shape, 0);
  }
  /* A 2-D model stepping 3 frames -> 1 frame, for the rollout. */
  opl_fno_config rc = opl_fno_config_default(2);
  rc.in_channels = 3, rc.width = 3, rc.modes[0] = 2, rc.modes[1] = 2, rc.layers = 2, rc.proj_channels = 4;
  opl_fno mr;
  opl_params pr;
  OPL_ASSERT(build(&mr, &pr, &rc, 300));
  gc_scale_params(&pr, 310);
  opl_tensor *xr = heap(OPL_DIMS(2, 3, 6, 5), 0);
  /* FNO-3d on repeated frames: 2 frames (N, 2, 4, 5) -> (N, 2, 4, 5, 6). */
  opl_fno_config c3 = small_config(3);
  c3.in_channels = 2;
  opl_fno m3;
  opl_params p3;
  OPL_ASSERT(build(&m3, &p3, &c3, 301));
  gc_scale_params(&p3, 311);
  opl_tensor *x3 = heap(OPL_DIMS(1, 2, 4, 5), 0);

  static gc_fno o[16];
  gc_case rows[16];
  int n = 0;
  static const char *names[4][3] = {
      {0},
      {"FNO-1d: x", "FNO-1d: x, conv0, conv2, fc0.weight", "FNO-1d: w0.weight, w2.bias, fc1.weight, fc2.weight"},
      {"FNO-2d: x", "FNO-2d: x, conv1, w1.weight, fc0.bias", "FNO-2d: conv0, conv2, fc1.bias, fc2.bias"},
      {"FNO-3d: x", "FNO-3d: x, conv0, conv2, w2.weight", "FNO-3d: fc0.weight, w0.bias, fc1.weight, fc2.weight"}};
  for (int d = 1; d <= 3; d++) {
    int a[1] = {S_X};
    int b1[4] = {S_X, SLOT(S_CONV, 0), SLOT(S_CONV, 2), SLOT(S_FC0W, 0)};
    int c1[4] = {SLOT(S_WW, 0), SLOT(S_WB, 2), SLOT(S_FC1W, 0), SLOT(S_FC2W, 0)};
    int b2[4] = {S_X, SLOT(S_CONV, 1), SLOT(S_WW, 1), SLOT(S_FC0B, 0)};
    int c2[4] = {SLOT(S_CONV, 0), SLOT(S_CONV, 2), SLOT(S_FC1B, 0), SLOT(S_FC2B, 0)};
    int b3[4] = {S_X, SLOT(S_CONV, 0), SLOT(S_CONV, 2), SLOT(S_WW, 2)};
    int c3s[4] = {SLOT(S_FC0W, 0), SLOT(S_WB, 0), SLOT(S_FC1W, 0), SLOT(S_FC2W, 0)};
    const int *bs = d == 1 ? b1 : d == 2 ? b2 : b3, *cs = d == 1 ? c1 : d == 2 ? c2 : c3s;
    for (int r = 0; r < 3; r++) {
      o[n].m = &m[d], o[n].x = x[d];
      rows[n] = gc_row(names[d][r], &o[n], r == 0 ? 1 : 4, r == 0 ? a : r == 1 ? bs : cs);
      n++;
    }
  }
  int rs[3] = {S_X, SLOT(S_CONV, 0), SLOT(S_WW, 1)};
  o[n].m = &mr, o[n].x = xr, o[n].rollout = 3;
  rows[n] = gc_row("FNO-2d rollout, 3 steps: x, conv0, w1.weight", &o[n], 3, rs);
  n++;
  int r3[2] = {S_X, SLOT(S_CONV, 1)};
  o[n].m = &m3, o[n].x = x3, o[n].input3d = 6;
  rows[n] = gc_row("FNO-3d on repeated frames: x, conv1", &o[n], 2, r3);
  n++;
  gc_run_table(rows, n);

  static const int64_t T6 = 6;
  const gc_case adj[] = {{"fno3d_input (2,3,4,5) T=6", f_input3d, &T6, 1, {{.rank = 4, .shape = {2, 3, 4, 5}}}}};
  gc_run_adjoint_table(adj, 1);
  gc_run_table(adj, 1);

  for (int d = 1; d <= 3; d++) opl_params_free(&p[d]), opl_tensor_free(&x[d]);
  opl_params_free(&pr), opl_tensor_free(&xr), opl_params_free(&p3), opl_tensor_free(&x3);
}

/* ------------------------------------------------------------------ overfitting */

/* FNO-1d learns the antiderivative map u -> v, v_x = 2 pi u, mean 0, on 10 smooth periodic
 * samples (s = 64): u = sum_{k=1..4} (a_k cos 2 pi k x + b_k sin 2 pi k x) / k, a, b ~ U(-1, 1),
 * v = sum_k (a_k sin 2 pi k x - b_k cos 2 pi k x) / k^2. Relative L2 loss, Adam with a cosine
 * schedule. Runs on one thread: the problem is tiny (10 x 16 x 64 activations), so on a shared
 * machine waking a second thread for each op costs more than the op; the test is about
 * convergence, and one thread also makes it bit-reproducible. */
static void test_overfit(void) {
  const int64_t N = 10, S = 64;
  opl_fno_config cfg = opl_fno_config_default(1);
  cfg.width = 16, cfg.modes[0] = 8, cfg.layers = 2, cfg.proj_channels = 32;
  opl_fno m;
  opl_params p;
  if (!build(&m, &p, &cfg, 11)) {
    ok(0, "overfit: build");
    return;
  }
  int threads = opl_get_num_threads();
  opl_set_num_threads(1);
  opl_tensor *x = heap(OPL_DIMS(N, 1, S), 0), *y = heap(OPL_DIMS(N, 1, S), 0);
  uint64_t s = 5;
  for (int64_t n = 0; n < N; n++) {
    double a[5], b[5];
    for (int k = 1; k <= 4; k++) a[k] = 2 * gc_uniform(&s) - 1, b[k] = 2 * gc_uniform(&s) - 1;
    for (int64_t j = 0; j < S; j++) {
      double xx = (double)j / S, u = 0, v = 0;
      for (int k = 1; k <= 4; k++) {
        u += (a[k] * cos(2 * M_PI * k * xx) + b[k] * sin(2 * M_PI * k * xx)) / k;
        v += (a[k] * sin(2 * M_PI * k * xx) - b[k] * cos(2 * M_PI * k * xx)) / (k * k);
      }
      x->data[n * S + j] = (opl_real)u, y->data[n * S + j] = (opl_real)v;
    }
  }
  const int steps = 1200;
  opl_err err = {0};
  opl_optim_config oc = opl_optim_defaults(OPL_OPTIM_ADAM);
  oc.lr = 3e-3;
  opl_optim *opt = opl_optim_create(OPL_OPTIM_ADAM, &p, &oc, &err);
  opl_sched_cosine sc;
  opl_sched_cosine_init(&sc, opt, oc.lr, steps, 0, &err);
  opl_ctx *c = opl_ctx_new(0);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  double loss = NAN;
  for (int it = 0; it < steps; it++) {
    opl_ctx_reset(c);
    opl_params_zero_grad(&p);
    opl_tensor *l = opl_rel_lp_loss(c, opl_fno_forward(c, &m, x), y, 2, OPL_REDUCE_MEAN);
    if (opl_backward(c, l)) break;
    loss = l->data[0];
    opl_optim_step(opt, NULL);
    opl_sched_cosine_step(&sc, opt);
  }
  /* final error after the last update, without recording */
  opl_ctx_reset(c);
  opl_ctx_set_grad_enabled(c, 0);
  opl_tensor *l = opl_rel_lp_loss(c, opl_fno_forward(c, &m, x), y, 2, OPL_REDUCE_MEAN);
  double fin = l ? l->data[0] : NAN;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  if (opl_ctx_status(c)) diag("ctx: %s", opl_ctx_errmsg(c));
  opl_set_num_threads(threads);
  ok(fin < 1e-3, "FNO-1d overfits 10 samples of u -> its antiderivative: relative L2 %.3e < 1e-3 (%d Adam steps, %.1f s, last training loss %.3e)",
     fin, steps, sec, loss);
  opl_optim_free(&opt);
  opl_ctx_free(&c);
  opl_tensor_free(&x), opl_tensor_free(&y);
  opl_params_free(&p);
}

/* ------------------------------------------------------------------ save / load */

static void test_save_load(void) {
  char path[256];
  snprintf(path, sizeof path, "/tmp/opl_test_fno_%d.h5", (int)getpid());
  opl_fno_config cfg = small_config(2);
  opl_fno m;
  opl_params p;
  OPL_ASSERT(build(&m, &p, &cfg, 400));
  opl_tensor *x = heap(OPL_DIMS(3, cfg.in_channels, 9, 8), 0);
  uint64_t s = 4;
  fill_uniform(x, -1, 1, &s);
  opl_err err = {0};
  opl_kv extra[2] = {OPL_KVS("dataset", "darcy_test"), OPL_KVI("epochs", 17)};
  int st = opl_fno_save(path, &m, &p, extra, 2, &err);
  ok(st == OPL_OK, "save: %s", st ? err.msg : "ok");

  opl_fno m2;
  opl_params p2;
  opl_params_init(&p2);
  st = opl_fno_load(path, &m2, &p2, &err);
  ok(st == OPL_OK, "load: %s", st ? err.msg : "ok");
  ok(st == OPL_OK && memcmp(&m2.cfg, &m.cfg, sizeof m.cfg) == 0, "loaded configuration equals the saved one");
  ok(opl_params_count(&p2) == opl_params_count(&p) && p2.n == p.n, "loaded %lld parameters in %d tensors",
     (long long)opl_params_count(&p2), p2.n);
  if (st == OPL_OK) {
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *y1 = opl_fno_forward(c, &m, x), *y2 = opl_fno_forward(c, &m2, x);
    ok(y1 && y2 && memcmp(y1->data, y2->data, opl_nreal(y1) * sizeof(opl_real)) == 0,
       "saved and loaded models predict bit-identical outputs");
    opl_ctx_free(&c);
  }
  opl_kv *kv = NULL;
  int nkv = 0;
  opl_checkpoint_read_meta(path, &kv, &nkv, NULL);
  const opl_kv *e = opl_kv_find(kv, nkv, "dataset"), *ep = opl_kv_find(kv, nkv, "epochs"),
               *mm = opl_kv_find(kv, nkv, "fno.modes1");
  ok(e && e->type == OPL_KV_STR && strcmp(e->s, "darcy_test") == 0 && ep && ep->i == 17 && mm &&
         mm->i == cfg.modes[1],
     "extra attributes and the configuration are in the file");
  opl_kv_free(&kv, nkv);

  /* Loading into a non-empty set is refused. */
  st = opl_fno_load(path, &m2, &p2, &err);
  ok(st == OPL_ERR_ARG && strstr(err.msg, "empty"), "load into a non-empty set: %s", err.msg);
  opl_params_free(&p2);
  /* The parameters of another configuration under this configuration's attributes. */
  opl_fno_config other = cfg;
  other.width = 5;
  opl_fno mo;
  opl_params po;
  OPL_ASSERT(build(&mo, &po, &other, 401));
  opl_kv meta[OPL_FNO_META_MAX];
  int nm = opl_fno_config_to_meta(&cfg, meta);
  OPL_ASSERT(opl_checkpoint_save(path, &po, NULL, meta, nm, NULL) == OPL_OK);
  opl_params_init(&p2);
  st = opl_fno_load(path, &m2, &p2, &err);
  ok(st == OPL_ERR_SHAPE && p2.n == 0 && m2.fc0_w == NULL,
     "weights that do not fit the attributes: shape error, set left empty: %s", err.msg);
  /* A checkpoint without the model attributes. */
  OPL_ASSERT(opl_checkpoint_save(path, &po, NULL, NULL, 0, NULL) == OPL_OK);
  st = opl_fno_load(path, &m2, &p2, &err);
  ok(st == OPL_ERR_FORMAT && strstr(err.msg, "model"), "checkpoint of no FNO: %s", err.msg);
  /* A tampered parameter count. */
  meta[nm - 1].i += 1;
  OPL_ASSERT(opl_checkpoint_save(path, &p, NULL, meta, nm, NULL) == OPL_OK);
  st = opl_fno_load(path, &m2, &p2, &err);
  ok(st == OPL_ERR_FORMAT && strstr(err.msg, "param_count"), "wrong fno.param_count: %s", err.msg);
  remove(path);
  st = opl_fno_load(path, &m2, &p2, &err);
  ok(st == OPL_ERR_NOTFOUND, "missing file: %s", err.msg);
  /* Saving with a foreign set, or a reserved extra key. */
  st = opl_fno_save(path, &m, &po, NULL, 0, &err);
  ok(st == OPL_ERR_ARG && strstr(err.msg, "fc0.weight"), "save with another model's parameters: %s", err.msg);
  opl_kv bad[1] = {OPL_KVI("fno.width", 3)};
  st = opl_fno_save(path, &m, &p, bad, 1, &err);
  ok(st == OPL_ERR_ARG && strstr(err.msg, "fno.width"), "reserved extra key: %s", err.msg);
  ok(access(path, F_OK) != 0, "failed saves leave no file");
  opl_params_free(&po);
  opl_params_free(&p);
  opl_tensor_free(&x);
}

/* ------------------------------------------------------------------ resolution invariance */

/* A real signal as a sum of terms Re(z e^{2 pi i k.x}), x in [0, 1)^d. */
typedef struct term {
  int64_t k[3];
  double complex z;
} term;
#define MAX_TERMS 256

/* Value of the signal at grid point j of resolution S. */
static double terms_eval(int d, const term *t, int n, const int64_t *j, const int64_t *S) {
  double s = 0;
  for (int i = 0; i < n; i++) {
    double th = 0;
    for (int a = 0; a < d; a++) th += 2 * M_PI * (double)t[i].k[a] * (double)j[a] / (double)S[a];
    s += creal(t[i].z * cexp(I * th));
  }
  return s;
}

/* The exact action of one hand-built layer on a signal (fno.h, opl_spectral_conv): with the
 * signal's continuous Fourier coefficients u_k (a term Re(z e^{ikx}) gives z/2 at k and
 * conj(z)/2 at -k), the spectral part is sum over kept half-spectrum modes kappa of
 * c_kappa Re(alpha_kappa u_kappa e^{i kappa x}) (c = 1 if kappa_last = 0, else 2); the
 * pointwise part multiplies the whole signal by gamma and adds bias. */
static int layer_exact(const opl_fno_config *cfg, const double complex *alpha, double gamma,
                       double bias, const term *in, int n, term *out) {
  int d = cfg->d, no = 0;
  int64_t K = 1;
  for (int a = 0; a < d; a++) K *= (a < d - 1 ? 2 : 1) * cfg->modes[a];
  for (int64_t kk = 0; kk < K; kk++) {
    int64_t k[3] = {0, 0, 0};
    mode_of(cfg, kk, k);
    double complex u = 0;
    for (int i = 0; i < n; i++) {
      int plus = 1, minus = 1;
      for (int a = 0; a < 3; a++) plus &= in[i].k[a] == k[a], minus &= in[i].k[a] == -k[a];
      if (plus) u += in[i].z / 2;
      if (minus) u += conj(in[i].z) / 2;
    }
    double ck = k[d - 1] == 0 ? 1 : 2;
    out[no].k[0] = k[0], out[no].k[1] = k[1], out[no].k[2] = k[2];
    out[no++].z = ck * alpha[kk] * u;
  }
  for (int i = 0; i < n; i++) out[no] = in[i], out[no++].z *= gamma;
  out[no].k[0] = out[no].k[1] = out[no].k[2] = 0, out[no++].z = bias;
  OPL_ASSERT(no <= MAX_TERMS);
  return no;
}

/* Hand-built model of width 2 that is exactly linear: channels carry (v, -v), and since
 * gelu(v) - gelu(-v) = v Phi(v) + v Phi(-v) = v for the exact GELU, every layer reads
 * v = ch0 - ch1 through weights (a, -a) and writes (A v, -A v); the projection computes
 * gelu(z) - gelu(-z) = z. Layer l: A_l v = spectral(alpha_l) v + gamma_l v + bias_l.
 * Evaluated at resolutions S and 2 S against the exact sum of terms. */
static void test_invariance(int d) {
  opl_fno_config cfg = opl_fno_config_default(d);
  cfg.width = 2, cfg.proj_channels = 2, cfg.layers = 3;
  int64_t S1[3];
  if (d == 1) cfg.modes[0] = 6, S1[0] = 32;
  if (d == 2) cfg.modes[0] = 4, cfg.modes[1] = 5, S1[0] = 24, S1[1] = 32;
  opl_fno m;
  opl_params p;
  OPL_ASSERT(build(&m, &p, &cfg, 500 + d));
  uint64_t s = 77 + d;
  for (int i = 0; i < p.n; i++) memset(p.t[i]->data, 0, opl_nreal(p.t[i]) * sizeof(opl_real));
  int64_t Cl = cfg.in_channels + d;
  m.fc0_w->data[0] = (opl_real)0.5, m.fc0_w->data[Cl] = (opl_real)-0.5; /* grid weights stay 0 */
  int64_t K = 1;
  for (int a = 0; a < d; a++) K *= (a < d - 1 ? 2 : 1) * cfg.modes[a];
  double complex alpha[3][64];
  double gamma[3], bias[3];
  for (int l = 0; l < cfg.layers; l++) {
    for (int64_t kk = 0; kk < K; kk++) {
      /* rounded to opl_real, so that the exact answer uses the model's values */
      double re = (opl_real)(2 * gc_uniform(&s) - 1), im = (opl_real)(2 * gc_uniform(&s) - 1);
      alpha[l][kk] = re + I * im;
      /* W[i][o][kk]: (i, o) = (0,0) a, (0,1) -a, (1,0) -a, (1,1) a */
      for (int i = 0; i < 2; i++)
        for (int o = 0; o < 2; o++) {
          double sg = i == o ? 1 : -1;
          opl_real *w = m.conv[l]->data + 2 * ((i * 2 + o) * K + kk);
          w[0] = (opl_real)(sg * re), w[1] = (opl_real)(sg * im);
        }
    }
    gamma[l] = (opl_real)(0.5 + 0.5 * gc_uniform(&s)), bias[l] = (opl_real)(gc_uniform(&s) - 0.5);
    for (int i = 0; i < 2; i++)
      for (int o = 0; o < 2; o++) m.w_w[l]->data[o * 2 + i] = (opl_real)((i == o ? 1 : -1) * gamma[l]);
    m.w_b[l]->data[0] = (opl_real)bias[l], m.w_b[l]->data[1] = (opl_real)-bias[l];
  }
  m.fc1_w->data[0] = 1, m.fc1_w->data[3] = 1;
  m.fc2_w->data[0] = 1, m.fc2_w->data[1] = -1;
  double e = gc_uniform(&s);
  m.fc2_b->data[0] = (opl_real)e;
  e = (double)(opl_real)e;

  /* Input: a mean, low modes (kept), a mode on the last-axis-zero column (2-D) and a high mode
   * (above every kept mode; it reaches the output only through the pointwise path). */
  term in[8];
  int nin = 0;
  in[nin++] = (term){{0, 0, 0}, 0.3};
  in[nin++] = (term){{1, d == 2 ? -2 : 0, 0}, 0.8 * cexp(0.4 * I)};
  in[nin++] = (term){{3, d == 2 ? 1 : 0, 0}, 0.5 * cexp(-1.1 * I)};
  if (d == 2) in[nin++] = (term){{2, 0, 0}, 0.6 * cexp(2.0 * I)};
  in[nin++] = (term){{d == 1 ? 9 : 7, d == 2 ? 6 : 0, 0}, 0.4 * cexp(0.7 * I)};
  /* exact output: fc0 gives v = u (ch0 - ch1 = u/2 + u/2), then the layers, then + e */
  static term buf[2][MAX_TERMS];
  int nt = nin;
  memcpy(buf[0], in, nin * sizeof *in);
  for (int l = 0; l < cfg.layers; l++) nt = layer_exact(&cfg, alpha[l], gamma[l], bias[l], buf[l & 1], nt, buf[(l + 1) & 1]);
  term *out = buf[cfg.layers & 1];
  out[nt++] = (term){{0, 0, 0}, e};

  for (int f = 1; f <= 2; f++) {
    int64_t S[3] = {S1[0] * f, S1[1] * f, 1}, P = 1;
    for (int a = 0; a < d; a++) P *= S[a];
    int64_t shape[4] = {1, 1, S[0], S[1]};
    opl_tensor *x = heap(d + 2, shape, 0);
    double *want = malloc(P * sizeof *want), *got = malloc(P * sizeof *got);
    for (int64_t q = 0; q < P; q++) {
      int64_t j[3];
      unravel(d, S, q, j);
      x->data[q] = (opl_real)terms_eval(d, in, nin, j, S);
      want[q] = terms_eval(d, out, nt, j, S);
    }
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *y = opl_fno_forward(c, &m, x);
    double scale = 0, dev = 0;
    for (int64_t q = 0; q < P; q++) {
      got[q] = y ? y->data[q] : NAN;
      scale = fmax(scale, fabs(want[q]));
      dev = fmax(dev, fabs(want[q] - x->data[q]));
    }
    arrays_close(P, got, want, 0, TOL_INVARIANCE * scale,
                 "%d-D hand-built operator at resolution %s (%s): exact at every point to %.0e (max |y| %.3g)",
                 d, d == 1 ? (f == 1 ? "32" : "64") : (f == 1 ? "24x32" : "48x64"),
                 f == 1 ? "base" : "2x", TOL_INVARIANCE, scale);
    if (f == 2) ok(dev > 0.1 * scale, "%d-D: the operator is far from the identity (max |y - u| %.3g)", d, dev);
    opl_ctx_free(&c);
    free(want), free(got);
    opl_tensor_free(&x);
  }
  opl_params_free(&p);
}

/* ------------------------------------------------------------------ parameter counts */

static void count_case(const char *what, opl_fno_ref script, int64_t ours, int64_t reference,
                       int build_it) {
  opl_fno_config cfg = opl_fno_config_reference(script);
  int64_t n = opl_fno_param_count(&cfg);
  ok(n == ours, "%s: opl count %lld == %lld", what, (long long)n, (long long)ours);
  int64_t r = opl_fno_reference_param_count(&cfg, script);
  ok(r == reference, "%s: reference count_params %lld == %lld", what, (long long)r, (long long)reference);
  if (build_it) {
    opl_fno m;
    opl_params p;
    OPL_ASSERT(build(&m, &p, &cfg, 1));
    ok(opl_params_count(&p) == ours && p.n == 6 + 3 * cfg.layers,
       "%s: the built parameter set holds %lld reals in %d tensors", what,
       (long long)opl_params_count(&p), p.n);
    opl_params_free(&p);
  }
}

static void test_counts(void) {
  /* fourier_1d.py: FNO1d(16, 64), fc0 = Linear(2, 64): the published 549,569. */
  count_case("FNO-1d modes 16 width 64", OPL_FNO_REF_1D, 549569, 549569, 1);
  /* fourier_2d_time.py: FNO2d(12, 12, 20), fc0 = Linear(12, 20): the reference prints 926,517,
   * of which 4 BatchNorm2d(20) never used in forward (160); opl has 926,357. */
  count_case("FNO-2d time modes 12 width 20", OPL_FNO_REF_2D_TIME, 926357, 926357 + 160, 1);
  ok(926357 + 160 == 926517, "opl's FNO-2d time count + the 160 unused BatchNorm reals = the published 926,517");
  /* fourier_3d.py: FNO3d(8, 8, 8, 20), fc0 = Linear(13, 20), from its module definition:
   * fc0 13*20+20 = 280; conv 4 x 4 weights x 20*20*8*8*8 complex = 4 x 1,638,400 reals;
   * w 4 x (400 + 20) = 1,680; bn 4 x 40 = 160; fc1 20*128+128 = 2,688; fc2 129. */
  int64_t ref3 = 280 + 4 * 1638400 + 1680 + 160 + 2688 + 129;
  count_case("FNO-3d modes 8 width 20", OPL_FNO_REF_3D, ref3 - 160, ref3, 1);
  ok(ref3 == 6558537, "FNO-3d reference count is 6,558,537");
  /* fourier_2d.py (Darcy): FNO2d(12, 12, 32), fc0 = Linear(3, 32), no BatchNorm:
   * 128 + 4 x 2 x 32*32*12*12*2 + 4 x 1,056 + 4,224 + 129. */
  int64_t ref2 = 128 + 4 * 589824 + 4 * 1056 + 4224 + 129;
  count_case("FNO-2d Darcy modes 12 width 32", OPL_FNO_REF_2D, ref2, ref2, 1);
  opl_fno_config cfg = opl_fno_config_reference(OPL_FNO_REF_2D_TIME);
  cfg.layers = 5;
  ok(opl_fno_reference_param_count(&cfg, OPL_FNO_REF_2D_TIME) == -1,
     "a configuration the script cannot build has no reference count");
  cfg = opl_fno_config_reference(OPL_FNO_REF_1D);
  ok(opl_fno_reference_param_count(&cfg, OPL_FNO_REF_3D) == -1, "nor has one of another script");
}

/* ------------------------------------------------------------------ values and names */

static void test_defaults_and_names(void) {
  opl_fno_config c1 = opl_fno_config_default(1), c2 = opl_fno_config_default(2),
                 c3 = opl_fno_config_default(3);
  ok(c1.modes[0] == 16 && c1.width == 64 && c1.layers == 4 && c1.proj_channels == 128,
     "1-D defaults: modes 16, width 64, 4 layers, projection 128");
  ok(c2.modes[0] == 12 && c2.modes[1] == 12 && c2.width == 20 && c2.layers == 4, "2-D defaults: modes 12, width 20");
  ok(c3.modes[0] == 8 && c3.modes[1] == 8 && c3.modes[2] == 8 && c3.width == 20, "3-D defaults: modes 8, width 20");
  opl_fno_config r2 = opl_fno_config_reference(OPL_FNO_REF_2D), r3 = opl_fno_config_reference(OPL_FNO_REF_3D);
  ok(r2.pad[0] == 9 && r2.pad[1] == 9 && r3.pad[0] == 0 && r3.pad[2] == 6,
     "reference padding: Darcy 9, 9; FNO-3d 6 on time only");
  opl_fno m;
  opl_params p;
  opl_fno_config cfg = small_config(3);
  OPL_ASSERT(build(&m, &p, &cfg, 3));
  static const char *want[] = {"fc0.weight", "fc0.bias", "conv0.weights", "conv1.weights",
                               "conv2.weights", "w0.weight", "w0.bias", "w1.weight", "w1.bias",
                               "w2.weight", "w2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  int names_ok = p.n == 15;
  for (int i = 0; names_ok && i < 15; i++) names_ok = strcmp(p.t[i]->name, want[i]) == 0;
  ok(names_ok, "parameter names and order follow the reference's state dict");
  ok(m.conv[0]->rank == 5 && m.conv[0]->shape[2] == 4 && m.conv[0]->shape[3] == 2 &&
         m.conv[0]->shape[4] == 2 && opl_is_complex(m.conv[0]),
     "FNO-3d spectral weight (w, w, 2 m0, 2 m1, m2) complex");
  ok(m.w_w[0]->rank == 5 && m.w_w[0]->shape[2] == 1 && m.w_w[0]->shape[4] == 1,
     "w0.weight has nn.Conv3d's shape (w, w, 1, 1, 1)");
  /* Init ranges: spectral re/im in [0, 1/w^2); fc0 in +-1/sqrt(Cin + d). */
  double smax = 0, smin = 1, fmaxv = 0;
  for (int64_t i = 0; i < opl_nreal(m.conv[1]); i++)
    smax = fmax(smax, m.conv[1]->data[i]), smin = fmin(smin, m.conv[1]->data[i]);
  for (int64_t i = 0; i < m.fc0_w->numel; i++) fmaxv = fmax(fmaxv, fabs(m.fc0_w->data[i]));
  ok(smin >= 0 && smax < 1.0 / 9 && smax > 0.5 / 9, "spectral init in [0, 1/width^2): [%.4f, %.4f]", smin, smax);
  ok(fmaxv <= 1 / sqrt(4.0) && fmaxv > 0.25, "fc0 init within +-1/sqrt(fan_in): max %.4f", fmaxv);
  opl_params_free(&p);

  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *g = opl_fno_grid(c, 2, 2, (const int64_t[]){5, 3});
  int gok = g && g->shape[0] == 2 && g->shape[1] == 2 && g->shape[2] == 5 && g->shape[3] == 3;
  for (int n = 0; gok && n < 2; n++)
    for (int i = 0; i < 5; i++)
      for (int j = 0; j < 3; j++) {
        opl_real gx = g->data[((n * 2 + 0) * 5 + i) * 3 + j], gy = g->data[((n * 2 + 1) * 5 + i) * 3 + j];
        gok &= gx == (opl_real)(i * 0.25) && gy == (opl_real)(j * 0.5);
      }
  ok(gok, "grid (5, 3): x = linspace(0, 1, 5), y = linspace(0, 1, 3), endpoints included");
  opl_tensor *g1 = opl_fno_grid(c, 1, 1, (const int64_t[]){7});
  ok(g1 && g1->data[0] == 0 && g1->data[6] == 1 && g1->data[3] == (opl_real)0.5, "grid 1-D: 0 ... 1 exactly");
  opl_tensor *g0 = opl_fno_grid(c, 1, 1, (const int64_t[]){1});
  ok(g0 && g0->data[0] == 0, "grid of one point is 0 (numpy linspace(0, 1, 1))");

  /* FNO-3d input: frames repeated along a new last axis. */
  opl_tensor *f = opl_new(c, OPL_DIMS(2, 3, 2, 2));
  for (int i = 0; i < 24; i++) f->data[i] = (opl_real)i;
  opl_tensor *f5 = opl_fno3d_input(c, f, 4);
  int fok = f5 && f5->rank == 5 && f5->shape[4] == 4;
  for (int i = 0; fok && i < 24; i++)
    for (int t = 0; t < 4; t++) fok &= f5->data[i * 4 + t] == (opl_real)i;
  ok(fok, "fno3d_input (2, 3, 2, 2) T=4 -> (2, 3, 2, 2, 4), frame values repeated over T");
  opl_ctx_free(&c);
}

/* Rollout equals a manual sliding window of forward calls, value for value. */
static void test_rollout_values(void) {
  opl_fno_config cfg = opl_fno_config_default(2);
  cfg.in_channels = 4, cfg.out_channels = 1, cfg.width = 5, cfg.modes[0] = cfg.modes[1] = 3;
  opl_fno m;
  opl_params p;
  OPL_ASSERT(build(&m, &p, &cfg, 600));
  int64_t X = 8, Y = 7, Q = X * Y, K = 5;
  opl_tensor *x = heap(OPL_DIMS(2, 4, X, Y), 0), *w = heap(OPL_DIMS(2, 4, X, Y), 0);
  uint64_t s = 6;
  fill_uniform(x, -1, 1, &s);
  memcpy(w->data, x->data, opl_nreal(x) * sizeof(opl_real));
  opl_ctx *c = opl_ctx_new(0), *c2 = opl_ctx_new(0);
  opl_tensor *r = opl_fno_rollout(c, &m, x, (int)K);
  ok(r && r->shape[0] == 2 && r->shape[1] == K && r->shape[2] == X && r->shape[3] == Y,
     "rollout of %lld steps: (2, %lld, %lld, %lld)", (long long)K, (long long)K, (long long)X, (long long)Y);
  int same = r != NULL;
  for (int64_t k = 0; same && k < K; k++) {
    opl_ctx_reset(c2);
    opl_tensor *y = opl_fno_forward(c2, &m, w);
    for (int64_t n = 0; n < 2; n++) {
      same &= memcmp(r->data + (n * K + k) * Q, y->data + n * Q, Q * sizeof(opl_real)) == 0;
      /* slide: frames 1..3 move down, the prediction becomes frame 3 */
      memmove(w->data + n * 4 * Q, w->data + (n * 4 + 1) * Q, 3 * Q * sizeof(opl_real));
      memcpy(w->data + (n * 4 + 3) * Q, y->data + n * Q, Q * sizeof(opl_real));
    }
  }
  ok(same, "rollout equals step-by-step forward with a sliding window, bit for bit");
  opl_ctx_free(&c), opl_ctx_free(&c2);
  opl_tensor_free(&x), opl_tensor_free(&w);
  opl_params_free(&p);
}

/* ------------------------------------------------------------------ bad input */

static void test_bad(void) {
  opl_err err = {0};
  opl_params p;
  opl_params_init(&p);
  opl_fno m;
  opl_fno_config cfg = opl_fno_config_default(1);
  cfg.width = 0;
  ok(opl_fno_init(&m, &p, &cfg, NULL, &err) == OPL_ERR_ARG && strstr(err.msg, "width = 0") && p.n == 0,
     "width 0: %s", err.msg);
  cfg = opl_fno_config_default(4);
  ok(opl_fno_init(&m, &p, &cfg, NULL, &err) == OPL_ERR_ARG && strstr(err.msg, "d = 4"), "d = 4: %s", err.msg);
  cfg = opl_fno_config_default(2);
  cfg.layers = 0;
  ok(opl_fno_init(&m, &p, &cfg, NULL, &err) == OPL_ERR_ARG && strstr(err.msg, "layers = 0"), "0 layers: %s", err.msg);
  cfg = opl_fno_config_default(2);
  cfg.modes[1] = 0;
  ok(opl_fno_init(&m, &p, &cfg, NULL, &err) == OPL_ERR_ARG && strstr(err.msg, "modes[1] = 0"), "modes 0: %s", err.msg);
  cfg = opl_fno_config_default(3);
  cfg.pad[2] = -1;
  ok(opl_fno_init(&m, &p, &cfg, NULL, &err) == OPL_ERR_ARG && strstr(err.msg, "pad[2] = -1"), "negative pad: %s", err.msg);
  ok(opl_fno_param_count(&cfg) == -1, "no parameter count for an invalid configuration");

  cfg = opl_fno_config_default(1); /* modes 16 */
  cfg.width = 4, cfg.in_channels = 2, cfg.proj_channels = 8;
  OPL_ASSERT(opl_fno_init(&m, &p, &cfg, NULL, &err) == OPL_OK);
  opl_fno m2;
  ok(opl_fno_init(&m2, &p, &cfg, NULL, &err) == OPL_ERR_ARG && strstr(err.msg, "fc0.weight"),
     "a second model in the same set: duplicate names: %s", err.msg);
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_zeros(c, OPL_DIMS(3, 2, 24));
  ok(opl_fno_forward(c, &m, x) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "modes (16)") && strstr(opl_ctx_errmsg(c), "(3, 2, 24)") &&
         strstr(opl_ctx_errmsg(c), "at most 12"),
     "modes 16 > resolution 24 / 2: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  opl_tensor *x32 = opl_zeros(c, OPL_DIMS(3, 2, 32));
  ok(opl_fno_forward(c, &m, x32) != NULL, "modes 16 at resolution 32 is fine");
  opl_tensor *x3 = opl_zeros(c, OPL_DIMS(3, 3, 32));
  ok(opl_fno_forward(c, &m, x3) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "(3, 3, 32)") && strstr(opl_ctx_errmsg(c), "(N, 2, X)"),
     "3 input channels for Cin = 2: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  opl_tensor *x2d = opl_zeros(c, OPL_DIMS(3, 2, 32, 32));
  ok(opl_fno_forward(c, &m, x2d) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "(3, 2, 32, 32)"),
     "a 2-D input to a 1-D model: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(opl_fno_rollout(c, &m, x32, 0) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "rollout of 0 steps: %s",
     opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(opl_fno3d_input(c, x32, 4) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "(3, 2, 32)"),
     "fno3d_input of a rank-3 tensor: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(opl_fno3d_input(c, x2d, 0) == NULL && opl_ctx_status(c) == OPL_ERR_ARG, "fno3d_input T = 0: %s",
     opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  /* padding counts toward the resolution */
  opl_params_free(&p);
  opl_params_init(&p);
  cfg.pad[0] = 8;
  OPL_ASSERT(opl_fno_init(&m, &p, &cfg, NULL, &err) == OPL_OK);
  ok(opl_fno_forward(c, &m, x) != NULL, "modes 16 at resolution 24 + padding 8 is fine");
  opl_tensor *x20 = opl_zeros(c, OPL_DIMS(3, 2, 20));
  ok(opl_fno_forward(c, &m, x20) == NULL && strstr(opl_ctx_errmsg(c), "padded resolution (28)"),
     "resolution 20 + padding 8 < 32: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  cfg.out_channels = 3;
  opl_params_free(&p);
  opl_params_init(&p);
  cfg.pad[0] = 0;
  OPL_ASSERT(opl_fno_init(&m, &p, &cfg, NULL, &err) == OPL_OK);
  ok(opl_fno_rollout(c, &m, x32, 2) == NULL && opl_ctx_status(c) == OPL_ERR_ARG &&
         strstr(opl_ctx_errmsg(c), "Cout = 3"),
     "rollout predicting more frames than the window: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
  opl_params_free(&p);
}

int main(void) {
  tap_begin();
  opl_fft_set_planner(1);
  test_defaults_and_names();
  for (int d = 1; d <= 3; d++) test_direct(d);
  test_gradients();
  test_rollout_values();
  test_invariance(1);
  test_invariance(2);
  test_counts();
  test_save_load();
  test_bad();
  test_overfit();
  return tap_end();
}
