/* opl train — physics-informed training of coordinate networks (see pinn.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "train/pinn.h"
#include "core/dist.h"
#include "core/io.h"
#include "core/lbfgs.h"
#include "core/optim.h"

/* ---------------------------------------------------------------- names */

static const char *const opt_names[OPL_PINN_OPT_COUNT] = {"adam", "lbfgs", "adam+lbfgs"};
static const char *const colloc_names[OPL_COLLOC_COUNT] = {"grid", "lhs", "resample"};

const char *opl_pinn_opt_name(int o) { return o >= 0 && o < OPL_PINN_OPT_COUNT ? opt_names[o] : "unknown"; }
int opl_pinn_opt_find(const char *name) {
  for (int i = 0; name && i < OPL_PINN_OPT_COUNT; i++)
    if (!strcmp(opt_names[i], name)) return i;
  return -1;
}
const char *opl_pinn_colloc_name(int k) { return k >= 0 && k < OPL_COLLOC_COUNT ? colloc_names[k] : "unknown"; }
int opl_pinn_colloc_find(const char *name) {
  for (int i = 0; name && i < OPL_COLLOC_COUNT; i++)
    if (!strcmp(colloc_names[i], name)) return i;
  return -1;
}

/* ---------------------------------------------------------------- configuration */

opl_pinn_train_config opl_pinn_train_defaults(int problem) {
  opl_pinn_train_config c;
  memset(&c, 0, sizeof c);
  c.model = opl_pinn_config_default(problem);
  c.optimizer = OPL_PINN_ADAM_LBFGS;
  c.adam_iters = 1000;
  c.lbfgs_iters = 1000;
  c.lbfgs_history = 10;
  c.points = 10000;
  c.boundary_points = 100;
  c.colloc = OPL_COLLOC_LHS;
  c.lr = 1e-3;
  c.lr_decay = 0.9;
  c.decay_steps = 5000;
  c.w_ic = c.w_bc = 1;
  c.causal = 0;
  c.neps = 5;
  const double e[5] = {1e-2, 1e-1, 1, 1e1, 1e2};
  memcpy(c.eps, e, sizeof e);
  c.chunks = 32;
  c.delta = 0.99;
  c.seed = 0;
  c.checkpoint_every = 1000;
  return c;
}

int opl_pinn_train_check(const opl_pinn_train_config *c, opl_err *err) {
  if (c->optimizer < 0 || c->optimizer >= OPL_PINN_OPT_COUNT)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: optimizer %d, expected adam, lbfgs or adam+lbfgs", c->optimizer);
  if (c->optimizer != OPL_PINN_LBFGS && c->adam_iters < 1)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: %lld Adam iterations, expected >= 1", (long long)c->adam_iters);
  if (c->optimizer != OPL_PINN_ADAM && (c->lbfgs_iters < 1 || c->lbfgs_history < 1))
    return opl_err_set(err, OPL_ERR_ARG, "pinn: %lld L-BFGS iterations with %d pairs, expected >= 1 and >= 1",
                       (long long)c->lbfgs_iters, c->lbfgs_history);
  if (c->points < 1 || c->points > (1 << 26))
    return opl_err_set(err, OPL_ERR_ARG, "pinn: %lld collocation points, expected 1..%d", (long long)c->points, 1 << 26);
  if (c->boundary_points < 4 || c->boundary_points > (1 << 24))
    return opl_err_set(err, OPL_ERR_ARG, "pinn: %lld initial/boundary points, expected 4..%d", (long long)c->boundary_points,
                       1 << 24);
  if (c->colloc < 0 || c->colloc >= OPL_COLLOC_COUNT)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: collocation %d, expected grid, lhs or resample", c->colloc);
  if (!(c->lr > 0) || !isfinite(c->lr) || !(c->lr_decay > 0 && c->lr_decay <= 1) || c->decay_steps < 1)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: lr %g, decay %g every %lld, expected lr > 0, decay in (0, 1], steps >= 1",
                       c->lr, c->lr_decay, (long long)c->decay_steps);
  if (!(c->w_ic >= 0) || !(c->w_bc >= 0) || !isfinite(c->w_ic) || !isfinite(c->w_bc))
    return opl_err_set(err, OPL_ERR_ARG, "pinn: loss weights %g (ic), %g (bc), expected finite >= 0", c->w_ic, c->w_bc);
  if (c->causal) {
    if (c->neps < 1 || c->neps > OPL_PINN_MAX_EPS)
      return opl_err_set(err, OPL_ERR_ARG, "pinn: %d values of eps, expected 1..%d", c->neps, OPL_PINN_MAX_EPS);
    for (int i = 0; i < c->neps; i++)
      if (!(c->eps[i] > 0) || !isfinite(c->eps[i]))
        return opl_err_set(err, OPL_ERR_ARG, "pinn: eps %g, expected finite > 0", c->eps[i]);
    if (c->chunks < 1 || c->chunks > c->points)
      return opl_err_set(err, OPL_ERR_ARG, "pinn: %lld chunks for %lld collocation points, expected 1..points",
                         (long long)c->chunks, (long long)c->points);
    if (!(c->delta > 0 && c->delta < 1))
      return opl_err_set(err, OPL_ERR_ARG, "pinn: delta %g, expected in (0, 1)", c->delta);
  }
  if (c->checkpoint_every < 1)
    return opl_err_set(err, OPL_ERR_ARG, "pinn: checkpoint every %lld iterations, expected >= 1", (long long)c->checkpoint_every);
  return OPL_OK;
}

/* ---------------------------------------------------------------- residuals */

opl_tensor *opl_pinn_residual_jet(opl_ctx *c, int problem, opl_tensor *u, opl_jet_spec s) {
  if (opl_ctx_status(c)) return NULL;
  const opl_pinn_problem *p = opl_pinn_problem_get(problem);
  if (!p || s.nt != 1 || s.nx < opl_pinn_order(p)) {
    opl_ctx_error(c, OPL_ERR_ARG, "pinn residual: problem %d needs a jet with u_t and %d x-derivatives (got %d, %d)",
                  problem, p ? opl_pinn_order(p) : 0, s.nx, s.nt);
    return NULL;
  }
  /* R = u_t + adv u u_x - diff u_xx + disp u_xxx + cubic u^3 - lin u (pde/pinn_problems.h) */
  opl_tensor *u0 = opl_slice(c, u, 0, 0, 1), *r = opl_slice(c, u, 0, s.nx + 1, 1);
  if (p->adv != 0) r = opl_axpby(c, 1, r, p->adv, opl_mul(c, u0, opl_slice(c, u, 0, 1, 1)));
  if (p->diff != 0) r = opl_axpby(c, 1, r, -p->diff, opl_slice(c, u, 0, 2, 1));
  if (p->disp != 0) r = opl_axpby(c, 1, r, p->disp, opl_slice(c, u, 0, 3, 1));
  if (p->cubic != 0) r = opl_axpby(c, 1, r, p->cubic, opl_mul(c, opl_square(c, u0), u0));
  if (p->lin != 0) r = opl_axpby(c, 1, r, -p->lin, u0);
  return r;
}

/* ---------------------------------------------------------------- causal weights */

void opl_pinn_causal_weights(const double *L, int64_t M, double eps, double *w) {
  double cum = 0;
  for (int64_t i = 0; i < M; i++) {
    w[i] = exp(-eps * cum);
    cum += L[i];
  }
}

