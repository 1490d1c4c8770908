/* Per-sample time of opl's Darcy solve alone at S^2 nodes (pde/darcy.h): assembly of the
 * five-point system, CHOLMOD numeric factorization and the triangular solves, for coefficients
 * psi(g) of the FNO preset's random field (drawn outside the timing, as bench_scipy.py does).
 * Prints "opl_solve_ms <median wall>", "opl_solve_cpu_ms <median process CPU time>" and the
 * one-time analysis. With DUMP, writes sample 0's a then u ([S, S] each, float64, native byte
 * order) there for bench_scipy.py to compare against. usage: darcy_bench_solve [S] [SAMPLES] [DUMP] */
#include <fftw3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pde/darcy.h"

static double clock_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of the process: on a shared machine, less inflated by other load than wall time. */
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int s = argc > 1 ? atoi(argv[1]) : 421, n = argc > 2 ? atoi(argv[2]) : 10;
  if (s < 3 || n < 1 || n > 10000) {
    fprintf(stderr, "usage: darcy_bench_solve [S >= 3] [SAMPLES >= 1] [DUMP]\n");
    return 2;
  }
  opl_err e = {0};
  opl_darcy_params p;
  opl_darcy_preset("fno", &p, NULL, NULL, NULL);
  opl_darcy_grf *f = opl_darcy_grf_new(s, p.tau, p.alpha, &e);
  double t0 = now_s();
  opl_darcy *d = f ? opl_darcy_new(s, &e) : NULL;
  double t_an = now_s() - t0;
  if (!d) {
    fprintf(stderr, "darcy_bench_solve: %s\n", e.msg);
    return 1;
  }
  size_t m = (size_t)s * s;
  double *g = fftw_malloc(sizeof(double) * m), *w = fftw_malloc(sizeof(double) * m), *a = malloc(sizeof(double) * m),
         *u = malloc(sizeof(double) * m), *ts = malloc(sizeof(double) * (size_t)n),
         *tc = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) {
    opl_darcy_grf_sample(f, 0, (uint64_t)i, g, w);
    opl_darcy_psi(&p, g, a, (int64_t)m);
    t0 = now_s();
    double c0 = cpu_s();
    if (opl_darcy_solve(d, a, NULL, u, &e)) {
      fprintf(stderr, "darcy_bench_solve: %s\n", e.msg);
      return 1;
    }
    ts[i] = now_s() - t0;
    tc[i] = cpu_s() - c0;
    if (i == 0 && argc > 3) {
      FILE *fp = fopen(argv[3], "wb");
      if (!fp || fwrite(a, sizeof(double), m, fp) != m || fwrite(u, sizeof(double), m, fp) != m || fclose(fp)) {
        fprintf(stderr, "darcy_bench_solve: cannot write '%s'\n", argv[3]);
        return 1;
      }
    }
  }
  qsort(ts, (size_t)n, sizeof *ts, cmp);
  qsort(tc, (size_t)n, sizeof *tc, cmp);
  printf("analysis_ms %.3f\nopl_solve_ms %.3f\nopl_solve_cpu_ms %.3f\n", 1e3 * t_an, 1e3 * ts[n / 2], 1e3 * tc[n / 2]);
  free(ts);
  free(tc);
  free(a);
  free(u);
  fftw_free(g);
  fftw_free(w);
  opl_darcy_free(&d);
  opl_darcy_grf_free(&f);
  return 0;
}
