/* Dense output (rk.h "Dense output", node.h OPL_NDE_SAVEAT_DENSE): the interpolants' weights
 * satisfy the order conditions of their order for every theta and give b at theta = 1; their local
 * error shrinks as h^(p*+1) (p* = 4 for DP5 / Tsit5, 3 for BS3) on a nonlinear, time-dependent
 * problem; on a linear ODE the error of dense outputs against the exact solution shrinks with
 * rtol like the states' error; the tape path's dense outputs equal the double-array core's
 * opl_rk_dense (bit for bit in the double build) and outputs at step ends its states; a dense
 * solve takes the steps and evaluations of a solve with the last output time only; gradients
 * through dense outputs match central differences with the step sequence frozen (double build)
 * for every method, store-all and checkpointed; the continuous adjoints run on dense solves;
 * bad input; DP5 at theta = 1/2 gives Shampine's midpoint weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "operators/node.h"
#include "operators/mlp.h"
#include "core/par.h"
#include "solvers/rk.h"
#include "tests/gradcheck.h"
#include "tests/tap.h"

static const opl_rk_method METHODS[3] = {OPL_RK_DP5, OPL_RK_TSIT5, OPL_RK_BS3};
#ifdef OPL_DOUBLE
static const int DOUBLE_BUILD = 1;
#else
static const int DOUBLE_BUILD = 0;
#endif

/* ------------------------------------------------------------ weights: order conditions */

/* For theta in a grid: sum b = theta, sum b c = theta^2/2, sum b c^2 = theta^3/3,
 * sum b A c = theta^3/6 (order 3), and for the order-4 interpolants sum b c^3 = theta^4/4,
 * sum b c A c = theta^4/8, sum b A c^2 = theta^4/12, sum b A A c = theta^4/24; b(1) = b. */
static void test_order_conditions(void) {
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    const double *A, *b, *c;
    const int s = opl_rk_tableau(m, &A, &b, NULL, &c, NULL, NULL);
    const int p = m == OPL_RK_BS3 ? 3 : 4;
    double Ac[8] = {0}, Ac2[8] = {0}, AAc[8] = {0};
    for (int i = 0; i < s; i++)
      for (int j = 0; j < s; j++) Ac[i] += A[i * s + j] * c[j], Ac2[i] += A[i * s + j] * c[j] * c[j];
    for (int i = 0; i < s; i++)
      for (int j = 0; j < s; j++) AAc[i] += A[i * s + j] * Ac[j];
    double worst = 0;
    for (int q = 0; q <= 20; q++) {
      const double th = q / 20.0;
      double w[8];
      if (opl_rk_dense_weights(m, th, w) != s) worst = INFINITY;
      double g[8] = {0};
      for (int i = 0; i < s; i++) {
        g[0] += w[i], g[1] += w[i] * c[i], g[2] += w[i] * c[i] * c[i], g[3] += w[i] * Ac[i];
        g[4] += w[i] * c[i] * c[i] * c[i], g[5] += w[i] * c[i] * Ac[i], g[6] += w[i] * Ac2[i], g[7] += w[i] * AAc[i];
      }
      const double want[8] = {th, th * th / 2, th * th * th / 3, th * th * th / 6,
                              pow(th, 4) / 4, pow(th, 4) / 8, pow(th, 4) / 12, pow(th, 4) / 24};
      for (int k = 0; k < (p == 4 ? 8 : 4); k++) worst = fmax(worst, fabs(g[k] - want[k]));
    }
    double w1[8], w0[8], db = 0;
    opl_rk_dense_weights(m, 1, w1);
    opl_rk_dense_weights(m, 0, w0);
    for (int i = 0; i < s; i++) db = fmax(db, fmax(fabs(w1[i] - b[i]), fabs(w0[i])));
    ok(worst < 1e-13 && db < 1e-13, "%s: dense weights satisfy the order-%d conditions on theta in [0, 1] "
       "(max residual %.1e), b(1) = b (%.1e), b(0) = 0", opl_rk_method_name(m), p, worst, db);
  }
  /* DP5 at theta = 1/2: Shampine's (1986) 5th-order midpoint weights, which torchdiffeq's dopri5
   * interpolant is fitted through: the quartic is the same polynomial. */
  const double mid[7] = {6025192743.0 / 30085553152 / 2, 0, 51252292925.0 / 65400821598 / 2,
                         -2691868925.0 / 45128329728 / 2, 187940372067.0 / 1594534317056 / 2,
                         -1776094331.0 / 19743644256 / 2, 11237099.0 / 235043384 / 2};
  double wm[8], dm = 0;
  opl_rk_dense_weights(OPL_RK_DP5, 0.5, wm);
  for (int i = 0; i < 7; i++) dm = fmax(dm, fabs(wm[i] - mid[i]));
  ok(dm < 1e-15, "dp5: b(1/2) = Shampine's midpoint weights (max difference %.1e)", dm);
  double w[8];
  ok(opl_rk_dense_weights(OPL_RK_METHOD_COUNT, 0.5, w) == 0 && opl_rk_dense_weights(OPL_RK_DP5, 0.5, NULL) == 0,
     "dense weights: a bad method or NULL output gives 0");
}

