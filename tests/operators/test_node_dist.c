/* Distributed neural-ODE solves (opl_nde_set_dist, operators/node.h). Run alone it checks that the
 * setting changes nothing on one process (bit for bit); under mpirun -np P (tests/cli/test_mpi.sh)
 * every rank solves its rows [B r / P, B (r + 1) / P) of one batch and the cases compare with the
 * whole batch solved on one process (every rank computes that reference itself, with the setting
 * off): the same step sequence (evaluations, accepted, rejected: one adaptive solve of the whole
 * batch), the same output rows, the same regularizer values, and parameter gradients whose sum over
 * the ranks is the whole batch's — for the store-all and checkpointed discrete adjoints with the
 * global regularizers, the local regularizer, and the interpolating and backsolve continuous
 * adjoints. A field that fails recoverably, returns a NaN, or fails fatally on the last rank only:
 * every rank takes the reference's decisions (the same retries), or every rank stops with the
 * failing rank's message. A case passes when it passed on every rank; rank 0 prints the TAP. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/rng.h"
#include "operators/mlp.h"
#include "operators/node.h"
#include "tests/tap.h"

#ifdef OPL_DOUBLE
static const double TOL_U = 1e-12, TOL_G = 1e-9; /* reassociation of the norms' sums */
#else
static const double TOL_U = 2e-5, TOL_G = 2e-3;  /* float32 rounding of rows computed apart */
#endif

enum { B = 5, D = 3, H = 8, NT = 3 };

