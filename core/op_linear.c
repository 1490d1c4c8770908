/* opl — linear algebra ops on OpenBLAS: linear (nn.Linear), channel_linear (1x1 convolution,
 * the pointwise layer W of an FNO block), matmul and batched matmul.
 *
 * Every product is one opl_gemm (cblas_sgemm / cblas_dgemm) call or a batch of them; backward
 * kernels accumulate with beta = 1, except into a gradient buffer that does not exist yet,
 * which is taken uninitialized from the arena and written with beta = 0 (see grad_for_write):
 * instead of a zeroed buffer written once by calloc and read back by the gemm, each gemm then
 * clears its own block of the output just before filling it (per sample, while it is cached).
 *
 * Threads. OpenBLAS is the OpenMP build: a gemm called outside a parallel region uses all
 * OpenMP threads, a gemm called inside one runs single-threaded. A batch of independent
 * products (one per sample of channel_linear, one per member of bmm) therefore runs either as
 * an OpenMP loop over the batch with one single-threaded gemm per member, or as a sequential
 * loop of multi-threaded gemms. The loop over the batch wins for the FNO shapes (the products
 * are small, K = 20..64, and a thread keeps its sample's output in its own L2 while it adds
 * the bias or sums the gradient); batch_parallel() decides (bench/bench_linear.c measures
 * both). */
#include <limits.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "core/ops.h"
#include "core/internal.h"

/* ------------------------------------------------------------ helpers */

/* Threads an OpenMP loop started here would get (1 inside a parallel region). */
static int team_size(void) {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

/* Index of the calling thread in its team (0 outside a parallel region). */
static int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* Size of the calling thread's team (1 outside a parallel region). */
static int thread_count(void) {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

/* Flops below which a batch of products runs on one thread: ~50 us of single-core gemm, well
 * above the cost of waking the team. */
#define PAR_MIN_FLOPS (64.0 * OPL_PAR_MIN)

/* 1 if a batch of `batch` independent products of `flops` each should run as an OpenMP loop
 * over the batch (single-threaded BLAS per member), 0 for a sequential loop of multi-threaded
 * BLAS calls. The batch must give every thread a member and be large enough to pay for waking
 * the threads. An uneven split (batch % threads != 0) idles threads in the last round; that is
 * still cheaper than threading small products inside BLAS (bench_linear: raw-seq runs the FNO
 * layers 3-10x slower than raw-omp at 2 threads), but not large products (> 1e8 flops each,
 * which OpenBLAS threads well) in a short batch. */
static int batch_parallel(int64_t batch, double flops) {
  int nt = team_size();
  if (nt <= 1 || batch < nt || (double)batch * flops <= PAR_MIN_FLOPS) return 0;
  if (batch % nt == 0 || batch >= 4 * nt) return 1;
  return flops < 1e8;
}

/* Gradient buffer of input i of nd for a GEMM that writes it: *beta = 0 when the buffer is
 * fresh (opl_node_grad_write), so the GEMM overwrites it; 1 when it accumulates. */
static opl_real *grad_for_write(opl_node *nd, int i, opl_real *beta) {
  int fresh;
  opl_real *g = opl_node_grad_write(nd, i, &fresh);
  *beta = fresh ? 0 : 1;
  return g;
}

/* 1 if every extent fits BLAS's int; else records "op: ... too large" and returns 0. */
static int blas_dims_ok(opl_ctx *c, const char *op, int64_t m, int64_t n, int64_t k) {
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: product (%lld x %lld) * (%lld x %lld) too large for BLAS",
                  op, (long long)m, (long long)k, (long long)k, (long long)n);
    return 0;
  }
  return 1;
}

/* Row-major C (m, n) = op(A) op(B) + beta C with op(A) (m, k), op(B) (k, n); lda, ldb, ldc are
 * the row lengths of A, B, C as stored. */
static void gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const opl_real *a, int64_t lda,
                 const opl_real *b, int64_t ldb, opl_real beta, opl_real *c, int64_t ldc) {
  opl_gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m,
           (int)n, (int)k, 1, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* C_i = op(A_i) op(B_i) + beta C_i for i < batch, where A_i = a + i sa (likewise B_i, C_i; a
 * stride of 0 shares the matrix). The C_i must not overlap. Parallel over the batch or over
 * each product as batch_parallel() decides. */
static void gemm_batched(int64_t batch, int ta, int tb, int64_t m, int64_t n, int64_t k,
                         const opl_real *a, int64_t lda, int64_t sa, const opl_real *b,
                         int64_t ldb, int64_t sb, opl_real beta, opl_real *c, int64_t ldc,
                         int64_t sc) {
  if (batch_parallel(batch, 2.0 * m * n * k)) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; i++)
      gemm(ta, tb, m, n, k, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc, ldc);
  } else {
    for (int64_t i = 0; i < batch; i++)
      gemm(ta, tb, m, n, k, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc, ldc);
  }
}

