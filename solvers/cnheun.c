/* opl solvers — Crank-Nicolson / Heun and Crank-Nicolson / Euler steppers for
 * u_t = L u + N(u, t) with real diagonal L. Formulas in cnheun.h. */
#include <math.h>
#include <stdlib.h>
#include "solvers/cnheun.h"
#include "core/par.h"

struct opl_cnheun {
  int64_t n;
  double dt;
  opl_cnheun_variant variant;
  opl_cnheun_fn N;
  void *user;
  double *A, *B;          /* [n] (1 + dt L/2)/(1 - dt L/2), dt/(1 - dt L/2) */
  double *nu, *us, *ns;   /* [2n] N(u), u*, N(u*) */
  opl_cnheun_speed_fn speed;
  double dx, limit;
  opl_cnheun_stats st;
};

opl_cnheun *opl_cnheun_create(int64_t n, const double *L, double dt, opl_cnheun_variant variant,
                              opl_cnheun_fn N, void *user, opl_err *err) {
  if (n < 1) {
    opl_err_set(err, OPL_ERR_ARG, "opl_cnheun_create: n = %lld coefficients (must be >= 1)", (long long)n);
    return NULL;
  }
  if (!L || !N) {
    opl_err_set(err, OPL_ERR_ARG, "opl_cnheun_create: %s is NULL", !L ? "L" : "N");
    return NULL;
  }
  if (!(dt > 0) || !isfinite(dt)) {
    opl_err_set(err, OPL_ERR_ARG, "opl_cnheun_create: dt = %g (must be > 0 and finite)", dt);
    return NULL;
  }
  if (variant != OPL_CN_HEUN && variant != OPL_CN_EULER) {
    opl_err_set(err, OPL_ERR_ARG, "opl_cnheun_create: variant = %d (OPL_CN_HEUN = 0 or OPL_CN_EULER = 1)",
                (int)variant);
    return NULL;
  }
  for (int64_t k = 0; k < n; k++) {
    double d = 1 - dt * L[k] / 2;
    if (!isfinite(L[k]) || d == 0 || !isfinite(dt / d)) {
      opl_err_set(err, OPL_ERR_ARG, "opl_cnheun_create: L[%lld] = %g with dt = %g gives 1 - dt L/2 = %g "
                  "(L must be finite and 1 - dt L/2 non-zero)", (long long)k, L[k], dt, d);
      return NULL;
    }
  }
  opl_cnheun *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  s->n = n;
  s->dt = dt;
  s->variant = variant;
  s->N = N;
  s->user = user;
  const size_t rb = (size_t)n * sizeof(double);
  if (!(s->A = opl_aligned_calloc(rb)) || !(s->B = opl_aligned_calloc(rb)) ||
      !(s->nu = opl_aligned_calloc(2 * rb)))
    goto oom;
  if (variant == OPL_CN_HEUN &&
      (!(s->us = opl_aligned_calloc(2 * rb)) || !(s->ns = opl_aligned_calloc(2 * rb))))
    goto oom;
  for (int64_t k = 0; k < n; k++) {
    double d = 1 - dt * L[k] / 2;
    s->A[k] = (1 + dt * L[k] / 2) / d;
    s->B[k] = dt / d;
  }
  return s;
oom:
  opl_cnheun_free(&s);
  opl_err_set(err, OPL_ERR_NOMEM, "opl_cnheun_create: out of memory for %lld coefficients", (long long)n);
  return NULL;
}

void opl_cnheun_free(opl_cnheun **ps) {
  if (!ps || !*ps) return;
  opl_cnheun *s = *ps;
  free(s->A);
  free(s->B);
  free(s->nu);
  free(s->us);
  free(s->ns);
  free(s);
  *ps = NULL;
}

int opl_cnheun_set_cfl(opl_cnheun *s, opl_cnheun_speed_fn speed, double dx, double limit,
                       opl_err *err) {
  OPL_ASSERT(s);
  if (speed && (!(dx > 0) || !isfinite(dx)))
    return opl_err_set(err, OPL_ERR_ARG, "opl_cnheun_set_cfl: dx = %g (must be > 0 and finite)", dx);
  if (speed && !(limit > 0))
    return opl_err_set(err, OPL_ERR_ARG, "opl_cnheun_set_cfl: limit = %g (must be > 0)", limit);
  s->speed = speed;
  s->dx = dx;
  s->limit = limit;
  return OPL_OK;
}

void opl_cnheun_get_stats(const opl_cnheun *s, opl_cnheun_stats *st) { *st = s->st; }

/* ------------------------------------------------------------ kernels (interleaved complex) */

/* Kernels work on a coefficient range [lo, hi). Vectors below OPL_PAR_MIN never enter an
 * OpenMP region (libgomp sets up a team even for if(0)); larger ones are cut into chunks of
 * CN_CHUNK shared by the threads. */
#define CN_CHUNK 4096

/* out = A x + B y on [lo, hi); A, B [n] real; x, y, out [2n]. */
static void cn_predict(const double *restrict A, const double *restrict B, const double *restrict x,
                       const double *restrict y, double *restrict out, int64_t lo, int64_t hi) {
  for (int64_t k = lo; k < hi; k++) {
    out[2 * k] = A[k] * x[2 * k] + B[k] * y[2 * k];
    out[2 * k + 1] = A[k] * x[2 * k + 1] + B[k] * y[2 * k + 1];
  }
}

