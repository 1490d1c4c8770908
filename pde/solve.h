/* opl pde — trajectory solvers of the reference PDEs (floor 2, DESIGN.md): one call solves ONE
 * trajectory of Burgers, KdV or 2-D Navier-Stokes from an initial condition and writes the
 * snapshots at the requested output times, subsampled to a store resolution, into a caller
 * buffer. Everything is double precision, whatever -Dprecision is.
 *
 * Schemes (opl_solve_scheme). The state of ETDRK4 and of the Crank-Nicolson family is the
 * spectrum (grid.h's unnormalized r2c layout); the RK core steps physical values through the
 * equation's full right-hand side.
 *   OPL_SCHEME_ETDRK4    ETDRK4 (solvers/etdrk4.h) with the equation's diagonal L(k) and its
 *                        dealiased nonlinear term N; fixed step dt. Any equation.
 *   OPL_SCHEME_RK        the adaptive explicit RK core (solvers/rk.h; method rk_method, tolerances
 *                        rtol / atol); with dt > 0 its fixed-step mode. Any equation.
 *   OPL_SCHEME_CN_HEUN   Crank-Nicolson on L + Heun on N (solvers/cnheun.h), second order; fixed
 *                        step dt. Needs a real L(k): Burgers and Navier-Stokes, not KdV.
 *   OPL_SCHEME_CN_EULER  Crank-Nicolson on L + explicit Euler on N, first order. Same equations.
 *   OPL_SCHEME_FNO       Navier-Stokes only: the scheme of the FNO benchmark's generator
 *                        (Li et al., "Fourier neural operator for parametric partial differential
 *                        equations", ICLR 2021; data_generation/navier_stokes/ns_2d.py),
 *                        reproduced like for like (in double precision where ns_2d.py ran in
 *                        float32). It differs from CN-Euler on opl's N in four facts:
 *                          - u, v, omega_x, omega_y are synthesized from the FULL spectrum (no
 *                            dealiasing of the input); only the product's spectrum is
 *                            truncated, by the mask |kx| <= 2/3 kmax and |ky| <= 2/3 kmax,
 *                            kmax = n/2 (identical to grid.h's 3|k| < n unless 3 divides n);
 *                          - the wavenumber of the Nyquist index is -n/2 (torch's fftfreq) in
 *                            the odd derivatives, where grid.h zeroes the odd derivative there;
 *                          - the forcing spectrum rfft2(f) is added undealiased;
 *                          - the viscous symbol is -nu lap with lap[0,0] = 1 (the mean mode is
 *                            damped by (1 - dt nu/2)/(1 + dt nu/2) per step; it is 0 for FNO's
 *                            zero-mean initial vorticity and zero-mean forcing);
 *                        and, like CN-Euler, it is first order in dt. ns_2d.py takes
 *                        ceil(T/dt) steps and records every floor(steps/nt) steps: for T/nt a
 *                        multiple of dt (FNO: T/nt = 1, dt = 1e-4) this is exactly the step
 *                        rule below.
 *
 * Output times and steps. Snapshots are taken at t_j = j T / nt, j = 1..nt (nt = 1: the final
 * time only), or at the caller's times[0..nt-1]. with_t0 = 1 stores the initial condition
 * first. A fixed-step scheme covers each interval (t_{j-1}, t_j] of length D in
 * m = ceil(D / dt) equal steps of size D / m <= dt (a ratio D / dt within 1e-9 of an integer k
 * counts as k, so that rounding in D = k dt never adds a step; every output time is hit exactly, and
 * dt itself is used when D is a multiple of it; steps that differ by less than 1e-12 relative
 * are treated as equal, so even spacing never rebuilds a stepper). The adaptive RK core lands on
 * each t_j by its own clamping.
 *
 * Storage. store_n points per axis: OPL_STORE_STRIDE keeps every (n / store_n)-th point along
 * each axis (as the FNO data do: solve at 8192, keep every 8th point), so store_n must divide n
 * (else OPL_ERR_SHAPE naming both); OPL_STORE_SPECTRAL resamples by trigonometric interpolation
 * (opl_grid_resample; any even store_n >= 4). out is [frames][store_n] (1-D) or
 * [frames][store_n][store_n] (2-D, x index slow), frames = nt + with_t0 (opl_solve_frames).
 *
 * Blow-up. A non-finite state (every scheme), or, when cfl > 0, a step whose Courant number
 * dt max|advecting velocity| / dx exceeds cfl (checked once per step, before it, by ETDRK4 and
 * the Crank-Nicolson family; Navier-Stokes uses dx = L/n and max |u| of the velocity that N
 * advects with; Burgers max |u|, KdV max |a u|, of the dealiased field), stops the solve with
 * OPL_ERR_NONFINITE or OPL_ERR_CONVERGENCE and a message "solve_<eq>: blow-up at t = <t>: ...",
 * where t is the time of the last good state (the step from t failed); stats->t_reached holds
 * it too. Frames before that time are written; the rest of out is untouched.
 *
 * Threads. A call owns all its workspaces: many trajectories may be solved concurrently (e.g.
 * from an OpenMP parallel loop, one call per iteration). Grids: pass one shared grid per
 * resolution in opts.grid (made once, before the parallel loop: it is immutable afterwards), or
 * let each call make its own (FFTW planning is serialized by grid.c's critical section, and
 * FFTW's in-process wisdom makes re-planning of a known size cheap). A spectral store grid is
 * made per call with FFTW_ESTIMATE plans.
 *
 * Statistics: steps, rhs / N evaluations, rejected attempts, wall time, the largest Courant
 * number checked (opl_solve_stats).
 */
