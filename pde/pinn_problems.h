/* opl pde — the PINN benchmark problems and their reference solutions: one table that a PINN
 * trainer, `opl eval` and `opl predict` share.
 *
 * Every problem is a scalar 1-D evolution equation for u(x, t) on x in [x0, x1], t in [0, T],
 * written in ONE residual form with five coefficients (those a problem does not use are 0):
 *
 *     R(u) = u_t + adv u u_x - diff u_xx + disp u_xxx + cubic u^3 - lin u = 0,
 *
 * with the initial condition u(x, 0) = u0(x) and either periodic boundaries (u and all its
 * derivatives equal at x0 and x1) or homogeneous Dirichlet boundaries u(x0, t) = u(x1, t) = 0.
 *
 *   "burgers"     u_t + u u_x = (0.01 / pi) u_xx on [-1, 1], T = 1, Dirichlet u(+-1) = 0,
 *                 u0 = -sin(pi x)   (M. Raissi, P. Perdikaris, G. E. Karniadakis,
 *                 "Physics-informed neural networks", J. Comput. Phys. 378 (2019) 686).
 *                 Reference: the exact solution by the Cole-Hopf transformation, evaluated by
 *                 quadrature against the Hermite weight (C. Basdevant, M. Deville, P. Haldenwang,
 *                 J. M. Lacroix, J. Ouazzani, R. Peyret, P. Orlandi, A. T. Patera, "Spectral and
 *                 finite difference solutions of the Burgers equation", Comput. Fluids 14 (1986)
 *                 23-41): opl_burgers_cole_hopf of pde/burgers.h, the trapezoid rule in the
 *                 Hermite variable z (geometrically convergent, with a log-sum-exp shift), which
 *                 test_pinn_problems checks against 200-node Gauss-Hermite quadrature (2.4e-14)
 *                 and against opl's spectral Burgers solver at 4096 points (2e-13 away from the
 *                 shock).
 *   "allen-cahn"  u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0 on [-1, 1] periodic, T = 1,
 *                 u0 = x^2 cos(pi x)   (the PINN benchmark of Raissi et al. 2019 and of
 *                 S. Wang, S. Sankaran, H. Wang, P. Perdikaris, "An expert's guide to training
 *                 physics-informed neural networks", 2023 (jaxpi)).
 *                 Reference: pde/allen_cahn.h solved by ETDRK4 (pde/solve.h) on a fine grid.
 *   "kdv"         u_t + u u_x + 0.022^2 u_xxx = 0 on [-1, 1] periodic, T = 1, u0 = cos(pi x)
 *                 (N. J. Zabusky, M. D. Kruskal, Phys. Rev. Lett. 15 (1965) 240; jaxpi's KdV).
 *                 Reference: pde/kdv.h (a = 1, b = 0.022^2, L = 2, x shifted by -1) solved by
 *                 ETDRK4 on a fine grid.
 *
 * The reference grid: x_i = x0 + i (x1 - x0) / (nx - 1), i = 0..nx-1 (both ends included; for a
 * periodic problem the two end columns are equal), t_j = j T / (nt - 1), j = 0..nt-1 (0 and T
 * included), u[j * nx + i] = u(x_i, t_j), float64. The row t = 0 is u0 sampled exactly. The
 * solver resolution is chosen internally, finer than the output grid (Allen-Cahn 4096 points,
 * KdV 1024; measured self-convergence ~1e-9 and ~1e-10 in pinn_problems.c); the solver starts
 * from the truncated Fourier series of u0 and its fields are evaluated at x_i by their
 * trigonometric interpolant (exact sampling of the spectral solution). Every reference
 * computes in 0.2-2 s at nx = 256, nt = 101 on one core (burgers ~0.3 s, allen-cahn ~1.3 s,
 * kdv ~1.7 s measured on a busy 2-core machine; test_pinn_problems prints them).
 *
 * Threads: the table is constant; opl_pinn_reference may run concurrently on different
 * outputs (each call owns its workspaces). The library never prints. */
#ifndef OPL_PDE_PINN_PROBLEMS_H
#define OPL_PDE_PINN_PROBLEMS_H

#include "core/opl.h"

typedef enum { OPL_PINN_PERIODIC = 0, OPL_PINN_DIRICHLET = 1 } opl_pinn_bc;

typedef struct opl_pinn_problem {
  const char *name;      /* "burgers", "allen-cahn", "kdv" */
  const char *equation;  /* the equation as text, e.g. "u_t + u u_x = (0.01/pi) u_xx" */
  double x0, x1;         /* spatial domain [x0, x1] */
  double T;              /* final time: t in [0, T] */
  int bc;                /* opl_pinn_bc; Dirichlet values are 0 at both ends */
  /* Coefficients of R(u) = u_t + adv u u_x - diff u_xx + disp u_xxx + cubic u^3 - lin u. */
  double adv, diff, disp, cubic, lin;
  double (*u0)(double x); /* the initial condition on [x0, x1] */
} opl_pinn_problem;

/* Number of problems in the table, and problem i (0 <= i < count; NULL otherwise). */
int opl_pinn_problem_count(void);
const opl_pinn_problem *opl_pinn_problem_at(int i);
/* The problem called name ("burgers", "allen-cahn", "kdv"; also "allen_cahn" and "allencahn").
 * Returns it, or NULL with OPL_ERR_ARG in err naming the unknown name and listing the known
 * ones (err may be NULL). */
const opl_pinn_problem *opl_pinn_problem_find(const char *name, opl_err *err);

/* The PDE residual at one point from the values of u and its derivatives there:
 * R = u_t + adv u u_x - diff u_xx + disp u_xxx + cubic u^3 - lin u. */
double opl_pinn_residual(const opl_pinn_problem *p, double u, double u_t, double u_x, double u_xx,
                         double u_xxx);

/* Solver options of a reference (for convergence studies; pass NULL for the defaults). */
typedef struct opl_pinn_ref_opts {
  int n;       /* solver points on the period (even, >= 16); 0: the problem's default */
  double dt;   /* solver step (> 0); 0: the problem's default */
} opl_pinn_ref_opts;

/* Statistics of a reference computation (may be NULL). */
typedef struct opl_pinn_ref_stats {
  int n;          /* solver points used (0 for the exact Burgers solution) */
  double dt;      /* solver step used (0 for the exact Burgers solution) */
  long long steps;/* solver steps taken */
  double wall;    /* seconds */
} opl_pinn_ref_stats;

/* The reference solution of p on the uniform grid above: x[nx], t[nt], u[nt * nx] (caller
 * arrays; x or t may be NULL when not wanted). nx >= 2, nt >= 2. opts may be NULL.
 * Returns OPL_OK, or OPL_ERR_ARG naming the bad value (NULL problem or output, nx < 2,
 * nt < 2, nx * nt too large, bad opts), OPL_ERR_NOMEM, or a solver's status (with its
 * message, prefixed "pinn_reference <name>: "). On failure u is undefined. */
int opl_pinn_reference(const opl_pinn_problem *p, int nx, int nt, const opl_pinn_ref_opts *opts, double *x,
                       double *t, double *u, opl_pinn_ref_stats *stats, opl_err *err);
/* The same by name (an unknown name is OPL_ERR_ARG, as opl_pinn_problem_find). */
int opl_pinn_reference_named(const char *name, int nx, int nt, double *x, double *t, double *u, opl_err *err);

#endif
