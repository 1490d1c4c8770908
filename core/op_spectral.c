/* opl — spectral ops: rfft, irfft, spectral convolution (FNO), spectral derivative.
 *
 * All four are linear maps built from the batched real FFTs of core/fft.c. Complex numbers
 * are pairs of reals for differentiation (PyTorch's convention): the gradient of a complex
 * value z is g = dL/dRe z + i dL/dIm z, and for z = a b the gradient of a is g conj(b).
 *
 * Notation. A real-to-complex transform over the trailing d axes of extents S = (S0, .., n)
 * keeps the last-axis bins k = 0..n/2 (h = n/2 + 1 of them); Ntot = prod S. FFTW's c2r
 * computes, from a half spectrum H (without assuming it is Hermitian),
 *     c2r(H)_j = sum_{k in half} c_k Re(H_k e^{+2 pi i k.j/S}),
 * where c_k = 1 on the last-axis bins 0 and n/2 (n even) and c_k = 2 on the interior bins
 * (it ignores the imaginary parts that a real signal cannot carry after the transform of the
 * other axes). From this and r2c(x)_k = sum_j x_j e^{-2 pi i k.j/S}:
 *   - adjoint of r2c:          g -> c2r(g / c)
 *   - adjoint of c2r:          g -> c * r2c(g)
 * so rfft' = c2r(g / c), irfft' = (c / Ntot) r2c(g). The gradient checks and adjoint tests
 * of tests/core/test_spectral.c verify these identities numerically. */
#include <math.h>
#include <string.h>
#include "core/ops.h"
#include "core/internal.h"
#include "core/fft.h"

/* ------------------------------------------------------------ geometry and helpers */

/* A batch of transforms over the trailing d axes of a tensor. */
typedef struct sgeom {
  int d;
  int64_t batch;     /* number of transforms: product of the leading axes */
  int64_t dims[3];   /* real extents of the trailing d axes */
  int64_t nreal;     /* reals per transform: prod dims */
  int64_t half;      /* last-axis complex length: dims[d-1]/2 + 1 */
  int64_t ncplx;     /* complex values per transform: prod dims[0..d-1) * half */
} sgeom;

/* Geometry of the trailing d axes of shape[0..rank) whose last axis has real length n_last. */
static sgeom geom_make(int rank, const int64_t *shape, int d, int64_t n_last) {
  sgeom g;
  memset(&g, 0, sizeof g);
  g.d = d;
  g.batch = opl_prod(shape, 0, rank - d);
  for (int i = 0; i < d; i++) g.dims[i] = shape[rank - d + i];
  g.dims[d - 1] = n_last;
  g.nreal = opl_prod(g.dims, 0, d);
  g.half = n_last / 2 + 1;
  g.ncplx = opl_prod(g.dims, 0, d - 1) * g.half;
  return g;
}

/* Run howmany transforms of g's dims; on failure record the error as op's and return 0. */
static int fft_run(opl_ctx *c, const char *op, opl_fft_kind kind, const sgeom *g,
                   int64_t howmany, opl_real *in, opl_real *out) {
  opl_err err;
  if (opl_fft_run(kind, g->d, g->dims, howmany, in, out, &err) != OPL_OK) {
    opl_ctx_error(c, err.status, "%s: %s", op, err.msg);
    return 0;
  }
  return 1;
}

/* c_k of the last-axis bin k of a real length n: 1 on bins 0 and n/2 (n even), else 2. */
static inline int bin_mult(int64_t k, int64_t n) { return (k == 0 || 2 * k == n) ? 1 : 2; }

/* Weight half-spectrum rows: dst[r, k] (=|+=) alpha * w_k * src[r, k], with w_k = 1 on the
 * last-axis bins 0 and n/2 and w_k = w_mid on the interior bins.
 * src, dst [rows, h] complex (h = n/2 + 1; may be the same array when acc = 0). */
static void weight_rows(int64_t rows, int64_t n, opl_real alpha, opl_real w_mid, int acc,
                        const opl_real *src, opl_real *dst) {
  int64_t h = n / 2 + 1;
#pragma omp parallel for if (rows * h > OPL_PAR_MIN) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const opl_real *s = src + 2 * r * h;
    opl_real *t = dst + 2 * r * h;
    for (int64_t k = 0; k < h; k++) {
      opl_real a = bin_mult(k, n) == 1 ? alpha : alpha * w_mid;
      if (acc)
        t[2 * k] += a * s[2 * k], t[2 * k + 1] += a * s[2 * k + 1];
      else
        t[2 * k] = a * s[2 * k], t[2 * k + 1] = a * s[2 * k + 1];
    }
  }
}

