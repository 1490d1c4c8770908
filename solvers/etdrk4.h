/* opl solvers — ETDRK4: fourth-order exponential time differencing Runge-Kutta for
 *   u_t = L u + N(u, t),   L diagonal (complex), N nonlinear (a callback),
 * (S. M. Cox, P. C. Matthews, "Exponential time differencing for stiff systems",
 *  J. Comput. Phys. 176 (2002) 430-455, eqs. (26)-(29)), with the coefficients evaluated by
 * the contour-integral mean of A.-K. Kassam, L. N. Trefethen, "Fourth-order time-stepping for
 * stiff PDEs", SIAM J. Sci. Comput. 26 (2005) 1214-1233.
 *
 * Data layout: the state u, N(u) and L are arrays of n COMPLEX numbers stored interleaved as
 * 2n doubles (re, im, re, im, ...) — the layout of fftw_complex and of opl's complex tensors.
 * For a real system pass imaginary parts 0 (they stay exactly 0 when Im L = 0 and N keeps
 * them 0).
 *
 * One step of size h from (t, u), with z = L h (per mode):
 *   a = E2 u + Q N(u, t)
 *   b = E2 u + Q N(a, t + h/2)
 *   c = E2 a + Q (2 N(b, t + h/2) - N(u, t))
 *   u+ = E u + f1 N(u, t) + 2 f2 (N(a, t + h/2) + N(b, t + h/2)) + f3 N(c, t + h)
 * E = e^z, E2 = e^(z/2) (directly) and, as means over the M = 32 points w_j = z + e^(2 pi i
 * (j - 1/2) / M), j = 1..M, of the FULL circle of radius 1 centred at z (valid for complex z,
 * e.g. KdV's i k^3 dispersion; no point hits 0 for real or imaginary z):
 *   Q  = h mean[(e^(w/2) - 1) / w]
 *   f1 = h mean[(-4 - w + e^w (4 - 3w + w^2)) / w^3]
 *   f2 = h mean[(2 + w + e^w (w - 2)) / w^3]
 *   f3 = h mean[(-4 - 3w - w^2 + e^w (4 - w)) / w^3]
 * (in phi-function form Q = h phi1(z/2)/2, f1 = h (phi1 - 3 phi2 + 4 phi3)(z),
 *  f2 = h (phi2 - 2 phi3)(z), f3 = h (4 phi3 - phi2)(z)). The mean is exact up to rounding for
 * these entire functions and avoids the cancellation of the direct formulas at small |z|.
 * Coefficients of a mode with Im L = 0 are stored exactly real.
 *
 * Cost of a step: 4 calls of N and 4 passes over 5 complex work vectors; nothing is allocated
 * after create. Loops over modes use OpenMP when n >= 32768.
 */
#ifndef OPL_SOLVERS_ETDRK4_H
#define OPL_SOLVERS_ETDRK4_H

#include <stdint.h>
#include "core/opl.h"

/* The nonlinear term: nu = N(u, t); u, nu are [2n] interleaved complex, distinct. Returns 0
 * on success; any other value stops the step with OPL_ERR_STATE. */
typedef int (*opl_etdrk4_fn)(void *user, double t, const double *u, double *nu);

typedef struct opl_etdrk4 opl_etdrk4;

/* A stepper of fixed step h > 0 for n >= 1 modes with diagonal L [2n] (copied; finite) and
 * nonlinear term N (user is passed to it). Precomputes E, E2, Q, f1, f2, f3 and allocates the
 * work vectors. Returns NULL and fills err on bad arguments (OPL_ERR_ARG, naming the value;
 * also when e^(L h) overflows) or out of memory. */
opl_etdrk4 *opl_etdrk4_create(int64_t n, const double *L, double h, opl_etdrk4_fn N, void *user,
                              opl_err *err);
/* Free the stepper; sets *s to NULL. Accepts NULL and *s == NULL. */
void opl_etdrk4_free(opl_etdrk4 **s);

/* One step: u [2n] (in/out) from time *t to *t + h. Fails with OPL_ERR_STATE when N returns
 * non-zero (u unchanged) and OPL_ERR_NONFINITE when the new state has a NaN or Inf (u then
 * holds that non-finite result); the message gives t. */
int opl_etdrk4_step(opl_etdrk4 *s, double *t, double *u, opl_err *err);
/* nsteps >= 0 steps; *t becomes t0 + k h after step k (no accumulated drift in t). Stops at
 * the first failure with *t the time of the last good state. */
int opl_etdrk4_steps(opl_etdrk4 *s, int64_t nsteps, double *t, double *u, opl_err *err);

typedef enum { OPL_ETD_E, OPL_ETD_E2, OPL_ETD_Q, OPL_ETD_F1, OPL_ETD_F2, OPL_ETD_F3 } opl_etdrk4_coef;
/* The precomputed coefficient array [2n] (interleaved complex), for tests and tools. */
const double *opl_etdrk4_coefficients(const opl_etdrk4 *s, opl_etdrk4_coef which);

typedef struct opl_etdrk4_stats {
  int64_t nfev;     /* calls of N */
  int64_t nsteps;   /* completed steps */
  int64_t n;        /* modes */
  double h;         /* step size */
} opl_etdrk4_stats;
void opl_etdrk4_get_stats(const opl_etdrk4 *s, opl_etdrk4_stats *st);

#endif