/* A case passes when cond holds on every rank. */
static void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int cond, const char *fmt, ...) {
  char name[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  double f = !cond;
  opl_dist_agree(OPL_OK, NULL, &f, 1);
  ok(f == 0, "%s", name);
}

/* du = MLP(u) + 0.5 sin(t) (u (rows, D)); evaluation number fail_at (from 0 in each solve) fails
 * as kind says (1 recoverable, 2 fatal, 3 a NaN in the output) when armed. */
typedef struct field {
  opl_mlp mlp;
  int64_t calls, fail_at;
  int kind, armed;
} field;

static int f_mlp(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  field *F = user;
  const int64_t k = F->calls++;
  *du = opl_add_scalar(c, opl_mlp_forward(c, &F->mlp, u), 0.5 * sin(t));
  if (!*du) return -1;
  if (F->armed && k == F->fail_at) {
    if (F->kind == 1) return 1;
    if (F->kind == 2) return -1;
    (*du)->data[0] = (opl_real)NAN;
  }
  return 0;
}

typedef struct world {
  opl_params p;
  field F;
  opl_tensor *u0, *r[NT];     /* the whole batch: u0 (B, D), r_k (B, D) */
  double ts[NT];
  int64_t a, nl;              /* this rank's rows [a, a + nl) */
} world;

/* Rows [a, a + n) of x (B, D) as a new heap tensor (requires a gradient when grad). */
static opl_tensor *rows(const opl_tensor *x, int64_t a, int64_t n, int grad) {
  opl_tensor *y = opl_tensor_alloc(OPL_DIMS(n, D), grad ? OPL_T_REQGRAD : 0, NULL);
  memcpy(y->data, x->data + a * D, sizeof(opl_real) * (size_t)(n * D));
  return y;
}

/* What one solve gave: statistics, the output rows, the regularizer value, the parameters'
 * gradients (summed over ranks for a distributed solve) and u0's. */
typedef struct result {
  int st;
  char msg[512];
  opl_nde_stats s;
  double *u, reg, *gp, *gu;
  int64_t np;
} result;

typedef struct mode {
  const char *name;
  opl_nde_adjoint adj;
  double lE, lS;              /* global regularizer weights */
  int local;                  /* add the local regularizer (error + stiffness) */
} mode;

/* L = sum_k <r_k, u(ts_k)> + lE R_E + lS R_S (+ the local regularizer) over rows [a, a + n) of the
 * batch, solved with the distributed setting dist; backward; the gradients. */
static void run(world *W, const mode *md, int dist, int64_t a, int64_t n, result *res) {
  memset(res, 0, sizeof *res);
  opl_err err = {0};
  opl_ctx *c = opl_ctx_new((size_t)16 << 20);
  opl_nde *nd = opl_nde_create(OPL_RK_TSIT5, f_mlp, &W->F, &err);
  opl_nde_set_tolerances(nd, 1e-5, 1e-7, &err);
  opl_nde_set_adjoint(nd, md->adj, &err);
  opl_nde_set_params(nd, W->p.n, W->p.t, &err);
  opl_nde_set_dist(nd, dist);
  opl_params_zero_grad(&W->p);
  opl_tensor *u0 = rows(W->u0, a, n, 1), *r[NT];
  for (int k = 0; k < NT; k++) r[k] = rows(W->r[k], a, n, 0);
  W->F.calls = 0;
  opl_tensor *us[NT], *L = NULL;
  res->st = opl_nde_solve(nd, c, 0, u0, NT, W->ts, us, &err);
  opl_nde_get_stats(nd, &res->s);
  if (!res->st) {
    opl_tensor *terms[6];
    for (int k = 0; k < NT; k++) terms[k] = opl_sum(c, opl_mul(c, us[k], r[k]));
    terms[3] = opl_nde_reg_error(nd, c, 0);
    terms[4] = opl_nde_reg_stiff(nd, c, 0);
    opl_tensor *R = opl_lincomb(c, 2, (const double[]){md->lE, md->lS}, terms + 3);
    if (md->local) {
      double t1;
      opl_tensor *re = NULL, *rs = NULL;
      res->st = opl_nde_local_reg_draw(nd, c, 0, 77, &t1, &re, &rs, &err);
      if (!res->st) R = opl_lincomb(c, 3, (const double[]){1, 0.5, 0.5}, (opl_tensor *[]){R, re, rs});
    }
    if (!res->st) {
      terms[3] = R;
      L = opl_lincomb(c, 4, (const double[]){1, 1, 1, 1}, terms);
      res->reg = R ? (double)R->data[0] : NAN;
      res->u = malloc(sizeof(double) * (size_t)(NT * n * D));
      for (int k = 0; k < NT; k++)
        for (int64_t i = 0; i < n * D; i++) res->u[k * n * D + i] = (double)us[k]->data[i];
      if (!L || opl_backward(c, L)) res->st = opl_ctx_status(c) ? opl_ctx_status(c) : OPL_ERR_STATE;
      if (res->st) snprintf(res->msg, sizeof res->msg, "%s", opl_ctx_errmsg(c));
    }
  }
  if (res->st && !res->msg[0]) snprintf(res->msg, sizeof res->msg, "%s", err.msg);
  if (!res->st) {
    res->np = opl_params_count(&W->p);
    res->gp = malloc(sizeof(double) * (size_t)res->np);
    for (int i = 0, off = 0; i < W->p.n; off += (int)W->p.t[i]->numel, i++)
      for (int64_t q = 0; q < W->p.t[i]->numel; q++)
        res->gp[off + q] = W->p.t[i]->grad ? (double)W->p.t[i]->grad[q] : 0;
    if (dist) opl_dist_agree(OPL_OK, NULL, res->gp, (int)res->np); /* the trainer's sum over ranks */
    res->gu = malloc(sizeof(double) * (size_t)(n * D));
    for (int64_t i = 0; i < n * D; i++) res->gu[i] = u0->grad ? (double)u0->grad[i] : 0;
  }
  opl_tensor_free(&u0);
  for (int k = 0; k < NT; k++) opl_tensor_free(&r[k]);
  opl_nde_free(&nd);
  opl_ctx_free(&c);
}

static void result_free(result *r) {
  free(r->u), free(r->gp), free(r->gu);
  memset(r, 0, sizeof *r);
}

/* max |x - y| / max(max |y|, floor) over n values. */
static double maxrel(const double *x, const double *y, int64_t n, double floor) {
  double d = 0, m = floor;
  for (int64_t i = 0; i < n; i++) {
    if (fabs(x[i] - y[i]) > d || isnan(x[i] - y[i])) d = isnan(x[i] - y[i]) ? INFINITY : fabs(x[i] - y[i]);
    if (fabs(y[i]) > m) m = fabs(y[i]);
  }
  return d / m;
}

/* The distributed solve of the ranks' rows against the whole batch on one process. */
static void compare(world *W, const mode *md) {
  result ref, got;
  W->F.armed = 0;
  run(W, md, 0, 0, B, &ref);
  run(W, md, 1, W->a, W->nl, &got);
  char what[160];
  snprintf(what, sizeof what, "%s: %lld evaluations, %lld accepted, %lld rejected", md->name,
           (long long)ref.s.nfev, (long long)ref.s.accepted, (long long)ref.s.rejected);
  int same = ref.st == OPL_OK && got.st == OPL_OK && ref.s.nfev == got.s.nfev && ref.s.accepted == got.s.accepted &&
             ref.s.rejected == got.s.rejected && ref.s.local_nfev == got.s.local_nfev &&
             ref.s.backward_nfev == got.s.backward_nfev;
  if (!same)
    diag("rank %d %s: reference %d (%s) %lld/%lld/%lld, distributed %d (%s) %lld/%lld/%lld", opl_dist_rank(), md->name,
         ref.st, ref.msg, (long long)ref.s.nfev, (long long)ref.s.accepted, (long long)ref.s.rejected, got.st, got.msg,
         (long long)got.s.nfev, (long long)got.s.accepted, (long long)got.s.rejected);
  check(same, "%s: the same step sequence as one process (forward, local and backward evaluations)", what);
  if (!same) {
    result_free(&ref), result_free(&got);
    return;
  }
  /* the reference's rows of this rank */
  double *ur = malloc(sizeof(double) * (size_t)(NT * W->nl * D));
  for (int k = 0; k < NT; k++)
    memcpy(ur + k * W->nl * D, ref.u + k * B * D + W->a * D, sizeof(double) * (size_t)(W->nl * D));
  double du = maxrel(got.u, ur, NT * W->nl * D, 1), dreg = fabs(got.reg - ref.reg) / fmax(fabs(ref.reg), 1e-30);
  double dgp = maxrel(got.gp, ref.gp, ref.np, 0), dgu = maxrel(got.gu, ref.gu + W->a * D, W->nl * D, 0);
  diag("%s: outputs %.3g, regularizer %.6g (relative difference %.3g), parameter gradient %.3g, u0 gradient %.3g",
       md->name, du, ref.reg, dreg, dgp, dgu);
  const int one = opl_dist_size() == 1;
  check(one ? du == 0 : du <= TOL_U, "%s: the ranks' output rows are the whole batch's (%.3g)", md->name, du);
  check(one ? dreg == 0 : dreg <= TOL_G, "%s: the regularizer is the whole batch's on every rank (%.3g)", md->name,
        dreg);
  check(one ? dgp == 0 : dgp <= TOL_G, "%s: the ranks' parameter gradients sum to the whole batch's (%.3g)", md->name,
        dgp);
  check(one ? dgu == 0 : dgu <= TOL_G, "%s: u0's gradient rows are the whole batch's (%.3g)", md->name, dgu);
  free(ur);
  result_free(&ref), result_free(&got);
}

/* The field failing at evaluation fail_at: of the whole batch on one process, and of the last
 * rank only in the distributed solve. */
static void failing(world *W, int kind, int64_t fail_at) {
  static const char *names[4] = {"", "a recoverable failure", "a fatal failure", "a NaN"};
  const mode md = {"store-all", OPL_NDE_ADJ_DISCRETE, 0.1, 0.01, 0};
  const int last = opl_dist_rank() == opl_dist_size() - 1;
  result ref, got;
  W->F.kind = kind, W->F.fail_at = fail_at;
  W->F.armed = 1;
  run(W, &md, 0, 0, B, &ref);
  W->F.armed = last;
  run(W, &md, 1, W->a, W->nl, &got);
  W->F.armed = 0;
  if (kind == 2) {
    char want[64];
    snprintf(want, sizeof want, "rank %d: ", opl_dist_size() - 1);
    int good = ref.st != OPL_OK && got.st != OPL_OK && strstr(got.msg, "failed (fatal)") &&
               (opl_dist_size() == 1 || strstr(got.msg, want));
    if (!good) diag("rank %d: status %d, '%s'", opl_dist_rank(), got.st, got.msg);
    check(good, "%s of the field on the last rank: every rank stops with its message", names[kind]);
    if (opl_dist_rank() == 0) diag("%s", got.msg);
  } else {
    int good = ref.st == OPL_OK && got.st == OPL_OK && ref.s.rejected >= 1 && ref.s.nfev == got.s.nfev &&
               ref.s.accepted == got.s.accepted && ref.s.rejected == got.s.rejected;
    if (!good)
      diag("rank %d: reference %d %lld/%lld/%lld, distributed %d (%s) %lld/%lld/%lld", opl_dist_rank(), ref.st,
           (long long)ref.s.nfev, (long long)ref.s.accepted, (long long)ref.s.rejected, got.st, got.msg,
           (long long)got.s.nfev, (long long)got.s.accepted, (long long)got.s.rejected);
    double dgp = good ? maxrel(got.gp, ref.gp, ref.np, 0) : INFINITY;
    check(good && (opl_dist_size() == 1 ? dgp == 0 : dgp <= TOL_G),
          "%s of the field on the last rank: every rank retries as one process does (gradient %.3g)", names[kind], dgp);
  }
  result_free(&ref), result_free(&got);
}

int main(int argc, char **argv) {
  opl_err e = {0};
  if (opl_dist_init(&argc, &argv, &e)) {
    printf("Bail out! %s\n", e.msg);
    return 1;
  }
  const int P = opl_dist_size(), R = opl_dist_rank();
  if (R != 0 && !freopen("/dev/null", "w", stdout)) return 1;
  tap_begin();
  diag("%d rank%s: rows split %d = %s", P, P > 1 ? "s" : "", B, P == 2 ? "2 + 3" : "the whole batch on each");
  world W;
  memset(&W, 0, sizeof W);
  opl_params_init(&W.p);
  opl_rng rng;
  opl_rng_seed(&rng, 5);
  const int64_t widths[3] = {D, H, D};
  if (opl_mlp_init(&W.F.mlp, &W.p, "f", 2, widths, OPL_TANH, &rng, &e)) {
    printf("Bail out! %s\n", e.msg);
    return 1;
  }
  for (int i = 0; i < W.p.n; i++) /* a livelier field: more steps, some rejected */
    for (int64_t k = 0; k < W.p.t[i]->numel; k++) W.p.t[i]->data[k] *= 3;
  W.u0 = opl_tensor_alloc(OPL_DIMS(B, D), 0, &e);
  for (int64_t i = 0; i < B * D; i++) W.u0->data[i] = (opl_real)(2 * opl_rng_uniform(&rng) - 1);
  for (int k = 0; k < NT; k++) {
    W.r[k] = opl_tensor_alloc(OPL_DIMS(B, D), 0, &e);
    for (int64_t i = 0; i < B * D; i++) W.r[k]->data[i] = (opl_real)(2 * opl_rng_uniform(&rng) - 1);
  }
  W.ts[0] = 0.4, W.ts[1] = 0.9, W.ts[2] = 2.0;
  W.a = B * R / P, W.nl = B * (R + 1) / P - W.a;

  const mode modes[] = {
      {"store-all, global regularizers", OPL_NDE_ADJ_DISCRETE, 0.1, 0.01, 0},
      {"checkpointed, global regularizers", OPL_NDE_ADJ_CHECKPOINT, 0.1, 0.01, 0},
      {"store-all, local regularizer", OPL_NDE_ADJ_DISCRETE, 0, 0, 1},
      {"interpolating continuous adjoint, local regularizer", OPL_NDE_ADJ_INTERP, 0, 0, 1},
      {"backsolve continuous adjoint", OPL_NDE_ADJ_BACKSOLVE, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) compare(&W, &modes[i]);
  failing(&W, 1, 9);
  failing(&W, 3, 9);
  failing(&W, 2, 9);

  opl_params_free(&W.p);
  opl_tensor_free(&W.u0);
  for (int k = 0; k < NT; k++) opl_tensor_free(&W.r[k]);
  int rc = tap_end();
  opl_dist_finalize();
  return rc;
}
