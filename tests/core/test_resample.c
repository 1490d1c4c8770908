/* Resampling ops (avgpool, interp nearest / linear / cubic): gradient checks (table), adjoint
 * checks (all are linear), forward values against naive loops written from the PyTorch formulas,
 * hand-computed PyTorch values and values printed by torch 1.13 (bicubic), and bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"

/* ------------------------------------------------------------ op wrappers for the table */

typedef struct pool_opt { int kernel[3], stride[3]; } pool_opt;
static opl_tensor *f_pool(opl_ctx *c, opl_tensor **x, const void *o) {
  const pool_opt *p = o;
  return opl_avgpool(c, x[0], p->kernel, p->stride);
}
typedef struct interp_opt { int64_t size[3]; opl_interp_mode mode; } interp_opt;
static opl_tensor *f_interp(opl_ctx *c, opl_tensor **x, const void *o) {
  const interp_opt *p = o;
  return opl_interp(c, x[0], p->size, p->mode);
}

static const pool_opt pool1 = {{2}, {0}}, pool1s = {{3}, {2}}, pool1g = {{2}, {3}},
                      pool2 = {{2, 2}, {0, 0}}, pool2s = {{3, 2}, {1, 2}}, pool3 = {{2, 2, 2}, {0}},
                      pool3s = {{3, 1, 2}, {2, 1, 1}}, pool2big = {{4, 4}, {0, 0}};
#define NEAR OPL_INTERP_NEAREST
#define LIN OPL_INTERP_LINEAR
#define CUB OPL_INTERP_CUBIC
static const interp_opt in1u = {{11}, LIN}, in1d = {{4}, LIN}, in1x = {{13}, LIN},
                        in2u = {{7, 9}, LIN}, in2m = {{3, 8}, LIN}, in3 = {{5, 3, 7}, LIN},
                        nn1u = {{11}, NEAR}, nn1d = {{4}, NEAR}, nn2 = {{7, 3}, NEAR},
                        nn3 = {{5, 6, 2}, NEAR}, in1same = {{6}, LIN}, in2big = {{96, 80}, LIN},
                        nn2big = {{96, 80}, NEAR}, cu2up = {{8, 10}, CUB}, cu2m = {{3, 7}, CUB},
                        cu1u = {{11}, CUB}, cu1d = {{3}, CUB}, cu3 = {{5, 3, 8}, CUB},
                        cu2one = {{4, 2}, CUB}, cu2big = {{66, 80}, CUB},
                        cu3wide = {{3, 20, 30}, CUB}, /* plane 65 x 70 > 4096: the direct kernels */
                        cu2x1 = {{6, 2}, CUB}, cu2x3 = {{4, 6}, CUB}, cu2x4 = {{10, 8}, CUB},
                        cu2x64 = {{32, 128}, CUB}; /* the doubling rows of row2x_check, widths 1, 3, 4, 64 */

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
/* Rows with ~4e4 outputs: the finite difference of sum(r * y) over that many terms carries
 * ~1e-12 of rounding noise, about 1e-6 relative in the double build, so those rows get a
 * looser double tolerance (the single build keeps its default). */
#ifdef OPL_DOUBLE
#define BIG_RTOL 2e-5
#else
#define BIG_RTOL 0
#endif