/* dst[i] += src[i], i < n (parallel when large). dst, src [n]. */
static void acc_par(opl_real *restrict dst, const opl_real *restrict src, int64_t n) {
#pragma omp parallel for if (n > OPL_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* c2r of spec (destroyed) into the gradient gx [howmany * nreal], overwriting it when fresh,
 * else through arena scratch and accumulated. Returns 0 on error (sticky). */
static int c2r_into_grad(opl_ctx *c, const char *op, const sgeom *g, int64_t howmany,
                         opl_real *spec, opl_real *gx, int fresh) {
  if (fresh) return fft_run(c, op, OPL_FFT_C2R, g, howmany, spec, gx);
  opl_real *tmp = opl_arena_alloc(c, (size_t)(howmany * g->nreal) * sizeof(opl_real));
  if (!tmp || !fft_run(c, op, OPL_FFT_C2R, g, howmany, spec, tmp)) return 0;
  acc_par(gx, tmp, howmany * g->nreal);
  return 1;
}

/* 1 if the context holds no error and d is a supported transform rank (1..3); else records
 * OPL_ERR_ARG (unless an error is already held) and returns 0. */
static int check_d(opl_ctx *c, const char *op, int d) {
  if (opl_ctx_status(c)) return 0;
  if (d < 1 || d > 3) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: d = %d outside 1..3", op, d);
    return 0;
  }
  return 1;
}

/* ------------------------------------------------------------ rfft */

/* Backward of rfft: gx [batch, nreal] += c2r(gy / c); gy [batch, ncplx] complex. */
static void rfft_bw(opl_node *nd) {
  int fresh;
  opl_real *gx = opl_node_grad_write(nd, 0, &fresh);
  if (!gx) return;
  opl_tensor *x = nd->in[0];
  sgeom g = geom_make(x->rank, x->shape, (int)nd->iarg[0], x->shape[x->rank - 1]);
  opl_real *spec = opl_arena_alloc(nd->ctx, (size_t)(2 * g.batch * g.ncplx) * sizeof(opl_real));
  if (!spec) return;
  weight_rows(g.batch * g.ncplx / g.half, g.dims[g.d - 1], 1, (opl_real)0.5, 0, nd->out->grad, spec);
  c2r_into_grad(nd->ctx, "rfft backward", &g, g.batch, spec, gx, fresh);
}

opl_tensor *opl_rfft(opl_ctx *c, opl_tensor *x, int d) {
  if (!check_d(c, "rfft", d) || !opl_check_input(c, "rfft", "x", x, -1, 0)) return NULL;
  char b1[96];
  if (x->rank < d) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "rfft: x %s has rank %d < d = %d",
                  opl_shape_str(b1, x->rank, x->shape), x->rank, d);
    return NULL;
  }
  sgeom g = geom_make(x->rank, x->shape, d, x->shape[x->rank - 1]);
  int64_t shape[OPL_MAX_RANK];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->rank - 1] = g.half;
  opl_tensor *y = opl_new_flags(c, x->rank, shape, OPL_T_COMPLEX);
  if (!y || !fft_run(c, "rfft", OPL_FFT_R2C, &g, g.batch, x->data, y->data)) return NULL;
  opl_node *nd = opl_record(c, "rfft", rfft_bw, y, 1, &x);
  if (nd) nd->iarg[0] = d;
  return y;
}

/* ------------------------------------------------------------ irfft */

/* Backward of irfft: gxf [batch, ncplx] complex += (c / Ntot) r2c(gy); gy [batch, nreal]. */
static void irfft_bw(opl_node *nd) {
  int fresh;
  opl_real *gxf = opl_node_grad_write(nd, 0, &fresh);
  if (!gxf) return;
  opl_tensor *y = nd->out;
  sgeom g = geom_make(y->rank, y->shape, (int)nd->iarg[0], y->shape[y->rank - 1]);
  opl_real *spec = fresh ? gxf : opl_arena_alloc(nd->ctx, (size_t)(2 * g.batch * g.ncplx) * sizeof(opl_real));
  if (!spec || !fft_run(nd->ctx, "irfft backward", OPL_FFT_R2C, &g, g.batch, y->grad, spec)) return;
  weight_rows(g.batch * g.ncplx / g.half, g.dims[g.d - 1], (opl_real)(1.0 / (double)g.nreal),
              2, !fresh, spec, gxf);
}

opl_tensor *opl_irfft(opl_ctx *c, opl_tensor *xf, int d, int64_t n_last) {
  if (!check_d(c, "irfft", d) || !opl_check_input(c, "irfft", "xf", xf, -1, 1)) return NULL;
  char b1[96];
  if (!opl_is_complex(xf)) {
    opl_ctx_error(c, OPL_ERR_ARG, "irfft: xf %s must be complex, got a real tensor",
                  opl_shape_str(b1, xf->rank, xf->shape));
    return NULL;
  }
  if (xf->rank < d) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "irfft: xf %s has rank %d < d = %d",
                  opl_shape_str(b1, xf->rank, xf->shape), xf->rank, d);
    return NULL;
  }
  if (n_last < 1 || xf->shape[xf->rank - 1] != n_last / 2 + 1) {
    opl_ctx_error(c, OPL_ERR_SHAPE,
                  "irfft: xf %s does not fit n_last = %lld (its last axis must be n_last/2+1 = %lld)",
                  opl_shape_str(b1, xf->rank, xf->shape), (long long)n_last,
                  (long long)(n_last / 2 + 1));
    return NULL;
  }
  sgeom g = geom_make(xf->rank, xf->shape, d, n_last);
  int64_t shape[OPL_MAX_RANK];
  memcpy(shape, xf->shape, sizeof shape);
  shape[xf->rank - 1] = n_last;
  opl_tensor *y = opl_new(c, xf->rank, shape);
  opl_real *spec = y ? opl_arena_alloc(c, (size_t)(2 * g.batch * g.ncplx) * sizeof(opl_real)) : NULL;
  if (!spec) return NULL;
  /* c2r destroys its input: normalize into a scratch copy. */
  int64_t n2 = 2 * g.batch * g.ncplx;
  opl_real s = (opl_real)(1.0 / (double)g.nreal);
