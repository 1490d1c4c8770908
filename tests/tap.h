/* opl tests — a tiny TAP producer (header only).
 *
 *   int main(void) { tap_begin(); ok(1 == 1, "one"); is_close(x, 1.0, 1e-12, 0, "x"); return tap_end(); }
 *
 * Prints "ok N - name" / "not ok N - name" lines, diagnostics after "# ", and the plan
 * "1..N" at the end; tap_end() returns the exit status (non-zero if any test failed). */
#ifndef OPL_TAP_H
#define OPL_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Counters shared by every file of a test program (defined in tests/tap.c). */
extern int tap_n, tap_failed;

static inline void tap_begin(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

static inline void tap_vreport(int pass, const char *fmt, va_list ap) {
  tap_n++;
  if (!pass) tap_failed++;
  printf("%sok %d - ", pass ? "" : "not ", tap_n);
  vprintf(fmt, ap);
  printf("\n");
}

/* One test: passes when cond is non-zero. Returns cond. */
static inline int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int ok(int cond, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tap_vreport(cond != 0, fmt, ap);
  va_end(ap);
  return cond != 0;
}

/* Diagnostic line (shown by TAP consumers, never counted). */
static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("# ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
}

/* A skipped test (counts as passed by TAP; reported with its reason). */
static inline void skip(const char *why, const char *name) {
  tap_n++;
  printf("ok %d - %s # SKIP %s\n", tap_n, name, why);
}

/* |got - want| <= atol + rtol |want|, and both finite. */
static inline int is_close(double got, double want, double rtol, double atol, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static inline int is_close(double got, double want, double rtol, double atol, const char *fmt, ...) {
  int pass = isfinite(got) && isfinite(want) && fabs(got - want) <= atol + rtol * fabs(want);
  va_list ap;
  va_start(ap, fmt);
  tap_vreport(pass, fmt, ap);
  va_end(ap);
  if (!pass) diag("  got %.17g, want %.17g (abs err %.3g, rtol %.3g, atol %.3g)", got, want,
                  fabs(got - want), rtol, atol);
  return pass;
}

/* Compare n values (any real type through the callback-free double path): passes when every
 * |got[i] - want[i]| <= atol + rtol |want[i]|. Reports the max abs and rel error. */
static inline int arrays_close(long n, const double *got, const double *want, double rtol,
                               double atol, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static inline int arrays_close(long n, const double *got, const double *want, double rtol,
                               double atol, const char *fmt, ...) {
  double maxabs = 0, maxrel = 0;
  long worst = -1;
  int pass = 1;
  for (long i = 0; i < n; i++) {
    double e = fabs(got[i] - want[i]);
    double r = e / (fabs(want[i]) > 0 ? fabs(want[i]) : 1);
    if (!isfinite(got[i]) || !isfinite(want[i]) || e > atol + rtol * fabs(want[i])) {
      if (pass) worst = i;
      pass = 0;
    }
    if (e > maxabs || !isfinite(e)) maxabs = e;
    if (r > maxrel || !isfinite(r)) maxrel = r;
  }
  va_list ap;
  va_start(ap, fmt);
  tap_vreport(pass, fmt, ap);
  va_end(ap);
  if (!pass)
    diag("  %ld values: max abs err %.3g, max rel err %.3g; first bad index %ld: got %.17g want %.17g",
         n, maxabs, maxrel, worst, got[worst], want[worst]);
  return pass;
}

/* Print the plan and return the exit status. */
static inline int tap_end(void) {
  printf("1..%d\n", tap_n);
  if (tap_failed) printf("# %d of %d failed\n", tap_failed, tap_n);
  return tap_failed ? 1 : 0;
}

#endif
