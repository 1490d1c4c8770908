/* Jet ops (core/jet.h): gradient checks (table), derivatives of tanh networks against closed forms
 * and against finite differences of the same network evaluated in double, up to 4th order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/jet.h"
#include "tests/gradcheck.h"
#include "tests/tap.h"

static const opl_jet_spec S41 = {4, 1}, S20 = {2, 0}, S31 = {3, 1}, S01 = {0, 1}, S21 = {2, 1};

static opl_tensor *f_lin(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  return opl_jet_linear(c, x[0], x[1], x[2]);
}
static opl_tensor *f_lin_nob(opl_ctx *c, opl_tensor **x, const void *o) {
  (void)o;
  return opl_jet_linear(c, x[0], x[1], NULL);
}
static opl_tensor *f_tanh(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_jet_tanh(c, x[0], *(const opl_jet_spec *)o);
}
static opl_tensor *f_lt(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_jet_linear_tanh(c, x[0], x[1], x[2], *(const opl_jet_spec *)o);
}
static opl_tensor *f_lt_nob(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_jet_linear_tanh(c, x[0], x[1], NULL, *(const opl_jet_spec *)o);
}
/* jet_mlp with 2 hidden layers: x, w0, b0, w1, b1, w2 (no output bias). */
static opl_tensor *f_mlp(opl_ctx *c, opl_tensor **x, const void *o) {
  opl_tensor *w[3] = {x[1], x[3], x[5]}, *b[3] = {x[2], x[4], NULL};
  return opl_jet_mlp(c, x[0], 2, w, b, *(const opl_jet_spec *)o);
}
static opl_tensor *f_mul(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_jet_mul(c, x[0], x[1], *(const opl_jet_spec *)o);
}

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
#define INNG(r, ...) {.rank = r, .shape = {__VA_ARGS__}, .no_grad = 1}

static const gc_case rows[] = {
    {"jet_linear K=6 (6,5,3)x(4,3)+b", f_lin, NULL, 3, {IN(3, 6, 5, 3), IN(2, 4, 3), IN(1, 4)}},
    {"jet_linear K=3 no bias", f_lin_nob, NULL, 2, {IN(3, 3, 7, 2), IN(2, 5, 2)}},
    {"jet_tanh nx=4 nt=1", f_tanh, &S41, 1, {IN(3, 6, 4, 3)}},
    {"jet_tanh nx=2 nt=0", f_tanh, &S20, 1, {IN(3, 3, 5, 2)}},
    {"jet_tanh nx=0 nt=1", f_tanh, &S01, 1, {IN(3, 2, 5, 2)}},
    {"jet_linear_tanh nx=4 nt=1 (6,5,3)x(4,3)+b", f_lt, &S41, 3, {IN(3, 6, 5, 3), IN(2, 4, 3), IN(1, 4)}},
    {"jet_linear_tanh nx=2 nt=0 no bias", f_lt_nob, &S20, 2, {IN(3, 3, 7, 2), IN(2, 5, 2)}},
    {"jet_linear_tanh nx=0 nt=1", f_lt, &S01, 3, {IN(3, 2, 5, 3), IN(2, 4, 3), IN(1, 4)}},
    {"jet_mlp nx=2 nt=1 2-4-3-1, one tile", f_mlp, &S21, 6,
     {IN(3, 4, 5, 2), IN(2, 4, 2), IN(1, 4), IN(2, 3, 4), IN(1, 3), IN(2, 1, 3)}},
    {"jet_mlp nx=4 nt=1 2-8-8-2, 400 points in 2 tiles", f_mlp, &S41, 6,
     {IN(3, 6, 400, 2), IN(2, 8, 2), IN(1, 8), IN(2, 8, 8), IN(1, 8), IN(2, 2, 8)}},
    {"jet_mul nx=4 nt=1", f_mul, &S41, 2, {IN(3, 6, 4, 3), IN(3, 6, 4, 3)}},
    {"jet_mul nx=3 nt=1, b constant", f_mul, &S31, 2, {IN(3, 5, 4, 2), INNG(3, 5, 4, 2)}},
};

/* u = tanh(a x + b t + c) through the ops against the closed forms of tanh's derivatives
 * (T = tanh z, S = 1 - T^2: T' = S, T'' = -2 T S, T''' = -2 S (1 - 3 T^2), T'''' = 8 T S (2 - 3 T^2)). */
