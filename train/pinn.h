/* opl train — physics-informed training of a coordinate network (operators/pinn.h) on one of
 * its problems: residual, initial and boundary losses, collocation, Adam then L-BFGS, causal
 * weighting, metrics and resumable checkpoints.
 *
 * Objective (mean squares; Raissi, Perdikaris, Karniadakis, J. Comput. Phys. 378 (2019) 686):
 *     L = L_r + w_ic L_ic + w_bc L_bc,
 *   L_r   the mean of r^2 over the collocation points, r the residual of the problem computed
 *         from the network's jet (u, u_x, .., u_t in one forward, core/jet.h):
 *           burgers     r = u_t + u u_x - nu u_xx
 *           allen-cahn  r = u_t - 1e-4 u_xx + 5 u^3 - 5 u
 *           kdv         r = u_t + u u_x + 0.022^2 u_xxx;
 *   L_ic  the mean of (u(0, x) - u0(x))^2 over the initial points;
 *   L_bc  Dirichlet problems: the mean of u(t, x0)^2 and u(t, x1)^2 over the boundary points;
 *         periodic problems without the periodic embedding: the mean of (u(t, x0) - u(t, x1))^2
 *         + (u_x(t, x0) - u_x(t, x1))^2; 0 when the network satisfies the condition exactly
 *         (periodic embedding, or hard constraints for L_ic and a Dirichlet L_bc).
 * The initial and boundary points are drawn once from the seed: half of boundary_points at
 * t = 0 with x uniform, a quarter at each end of the interval with t uniform (Raissi's setting
 * draws its 100 points at random from the initial and boundary data).
 *
 * Collocation (points sorted by time, deterministic by seed and iteration):
 *   grid      a uniform nt x nx grid of cell centres, nt = floor(sqrt(points)), nx = points / nt;
 *   lhs       Latin hypercube: point i has t in stratum i and x in stratum pi(i), pi a random
 *             permutation (McKay, Beckman, Conover, Technometrics 21 (1979) 239), drawn once;
 *   resample  a new Latin hypercube every iteration (L-BFGS keeps the set of its first step).
 *
 * Causal weighting (Wang, Sankaran, Perdikaris, "Respecting causality is all you need for
 * training physics-informed neural networks", 2022; implemented from the paper's equations
 * only — the authors' CausalPINNs README states that the causal training algorithm is patented
 * by the University of Pennsylvania for commercial use): the collocation points, sorted by
 * time, are cut into M chunks of equal size, L(t_i) the mean r^2 of chunk i, and
 *     L_r = (1/M) sum_i w_i L(t_i),   w_i = exp(-eps sum_{k<i} L(t_k)),
 * the weights computed from the current losses without gradient (constants of the step). eps
 * runs through a list (e.g. 1e-2, 1e-1, 1, 1e1, 1e2), moving to the next value after an
 * iteration whose min_i w_i exceeds delta = 0.99; a list of one value is the fixed-eps chunked
 * variant of jaxpi. During L-BFGS the weights are frozen for each run of the solver (computed at
 * its start point), so that it minimizes one fixed function.
 *
 * Optimizers: Adam (core/optim.h), lr * decay^floor(k / decay_steps) at iteration k; L-BFGS
 * (core/lbfgs.h) in double on the flattened parameters, told the loss's rounding level (512
 * units in the last place of opl_real) so that near a minimum it judges steps by the gradient
 * (approximate Wolfe conditions). adam+lbfgs runs adam_iters Adam iterations, then up to
 * lbfgs_iters L-BFGS iterations.
 *
 * Time marching (model.windows = W > 1; operators/pinn.h; Wight & Zhao 2020, and Wang, Sankaran
 * & Perdikaris 2022 with causal weighting inside each window): the windows [t_k, t_{k+1}] are
 * trained in sequence, window k for the iterations k P + 1 .. (k + 1) P, P = adam_iters +
 * lbfgs_iters (an L-BFGS phase that stops early ends its window there), with only window k's
 * network as unknowns, a fresh Adam state and learning-rate schedule, and eps from the start of
 * its list. Its points are those above mapped linearly from [0, T] onto the window (fixed sets:
 * draw k); its initial loss compares the network at (t_k, x) with the previous window's network
 * there (window 0: u0), evaluated once when the window starts. Checkpoints hold every window
 * and the Adam state of the window being trained; a resume repeats the uninterrupted run.
 *
 * Checkpoints (one HDF5 file, also a model file: opl_model_load reads it): /model, /optim (Adam's
 * state), the model's attributes and every training setting, the iteration, the index of eps in
 * its list and whether L-BFGS has stopped. Written atomically every checkpoint_every iterations,
 * at the switch from Adam to L-BFGS and at the end. L-BFGS runs in segments of checkpoint_every
 * iterations, each starting with an empty history, so that a run resumed from any checkpoint
 * repeats exactly what the uninterrupted run did: same thread count, same bits. A segment that
 * stops before its budget (no Wolfe step found, which in single precision happens when the loss
 * nears its rounding level) is followed by a fresh segment from the point reached (a restart with
 * an empty history); a segment that makes no step at all ends the L-BFGS phase.
 *
 * Metrics: one CSV row per iteration (iteration, optimizer, loss, residual, ic, bc, min_w, eps,
 * lr, seconds, window (0-based)) in the csv file; L-BFGS rows give the parts of the accepted point's evaluation.
 * min_w and eps are empty without causal weighting. A fresh run writes "<csv>.tmp.<pid>" and
 * renames it to the csv file just before its first checkpoint is written (at the end of a run
 * without one), so a run that fails before that leaves an older file of that name untouched and
 * no log of its own.
 *
 * Several ranks (mpirun, core/dist.h): the collocation set is the same at any number of ranks P;
 * each rank evaluates the residual on its contiguous share, rank 0 the initial and boundary
 * terms, the objective and gradients are summed over ranks (normalized by the global counts),
 * the causal weights computed from the global chunk losses; every rank holds the same parameters
 * and takes the same Adam / L-BFGS steps, rank 0 alone writes the checkpoint and the CSV, a
 * failure on one rank stops all with its message. P = 1 and P = 2 agree up to the order of the
 * additions; with time windows likewise for every window (its points shared, the sums over its
 * parameters). More ranks than collocation points is refused. There opl_pinn_trainer_new, _resume,
 * _run and _eval_loss are collective (every rank calls them, in the same order); _save writes
 * from the rank that calls it. Nothing here prints. */