#pragma omp parallel for if (n2 > OPL_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n2; i++) spec[i] = s * xf->data[i];
  if (!fft_run(c, "irfft", OPL_FFT_C2R, &g, g.batch, spec, y->data)) return NULL;
  opl_node *nd = opl_record(c, "irfft", irfft_bw, y, 1, &xf);
  if (nd) nd->iarg[0] = d;
  return y;
}

/* ------------------------------------------------------------ spectral convolution */

/* Spectral convolution of Li et al., "Fourier Neural Operator for Parametric Partial
 * Differential Equations", ICLR 2021 (eq. 4-5: R . F(v) on the truncated modes):
 *   X = r2c(x) over the trailing d axes, for each kept mode k
 *   Y[n, o, k] = sum_i X[n, i, k] W[i, o, k],  all other modes 0,  y = c2r(Y) / Ntot.
 * Backward, with G = (c / Ntot) r2c(gy) on the kept modes (the adjoint of the normalized c2r):
 *   gW[i, o, k] += sum_n conj(X[n, i, k]) G[n, o, k]
 *   gX[n, i, k]  = sum_o G[n, o, k] conj(W[i, o, k]),   gx += c2r(gX / c)   (adjoint of r2c).
 * Data layout: the kept modes are packed mode-major, Xp [K, N, Ci], Wp [K, Ci, Co],
 * Yp [K, N, Co] (complex), so the channel mixing is one complex GEMM per mode.
 *
 * Transforms: batched FFTW plans of all N*Ci (or N*Co) channels at once; in 1-D, when few
 * modes are kept (opl_fft_prefer_gemm), the truncated DFT as one real GEMM against cached
 * matrices instead (core/fft.h): the "spectrum" of a channel is then just its P = m kept
 * bins, and the inverse GEMM accumulates into a gradient for free (beta = 1). */

/* How a conv's channels go to and from their kept modes. */
typedef struct conv_xform {
  sgeom g;            /* transforms of one channel (batch is unused) */
  int gemm;           /* 1: truncated DFT as GEMM (d = 1), 0: FFTW */
  int64_t P;          /* complex values per channel spectrum: g.ncplx (FFT) or m (GEMM) */
  const opl_real *F;  /* [n, 2m] (GEMM) */
  const opl_real *G;  /* [2m, n] (GEMM) */
} conv_xform;

/* spec [howmany, P] complex = the spectra of x [howmany, nreal] (all bins for the FFT, the kept
 * bins for the GEMM). Returns 0 on error (sticky). */
static int conv_fwd_xform(opl_ctx *c, const char *op, const conv_xform *t, int64_t howmany,
                          const opl_real *x, opl_real *spec) {
  if (!t->gemm) return fft_run(c, op, OPL_FFT_R2C, &t->g, howmany, (opl_real *)(uintptr_t)x, spec);
  int64_t n = t->g.nreal, m2 = 2 * t->P;
  opl_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)howmany, (int)m2, (int)n, 1, x, (int)n,
           t->F, (int)m2, 0, spec, (int)m2);
  return 1;
}

/* y [howmany, nreal] = (overwrite) or += (else) the unnormalized c2r of the half spectra
 * spec [howmany, P] complex (bins above P taken as zero for the GEMM). spec is destroyed. */
static int conv_inv_xform(opl_ctx *c, const char *op, const conv_xform *t, int64_t howmany,
                          opl_real *spec, opl_real *y, int overwrite) {
  if (!t->gemm) return c2r_into_grad(c, op, &t->g, howmany, spec, y, overwrite);
  int64_t n = t->g.nreal, m2 = 2 * t->P;
  opl_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)howmany, (int)n, (int)m2, 1, spec,
           (int)m2, t->G, (int)n, overwrite ? 0 : 1, y, (int)n);
  return 1;
}

typedef struct conv_saved {
  conv_xform t;
  int64_t N, Ci, Co, K;
  const int64_t *pos; /* [K] offset of mode k in a channel's half spectrum (complex units) */
  const opl_real *cw; /* [K] c_k of mode k (1 or 2) */
  opl_real *Xp;       /* [K, N, Ci] complex: kept modes of r2c(x) */
  opl_real *Wp;       /* [K, Ci, Co] complex: w repacked */
} conv_saved;

/* Kept modes, row-major over w's trailing axes: on non-last axis a, w block b < m_a is the
 * FFT row b (k = b) and block b >= m_a the row S_a - 2 m_a + b (k = b - 2 m_a); on the last
 * axis block b is bin b. pos [K], cw [K]. */
static void conv_modes(const sgeom *g, const int *modes, int64_t K, int64_t *pos, opl_real *cw) {
  int d = g->d;
  int64_t ext[3];
  for (int a = 0; a < d; a++) ext[a] = a < d - 1 ? 2 * (int64_t)modes[a] : modes[a];
  for (int64_t k = 0; k < K; k++) {
    int64_t r = k, b[3] = {0, 0, 0};
    for (int a = d - 1; a >= 0; a--) b[a] = r % ext[a], r /= ext[a];
    int64_t off = 0;
    for (int a = 0; a < d - 1; a++) {
      int64_t m = modes[a], p = b[a] < m ? b[a] : g->dims[a] - 2 * m + b[a];
      off = off * g->dims[a] + p;
    }
    pos[k] = off * g->half + b[d - 1];
    cw[k] = (opl_real)bin_mult(b[d - 1], g->dims[d - 1]);
  }
}