static const gc_case rows[] = {
    {"avgpool 1-D k2", f_pool, &pool1, 1, {IN(3, 2, 3, 9)}},
    {"avgpool 1-D k3 s2 (overlap)", f_pool, &pool1s, 1, {IN(3, 2, 3, 10)}},
    {"avgpool 1-D k2 s3 (gaps)", f_pool, &pool1g, 1, {IN(3, 2, 2, 11)}},
    {"avgpool 2-D k2", f_pool, &pool2, 1, {IN(4, 2, 3, 5, 7)}},
    {"avgpool 2-D k(3,2) s(1,2)", f_pool, &pool2s, 1, {IN(4, 2, 2, 6, 7)}},
    {"avgpool 3-D k2", f_pool, &pool3, 1, {IN(5, 2, 2, 5, 4, 5)}},
    {"avgpool 3-D k(3,1,2) s(2,1,1)", f_pool, &pool3s, 1, {IN(5, 1, 3, 7, 3, 4)}},
    {"avgpool 2-D large (parallel)", f_pool, &pool2big, 1, {IN(4, 4, 8, 64, 68)}, BIG_RTOL},
    {"interp linear 1-D up 5->11", f_interp, &in1u, 1, {IN(3, 2, 3, 5)}},
    {"interp linear 1-D down 9->4", f_interp, &in1d, 1, {IN(3, 2, 3, 9)}},
    {"interp linear 1-D 4->13", f_interp, &in1x, 1, {IN(3, 1, 2, 4)}},
    {"interp linear 1-D same size", f_interp, &in1same, 1, {IN(3, 2, 2, 6)}},
    {"bilinear 2-D up (4,5)->(7,9)", f_interp, &in2u, 1, {IN(4, 2, 2, 4, 5)}},
    {"bilinear 2-D mixed (6,3)->(3,8)", f_interp, &in2m, 1, {IN(4, 2, 3, 6, 3)}},
    {"trilinear 3-D (3,4,5)->(5,3,7)", f_interp, &in3, 1, {IN(5, 2, 2, 3, 4, 5)}},
    {"interp nearest 1-D up 5->11", f_interp, &nn1u, 1, {IN(3, 2, 3, 5)}},
    {"interp nearest 1-D down 9->4", f_interp, &nn1d, 1, {IN(3, 2, 3, 9)}},
    {"interp nearest 2-D (4,5)->(7,3)", f_interp, &nn2, 1, {IN(4, 2, 2, 4, 5)}},
    {"interp nearest 3-D (3,4,5)->(5,6,2)", f_interp, &nn3, 1, {IN(5, 2, 2, 3, 4, 5)}},
    {"bilinear large (parallel)", f_interp, &in2big, 1, {IN(4, 4, 8, 33, 40)}, BIG_RTOL},
    {"bicubic 2-D x2 (4,5)->(8,10)", f_interp, &cu2up, 1, {IN(4, 2, 2, 4, 5)}},
    {"bicubic 2-D mixed (4,5)->(3,7)", f_interp, &cu2m, 1, {IN(4, 2, 3, 4, 5)}},
    {"bicubic 2-D from 1 and 2 points (1,2)->(4,2)", f_interp, &cu2one, 1, {IN(4, 2, 2, 1, 2)}},
    {"cubic 1-D up 5->11", f_interp, &cu1u, 1, {IN(3, 2, 3, 5)}},
    {"cubic 1-D down 9->3", f_interp, &cu1d, 1, {IN(3, 2, 3, 9)}},
    {"cubic 3-D (3,4,5)->(5,3,8)", f_interp, &cu3, 1, {IN(5, 1, 2, 3, 4, 5)}},
    {"bicubic large (parallel)", f_interp, &cu2big, 1, {IN(4, 4, 8, 33, 40)}, BIG_RTOL},
    {"cubic 3-D, plane wider than 4096 (direct kernels)", f_interp, &cu3wide, 1, {IN(5, 1, 1, 2, 65, 70)}},
    {"bicubic x2 of width 1 (3,1)->(6,2)", f_interp, &cu2x1, 1, {IN(4, 2, 2, 3, 1)}},
    {"bicubic x2 of width 3 (2,3)->(4,6)", f_interp, &cu2x3, 1, {IN(4, 1, 2, 2, 3)}},
    {"bicubic x2 of width 4 (5,4)->(10,8)", f_interp, &cu2x4, 1, {IN(4, 2, 1, 5, 4)}},
    {"bicubic x2 of width 64 (16,64)->(32,128)", f_interp, &cu2x64, 1, {IN(4, 1, 2, 16, 64)}, BIG_RTOL},
};

static const gc_case adjoint_rows[] = {
    {"avgpool 1-D k3 s2", f_pool, &pool1s, 1, {IN(3, 2, 3, 10)}},
    {"avgpool 2-D k(3,2) s(1,2)", f_pool, &pool2s, 1, {IN(4, 2, 2, 6, 7)}},
    {"avgpool 3-D k(3,1,2) s(2,1,1)", f_pool, &pool3s, 1, {IN(5, 1, 3, 7, 3, 4)}},
    {"avgpool 2-D large", f_pool, &pool2big, 1, {IN(4, 4, 8, 64, 68)}},
    {"interp linear 1-D up", f_interp, &in1u, 1, {IN(3, 2, 3, 5)}},
    {"interp linear 1-D down", f_interp, &in1d, 1, {IN(3, 2, 3, 9)}},
    {"bilinear 2-D mixed", f_interp, &in2m, 1, {IN(4, 2, 3, 6, 3)}},
    {"trilinear 3-D", f_interp, &in3, 1, {IN(5, 2, 2, 3, 4, 5)}},
    {"interp nearest 1-D down", f_interp, &nn1d, 1, {IN(3, 2, 3, 9)}},
    {"interp nearest 2-D", f_interp, &nn2, 1, {IN(4, 2, 2, 4, 5)}},
    {"interp nearest 3-D", f_interp, &nn3, 1, {IN(5, 2, 2, 3, 4, 5)}},
    {"bilinear large", f_interp, &in2big, 1, {IN(4, 4, 8, 33, 40)}},
    {"nearest large", f_interp, &nn2big, 1, {IN(4, 4, 8, 33, 40)}},
    {"bicubic 2-D x2", f_interp, &cu2up, 1, {IN(4, 2, 2, 4, 5)}},
    {"bicubic 2-D mixed", f_interp, &cu2m, 1, {IN(4, 2, 3, 4, 5)}},
    {"bicubic 2-D from 1 and 2 points", f_interp, &cu2one, 1, {IN(4, 2, 2, 1, 2)}},
    {"cubic 1-D down", f_interp, &cu1d, 1, {IN(3, 2, 3, 9)}},
    {"cubic 3-D", f_interp, &cu3, 1, {IN(5, 1, 2, 3, 4, 5)}},
    {"bicubic large", f_interp, &cu2big, 1, {IN(4, 4, 8, 33, 40)}},
    {"cubic 3-D, plane wider than 4096", f_interp, &cu3wide, 1, {IN(5, 1, 1, 2, 65, 70)}},
    {"bicubic x2 of width 1", f_interp, &cu2x1, 1, {IN(4, 2, 2, 3, 1)}},
    {"bicubic x2 of width 3", f_interp, &cu2x3, 1, {IN(4, 1, 2, 2, 3)}},
    {"bicubic x2 of width 4", f_interp, &cu2x4, 1, {IN(4, 2, 1, 5, 4)}},
    {"bicubic x2 of width 64", f_interp, &cu2x64, 1, {IN(4, 4, 8, 16, 64)}},
};