/* y[r, j] = b[j] for every row r: y [rows, n], b [n]. */
static void fill_rows(int64_t rows, int64_t n, const opl_real *b, opl_real *y) {
#pragma omp parallel for if (rows * n > OPL_PAR_MIN) schedule(static)
  for (int64_t r = 0; r < rows; r++) memcpy(y + r * n, b, (size_t)n * sizeof *y);
}

/* ------------------------------------------------------------ linear */

/* y = x w^T + b: x [M, In], w [Out, In], b [Out] or NULL, y [M, Out]. One multi-threaded gemm;
 * the bias is written first and the product added with beta = 1. */
static void linear_forward(int64_t M, int64_t In, int64_t Out, const opl_real *x,
                           const opl_real *w, const opl_real *b, opl_real *y) {
  if (b) fill_rows(M, Out, b, y);
  gemm(0, 1, M, Out, In, x, In, w, In, b ? 1 : 0, y, Out);
}

/* gb[j] += sum_r g[r, j] in double: g [rows, n], gb [n]; work [nt, n] doubles with nt >=
 * team_size(), one row of partial sums per thread. */
static void colsum_acc(int64_t rows, int64_t n, const opl_real *g, opl_real *gb, double *work,
                       int nt) {
  for (int64_t i = 0; i < (int64_t)nt * n; i++) work[i] = 0;
#pragma omp parallel num_threads(nt) if (rows * n > OPL_PAR_MIN)
  {
    int t = thread_id(), T = thread_count();
    double *acc = work + (int64_t)t * n;
    for (int64_t r = rows * t / T; r < rows * (t + 1) / T; r++) {
      const opl_real *gr = g + r * n;
      for (int64_t j = 0; j < n; j++) acc[j] += (double)gr[j];
    }
  }
  for (int64_t j = 0; j < n; j++) {
    double s = 0;
    for (int t = 0; t < nt; t++) s += work[(int64_t)t * n + j];
    gb[j] += (opl_real)s;
  }
}

/* Backward of linear: gy [M, Out], x [M, In], w [Out, In].
 * gx [M, In] = gy w + beta_x gx; gw [Out, In] += gy^T x; gb [Out] += column sums of gy
 * (each output may be NULL); work [nt, Out] doubles for the bias. */
static void linear_backward(int64_t M, int64_t In, int64_t Out, const opl_real *gy,
                            const opl_real *x, const opl_real *w, opl_real *gx, opl_real beta_x,
                            opl_real *gw, opl_real *gb, double *work, int nt) {
  if (gx) gemm(0, 0, M, In, Out, gy, Out, w, In, beta_x, gx, In);
  if (gw) gemm(1, 0, Out, In, M, gy, Out, x, In, 1, gw, In);
  if (gb) colsum_acc(M, Out, gy, gb, work, nt);
}

/* Tape node of linear: iarg = (M, In, Out); inputs x, w, b (b may be NULL). */
static void linear_bw(opl_node *nd) {
  int64_t M = nd->iarg[0], In = nd->iarg[1], Out = nd->iarg[2];
  opl_real beta_x;
  opl_real *gx = grad_for_write(nd, 0, &beta_x);
  opl_real *gw = opl_node_grad(nd, 1);
  opl_real *gb = nd->in[2] ? opl_node_grad(nd, 2) : NULL;
  int nt = team_size();
  double *work = gb ? opl_arena_alloc(nd->ctx, (size_t)nt * (size_t)Out * sizeof(double)) : NULL;
  if (opl_ctx_status(nd->ctx)) return;
  linear_backward(M, In, Out, nd->out->grad, nd->in[0]->data, nd->in[1]->data, gx, beta_x, gw,
                  gb, work, nt);
}

