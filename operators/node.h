/* opl operators — neural differential equations: du/dt = F(t, u) with F any operator on the
 * tape, solved by the adaptive explicit Runge-Kutta core of solvers/rk (DP5, Tsit5, BS3; FSAL,
 * PI controller, Hairer's starting step), differentiably (DESIGN.md "One adaptive core, two
 * users").
 *
 * Discretize-then-optimize: every accepted step records ordinary differentiable ops (a stage
 * combination is one opl_lincomb, the error norm one opl_wrms), so a backward pass through a
 * whole solve gives the exact gradient of the computed solution. Step sizes, the starting step
 * and the accept/reject decisions are constants of the backward pass, as in the code of Pal et
 * al. and in OrdinaryDiffEq; rejected attempts and the starting step's trial evaluation are
 * rewound off the tape (opl_tape_rewind) and leave nothing.
 *
 * The tape path takes exactly the steps of the double-array path on the same inputs: the vector
 * operations compute in the same order (core/op_ode.c), so in the double build the controller
 * sees the same bits and the step sequence, statistics and states are identical.
 *
 * Memory (opl_nde_set_memory):
 *   OPL_NDE_STORE_ALL  (default) the whole solve is on the caller's tape: memory grows with
 *                      steps x stages x the field's activations.
 *   OPL_NDE_CHECKPOINT the forward runs without a tape (on the nde's own context, rewound after
 *                      every evaluation) and keeps the state and its derivative at each accepted
 *                      step; the solve's outputs come from one tape node whose backward replays
 *                      the steps in reverse, one at a time on a scratch context (the step's
 *                      stages are recomputed from its checkpoint: s more evaluations per step),
 *                      so memory grows with steps x state. The field may then depend only on its
 *                      state and on heap parameters (give them with opl_nde_set_params, so that
 *                      the node is recorded when only they require a gradient); every call must
 *                      leave nothing it needs later in the context's arena.
 *
 * Outputs at requested times (saveat, opl_nde_set_saveat):
 *   OPL_NDE_SAVEAT_STEP  (default) the solver steps to each output time (opl_rk_advance): the
 *                        step that reaches an output time is shortened to land on it, and the
 *                        core then resumes with the controller's unshortened proposal and error
 *                        memory, so later steps are those the controller would take. The outputs
 *                        are solution states of the method's full order and their gradients those
 *                        of ordinary steps; the cost is at most one extra step per output time.
 *   OPL_NDE_SAVEAT_DENSE the steps are never shortened for outputs: the solve steps to the last
 *                        output time T only (its last step is shortened to land on T exactly, as
 *                        torchdiffeq does), taking the steps (and the evaluations) of a solve with
 *                        the single output T, and each output inside an accepted step comes from
 *                        the method's continuous extension (rk.h "Dense output": DP5's 4th-order
 *                        Shampine / Hairer DOPRI5 interpolant, Tsitouras' own 4th-order
 *                        interpolant, BS3's cubic Hermite), u(t + theta h) = u_n + h sum_i
 *                        b_i(theta) k_i — one opl_lincomb of the step's tape tensors, so the
 *                        discrete adjoints differentiate it (store-all: an ordinary op;
 *                        checkpointed: the backward replay of a step recomputes the outputs inside
 *                        it and pulls back their gradients with the step's). An output at a step's
 *                        end (or at t0) is that state itself. The interpolants are of 4th order for
 *                        DP5 and Tsit5 (one below the method) and 3rd for BS3 (the method's); their
 *                        error stays at the solution's own for smooth solutions (tests/operators/
 *                        test_node_dense.c); this is torchdiffeq's and DifferentialEquations.jl's
 *                        way. Chosen as an option, not the default: stepping onto output times
 *                        keeps the outputs full-order states. max_steps bounds
 *                        the attempts of the whole solve (one output interval [t0, T]). The
 *                        continuous adjoints still stop their backward solve at each output time
 *                        (the jumps of the adjoint).
 *
 * Per accepted step j the nde keeps t_j, h_j, the error norm EEst_j (the controller's
 * err, rk.h "Error norm") and the stiffness estimate rho_j = ||k7 - k6|| / ||g7 - g6|| (rk.h;
 * the third divided difference for BS3; 0 when the denominator is 0), each also as a
 * differentiable scalar tensor.
 *
 * Regularizers (Pal, Ma, Shah, Rackauckas, "Opening the Blackbox: Accelerating Neural
 * Differential Equations by Regularizing Internal Solver Heuristics", ICML 2021):
 *   R_E = sum_j EEst_j |h_j|          (opl_nde_reg_error, mean = 0: the paper's sum, the
 *                                      default; mean = 1 divides by the number of steps, the
 *                                      mean of EEst * dt that the authors' code uses)
 *   R_S = max_j rho_j                 (opl_nde_reg_stiff, mean = 0; mean = 1: mean_j rho_j)
 * Local regularization (Pal, Edelman, Rackauckas, "Locally Regularized Neural Differential
 * Equations: Some Black Boxes Were Meant to Remain Closed!", ICML 2023): after the solve, from
 * u(t1) at one time t1 — unbiased: uniform on [t0, T); biased: one of the accepted steps' start
 * times — one fresh step of the starting-step heuristic's size dt, whose EEst * dt and rho are
 * the regularizers (opl_nde_local_reg). u(t1) and dt are constants. u(t1) between two accepted
 * steps is the cubic Hermite interpolant of the states and derivatives at the step's ends
 * (third order; exact at step times). Extra cost: f(t1, u(t1)), the heuristic's trial
 * evaluation and s - 1 stages (8 evaluations for DP5 / Tsit5, 5 for BS3).
 *
 * Errors: every function returns a status and fills its opl_err* (NULL allowed); the library
 * never prints. A field whose output shape differs from the state's, a NaN state, tolerances
 * <= 0, a t1 outside the span, step-size underflow and too many steps each give a status whose
 * message names the value and, for the solver failures, the time reached.
 */
