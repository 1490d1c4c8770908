/* Neural differential equations on the adaptive RK core (operators/node.h): the tape path takes
 * the double-array path's steps (bit for bit in the double build); checkpointed and store-all
 * solves agree; gradients through full adaptive solves (with rejections and output times) match
 * central differences with the step sequence frozen, with and without each regularizer term
 * (double build); a linear field's solution and gradient match the matrix exponential and its
 * Frechet derivative; evaluation counts; rejected steps leave nothing on the tape; local
 * regularization; the memory of store-all against checkpointed backward for a 200-step MLP
 * solve (TAP diagnostic); bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "operators/node.h"
#include "operators/mlp.h"
#include "solvers/rk.h"
#include "tests/gradcheck.h"
#include "tests/tap.h"

static const opl_rk_method METHODS[3] = {OPL_RK_DP5, OPL_RK_TSIT5, OPL_RK_BS3};
#ifdef OPL_DOUBLE
static const int DOUBLE_BUILD = 1;
#else
static const int DOUBLE_BUILD = 0;
#endif

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
/* The same on double arrays (the reference path). */
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

/* du = u W^T (u (1, n), W (n, n)): du/dt = W u for the column u. */
static int f_linear(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  (void)t;
  *du = opl_linear(c, u, (opl_tensor *)user, NULL);
  return 0;
}

/* du = MLP(u) + 0.5 sin(t) (u (B, D)), a time-dependent neural field. */
static int f_mlp(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  *du = opl_add_scalar(c, opl_mlp_forward(c, (const opl_mlp *)user, u), 0.5 * sin(t));
  return 0;
}

static int f_badshape(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  (void)user, (void)t;
  *du = opl_zeros(c, OPL_DIMS(u->numel + 1));
  return 0;
}
/* u' = u^2: blows up at t = 1 from u(0) = 1. */
static int f_blowup(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  (void)user, (void)t;
  *du = opl_square(c, u);
  return 0;
}

static void fill_uniform(opl_tensor *t, uint64_t *s, double lo, double hi) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = (opl_real)(lo + (hi - lo) * gc_uniform(s));
}

/* ------------------------------------------------------------ tape path == double path */

static void test_same_steps(void) {
  opl_err err = {0};
  const int n = 6;
  uint64_t s = 5;
  tanh_field F = {opl_tensor_alloc(OPL_DIMS(n), 0, &err), opl_tensor_alloc(OPL_DIMS(n), 0, &err)};
  opl_tensor *u0 = opl_tensor_alloc(OPL_DIMS(n), 0, &err);
  fill_uniform(F.w, &s, -3, 3);
  fill_uniform(F.b, &s, -1, 1);
  fill_uniform(u0, &s, -1, 1);
  const double ts[3] = {0.5, 1.25, 3.0};
  const double rtol = DOUBLE_BUILD ? 1e-8 : 1e-5, atol = DOUBLE_BUILD ? 1e-10 : 1e-6;
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    const char *name = opl_rk_method_name(m);
    /* double path, step by step */
    opl_rk_vops ops = opl_rk_vops_double(n);
    ops.rhs = f_tanh_d;
    opl_rk *rk = opl_rk_create(&ops, &F, m, &err);
    opl_rk_set_tolerances(rk, rtol, atol, &err);
    opl_rk_set_initial_step(rk, 0.8, &err); /* too large: the first attempts are rejected */
    double *y = malloc(n * sizeof *y);
    for (int i = 0; i < n; i++) y[i] = u0->data[i];
    int64_t cap = 4096, ns = 0;
    double *rec = malloc((size_t)cap * 4 * sizeof *rec);
    double yout[3][6];
    opl_rk_init(rk, 0, y, &err);
    for (int k = 0; k < 3; k++) {
      while (opl_rk_time(rk) < ts[k] && ns < cap) {
        double t = opl_rk_time(rk);
        if (opl_rk_step(rk, ts[k], &err)) break;
        opl_rk_stats st;
        opl_rk_get_stats(rk, &st);
        rec[4 * ns] = t, rec[4 * ns + 1] = st.h_last, rec[4 * ns + 2] = st.err_last, rec[4 * ns + 3] = st.stiff_last;
        ns++;
      }
      opl_rk_get_state(rk, y);
      for (int i = 0; i < n; i++) yout[k][i] = y[i];
    }
    opl_rk_stats dst;
    opl_rk_get_stats(rk, &dst);
    opl_rk_free(&rk);
    /* tape path, store-all and checkpointed */
    for (int mode = 0; mode < 2; mode++) {
      opl_nde *nd = opl_nde_create(m, f_tanh, &F, &err);
      opl_nde_set_tolerances(nd, rtol, atol, &err);
      opl_nde_set_initial_step(nd, 0.8, &err);
      opl_nde_set_memory(nd, mode, &err);
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor *us[3];
      int st = opl_nde_solve(nd, c, 0, u0, 3, ts, us, &err);
      opl_nde_stats nst;
      opl_nde_get_stats(nd, &nst);
      const char *mname = mode ? "checkpoint" : "store-all";
      if (!ok(st == OPL_OK, "%s %s: solve", name, mname)) diag("%s", err.msg);
      if (st) continue;
      if (DOUBLE_BUILD) {
        ok(nst.nfev == dst.nfev && nst.accepted == dst.accepted && nst.rejected == dst.rejected &&
               opl_nde_num_steps(nd) == ns && nst.rejected >= 1,
           "%s %s: statistics of the double path (nfev %lld, accepted %lld, rejected %lld)", name, mname,
           (long long)nst.nfev, (long long)nst.accepted, (long long)nst.rejected);
        int same = 1;
        for (int64_t j = 0; j < ns && j < opl_nde_num_steps(nd); j++) {
          double t, h, e, r;
          opl_nde_step(nd, j, &t, &h, &e, &r, NULL);
          same &= t == rec[4 * j] && h == rec[4 * j + 1] && e == rec[4 * j + 2] && r == rec[4 * j + 3];
          same &= opl_nde_eest(nd, j)->data[0] == e && opl_nde_stiff(nd, j)->data[0] == (opl_real)r;
        }
        ok(same, "%s %s: every step's t, h, EEst and stiffness bit for bit (%lld steps)", name, mname,
           (long long)ns);
        same = 1;
        for (int k = 0; k < 3; k++)
          for (int i = 0; i < n; i++) same &= us[k]->data[i] == yout[k][i];
        ok(same, "%s %s: the states at the 3 output times bit for bit", name, mname);
      } else {
        double maxd = 0;
        for (int k = 0; k < 3; k++)
          for (int i = 0; i < n; i++) maxd = fmax(maxd, fabs(us[k]->data[i] - yout[k][i]));
        ok(maxd < 1e-3, "%s %s: states within 1e-3 of the double path in single precision (max %.2e)",
           name, mname, maxd);
      }
      opl_ctx_free(&c);
      opl_nde_free(&nd);
    }
    free(rec);
    free(y);
  }
  opl_tensor_free(&F.w);
  opl_tensor_free(&F.b);
  opl_tensor_free(&u0);
}

/* ------------------------------------------------------------ gradients vs frozen FD */

