/* opl pde — PDE residuals of space-time fields as differentiable ops (floor 2, DESIGN.md:
 * "residuals as differentiable ops"), the physics loss of the physics-informed neural operator
 * (Li, Zheng, Kovachki, Jin, Chen, Liu, Azizzadenesheli, Anandkumar, "Physics-Informed Neural
 * Operator for Learning Partial Differential Equations", 2021, arXiv:2111.03794).
 *
 * A field u is given on a uniform space-time grid: T >= 3 frames t_j = t_0 + j dt, each a
 * periodic field on the grid of grid.h (1-D [0, L) with X points, or 2-D [0, L)^2 with X = Y
 * points). The residual is
 *
 *     R = D_t u - f(u),
 *
 * f the right-hand side that the reference solver integrates, evaluated frame by frame by the
 * equation objects of this folder themselves (opl_burgers_rhs, opl_kdv_rhs, opl_ns2d_rhs):
 *     Burgers   f = nu u_xx - (1/2) (u^2)_x                        (u_t + u u_x - nu u_xx)
 *     KdV       f = -b u_xxx - (a/2) (u^2)_x                       (u_t + a u u_x + b u_xxx)
 *     NS        f = nu Lap w - (u, v) . grad w + forcing,  -Lap psi = w, (u, v) = (psi_y, -psi_x)
 * Space derivatives are spectral (the grid's wavenumbers), products dealiased by the 2/3 rule
 * exactly as in the solvers (grid.h: the factors are projected before the product and the
 * product after it), the velocity comes from the stream function spectrally. So the residual
 * of a reference solution stored at every step would be zero up to the solver's own error: what
 * remains for a stored trajectory is the error of the time rule below.
 *
 * Time rule: second-order finite differences, central inside and one-sided at the two ends,
 *     D_t u_0     = (-3 u_0 + 4 u_1 - u_2) / (2 dt),
 *     D_t u_j     = (u_{j+1} - u_{j-1}) / (2 dt),            0 < j < T - 1,
 *     D_t u_{T-1} = (3 u_{T-1} - 4 u_{T-2} + u_{T-3}) / (2 dt),
 * all of error O(dt^2) (the one-sided ends carry twice the central constant: u_ttt dt^2 / 3
 * against u_ttt dt^2 / 6). Not spectral in time: a trajectory is not periodic in t, and a
 * Fourier derivative of its frames would differentiate the jump between the last and the first
 * frame (Gibbs oscillations of O(1) over the whole interval). PINO's Burgers code also takes
 * u_t by finite differences and u_x spectrally.
 *
 * Layout: frames first, the space-time task's prediction (train/task.h): u [N, T, X] (1-D) or
 * [N, T, X, Y] (2-D), row-major; R has the shape of u. The op computes in double whatever the
 * precision of the build (the input is widened, the output rounded to opl_real) and runs the
 * N T frames in parallel (OpenMP, one equation object per thread), each frame alone, so the
 * result does not depend on the thread count.
 *
 * Backward (written once, beside the forward): dL/du = D_t^T G - J_f(u)^T G frame by frame,
 * G = dL/dR, with the transposes of the discrete operators (P the 2/3 projection, D a
 * derivative, M_w the multiplication by a field w; P and even derivatives are symmetric, odd
 * derivatives antisymmetric, with the Nyquist rule of grid.h):
 *     Burgers/KdV  J^T g = S^T g + a P[(P u) P(D_x g)]      (S the linear symbol, a = 1 for Burgers)
 *     NS           J^T g = nu Lap g + P[ U_y(w_x Pg) + D_x(u Pg) + V_x(w_y Pg) + D_y(v Pg) ]
 * where U_y = D_y (-Lap)^-1 and V_x = -D_x (-Lap)^-1 make (u, v) from w, and u, v, w_x, w_y are
 * the dealiased fields of the forward. Gradient checks: tests/pde/test_residual.c.
 */
#ifndef OPL_PDE_RESIDUAL_H
#define OPL_PDE_RESIDUAL_H

#include "core/opl.h"
#include "core/io.h"

typedef enum { OPL_RESID_BURGERS = 0, OPL_RESID_KDV = 1, OPL_RESID_NS2D = 2 } opl_resid_equation;

typedef struct opl_resid_params {
  int equation;     /* opl_resid_equation */
  double L;         /* domain length (the side of the square in 2-D), > 0 */
  double nu;        /* Burgers, NS: viscosity > 0 */
  double a, b;      /* KdV: u_t + a u u_x + b u_xxx = 0, finite */
  int forcing;      /* NS: opl_ns2d_forcing (pde/ns2d.h) */
  double dt;        /* time between frames, > 0 */
} opl_resid_params;

/* "burgers", "kdv", "ns" (or "unknown"). */
const char *opl_resid_equation_name(int equation);

/* OPL_OK, or OPL_ERR_ARG naming the bad value (unknown equation, L, nu, a, b, dt not finite or
 * out of range, unknown forcing). */
int opl_resid_check(const opl_resid_params *p, opl_err *err);

/* The parameters of a data set's equation from its provenance attributes attrs[0..nattrs)
 * (datasets/generate.h: equation, L, nu or a and b, forcing, domain) and dt. `what` names the
 * data set in messages. Errors, OPL_ERR_ARG naming the attribute and `what`: no attributes or
 * no "equation" (a file without opl's provenance), an equation without a residual, a missing or
 * non-numeric parameter, a KdV set whose domain varies per sample ("domain" = "per-sample":
 * one L is needed), an unknown forcing. */
int opl_resid_from_provenance(const opl_kv *attrs, int nattrs, double dt, const char *what, opl_resid_params *p,
                              opl_err *err);

typedef struct opl_resid opl_resid;

/* A residual evaluator: parameters (checked), and the equation objects it makes on first use
 * for each resolution met (FFTW_ESTIMATE plans: the same algorithms in every process). Must
 * outlive every tape node the op records with it. NULL and err filled on failure. */
opl_resid *opl_resid_new(const opl_resid_params *p, opl_err *err);
void opl_resid_free(opl_resid **r);
const opl_resid_params *opl_resid_params_of(const opl_resid *r);

/* The residual on double arrays: u, R [N, T, X(, Y)] (ny = 1 in 1-D; ny = nx in 2-D), R
 * distinct from u. Errors: T < 3, an extent that is odd or < 4, a 2-D grid that is not
 * square, OPL_ERR_SHAPE naming the extents; OPL_ERR_NOMEM. */
int opl_resid_apply(opl_resid *r, int64_t N, int64_t T, int64_t nx, int64_t ny, const double *u, double *R,
                    opl_err *err);

/* The op: u [N, T, X] (Burgers, KdV) or [N, T, X, Y] (NS) real -> R of the same shape,
 * differentiable in u. Shape errors (rank, T < 3, extents as opl_resid_apply) are sticky
 * OPL_ERR_SHAPE naming the shape; r NULL is OPL_ERR_ARG. */
opl_tensor *opl_resid_op(opl_ctx *c, opl_resid *r, opl_tensor *u);

#endif
