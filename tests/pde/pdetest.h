/* Helpers shared by the tests of pde/: sizes under sanitizers, a seeded uniform stream, max
 * norms, random trigonometric polynomials with exact derivatives, and solver options. */
#ifndef OPL_PDETEST_H
#define OPL_PDETEST_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "pde/solve.h"

/* 1 when the suite runs under sanitizers (OPL_SANITIZED=1): the tests then take smaller cases. */
static inline int sanitized(void) {
  const char *s = getenv("OPL_SANITIZED");
  return s && s[0] == '1';
}

/* U(-1, 1) from the xorshift64 state *s (advanced). */
static inline double pdetest_urand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return 2.0 * ((*s >> 11) * 0x1.0p-53) - 1.0;
}

/* max |a_i| over a [n]. */
static inline double maxabs(const double *a, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
  return m;
}

/* max |a_i - b_i| over a, b [n]. */
static inline double maxabs_diff(int64_t n, const double *a, const double *b) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
  return m;
}

/* A random real trigonometric polynomial on [0, L) with modes 0..K (K < 64), coefficients
 * U(-1, 1) / (1 + m) drawn from the stream *s, and its exact derivatives. */
typedef struct {
  int K;
  double L, a[64], b[64];
} trig;
static inline void trig_rand(trig *t, int K, double L, uint64_t *s) {
  t->K = K, t->L = L;
  for (int m = 0; m <= K; m++) t->a[m] = pdetest_urand(s) / (1 + m), t->b[m] = m ? pdetest_urand(s) / (1 + m) : 0;
}
/* The d-th derivative of t at x. */
static inline double trig_d(const trig *t, double x, int d) {
  double s = 0;
  for (int m = 0; m <= t->K; m++) {
    double k = 2 * M_PI * m / t->L, th = k * x + d * M_PI / 2;
    s += pow(k, d) * (t->a[m] * cos(th) + t->b[m] * sin(th));
  }
  return s;
}

/* Solver options for the tests: T, nt snapshots, step dt, FFTW_ESTIMATE plans, the rest from
 * the defaults. */
static inline opl_solve_opts test_opts(double T, int nt, double dt) {
  opl_solve_opts o;
  opl_solve_opts_default(&o);
  o.T = T;
  o.nt = nt;
  o.dt = dt;
  o.grid_flags = OPL_GRID_ESTIMATE;
  return o;
}

#endif