#ifndef OPL_OPERATORS_NODE_H
#define OPL_OPERATORS_NODE_H

#include "core/ops.h"
#include "solvers/rk.h"

/* A vector field: *du = F(t, u) recorded on c (any shape equal to u's). Returns 0 on success,
 * > 0 for a recoverable failure (the step is rejected and retried smaller), < 0 for a fatal
 * one. u must not be modified. */
typedef int (*opl_nde_field)(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du);

typedef enum { OPL_NDE_STORE_ALL = 0, OPL_NDE_CHECKPOINT = 1 } opl_nde_memory;

/* How gradients of a solve are computed (opl_nde_set_adjoint):
 *   OPL_NDE_ADJ_DISCRETE    store-all discrete adjoint (the default; = OPL_NDE_STORE_ALL)
 *   OPL_NDE_ADJ_CHECKPOINT  checkpointed discrete adjoint (= OPL_NDE_CHECKPOINT)
 *   OPL_NDE_ADJ_BACKSOLVE   continuous adjoint, backsolve: the augmented system [u, a, g_theta]
 *                           integrated backward from T (Chen et al. 2018, Alg. 1)
 *   OPL_NDE_ADJ_INTERP      continuous adjoint, interpolating: [a, g_theta] integrated backward
 *                           with u(t) from the forward solve's checkpoints (see below)
 * Optimize-then-discretize (both continuous ones): the forward runs as in checkpoint mode (no
 * tape, the state and derivative kept at each accepted step), and the backward pass integrates
 *   da/dt = -a^T dF/du,  dg/dt = -a^T dF/dtheta,  a(T) = dL/du(T), g(T) = 0
 * from T to t0 with the nde's method, tolerances, hmax and max_steps and an automatic starting
 * step, written in s = T - t (the core steps forward only; the field is negated). Both
 * vector-Jacobian products of one evaluation come from one backward pass of <a, F(t, u)> on the
 * nde's scratch context. Each output time t_i is a stop where dL/du(t_i) is added to a (a jump)
 * and the core restarts (one more evaluation). Backsolve integrates u backward too (du/ds = -F),
 * so u drifts from the forward solution by the backward solve's error (unstable for dissipative
 * fields, Gholami et al. 2019); the interpolating adjoint reads u(t) from the cubic Hermite
 * interpolant of the checkpointed states and derivatives at the accepted steps' ends (third order,
 * exact at step times — chosen over re-solving each step because it costs no evaluation) and
 * stops on every forward step time, where the interpolant's derivative has a kink. The gradient
 * is the exact gradient of the continuous problem up to the tolerances (not that of the computed
 * solution): it differs from the discrete adjoint's by O(tolerance). The field must read its
 * parameters from heap tensors listed with opl_nde_set_params (the others get no gradient);
 * parameters' gradients accumulate as in any backward. The global regularizers (per-step EEst and
 * rho) have no continuous adjoint: a backward pass with a nonzero gradient on them records
 * OPL_ERR_ARG on the context; the local regularizer works with every adjoint (its step is
 * recorded on the caller's tape from the checkpointed u(t1)). Statistics: backward_nfev counts the
 * augmented evaluations (each one forward and one backward pass of F). */