#ifndef OPL_PDE_SOLVE_H
#define OPL_PDE_SOLVE_H

#include <stdint.h>
#include "core/opl.h"
#include "pde/allen_cahn.h"
#include "pde/burgers.h"
#include "pde/grf.h"
#include "pde/grid.h"
#include "pde/kdv.h"
#include "pde/ns2d.h"
#include "solvers/rk.h"

typedef enum {
  OPL_SCHEME_ETDRK4 = 0,
  OPL_SCHEME_RK = 1,
  OPL_SCHEME_CN_HEUN = 2,
  OPL_SCHEME_CN_EULER = 3,
  OPL_SCHEME_FNO = 4,
  OPL_SCHEME_COUNT
} opl_solve_scheme;

typedef enum { OPL_STORE_STRIDE = 0, OPL_STORE_SPECTRAL = 1 } opl_store_mode;

typedef struct opl_solve_opts {
  /* output times */
  double T;              /* final time, finite and > 0 */
  int nt;                /* number of snapshots, >= 1 */
  const double *times;   /* NULL: t_j = j T / nt; else nt strictly increasing times in (0, T] */
  int with_t0;           /* 1: the initial condition is stored as frame 0 */
  /* scheme */
  int scheme;            /* opl_solve_scheme */
  double dt;             /* fixed-step schemes: the largest step (> 0); RK: > 0 fixed-step mode,
                            0 adaptive */
  int rk_method;         /* opl_rk_method (RK only) */
  double rtol, atol;     /* RK adaptive tolerances (rk.h error norm) */
  int64_t max_steps;     /* RK: max step attempts per output interval (0: rk.h's default) */
  double cfl;            /* Courant-number limit checked per step (ETDRK4, CN family); 0: none */
  /* storage */
  int store_n;           /* points per axis of the stored frames; 0: the solve resolution */
  int store_mode;        /* opl_store_mode */
  /* grids */
  const opl_grid *grid;  /* shared solve grid (same dim, n, L) or NULL: the call makes one */
  unsigned grid_flags;   /* OPL_GRID_* of a grid the call makes (0: FFTW_MEASURE plans) */
} opl_solve_opts;

typedef struct opl_solve_stats {
  int64_t steps;         /* accepted steps */
  int64_t rejected;      /* rejected attempts (RK adaptive) */
  int64_t nfev;          /* evaluations of N (ETDRK4, CN family) or of f (RK) */
  int64_t frames;        /* frames written to out */
  double wall;           /* seconds of wall-clock time of the call */
  double t_reached;      /* time of the last good state: the final time on success */
  double h_last;         /* size of the last step */
  double cfl_max;        /* largest Courant number checked (0 when cfl = 0) */
} opl_solve_stats;

/* Defaults: T = 1, nt = 1, times NULL, with_t0 0, ETDRK4 with dt = 1e-3, DP5 with rtol 1e-8,
 * atol 1e-10, cfl 0 (no check), store_n 0 (the solve resolution), stride storage, no shared grid,
 * FFTW_MEASURE plans. */
void opl_solve_opts_default(opl_solve_opts *o);
/* Frames a solve writes: nt + (with_t0 != 0). */
int opl_solve_frames(const opl_solve_opts *o);
/* "etdrk4", "rk", "cn-heun", "cn-euler", "fno"; NULL for a bad scheme. */
const char *opl_solve_scheme_name(int scheme);
/* Parse a scheme name: the names above, or an RK method name ("dp5", "tsit5", "bs3"), which
 * sets *scheme = OPL_SCHEME_RK and *rk_method (rk_method may be NULL for the others). Returns
 * OPL_OK or OPL_ERR_ARG naming the unknown scheme and listing the known ones. */
int opl_solve_scheme_parse(const char *name, int *scheme, int *rk_method, opl_err *err);

/* ---------------------------------------------------------------- Burgers */

/* Presets, each a full set of defaults (every field may be overridden after the call):
 *   "fno"      the FNO paper's Burgers data: L = 1, nu = 0.1, T = 1, GRF "burgers-fno",
 *              solve 8192 points, store 1024 (stride 8), final time only; ETDRK4 dt = 5e-4
 *              (time error ~2e-12 absolute, measured in test_solve_burgers).
 *   "chebfun"  the FNO repository's gen_burgers1.m (chebfun spin): L = 1, nu = 1e-3, T = 1,
 *              GRF "burgers-chebfun", 200 snapshots on (0, 1], solve 4096, store 1024;
 *              ETDRK4 dt = 2e-4 (time error ~1e-12; the 2x refinement check of a trajectory,
 *              opl_solve_burgers_refinement, reads ~1e-12 at 4096 points).
 * p gets n (the solve resolution), L, nu; o the times, scheme and storage; grf (may be NULL)
 * the initial-condition field. OPL_ERR_ARG names an unknown preset. */