opl_tensor *opl_linear(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b) {
  const char *op = "linear";
  if (!opl_check_input(c, op, "x", x, -1, 0) || !opl_check_input(c, op, "w", w, 2, 0)) return NULL;
  if (b && !opl_check_input(c, op, "b", b, 1, 0)) return NULL;
  char b1[96], b2[96];
  int64_t Out = w->shape[0], In = w->shape[1];
  if (x->rank < 1 || x->shape[x->rank - 1] != In) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "linear: last axis of x %s does not match w %s (Out, In)",
                  opl_shape_str(b1, x->rank, x->shape), opl_shape_str(b2, w->rank, w->shape));
    return NULL;
  }
  if (b && b->shape[0] != Out) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "linear: b %s does not match w %s (Out, In)",
                  opl_shape_str(b1, b->rank, b->shape), opl_shape_str(b2, w->rank, w->shape));
    return NULL;
  }
  int64_t M = x->numel / In;
  if (!blas_dims_ok(c, op, M, Out, In)) return NULL;
  int64_t shape[OPL_MAX_RANK];
  for (int i = 0; i < x->rank; i++) shape[i] = x->shape[i];
  shape[x->rank - 1] = Out;
  opl_tensor *y = opl_new(c, x->rank, shape);
  if (!y) return NULL;
  linear_forward(M, In, Out, x->data, w->data, b ? b->data : NULL, y->data);
  opl_tensor *in[3] = {x, w, b};
  opl_node *nd = opl_record_saves(c, op, linear_bw, y, 3, in, OPL_SAVES_IN(0) | OPL_SAVES_IN(1));
  if (nd) nd->iarg[0] = M, nd->iarg[1] = In, nd->iarg[2] = Out;
  return y;
}

/* ------------------------------------------------------------ channel_linear */

/* The pointwise (1x1 convolution) layer of an FNO block (Li et al., "Fourier Neural Operator
 * for Parametric Partial Differential Equations", ICLR 2021, eq. (2): the local linear
 * transform W v(x)): per sample y_n = W x_n + b 1^T. Samples are processed one at a time, each
 * with its bias fill / bias-gradient sum done while its block is still in cache; the samples
 * are shared among the OpenMP threads, or run in order with multi-threaded gemms when the batch
 * is too small or uneven for the threads (batch_parallel). */

/* y_n = w x_n + b for n in [lo, hi): x [N, Ci, S], w [Co, Ci], b [Co] or NULL, y [N, Co, S].
 * The bias is written into y_n and the gemm (Co, Ci) x (Ci, S) adds to it (beta = 1). */
static void chlin_forward_range(int64_t lo, int64_t hi, int64_t Ci, int64_t Co, int64_t S,
                                const opl_real *x, const opl_real *w, const opl_real *b,
                                opl_real *y, int acc) {
  for (int64_t n = lo; n < hi; n++) {
    opl_real *yn = y + n * Co * S;
    if (b && acc)
      for (int64_t o = 0; o < Co; o++)
        for (int64_t s = 0; s < S; s++) yn[o * S + s] += b[o];
    else if (b)
      for (int64_t o = 0; o < Co; o++)
        for (int64_t s = 0; s < S; s++) yn[o * S + s] = b[o];
    gemm(0, 0, Co, S, Ci, w, Ci, x + n * Ci * S, S, b || acc ? 1 : 0, yn, S);
  }
}

/* Forward over all samples (internal.h): shapes as chlin_forward_range. */
void opl_chlin_forward(int64_t N, int64_t Ci, int64_t Co, int64_t S, const opl_real *x,
                       const opl_real *w, const opl_real *b, opl_real *y, int acc) {
  if (batch_parallel(N, 2.0 * Co * Ci * S)) {
#pragma omp parallel
    {
      int t = thread_id(), T = thread_count();
      chlin_forward_range(N * t / T, N * (t + 1) / T, Ci, Co, S, x, w, b, y, acc);
    }
  } else {
    chlin_forward_range(0, N, Ci, Co, S, x, w, b, y, acc);
  }
}

/* Sum the per-thread partial gradients of a loop over samples into the gradients: gw [nw] +=
 * gwt[t] and gb [nb] += gbt[t] (doubles) for every thread t < nt with used[t] (gwt [nt, nw],
 * gbt [nt, nb]); gw or gb NULL: skipped. */
static void partials_reduce(int nt, const int *used, opl_real *gw, const opl_real *gwt, int64_t nw,
                            opl_real *gb, const double *gbt, int64_t nb) {
  for (int t = 0; t < nt; t++) {
    if (!used[t]) continue;
    if (gw) opl_acc(gw, gwt + (int64_t)t * nw, nw);
    for (int64_t i = 0; gb && i < nb; i++) gb[i] += (opl_real)gbt[(int64_t)t * nb + i];
  }
}

/* Backward over samples n in [lo, hi): gy [N, Co, S], x [N, Ci, S], w [Co, Ci].
 * gx_n [Ci, S] = w^T gy_n + beta_x gx_n; gwt [Co, Ci] = sum_n gy_n x_n^T (overwritten);
 * gbt [Co] += sum_s gy_n[., s] in double. gx, gwt, gbt may be NULL. */
