/* opl solvers — the adaptive explicit Runge-Kutta core (floor 2, DESIGN.md "One adaptive core,
 * two users").
 *
 * Solves y' = f(t, y), t0 <= t <= t1 (forward in time only), with an embedded explicit RK pair:
 *   OPL_RK_DP5    Dormand & Prince 5(4), 7 stages, FSAL
 *                 (J. R. Dormand, P. J. Prince, "A family of embedded Runge-Kutta formulae",
 *                  J. Comput. Appl. Math. 6 (1980) 19-26).
 *   OPL_RK_TSIT5  Tsitouras 5(4), 7 stages, FSAL
 *                 (Ch. Tsitouras, "Runge-Kutta pairs of order 5(4) satisfying only the first column
 *                  simplifying assumption", Comput. Math. Appl. 62 (2011) 770-775).
 *   OPL_RK_BS3    Bogacki & Shampine 3(2), 4 stages, FSAL
 *                 (P. Bogacki, L. F. Shampine, "A 3(2) pair of Runge-Kutta formulas",
 *                  Appl. Math. Lett. 2 (1989) 321-325).
 * The solution is advanced with the higher-order weights (local extrapolation); the embedded
 * pair only estimates the local error.
 *
 * Every number below uses one exponent q = min(order, embedded order) + 1: q = 5 for DP5 and
 * Tsit5, q = 3 for BS3 (the local error estimate behaves like C h^q).
 *
 * Error norm (one step t -> t + h, y0 -> y1, error vector e = h sum_i (b_i - bhat_i) k_i):
 *   err = sqrt( (1/n) sum_i ( e_i / (atol + rtol max(|y0_i|, |y1_i|)) )^2 )      (RMS)
 * A step is accepted when err <= 1.
 *
 * Step-size controller (Gustafsson/Soederlind PI controller; Hairer & Wanner, Solving ODEs II,
 * IV.2, eq. (2.43c)), safety 0.9, factor limits [0.2, 10]:
 *   accepted:  h_new = h * clamp(0.9 * err^(-0.7/q) * err_prev^(0.4/q), 0.2, 10)
 *              (err_prev = error norm of the previous accepted step, 1 initially, floored at
 *              1e-4); if the previous attempt was rejected the factor is capped at 1;
 *   rejected:  h_new = h * max(0.2, 0.9 * err^(-1/q))   (never an increase);
 *   f returned > 0 or a non-finite value appeared: h_new = h / 4.
 * The step is clamped to hmax, floored at hmin, and clamped so that it lands exactly on the
 * requested output time (a step that would end within 1e-4 h of it is stretched to it). The
 * unclamped proposal and err_prev of the last full step are kept, so output times do not
 * shrink later steps.
 *
 * Initial step (h0 = 0): Hairer, Norsett & Wanner, Solving ODEs I, II.4 ("Starting step size"),
 * with the norm above using weights atol + rtol |y0_i|:
 *   d0 = ||y0||, d1 = ||f(t0, y0)||; h0 = 0.01 d0/d1 (1e-6 if d0 or d1 < 1e-5);
 *   y1 = y0 + h0 f0; d2 = ||f(t0 + h0, y1) - f0|| / h0;
 *   h1 = (0.01 / max(d1, d2))^(1/q)  (max(1e-6, 1e-3 h0) if max(d1, d2) <= 1e-15);
 *   h = min(100 h0, h1, hmax, t1 - t0).
 *
 * Stiffness estimate (Hairer & Wanner, Solving ODEs I, II.10 / II, IV.2, "Stiffness detection"
 * for DOPRI5), per accepted step, with stage states g_i and derivatives k_i = f(t + c_i h, g_i):
 *   rho = ||sum_i alpha_i k_i|| / ||sum_i alpha_i g_i||    (plain RMS norms; 0 if the denominator is 0)
 * DP5 and Tsit5: alpha = e_7 - e_6, i.e. Hairer's ||k7 - k6|| / ||g7 - g6|| (both stages sit at
 * t + h, g7 = y1). BS3 has no two stages at one time: with its last two stages (c = 3/4, 1) the
 * time drift of a forcing term dominates the difference (y' = -1000 (y - cos t) would read
 * rho ~ 1), so BS3 uses the third divided difference over its four nodes 0, 1/2, 3/4, 1,
 * alpha = (-1, 6, -8, 3), which annihilates constant, linear and quadratic drift in time, as
 * k7 - k6 does for DP5. The state difference is evaluated as h sum_j (A^T alpha)_j k_j (no
 * cancellation). rho estimates the modulus of the dominant Jacobian eigenvalue; h * rho near
 * the boundary of the stability region (~3.3 for DP5, ~2.5 for BS3) signals stiffness.
 *
 * Dense output (continuous extension): within an accepted step t -> t + h,
 *   u(t + theta h) = y0 + h sum_i b_i(theta) k_i,  0 <= theta <= 1,  b_i(1) = b_i, b_i(0) = 0,
 * from the step's own stages (no extra evaluation):
 *   DP5    the 4th-order continuous extension of Dormand-Prince (Shampine, "Some practical
 *          Runge-Kutta formulas", Math. Comp. 46 (1986) 135-150), in the form of Hairer's DOPRI5
 *          (Hairer, Norsett & Wanner, Solving ODEs I, II.6, "Dense output"): the quartic that
 *          matches y0, y1, f0, f1 and the 5th-order value at the midpoint;
 *   Tsit5  Tsitouras' own 4th-order interpolant (Tsitouras 2011, the b_i(theta) polynomials);
 *   BS3    the cubic Hermite interpolant of y0, y1, f0 = k1 and f1 = k4 (3rd order; free, k4 is
 *          the FSAL stage).
 * At theta = 1 the output is y1 itself (copied, not recombined), at theta = 0 it is y0.
 *
 * Status: every failing call returns a status and fills its opl_err* (NULL allowed).
 *   OPL_ERR_ARG          bad arguments (the message names the value);
 *   OPL_ERR_CONVERGENCE  step-size underflow (message gives t and h), too many step attempts,
 *                        too many consecutive recoverable f failures, or a recoverable failure
 *                        in fixed-step mode;
 *   OPL_ERR_NONFINITE    the state or f became non-finite and shrinking h did not help
 *                        (message gives t);
 *   OPL_ERR_STATE        f returned < 0 (fatal), or stepping before opl_rk_init;
 *   OPL_ERR_NOMEM        out of memory at create.
 * After a failure the current state is the last accepted one (opl_rk_time, opl_rk_state).
 *
 * Usage on double arrays:
 *   opl_rk_vops ops = opl_rk_vops_double(n);  ops.rhs = my_rhs;
 *   opl_rk *rk = opl_rk_create(&ops, my_user, OPL_RK_DP5, &err);
 *   opl_rk_set_tolerances(rk, 1e-8, 1e-10, &err);
 *   opl_rk_integrate(rk, 0, 1, y, &t_reached, &err);       // or: opl_rk_init + opl_rk_advance
 *   opl_rk_free(&rk);
 * Snapshots at output times t_1 < t_2 < ...: opl_rk_init(rk, t0, y0); for each t_j
 * opl_rk_advance(rk, t_j) and read opl_rk_state(rk) — each output time is hit exactly.
 */
