/* PINN training pieces (train/pinn.h): residuals on hand-made jets, gradient checks of the
 * residual losses with respect to the network's parameters, causal weights on a hand-made case
 * and the gradient that excludes them, collocation, a short training run and its resume. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "train/pinn.h"
#include "tests/gradcheck.h"
#include "tests/tap.h"
#include "tests/tmpdir.h"

/* ---------------------------------------------------------------- residuals on a known jet */

static void test_residual_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  /* one point with u = 0.5, u_x = -2, u_xx = 3, u_xxx = 7, u_t = 0.25 */
  opl_jet_spec s = {3, 1};
  opl_tensor *u = opl_new(c, OPL_DIMS(5, 1, 1));
  const double v[5] = {0.5, -2, 3, 7, 0.25};
  for (int k = 0; k < 5; k++) u->data[k] = (opl_real)v[k];
  double nu = 0.01 / M_PI;
  double want[3] = {0.25 + 0.5 * -2 - nu * 3, 0.25 - 1e-4 * 3 + 5 * 0.125 - 5 * 0.5, 0.25 + 0.5 * -2 + 0.022 * 0.022 * 7};
  const char *nm[3] = {"burgers", "allen-cahn", "kdv"};
  for (int id = 0; id < 3; id++) {
    opl_tensor *r = opl_pinn_residual_jet(c, id, u, s);
    ok(r && r->numel == 1 && fabs((double)r->data[0] - want[id]) < 1e-6, "%s residual of a hand-made jet: %.8g (want %.8g)",
       nm[id], r ? (double)r->data[0] : NAN, want[id]);
  }
  opl_jet_spec s2 = {2, 1};
  opl_tensor *u2 = opl_new(c, OPL_DIMS(4, 1, 1));
  ok(!opl_pinn_residual_jet(c, OPL_PINN_KDV, u2, s2) && opl_ctx_status(c) == OPL_ERR_ARG,
     "kdv residual from a jet without u_xxx refused: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
}

/* ---------------------------------------------------------------- gradient checks */

/* A depth-2, width-4 mlp whose six parameters are the checker's inputs; the loss is the mean
 * square residual of problem *opt over fixed points. */
static opl_tensor *f_resloss(opl_ctx *c, opl_tensor **in, const void *opt) {
  int id = *(const int *)opt;
  opl_pinn net;
  memset(&net, 0, sizeof net);
  net.cfg = opl_pinn_config_default(id);
  net.cfg.depth = 2, net.cfg.width = 4, net.cfg.periodic = 0;
  net.prob = opl_pinn_problem_get(id);
  net.nin = 2;
  net.w[0] = in[0], net.b[0] = in[1], net.w[1] = in[2], net.b[1] = in[3], net.w[2] = in[4], net.b[2] = in[5];
  opl_tensor *p = opl_new(c, OPL_DIMS(5, 2));
  const double pts[10] = {0.1, -0.8, 0.3, -0.2, 0.5, 0.1, 0.7, 0.6, 0.9, 0.95};
  for (int i = 0; i < 10; i++) p->data[i] = (opl_real)pts[i];
  opl_jet_spec s = {opl_pinn_order(net.prob), 1};
  opl_tensor *r = opl_pinn_residual_jet(c, id, opl_pinn_forward_jet(c, &net, p, s), s);
  return opl_mean(c, opl_square(c, r));
}

static const int ids[3] = {OPL_PINN_BURGERS, OPL_PINN_ALLEN_CAHN, OPL_PINN_KDV};
#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
#define NET_INPUTS {IN(2, 4, 2), IN(1, 4), IN(2, 4, 4), IN(1, 4), IN(2, 1, 4), IN(1, 1)}
static const gc_case rows[] = {
    {"burgers residual loss w.r.t. the parameters", f_resloss, &ids[0], 6, NET_INPUTS},
    {"allen-cahn residual loss w.r.t. the parameters", f_resloss, &ids[1], 6, NET_INPUTS},
    {"kdv residual loss w.r.t. the parameters", f_resloss, &ids[2], 6, NET_INPUTS},
};

/* ---------------------------------------------------------------- causal weights */