opl_tensor *opl_pinn_causal_loss(opl_ctx *c, opl_tensor *r, int64_t M, double eps, const double *w_given, double *w_out,
                                 double *L_out) {
  if (opl_ctx_status(c)) return NULL;
  if (!r || M < 1 || r->numel < M) {
    opl_ctx_error(c, OPL_ERR_ARG, "pinn causal loss: %lld chunks for %lld residuals", (long long)M,
                  (long long)(r ? r->numel : 0));
    return NULL;
  }
  int64_t P = r->numel / M;
  opl_tensor *rr = opl_reshape(c, r, OPL_DIMS(r->numel));
  if (P * M != r->numel) rr = opl_slice(c, rr, 0, 0, P * M);
  opl_tensor *Lm = opl_mean_axis(c, opl_reshape(c, opl_square(c, rr), OPL_DIMS(M, P)), 1, 0);
  opl_tensor *W = opl_new(c, OPL_DIMS(M));
  double *Ld = opl_arena_alloc(c, (size_t)M * sizeof(double)), *wd = opl_arena_alloc(c, (size_t)M * sizeof(double));
  if (!Lm || !W || !Ld || !wd) return NULL;
  for (int64_t i = 0; i < M; i++) Ld[i] = (double)Lm->data[i];
  if (w_given) memcpy(wd, w_given, (size_t)M * sizeof(double));
  else opl_pinn_causal_weights(Ld, M, eps, wd);
  for (int64_t i = 0; i < M; i++) W->data[i] = (opl_real)wd[i];
  if (w_out) memcpy(w_out, wd, (size_t)M * sizeof(double));
  if (L_out) memcpy(L_out, Ld, (size_t)M * sizeof(double));
  return opl_mean(c, opl_mul(c, Lm, W));
}

/* ---------------------------------------------------------------- collocation */

static int cmp_t(const void *a, const void *b) {
  const opl_real *x = a, *y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1];
}

int64_t opl_pinn_collocation(int problem, int kind, int64_t n, uint64_t seed, uint64_t draw, opl_real *pts) {
  const opl_pinn_problem *p = opl_pinn_problem_get(problem);
  if (!p || n < 1) return 0;
  double L = p->x1 - p->x0;
  if (kind == OPL_COLLOC_GRID) {
    int64_t nt = (int64_t)floor(sqrt((double)n)), nx = n / nt;
    for (int64_t i = 0; i < nt; i++)
      for (int64_t j = 0; j < nx; j++) {
        pts[2 * (i * nx + j)] = (opl_real)(p->T * (i + 0.5) / nt);
        pts[2 * (i * nx + j) + 1] = (opl_real)(p->x0 + L * (j + 0.5) / nx);
      }
    return nt * nx;
  }
  opl_rng root, r;
  opl_rng_seed(&root, seed);
  r = opl_rng_split(&root, 0x5A3D0000ull + draw);
  int64_t *perm = malloc((size_t)n * sizeof *perm);
  if (!perm) return 0;
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
    int64_t j = (int64_t)(opl_rng_uniform(&r) * (double)(i + 1));
    if (j > i) j = i;
    int64_t tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  for (int64_t i = 0; i < n; i++) {
    double ut = opl_rng_uniform(&r), ux = opl_rng_uniform(&r);
    pts[2 * i] = (opl_real)(p->T * ((double)i + ut) / (double)n);
    pts[2 * i + 1] = (opl_real)(p->x0 + L * ((double)perm[i] + ux) / (double)n);
  }
  free(perm);
  qsort(pts, (size_t)n, 2 * sizeof(opl_real), cmp_t); /* already sorted by t up to rounding */
  return n;
}

/* ---------------------------------------------------------------- the trainer */

