/* opl solvers — ETDRK4 (Cox & Matthews 2002) with Kassam & Trefethen (2005) contour-mean
 * coefficients. Formulas in etdrk4.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "solvers/etdrk4.h"
#include "core/par.h"
#include <complex.h>

#define ETD_M 32          /* contour points (full circle) */
#define ETD_NCOEF 6

struct opl_etdrk4 {
  int64_t n;
  double h;
  opl_etdrk4_fn N;
  void *user;
  double *coef[ETD_NCOEF];      /* E, E2, Q, f1, f2, f3: [2n] each */
  double *nu, *a, *na, *b, *nb; /* work vectors [2n] */
  opl_etdrk4_stats st;
};

/* ------------------------------------------------------------ coefficients */

/* The four integrands at one contour point w (Q without the factor h):
 * out = {(e^(w/2) - 1)/w, (-4 - w + e^w(4 - 3w + w^2))/w^3, (2 + w + e^w(w - 2))/w^3,
 *        (-4 - 3w - w^2 + e^w(4 - w))/w^3}.
 * Near w = 0 (|w| < 1/2, only reached for z close to a point -e^(i theta_j)) the closed forms
 * cancel, so the Taylor series of the phi functions is summed instead:
 * phi_k(w) = sum_m w^m / (m + k)!. */
static void etd_integrands(double complex w, double complex out[4]) {
  if (cabs(w) >= 0.5) {
    double complex ew = cexp(w), w3 = w * w * w;
    out[0] = (cexp(w / 2) - 1) / w;
    out[1] = (-4 - w + ew * (4 - 3 * w + w * w)) / w3;
    out[2] = (2 + w + ew * (w - 2)) / w3;
    out[3] = (-4 - 3 * w - w * w + ew * (4 - w)) / w3;
    return;
  }
  double complex p1 = 0, p1h = 0, p2 = 0, p3 = 0, wm = 1, whm = 1;
  double fact[40];
  fact[0] = 1;
  for (int i = 1; i < 40; i++) fact[i] = fact[i - 1] * i;
  for (int m = 0; m < 30; m++) {
    p1 += wm / fact[m + 1];
    p2 += wm / fact[m + 2];
    p3 += wm / fact[m + 3];
    p1h += whm / fact[m + 1];
    wm *= w;
    whm *= w / 2;
  }
  out[0] = p1h / 2;
  out[1] = p1 - 3 * p2 + 4 * p3;
  out[2] = p2 - 2 * p3;
  out[3] = 4 * p3 - p2;
}

/* Coefficients of one mode with symbol l and step h into c[6] (complex). */
static void etd_mode_coefs(double complex l, double h, double complex c[ETD_NCOEF]) {
  const double complex z = l * h;
  double complex acc[4] = {0, 0, 0, 0};
  for (int j = 0; j < ETD_M; j++) {
    double th = 2 * M_PI * (j + 0.5) / ETD_M;
    double complex v[4];
    etd_integrands(z + CMPLX(cos(th), sin(th)), v);
    for (int q = 0; q < 4; q++) acc[q] += v[q];
  }
  c[OPL_ETD_E] = cexp(z);
  c[OPL_ETD_E2] = cexp(z / 2);
  for (int q = 0; q < 4; q++) c[OPL_ETD_Q + q] = h * acc[q] / ETD_M;
  if (cimag(l) == 0)
    for (int q = 0; q < ETD_NCOEF; q++) c[q] = creal(c[q]);
}

opl_etdrk4 *opl_etdrk4_create(int64_t n, const double *L, double h, opl_etdrk4_fn N, void *user,
                              opl_err *err) {
  if (n < 1) {
    opl_err_set(err, OPL_ERR_ARG, "opl_etdrk4_create: n = %lld modes (must be >= 1)", (long long)n);
    return NULL;
  }
  if (!L || !N) {
    opl_err_set(err, OPL_ERR_ARG, "opl_etdrk4_create: %s is NULL", !L ? "L" : "N");
    return NULL;
  }
  if (!(h > 0) || !isfinite(h)) {
    opl_err_set(err, OPL_ERR_ARG, "opl_etdrk4_create: h = %g (must be > 0 and finite)", h);
    return NULL;
  }
  for (int64_t k = 0; k < n; k++)
    if (!isfinite(L[2 * k]) || !isfinite(L[2 * k + 1])) {
      opl_err_set(err, OPL_ERR_ARG, "opl_etdrk4_create: L[%lld] = %g%+gi is not finite", (long long)k,
                  L[2 * k], L[2 * k + 1]);
      return NULL;
    }
  opl_etdrk4 *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  s->n = n;
  s->h = h;
  s->N = N;
  s->user = user;
  const size_t bytes = (size_t)n * 2 * sizeof(double);
  for (int q = 0; q < ETD_NCOEF; q++)
    if (!(s->coef[q] = opl_aligned_calloc(bytes))) goto oom;
  double **work[5] = {&s->nu, &s->a, &s->na, &s->b, &s->nb};
  for (int q = 0; q < 5; q++)
    if (!(*work[q] = opl_aligned_calloc(bytes))) goto oom;
  int64_t bad = -1;
  /* 32 complex exponentials per mode: worth threads from 1024 modes (runs once). */
#pragma omp parallel for if (n >= OPL_PAR_MIN / ETD_M) schedule(static)
  for (int64_t k = 0; k < n; k++) {
    double complex c[ETD_NCOEF];
    etd_mode_coefs(CMPLX(L[2 * k], L[2 * k + 1]), h, c);
    int fin = 1;
    for (int q = 0; q < ETD_NCOEF; q++) {
      s->coef[q][2 * k] = creal(c[q]);
      s->coef[q][2 * k + 1] = cimag(c[q]);
      fin &= isfinite(creal(c[q])) && isfinite(cimag(c[q]));
    }
    if (!fin) {
#pragma omp critical(etd_bad)
      if (bad < 0 || k < bad) bad = k;
    }
  }
  if (bad >= 0) {
    opl_err_set(err, OPL_ERR_ARG, "opl_etdrk4_create: coefficients overflow for L[%lld] h = %g%+gi "
                "(e^(L h) is not finite)", (long long)bad, L[2 * bad] * h, L[2 * bad + 1] * h);
    opl_etdrk4_free(&s);
    return NULL;
  }
  s->st.n = n;
  s->st.h = h;
  return s;
oom:
  opl_etdrk4_free(&s);
  opl_err_set(err, OPL_ERR_NOMEM, "opl_etdrk4_create: out of memory for %lld modes", (long long)n);
  return NULL;
}