static void test_causal(void) {
  double L[3] = {1, 2, 3}, w[3];
  opl_pinn_causal_weights(L, 3, 0.5, w);
  ok(w[0] == 1 && fabs(w[1] - exp(-0.5)) < 1e-15 && fabs(w[2] - exp(-1.5)) < 1e-15,
     "weights of L = (1, 2, 3), eps 0.5: (1, e^-0.5, e^-1.5) = (%g, %g, %g)", w[0], w[1], w[2]);
  /* r over 2 chunks of 2 points: chunk 0 r = (1, 1) -> L0 = 1; chunk 1 r = (2, 0) -> L1 = 2 */
  opl_ctx *c = opl_ctx_new(0);
  opl_err e;
  opl_tensor *r = opl_tensor_alloc(OPL_DIMS(1, 4, 1), OPL_T_REQGRAD, &e);
  const double rv[4] = {1, 1, 2, 0};
  for (int i = 0; i < 4; i++) r->data[i] = (opl_real)rv[i];
  double wo[2], Lo[2], eps = 0.7;
  opl_tensor *loss = opl_pinn_causal_loss(c, r, 2, eps, NULL, wo, Lo);
  double w1 = exp(-eps * 1), want = 0.5 * (1 * 1 + w1 * 2);
  ok(loss && fabs((double)loss->data[0] - want) < 1e-6 && Lo[0] == 1 && Lo[1] == 2 && wo[0] == 1 && fabs(wo[1] - w1) < 1e-7,
     "causal loss of a hand-made residual: %.7g (want (1/M) sum w_i L_i = %.7g)", loss ? (double)loss->data[0] : NAN, want);
  opl_backward(c, loss);
  /* d/dr_j of (1/M) w_i mean_chunk(r^2) with w constant: w_i 2 r_j / (M P) */
  double g[4] = {2 * 1.0 / 4, 2 * 1.0 / 4, w1 * 2 * 2 / 4, 0}, worst = 0;
  for (int i = 0; i < 4; i++) worst = fmax(worst, fabs((double)r->grad[i] - g[i]));
  ok(worst < 1e-6, "its gradient treats the weights as constants (max |error| %.1e): no gradient through w", worst);
  /* frozen weights are used as given */
  double wf[2] = {0.25, 0.5};
  opl_tensor *lf = opl_pinn_causal_loss(c, r, 2, eps, wf, wo, NULL);
  ok(lf && fabs((double)lf->data[0] - 0.5 * (0.25 * 1 + 0.5 * 2)) < 1e-6 && wo[1] == 0.5, "frozen weights used as given");
  opl_tensor_free(&r);
  opl_ctx_free(&c);
}

/* ---------------------------------------------------------------- collocation */

static void test_collocation(void) {
  enum { N = 64 };
  opl_real a[2 * N], b[2 * N], d[2 * N];
  int64_t na = opl_pinn_collocation(OPL_PINN_BURGERS, OPL_COLLOC_LHS, N, 3, 0, a);
  opl_pinn_collocation(OPL_PINN_BURGERS, OPL_COLLOC_LHS, N, 3, 0, b);
  opl_pinn_collocation(OPL_PINN_BURGERS, OPL_COLLOC_LHS, N, 3, 1, d);
  ok(na == N && !memcmp(a, b, sizeof a) && memcmp(a, d, sizeof a), "lhs: same seed and draw same points, another draw others");
  int sorted = 1, inside = 1, strata[N] = {0};
  for (int i = 0; i < N; i++) {
    if (i && a[2 * i] < a[2 * i - 2]) sorted = 0;
    if (a[2 * i] < 0 || a[2 * i] > 1 || a[2 * i + 1] < -1 || a[2 * i + 1] > 1) inside = 0;
    int sx = (int)floor(((double)a[2 * i + 1] + 1) / 2 * N), st = (int)floor((double)a[2 * i] * N);
    if (sx >= 0 && sx < N) strata[sx]++;
    if (st != i) inside = 0;
  }
  int once = 1;
  for (int i = 0; i < N; i++) once &= strata[i] == 1;
  ok(sorted && inside && once, "lhs: sorted by t, point i in t-stratum i, every x-stratum once, inside the domain");
  int64_t ng = opl_pinn_collocation(OPL_PINN_KDV, OPL_COLLOC_GRID, 50, 0, 0, a);
  ok(ng == 49 && a[0] == (opl_real)(1.0 / 14) && a[1] == (opl_real)(-1 + 2.0 / 14) && a[2 * 48] == (opl_real)(13.0 / 14),
     "grid: 7 x 7 cell centres for 50 points, sorted by t");
}