/* u = A u + c B (y + z) in place on [lo, hi) (z NULL: u = A u + c B y); A, B [n]; u, y, z [2n].
 * Returns 0 when the new values are finite, NaN otherwise. */
static double cn_update(const double *restrict A, const double *restrict B, double c,
                        const double *restrict y, const double *restrict z, double *restrict u,
                        int64_t lo, int64_t hi) {
  double chk = 0;
  if (z) {
    for (int64_t k = lo; k < hi; k++) {
      const double a = A[k], b = c * B[k];
      const double vr = a * u[2 * k] + b * (y[2 * k] + z[2 * k]);
      const double vi = a * u[2 * k + 1] + b * (y[2 * k + 1] + z[2 * k + 1]);
      u[2 * k] = vr;
      u[2 * k + 1] = vi;
      chk += vr * 0 + vi * 0;
    }
  } else {
    for (int64_t k = lo; k < hi; k++) {
      const double a = A[k], b = c * B[k];
      const double vr = a * u[2 * k] + b * y[2 * k];
      const double vi = a * u[2 * k + 1] + b * y[2 * k + 1];
      u[2 * k] = vr;
      u[2 * k + 1] = vi;
      chk += vr * 0 + vi * 0;
    }
  }
  return chk;
}

static void cn_predict_all(const opl_cnheun *s, const double *u) {
  const int64_t n = s->n;
  if (n < OPL_PAR_MIN) {
    cn_predict(s->A, s->B, u, s->nu, s->us, 0, n);
    return;
  }
  const int64_t nch = (n + CN_CHUNK - 1) / CN_CHUNK;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < nch; c++) {
    int64_t lo = c * CN_CHUNK, hi = lo + CN_CHUNK < n ? lo + CN_CHUNK : n;
    cn_predict(s->A, s->B, u, s->nu, s->us, lo, hi);
  }
}

static double cn_update_all(const opl_cnheun *s, double c, const double *z, double *u) {
  const int64_t n = s->n;
  if (n < OPL_PAR_MIN) return cn_update(s->A, s->B, c, s->nu, z, u, 0, n);
  const int64_t nch = (n + CN_CHUNK - 1) / CN_CHUNK;
  double chk = 0;
#pragma omp parallel for reduction(+ : chk) schedule(static)
  for (int64_t ci = 0; ci < nch; ci++) {
    int64_t lo = ci * CN_CHUNK, hi = lo + CN_CHUNK < n ? lo + CN_CHUNK : n;
    chk += cn_update(s->A, s->B, c, s->nu, z, u, lo, hi);
  }
  return chk;
}

int opl_cnheun_step(opl_cnheun *s, double *t, double *u, opl_err *err) {
  OPL_ASSERT(s && t && u);
  const double t0 = *t, dt = s->dt;
  int rv = s->N(s->user, t0, u, s->nu);
  s->st.nfev++;
  if (rv)
    return opl_err_set(err, OPL_ERR_STATE, "opl_cnheun: the nonlinear term N(u, t) failed (returned %d) at "
                       "t = %.17g", rv, t0);
  if (s->speed) {
    double v = s->speed(s->user, t0, u);
    if (!isfinite(v))
      return opl_err_set(err, OPL_ERR_NONFINITE, "opl_cnheun: non-finite max speed %g at t = %.17g", v, t0);
    double cfl = dt * v / s->dx;
    s->st.cfl_last = cfl;
    if (cfl > s->st.cfl_max) s->st.cfl_max = cfl;
    if (cfl > s->limit)
      return opl_err_set(err, OPL_ERR_CONVERGENCE,
                         "opl_cnheun: CFL condition violated at t = %.17g: dt * max|u| / dx = %g * %g / %g "
                         "= %g > limit %g", t0, dt, v, s->dx, cfl, s->limit);
  }
  double chk;
  if (s->variant == OPL_CN_HEUN) {
    cn_predict_all(s, u);
    rv = s->N(s->user, t0 + dt, s->us, s->ns);
    s->st.nfev++;
    if (rv)
      return opl_err_set(err, OPL_ERR_STATE, "opl_cnheun: the nonlinear term N(u*, t + dt) failed (returned %d) "
                         "at t = %.17g", rv, t0);
    chk = cn_update_all(s, 0.5, s->ns, u);
  } else {
    chk = cn_update_all(s, 1, NULL, u);
  }
  if (chk != 0)
    return opl_err_set(err, OPL_ERR_NONFINITE, "opl_cnheun: non-finite state after the step from t = %.17g "
                       "(dt = %g)", t0, dt);
  s->st.nsteps++;
  *t = t0 + dt;
  return OPL_OK;
}

int opl_cnheun_steps(opl_cnheun *s, int64_t nsteps, double *t, double *u, opl_err *err) {
  OPL_ASSERT(s && t && u);
  if (nsteps < 0)
    return opl_err_set(err, OPL_ERR_ARG, "opl_cnheun_steps: nsteps = %lld (must be >= 0)", (long long)nsteps);
  const double t0 = *t;
  for (int64_t i = 0; i < nsteps; i++) {
    double ti = t0 + (double)i * s->dt;
    int st = opl_cnheun_step(s, &ti, u, err);
    if (st) {
      *t = t0 + (double)i * s->dt;
      return st;
    }
  }
  *t = t0 + (double)nsteps * s->dt;
  return OPL_OK;
}