/* ------------------------------------------------------------ local order (double core) */

/* y1' = -y1^2, y2' = cos(t) y2: y1 = a / (1 + a (t - t0)), y2 = b exp(sin t - sin t0). */
static int f_nl(void *user, double t, const void *yv, void *dyv) {
  (void)user;
  const double *y = yv;
  double *dy = dyv;
  dy[0] = -y[0] * y[0];
  dy[1] = cos(t) * y[1];
  return 0;
}

/* One fixed step of size h from t0 = 0.3, y = (1.2, 0.7); the max error of the dense output at
 * theta = 0.3, 0.55, 0.8 against the exact solution from the same start. */
static double local_dense_err(opl_rk_method m, double h) {
  opl_err err = {0};
  opl_rk_vops ops = opl_rk_vops_double(2);
  ops.rhs = f_nl;
  opl_rk *rk = opl_rk_create(&ops, NULL, m, &err);
  opl_rk_set_fixed_step(rk, h, &err);
  const double t0 = 0.3, y0[2] = {1.2, 0.7};
  double *y = opl_aligned_calloc(2 * sizeof(double)), e = 0;
  memcpy(y, y0, sizeof y0);
  opl_rk_init(rk, t0, y, &err);
  if (opl_rk_step(rk, t0 + h, &err)) e = INFINITY;
  for (int q = 0; q < 3 && isfinite(e); q++) {
    const double t = t0 + (0.3 + 0.25 * q) * h;
    if (opl_rk_dense(rk, t, y, &err)) return INFINITY;
    const double ex0 = y0[0] / (1 + y0[0] * (t - t0)), ex1 = y0[1] * exp(sin(t) - sin(t0));
    e = fmax(e, fmax(fabs(y[0] - ex0), fabs(y[1] - ex1)));
  }
  free(y);
  opl_rk_free(&rk);
  return e;
}

/* (The core computes in double in either build.) */
static void test_local_order(void) {
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    const int p = m == OPL_RK_BS3 ? 3 : 4;
    const double e1 = local_dense_err(m, 0.1), e2 = local_dense_err(m, 0.05), e3 = local_dense_err(m, 0.025);
    const double r1 = log2(e1 / e2), r2 = log2(e2 / e3);
    ok(fabs(r2 - (p + 1)) < 0.35 && fabs(r1 - (p + 1)) < 0.6 && e3 > 0,
       "%s: local error of the dense output ~ h^%d (halving h: rates %.2f, %.2f; error %.2e at h = 0.025)",
       opl_rk_method_name(m), p + 1, r1, r2, e3);
  }
}