/* ------------------------------------------------------------ helpers */

static uint64_t rng = 7;

static void fill(opl_tensor *t) {
  for (int64_t i = 0; i < opl_nreal(t); i++) t->data[i] = (opl_real)(2 * gc_uniform(&rng) - 1);
}

static double *to_double(const opl_tensor *t) {
  double *d = malloc((size_t)opl_nreal(t) * sizeof *d);
  for (int64_t i = 0; i < opl_nreal(t); i++) d[i] = t->data[i];
  return d;
}

#ifdef OPL_DOUBLE
#define TOL 1e-12
#else
#define TOL 2e-6
#endif

/* ------------------------------------------------------------ hand-computed PyTorch values */

static void test_interp_known(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x4 = opl_new(c, OPL_DIMS(1, 1, 4));
  for (int i = 0; i < 4; i++) x4->data[i] = (opl_real)(i + 1);
  opl_tensor *y = opl_interp(c, x4, (const int64_t[]){8}, OPL_INTERP_LINEAR);
  double want8[8] = {1.0, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4.0};
  ok(y && y->rank == 3 && y->shape[2] == 8, "linear [1,2,3,4] -> 8 points: shape (1,1,8)");
  if (y) {
    double *got = to_double(y);
    arrays_close(8, got, want8, TOL, TOL, "linear [1,2,3,4] -> 8 (align_corners=False)");
    free(got);
  }
  opl_tensor *x3 = opl_new(c, OPL_DIMS(1, 1, 3));
  for (int i = 0; i < 3; i++) x3->data[i] = (opl_real)(i + 1);
  y = opl_interp(c, x3, (const int64_t[]){5}, OPL_INTERP_NEAREST);
  double want5[5] = {1, 1, 2, 2, 3};
  if (y) {
    double *got = to_double(y);
    arrays_close(5, got, want5, 0, 0, "nearest [1,2,3] -> 5 = [1,1,2,2,3]");
    free(got);
  } else {
    ok(0, "nearest [1,2,3] -> 5");
  }
  /* Downsampling [0,1,2,3,4] to 3: nearest picks floor(j 5/3) = 0, 1, 3; linear samples
   * src = (j + 0.5) 5/3 - 0.5 = 1/3, 2, 11/3. */
  opl_tensor *x5 = opl_new(c, OPL_DIMS(1, 1, 5));
  for (int i = 0; i < 5; i++) x5->data[i] = (opl_real)i;
  opl_tensor *yn = opl_interp(c, x5, (const int64_t[]){3}, OPL_INTERP_NEAREST);
  opl_tensor *yl = opl_interp(c, x5, (const int64_t[]){3}, OPL_INTERP_LINEAR);
  double wn[3] = {0, 1, 3}, wl[3] = {1.0 / 3, 2, 11.0 / 3};
  if (yn && yl) {
    double *gn = to_double(yn), *gl = to_double(yl);
    arrays_close(3, gn, wn, 0, 0, "nearest [0..4] -> 3 = [0,1,3]");
    arrays_close(3, gl, wl, TOL, TOL, "linear [0..4] -> 3 = [1/3, 2, 11/3]");
    free(gn), free(gl);
  }
  /* Bilinear [[1,2],[3,4]] -> 4x4 (PyTorch, align_corners=False). */
  opl_tensor *x22 = opl_new(c, OPL_DIMS(1, 1, 2, 2));
  for (int i = 0; i < 4; i++) x22->data[i] = (opl_real)(i + 1);
  opl_tensor *y44 = opl_interp(c, x22, (const int64_t[]){4, 4}, OPL_INTERP_LINEAR);
  double w44[16] = {1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5,
                    2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0};
  if (y44) {
    double *got = to_double(y44);
    arrays_close(16, got, w44, TOL, TOL, "bilinear [[1,2],[3,4]] -> 4x4");
    free(got);
  }
  /* Same size is the identity in both modes. */
  opl_tensor *xr = opl_new(c, OPL_DIMS(2, 3, 4, 5));
  fill(xr);
  opl_tensor *il = opl_interp(c, xr, (const int64_t[]){4, 5}, OPL_INTERP_LINEAR);
  opl_tensor *inn = opl_interp(c, xr, (const int64_t[]){4, 5}, OPL_INTERP_NEAREST);
  if (il && inn) {
    double *a = to_double(il), *b = to_double(inn), *want = to_double(xr);
    arrays_close(120, a, want, 0, 0, "linear to the same size is the identity");
    arrays_close(120, b, want, 0, 0, "nearest to the same size is the identity");
    free(a), free(b), free(want);
  }
  ok(opl_ctx_status(c) == OPL_OK, "interp: no error");
  opl_ctx_free(&c);
}

