/* opl pde — the Allen-Cahn equation on a periodic interval [0, L):
 *
 *     u_t = d u_xx + r (u - u^3)      (d: diffusion > 0, r: reaction >= 0),
 *
 * the L^2 gradient flow of the energy
 *     E(u) = int ( d/2 u_x^2 + r/4 (u^2 - 1)^2 ) dx,    dE/dt = -int u_t^2 dx <= 0,
 * with the stable equilibria u = +-1 and the unstable one u = 0 (S. M. Allen, J. W. Cahn, "A
 * microscopic theory for antiphase boundary motion and its application to antiphase domain
 * coarsening", Acta Metall. 27 (1979) 1085). The PINN benchmark (pde/pinn_problems.h) is
 * d = 1e-4, r = 5 on [-1, 1].
 *
 * For the steppers of solvers/ (spectra in grid.h's unnormalized r2c convention), split as in
 * A.-K. Kassam, L. N. Trefethen, "Fourth-order time-stepping for stiff PDEs", SIAM J. Sci.
 * Comput. 26 (2005) 1214 (their Allen-Cahn example):
 *     uh_t = L(k) uh + N(uh),   L(k) = -d k^2 (real),   N(uh) = r P FFT(v - v^3),  v = IFFT(P uh),
 * P the 2/3-rule projection of grid.h. The 2/3 rule removes all aliasing of a square but not of
 * a cube (that needs |m| < n/4): a resolved solution, whose spectrum is at rounding level above
 * n/4, is unaffected; under-resolved ones are not the use. The full right-hand side on physical
 * values is f(t, u) = IFFT(L uh + N(uh)).
 *
 * Threads: an equation object owns its workspace; one per thread, on one shared grid. */
#ifndef OPL_PDE_ALLEN_CAHN_H
#define OPL_PDE_ALLEN_CAHN_H

#include "core/opl.h"
#include "pde/grid.h"

typedef struct opl_allen_cahn_params {
  int n;            /* grid points, even, >= 4 */
  double L;         /* domain length, > 0 */
  double diffusion; /* d > 0 */
  double reaction;  /* r >= 0 */
} opl_allen_cahn_params;

/* OPL_OK, or OPL_ERR_ARG naming the bad value (n < 4 or odd, L <= 0, diffusion <= 0,
 * reaction < 0, non-finite values). */
int opl_allen_cahn_check(const opl_allen_cahn_params *p, opl_err *err);

typedef struct opl_allen_cahn opl_allen_cahn;

/* An equation object with its own workspace, on a shared 1-D grid of the same n and L
 * (borrowed) or, with grid == NULL, on its own grid made with grid_flags. OPL_ERR_ARG on bad
 * parameters or a mismatched grid; OPL_ERR_NOMEM. */
opl_allen_cahn *opl_allen_cahn_new(const opl_allen_cahn_params *p, const opl_grid *grid, unsigned grid_flags,
                                   opl_err *err);
void opl_allen_cahn_free(opl_allen_cahn **a);
const opl_grid *opl_allen_cahn_grid(const opl_allen_cahn *a);
const opl_allen_cahn_params *opl_allen_cahn_params_of(const opl_allen_cahn *a);

/* Lk[2 nspec] (interleaved complex) = -d k^2 + 0 i. */
void opl_allen_cahn_linear(const opl_allen_cahn *a, double *Lk);
/* The same as nspec reals (solvers/cnheun.h). */
void opl_allen_cahn_linear_real(const opl_allen_cahn *a, double *Lr);
/* nh[2 nspec] = r P FFT(v - v^3), v = IFFT(P uh), from uh[2 nspec] (opl_etdrk4_fn signature;
 * t unused; nh may equal uh). Returns 0. */
int opl_allen_cahn_nonlinear(void *self, double t, const double *uh, double *nh);
/* dudt[n] = f(t, u[n]) (solvers/rk.h rhs signature; double arrays, distinct). Returns 0. */
int opl_allen_cahn_rhs(void *self, double t, const void *u, void *dudt);
/* E(u) = int d/2 u_x^2 + r/4 (u^2 - 1)^2 dx (u_x spectral, trapezoid sum). Uses the object's
 * workspace. */
double opl_allen_cahn_energy(opl_allen_cahn *a, const double *u);

#endif