#ifndef OPL_SOLVERS_RK_H
#define OPL_SOLVERS_RK_H

#include <stdint.h>
#include "core/opl.h"

typedef enum { OPL_RK_DP5 = 0, OPL_RK_TSIT5 = 1, OPL_RK_BS3 = 2, OPL_RK_METHOD_COUNT } opl_rk_method;

/* The abstract state: a table of vector operations. A "vector" is an opaque pointer. The core
 * never reads vector contents itself, so the same core steps plain arrays and handles to tape
 * tensors (for a tape, a vector is a slot holding an opl_tensor*, and lincomb/rhs replace the
 * slot's tensor by a newly recorded one). The table is copied at create. */
typedef struct opl_rk_vops opl_rk_vops;

/* What the core knows about one accepted step t -> tend = t + h (up to rounding), for the
 * optional `accepted` hook. Vectors are those of the core, valid only during the call. */
typedef struct opl_rk_step_info {
  double t, h, tend;
  double err;             /* error norm the controller used (rk.h, "Error norm") */
  double rho;             /* stiffness estimate (0 when detection is off) */
  double rtol, atol;      /* tolerances of the error norm */
  const void *y0, *y1;    /* state at t and at tend */
  const void *e;          /* error vector h sum_i (b_i - bhat_i) k_i */
  const void *dk, *dg;    /* stiffness differences sum_i alpha_i k_i and sum_i alpha_i g_i
                           * (rk.h, "Stiffness estimate"); NULL when detection is off */
  const void *const *k;   /* [s] stage derivatives; k[s-1] = f(tend, y1) */
  int s;
} opl_rk_step_info;

