/* opl — convolutions: opl_conv (PyTorch ConvNd, cross-correlation, with zeros / circular /
 * replicate / reflect padding) and opl_conv_transpose (PyTorch ConvTransposeNd), 1-D, 2-D and 3-D.
 *
 * Both ops are built on one linear map A (a convolution) between a "u side" (its input:
 * Cu channels of extents I) and a "v side" (its output: Cv channels of extents O), with a
 * weight w (Cv, Cu/G, *K):
 *
 *     v[n, g Cvg + p, o] = sum_{q, k} w[g Cvg + p, q, k] u[n, g Cug + q, idx(o, k)],
 *     idx_a(o, k) = o stride_a - pad_a + k dil_a   (per spatial axis a),
 *
 * where an out-of-range idx reads a zero (zeros mode), wraps (circular), clamps
 * (replicate) or mirrors without repeating the edge (reflect: -1 -> 1, n -> n - 2): "pad
 * first, then a valid convolution", evaluated without building the padded copy. A is computed by lowering to matrix products (Chellapilla, Puri and Simard,
 * "High Performance Convolutional Neural Networks for Document Processing", 2006):
 *
 *     col = im2col(u_n)        (Cu K, O)   one row per (input channel, kernel tap)
 *     v_n,g = W_g col_g        GEMM        (A u)
 *     u_n += col2im(W^T v_n)   GEMM + scatter-add, the adjoint A^T
 *     gW_g += gv_n,g col_g^T   GEMM        (the weight gradient)
 *
 * opl_conv:           y = A x (+ b);   backward: gx += A^T gy, gW += gy im2col(x)^T.
 * opl_conv_transpose: y = A^T x (+ b) (the adjoint of a convolution with respect to its
 *                     input, Dumoulin and Visin, "A guide to convolution arithmetic for deep
 *                     learning", 2016); backward: gx += A gy, gW += x im2col(gy)^T.
 *
 * Threads: when the batch has at least two samples and there is enough work, samples are
 * spread over OpenMP threads, each with its own im2col buffer (and its own weight-gradient
 * partial, summed afterwards in thread order, so results are deterministic for a given
 * thread count); the GEMMs inside that region are intentionally single-threaded (OpenBLAS's
 * OpenMP build runs one thread inside a parallel region). Otherwise samples run in sequence,
 * im2col/col2im are parallel over rows and OpenBLAS threads each GEMM.
 *
 * Memory: each sample is lowered in slabs of whole axis-0 planes of about 512 output points
 * (below), so an im2col buffer is Cu K x ~512 floats per thread (1.5 MB for 83 channels, 3x3),
 * not Cu K x O (12 MB for the same at 64^2, 56 MB for 24 channels at 256^2). The buffers are
 * scratch: each batch driver returns them to the arena (opl_arena_rewind) before it returns, so
 * a network's convolutions reuse one buffer instead of keeping one per call (and two per call in
 * the backward pass) until the arena is reset.
 *
 * Measured on SineNet's 3x3 convolutions (batch 16, 4^2 .. 64^2, 1 thread, OpenBLAS Haswell
 * kernel; experiments/sinenet/results.md): per-sample GEMMs run at 70-90 GFLOP/s; lowering several
 * samples side by side into one wider GEMM (batch merged into the GEMM's columns) was 17-25 %
 * slower, and slabs of 256 to 1024 points or none made no difference beyond noise.
 *
 * 2-D 3x3 convolutions with stride 1, dilation 1 and one group take Winograd's minimal filtering
 * instead (section "Winograd minimal filtering" below): F(4x4, 3x3) when both output extents are
 * at least 16, F(2x2, 3x3) from 4 to 15, im2col below. Forward + backward CPU time of one such
 * layer, batch 16, 1 thread, padding 1 (ms; im2col / F(2x2) / F(4x4)): 32 -> 32 channels at 64^2
 * 52 / 31 / 26; 51 -> 51 at 32^2 32 / 18 / 17; 133 -> 133 at 8^2 11.5 / 7.5 / 7.7; 214 -> 214 at
 * 4^2 9.6 / 7.5 / 10. At 16^2, once the transforms ran on AVX2: 83 -> 83 20.2 / 11.0 / 9.7 and
 * 216 -> 83 51.4 / 28.3 / 27.3 (forward alone 6.0 / 3.0 / 2.5 and 16.0 / 8.0 / 7.0). */
#include <limits.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "core/ops.h"
#include "core/internal.h"

/* ------------------------------------------------------------ geometry */

/* The map A of the header comment. Spatial axes are padded to 3 (extent 1, kernel 1,
 * stride 1, no padding) so one kernel serves 1-D, 2-D and 3-D. */
typedef struct conv_geom {
  int64_t N;                 /* batch */
  int64_t cu, cv, groups;    /* u-side channels, v-side channels, groups */
  int64_t cug, cvg;          /* cu / groups, cv / groups */
  int64_t ue[3], ve[3], ke[3]; /* u extents, v extents, kernel extents */
  int64_t ivol, ovol, kvol;  /* products of the above */
  int64_t rows;              /* cu * kvol: rows of the im2col matrix */
  int pointwise;             /* kvol == 1, stride 1, no padding, ue == ve: col is u itself */
  int unit;                  /* stride 1 and dilation 1 on every axis */
  int64_t pad[3];            /* padding per axis */
  int wino;                  /* 0: im2col; 2 or 4: Winograd F(wino x wino, 3 x 3) (wino_pick, fixed
                                when the op is recorded so its backward takes the same path) */
  const int64_t *tab[3];     /* tab[a][o ke[a] + k] = source index on axis a of (o, k), or -1
                                for a zero; [ve[a] * ke[a]] each */
  const int64_t *run;        /* [ke[1], 4]: affine_run of tab[1] for each tap k1 (lo, hi, i0, st) */
} conv_geom;

/* The affine run of an axis table for tap k: from the first o whose index t[o K + k] is not
 * -1 (*lo), the longest stretch o = lo .. *hi - 1 with t[o K + k] = *i0 + (o - lo) *st, checked
 * entry by entry (so it is exact for every padding mode; *hi = *lo when every entry is -1). The
 * entries outside [lo, hi) go through the table.
 * t [O, K] */
static void affine_run(const int64_t *t, int64_t K, int64_t k, int64_t O, int64_t *lo, int64_t *hi,
                       int64_t *i0, int64_t *st) {
  int64_t a = 0;
  while (a < O && t[a * K + k] < 0) a++;
  *lo = *hi = a, *i0 = 0, *st = 1;
  if (a == O) return;
  const int64_t first = t[a * K + k];
  const int64_t s = a + 1 < O && t[(a + 1) * K + k] >= 0 ? t[(a + 1) * K + k] - first : 1;
  int64_t b = a + 1;
  while (b < O && t[b * K + k] == first + (b - a) * s) b++;
  *hi = b, *i0 = first, *st = s;
}

/* Build the index tables of g for strides st, padding p, dilations dl and padding mode
 * (the geometry's ue, ve, ke must be set). Tables come from c's arena; returns 0 when out of
 * memory (the context then holds the error). */
static int geom_tables(opl_ctx *c, conv_geom *g, const int64_t *st, const int64_t *p,
                       const int64_t *dl, opl_pad_mode mode) {
  for (int a = 0; a < 3; a++) {
    int64_t *t = opl_arena_alloc(c, (size_t)(g->ve[a] * g->ke[a]) * sizeof *t);
    if (!t) return 0;
    for (int64_t o = 0; o < g->ve[a]; o++)
      for (int64_t k = 0; k < g->ke[a]; k++) {
        int64_t i = o * st[a] - p[a] + k * dl[a], n = g->ue[a];
        if (i < 0 || i >= n) {
          if (mode == OPL_PAD_CIRCULAR) i = ((i % n) + n) % n;
          else if (mode == OPL_PAD_REPLICATE) i = i < 0 ? 0 : n - 1;
          else if (mode == OPL_PAD_REFLECT) i = i < 0 ? -i : 2 * (n - 1) - i; /* pad < n: in range */
          else i = -1;
        }
        t[o * g->ke[a] + k] = i;
      }
    g->tab[a] = t;
  }
  int64_t *run = opl_arena_alloc(c, (size_t)(4 * g->ke[1]) * sizeof *run);
  if (!run) return 0;
  for (int64_t k = 0; k < g->ke[1]; k++)
    affine_run(g->tab[1], g->ke[1], k, g->ve[1], run + 4 * k, run + 4 * k + 1, run + 4 * k + 2, run + 4 * k + 3);
  g->run = run;
  g->ivol = g->ue[0] * g->ue[1] * g->ue[2];
  g->ovol = g->ve[0] * g->ve[1] * g->ve[2];
  g->kvol = g->ke[0] * g->ke[1] * g->ke[2];
  g->rows = g->cu * g->kvol;
  g->pointwise = g->kvol == 1 && g->ivol == g->ovol;
  g->unit = 1;
  for (int a = 0; a < 3; a++) {
    g->pad[a] = p[a];
    if (st[a] != 1 || p[a] != 0) g->pointwise = 0;
    if (st[a] != 1 || dl[a] != 1) g->unit = 0;
  }
  /* cblas takes int dimensions. */
  OPL_ASSERT(g->ovol <= INT_MAX && g->rows <= INT_MAX && g->cv <= INT_MAX,
             "conv: matrix dimensions overflow int");
  return 1;
}

/* ------------------------------------------------------------ im2col / col2im */

/* Row r of the lowering of one sample over the output slab o0 in [a, b): dst[o] =
 * u[c, idx(o, k)] (0 where idx is -1), r = (c, k0, k1, k2), o = (o0 - a, o1, o2). When axis 2 is a
 * placeholder (1-D and 2-D: extents 1), the rows of axis 1 are the contiguous ones: their affine
 * run (a shifted copy for stride 1, a strided gather otherwise) is copied without the
 * per-element table lookup.
 * u   [cu, I0 I1 I2]
 * dst [b - a, O1 O2] */
static void im2col_row(const conv_geom *g, const opl_real *restrict u, opl_real *restrict dst, int64_t r,
                       int64_t a0, int64_t b0) {
  const int64_t K0 = g->ke[0], K1 = g->ke[1], K2 = g->ke[2];
  const int64_t O1 = g->ve[1], O2 = g->ve[2], I1 = g->ue[1], I2 = g->ue[2];
  const int64_t *t0 = g->tab[0], *t1 = g->tab[1], *t2 = g->tab[2];
  const int flat = O2 == 1 && K2 == 1 && I2 == 1 && t2[0] == 0;
  int64_t k2 = r % K2, k1 = (r / K2) % K1, k0 = (r / (K1 * K2)) % K0, ch = r / g->kvol;
  const opl_real *uc = u + ch * g->ivol;
  if (flat) {
    const int64_t lo = g->run[4 * k1], hi = g->run[4 * k1 + 1], a = g->run[4 * k1 + 2], s = g->run[4 * k1 + 3];
    for (int64_t o0 = a0; o0 < b0; o0++, dst += O1) {
      int64_t i0 = t0[o0 * K0 + k0];
      if (i0 < 0) {
        memset(dst, 0, (size_t)O1 * sizeof *dst);
        continue;
      }
      const opl_real *src = uc + i0 * I1;
      for (int64_t o1 = 0; o1 < lo; o1++) {
        int64_t i1 = t1[o1 * K1 + k1];
        dst[o1] = i1 >= 0 ? src[i1] : 0;
      }
      if (s == 1) {
        if (hi > lo) memcpy(dst + lo, src + a, (size_t)(hi - lo) * sizeof *dst);
      } else {
        for (int64_t o1 = lo; o1 < hi; o1++) dst[o1] = src[a + (o1 - lo) * s];
      }
      for (int64_t o1 = hi; o1 < O1; o1++) {
        int64_t i1 = t1[o1 * K1 + k1];
        dst[o1] = i1 >= 0 ? src[i1] : 0;
      }
    }
    return;
  }
  for (int64_t o0 = a0; o0 < b0; o0++) {
    int64_t i0 = t0[o0 * K0 + k0];
    if (i0 < 0) {
      memset(dst, 0, (size_t)(O1 * O2) * sizeof *dst);
      dst += O1 * O2;
      continue;
    }
    for (int64_t o1 = 0; o1 < O1; o1++, dst += O2) {
      int64_t i1 = t1[o1 * K1 + k1];
      if (i1 < 0) {
        memset(dst, 0, (size_t)O2 * sizeof *dst);
        continue;
      }
      const opl_real *src = uc + (i0 * I1 + i1) * I2;
      for (int64_t o2 = 0; o2 < O2; o2++) {
        int64_t i2 = t2[o2 * K2 + k2];
        dst[o2] = i2 >= 0 ? src[i2] : 0;
      }
    }
  }
}

