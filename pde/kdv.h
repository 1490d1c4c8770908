/* opl pde — the Korteweg-de Vries equation on a periodic interval [0, L):
 *
 *     u_t + a u u_x + b u_xxx = 0        (defaults a = 1, b = 1; the "6 u u_x" form: a = 6).
 *
 * For the steppers of solvers/ (spectra in grid.h's unnormalized r2c convention):
 *     uh_t = L(k) uh + N(uh),   L(k) = -b (i k)^3 = i b k^3,   N(uh) = -(a/2) i k P FFT((P u)^2),
 * P the 2/3-rule projection. L is zeroed at the Nyquist bin (an odd-order operator: grid.h's
 * rule; a real Nyquist coefficient times i b k^3 would leave the Hermitian layout). The full
 * right-hand side on physical values is f(t, u) = IFFT(L uh + N(uh)).
 *
 * Invariants (u_t = d/dx (dH/du) with the Hamiltonian H below, so all three are conserved):
 *     I1 = int u,  I2 = int u^2,  H = int (b/2 u_x^2 - a/6 u^3).
 * With the dealiased N, I1 and I2 are conserved exactly by the semi-discrete system for any
 * grid field, and H for fields in the kept band (|k| < n/3).
 *
 * Exact solutions. For w_t + 6 w w_x + w_xxx = 0:
 *     one soliton  w = (c/2) sech^2( sqrt(c)/2 (x - c t - x0) ),
 *     two solitons w = 2 (log F)_xx, F = 1 + e^{eta1} + e^{eta2} + A12 e^{eta1 + eta2},
 *                  eta_i = k_i (x - x_i) - k_i^3 t, A12 = ((k1 - k2) / (k1 + k2))^2
 *     (R. Hirota, "Exact solution of the Korteweg-de Vries equation for multiple collisions of
 *     solitons", Phys. Rev. Lett. 27 (1971) 1192).
 * The scaling u(x, t) = (6 b / a) w(x, b t) maps them to a, b (a, b != 0): the one soliton
 * moves at speed b c and has amplitude 3 b c / a.
 *
 * The MP-PDE / Lie-point-symmetry benchmark initial condition (Brandstetter, Worrall, Welling,
 * "Message passing neural PDE solvers", ICLR 2022; Brandstetter, Welling, Worrall, "Lie point
 * symmetry data augmentation for neural PDE solvers", ICML 2022), as specified in our issue:
 * L = 128 and T = 100 each scaled by U(0.9, 1.1) per trajectory, 256 points,
 *     u0(x) = sum_{j=1}^{10} A_j sin(2 pi l_j x / L + phi_j),
 *     A_j ~ U(-1/2, 1/2), phi_j ~ U(0, 2 pi), l_j uniform on {1, 2}.
 */
#ifndef OPL_PDE_KDV_H
#define OPL_PDE_KDV_H

#include "core/opl.h"
#include "core/rng.h"
#include "pde/grid.h"

typedef struct opl_kdv_params {
  int n;        /* grid points, even, >= 4 */
  double L;     /* domain length, > 0 */
  double a;     /* nonlinear coefficient, finite */
  double b;     /* dispersion coefficient, finite */
} opl_kdv_params;

/* The defaults a = 1, b = 1. */
#define OPL_KDV_PARAMS(n_, L_) ((opl_kdv_params){.n = (n_), .L = (L_), .a = 1.0, .b = 1.0})

/* OPL_OK, or OPL_ERR_ARG naming the bad value (n < 4 or odd, L <= 0, non-finite a, b, L). */
int opl_kdv_check(const opl_kdv_params *p, opl_err *err);

typedef struct opl_kdv opl_kdv;

/* An equation object with its own workspace (one per thread), on a shared 1-D grid of the same
 * n and L (borrowed) or, with grid == NULL, on its own grid made with grid_flags. OPL_ERR_ARG
 * on bad parameters or a mismatched grid; OPL_ERR_NOMEM. */