void opl_etdrk4_free(opl_etdrk4 **ps) {
  if (!ps || !*ps) return;
  opl_etdrk4 *s = *ps;
  for (int q = 0; q < ETD_NCOEF; q++) free(s->coef[q]);
  free(s->nu);
  free(s->a);
  free(s->na);
  free(s->b);
  free(s->nb);
  free(s);
  *ps = NULL;
}

const double *opl_etdrk4_coefficients(const opl_etdrk4 *s, opl_etdrk4_coef which) {
  OPL_ASSERT(s && (int)which >= 0 && which < ETD_NCOEF, "which = %d", (int)which);
  return s->coef[which];
}

void opl_etdrk4_get_stats(const opl_etdrk4 *s, opl_etdrk4_stats *st) { *st = s->st; }

/* ------------------------------------------------------------ step kernels (interleaved complex) */

/* Kernels work on a mode range [lo, hi). Vectors below OPL_PAR_MIN modes never enter an OpenMP
 * region (libgomp sets up a team even for if(0), which costs microseconds per call); larger
 * ones are cut into chunks of ETD_CHUNK modes shared by the threads. */
#define ETD_CHUNK 4096
#define ETD_FOR_CHUNKS(n, lo, hi, body)                                     \
  do {                                                                      \
    if ((n) < OPL_PAR_MIN) {                                                \
      int64_t lo = 0, hi = (n);                                             \
      body;                                                                 \
    } else {                                                                \
      const int64_t nch_ = ((n) + ETD_CHUNK - 1) / ETD_CHUNK;               \
      _Pragma("omp parallel for schedule(static)")                          \
      for (int64_t c_ = 0; c_ < nch_; c_++) {                               \
        int64_t lo = c_ * ETD_CHUNK, hi = lo + ETD_CHUNK < (n) ? lo + ETD_CHUNK : (n); \
        body;                                                               \
      }                                                                     \
    }                                                                       \
  } while (0)

/* out = E2 x + Q y on modes [lo, hi); E2, Q, x, y, out [2n]. */
static void etd_stage(const double *restrict E2, const double *restrict Q, const double *restrict x,
                      const double *restrict y, double *restrict out, int64_t lo, int64_t hi) {
  for (int64_t k = lo; k < hi; k++) {
    const double er = E2[2 * k], ei = E2[2 * k + 1], qr = Q[2 * k], qi = Q[2 * k + 1];
    const double xr = x[2 * k], xi = x[2 * k + 1], yr = y[2 * k], yi = y[2 * k + 1];
    out[2 * k] = er * xr - ei * xi + qr * yr - qi * yi;
    out[2 * k + 1] = er * xi + ei * xr + qr * yi + qi * yr;
  }
}

/* out = E2 a + Q (2 nb - nu) on modes [lo, hi); all [2n]. */
static void etd_stage_c(const double *restrict E2, const double *restrict Q, const double *restrict a,
                        const double *restrict nb, const double *restrict nu, double *restrict out,
                        int64_t lo, int64_t hi) {
  for (int64_t k = lo; k < hi; k++) {
    const double er = E2[2 * k], ei = E2[2 * k + 1], qr = Q[2 * k], qi = Q[2 * k + 1];
    const double xr = a[2 * k], xi = a[2 * k + 1];
    const double yr = 2 * nb[2 * k] - nu[2 * k], yi = 2 * nb[2 * k + 1] - nu[2 * k + 1];
    out[2 * k] = er * xr - ei * xi + qr * yr - qi * yi;
    out[2 * k + 1] = er * xi + ei * xr + qr * yi + qi * yr;
  }
}