/* Adjoint of im2col_row for channel ch of one sample over the output slab o0 in [a, b),
 * accumulating: u[ch, idx(o, k)] += col[r, o] for the rows r = (ch, k) and every o of the slab
 * whose idx is not -1 (a circular or replicate index receives every tap that reads it). With a
 * placeholder axis 2, the affine run of each row of axis 1 is added without the table
 * (im2col's fast path); every element of u receives its terms in the same order either way.
 * col [cu K0 K1 K2, (b - a) O1 O2]
 * u   [cu, I0 I1 I2], channel ch accumulated */
static void col2im_channel(const conv_geom *g, const opl_real *restrict col, opl_real *restrict u, int64_t ch,
                           int64_t a0, int64_t b0) {
  const int64_t K0 = g->ke[0], K1 = g->ke[1], K2 = g->ke[2];
  const int64_t O1 = g->ve[1], O2 = g->ve[2], I1 = g->ue[1], I2 = g->ue[2];
  const int64_t *t0 = g->tab[0], *t1 = g->tab[1], *t2 = g->tab[2];
  const int flat = O2 == 1 && K2 == 1 && I2 == 1 && t2[0] == 0;
  opl_real *uc = u + ch * g->ivol;
  for (int64_t k = 0; k < g->kvol; k++) {
    int64_t k2 = k % K2, k1 = (k / K2) % K1, k0 = k / (K1 * K2);
    const opl_real *src = col + (ch * g->kvol + k) * (b0 - a0) * O1 * O2;
    if (flat) {
      const int64_t lo = g->run[4 * k1], hi = g->run[4 * k1 + 1], a = g->run[4 * k1 + 2], s = g->run[4 * k1 + 3];
      for (int64_t o0 = a0; o0 < b0; o0++, src += O1) {
        int64_t i0 = t0[o0 * K0 + k0];
        if (i0 < 0) continue;
        opl_real *dst = uc + i0 * I1;
        for (int64_t o1 = 0; o1 < lo; o1++) {
          int64_t i1 = t1[o1 * K1 + k1];
          if (i1 >= 0) dst[i1] += src[o1];
        }
        if (s == 1) {
          opl_real *restrict d = dst + a - lo;
          for (int64_t o1 = lo; o1 < hi; o1++) d[o1] += src[o1];
        } else {
          for (int64_t o1 = lo; o1 < hi; o1++) dst[a + (o1 - lo) * s] += src[o1];
        }
        for (int64_t o1 = hi; o1 < O1; o1++) {
          int64_t i1 = t1[o1 * K1 + k1];
          if (i1 >= 0) dst[i1] += src[o1];
        }
      }
      continue;
    }
    for (int64_t o0 = a0; o0 < b0; o0++) {
      int64_t i0 = t0[o0 * K0 + k0];
      if (i0 < 0) {
        src += O1 * O2;
        continue;
      }
      for (int64_t o1 = 0; o1 < O1; o1++, src += O2) {
        int64_t i1 = t1[o1 * K1 + k1];
        if (i1 < 0) continue;
        opl_real *dst = uc + (i0 * I1 + i1) * I2;
        for (int64_t o2 = 0; o2 < O2; o2++) {
          int64_t i2 = t2[o2 * K2 + k2];
          if (i2 >= 0) dst[i2] += src[o2];
        }
      }
    }
  }
}

/* ------------------------------------------------------------ per-sample kernels
 *
 * A sample's output is cut into slabs of whole planes of axis 0 (o0 in [a, b)), each about
 * slab_cols columns wide, and each slab is lowered and multiplied on its own (spatial blocking,
 * as oneDNN's GEMM-based convolution does): the lowered slab, Cu K x (b - a) O1 O2, is a
 * fraction of a whole-sample buffer (1.5 MB instead of 12 MB for 83 channels at 64^2), which
 * keeps the scratch small; its speed was the same as the whole sample's within the noise of the
 * measurement (header). A sample whose output is narrower than the slab is one slab. */

static int64_t conv_slab_cols = 512;

int64_t opl_conv_set_slab_cols(int64_t cols) {
  int64_t old = conv_slab_cols;
  conv_slab_cols = cols;
  return old;
}

/* Planes of axis 0 per slab: enough for slab_cols columns, at least 1, at most all of them. */
static int64_t slab_planes(const conv_geom *g) {
  const int64_t plane = g->ve[1] * g->ve[2], O0 = g->ve[0];
  if (conv_slab_cols <= 0 || plane * O0 <= conv_slab_cols) return O0;
  int64_t p = conv_slab_cols / plane;
  return p < 1 ? 1 : (p > O0 ? O0 : p);
}

/* Columns of the largest slab: the per-thread scratch is rows x this. */
static int64_t slab_width(const conv_geom *g) { return slab_planes(g) * g->ve[1] * g->ve[2]; }

/* Lower the slab o0 in [a, b) of one sample: col[r, :] = im2col_row r. Parallel over rows when
 * par.
 * u   [cu, I0 I1 I2]
 * col [cu K0 K1 K2, (b - a) O1 O2] */
static void im2col_slab(const conv_geom *g, const opl_real *restrict u, opl_real *restrict col, int64_t a,
                        int64_t b, int par) {
  const int64_t nc = (b - a) * g->ve[1] * g->ve[2];
#pragma omp parallel for if (par) schedule(static)
  for (int64_t r = 0; r < g->rows; r++) im2col_row(g, u, col + r * nc, r, a, b);
}

/* Adjoint of im2col_slab, accumulating (col2im_channel for every channel). Parallel over
 * channels when par (rows of one channel touch only that channel).
 * col [cu K0 K1 K2, (b - a) O1 O2]
 * u   [cu, I0 I1 I2], accumulated */
static void col2im_slab(const conv_geom *g, const opl_real *restrict col, opl_real *restrict u, int64_t a,
                        int64_t b, int par) {
#pragma omp parallel for if (par) schedule(static)
  for (int64_t ch = 0; ch < g->cu; ch++) col2im_channel(g, col, u, ch, a, b);
}

/* v = beta v + A u for one sample, slab by slab and group by group.
 * w   [cv, cug K]
 * u   [cu, ivol]
 * v   [cv, ovol]
 * col [cu K, slab_width] scratch (unused when pointwise) */
static void apply_sample(const conv_geom *g, const opl_real *w, const opl_real *u, opl_real *v,
                         opl_real beta, opl_real *col, int par) {
  const int64_t kk = g->cug * g->kvol, plane = g->ve[1] * g->ve[2], sp = slab_planes(g);
  if (g->pointwise) {
    for (int64_t gr = 0; gr < g->groups; gr++)
      opl_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->cvg, (int)g->ovol, (int)kk, 1,
               w + gr * g->cvg * kk, (int)kk, u + gr * kk * g->ovol, (int)g->ovol, beta,
               v + gr * g->cvg * g->ovol, (int)g->ovol);
    return;
  }
  for (int64_t a = 0; a < g->ve[0]; a += sp) {
    const int64_t b = a + sp < g->ve[0] ? a + sp : g->ve[0], nc = (b - a) * plane;
    im2col_slab(g, u, col, a, b, par);
    for (int64_t gr = 0; gr < g->groups; gr++)
      opl_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->cvg, (int)nc, (int)kk, 1,
               w + gr * g->cvg * kk, (int)kk, col + gr * kk * nc, (int)nc, beta,
               v + gr * g->cvg * g->ovol + a * plane, (int)g->ovol);
  }
}

/* u += A^T v for one sample: per slab, col = W_g^T v_g per group, then col2im.
 * w   [cv, cug K]
 * v   [cv, ovol]
 * u   [cu, ivol], accumulated
 * col [cu K, slab_width] scratch (unused when pointwise) */
static void apply_t_sample(const conv_geom *g, const opl_real *w, const opl_real *v,
                           opl_real *u, opl_real *col, int par) {
  const int64_t kk = g->cug * g->kvol, plane = g->ve[1] * g->ve[2], sp = slab_planes(g);
  if (g->pointwise) {
    for (int64_t gr = 0; gr < g->groups; gr++)
      opl_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kk, (int)g->ovol, (int)g->cvg, 1,
               w + gr * g->cvg * kk, (int)kk, v + gr * g->cvg * g->ovol, (int)g->ovol, 1,
               u + gr * kk * g->ovol, (int)g->ovol);
    return;
  }
  for (int64_t a = 0; a < g->ve[0]; a += sp) {
    const int64_t b = a + sp < g->ve[0] ? a + sp : g->ve[0], nc = (b - a) * plane;
    for (int64_t gr = 0; gr < g->groups; gr++)
      opl_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kk, (int)nc, (int)g->cvg, 1,
               w + gr * g->cvg * kk, (int)kk, v + gr * g->cvg * g->ovol + a * plane, (int)g->ovol, 0,
               col + gr * kk * nc, (int)nc);
    col2im_slab(g, col, u, a, b, par);
  }
}

/* gw += v im2col(u)^T for one sample, slab by slab and group by group.
 * v   [cv, ovol]
 * u   [cu, ivol]
 * gw  [cv, cug K], accumulated
 * col [cu K, slab_width] scratch (unused when pointwise) */
static void wgrad_sample(const conv_geom *g, const opl_real *v, const opl_real *u, opl_real *gw,
                         opl_real *col, int par) {
  const int64_t kk = g->cug * g->kvol, plane = g->ve[1] * g->ve[2], sp = slab_planes(g);
  if (g->pointwise) {
    for (int64_t gr = 0; gr < g->groups; gr++)
      opl_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->cvg, (int)kk, (int)g->ovol, 1,
               v + gr * g->cvg * g->ovol, (int)g->ovol, u + gr * kk * g->ovol, (int)g->ovol, 1,
               gw + gr * g->cvg * kk, (int)kk);
    return;
  }
  for (int64_t a = 0; a < g->ve[0]; a += sp) {
    const int64_t b = a + sp < g->ve[0] ? a + sp : g->ve[0], nc = (b - a) * plane;
    im2col_slab(g, u, col, a, b, par);
    for (int64_t gr = 0; gr < g->groups; gr++)
      opl_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->cvg, (int)kk, (int)nc, 1,
               v + gr * g->cvg * g->ovol + a * plane, (int)g->ovol, col + gr * kk * nc, (int)nc, 1,
               gw + gr * g->cvg * kk, (int)kk);
  }
}

/* ------------------------------------------------------------ batch drivers */

/* Threads to spread the samples over: 1 (sequential samples, threaded BLAS) unless there
 * are at least two samples and enough multiply-adds to pay for a parallel region. */
static int sample_threads(const conv_geom *g) {
  int nt = opl_get_num_threads();
  double madds = (double)g->N * (double)g->cv * (double)(g->cug * g->kvol) * (double)g->ovol;
  if (nt <= 1 || g->N < 2 || madds < 8.0 * OPL_PAR_MIN) return 1;
  return g->N < nt ? (int)g->N : nt;
}

/* Number of the calling OpenMP thread (0 outside a parallel region). */
static inline int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* Per-thread im2col buffers from c's arena: [nt, rows, slab_width], or a dummy when pointwise.
 * NULL (and a sticky error) when out of memory. */