opl_kdv *opl_kdv_new(const opl_kdv_params *p, const opl_grid *grid, unsigned grid_flags, opl_err *err);
void opl_kdv_free(opl_kdv **k);
const opl_grid *opl_kdv_grid(const opl_kdv *k);
const opl_kdv_params *opl_kdv_params_of(const opl_kdv *k);

/* Lk[2 nspec] = 0 + i b k^3 (0 at the Nyquist bin). */
void opl_kdv_linear(const opl_kdv *k, double *Lk);
/* nh[2 nspec] = -(a/2) i k P FFT((P u)^2) from uh[2 nspec]; nh may equal uh. Returns 0.
 * The signature of solvers/ opl_etdrk4_fn (L is imaginary: ETDRK4, not Crank-Nicolson). */
int opl_kdv_nonlinear(void *self, double t, const double *uh, double *nh);
/* dudt[n] = f(t, u[n]) (solvers/rk.h rhs signature; double arrays, distinct). Returns 0. */
int opl_kdv_rhs(void *self, double t, const void *u, void *dudt);
/* out[0] = int u, out[1] = int u^2, out[2] = H = int (b/2 u_x^2 - a/6 u^3) (u_x spectral).
 * Uses the object's workspace. */
void opl_kdv_invariants(opl_kdv *k, const double *u, double out[3]);

/* One soliton of parameter c > 0 centred at x0 at t = 0, for the a, b of p (a, b != 0):
 * u = (6 b / a) (c/2) sech^2( sqrt(c)/2 (x - b c t - x0) ). When p->L > 0 the distance
 * x - b c t - x0 is wrapped to [-L/2, L/2) (the nearest periodic image; the neglected images
 * are below sech^2(sqrt(c) L / 4)). */
double opl_kdv_soliton(const opl_kdv_params *p, double c, double x0, double x, double t);
/* Hirota's two-soliton solution with wavenumbers k1 != k2 (> 0; speeds b k_i^2) and positions
 * x1, x2 (eta_i = k_i (x - x_i) - k_i^3 b t), on the real line (no wrapping: choose L so the
 * tails are negligible at the boundary). Evaluated as
 *   (log F)_xx = sum_{i<j} c_i c_j (kappa_i - kappa_j)^2 / (sum_i c_i)^2
 * over the four terms c = (1, e^eta1, e^eta2, A12 e^{eta1+eta2}), kappa = (0, k1, k2, k1+k2),
 * scaled by the largest term: no cancellation and no overflow. */
double opl_kdv_two_soliton(const opl_kdv_params *p, double k1, double k2, double x1, double x2, double x,
                           double t);

/* One draw of the MP-PDE benchmark's initial condition and domain. */
#define OPL_KDV_IC_MODES 10
typedef struct opl_kdv_ic {
  double L;                       /* 128 U(0.9, 1.1) */
  double T;                       /* 100 U(0.9, 1.1) */
  int n;                          /* 256 points */
  double A[OPL_KDV_IC_MODES];     /* U(-1/2, 1/2) */
  double phi[OPL_KDV_IC_MODES];   /* U(0, 2 pi) */
  int l[OPL_KDV_IC_MODES];        /* 1 or 2 */
} opl_kdv_ic;

/* Draw one trajectory's parameters from stream, in this order: the L factor, the T factor,
 * then for j = 1..10: A_j, phi_j, l_j (each one opl_rng_uniform; l = 1 + (U >= 1/2)). */
void opl_kdv_ic_mppde(opl_rng *stream, opl_kdv_ic *ic);
/* Trajectory `index` of the data set of `seed`: drawn from opl_rng_split(seed stream, index). */
void opl_kdv_ic_mppde_seeded(uint64_t seed, uint64_t index, opl_kdv_ic *ic);
/* u[ic->n] = u0(x_i), x_i = i L / n. */
void opl_kdv_ic_eval(const opl_kdv_ic *ic, double *u);

#endif
