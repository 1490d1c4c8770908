/* PDE residuals (pde/residual.h): the residual of opl's own reference solutions is small
 * against the size of u_t and shrinks as dt^2 when the frames are sampled twice as finely
 * (Burgers, KdV, Navier-Stokes); the residual of a field that does not solve the equation is
 * not small; the time rule on polynomials in t; gradient checks of the op (a table, double
 * build at 1e-6); the same bits on 1 and 2 threads; parameters from a data set's provenance; bad
 * input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"
#include "pde/residual.h"
#include "pde/solve.h"

/* ---------------------------------------------------------------- reference solutions */

/* Solve one trajectory of eq with nt + 1 frames (t = 0 included) over [0, T] into out. */
static int solve(int eq, int n, double T, int nt, double *out) {
  opl_solve_opts o;
  opl_solve_opts_default(&o);
  o.T = T;
  o.nt = nt;
  o.with_t0 = 1;
  o.scheme = OPL_SCHEME_RK;
  o.rk_method = OPL_RK_DP5;
  o.dt = 0;
  o.rtol = 1e-11;
  o.atol = 1e-13;
  o.grid_flags = OPL_GRID_ESTIMATE;
  opl_err e = {0};
  int st;
  if (eq == OPL_RESID_NS2D) {
    double *w0 = malloc(sizeof(double) * (size_t)(n * n));
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double x = (double)i / n, y = (double)j / n;
        w0[i * n + j] = sin(2 * M_PI * x) * sin(2 * M_PI * y) + 0.6 * cos(4 * M_PI * x) +
                        0.4 * sin(2 * M_PI * (x + 2 * y));
      }
    opl_ns2d_params p = {.n = n, .L = 1, .nu = 0.01, .forcing = OPL_NS2D_FORCE_FNO};
    st = opl_solve_ns2d(&p, w0, &o, out, NULL, &e);
    free(w0);
  } else {
    double *u0 = malloc(sizeof(double) * (size_t)n);
    if (eq == OPL_RESID_BURGERS) {
      for (int i = 0; i < n; i++) {
        double x = (double)i / n;
        u0[i] = sin(2 * M_PI * x) + 0.5 * cos(4 * M_PI * x);
      }
      opl_burgers_params p = {.n = n, .L = 1, .nu = 0.02};
      st = opl_solve_burgers(&p, u0, &o, out, NULL, &e);
    } else {
      for (int i = 0; i < n; i++) {
        double x = 20.0 * i / n;
        u0[i] = 0.5 * sin(2 * M_PI * x / 20) + 0.3 * cos(4 * M_PI * x / 20 + 1);
      }
      opl_kdv_params p = {.n = n, .L = 20, .a = 1.5, .b = 0.3};
      st = opl_solve_kdv(&p, u0, &o, out, NULL, &e);
    }
    free(u0);
  }
  if (st) diag("solve failed: %s", e.msg);
  return st;
}

static opl_resid_params params_of(int eq, double dt) {
  if (eq == OPL_RESID_BURGERS) return (opl_resid_params){.equation = eq, .L = 1, .nu = 0.02, .dt = dt};
  if (eq == OPL_RESID_KDV) return (opl_resid_params){.equation = eq, .L = 20, .a = 1.5, .b = 0.3, .dt = dt};
  return (opl_resid_params){.equation = eq, .L = 1, .nu = 0.01, .forcing = OPL_NS2D_FORCE_FNO, .dt = dt};
}

/* RMS of the residual of a reference trajectory sampled with nt + 1 frames, relative to the
 * RMS of f(u) (= u_t); also the same for a perturbed copy in *rel_bad when not NULL. */