typedef enum {
  OPL_NDE_ADJ_DISCRETE = 0,
  OPL_NDE_ADJ_CHECKPOINT = 1,
  OPL_NDE_ADJ_BACKSOLVE = 2,
  OPL_NDE_ADJ_INTERP = 3
} opl_nde_adjoint;

/* Where outputs come from (above). */
typedef enum { OPL_NDE_SAVEAT_STEP = 0, OPL_NDE_SAVEAT_DENSE = 1 } opl_nde_saveat;

typedef struct opl_nde opl_nde;

/* A solver of method m for the field f(user, ...). Defaults as opl_rk (rtol 1e-6, atol 1e-9,
 * automatic starting step, 100000 attempts per output interval), store-all memory. NULL and
 * err filled on a bad method, a NULL field or out of memory. */
opl_nde *opl_nde_create(opl_rk_method m, opl_nde_field f, void *user, opl_err *err);
/* Free the solver (its checkpoints and step records); sets *nd to NULL. NULL allowed. */
void opl_nde_free(opl_nde **nd);

/* Settings (used by the next solve); OPL_ERR_ARG naming the rejected value. rtol > 0 and
 * atol > 0, finite (a state crossing zero needs atol > 0). */
int opl_nde_set_tolerances(opl_nde *nd, double rtol, double atol, opl_err *err);
/* h0 > 0, or 0 for Hairer's automatic starting step. */
int opl_nde_set_initial_step(opl_nde *nd, double h0, opl_err *err);
/* Step attempts allowed per output interval, >= 1. */
int opl_nde_set_max_steps(opl_nde *nd, int64_t max_steps, opl_err *err);
/* Largest step, hmax > 0 (INFINITY allowed). */
int opl_nde_set_max_step(opl_nde *nd, double hmax, opl_err *err);
/* Store-all or checkpointed discrete adjoint (sets the adjoint to _DISCRETE / _CHECKPOINT). */
int opl_nde_set_memory(opl_nde *nd, opl_nde_memory mode, opl_err *err);
/* The adjoint of later solves (above); OPL_ERR_ARG for a value outside the enum. The
 * continuous ones use checkpoint memory for the forward. */
int opl_nde_set_adjoint(opl_nde *nd, opl_nde_adjoint adj, opl_err *err);
/* How later solves give their outputs (above); OPL_ERR_ARG for a value outside the enum. */
int opl_nde_set_saveat(opl_nde *nd, opl_nde_saveat mode, opl_err *err);
/* on = 1: later solves, local regularizers and their backward passes are distributed — every
 * process (core/dist.h) holds its own rows of one batch as the state, and every one calls them at
 * the same points with the same settings and times. The whole batch then takes ONE adaptive step
 * sequence, the same on every rank and the same as one process's up to the order of the sums
 * (SUNDIALS' parallel N_Vector): every error and stiffness norm sums the ranks' parts in one
 * reduction (opl_wrms_sums; NaN or Inf on any rank is non-finite on all), the outcome of every
 * field evaluation (failed, recoverable) is agreed before the core acts on it, EEst_j and rho_j
 * are opl_wrms_reduced tensors (the same value on every rank; each rank's backward gives its rows'
 * part of the gradient, so the ranks' parameter gradients sum to the whole batch's: a term in
 * them, e.g. a regularizer, must be seeded on every rank as on one process, but its value counted
 * once), and the continuous adjoints sum the parameter part of the augmented right-hand side over
 * the ranks in every evaluation (rank 0 alone then adds it to the parameters' gradients). On one
 * process (opl_dist_size() = 1) it changes nothing. Returns the previous setting. */
int opl_nde_set_dist(opl_nde *nd, int on);
/* The heap parameters the field reads (n <= 256 pointers, copied): the checkpointed solve's
 * tape node lists them so that it is recorded when only they require a gradient. */