struct opl_pinn_trainer {
  opl_pinn_train_config cfg;
  char *ckpt, *csv;
  const opl_pinn_problem *prob;
  opl_model model;
  opl_pinn *net;
  opl_optim *adam;
  opl_ctx *ctx;
  opl_tensor *pr;            /* [nr, 2] collocation points */
  int64_t nr;
  opl_tensor *pic, *u0ic;    /* [nic, 2] initial points, [1, nic, 1] u0 there */
  opl_tensor *pbc;           /* [nbc, 2]: the first half at x0, the second at x1 (same times) */
  int64_t iter;
  int eps_idx, lbfgs_done;
  double *w, *Lc, *wfrozen;  /* [chunks] */
  int frozen;
  int64_t np;                /* parameter reals */
  double *xv;                /* [np] L-BFGS iterate */
  opl_pinn_iter_stats last;  /* parts of the last evaluation */
  FILE *csvf;
  char *csv_pending;         /* a fresh run's log under "<csv>.tmp.<pid>" until its first checkpoint */
  double t0;
  /* L-BFGS segment bookkeeping */
  int64_t seg_start;
  opl_pinn_progress_fn cb;
  void *cb_user;
  int stop;
  /* Adam's state under checkpoint names: core/optim.h names it "adam.m/<param>" and core/io.h
   * takes no '/' in a dataset name, so the checkpoint holds shallow copies (sharing the data)
   * named "adam.m:<param>" */
  opl_tensor *shadow_t;
  opl_tensor **shadow_p;
  opl_params shadow;
  /* time windows (see pinn.h): the window being trained, its network and parameters (a view of
   * model.params; all of them with one window), the window Adam was made for (-1: none) */
  int win, adam_win;
  const opl_pinn *fwd;
  opl_params wp;
  /* more than one rank: the gradient sums over wp (core/dist.h), made with wp in window_optim:
   * the buckets are started from the reverse pass as their parameters' gradients become final,
   * so they hold exactly the parameters the window's loss differentiates */
  opl_dist_grads *dg;
  opl_dist_grads_stats dg_done; /* the statistics of the earlier windows' gradient sums */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Iterations of one time window (Adam, then L-BFGS), and of the whole run. */
static int64_t window_iters(const opl_pinn_train_config *c) {
  return (c->optimizer != OPL_PINN_LBFGS ? c->adam_iters : 0) + (c->optimizer != OPL_PINN_ADAM ? c->lbfgs_iters : 0);
}
static int64_t total_iters(const opl_pinn_train_config *c) {
  return window_iters(c) * (c->model.windows > 1 ? c->model.windows : 1);
}

static char *dupstr(const char *s) {
  if (!s) return NULL;
  char *d = malloc(strlen(s) + 1);
  if (d) strcpy(d, s);
  return d;
}

void opl_pinn_trainer_free(opl_pinn_trainer **tp) {
  if (!tp || !*tp) return;
  opl_pinn_trainer *t = *tp;
  if (t->csvf) fclose(t->csvf);
  if (t->csv_pending) unlink(t->csv_pending); /* a run that wrote no checkpoint leaves no log */
  free(t->csv_pending);
  opl_optim_free(&t->adam);
  opl_dist_grads_free(&t->dg);
  opl_model_free(&t->model);
  opl_ctx_free(&t->ctx);
  opl_tensor_free(&t->pr);
  opl_tensor_free(&t->pic);
  opl_tensor_free(&t->u0ic);
  opl_tensor_free(&t->pbc);
  free(t->w);
  free(t->Lc);
  free(t->wfrozen);
  free(t->xv);
  free(t->ckpt);
  free(t->csv);
  free(t->shadow_t);
  free(t->shadow_p);
  free(t);
  *tp = NULL;
}

/* Draw the initial and boundary points of time window k = t->win [t0, t1] from the seed (the same
 * draws in every window: initial points at t0 with u0 there, boundary times uniform in the
 * window); a later window's initial values are set by window_data. */
static void boundary_points(opl_pinn_trainer *t) {
  const opl_pinn_problem *p = t->prob;
  double t0, t1;
  opl_pinn_window(t->net, t->win, &t0, &t1);
  opl_rng root, r;
  opl_rng_seed(&root, t->cfg.seed);
  r = opl_rng_split(&root, 0xB0D0);
  int64_t nic = t->pic->shape[0], nb = t->pbc->shape[0] / 2;
  for (int64_t i = 0; i < nic; i++) {
    double x = p->x0 + (p->x1 - p->x0) * opl_rng_uniform(&r), d[1];
    opl_pinn_u0(t->cfg.model.problem, x, d, 0);
    t->pic->data[2 * i] = (opl_real)t0;
    t->pic->data[2 * i + 1] = (opl_real)x;
    t->u0ic->data[i] = (opl_real)d[0];
  }
  for (int64_t i = 0; i < nb; i++) {
    double tt = t0 + (t1 - t0) * opl_rng_uniform(&r);
    t->pbc->data[2 * i] = t->pbc->data[2 * (nb + i)] = (opl_real)tt;
    t->pbc->data[2 * i + 1] = (opl_real)p->x0;
    t->pbc->data[2 * (nb + i) + 1] = (opl_real)p->x1;
  }
}

/* The collocation set for iteration it (1-based) into t->pr; with time windows, drawn over
 * [0, T] (a fixed set: draw k for window k) and mapped linearly onto window k = t->win. */
static void collocate(opl_pinn_trainer *t, int64_t it) {
  uint64_t draw = t->cfg.colloc == OPL_COLLOC_RESAMPLE ? (uint64_t)it : (uint64_t)t->win;
  t->nr = opl_pinn_collocation(t->cfg.model.problem, t->cfg.colloc, t->cfg.points, t->cfg.seed, draw, t->pr->data);
  t->pr->shape[0] = t->nr;
  t->pr->numel = 2 * t->nr;
  if (t->cfg.model.windows > 1) {
    double t0, t1, T = t->prob->T;
    opl_pinn_window(t->net, t->win, &t0, &t1);
    for (int64_t i = 0; i < t->nr; i++) t->pr->data[2 * i] = (opl_real)(t0 + (t1 - t0) * ((double)t->pr->data[2 * i] / T));
  }
}

/* ---------------------------------------------------------------- time windows */

/* to += from for the counters that grow over a run (steps, buckets started early, seconds). */
static void dist_stats_add(opl_dist_grads_stats *to, const opl_dist_grads_stats *from) {
  to->steps += from->steps;
  to->started_early += from->started_early;
  to->comm_seconds += from->comm_seconds;
  to->wait_seconds += from->wait_seconds;
}

/* Adam over the parameters of window k (a new state; nothing to do if it is already window k's),
 * the checkpoint names of its state (see the struct) and, on more than one rank, the gradient
 * sums over the window's parameters (not collective: every rank calls it at the same iteration). */
static int window_optim(opl_pinn_trainer *t, int k, opl_err *err) {
  if (t->adam && t->adam_win == k) return OPL_OK;
  opl_optim_free(&t->adam);
  if (t->dg) { /* keep the run's totals */
    opl_dist_grads_stats ds;
    opl_dist_grads_get_stats(t->dg, &ds);
    dist_stats_add(&t->dg_done, &ds);
  }
  opl_dist_grads_free(&t->dg);
  free(t->shadow_t);
  free(t->shadow_p);
  t->shadow_t = NULL;
  t->shadow_p = NULL;
  t->adam_win = -1;
  int first, count;
  opl_pinn_window_params(t->net, k, &first, &count);
  t->wp.t = t->model.params.t + first;
  t->wp.n = t->wp.cap = count;
  opl_optim_config oc = opl_optim_defaults(OPL_OPTIM_ADAM);
  oc.lr = t->cfg.lr;
  t->adam = opl_optim_create(OPL_OPTIM_ADAM, &t->wp, &oc, err);
  if (!t->adam) return err && err->status ? err->status : OPL_ERR_NOMEM;
  /* another window's parameters take no gradient from this window's loss: buckets over
   * model.params would sum stale gradients and start late, so they cover t->wp alone */
  if (opl_dist_size() > 1 && !(t->dg = opl_dist_grads_new(&t->wp, 0, err)))
    return err && err->status ? err->status : OPL_ERR_NOMEM;
  const opl_params *os = opl_optim_state(t->adam);
  t->shadow_t = calloc((size_t)os->n, sizeof *t->shadow_t);
  t->shadow_p = calloc((size_t)os->n, sizeof *t->shadow_p);
  if (!t->shadow_t || !t->shadow_p) return opl_err_set(err, OPL_ERR_NOMEM, "pinn: out of memory");
  for (int i = 0; i < os->n; i++) {
    t->shadow_t[i] = *os->t[i];
    for (char *q = t->shadow_t[i].name; *q; q++)
      if (*q == '/') *q = ':';
    t->shadow_p[i] = &t->shadow_t[i];
  }
  t->shadow.t = t->shadow_p;
  t->shadow.n = t->shadow.cap = os->n;
  t->adam_win = k;
  return OPL_OK;
}

/* The points of window k: initial and boundary points, the collocation set of iteration it, and
 * for k > 0 the initial values, window k-1's network at (t_k, x) (evaluated without gradient;
 * that network is final). */
static int window_data(opl_pinn_trainer *t, int k, int64_t it, opl_err *err) {
  t->win = k;
  t->fwd = opl_pinn_window(t->net, k, NULL, NULL);
  boundary_points(t);
  collocate(t, it);
  if (k == 0) return OPL_OK;
  opl_ctx_reset(t->ctx);
  int prev = opl_ctx_set_grad_enabled(t->ctx, 0);
  opl_jet_spec s0 = {0, 0};
  opl_tensor *u = opl_pinn_forward_jet(t->ctx, opl_pinn_window(t->net, k - 1, NULL, NULL), t->pic, s0);
  opl_ctx_set_grad_enabled(t->ctx, prev);
  if (!u) {
    opl_ctx_take_error(t->ctx, err);
    opl_ctx_clear_error(t->ctx);
    return err && err->status ? err->status : OPL_ERR_STATE;
  }
  memcpy(t->u0ic->data, u->data, (size_t)t->u0ic->numel * sizeof(opl_real));
  return OPL_OK;
}

/* Start window k from its first iteration: a fresh Adam, its points, eps from the start of its
 * list, L-BFGS not stopped. */
static int window_enter(opl_pinn_trainer *t, int k, opl_err *err) {
  int st = window_optim(t, k, err);
  if (st) return st;
  t->eps_idx = 0;
  t->lbfgs_done = 0;
  t->frozen = 0;
  return window_data(t, k, (int64_t)k * window_iters(&t->cfg) + 1, err);
}

opl_pinn_trainer *opl_pinn_trainer_new(const opl_pinn_train_config *cfg, opl_err *err) {
  if (opl_pinn_train_check(cfg, err)) return NULL;
  opl_pinn_trainer *t = calloc(1, sizeof *t);
  if (!t) {
    opl_err_set(err, OPL_ERR_NOMEM, "pinn: out of memory");
    return NULL;
  }
  t->cfg = *cfg;
  t->ckpt = dupstr(cfg->checkpoint);
  if (cfg->csv) t->csv = dupstr(cfg->csv);
  else if (cfg->checkpoint) {
    size_t n = strlen(cfg->checkpoint);
    t->csv = malloc(n + 5);
    if (t->csv) {
      strcpy(t->csv, cfg->checkpoint);
      if (n > 3 && !strcmp(t->csv + n - 3, ".h5")) t->csv[n - 3] = 0;
      strcat(t->csv, ".csv");
    }
  }
  t->cfg.checkpoint = t->ckpt;
  t->cfg.csv = t->csv;
  t->prob = opl_pinn_problem_get(cfg->model.problem);
  opl_rng rng;
  opl_rng_seed(&rng, cfg->seed);
  if (opl_model_create(&t->model, &opl_pinn_kind, &cfg->model, &rng, err)) {
    opl_pinn_trainer_free(&t);
    return NULL;
  }
  t->net = t->model.self;
  t->cfg.model = t->net->cfg;
  t->adam_win = -1;
  if (window_optim(t, 0, err)) {
    opl_pinn_trainer_free(&t);
    return NULL;
  }
  t->ctx = opl_ctx_new(0);
  int64_t nb = cfg->boundary_points, nic = nb / 2, nbc = (nb - nic) / 2;
  t->pr = opl_tensor_alloc(OPL_DIMS(cfg->points, 2), 0, err);
  t->pic = opl_tensor_alloc(OPL_DIMS(nic, 2), 0, err);
  t->u0ic = opl_tensor_alloc(OPL_DIMS(1, nic, 1), 0, err);
  t->pbc = opl_tensor_alloc(OPL_DIMS(2 * nbc, 2), 0, err);
  int64_t M = cfg->causal ? cfg->chunks : 1;
  t->w = calloc((size_t)M, sizeof(double));
  t->Lc = calloc((size_t)M, sizeof(double));
  t->wfrozen = calloc((size_t)M, sizeof(double));
  t->np = 0; /* one window's parameters */
  for (int i = 0; i < t->wp.n; i++) t->np += t->wp.t[i]->numel;
  t->xv = calloc((size_t)t->np, sizeof(double));
  if (!t->adam || !t->ctx || !t->pr || !t->pic || !t->u0ic || !t->pbc || !t->w || !t->Lc || !t->wfrozen || !t->xv ||
      (cfg->checkpoint && (!t->ckpt || !t->csv))) {
    if (!err || !err->status) opl_err_set(err, OPL_ERR_NOMEM, "pinn: out of memory");
    opl_pinn_trainer_free(&t);
    return NULL;
  }
  if (window_data(t, 0, 1, err)) {
    opl_pinn_trainer_free(&t);
    return NULL;
  }
  if (opl_dist_size() > t->nr) { /* every rank takes a share of the collocation points */
    opl_err_set(err, OPL_ERR_ARG, "pinn: %d ranks but %lld collocation points: every rank takes a share of the "
                "points, so at most %lld ranks (or more --points)", opl_dist_size(), (long long)t->nr,
                (long long)t->nr);
    opl_pinn_trainer_free(&t);
    return NULL;
  }
  return t;
}

/* ---------------------------------------------------------------- several ranks
 *
 * Under mpirun (core/dist.h) every rank holds the whole network, the same optimizer state and
 * the same global collocation set (a function of (seed, iteration) alone, so independent of the
 * number of ranks P) and evaluates the residual on its contiguous share of the points, rows
 * [nr R / P, nr (R + 1) / P); rank 0 alone evaluates the initial and boundary terms, which are
 * small. Each rank's objective is its part of the global one, normalized by the global counts,
 * so the sum over ranks of the objectives and of the gradients (the trainer's buckets started
 * during backward) is the single-process objective and gradient up to the order of the
 * additions. The causal weights need the global chunk losses: the ranks' per-chunk sums of r^2
 * are summed first (no gradient), and every rank computes the same weights from them. Every
 * rank ends an evaluation with the same objective value and gradient bits, so Adam and the
 * L-BFGS line search take identical steps everywhere; rank 0 alone writes the checkpoint and
 * the CSV. A failure on one rank reaches all through the agreements (one message). With time
 * windows every rank trains window k on its share of window k's points (rank 0 alone adding the
 * initial term against the previous window's network); the gradient sums cover window k's
 * parameters alone (made anew when the window changes, window_optim), the ones its loss
 * differentiates, and every rank changes window at the same iteration. */

/* Mark a failure agreed by every rank on c (replacing this rank's own message) and return NULL. */
static opl_tensor *agreed_failure(opl_ctx *c, int st, const opl_err *e) {
  opl_ctx_clear_error(c);
  opl_ctx_error(c, st, "%s", e->msg);
  return NULL;
}

/* This rank's part of the residual loss on P > 1 ranks, from its residuals r [1, nl, 1] at the
 * global points [a, a + nl): without causal weighting sum(r^2) / nr; with it
 * (1 / M) sum_i w_i sum_{chunk i here} r^2 / Pc (Pc = nr / M points a chunk; the points after
 * M Pc are left out, as the single-process loss does), w from the global chunk losses L_i (the
 * ranks' sums over their parts of chunk i, added over ranks) or w_given. Fills t->w and t->Lc.
 * Collective: a failure on any rank sets *all_failed and the agreed error on c, NULL returned. */
static opl_tensor *dist_residual_loss(opl_pinn_trainer *t, opl_tensor *r, int64_t a, int64_t nl, double eps,
                                      const double *w_given, int *all_failed) {
  opl_ctx *c = t->ctx;
  const int64_t nr = t->nr;
  opl_tensor *sq = opl_square(c, opl_reshape(c, r, OPL_DIMS(nl)));
  if (!t->cfg.causal) return opl_scale(c, opl_sum(c, sq), 1.0 / (double)nr);
  const int64_t M = t->cfg.chunks, Pc = nr / M, used = M * Pc;
  if (Pc < 1 && !opl_ctx_status(c))
    opl_ctx_error(c, OPL_ERR_ARG, "pinn causal loss: %lld chunks for %lld residuals", (long long)M, (long long)nr);
  double *L = t->Lc;
  memset(L, 0, sizeof(double) * (size_t)M);
  if (!opl_ctx_status(c))
    for (int64_t j = 0; j < nl && a + j < used; j++) L[(a + j) / Pc] += (double)sq->data[j];
  opl_err e = {0};
  int st = opl_ctx_status(c);
  if (st) opl_err_set(&e, st, "%s", opl_ctx_errmsg(c));
  if ((st = opl_dist_agree(st, &e, L, (int)M))) {
    *all_failed = 1;
    return agreed_failure(c, st, &e);
  }
  for (int64_t i = 0; i < M; i++) L[i] /= (double)Pc;
  if (w_given) memcpy(t->w, w_given, sizeof(double) * (size_t)M);
  else opl_pinn_causal_weights(L, M, eps, t->w);
  opl_tensor *W = opl_new(c, OPL_DIMS(nl));
  if (!W) return NULL;
  for (int64_t j = 0; j < nl; j++)
    W->data[j] = a + j < used ? (opl_real)(t->w[(a + j) / Pc] / (double)used) : 0;
  return opl_sum(c, opl_mul(c, sq, W));
}

/* The gradient of loss into the parameters' gradients (zeroed by the caller); on P > 1 ranks
 * summed over ranks, every rank returning the same status. */
static int backward_all(opl_pinn_trainer *t, opl_tensor *loss, opl_err *err) {
  opl_ctx *c = t->ctx;
  if (opl_dist_size() < 2) {
    if (!opl_backward(c, loss)) return OPL_OK;
    int st = opl_ctx_take_error(c, err);
    opl_ctx_clear_error(c);
    return st ? st : OPL_ERR_STATE;
  }
  opl_err be = {0};
  int st = opl_dist_grads_begin(t->dg, c, &be);
  if (!st && opl_backward(c, loss)) {
    st = opl_ctx_take_error(c, &be);
    opl_ctx_clear_error(c);
    if (!st) st = OPL_ERR_STATE;
  }
  int fst = opl_dist_grads_finish(t->dg, c, st ? NULL : &be);
  if ((st = opl_dist_agree(st ? st : fst, &be, NULL, 0))) return opl_err_set(err, st, "%s", be.msg);
  return OPL_OK;
}

/* The checkpoint, written by rank 0 once the ranks' parameters are found equal; every rank
 * returns its status. */
static int save_all(opl_pinn_trainer *t, opl_err *err) {
  char at[64];
  snprintf(at, sizeof at, "pinn: at iteration %lld", (long long)t->iter);
  int st = opl_dist_check_same(&t->model.params, at, err); /* every rank stepped alike */
  if (st) return st;
  st = opl_dist_rank() == 0 ? opl_pinn_trainer_save(t, NULL, err) : OPL_OK;
  return opl_dist_agree(st, err, NULL, 0);
}

/* A stop requested on any rank stops every rank (collective on P > 1 ranks). */
static void agree_stop(opl_pinn_trainer *t) {
  if (opl_dist_size() < 2) return;
  double v = t->stop;
  if (opl_dist_agree(OPL_OK, NULL, &v, 1) || v > 0) t->stop = 1;
}

/* The objective on the current points (see pinn.h) into c's arena; parts into t->last. */
static opl_tensor *build_loss(opl_pinn_trainer *t, const double *w_given) {
  opl_ctx *c = t->ctx;
  const opl_pinn_config *mc = &t->cfg.model;
  const int P = opl_dist_size(), lead = opl_dist_rank() == 0;
  opl_jet_spec s = {opl_pinn_order(t->prob), 1}, s0 = {0, 0};
  /* this rank's share of the window's points (all of them on one process) */
  const int64_t a = t->nr * opl_dist_rank() / P, nl = t->nr * (opl_dist_rank() + 1) / P - a;
  opl_tensor *u = opl_pinn_forward_jet(c, t->fwd, P > 1 ? opl_slice(c, t->pr, 0, a, nl) : t->pr, s);
  opl_tensor *r = opl_pinn_residual_jet(c, mc->problem, u, s);
  opl_tensor *Lr;
  int64_t M = t->cfg.chunks;
  double eps = t->cfg.causal ? t->cfg.eps[t->eps_idx] : NAN;
  int all_failed = 0;
  if (P > 1) {
    if (!(Lr = dist_residual_loss(t, r, a, nl, eps, w_given, &all_failed)) && all_failed) return NULL;
  } else if (t->cfg.causal) {
    Lr = opl_pinn_causal_loss(c, r, M, eps, w_given, t->w, t->Lc);
  } else {
    Lr = opl_mean(c, opl_square(c, r));
  }
  opl_tensor *loss = Lr;
  double lic = 0, lbc = 0;
  if (!mc->hard && lead) { /* u0, or for window k > 0 the previous window's network at t_k */
    opl_tensor *ui = opl_pinn_forward_jet(c, t->fwd, t->pic, s0);
    opl_tensor *Li = opl_mean(c, opl_square(c, opl_sub(c, ui, t->u0ic)));
    if (Li) lic = (double)Li->data[0];
    loss = opl_axpby(c, 1, loss, t->cfg.w_ic, Li);
  }
  int64_t h = t->pbc->shape[0] / 2;
  opl_tensor *Lb = NULL;
  if (lead && !opl_pinn_periodic(t->prob) && !mc->hard) {
    opl_tensor *ub = opl_pinn_forward_jet(c, t->fwd, t->pbc, s0);
    Lb = opl_mean(c, opl_square(c, ub));
  } else if (lead && opl_pinn_periodic(t->prob) && !mc->periodic) {
    opl_jet_spec s1 = {1, 0};
    opl_tensor *ub = opl_pinn_forward_jet(c, t->fwd, t->pbc, s1);
    opl_tensor *d = opl_sub(c, opl_slice(c, ub, 1, 0, h), opl_slice(c, ub, 1, h, h));
    Lb = opl_scale(c, opl_mean(c, opl_square(c, d)), 2);
  }
  if (Lb) {
    lbc = (double)Lb->data[0];
    loss = opl_axpby(c, 1, loss, t->cfg.w_bc, Lb);
  }
  if (P > 1) { /* every rank's status; the objective and its parts summed over ranks */
    opl_err e = {0};
    int st = opl_ctx_status(c);
    if (!st && !loss) st = OPL_ERR_STATE;
    if (st) opl_err_set(&e, st, "%s", opl_ctx_errmsg(c));
    else if (opl_dist_fault("train"))
      st = opl_err_set(&e, OPL_ERR_IO, "pinn: iteration %lld: failure injected by OPL_DIST_FAULT",
                       (long long)(t->iter + 1));
    double v[4] = {st ? 0 : (double)loss->data[0], st ? 0 : (double)Lr->data[0], lic, lbc};
    if ((st = opl_dist_agree(st, &e, v, 4))) return agreed_failure(c, st, &e);
    t->last.loss = v[0], t->last.res = v[1], lic = v[2], lbc = v[3];
  } else {
    if (!loss || opl_ctx_status(c)) return NULL;
    t->last.loss = (double)loss->data[0];
    t->last.res = (double)Lr->data[0];
  }
  t->last.ic = lic;
  t->last.bc = lbc;
  if (t->cfg.causal) {
    double mw = 1;
    for (int64_t i = 0; i < M; i++) mw = fmin(mw, t->w[i]);
    t->last.min_w = mw;
    t->last.eps = eps;
  } else {
    t->last.min_w = t->last.eps = NAN;
  }
  return loss;
}

int opl_pinn_trainer_eval_loss(opl_pinn_trainer *t, opl_pinn_iter_stats *s, opl_err *err) {
  opl_ctx_reset(t->ctx);
  int prev = opl_ctx_set_grad_enabled(t->ctx, 0);
  opl_tensor *loss = build_loss(t, NULL);
  opl_ctx_set_grad_enabled(t->ctx, prev);
  if (!loss) {
    opl_ctx_take_error(t->ctx, err);
    opl_ctx_clear_error(t->ctx);
    return err ? err->status : OPL_ERR_STATE;
  }
  if (s) {
    *s = t->last;
    s->window = t->win;
  }
  return OPL_OK;
}

/* ---------------------------------------------------------------- checkpoints */

static void eps_string(const opl_pinn_train_config *c, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  for (int i = 0; i < c->neps && n < cap; i++) n += (size_t)snprintf(buf + n, cap - n, "%s%.17g", i ? "," : "", c->eps[i]);
}

/* The training attributes (kv[0..), strings in sbuf [2][512]); returns the count. */
static int train_meta(const opl_pinn_trainer *t, opl_kv *kv, char (*sbuf)[512]) {
  const opl_pinn_train_config *c = &t->cfg;
  int n = 0;
  eps_string(c, sbuf[0], 512);
  kv[n++] = (opl_kv)OPL_KVS("pinn_train.optimizer", opl_pinn_opt_name(c->optimizer));
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.adam_iters", c->adam_iters);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.lbfgs_iters", c->lbfgs_iters);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.lbfgs_history", c->lbfgs_history);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.points", c->points);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.boundary_points", c->boundary_points);
  kv[n++] = (opl_kv)OPL_KVS("pinn_train.collocation", opl_pinn_colloc_name(c->colloc));
  kv[n++] = (opl_kv)OPL_KVD("pinn_train.lr", c->lr);
  kv[n++] = (opl_kv)OPL_KVD("pinn_train.lr_decay", c->lr_decay);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.decay_steps", c->decay_steps);
  kv[n++] = (opl_kv)OPL_KVD("pinn_train.w_ic", c->w_ic);
  kv[n++] = (opl_kv)OPL_KVD("pinn_train.w_bc", c->w_bc);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.causal", c->causal);
  kv[n++] = (opl_kv)OPL_KVS("pinn_train.eps", sbuf[0]);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.chunks", c->chunks);
  kv[n++] = (opl_kv)OPL_KVD("pinn_train.delta", c->delta);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.seed", (int64_t)c->seed);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.checkpoint_every", c->checkpoint_every);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.iteration", t->iter);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.eps_index", t->eps_idx);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.lbfgs_done", t->lbfgs_done);
  kv[n++] = (opl_kv)OPL_KVI("pinn_train.window", t->win);
  kv[n++] = (opl_kv)OPL_KVS("task", "pinn");
  return n;
}