typedef struct mlp_case {
  opl_params p;
  opl_mlp mlp;
  opl_tensor *u0, *r[3];
  double ts[3];
} mlp_case;

static void mlp_case_init(mlp_case *mc, int B, int D, int H, uint64_t seed) {
  opl_err err = {0};
  opl_params_init(&mc->p);
  opl_rng rng;
  opl_rng_seed(&rng, seed);
  int64_t widths[3] = {D, H, D};
  opl_mlp_init(&mc->mlp, &mc->p, "f", 2, widths, OPL_TANH, &rng, &err);
  for (int i = 0; i < mc->p.n; i++) /* a livelier field: more steps */
    for (int64_t k = 0; k < mc->p.t[i]->numel; k++) mc->p.t[i]->data[k] *= 3;
  uint64_t s = seed + 11;
  mc->u0 = opl_tensor_alloc(OPL_DIMS(B, D), OPL_T_REQGRAD, &err);
  fill_uniform(mc->u0, &s, -1, 1);
  for (int k = 0; k < 3; k++) {
    mc->r[k] = opl_tensor_alloc(OPL_DIMS(B, D), 0, &err);
    fill_uniform(mc->r[k], &s, -1, 1);
  }
  mc->ts[0] = 0.4, mc->ts[1] = 0.9, mc->ts[2] = 2.0;
}

static void mlp_case_free(mlp_case *mc) {
  opl_params_free(&mc->p);
  opl_tensor_free(&mc->u0);
  for (int k = 0; k < 3; k++) opl_tensor_free(&mc->r[k]);
}

/* L = sum_k <r_k, u(ts_k)> + lE R_E + lS R_S on c (a scalar tensor); NULL on failure. */
static opl_tensor *mlp_loss(opl_nde *nd, mlp_case *mc, opl_ctx *c, double lE, double lS, int mean,
                            opl_err *err) {
  opl_tensor *us[3];
  if (opl_nde_solve(nd, c, 0, mc->u0, 3, mc->ts, us, err)) return NULL;
  opl_tensor *terms[5];
  for (int k = 0; k < 3; k++) terms[k] = opl_sum(c, opl_mul(c, us[k], mc->r[k]));
  terms[3] = opl_nde_reg_error(nd, c, mean);
  terms[4] = opl_nde_reg_stiff(nd, c, mean);
  return opl_lincomb(c, 5, (const double[]){1, 1, 1, lE, lS}, terms);
}

/* Analytic gradient (backward through the adaptive solve) against central differences of the
 * loss with the step sequence frozen, for probed entries of every parameter and of u0. The
 * fourth-order stencil (f(x-2d) - 8 f(x-d) + 8 f(x+d) - f(x+2d)) / 12d with d = 1e-4 max(1, |x|):
 * an error estimate is a difference of stage derivatives that cancel to ~tolerance, so it
 * carries relative rounding noise of ~eps / tolerance, which a step d = 1e-6 would amplify to
 * ~1e-4. atol = 1e-6 dominates rtol |y| (rtol = 1e-9, |y| <= ~3), so the weights' kinks (at
 * y_i = 0 and |ya_i| = |yb_i|) are too faint to disturb the differences. Passes when every
 * |difference - gradient| <= 1e-6 max |gradient| over the probes. */
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
  double lE, lS;
  int mean;
} fd_ctx;

static opl_tensor *mlp_loss(opl_nde *nd, mlp_case *mc, opl_ctx *c, double lE, double lS, int mean,
                            opl_err *err);
static double fd_loss(void *p) {
  fd_ctx *f = p;
  opl_err err = {0};
  opl_ctx_reset(f->c);
  opl_tensor *l = mlp_loss(f->nd, f->mc, f->c, f->lE, f->lS, f->mean, &err);
  return l ? l->data[0] : NAN;
}
static void check_grad(opl_rk_method m, int mode, double lE, double lS, int mean) {
  opl_err err = {0};
  mlp_case mc;
  mlp_case_init(&mc, 2, 3, 8, 21 + (uint64_t)m);
  opl_nde *nd = opl_nde_create(m, f_mlp, &mc.mlp, &err);
  opl_nde_set_tolerances(nd, 1e-9, 1e-6, &err);
  opl_nde_set_initial_step(nd, 0.5, &err); /* too large: forces rejections */
  opl_nde_set_memory(nd, mode, &err);
  opl_nde_set_params(nd, mc.p.n, mc.p.t, &err);
  opl_ctx *c = opl_ctx_new(0);
  opl_params_zero_grad(&mc.p);
  opl_tensor_zero_grad(mc.u0);
  opl_tensor *L = mlp_loss(nd, &mc, c, lE, lS, mean, &err);
  char name[160];
  snprintf(name, sizeof name, "%s %s, lE = %g, lS = %g%s", opl_rk_method_name(m),
           mode ? "checkpoint" : "store-all", lE, lS, mean ? " (means)" : "");
  if (!L || opl_backward(c, L)) {
    ok(0, "%s: solve and backward (%s / %s)", name, err.msg, opl_ctx_errmsg(c));
    goto out;
  }
  opl_nde_stats st;
  opl_nde_get_stats(nd, &st);
  ok(st.accepted >= 10 && st.rejected >= 1, "%s: %lld accepted steps, %lld rejected", name,
     (long long)st.accepted, (long long)st.rejected);
  if (opl_nde_freeze(nd, 1, &err)) {
    ok(0, "%s: freeze: %s", name, err.msg);
    goto out;
  }
  opl_ctx *c2 = opl_ctx_new(0);
  opl_ctx_set_grad_enabled(c2, 0);
  fd_ctx fc = {nd, &mc, c2, lE, lS, mean};
  const double tol = 1e-6, dstep = 1e-4;
  double maxd = 0, maxg = 0, fds[64], gs[64];
  const char *names[64];
  int64_t idx[64];
  int probes = 0;
  opl_tensor *targets[8];
  int nt = 0;
  for (int i = 0; i < mc.p.n; i++) targets[nt++] = mc.p.t[i];
  targets[nt++] = mc.u0;
  for (int ti = 0; ti < nt; ti++) {
    opl_tensor *T = targets[ti];
    for (int64_t k = 0; k < T->numel; k += (T->numel > 6 ? 5 : 1)) {
      const double fd = fd4(fd_loss, &fc, &T->data[k], dstep * fmax(1, fabs(T->data[k]))), g = T->grad[k];
      maxd = fmax(maxd, isfinite(fd) ? fabs(fd - g) : INFINITY);
      maxg = fmax(maxg, fabs(g));
      if (probes < 64) fds[probes] = fd, gs[probes] = g, names[probes] = T->name[0] ? T->name : "u0", idx[probes] = k;
      probes++;
    }
  }
  if (!ok(maxg > 0 && maxd <= tol * maxg,
          "%s: gradient = frozen-step central difference at %d probes (max err %.2e of the largest "
          "entry %.3g)", name, probes, maxd / maxg, maxg))
    for (int q = 0, shown = 0; q < probes && q < 64 && shown < 3; q++)
      if (fabs(fds[q] - gs[q]) > tol * maxg)
        shown++, diag("  %s[%lld]: backward %.12g, central difference %.12g", names[q], (long long)idx[q], gs[q], fds[q]);
  opl_ctx_free(&c2);
out:
  opl_ctx_free(&c);
  opl_nde_free(&nd);
  mlp_case_free(&mc);
}