static void test_pool_known(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(1, 1, 5));
  for (int i = 0; i < 5; i++) x->data[i] = (opl_real)(i + 1);
  opl_tensor *y = opl_avgpool(c, x, (const int[]){2}, NULL);
  double w2[2] = {1.5, 3.5};
  ok(y && y->shape[2] == 2, "avgpool k2 of 5 points: floor output size 2");
  if (y) {
    double *got = to_double(y);
    arrays_close(2, got, w2, TOL, 0, "avgpool [1..5] k2 = [1.5, 3.5]");
    free(got);
  }
  y = opl_avgpool(c, x, (const int[]){3}, (const int[]){1});
  double w3[3] = {2, 3, 4};
  if (y) {
    double *got = to_double(y);
    arrays_close(3, got, w3, TOL, 0, "avgpool [1..5] k3 s1 = [2, 3, 4]");
    free(got);
  }
  ok(opl_ctx_status(c) == OPL_OK, "avgpool: no error");
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ naive references */

/* Naive average pooling of x (B, X, Y, Z) (missing axes 1) written with explicit windows. */
static void naive_pool(const opl_tensor *x, int d, const int *k, const int *s, double *y,
                       int64_t *m) {
  int64_t n[3] = {1, 1, 1}, kk[3] = {1, 1, 1}, ss[3] = {1, 1, 1};
  for (int i = 0; i < d; i++) n[i] = x->shape[2 + i], kk[i] = k[i], ss[i] = s[i] ? s[i] : k[i];
  for (int i = 0; i < 3; i++) m[i] = (n[i] - kk[i]) / ss[i] + 1;
  int64_t B = x->shape[0] * x->shape[1], o = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < m[0]; i++)
      for (int64_t j = 0; j < m[1]; j++)
        for (int64_t l = 0; l < m[2]; l++, o++) {
          double sum = 0;
          int cnt = 0;
          for (int64_t p = i * ss[0]; p < i * ss[0] + kk[0]; p++)
            for (int64_t q = j * ss[1]; q < j * ss[1] + kk[1]; q++)
              for (int64_t r = l * ss[2]; r < l * ss[2] + kk[2]; r++, cnt++)
                sum += x->data[((b * n[0] + p) * n[1] + q) * n[2] + r];
          y[o] = sum / cnt;
        }
}

/* PyTorch's source coordinate for one axis (align_corners = False, linear), and the two
 * neighbours and weights, as written in aten/src/ATen/native/UpSample.h. */
static void lin_coord(int64_t j, int64_t in, int64_t out, int64_t *i0, int64_t *i1, double *l1) {
  double scale = (double)in / (double)out;
  double src = scale * (j + 0.5) - 0.5;
  if (src < 0) src = 0;
  *i0 = (int64_t)floor(src);
  *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
  *l1 = src - *i0;
}

/* Naive trilinear / nearest resize of x (B, n0, n1, n2) to m: the explicit 8-corner sum. */
static void naive_interp(const opl_tensor *x, int d, const int64_t *size, opl_interp_mode mode,
                         double *y) {
  int64_t n[3] = {1, 1, 1}, m[3] = {1, 1, 1};
  for (int i = 0; i < d; i++) n[i] = x->shape[2 + i], m[i] = size[i];
  int64_t B = x->shape[0] * x->shape[1], o = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < m[0]; i++)
      for (int64_t j = 0; j < m[1]; j++)
        for (int64_t l = 0; l < m[2]; l++, o++) {
          const opl_real *xb = x->data + b * n[0] * n[1] * n[2];
          if (mode == OPL_INTERP_NEAREST) {
            int64_t a = (int64_t)floor((double)i * n[0] / m[0]);
            int64_t bb = (int64_t)floor((double)j * n[1] / m[1]);
            int64_t cc = (int64_t)floor((double)l * n[2] / m[2]);
            y[o] = xb[(a * n[1] + bb) * n[2] + cc];
            continue;
          }
          int64_t a0, a1, b0, b1, c0, c1;
          double la, lb, lc;
          lin_coord(i, n[0], m[0], &a0, &a1, &la);
          lin_coord(j, n[1], m[1], &b0, &b1, &lb);
          lin_coord(l, n[2], m[2], &c0, &c1, &lc);
#define X(p, q, r) ((double)xb[((p) * n[1] + (q)) * n[2] + (r)])
          double c00 = X(a0, b0, c0) * (1 - lc) + X(a0, b0, c1) * lc;
          double c01 = X(a0, b1, c0) * (1 - lc) + X(a0, b1, c1) * lc;
          double c10 = X(a1, b0, c0) * (1 - lc) + X(a1, b0, c1) * lc;
          double c11 = X(a1, b1, c0) * (1 - lc) + X(a1, b1, c1) * lc;
#undef X
          double c0v = c00 * (1 - lb) + c01 * lb, c1v = c10 * (1 - lb) + c11 * lb;
          y[o] = c0v * (1 - la) + c1v * la;
        }
}