static void test_closed_form(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err e;
  const int N = 7;
  const double a = 1.3, b = -0.7, cc = 0.2;
  opl_tensor *w = opl_tensor_alloc(OPL_DIMS(1, 2), 0, &e), *bias = opl_tensor_alloc(OPL_DIMS(1), 0, &e);
  w->data[0] = (opl_real)b, w->data[1] = (opl_real)a, bias->data[0] = (opl_real)cc;
  opl_tensor *x = opl_zeros(c, OPL_DIMS(6, N, 2));
  double ts[7], xs[7];
  for (int i = 0; i < N; i++) {
    ts[i] = 0.1 * i, xs[i] = -1 + 0.33 * i;
    x->data[i * 2 + 0] = (opl_real)ts[i];
    x->data[i * 2 + 1] = (opl_real)xs[i];
    x->data[1 * N * 2 + i * 2 + 1] = 1; /* dx/dx */
    x->data[5 * N * 2 + i * 2 + 0] = 1; /* dt/dt */
  }
  opl_tensor *u = opl_jet_tanh(c, opl_jet_linear(c, x, w, bias), S41);
  ok(u && opl_ctx_status(c) == OPL_OK, "tanh(a x + b t + c) as a jet: %s", opl_ctx_errmsg(c));
  double worst = 0;
  for (int i = 0; u && i < N; i++) {
    double z = a * xs[i] + b * ts[i] + cc, T = tanh(z), S = 1 - T * T;
    double want[6] = {T, a * S, a * a * (-2 * T * S), pow(a, 3) * (-2 * S * (1 - 3 * T * T)),
                      pow(a, 4) * 8 * T * S * (2 - 3 * T * T), b * S};
    for (int k = 0; k < 6; k++) worst = fmax(worst, fabs(u->data[k * N + i] - want[k]) / fmax(1, fabs(want[k])));
  }
  ok(worst < 20 * OPL_REAL_EPS, "u, u_x .. u_xxxx, u_t equal the closed forms (max rel. error %.2e)", worst);
  opl_tensor_free(&w);
  opl_tensor_free(&bias);
  opl_ctx_free(&c);
}

/* Saturated units: tanh's derivative 1 - tanh(z)^2 = sech(z)^2 is small where |tanh z| nears 1,
 * and computed as 1 - s^2 it keeps only a few digits (at z = 5 a one-ulp change of s in float is
 * 7e-4 of it). y = tanh of the jet (z, 1) for z up to 12: y_x = sech^2 z and, backward from
 * the seed (0, 1), d y_x / d z = -2 tanh z sech^2 z and d y_x / d z_x = sech^2 z, all to a few
 * ulps relative. */
static void test_saturated(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err e;
  const int N = 25;
  const opl_jet_spec s1 = {1, 0};
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(2, N, 1), OPL_T_REQGRAD, &e);
  for (int i = 0; i < N; i++) {
    x->data[i] = (opl_real)((i % 2 ? -1 : 1) * 0.5 * i); /* 0, -0.5, 1, ..., 12 */
    x->data[N + i] = 1;
  }
  opl_real seed[50];
  for (int i = 0; i < 2 * N; i++) seed[i] = i < N ? 0 : 1;
  opl_tensor *y = opl_jet_tanh(c, x, s1);
  if (y) opl_backward_seed(c, y, seed);
  ok(y && opl_ctx_status(c) == OPL_OK, "tanh of (z, 1), z in [-12, 12]: %s", opl_ctx_errmsg(c));
  double wv = 0, wd = 0, wg = 0;
  for (int i = 0; y && i < N; i++) {
    double z = (double)x->data[i], T = tanh(z), S = 1 / (cosh(z) * cosh(z));
    wv = fmax(wv, fabs(y->data[N + i] - S) / S);
    wd = fmax(wd, fabs(x->grad[i] - (-2 * T * S)) / fmax(fabs(2 * T * S), 1e-300));
    wg = fmax(wg, fabs(x->grad[N + i] - S) / S);
  }
  ok(wv < 8 * OPL_REAL_EPS, "y_x = sech^2 z to %.2e relative (at most 8 ulps)", wv);
  ok(wd < 8 * OPL_REAL_EPS, "d y_x / d z = -2 tanh z sech^2 z to %.2e relative", wd);
  ok(wg < 8 * OPL_REAL_EPS, "d y_x / d z_x = sech^2 z to %.2e relative", wg);
  opl_tensor_free(&x);
  opl_ctx_free(&c);
}