/* Store-all and checkpointed backward give the same gradients and outputs. */
static void test_checkpoint_equal(void) {
  opl_err err = {0};
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    mlp_case mc;
    mlp_case_init(&mc, 2, 3, 8, 40);
    double *g[2] = {0};
    double outv[2] = {0};
    int64_t np = opl_params_count(&mc.p) + mc.u0->numel;
    for (int mode = 0; mode < 2; mode++) {
      opl_nde *nd = opl_nde_create(m, f_mlp, &mc.mlp, &err);
      opl_nde_set_tolerances(nd, 1e-5, 1e-7, &err);
      opl_nde_set_memory(nd, mode, &err);
      opl_nde_set_params(nd, mc.p.n, mc.p.t, &err);
      opl_ctx *c = opl_ctx_new(0);
      opl_params_zero_grad(&mc.p);
      opl_tensor_zero_grad(mc.u0);
      opl_tensor *L = mlp_loss(nd, &mc, c, 0.3, 0.01, 0, &err);
      g[mode] = calloc((size_t)np, sizeof(double));
      if (L && !opl_backward(c, L)) {
        int64_t q = 0;
        for (int i = 0; i < mc.p.n; i++)
          for (int64_t k = 0; k < mc.p.t[i]->numel; k++) g[mode][q++] = mc.p.t[i]->grad[k];
        for (int64_t k = 0; k < mc.u0->numel; k++) g[mode][q++] = mc.u0->grad[k];
        outv[mode] = L->data[0];
      } else {
        diag("%s", L ? opl_ctx_errmsg(c) : err.msg);
      }
      if (mode == 1) {
        opl_nde_stats st;
        opl_nde_get_stats(nd, &st);
        ok(st.backward_nfev == (int64_t)opl_rk_tableau(m, NULL, NULL, NULL, NULL, NULL, NULL) * st.accepted,
           "%s checkpoint: backward replays each step with s evaluations (%lld for %lld steps)",
           opl_rk_method_name(m), (long long)st.backward_nfev, (long long)st.accepted);
      }
      opl_ctx_free(&c);
      opl_nde_free(&nd);
    }
    ok(outv[0] == outv[1] && outv[0] != 0, "%s: store-all and checkpoint losses equal bit for bit (%.10g)",
       opl_rk_method_name(m), outv[0]);
    /* Only the order of accumulation differs; in single precision the rounding noise of the
     * error estimates (a cancellation to ~tolerance) shows at ~1e-4. */
    arrays_close(np, g[1], g[0], DOUBLE_BUILD ? 1e-10 : 2e-3, DOUBLE_BUILD ? 1e-13 : 1e-4,
                 "%s: checkpointed gradient = store-all gradient (%lld entries)", opl_rk_method_name(m),
                 (long long)np);
    free(g[0]);
    free(g[1]);
    mlp_case_free(&mc);
  }
}

/* ------------------------------------------------------------ matrix exponential */

/* E = exp(A) for an n x n row-major A (n <= 8): scaling and squaring with a degree-24 Taylor
 * polynomial (Moler & Van Loan, "Nineteen dubious ways...", 2003, method 3). */
static void expm(int n, const double *A, double *E) {
  double nrm = 0;
  for (int i = 0; i < n * n; i++) nrm = fmax(nrm, fabs(A[i]));
  int sq = 0;
  while (nrm * n > 0.25) nrm /= 2, sq++;
  double B[64], T[64], P[64];
  for (int i = 0; i < n * n; i++) B[i] = A[i] / ldexp(1, sq);
  for (int i = 0; i < n * n; i++) E[i] = T[i] = (i / n == i % n);
  for (int k = 1; k <= 24; k++) {
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int l = 0; l < n; l++) s += T[i * n + l] * B[l * n + j];
        P[i * n + j] = s / k;
      }
    for (int i = 0; i < n * n; i++) T[i] = P[i], E[i] += P[i];
  }
  for (int q = 0; q < sq; q++) {
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int l = 0; l < n; l++) s += E[i * n + l] * E[l * n + j];
        P[i * n + j] = s;
      }
    memcpy(E, P, (size_t)(n * n) * sizeof *E);
  }
}

static void test_matrix_exponential(void) {
  opl_err err = {0};
  enum { n = 3 };
  const double T = 1.0;
  uint64_t s = 77;
  opl_tensor *W = opl_tensor_alloc(OPL_DIMS(n, n), OPL_T_REQGRAD, &err);
  opl_tensor *u0 = opl_tensor_alloc(OPL_DIMS(1, n), OPL_T_REQGRAD, &err);
  opl_tensor *r = opl_tensor_alloc(OPL_DIMS(1, n), 0, &err);
  fill_uniform(W, &s, -1.5, 1.5);
  fill_uniform(u0, &s, -1, 1);
  fill_uniform(r, &s, -1, 1);
  double A[n * n], E[n * n];
  for (int i = 0; i < n * n; i++) A[i] = T * W->data[i];
  expm(n, A, E);
  double want[n], gu[n], gW[n * n];
  for (int i = 0; i < n; i++) {
    want[i] = 0;
    for (int j = 0; j < n; j++) want[i] += E[i * n + j] * u0->data[j];
  }
  for (int j = 0; j < n; j++) { /* dL/du0 = exp(TW)^T r */
    gu[j] = 0;
    for (int i = 0; i < n; i++) gu[j] += E[i * n + j] * r->data[i];
  }
  /* dL/dW_kl = r^T L(TW, T e_k e_l^T) u0, the Frechet derivative being the upper right block
   * of exp([[TW, T e_k e_l^T], [0, TW]]) (Higham, Functions of Matrices, 2008, eq. (3.16)). */
  for (int k = 0; k < n; k++)
    for (int l = 0; l < n; l++) {
      double M[36] = {0}, X[36];
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) M[i * 6 + j] = M[(i + n) * 6 + j + n] = A[i * n + j];
      M[k * 6 + n + l] = T;
      expm(2 * n, M, X);
      double v = 0;
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) v += r->data[i] * X[i * 6 + n + j] * u0->data[j];
      gW[k * n + l] = v;
    }
  const double rtol = DOUBLE_BUILD ? 1e-11 : 1e-5, tol = DOUBLE_BUILD ? 1e-8 : 2e-3;
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    for (int mode = 0; mode < 2; mode++) {
      opl_nde *nd = opl_nde_create(m, f_linear, W, &err);
      opl_nde_set_tolerances(nd, m == OPL_RK_BS3 && DOUBLE_BUILD ? 1e-9 : rtol, 1e-12, &err);
      opl_nde_set_memory(nd, mode, &err);
      opl_nde_set_params(nd, 1, &W, &err);
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor_zero_grad(W);
      opl_tensor_zero_grad(u0);
      opl_tensor *uT;
      const double ts[1] = {T};
      const char *mname = mode ? "checkpoint" : "store-all";
      double tolm = m == OPL_RK_BS3 && DOUBLE_BUILD ? 1e-6 : tol;
      if (opl_nde_solve(nd, c, 0, u0, 1, ts, &uT, &err) ||
          opl_backward(c, opl_sum(c, opl_mul(c, uT, r)))) {
        ok(0, "%s %s: linear solve (%s %s)", opl_rk_method_name(m), mname, err.msg, opl_ctx_errmsg(c));
      } else {
        double got[n], g1[n], g2[n * n];
        for (int i = 0; i < n; i++) got[i] = uT->data[i], g1[i] = u0->grad[i];
        for (int i = 0; i < n * n; i++) g2[i] = W->grad[i];
        arrays_close(n, got, want, tolm, tolm, "%s %s: u(T) = exp(TW) u0", opl_rk_method_name(m), mname);
        arrays_close(n, g1, gu, tolm, tolm, "%s %s: dL/du0 = exp(TW)^T r", opl_rk_method_name(m), mname);
        arrays_close(n * n, g2, gW, tolm, tolm, "%s %s: dL/dW = the Frechet derivative of exp",
                     opl_rk_method_name(m), mname);
      }
      opl_ctx_free(&c);
      opl_nde_free(&nd);
    }
  }
  opl_tensor_free(&W);
  opl_tensor_free(&u0);
  opl_tensor_free(&r);
}