static opl_real *col_scratch(opl_ctx *c, const conv_geom *g, int nt) {
  if (g->pointwise) return opl_arena_alloc(c, sizeof(opl_real));
  return opl_arena_alloc(c, (size_t)nt * (size_t)(g->rows * slab_width(g)) * sizeof(opl_real));
}

/* ------------------------------------------------------------ Winograd minimal filtering
 *
 * 2-D 3x3 convolutions with stride 1, dilation 1 and one group (any padding mode) can instead
 * use Winograd's minimal filtering algorithm F(m x m, 3 x 3) (Lavin and Gray, "Fast Algorithms
 * for Convolutional Neural Networks", CVPR 2016, section 4): the output is cut into m x m tiles,
 * each read from an (m + 2) x (m + 2) patch d of the padded input, and
 *
 *     Y = A^T [ U (.) V ] A,   U = G g G^T (per filter),  V = B^T d B (per patch),
 *
 * where (.) is elementwise over the al x al = (m + 2)^2 transform points and, summed over input
 * channels, becomes one GEMM per transform point: M[xi] (Cout, tiles) = U[xi] (Cout, Cin) V[xi]
 * (Cin, tiles) (section 4.1). F(2x2, 3x3) takes 16 multiplications per 2x2 output tile instead of
 * 36, F(4x4, 3x3) 36 instead of 144.
 *
 * The two gradients are the adjoints of the same three linear steps, so they reuse the
 * transforms: with gM[xi] = A gY A^T (the adjoint of the output transform),
 *     input gradient:  gV[xi] = U[xi]^T gM[xi], gd = B gV B^T scattered back onto the patch (the
 *                      adjoint of the gather: a padding value read twice receives both terms),
 *     weight gradient: gU[xi] = sum over tiles gM[xi] V[xi]^T, gg = G^T gU G
 * (the weight gradient is Lavin and Gray's F(3x3, 2x2) / F(3x3, 4x4) in this adjoint form). The
 * patch gather goes through the padded index maps built from the geometry's tables, so zeros,
 * circular, replicate and reflect padding are all exact, and the partial tiles at the right and
 * bottom edges (odd extents) read zeros and drop the outputs beyond the edge.
 *
 * Layout and memory: the tiles are taken in whole tile rows, a chunk of about wino_tiles tiles
 * at a time (several samples side by side when a sample has fewer tiles, so the GEMMs stay wide);
 * the transformed chunk V [al al, Cin, tiles] and the products M [al al, Cout, tiles] are scratch
 * of the calling thread from the arena, returned before the driver returns. Each work item (a
 * sample, or a group of whole samples) is done by one thread, so the scatter of the input
 * gradient never races, every output is computed the same way whatever the thread count, and the
 * weight gradient sums per-thread partials in thread order (deterministic for a thread count, as
 * the im2col path).
 *
 * Speed: the tile transforms are the cost besides the GEMMs; they run on a whole row of tiles at
 * once, one tile per SIMD lane, from padded rows split into m phases (so every tap of every tile
 * is a contiguous load), with AVX2 copies chosen at run time.
 *
 * Accuracy: the transforms of F(2x2) have entries 0, +-1, +-1/2; F(4x4)'s reach 8 and 1/24. In
 * float, against the im2col path on the cases of tests/core/test_conv.c (values, input and weight
 * gradients, relative to the largest entry): at most 5.7e-7 for F(2x2), 3.6e-6 for F(4x4) (the
 * tests' bounds: 2e-6 and 2e-5); in double within 1e-12 for both. */

typedef struct wino_alg {
  int m, al;          /* output tile m x m, input patch al x al, al = m + 2 */
  double BT[6][6];    /* [al, al] */
  double G[6][3];     /* [al, 3] */
  double AT[4][6];    /* [m, al] */
} wino_alg;

/* F(2x2, 3x3) and F(4x4, 3x3) with the interpolation points of Lavin and Gray (0, +-1 and
 * 0, +-1, +-2, and infinity). */