static void chlin_backward_range(int64_t lo, int64_t hi, int64_t Ci, int64_t Co, int64_t S,
                                 const opl_real *gy, const opl_real *x, const opl_real *w,
                                 opl_real *gx, opl_real beta_x, opl_real *gwt, double *gbt) {
  for (int64_t n = lo; n < hi; n++) {
    const opl_real *gyn = gy + n * Co * S, *xn = x + n * Ci * S;
    if (gx) gemm(1, 0, Ci, S, Co, w, Ci, gyn, S, beta_x, gx + n * Ci * S, S);
    if (gwt) gemm(0, 1, Co, Ci, S, gyn, S, xn, S, n == lo ? 0 : 1, gwt, Ci);
    if (gbt)
      for (int64_t o = 0; o < Co; o++) gbt[o] += opl_dsum(gyn + o * S, S);
  }
}

/* Backward over all samples: shapes as chlin_backward_range; gw [Co, Ci] and gb [Co] are
 * accumulated (NULL: not needed). Scratch, nt >= the threads of the loop over samples:
 * gwt [nt, Co, Ci] reals, gbt [nt, Co] doubles zeroed, used [nt] ints zeroed. */
static void chlin_backward(int64_t N, int64_t Ci, int64_t Co, int64_t S, const opl_real *gy,
                           const opl_real *x, const opl_real *w, opl_real *gx, opl_real beta_x,
                           opl_real *gw, opl_real *gb, int nt, opl_real *gwt, double *gbt,
                           int *used) {
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      int t = thread_id(), T = thread_count();
      int64_t lo = N * t / T, hi = N * (t + 1) / T;
      chlin_backward_range(lo, hi, Ci, Co, S, gy, x, w, gx, beta_x,
                           gw ? gwt + (int64_t)t * Co * Ci : NULL, gb ? gbt + (int64_t)t * Co : NULL);
      used[t] = hi > lo;
    }
  } else {
    chlin_backward_range(0, N, Ci, Co, S, gy, x, w, gx, beta_x, gw ? gwt : NULL, gb ? gbt : NULL);
    used[0] = N > 0;
  }
  partials_reduce(nt, used, gw, gwt, Co * Ci, gb, gbt, Co);
}

/* Tape node of channel_linear: iarg = (N, Ci, Co, S); inputs x, w, b (b may be NULL). */
/* The backward kernel with its scratch from c's arena (internal.h). */
int opl_chlin_backward(opl_ctx *c, int64_t N, int64_t Ci, int64_t Co, int64_t S, const opl_real *gy,
                       const opl_real *x, const opl_real *w, opl_real *gx, opl_real beta_x,
                       opl_real *gw, opl_real *gb) {
  int nt = batch_parallel(N, 2.0 * Co * Ci * S) ? team_size() : 1;
  opl_real *gwt = opl_arena_alloc(c, (size_t)nt * (size_t)(Co * Ci) * sizeof(opl_real));
  double *gbt = opl_arena_calloc(c, (size_t)nt * (size_t)Co * sizeof(double));
  int *used = opl_arena_calloc(c, (size_t)nt * sizeof(int));
  if (opl_ctx_status(c)) return opl_ctx_status(c);
  chlin_backward(N, Ci, Co, S, gy, x, w, gx, beta_x, gw, gb, nt, gwt, gbt, used);
  return OPL_OK;
}

static void chlin_bw(opl_node *nd) {
  int64_t N = nd->iarg[0], Ci = nd->iarg[1], Co = nd->iarg[2], S = nd->iarg[3];
  opl_real beta_x;
  opl_real *gx = grad_for_write(nd, 0, &beta_x);
  opl_real *gw = opl_node_grad(nd, 1);
  opl_real *gb = nd->in[2] ? opl_node_grad(nd, 2) : NULL;
  if (opl_ctx_status(nd->ctx)) return;
  opl_chlin_backward(nd->ctx, N, Ci, Co, S, nd->out->grad, nd->in[0]->data, nd->in[1]->data, gx,
                     beta_x, gw, gb);
}