#ifndef OPL_TRAIN_PINN_H
#define OPL_TRAIN_PINN_H

#include <stdint.h>
#include "core/dist.h"
#include "core/jet.h"
#include "operators/pinn.h"

typedef enum { OPL_PINN_ADAM = 0, OPL_PINN_LBFGS = 1, OPL_PINN_ADAM_LBFGS = 2, OPL_PINN_OPT_COUNT } opl_pinn_opt;
typedef enum { OPL_COLLOC_GRID = 0, OPL_COLLOC_LHS = 1, OPL_COLLOC_RESAMPLE = 2, OPL_COLLOC_COUNT } opl_pinn_colloc;

/* "adam", "lbfgs", "adam+lbfgs" / "grid", "lhs", "resample"; and back (-1 when unknown). */
const char *opl_pinn_opt_name(int opt);
int opl_pinn_opt_find(const char *name);
const char *opl_pinn_colloc_name(int kind);
int opl_pinn_colloc_find(const char *name);

#define OPL_PINN_MAX_EPS 16

typedef struct opl_pinn_train_config {
  opl_pinn_config model;
  int optimizer;              /* opl_pinn_opt */
  int64_t adam_iters;         /* Adam iterations (adam, adam+lbfgs), >= 1 */
  int64_t lbfgs_iters;        /* L-BFGS iterations at most (lbfgs, adam+lbfgs), >= 1 */
  int lbfgs_history;          /* correction pairs, >= 1 */
  int64_t points;             /* collocation points, >= 1 (>= chunks when causal) */
  int64_t boundary_points;    /* initial + boundary points, >= 4 */
  int colloc;                 /* opl_pinn_colloc */
  double lr, lr_decay;        /* Adam: lr > 0, decay in (0, 1] */
  int64_t decay_steps;        /* >= 1 */
  double w_ic, w_bc;          /* loss weights, >= 0 */
  int causal;                 /* 1: causal weighting of the residual */
  int neps;                   /* 1..OPL_PINN_MAX_EPS values of eps (> 0, causal only) */
  double eps[OPL_PINN_MAX_EPS];
  int64_t chunks;             /* M >= 1 time chunks (causal only) */
  double delta;               /* move to the next eps when min w > delta, in (0, 1) */
  uint64_t seed;
  const char *checkpoint;     /* path or NULL */
  int64_t checkpoint_every;   /* >= 1 */
  const char *csv;            /* metrics path, NULL: beside the checkpoint (.csv); "": none */
} opl_pinn_train_config;

/* Defaults for a problem: its default model, adam+lbfgs with 1000 + 1000 iterations, 10
 * history pairs, 10000 lhs points, 100 boundary points, lr 1e-3 decayed by 0.9 every 5000,
 * weights 1, no causal weighting (eps 1e-2 1e-1 1 1e1 1e2, 32 chunks, delta 0.99 when set),
 * seed 0, a checkpoint every 1000 iterations. */
opl_pinn_train_config opl_pinn_train_defaults(int problem);
/* OPL_OK, or OPL_ERR_ARG naming the first bad field and its value. */
int opl_pinn_train_check(const opl_pinn_train_config *cfg, opl_err *err);

/* ---------------------------------------------------------------- pieces (tested alone) */

