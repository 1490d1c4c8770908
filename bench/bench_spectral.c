/* bench_spectral — opl_spectral_conv forward + backward next to the raw FFTW transforms it
 * needs, at the FNO shapes of Li et al. 2021:
 *   (a) FNO-1d: x (20, 64, 1024), modes 16, Ci = Co = 64
 *   (b) FNO-2d: x (20, 20, 64, 64), modes 12 x 12, Ci = Co = 20
 * "raw" is the same cached batched plans executed alone: forward r2c of N*Ci and c2r of N*Co,
 * backward r2c of N*Co and c2r of N*Ci. Medians after warm-up, at 1 and 2 threads; the
 * ratio raw/op says how close the op is to the FFT floor (target >= 0.8). In 1-D the op
 * transforms its few kept modes as a GEMM (core/fft.h) and can beat the FFT floor; the
 * FFT path is timed too for comparison.
 *
 * usage: bench_spectral [iterations (default 15) [threads (default: 1 then 2)]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/ops.h"
#include "core/fft.h"
#include "bench/bench.h"

typedef struct bcase {
  const char *name;
  int d;
  int64_t N, C, S[2];
  int modes[2];
} bcase;

static void run(const bcase *bc, int threads, int iters, opl_dft_mode mode) {
  opl_set_num_threads(threads);
  opl_fft_set_dft_mode(mode);
  int d = bc->d;
  int64_t xs[4] = {bc->N, bc->C, bc->S[0], bc->S[1]};
  int64_t ws[4] = {bc->C, bc->C, d == 1 ? bc->modes[0] : 2 * bc->modes[0], bc->modes[1]};
  opl_err err;
  opl_tensor *x = opl_tensor_alloc(d + 2, xs, 0, &err);
  opl_tensor *w = opl_tensor_alloc(d + 2, ws, OPL_T_COMPLEX | OPL_T_REQGRAD, &err);
  uint64_t s = 1;
  for (int64_t i = 0; i < opl_nreal(x); i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x->data[i] = (opl_real)((double)(s >> 11) / 9007199254740992.0 - 0.5);
  }
  for (int64_t i = 0; i < opl_nreal(w); i++) w->data[i] = (opl_real)(0.01 * ((i % 13) - 6));
  int64_t nx = opl_nreal(x);
  opl_real *seed = malloc((size_t)nx * sizeof *seed);
  for (int64_t i = 0; i < nx; i++) seed[i] = (opl_real)((i % 7) - 3) * (opl_real)0.1;

  /* raw transforms: the plans the op uses */
  int64_t dims[2] = {bc->S[0], bc->S[1]};
  const int64_t *tdims = d == 1 ? &bc->S[0] : dims;
  int64_t nreal = d == 1 ? bc->S[0] : bc->S[0] * bc->S[1];
  int64_t ncplx = d == 1 ? bc->S[0] / 2 + 1 : bc->S[0] * (bc->S[1] / 2 + 1);
  int64_t NC = bc->N * bc->C;
  double t0 = now();
  const opl_fft_plan *pf = opl_fft_plan_get(OPL_FFT_R2C, d, tdims, NC, 0, &err);
  const opl_fft_plan *pb = opl_fft_plan_get(OPL_FFT_C2R, d, tdims, NC, 0, &err);
  double tplan = now() - t0;
  if (!pf || !pb) {
    printf("planning failed: %s\n", err.msg);
    exit(1);
  }
  opl_real *rbuf = OPL_FFTW(malloc)((size_t)(NC * nreal) * sizeof(opl_real));
  opl_real *rbuf2 = OPL_FFTW(malloc)((size_t)(NC * nreal) * sizeof(opl_real));
  opl_real *cbuf = OPL_FFTW(malloc)((size_t)(2 * NC * ncplx) * sizeof(opl_real));
  opl_real *zbuf = OPL_FFTW(malloc)((size_t)(2 * NC * ncplx) * sizeof(opl_real));
  memcpy(rbuf, x->data, (size_t)nx * sizeof(opl_real));
  memset(cbuf, 0, (size_t)(2 * NC * ncplx) * sizeof(opl_real));
  memset(zbuf, 0, (size_t)(2 * NC * ncplx) * sizeof(opl_real));

  opl_ctx *c = opl_ctx_new(0);
  int warm = 3, n = iters;
  double *top = malloc(n * sizeof *top), *tfw = malloc(n * sizeof *tfw), *tbw = malloc(n * sizeof *tbw);
  double *traw = malloc(n * sizeof *traw), *tr2c = malloc(n * sizeof *tr2c), *tc2r = malloc(n * sizeof *tc2r);
  for (int it = -warm; it < n; it++) {
    /* op: x enters as an arena view (as an FNO activation does), w is a parameter */
    opl_ctx_reset(c);
    opl_tensor_zero_grad(w);
    double a = now();
    opl_tensor *xv = opl_view(c, x, d + 2, xs);
    opl_set_requires_grad(xv);
    opl_tensor *y = opl_spectral_conv(c, xv, w, d, bc->modes);
    double b = now();
    if (!y) {
      printf("op failed: %s\n", opl_ctx_errmsg(c));
      exit(1);
    }
    y->grad = seed; /* the output gradient as a loss would hand it over */
    y->node->backward(y->node);
    double e = now();
    if (opl_ctx_status(c)) {
      printf("backward failed: %s\n", opl_ctx_errmsg(c));
      exit(1);
    }
    /* raw: the four batched transforms alone. r2c reads x and writes cbuf; c2r runs on a
     * zero spectrum (zbuf), which the transform destroys into zeros again. */
    double r0 = now();
    opl_fft_exec_r2c(pf, rbuf, cbuf);
    double r1 = now();
    opl_fft_exec_c2r(pb, zbuf, rbuf2);
    double r2 = now();
    opl_fft_exec_r2c(pf, rbuf, cbuf);
    double r3 = now();
    opl_fft_exec_c2r(pb, zbuf, rbuf2);
    double r4 = now();
    if (it >= 0) {
      top[it] = e - a, tfw[it] = b - a, tbw[it] = e - b;
      tr2c[it] = (r1 - r0) + (r3 - r2);
      tc2r[it] = (r2 - r1) + (r4 - r3);
      traw[it] = tr2c[it] + tc2r[it];
    }
  }
  double mop = median(top, n), mraw = median(traw, n);
  const char *how = bc->d > 1 ? "FFT" : opl_fft_prefer_gemm(bc->S[0], bc->modes[0]) ? "GEMM-DFT" : "FFT";
  printf("%-30s %-8s threads %d: op fwd+bwd %8.3f ms (fwd %7.3f, bwd %7.3f) | raw 4 FFTs %8.3f ms "
         "(2 r2c %7.3f, 2 c2r %7.3f) | raw/op %.2f | plan %.2f s\n",
         bc->name, how, threads, 1e3 * mop, 1e3 * median(tfw, n), 1e3 * median(tbw, n), 1e3 * mraw,
         1e3 * median(tr2c, n), 1e3 * median(tc2r, n), mraw / mop, tplan);
  fflush(stdout);
  free(top), free(tfw), free(tbw), free(traw), free(tr2c), free(tc2r), free(seed);
  OPL_FFTW(free)(rbuf), OPL_FFTW(free)(rbuf2), OPL_FFTW(free)(cbuf), OPL_FFTW(free)(zbuf);
  opl_ctx_free(&c);
  opl_tensor_free(&x), opl_tensor_free(&w);
}

int main(int argc, char **argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 15;
  if (iters < 1) iters = 15;
  const char *core = getenv("OPENBLAS_CORETYPE");
  printf("bench_spectral: %s precision, %d iterations (medians), OPENBLAS_CORETYPE=%s\n",
         OPL_PRECISION_NAME, iters, core ? core : "(unset)");
  const bcase cases[] = {
      {"FNO-1d x(20,64,1024) m16", 1, 20, 64, {1024, 0}, {16, 0}},
      {"FNO-2d x(20,20,64,64) m12x12", 2, 20, 20, {64, 64}, {12, 12}},
  };
  int t0 = 1, t1 = 2;
  if (argc > 2 && atoi(argv[2]) > 0) t0 = t1 = atoi(argv[2]);
  for (int t = t0; t <= t1; t++)
    for (int i = 0; i < 2; i++) {
      run(&cases[i], t, iters, OPL_DFT_AUTO);
      if (cases[i].d == 1) run(&cases[i], t, iters, OPL_DFT_FFT); /* the FFT path, for comparison */
    }
  opl_fft_cache_clear();
  return 0;
}