static void test_rk_dense_errors(void) {
  opl_err err = {0};
  opl_rk_vops ops = opl_rk_vops_double(2);
  ops.rhs = f_nl;
  opl_rk *rk = opl_rk_create(&ops, NULL, OPL_RK_DP5, &err);
  double *y = opl_aligned_calloc(2 * sizeof(double));
  y[0] = 1, y[1] = 1;
  opl_rk_init(rk, 0, y, &err);
  ok(opl_rk_dense(rk, 0, y, &err) == OPL_ERR_STATE && strstr(err.msg, "no accepted step"),
     "opl_rk_dense before a step: %s", err.msg);
  opl_rk_step(rk, 1, &err);
  const double t1 = opl_rk_time(rk);
  ok(opl_rk_dense(rk, t1 + 1e-3, y, &err) == OPL_ERR_ARG && strstr(err.msg, "outside the last step"),
     "opl_rk_dense after the step's end: %s", err.msg);
  double *yy = opl_aligned_calloc(2 * sizeof(double));
  opl_rk_get_state(rk, yy);
  ok(opl_rk_dense(rk, t1, y, &err) == OPL_OK && y[0] == yy[0] && y[1] == yy[1],
     "opl_rk_dense at the step's end is the state bit for bit");
  opl_rk_dense(rk, 0, y, &err);
  ok(y[0] == 1 && y[1] == 1, "opl_rk_dense at the step's start is the previous state");
  opl_rk_step(rk, 1, &err);
  ok(opl_rk_dense(rk, t1 * 0.5, y, &err) == OPL_ERR_ARG, "opl_rk_dense into an earlier step is refused");
  free(y);
  free(yy);
  opl_rk_free(&rk);
}

/* ------------------------------------------------------------ fields */

/* du = w * tanh(u) + b elementwise; w, b heap tensors of u's shape. */
typedef struct tanh_field {
  opl_tensor *w, *b;
} tanh_field;

static int f_tanh(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  tanh_field *F = user;
  (void)t;
  *du = opl_add(c, opl_mul(c, F->w, opl_tanh(c, u)), F->b);
  return 0;
}
static int f_tanh_d(void *user, double t, const void *yv, void *dyv) {
  tanh_field *F = user;
  const double *y = yv;
  double *dy = dyv;
  (void)t;
  for (int64_t i = 0; i < F->w->numel; i++) {
    opl_real th = (opl_real)tanh((opl_real)y[i]);
    dy[i] = (double)(F->w->data[i] * th + F->b->data[i]);
  }
  return 0;
}

/* du = u W^T: the linear ODE du/dt = W u for the column u. */
static int f_linear(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  (void)t;
  *du = opl_linear(c, u, (opl_tensor *)user, NULL);
  return 0;
}

/* du = MLP(u) + 0.5 sin(t) (u (B, D)). */
static int f_mlp(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  *du = opl_add_scalar(c, opl_mlp_forward(c, (const opl_mlp *)user, u), 0.5 * sin(t));
  return 0;
}

static void fill_uniform(opl_tensor *t, uint64_t *s, double lo, double hi) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = (opl_real)(lo + (hi - lo) * gc_uniform(s));
}

/* ------------------------------------------------------------ tape == double core, steps kept */

/* Output times: 9 inside [0, 3] plus one step end of the double core's solve to 3 (found first)
 * and 3 itself, so outputs fall both inside steps and on step ends; the double core's outputs are
 * opl_rk_dense inside a step and the state at a step end. */
