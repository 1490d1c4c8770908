/* opl pde — 2-D incompressible Navier-Stokes in vorticity form on the periodic square
 * [0, L)^2 (FNO's setting: L = 1):
 *
 *     omega_t + u . grad omega = nu Lap omega + f,    -Lap psi = omega,    u = (psi_y, -psi_x).
 *
 * Fields are n x n, row-major, x index slow (grid.h); spectra in grid.h's unnormalized r2c
 * layout (n rows of n/2+1). In Fourier space, with psi_hat = omega_hat / |k|^2 (0 at k = 0):
 *     u_hat = i ky psi_hat,  v_hat = -i kx psi_hat,
 *     omega_hat_t = L(k) omega_hat + N(omega_hat),   L(k) = -nu |k|^2,
 *     N(omega_hat) = -P FFT( u omega_x + v omega_y ) + f_hat,
 * where u, v, omega_x, omega_y are synthesized from P omega_hat (P: the 2/3 rule of grid.h,
 * the square truncation). One evaluation of N costs 4 inverse transforms (one batched FFTW
 * plan of 4) and 1 forward transform, plus three passes over the spectrum / the grid: the
 * state can stay in Fourier space (the design for ETDRK4 / Crank-Nicolson steppers).
 * The full right-hand side on physical values, f(t, omega) = IFFT(L omega_hat + N(omega_hat)),
 * adds one forward and one inverse transform (for the adaptive RK core).
 *
 * Forcing: none, or FNO's f = 0.1 (sin(2 pi (x + y) / L) + cos(2 pi (x + y) / L)) (Li et al.,
 * "Fourier neural operator for parametric PDEs", ICLR 2021, section 5.3), or any field set
 * with opl_ns2d_set_forcing.
 *
 * Diagnostics (spectral, exact for the grid field; the sums run over the full Hermitian
 * spectrum, Nyquist bins included):
 *     E = 1/2 int |u|^2 = 1/2 int |omega|^2 / |k|^2 (Fourier),   Z = 1/2 int omega^2.
 * With these definitions the unforced budget is dE/dt = -nu int |grad u|^2 = -nu int omega^2
 * = -2 nu Z (the dealiased advection term conserves E exactly for fields in the kept band),
 * and with forcing dE/dt = -2 nu Z + int psi f.
 *
 * Exact solutions on [0, 1)^2: omega = A sin(2 pi x) sin(2 pi y) (a single shell |k|^2 = 8 pi^2:
 * psi is proportional to omega, so u . grad omega = 0) decays as exp(-8 pi^2 nu t); with FNO's
 * forcing (also on that shell) omega* = f / (8 pi^2 nu) is steady.
 *
 * Threads: an equation object owns its workspace; make one per thread on one shared grid.
 */
#ifndef OPL_PDE_NS2D_H
#define OPL_PDE_NS2D_H

#include "core/opl.h"
#include "pde/grid.h"

typedef enum {
  OPL_NS2D_FORCE_NONE = 0,
  OPL_NS2D_FORCE_FNO = 1,    /* 0.1 (sin 2 pi (x + y) / L + cos 2 pi (x + y) / L) */
} opl_ns2d_forcing;

typedef struct opl_ns2d_params {
  int n;         /* points per axis, even, >= 4 */
  double L;      /* side of the square, > 0 (FNO: 1) */
  double nu;     /* viscosity, > 0 (FNO: 1e-3, 1e-4, 1e-5) */
  int forcing;   /* opl_ns2d_forcing */
} opl_ns2d_params;

/* OPL_OK, or OPL_ERR_ARG naming the bad value (n < 4 or odd, L <= 0, nu <= 0, non-finite,
 * unknown forcing). */
int opl_ns2d_check(const opl_ns2d_params *p, opl_err *err);

typedef struct opl_ns2d opl_ns2d;

/* An equation object (with its own workspace) on a shared n x n grid of side L (borrowed), or,
 * with grid == NULL, on its own grid made with grid_flags. OPL_ERR_ARG on bad parameters or a
 * mismatched grid; OPL_ERR_NOMEM. */
opl_ns2d *opl_ns2d_new(const opl_ns2d_params *p, const opl_grid *grid, unsigned grid_flags, opl_err *err);
void opl_ns2d_free(opl_ns2d **ns);
const opl_grid *opl_ns2d_grid(const opl_ns2d *ns);
const opl_ns2d_params *opl_ns2d_params_of(const opl_ns2d *ns);
/* Replace the forcing by the field f[n n] (copied), or remove it with f == NULL. */
void opl_ns2d_set_forcing(opl_ns2d *ns, const double *f);
/* The forcing on the grid: f[n n] (zeros without forcing). Uses the object's workspace. */
void opl_ns2d_forcing_field(opl_ns2d *ns, double *f);

/* Lk[2 nspec] = -nu |k|^2 + 0 i. */
void opl_ns2d_linear(const opl_ns2d *ns, double *Lk);
/* The same symbol as n reals Lr[nspec] = -nu |k|^2 (solvers/cnheun.h takes a real L). */
void opl_ns2d_linear_real(const opl_ns2d *ns, double *Lr);
/* nh[2 nspec] = N(wh) = -P FFT(u omega_x + v omega_y) + f_hat from wh[2 nspec]. nh may equal
 * wh. t is unused (steady forcing). Returns 0. The signature of opl_etdrk4_fn / opl_cnheun_fn
 * (solvers/). Also records max |u| of the dealiased velocity it synthesized (opl_ns2d_speed). */
int opl_ns2d_nonlinear(void *self, double t, const double *wh, double *nh);
/* dwdt[n n] = f(t, omega[n n]) (solvers/rk.h rhs signature; double arrays, distinct).
 * Returns 0. */
int opl_ns2d_rhs(void *self, double t, const void *omega, void *dwdt);

/* Velocity of the vorticity spectrum wh[2 nspec]: u[n n], v[n n] (not dealiased; odd-order
 * Nyquist rule of grid.h). Either output may be NULL. Uses the object's workspace. */
void opl_ns2d_velocity(opl_ns2d *ns, const double *wh, double *u, double *v);
/* max over the grid of |u| (returned) = sqrt(u^2 + v^2), and max |u|, max |v| in *umax, *vmax
 * (either may be NULL): a CFL number is dt (umax + vmax) / dx. */
double opl_ns2d_max_velocity(opl_ns2d *ns, const double *wh, double *umax, double *vmax);
/* max |u| of the dealiased velocity of wh[2 nspec] (the velocity that advects in N): the
 * speed callback of solvers/cnheun.h's CFL check. If wh is the array of the last
 * opl_ns2d_nonlinear call on this object (same pointer, contents unchanged since, as in
 * cnheun's step), the value recorded by that call is returned at no cost; otherwise it is
 * computed (2 inverse transforms). t is unused. */
double opl_ns2d_speed(void *self, double t, const double *wh);
/* E = 1/2 int |u|^2 and Z = 1/2 int omega^2 of the vorticity spectrum wh (see above). */
double opl_ns2d_energy(const opl_ns2d *ns, const double *wh);
double opl_ns2d_enstrophy(const opl_ns2d *ns, const double *wh);

/* The Taylor-Green-type exact solution A sin(2 pi x / L) sin(2 pi y / L) exp(-8 pi^2 nu t / L^2)
 * (unforced) at (x, y, t). */
double opl_ns2d_taylor_green(const opl_ns2d_params *p, double A, double x, double y, double t);

#endif
