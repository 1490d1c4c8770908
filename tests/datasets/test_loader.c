/* Batched loader and normalizers.
 *
 * Loader: option checks (split, batch, sub, frame selections), split as FNO does it (first
 * ntrain / last ntest), every batch value against a direct loop over the closed-form data
 * (channels first, sub-sampled, a then frames), native and MATLAB-transposed sources, cache
 * mode equal to streaming mode, reproducible per-(seed, epoch) shuffling (against an
 * independent Fisher-Yates on the documented opl_rng stream), partial last batch, non-finite
 * data naming the sample.
 * Normalizers: statistics against naive two-pass formulas (unbiased std, torch.std), encode /
 * decode values and round trip, fit over a loader, save / load through core/io.h, resampling
 * (linear exact for sub-sampling and against a naive interpolation; spectral exact for
 * band-limited fields incl. the Nyquist rules), the differentiable encode / decode graph
 * nodes in the gradient-check table (and, with zero mean, the adjoint table), bad input. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/rng.h"
#include "datasets/loader.h"
#include "datasets/normalizer.h"
#include "tests/gradcheck.h"
#include "tests/tap.h"
#include "tests/tmpdir.h"

static char dir[64];

static const char *tpath(const char *name) {
  static char buf[8][256];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* Closed-form data: exactly representable in float32, distinct for every (n, t, x, y). */
static double va(int64_t n, int64_t i, int64_t j) { return -(double)(n * 10000 + i * 100 + j) - 0.5; }
static double vu(int64_t n, int64_t t, int64_t i, int64_t j) { return (double)(n * 100000 + t * 10000 + i * 100 + j) + 0.25; }

#ifdef OPL_DOUBLE
static const double RT = 1e-12;
#else
static const double RT = 2e-6;
#endif

/* A native data set of the closed-form values, written with the opl writer. */
static void write_native(const char *path, int64_t n, int64_t t, int sdim, int64_t x, int64_t y) {
  opl_ds_dims d = {.n = n, .t = t, .sdim = sdim, .x = x, .y = sdim == 2 ? y : 1};
  double *xc = calloc((size_t)x, sizeof(double)), *yc = calloc((size_t)(y > 0 ? y : 1), sizeof(double)),
         *tc = calloc((size_t)t, sizeof(double));
  for (int64_t i = 0; i < x; i++) xc[i] = (double)i / (double)x;
  for (int64_t i = 0; i < y; i++) yc[i] = (double)i / (double)y;
  for (int64_t i = 0; i < t; i++) tc[i] = (double)(i + 1);
  opl_kv prov[] = {OPL_KVS("equation", "test"), OPL_KVI("seed", 7)};
  opl_err e;
  opl_ds_writer *w = opl_ds_writer_create(path, &d, OPL_DT_F32, xc, yc, tc, prov, 2, &e);
  if (!w) diag("writer: %s", e.msg);
  int64_t P = d.x * d.y;
  double *a = malloc(sizeof(double) * (size_t)P), *u = malloc(sizeof(double) * (size_t)(t * P));
  for (int64_t s = 0; w && s < n; s++) {
    for (int64_t i = 0; i < d.x; i++)
      for (int64_t j = 0; j < d.y; j++) {
        a[i * d.y + j] = va(s, i, j);
        for (int64_t k = 0; k < t; k++) u[(k * d.x + i) * d.y + j] = vu(s, k, i, j);
      }
    opl_ds_writer_put(w, s, a, u, OPL_DT_F64, &e);
  }
  if (w && opl_ds_writer_finish(&w, &e)) diag("finish: %s", e.msg);
  free(a);
  free(u);
  free(xc);
  free(yc);
  free(tc);
}