opl_tensor *opl_channel_linear(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b) {
  const char *op = "channel_linear";
  if (!opl_check_input(c, op, "x", x, -1, 0) || !opl_check_input(c, op, "w", w, 2, 0)) return NULL;
  if (b && !opl_check_input(c, op, "b", b, 1, 0)) return NULL;
  char b1[96], b2[96];
  if (x->rank < 3) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "channel_linear: x %s must be (N, Ci, *S) of rank 3..5 (w %s)",
                  opl_shape_str(b1, x->rank, x->shape), opl_shape_str(b2, w->rank, w->shape));
    return NULL;
  }
  int64_t N = x->shape[0], Ci = x->shape[1], Co = w->shape[0], S = opl_prod(x->shape, 2, x->rank);
  if (w->shape[1] != Ci) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "channel_linear: x %s has %lld channels but w %s is (Co, Ci)",
                  opl_shape_str(b1, x->rank, x->shape), (long long)Ci,
                  opl_shape_str(b2, w->rank, w->shape));
    return NULL;
  }
  if (b && b->shape[0] != Co) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "channel_linear: b %s does not match w %s (Co, Ci)",
                  opl_shape_str(b1, b->rank, b->shape), opl_shape_str(b2, w->rank, w->shape));
    return NULL;
  }
  if (!blas_dims_ok(c, op, Co, S, Ci)) return NULL;
  int64_t shape[OPL_MAX_RANK];
  for (int i = 0; i < x->rank; i++) shape[i] = x->shape[i];
  shape[1] = Co;
  opl_tensor *y = opl_new(c, x->rank, shape);
  if (!y) return NULL;
  opl_chlin_forward(N, Ci, Co, S, x->data, w->data, b ? b->data : NULL, y->data, 0);
  opl_tensor *in[3] = {x, w, b};
  opl_node *nd = opl_record_saves(c, op, chlin_bw, y, 3, in, OPL_SAVES_IN(0) | OPL_SAVES_IN(1));
  if (nd) nd->iarg[0] = N, nd->iarg[1] = Ci, nd->iarg[2] = Co, nd->iarg[3] = S;
  return y;
}

/* ------------------------------------------------------------ channel_mlp */

/* Points per block: a sample is processed in blocks of its points so that the recomputed
 * activation and the gradient scratch stay in cache and their size does not grow with S. */
#define CMLP_BLOCK 1024

/* The projection Q of an FNO (Li et al., ICLR 2021, section 4: v -> u by a pointwise
 * two-layer network), fused: per sample, z_n = w1 x_n + b1 (hidden, Ch channels), a_n = act(z_n),
 * y_n = w2 a_n + b2. As separate ops it keeps z and act(z), both Ch channels wide (Ch = 128
 * in the FNO scripts, the widest tensors of the model); fused it keeps z only and recomputes
 * a_n one sample at a time in backward:
 *   ga_n = w2^T gy_n,  gw2 += gy_n a_n^T,  gb2 += sum gy_n,
 *   gz_n = ga_n * act'(z_n),  gw1 += gz_n x_n^T,  gb1 += sum gz_n,  gx_n = w1^T gz_n.
 * Samples go to the threads as in channel_linear (batch_parallel), each thread with its own
 * [3, Ch, blk] scratch and partial weight gradients. */
typedef struct cmlp_saved {
  int64_t N, Ci, Ch, Co, S;
  int64_t blk;        /* points per block: min(S, CMLP_BLOCK) */
  int act;
  const opl_real *z;  /* [N, Ch, S] */
} cmlp_saved;


/* y_n = w2 act(z_n) + b2 for n in [lo, hi), a block of points at a time: z [N, Ch, S], a
 * [Ch, blk] scratch, y [N, Co, S]. */
static void cmlp_out_range(int64_t lo, int64_t hi, const cmlp_saved *s, const opl_real *w2,
                           const opl_real *b2, opl_real *a, opl_real *y) {
  const int64_t Ch = s->Ch, Co = s->Co, S = s->S, blk = s->blk;
  for (int64_t n = lo; n < hi; n++)
    for (int64_t j0 = 0; j0 < S; j0 += blk) {
      const int64_t B = S - j0 < blk ? S - j0 : blk;
      const opl_real *zn = s->z + n * Ch * S + j0;
      for (int64_t h = 0; h < Ch; h++) opl_unary_forward_1t(s->act, B, zn + h * S, a + h * B);
      opl_real *yn = y + n * Co * S + j0;
      if (b2)
        for (int64_t o = 0; o < Co; o++)
          for (int64_t j = 0; j < B; j++) yn[o * S + j] = b2[o];
      gemm(0, 0, Co, B, Ch, w2, Ch, a, B, b2 ? 1 : 0, yn, S);
    }
}

/* Backward over samples [lo, hi), a block of points at a time (see above). sc [3, Ch, blk]
 * scratch; gw1t [Ch, Ci], gw2t [Co, Ch] this thread's partial sums (overwritten);
 * gb1t [Ch], gb2t [Co] doubles accumulated; gx [N, Ci, S] written with beta_x. Any gradient
 * pointer may be NULL. */