/* Gather kept modes: out[(k * R + r) * C + ch] = spec[(r * C + ch) * P + pos[k]] (complex), r < R, ch < C.
 * spec [R * C, P] complex, pos [K], out [K, R, C] complex. */
static void modes_gather(int64_t R, int64_t C, int64_t P, int64_t K, const int64_t *pos,
                         const opl_real *spec, opl_real *out) {
#pragma omp parallel for if (R * C * K > OPL_PAR_MIN) schedule(static)
  for (int64_t q = 0; q < R * C; q++) {
    const opl_real *s = spec + 2 * q * P;
    for (int64_t k = 0; k < K; k++) {
      opl_real *o = out + 2 * (k * R * C + q);
      o[0] = s[2 * pos[k]], o[1] = s[2 * pos[k] + 1];
    }
  }
}

/* Scatter kept modes into zeroed spectra: spec[(r * C + ch) * P + pos[k]] = in[k, r, ch] * f_k
 * with f_k = 1 / cw[k] when cw != NULL, else 1; every other value of spec is zeroed.
 * in [K, R, C] complex, spec [R * C, P] complex. */
static void modes_scatter(int64_t R, int64_t C, int64_t P, int64_t K, const int64_t *pos,
                          const opl_real *cw, const opl_real *in, opl_real *spec) {
#pragma omp parallel for if (R * C * P > OPL_PAR_MIN) schedule(static)
  for (int64_t q = 0; q < R * C; q++) {
    opl_real *s = spec + 2 * q * P;
    memset(s, 0, (size_t)(2 * P) * sizeof(opl_real));
    for (int64_t k = 0; k < K; k++) {
      const opl_real *v = in + 2 * (k * R * C + q);
      opl_real f = cw ? 1 / cw[k] : 1;
      s[2 * pos[k]] = f * v[0], s[2 * pos[k] + 1] = f * v[1];
    }
  }
}

/* Repack w [Ci, Co, K] complex into Wp [K, Ci, Co] complex. */
static void w_pack(int64_t Ci, int64_t Co, int64_t K, const opl_real *w, opl_real *Wp) {
#pragma omp parallel for if (Ci * Co * K > OPL_PAR_MIN) schedule(static)
  for (int64_t io = 0; io < Ci * Co; io++)
    for (int64_t k = 0; k < K; k++) {
      Wp[2 * (k * Ci * Co + io)] = w[2 * (io * K + k)];
      Wp[2 * (k * Ci * Co + io) + 1] = w[2 * (io * K + k) + 1];
    }
}

/* gw [Ci, Co, K] complex += gWp [K, Ci, Co] complex. */
static void w_unpack_acc(int64_t Ci, int64_t Co, int64_t K, const opl_real *gWp, opl_real *gw) {
#pragma omp parallel for if (Ci * Co * K > OPL_PAR_MIN) schedule(static)
  for (int64_t io = 0; io < Ci * Co; io++)
    for (int64_t k = 0; k < K; k++) {
      gw[2 * (io * K + k)] += gWp[2 * (k * Ci * Co + io)];
      gw[2 * (io * K + k) + 1] += gWp[2 * (k * Ci * Co + io) + 1];
    }
}

/* Per-mode complex GEMMs C_k = alpha_k op(A_k) op(B_k), k < K, row-major:
 * A_k = A + k * sa, B_k = B + k * sb, C_k = C + k * sc (strides in complex units),
 * op(A_k) (M x L), op(B_k) (L x Nc), C_k (M x Nc); alpha_k = scale * (cw ? cw[k] : 1).
 * The modes are independent, so they are spread over OpenMP threads when there is enough
 * work; inside the parallel loop OpenBLAS (OpenMP build) runs single-threaded, as intended. */
static void mode_gemms(int64_t K, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t Nc,
                       int64_t L, opl_real scale, const opl_real *cw, const opl_real *A,
                       int64_t lda, int64_t sa, const opl_real *B, int64_t ldb, int64_t sb,
                       opl_real *C, int64_t sc) {
  const opl_real zero[2] = {0, 0};
#pragma omp parallel for if (K * M * Nc * L > OPL_PAR_MIN) schedule(static)
  for (int64_t k = 0; k < K; k++) {
    opl_real alpha[2] = {scale * (cw ? cw[k] : 1), 0};
    opl_cgemm(CblasRowMajor, ta, tb, (int)M, (int)Nc, (int)L, alpha, A + 2 * k * sa, (int)lda,
              B + 2 * k * sb, (int)ldb, zero, C + 2 * k * sc, (int)Nc);
  }
}

/* Backward of the spectral convolution saved in s, from the output gradient gy [N, Co, *S]:
 * gw [Ci, Co, *modes] complex += (NULL: not needed); gx [N, Ci, *S] overwritten when fresh,
 * else accumulated (NULL: not needed). Scratch from c's arena. */
