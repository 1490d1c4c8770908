/* opl solvers — Crank-Nicolson for a diagonal linear part with an explicit Heun (or Euler)
 * treatment of the nonlinear part, the scheme of the 2-D Navier-Stokes vorticity data of the
 * FNO benchmark (Li et al., "Fourier neural operator for parametric partial differential
 * equations", ICLR 2021; its generator ns_2d.py uses the Euler variant):
 *   u_t = L u + N(u, t),   L diagonal and REAL (e.g. -nu |k|^2), N a callback.
 *
 * Data layout: u and N(u) are n COMPLEX Fourier coefficients stored interleaved as 2n doubles
 * (re, im, ...), the layout of fftw_complex; L is n reals, one per coefficient (it multiplies
 * both parts). For a real system pass imaginary parts 0.
 *
 * With A = (1 + dt L / 2) / (1 - dt L / 2) and B = dt / (1 - dt L / 2) per coefficient
 * (precomputed), one step of size dt from (t, u) is, exactly:
 *   OPL_CN_EULER (Crank-Nicolson + explicit Euler, first order when N != 0):
 *     u+ = [(1 + dt L/2) u + dt N(u, t)] / (1 - dt L/2)           = A u + B N(u, t)
 *   OPL_CN_HEUN (Crank-Nicolson + Heun predictor-corrector, second order):
 *     u* = [(1 + dt L/2) u + dt N(u, t)] / (1 - dt L/2)           = A u + B N(u, t)
 *     u+ = [(1 + dt L/2) u + dt/2 (N(u, t) + N(u*, t + dt))] / (1 - dt L/2)
 *        = A u + (B/2) (N(u, t) + N(u*, t + dt))
 * i.e. the trapezoidal rule u+ - u = dt/2 L (u + u+) + dt/2 (N(u) + N(u*)). For N = 0 both
 * reduce to u+ = A u: the Crank-Nicolson amplification factor (1 + z/2)/(1 - z/2), z = dt L.
 *
 * CFL check (optional, opl_cnheun_set_cfl): once per step, right after N(u, t) is evaluated and
 * before u changes, speed(user, t, u) returns max |velocity| of the state u (a PDE layer may
 * return the value it computed inside N(u, t)); if dt * speed / dx > limit the step fails with
 * OPL_ERR_CONVERGENCE and u is left unchanged.
 *
 * Cost of a step: 1 (Euler) or 2 (Heun) calls of N and 1 or 2 passes over the vectors; nothing
 * is allocated after create. Loops use OpenMP when n >= 32768.
 */
#ifndef OPL_SOLVERS_CNHEUN_H
#define OPL_SOLVERS_CNHEUN_H

#include <stdint.h>
#include "core/opl.h"

typedef enum { OPL_CN_HEUN = 0, OPL_CN_EULER = 1 } opl_cnheun_variant;

/* The nonlinear term nu = N(u, t); u, nu [2n] interleaved complex, distinct. Returns 0 on
 * success; any other value stops the step with OPL_ERR_STATE. */
typedef int (*opl_cnheun_fn)(void *user, double t, const double *u, double *nu);
/* max |velocity| of the state u [2n] at time t (>= 0). */
typedef double (*opl_cnheun_speed_fn)(void *user, double t, const double *u);

typedef struct opl_cnheun opl_cnheun;

/* A stepper of fixed step dt > 0 for n >= 1 coefficients with real diagonal L [n] (copied;
 * finite, and 1 - dt L/2 != 0), nonlinear term N (user is passed to N and to the speed
 * callback). Returns NULL and fills err (OPL_ERR_ARG naming the value, OPL_ERR_NOMEM). */
opl_cnheun *opl_cnheun_create(int64_t n, const double *L, double dt, opl_cnheun_variant variant,
                              opl_cnheun_fn N, void *user, opl_err *err);
/* Free the stepper; sets *s to NULL. Accepts NULL and *s == NULL. */
void opl_cnheun_free(opl_cnheun **s);

/* Enable the CFL check with grid spacing dx > 0 and limit > 0 (e.g. 1), or disable it with
 * speed = NULL. OPL_ERR_ARG names a bad dx or limit. */
int opl_cnheun_set_cfl(opl_cnheun *s, opl_cnheun_speed_fn speed, double dx, double limit,
                       opl_err *err);

/* One step: u [2n] (in/out) from *t to *t + dt. Failures (the message gives t):
 * OPL_ERR_STATE (N returned non-zero; u unchanged), OPL_ERR_CONVERGENCE (CFL violated; u
 * unchanged), OPL_ERR_NONFINITE (non-finite speed — u unchanged — or non-finite new state — u
 * then holds it). */
int opl_cnheun_step(opl_cnheun *s, double *t, double *u, opl_err *err);
/* nsteps >= 0 steps; *t becomes t0 + k dt after step k (no drift). Stops at the first failure
 * with *t the time of the last good state. */
int opl_cnheun_steps(opl_cnheun *s, int64_t nsteps, double *t, double *u, opl_err *err);

typedef struct opl_cnheun_stats {
  int64_t nfev;      /* calls of N */
  int64_t nsteps;    /* completed steps */
  double cfl_last;   /* Courant number dt * speed / dx of the last check (0 if none) */
  double cfl_max;    /* largest Courant number seen */
} opl_cnheun_stats;
void opl_cnheun_get_stats(const opl_cnheun *s, opl_cnheun_stats *st);

#endif