static const wino_alg wino_f2 = {
    2, 4,
    {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
    {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
    {{1, 1, 1, 0}, {0, 1, -1, -1}}};
static const wino_alg wino_f4 = {
    4, 6,
    {{4, 0, -5, 0, 1, 0},
     {0, -4, -4, 1, 1, 0},
     {0, 4, -4, -1, 1, 0},
     {0, -2, -1, 2, 1, 0},
     {0, 2, -1, -2, 1, 0},
     {0, 4, 0, -5, 0, 1}},
    {{1.0 / 4, 0, 0},
     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
     {1.0 / 24, 1.0 / 12, 1.0 / 6},
     {1.0 / 24, -1.0 / 12, 1.0 / 6},
     {0, 0, 1}},
    {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}};

/* -1: choose per layer (wino_pick); 0: never; 2 or 4: F(2x2) or F(4x4) wherever possible. */
static int wino_mode = -1;
/* Tiles per chunk: 128 keeps a thread's V and M at ~2 MB for SineNet's largest layer (83 -> 32 at
 * 64²), against ~8.5 MB at 512. Layer by layer in isolation 256 to 512 measured best, but over the
 * whole SineNet pass, with two threads and a shared L3, 128 was 6 % faster for inference and training
 * than 512 (and 64 equal to 128), in back-to-back runs (experiments/sinenet/results.md). */
static int64_t wino_tiles = 128;
static int wino_isa_avx2 = 1; /* 0: the baseline kernels only (tests compare the two) */
/* 1 when the AVX2 copies run, -1 until wino_prepare first looks. Read and written with relaxed
 * atomics (WINO_AVX2): the contexts of a team (core/par.h) prepare convolutions on several
 * threads at once, and all of them store the same value. */
static int wino_avx2 = -1;
#define WINO_AVX2 __atomic_load_n(&wino_avx2, __ATOMIC_RELAXED)

int opl_conv_set_wino_avx2(int on) {
  int old = wino_isa_avx2;
  wino_isa_avx2 = on;
  __atomic_store_n(&wino_avx2, -1, __ATOMIC_RELAXED);
  return old;
}

int opl_conv_set_winograd(int mode) {
  int old = wino_mode;
  wino_mode = mode;
  return old;
}

int64_t opl_conv_set_wino_tiles(int64_t tiles) {
  int64_t old = wino_tiles;
  wino_tiles = tiles > 0 ? tiles : 1;
  return old;
}

/* The Winograd tile m for g (2 or 4), or 0 for the im2col path: 2-D, 3x3, stride 1, dilation 1,
 * one group. Chosen per layer shape when wino_mode is -1 (measurements in the header). */
static int wino_pick(const conv_geom *g) {
  if (!g->unit || g->groups != 1 || g->ke[0] != 3 || g->ke[1] != 3 || g->ke[2] != 1 || g->ue[2] != 1 ||
      g->ve[2] != 1 || g->N < 1)
    return 0;
  if (wino_mode >= 0) return wino_mode == 2 || wino_mode == 4 ? wino_mode : 0;
  const int64_t e = g->ve[0] < g->ve[1] ? g->ve[0] : g->ve[1];
  return e >= 16 ? 4 : e >= 4 ? 2 : 0;
}

/* The 1-D transforms of Lavin and Gray's F(2, 3) and F(4, 3), written out: o = P x for the
 * matrices P = B^T, A^T and their transposes B, A (the adjoints), reading x[k xs] and writing
 * o[k os]. Locals, so that the per-tile arrays below stay in registers. */
#define WBT2(o, os, x, xs)                                                        \
  do {                                                                            \
    const __typeof__((x)[0]) x0 = (x)[0], x1 = (x)[(xs)], x2 = (x)[2 * (xs)], x3 = (x)[3 * (xs)]; \
    (o)[0] = x0 - x2, (o)[(os)] = x1 + x2, (o)[2 * (os)] = x2 - x1, (o)[3 * (os)] = x1 - x3; \
  } while (0)
#define WB2(o, os, x, xs)                                                         \
  do {                                                                            \
    const __typeof__((x)[0]) x0 = (x)[0], x1 = (x)[(xs)], x2 = (x)[2 * (xs)], x3 = (x)[3 * (xs)]; \
    (o)[0] = x0, (o)[(os)] = x1 - x2 + x3, (o)[2 * (os)] = x1 + x2 - x0, (o)[3 * (os)] = -x3; \
  } while (0)
#define WAT2(o, os, x, xs)                                                        \
  do {                                                                            \
    const __typeof__((x)[0]) x0 = (x)[0], x1 = (x)[(xs)], x2 = (x)[2 * (xs)], x3 = (x)[3 * (xs)]; \
    (o)[0] = x0 + x1 + x2, (o)[(os)] = x1 - x2 - x3;                              \
  } while (0)
#define WA2(o, os, x, xs)                                                         \
  do {                                                                            \
    const __typeof__((x)[0]) y0 = (x)[0], y1 = (x)[(xs)];                                   \
    (o)[0] = y0, (o)[(os)] = y0 + y1, (o)[2 * (os)] = y0 - y1, (o)[3 * (os)] = -y1; \
  } while (0)
#define WBT4(o, os, x, xs)                                                        \
  do {                                                                            \
    const __typeof__((x)[0]) x0 = (x)[0], x1 = (x)[(xs)], x2 = (x)[2 * (xs)], x3 = (x)[3 * (xs)], \
                   x4 = (x)[4 * (xs)], x5 = (x)[5 * (xs)];                        \
    (o)[0] = 4 * x0 - 5 * x2 + x4;                                                \
    (o)[(os)] = x3 + x4 - 4 * (x1 + x2);                                          \
    (o)[2 * (os)] = x4 - x3 + 4 * (x1 - x2);                                      \
    (o)[3 * (os)] = x4 - x2 + 2 * (x3 - x1);                                      \
    (o)[4 * (os)] = x4 - x2 + 2 * (x1 - x3);                                      \
    (o)[5 * (os)] = 4 * x1 - 5 * x3 + x5;                                         \
  } while (0)
#define WB4(o, os, x, xs)                                                         \
  do {                                                                            \
    const __typeof__((x)[0]) r0 = (x)[0], r1 = (x)[(xs)], r2 = (x)[2 * (xs)], r3 = (x)[3 * (xs)], \
                   r4 = (x)[4 * (xs)], r5 = (x)[5 * (xs)];                        \
    (o)[0] = 4 * r0;                                                              \
    (o)[(os)] = 4 * (r2 - r1 + r5) + 2 * (r4 - r3);                               \
    (o)[2 * (os)] = -5 * r0 - 4 * (r1 + r2) - r3 - r4;                            \
    (o)[3 * (os)] = r1 - r2 + 2 * (r3 - r4) - 5 * r5;                             \
    (o)[4 * (os)] = r0 + r1 + r2 + r3 + r4;                                       \
    (o)[5 * (os)] = r5;                                                           \
  } while (0)
#define WAT4(o, os, x, xs)                                                        \
  do {                                                                            \
    const __typeof__((x)[0]) x0 = (x)[0], x1 = (x)[(xs)], x2 = (x)[2 * (xs)], x3 = (x)[3 * (xs)], \
                   x4 = (x)[4 * (xs)], x5 = (x)[5 * (xs)];                        \
    (o)[0] = x0 + x1 + x2 + x3 + x4;                                              \
    (o)[(os)] = x1 - x2 + 2 * (x3 - x4);                                          \
    (o)[2 * (os)] = x1 + x2 + 4 * (x3 + x4);                                      \
    (o)[3 * (os)] = x1 - x2 + 8 * (x3 - x4) + x5;                                 \
  } while (0)
#define WA4(o, os, x, xs)                                                         \
  do {                                                                            \
    const __typeof__((x)[0]) y0 = (x)[0], y1 = (x)[(xs)], y2 = (x)[2 * (xs)], y3 = (x)[3 * (xs)]; \
    (o)[0] = y0;                                                                  \
    (o)[(os)] = y0 + y1 + y2 + y3;                                                \
    (o)[2 * (os)] = y0 - y1 + y2 - y3;                                            \
    (o)[3 * (os)] = y0 + 2 * y1 + 4 * y2 + 8 * y3;                                \
    (o)[4 * (os)] = y0 - 2 * y1 + 4 * y2 - 8 * y3;                                \
    (o)[5 * (os)] = y3;                                                           \
  } while (0)
#define WREP4(X) X(0) X(1) X(2) X(3)
#define WREP6(X) X(0) X(1) X(2) X(3) X(4) X(5)

/* The four tile transforms over a row of T tiles side by side, one tile per SIMD lane (GCC
 * vector extensions, 16 bytes; the remaining tiles one at a time). A padded row is held in m
 * phases, ph[t P + q] = row[m q + t] (q <= T), so that tap j of tile q is
 * ph[(j % m) P + q + j / m]: contiguous in q.
 *   wino_in:    V = B^T d B;   rows [al] pointers to phased padded rows [m, P]; V [al al, ps]
 *   wino_in_t:  gd = B gV B^T (the adjoint); X [al al, ps]; out [al al, T], out[(i al + j) T + q]
 *   wino_out:   Y = A^T M A;   X [al al, ps]; out [m m, T], out[(s m + t) T + q]
 *   wino_out_t: gM = A gY A^T (the adjoint); rows [m] pointers to phased rows of gY [m, P];
 *               out [al al, ps]
 * (columns q = 0 .. T - 1 of the [., ps] arrays). */
typedef opl_real wino_v __attribute__((vector_size(16), aligned(sizeof(opl_real)), may_alias));
#define WL ((int64_t)(sizeof(wino_v) / sizeof(opl_real)))
#define WVLD(p) (*(const wino_v *)(p))
#define WVST(p, v) (*(wino_v *)(p) = (v))
#define WSLD(p) (*(p))
#define WSST(p, v) (*(p) = (v))
#define WLANES(BODY)                                       \
  int64_t q = 0;                                           \
  for (; q + WL <= T; q += WL) BODY(wino_v, WVLD, WVST)    \
  for (; q < T; q++) BODY(opl_real, WSLD, WSST)
/* The same with 32-byte vectors, for the AVX2 copies of the kernels (chosen at run time when the
 * processor has AVX2: the build itself targets baseline x86-64). No FMA: every lane does the
 * same operations in the same order as the 16-byte and scalar code, so results are the same
 * bits on either kind of processor. */
typedef opl_real wino_v8 __attribute__((vector_size(32), aligned(sizeof(opl_real)), may_alias));
#define WL8 ((int64_t)(sizeof(wino_v8) / sizeof(opl_real)))
#define WV8LD(p) (*(const wino_v8 *)(p))
#define WV8ST(p, v) (*(wino_v8 *)(p) = (v))
#define WLANES8(BODY)                                      \
  int64_t q = 0;                                           \
  for (; q + WL8 <= T; q += WL8) BODY(wino_v8, WV8LD, WV8ST) \
  for (; q + WL <= T; q += WL) BODY(wino_v, WVLD, WVST)    \
  for (; q < T; q++) BODY(opl_real, WSLD, WSST)

#define WDEF_IN(NAME, AL, MM, BT)                                                                       \
  static void NAME(int64_t T, int64_t nr, const opl_real *img, int64_t rs, int64_t P, opl_real *restrict V, \
                   int64_t ps) {                                                                         \
    for (int64_t rr = 0; rr < nr; rr++, V += T) {                                                        \
      const opl_real *r[AL];                                                                             \
      for (int i = 0; i < AL; i++) r[i] = img + (MM * rr + i) * rs;                                      \
      WLANES(NAME##_body)                                                                                \
    }                                                                                                    \
  }
#define WBODY_IN(AL, MM, BT, TY, LD, ST)                                                                 \
  {                                                                                                      \
    TY d[AL * AL], t[AL * AL];                                                                           \
    for (int i = 0; i < AL; i++)                                                                         \
      for (int j = 0; j < AL; j++) d[i * AL + j] = LD(r[i] + (j % MM) * P + q + j / MM);                 \
    for (int i = 0; i < AL; i++) BT(t + i * AL, 1, d + i * AL, 1);                                       \
    for (int b = 0; b < AL; b++) BT(d + b, AL, t + b, AL);                                               \
    for (int k = 0; k < AL * AL; k++) ST(V + k * ps + q, d[k]);                                          \
  }
#define WBODY_IN_T(AL, B, TY, LD, ST)                                                                    \
  {                                                                                                      \
    TY x[AL * AL], t[AL * AL];                                                                           \
    for (int k = 0; k < AL * AL; k++) x[k] = LD(X + k * ps + q);                                         \
    for (int a = 0; a < AL; a++) B(t + a * AL, 1, x + a * AL, 1);                                        \
    for (int j = 0; j < AL; j++) B(x + j, AL, t + j, AL);                                                \
    for (int k = 0; k < AL * AL; k++) ST(out + k * T + q, x[k]);                                         \
  }
#define WBODY_OUT(AL, MM, AT, TY, LD, ST)                                                                \
  {                                                                                                      \
    TY x[AL * AL], t[AL * MM], y[MM * MM];                                                               \
    for (int k = 0; k < AL * AL; k++) x[k] = LD(X + k * ps + q);                                         \
    for (int a = 0; a < AL; a++) AT(t + a * MM, 1, x + a * AL, 1);                                       \
    for (int s = 0; s < MM; s++) AT(y + s, MM, t + s, MM);                                               \
    for (int k = 0; k < MM * MM; k++) ST(out + k * T + q, y[k]);                                         \
  }
#define WBODY_OUT_T(AL, MM, A, TY, LD, ST)                                                               \
  {                                                                                                      \
    TY g[MM * MM], t[AL * MM], x[AL * AL];                                                               \
    for (int s = 0; s < MM; s++)                                                                         \
      for (int u = 0; u < MM; u++) g[s * MM + u] = LD(r[s] + u * P + q);                                 \
    for (int u = 0; u < MM; u++) A(t + u, MM, g + u, MM);                                                \
    for (int a = 0; a < AL; a++) A(x + a * AL, 1, t + a * MM, 1);                                        \
    for (int k = 0; k < AL * AL; k++) ST(out + k * ps + q, x[k]);                                        \
  }
#define wino_in2_body(TY, LD, ST) WBODY_IN(4, 2, WBT2, TY, LD, ST)
#define wino_in4_body(TY, LD, ST) WBODY_IN(6, 4, WBT4, TY, LD, ST)
#define wino_in_t2_body(TY, LD, ST) WBODY_IN_T(4, WB2, TY, LD, ST)
#define wino_in_t4_body(TY, LD, ST) WBODY_IN_T(6, WB4, TY, LD, ST)
#define wino_out2_body(TY, LD, ST) WBODY_OUT(4, 2, WAT2, TY, LD, ST)
#define wino_out4_body(TY, LD, ST) WBODY_OUT(6, 4, WAT4, TY, LD, ST)
#define wino_out_t2_body(TY, LD, ST) WBODY_OUT_T(4, 2, WA2, TY, LD, ST)
#define wino_out_t4_body(TY, LD, ST) WBODY_OUT_T(6, 4, WA4, TY, LD, ST)
#define WDEF_IN_T(NAME, AL, B)                                                                           \
  static void NAME(int64_t T, const opl_real *restrict X, int64_t ps, opl_real *restrict out) {          \
    WLANES(NAME##_body)                                                                                  \
  }
#define WDEF_OUT(NAME, AL, MM, AT)                                                                       \
  static void NAME(int64_t T, const opl_real *restrict X, int64_t ps, opl_real *restrict out) {          \
    WLANES(NAME##_body)                                                                                  \
  }
#define WDEF_OUT_T(NAME, AL, MM, A)                                                                      \
  static void NAME(int64_t T, const opl_real *const *rows, int64_t P, opl_real *restrict out, int64_t ps) { \
    const opl_real *r[MM];                                                                               \
    for (int s = 0; s < MM; s++) r[s] = rows[s];                                                         \
    WLANES(NAME##_body)                                                                                  \
  }
#define WDEF8_IN(NAME, AL, MM, BT)                                                                       \
  __attribute__((target("avx2"))) static void NAME##_avx2(int64_t T, int64_t nr, const opl_real *img, int64_t rs, \
                                                          int64_t P, opl_real *restrict V, int64_t ps) {  \
    for (int64_t rr = 0; rr < nr; rr++, V += T) {                                                        \
      const opl_real *r[AL];                                                                             \
      for (int i = 0; i < AL; i++) r[i] = img + (MM * rr + i) * rs;                                      \
      WLANES8(NAME##_body)                                                                               \
    }                                                                                                    \
  }
#define WDEF8_IN_T(NAME, AL, B)                                                                           \
  __attribute__((target("avx2"))) static void NAME##_avx2(int64_t T, const opl_real *restrict X, int64_t ps, opl_real *restrict out) {          \
    WLANES8(NAME##_body)                                                                                  \
  }
#define WDEF8_OUT(NAME, AL, MM, AT)                                                                       \
  __attribute__((target("avx2"))) static void NAME##_avx2(int64_t T, const opl_real *restrict X, int64_t ps, opl_real *restrict out) {          \
    WLANES8(NAME##_body)                                                                                  \
  }
#define WDEF8_OUT_T(NAME, AL, MM, A)                                                                      \
  __attribute__((target("avx2"))) static void NAME##_avx2(int64_t T, const opl_real *const *rows, int64_t P, opl_real *restrict out, int64_t ps) { \
    const opl_real *r[MM];                                                                               \
    for (int s = 0; s < MM; s++) r[s] = rows[s];                                                         \
    WLANES8(NAME##_body)                                                                                  \
  }
WDEF_IN(wino_in2, 4, 2, WBT2)
WDEF_IN(wino_in4, 6, 4, WBT4)
WDEF_IN_T(wino_in_t2, 4, WB2)
WDEF_IN_T(wino_in_t4, 6, WB4)
WDEF_OUT(wino_out2, 4, 2, WAT2)
WDEF_OUT(wino_out4, 6, 4, WAT4)
WDEF_OUT_T(wino_out_t2, 4, 2, WA2)
WDEF_OUT_T(wino_out_t4, 6, 4, WA4)
WDEF8_IN(wino_in2, 4, 2, WBT2)
WDEF8_IN(wino_in4, 6, 4, WBT4)
WDEF8_IN_T(wino_in_t2, 4, WB2)
WDEF8_IN_T(wino_in_t4, 6, WB4)
WDEF8_OUT(wino_out2, 4, 2, WAT2)
WDEF8_OUT(wino_out4, 6, 4, WAT4)
WDEF8_OUT_T(wino_out_t2, 4, 2, WA2)
WDEF8_OUT_T(wino_out_t4, 6, 4, WA4)

static void wino_in(int m, int64_t T, int64_t nr, const opl_real *img, int64_t rs, int64_t P, opl_real *V,
                    int64_t ps) {
  if (WINO_AVX2) (m == 2 ? wino_in2_avx2 : wino_in4_avx2)(T, nr, img, rs, P, V, ps);
  else (m == 2 ? wino_in2 : wino_in4)(T, nr, img, rs, P, V, ps);
}
static void wino_in_t(int m, int64_t T, const opl_real *X, int64_t ps, opl_real *out) {
  if (WINO_AVX2) (m == 2 ? wino_in_t2_avx2 : wino_in_t4_avx2)(T, X, ps, out);
  else (m == 2 ? wino_in_t2 : wino_in_t4)(T, X, ps, out);
}
static void wino_out(int m, int64_t T, const opl_real *X, int64_t ps, opl_real *out) {
  if (WINO_AVX2) (m == 2 ? wino_out2_avx2 : wino_out4_avx2)(T, X, ps, out);
  else (m == 2 ? wino_out2 : wino_out4)(T, X, ps, out);
}
static void wino_out_t(int m, int64_t T, const opl_real *const *rows, int64_t P, opl_real *out, int64_t ps) {
  if (WINO_AVX2) (m == 2 ? wino_out_t2_avx2 : wino_out_t4_avx2)(T, rows, P, out, ps);
  else (m == 2 ? wino_out_t2 : wino_out_t4)(T, rows, P, out, ps);
}

/* A Winograd evaluation of the map A of g: the padded index maps, the work split and the
 * transformed filters. */
typedef struct wino_plan {
  int m, al;
  int64_t T0, T1;           /* tile rows and tiles per row of one sample */
  int64_t ldr, P;           /* padded row length m T1 + 2; phase length T1 + 1 */
  const int64_t *pm0, *pm1; /* pm_a[x] = source index on axis a of padded position x, or -1;
                               [m T0 + 2] and [m T1 + 2] */
  int64_t pad1;             /* padding on axis 1: position x reads x - pad1 when that is in range */
  int64_t lo, hi;           /* the phase groups q in [lo, hi) read x - pad1 in range (wino_inner) */
  int64_t ne;               /* phase entries outside [lo, hi): */
  const int64_t *edst, *esrc; /* [ne] ph index t P + q and its source index in the row (or -1) */
  int64_t spc, rpc;         /* samples per work item; tile rows per chunk */
  int64_t nitems, chunk;    /* work items; tiles in the largest chunk */
  opl_real *U;              /* [al al, cv, cu] transformed filters, or NULL */
} wino_plan;

/* The stride of the planes of V [al al, cu, nc] and M [al al, cv, nc]: C nc and one cache line
 * more, so that the al al planes a tile transform reads or writes do not all map to the same
 * cache sets (C nc is often a multiple of 4 KiB). */
#define WPS(C, nc) ((C) * (nc) + 16)

/* Padded rows of the phased image of one channel over the tile rows of one sample in a chunk
 * (m per tile row and the 2 below the last one). */
static int64_t wino_img_rows(const wino_plan *p) { return p->m * (p->rpc < p->T0 ? p->rpc : p->T0) + 2; }

/* Per-thread scratch of a plan, in elements: V, M, the phased image and the per-tile transform
 * output (see the chunk functions). */
static int64_t wino_scratch(const wino_plan *p, const conv_geom *g) {
  const int64_t al2 = p->al * p->al;
  return al2 * (WPS(g->cu, p->chunk) + WPS(g->cv, p->chunk)) + wino_img_rows(p) * p->m * p->P + al2 * p->T1;
}

/* The filter transform and its adjoint for the filters [k0, k1) (k1 - k0 <= 64) of a block:
 *   wino_filters:   U[xi = (a, b)] = G g G^T, as h = G g then h G^T;
 *                   w [cc, 3, 3] -> U [al al, cc] (entries k0 .. k1 - 1 of each plane)
 *   wino_filters_t: gg += G^T gU G, as h = G^T gU then h G;
 *                   gU [al al, cc] -> gw [cc, 3, 3] accumulated
 * in double, with the filters of the block in the vector lanes (contiguous along k). The AVX2
 * copies (chosen at run time, no FMA) do the same operations in the same order, so give the
 * same bits. */
#define WFILT_BODY                                                                                   \
  const int al = alg->al;                                                                           \
  const int64_t nk = k1 - k0;                                                                       \
  double f[9][64], h[3][64];                                                                        \
  for (int64_t k = 0; k < nk; k++)                                                                  \
    for (int t = 0; t < 9; t++) f[t][k] = w[(k0 + k) * 9 + t];                                      \
  for (int a = 0; a < al; a++) {                                                                    \
    const double g0 = alg->G[a][0], g1 = alg->G[a][1], g2 = alg->G[a][2];                           \
    for (int j = 0; j < 3; j++)                                                                     \
      for (int64_t k = 0; k < nk; k++) h[j][k] = g0 * f[j][k] + g1 * f[3 + j][k] + g2 * f[6 + j][k]; \
    for (int b = 0; b < al; b++) {                                                                  \
      const double e0 = alg->G[b][0], e1 = alg->G[b][1], e2 = alg->G[b][2];                         \
      opl_real *restrict u = U + (a * al + b) * cc + k0;                                            \
      for (int64_t k = 0; k < nk; k++) u[k] = (opl_real)(h[0][k] * e0 + h[1][k] * e1 + h[2][k] * e2); \
    }                                                                                               \
  }
#define WFILT_T_BODY                                                                                 \
  const int al = alg->al;                                                                           \
  const int64_t nk = k1 - k0;                                                                       \
  double h[3][6][64], o[9][64];                                                                     \
  for (int i = 0; i < 3; i++)                                                                       \
    for (int b = 0; b < al; b++) {                                                                  \
      double *restrict hb = h[i][b];                                                                \
      for (int64_t k = 0; k < nk; k++) hb[k] = 0;                                                   \
      for (int a = 0; a < al; a++) {                                                                \
        const double ga = alg->G[a][i];                                                             \
        const opl_real *restrict x = gU + (a * al + b) * cc + k0;                                   \
        for (int64_t k = 0; k < nk; k++) hb[k] += ga * x[k];                                        \
      }                                                                                             \
    }                                                                                               \
  for (int i = 0; i < 3; i++)                                                                       \
    for (int j = 0; j < 3; j++) {                                                                   \
      double *restrict ob = o[i * 3 + j];                                                           \
      for (int64_t k = 0; k < nk; k++) ob[k] = 0;                                                   \
      for (int b = 0; b < al; b++) {                                                                \
        const double gb = alg->G[b][j];                                                             \
        for (int64_t k = 0; k < nk; k++) ob[k] += h[i][b][k] * gb;                                  \
      }                                                                                             \
    }                                                                                               \
  for (int64_t k = 0; k < nk; k++)                                                                  \
    for (int t = 0; t < 9; t++) gw[(k0 + k) * 9 + t] += (opl_real)o[t][k];
static void wino_filters(const wino_alg *alg, const opl_real *w, int64_t cc, int64_t k0, int64_t k1, opl_real *U) {
  WFILT_BODY
}
__attribute__((target("avx2"))) static void wino_filters_avx2(const wino_alg *alg, const opl_real *w, int64_t cc,
                                                              int64_t k0, int64_t k1, opl_real *U) {
  WFILT_BODY
}
static void wino_filters_t(const wino_alg *alg, const opl_real *gU, int64_t cc, int64_t k0, int64_t k1, opl_real *gw) {
  WFILT_T_BODY
}
__attribute__((target("avx2"))) static void wino_filters_t_avx2(const wino_alg *alg, const opl_real *gU, int64_t cc,
                                                                int64_t k0, int64_t k1, opl_real *gw) {
  WFILT_T_BODY
}

/* U[xi = (a, b)] = G g G^T for w [cv, cu, 3, 3] into p->U, in blocks of 64 filters shared out over
 * the threads of the enclosing parallel region (an orphaned `omp for`, with its barrier), or all
 * by the caller outside one. */
static void wino_filter_blocks(const wino_plan *p, const conv_geom *g, const opl_real *w) {
  const wino_alg *alg = p->m == 2 ? &wino_f2 : &wino_f4;
  const int64_t cc = g->cv * g->cu, nb = (cc + 63) / 64;
  const int avx2 = WINO_AVX2;
#pragma omp for schedule(static)
  for (int64_t blk = 0; blk < nb; blk++) {
    const int64_t k0 = blk * 64, k1 = k0 + 64 < cc ? k0 + 64 : cc;
    (avx2 ? wino_filters_avx2 : wino_filters)(alg, w, cc, k0, k1, p->U);
  }
}

/* The groups q of a padded row whose m positions m q .. m q + m - 1 all read x - pad1 in range:
 * [*lo, *hi). */
static void wino_inner(const wino_plan *p, const conv_geom *g, int64_t *lo, int64_t *hi) {
  const int64_t m = p->m, a = (p->pad1 + m - 1) / m, b = p->pad1 + g->ue[1] >= m ? (p->pad1 + g->ue[1] - m) / m + 1 : 0;
  *lo = a < p->P ? a : p->P;
  *hi = b < *lo ? *lo : (b < p->P ? b : p->P);
}

/* Fill p for g and tile m (from c's arena). When w [cv, cu, 3, 3] is not NULL, allocate p->U and,
 * for nt == 1, fill it over all threads here; for nt > 1 the caller fills it inside its own
 * parallel region (wino_filter_blocks). nt: threads the tiles are spread over. Returns 0 when out
 * of memory. */
static int wino_prepare(opl_ctx *c, const conv_geom *g, int m, const opl_real *w, int nt, wino_plan *p) {
  const wino_alg *alg = m == 2 ? &wino_f2 : &wino_f4;
  const int al = alg->al;
  if (WINO_AVX2 < 0) __atomic_store_n(&wino_avx2, wino_isa_avx2 && __builtin_cpu_supports("avx2"), __ATOMIC_RELAXED);
  p->m = m, p->al = al;
  p->T0 = (g->ve[0] + m - 1) / m, p->T1 = (g->ve[1] + m - 1) / m;
  p->ldr = m * p->T1 + 2, p->P = p->T1 + 1;
  p->pad1 = g->pad[1];
  for (int ax = 0; ax < 2; ax++) {
    const int64_t T = ax ? p->T1 : p->T0, ve = g->ve[ax], n = m * T + 2;
    int64_t *pm = opl_arena_alloc(c, (size_t)n * sizeof *pm);
    if (!pm) return 0;
    /* padded position x is input position x - pad: tab[o 3 + k] with o + k = x */
    for (int64_t x = 0; x < n; x++) {
      const int64_t o = x < ve ? x : ve - 1, k = x - o;
      pm[x] = k <= 2 ? g->tab[ax][o * 3 + k] : -1;
    }
    if (ax) p->pm1 = pm;
    else p->pm0 = pm;
  }
  /* the edge entries of a phased row, in the order t, then q (wino_load_row, wino_store_row_add) */
  wino_inner(p, g, &p->lo, &p->hi);
  int64_t *ed = opl_arena_alloc(c, (size_t)(2 * m * p->P) * sizeof *ed), *es = ed + m * p->P;
  if (!ed) return 0;
  p->ne = 0;
  for (int t = 0; t < m; t++)
    for (int64_t q = 0; q < p->P; q++) {
      if (q == p->lo) q = p->hi;
      if (q >= p->P) break;
      const int64_t x = m * q + t;
      ed[p->ne] = t * p->P + q, es[p->ne] = x < p->ldr ? p->pm1[x] : -1;
      p->ne++;
    }
  p->edst = ed, p->esrc = es;
  const int64_t tps = p->T0 * p->T1, per = (g->N + nt - 1) / nt;
  p->spc = tps >= wino_tiles ? 1 : wino_tiles / tps;
  if (p->spc > per) p->spc = per;
  if (p->spc < 1) p->spc = 1;
  p->nitems = (g->N + p->spc - 1) / p->spc;
  if (p->spc == 1) {
    p->rpc = wino_tiles / p->T1;
    if (p->rpc < 1) p->rpc = 1;
    if (p->rpc > p->T0) p->rpc = p->T0;
  } else {
    p->rpc = p->spc * p->T0;
  }
  p->chunk = p->rpc * p->T1;
  OPL_ASSERT(p->chunk <= INT_MAX && g->cu <= INT_MAX && g->cv <= INT_MAX, "conv: Winograd dimensions overflow int");
  p->U = NULL;
  if (!w) return 1;
  const int64_t al2 = al * al, cc = g->cv * g->cu;
  p->U = opl_arena_alloc(c, (size_t)(al2 * cc) * sizeof *p->U);
  if (!p->U) return 0;
  /* with one thread for the tiles, the filters are transformed here over all threads; otherwise
   * inside the driver's parallel region (wino_filter_blocks), which saves starting one */
  if (nt == 1) {
#pragma omp parallel if (cc * al2 > OPL_PAR_MIN)
    wino_filter_blocks(p, g, w);
  }
  return 1;
}

/* Split n groups of m consecutive values into m phases: ph[t P + q] = src[m q + t], q < n, t < m
 * (written out for m = 2 and 4 so that the compiler turns it into shuffles). */
static void wino_deint(int m, const opl_real *restrict src, int64_t n, opl_real *restrict ph, int64_t P) {
  if (m == 2) {
    opl_real *restrict d0 = ph, *restrict d1 = ph + P;
    for (int64_t q = 0; q < n; q++) d0[q] = src[2 * q], d1[q] = src[2 * q + 1];
  } else {
    opl_real *restrict d0 = ph, *restrict d1 = ph + P, *restrict d2 = ph + 2 * P, *restrict d3 = ph + 3 * P;
    for (int64_t q = 0; q < n; q++)
      d0[q] = src[4 * q], d1[q] = src[4 * q + 1], d2[q] = src[4 * q + 2], d3[q] = src[4 * q + 3];
  }
}

/* The inverse of wino_deint, accumulating or scaling: dst[m q + t] = beta dst[m q + t] + ph[t P + q]
 * (beta 0: a plain store), q < n, t < m. */
static void wino_int(int m, const opl_real *restrict ph, int64_t P, int64_t n, opl_real *restrict dst, opl_real beta) {
  if (m == 2) {
    const opl_real *restrict s0 = ph, *restrict s1 = ph + P;
    if (beta == 0)
      for (int64_t q = 0; q < n; q++) dst[2 * q] = s0[q], dst[2 * q + 1] = s1[q];
    else
      for (int64_t q = 0; q < n; q++)
        dst[2 * q] = beta * dst[2 * q] + s0[q], dst[2 * q + 1] = beta * dst[2 * q + 1] + s1[q];
  } else {
    const opl_real *restrict s0 = ph, *restrict s1 = ph + P, *restrict s2 = ph + 2 * P, *restrict s3 = ph + 3 * P;
    if (beta == 0)
      for (int64_t q = 0; q < n; q++)
        dst[4 * q] = s0[q], dst[4 * q + 1] = s1[q], dst[4 * q + 2] = s2[q], dst[4 * q + 3] = s3[q];
    else
      for (int64_t q = 0; q < n; q++)
        dst[4 * q] = beta * dst[4 * q] + s0[q], dst[4 * q + 1] = beta * dst[4 * q + 1] + s1[q],
        dst[4 * q + 2] = beta * dst[4 * q + 2] + s2[q], dst[4 * q + 3] = beta * dst[4 * q + 3] + s3[q];
  }
}

/* Phase the padded row of src (an input row [ue1], or NULL for a row of zeros) into
 * ph [m, P]: ph[t P + q] = src[pm1[m q + t]] (0 where the map is -1 or beyond the row). The
 * positions that read x - pad1 in range are copied without the map. */
static void wino_load_row(const wino_plan *p, const opl_real *src, opl_real *ph) {
  const int m = p->m;
  const int64_t P = p->P;
  if (!src) {
    memset(ph, 0, (size_t)(m * P) * sizeof *ph);
    return;
  }
  /* the edges through the map, the inner groups copied */
  for (int64_t i = 0; i < p->ne; i++) {
    const int64_t ix = p->esrc[i];
    ph[p->edst[i]] = ix >= 0 ? src[ix] : 0;
  }
  wino_deint(m, src + m * p->lo - p->pad1, p->hi - p->lo, ph + p->lo, P);
}

/* Add the phased padded row ph [m, P] into dst (a row of gu [ue1]): the adjoint of
 * wino_load_row (positions mapped to -1 or beyond the row are dropped). */
static void wino_store_row_add(const wino_plan *p, const opl_real *ph, opl_real *dst) {
  const int m = p->m;
  const int64_t P = p->P;
  for (int64_t i = 0; i < p->ne; i++) {
    const int64_t ix = p->esrc[i];
    if (ix >= 0) dst[ix] += ph[p->edst[i]];
  }
  wino_int(m, ph + p->lo, P, p->hi - p->lo, dst + m * p->lo - p->pad1, 1);
}

/* The tile rows [r0, *r1) of sample *n that the global tile rows [R, R1) start with. */
static void wino_segment(const wino_plan *p, int64_t R, int64_t R1, int64_t *n, int64_t *r0, int64_t *r1) {
  *n = R / p->T0, *r0 = R % p->T0;
  *r1 = *r0 + (R1 - R) < p->T0 ? *r0 + (R1 - R) : p->T0;
}

/* V = B^T d B for the tiles of the global tile rows R in [R0, R1) (sample R / T0, row R % T0),
 * every input channel. Each padded input row is phased once per channel and sample.
 * u   [N, cu, ue0 ue1]
 * V   [al al, cu, (R1 - R0) T1]
 * img [wino_img_rows, m, P] scratch */
static void wino_input(const wino_plan *p, const conv_geom *g, const opl_real *u, int64_t R0, int64_t R1,
                       opl_real *V, opl_real *img) {
  const int al = p->al, m = p->m;
  const int64_t T1 = p->T1, nc = (R1 - R0) * T1, I0 = g->ue[0], I1 = g->ue[1], P = p->P, rs = m * P;
  for (int64_t ch = 0; ch < g->cu; ch++)
    for (int64_t R = R0; R < R1;) {
      int64_t n, r0, r1;
      wino_segment(p, R, R1, &n, &r0, &r1);
      for (int64_t y = m * r0; y < m * (r1 - 1) + al; y++) {
        const int64_t sy = p->pm0[y];
        wino_load_row(p, sy < 0 ? NULL : u + ((n * g->cu + ch) * I0 + sy) * I1, img + (y - m * r0) * rs);
      }
      wino_in(m, T1, r1 - r0, img, rs, P, V + ch * nc + (R - R0) * T1, WPS(g->cu, nc));
      R += r1 - r0;
    }
}

/* v = beta v + (A u + bias[k] on output channel k, bias not NULL) over the tile rows [R0, R1).
 * u [N, cu, ivol], v [N, cv, ovol]; V, M, ph, tt: the thread's scratch */
static void wino_fwd_chunk(const wino_plan *p, const conv_geom *g, const opl_real *u, opl_real *v, opl_real beta,
                           const opl_real *bias, int64_t R0, int64_t R1, opl_real *V, opl_real *M, opl_real *ph,
                           opl_real *tt) {
  const int al = p->al, m = p->m;
  const int64_t T1 = p->T1, nc = (R1 - R0) * T1, O0 = g->ve[0], O1 = g->ve[1];
  const int64_t cu = g->cu, cv = g->cv;
  wino_input(p, g, u, R0, R1, V, ph);
  for (int xi = 0; xi < al * al; xi++)
    opl_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cv, (int)nc, (int)cu, 1, p->U + xi * cv * cu, (int)cu,
             V + xi * WPS(cu, nc), (int)nc, 0, M + xi * WPS(cv, nc), (int)nc);
  for (int64_t k = 0; k < cv; k++)
    for (int64_t R = R0; R < R1; R++) {
      const int64_t n = R / p->T0, r = R % p->T0;
      wino_out(m, T1, M + k * nc + (R - R0) * T1, WPS(cv, nc), tt);
      /* the bias added to the transformed tile row while it is in cache (adding it to the output
       * rows after their stores stalled on reading them back) */
      if (bias)
        for (int64_t i = 0; i < m * m * T1; i++) tt[i] += bias[k];
      for (int s = 0; s < m && m * r + s < O0; s++) {
        opl_real *restrict dst = v + ((n * cv + k) * O0 + m * r + s) * O1;
        /* whole tiles interleaved, then the columns of a partial last tile */
        const int64_t nf = O1 / m;
        wino_int(m, tt + s * m * T1, T1, nf, dst, beta);
        for (int t = 0; t < O1 - m * nf; t++) {
          const opl_real v = tt[(s * m + t) * T1 + nf];
          dst[m * nf + t] = beta == 0 ? v : beta * dst[m * nf + t] + v;
        }
      }
    }
}

/* Over the tile rows [R0, R1), from gv = the gradient on the v side: gU += gM V^T (when gU) and
 * gu += A^T gv (when gu), gM = A gv A^T.
 * u [N, cu, ivol] (read when gU), gv [N, cv, ovol], gu [N, cu, ivol] accumulated,
 * gU [al al, cv, cu] accumulated; V, M, ph, tt, row: the thread's scratch */
static void wino_bwd_chunk(const wino_plan *p, const conv_geom *g, const opl_real *u, const opl_real *gv,
                           opl_real *gu, opl_real *gU, int64_t R0, int64_t R1, opl_real *V, opl_real *M,
                           opl_real *ph, opl_real *tt) {
  const int al = p->al, m = p->m;
  const int64_t T1 = p->T1, nc = (R1 - R0) * T1, O0 = g->ve[0], O1 = g->ve[1], P = p->P;
  const int64_t I0 = g->ue[0], I1 = g->ue[1], cu = g->cu, cv = g->cv;
  const opl_real *rows[4];
  for (int s = 0; s < m; s++) rows[s] = ph + s * m * P;
  for (int64_t k = 0; k < cv; k++)
    for (int64_t R = R0; R < R1; R++) {
      const int64_t n = R / p->T0, r = R % p->T0;
      for (int s = 0; s < m; s++) {
        opl_real *restrict d = ph + s * m * P;
        if (m * r + s >= O0) {
          memset(d, 0, (size_t)(m * P) * sizeof *d);
          continue;
        }
        const opl_real *restrict src = gv + ((n * cv + k) * O0 + m * r + s) * O1;
        const int64_t nf = O1 / m;
        wino_deint(m, src, nf, d, P);
        for (int t = 0; t < m; t++) {
          d[t * P + nf] = m * nf + t < O1 ? src[m * nf + t] : 0;
          for (int64_t q = nf + 1; q < P; q++) d[t * P + q] = 0;
        }
      }
      wino_out_t(m, T1, rows, P, M + k * nc + (R - R0) * T1, WPS(cv, nc));
    }
  if (gU) {
    wino_input(p, g, u, R0, R1, V, ph);
    for (int xi = 0; xi < al * al; xi++)
      opl_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)cv, (int)cu, (int)nc, 1, M + xi * WPS(cv, nc), (int)nc,
               V + xi * WPS(cu, nc), (int)nc, 1, gU + xi * cv * cu, (int)cu);
  }
  if (!gu) return;
  for (int xi = 0; xi < al * al; xi++)
    opl_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cu, (int)nc, (int)cv, 1, p->U + xi * cv * cu, (int)cu,
             M + xi * WPS(cv, nc), (int)nc, 0, V + xi * WPS(cu, nc), (int)nc);
  /* per channel and sample: the taps of every tile added into the phased padded image, then
   * the image added into gu row by row */
  const int64_t rs = m * P;
  for (int64_t ch = 0; ch < cu; ch++)
    for (int64_t R = R0; R < R1;) {
      int64_t n, r0, r1;
      wino_segment(p, R, R1, &n, &r0, &r1);
      const int64_t nrow = m * (r1 - r0 - 1) + al;
      memset(ph, 0, (size_t)(nrow * rs) * sizeof *ph);
      for (int64_t r = r0; r < r1; r++) {
        wino_in_t(m, T1, V + ch * nc + (R + r - r0 - R0) * T1, WPS(cu, nc), tt);
        for (int i = 0; i < al; i++) {
          opl_real *acc = ph + (m * (r - r0) + i) * rs;
          for (int j = 0; j < al; j++) {
            opl_real *restrict d = acc + (j % m) * P + j / m;
            const opl_real *restrict src = tt + (i * al + j) * T1;
            for (int64_t q = 0; q < T1; q++) d[q] += src[q];
          }
        }
      }
      for (int64_t y = 0; y < nrow; y++) {
        const int64_t sy = p->pm0[m * r0 + y];
        if (sy >= 0) wino_store_row_add(p, ph + y * rs, gu + ((n * cu + ch) * I0 + sy) * I1);
      }
      R += r1 - r0;
    }
}

/* The tile rows of work item it: [*R0, *R1) over whole samples. */
static void wino_item(const wino_plan *p, const conv_geom *g, int64_t it, int64_t *R0, int64_t *R1) {
  const int64_t n0 = it * p->spc, n1 = n0 + p->spc < g->N ? n0 + p->spc : g->N;
  *R0 = n0 * p->T0, *R1 = n1 * p->T0;
}

/* v = beta v + (A u + bias, added to each transformed tile row, when not NULL) for the batch with
 * F(m x m, 3 x 3). Returns 0 when out of memory.
 * w [cv, cu, 3, 3], u [N, cu, ivol], v [N, cv, ovol], bias [cv] or NULL */
static int wino_forward(opl_ctx *c, const conv_geom *g, int m, const opl_real *w, const opl_real *u, opl_real *v,
                        opl_real beta, const opl_real *bias) {
  const int nt = sample_threads(g);
  const opl_arena_mark_t mark = opl_arena_mark(c);
  wino_plan p;
  if (!wino_prepare(c, g, m, w, nt, &p)) return 0;
  const int64_t per = wino_scratch(&p, g), al2 = p.al * p.al;
  opl_real *scr = opl_arena_alloc(c, (size_t)(nt * per) * sizeof *scr);
  if (!scr) return 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    opl_real *V = scr + thread_id() * per, *M = V + al2 * WPS(g->cu, p.chunk), *ph = M + al2 * WPS(g->cv, p.chunk);
    opl_real *tt = ph + wino_img_rows(&p) * p.m * p.P;
    if (nt > 1) wino_filter_blocks(&p, g, w);
#pragma omp for schedule(static)
    for (int64_t it = 0; it < p.nitems; it++) {
      int64_t R0, R1;
      wino_item(&p, g, it, &R0, &R1);
      for (int64_t a = R0; a < R1; a += p.rpc)
        wino_fwd_chunk(&p, g, u, v, beta, bias, a, a + p.rpc < R1 ? a + p.rpc : R1, V, M, ph, tt);
    }
  }
  opl_arena_rewind(c, mark);
  return 1;
}

/* From gv = the gradient on the v side of A: gu += A^T gv (gu not NULL; needs w) and
 * gw += sum_n gv_n im2col(u_n)^T (gw not NULL; needs u), with F(m x m, 3 x 3), in one pass over
 * the tiles. Returns 0 when out of memory.
 * w [cv, cu, 3, 3], u [N, cu, ivol], gv [N, cv, ovol], gu [N, cu, ivol], gw [cv, cu, 3, 3] */
static int wino_backward(opl_ctx *c, const conv_geom *g, int m, const opl_real *w, const opl_real *u,
                         const opl_real *gv, opl_real *gu, opl_real *gw) {
  const int nt = sample_threads(g);
  const opl_arena_mark_t mark = opl_arena_mark(c);
  wino_plan p;
  if (!wino_prepare(c, g, m, gu ? w : NULL, nt, &p)) return 0;
  const int64_t per = wino_scratch(&p, g), al2 = p.al * p.al, nu = al2 * g->cv * g->cu;
  opl_real *scr = opl_arena_alloc(c, (size_t)(nt * per) * sizeof *scr);
  opl_real *gU = gw ? opl_arena_calloc(c, (size_t)(nt * nu) * sizeof *gU) : NULL;
  if (!scr || (gw && !gU)) return 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int id = thread_id();
    opl_real *V = scr + id * per, *M = V + al2 * WPS(g->cu, p.chunk), *ph = M + al2 * WPS(g->cv, p.chunk);
    opl_real *tt = ph + wino_img_rows(&p) * p.m * p.P, *mygU = gU ? gU + id * nu : NULL;
    if (nt > 1 && gu) wino_filter_blocks(&p, g, w);
#pragma omp for schedule(static)
    for (int64_t it = 0; it < p.nitems; it++) {
      int64_t R0, R1;
      wino_item(&p, g, it, &R0, &R1);
      for (int64_t a = R0; a < R1; a += p.rpc)
        wino_bwd_chunk(&p, g, u, gv, gu, mygU, a, a + p.rpc < R1 ? a + p.rpc : R1, V, M, ph, tt);
    }
  }
  if (gw) {
    /* the partials in thread order, then gg = G^T gU G, as G^T (.) then (.) G; parallel over the filters */
    for (int t = 1; t < nt; t++) opl_acc(gU, gU + t * nu, nu);
    const wino_alg *alg = m == 2 ? &wino_f2 : &wino_f4;
    const int64_t cc = g->cv * g->cu, nb = (cc + 63) / 64;
    const int avx2 = WINO_AVX2;
#pragma omp parallel for if (cc * al2 > OPL_PAR_MIN) schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
      const int64_t k0 = blk * 64, k1 = k0 + 64 < cc ? k0 + 64 : cc;
      (avx2 ? wino_filters_t_avx2 : wino_filters_t)(alg, gU, cc, k0, k1, gw);
    }
  }
  opl_arena_rewind(c, mark);
  return 1;
}