static void sconv_backward(opl_ctx *c, const conv_saved *s, const opl_real *gy, opl_real *gw,
                           opl_real *gx, int fresh) {
  if (!gw && !gx) return;
  const char *op = "spectral_conv backward";
  int64_t N = s->N, Ci = s->Ci, Co = s->Co, K = s->K, P = s->t.P;
  int64_t Cm = Ci > Co ? Ci : Co;
  opl_real inv = (opl_real)(1.0 / (double)s->t.g.nreal);
  opl_real *spec = opl_arena_alloc(c, (size_t)(2 * N * Cm * P) * sizeof(opl_real));
  opl_real *Gp = opl_arena_alloc(c, (size_t)(2 * K * N * Co) * sizeof(opl_real));
  if (!spec || !Gp) return;
  /* G = r2c(gy) on the kept modes; the factor c / Ntot goes into the GEMMs' alpha. */
  if (!conv_fwd_xform(c, op, &s->t, N * Co, gy, spec)) return;
  modes_gather(N, Co, P, K, s->pos, spec, Gp);
  if (gw) {
    opl_real *gWp = opl_arena_alloc(c, (size_t)(2 * K * Ci * Co) * sizeof(opl_real));
    if (!gWp) return;
    /* gW_k (Ci x Co) = (c_k / Ntot) Xp_k^H (Ci x N) Gp_k (N x Co) */
    mode_gemms(K, CblasConjTrans, CblasNoTrans, Ci, Co, N, inv, s->cw, s->Xp, Ci, N * Ci, Gp, Co,
               N * Co, gWp, Ci * Co);
    w_unpack_acc(Ci, Co, K, gWp, gw);
  }
  if (gx) {
    opl_real *gXp = opl_arena_alloc(c, (size_t)(2 * K * N * Ci) * sizeof(opl_real));
    if (!gXp) return;
    /* gX_k (N x Ci) = (c_k / Ntot) Gp_k (N x Co) Wp_k^H (Co x Ci); the rfft adjoint then
     * divides by c_k again (modes_scatter with cw) before the c2r. */
    mode_gemms(K, CblasNoTrans, CblasConjTrans, N, Ci, Co, inv, s->cw, Gp, Co, N * Co, s->Wp, Co,
               Ci * Co, gXp, N * Ci);
    modes_scatter(N, Ci, P, K, s->pos, s->cw, gXp, spec);
    conv_inv_xform(c, op, &s->t, N * Ci, spec, gx, fresh);
  }
}

static void sconv_bw(opl_node *nd) {
  int fresh;
  opl_real *gw = opl_node_grad(nd, 1);
  opl_real *gx = opl_node_grad_write(nd, 0, &fresh);
  if (opl_ctx_status(nd->ctx)) return;
  sconv_backward(nd->ctx, nd->saved, nd->out->grad, gw, gx, fresh);
}

/* Check x [N, Ci, *S] and w [Ci, Co, *modes'] for a spectral convolution over the trailing d
 * axes keeping modes[d] (op names the caller in messages), and prepare its saved state in c's
 * arena: transform geometry, kept-mode table, w repacked, and room for x's kept modes. The
 * output channel count is in s->Co. NULL (sticky error) on bad input or out of memory. */
static conv_saved *sconv_prepare(opl_ctx *c, const char *op, const opl_tensor *x,
                                 const opl_tensor *w, int d, const int *modes) {
  char b1[96], b2[96], b3[96], b4[96];
  if (!modes) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: modes is NULL", op);
    return NULL;
  }
  if (!opl_is_complex(w)) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: w %s must be complex, got a real tensor", op,
                  opl_shape_str(b1, w->rank, w->shape));
    return NULL;
  }
  if (x->rank != d + 2) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: x %s must have rank d + 2 = %d (N, Ci, %d spatial axes)",
                  op, opl_shape_str(b1, x->rank, x->shape), d + 2, d);
    return NULL;
  }
  int64_t mshape[3];
  for (int a = 0; a < d; a++) mshape[a] = modes[a];
  for (int a = 0; a < d; a++) {
    int64_t S = x->shape[2 + a], m = modes[a];
    int64_t mmax = a < d - 1 ? S / 2 : S / 2 + 1;
    if (m < 1 || m > mmax) {
      opl_ctx_error(c, OPL_ERR_SHAPE,
                    "%s: modes %s do not fit x %s: axis %d of extent %lld allows 1..%lld modes%s",
                    op, opl_shape_str(b1, d, mshape), opl_shape_str(b2, x->rank, x->shape), a,
                    (long long)S, (long long)mmax, a < d - 1 ? " (2 m <= S)" : " (m <= S/2 + 1)");
      return NULL;
    }
  }
  int64_t want[OPL_MAX_RANK];
  want[0] = x->shape[1];
  want[1] = w->rank >= 2 ? w->shape[1] : 1;
  for (int a = 0; a < d; a++) want[2 + a] = a < d - 1 ? 2 * (int64_t)modes[a] : modes[a];
  if (!opl_shape_eq(w->rank, w->shape, d + 2, want)) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: w %s does not match x %s and modes %s: expected %s", op,
                  opl_shape_str(b1, w->rank, w->shape), opl_shape_str(b2, x->rank, x->shape),
                  opl_shape_str(b3, d, mshape), opl_shape_str(b4, d + 2, want));
    return NULL;
  }
  int64_t N = x->shape[0], Ci = x->shape[1], Co = w->shape[1];
  int64_t K = opl_prod(w->shape, 2, d + 2);
  if (N * (Ci > Co ? Ci : Co) > INT32_MAX) {
    opl_ctx_error(c, OPL_ERR_UNSUPPORTED, "%s: x %s too large for BLAS", op,
                  opl_shape_str(b1, x->rank, x->shape));
    return NULL;
  }
  conv_saved *s = opl_arena_alloc(c, sizeof *s);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  conv_xform *t = &s->t;
  t->g = geom_make(x->rank, x->shape, d, x->shape[x->rank - 1]);
  t->P = t->g.ncplx;
  if (d == 1 && opl_fft_prefer_gemm(t->g.nreal, modes[0])) {
    opl_err err;
    if (opl_fft_dft_matrices(t->g.nreal, modes[0], &t->F, &t->G, &err) != OPL_OK) {
      opl_ctx_error(c, err.status, "%s: %s", op, err.msg);
      return NULL;
    }
    t->gemm = 1, t->P = modes[0];
  }
  s->N = N, s->Ci = Ci, s->Co = Co, s->K = K;
  int64_t *pos = opl_arena_alloc(c, (size_t)K * sizeof *pos);
  opl_real *cw = opl_arena_alloc(c, (size_t)K * sizeof *cw);
  s->Xp = opl_arena_alloc(c, (size_t)(2 * K * N * Ci) * sizeof(opl_real));
  s->Wp = opl_arena_alloc(c, (size_t)(2 * K * Ci * Co) * sizeof(opl_real));
  if (!pos || !cw || !s->Xp || !s->Wp) return NULL;
  conv_modes(&t->g, modes, K, pos, cw);
  s->pos = pos, s->cw = cw;
  w_pack(Ci, Co, K, w->data, s->Wp);
  return s;
}