static void cmlp_back_range(int64_t lo, int64_t hi, const cmlp_saved *s, const opl_real *gy,
                            const opl_real *x, const opl_real *w1, const opl_real *w2,
                            opl_real *sc, opl_real *gx, opl_real beta_x, opl_real *gw1t,
                            double *gb1t, opl_real *gw2t, double *gb2t) {
  const int64_t Ci = s->Ci, Ch = s->Ch, Co = s->Co, S = s->S, blk = s->blk;
  opl_real *a = sc, *ga = sc + Ch * blk, *gz = sc + 2 * Ch * blk;
  const int need_gz = gx || gw1t || gb1t;
  int first = 1;
  for (int64_t n = lo; n < hi; n++)
    for (int64_t j0 = 0; j0 < S; j0 += blk, first = 0) {
      const int64_t B = S - j0 < blk ? S - j0 : blk;
      const opl_real *zn = s->z + n * Ch * S + j0, *gyn = gy + n * Co * S + j0, *xn = x + n * Ci * S + j0;
      for (int64_t h = 0; h < Ch; h++) opl_unary_forward_1t(s->act, B, zn + h * S, a + h * B);
      if (gw2t) gemm(0, 1, Co, Ch, B, gyn, S, a, B, first ? 0 : 1, gw2t, Ch);
      if (gb2t)
        for (int64_t o = 0; o < Co; o++) gb2t[o] += opl_dsum(gyn + o * S, B);
      if (!need_gz) continue;
      gemm(1, 0, Ch, B, Co, w2, Ch, gyn, S, 0, ga, B);
      memset(gz, 0, (size_t)(Ch * B) * sizeof *gz);
      for (int64_t h = 0; h < Ch; h++)
        opl_unary_backward_1t(s->act, B, zn + h * S, a + h * B, ga + h * B, gz + h * B);
      if (gx) gemm(1, 0, Ci, B, Ch, w1, Ci, gz, B, beta_x, gx + n * Ci * S + j0, S);
      if (gw1t) gemm(0, 1, Ch, Ci, B, gz, B, xn, S, first ? 0 : 1, gw1t, Ci);
      if (gb1t)
        for (int64_t h = 0; h < Ch; h++) gb1t[h] += opl_dsum(gz + h * B, B);
    }
}

/* Tape node of channel_mlp: inputs x, w1, b1, w2, b2 (biases may be NULL). */
static void cmlp_bw(opl_node *nd) {
  const cmlp_saved *s = nd->saved;
  opl_ctx *c = nd->ctx;
  const int64_t N = s->N, Ci = s->Ci, Ch = s->Ch, Co = s->Co, S = s->S;
  opl_real beta_x;
  opl_real *gx = grad_for_write(nd, 0, &beta_x);
  opl_real *gw1 = opl_node_grad(nd, 1), *gw2 = opl_node_grad(nd, 3);
  opl_real *gb1 = nd->in[2] ? opl_node_grad(nd, 2) : NULL, *gb2 = nd->in[4] ? opl_node_grad(nd, 4) : NULL;
  const int nt = batch_parallel(N, 2.0 * (2 * Co + 2 * Ci) * Ch * S) ? team_size() : 1;
  opl_real *sc = opl_arena_alloc(c, (size_t)nt * (size_t)(3 * Ch * s->blk) * sizeof(opl_real));
  opl_real *gw1t = opl_arena_alloc(c, (size_t)nt * (size_t)(Ch * Ci) * sizeof(opl_real));
  opl_real *gw2t = opl_arena_alloc(c, (size_t)nt * (size_t)(Co * Ch) * sizeof(opl_real));
  double *gb1t = opl_arena_calloc(c, (size_t)nt * (size_t)Ch * sizeof(double));
  double *gb2t = opl_arena_calloc(c, (size_t)nt * (size_t)Co * sizeof(double));
  int *used = opl_arena_calloc(c, (size_t)nt * sizeof(int));
  if (opl_ctx_status(c)) return;
  const opl_real *gy = nd->out->grad, *x = nd->in[0]->data, *w1 = nd->in[1]->data, *w2 = nd->in[3]->data;
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      int t = thread_id(), T = thread_count();
      int64_t lo = N * t / T, hi = N * (t + 1) / T;
      cmlp_back_range(lo, hi, s, gy, x, w1, w2, sc + (int64_t)t * 3 * Ch * s->blk, gx, beta_x,
                      gw1 ? gw1t + (int64_t)t * Ch * Ci : NULL, gb1 ? gb1t + (int64_t)t * Ch : NULL,
                      gw2 ? gw2t + (int64_t)t * Co * Ch : NULL, gb2 ? gb2t + (int64_t)t * Co : NULL);
      used[t] = hi > lo;
    }
  } else {
    cmlp_back_range(0, N, s, gy, x, w1, w2, sc, gx, beta_x, gw1 ? gw1t : NULL, gb1 ? gb1t : NULL,
                    gw2 ? gw2t : NULL, gb2 ? gb2t : NULL);
    used[0] = N > 0;
  }
  partials_reduce(nt, used, gw1, gw1t, Ch * Ci, gb1, gb1t, Ch);
  partials_reduce(nt, used, gw2, gw2t, Co * Ch, gb2, gb2t, Co);
}