static void test_pool_naive(void) {
  struct { int rank; int64_t shape[5]; int k[3], s[3]; } cases[] = {
      {3, {2, 3, 17}, {4}, {3}},
      {4, {2, 2, 9, 11}, {3, 2}, {2, 0}},
      {5, {1, 3, 7, 6, 9}, {2, 3, 4}, {2, 1, 3}},
      {4, {4, 8, 64, 64}, {2, 2}, {0, 0}},
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *x = opl_new(c, cases[t].rank, cases[t].shape);
    fill(x);
    opl_tensor *y = opl_avgpool(c, x, cases[t].k, cases[t].s);
    int64_t m[3];
    double *want = malloc((size_t)x->numel * sizeof *want);
    naive_pool(x, cases[t].rank - 2, cases[t].k, cases[t].s, want, m);
    int d = cases[t].rank - 2, shape_ok = y != NULL;
    for (int i = 0; shape_ok && i < d; i++) shape_ok = y->shape[2 + i] == m[i];
    ok(shape_ok, "avgpool %d-D case %zu output shape", d, t);
    if (shape_ok) {
      double *got = to_double(y);
      arrays_close(y->numel, got, want, TOL, TOL, "avgpool %d-D case %zu = naive windows", d, t);
      free(got);
    }
    free(want);
    opl_ctx_free(&c);
  }
}

static void test_interp_naive(void) {
  struct { int rank; int64_t shape[5]; int64_t size[3]; } cases[] = {
      {3, {2, 3, 7}, {16}},
      {3, {2, 3, 16}, {5}},
      {4, {2, 2, 5, 9}, {12, 4}},
      {5, {1, 2, 4, 6, 3}, {7, 5, 8}},
      {4, {3, 8, 32, 24}, {64, 80}},
      {5, {1, 2, 3, 65, 70}, {4, 30, 20}}, /* plane 65 x 70 > 4096: the direct kernels */
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
    for (int mode = 0; mode < 2; mode++) {
      opl_ctx *c = opl_ctx_new(0);
      opl_tensor *x = opl_new(c, cases[t].rank, cases[t].shape);
      fill(x);
      opl_tensor *y = opl_interp(c, x, cases[t].size, (opl_interp_mode)mode);
      int d = cases[t].rank - 2, shape_ok = y != NULL;
      for (int i = 0; shape_ok && i < d; i++) shape_ok = y->shape[2 + i] == cases[t].size[i];
      ok(shape_ok, "interp %s %d-D case %zu output shape", mode ? "linear" : "nearest", d, t);
      if (shape_ok) {
        double *want = malloc((size_t)y->numel * sizeof *want), *got = to_double(y);
        naive_interp(x, d, cases[t].size, (opl_interp_mode)mode, want);
        arrays_close(y->numel, got, want, TOL, TOL, "interp %s %d-D case %zu = naive PyTorch formula",
                     mode ? "linear" : "nearest", d, t);
        free(want), free(got);
      }
      opl_ctx_free(&c);
    }
}

/* Keys' weight (a = -0.75) of a tap at distance s, written from the formula. */
static double keys(double s) {
  const double a = -0.75;
  s = fabs(s);
  return s <= 1 ? ((a + 2) * s - (a + 3)) * s * s + 1 : s < 2 ? ((a * s - 5 * a) * s + 8 * a) * s - 4 * a : 0;
}

/* Naive bicubic resize (align_corners = False) of x (B, n0, n1) to (m0, m1): per output, the 4 x 4
 * taps floor(src) - 1 .. floor(src) + 2 clamped into the grid, weights keys(src - tap). */
static void naive_bicubic(const opl_tensor *x, const int64_t *m, double *y) {
  const int64_t n0 = x->shape[2], n1 = x->shape[3], B = x->shape[0] * x->shape[1];
  int64_t o = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < m[0]; i++)
      for (int64_t j = 0; j < m[1]; j++, o++) {
        const double si = (i + 0.5) * n0 / m[0] - 0.5, sj = (j + 0.5) * n1 / m[1] - 0.5;
        const int64_t fi = (int64_t)floor(si), fj = (int64_t)floor(sj);
        double acc = 0;
        for (int64_t p = fi - 1; p <= fi + 2; p++)
          for (int64_t q = fj - 1; q <= fj + 2; q++) {
            const int64_t pc = p < 0 ? 0 : p > n0 - 1 ? n0 - 1 : p, qc = q < 0 ? 0 : q > n1 - 1 ? n1 - 1 : q;
            acc += keys(si - p) * keys(sj - q) * x->data[(b * n0 + pc) * n1 + qc];
          }
        y[o] = acc;
      }
}