int opl_nde_set_params(opl_nde *nd, int n, opl_tensor *const *params, opl_err *err);
/* on = 1: later solves replay the accepted step sequence (times and sizes) of the last
 * successful solve instead of running the controller — the frozen step sequence of a
 * finite-difference check (t0 and the output times must be the same); on = 0: adaptive. */
int opl_nde_freeze(opl_nde *nd, int on, opl_err *err);

/* Solve from u(t0) = u0 (real, any shape, not modified) through the output times
 * ts[0..nt), t0 <= ts[0] < ts[1] < ... (finite); us[i] = u(ts[i]), tensors of c (valid until
 * c is reset) that carry gradients to u0 and to the field's parameters. The step records and
 * the per-step tensors are replaced. In checkpoint mode the backward pass through the outputs
 * must run before the next solve with this nde. On failure us is untouched and the message
 * names the time reached (opl_nde_get_stats gives it too). */
int opl_nde_solve(opl_nde *nd, opl_ctx *c, double t0, opl_tensor *u0, int nt, const double *ts,
                  opl_tensor **us, opl_err *err);

typedef struct opl_nde_stats {
  int64_t nfev;           /* evaluations of F in the last solve (starting-step trial included) */
  int64_t accepted;       /* accepted steps */
  int64_t rejected;       /* rejected attempts */
  double t0, t;           /* start and time reached */
  int64_t local_nfev;     /* evaluations of the last opl_nde_local_reg */
  int64_t backward_nfev;  /* evaluations of the last checkpointed backward pass (step
                           * replays) or continuous adjoint (augmented-system evaluations) */
  size_t ckpt_bytes;      /* heap bytes held by checkpoints (checkpoint mode) */
  size_t scratch_high;    /* high-water mark of the nde's own context's arena (the tape-free
                           * forward and the step replays of a checkpointed backward) */
} opl_nde_stats;
void opl_nde_get_stats(const opl_nde *nd, opl_nde_stats *st);

/* Accepted steps of the last solve. */
int64_t opl_nde_num_steps(const opl_nde *nd);
/* Doubles of step j (any output pointer may be NULL); OPL_ERR_ARG for j out of range. */
int opl_nde_step(const opl_nde *nd, int64_t j, double *t, double *h, double *eest, double *rho,
                 opl_err *err);
/* Step j's EEst_j and rho_j as scalar (1) tensors of the solve's context; NULL if out of range. */
opl_tensor *opl_nde_eest(const opl_nde *nd, int64_t j);
opl_tensor *opl_nde_stiff(const opl_nde *nd, int64_t j);

/* Global regularizers of the last solve on its context c (formulas above; c not reset since the
 * solve): R_E (mean = 0: sum, 1: mean over steps), R_S (mean = 0: max, whose gradient goes to
 * the first largest step; 1: mean); a zero scalar when there was no step. */
opl_tensor *opl_nde_reg_error(const opl_nde *nd, opl_ctx *c, int mean);
opl_tensor *opl_nde_reg_stiff(const opl_nde *nd, opl_ctx *c, int mean);

/* Local regularizer at time t1 in [t0, T) of the last solve (T the last output time; in store-all
 * mode the solve's context must not have been reset since: the states live there): one step
 * from u(t1) of size dt — dt = 0: the starting-step heuristic's (towards T); dt > 0: that size
 * (a frozen check) — recorded on c; *reg_err = EEst * dt, *reg_stiff = rho (either pointer may
 * be NULL), *dt_out (NULL allowed) the step size used. OPL_ERR_ARG for t1 outside [t0, T), a
 * bad dt, or before any solve. */
int opl_nde_local_reg(opl_nde *nd, opl_ctx *c, double t1, double dt, opl_tensor **reg_err,
                      opl_tensor **reg_stiff, double *dt_out, opl_err *err);
/* Draw t1 from seed (counter-based, core/rng.h) — biased = 0: uniform on [t0, T); 1: one of the
 * accepted steps' start times, uniformly — and call opl_nde_local_reg; *t1_out the time. */
int opl_nde_local_reg_draw(opl_nde *nd, opl_ctx *c, int biased, uint64_t seed, double *t1_out,
                           opl_tensor **reg_err, opl_tensor **reg_stiff, opl_err *err);

#endif