/* The same 2-D data as an FNO NavierStokes .mat (reversed axes, MATLAB_class). */
static void raw_put(hid_t f, const char *name, int rank, const hsize_t *dims, const double *data) {
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  hid_t st = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR);
  H5Tset_size(st, 6);
  hid_t at = H5Acreate2(ds, "MATLAB_class", st, as, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(at, st, "single");
  H5Aclose(at);
  H5Sclose(as);
  H5Tclose(st);
  H5Dclose(ds);
  H5Sclose(sp);
}
static void write_mat(const char *path, int64_t N, int64_t T, int64_t X, int64_t Y) {
  double *a = malloc(sizeof(double) * (size_t)(N * X * Y)), *u = malloc(sizeof(double) * (size_t)(N * X * Y * T));
  for (int64_t n = 0; n < N; n++)
    for (int64_t i = 0; i < X; i++)
      for (int64_t j = 0; j < Y; j++) {
        a[(j * X + i) * N + n] = va(n, i, j);
        for (int64_t k = 0; k < T; k++) u[((k * Y + j) * X + i) * N + n] = vu(n, k, i, j);
      }
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  H5Pset_userblock(fcpl, 512);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  H5Pclose(fcpl);
  hsize_t da[3] = {(hsize_t)Y, (hsize_t)X, (hsize_t)N}, du[4] = {(hsize_t)T, (hsize_t)Y, (hsize_t)X, (hsize_t)N};
  raw_put(f, "a", 3, da, a);
  raw_put(f, "u", 4, du, u);
  H5Fclose(f);
  int fd = open(path, O_WRONLY);
  const char hdr[] = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .";
  if (pwrite(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) diag("header write failed");
  close(fd);
  free(a);
  free(u);
}

/* Expected value of channel c of a selection for sample s at sub-sampled (i, j). */
static double expect(const opl_ds_sel *sel, int64_t t0, int64_t s, int64_t c, int64_t i, int64_t j, int sub) {
  if (sel->with_a && c == 0) return va(s, i * sub, j * sub);
  return vu(s, t0 + c - sel->with_a, i * sub, j * sub);
}

/* Check one batch buffer [B, C, nx, ny] against the closed form; returns 1 if exact. */
static int batch_exact(const opl_real *buf, const int64_t *samples, int64_t B, const opl_ds_sel *sel, int64_t t0,
                       int64_t C, int64_t nx, int64_t ny, int sub, double *maxerr) {
  int good = 1;
  for (int64_t b = 0; b < B; b++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < nx; i++)
        for (int64_t j = 0; j < ny; j++) {
          double g = buf[((b * C + c) * nx + i) * ny + j], w = (double)(opl_real)expect(sel, t0, samples[b], c, i, j, sub);
          if (g != w) {
            good = 0;
            if (fabs(g - w) > *maxerr) *maxerr = fabs(g - w);
          }
        }
  return good;
}

/* Run every batch of both splits of epoch `epoch` and compare with the closed form. */
static void check_loader_values(opl_ds *ds, const opl_loader_opts *o, const char *name) {
  opl_err e;
  opl_loader *l = opl_loader_new(ds, o, &e);
  ok(l != NULL, "%s: loader created (%s)", name, l ? "ok" : e.msg);
  if (!l) return;
  const opl_loader_info *in = opl_loader_get_info(l);
  int64_t N = opl_ds_get_info(ds)->dims.n;
  int64_t csz = in->batch * in->nx * in->ny;
  opl_real *x = malloc(sizeof(opl_real) * (size_t)(csz * in->cin)), *y = malloc(sizeof(opl_real) * (size_t)(csz * in->cout));
  int64_t *smp = malloc(sizeof(int64_t) * (size_t)in->batch);
  for (int split = 0; split < 2; split++) {
    int all = 1, sizes = 1, cover = 1;
    double maxerr = 0;
    int64_t seen = 0;
    char *hit = calloc((size_t)N, 1);
    for (int64_t k = 0; k < in->nbatch[split]; k++) {
      int64_t B = -1;
      int st = opl_loader_batch(l, split, 3, k, x, y, &B, smp, &e);
      if (st) {
        diag("%s: batch %lld: %s", name, (long long)k, e.msg);
        all = 0;
        break;
      }
      int64_t wantB = in->n[split] - k * in->batch < in->batch ? in->n[split] - k * in->batch : in->batch;
      sizes &= B == wantB;
      all &= batch_exact(x, smp, B, &o->in, in->in_t0, in->cin, in->nx, in->ny, o->sub, &maxerr);
      all &= batch_exact(y, smp, B, &o->out, in->out_t0, in->cout, in->nx, in->ny, o->sub, &maxerr);
      for (int64_t b = 0; b < B; b++) {
        int64_t s = smp[b];
        int in_split = split ? s >= N - o->ntest : s < o->ntrain;
        cover &= in_split && !hit[s];
        hit[s] = 1;
      }
      seen += B;
    }
    free(hit);
    ok(all && seen == in->n[split], "%s: every %s batch equals a direct loop (x: %lld ch, y: %lld ch; max err %g)",
       name, split ? "test" : "train", (long long)in->cin, (long long)in->cout, maxerr);
    ok(sizes && cover, "%s: %s batches have the true sizes and cover the split exactly once (%s)", name,
       split ? "test" : "train", split ? "last ntest samples" : "first ntrain samples");
  }
  free(x);
  free(y);
  free(smp);
  opl_loader_free(&l);
}

static void test_loader_values(void) {
  opl_err e;
  const char *f1 = "burgers.h5", *f2 = "ns.h5", *f3 = "ns.mat";
  write_native(tpath(f1), 10, 4, 1, 16, 1);
  write_native(tpath(f2), 7, 6, 2, 8, 4);
  write_mat(tpath(f3), 7, 6, 8, 4);
  opl_ds *d1 = opl_ds_open(tpath(f1), NULL, &e), *d2 = opl_ds_open(tpath(f2), NULL, &e), *d3 = opl_ds_open(tpath(f3), NULL, &e);
  ok(d1 && d2 && d3, "test data sets open");
  if (!d1 || !d2 || !d3) return;
  struct {
    opl_ds *ds;
    opl_loader_opts o;
    const char *name;
  } cases[] = {
      {d1, {.ntrain = 7, .ntest = 2, .batch = 3, .sub = 2, .in = {1, 0, 0}, .out = {0, -1, 1}}, "FNO Burgers (a -> u(T)), sub 2, batch 3 of 7"},
      {d1, {.ntrain = 7, .ntest = 2, .batch = 3, .sub = 2, .in = {1, 0, 0}, .out = {0, -1, 1}, .shuffle = 1, .seed = 5}, "Burgers shuffled"},
      {d1, {.ntrain = 7, .ntest = 3, .batch = 4, .sub = 1, .in = {1, 0, 0}, .out = {0, -1, 1}, .cache = 1, .shuffle = 1}, "Burgers cached"},
      {d1, {.ntrain = 6, .ntest = 4, .batch = 5, .sub = 4, .in = {1, 0, 2}, .out = {0, 2, 2}}, "PDEBench-style (a + 2 frames -> 2 frames), sub 4"},
      {d2, {.ntrain = 5, .ntest = 2, .batch = 2, .sub = 2, .in = {0, 0, 3}, .out = {0, 3, 3}, .shuffle = 1, .seed = 9}, "FNO NS 2-D (3 frames -> next 3), sub 2"},
      {d2, {.ntrain = 5, .ntest = 2, .batch = 2, .sub = 1, .in = {1, 1, 2}, .out = {0, -2, 2}, .cache = 1}, "NS 2-D cached, a + frames 1..2 -> last 2"},
      {d3, {.ntrain = 5, .ntest = 2, .batch = 2, .sub = 2, .in = {0, 0, 3}, .out = {0, 3, 3}, .shuffle = 1, .seed = 9}, "NS .mat (transposed) 3 -> 3, sub 2"},
      {d3, {.ntrain = 5, .ntest = 2, .batch = 3, .sub = 1, .in = {1, 0, 1}, .out = {0, -1, 1}, .cache = 1}, "NS .mat cached"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) check_loader_values(cases[c].ds, &cases[c].o, cases[c].name);

  /* Info of the first case. */
  opl_loader *l = opl_loader_new(d2, &cases[4].o, &e);
  const opl_loader_info *in = opl_loader_get_info(l);
  ok(in->rank == 4 && in->in_shape[0] == 2 && in->in_shape[1] == 3 && in->in_shape[2] == 4 && in->in_shape[3] == 2 &&
         in->out_shape[1] == 3 && in->nbatch[0] == 3 && in->nbatch[1] == 1 && in->first[1] == 5 && in->n[0] == 5,
     "NS info: x (2, 3, 4, 2), 3 train batches (2, 2, 1), test starts at sample 5");
  /* The same batch of the same epoch in cache and streaming mode, and from .mat and native. */
  opl_loader_opts oc = cases[4].o;
  oc.cache = 1;
  opl_loader *lc = opl_loader_new(d2, &oc, &e), *lm = opl_loader_new(d3, &cases[4].o, &e);
  opl_real xa[2 * 3 * 8], xb[2 * 3 * 8], xm[2 * 3 * 8];
  int64_t B1, B2, B3;
  opl_loader_batch(l, OPL_SPLIT_TRAIN, 11, 1, xa, NULL, &B1, NULL, &e);
  opl_loader_batch(lc, OPL_SPLIT_TRAIN, 11, 1, xb, NULL, &B2, NULL, &e);
  opl_loader_batch(lm, OPL_SPLIT_TRAIN, 11, 1, xm, NULL, &B3, NULL, &e);
  ok(B1 == 2 && B2 == 2 && B3 == 2 && !memcmp(xa, xb, sizeof xa) && !memcmp(xa, xm, sizeof xa),
     "cache mode, streaming mode and the .mat layout give identical batches");
  opl_loader_free(&lc);
  opl_loader_free(&lm);
  opl_loader_free(&l);
  opl_ds_close(&d1);
  opl_ds_close(&d2);
  opl_ds_close(&d3);
}

/* Independent Fisher-Yates on the documented stream: opl_rng_split(seed, epoch), unbiased
 * draws by rejection of the top partial range of u64. */
static void ref_perm(uint64_t seed, int64_t epoch, int64_t n, int64_t *p) {
  opl_rng base, r;
  opl_rng_seed(&base, seed);
  r = opl_rng_split(&base, (uint64_t)epoch);
  for (int64_t i = 0; i < n; i++) p[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    uint64_t bound = (uint64_t)(i + 1), lim = UINT64_MAX - UINT64_MAX % bound, v;
    do v = opl_rng_u64(&r);
    while (v >= lim);
    int64_t j = (int64_t)(v % bound), t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
}

static void test_shuffle(void) {
  opl_err e;
  write_native(tpath("shuf.h5"), 40, 1, 1, 4, 1);
  opl_ds *ds = opl_ds_open(tpath("shuf.h5"), NULL, &e);
  opl_loader_opts o = {.ntrain = 30, .ntest = 10, .batch = 8, .sub = 1, .in = {1, 0, 0}, .out = {0, 0, 1}, .shuffle = 1, .seed = 1234};
  opl_loader *l1 = opl_loader_new(ds, &o, &e), *l2 = opl_loader_new(ds, &o, &e);
  int64_t p0[30], p1[30], q1[30], r1[30], ref[30], test[10];
  opl_loader_order(l1, OPL_SPLIT_TRAIN, 0, p0, &e);
  opl_loader_order(l1, OPL_SPLIT_TRAIN, 1, p1, &e);
  opl_loader_order(l2, OPL_SPLIT_TRAIN, 1, q1, &e);
  int perm = 1;
  char seen[30] = {0};
  for (int i = 0; i < 30; i++) {
    perm &= p1[i] >= 0 && p1[i] < 30 && !seen[p1[i]];
    if (p1[i] >= 0 && p1[i] < 30) seen[p1[i]] = 1;
  }
  ok(perm, "epoch order is a permutation of the 30 training samples");
  ok(!memcmp(p1, q1, sizeof p1), "same (seed, epoch) in another loader: same order");
  ok(memcmp(p0, p1, sizeof p0) != 0, "epochs 0 and 1 differ");
  ref_perm(1234, 1, 30, ref);
  ok(!memcmp(ref, p1, sizeof ref), "order = Fisher-Yates on opl_rng_split(seed stream, epoch)");
  o.seed = 1235;
  opl_loader *l3 = opl_loader_new(ds, &o, &e);
  opl_loader_order(l3, OPL_SPLIT_TRAIN, 1, r1, &e);
  ok(memcmp(r1, p1, sizeof r1) != 0, "another seed: another order");
  /* Batches follow the order, whatever order they are asked in. */
  int64_t smp[8], B, last = -1;
  int follows = 1;
  for (int64_t k = 3; k >= 0; k--) {
    opl_loader_batch(l2, OPL_SPLIT_TRAIN, 1, k, NULL, NULL, &B, smp, &e);
    follows &= !memcmp(smp, p1 + 8 * k, sizeof(int64_t) * (size_t)B);
    if (k == 3) last = B;
    opl_loader_batch(l2, OPL_SPLIT_TRAIN, 0, k, NULL, NULL, &B, smp, &e);   /* interleave epochs */
  }
  ok(follows && last == 6, "batches of epoch 1 asked in reverse and interleaved with epoch 0 follow its order; last has 6");
  opl_loader_order(l1, OPL_SPLIT_TEST, 5, test, &e);
  int inorder = 1;
  for (int i = 0; i < 10; i++) inorder &= test[i] == 30 + i;
  ok(inorder, "test split: last 10 samples in order, never shuffled");
  o.shuffle = 0;
  opl_loader *l4 = opl_loader_new(ds, &o, &e);
  opl_loader_order(l4, OPL_SPLIT_TRAIN, 7, r1, &e);
  int ident = 1;
  for (int i = 0; i < 30; i++) ident &= r1[i] == i;
  ok(ident, "shuffle off: training order 0..29");
  opl_loader_free(&l1);
  opl_loader_free(&l2);
  opl_loader_free(&l3);
  opl_loader_free(&l4);
  opl_ds_close(&ds);
}

static void test_loader_bad(void) {
  opl_err e;
  write_native(tpath("small.h5"), 10, 4, 2, 6, 4);
  opl_ds *ds = opl_ds_open(tpath("small.h5"), NULL, &e);
  opl_loader_opts base = {.ntrain = 7, .ntest = 3, .batch = 2, .sub = 1, .in = {1, 0, 0}, .out = {0, -1, 1}};
  opl_loader_opts o = base;
  o.ntest = 4;
  opl_loader *l = opl_loader_new(ds, &o, &e);
  ok(!l && e.status == OPL_ERR_ARG && strstr(e.msg, "ntrain 7 + ntest 4 = 11") && strstr(e.msg, "N = 10") &&
         strstr(e.msg, "small.h5"),
     "ntrain + ntest > N: ERR_ARG: %s", e.msg);
  o = base;
  o.sub = 4;
  l = opl_loader_new(ds, &o, &e);
  ok(!l && e.status == OPL_ERR_ARG && strstr(e.msg, "sub = 4 does not divide") && strstr(e.msg, "Y = 4") == NULL &&
         strstr(e.msg, "X = 6") && strstr(e.msg, "'u'"),
     "sub 4 with X = 6: ERR_ARG naming X and the dataset: %s", e.msg);
  o.sub = 3;
  l = opl_loader_new(ds, &o, &e);
  ok(!l && e.status == OPL_ERR_ARG && strstr(e.msg, "Y = 4"), "sub 3 with Y = 4: ERR_ARG: %s", e.msg);
  o = base;
  o.out = (opl_ds_sel){0, 2, 3};
  l = opl_loader_new(ds, &o, &e);
  ok(!l && e.status == OPL_ERR_ARG && strstr(e.msg, "target frames [2, 5)") && strstr(e.msg, "4 frames"),
     "target frames beyond T: ERR_ARG: %s", e.msg);
  o.out = (opl_ds_sel){0, -5, 1};
  l = opl_loader_new(ds, &o, &e);
  ok(!l && e.status == OPL_ERR_ARG && strstr(e.msg, "t0 = -5"), "t0 = -5 with T = 4: ERR_ARG: %s", e.msg);
  o = base;
  o.in = (opl_ds_sel){0, 0, 0};
  l = opl_loader_new(ds, &o, &e);
  ok(!l && e.status == OPL_ERR_ARG && strstr(e.msg, "no channel"), "empty input selection: ERR_ARG: %s", e.msg);
  o = base;
  o.batch = 0;
  l = opl_loader_new(ds, &o, &e);
  ok(!l && e.status == OPL_ERR_ARG && strstr(e.msg, "batch"), "batch 0: ERR_ARG: %s", e.msg);
  l = opl_loader_new(ds, &base, &e);
  opl_real x[2 * 24], y[2 * 24];
  int64_t B = 7;
  ok(opl_loader_batch(l, OPL_SPLIT_TRAIN, 0, 4, x, y, &B, NULL, &e) == OPL_ERR_ARG && B == 0 &&
         strstr(e.msg, "batch 4 outside [0, 4)"),
     "batch index out of range: ERR_ARG: %s", e.msg);
  ok(opl_loader_batch(l, 2, 0, 0, x, y, &B, NULL, &e) == OPL_ERR_ARG, "unknown split: ERR_ARG");
  ok(opl_loader_batch(l, OPL_SPLIT_TEST, -1, 0, x, y, &B, NULL, &e) == OPL_ERR_ARG, "negative epoch: ERR_ARG");
  ok(opl_loader_read(l, (int64_t[]){0, 1, 2}, 3, x, y, &e) == OPL_ERR_ARG && strstr(e.msg, "3 samples"),
     "read of more than a batch: ERR_ARG: %s", e.msg);
  ok(opl_loader_batch(l, OPL_SPLIT_TEST, 0, 1, x, y, &B, NULL, &e) == OPL_OK && B == 1,
     "test split of 3 with batch 2: last batch has 1 sample");
  opl_loader_free(&l);
  opl_loader_free(&l);   /* NULL: no-op */
  opl_ds_close(&ds);

  /* NaN inside sample 5 (native file written with the raw API). */
  const char *f = tpath("nan.h5");
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  H5Pset_userblock(fcpl, 512);   /* stamped below: an opl-marked file must carry opl's checksum */
  hid_t fid = H5Fcreate(f, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  H5Pclose(fcpl);
  hid_t sp = H5Screate(H5S_SCALAR), st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, H5T_VARIABLE);
  const char *lay = OPL_DS_LAYOUT_NAME;
  hid_t at = H5Acreate2(fid, "layout", st, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(at, st, &lay);
  H5Aclose(at);
  long long v = 1;
  at = H5Acreate2(fid, "layout_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(at, H5T_NATIVE_LLONG, &v);
  H5Aclose(at);
  H5Tclose(st);
  H5Sclose(sp);
  double a[8 * 4], u[8 * 4], xc[4] = {0, .25, .5, .75}, tc[1] = {1};
  for (int k = 0; k < 32; k++) a[k] = u[k] = k;
  a[5 * 4 + 2] = NAN;
  hsize_t da[2] = {8, 4}, du[3] = {8, 1, 4}, dx = 4, dt = 1;
  const struct {
    const char *n;
    int r;
    hsize_t *d;
    double *v;
  } dsets[] = {{"a", 2, da, a}, {"u", 3, du, u}, {"x", 1, &dx, xc}, {"t", 1, &dt, tc}};
  for (int k = 0; k < 4; k++) {
    hid_t s2 = H5Screate_simple(dsets[k].r, dsets[k].d, NULL);
    hid_t d = H5Dcreate2(fid, dsets[k].n, H5T_IEEE_F64LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, dsets[k].v);
    H5Dclose(d);
    H5Sclose(s2);
  }
  H5Fclose(fid);
  if (opl_h5_stamp(f, &e)) diag("stamp: %s", e.msg);
  ds = opl_ds_open(f, NULL, &e);
  opl_loader_opts on = {.ntrain = 6, .ntest = 2, .batch = 3, .sub = 1, .in = {1, 0, 0}, .out = {0, 0, 1}};
  l = opl_loader_new(ds, &on, &e);
  int s1 = opl_loader_batch(l, OPL_SPLIT_TRAIN, 0, 0, x, y, &B, NULL, &e);
  int s2 = opl_loader_batch(l, OPL_SPLIT_TRAIN, 0, 1, x, y, &B, NULL, &e);
  ok(s1 == OPL_OK && s2 == OPL_ERR_NONFINITE && strstr(e.msg, "sample 5") && strstr(e.msg, "nan.h5") && B == 0,
     "NaN in sample 5: batch 0 fine, batch 1 ERR_NONFINITE naming the sample: %s", e.msg);
  opl_loader_free(&l);
  on.cache = 1;
  l = opl_loader_new(ds, &on, &e);
  ok(!l && e.status == OPL_ERR_NONFINITE && strstr(e.msg, "sample 5"), "cache mode: creation fails naming sample 5: %s",
     e.msg);
  on.cache = 0;
  on.in = (opl_ds_sel){0, 0, 1};
  l = opl_loader_new(ds, &on, &e);
  ok(opl_loader_batch(l, OPL_SPLIT_TRAIN, 0, 1, x, y, &B, NULL, &e) == OPL_OK,
     "the same batch without the a channel is finite and reads fine");
  opl_loader_free(&l);
  opl_ds_close(&ds);
}

/* ---------------------------------------------------------------- normalizers */

static void test_norm_stats(void) {
  opl_err e;
  enum { N = 6, C = 2, X = 5 };
  int64_t shape[2] = {C, X};
  opl_real data[N * C * X];
  uint64_t s = 99;
  for (int k = 0; k < N * C * X; k++) data[k] = (opl_real)(3 * gc_uniform(&s) - 1 + (k % X));
  opl_normalizer *nz = opl_normalizer_fit(OPL_NORM_UNIT_GAUSSIAN, data, N, 2, shape, &e);
  ok(nz && nz->rank == 2 && nz->shape[0] == C && nz->shape[1] == X && nz->nfit == N && nz->eps == 1e-5,
     "unit gaussian fit: sample shape (2, 5), 6 samples, eps 1e-5");
  /* Naive two-pass reference. */
  double m[C * X], sd[C * X], gm[C * X], gs[C * X];
  for (int p = 0; p < C * X; p++) {
    double acc = 0, ss = 0;
    for (int k = 0; k < N; k++) acc += data[k * C * X + p];
    m[p] = acc / N;
    for (int k = 0; k < N; k++) ss += (data[k * C * X + p] - m[p]) * (data[k * C * X + p] - m[p]);
    sd[p] = sqrt(ss / (N - 1));
    gm[p] = nz ? nz->mean->data[p] : NAN;
    gs[p] = nz ? nz->std->data[p] : NAN;
  }
  arrays_close(C * X, gm, m, RT, RT, "per-point mean = naive mean over samples");
  arrays_close(C * X, gs, sd, RT * 10, RT, "per-point std = naive unbiased std (divisor n - 1, torch.std)");
  /* Closed form: values 1, 2, 3, 4 -> mean 2.5, std sqrt(5/3). */
  opl_real four[4] = {1, 2, 3, 4};
  int64_t one = 1;
  opl_normalizer *n4 = opl_normalizer_fit(OPL_NORM_UNIT_GAUSSIAN, four, 4, 1, &one, &e);
  is_close(n4->mean->data[0], 2.5, RT, 0, "closed form: mean of 1..4 = 2.5");
  is_close(n4->std->data[0], sqrt(5.0 / 3.0), RT, 0, "closed form: unbiased std of 1..4 = sqrt(5/3)");
  opl_normalizer_free(&n4);

  /* Encode / decode values and round trip. */
  opl_real x[3 * C * X], x0[3 * C * X];
  for (int k = 0; k < 3 * C * X; k++) x[k] = x0[k] = (opl_real)(gc_uniform(&s) * 4 - 2);
  int64_t bs[3] = {3, C, X};
  ok(opl_normalizer_encode(nz, x, 3, bs, &e) == OPL_OK, "encode a (3, 2, 5) batch");
  double ge[3 * C * X], we[3 * C * X], gr[3 * C * X], wr[3 * C * X];
  for (int k = 0; k < 3 * C * X; k++) {
    ge[k] = x[k];
    we[k] = ((double)x0[k] - nz->mean->data[k % (C * X)]) / ((double)nz->std->data[k % (C * X)] + 1e-5);
  }
  arrays_close(3 * C * X, ge, we, RT * 10, RT, "encode = (x - mean) / (std + 1e-5)");
  opl_normalizer_decode(nz, x, 3, bs, &e);
  for (int k = 0; k < 3 * C * X; k++) {
    gr[k] = x[k];
    wr[k] = x0[k];
  }
  arrays_close(3 * C * X, gr, wr, RT * 10, RT * 10, "decode(encode(x)) = x");
  int64_t bad[3] = {3, C, X + 1};
  int st = opl_normalizer_encode(nz, x, 3, bad, &e);
  ok(st == OPL_ERR_SHAPE && strstr(e.msg, "(3, 2, 6)") && strstr(e.msg, "(3, 2, 5)"),
     "encode of a (3, 2, 6) batch: ERR_SHAPE naming both shapes: %s", e.msg);
  st = opl_normalizer_decode(nz, x, 2, bs + 1, &e);
  ok(st == OPL_ERR_SHAPE, "decode without the batch axis: ERR_SHAPE: %s", e.msg);

  /* Scalar Gaussian against the naive statistics over everything. */
  opl_normalizer *g = opl_normalizer_fit(OPL_NORM_GAUSSIAN, data, N, 2, shape, &e);
  double acc = 0, ss = 0;
  for (int k = 0; k < N * C * X; k++) acc += data[k];
  double mu = acc / (N * C * X);
  for (int k = 0; k < N * C * X; k++) ss += (data[k] - mu) * (data[k] - mu);
  ok(g && g->rank == 0 && g->mean->numel == 1, "gaussian fit: one mean, one std");
  is_close(g->mean->data[0], mu, RT, RT, "gaussian mean = mean of all values");
  is_close(g->std->data[0], sqrt(ss / (N * C * X - 1)), RT * 10, 0, "gaussian std = unbiased std of all values");
  opl_real y[7] = {1, 2, 3, 4, 5, 6, 7};
  int64_t ys[1] = {7};
  opl_normalizer_encode(g, y, 1, ys, &e);
  is_close(y[6], (7 - g->mean->data[0]) / (g->std->data[0] + 1e-5), RT * 10, RT, "gaussian encode accepts any shape");

  /* Bad fits. */
  opl_normalizer *b = opl_normalizer_fit(OPL_NORM_UNIT_GAUSSIAN, data, 1, 2, shape, &e);
  ok(!b && e.status == OPL_ERR_ARG && strstr(e.msg, "at least 2"), "unit gaussian on 1 sample: ERR_ARG: %s", e.msg);
  data[3 * C * X + 4] = NAN;
  b = opl_normalizer_fit(OPL_NORM_UNIT_GAUSSIAN, data, N, 2, shape, &e);
  ok(!b && e.status == OPL_ERR_NONFINITE && strstr(e.msg, "sample 3"), "NaN in sample 3: ERR_NONFINITE: %s", e.msg);
  b = opl_normalizer_fit(7, data, N, 2, shape, &e);
  ok(!b && e.status == OPL_ERR_ARG, "unknown kind: ERR_ARG");
  opl_normalizer_free(&nz);
  opl_normalizer_free(&g);
  ok(nz == NULL, "free clears the pointer");
}

static void test_norm_loader_io(void) {
  opl_err e;
  write_native(tpath("fit.h5"), 9, 3, 1, 8, 1);
  opl_ds *ds = opl_ds_open(tpath("fit.h5"), NULL, &e);
  opl_loader_opts o = {.ntrain = 6, .ntest = 3, .batch = 4, .sub = 2, .in = {1, 0, 1}, .out = {0, -1, 1}, .shuffle = 1};
  opl_loader *l = opl_loader_new(ds, &o, &e);
  opl_normalizer *nx = opl_normalizer_fit_loader(l, 0, OPL_NORM_UNIT_GAUSSIAN, &e);
  opl_normalizer *ny = opl_normalizer_fit_loader(l, 1, OPL_NORM_UNIT_GAUSSIAN, &e);
  ok(nx && ny && nx->rank == 2 && nx->shape[0] == 2 && nx->shape[1] == 4 && ny->shape[0] == 1 && nx->nfit == 6,
     "fit over the loader's training split: x stats (2, 4), y stats (1, 4), 6 samples");
  /* Naive reference over the closed form of samples 0..5 (training), sub 2. */
  double gm[8], wm[8], gs[8], ws[8];
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < 4; i++) {
      double v[6], acc = 0, ss = 0;
      for (int s = 0; s < 6; s++) v[s] = (double)(opl_real)(c == 0 ? va(s, 2 * i, 0) : vu(s, 0, 2 * i, 0));
      for (int s = 0; s < 6; s++) acc += v[s];
      double mu = acc / 6;
      for (int s = 0; s < 6; s++) ss += (v[s] - mu) * (v[s] - mu);
      wm[c * 4 + i] = mu;
      ws[c * 4 + i] = sqrt(ss / 5);
      gm[c * 4 + i] = nx ? nx->mean->data[c * 4 + i] : NAN;
      gs[c * 4 + i] = nx ? nx->std->data[c * 4 + i] : NAN;
    }
  arrays_close(8, gm, wm, RT, 0, "loader fit: mean over training samples only (not the test samples)");
  arrays_close(8, gs, ws, RT * 10, 0, "loader fit: unbiased std over training samples");

  /* Save / load round trip, and into a writer next to other data. */
  const char *f = tpath("norm.h5");
  ok(opl_normalizer_save(f, nx, &e) == OPL_OK, "save");
  opl_normalizer *back = opl_normalizer_load(f, &e);
  ok(back && back->kind == OPL_NORM_UNIT_GAUSSIAN && back->rank == 2 && back->nfit == 6 && back->eps == nx->eps &&
         !memcmp(back->mean->data, nx->mean->data, sizeof(opl_real) * 8) &&
         !memcmp(back->std->data, nx->std->data, sizeof(opl_real) * 8),
     "load: kind, shape, nfit, eps and statistics bit-exact");
  opl_normalizer_free(&back);
  opl_h5w *w = opl_h5w_create(tpath("two.h5"), &e);
  opl_normalizer *g = opl_normalizer_fit_loader(l, 1, OPL_NORM_GAUSSIAN, &e);
  opl_normalizer_put(w, "x_normalizer", nx, &e);
  opl_normalizer_put(w, "y_normalizer", g, &e);
  ok(opl_h5w_commit(&w, &e) == OPL_OK, "two normalizers in one file (x_normalizer, y_normalizer)");
  opl_h5r *r = opl_h5r_open(tpath("two.h5"), &e);
  opl_normalizer *g2 = opl_normalizer_get(r, "y_normalizer", &e);
  ok(g2 && g2->kind == OPL_NORM_GAUSSIAN && g2->mean->data[0] == g->mean->data[0] && g2->std->data[0] == g->std->data[0],
     "gaussian normalizer read back from its group");
  opl_normalizer_free(&g2);
  g2 = opl_normalizer_get(r, "z_normalizer", &e);
  ok(!g2 && e.status == OPL_ERR_NOTFOUND && strstr(e.msg, "z_normalizer"), "missing group: ERR_NOTFOUND: %s", e.msg);
  opl_h5r_close(&r);
  opl_normalizer *none = opl_normalizer_load(tpath("fit.h5"), &e);
  ok(!none && e.status == OPL_ERR_NOTFOUND, "load from a data set file: ERR_NOTFOUND: %s", e.msg);
  w = opl_h5w_create(tpath("fake.h5"), &e);
  opl_tensor *t[2] = {nx->mean, nx->std};
  opl_h5w_put_tensors(w, "normalizer", t, 2, OPL_DT_NATIVE, &e);
  opl_h5w_attr_str(w, "normalizer", "format", "something-else", &e);
  opl_h5w_commit(&w, &e);
  none = opl_normalizer_load(tpath("fake.h5"), &e);
  ok(!none && e.status == OPL_ERR_FORMAT && strstr(e.msg, "something-else"), "wrong format attribute: ERR_FORMAT: %s",
     e.msg);
  opl_normalizer_free(&g);
  opl_normalizer_free(&nx);
  opl_normalizer_free(&ny);
  opl_loader_free(&l);
  opl_ds_close(&ds);
}

/* A normalizer with given per-point mean/std fields (unit gaussian, sample (C, X[, Y])). */
static opl_normalizer *make_nz(int rank, const int64_t *shape, double (*fm)(int64_t, double, double),
                               double (*fs)(int64_t, double, double)) {
  int64_t P = 1;
  for (int i = 0; i < rank; i++) P *= shape[i];
  opl_real *d = calloc((size_t)(2 * P), sizeof(opl_real));
  for (int64_t k = 0; k < 2 * P; k++) d[k] = (opl_real)(k < P ? 0 : 1);
  opl_err e;
  opl_normalizer *nz = opl_normalizer_fit(OPL_NORM_UNIT_GAUSSIAN, d, 2, rank, shape, &e);
  free(d);
  int64_t X = shape[1], Y = rank == 3 ? shape[2] : 1;
  for (int64_t c = 0; c < shape[0]; c++)
    for (int64_t i = 0; i < X; i++)
      for (int64_t j = 0; j < Y; j++) {
        int64_t p = (c * X + i) * Y + j;
        nz->mean->data[p] = (opl_real)fm(c, (double)i / X, (double)j / Y);
        nz->std->data[p] = (opl_real)fs(c, (double)i / X, (double)j / Y);
      }
  return nz;
}

/* Band-limited periodic fields (modes < 4 per axis, plus a Nyquist-8 cosine for mean1). */
static double fm1(int64_t c, double x, double y) {
  (void)y;
  return 1 + c + 0.5 * sin(2 * M_PI * x) + 0.25 * cos(2 * M_PI * 3 * x + 0.3);
}
static double fs1(int64_t c, double x, double y) {
  (void)y;
  return 2 + c + 0.5 * cos(2 * M_PI * 2 * x);
}
static double fm2(int64_t c, double x, double y) {
  return c + sin(2 * M_PI * x) * cos(2 * M_PI * 2 * y) + 0.5 * cos(2 * M_PI * y);
}
static double fs2(int64_t c, double x, double y) { return 2 + c + 0.5 * sin(2 * M_PI * (x + y)); }
static double fnyq(int64_t c, double x, double y) {
  (void)c;
  (void)y;
  return 3 + cos(2 * M_PI * 4 * x);   /* the Nyquist mode of an 8-point grid */
}
static double fstep(int64_t c, double x, double y) {
  (void)c;
  (void)y;
  return x < 0.5 ? 0.01 : 1.0;
}

/* Compare nz's fields with the analytic ones on its grid. */
static void check_fields(const opl_normalizer *r, double (*fm)(int64_t, double, double),
                         double (*fs)(int64_t, double, double), double tol, const char *name) {
  int64_t C = r->shape[0], X = r->shape[1], Y = r->rank == 3 ? r->shape[2] : 1, P = C * X * Y;
  double *g = malloc(sizeof(double) * (size_t)(2 * P)), *w = malloc(sizeof(double) * (size_t)(2 * P));
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < X; i++)
      for (int64_t j = 0; j < Y; j++) {
        int64_t p = (c * X + i) * Y + j;
        g[p] = r->mean->data[p];
        g[P + p] = r->std->data[p];
        w[p] = fm(c, (double)i / X, (double)j / Y);
        w[P + p] = fs(c, (double)i / X, (double)j / Y);
      }
  arrays_close(2 * P, g, w, 0, tol, "%s", name);
  free(g);
  free(w);
}

static void test_resample(void) {
  opl_err e;
#ifdef OPL_DOUBLE
  const double stol = 1e-12;
#else
  const double stol = 2e-6;
#endif
  int64_t s1[2] = {2, 16}, s2[3] = {2, 8, 6};
  opl_normalizer *n1 = make_nz(2, s1, fm1, fs1), *n2 = make_nz(3, s2, fm2, fs2);
  /* Linear: sub-sampling by 2 is exact (new points are old points). */
  opl_normalizer *r = opl_normalizer_resample(n1, 8, 0, OPL_NORM_RESAMPLE_LINEAR, &e);
  int exact = r && r->shape[1] == 8;
  for (int c = 0; exact && c < 2; c++)
    for (int j = 0; j < 8; j++)
      exact &= r->mean->data[c * 8 + j] == n1->mean->data[c * 16 + 2 * j] &&
               r->std->data[c * 8 + j] == n1->std->data[c * 16 + 2 * j];
  ok(exact, "linear 16 -> 8: exactly the stride-2 sub-sampling");
  opl_normalizer_free(&r);
  /* Linear up-sampling 16 -> 24 against a naive periodic interpolation. */
  r = opl_normalizer_resample(n1, 24, 0, OPL_NORM_RESAMPLE_LINEAR, &e);
  double g[48], w[48];
  for (int c = 0; c < 2; c++)
    for (int j = 0; j < 24; j++) {
      double pos = j * 16.0 / 24.0, fr = pos - floor(pos);
      int i0 = (int)floor(pos), i1 = (i0 + 1) % 16;
      w[c * 24 + j] = (1 - fr) * n1->mean->data[c * 16 + i0] + fr * n1->mean->data[c * 16 + i1];
      g[c * 24 + j] = r ? r->mean->data[c * 24 + j] : NAN;
    }
  arrays_close(48, g, w, 0, stol * 10, "linear 16 -> 24 (periodic wrap) equals a naive interpolation");
  opl_normalizer_free(&r);
  /* 2-D linear: (8, 6) -> (4, 3) exact sub-sampling; -> (16, 12) against naive bilinear. */
  r = opl_normalizer_resample(n2, 4, 3, OPL_NORM_RESAMPLE_LINEAR, &e);
  exact = r && r->shape[1] == 4 && r->shape[2] == 3;
  for (int c = 0; exact && c < 2; c++)
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 3; j++)
        exact &= r->mean->data[(c * 4 + i) * 3 + j] == n2->mean->data[(c * 8 + 2 * i) * 6 + 2 * j];
  ok(exact, "linear 2-D (8, 6) -> (4, 3): exactly x[::2, ::2]");
  opl_normalizer_free(&r);
  r = opl_normalizer_resample(n2, 16, 9, OPL_NORM_RESAMPLE_LINEAR, &e);
  double g2[2 * 16 * 9], w2[2 * 16 * 9];
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < 16; i++)
      for (int j = 0; j < 9; j++) {
        double px = i * 8.0 / 16, py = j * 6.0 / 9;
        int x0 = (int)floor(px), y0 = (int)floor(py);
        double fx = px - x0, fy = py - y0;
        const opl_real *m = n2->mean->data + c * 48;
#define M(a, b) m[((a) % 8) * 6 + ((b) % 6)]
        w2[(c * 16 + i) * 9 + j] = (1 - fx) * (1 - fy) * M(x0, y0) + fx * (1 - fy) * M(x0 + 1, y0) +
                                   (1 - fx) * fy * M(x0, y0 + 1) + fx * fy * M(x0 + 1, y0 + 1);
#undef M
        g2[(c * 16 + i) * 9 + j] = r ? r->mean->data[(c * 16 + i) * 9 + j] : NAN;
      }
  arrays_close(2 * 16 * 9, g2, w2, 0, stol * 10, "linear 2-D (8, 6) -> (16, 9) equals naive bilinear");
  opl_normalizer_free(&r);

  /* Spectral: exact for band-limited fields, up and down. */
  r = opl_normalizer_resample(n1, 40, 0, OPL_NORM_RESAMPLE_SPECTRAL, &e);
  if (r) check_fields(r, fm1, fs1, stol * 20, "spectral 16 -> 40: band-limited mean / std exact");
  else ok(0, "spectral 16 -> 40: %s", e.msg);
  opl_normalizer_free(&r);
  r = opl_normalizer_resample(n1, 10, 0, OPL_NORM_RESAMPLE_SPECTRAL, &e);
  if (r) check_fields(r, fm1, fs1, stol * 20, "spectral 16 -> 10 (modes 0..3 < 5): exact");
  else ok(0, "spectral 16 -> 10: %s", e.msg);
  opl_normalizer_free(&r);
  r = opl_normalizer_resample(n2, 12, 10, OPL_NORM_RESAMPLE_SPECTRAL, &e);
  if (r) check_fields(r, fm2, fs2, stol * 20, "spectral 2-D (8, 6) -> (12, 10): exact");
  else ok(0, "spectral 2-D: %s", e.msg);
  opl_normalizer_free(&r);
  /* Spectral resampling is opl_grid_resample's: odd or tiny extents are refused, not guessed. */
  r = opl_normalizer_resample(n1, 9, 0, OPL_NORM_RESAMPLE_SPECTRAL, &e);
  ok(!r && e.status == OPL_ERR_ARG && strstr(e.msg, "even extents"), "spectral 16 -> 9 refused: %s", e.msg);
  opl_normalizer_free(&r);
  r = opl_normalizer_resample(n2, 12, 2, OPL_NORM_RESAMPLE_SPECTRAL, &e);
  ok(!r && e.status == OPL_ERR_ARG && strstr(e.msg, "8 x 6 to 12 x 2"), "spectral 2-D (8, 6) -> (12, 2) refused: %s",
     e.msg);
  opl_normalizer_free(&r);
  /* Nyquist rules: cos(2 pi 4 x) on 16 points folded to 8 points; on 8 points refined to 16. */
  int64_t s16[2] = {1, 16}, s8[2] = {1, 8};
  opl_normalizer *q16 = make_nz(2, s16, fnyq, fnyq), *q8 = make_nz(2, s8, fnyq, fnyq);
  r = opl_normalizer_resample(q16, 8, 0, OPL_NORM_RESAMPLE_SPECTRAL, &e);
  check_fields(r, fnyq, fnyq, stol * 20, "spectral 16 -> 8 folds the +-4 modes into the new Nyquist (= sampling)");
  opl_normalizer_free(&r);
  r = opl_normalizer_resample(q8, 16, 0, OPL_NORM_RESAMPLE_SPECTRAL, &e);
  check_fields(r, fnyq, fnyq, stol * 20, "spectral 8 -> 16 splits the Nyquist mode: cos(2 pi 4 x) exactly");
  opl_normalizer_free(&r);
  opl_normalizer_free(&q16);
  opl_normalizer_free(&q8);
  /* A step std rings under spectral interpolation: clipped at 0; linear stays within range. */
  int64_t s32[2] = {1, 32};
  opl_normalizer *st = make_nz(2, s32, fstep, fstep);
  r = opl_normalizer_resample(st, 100, 0, OPL_NORM_RESAMPLE_SPECTRAL, &e);
  double mn = 1e9, mx = -1e9, mnm = 1e9;
  for (int j = 0; r && j < 100; j++) {
    if (r->std->data[j] < mn) mn = r->std->data[j];
    if (r->mean->data[j] < mnm) mnm = r->mean->data[j];
  }
  ok(r && mn >= 0 && mnm < 0, "spectral resample of a step: mean rings below 0 (%.3g), std clipped at 0 (min %.3g)", mnm, mn);
  opl_normalizer_free(&r);
  r = opl_normalizer_resample(st, 100, 0, OPL_NORM_RESAMPLE_LINEAR, &e);
  mn = 1e9;
  for (int j = 0; r && j < 100; j++) {
    if (r->std->data[j] < mn) mn = r->std->data[j];
    if (r->std->data[j] > mx) mx = r->std->data[j];
  }
  ok(r && mn >= 0.01 - 1e-7 && mx <= 1 + 1e-7, "linear resample of a step stays within [0.01, 1]");
  opl_normalizer_free(&r);
  opl_normalizer_free(&st);
  /* Bad input. */
  r = opl_normalizer_resample(n1, 0, 0, OPL_NORM_RESAMPLE_LINEAR, &e);
  ok(!r && e.status == OPL_ERR_ARG, "new grid of 0 points: ERR_ARG: %s", e.msg);
  r = opl_normalizer_resample(n1, 8, 0, 9, &e);
  ok(!r && e.status == OPL_ERR_ARG, "unknown mode: ERR_ARG");
  int64_t s4[4] = {1, 2, 2, 2};
  opl_real d4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  opl_normalizer *n4 = opl_normalizer_fit(OPL_NORM_UNIT_GAUSSIAN, d4, 2, 4, s4, &e);
  r = opl_normalizer_resample(n4, 4, 4, OPL_NORM_RESAMPLE_LINEAR, &e);
  ok(!r && e.status == OPL_ERR_SHAPE && strstr(e.msg, "(1, 2, 2, 2)"), "rank-4 sample shape: ERR_SHAPE: %s", e.msg);
  opl_normalizer_free(&n4);
  opl_normalizer *gs = opl_normalizer_fit(OPL_NORM_GAUSSIAN, d4, 2, 4, s4, &e);
  r = opl_normalizer_resample(gs, 4, 4, OPL_NORM_RESAMPLE_SPECTRAL, &e);
  ok(r && r->kind == OPL_NORM_GAUSSIAN && r->mean->data[0] == gs->mean->data[0] && r->std->data[0] == gs->std->data[0],
     "gaussian (scalar) normalizer: resample is a copy");
  opl_normalizer_free(&r);
  opl_normalizer_free(&gs);
  opl_normalizer_free(&n1);
  opl_normalizer_free(&n2);
}

/* ---------------------------------------------------------------- graph nodes */

static opl_normalizer *nz_unit, *nz_scalar, *nz_unit0;
static opl_tensor *f_dec(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_normalizer_decode_op(c, *(opl_normalizer *const *)o, x[0]);
}
static opl_tensor *f_enc(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_normalizer_encode_op(c, *(opl_normalizer *const *)o, x[0]);
}
/* A nonlinear use: loss-like square of the decoded output. */
static opl_tensor *f_dec_sq(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_square(c, opl_normalizer_decode_op(c, *(opl_normalizer *const *)o, x[0]));
}

#define IN(r, ...) {.rank = r, .shape = {__VA_ARGS__}}
static const gc_case rows[] = {
    {"normalizer decode_op unit (3, 2, 5)", f_dec, &nz_unit, 1, {IN(3, 3, 2, 5)}},
    {"normalizer encode_op unit (3, 2, 5)", f_enc, &nz_unit, 1, {IN(3, 3, 2, 5)}},
    {"normalizer decode_op then square", f_dec_sq, &nz_unit, 1, {IN(3, 2, 2, 5)}},
    {"normalizer decode_op scalar (2, 3, 4, 2)", f_dec, &nz_scalar, 1, {IN(4, 2, 3, 4, 2)}},
    {"normalizer encode_op scalar (4, 6)", f_enc, &nz_scalar, 1, {IN(2, 4, 6)}},
};
/* Zero mean: the maps are linear, so <r, A x> = <A^T r, x> must hold. */
static const gc_case adjoint_rows[] = {
    {"normalizer decode_op, zero mean", f_dec, &nz_unit0, 1, {IN(3, 3, 2, 5)}},
    {"normalizer encode_op, zero mean", f_enc, &nz_unit0, 1, {IN(3, 3, 2, 5)}},
};

static void test_graph(void) {
  opl_err e;
  int64_t shape[2] = {2, 5};
  opl_real data[4 * 10];
  uint64_t s = 5;
  for (int k = 0; k < 40; k++) data[k] = (opl_real)(gc_uniform(&s) * 3 - 1);
  nz_unit = opl_normalizer_fit(OPL_NORM_UNIT_GAUSSIAN, data, 4, 2, shape, &e);
  nz_scalar = opl_normalizer_fit(OPL_NORM_GAUSSIAN, data, 4, 2, shape, &e);
  nz_unit0 = opl_normalizer_fit(OPL_NORM_UNIT_GAUSSIAN, data, 4, 2, shape, &e);
  for (int p = 0; p < 10; p++) nz_unit0->mean->data[p] = 0;
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));
  gc_run_adjoint_table(adjoint_rows, (int)(sizeof adjoint_rows / sizeof adjoint_rows[0]));

  /* Values: the graph nodes equal the in-place maps. */
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(3, 2, 5));
  for (int k = 0; k < 30; k++) x->data[k] = (opl_real)(gc_uniform(&s) * 2 - 1);
  opl_tensor *yd = opl_normalizer_decode_op(c, nz_unit, x), *ye = opl_normalizer_encode_op(c, nz_unit, x);
  opl_real buf[30], buf2[30];
  memcpy(buf, x->data, sizeof buf);
  memcpy(buf2, x->data, sizeof buf2);
  int64_t bs[3] = {3, 2, 5};
  opl_normalizer_decode(nz_unit, buf, 3, bs, &e);
  opl_normalizer_encode(nz_unit, buf2, 3, bs, &e);
  double gd[30], wd[30], ge[30], we[30];
  for (int k = 0; k < 30; k++) {
    gd[k] = yd ? yd->data[k] : NAN;
    wd[k] = buf[k];
    ge[k] = ye ? ye->data[k] : NAN;
    we[k] = buf2[k];
  }
  arrays_close(30, gd, wd, RT * 10, RT, "decode_op values = in-place decode");
  arrays_close(30, ge, we, RT * 10, RT, "encode_op values = in-place encode");
  opl_tensor *bad = opl_new(c, OPL_DIMS(3, 5, 2));
  ok(opl_normalizer_decode_op(c, nz_unit, bad) == NULL && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "(3, 5, 2)") && strstr(opl_ctx_errmsg(c), "(3, 2, 5)"),
     "decode_op of a (3, 5, 2) tensor: NULL, sticky ERR_SHAPE naming both shapes: %s", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
  opl_normalizer_free(&nz_unit);
  opl_normalizer_free(&nz_scalar);
  opl_normalizer_free(&nz_unit0);
}

int main(void) {
  tap_begin();
  if (!test_tmpdir_make(dir, "loader")) return tap_end();
  diag("files in %s (%s build)", dir, OPL_PRECISION_NAME);
  test_loader_values();
  test_shuffle();
  test_loader_bad();
  test_norm_stats();
  test_norm_loader_io();
  test_resample();
  test_graph();
  test_tmpdir_remove(dir);
  struct stat st;
  ok(stat(dir, &st) != 0, "temporary directory removed");
  return tap_end();
}