/* ------------------------------------------------------------ statistics, tape, regularizers */

static void test_stats_and_tape(void) {
  opl_err err = {0};
  mlp_case mc;
  mlp_case_init(&mc, 2, 3, 8, 50);
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    const int s = opl_rk_tableau(m, NULL, NULL, NULL, NULL, NULL, NULL);
    const char *name = opl_rk_method_name(m);
    opl_nde *nd = opl_nde_create(m, f_mlp, &mc.mlp, &err);
    opl_nde_set_tolerances(nd, 1e-6, 1e-8, &err);
    opl_nde_set_initial_step(nd, 0.5, &err);
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *us[3];
    opl_nde_solve(nd, c, 0, mc.u0, 3, mc.ts, us, &err);
    opl_nde_stats st;
    opl_nde_get_stats(nd, &st);
    opl_ctx_stats cs;
    opl_ctx_get_stats(c, &cs);
    ok(st.nfev == 1 + (int64_t)(s - 1) * (st.accepted + st.rejected) && st.rejected > 0 && st.t == 2.0,
       "%s: nfev %lld = 1 + (s-1)(accepted %lld + rejected %lld) (FSAL, given h0), t reached %g", name,
       (long long)st.nfev, (long long)st.accepted, (long long)st.rejected, st.t);
    /* The frozen replay runs only the accepted steps: the same tape, node for node and byte for
     * byte, so the rejected attempts left nothing. */
    opl_nde_freeze(nd, 1, &err);
    opl_ctx *c2 = opl_ctx_new(0);
    opl_tensor *us2[3];
    opl_nde_solve(nd, c2, 0, mc.u0, 3, mc.ts, us2, &err);
    opl_ctx_stats cs2;
    opl_ctx_get_stats(c2, &cs2);
    ok(cs.tape_nodes == cs2.tape_nodes && cs.arena_used == cs2.arena_used && cs.tape_nodes > 0,
       "%s: rejected attempts leave nothing on the tape (%lld nodes, %zu bytes, as the frozen replay)",
       name, (long long)cs.tape_nodes, cs.arena_used);
    ok(us2[2]->data[0] == us[2]->data[0] && us2[2]->data[5] == us[2]->data[5],
       "%s: the frozen replay reproduces the outputs bit for bit", name);
    /* Regularizer values: R_E = sum EEst h, R_S = max rho; the means. */
    double sumeh = 0, maxrho = 0, sumrho = 0;
    int64_t S = opl_nde_num_steps(nd);
    for (int64_t j = 0; j < S; j++) {
      double h, e, r;
      opl_nde_step(nd, j, NULL, &h, &e, &r, NULL);
      sumeh += e * h, maxrho = fmax(maxrho, r), sumrho += r;
    }
    const double rt = DOUBLE_BUILD ? 1e-13 : 1e-5;
    is_close(opl_nde_reg_error(nd, c2, 0)->data[0], sumeh, rt, 0, "%s: R_E = sum_j EEst_j h_j", name);
    is_close(opl_nde_reg_error(nd, c2, 1)->data[0], sumeh / S, rt, 0, "%s: R_E mean = R_E / steps", name);
    is_close(opl_nde_reg_stiff(nd, c2, 0)->data[0], maxrho, rt, 0, "%s: R_S = max_j rho_j", name);
    is_close(opl_nde_reg_stiff(nd, c2, 1)->data[0], sumrho / S, rt, 0, "%s: R_S mean", name);
    opl_ctx_free(&c2);
    opl_ctx_free(&c);
    opl_nde_free(&nd);
  }
  mlp_case_free(&mc);
}

/* The stiffness estimate of u' = lambda u reads |lambda|. */
static void test_stiffness_value(void) {
  opl_err err = {0};
  opl_tensor *W = opl_tensor_alloc(OPL_DIMS(1, 1), 0, &err);
  opl_tensor *u0 = opl_tensor_alloc(OPL_DIMS(1, 1), 0, &err);
  W->data[0] = -40;
  u0->data[0] = 1;
  for (int mi = 0; mi < 3; mi++) {
    opl_nde *nd = opl_nde_create(METHODS[mi], f_linear, W, &err);
    opl_nde_set_tolerances(nd, 1e-4, 1e-8, &err);
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *u;
    const double ts[1] = {0.2};
    opl_nde_solve(nd, c, 0, u0, 1, ts, &u, &err);
    double rho = 0;
    opl_nde_step(nd, opl_nde_num_steps(nd) / 2, NULL, NULL, NULL, &rho, NULL);
    is_close(rho, 40, 1e-3, 0, "%s: stiffness estimate of u' = -40 u reads 40", opl_rk_method_name(METHODS[mi]));
    opl_ctx_free(&c);
    opl_nde_free(&nd);
  }
  opl_tensor_free(&W);
  opl_tensor_free(&u0);
}

/* A field that ignores the state: the stiffness differences vanish (for DP5 and Tsit5 exactly:
 * k7 - k6 = 0), rho is 0 and its gradient finite, never NaN. */
static int f_const(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  (void)t;
  *du = opl_add(c, opl_scale(c, u, 0.0), (opl_tensor *)user);
  return 0;
}

