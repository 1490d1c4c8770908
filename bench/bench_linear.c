/* bench_linear — throughput of opl_channel_linear / opl_linear (forward + backward) against raw
 * opl_gemm calls doing the same FLOPs on the same shapes.
 *
 *   bench_linear [reps]      (default 15 timed repetitions per row, after 3 warm-up runs)
 *
 * Cases: (a) FNO-1d pointwise layer x (20, 64, 1024), w (64, 64); (b) FNO-2d pointwise layer
 * x (20, 20, 64, 64), w (20, 20); (c) MLP layer x (4096, 256), w (256, 256). At 1 and 2 threads
 * (omp_set_num_threads; the OpenMP build of OpenBLAS follows it) it times:
 *   op      opl_ctx_reset + the op with bias + opl_backward_seed (x, w and b take gradients;
 *           x and the parameters live outside the arena, so every gradient accumulates);
 *   op-nob  the same without the bias;
 *   raw-seq the three products (y = W x, gx += W^T gy, gW += gy x^T) as gemm calls, one per
 *           sample in a sequential loop (each gemm multi-threaded by OpenBLAS);
 *   raw-omp the same with an OpenMP loop over the samples (each gemm single-threaded), gW
 *           accumulated per thread and summed (channel cases only);
 *   seed    the zeroing + seed addition opl_backward_seed does on the output gradient (a part
 *           of op that raw does not do), in ms.
 * GFLOP/s counts 3 x 2 M N K per run (the three products; bias and seeding are overhead).
 * The ratios are op / best raw (of medians, and of the fastest runs). Medians of the repetitions, the variants interleaved so that the
 * load of a shared machine falls on all of them alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#include "core/ops.h"
#include "bench/bench.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static opl_real urand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (opl_real)((double)(rng >> 11) / 9007199254740992.0 * 2 - 1);
}
static void fill(opl_real *a, int64_t n) {
  for (int64_t i = 0; i < n; i++) a[i] = urand();
}

typedef struct bcase {
  const char *name;
  int chan;                /* 1: channel_linear x (N, C, S); 0: linear x (M, In) */
  int rank;
  int64_t xshape[4];
  int64_t co;              /* Co (channel) or Out (linear) */
} bcase;

typedef struct bstate {
  const bcase *bc;
  opl_ctx *c;
  opl_tensor *x, *w, *b;
  opl_real *seed, *y, *gy, *gx, *gw, *gwt;
  int64_t N, Ci, Co, S;    /* channel: per sample (Co, Ci) x (Ci, S); linear: N = 1, S = M */
  int use_bias;
  int nt;
} bstate;

/* One op run: reset, forward, seeded backward. */
static void run_op(bstate *s) {
  opl_ctx_reset(s->c);
  opl_tensor *b = s->use_bias ? s->b : NULL;
  opl_tensor *y = s->bc->chan ? opl_channel_linear(s->c, s->x, s->w, b) : opl_linear(s->c, s->x, s->w, b);
  if (!y || opl_backward_seed(s->c, y, s->seed) != OPL_OK) {
    fprintf(stderr, "bench_linear: %s\n", opl_ctx_errmsg(s->c));
    exit(1);
  }
}