/* Move a fresh run's log from its temporary name to its own (fsync, rename); a no-op once done. */
static int csv_commit(opl_pinn_trainer *t, opl_err *err) {
  if (!t->csv_pending) return OPL_OK;
  if (fflush(t->csvf) != 0 || fsync(fileno(t->csvf)) != 0 || rename(t->csv_pending, t->csv) != 0)
    return opl_err_set(err, OPL_ERR_IO, "pinn: cannot move '%s' to '%s': %s", t->csv_pending, t->csv, strerror(errno));
  free(t->csv_pending);
  t->csv_pending = NULL;
  return OPL_OK;
}

int opl_pinn_trainer_save(opl_pinn_trainer *t, const char *path, opl_err *err) {
  if (!path) path = t->ckpt;
  if (!path) return opl_err_set(err, OPL_ERR_ARG, "pinn: no checkpoint path");
  opl_kv kv[OPL_MODEL_META_MAX + 32];
  char sbuf[2][512];
  int n = t->model.ops->to_meta(t->model.self, kv);
  n += train_meta(t, kv + n, sbuf);
  if (t->csvf) fflush(t->csvf);
  /* A fresh run's log takes its name BEFORE the checkpoint it describes is written (as opl train
   * fno's, train/checkpoint.c): a process killed between the two leaves a log whose rows a
   * resume from an older checkpoint trims, never a checkpoint whose log is still under the dead
   * process's temporary name (a resume would start a new log without the rows before). */
  if (t->ckpt && !strcmp(path, t->ckpt)) {
    int st = csv_commit(t, err);
    if (st) return st;
  }
  return opl_checkpoint_save(path, &t->model.params, &t->shadow, kv, n, err);
}