static void test_zero_stiffness(void) {
  opl_err err = {0};
  opl_tensor *b = opl_tensor_alloc(OPL_DIMS(4), OPL_T_REQGRAD, &err);
  opl_tensor *u0 = opl_tensor_alloc(OPL_DIMS(4), OPL_T_REQGRAD, &err);
  uint64_t s = 4;
  fill_uniform(b, &s, -1, 1);
  fill_uniform(u0, &s, -1, 1);
  for (int mi = 0; mi < 3; mi++) {
    opl_nde *nd = opl_nde_create(METHODS[mi], f_const, b, &err);
    opl_nde_set_max_step(nd, 0.1, &err);
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *u;
    const double ts[1] = {1};
    opl_tensor_zero_grad(b);
    opl_tensor_zero_grad(u0);
    int st = opl_nde_solve(nd, c, 0, u0, 1, ts, &u, &err);
    double rmax = -1;
    for (int64_t j = 0; j < opl_nde_num_steps(nd); j++) rmax = fmax(rmax, fabs(opl_nde_stiff(nd, j)->data[0]));
    /* k7 - k6 cancels exactly; BS3's (-1, 6, -8, 3) combination of equal stages leaves
     * rounding in both norms (a ratio of rounding errors, with a gradient to match), so there
     * only finiteness is asserted and rho is left out of the loss. */
    const int exact = METHODS[mi] != OPL_RK_BS3;
    opl_tensor *L = exact ? opl_add(c, opl_sum(c, u), opl_nde_reg_stiff(nd, c, 1)) : opl_sum(c, u);
    int bs = L ? opl_backward(c, L) : -1;
    int finite = 1;
    for (int i = 0; i < 4; i++) finite &= isfinite(b->grad[i]) && isfinite(u0->grad[i]);
    ok(st == OPL_OK && bs == OPL_OK && (exact ? rmax == 0 : isfinite(rmax)) && finite &&
           fabs(b->grad[0] - 1) < 1e-5,
       "%s: u' = b: stiffness %s at all %lld steps (max %g), finite gradients (d sum u(1) / db = 1)",
       opl_rk_method_name(METHODS[mi]), exact ? "0" : "finite", (long long)opl_nde_num_steps(nd), rmax);
    opl_ctx_free(&c);
    opl_nde_free(&nd);
  }
  opl_tensor_free(&b);
  opl_tensor_free(&u0);
}

/* ------------------------------------------------------------ local regularization */

static void test_local(void) {
  opl_err err = {0};
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    const int s = opl_rk_tableau(m, NULL, NULL, NULL, NULL, NULL, NULL);
    const char *name = opl_rk_method_name(m);
    mlp_case mc;
    mlp_case_init(&mc, 2, 3, 8, 60);
    opl_nde *nd = opl_nde_create(m, f_mlp, &mc.mlp, &err);
    opl_nde_set_tolerances(nd, 1e-6, 1e-8, &err);
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *us[3];
    opl_nde_solve(nd, c, 0, mc.u0, 3, mc.ts, us, &err);
    double t1u, t1b;
    opl_tensor *re = NULL, *rs = NULL;
    int st = opl_nde_local_reg_draw(nd, c, 0, 123, &t1u, &re, &rs, &err);
    opl_nde_stats nst;
    opl_nde_get_stats(nd, &nst);
    ok(st == OPL_OK && re && rs && t1u >= 0 && t1u < 1.5 && re->data[0] > 0 && rs->data[0] > 0 &&
           nst.local_nfev == s + 1,
       "%s: unbiased local regularizer at t1 = %.4f: EEst dt = %.3g, rho = %.3g, %lld evaluations (s + 1)",
       name, t1u, re ? re->data[0] : NAN, rs ? rs->data[0] : NAN, (long long)nst.local_nfev);
    st = opl_nde_local_reg_draw(nd, c, 1, 7, &t1b, &re, &rs, &err);
    int at_step = 0;
    for (int64_t j = 0; j < opl_nde_num_steps(nd); j++) {
      double t;
      opl_nde_step(nd, j, &t, NULL, NULL, NULL, NULL);
      at_step |= t == t1b;
    }
    ok(st == OPL_OK && at_step, "%s: biased draw t1 = %.6f is an accepted step's start time", name, t1b);
    /* Same seed, same draw; the Hermite state at a step time is that step's state: the local step
     * from step 0's start equals one from u0 directly. */
    double t1c;
    opl_nde_local_reg_draw(nd, c, 0, 123, &t1c, NULL, NULL, &err);
    ok(t1c == t1u, "%s: the draw is deterministic given the seed", name);
    /* Gradient of the local terms (u(t1) = u0 and dt constants) against central differences. */
    if (!DOUBLE_BUILD) {
      skip("finite-difference checks run in the double build", "local regularizer gradient");
    } else {
      double dt = 0;
      opl_params_zero_grad(&mc.p);
      opl_tensor *a = NULL, *b = NULL;
      opl_nde_local_reg(nd, c, 0, 0, &a, &b, &dt, &err);
      opl_tensor *L = opl_lincomb(c, 2, (const double[]){1, 0.01}, (opl_tensor *[]){a, b});
      opl_backward(c, L);
      opl_ctx *c2 = opl_ctx_new(0);
      opl_ctx_set_grad_enabled(c2, 0);
      int probes = 0;
      double maxd = 0, maxg = 0;
      for (int i = 0; i < mc.p.n; i++) {
        opl_tensor *P = mc.p.t[i];
        for (int64_t k = 0; k < P->numel; k += 3) {
          const double x0 = P->data[k], d = 1e-4 * fmax(1, fabs(x0)), off[4] = {-2, -1, 1, 2},
                       wq[4] = {1, -8, 8, -1};
          double fd = 0;
          for (int q = 0; q < 4; q++) {
            P->data[k] = (opl_real)(x0 + off[q] * d);
            opl_ctx_reset(c2);
            opl_nde_local_reg(nd, c2, 0, dt, &a, &b, NULL, &err);
            fd += wq[q] * (a && b ? a->data[0] + 0.01 * b->data[0] : NAN);
          }
          P->data[k] = (opl_real)x0;
          fd /= 12 * d;
          maxd = fmax(maxd, isfinite(fd) ? fabs(fd - P->grad[k]) : INFINITY);
          maxg = fmax(maxg, fabs(P->grad[k]));
          probes++;
        }
      }
      ok(maxg > 0 && maxd <= 1e-5 * maxg, "%s: local regularizer gradient = central difference (u(t1), dt "
         "fixed) at %d probes (max err %.2e of the largest entry %.3e)", name, probes, maxd / maxg, maxg);
      opl_ctx_free(&c2);
    }
    opl_ctx_free(&c);
    opl_nde_free(&nd);
    mlp_case_free(&mc);
  }
}

/* ------------------------------------------------------------ memory */

/* A 200-step solve of a neural field (16 states of 32 values, 32-128-128-32 tanh MLP, DP5, hmax
 * = T/200) with backward: arena high-water of store-all against checkpointed (the caller's
 * arena + the nde's scratch arena + the checkpoints). */