/* Row-major gemm shorthand: C (m, n) = op(A) op(B) + beta C. */
static void gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const opl_real *a, int64_t lda,
                 const opl_real *b, int64_t ldb, opl_real beta, opl_real *c, int64_t ldc) {
  opl_gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m,
           (int)n, (int)k, 1, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* The three products as raw gemms, one per sample, sequential loop (threaded BLAS). */
static void run_raw_seq(bstate *s) {
  int64_t Ci = s->Ci, Co = s->Co, S = s->S;
  const opl_real *x = s->x->data, *w = s->w->data;
  if (s->bc->chan) {
    for (int64_t n = 0; n < s->N; n++) gemm(0, 0, Co, S, Ci, w, Ci, x + n * Ci * S, S, 0, s->y + n * Co * S, S);
    for (int64_t n = 0; n < s->N; n++) {
      gemm(1, 0, Ci, S, Co, w, Ci, s->gy + n * Co * S, S, 1, s->gx + n * Ci * S, S);
      gemm(0, 1, Co, Ci, S, s->gy + n * Co * S, S, x + n * Ci * S, S, 1, s->gw, Ci);
    }
  } else {
    int64_t M = s->S, In = s->Ci, Out = s->Co;
    gemm(0, 1, M, Out, In, x, In, w, In, 0, s->y, Out);
    gemm(0, 0, M, In, Out, s->gy, Out, w, In, 1, s->gx, In);
    gemm(1, 0, Out, In, M, s->gy, Out, x, In, 1, s->gw, In);
  }
}

/* The same with an OpenMP loop over samples (single-threaded BLAS), gW per thread. */
static void run_raw_omp(bstate *s) {
  int64_t Ci = s->Ci, Co = s->Co, S = s->S, N = s->N;
  const opl_real *x = s->x->data, *w = s->w->data;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; n++) gemm(0, 0, Co, S, Ci, w, Ci, x + n * Ci * S, S, 0, s->y + n * Co * S, S);
  int used[64] = {0};
#pragma omp parallel
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t lo = N * t / T, hi = N * (t + 1) / T;
    opl_real *gwt = s->gwt + (int64_t)t * Co * Ci;
    for (int64_t n = lo; n < hi; n++) {
      gemm(1, 0, Ci, S, Co, w, Ci, s->gy + n * Co * S, S, 1, s->gx + n * Ci * S, S);
      gemm(0, 1, Co, Ci, S, s->gy + n * Co * S, S, x + n * Ci * S, S, n == lo ? 0 : 1, gwt, Ci);
    }
    used[t] = hi > lo;
  }
  for (int t = 0; t < s->nt; t++)
    if (used[t])
      for (int64_t i = 0; i < Co * Ci; i++) s->gw[i] += s->gwt[(int64_t)t * Co * Ci + i];
}

/* What opl_backward_seed does before the backward pass, on a buffer of the output's size:
 * zero the new gradient, add the seed (serial loops in core/tensor.c). Timed on its own to
 * show how much of the op's time it is. */
static void run_seed_only(bstate *s) {
  int64_t n = s->N * s->Co * s->S;
  memset(s->y, 0, (size_t)n * sizeof(opl_real));
  for (int64_t i = 0; i < n; i++) s->y[i] += s->seed[i];
}

static void run_op_bias(bstate *s) { s->use_bias = 1; run_op(s); }
static void run_op_nobias(bstate *s) { s->use_bias = 0; run_op(s); }

/* Median (and minimum) seconds per run of each of the nv variants fn[v] over reps repetitions
 * after 3 warm-up runs each. The variants are interleaved (one run of each per repetition) so that the load of
 * a shared machine falls on all of them alike. */
static void time_medians(int nv, void (*const *fn)(bstate *), bstate *s, int reps, double *med,
                         double *best) {
  double *t = malloc((size_t)(nv * reps) * sizeof *t);
  for (int v = 0; v < nv; v++)
    for (int i = 0; i < 3; i++) fn[v](s);
  for (int i = 0; i < reps; i++)
    for (int v = 0; v < nv; v++) {
      double t0 = now();
      fn[v](s);
      t[v * reps + i] = now() - t0;
    }
  for (int v = 0; v < nv; v++) {
    double *tv = t + v * reps;
    med[v] = median(tv, reps); /* sorts tv */
    best[v] = tv[0];
  }
  free(t);
}