/* v = beta v + A u for the batch, then + bias on each output channel when bias is not NULL.
 * Returns 0 when out of memory.
 * w [cv, cug K]
 * u [N, cu, ivol]
 * v [N, cv, ovol]
 * bias [cv] or NULL */
static void bias_add(int64_t N, int64_t C, int64_t S, opl_real *y, const opl_real *b);
static int conv_apply(opl_ctx *c, const conv_geom *g, const opl_real *w, const opl_real *u,
                      opl_real *v, opl_real beta, const opl_real *bias) {
  const int wm = g->wino;
  if (wm) return wino_forward(c, g, wm, w, u, v, beta, bias);
  int nt = sample_threads(g);
  const opl_arena_mark_t mark = opl_arena_mark(c);
  opl_real *col = col_scratch(c, g, nt);
  if (!col) return 0;
  const int64_t cs = g->pointwise ? 0 : g->rows * slab_width(g);
  int par = nt == 1 && cs > OPL_PAR_MIN;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    opl_real *mycol = col + thread_id() * cs;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g->N; n++)
      apply_sample(g, w, u + n * g->cu * g->ivol, v + n * g->cv * g->ovol, beta, mycol, par);
  }
  opl_arena_rewind(c, mark);
  if (bias) bias_add(g->N, g->cv, g->ovol, v, bias);
  return 1;
}