/* Bicubic doubling (the padded-row kernels) and other sizes (the gathers) against the formula. */
static void test_bicubic_naive(void) {
  const int64_t cases[][4] = {{3, 1, 6, 2}, {2, 2, 4, 4}, {2, 3, 4, 6}, {5, 4, 10, 8},
                              {4, 5, 8, 10}, {16, 64, 32, 128}, {5, 7, 9, 13}, {8, 8, 16, 12}};
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    opl_ctx *c = opl_ctx_new(0);
    opl_tensor *x = opl_new(c, 4, (const int64_t[]){2, 3, cases[t][0], cases[t][1]});
    fill(x);
    opl_tensor *y = opl_interp(c, x, cases[t] + 2, OPL_INTERP_CUBIC);
    ok(y && y->shape[2] == cases[t][2] && y->shape[3] == cases[t][3], "bicubic (%lld,%lld)->(%lld,%lld): shape",
       (long long)cases[t][0], (long long)cases[t][1], (long long)cases[t][2], (long long)cases[t][3]);
    if (y) {
      double *want = malloc((size_t)y->numel * sizeof *want), *got = to_double(y);
      naive_bicubic(x, cases[t] + 2, want);
      arrays_close(y->numel, got, want, TOL, TOL, "bicubic (%lld,%lld)->(%lld,%lld) = Keys' formula",
                   (long long)cases[t][0], (long long)cases[t][1], (long long)cases[t][2], (long long)cases[t][3]);
      free(want), free(got);
    }
    opl_ctx_free(&c);
  }
}

/* ------------------------------------------------------------ bicubic against torch 1.13 */

/* Values printed by torch 1.13 (float64):
 *   import torch, torch.nn.functional as F
 *   x = torch.arange(20, dtype=torch.float64).reshape(1, 1, 4, 5)
 *   x = torch.sin(x * 0.7) + 0.1 * x
 *   y = F.interpolate(x, scale_factor=2, mode='bicubic')            # align_corners=False
 *   y2 = F.interpolate(x, size=(3, 7), mode='bicubic')
 *   xp = F.pad(x, (2, 2, 2, 2), mode='circular')
 *   y3 = F.interpolate(xp, scale_factor=2, mode='bicubic')[..., 4:-4, 4:-4]
 *   print(', '.join('%.17g' % v for v in y.flatten().tolist()))     # and y2, y3
 * (y3 is SineNet's circular upsampling: pad 2 periodically, interpolate, crop 4.) */
static const double torch_up[80] = {
    -0.10718859014124019, 0.163523907899329, 0.60333681099532321, 1.0561102315670432, 1.2675931830568927,
    1.3948976165885349, 1.359884153274703, 1.1353567021712796, 0.83840082695981843, 0.6575624816080079,
    -0.06669506759649721, 0.070885503420770102, 0.29327502366264141, 0.55146716282776842, 0.69735253105084549,
    0.83689511073257528, 0.88463394480648327, 0.87314778790361514, 0.80218090327531544, 0.75996920304842286,
    -0.01759344577411124, -0.1028089142724628, -0.24432951152350918, -0.31042751612953301, -0.27246152699876952,
    -0.10922559568156739, 0.079644565510882226, 0.42818759070724804, 0.73771405059062267, 0.92893629912824816,
    0.57838908331237515, 0.46984382101116534, 0.29206956205209877, 0.14466155750459375, 0.10573022540223498,
    0.15802154746503319, 0.26827339609437117, 0.53077763481142592, 0.79890645277642502, 0.96364626495796679,
    1.4043771221936094, 1.4883268460624828, 1.6277942161344563, 1.6883797239646547, 1.6426836211945977,
    1.5015786774723274, 1.3475037759688984, 1.1102956833863697, 0.92582278357323766, 0.81123599723410944,
    1.5364734142605432, 1.6744020819395036, 1.9006344879124788, 2.0756468289494259, 2.1057709571719401,
    2.0448179704962541, 1.9272751414053271, 1.6965413827042104, 1.4814026481563294, 1.3488237745017719,
    0.89468064052189344, 0.9249539417257916, 0.97049556707034934, 1.112740707322871, 1.2623971299807004,
    1.5097494021972779, 1.7048384735928277, 1.9719193954005325, 2.1532575479782383, 2.2667578237870449,
    0.5157025657617218, 0.48275077714551312, 0.42210933130368056, 0.54676926267726389, 0.76892376099580961,
    1.2013142659112406, 1.583280982810777, 2.1470586799962867, 2.5640901168870287, 2.823894481102196};