static void test_tape_equals_double(void) {
  opl_err err = {0};
  const int n = 6;
  uint64_t s = 7;
  tanh_field F = {opl_tensor_alloc(OPL_DIMS(n), 0, &err), opl_tensor_alloc(OPL_DIMS(n), 0, &err)};
  opl_tensor *u0 = opl_tensor_alloc(OPL_DIMS(n), 0, &err);
  fill_uniform(F.w, &s, -3, 3);
  fill_uniform(F.b, &s, -1, 1);
  fill_uniform(u0, &s, -1, 1);
  const double rtol = DOUBLE_BUILD ? 1e-8 : 1e-5, atol = DOUBLE_BUILD ? 1e-10 : 1e-6, T = 3.0;
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    const char *name = opl_rk_method_name(m);
    opl_rk_vops ops = opl_rk_vops_double(n);
    ops.rhs = f_tanh_d;
    opl_rk *rk = opl_rk_create(&ops, &F, m, &err);
    opl_rk_set_tolerances(rk, rtol, atol, &err);
    double *y = opl_aligned_calloc((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) y[i] = u0->data[i];
    /* pass 1: the step ends */
    opl_rk_init(rk, 0, y, &err);
    double tends[4096];
    int ns = 0;
    while (opl_rk_time(rk) < T && ns < 4096 && !opl_rk_step(rk, T, &err)) tends[ns++] = opl_rk_time(rk);
    double ts[12];
    int nt = 0;
    const double te = tends[ns / 3];
    for (int k = 1; k <= 9; k++) {
      double t = T * k / 10.0;
      if (nt && ts[nt - 1] < te && t > te) ts[nt++] = te;
      ts[nt++] = t;
    }
    ts[nt++] = T;
    /* pass 2: step to T, reading the outputs of each step by opl_rk_dense */
    double yout[12][6];
    opl_rk_init(rk, 0, y, &err);
    int next = 0, steps = 0;
    while (opl_rk_time(rk) < T && !opl_rk_step(rk, T, &err)) {
      steps++;
      for (; next < nt && ts[next] <= opl_rk_time(rk); next++) {
        if (ts[next] == opl_rk_time(rk)) opl_rk_get_state(rk, y); /* a step end: the state */
        else opl_rk_dense(rk, ts[next], y, &err);
        for (int i = 0; i < n; i++) yout[next][i] = y[i];
      }
    }
    opl_rk_stats dst;
    opl_rk_get_stats(rk, &dst);
    opl_rk_free(&rk);
    free(y);
    ok(next == nt && steps == ns, "%s: double core: %d outputs read from %d steps", name, next, steps);
    for (int mode = 0; mode < 2; mode++) {
      const char *mname = mode ? "checkpoint" : "store-all";
      opl_nde *nd = opl_nde_create(m, f_tanh, &F, &err);
      opl_nde_set_tolerances(nd, rtol, atol, &err);
      opl_nde_set_memory(nd, mode, &err);
      opl_nde_set_saveat(nd, OPL_NDE_SAVEAT_DENSE, &err);
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor *us[12], *u1[1];
      int st = opl_nde_solve(nd, c, 0, u0, nt, ts, us, &err);
      opl_nde_stats nst, nst1;
      opl_nde_get_stats(nd, &nst);
      const int64_t nsteps = opl_nde_num_steps(nd);
      double hs[4096];
      for (int64_t j = 0; j < nsteps && j < 4096; j++) opl_nde_step(nd, j, NULL, &hs[j], NULL, NULL, NULL);
      int st1 = opl_nde_solve(nd, c, 0, u0, 1, &ts[nt - 1], u1, &err);
      opl_nde_get_stats(nd, &nst1);
      int same_h = opl_nde_num_steps(nd) == nsteps;
      for (int64_t j = 0; same_h && j < nsteps && j < 4096; j++) {
        double h;
        opl_nde_step(nd, j, NULL, &h, NULL, NULL, NULL);
        same_h &= h == hs[j];
      }
      if (!ok(st == OPL_OK && st1 == OPL_OK, "%s %s: dense solve with %d outputs", name, mname, nt)) {
        diag("%s", err.msg);
        opl_ctx_free(&c);
        opl_nde_free(&nd);
        continue;
      }
      ok(nst.nfev == nst1.nfev && nst.accepted == nst1.accepted && nst.rejected == nst1.rejected && same_h &&
             us[nt - 1]->data[0] == u1[0]->data[0],
         "%s %s: the same steps and NFE (%lld) as a solve with the last output time only", name, mname,
         (long long)nst.nfev);
      double maxd = 0;
      int bits = 1;
      for (int k = 0; k < nt; k++)
        for (int i = 0; i < n; i++) {
          maxd = fmax(maxd, fabs(us[k]->data[i] - yout[k][i]));
          bits &= us[k]->data[i] == (opl_real)yout[k][i];
        }
      if (DOUBLE_BUILD) {
        ok(nst.nfev == dst.nfev && nst.accepted == dst.accepted,
           "%s %s: statistics of the double core (nfev %lld)", name, mname, (long long)nst.nfev);
        ok(bits, "%s %s: the %d dense outputs (the step end %.6f among them) = opl_rk_dense bit for bit", name,
           mname, nt, te);
      } else {
        ok(maxd < 1e-3, "%s %s: dense outputs within 1e-3 of the double core in single precision (max %.2e)",
           name, mname, maxd);
      }
      opl_ctx_free(&c);
      opl_nde_free(&nd);
    }
  }
  opl_tensor_free(&F.w);
  opl_tensor_free(&F.b);
  opl_tensor_free(&u0);
}

