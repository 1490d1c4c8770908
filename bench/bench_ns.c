/* bench_ns — time per step of opl's 2-D Navier-Stokes solver (pde/solve.h) next to the bare
 * FFTW time of the transforms one step needs, measured in the same run.
 *
 * The case is FNO's Navier-Stokes data generator (Li et al., "Fourier neural operator for
 * parametric partial differential equations", ICLR 2021; data_generation/navier_stokes/ns_2d.py):
 * vorticity on [0, 1)^2 at n^2 = 256^2, nu = 1e-3, FNO forcing, dt = 1e-4, initial vorticity from
 * the "ns-fno" Gaussian random field, batch 1. Schemes:
 *   fno      ns_2d.py's own scheme (Crank-Nicolson on the viscous term, explicit Euler on the
 *            advection, 1 evaluation of N per step); ns_2d.py takes the same steps;
 *   cn-heun  opl's preset scheme (Crank-Nicolson + Heun, second order, 2 evaluations per step,
 *            CFL check).
 * One evaluation of N is 4 inverse real transforms (one batched FFTW plan of 4) and 1 forward
 * transform of n x n doubles. "fftw ms/step" executes exactly those plans of the same grid
 * (opl_grid_inverse_many_raw / opl_grid_forward) alone, evals/step times per step, so
 * opl/fftw is the cost of everything that is not a transform. With --batch B > 1 the bare
 * transforms are timed the same way as the solves: B trajectories' worth spread over the threads.
 *
 * Threads: a single trajectory has no batch to spread over threads; with T > 1 threads the grid
 * is made with T-threaded FFTW plans (fftw_plan_with_nthreads) and OPL_GRID_THREADS (OpenMP in
 * the pointwise loops). --batch B > 1 instead solves B trajectories in parallel, one per thread
 * (how `opl generate` uses threads), with single-threaded plans, and reports ms per step per
 * trajectory.
 *
 * usage: bench_ns [--n 256] [--steps 500] [--threads "1 2"] [--repeat 3] [--batch 1]
 *                 [--schemes "fno cn-heun"] [--estimate]
 * Prints a table and one line per row "RESULT scheme=.. threads=.. n=.. batch=.. steps=..
 * ms_step=.. fftw_ms_step=.. evals_step=.." for scripts (experiments/bench/ns_peer.sh). Speed is
 * measured here, never asserted. */
#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/opl.h"
#include "pde/grf.h"
#include "pde/grid.h"
#include "pde/ns2d.h"
#include "pde/solve.h"
#include "bench/bench.h"

/* Monotonic wall-clock time in seconds. */
/* Median time (s) per trajectory of one evaluation's transforms (4 batched inverse + 1 forward)
 * on grid g, over reps rounds. batch == 1: one evaluation per round (its plans may use threads);
 * batch > 1: each round runs batch evaluations spread over `threads` threads, one per trajectory,
 * as the solves are, each thread on its own buffers (as a solve reuses its workspace); the time
 * per trajectory is the summed transform time / batch / threads (the ideal throughput of the
 * threads doing nothing but transforms). The input spectra are refreshed outside the timed parts
 * (the inverse destroys its input). */
static double fftw_eval_time(const opl_grid *g, const double *w0, int reps, int batch, int threads) {
  const int64_t S = 2 * g->nspec, N = g->nreal;
  double *spec0 = opl_pde_alloc(4 * S), *spec = opl_pde_alloc(4 * S * threads), *real = opl_pde_alloc(4 * N * threads);
  double *t = malloc(sizeof(double) * (size_t)reps);
  if (!spec0 || !spec || !real || !t) {
    fprintf(stderr, "bench_ns: out of memory\n");
    exit(1);
  }
  opl_grid_forward(g, w0, spec0);
  for (int k = 1; k < 4; k++) memcpy(spec0 + k * S, spec0, sizeof(double) * (size_t)S);
  for (int64_t i = 0; i < 4 * S; i++) spec0[i] /= (double)N;
  for (int r = -3; r < reps; r++) {
    double dt;
    if (batch == 1) {
      memcpy(spec, spec0, sizeof(double) * (size_t)(4 * S));
      double t0 = now();
      opl_grid_inverse_many_raw(g, 4, spec, real);
      opl_grid_forward(g, real, spec);
      dt = now() - t0;
    } else {
      double busy = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(+ : busy)
      for (int b = 0; b < batch; b++) {
        const int t = omp_get_thread_num();
        double *sp = spec + 4 * S * t, *re = real + 4 * N * t;
        memcpy(sp, spec0, sizeof(double) * (size_t)(4 * S));
        double t0 = now();
        opl_grid_inverse_many_raw(g, 4, sp, re);
        opl_grid_forward(g, re, sp);
        busy += now() - t0;
      }
      dt = busy / batch / (threads < batch ? threads : batch);
    }
    if (r >= 0) t[r] = dt;
  }
  double m = median(t, reps);
  opl_pde_free(spec0);
  opl_pde_free(spec);
  opl_pde_free(real);
  free(t);
  return m;
}