static void test_memory(void) {
  opl_err err = {0};
  opl_params p;
  opl_params_init(&p);
  opl_rng rng;
  opl_rng_seed(&rng, 3);
  opl_mlp mlp;
  int64_t widths[4] = {32, 128, 128, 32};
  opl_mlp_init(&mlp, &p, "f", 3, widths, OPL_TANH, &rng, &err);
  opl_tensor *u0 = opl_tensor_alloc(OPL_DIMS(16, 32), 0, &err);
  uint64_t s = 9;
  fill_uniform(u0, &s, -1, 1);
  size_t bytes[2] = {0};
  int64_t steps[2] = {0};
  double gn[2] = {0};
  for (int mode = 0; mode < 2; mode++) {
    opl_nde *nd = opl_nde_create(OPL_RK_DP5, f_mlp, &mlp, &err);
    opl_nde_set_tolerances(nd, 1e-3, 1e-5, &err);
    opl_nde_set_max_step(nd, 1.0 / 200, &err);
    opl_nde_set_memory(nd, mode, &err);
    opl_nde_set_params(nd, p.n, p.t, &err);
    opl_ctx *c = opl_ctx_new(0);
    opl_params_zero_grad(&p);
    opl_tensor *uT;
    const double ts[1] = {1.0};
    if (opl_nde_solve(nd, c, 0, u0, 1, ts, &uT, &err) || opl_backward(c, opl_mean(c, opl_square(c, uT)))) {
      diag("%s / %s", err.msg, opl_ctx_errmsg(c));
    }
    opl_ctx_stats cs;
    opl_ctx_get_stats(c, &cs);
    opl_nde_stats st;
    opl_nde_get_stats(nd, &st);
    bytes[mode] = cs.arena_high + (mode ? st.scratch_high + st.ckpt_bytes : 0);
    steps[mode] = st.accepted;
    gn[mode] = opl_params_grad_norm(&p);
    diag("%s: %lld steps, arena high-water %.2f MiB%s", mode ? "checkpoint" : "store-all",
         (long long)st.accepted, cs.arena_high / 1048576.0,
         mode ? "" : " (the whole solve on the tape)");
    if (mode)
      diag("checkpoint: scratch arena %.2f MiB + checkpoints %.2f MiB; total %.2f MiB; backward %lld evaluations",
           st.scratch_high / 1048576.0, st.ckpt_bytes / 1048576.0, bytes[1] / 1048576.0,
           (long long)st.backward_nfev);
    opl_ctx_free(&c);
    opl_nde_free(&nd);
  }
  ok(steps[0] >= 200 && steps[0] == steps[1], "200-step solve: %lld steps in both modes", (long long)steps[0]);
  ok(bytes[1] * 5 < bytes[0], "checkpointed backward memory %.2f MiB < 1/5 of store-all %.2f MiB (%.1fx less)",
     bytes[1] / 1048576.0, bytes[0] / 1048576.0, (double)bytes[0] / (double)bytes[1]);
  is_close(gn[1], gn[0], DOUBLE_BUILD ? 1e-12 : 1e-4, 0, "same gradient norm in both modes");
  opl_params_free(&p);
  opl_tensor_free(&u0);
}

/* ------------------------------------------------------------ bad input */

static void test_bad_input(void) {
  opl_err err = {0};
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *u0 = opl_tensor_alloc(OPL_DIMS(1, 2), 0, &err);
  u0->data[0] = 1, u0->data[1] = 0.5;
  const double ts[2] = {0.5, 2.0};
  opl_tensor *us[2] = {0};
  for (int mode = 0; mode < 2; mode++) {
    opl_nde *nd = opl_nde_create(OPL_RK_DP5, f_badshape, NULL, &err);
    opl_nde_set_memory(nd, mode, &err);
    int st = opl_nde_solve(nd, c, 0, u0, 2, ts, us, &err);
    ok(st == OPL_ERR_SHAPE && strstr(err.msg, "output (3) differs from the state (1, 2) at t = 0"),
       "%s: a field of the wrong shape: %s", mode ? "checkpoint" : "store-all", err.msg);
    opl_nde_free(&nd);
  }
  opl_nde *nd = opl_nde_create(OPL_RK_DP5, f_blowup, NULL, &err);
  ok(opl_nde_set_tolerances(nd, 0, 1e-6, &err) == OPL_ERR_ARG && strstr(err.msg, "rtol = 0"),
     "rtol = 0: %s", err.msg);
  ok(opl_nde_set_tolerances(nd, 1e-6, -1, &err) == OPL_ERR_ARG && strstr(err.msg, "atol = -1"),
     "atol = -1: %s", err.msg);
  ok(opl_nde_set_tolerances(nd, 1e-6, 0, &err) == OPL_ERR_ARG, "atol = 0: %s", err.msg);
  u0->data[1] = NAN;
  int st = opl_nde_solve(nd, c, 0, u0, 2, ts, us, &err);
  ok(st == OPL_ERR_NONFINITE && strstr(err.msg, "non-finite value in y0"), "NaN state: %s", err.msg);
  u0->data[1] = 0.5;
  opl_ctx_reset(c);
  st = opl_nde_solve(nd, c, 0, u0, 2, ts, us, &err);
  opl_nde_stats nst;
  opl_nde_get_stats(nd, &nst);
  char treached[64];
  snprintf(treached, sizeof treached, "t = %.17g", nst.t);
  ok(st != OPL_OK && strstr(err.msg, "underflow") && strstr(err.msg, treached) && fabs(nst.t - 1) < 1e-3,
     "u' = u^2 past its blow-up at t = 1: %s (t reached %.9f)", err.msg, nst.t);
  opl_nde_set_max_steps(nd, 5, &err);
  opl_ctx_reset(c);
  st = opl_nde_solve(nd, c, 0, u0, 2, ts, us, &err);
  ok(st == OPL_ERR_CONVERGENCE && strstr(err.msg, "max_steps = 5") && strstr(err.msg, "at t = "),
     "too many steps: %s", err.msg);
  opl_nde_set_max_steps(nd, 1000, &err);
  const double ts_ok[1] = {0.5};
  opl_ctx_reset(c);
  st = opl_nde_solve(nd, c, 0, u0, 1, ts_ok, us, &err);
  ok(st == OPL_OK, "a solve inside the span succeeds");
  ok(opl_nde_local_reg(nd, c, 0.7, 0, NULL, NULL, NULL, &err) == OPL_ERR_ARG && strstr(err.msg, "outside the span"),
     "t1 = 0.7 after the span: %s", err.msg);
  ok(opl_nde_local_reg(nd, c, -0.1, 0, NULL, NULL, NULL, &err) == OPL_ERR_ARG,
     "t1 = -0.1 before the span: %s", err.msg);
  const double ts_bad[2] = {0.5, 0.5};
  ok(opl_nde_solve(nd, c, 0, u0, 2, ts_bad, us, &err) == OPL_ERR_ARG && strstr(err.msg, "ts[1]"),
     "repeated output time: %s", err.msg);
  opl_nde_free(&nd);
  ok(!opl_nde_create(OPL_RK_METHOD_COUNT, f_blowup, NULL, &err) && err.status == OPL_ERR_ARG,
     "bad method: %s", err.msg);
  opl_tensor_free(&u0);
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ continuous adjoints */

static const opl_nde_adjoint CONT[2] = {OPL_NDE_ADJ_BACKSOLVE, OPL_NDE_ADJ_INTERP};
static const char *adj_name(opl_nde_adjoint a) {
  return a == OPL_NDE_ADJ_DISCRETE ? "discrete" : a == OPL_NDE_ADJ_CHECKPOINT ? "checkpoint"
         : a == OPL_NDE_ADJ_BACKSOLVE ? "backsolve" : "interpolating";
}

/* The gradient [params..., u0] of L = sum_k <r_k, u(ts_k)> + lam * (EEst dt of the local step
 * drawn with seed 5, unbiased) for the MLP case with adjoint a; NULL on failure. *nfev, *bnfev:
 * forward and backward evaluations. */
static double *mlp_adj_grad(mlp_case *mc, opl_rk_method m, opl_nde_adjoint a, double rtol, double lam,
                            int64_t *nfev, int64_t *bnfev) {
  opl_err err = {0};
  opl_nde *nd = opl_nde_create(m, f_mlp, &mc->mlp, &err);
  opl_nde_set_tolerances(nd, rtol, rtol * 1e-2, &err);
  opl_nde_set_adjoint(nd, a, &err);
  opl_nde_set_params(nd, mc->p.n, mc->p.t, &err);
  opl_ctx *c = opl_ctx_new(0);
  opl_params_zero_grad(&mc->p);
  opl_tensor_zero_grad(mc->u0);
  const int64_t np = opl_params_count(&mc->p) + mc->u0->numel;
  double *g = NULL;
  opl_tensor *us[3], *terms[4], *re = NULL;
  double t1;
  if (!opl_nde_solve(nd, c, 0, mc->u0, 3, mc->ts, us, &err) &&
      (lam == 0 || !opl_nde_local_reg_draw(nd, c, 0, 5, &t1, &re, NULL, &err))) {
    for (int k = 0; k < 3; k++) terms[k] = opl_sum(c, opl_mul(c, us[k], mc->r[k]));
    terms[3] = re ? re : opl_zeros(c, OPL_DIMS(1));
    opl_tensor *L = opl_lincomb(c, 4, (const double[]){1, 1, 1, lam}, terms);
    if (L && !opl_backward(c, L) && (g = calloc((size_t)np, sizeof *g))) {
      int64_t q = 0;
      for (int i = 0; i < mc->p.n; i++)
        for (int64_t k = 0; k < mc->p.t[i]->numel; k++) g[q++] = mc->p.t[i]->grad[k];
      for (int64_t k = 0; k < mc->u0->numel; k++) g[q++] = mc->u0->grad[k];
    } else {
      diag("%s: %s", adj_name(a), opl_ctx_errmsg(c));
    }
  } else {
    diag("%s: %s", adj_name(a), err.msg);
  }
  opl_nde_stats st;
  opl_nde_get_stats(nd, &st);
  if (nfev) *nfev = st.nfev;
  if (bnfev) *bnfev = st.backward_nfev;
  opl_ctx_free(&c);
  opl_nde_free(&nd);
  return g;
}

/* max_i |a_i - b_i| / max_i |b_i| */
static double rel_diff(int64_t n, const double *a, const double *b) {
  double d = 0, m = 0;
  for (int64_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i])), m = fmax(m, fabs(b[i]));
  return m > 0 ? d / m : INFINITY;
}