/* u += A^T v for the batch. Returns 0 when out of memory.
 * w [cv, cug K]
 * v [N, cv, ovol]
 * u [N, cu, ivol], accumulated */
static int conv_apply_t(opl_ctx *c, const conv_geom *g, const opl_real *w, const opl_real *v,
                        opl_real *u) {
  const int wm = g->wino;
  if (wm) return wino_backward(c, g, wm, w, NULL, v, u, NULL);
  int nt = sample_threads(g);
  const opl_arena_mark_t mark = opl_arena_mark(c);
  opl_real *col = col_scratch(c, g, nt);
  if (!col) return 0;
  const int64_t cs = g->pointwise ? 0 : g->rows * slab_width(g);
  int par = nt == 1 && cs > OPL_PAR_MIN;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    opl_real *mycol = col + thread_id() * cs;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g->N; n++)
      apply_t_sample(g, w, v + n * g->cv * g->ovol, u + n * g->cu * g->ivol, mycol, par);
  }
  opl_arena_rewind(c, mark);
  return 1;
}

/* gw += sum_n v_n im2col(u_n)^T. With several threads each accumulates its samples into a
 * zeroed partial, and the partials are added to gw in thread order. Returns 0 when out of
 * memory.
 * v  [N, cv, ovol]
 * u  [N, cu, ivol]
 * gw [cv, cug K], accumulated */