static int parse_eps(const char *s, double *eps, int *neps) {
  int n = 0;
  const char *p = s;
  while (p && *p) {
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno || n >= OPL_PINN_MAX_EPS) return -1;
    eps[n++] = v;
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  *neps = n;
  return n > 0 ? 0 : -1;
}

int opl_pinn_read_config(const char *path, opl_pinn_train_config *cfg, int64_t *iter, opl_err *err) {
  opl_kv *kv = NULL;
  int n = 0, st = opl_checkpoint_read_meta(path, &kv, &n, err);
  if (st) return st;
  opl_pinn_config mc;
  st = opl_pinn_kind.config_from_meta(kv, n, &mc, err);
  if (!st) {
    *cfg = opl_pinn_train_defaults(mc.problem);
    cfg->model = mc;
    const char *need[] = {"pinn_train.optimizer", "pinn_train.adam_iters", "pinn_train.lbfgs_iters",
                          "pinn_train.lbfgs_history", "pinn_train.points", "pinn_train.boundary_points",
                          "pinn_train.collocation", "pinn_train.lr", "pinn_train.lr_decay", "pinn_train.decay_steps",
                          "pinn_train.w_ic", "pinn_train.w_bc", "pinn_train.causal", "pinn_train.eps",
                          "pinn_train.chunks", "pinn_train.delta", "pinn_train.seed", "pinn_train.checkpoint_every",
                          "pinn_train.iteration"};
    for (size_t i = 0; i < sizeof need / sizeof need[0] && !st; i++)
      if (!opl_kv_find(kv, n, need[i]))
        st = opl_err_set(err, OPL_ERR_NOTFOUND, "pinn: '%s' has no attribute '%s' (not a checkpoint of opl train pinn)",
                         path, need[i]);
    if (!st) {
#define KI(k) (opl_kv_find(kv, n, k)->i)
#define KD(k) (opl_kv_find(kv, n, k)->type == OPL_KV_INT ? (double)opl_kv_find(kv, n, k)->i : opl_kv_find(kv, n, k)->d)
#define KS(k) (opl_kv_find(kv, n, k)->type == OPL_KV_STR ? opl_kv_find(kv, n, k)->s : "")
      cfg->optimizer = opl_pinn_opt_find(KS("pinn_train.optimizer"));
      cfg->adam_iters = KI("pinn_train.adam_iters");
      cfg->lbfgs_iters = KI("pinn_train.lbfgs_iters");
      cfg->lbfgs_history = (int)KI("pinn_train.lbfgs_history");
      cfg->points = KI("pinn_train.points");
      cfg->boundary_points = KI("pinn_train.boundary_points");
      cfg->colloc = opl_pinn_colloc_find(KS("pinn_train.collocation"));
      cfg->lr = KD("pinn_train.lr");
      cfg->lr_decay = KD("pinn_train.lr_decay");
      cfg->decay_steps = KI("pinn_train.decay_steps");
      cfg->w_ic = KD("pinn_train.w_ic");
      cfg->w_bc = KD("pinn_train.w_bc");
      cfg->causal = (int)KI("pinn_train.causal");
      cfg->chunks = KI("pinn_train.chunks");
      cfg->delta = KD("pinn_train.delta");
      cfg->seed = (uint64_t)KI("pinn_train.seed");
      cfg->checkpoint_every = KI("pinn_train.checkpoint_every");
      if (iter) *iter = KI("pinn_train.iteration");
      if (parse_eps(KS("pinn_train.eps"), cfg->eps, &cfg->neps))
        st = opl_err_set(err, OPL_ERR_FORMAT, "pinn: '%s': attribute 'pinn_train.eps' is not a list of numbers", path);
#undef KI
#undef KD
#undef KS
    }
  }
  opl_kv_free(&kv, n);
  return st;
}