opl_tensor *opl_channel_mlp(opl_ctx *c, opl_tensor *x, opl_tensor *w1, opl_tensor *b1,
                            opl_tensor *w2, opl_tensor *b2, int act) {
  const char *op = "channel_mlp";
  if (!opl_check_input(c, op, "x", x, -1, 0) || !opl_check_input(c, op, "w1", w1, 2, 0) ||
      !opl_check_input(c, op, "w2", w2, 2, 0))
    return NULL;
  if ((b1 && !opl_check_input(c, op, "b1", b1, 1, 0)) || (b2 && !opl_check_input(c, op, "b2", b2, 1, 0)))
    return NULL;
  char s1[96], s2[96], s3[96];
  if (x->rank < 3) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: x %s must be (N, Ci, *S) of rank 3..5", op,
                  opl_shape_str(s1, x->rank, x->shape));
    return NULL;
  }
  if (act < 0 || act >= OPL_UNARY_COUNT) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: act = %d, expected an opl_unary_kind", op, act);
    return NULL;
  }
  const int64_t N = x->shape[0], Ci = x->shape[1], Ch = w1->shape[0], Co = w2->shape[0];
  const int64_t S = opl_prod(x->shape, 2, x->rank);
  if (w1->shape[1] != Ci || w2->shape[1] != Ch || (b1 && b1->shape[0] != Ch) || (b2 && b2->shape[0] != Co)) {
    opl_ctx_error(c, OPL_ERR_SHAPE,
                  "%s: x %s, w1 %s, w2 %s (and biases) do not chain: need w1 (Ch, Ci = %lld), b1 (Ch), "
                  "w2 (Co, Ch), b2 (Co)", op, opl_shape_str(s1, x->rank, x->shape),
                  opl_shape_str(s2, w1->rank, w1->shape), opl_shape_str(s3, w2->rank, w2->shape), (long long)Ci);
    return NULL;
  }
  if (!blas_dims_ok(c, op, Ch, S, Ci) || !blas_dims_ok(c, op, Co, S, Ch)) return NULL;
  int64_t shape[OPL_MAX_RANK];
  for (int i = 0; i < x->rank; i++) shape[i] = x->shape[i];
  shape[1] = Co;
  opl_tensor *in[5] = {x, w1, b1, w2, b2};
  int taped = 0;
  for (int i = 0; i < 5; i++) taped |= in[i] && opl_requires_grad(in[i]);
  taped &= opl_ctx_grad_enabled(c);
  opl_tensor *y = opl_new(c, x->rank, shape);
  cmlp_saved *s = opl_arena_alloc(c, sizeof *s);
  /* z is saved for backward; without a tape it is scratch, given back below with the rest */
  opl_arena_mark_t m = opl_arena_mark(c);
  opl_real *z = opl_arena_alloc(c, (size_t)(N * Ch * S) * sizeof(opl_real));
  if (taped) m = opl_arena_mark(c);
  if (!y || !s || !z) return NULL;
  s->N = N, s->Ci = Ci, s->Ch = Ch, s->Co = Co, s->S = S, s->act = act, s->z = z;
  s->blk = S < CMLP_BLOCK ? S : CMLP_BLOCK;
  opl_chlin_forward(N, Ci, Ch, S, x->data, w1->data, b1 ? b1->data : NULL, z, 0);
  const int nt = batch_parallel(N, 2.0 * Co * Ch * S) ? team_size() : 1;
  opl_real *a = opl_arena_alloc(c, (size_t)nt * (size_t)(Ch * s->blk) * sizeof(opl_real));
  if (!a) return NULL;
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      int t = thread_id(), T = thread_count();
      cmlp_out_range(N * t / T, N * (t + 1) / T, s, w2->data, b2 ? b2->data : NULL, a + (int64_t)t * Ch * s->blk,
                     y->data);
    }
  } else {
    cmlp_out_range(0, N, s, w2->data, b2 ? b2->data : NULL, a, y->data);
  }
  opl_arena_rewind(c, m);
  if (taped) {
    opl_node *nd = opl_record(c, op, cmlp_bw, y, 5, in);
    if (nd) nd->saved = s;
  }
  return y;
}

/* ------------------------------------------------------------ matmul, bmm */