/* ------------------------------------------------------------ accuracy on a linear ODE */

/* du/dt = W u, W = [[-0.1, 2], [-2, -0.1]]: u(t) = e^{-0.1 t} R(2t) u0. Max error over 40 dense
 * outputs in [0, 4] and over the states at step ends, for rtol = atol = 1e-4 .. 1e-8 (double
 * build; single precision floors near 1e-7). Passes when the dense error falls with rtol like the
 * states' error (the log-log slope over the range is >= 0.75 and within 0.35 of the states') and
 * stays within 3x of the states' error at every tolerance: interpolating costs no accuracy
 * order. */
static void test_linear_accuracy(void) {
  if (!DOUBLE_BUILD) {
    skip("the convergence in rtol is measured in the double build", "dense output accuracy on a linear ODE");
    return;
  }
  opl_err err = {0};
  opl_tensor *W = opl_tensor_alloc(OPL_DIMS(2, 2), 0, &err);
  const double Wv[4] = {-0.1, 2, -2, -0.1};
  for (int i = 0; i < 4; i++) W->data[i] = Wv[i];
  opl_tensor *u0 = opl_tensor_alloc(OPL_DIMS(1, 2), 0, &err);
  u0->data[0] = 1, u0->data[1] = 0.5;
  double ts[40];
  for (int k = 0; k < 40; k++) ts[k] = 0.1 * (k + 1) - 0.0371 * (k < 39);
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    double ed[5], es[5];
    for (int q = 0; q < 5; q++) {
      const double tol = pow(10, -4 - q);
      opl_nde *nd = opl_nde_create(m, f_linear, W, &err);
      opl_nde_set_tolerances(nd, tol, tol, &err);
      opl_nde_set_saveat(nd, OPL_NDE_SAVEAT_DENSE, &err);
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor *us[40];
      ed[q] = es[q] = INFINITY;
      if (!opl_nde_solve(nd, c, 0, u0, 40, ts, us, &err)) {
        ed[q] = 0;
        for (int k = 0; k < 40; k++) {
          const double t = ts[k], d = exp(-0.1 * t), cs = cos(2 * t), sn = sin(2 * t);
          const double e0 = d * (cs * u0->data[0] + sn * u0->data[1]), e1 = d * (-sn * u0->data[0] + cs * u0->data[1]);
          ed[q] = fmax(ed[q], fmax(fabs(us[k]->data[0] - e0), fabs(us[k]->data[1] - e1)));
        }
        /* the states at step ends: a step-output solve at the dense solve's step ends */
        const int64_t S = opl_nde_num_steps(nd);
        double *te = malloc((size_t)S * sizeof *te);
        for (int64_t j = 0; j + 1 < S; j++) opl_nde_step(nd, j + 1, &te[j], NULL, NULL, NULL, NULL);
        te[S - 1] = ts[39];
        opl_tensor **ys = malloc((size_t)S * sizeof *ys);
        opl_nde_set_saveat(nd, OPL_NDE_SAVEAT_STEP, &err);
        if (!opl_nde_solve(nd, c, 0, u0, (int)S, te, ys, &err)) {
          es[q] = 0;
          for (int64_t j = 0; j < S; j++) {
            const double t = te[j], d = exp(-0.1 * t), cs = cos(2 * t), sn = sin(2 * t);
            const double e0 = d * (cs * u0->data[0] + sn * u0->data[1]), e1 = d * (-sn * u0->data[0] + cs * u0->data[1]);
            es[q] = fmax(es[q], fmax(fabs(ys[j]->data[0] - e0), fabs(ys[j]->data[1] - e1)));
          }
        }
        free(te), free(ys);
      }
      opl_ctx_free(&c);
      opl_nde_free(&nd);
    }
    const double sd = log10(ed[0] / ed[4]) / 4, ss = log10(es[0] / es[4]) / 4;
    int within = 1;
    for (int q = 0; q < 5; q++) within &= ed[q] <= 3 * es[q];
    if (!ok(sd >= 0.75 && fabs(sd - ss) <= 0.35 && within,
            "%s: dense-output error vs rtol 1e-4..1e-8: slope %.2f (states %.2f), %.1e -> %.1e (states %.1e -> %.1e)",
            opl_rk_method_name(m), sd, ss, ed[0], ed[4], es[0], es[4]))
      for (int q = 0; q < 5; q++) diag("  rtol 1e-%d: dense %.3e, states %.3e", 4 + q, ed[q], es[q]);
  }
  opl_tensor_free(&W);
  opl_tensor_free(&u0);
}