struct opl_rk_vops {
  int64_t n;      /* length of a vector for array vops (opl_rk_vops_double); free otherwise */
  void *vspace;   /* context of the vector operations, free for custom vops */
  /* A new vector of the space described by ops (n, vspace); contents unspecified. NULL when
   * out of memory. */
  void *(*vnew)(const opl_rk_vops *ops);
  /* Free a vector from vnew (NULL allowed). */
  void (*vfree)(const opl_rk_vops *ops, void *v);
  /* y = sum_{j<m} a[j] x[j], 1 <= m <= 8. y is distinct from every x[j]. */
  void (*lincomb)(const opl_rk_vops *ops, int m, const double *a, const void *const *x, void *y);
  /* sqrt(mean_i (e_i / (atol + rtol max(|ya_i|, |yb_i|)))^2). NaN or Inf anywhere in e, ya, yb
   * must give a non-finite result (the core's finiteness check relies on it). With rtol = 0,
   * atol = 1 it is the plain RMS of e. */
  double (*wrms)(const opl_rk_vops *ops, const void *e, const void *ya, const void *yb,
                 double rtol, double atol);
  /* Right-hand side dy = f(t, y) (SUNDIALS convention): returns 0 on success, > 0 for a
   * recoverable failure (the step is rejected and retried with a smaller h), < 0 for a fatal
   * one (integration stops with OPL_ERR_STATE). `user` is the pointer given to opl_rk_create.
   * y and dy are distinct. */
  int (*rhs)(void *user, double t, const void *y, void *dy);
  /* Optional hooks (NULL: none; the double-array vops have none).
   * mark / discard (both or neither): mark is called before each step attempt and before the
   * starting-step heuristic; discard after a rejected attempt and after the heuristic. The core
   * reads no vector written since the last mark after a discard until it writes it again, so a
   * tape can forget every operation recorded in between (rejected steps and the heuristic's
   * trial evaluation leave nothing). Vectors written before the mark (the state, the FSAL
   * derivative) are untouched.
   * accepted: called once per accepted step, after the error norm and the stiffness estimate
   * and before the state advances, with the step's vectors (the tape path records the error
   * norm and the stiffness ratio from them as differentiable scalars). Setting it makes the
   * core keep two more vectors (dk, dg) so that e, dk and dg are all alive at the call. */
  void (*mark)(const opl_rk_vops *ops);
  void (*discard)(const opl_rk_vops *ops);
  void (*accepted)(const opl_rk_vops *ops, void *user, const opl_rk_step_info *info);
};

/* Vector operations for plain double arrays of length n >= 1 (vectors are double*, 64-byte
 * aligned, zeroed at creation; loops use OpenMP for n >= 32768). rhs is NULL: set it. */
opl_rk_vops opl_rk_vops_double(int64_t n);
/* The two sums behind the double-array vops' error norm: sc[0] = sum_i (e_i / w_i)^2 and
 * sc[1] = sum_i (ya_i - ya_i) + (yb_i - yb_i) (0 when finite, NaN otherwise), so the norm is
 * sqrt(sc[0] / n) + sc[1]; e, ya, yb [n]. Summed in a fixed order (the same bits at every thread
 * count). A vector cut into parts (one per process) has the norm sqrt(sum S / sum n) + sum chk. */