/* A gated two-layer network: h = tanh(W1 [t, x] + b1), z = tanh(W2 h + b2), u = w3 . (z * h) + b3,
 * width 5; its value in double for finite differences. */
enum { W = 5 };
static double W1[W][2], B1[W], W2[W][W], B2[W], W3[W], B3;

static double net(double t, double x) {
  double h[W], z[W], u = B3;
  for (int i = 0; i < W; i++) h[i] = tanh(W1[i][0] * t + W1[i][1] * x + B1[i]);
  for (int i = 0; i < W; i++) {
    double s = B2[i];
    for (int j = 0; j < W; j++) s += W2[i][j] * h[j];
    z[i] = tanh(s);
  }
  for (int i = 0; i < W; i++) u += W3[i] * z[i] * h[i];
  return u;
}

static void test_finite_differences(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_err e;
  uint64_t st = 12345;
  opl_tensor *w1 = opl_tensor_alloc(OPL_DIMS(W, 2), 0, &e), *b1 = opl_tensor_alloc(OPL_DIMS(W), 0, &e);
  opl_tensor *w2 = opl_tensor_alloc(OPL_DIMS(W, W), 0, &e), *b2 = opl_tensor_alloc(OPL_DIMS(W), 0, &e);
  opl_tensor *w3 = opl_tensor_alloc(OPL_DIMS(1, W), 0, &e), *b3 = opl_tensor_alloc(OPL_DIMS(1), 0, &e);
  /* weights exactly representable in float, so the double reference is the same network */
#define DRAW(v) (v = (double)(float)(2 * gc_uniform(&st) - 1))
  for (int i = 0; i < W; i++) {
    w1->data[2 * i] = (opl_real)DRAW(W1[i][0]);
    w1->data[2 * i + 1] = (opl_real)DRAW(W1[i][1]);
    b1->data[i] = (opl_real)DRAW(B1[i]);
    b2->data[i] = (opl_real)DRAW(B2[i]);
    w3->data[i] = (opl_real)DRAW(W3[i]);
    for (int j = 0; j < W; j++) w2->data[W * i + j] = (opl_real)DRAW(W2[i][j]);
  }
  b3->data[0] = (opl_real)DRAW(B3);
#undef DRAW
  const int N = 5;
  double ts[5] = {0, 0.25, 0.5, 0.75, 1}, xs[5] = {-1, -0.4, 0.1, 0.6, 0.95};
  opl_tensor *x = opl_zeros(c, OPL_DIMS(6, N, 2));
  for (int i = 0; i < N; i++) {
    x->data[2 * i] = (opl_real)ts[i], x->data[2 * i + 1] = (opl_real)xs[i];
    x->data[N * 2 + 2 * i + 1] = 1;
    x->data[5 * N * 2 + 2 * i] = 1;
  }
  opl_tensor *h = opl_jet_tanh(c, opl_jet_linear(c, x, w1, b1), S41);
  opl_tensor *z = opl_jet_tanh(c, opl_jet_linear(c, h, w2, b2), S41);
  opl_tensor *u = opl_jet_linear(c, opl_jet_mul(c, z, h, S41), w3, b3);
  ok(u && opl_ctx_status(c) == OPL_OK, "gated network as a jet: %s", opl_ctx_errmsg(c));
  double worst[6] = {0};
  for (int i = 0; u && i < N; i++) {
    double t = ts[i], xx = xs[i], hh = 1e-2, h3 = 5e-3;
    double f0 = net(t, xx), fp = net(t, xx + hh), fm = net(t, xx - hh), fp2 = net(t, xx + 2 * hh),
           fm2 = net(t, xx - 2 * hh);
    double g1 = net(t, xx + h3), g_1 = net(t, xx - h3), g2 = net(t, xx + 2 * h3), g_2 = net(t, xx - 2 * h3);
    double want[6];
    want[0] = f0;
    want[1] = (-fp2 + 8 * fp - 8 * fm + fm2) / (12 * hh);
    want[2] = (-fp2 + 16 * fp - 30 * f0 + 16 * fm - fm2) / (12 * hh * hh);
    want[3] = (g2 - 2 * g1 + 2 * g_1 - g_2) / (2 * h3 * h3 * h3);
    want[4] = (g2 - 4 * g1 + 6 * f0 - 4 * g_1 + g_2) / (h3 * h3 * h3 * h3);
    want[5] = (-net(t + 2 * hh, xx) + 8 * net(t + hh, xx) - 8 * net(t - hh, xx) + net(t - 2 * hh, xx)) / (12 * hh);
    for (int k = 0; k < 6; k++)
      worst[k] = fmax(worst[k], fabs(u->data[k * N + i] - want[k]) / fmax(1, fabs(want[k])));
  }
  const char *name[6] = {"u", "u_x", "u_xx", "u_xxx", "u_xxxx", "u_t"};
  for (int k = 0; k < 6; k++) ok(worst[k] < 1e-4 + 200 * OPL_REAL_EPS, "%s against finite differences: max rel. error %.2e", name[k], worst[k]);
  opl_tensor *all[6] = {w1, b1, w2, b2, w3, b3};
  for (int i = 0; i < 6; i++) opl_tensor_free(&all[i]);
  opl_ctx_free(&c);
}