/* u = E u + f1 nu + 2 f2 (na + nb) + f3 nc in place on modes [lo, hi); C = {E, E2, Q, f1, f2,
 * f3} and all vectors [2n]. Returns 0 when the new values are finite, NaN otherwise (x * 0 is
 * 0 for finite x and NaN for NaN/Inf). */
static double etd_final(double *const *C, const double *restrict nu, const double *restrict na,
                        const double *restrict nb, const double *restrict nc, double *restrict u,
                        int64_t lo, int64_t hi) {
  const double *restrict E = C[OPL_ETD_E], *restrict f1 = C[OPL_ETD_F1];
  const double *restrict f2 = C[OPL_ETD_F2], *restrict f3 = C[OPL_ETD_F3];
  double chk = 0;
  for (int64_t k = lo; k < hi; k++) {
    const double ur = u[2 * k], ui = u[2 * k + 1];
    const double sr = na[2 * k] + nb[2 * k], si = na[2 * k + 1] + nb[2 * k + 1];
    const double er = E[2 * k], ei = E[2 * k + 1], ar = f1[2 * k], ai = f1[2 * k + 1];
    const double br = 2 * f2[2 * k], bi = 2 * f2[2 * k + 1], cr = f3[2 * k], ci = f3[2 * k + 1];
    const double vr = er * ur - ei * ui + ar * nu[2 * k] - ai * nu[2 * k + 1] + br * sr - bi * si +
                      cr * nc[2 * k] - ci * nc[2 * k + 1];
    const double vi = er * ui + ei * ur + ar * nu[2 * k + 1] + ai * nu[2 * k] + br * si + bi * sr +
                      cr * nc[2 * k + 1] + ci * nc[2 * k];
    u[2 * k] = vr;
    u[2 * k + 1] = vi;
    chk += vr * 0 + vi * 0;
  }
  return chk;
}

int opl_etdrk4_step(opl_etdrk4 *s, double *t, double *u, opl_err *err) {
  OPL_ASSERT(s && t && u);
  const int64_t n = s->n;
  const double h = s->h, t0 = *t;
  double *const *C = s->coef;
  int rv;
  const char *stage = "N(u, t)";
  if ((rv = s->N(s->user, t0, u, s->nu))) goto fail;
  ETD_FOR_CHUNKS(n, lo, hi, etd_stage(C[OPL_ETD_E2], C[OPL_ETD_Q], u, s->nu, s->a, lo, hi));
  stage = "N(a, t + h/2)";
  if ((rv = s->N(s->user, t0 + h / 2, s->a, s->na))) goto fail;
  ETD_FOR_CHUNKS(n, lo, hi, etd_stage(C[OPL_ETD_E2], C[OPL_ETD_Q], u, s->na, s->b, lo, hi));
  stage = "N(b, t + h/2)";
  if ((rv = s->N(s->user, t0 + h / 2, s->b, s->nb))) goto fail;
  /* c overwrites b (no longer needed), N(c) overwrites a. */
  ETD_FOR_CHUNKS(n, lo, hi, etd_stage_c(C[OPL_ETD_E2], C[OPL_ETD_Q], s->a, s->nb, s->nu, s->b, lo, hi));
  stage = "N(c, t + h)";
  if ((rv = s->N(s->user, t0 + h, s->b, s->a))) goto fail;
  s->st.nfev += 4;
  double chk = 0;
  if (n < OPL_PAR_MIN) {
    chk = etd_final(C, s->nu, s->na, s->nb, s->a, u, 0, n);
  } else {
    const int64_t nch = (n + ETD_CHUNK - 1) / ETD_CHUNK;
#pragma omp parallel for reduction(+ : chk) schedule(static)
    for (int64_t c = 0; c < nch; c++) {
      int64_t lo = c * ETD_CHUNK, hi = lo + ETD_CHUNK < n ? lo + ETD_CHUNK : n;
      chk += etd_final(C, s->nu, s->na, s->nb, s->a, u, lo, hi);
    }
  }
  if (chk != 0)
    return opl_err_set(err, OPL_ERR_NONFINITE, "opl_etdrk4: non-finite state after the step from t = %.17g "
                       "(h = %g)", t0, h);
  s->st.nsteps++;
  *t = t0 + h;
  return OPL_OK;
fail:
  return opl_err_set(err, OPL_ERR_STATE, "opl_etdrk4: the nonlinear term %s failed (returned %d) at t = %.17g",
                     stage, rv, t0);
}

int opl_etdrk4_steps(opl_etdrk4 *s, int64_t nsteps, double *t, double *u, opl_err *err) {
  OPL_ASSERT(s && t && u);
  if (nsteps < 0)
    return opl_err_set(err, OPL_ERR_ARG, "opl_etdrk4_steps: nsteps = %lld (must be >= 0)", (long long)nsteps);
  const double t0 = *t;
  for (int64_t i = 0; i < nsteps; i++) {
    double ti = t0 + (double)i * s->h;
    int st = opl_etdrk4_step(s, &ti, u, err);
    if (st) {
      *t = t0 + (double)i * s->h;
      return st;
    }
  }
  *t = t0 + (double)nsteps * s->h;
  return OPL_OK;
}