/* y [N, Co, *S] = the spectral convolution prepared in s of x [N, Ci, *S] (overwritten); keeps
 * x's kept modes in s->Xp. Its transform scratch is taken after an arena mark and given back
 * before returning, so only the saved state outlives the call. 0 on error (sticky). */
static int sconv_forward(opl_ctx *c, const char *op, conv_saved *s, const opl_real *x, opl_real *y) {
  int64_t N = s->N, Ci = s->Ci, Co = s->Co, K = s->K, P = s->t.P, Cm = Ci > Co ? Ci : Co;
  opl_arena_mark_t m = opl_arena_mark(c);
  opl_real *spec = opl_arena_alloc(c, (size_t)(2 * N * Cm * P) * sizeof(opl_real));
  opl_real *Yp = opl_arena_alloc(c, (size_t)(2 * K * N * Co) * sizeof(opl_real));
  int ok = spec && Yp && conv_fwd_xform(c, op, &s->t, N * Ci, x, spec);
  if (ok) {
    modes_gather(N, Ci, P, K, s->pos, spec, s->Xp);
    /* Y_k (N x Co) = Xp_k (N x Ci) Wp_k (Ci x Co) / Ntot */
    mode_gemms(K, CblasNoTrans, CblasNoTrans, N, Co, Ci, (opl_real)(1.0 / (double)s->t.g.nreal),
               NULL, s->Xp, Ci, N * Ci, s->Wp, Co, Ci * Co, Yp, N * Co);
    modes_scatter(N, Co, P, K, s->pos, NULL, Yp, spec);
    ok = conv_inv_xform(c, op, &s->t, N * Co, spec, y, 1);
  }
  opl_arena_rewind(c, m);
  return ok;
}

opl_tensor *opl_spectral_conv(opl_ctx *c, opl_tensor *x, opl_tensor *w, int d, const int *modes) {
  const char *op = "spectral_conv";
  if (!check_d(c, op, d) || !opl_check_input(c, op, "x", x, -1, 0) ||
      !opl_check_input(c, op, "w", w, -1, 1))
    return NULL;
  conv_saved *s = sconv_prepare(c, op, x, w, d, modes);
  if (!s) return NULL;
  int64_t yshape[OPL_MAX_RANK];
  memcpy(yshape, x->shape, sizeof yshape);
  yshape[1] = s->Co;
  opl_tensor *y = opl_new(c, x->rank, yshape);
  if (!y || !sconv_forward(c, op, s, x->data, y->data)) return NULL;
  opl_tensor *in[2] = {x, w};
  opl_node *nd = opl_record(c, op, sconv_bw, y, 2, in);
  if (nd) nd->saved = s;
  return y;
}

/* ------------------------------------------------------------ Fourier layer */

/* The Fourier layer fused (Li et al., ICLR 2021, eq. 2): z = K x + W x + b, y = act(z), with K
 * the spectral convolution above and W x + b the channel_linear. As separate ops the layer keeps
 * four activations for backward (K x, W x + b, their sum, act of it); fused it keeps z (only when
 * there is an activation) and y, and the backward turns gy into gz in scratch. Saved state:
 * the spectral conv's, plus z. */
typedef struct flayer_saved {
  conv_saved *s;
  int act;            /* opl_unary_kind, or -1 */
  const opl_real *z;  /* [N, Co, *S] pre-activation (act >= 0) */
} flayer_saved;