/* max |a - b| / max |b| over n reals. */
static double rel_diff(const opl_real *a, const opl_real *b, int64_t n) {
  double d = 0, m = 0;
  for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i])), m = fmax(m, fabs((double)b[i]));
  return m > 0 ? d / m : d;
}

/* jet_linear_tanh against jet_tanh(jet_linear) on a layer large enough for several blocks of
 * rows and the threaded pass: x = lt(x0, w0, b0), y = lt(x, w1, b1) + lt(x, w2) (x's gradient
 * written by the first backward and accumulated by the second), seeded with a fixed gradient;
 * values and every gradient agree to rounding. */
static void test_fused_layer(void) {
  const opl_jet_spec s = {2, 1};
  const int64_t K = 4, N = 1500, F = 2, D = 20;
  opl_err e;
  uint64_t st = 777;
  opl_tensor *x0 = opl_tensor_alloc(OPL_DIMS(K, N, F), OPL_T_REQGRAD, &e);
  opl_tensor *w0 = opl_tensor_alloc(OPL_DIMS(D, F), OPL_T_REQGRAD, &e), *b0 = opl_tensor_alloc(OPL_DIMS(D), OPL_T_REQGRAD, &e);
  opl_tensor *w1 = opl_tensor_alloc(OPL_DIMS(D, D), OPL_T_REQGRAD, &e), *b1 = opl_tensor_alloc(OPL_DIMS(D), OPL_T_REQGRAD, &e);
  opl_tensor *w2 = opl_tensor_alloc(OPL_DIMS(D, D), OPL_T_REQGRAD, &e);
  opl_tensor *all[6] = {x0, w0, b0, w1, b1, w2};
  for (int i = 0; i < 6; i++)
    for (int64_t j = 0; j < all[i]->numel; j++) all[i]->data[j] = (opl_real)(2 * gc_uniform(&st) - 1);
  opl_real *seed = malloc((size_t)(K * N * D) * sizeof(opl_real));
  for (int64_t j = 0; j < K * N * D; j++) seed[j] = (opl_real)(2 * gc_uniform(&st) - 1);
  opl_real *val[2], *grad[2][6];
  for (int fused = 0; fused < 2; fused++) {
    opl_ctx *c = opl_ctx_new(0);
    for (int i = 0; i < 6; i++) opl_tensor_zero_grad(all[i]);
    opl_tensor *x, *y;
    if (fused) {
      x = opl_jet_linear_tanh(c, x0, w0, b0, s);
      y = opl_add(c, opl_jet_linear_tanh(c, x, w1, b1, s), opl_jet_linear_tanh(c, x, w2, NULL, s));
    } else {
      x = opl_jet_tanh(c, opl_jet_linear(c, x0, w0, b0), s);
      y = opl_add(c, opl_jet_tanh(c, opl_jet_linear(c, x, w1, b1), s), opl_jet_tanh(c, opl_jet_linear(c, x, w2, NULL), s));
    }
    if (y) opl_backward_seed(c, y, seed);
    ok(y && opl_ctx_status(c) == OPL_OK, "%s layers on (%lld, %lld, %lld): %s", fused ? "fused" : "separate",
       (long long)K, (long long)N, (long long)D, opl_ctx_errmsg(c));
    val[fused] = malloc((size_t)(K * N * D) * sizeof(opl_real));
    if (y) memcpy(val[fused], y->data, (size_t)(K * N * D) * sizeof(opl_real));
    for (int i = 0; i < 6; i++) {
      grad[fused][i] = malloc((size_t)all[i]->numel * sizeof(opl_real));
      memcpy(grad[fused][i], all[i]->grad, (size_t)all[i]->numel * sizeof(opl_real));
    }
    opl_ctx_free(&c);
  }
  double tol = 1e3 * OPL_REAL_EPS, d = rel_diff(val[1], val[0], K * N * D);
  ok(d < tol, "jet_linear_tanh equals jet_tanh(jet_linear): values, max rel. difference %.2e", d);
  const char *name[6] = {"x0", "w0", "b0", "w1", "b1", "w2"};
  for (int i = 0; i < 6; i++) {
    d = rel_diff(grad[1][i], grad[0][i], all[i]->numel);
    ok(d < tol, "jet_linear_tanh equals jet_tanh(jet_linear): gradient of %s, max rel. difference %.2e", name[i], d);
  }
  for (int f = 0; f < 2; f++) {
    free(val[f]);
    for (int i = 0; i < 6; i++) free(grad[f][i]);
  }
  free(seed);
  for (int i = 0; i < 6; i++) opl_tensor_free(&all[i]);
}

