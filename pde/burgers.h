/* opl pde — viscous Burgers' equation on a periodic interval [0, L):
 *
 *     u_t + (u^2 / 2)_x = nu u_xx.
 *
 * What the time steppers of solvers/ need:
 *   - for exponential / implicit-explicit steppers on Fourier coefficients (ETDRK4,
 *     Crank-Nicolson/Heun): the diagonal linear symbol and the nonlinear term,
 *         uh_t = L(k) uh + N(uh),   L(k) = -nu k^2,   N(uh) = -(i k / 2) P FFT((P u)^2),
 *     P the 2/3-rule projection of grid.h (input and output dealiased);
 *   - for the adaptive RK core on physical values: the full right-hand side
 *         f(t, u) = IFFT(L uh + N(uh)),  uh = FFT(u).
 * Spectra are in grid.h's unnormalized convention (uh = FFT(u), r2c layout, n/2+1 complex).
 *
 * Threads: an equation object owns the workspace its callbacks use; make one per thread. Those
 * objects may share one grid (opl_burgers_new with a shared grid).
 *
 * The exact solution of the PINN benchmark (Raissi, Perdikaris, Karniadakis, J. Comput. Phys.
 * 378 (2019) 686; reference values from Basdevant et al., "Spectral and finite difference
 * solutions of the Burgers equation", Comput. Fluids 14 (1986) 23) is opl_burgers_cole_hopf.
 */
#ifndef OPL_PDE_BURGERS_H
#define OPL_PDE_BURGERS_H

#include "core/opl.h"
#include "pde/grid.h"

typedef struct opl_burgers_params {
  int n;        /* grid points, even, >= 4 */
  double L;     /* domain length, > 0 */
  double nu;    /* viscosity, > 0 */
} opl_burgers_params;

/* OPL_OK, or OPL_ERR_ARG with a message naming the bad value (n < 4 or odd, L <= 0,
 * nu <= 0, non-finite values). */
int opl_burgers_check(const opl_burgers_params *p, opl_err *err);

typedef struct opl_burgers opl_burgers;

/* An equation object with its own workspace. grid: a 1-D grid of the same n and L to share
 * (borrowed, must outlive the object), or NULL to make one (FFTW_MEASURE plans; flags of
 * opl_grid_new_1d in grid_flags). OPL_ERR_ARG on bad parameters or a grid that does not
 * match; OPL_ERR_NOMEM. */
opl_burgers *opl_burgers_new(const opl_burgers_params *p, const opl_grid *grid, unsigned grid_flags,
                             opl_err *err);
void opl_burgers_free(opl_burgers **b);
const opl_grid *opl_burgers_grid(const opl_burgers *b);
const opl_burgers_params *opl_burgers_params_of(const opl_burgers *b);

/* The linear symbol: Lk[2 nspec] (interleaved complex) = -nu k^2 + 0 i. */
void opl_burgers_linear(const opl_burgers *b, double *Lk);
/* The same symbol as n/2+1 reals Lr[nspec] (solvers/cnheun.h takes a real L). */
void opl_burgers_linear_real(const opl_burgers *b, double *Lr);
/* The nonlinear term (signature of solvers/ opl_etdrk4_fn, opl_cnheun_fn): nh[2 nspec] = -(i k / 2) P FFT((P u)^2) from uh[2 nspec]. self is the
 * opl_burgers; t is unused (autonomous). nh may equal uh. Returns 0. */
int opl_burgers_nonlinear(void *self, double t, const double *uh, double *nh);
/* The full right-hand side on physical values (the solvers/rk.h rhs signature):
 * dudt[n] = f(t, u[n]). u and dudt are double arrays, distinct. Returns 0. */
int opl_burgers_rhs(void *self, double t, const void *u, void *dudt);

/* Energy E = 1/2 int u^2 dx (trapezoid, exact for band-limited u). */
double opl_burgers_energy(const opl_burgers *b, const double *u);
/* Dissipation D = nu sum_k k^2 |c_k|^2 L over the full spectrum (c_k = uh_k / n), which is
 * nu int u_x^2 dx whenever the Nyquist coefficient of u is 0, and in all cases the exact rate
 * of the discrete energy budget: dE/dt = <u, f(u)> = -D (the dealiased advection term
 * conserves energy exactly). Uses the object's workspace. */
double opl_burgers_dissipation(opl_burgers *b, const double *u);

/* Exact solution of u_t + u u_x = nu u_xx on the real line with u(x, 0) = -sin(pi x) (period 2,
 * so also the solution on [-1, 1] periodic), by the Cole-Hopf transform:
 *   u(x,t) = -int sin(pi(x-y)) F(x-y) G(y) dy / int F(x-y) G(y) dy,
 *   F(s) = exp(-cos(pi s) / (2 pi nu)),  G(y) = exp(-y^2 / (4 nu t)).
 * Evaluated after y = sqrt(4 nu t) z by the trapezoid rule in z with a log-sum-exp shift: the
 * exponent's curvature in z is at most 2 + 2 pi t, so a step h = 0.3 / sqrt(2 + 2 pi t) puts
 * the trapezoid error (exponentially small in 1/h for this entire integrand) at rounding level
 * (changes below 1e-14 with h/2 and a 1.5x wider range),
 * and |z| <= sqrt(1/(pi nu) + 40) covers every term within e^-40 of the largest. t <= 0
 * returns -sin(pi x). nu > 0. */
double opl_burgers_cole_hopf(double x, double t, double nu);

#endif