/* ------------------------------------------------------------ gradients vs frozen FD */

typedef struct mlp_case {
  opl_params p;
  opl_mlp mlp;
  opl_tensor *u0, *r[6];
  double ts[6];
} mlp_case;

static void mlp_case_init(mlp_case *mc, int B, int D, int H, uint64_t seed) {
  opl_err err = {0};
  opl_params_init(&mc->p);
  opl_rng rng;
  opl_rng_seed(&rng, seed);
  int64_t widths[3] = {D, H, D};
  opl_mlp_init(&mc->mlp, &mc->p, "f", 2, widths, OPL_TANH, &rng, &err);
  for (int i = 0; i < mc->p.n; i++)
    for (int64_t k = 0; k < mc->p.t[i]->numel; k++) mc->p.t[i]->data[k] *= 3;
  uint64_t s = seed + 11;
  mc->u0 = opl_tensor_alloc(OPL_DIMS(B, D), OPL_T_REQGRAD, &err);
  fill_uniform(mc->u0, &s, -1, 1);
  for (int k = 0; k < 6; k++) {
    mc->r[k] = opl_tensor_alloc(OPL_DIMS(B, D), 0, &err);
    fill_uniform(mc->r[k], &s, -1, 1);
  }
  const double ts[6] = {0.13, 0.4, 0.77, 1.2, 1.61, 2.0};
  memcpy(mc->ts, ts, sizeof ts);
}

static void mlp_case_free(mlp_case *mc) {
  opl_params_free(&mc->p);
  opl_tensor_free(&mc->u0);
  for (int k = 0; k < 6; k++) opl_tensor_free(&mc->r[k]);
}

/* L = sum_k <r_k, u(ts_k)> (+ 0.3 R_E when reg) for nt = 6 outputs (or the last only). */
static opl_tensor *mlp_loss(opl_nde *nd, mlp_case *mc, opl_ctx *c, int reg, opl_err *err) {
  opl_tensor *us[6];
  if (opl_nde_solve(nd, c, 0, mc->u0, 6, mc->ts, us, err)) return NULL;
  opl_tensor *terms[7];
  for (int k = 0; k < 6; k++) terms[k] = opl_sum(c, opl_mul(c, us[k], mc->r[k]));
  terms[6] = reg ? opl_nde_reg_error(nd, c, 0) : opl_zeros(c, OPL_DIMS(1));
  return opl_lincomb(c, 7, (const double[]){1, 1, 1, 1, 1, 1, 0.3}, terms);
}

/* The fourth-order central difference of test_node.c (see there for the step). */
static double fd4(double (*loss)(void *), void *ctx, opl_real *x, double d) {
  const double x0 = *x, off[4] = {-2, -1, 1, 2}, w[4] = {1, -8, 8, -1};
  double acc = 0;
  for (int q = 0; q < 4; q++) {
    *x = (opl_real)(x0 + off[q] * d);
    acc += w[q] * loss(ctx);
  }
  *x = (opl_real)x0;
  return acc / (12 * d);
}

typedef struct fd_ctx {
  opl_nde *nd;
  mlp_case *mc;
  opl_ctx *c;
  int reg;
} fd_ctx;

static double fd_loss(void *p) {
  fd_ctx *f = p;
  opl_err err = {0};
  opl_ctx_reset(f->c);
  opl_tensor *l = mlp_loss(f->nd, f->mc, f->c, f->reg, &err);
  return l ? l->data[0] : NAN;
}