/* The continuous adjoints' gradients (MLP field, three output times, with and without the local
 * regularizer) against the discrete adjoint's at two tolerances: the difference is of the order
 * of the tolerance and shrinks with it. */
static void test_adjoint_vs_discrete(void) {
  const double tols[2] = {1e-4, DOUBLE_BUILD ? 1e-8 : 1e-6};
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    for (int lr = 0; lr < 2; lr++) {
      const double lam = lr ? 1e5 : 0; /* EEst dt is ~1e-6 of the data term at this scale */
      mlp_case mc;
      mlp_case_init(&mc, 2, 3, 8, 40);
      const int64_t np = opl_params_count(&mc.p) + mc.u0->numel;
      for (int ai = 0; ai < 2; ai++) {
        double d[2] = {INFINITY, INFINITY};
        int64_t nf[2] = {0}, bn[2] = {0};
        for (int ti = 0; ti < 2; ti++) {
          double *gd = mlp_adj_grad(&mc, m, OPL_NDE_ADJ_DISCRETE, tols[ti], lam, NULL, NULL);
          double *gc = mlp_adj_grad(&mc, m, CONT[ai], tols[ti], lam, &nf[ti], &bn[ti]);
          if (gd && gc) d[ti] = rel_diff(np, gc, gd);
          free(gd);
          free(gc);
        }
        diag("%s %s%s: relative difference to the discrete adjoint %.2e at rtol %g, %.2e at rtol %g "
             "(forward / backward evaluations %lld / %lld and %lld / %lld)", opl_rk_method_name(m),
             adj_name(CONT[ai]), lr ? " + local regularizer" : "", d[0], tols[0], d[1], tols[1],
             (long long)nf[0], (long long)bn[0], (long long)nf[1], (long long)bn[1]);
        if (lr && ai == 0) { /* the local term must matter: compare with the data loss alone */
          double *g0 = mlp_adj_grad(&mc, m, OPL_NDE_ADJ_DISCRETE, tols[0], 0, NULL, NULL);
          double *gl = mlp_adj_grad(&mc, m, OPL_NDE_ADJ_DISCRETE, tols[0], lam, NULL, NULL);
          const double dl = g0 && gl ? rel_diff(np, gl, g0) : 0;
          ok(dl > 1e-3, "%s: the local regularizer changes the gradient (relative %.2e)", opl_rk_method_name(m), dl);
          free(g0);
          free(gl);
        }
        ok(d[1] < d[0] && d[0] < 100 * tols[0] && d[1] < 100 * tols[1] && bn[1] > bn[0] && bn[0] > 0,
           "%s %s%s: gradient agrees with the discrete adjoint to the tolerance and the difference "
           "shrinks with it (%.2e -> %.2e)", opl_rk_method_name(m), adj_name(CONT[ai]),
           lr ? " + local regularizer" : "", d[0], d[1]);
      }
      mlp_case_free(&mc);
    }
  }
}

/* A linear field du/dt = W u with outputs at three times: u(t_k) = exp(t_k W) u0, dL/du0 =
 * sum_k exp(t_k W)^T r_k, dL/dW = sum_k the Frechet derivatives (as in test_matrix_exponential),
 * through each continuous adjoint. */