int opl_solve_burgers_preset(const char *name, opl_burgers_params *p, opl_solve_opts *o, opl_grf_params *grf,
                             opl_err *err);

/* Solve u_t + (u^2/2)_x = nu u_xx on [0, L) from u0[p->n] (physical values at the solve
 * resolution) and write opl_solve_frames(o) frames of store_n points into out. stats may be
 * NULL. Returns OPL_OK, or: OPL_ERR_ARG (bad parameters or options, naming the value),
 * OPL_ERR_SHAPE (store resolution), OPL_ERR_NONFINITE (a non-finite u0 value, naming its index,
 * or a blow-up), OPL_ERR_CONVERGENCE (CFL violation, RK step failure), OPL_ERR_NOMEM. */
int opl_solve_burgers(const opl_burgers_params *p, const double *u0, const opl_solve_opts *o, double *out,
                      opl_solve_stats *stats, opl_err *err);

/* The refinement check of a Burgers trajectory: solve the same initial condition (u0
 * interpolated spectrally onto 2 p->n points) at twice the resolution with half the step (RK
 * adaptive: rtol and atol divided by 2^q, q = 5 for DP5 / Tsit5 and 3 for BS3, which halves its
 * steps) and store it at the same store_n; *maxdiff = max over all frames and stored points of
 * |out - fine|. out: the frames of opl_solve_burgers(p, u0, o) if the caller has them, or NULL
 * to solve them here too (with o as given, o->grid included). The fine solve makes its own grid
 * (o->grid_flags). stats (may be NULL) receives the fine solve's statistics. Returns the status
 * of the solves (a failure of either names its time as opl_solve_burgers does). */
int opl_solve_burgers_refinement(const opl_burgers_params *p, const double *u0, const opl_solve_opts *o,
                                 const double *out, double *maxdiff, opl_solve_stats *stats, opl_err *err);

/* ---------------------------------------------------------------- KdV */

/* Presets:
 *   "mppde" (alias "default")  the MP-PDE / Lie-point-symmetry benchmark: a = b = 1, n = 256,
 *              L = 128 and T = 100 (set both per trajectory from the draw with
 *              opl_solve_kdv_apply_ic), 140 frames on [0, T] (nt = 139, with_t0 = 1), stored
 *              at 256; ETDRK4 dt = 0.005 (relative drift of int u^2 and H below 6e-10 over
 *              16 draws; dt = 0.01 drifts up to 1.6e-8: see opl_solve_kdv_preset in solve.c). */
int opl_solve_kdv_preset(const char *name, opl_kdv_params *p, opl_solve_opts *o, opl_err *err);
/* Take n, L and T of one MP-PDE draw (kdv.h) into p and o. */
void opl_solve_kdv_apply_ic(const opl_kdv_ic *ic, opl_kdv_params *p, opl_solve_opts *o);
/* Solve u_t + a u u_x + b u_xxx = 0 on [0, L) from u0[p->n]; as opl_solve_burgers. The
 * Crank-Nicolson schemes are refused (OPL_ERR_ARG: L(k) = i b k^3 is not real). */
int opl_solve_kdv(const opl_kdv_params *p, const double *u0, const opl_solve_opts *o, double *out,
                  opl_solve_stats *stats, opl_err *err);

/* ---------------------------------------------------------------- Navier-Stokes */

/* Presets (FNO's Navier-Stokes benchmark, Li et al. 2021, section 5.3): L = 1, FNO forcing,
 * GRF "ns-fno", solve 256^2, one snapshot per unit time, store 64^2 (stride 4), CN-Heun with
 * dt = 1e-4 and CFL limit 1:
 *   "fno-1e-3" (alias "fno")  nu = 1e-3, T = 50;
 *   "fno-1e-4"                nu = 1e-4, T = 30;
 *   "fno-1e-5"                nu = 1e-5, T = 20.
 * Set o->scheme = OPL_SCHEME_FNO to reproduce ns_2d.py's own scheme. */
int opl_solve_ns2d_preset(const char *name, opl_ns2d_params *p, opl_solve_opts *o, opl_grf_params *grf,
                          opl_err *err);
/* Solve the vorticity equation on [0, L)^2 from w0[n n] (physical, x index slow); as
 * opl_solve_burgers, with 2-D frames. */
int opl_solve_ns2d(const opl_ns2d_params *p, const double *w0, const opl_solve_opts *o, double *out,
                   opl_solve_stats *stats, opl_err *err);

/* ---------------------------------------------------------------- Allen-Cahn */

/* Solve u_t = d u_xx + r (u - u^3) on [0, L) from u0[p->n] (pde/allen_cahn.h); as
 * opl_solve_burgers. L(k) = -d k^2 is real: every scheme but fno. */
int opl_solve_allen_cahn(const opl_allen_cahn_params *p, const double *u0, const opl_solve_opts *o, double *out,
                         opl_solve_stats *stats, opl_err *err);

#endif