static double ref_residual(int eq, int n, double T, int nt, double *rel_bad) {
  int64_t P = eq == OPL_RESID_NS2D ? (int64_t)n * n : n, F = nt + 1;
  double *u = malloc(sizeof(double) * (size_t)(F * P)), *R = malloc(sizeof(double) * (size_t)(F * P));
  double *R0 = malloc(sizeof(double) * (size_t)(F * P)), *z = calloc((size_t)(F * P), sizeof(double));
  double out = NAN;
  if (!solve(eq, n, T, nt, u)) {
    opl_resid_params p = params_of(eq, T / nt);
    opl_err e = {0};
    opl_resid *r = opl_resid_new(&p, &e);
    int64_t ny = eq == OPL_RESID_NS2D ? n : 1;
    /* R of the solution; R0 = -f(u) (the residual of the frames held still: D_t of a constant
     * field over time is 0, so apply it to u with time frozen frame by frame). */
    if (r && !opl_resid_apply(r, 1, F, n, ny, u, R, &e)) {
      double num = 0, den = 0;
      double *still = malloc(sizeof(double) * (size_t)(6 * P)), *rs = still + 3 * P;
      for (int64_t j = 0; j < F; j++) {
        for (int q = 0; q < 3; q++) memcpy(still + q * P, u + j * P, sizeof(double) * (size_t)P);
        opl_resid_apply(r, 1, 3, n, ny, still, rs, &e);
        memcpy(R0 + j * P, rs, sizeof(double) * (size_t)P);
      }
      free(still);
      for (int64_t i = 0; i < F * P; i++) num += R[i] * R[i], den += R0[i] * R0[i];
      out = sqrt(num / den);
      if (rel_bad) {
        /* A field that does not solve the equation: the solution with its time axis reversed. */
        for (int64_t j = 0; j < F; j++) memcpy(z + j * P, u + (F - 1 - j) * P, sizeof(double) * (size_t)P);
        opl_resid_apply(r, 1, F, n, ny, z, R, &e);
        double nb = 0;
        for (int64_t i = 0; i < F * P; i++) nb += R[i] * R[i];
        *rel_bad = sqrt(nb / den);
      }
    } else {
      diag("residual failed: %s", e.msg);
    }
    opl_resid_free(&r);
  }
  free(u), free(R), free(R0), free(z);
  return out;
}