static void test_adjoint_linear(void) {
  opl_err err = {0};
  enum { n = 3 };
  const double ts[3] = {0.3, 0.7, 1.2};
  uint64_t s = 91;
  opl_tensor *W = opl_tensor_alloc(OPL_DIMS(n, n), OPL_T_REQGRAD, &err);
  opl_tensor *u0 = opl_tensor_alloc(OPL_DIMS(1, n), OPL_T_REQGRAD, &err);
  opl_tensor *r[3];
  fill_uniform(W, &s, -1.5, 1.5);
  fill_uniform(u0, &s, -1, 1);
  for (int k = 0; k < 3; k++) {
    r[k] = opl_tensor_alloc(OPL_DIMS(1, n), 0, &err);
    fill_uniform(r[k], &s, -1, 1);
  }
  double gu[n] = {0}, gW[n * n] = {0};
  for (int q = 0; q < 3; q++) {
    double A[n * n], E[n * n];
    for (int i = 0; i < n * n; i++) A[i] = ts[q] * W->data[i];
    expm(n, A, E);
    for (int j = 0; j < n; j++)
      for (int i = 0; i < n; i++) gu[j] += E[i * n + j] * r[q]->data[i];
    for (int k = 0; k < n; k++)
      for (int l = 0; l < n; l++) {
        double M[36] = {0}, X[36];
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++) M[i * 6 + j] = M[(i + n) * 6 + j + n] = A[i * n + j];
        M[k * 6 + n + l] = ts[q];
        expm(2 * n, M, X);
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++) gW[k * n + l] += r[q]->data[i] * X[i * 6 + n + j] * u0->data[j];
      }
  }
  const double rtol = DOUBLE_BUILD ? 1e-10 : 1e-6, tol = DOUBLE_BUILD ? 1e-7 : 1e-3;
  for (int mi = 0; mi < 3; mi++) {
    const opl_rk_method m = METHODS[mi];
    for (int ai = 0; ai < 2; ai++) {
      opl_nde *nd = opl_nde_create(m, f_linear, W, &err);
      opl_nde_set_tolerances(nd, m == OPL_RK_BS3 && DOUBLE_BUILD ? 1e-9 : rtol, 1e-12, &err);
      opl_nde_set_adjoint(nd, CONT[ai], &err);
      opl_nde_set_params(nd, 1, &W, &err);
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor_zero_grad(W);
      opl_tensor_zero_grad(u0);
      opl_tensor *us[3], *terms[3];
      const char *nm = opl_rk_method_name(m), *an = adj_name(CONT[ai]);
      const double tolm = m == OPL_RK_BS3 && DOUBLE_BUILD ? 1e-5 : tol;
      int st = opl_nde_solve(nd, c, 0, u0, 3, ts, us, &err);
      if (!st) {
        for (int k = 0; k < 3; k++) terms[k] = opl_sum(c, opl_mul(c, us[k], r[k]));
        st = opl_backward(c, opl_lincomb(c, 3, (const double[]){1, 1, 1}, terms));
      }
      if (st) {
        ok(0, "%s %s: linear solve and backward (%s %s)", nm, an, err.msg, opl_ctx_errmsg(c));
      } else {
        double g1[n], g2[n * n];
        for (int i = 0; i < n; i++) g1[i] = u0->grad[i];
        for (int i = 0; i < n * n; i++) g2[i] = W->grad[i];
        arrays_close(n, g1, gu, tolm, tolm, "%s %s: dL/du0 = sum_k exp(t_k W)^T r_k", nm, an);
        arrays_close(n * n, g2, gW, tolm, tolm, "%s %s: dL/dW = sum_k Frechet derivatives of exp", nm, an);
      }
      opl_ctx_free(&c);
      opl_nde_free(&nd);
    }
  }
  opl_tensor_free(&W);
  opl_tensor_free(&u0);
  for (int k = 0; k < 3; k++) opl_tensor_free(&r[k]);
}

/* Bad input: an adjoint outside the enum; a global regularizer's gradient through a continuous
 * adjoint is refused by the backward pass with a message naming the cure; gradients accumulate
 * onto existing parameter gradients; an output at t0 (ts[0] = t0) adds its gradient to u0's. */
static void test_adjoint_bad_and_edges(void) {
  opl_err err = {0};
  mlp_case mc;
  mlp_case_init(&mc, 2, 3, 8, 40);
  opl_nde *nd = opl_nde_create(OPL_RK_DP5, f_mlp, &mc.mlp, &err);
  ok(opl_nde_set_adjoint(nd, (opl_nde_adjoint)4, &err) == OPL_ERR_ARG && strstr(err.msg, "adjoint = 4"),
     "set_adjoint(4) refused: %s", err.msg);
  ok(opl_nde_set_adjoint(nd, (opl_nde_adjoint)-1, &err) == OPL_ERR_ARG, "set_adjoint(-1) refused");
  opl_nde_set_params(nd, mc.p.n, mc.p.t, &err);
  for (int ai = 0; ai < 2; ai++) {
    opl_nde_set_adjoint(nd, CONT[ai], &err);
    opl_ctx *c = opl_ctx_new(0);
    opl_params_zero_grad(&mc.p);
    opl_tensor *L = mlp_loss(nd, &mc, c, 1, 0, 0, &err);
    int st = L ? opl_backward(c, L) : -1;
    ok(st == OPL_ERR_ARG && strstr(opl_ctx_errmsg(c), "global regularizer") &&
           strstr(opl_ctx_errmsg(c), "discrete adjoint"),
       "%s: R_E through a continuous adjoint refused: %s", adj_name(CONT[ai]), opl_ctx_errmsg(c));
    opl_ctx_free(&c);
  }
  /* Accumulation: two backward passes of the same loss give twice one pass's gradient; an
   * output at t0 contributes r to dL/du0. */
  opl_nde_set_adjoint(nd, OPL_NDE_ADJ_INTERP, &err);
  const double ts[2] = {0, 0.5};
  double g1 = NAN, g2 = NAN, gu[2] = {NAN, NAN};
  for (int pass = 0; pass < 2; pass++) {
    opl_params_zero_grad(&mc.p);
    opl_tensor_zero_grad(mc.u0);
    for (int rep = 0; rep <= pass; rep++) {
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor *us[2];
      if (!opl_nde_solve(nd, c, 0, mc.u0, 2, ts, us, &err)) {
        opl_tensor *L = opl_add(c, opl_sum(c, opl_mul(c, us[0], mc.r[0])), opl_sum(c, opl_mul(c, us[1], mc.r[1])));
        opl_backward(c, L);
      }
      opl_ctx_free(&c);
    }
    *(pass ? &g2 : &g1) = mc.p.t[0]->grad[0];
    gu[pass] = mc.u0->grad[0];
  }
  ok(fabs(g2 - 2 * g1) <= 1e-6 * fabs(g1) && fabs(gu[1] - 2 * gu[0]) <= 1e-6 * fabs(gu[0]) && g1 != 0,
     "interpolating adjoint accumulates into existing gradients (%.6g, %.6g)", g1, g2);
  /* dL/du0 with the t0 output: the t0 term alone is r_0; compare with the same loss without it. */
  {
    opl_tensor_zero_grad(mc.u0);
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *us[1];
    const double t1[1] = {0.5};
    if (!opl_nde_solve(nd, c, 0, mc.u0, 1, t1, us, &err))
      opl_backward(c, opl_sum(c, opl_mul(c, us[0], mc.r[1])));
    opl_ctx_free(&c);
    ok(fabs(gu[0] - mc.u0->grad[0] - mc.r[0]->data[0]) <= 1e-5 * (1 + fabs(gu[0])),
       "an output at t0 adds its gradient to dL/du0 (%.8g = %.8g + %.8g)", gu[0], mc.u0->grad[0],
       mc.r[0]->data[0]);
  }
  opl_nde_free(&nd);
  mlp_case_free(&mc);
}

int main(void) {
  tap_begin();
  test_same_steps();
  test_stats_and_tape();
  test_stiffness_value();
  test_zero_stiffness();
  test_checkpoint_equal();
  test_matrix_exponential();
  if (DOUBLE_BUILD) {
    for (int mi = 0; mi < 3; mi++) {
      check_grad(METHODS[mi], 0, 0, 0, 0);
      check_grad(METHODS[mi], 0, 1, 0, 0);
      check_grad(METHODS[mi], 0, 0, 0.05, 0);
      check_grad(METHODS[mi], 1, 1, 0.05, 1);
    }
  } else {
    skip("finite-difference checks run in the double build", "gradients through adaptive solves");
  }
  test_local();
  test_memory();
  test_bad_input();
  test_adjoint_linear();
  test_adjoint_vs_discrete();
  test_adjoint_bad_and_edges();
  return tap_end();
}