static void bench_case(const bcase *bc, int nt, int reps) {
  bstate s;
  memset(&s, 0, sizeof s);
  s.bc = bc;
  s.nt = nt;
  opl_err err;
  opl_params p;
  opl_params_init(&p);
  int64_t xn = 1;
  for (int i = 0; i < bc->rank; i++) xn *= bc->xshape[i];
  if (bc->chan) {
    s.N = bc->xshape[0], s.Ci = bc->xshape[1], s.Co = bc->co, s.S = xn / (s.N * s.Ci);
  } else {
    s.N = 1, s.Ci = bc->xshape[bc->rank - 1], s.Co = bc->co, s.S = xn / s.Ci;
  }
  int64_t yn = xn / s.Ci * s.Co;
  s.x = opl_tensor_alloc(bc->rank, bc->xshape, OPL_T_REQGRAD, &err);
  s.w = opl_params_add(&p, "w", OPL_DIMS(s.Co, s.Ci), 0, &err);
  s.b = opl_params_add(&p, "b", OPL_DIMS(s.Co), 0, &err);
  if (!s.x || !s.w || !s.b) {
    fprintf(stderr, "bench_linear: %s\n", err.msg);
    exit(1);
  }
  fill(s.x->data, xn), fill(s.w->data, s.Co * s.Ci), fill(s.b->data, s.Co);
  s.seed = malloc((size_t)yn * sizeof(opl_real));
  s.y = malloc((size_t)yn * sizeof(opl_real));
  s.gy = malloc((size_t)yn * sizeof(opl_real));
  s.gx = calloc((size_t)xn, sizeof(opl_real));
  s.gw = calloc((size_t)(s.Co * s.Ci), sizeof(opl_real));
  s.gwt = calloc((size_t)(64 * s.Co * s.Ci), sizeof(opl_real));
  fill(s.seed, yn);
  memcpy(s.gy, s.seed, (size_t)yn * sizeof(opl_real));
  s.c = opl_ctx_new(0);

  double flops = 3.0 * 2.0 * (double)s.N * (double)s.Co * (double)s.Ci * (double)s.S;
  void (*const fns[5])(bstate *) = {run_op_bias, run_op_nobias, run_seed_only, run_raw_seq,
                                    run_raw_omp};
  double med[5] = {0}, best[5] = {0};
  time_medians(bc->chan ? 5 : 4, fns, &s, reps, med, best);
  double t_op = med[0], t_nob = med[1], t_seed = med[2], t_seq = med[3], t_omp = med[4];
  double t_raw = t_omp > 0 && t_omp < t_seq ? t_omp : t_seq;
  double b_raw = best[4] > 0 && best[4] < best[3] ? best[4] : best[3];
  printf("%-34s %3d %7.2f %7.2f %9.1f %9.1f %9.1f ", bc->name, nt, 1e3 * t_op, 1e3 * t_seed,
         1e-9 * flops / t_op, 1e-9 * flops / t_nob, 1e-9 * flops / t_seq);
  if (t_omp > 0)
    printf("%9.1f", 1e-9 * flops / t_omp);
  else
    printf("%9s", "-");
  printf(" %7.0f%% %7.0f%% %7.0f%%\n", 100 * t_raw / t_op, 100 * t_raw / t_nob, 100 * b_raw / best[0]);
  fflush(stdout);

  free(s.seed), free(s.y), free(s.gy), free(s.gx), free(s.gw), free(s.gwt);
  opl_tensor_free(&s.x);
  opl_params_free(&p);
  opl_ctx_free(&s.c);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 15;
  if (reps < 1) reps = 1;
  static const bcase cases[] = {
      {"(a) FNO-1d x(20,64,1024) w(64,64)", 1, 3, {20, 64, 1024}, 64},
      {"(b) FNO-2d x(20,20,64,64) w(20,20)", 1, 4, {20, 20, 64, 64}, 20},
      {"(c) MLP x(4096,256) w(256,256)", 0, 2, {4096, 256}, 256},
  };
  int maxt = omp_get_max_threads();
  printf("# bench_linear: opl %s, %s precision, OpenBLAS core %s, %s, parallel mode %d (2 = OpenMP), "
         "%d OpenMP threads available; median of %d runs\n",
         OPL_VERSION, OPL_PRECISION_NAME, openblas_get_corename(), openblas_get_config(),
         openblas_get_parallel(), maxt, reps);
  printf("# GFLOP/s = 3 x 2MNK / time; op = channel_linear/linear with bias, fwd+bwd; ratio = op / best raw\n");
  printf("# op/raw-min: the same ratio from the fastest run of each (least disturbed by other load)\n");
  printf("# seed ms: zeroing the output gradient and adding the seed (opl_backward_seed), part of op ms\n");
  printf("%-34s %3s %7s %7s %9s %9s %9s %9s %8s %8s %8s\n", "case", "thr", "op ms", "seed ms",
         "op", "op-nob", "raw-seq", "raw-omp", "op/raw", "nob/raw", "op/raw-min");
  int threads[2] = {1, 2};
  for (int ti = 0; ti < 2; ti++) {
    int nt = threads[ti];
    if (nt > 64) continue;
    opl_set_num_threads(nt);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) bench_case(&cases[k], nt, reps);
  }
  return 0;
}
