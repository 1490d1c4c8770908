/* Threaded sums are deterministic: opl_par_sums (core/par.h), the RK core's error norm on double
 * arrays, the tape path's opl_wrms_value and the grid's integrals give the same bits at 1, 2, 3
 * and 4 OpenMP threads (an OpenMP reduction(+) adds thread partials in finishing order, which
 * with 3 or more threads changes the rounding from run to run), and equal a long double
 * reference to rounding. In the double build the tape path's norm equals the array path's bit
 * for bit. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/ops.h"
#include "core/par.h"
#include "pde/grid.h"
#include "solvers/rk.h"
#include "tests/tap.h"

#define N 300007

static double *xs;

static void blocks(void *ctx, int64_t b0, int64_t b1, double *acc) {
  (void)ctx;
  for (int64_t i = b0 * 1000; i < b1 * 1000 && i < N; i++) {
    acc[0] += xs[i];
    acc[1] += xs[i] * xs[i];
  }
}

/* Bits of a double, for exact comparison. */
static int same(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

int main(void) {
  tap_begin();
  xs = malloc(sizeof(double) * N);
  double *ya = malloc(sizeof(double) * N), *yb = malloc(sizeof(double) * N);
  opl_real *er = malloc(sizeof(opl_real) * N), *yar = malloc(sizeof(opl_real) * N),
           *ybr = malloc(sizeof(opl_real) * N);
  uint64_t z = 12345;
  long double ref0 = 0, ref1 = 0;
  for (int i = 0; i < N; i++) {
    z = z * 6364136223846793005ULL + 1442695040888963407ULL;
    double u = (double)(z >> 11) / 9007199254740992.0;
    xs[i] = (u - 0.3) * pow(10.0, (double)(i % 7) - 3);   /* mixed magnitudes and signs */
    ya[i] = sin(0.001 * i);
    yb[i] = cos(0.002 * i);
    er[i] = (opl_real)xs[i];
    yar[i] = (opl_real)ya[i];
    ybr[i] = (opl_real)yb[i];
    ref0 += xs[i];
    ref1 += (long double)xs[i] * xs[i];
  }
  opl_rk_vops ops = opl_rk_vops_double(N);
  opl_grid *g = opl_grid_new_2d(512, 512, 1, 1, OPL_GRID_ESTIMATE | OPL_GRID_THREADS, NULL);
  double *u = opl_pde_alloc(g->nreal);
  for (int64_t i = 0; i < g->nreal; i++) u[i] = xs[i % N];
  double *uh = opl_pde_alloc(2 * g->nspec);
  for (int64_t i = 0; i < 2 * g->nspec; i++) uh[i] = xs[(i * 7) % N];

  double s1[4][2], w[4], wt[4], gi[4], gp[4];
  int nth[4] = {1, 2, 3, 4};
  for (int k = 0; k < 4; k++) {
    omp_set_num_threads(nth[k]);
    opl_par_sums((N + 999) / 1000, 2, 1, blocks, NULL, s1[k]);
    w[k] = ops.wrms(&ops, xs, ya, yb, 1e-3, 1e-6);
    wt[k] = opl_wrms_value(N, er, yar, ybr, 1e-3, 1e-6);
    gi[k] = opl_grid_integral(g, u);
    gp[k] = opl_grid_parseval(g, uh);
  }
  int ok_s = 1, ok_w = 1, ok_wt = 1, ok_g = 1;
  for (int k = 1; k < 4; k++) {
    ok_s &= same(s1[k][0], s1[0][0]) && same(s1[k][1], s1[0][1]);
    ok_w &= same(w[k], w[0]);
    ok_wt &= same(wt[k], wt[0]);
    ok_g &= same(gi[k], gi[0]) && same(gp[k], gp[0]);
  }
  ok(ok_s, "opl_par_sums: the same bits at 1, 2, 3 and 4 threads");
  ok(fabs(s1[0][0] - (double)ref0) <= 1e-12 * fabsl(ref1) && fabs(s1[0][1] - (double)ref1) <= 1e-13 * (double)ref1,
     "opl_par_sums equals a long double sum to rounding (%.17g vs %.17Lg)", s1[0][0], ref0);
  ok(ok_w, "RK error norm on double arrays (n = %d): the same bits at 1..4 threads (%.17g)", N, w[0]);
  ok(ok_wt, "opl_wrms_value (n = %d): the same bits at 1..4 threads (%.17g)", N, wt[0]);
  ok(ok_g, "grid integral and Parseval sum on a threaded 512^2 grid: the same bits at 1..4 threads");
#ifdef OPL_DOUBLE
  ok(same(w[0], wt[0]), "double build: the tape path's norm equals the array path's bit for bit");
#else
  ok(fabs(w[0] - wt[0]) <= 1e-6 * w[0], "single build: tape norm (float inputs) within 1e-6 of the array norm");
#endif
  omp_set_num_threads(2);
  opl_pde_free(u);
  opl_pde_free(uh);
  opl_grid_free(&g);
  free(xs); free(ya); free(yb); free(er); free(yar); free(ybr);
  return tap_end();
}