void opl_rk_wrms_sums(int64_t n, const double *e, const double *ya, const double *yb, double rtol, double atol,
                      double sc[2]);

typedef struct opl_rk opl_rk;

/* A solver of method m stepping vectors through ops (copied), with f's user pointer
 * state_ctx. Defaults: rtol 1e-6, atol 1e-9, h0 automatic, max 100000 step attempts per
 * advance, hmin 0 (underflow detection only), hmax infinite, adaptive. Allocates all vectors
 * (s stages + 4) here: stepping never allocates. Returns NULL and fills err on NULL ops, a
 * missing operation, a bad method or out of memory. */
opl_rk *opl_rk_create(const opl_rk_vops *ops, void *state_ctx, opl_rk_method m, opl_err *err);
/* Free the solver and its vectors; sets *rk to NULL. Accepts NULL and *rk == NULL. */
void opl_rk_free(opl_rk **rk);

/* Settings; each returns OPL_OK or OPL_ERR_ARG naming the rejected value (setting unchanged).
 * rtol > 0 and finite, atol >= 0 and finite (atol = 0 needs every |y_i| > 0: a zero weight
 * makes the error norm non-finite). */
int opl_rk_set_tolerances(opl_rk *rk, double rtol, double atol, opl_err *err);
/* First step size: h0 > 0, or 0 for Hairer's automatic choice. Used at the next opl_rk_init. */
int opl_rk_set_initial_step(opl_rk *rk, double h0, opl_err *err);
/* Maximum step attempts (accepted + rejected) in one opl_rk_advance / opl_rk_integrate, >= 1. */
int opl_rk_set_max_steps(opl_rk *rk, int64_t max_steps, opl_err *err);
/* Minimum step size hmin >= 0: a rejected step that would need h < hmin fails with
 * OPL_ERR_CONVERGENCE. Independently, h below 16 eps |t| is always an underflow. */
int opl_rk_set_min_step(opl_rk *rk, double hmin, opl_err *err);
/* Maximum step size hmax > 0 (may be INFINITY). */
int opl_rk_set_max_step(opl_rk *rk, double hmax, opl_err *err);
/* Fixed-step mode: h > 0 turns the controller off (every step has size h except a last step
 * clamped onto the output time; steps are never rejected; a recoverable f failure or a
 * non-finite value is an error); h = 0 returns to adaptive stepping. The local error and
 * stiffness estimates are still computed. */
int opl_rk_set_fixed_step(opl_rk *rk, double h, opl_err *err);
/* Turn the stiffness estimate on (default) or off (saves two vector combinations and two norms
 * per accepted step; the statistics then report 0). */
void opl_rk_set_stiffness_detection(opl_rk *rk, int on);

/* Start (or restart) at time t0 from y0 (copied; y0 is a vector of the vops). Evaluates
 * f(t0, y0) once (the FSAL derivative) and resets the statistics. Fails with OPL_ERR_ARG on a
 * non-finite t0, OPL_ERR_NONFINITE on a non-finite y0 or f(t0, y0), OPL_ERR_STATE if f fails. */
int opl_rk_init(opl_rk *rk, double t0, const void *y0, opl_err *err);
/* Take one accepted step (retrying rejected attempts) that does not pass tstop; a step that
 * reaches tstop lands on it exactly. Returns OPL_OK without stepping when t == tstop;
 * OPL_ERR_ARG when tstop < t. */
int opl_rk_step(opl_rk *rk, double tstop, opl_err *err);
/* Step until t == tout exactly (tout >= t), bounded by max_steps attempts. */
int opl_rk_advance(opl_rk *rk, double tout, opl_err *err);
/* opl_rk_init(t0, y) + opl_rk_advance(t1), then copy the state back into y. On failure y holds
 * the last accepted state and *t_reached (if not NULL) its time; on success *t_reached = t1.
 * t1 < t0 is OPL_ERR_ARG (backward integration is not supported). */
int opl_rk_integrate(opl_rk *rk, double t0, double t1, void *y, double *t_reached, opl_err *err);