/* The gradient through a dense adaptive solve (rejections included) against central differences
 * with the step sequence frozen; the outputs must fall inside steps (the dense solve takes the
 * steps of a solve to the last time only). */
static void check_grad(opl_rk_method m, int mode, int reg) {
  opl_err err = {0};
  mlp_case mc;
  mlp_case_init(&mc, 2, 3, 8, 31 + (uint64_t)m);
  opl_nde *nd = opl_nde_create(m, f_mlp, &mc.mlp, &err);
  opl_nde_set_tolerances(nd, 1e-9, 1e-6, &err);
  opl_nde_set_initial_step(nd, 0.5, &err);
  opl_nde_set_memory(nd, mode, &err);
  opl_nde_set_params(nd, mc.p.n, mc.p.t, &err);
  opl_nde_set_saveat(nd, OPL_NDE_SAVEAT_DENSE, &err);
  opl_ctx *c = opl_ctx_new(0);
  char name[160];
  snprintf(name, sizeof name, "%s %s dense%s", opl_rk_method_name(m), mode ? "checkpoint" : "store-all",
           reg ? " + R_E" : "");
  /* steps of a solve to T alone */
  opl_tensor *u1[1];
  opl_nde_solve(nd, c, 0, mc.u0, 1, &mc.ts[5], u1, &err);
  const int64_t S1 = opl_nde_num_steps(nd);
  opl_ctx_reset(c);
  opl_params_zero_grad(&mc.p);
  opl_tensor_zero_grad(mc.u0);
  opl_tensor *L = mlp_loss(nd, &mc, c, reg, &err);
  if (!L || opl_backward(c, L)) {
    ok(0, "%s: solve and backward (%s / %s)", name, err.msg, opl_ctx_errmsg(c));
    goto out;
  }
  opl_nde_stats st;
  opl_nde_get_stats(nd, &st);
  ok(st.accepted >= 10 && st.rejected >= 1 && st.accepted == S1,
     "%s: %lld accepted steps (as with one output), %lld rejected", name, (long long)st.accepted,
     (long long)st.rejected);
  if (opl_nde_freeze(nd, 1, &err)) {
    ok(0, "%s: freeze: %s", name, err.msg);
    goto out;
  }
  opl_ctx *c2 = opl_ctx_new(0);
  opl_ctx_set_grad_enabled(c2, 0);
  fd_ctx fc = {nd, &mc, c2, reg};
  const double tol = 1e-6, dstep = 1e-4;
  double maxd = 0, maxg = 0;
  int probes = 0;
  opl_tensor *targets[8];
  int nt = 0;
  for (int i = 0; i < mc.p.n; i++) targets[nt++] = mc.p.t[i];
  targets[nt++] = mc.u0;
  for (int ti = 0; ti < nt; ti++) {
    opl_tensor *T = targets[ti];
    for (int64_t k = 0; k < T->numel; k += (T->numel > 6 ? 5 : 1)) {
      const double fd = fd4(fd_loss, &fc, &T->data[k], dstep * fmax(1, fabs(T->data[k]))), g = T->grad[k];
      if (fabs(fd - g) > tol * 10 && probes < 1000 && maxd <= tol * maxg)
        diag("  %s[%lld]: backward %.12g, central difference %.12g", T->name[0] ? T->name : "u0", (long long)k, g, fd);
      maxd = fmax(maxd, isfinite(fd) ? fabs(fd - g) : INFINITY);
      maxg = fmax(maxg, fabs(g));
      probes++;
    }
  }
  ok(maxg > 0 && maxd <= tol * maxg,
     "%s: gradient through dense outputs = frozen-step central difference at %d probes (max err %.2e of %.3g)",
     name, probes, maxd / maxg, maxg);
  opl_ctx_free(&c2);
out:
  opl_ctx_free(&c);
  opl_nde_free(&nd);
  mlp_case_free(&mc);
}

/* Store-all and checkpointed dense solves: equal losses bit for bit, equal gradients; the
 * continuous adjoints run on a dense solve and agree with the discrete one to O(tolerance). */