static int conv_wgrad(opl_ctx *c, const conv_geom *g, const opl_real *v, const opl_real *u,
                      opl_real *gw) {
  const int wm = g->wino;
  if (wm) return wino_backward(c, g, wm, NULL, u, v, NULL, gw);
  int nt = sample_threads(g);
  const opl_arena_mark_t mark = opl_arena_mark(c);
  opl_real *col = col_scratch(c, g, nt);
  if (!col) return 0;
  const int64_t nw = g->cv * g->cug * g->kvol;
  const int64_t cs = g->pointwise ? 0 : g->rows * slab_width(g);
  if (nt == 1) {
    int par = cs > OPL_PAR_MIN;
    for (int64_t n = 0; n < g->N; n++)
      wgrad_sample(g, v + n * g->cv * g->ovol, u + n * g->cu * g->ivol, gw, col, par);
    opl_arena_rewind(c, mark);
    return 1;
  }
  opl_real *part = opl_arena_calloc(c, (size_t)nt * (size_t)nw * sizeof *part);
  if (!part) return 0;
#pragma omp parallel num_threads(nt)
  {
    int id = thread_id();
    opl_real *mycol = col + id * cs, *mypart = part + id * nw;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g->N; n++)
      wgrad_sample(g, v + n * g->cv * g->ovol, u + n * g->cu * g->ivol, mypart, mycol, 0);
  }
  for (int t = 0; t < nt; t++) opl_acc(gw, part + t * nw, nw);
  opl_arena_rewind(c, mark);
  return 1;
}

/* ------------------------------------------------------------ bias */

/* y[n, c, s] += b[c].
 * y [N, C, S]
 * b [C] */
static void bias_add(int64_t N, int64_t C, int64_t S, opl_real *y, const opl_real *b) {
#pragma omp parallel for collapse(2) if (N * C * S > OPL_PAR_MIN) schedule(static)
  for (int64_t n = 0; n < N; n++)
    for (int64_t ch = 0; ch < C; ch++) {
      opl_real *ys = y + (n * C + ch) * S, bc = b[ch];
      for (int64_t s = 0; s < S; s++) ys[s] += bc;
    }
}

/* gb[c] += sum_{n, s} gy[n, c, s] (double accumulation).
 * gy [N, C, S]
 * gb [C], accumulated */
static void bias_grad(int64_t N, int64_t C, int64_t S, const opl_real *gy, opl_real *gb) {
#pragma omp parallel for if (N * C * S > OPL_PAR_MIN) schedule(static)
  for (int64_t ch = 0; ch < C; ch++) {
    double s = 0;
    for (int64_t n = 0; n < N; n++) s += opl_dsum(gy + (n * C + ch) * S, S);
    gb[ch] += (opl_real)s;
  }
}

/* ------------------------------------------------------------ options and checks */

typedef struct conv_args {
  int d;                               /* spatial rank */
  int64_t st[3], p[3], dl[3], op[3];   /* padded to 3 axes with 1, 0, 1, 0 */
  int64_t groups;
  opl_pad_mode mode;
} conv_args;

/* Validate opts (NULL: defaults) for an op on x, filling a; records OPL_ERR_ARG and returns
 * 0 on a negative or unknown option. */
static int parse_opts(opl_ctx *c, const char *op, const opl_conv_opts *opts, int d,
                      int transpose, conv_args *a) {
  static const opl_conv_opts defaults;
  if (!opts) opts = &defaults;
  a->d = d;
  for (int i = 0; i < 3; i++) {
    int live = i < d;
    int st = opts->stride[i], p = opts->padding[i], dl = opts->dilation[i];
    int opd = opts->output_padding[i];
    if (live && (st < 0 || p < 0 || dl < 0 || (transpose && opd < 0))) {
      opl_ctx_error(c, OPL_ERR_ARG,
                    "%s: axis %d: stride %d, padding %d, dilation %d%s must not be negative", op,
                    i, st, p, dl, transpose ? " and output_padding" : "");
      return 0;
    }
    a->st[i] = live && st > 0 ? st : 1;
    a->p[i] = live ? p : 0;
    a->dl[i] = live && dl > 0 ? dl : 1;
    a->op[i] = live && transpose ? opd : 0;
  }
  if (opts->groups < 0) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: groups %d must not be negative", op, opts->groups);
    return 0;
  }
  a->groups = opts->groups > 0 ? opts->groups : 1;
  a->mode = opts->pad_mode;
  if (a->mode != OPL_PAD_ZERO && a->mode != OPL_PAD_CIRCULAR && a->mode != OPL_PAD_REPLICATE &&
      a->mode != OPL_PAD_REFLECT) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: unknown padding mode %d", op, (int)a->mode);
    return 0;
  }
  if (transpose && a->mode != OPL_PAD_ZERO) {
    opl_ctx_error(c, OPL_ERR_ARG, "%s: only zero padding is supported (got %s)", op,
                  a->mode == OPL_PAD_CIRCULAR ? "circular" : a->mode == OPL_PAD_REPLICATE ? "replicate" : "reflect");
    return 0;
  }
  return 1;
}