/* ---------------------------------------------------------------- metrics log */

static const char *csv_header = "iteration,optimizer,loss,residual,ic,bc,min_w,eps,lr,seconds,window\n";

static void csv_row(opl_pinn_trainer *t, const opl_pinn_iter_stats *s) {
  if (!t->csvf) return;
  fprintf(t->csvf, "%lld,%s,%.9g,%.9g,%.9g,%.9g,", (long long)s->iter, opl_pinn_opt_name(s->optimizer), s->loss, s->res,
          s->ic, s->bc);
  if (isnan(s->min_w)) fprintf(t->csvf, ",,");
  else fprintf(t->csvf, "%.9g,%.9g,", s->min_w, s->eps);
  if (isnan(s->lr)) fprintf(t->csvf, ",");
  else fprintf(t->csvf, "%.9g,", s->lr);
  fprintf(t->csvf, "%.3f,%d\n", s->seconds, s->window);
}

/* Open the log: a fresh run writes the header to "<csv>.tmp.<pid>", moved to the log's name by
 * csv_commit just before the run's first checkpoint is written (as the log of opl train fno,
 * train/metrics.h), so a run that fails before it leaves an older log of that name as it was and
 * none of its own; a resumed run keeps the rows up to t->iter (rewritten atomically) and appends. */
static int csv_open(opl_pinn_trainer *t, int resumed, opl_err *err) {
  if (!t->csv || !*t->csv) return OPL_OK;
  if (!resumed) {
    size_t len = strlen(t->csv) + 32;
    if (!(t->csv_pending = malloc(len))) return opl_err_set(err, OPL_ERR_NOMEM, "pinn: out of memory");
    snprintf(t->csv_pending, len, "%s.tmp.%ld", t->csv, (long)getpid());
    t->csvf = fopen(t->csv_pending, "w");
    if (!t->csvf) return opl_err_set(err, OPL_ERR_IO, "pinn: cannot write '%s': %s", t->csv_pending, strerror(errno));
    fputs(csv_header, t->csvf);
    return OPL_OK;
  }
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", t->csv, (long)getpid());
  FILE *in = fopen(t->csv, "r"), *out = fopen(tmp, "w");
  if (!out) {
    if (in) fclose(in);
    return opl_err_set(err, OPL_ERR_IO, "pinn: cannot write '%s': %s", tmp, strerror(errno));
  }
  fputs(csv_header, out);
  char *line = NULL;
  size_t cap = 0;
  int first = 1;
  while (in && getline(&line, &cap, in) > 0) {
    if (first) {
      first = 0;
      continue;
    }
    long long it = strtoll(line, NULL, 10);
    if (it >= 1 && it <= t->iter) fputs(line, out);
  }
  free(line);
  if (in) fclose(in);
  if (fclose(out) || rename(tmp, t->csv)) {
    remove(tmp);
    return opl_err_set(err, OPL_ERR_IO, "pinn: cannot replace '%s': %s", t->csv, strerror(errno));
  }
  t->csvf = fopen(t->csv, "a");
  if (!t->csvf) return opl_err_set(err, OPL_ERR_IO, "pinn: cannot append to '%s': %s", t->csv, strerror(errno));
  return OPL_OK;
}