static const double torch_37[21] = {
    -0.04901804072652427, 0.28188697062516083, 0.71566286856836914, 0.93420474932332698, 1.0214870296835403,
    0.90253427382233942, 0.74046069864548625, 1.0192901144112505, 0.98899916709608526, 0.91697269015675298,
    0.8396513050175235, 0.78391204398451741, 0.80276698347184983, 0.85353315505825567, 0.78919344584958817,
    0.79910816707909449, 0.95887301675421299, 1.2620423314331379, 1.6385309032702395, 2.1070400595339942,
    2.3923237720636319};
static const double torch_circ[80] = {
    0.25632391317011832, 0.10953140709878663, 0.52452102463853656, 0.954523330999275, 1.1756170508480899,
    1.3778187278078422, 1.4381810507733539, 1.4265399551344013, 1.3611092995773688, 0.88733891796716202,
    0.0015150531251096793, -0.046641040538345169, 0.26542276890591415, 0.57515075760787182, 0.72011830678069866,
    0.83342159680958572, 0.84529755560214626, 0.78932833832656957, 0.70358624651436663, 0.38468027872255317,
    0.17408084864796006, -0.20981798356202633, -0.27622478132125999, -0.30253298453616517, -0.26487293508881848,
    -0.11038343365589723, 0.066532435776103183, 0.42285895906040788, 0.77268271964016488, 0.67207373034783047,
    0.67958617487261053, 0.43130278755768481, 0.2792225509009385, 0.14466155750459375, 0.10573022540223498,
    0.15802154746503319, 0.26827339609437117, 0.54362464596258597, 0.83744748622990539, 0.89264929501016299,
    1.2599006524503034, 1.5493404535256168, 1.6481320852888337, 1.6883797239646547, 1.6426836211945977,
    1.5015786774723274, 1.3475037759688984, 1.0899578142319917, 0.86480917611010377, 0.9337726418181469,
    1.5147095124953118, 1.7055129011627486, 1.9072303410214562, 2.067752297356058, 2.0981823652619891,
    2.0459758084705841, 1.940387271140106, 1.7271694310398236, 1.5223322291731058, 1.4364312810627553,
    1.313897592431462, 0.82007249763309809, 0.92421182580980688, 1.0890571125427677, 1.239631354250847,
    1.5132229161202675, 1.7441748627971649, 2.129874840994848, 2.4742601927909957, 2.1439484607892956,
    0.80839226620681137, 0.17895172651338692, 0.36876449358760843, 0.64186257050200868, 0.86902819375979368,
    1.2448179349993369, 1.5424339024788969, 2.0091091540926698, 2.4094954262012553, 1.9233728961269629};

/* The torch code computes its weights in the input's type (here float64); these tolerances
 * cover the rounding of the input to the build's precision and of the sums. */
#ifdef OPL_DOUBLE
#define TORCH_TOL 1e-13
#else
#define TORCH_TOL 2e-6
#endif