static void flayer_bw(opl_node *nd) {
  const flayer_saved *f = nd->saved;
  const conv_saved *s = f->s;
  opl_ctx *c = nd->ctx;
  int fresh;
  opl_real *gx = opl_node_grad_write(nd, 0, &fresh);
  opl_real *gk = opl_node_grad(nd, 1);
  opl_real *gw = opl_node_grad(nd, 2);
  opl_real *gb = nd->in[3] ? opl_node_grad(nd, 3) : NULL;
  if (opl_ctx_status(c)) return;
  const opl_tensor *y = nd->out, *x = nd->in[0];
  const int64_t S = s->t.g.nreal;
  const opl_real *gz = y->grad;
  if (f->act >= 0) {
    opl_real *t = opl_arena_calloc(c, (size_t)opl_nreal(y) * sizeof(opl_real));
    if (!t) return;
    opl_unary_backward(f->act, y->numel, f->z, y->data, y->grad, t);
    gz = t;
  }
  if (opl_chlin_backward(c, s->N, s->Ci, s->Co, S, gz, x->data, nd->in[2]->data, gx,
                         fresh ? 0 : 1, gw, gb))
    return;
  sconv_backward(c, s, gz, gk, gx, 0); /* gx now holds W^T gz: accumulate */
}

opl_tensor *opl_fourier_layer(opl_ctx *c, opl_tensor *x, opl_tensor *wk, opl_tensor *w,
                              opl_tensor *b, int d, const int *modes, int act) {
  const char *op = "fourier_layer";
  if (!check_d(c, op, d) || !opl_check_input(c, op, "x", x, -1, 0) ||
      !opl_check_input(c, op, "wk", wk, -1, 1) || !opl_check_input(c, op, "w", w, 2, 0))
    return NULL;
  if (b && !opl_check_input(c, op, "b", b, 1, 0)) return NULL;
  char b1[96], b2[96];
  if (act < -1 || act >= OPL_UNARY_COUNT) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: act = %d, expected an opl_unary_kind or -1 (none)", op, act);
    return NULL;
  }
  conv_saved *s = sconv_prepare(c, op, x, wk, d, modes);
  if (!s) return NULL;
  if (w->shape[0] != s->Co || w->shape[1] != s->Ci) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: w %s must be (Co, Ci) = (%lld, %lld) for x %s and wk", op,
                  opl_shape_str(b1, w->rank, w->shape), (long long)s->Co, (long long)s->Ci,
                  opl_shape_str(b2, x->rank, x->shape));
    return NULL;
  }
  if (b && b->shape[0] != s->Co) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: b %s must have Co = %lld entries", op,
                  opl_shape_str(b1, b->rank, b->shape), (long long)s->Co);
    return NULL;
  }
  const int64_t S = s->t.g.nreal;
  if ((int64_t)s->Co > INT32_MAX || S > INT32_MAX) {
    opl_ctx_error(c, OPL_ERR_UNSUPPORTED, "%s: x %s too large for BLAS", op,
                  opl_shape_str(b1, x->rank, x->shape));
    return NULL;
  }
  int64_t yshape[OPL_MAX_RANK];
  memcpy(yshape, x->shape, sizeof yshape);
  yshape[1] = s->Co;
  opl_tensor *in[4] = {x, wk, w, b};
  int taped = opl_ctx_grad_enabled(c) && (opl_requires_grad(x) || opl_requires_grad(wk) ||
                                          opl_requires_grad(w) || (b && opl_requires_grad(b)));
  flayer_saved *f = taped ? opl_arena_alloc(c, sizeof *f) : NULL;
  opl_tensor *y = opl_new(c, x->rank, yshape);
  /* z: y itself without an activation; else its own buffer, saved when backward needs it and
   * scratch (given back below) when not */
  opl_arena_mark_t m = opl_arena_mark(c);
  opl_real *z = act < 0 ? (y ? y->data : NULL) : opl_arena_alloc(c, (size_t)opl_nreal(y) * sizeof(opl_real));
  if ((taped && !f) || !y || !z || !sconv_forward(c, op, s, x->data, z)) return NULL;
  opl_chlin_forward(s->N, s->Ci, s->Co, S, x->data, w->data, b ? b->data : NULL, z, 1);
  if (act >= 0) opl_unary_forward(act, y->numel, z, y->data);
  if (!taped) {
    opl_arena_rewind(c, m);
    return y;
  }
  opl_node *nd = opl_record(c, op, flayer_bw, y, 4, in);
  if (nd) {
    f->s = s, f->act = act, f->z = act >= 0 ? z : NULL;
    nd->saved = f;
  }
  return y;
}

/* ------------------------------------------------------------ spectral derivative */

/* Per-axis real factors of the derivative symbol: f[a][p] = (2 pi k / L_a)^order_a for FFT
 * row p of axis a (k = p for p <= S/2, p - S above; the last axis has only p <= S/2), with the
 * Nyquist row of an even axis zeroed when order_a is odd. f[a] [extent of axis a in the half
 * spectrum]. Computed in double. */
static void deriv_factors(const sgeom *g, const int *order, const double *length, opl_real **f) {
  for (int a = 0; a < g->d; a++) {
    int64_t S = g->dims[a], ext = a < g->d - 1 ? S : g->half;
    for (int64_t p = 0; p < ext; p++) {
      int64_t k = 2 * p <= S ? p : p - S;
      double v = order[a] == 0 ? 1 : pow(2 * M_PI * (double)k / length[a], order[a]);
      if ((order[a] & 1) && 2 * p == S) v = 0;
      f[a][p] = (opl_real)v;
    }
  }
}