int opl_pinn_trainer_resume(opl_pinn_trainer *t, const char *path, opl_err *err) {
  opl_pinn_train_config c;
  int64_t it = 0;
  int st = opl_pinn_read_config(path, &c, &it, err);
  if (st) return st;
  const opl_pinn_train_config *m = &t->cfg;
  char a[512], b[512];
  eps_string(&c, a, sizeof a);
  eps_string(m, b, sizeof b);
#define SAME(field, name)                                                                                     \
  if (c.field != m->field)                                                                                    \
    return opl_err_set(err, OPL_ERR_ARG, "pinn: '%s' was trained with %s = %g, this run has %g", path, name, \
                       (double)c.field, (double)m->field);
  SAME(model.problem, "problem") SAME(model.arch, "arch") SAME(model.depth, "depth") SAME(model.width, "width")
  SAME(model.periodic, "periodic") SAME(model.nfreq, "nfreq") SAME(model.hard, "hard")
  SAME(optimizer, "optimizer") SAME(lbfgs_history, "lbfgs_history") SAME(points, "points")
  SAME(boundary_points, "boundary_points") SAME(colloc, "collocation") SAME(lr, "lr") SAME(lr_decay, "lr_decay")
  SAME(decay_steps, "decay_steps") SAME(w_ic, "w_ic") SAME(w_bc, "w_bc") SAME(causal, "causal")
  SAME(seed, "seed") SAME(checkpoint_every, "checkpoint_every") SAME(model.windows, "windows")
  if (m->optimizer == OPL_PINN_ADAM_LBFGS) { SAME(adam_iters, "adam_iters") }
  if (m->causal) {
    SAME(chunks, "chunks") SAME(delta, "delta")
    if (strcmp(a, b))
      return opl_err_set(err, OPL_ERR_ARG, "pinn: '%s' was trained with eps %s, this run has %s", path, a, b);
  }
#undef SAME
  /* the checkpoint holds the Adam state of the window of its last iteration */
  int64_t per = window_iters(m);
  int kf = it > 0 ? (int)((it - 1) / per) : 0;
  if (kf >= m->model.windows) kf = m->model.windows - 1;
  if ((st = window_optim(t, kf, err))) return st;
  st = opl_checkpoint_load(path, &t->model.params, &t->shadow, err);
  if (st) return st;
  opl_kv *kv = NULL;
  int n = 0;
  if ((st = opl_checkpoint_read_meta(path, &kv, &n, err))) return st;
  const opl_kv *ei = opl_kv_find(kv, n, "pinn_train.eps_index"), *ld = opl_kv_find(kv, n, "pinn_train.lbfgs_done");
  t->eps_idx = ei && ei->type == OPL_KV_INT && ei->i >= 0 && ei->i < m->neps ? (int)ei->i : 0;
  t->lbfgs_done = ld && ld->type == OPL_KV_INT ? (int)ld->i : 0;
  opl_kv_free(&kv, n);
  t->iter = it;
  t->frozen = 0;
  return window_data(t, kf, it + 1, err); /* its points (the collocation set of the next iteration) */
}

int64_t opl_pinn_trainer_iter(const opl_pinn_trainer *t) { return t->iter; }

int opl_pinn_trainer_dist_stats(const opl_pinn_trainer *t, opl_dist_grads_stats *s) {
  if (!t || !t->dg || !s) return 0;
  opl_dist_grads_get_stats(t->dg, s);
  dist_stats_add(s, &t->dg_done);
  return 1;
}
const opl_model *opl_pinn_trainer_model(const opl_pinn_trainer *t) { return &t->model; }

/* ---------------------------------------------------------------- optimization */

static double adam_lr(const opl_pinn_trainer *t, int64_t k) {
  return t->cfg.lr * pow(t->cfg.lr_decay, (double)(k / t->cfg.decay_steps));
}

/* One Adam iteration (iteration t->iter + 1). */
static int adam_step(opl_pinn_trainer *t, opl_pinn_iter_stats *s, opl_err *err) {
  int64_t it = t->iter + 1;
  if (t->cfg.colloc == OPL_COLLOC_RESAMPLE) collocate(t, it);
  opl_ctx_reset(t->ctx);
  opl_params_zero_grad(&t->wp);
  opl_tensor *loss = build_loss(t, NULL);
  if (!loss) {
    opl_ctx_take_error(t->ctx, err);
    opl_ctx_clear_error(t->ctx);
    return err ? err->status : OPL_ERR_STATE;
  }
  if (!isfinite(t->last.loss))
    return opl_err_set(err, OPL_ERR_NONFINITE, "pinn: loss is %g at iteration %lld (Adam)", t->last.loss, (long long)it);
  int bst = backward_all(t, loss, err);
  if (bst) return bst;
  opl_err e2;
  if (opl_params_check_finite_grad(&t->wp, &e2))
    return opl_err_set(err, OPL_ERR_NONFINITE, "pinn: iteration %lld (Adam): %s", (long long)it, opl_err_text(&e2));
  double lr = adam_lr(t, it - 1 - (int64_t)t->win * window_iters(&t->cfg)); /* the schedule restarts per window */
  if (opl_optim_set_lr(t->adam, lr, err) || opl_optim_step(t->adam, err)) return err ? err->status : OPL_ERR_STATE;
  t->iter = it;
  *s = t->last;
  s->iter = it;
  s->optimizer = OPL_PINN_ADAM;
  s->lr = lr;
  s->window = t->win;
  if (t->cfg.causal && t->last.min_w > t->cfg.delta && t->eps_idx + 1 < t->cfg.neps) t->eps_idx++;
  return OPL_OK;
}

static void params_to_x(opl_pinn_trainer *t, double *x) {
  int64_t k = 0;
  for (int i = 0; i < t->wp.n; i++) {
    const opl_tensor *p = t->wp.t[i];
    for (int64_t j = 0; j < p->numel; j++) x[k++] = (double)p->data[j];
  }
}

static void x_to_params(opl_pinn_trainer *t, const double *x) {
  int64_t k = 0;
  for (int i = 0; i < t->wp.n; i++) {
    opl_tensor *p = t->wp.t[i];
    for (int64_t j = 0; j < p->numel; j++) p->data[j] = (opl_real)x[k++];
  }
}

/* L-BFGS objective: the loss with the frozen causal weights, its gradient in g. */
static double lbfgs_f(void *user, const double *x, double *g, int n) {
  opl_pinn_trainer *t = user;
  if (t->stop) return NAN;
  x_to_params(t, x);
  opl_ctx_reset(t->ctx);
  opl_params_zero_grad(&t->wp);
  opl_tensor *loss = build_loss(t, t->cfg.causal ? t->wfrozen : NULL);
  if (!loss || !isfinite(t->last.loss) || backward_all(t, loss, NULL)) {
    opl_ctx_clear_error(t->ctx);
    return NAN;
  }
  int64_t k = 0;
  for (int i = 0; i < t->wp.n && k < n; i++) {
    const opl_tensor *p = t->wp.t[i];
    for (int64_t j = 0; j < p->numel; j++) g[k++] = (double)p->grad[j];
  }
  for (int i = 0; i < n; i++)
    if (!isfinite(g[i])) return NAN;
  return t->last.loss;
}

static void lbfgs_monitor(void *user, int iter, const double *x, double f, const double *g, int n) {
  (void)x, (void)g, (void)n;
  opl_pinn_trainer *t = user;
  if (iter == 0) return;
  opl_pinn_iter_stats s = t->last;
  s.iter = t->seg_start + iter;
  s.total = total_iters(&t->cfg);
  s.optimizer = OPL_PINN_LBFGS;
  s.window = t->win;
  s.loss = f;
  s.lr = NAN;
  s.seconds = now_s() - t->t0;
  csv_row(t, &s);
  if (t->cb && t->cb(&s, t->cb_user)) t->stop = 1;
  agree_stop(t);
}

/* One L-BFGS segment of at most `len` iterations from the current parameters. *ran gets the
 * accepted steps; *ended = 1 when the solver stopped before len (no Wolfe step found). */