/* Backward of C_i = op(A_i) op(B_i) for i < batch (op(A) (M, K), op(B) (K, N)), from
 * gy_i [M, N]: a_i, b_i as stored (a (M, K) or (K, M) when ta; b (K, N) or (N, K) when tb),
 * ga_i (a's storage shape) = d/da + beta_a ga_i, gb_i likewise (either may be NULL):
 *   ta = 0: ga = gy op(B)^T        ta = 1: ga = op(B) gy^T
 *   tb = 0: gb = op(A)^T gy        tb = 1: gb = gy^T op(A) */
static void matmul_backward(int64_t batch, int ta, int tb, int64_t M, int64_t N, int64_t K,
                            const opl_real *gy, const opl_real *a, const opl_real *b,
                            opl_real *ga, opl_real beta_a, opl_real *gb, opl_real beta_b) {
  int64_t lda = ta ? M : K, ldb = tb ? K : N;
  if (ga) {
    if (!ta)
      gemm_batched(batch, 0, !tb, M, K, N, gy, N, M * N, b, ldb, K * N, beta_a, ga, K, M * K);
    else
      gemm_batched(batch, tb, 1, K, M, N, b, ldb, K * N, gy, N, M * N, beta_a, ga, M, M * K);
  }
  if (gb) {
    if (!tb)
      gemm_batched(batch, !ta, 0, K, N, M, a, lda, M * K, gy, N, M * N, beta_b, gb, N, K * N);
    else
      gemm_batched(batch, 1, ta, N, K, M, gy, N, M * N, a, lda, M * K, beta_b, gb, K, K * N);
  }
}

/* Tape node of matmul / bmm: iarg = (batch, ta, tb, M, N, K); inputs a, b. */
static void matmul_bw(opl_node *nd) {
  opl_real beta_a, beta_b;
  opl_real *ga = grad_for_write(nd, 0, &beta_a);
  opl_real *gb = grad_for_write(nd, 1, &beta_b);
  if (opl_ctx_status(nd->ctx)) return;
  matmul_backward(nd->iarg[0], (int)nd->iarg[1], (int)nd->iarg[2], nd->iarg[3], nd->iarg[4],
                  nd->iarg[5], nd->out->grad, nd->in[0]->data, nd->in[1]->data, ga, beta_a, gb,
                  beta_b);
}

/* Shared constructor: batched = 0 for matmul (rank 2, optional transposes), 1 for bmm (rank 3,
 * no transposes). Checks shapes, computes y = op(a) op(b) per batch member, records the node. */
static opl_tensor *matmul_common(opl_ctx *c, const char *op, opl_tensor *a, opl_tensor *b,
                                 int ta, int tb, int batched) {
  int r = batched ? 3 : 2;
  if (!opl_check_input(c, op, "a", a, r, 0) || !opl_check_input(c, op, "b", b, r, 0)) return NULL;
  char b1[96], b2[96];
  int64_t B = batched ? a->shape[0] : 1;
  const int64_t *sa = a->shape + batched, *sb = b->shape + batched;
  int64_t M = ta ? sa[1] : sa[0], K = ta ? sa[0] : sa[1];
  int64_t K2 = tb ? sb[1] : sb[0], N = tb ? sb[0] : sb[1];
  if (K != K2 || (batched && b->shape[0] != B)) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: a %s%s and b %s%s do not multiply", op,
                  opl_shape_str(b1, a->rank, a->shape), ta ? "^T" : "",
                  opl_shape_str(b2, b->rank, b->shape), tb ? "^T" : "");
    return NULL;
  }
  if (!blas_dims_ok(c, op, M, N, K)) return NULL;
  opl_tensor *y = batched ? opl_new(c, OPL_DIMS(B, M, N)) : opl_new(c, OPL_DIMS(M, N));
  if (!y) return NULL;
  gemm_batched(B, ta, tb, M, N, K, a->data, sa[1], M * K, b->data, sb[1], K * N, 0, y->data, N,
               M * N);
  opl_tensor *in[2] = {a, b};
  opl_node *nd = opl_record(c, op, matmul_bw, y, 2, in);
  if (nd) {
    nd->iarg[0] = B, nd->iarg[1] = ta != 0, nd->iarg[2] = tb != 0;
    nd->iarg[3] = M, nd->iarg[4] = N, nd->iarg[5] = K;
  }
  return y;
}

opl_tensor *opl_matmul(opl_ctx *c, opl_tensor *a, opl_tensor *b, int trans_a, int trans_b) {
  return matmul_common(c, "matmul", a, b, trans_a != 0, trans_b != 0, 0);
}

opl_tensor *opl_bmm(opl_ctx *c, opl_tensor *a, opl_tensor *b) {
  return matmul_common(c, "bmm", a, b, 0, 0, 1);
}