/* One measured configuration. */
typedef struct row {
  char scheme[16];
  int threads, n, batch, steps;
  double ms, fftw_ms, evals;
} row;

int main(int argc, char **argv) {
  int n = 256, steps = 500, repeat = 3, batch = 1, estimate = 0;
  const char *threads_list = "1 2", *schemes = "fno cn-heun";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--n") && v) n = atoi(argv[++i]);
    else if (!strcmp(a, "--steps") && v) steps = atoi(argv[++i]);
    else if (!strcmp(a, "--repeat") && v) repeat = atoi(argv[++i]);
    else if (!strcmp(a, "--batch") && v) batch = atoi(argv[++i]);
    else if (!strcmp(a, "--threads") && v) threads_list = argv[++i];
    else if (!strcmp(a, "--schemes") && v) schemes = argv[++i];
    else if (!strcmp(a, "--estimate")) estimate = 1;
    else {
      fprintf(stderr, "usage: bench_ns [--n 256] [--steps 500] [--threads \"1 2\"] [--repeat 3] [--batch 1] "
                      "[--schemes \"fno cn-heun\"] [--estimate]\n");
      return 2;
    }
  }
  if (n < 4 || n % 2 || steps < 1 || repeat < 1 || batch < 1) {
    fprintf(stderr, "bench_ns: need an even --n >= 4 and --steps, --repeat, --batch >= 1\n");
    return 2;
  }
  const double dt = 1e-4;
  const int fftw_threads_ok = fftw_init_threads() != 0;
  printf("# bench_ns: 2-D Navier-Stokes (FNO setting: nu 1e-3, FNO forcing, ns-fno initial vorticity), %d^2, "
         "batch %d, dt %g, %d steps per solve, median of %d solves, FFTW_%s plans, double precision, opl %s\n",
         n, batch, dt, steps, repeat, estimate ? "ESTIMATE" : "MEASURE", OPL_VERSION);
  printf("%-9s %7s %6s %10s %13s %9s %10s\n", "scheme", "threads", "batch", "ms/step", "fftw ms/step", "opl/fftw",
         "evals/step");
  row rows[16];
  int nrows = 0;
  char tl[128];
  snprintf(tl, sizeof tl, "%s", threads_list);
  for (char *tok = strtok(tl, " ,"); tok && nrows < 16; tok = strtok(NULL, " ,")) {
    const int T = atoi(tok);
    if (T < 1) continue;
    omp_set_num_threads(T);
    /* the grid: T-threaded plans for one trajectory; single-threaded plans when trajectories are
     * spread over the threads */
    const int plan_threads = batch == 1 ? T : 1;
    if (fftw_threads_ok) fftw_plan_with_nthreads(plan_threads);
    unsigned gflags = (estimate ? OPL_GRID_ESTIMATE : OPL_GRID_MEASURE) | (plan_threads > 1 ? OPL_GRID_THREADS : 0);
    opl_err e = {0};
    opl_grid *g = opl_grid_new_2d(n, n, 1.0, 1.0, gflags, &e);
    if (fftw_threads_ok) fftw_plan_with_nthreads(1);
    opl_grf_params gp;
    opl_grf_preset("ns-fno", &gp, NULL);
    opl_grf *f = g ? opl_grf_new(g, &gp, &e) : NULL;
    if (!g || !f) {
      fprintf(stderr, "bench_ns: %s\n", e.msg);
      return 1;
    }
    double *w0 = opl_pde_alloc((int64_t)batch * g->nreal), *work = opl_pde_alloc(opl_grf_work_size(f));
    double *out = opl_pde_alloc((int64_t)batch * n * n);
    for (int b = 0; b < batch; b++) opl_grf_sample_seeded(f, 0, (uint64_t)b, w0 + b * g->nreal, work);
    const double t_eval = fftw_eval_time(g, w0, batch == 1 ? 200 : 50, batch, T);
    char sl[128];
    snprintf(sl, sizeof sl, "%s", schemes);
    char *save = NULL;
    for (char *sn = strtok_r(sl, " ,", &save); sn && nrows < 16; sn = strtok_r(NULL, " ,", &save)) {
      int scheme = 0;
      if (opl_solve_scheme_parse(sn, &scheme, NULL, &e) || (scheme != OPL_SCHEME_FNO && scheme != OPL_SCHEME_CN_HEUN &&
                                                            scheme != OPL_SCHEME_CN_EULER)) {
        fprintf(stderr, "bench_ns: scheme '%s': expected fno, cn-heun or cn-euler\n", sn);
        return 2;
      }
      opl_ns2d_params p;
      opl_solve_opts o;
      opl_solve_ns2d_preset("fno", &p, &o, NULL, NULL);
      p.n = n;
      o.scheme = scheme;
      o.dt = dt;
      o.nt = 1;
      o.store_n = n;
      o.cfl = scheme == OPL_SCHEME_FNO ? 0 : 1; /* ns_2d.py checks nothing; opl's preset checks CFL <= 1 */
      o.grid = g;
      double *wall = malloc(sizeof(double) * (size_t)repeat);
      int64_t st_steps = 0, st_nfev = 0;
      int failed = 0;
      for (int r = -1; r < repeat && !failed; r++) { /* r = -1: warm-up */
        o.T = (r < 0 ? (steps < 20 ? steps : 20) : steps) * dt;
        double t0 = now();
        if (batch == 1) { /* one trajectory: its own loops and plans use the threads */
          opl_solve_stats st;
          if (opl_solve_ns2d(&p, w0, &o, out, &st, &e)) {
            fprintf(stderr, "bench_ns: %s\n", e.msg);
            failed++;
          }
          st_steps = st.steps, st_nfev = st.nfev;
        } else { /* trajectories spread over the threads, as opl generate does */
#pragma omp parallel for schedule(dynamic, 1) num_threads(T) reduction(+ : failed)
          for (int b = 0; b < batch; b++) {
            opl_solve_stats st;
            opl_err eb = {0};
            if (opl_solve_ns2d(&p, w0 + b * g->nreal, &o, out + (int64_t)b * n * n, &st, &eb)) {
#pragma omp critical(bench_ns_err)
              fprintf(stderr, "bench_ns: %s\n", eb.msg);
              failed++;
            }
            if (b == 0) st_steps = st.steps, st_nfev = st.nfev;
          }
        }
        if (r >= 0) wall[r] = now() - t0;
      }
      if (failed) return 1;
      const double per_step = median(wall, repeat) / (double)steps / (double)batch;
      const double evals = st_steps > 0 ? (double)st_nfev / (double)st_steps : NAN;
      row rw = {"", T, n, batch, steps, 1e3 * per_step, 1e3 * t_eval * evals, evals};
      snprintf(rw.scheme, sizeof rw.scheme, "%s", sn);
      rows[nrows++] = rw;
      printf("%-9s %7d %6d %10.4f %13.4f %9.2f %10.2f\n", rw.scheme, T, batch, rw.ms, rw.fftw_ms, rw.ms / rw.fftw_ms,
             evals);
      fflush(stdout);
      free(wall);
    }
    opl_pde_free(w0);
    opl_pde_free(work);
    opl_pde_free(out);
    opl_grf_free(&f);
    opl_grid_free(&g);
  }
  for (int i = 0; i < nrows; i++)
    printf("RESULT scheme=%s threads=%d n=%d batch=%d steps=%d ms_step=%.5f fftw_ms_step=%.5f evals_step=%.2f\n",
           rows[i].scheme, rows[i].threads, rows[i].n, rows[i].batch, rows[i].steps, rows[i].ms, rows[i].fftw_ms,
           rows[i].evals);
  return 0;
}