static void test_bicubic_torch(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(1, 1, 4, 5));
  for (int i = 0; i < 20; i++) x->data[i] = (opl_real)(sin(0.7 * i) + 0.1 * i);
  opl_tensor *y = opl_interp(c, x, (const int64_t[]){8, 10}, OPL_INTERP_CUBIC);
  opl_tensor *y2 = opl_interp(c, x, (const int64_t[]){3, 7}, OPL_INTERP_CUBIC);
  opl_tensor *xp = opl_pad(c, x, 2, (const int64_t[]){2, 2}, (const int64_t[]){2, 2}, OPL_PAD_CIRCULAR);
  opl_tensor *y3 = opl_crop(c, opl_interp(c, xp, (const int64_t[]){16, 18}, OPL_INTERP_CUBIC), 2,
                            (const int64_t[]){4, 4}, (const int64_t[]){4, 4});
  ok(y && y2 && y3 && y->shape[2] == 8 && y->shape[3] == 10 && y3->shape[2] == 8 && y3->shape[3] == 10,
     "bicubic: shapes (8, 10), (3, 7), circular (8, 10)");
  if (y && y2 && y3) {
    double *g1 = to_double(y), *g2 = to_double(y2), *g3 = to_double(y3);
    arrays_close(80, g1, torch_up, TORCH_TOL, TORCH_TOL, "bicubic x2 of a 4x5 field = torch F.interpolate");
    arrays_close(21, g2, torch_37, TORCH_TOL, TORCH_TOL, "bicubic 4x5 -> 3x7 = torch F.interpolate");
    arrays_close(80, g3, torch_circ, TORCH_TOL, TORCH_TOL,
                 "circular pad 2, bicubic x2, crop 4 = torch (SineNet's circular upsampling)");
    free(g1), free(g2), free(g3);
  }
  /* The four weights sum to 1 (a constant is kept); with a = -0.75 a linear ramp is NOT kept
   * (only a = -0.5 is third-order, Keys 1981): at t = 1/4 the first moment is 0.296875, not
   * 0.25, so x2 of the ramp 0..11 gives 2.296875 at output 5 (src 2.25). */
  opl_tensor *xl = opl_new(c, OPL_DIMS(1, 1, 12));
  for (int i = 0; i < 12; i++) xl->data[i] = (opl_real)i;
  opl_tensor *yl = opl_interp(c, xl, (const int64_t[]){24}, OPL_INTERP_CUBIC);
  opl_tensor *xc = opl_new(c, OPL_DIMS(1, 1, 5, 3));
  for (int i = 0; i < 15; i++) xc->data[i] = (opl_real)2.5;
  opl_tensor *yc = opl_interp(c, xc, (const int64_t[]){10, 7}, OPL_INTERP_CUBIC);
  ok(yl && fabs(yl->data[5] - 2.296875) < 1e-6 && fabs(yl->data[7] - 3.296875) < 1e-6,
     "cubic x2 of a ramp: 2.296875 at src 2.25 (Keys a = -0.75 moments)");
  int const_ok = yc != NULL;
  for (int i = 0; const_ok && i < 70; i++) const_ok = fabs(yc->data[i] - 2.5) < 1e-6;
  ok(const_ok, "bicubic keeps a constant field");
  opl_tensor *same = opl_interp(c, x, (const int64_t[]){4, 5}, OPL_INTERP_CUBIC);
  if (same) {
    double *a = to_double(same), *want = to_double(x);
    arrays_close(20, a, want, TORCH_TOL, TORCH_TOL, "cubic to the same size is the identity");
    free(a), free(want);
  }
  ok(opl_ctx_status(c) == OPL_OK, "bicubic: no error");
  opl_ctx_free(&c);
}

/* ------------------------------------------------------------ bad input */

static void err_is(opl_ctx *c, const opl_tensor *y, int status, const char *a, const char *what) {
  const char *m = opl_ctx_errmsg(c);
  ok(y == NULL && opl_ctx_status(c) == status && (!a || strstr(m, a)), "%s -> NULL + %s: %s", what,
     opl_status_name(status), m);
  opl_ctx_clear_error(c);
}

static void test_bad_input(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(2, 3, 5, 4)), *x2 = opl_new(c, OPL_DIMS(2, 3));
  err_is(c, opl_avgpool(c, x, (const int[]){6, 2}, NULL), OPL_ERR_SHAPE, "(2, 3, 5, 4)", "avgpool kernel 6 > extent 5");
  err_is(c, opl_avgpool(c, x, (const int[]){0, 2}, NULL), OPL_ERR_ARG, "kernel 0", "avgpool kernel 0");
  err_is(c, opl_avgpool(c, x, (const int[]){2, 2}, (const int[]){-1, 1}), OPL_ERR_ARG, "stride -1", "avgpool negative stride");
  err_is(c, opl_avgpool(c, x, NULL, NULL), OPL_ERR_ARG, "NULL", "avgpool NULL kernel");
  err_is(c, opl_avgpool(c, x2, (const int[]){1}, NULL), OPL_ERR_SHAPE, "(2, 3)", "avgpool of rank 2");
  err_is(c, opl_interp(c, x, (const int64_t[]){0, 4}, OPL_INTERP_LINEAR), OPL_ERR_ARG, "(2, 3, 5, 4)", "interp size 0");
  err_is(c, opl_interp(c, x, NULL, OPL_INTERP_LINEAR), OPL_ERR_ARG, "NULL", "interp NULL size");
  err_is(c, opl_interp(c, x, (const int64_t[]){3, 3}, (opl_interp_mode)5), OPL_ERR_ARG, "mode", "interp unknown mode");
  err_is(c, opl_interp(c, x2, (const int64_t[]){3}, OPL_INTERP_NEAREST), OPL_ERR_SHAPE, "(2, 3)", "interp of rank 2");
  opl_tensor *cx = opl_new_flags(c, OPL_DIMS(1, 1, 4), OPL_T_COMPLEX);
  err_is(c, opl_interp(c, cx, (const int64_t[]){3}, OPL_INTERP_NEAREST), OPL_ERR_ARG, "complex", "interp of complex");
  err_is(c, opl_avgpool(c, NULL, (const int[]){2}, NULL), OPL_ERR_ARG, "NULL", "avgpool of NULL");
  opl_ctx_free(&c);
}

int main(void) {
  tap_begin();
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  gc_run_adjoint_table(adjoint_rows, (int)(sizeof adjoint_rows / sizeof adjoint_rows[0]));
  test_interp_known();
  test_bicubic_torch();
  test_pool_known();
  test_pool_naive();
  test_interp_naive();
  test_bicubic_naive();
  test_bad_input();
  return tap_end();
}