static void test_modes_agree(void) {
  opl_err err = {0};
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    mlp_case mc;
    mlp_case_init(&mc, 2, 3, 8, 50);
    const int64_t np = opl_params_count(&mc.p) + mc.u0->numel;
    double *g[4] = {0}, outv[4] = {0};
    const opl_nde_adjoint adjs[4] = {OPL_NDE_ADJ_DISCRETE, OPL_NDE_ADJ_CHECKPOINT, OPL_NDE_ADJ_BACKSOLVE,
                                     OPL_NDE_ADJ_INTERP};
    for (int a = 0; a < 4; a++) {
      opl_nde *nd = opl_nde_create(m, f_mlp, &mc.mlp, &err);
      opl_nde_set_tolerances(nd, 1e-7, 1e-9, &err);
      opl_nde_set_adjoint(nd, adjs[a], &err);
      opl_nde_set_params(nd, mc.p.n, mc.p.t, &err);
      opl_nde_set_saveat(nd, OPL_NDE_SAVEAT_DENSE, &err);
      opl_ctx *c = opl_ctx_new(0);
      opl_params_zero_grad(&mc.p);
      opl_tensor_zero_grad(mc.u0);
      opl_tensor *L = mlp_loss(nd, &mc, c, 0, &err);
      g[a] = calloc((size_t)np, sizeof(double));
      if (L && !opl_backward(c, L)) {
        int64_t q = 0;
        for (int i = 0; i < mc.p.n; i++)
          for (int64_t k = 0; k < mc.p.t[i]->numel; k++) g[a][q++] = mc.p.t[i]->grad[k];
        for (int64_t k = 0; k < mc.u0->numel; k++) g[a][q++] = mc.u0->grad[k];
        outv[a] = L->data[0];
      } else {
        diag("%s", L ? opl_ctx_errmsg(c) : err.msg);
      }
      opl_ctx_free(&c);
      opl_nde_free(&nd);
    }
    ok(outv[0] == outv[1] && outv[0] != 0, "%s dense: store-all and checkpoint losses equal bit for bit (%.10g)",
       opl_rk_method_name(m), outv[0]);
    arrays_close(np, g[1], g[0], DOUBLE_BUILD ? 1e-10 : 2e-3, DOUBLE_BUILD ? 1e-13 : 1e-4,
                 "%s dense: checkpointed gradient = store-all gradient (%lld entries)", opl_rk_method_name(m),
                 (long long)np);
    for (int a = 2; a < 4; a++) {
      double num = 0, den = 0;
      for (int64_t k = 0; k < np; k++) num += (g[a][k] - g[0][k]) * (g[a][k] - g[0][k]), den += g[0][k] * g[0][k];
      const double rel = sqrt(num / den);
      ok(rel < (DOUBLE_BUILD ? 1e-4 : 3e-2), "%s dense: %s adjoint within %.1e of the discrete gradient",
         opl_rk_method_name(m), a == 2 ? "backsolve" : "interpolating", rel);
    }
    for (int a = 0; a < 4; a++) free(g[a]);
    mlp_case_free(&mc);
  }
}

static void test_bad_input(void) {
  opl_err err = {0};
  tanh_field F = {0};
  opl_nde *nd = opl_nde_create(OPL_RK_DP5, f_tanh, &F, &err);
  ok(opl_nde_set_saveat(nd, (opl_nde_saveat)2, &err) == OPL_ERR_ARG && strstr(err.msg, "mode = 2"),
     "set_saveat(2) refused: %s", err.msg);
  ok(opl_nde_set_saveat(nd, (opl_nde_saveat)-1, &err) == OPL_ERR_ARG, "set_saveat(-1) refused");
  opl_nde_free(&nd);
}

int main(void) {
  tap_begin();
  test_order_conditions();
  test_local_order();
  test_rk_dense_errors();
  test_tape_equals_double();
  test_linear_accuracy();
  if (DOUBLE_BUILD) {
    for (int mi = 0; mi < 3; mi++) {
      check_grad(METHODS[mi], 0, 0);
      check_grad(METHODS[mi], 1, 0);
    }
    check_grad(OPL_RK_TSIT5, 1, 1);
  } else {
    skip("finite-difference checks run in the double build", "gradients through dense outputs");
  }
  test_modes_agree();
  test_bad_input();
  return tap_end();
}