/* spec [batch, ncplx] complex, in place: spec *= alpha * i^q * f0[p0] f1[p1] f2[p2]
 * (q = total order mod 4; use -q for the conjugate symbol). f[a] as deriv_factors. */
static void deriv_apply(const sgeom *g, int q, opl_real alpha, opl_real *const *f, opl_real *spec) {
  q = ((q % 4) + 4) % 4;
  int64_t rows = g->batch * g->ncplx / g->half, h = g->half;
  int64_t e1 = g->d == 3 ? g->dims[1] : 1, e0 = g->d >= 2 ? g->dims[0] : 1;
  static const opl_real one = 1;
#pragma omp parallel for if (rows * h > OPL_PAR_MIN) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    /* row r = (b, p0, p1) over (batch, e0, e1) for the non-last axes */
    int64_t p1 = r % e1, p0 = (r / e1) % e0;
    opl_real rf = alpha * (g->d >= 2 ? f[0][p0] : one) * (g->d == 3 ? f[1][p1] : one);
    const opl_real *fl = f[g->d - 1];
    opl_real *s = spec + 2 * r * h;
    for (int64_t k = 0; k < h; k++) {
      opl_real m = rf * fl[k], a = s[2 * k], b = s[2 * k + 1];
      switch (q) {
        case 0: s[2 * k] = m * a, s[2 * k + 1] = m * b; break;
        case 1: s[2 * k] = -m * b, s[2 * k + 1] = m * a; break;
        case 2: s[2 * k] = -m * a, s[2 * k + 1] = -m * b; break;
        default: s[2 * k] = m * b, s[2 * k + 1] = -m * a; break;
      }
    }
  }
}

typedef struct deriv_saved {
  sgeom g;
  int q;            /* total order */
  opl_real *f[3];   /* per-axis factors (deriv_factors) */
} deriv_saved;

/* Backward: the adjoint of c2r(m . r2c(x)) / Ntot is c2r(conj(m) . r2c(gy)) / Ntot (the
 * bin weights c of the two adjoints cancel). gy, gx [batch, nreal]. */
static void deriv_bw(opl_node *nd) {
  const deriv_saved *s = nd->saved;
  int fresh;
  opl_real *gx = opl_node_grad_write(nd, 0, &fresh);
  if (!gx) return;
  opl_ctx *c = nd->ctx;
  opl_real *spec = opl_arena_alloc(c, (size_t)(2 * s->g.batch * s->g.ncplx) * sizeof(opl_real));
  if (!spec || !fft_run(c, "spectral_deriv backward", OPL_FFT_R2C, &s->g, s->g.batch,
                        nd->out->grad, spec))
    return;
  deriv_apply(&s->g, -s->q, (opl_real)(1.0 / (double)s->g.nreal), s->f, spec);
  c2r_into_grad(c, "spectral_deriv backward", &s->g, s->g.batch, spec, gx, fresh);
}

opl_tensor *opl_spectral_deriv(opl_ctx *c, opl_tensor *x, int d, const int *order,
                               const double *length) {
  const char *op = "spectral_deriv";
  if (!check_d(c, op, d) || !opl_check_input(c, op, "x", x, -1, 0)) return NULL;
  char b1[96];
  if (!order || !length) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: order or length is NULL", op);
    return NULL;
  }
  if (x->rank < d) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: x %s has rank %d < d = %d", op,
                  opl_shape_str(b1, x->rank, x->shape), x->rank, d);
    return NULL;
  }
  int q = 0;
  for (int a = 0; a < d; a++) {
    if (order[a] < 0 || !(length[a] > 0) || !isfinite(length[a])) {
      opl_ctx_error(c, OPL_ERR_ARG, "%s: axis %d of x %s: order %d must be >= 0 and length %g > 0",
                    op, a, opl_shape_str(b1, x->rank, x->shape), order[a], length[a]);
      return NULL;
    }
    q += order[a];
  }
  sgeom g = geom_make(x->rank, x->shape, d, x->shape[x->rank - 1]);
  opl_tensor *y = opl_new_like(c, x);
  deriv_saved *s = opl_arena_alloc(c, sizeof *s);
  opl_real *spec = opl_arena_alloc(c, (size_t)(2 * g.batch * g.ncplx) * sizeof(opl_real));
  if (!y || !s || !spec) return NULL;
  memset(s, 0, sizeof *s);
  for (int a = 0; a < d; a++) {
    s->f[a] = opl_arena_alloc(c, (size_t)(a < d - 1 ? g.dims[a] : g.half) * sizeof(opl_real));
    if (!s->f[a]) return NULL;
  }
  s->g = g, s->q = q;
  deriv_factors(&g, order, length, s->f);
  if (!fft_run(c, op, OPL_FFT_R2C, &g, g.batch, x->data, spec)) return NULL;
  deriv_apply(&g, q, (opl_real)(1.0 / (double)g.nreal), s->f, spec);
  if (!fft_run(c, op, OPL_FFT_C2R, &g, g.batch, spec, y->data)) return NULL;
  opl_node *nd = opl_record(c, op, deriv_bw, y, 1, &x);
  if (nd) nd->saved = s;
  return y;
}