/* Common checks of x, w, b: real tensors, x of rank 3..5, w of x's rank, b of rank 1 with
 * nb entries (checked later by the caller, which knows nb). Returns d or 0. */
static int check_xw(opl_ctx *c, const char *op, const opl_tensor *x, const opl_tensor *w,
                    const opl_tensor *b) {
  if (!opl_check_input(c, op, "x", x, -1, 0) || !opl_check_input(c, op, "w", w, -1, 0))
    return 0;
  if (b && !opl_check_input(c, op, "b", b, 1, 0)) return 0;
  char b1[96], b2[96];
  if (x->rank < 3 || x->rank > 5) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: x %s must have rank 3, 4 or 5 (N, C, *S)", op,
                  opl_shape_str(b1, x->rank, x->shape));
    return 0;
  }
  if (w->rank != x->rank) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: w %s must have the rank %d of x %s", op,
                  opl_shape_str(b1, w->rank, w->shape), x->rank,
                  opl_shape_str(b2, x->rank, x->shape));
    return 0;
  }
  return x->rank - 2;
}

/* Check that b (if not NULL) has co entries; records OPL_ERR_SHAPE naming b and w
 * otherwise. Returns 1 when fine. */
static int check_bias(opl_ctx *c, const char *op, const opl_tensor *b, int64_t co,
                      const opl_tensor *w) {
  if (b && b->shape[0] != co) {
    char b1[96], b2[96];
    opl_ctx_error(c, OPL_ERR_SHAPE, "%s: bias %s must have %lld entries, one per output "
                  "channel of w %s", op, opl_shape_str(b1, b->rank, b->shape), (long long)co,
                  opl_shape_str(b2, w->rank, w->shape));
    return 0;
  }
  return 1;
}

/* Saved state of a node: the geometry (with its tables, also in the arena). */
typedef struct conv_saved {
  conv_geom g;
} conv_saved;

/* ------------------------------------------------------------ opl_conv */

/* Backward of opl_conv: gb += sums of gy, gw += gy im2col(x)^T, gx += A^T gy.
 * Inputs: x [N, ci, S], w [co, ci/G, K], b [co]; out grad gy [N, co, S']. */
static void conv_bw(opl_node *nd) {
  const conv_saved *s = nd->saved;
  const opl_tensor *x = nd->in[0], *w = nd->in[1];
  const opl_real *gy = nd->out->grad;
  opl_real *gx = opl_node_grad(nd, 0), *gw = opl_node_grad(nd, 1);
  opl_real *gb = nd->nin > 2 ? opl_node_grad(nd, 2) : NULL;
  if (gb) bias_grad(s->g.N, s->g.cv, s->g.ovol, gy, gb);
  const int wm = s->g.wino;
  if (wm) { /* both gradients in one pass over the tiles */
    if (gw || gx) wino_backward(nd->ctx, &s->g, wm, w->data, x->data, gy, gx, gw);
    return;
  }
  if (gw && !conv_wgrad(nd->ctx, &s->g, gy, x->data, gw)) return;
  if (gx) conv_apply_t(nd->ctx, &s->g, w->data, gy, gx);
}

/* See ops.h. opts->output_padding is ignored (transposed convolution only). */
opl_tensor *opl_conv(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b,
                     const opl_conv_opts *opts) {
  const char *op = "conv";
  int d = check_xw(c, op, x, w, b);
  conv_args a;
  if (!d || !parse_opts(c, op, opts, d, 0, &a)) return NULL;
  char b1[96], b2[96];
  int64_t ci = x->shape[1], co = w->shape[0], G = a.groups;
  if (ci % G || co % G) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "conv: groups %lld must divide the input channels of x %s "
                  "and the output channels of w %s", (long long)G,
                  opl_shape_str(b1, x->rank, x->shape), opl_shape_str(b2, w->rank, w->shape));
    return NULL;
  }
  if (w->shape[1] != ci / G) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "conv: channel mismatch: w %s needs %lld input channels "
                  "per group, x %s has %lld in %lld group(s)",
                  opl_shape_str(b1, w->rank, w->shape), (long long)w->shape[1],
                  opl_shape_str(b2, x->rank, x->shape), (long long)ci, (long long)G);
    return NULL;
  }
  if (!check_bias(c, op, b, co, w)) return NULL;
  conv_geom g = {.N = x->shape[0], .cu = ci, .cv = co, .groups = G, .cug = ci / G,
                 .cvg = co / G};
  int64_t yshape[5] = {x->shape[0], co};
  for (int i = 0; i < 3; i++) {
    g.ue[i] = i < d ? x->shape[2 + i] : 1;
    g.ke[i] = i < d ? w->shape[2 + i] : 1;
    int64_t span = a.dl[i] * (g.ke[i] - 1) + 1, padded = g.ue[i] + 2 * a.p[i];
    if (span > padded) {
      opl_ctx_error(c, OPL_ERR_SHAPE, "conv: kernel of w %s (dilated extent %lld on axis %d) "
                    "is larger than the padded input %lld of x %s (padding %lld)",
                    opl_shape_str(b1, w->rank, w->shape), (long long)span, i,
                    (long long)padded, opl_shape_str(b2, x->rank, x->shape), (long long)a.p[i]);
      return NULL;
    }
    if (a.mode == OPL_PAD_REFLECT && a.p[i] >= g.ue[i]) {
      opl_ctx_error(c, OPL_ERR_SHAPE, "conv: reflect padding %lld on axis %d must be smaller than the extent of x %s",
                    (long long)a.p[i], i, opl_shape_str(b2, x->rank, x->shape));
      return NULL;
    }
    g.ve[i] = (padded - span) / a.st[i] + 1;
    if (i < d) yshape[2 + i] = g.ve[i];
  }
  conv_saved *s = opl_arena_alloc(c, sizeof *s);
  if (!s || !geom_tables(c, &g, a.st, a.p, a.dl, a.mode)) return NULL;
  g.wino = wino_pick(&g);
  s->g = g;
  opl_tensor *y = opl_new(c, x->rank, yshape);
  if (!y) return NULL;
  if (!conv_apply(c, &s->g, w->data, x->data, y->data, 0, b ? b->data : NULL)) return NULL;
  opl_tensor *in[3] = {x, w, b};
  opl_node *nd = opl_record_saves(c, op, conv_bw, y, b ? 3 : 2, in, OPL_SAVES_IN(0) | OPL_SAVES_IN(1));
  if (nd) nd->saved = s;
  return opl_ctx_status(c) == OPL_OK ? y : NULL;
}

/* ------------------------------------------------------------ opl_conv_transpose */

/* Backward of opl_conv_transpose: gb += sums of gy, gw += x im2col(gy)^T, gx += A gy.
 * Inputs: x [N, ci, S], w [ci, co/G, K], b [co]; out grad gy [N, co, S']. */
static void conv_t_bw(opl_node *nd) {
  const conv_saved *s = nd->saved;
  const opl_tensor *x = nd->in[0], *w = nd->in[1];
  const opl_real *gy = nd->out->grad;
  opl_real *gx = opl_node_grad(nd, 0), *gw = opl_node_grad(nd, 1);
  opl_real *gb = nd->nin > 2 ? opl_node_grad(nd, 2) : NULL;
  /* Here the u side is y and the v side is x. */
  if (gb) bias_grad(s->g.N, s->g.cu, s->g.ivol, gy, gb);
  if (gw && !conv_wgrad(nd->ctx, &s->g, x->data, gy, gw)) return;
  if (gx) conv_apply(nd->ctx, &s->g, w->data, gy, gx, 1, NULL);
}

/* See ops.h. Requires pad_mode zeros and output_padding < stride or < dilation per axis. */
opl_tensor *opl_conv_transpose(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b,
                               const opl_conv_opts *opts) {
  const char *op = "conv_transpose";
  int d = check_xw(c, op, x, w, b);
  conv_args a;
  if (!d || !parse_opts(c, op, opts, d, 1, &a)) return NULL;
  char b1[96], b2[96];
  int64_t ci = x->shape[1], G = a.groups;
  if (ci % G) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "conv_transpose: groups %lld must divide the input "
                  "channels of x %s", (long long)G, opl_shape_str(b1, x->rank, x->shape));
    return NULL;
  }
  if (w->shape[0] != ci) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "conv_transpose: channel mismatch: w %s needs %lld input "
                  "channels, x %s has %lld", opl_shape_str(b1, w->rank, w->shape),
                  (long long)w->shape[0], opl_shape_str(b2, x->rank, x->shape), (long long)ci);
    return NULL;
  }
  int64_t co = w->shape[1] * G;
  if (!check_bias(c, op, b, co, w)) return NULL;
  /* The u side of A is the output y (co channels), the v side is x (ci channels). */
  conv_geom g = {.N = x->shape[0], .cu = co, .cv = ci, .groups = G, .cug = co / G,
                 .cvg = ci / G};
  int64_t yshape[5] = {x->shape[0], co};
  for (int i = 0; i < 3; i++) {
    if (i < d && a.op[i] >= a.st[i] && a.op[i] >= a.dl[i]) {
      opl_ctx_error(c, OPL_ERR_ARG, "conv_transpose: output_padding %lld on axis %d must be "
                    "smaller than the stride %lld or the dilation %lld", (long long)a.op[i], i,
                    (long long)a.st[i], (long long)a.dl[i]);
      return NULL;
    }
    g.ve[i] = i < d ? x->shape[2 + i] : 1;
    g.ke[i] = i < d ? w->shape[2 + i] : 1;
    g.ue[i] = (g.ve[i] - 1) * a.st[i] - 2 * a.p[i] + a.dl[i] * (g.ke[i] - 1) + a.op[i] + 1;
    if (g.ue[i] < 1) {
      opl_ctx_error(c, OPL_ERR_SHAPE, "conv_transpose: x %s with w %s, padding %lld and "
                    "stride %lld gives a non-positive output extent %lld on axis %d",
                    opl_shape_str(b1, x->rank, x->shape), opl_shape_str(b2, w->rank, w->shape),
                    (long long)a.p[i], (long long)a.st[i], (long long)g.ue[i], i);
      return NULL;
    }
    if (i < d) yshape[2 + i] = g.ue[i];
  }
  conv_saved *s = opl_arena_alloc(c, sizeof *s);
  if (!s || !geom_tables(c, &g, a.st, a.p, a.dl, OPL_PAD_ZERO)) return NULL;
  g.wino = wino_pick(&g);
  s->g = g;
  opl_tensor *y = opl_zeros(c, x->rank, yshape);
  if (!y) return NULL;
  if (!conv_apply_t(c, &s->g, w->data, x->data, y->data)) return NULL;
  if (b) bias_add(g.N, co, g.ivol, y->data, b->data);
  opl_tensor *in[3] = {x, w, b};
  opl_node *nd = opl_record_saves(c, op, conv_t_bw, y, b ? 3 : 2, in, OPL_SAVES_IN(0) | OPL_SAVES_IN(1));
  if (nd) nd->saved = s;
  return opl_ctx_status(c) == OPL_OK ? y : NULL;
}
