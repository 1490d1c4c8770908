/* opl pde — steady Darcy flow on the unit square (floor 2, DESIGN.md):
 *
 *     -div(a(x) grad u(x)) = f(x)  on (0, 1)^2,   u = 0 on the boundary,
 *
 * with the coefficient a = psi(g) of a Gaussian random field g, the data of Li et al., "Fourier
 * neural operator for parametric partial differential equations" (ICLR 2021), Darcy section.
 *
 * ---------------------------------------------------------------- the random field
 * g ~ N(0, (-Laplacian + tau^2 I)^(-alpha)) with zero-Neumann boundary conditions on [0, 1]^2,
 * sampled by its Karhunen-Loeve (cosine) series, as the FNO repository's GRF.m does:
 *
 *     g(x, y) = sum_{k1, k2 = 0 .. s-1, (k1, k2) != 0}  c_k xi_k cos(pi k1 x) cos(pi k2 y),
 *     c_k = tau^(alpha - 1) (pi^2 (k1^2 + k2^2) + tau^2)^(-alpha/2),
 *
 * xi_k independent standard normals drawn in row-major (k1, k2) order, s^2 of them (the mean
 * mode's draw is made and discarded, as GRF.m zeroes L(1, 1)). The series is evaluated on the
 * nodes x_i = i / (s - 1) by FFTW's REDFT00 (DCT-I), which is exactly a cosine series on those
 * nodes. (GRF.m evaluates with MATLAB's idct2, i.e. at cell midpoints (i + 1/2) / s and with
 * orthonormal DCT scaling; the covariance is the same operator, the scale differs, and the
 * coefficient psi(g) depends only on the sign of g, so the scale does not matter.)
 * psi(g) = a_pos where g >= 0, a_neg where g < 0 (FNO: 12 and 3).
 *
 * ---------------------------------------------------------------- the discretization
 * Nodes x_i = i / (s - 1), i = 0 .. s-1 (both axes; a and u are [s, s] row-major with x the
 * first index); the five-point stencil, the coefficient on the face between two neighbouring
 * nodes equal to the arithmetic mean of a at those nodes; scaled by (s - 1)^2; u = 0 on the
 * boundary nodes. For an interior node p with neighbours q:
 *     (s-1)^2 sum_q (a_p + a_q)/2 (u_p - u_q) = f_p.
 * The unknowns are the (s-2)^2 interior nodes; the matrix is symmetric positive definite
 * (a > 0). It is solved with SuiteSparse CHOLMOD (Chen, Davis, Hager, Rajamanickam, "Algorithm
 * 887: CHOLMOD, supernodal sparse Cholesky factorization and update/downdate", ACM TOMS 2008):
 * one symbolic analysis (nested-dissection ordering, supernodes) per resolution
 * (opl_darcy_new), a supernodal numeric factorization LL' per sample (opl_darcy_solve).
 * CHOLMOD's print level is 0: nothing is printed; its failures become statuses.
 *
 * Errors: functions return an opl_status and fill an opl_err (may be NULL) with a message
 * starting "darcy: ". Nothing is printed.
 */
#ifndef OPL_PDE_DARCY_H
#define OPL_PDE_DARCY_H

#include <stdint.h>
#include "core/opl.h"

typedef struct opl_darcy_params {
  double tau;     /* > 0 */
  double alpha;   /* > 0 (alpha > 1 for a field with finite variance in 2-D) */
  double a_pos;   /* coefficient where g >= 0, > 0 */
  double a_neg;   /* coefficient where g < 0, > 0 */
} opl_darcy_params;

/* Presets:
 *   "fno"    tau 3, alpha 2, psi 12 / 3; solved at 421^2, stored at 85^2 (stride 5): the FNO
 *            benchmark (piececonst_r421_N1024_smooth1/2.mat);
 *   "rough"  tau 5, alpha 2, psi 12 / 3; solved at 512^2, stored at 256^2: the rough set of He,
 *            Liu, Xu, "MgNO: efficient parameterization of linear operators via multigrid"
 *            (ICLR 2024). Its coefficient map is not stated in the authors' data description
 *            that we could find; the FNO map psi = 12 / 3 is used.
 * *res and *store_res (may be NULL) get the preset's resolutions. OPL_ERR_ARG for an unknown
 * name. */