/* Hairer's starting step (the formula above) from the current state towards tstop > t, as the
 * first step of an adaptive solve would use it, in *h. Evaluates f once at a trial point (between
 * the mark and discard hooks). The state and the statistics other than nfev are unchanged.
 * OPL_ERR_STATE before opl_rk_init or when f fails fatally, OPL_ERR_ARG for tstop <= t. */
int opl_rk_start_step(opl_rk *rk, double tstop, double *h, opl_err *err);
/* Take exactly one step of size h > 0 from the current state, ending at tend (> t; normally
 * t + h, or a recorded end time), without the error test: the step is accepted whatever its
 * error norm, as a replayed or frozen step sequence needs (the controller's proposal for the
 * next step is unchanged). Statistics and the accepted hook as for any accepted step. On a
 * failure of f: OPL_ERR_STATE; a non-finite state or error norm: OPL_ERR_NONFINITE (message
 * gives t); the state is then unchanged. */
int opl_rk_take_step(opl_rk *rk, double h, double tend, opl_err *err);

/* Current time and accepted state (owned by the solver, valid until the next step). */
double opl_rk_time(const opl_rk *rk);
const void *opl_rk_state(const opl_rk *rk);
/* Copy the current state into the vector y. */
void opl_rk_get_state(const opl_rk *rk, void *y);

typedef struct opl_rk_stats {
  int64_t nfev;          /* evaluations of f since opl_rk_init (including the initial one) */
  int64_t accepted;      /* accepted steps */
  int64_t rejected;      /* rejected attempts (error too large, f > 0, or non-finite) */
  int64_t rhs_fails;     /* recoverable f failures (returned > 0) among the rejections */
  double t;              /* current time */
  double h_last;         /* size of the last accepted step (0 before the first) */
  double h_next;         /* step size the controller proposes next */
  double err_last;       /* error norm of the last accepted step */
  double stiff_last;     /* stiffness estimate rho of the last accepted step */
  double stiff_max;      /* max of rho over accepted steps */
  double err_h_sum;      /* sum over accepted steps of err * h */
  double stiff_h_sum;    /* sum over accepted steps of rho * h (Pal et al. 2021 regularizer) */
} opl_rk_stats;
void opl_rk_get_stats(const opl_rk *rk, opl_rk_stats *st);

/* The Butcher tableau of a method, for tests and tools: s stages, a[s*s] row-major strictly
 * lower triangular, b[s] solution weights, e[s] error weights b - bhat (bhat: the embedded
 * weights), c[s] nodes, the orders. Any output pointer may be NULL. Returns the number of
 * stages, or 0 for a bad method. The tables are static. */
int opl_rk_tableau(opl_rk_method m, const double **a, const double **b, const double **e,
                   const double **c, int *order, int *embedded_order);
/* The dense-output weights b_i(theta) of method m ("Dense output" above) into bth[s]; any
 * theta (the interpolant's polynomials; meaningful on [0, 1]). Returns s, or 0 for a bad method
 * or a NULL bth. */
int opl_rk_dense_weights(opl_rk_method m, double theta, double *bth);
/* y (a vector of the vops) = the dense output at t of the last accepted step [t - h_last, t]
 * (t equal to either end gives that end's state exactly). Valid from an accepted step until the
 * next step attempt (opl_rk_step, _advance, _take_step, _start_step or _init): OPL_ERR_STATE
 * otherwise, OPL_ERR_ARG for t outside the step. Step with opl_rk_step to read outputs inside
 * each step without shortening steps for them. */
int opl_rk_dense(const opl_rk *rk, double t, void *y, opl_err *err);
/* The same from inside the accepted hook: y = dense output at t in [info->t, info->tend] of the
 * step described by info (method m, vector operations ops); t == info->tend gives y1 exactly. */
void opl_rk_dense_step(const opl_rk_step_info *info, opl_rk_method m, const opl_rk_vops *ops, double t,
                       void *y);
/* "dp5", "tsit5", "bs3"; NULL for a bad method. */
const char *opl_rk_method_name(opl_rk_method m);

#endif