/* ---------------------------------------------------------------- training */

/* 1 when files a and b exist and hold the same bytes. */
static int same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int same = fa && fb;
  while (same) {
    int x = fgetc(fa), y = fgetc(fb);
    if (x != y) same = 0;
    if (x == EOF || y == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

/* Progress callback stopping the run after iteration *user. */
static int stop_after(const opl_pinn_iter_stats *s, void *user) { return s->iter >= *(const int64_t *)user; }

static void test_training(void) {
  char dir[64], p1[128], p2[128];
  if (!test_tmpdir_make(dir, "pinntrain")) return;
  snprintf(p1, sizeof p1, "%s/a.h5", dir);
  snprintf(p2, sizeof p2, "%s/b.h5", dir);
  opl_pinn_train_config c = opl_pinn_train_defaults(OPL_PINN_ALLEN_CAHN);
  c.model.depth = 2, c.model.width = 8;
  c.optimizer = OPL_PINN_ADAM_LBFGS;
  c.adam_iters = 20, c.lbfgs_iters = 10, c.points = 256, c.boundary_points = 16, c.lr = 1e-2;
  c.causal = 1, c.chunks = 8, c.checkpoint_every = 6;
  c.checkpoint = p1;
  c.csv = "";
  opl_err e;
  opl_pinn_trainer *t = opl_pinn_trainer_new(&c, &e);
  opl_pinn_iter_stats s0, s1;
  int st = t ? opl_pinn_trainer_eval_loss(t, &s0, &e) : e.status;
  st = st ? st : opl_pinn_trainer_run(t, NULL, NULL, &e);
  st = st ? st : opl_pinn_trainer_eval_loss(t, &s1, &e);
  ok(!st && s1.loss < 0.5 * s0.loss && opl_pinn_trainer_iter(t) == 30,
     "allen-cahn, causal, adam+lbfgs: 30 iterations, loss %.3e -> %.3e: %s", s0.loss, s1.loss, st ? e.msg : "");
  ok(!st && s0.min_w > 0 && s0.min_w <= 1 && s0.eps == 1e-2, "causal statistics: min w %.3f, eps %g", s0.min_w, s0.eps);
  opl_pinn_trainer_free(&t);
  /* stop after iteration 12 (a checkpoint is written), then resume in a new trainer */
  c.checkpoint = p2;
  c.lbfgs_iters = 10;
  opl_pinn_trainer *u = opl_pinn_trainer_new(&c, &e);
  int64_t stop_at = 12;
  st = u ? opl_pinn_trainer_run(u, stop_after, &stop_at, &e) : e.status;
  opl_pinn_trainer_free(&u);
  opl_pinn_trainer *v = st ? NULL : opl_pinn_trainer_new(&c, &e);
  st = v ? opl_pinn_trainer_resume(v, p2, &e) : (st ? st : e.status);
  int64_t at = v ? opl_pinn_trainer_iter(v) : -1;
  st = st ? st : opl_pinn_trainer_run(v, NULL, NULL, &e);
  opl_pinn_trainer_free(&v);
  int same = same_file(p1, p2);
  ok(!st && at == 12 && same, "stopped at iteration 12, resumed, the final checkpoint equals the uninterrupted run's byte "
                              "for byte: %s", st ? e.msg : "");
  c.seed = 5;
  opl_pinn_trainer *w = opl_pinn_trainer_new(&c, &e);
  st = w ? opl_pinn_trainer_resume(w, p2, &e) : e.status;
  ok(st == OPL_ERR_ARG && strstr(e.msg, "seed"), "resume with another seed refused: %s", e.msg);
  opl_pinn_trainer_free(&w);
  c.points = 0;
  ok(!opl_pinn_trainer_new(&c, &e) && e.status == OPL_ERR_ARG && strstr(e.msg, "0 collocation points"), "0 points refused: %s",
     e.msg);
  test_tmpdir_remove(dir);
}

/* ---------------------------------------------------------------- eps schedule */

typedef struct eps_log {
  double eps[8], min_w[8];
  int n;
} eps_log;

static int record_eps(const opl_pinn_iter_stats *s, void *user) {
  eps_log *l = user;
  if (l->n < 8) {
    l->eps[l->n] = s->eps;
    l->min_w[l->n] = s->min_w;
    l->n++;
  }
  return 0;
}

/* The annealed eps list during Adam: an iteration whose min w exceeds delta moves to the next
 * eps (used from the following iteration); one whose min w does not keeps it; the last eps
 * stays. eps 1e-12 gives min w = 1 - O(1e-12) > 0.99, eps 1e6 gives min w ~ 0. */
static void test_eps_schedule(void) {
  opl_pinn_train_config c = opl_pinn_train_defaults(OPL_PINN_ALLEN_CAHN);
  c.model.depth = 1, c.model.width = 4;
  c.optimizer = OPL_PINN_ADAM;
  c.adam_iters = 5, c.points = 64, c.boundary_points = 8;
  c.causal = 1, c.chunks = 4, c.neps = 4;
  c.eps[0] = 1e-12, c.eps[1] = 1e-11, c.eps[2] = 1e6, c.eps[3] = 1e7;
  c.csv = "";
  opl_err e;
  opl_pinn_trainer *t = opl_pinn_trainer_new(&c, &e);
  eps_log l = {.n = 0};
  int st = t ? opl_pinn_trainer_run(t, record_eps, &l, &e) : e.status;
  ok(!st && l.n == 5 && l.eps[0] == 1e-12 && l.eps[1] == 1e-11 && l.eps[2] == 1e6 && l.eps[3] == 1e6 && l.eps[4] == 1e6,
     "eps schedule 1e-12,1e-11,1e6,1e7: per iteration %g %g %g %g %g (want 1e-12 1e-11 1e6 1e6 1e6): %s", l.eps[0],
     l.eps[1], l.eps[2], l.eps[3], l.eps[4], st ? e.msg : "");
  ok(!st && l.min_w[0] > 0.99 && l.min_w[1] > 0.99 && l.min_w[2] < 0.99 && l.min_w[4] < 0.99,
     "min w %.4f %.4f (> delta: move on), then %.3g .. %.3g (< delta: stay)", l.min_w[0], l.min_w[1], l.min_w[2], l.min_w[4]);
  opl_pinn_trainer_free(&t);
}

/* ---------------------------------------------------------------- time windows */

/* u of window k's network at (t, x[i]), i < n. */
static void window_u(const opl_pinn *net, int k, double t, const double *x, int n, double *u) {
  opl_ctx *c = opl_ctx_new(0);
  opl_ctx_set_grad_enabled(c, 0);
  opl_tensor *p = opl_new(c, OPL_DIMS(n, 2));
  for (int i = 0; i < n; i++) p->data[2 * i] = (opl_real)t, p->data[2 * i + 1] = (opl_real)x[i];
  opl_jet_spec s0 = {0, 0};
  opl_tensor *y = opl_pinn_forward_jet(c, opl_pinn_window(net, k, NULL, NULL), p, s0);
  for (int i = 0; i < n; i++) u[i] = y ? (double)y->data[i] : NAN;
  opl_ctx_free(&c);
}

/* Allen-Cahn on 2 time windows: window 1 starts from window 0's network at t = 1/2 (its initial
 * loss), so the piecewise prediction is continuous there up to that loss; a run stopped inside
 * window 1 and at the window boundary, then resumed, ends on the uninterrupted run's bytes. */
static void test_windows(void) {
  char dir[64], p1[128], p2[128], p3[128];
  if (!test_tmpdir_make(dir, "pinnwin")) return;
  snprintf(p1, sizeof p1, "%s/a.h5", dir);
  snprintf(p2, sizeof p2, "%s/b.h5", dir);
  snprintf(p3, sizeof p3, "%s/c.h5", dir);
  opl_pinn_train_config c = opl_pinn_train_defaults(OPL_PINN_ALLEN_CAHN);
  c.model.depth = 2, c.model.width = 16, c.model.nfreq = 4, c.model.windows = 2;
  c.optimizer = OPL_PINN_ADAM_LBFGS;
  c.adam_iters = 200, c.lbfgs_iters = 300, c.points = 512, c.boundary_points = 256, c.lr = 1e-2;
  c.w_ic = 10, c.checkpoint_every = 100;
  c.checkpoint = p1;
  c.csv = "";
  opl_err e;
  opl_pinn_trainer *t = opl_pinn_trainer_new(&c, &e);
  int st = t ? opl_pinn_trainer_run(t, NULL, NULL, &e) : e.status;
  ok(!st && opl_pinn_trainer_iter(t) == 1000, "allen-cahn, 2 windows of 200 Adam + 300 L-BFGS iterations: %lld done: %s",
     t ? (long long)opl_pinn_trainer_iter(t) : -1LL, st ? e.msg : "");
  if (!st) {
    const opl_pinn *net = opl_pinn_trainer_model(t)->self;
    enum { NX = 33 };
    double x[NX], a[NX], b[NX], jump = 0, moved = 0, norm = 0;
    for (int i = 0; i < NX; i++) x[i] = -1 + 2.0 * i / (NX - 1);
    window_u(net, 0, 0.5, x, NX, a);
    window_u(net, 1, 0.5, x, NX, b);
    for (int i = 0; i < NX; i++) {
      double u0[1];
      opl_pinn_u0(OPL_PINN_ALLEN_CAHN, x[i], u0, 0);
      jump = fmax(jump, fabs(a[i] - b[i]));
      moved = fmax(moved, fabs(a[i] - u0[0]));
      norm = fmax(norm, fabs(a[i]));
    }
    /* the tolerance: 10 % of the solution's size at t = 1/2 (500 iterations of a small network
     * fit window 1's initial loss to ~1e-4); the solution has moved by over 50 % since t = 0, so a
     * window started from u0 instead of window 0's network would show a jump of that size */
    ok(jump < 0.1 * norm && moved > 0.5 * norm,
       "continuity at t = 1/2: max |u_0 - u_1| = %.2e (< 10%% of max |u| = %.3f); u moved by %.3f since t = 0", jump, norm,
       moved);
  }
  opl_pinn_trainer_free(&t);
  /* stopped inside window 1 (iteration 650) and at the window boundary (iteration 500) */
  const int64_t stops[2] = {650, 500};
  const char *paths[2] = {p2, p3};
  for (int r = 0; r < 2; r++) {
    c.checkpoint = paths[r];
    opl_pinn_trainer *u = opl_pinn_trainer_new(&c, &e);
    int64_t stop_at = stops[r];
    st = u ? opl_pinn_trainer_run(u, stop_after, &stop_at, &e) : e.status;
    opl_pinn_trainer_free(&u);
    opl_pinn_trainer *v = st ? NULL : opl_pinn_trainer_new(&c, &e);
    st = v ? opl_pinn_trainer_resume(v, paths[r], &e) : (st ? st : e.status);
    int64_t at = v ? opl_pinn_trainer_iter(v) : -1;
    st = st ? st : opl_pinn_trainer_run(v, NULL, NULL, &e);
    opl_pinn_trainer_free(&v);
    ok(!st && at <= stops[r] && at >= stops[r] - 100 && same_file(p1, paths[r]),
       "2 windows: stopped after iteration %lld (checkpoint of %lld), resumed: the final checkpoint equals the "
       "uninterrupted run's: %s", (long long)stops[r], (long long)at, st ? e.msg : "");
  }
  c.seed = 0;
  c.model.windows = 3;
  opl_pinn_trainer *w = opl_pinn_trainer_new(&c, &e);
  st = w ? opl_pinn_trainer_resume(w, p1, &e) : e.status;
  ok(st == OPL_ERR_ARG && strstr(e.msg, "windows"), "resume of a 2-window run with 3 windows refused: %s", e.msg);
  opl_pinn_trainer_free(&w);
  c.model.hard = 1;
  ok(!opl_pinn_trainer_new(&c, &e) && e.status == OPL_ERR_ARG && strstr(e.msg, "hard"), "windows with hard conditions "
     "refused: %s", e.msg);
  test_tmpdir_remove(dir);
}

int main(void) {
  tap_begin();
  test_residual_values();
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  test_causal();
  test_collocation();
  test_training();
  test_eps_schedule();
  test_windows();
  return tap_end();
}