/* jet_mlp against jet_linear(jet_linear_tanh(...)) on 3000 points (16 tiles of 192, the last of
 * 120): widths 2-20-13-20-1, the second layer without bias, x requiring a gradient; values and
 * every gradient agree to rounding, and the op gives the same bits on 1 and 2 threads. */
static void test_mlp(void) {
  const opl_jet_spec s = {2, 1};
  enum { L = 3, NP = 2 * L + 3 };
  const int64_t K = 4, N = 3000, dims[L + 2] = {2, 20, 13, 20, 1};
  opl_err e;
  uint64_t st = 4242;
  opl_tensor *x = opl_tensor_alloc(OPL_DIMS(K, N, 2), OPL_T_REQGRAD, &e), *w[L + 1], *b[L + 1], *all[NP];
  int na = 0;
  all[na++] = x;
  for (int l = 0; l <= L; l++) {
    w[l] = opl_tensor_alloc(OPL_DIMS(dims[l + 1], dims[l]), OPL_T_REQGRAD, &e);
    b[l] = l == 1 ? NULL : opl_tensor_alloc(OPL_DIMS(dims[l + 1]), OPL_T_REQGRAD, &e);
    all[na++] = w[l];
    if (b[l]) all[na++] = b[l];
  }
  for (int i = 0; i < na; i++)
    for (int64_t j = 0; j < all[i]->numel; j++) all[i]->data[j] = (opl_real)((2 * gc_uniform(&st) - 1) * (i ? 0.6 : 1));
  opl_real seed[4 * 3000];
  for (int64_t j = 0; j < K * N; j++) seed[j] = (opl_real)(2 * gc_uniform(&st) - 1);
  opl_real *val[3], *grad[3][NP];
  for (int run = 0; run < 3; run++) { /* 0: separate ops, 1: jet_mlp, 2: jet_mlp on 1 thread */
    int th = opl_get_num_threads();
    if (run == 2) opl_set_num_threads(1);
    opl_ctx *c = opl_ctx_new(0);
    for (int i = 0; i < na; i++) opl_tensor_zero_grad(all[i]);
    opl_tensor *u;
    if (run) {
      u = opl_jet_mlp(c, x, L, w, b, s);
    } else {
      opl_tensor *h = x;
      for (int l = 0; l < L; l++) h = opl_jet_linear_tanh(c, h, w[l], b[l], s);
      u = opl_jet_linear(c, h, w[L], b[L]);
    }
    if (u) opl_backward_seed(c, u, seed);
    ok(u && opl_ctx_status(c) == OPL_OK && u->shape[2] == 1, "%s on (%lld, %lld, 2): %s",
       run == 0 ? "separate layers" : run == 1 ? "jet_mlp" : "jet_mlp, 1 thread", (long long)K, (long long)N,
       opl_ctx_errmsg(c));
    val[run] = malloc((size_t)(K * N) * sizeof(opl_real));
    if (u) memcpy(val[run], u->data, (size_t)(K * N) * sizeof(opl_real));
    for (int i = 0; i < na; i++) {
      grad[run][i] = malloc((size_t)all[i]->numel * sizeof(opl_real));
      memcpy(grad[run][i], all[i]->grad, (size_t)all[i]->numel * sizeof(opl_real));
    }
    opl_ctx_free(&c);
    opl_set_num_threads(th);
  }
  double tol = 1e3 * OPL_REAL_EPS, d = rel_diff(val[1], val[0], K * N), dg = 0;
  ok(d < tol, "jet_mlp equals the separate layers: values, max rel. difference %.2e", d);
  for (int i = 0; i < na; i++) dg = fmax(dg, rel_diff(grad[1][i], grad[0][i], all[i]->numel));
  ok(dg < tol, "jet_mlp equals the separate layers: gradients of x and all %d parameters, max rel. difference %.2e",
     na - 1, dg);
  int same = !memcmp(val[1], val[2], (size_t)(K * N) * sizeof(opl_real));
  for (int i = 0; i < na; i++) same = same && !memcmp(grad[1][i], grad[2][i], (size_t)all[i]->numel * sizeof(opl_real));
  ok(same, "jet_mlp: the same bits (values and gradients) on 1 thread as on %d", opl_get_num_threads());
  for (int r = 0; r < 3; r++) {
    free(val[r]);
    for (int i = 0; i < na; i++) free(grad[r][i]);
  }
  for (int i = 0; i < na; i++) opl_tensor_free(&all[i]);
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_zeros(c, OPL_DIMS(5, 3, 2));
  ok(!opl_jet_tanh(c, x, S41) && opl_ctx_status(c) == OPL_ERR_SHAPE && strstr(opl_ctx_errmsg(c), "K = 6"),
     "jet_tanh: 5 components for a (4, 1) jet is a shape error: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  opl_jet_spec bad = {5, 0};
  ok(!opl_jet_tanh(c, x, bad) && opl_ctx_status(c) == OPL_ERR_ARG, "jet_tanh: 5 x-derivatives refused: %s",
     opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  opl_tensor *w = opl_zeros(c, OPL_DIMS(4, 3));
  ok(!opl_jet_linear(c, x, w, NULL) && opl_ctx_status(c) == OPL_ERR_SHAPE, "jet_linear: In mismatch: %s",
     opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(!opl_jet_linear_tanh(c, x, w, NULL, (opl_jet_spec){3, 1}) && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "jet_linear_tanh"),
     "jet_linear_tanh: In mismatch: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(!opl_jet_linear_tanh(c, x, w, NULL, S41) && opl_ctx_status(c) == OPL_ERR_SHAPE && strstr(opl_ctx_errmsg(c), "K = 6"),
     "jet_linear_tanh: 5 components for a (4, 1) jet: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  opl_tensor *wl[2] = {opl_zeros(c, OPL_DIMS(4, 2)), w};
  ok(!opl_jet_mlp(c, x, 1, wl, NULL, (opl_jet_spec){3, 1}) && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "layer 1"),
     "jet_mlp: layer 1's In mismatch named: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(!opl_jet_mlp(c, x, -1, wl, NULL, (opl_jet_spec){3, 1}) && opl_ctx_status(c) == OPL_ERR_ARG,
     "jet_mlp: -1 hidden layers refused: %s", opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  opl_tensor *y = opl_zeros(c, OPL_DIMS(5, 4, 2));
  opl_jet_spec s3 = {3, 1};
  ok(!opl_jet_mul(c, x, y, s3) && opl_ctx_status(c) == OPL_ERR_SHAPE, "jet_mul: shapes differ: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  test_closed_form();
  test_saturated();
  test_finite_differences();
  test_fused_layer();
  test_mlp();
  test_bad_input();
  return tap_end();
}