/* The residual of problem id (pde/pinn_problems.h's form) from the network's jet u [K, N, 1] of
 * spec s (s.nt = 1, s.nx >= opl_pinn_order) -> r [1, N, 1], differentiable. Sticky errors in c. */
opl_tensor *opl_pinn_residual_jet(opl_ctx *c, int problem, opl_tensor *u, opl_jet_spec s);

/* Causal weights: w[i] = exp(-eps sum_{k<i} L[k]), i < M (w[0] = 1). */
void opl_pinn_causal_weights(const double *L, int64_t M, double eps, double *w);

/* The causally weighted mean of r^2 over M chunks: r [1, N, 1] with N = M P (points sorted by
 * time) -> scalar (1/M) sum_i w_i L_i, L_i the mean of r^2 over chunk i. w_given [M] (frozen
 * weights) or NULL: computed from the current L with eps; the weights used go to w_out [M]
 * (may be NULL) and the chunk losses to L_out [M] (may be NULL). The weights are constants: no
 * gradient flows through them. */
opl_tensor *opl_pinn_causal_loss(opl_ctx *c, opl_tensor *r, int64_t M, double eps, const double *w_given, double *w_out,
                                 double *L_out);

/* Collocation points of problem id into pts [n, 2] (t, x), sorted by t: kind grid or lhs
 * (resample draws as lhs); deterministic in (seed, draw). Returns the number written (grid:
 * nt nx <= n). */
int64_t opl_pinn_collocation(int problem, int kind, int64_t n, uint64_t seed, uint64_t draw, opl_real *pts);

/* ---------------------------------------------------------------- the trainer */

typedef struct opl_pinn_iter_stats {
  int64_t iter;             /* 1-based iteration just done */
  int64_t total;            /* iterations planned (adam + lbfgs) */
  int optimizer;            /* OPL_PINN_ADAM or OPL_PINN_LBFGS */
  double loss, res, ic, bc; /* objective and its parts */
  double min_w, eps;        /* causal: smallest weight and eps in use; else NaN */
  double lr;                /* Adam's learning rate (NaN for L-BFGS) */
  int window;               /* time window being trained, 0-based (0 with one window) */
  double seconds;           /* wall time since the start of this process's run */
} opl_pinn_iter_stats;

typedef struct opl_pinn_trainer opl_pinn_trainer;

/* Check cfg, create the model from the seed, Adam, the initial and boundary points and the
 * first collocation set. NULL and err filled on failure. */
opl_pinn_trainer *opl_pinn_trainer_new(const opl_pinn_train_config *cfg, opl_err *err);
void opl_pinn_trainer_free(opl_pinn_trainer **t);
/* Continue from a checkpoint of the same configuration (every model and training setting must
 * match except the iteration counts and outputs: OPL_ERR_ARG naming the first attribute that
 * differs). */
int opl_pinn_trainer_resume(opl_pinn_trainer *t, const char *path, opl_err *err);
/* Per-iteration callback; non-zero stops the run after this iteration (a checkpoint is written). */
typedef int (*opl_pinn_progress_fn)(const opl_pinn_iter_stats *s, void *user);
/* Run until every planned iteration is done (or L-BFGS stops). OPL_ERR_NONFINITE when the loss
 * or a gradient is not finite (the last good checkpoint is kept). */
int opl_pinn_trainer_run(opl_pinn_trainer *t, opl_pinn_progress_fn cb, void *user, opl_err *err);
/* Write a checkpoint now (path NULL: cfg.checkpoint). */
int opl_pinn_trainer_save(opl_pinn_trainer *t, const char *path, opl_err *err);
int64_t opl_pinn_trainer_iter(const opl_pinn_trainer *t);
/* On more than one rank: 1 and the statistics of the gradient sums over ranks (core/dist.h) of
 * the run so far in *s (buckets and bytes those of the current window, the rest summed over the
 * windows); 0 on one process. */
int opl_pinn_trainer_dist_stats(const opl_pinn_trainer *t, opl_dist_grads_stats *s);
const opl_model *opl_pinn_trainer_model(const opl_pinn_trainer *t);
/* The objective at the current parameters on the current points (no update), and its parts. */
int opl_pinn_trainer_eval_loss(opl_pinn_trainer *t, opl_pinn_iter_stats *s, opl_err *err);

/* Read the training configuration of a checkpoint (string fields NULL) and its iteration. */
int opl_pinn_read_config(const char *path, opl_pinn_train_config *cfg, int64_t *iter, opl_err *err);

/* The network on the uniform grid of its problem's domain: x [nx] from x0 to x1 inclusive, t [nt]
 * from 0 to T inclusive, u [nt, nx] (caller arrays; nx, nt >= 2). */
int opl_pinn_predict_grid(const opl_model *m, int64_t nx, int64_t nt, double *x, double *t, double *u, opl_err *err);

#endif