static void test_reference(void) {
  struct { int eq, n; double T; int nt; const char *name; } cases[] = {
      {OPL_RESID_BURGERS, 64, 0.2, 40, "burgers"},
      {OPL_RESID_KDV, 64, 2.0, 40, "kdv"},
      {OPL_RESID_NS2D, 32, 0.5, 20, "ns"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double bad = NAN;
    double r1 = ref_residual(cases[i].eq, cases[i].n, cases[i].T, cases[i].nt, &bad);
    double r2 = ref_residual(cases[i].eq, cases[i].n, cases[i].T, 2 * cases[i].nt, NULL);
    ok(r1 < 1e-2, "%s: residual of the reference solution, %d frames: %.3g of |u_t| (< 1e-2)", cases[i].name,
       cases[i].nt + 1, r1);
    ok(bad > 0.5, "%s: residual of the time-reversed solution: %.3g of |u_t| (> 0.5)", cases[i].name, bad);
    double order = log2(r1 / r2);
    ok(order > 1.7 && order < 2.3, "%s: halving dt divides the residual by %.3g: order %.3f (the rule's 2)",
       cases[i].name, r1 / r2, order);
  }
}

/* The time rule is exact on quadratics in t and second order on cubics. */
static void test_time_rule(void) {
  opl_resid_params p = {.equation = OPL_RESID_BURGERS, .L = 1, .nu = 0.1, .dt = 0.1};
  opl_resid *r = opl_resid_new(&p, NULL);
  const int n = 8, T = 6;
  double u[T * n], R[T * n], R0[T * n], still[3 * n];
  /* u(x, t) = c(t) v(x) with v = 1 (a constant field: f(u) = 0), c = 1 + 2t - 3t^2 */
  for (int j = 0; j < T; j++) {
    double t = 0.1 * j;
    for (int i = 0; i < n; i++) u[j * n + i] = 1 + 2 * t - 3 * t * t;
  }
  opl_resid_apply(r, 1, T, n, 1, u, R, NULL);
  double worst = 0;
  for (int j = 0; j < T; j++) worst = fmax(worst, fabs(R[j * n] - (2 - 6 * 0.1 * j)));
  ok(worst < 1e-12, "time rule exact on a quadratic in t at every frame, ends included (error %.2g)", worst);
  (void)R0, (void)still;
  opl_resid_free(&r);
}

/* ---------------------------------------------------------------- gradient checks */

static opl_resid *gr_burgers, *gr_kdv, *gr_ns;

static opl_tensor *op_resid(opl_ctx *c, opl_tensor **in, const void *opt) {
  return opl_resid_op(c, *(opl_resid *const *)opt, in[0]);
}

static void test_gradcheck(void) {
  opl_resid_params pb = {.equation = OPL_RESID_BURGERS, .L = 2, .nu = 0.07, .dt = 0.3};
  opl_resid_params pk = {.equation = OPL_RESID_KDV, .L = 6, .a = 1.5, .b = -0.4, .dt = 0.2};
  opl_resid_params pn = {.equation = OPL_RESID_NS2D, .L = 1, .nu = 0.03, .forcing = OPL_NS2D_FORCE_FNO, .dt = 0.25};
  gr_burgers = opl_resid_new(&pb, NULL);
  gr_kdv = opl_resid_new(&pk, NULL);
  gr_ns = opl_resid_new(&pn, NULL);
  const gc_case rows[] = {
      {"residual burgers (2, 4, 8)", op_resid, &gr_burgers, 1, {{3, {2, 4, 8}}}, 0, 64},
      {"residual burgers (1, 3, 12)", op_resid, &gr_burgers, 1, {{3, {1, 3, 12}}}, 0, 36},
      {"residual kdv (2, 5, 8)", op_resid, &gr_kdv, 1, {{3, {2, 5, 8}}}, 0, 80},
      {"residual ns (1, 3, 8, 8)", op_resid, &gr_ns, 1, {{4, {1, 3, 8, 8}}}, 0, 64},
      {"residual ns (2, 4, 6, 6)", op_resid, &gr_ns, 1, {{4, {2, 4, 6, 6}}}, 0, 64},
  };
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  opl_resid_free(&gr_burgers);
  opl_resid_free(&gr_kdv);
  opl_resid_free(&gr_ns);
}

/* ---------------------------------------------------------------- provenance, bad input */

static void test_provenance(void) {
  opl_kv bur[] = {OPL_KVS("equation", "burgers"), OPL_KVD("nu", 1e-3), OPL_KVD("L", 1)};
  opl_resid_params p;
  opl_err e = {0};
  ok(!opl_resid_from_provenance(bur, 3, 0.01, "b.h5", &p, &e) && p.equation == OPL_RESID_BURGERS && p.nu == 1e-3 &&
         p.L == 1 && p.dt == 0.01,
     "burgers parameters from the provenance");
  opl_kv ns[] = {OPL_KVS("equation", "ns"), OPL_KVD("nu", 1e-4), OPL_KVD("L", 1),
                 OPL_KVS("forcing", "fno: 0.1 (sin(2 pi (x + y) / L) + cos(2 pi (x + y) / L))")};
  ok(!opl_resid_from_provenance(ns, 4, 0.1, "n.h5", &p, &e) && p.equation == OPL_RESID_NS2D &&
         p.forcing == OPL_NS2D_FORCE_FNO && p.nu == 1e-4,
     "ns parameters and forcing from the provenance");
  opl_kv kdv[] = {OPL_KVS("equation", "kdv"), OPL_KVD("a", 6), OPL_KVD("b", 1), OPL_KVD("L", 128),
                  OPL_KVS("domain", "per-sample: L = 128 U(0.9, 1.1) ...")};
  ok(!opl_resid_from_provenance(kdv, 4, 0.1, "k.h5", &p, &e) && p.equation == OPL_RESID_KDV && p.a == 6,
     "kdv parameters from the provenance");
  e.status = 0;
  ok(opl_resid_from_provenance(kdv, 5, 0.1, "k.h5", &p, &e) == OPL_ERR_ARG && strstr(e.msg, "per-sample") &&
         strstr(e.msg, "k.h5"),
     "a kdv set with a per-sample domain is refused (%s)", e.msg);
  ok(opl_resid_from_provenance(NULL, 0, 0.1, "x.h5", &p, &e) == OPL_ERR_ARG && strstr(e.msg, "'equation'") &&
         strstr(e.msg, "x.h5"),
     "no provenance: refused naming the attribute and the file (%s)", e.msg);
  ok(opl_resid_from_provenance(bur, 2, 0.1, "b.h5", &p, &e) == OPL_ERR_ARG && strstr(e.msg, "'L'"),
     "missing L refused (%s)", e.msg);
  opl_kv ac[] = {OPL_KVS("equation", "allen-cahn"), OPL_KVD("L", 1)};
  ok(opl_resid_from_provenance(ac, 2, 0.1, "a.h5", &p, &e) == OPL_ERR_ARG && strstr(e.msg, "allen-cahn"),
     "an equation without a residual refused (%s)", e.msg);
  ok(opl_resid_from_provenance(bur, 3, 0, "b.h5", &p, &e) == OPL_ERR_ARG && strstr(e.msg, "dt"),
     "dt = 0 refused (%s)", e.msg);
  ok(opl_resid_from_provenance(bur, 3, NAN, "b.h5", &p, &e) == OPL_ERR_ARG, "dt = NaN refused (%s)", e.msg);
}

static void test_bad_input(void) {
  opl_resid_params p = {.equation = OPL_RESID_BURGERS, .L = 1, .nu = -1, .dt = 0.1};
  opl_err e = {0};
  ok(!opl_resid_new(&p, &e) && e.status == OPL_ERR_ARG && strstr(e.msg, "nu = -1"), "nu < 0 refused (%s)", e.msg);
  p.nu = 0.1;
  p.L = INFINITY;
  ok(!opl_resid_new(&p, &e) && strstr(e.msg, "L = inf"), "L = inf refused (%s)", e.msg);
  p.L = 1;
  opl_resid *r = opl_resid_new(&p, &e);
  opl_ctx *c = opl_ctx_new(0);
  struct { int rank; int64_t shape[4]; const char *want; } bad[] = {
      {3, {2, 2, 8}, ">= 3 frames"}, {3, {2, 4, 7}, "X = 7 "}, {3, {2, 4, 2}, "X = 2 "}, {4, {2, 4, 8, 8}, "(N, T, X)"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    opl_ctx_clear_error(c);
    opl_tensor *u = opl_zeros(c, bad[i].rank, bad[i].shape);
    opl_tensor *R = opl_resid_op(c, r, u);
    ok(!R && opl_ctx_status(c) == OPL_ERR_SHAPE && strstr(opl_ctx_errmsg(c), bad[i].want), "shape refused: %s",
       opl_ctx_errmsg(c));
  }
  opl_resid_params pn = {.equation = OPL_RESID_NS2D, .L = 1, .nu = 0.1, .dt = 0.1};
  opl_resid *rn = opl_resid_new(&pn, NULL);
  opl_ctx_clear_error(c);
  opl_tensor *u = opl_zeros(c, OPL_DIMS(1, 4, 8, 6));
  ok(!opl_resid_op(c, rn, u) && strstr(opl_ctx_errmsg(c), "square"), "ns on a non-square grid refused (%s)",
     opl_ctx_errmsg(c));
  opl_ctx_clear_error(c);
  ok(!opl_resid_op(c, NULL, u) && opl_ctx_status(c) == OPL_ERR_ARG, "NULL evaluator refused");
  /* Another resolution after a first one: the evaluator remakes its grid. */
  opl_ctx_clear_error(c);
  opl_tensor *a = opl_zeros(c, OPL_DIMS(1, 3, 8)), *b = opl_zeros(c, OPL_DIMS(1, 3, 16));
  ok(opl_resid_op(c, r, a) && opl_resid_op(c, r, b) && !opl_ctx_status(c), "resolution 8 then 16");
  opl_resid_free(&rn);
  opl_resid_free(&r);
  opl_ctx_free(&c);
}

/* Frames are computed one by one: the same bits on any thread count, forward and backward. */
static void test_threads(void) {
  opl_resid_params pn = {.equation = OPL_RESID_NS2D, .L = 1, .nu = 0.02, .forcing = OPL_NS2D_FORCE_FNO, .dt = 0.1};
  opl_resid *r = opl_resid_new(&pn, NULL);
  opl_real *out[2], *grad[2];
  int64_t n = 3 * 5 * 16 * 16;
  for (int k = 0; k < 2; k++) {
    opl_set_num_threads(k + 1);
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *u = opl_tensor_alloc(OPL_DIMS(3, 5, 16, 16), OPL_T_REQGRAD, NULL);
    uint64_t s = 7;
    for (int64_t i = 0; i < n; i++) u->data[i] = (opl_real)(2 * gc_uniform(&s) - 1);
    opl_tensor *R = opl_resid_op(c, r, u);
    opl_tensor *L = opl_sum(c, opl_square(c, R));
    opl_backward(c, L);
    out[k] = malloc(sizeof(opl_real) * (size_t)n);
    grad[k] = malloc(sizeof(opl_real) * (size_t)n);
    memcpy(out[k], R->data, sizeof(opl_real) * (size_t)n);
    memcpy(grad[k], u->grad, sizeof(opl_real) * (size_t)n);
    opl_tensor_free(&u);
    opl_ctx_free(&c);
  }
  opl_set_num_threads(0);
  ok(!memcmp(out[0], out[1], sizeof(opl_real) * (size_t)n) && !memcmp(grad[0], grad[1], sizeof(opl_real) * (size_t)n),
     "ns residual and its gradient: the same bits on 1 and 2 threads");
  for (int k = 0; k < 2; k++) free(out[k]), free(grad[k]);
  opl_resid_free(&r);
}

int main(void) {
  tap_begin();
  test_threads();
  test_time_rule();
  test_reference();
  test_gradcheck();
  test_provenance();
  test_bad_input();
  return tap_end();
}
