/* Resampling ops (avgpool, interp nearest / linear): gradient checks (table), adjoint checks
 * (both are linear), forward values against naive loops written from the PyTorch formulas and
 * hand-computed PyTorch values, and bad input. */
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
static const interp_opt in1u = {{11}, LIN}, in1d = {{4}, LIN}, in1x = {{13}, LIN},
                        in2u = {{7, 9}, LIN}, in2m = {{3, 8}, LIN}, in3 = {{5, 3, 7}, LIN},
                        nn1u = {{11}, NEAR}, nn1d = {{4}, NEAR}, nn2 = {{7, 3}, NEAR},
                        nn3 = {{5, 6, 2}, NEAR}, in1same = {{6}, LIN}, in2big = {{96, 80}, LIN},
                        nn2big = {{96, 80}, NEAR};

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
  test_pool_known();
  test_pool_naive();
  test_interp_naive();
  test_bad_input();
  return tap_end();
}