static int lbfgs_segment(opl_pinn_trainer *t, int64_t len, int64_t *ran, int *ended, opl_err *err) {
  opl_lbfgs *s = opl_lbfgs_create((int)t->np, t->cfg.lbfgs_history, err);
  if (!s) return err ? err->status : OPL_ERR_NOMEM;
  opl_lbfgs_set_max_iter(s, len);
  opl_lbfgs_set_gtol(s, 0);
  /* the loss's rounding level: r sums terms up to ~1e4 times its size near a steep front (u_t,
   * u u_x, nu u_xx), so in single precision the loss is uncertain to ~2e-5 of its value; the
   * line search then judges steps by the gradient (approximate Wolfe conditions, core/lbfgs.h) */
  opl_lbfgs_set_fnoise(s, 512 * OPL_REAL_EPS);
  opl_lbfgs_set_monitor(s, lbfgs_monitor, t);
  /* resampled collocation: L-BFGS minimizes on the set drawn for its phase's first iteration */
  if (t->cfg.colloc == OPL_COLLOC_RESAMPLE) {
    int64_t nadam = t->cfg.optimizer != OPL_PINN_LBFGS ? t->cfg.adam_iters : 0;
    collocate(t, (int64_t)t->win * window_iters(&t->cfg) + nadam + 1);
  }
  /* the causal weights of this segment: those of its start point, the eps annealed first */
  if (t->cfg.causal) {
    opl_pinn_iter_stats st;
    int rc = opl_pinn_trainer_eval_loss(t, &st, err);
    while (!rc && st.min_w > t->cfg.delta && t->eps_idx + 1 < t->cfg.neps) {
      t->eps_idx++;
      rc = opl_pinn_trainer_eval_loss(t, &st, err);
    }
    if (rc) {
      opl_lbfgs_free(&s);
      return rc;
    }
    memcpy(t->wfrozen, t->w, (size_t)t->cfg.chunks * sizeof(double));
  }
  params_to_x(t, t->xv);
  t->seg_start = t->iter;
  opl_err e2;
  int rc = opl_lbfgs_run(s, lbfgs_f, t, t->xv, NULL, &e2);
  opl_lbfgs_stats st;
  opl_lbfgs_get_stats(s, &st);
  opl_lbfgs_free(&s);
  x_to_params(t, t->xv);
  *ran = st.iterations;
  *ended = st.iterations < len;
  if (rc == OPL_ERR_NONFINITE && !t->stop)
    return opl_err_set(err, OPL_ERR_NONFINITE, "pinn: L-BFGS at iteration %lld: %s", (long long)t->iter, e2.msg);
  return OPL_OK;
}

/* The iterations of window k from t->iter (its first one, or a resumed point inside it): Adam,
 * then L-BFGS in segments of checkpoint_every iterations, each checkpointed. Returns with t->iter
 * at the window's end, or earlier when stopped or when L-BFGS made no step. */
static int run_window(opl_pinn_trainer *t, int k, opl_err *err) {
  const opl_pinn_train_config *c = &t->cfg;
  int64_t total = total_iters(c), per = window_iters(c), ws = (int64_t)k * per, we = ws + per;
  int64_t nadam = c->optimizer != OPL_PINN_LBFGS ? c->adam_iters : 0, every = c->checkpoint_every;
  int rc;
  /* Adam */
  while (t->iter < ws + nadam && !t->stop) {
    opl_pinn_iter_stats s;
    if ((rc = adam_step(t, &s, err))) return rc;
    s.total = total;
    s.seconds = now_s() - t->t0;
    csv_row(t, &s);
    if (t->cb && t->cb(&s, t->cb_user)) t->stop = 1;
    agree_stop(t);
    if (t->ckpt && ((t->iter - ws) % every == 0 || t->iter == ws + nadam || t->stop) && (rc = save_all(t, err)))
      return rc;
  }
  if (t->stop) return OPL_OK;
  /* L-BFGS in segments of `every` iterations, each checkpointed */
  while (c->optimizer != OPL_PINN_ADAM && !t->lbfgs_done && t->iter < we && !t->stop) {
    int64_t done_in_phase = t->iter - ws - nadam, len = every - done_in_phase % every;
    if (len > we - t->iter) len = we - t->iter;
    int64_t ran = 0;
    int ended = 0;
    if ((rc = lbfgs_segment(t, len, &ran, &ended, err))) return rc;
    if (t->stop) return OPL_OK; /* interrupted inside a segment: the last checkpoint stands */
    t->iter += ran;
    if (ended && ran == 0) t->lbfgs_done = 1; /* no step at all: converged as far as it can */
    if (t->ckpt && (rc = save_all(t, err))) return rc;
  }
  return OPL_OK;
}

int opl_pinn_trainer_run(opl_pinn_trainer *t, opl_pinn_progress_fn cb, void *user, opl_err *err) {
  int rc = opl_dist_rank() == 0 ? csv_open(t, t->iter > 0, err) : OPL_OK; /* rank 0 alone writes */
  if ((rc = opl_dist_agree(rc, err, NULL, 0))) return rc;
  t->t0 = now_s();
  t->cb = cb;
  t->cb_user = user;
  t->stop = 0;
  const opl_pinn_train_config *c = &t->cfg;
  int64_t total = total_iters(c), per = window_iters(c);
  while (t->iter < total && !t->stop) {
    int k = (int)(t->iter / per);
    if (k != t->win && (rc = opl_dist_agree(window_enter(t, k, err), err, NULL, 0))) return rc;
    if ((rc = run_window(t, k, err))) return rc;
    if (t->stop) break;
    if (t->iter < (int64_t)(k + 1) * per) {
      /* L-BFGS ended window k early: the run ends there in the last window (as a run of one
       * window does); otherwise the next window starts at its own first iteration */
      if (k >= c->model.windows - 1 || !t->lbfgs_done) break;
      t->iter = (int64_t)(k + 1) * per;
      if (t->ckpt && (rc = save_all(t, err))) return rc;
    }
  }
  if (t->csvf) fflush(t->csvf);
  /* a run without a checkpoint file: its log, now that it is complete */
  return opl_dist_agree(csv_commit(t, err), err, NULL, 0);
}

/* ---------------------------------------------------------------- prediction */

int opl_pinn_predict_grid(const opl_model *m, int64_t nx, int64_t nt, double *x, double *t, double *u, opl_err *err) {
  if (!m || !m->ops || strcmp(m->ops->name, "pinn"))
    return opl_err_set(err, OPL_ERR_ARG, "pinn: the model is not a PINN (kind '%s')", m && m->ops ? m->ops->name : "none");
  if (nx < 2 || nt < 2) return opl_err_set(err, OPL_ERR_ARG, "pinn: grid %lld x %lld, expected at least 2 x 2", (long long)nt, (long long)nx);
  const opl_pinn *net = m->self;
  const opl_pinn_problem *p = net->prob;
  for (int64_t j = 0; j < nx; j++) x[j] = j == nx - 1 ? p->x1 : p->x0 + (p->x1 - p->x0) * (double)j / (double)(nx - 1);
  for (int64_t i = 0; i < nt; i++) t[i] = i == nt - 1 ? p->T : p->T * (double)i / (double)(nt - 1);
  opl_ctx *c = opl_ctx_new(0);
  if (!c) return opl_err_set(err, OPL_ERR_NOMEM, "pinn: out of memory");
  opl_ctx_set_grad_enabled(c, 0);
  int64_t n = nx * nt, B = 8192;
  opl_jet_spec s0 = {0, 0};
  int st = OPL_OK;
  for (int64_t a = 0; a < n && !st; a += B) {
    int64_t b = a + B < n ? B : n - a;
    opl_ctx_reset(c);
    opl_tensor *pts = opl_new(c, OPL_DIMS(b, 2));
    if (!pts) break;
    for (int64_t k = 0; k < b; k++) {
      pts->data[2 * k] = (opl_real)t[(a + k) / nx];
      pts->data[2 * k + 1] = (opl_real)x[(a + k) % nx];
    }
    opl_tensor *y = opl_pinn_forward_jet(c, net, pts, s0);
    if (!y) break;
    for (int64_t k = 0; k < b; k++) u[a + k] = (double)y->data[k];
  }
  if (opl_ctx_status(c)) st = opl_ctx_take_error(c, err);
  opl_ctx_free(&c);
  return st;
}