int opl_darcy_preset(const char *name, opl_darcy_params *p, int *res, int *store_res, opl_err *err);
/* Check parameters: OPL_ERR_ARG naming the first bad value (tau <= 0, alpha <= 0, a_pos or
 * a_neg <= 0, non-finite). */
int opl_darcy_check(const opl_darcy_params *p, opl_err *err);

/* ---------------------------------------------------------------- Neumann random field */

typedef struct opl_darcy_grf opl_darcy_grf;
/* A sampler of g on s x s nodes (s >= 3): makes the DCT-I plan (FFTW_ESTIMATE, so the same
 * bits in every process). OPL_ERR_ARG for s < 3 or bad tau / alpha; OPL_ERR_NOMEM. Immutable
 * after creation: may be shared by threads (each passes its own work). */
opl_darcy_grf *opl_darcy_grf_new(int s, double tau, double alpha, opl_err *err);
void opl_darcy_grf_free(opl_darcy_grf **f);
/* Doubles of work one sample needs: s^2. */
int64_t opl_darcy_grf_work_size(const opl_darcy_grf *f);
/* Sample number `index` of the data set of `seed` (stream opl_rng_split(seed stream, index),
 * s^2 normals): g [s, s] on the nodes. work [opl_darcy_grf_work_size]. g and work must come
 * from fftw_malloc-compatible (16-byte aligned) memory. */
void opl_darcy_grf_sample(const opl_darcy_grf *f, uint64_t seed, uint64_t index, double *g, double *work);
/* a [s*s] = psi(g [s*s]). */
void opl_darcy_psi(const opl_darcy_params *p, const double *g, double *a, int64_t n);

/* ---------------------------------------------------------------- operator and solve */

/* The stencil row of interior node (i, j) of the s x s grid (1 <= i, j <= s-2): c[0] the
 * diagonal, c[1..4] the (negative) couplings to (i-1, j), (i+1, j), (i, j-1), (i, j+1), all
 * scaled by (s-1)^2 (couplings to boundary nodes included: they multiply u = 0). */
void opl_darcy_stencil(int s, const double *a, int i, int j, double c[5]);
/* y = A x on the interior unknowns: x, y [(s-2)^2], unknown (i-1)(s-2) + (j-1) for node
 * (i, j); a [s, s]. */
void opl_darcy_apply(int s, const double *a, const double *x, double *y);

typedef struct opl_darcy opl_darcy;
/* The solver for s x s nodes (s >= 3): builds the sparsity pattern and runs CHOLMOD's symbolic
 * analysis once. OPL_ERR_ARG for s < 3; OPL_ERR_NOMEM; a CHOLMOD failure as its status with
 * CHOLMOD's code in the message. Not thread-safe: use one per thread (opl_darcy_clone copies
 * the analysis without redoing it). */
opl_darcy *opl_darcy_new(int s, opl_err *err);
/* A solver with its own CHOLMOD workspace and a copy of d's symbolic factor (no new
 * analysis). NULL and err on failure. */
opl_darcy *opl_darcy_clone(const opl_darcy *d, opl_err *err);
void opl_darcy_free(opl_darcy **d);
int opl_darcy_size(const opl_darcy *d);
/* Solve with coefficient a [s, s] (every value finite and > 0: else OPL_ERR_ARG naming the
 * first bad node) and right-hand side f [s, s] (NULL: f = 1; its boundary values are unused):
 * u [s, s] gets the solution, 0 on the boundary. Numeric factorization + two triangular solves,
 * on the calling thread alone in any OpenMP context (CHOLMOD's own regions and its BLAS on one
 * thread; the caller's nthreads and max-active-levels are as before on return), so u's bits do
 * not depend on the thread count. CHOLMOD failures (not positive definite, out of memory) are
 * returned as statuses. */
int opl_darcy_solve(opl_darcy *d, const double *a, const double *f, double *u, opl_err *err);

#endif
