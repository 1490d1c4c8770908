/* Data set layouts: the native writer (round trip, on-disk layout checked with the raw HDF5
 * API, provenance, resume after close and after SIGKILL, parallel puts, bad input), and the
 * readers of the native, FNO MATLAB v7.3 and PDEBench layouts on small files written here
 * with the raw HDF5 C API in exactly those layouts (reversed MATLAB axes, 512-byte user
 * block, MATLAB_class attributes), checking that every value lands at the right
 * [n, t, x, y]. Hostile and malformed files must give a status and print nothing. No ops
 * here, so no gradient-check rows: I/O is not differentiable. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include "datasets/h5layout.h"
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
#define LOCAL_PATH(var, name) \
  char var[256];              \
  snprintf(var, sizeof var, "%s/%s", dir, name)

static int exists(const char *p) { return access(p, F_OK) == 0; }

/* stderr capture: nothing may be printed by failing calls. */
static int saved_fd = -1;
static void stderr_begin(void) {
  fflush(stderr);
  saved_fd = dup(2);
  int fd = open(tpath("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 2);
  close(fd);
}
static long stderr_end(void) {
  fflush(stderr);
  dup2(saved_fd, 2);
  close(saved_fd);
  struct stat st;
  return stat(tpath("stderr.txt"), &st) == 0 ? (long)st.st_size : -1;
}

/* Closed-form values: exactly representable in float32, distinct for every (n, t, x, y). */
static double va(int64_t n, int64_t i, int64_t j) { return -(double)(n * 10000 + i * 100 + j) - 0.5; }
static double vu(int64_t n, int64_t t, int64_t i, int64_t j) { return (double)(n * 100000 + t * 10000 + i * 100 + j) + 0.25; }

/* ---------------------------------------------------------------- raw HDF5 helpers */

/* Write a float64 (or, with ftype, another) dataset at the root; cls != NULL adds the
 * MATLAB_class attribute (a fixed-length string, as MATLAB writes it). */
static void raw_put(hid_t f, const char *name, int rank, const hsize_t *dims, const double *data, hid_t ftype,
                    const char *cls) {
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  hid_t ds = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (cls) {
    hid_t st = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR);
    H5Tset_size(st, strlen(cls));
    hid_t at = H5Acreate2(ds, "MATLAB_class", st, as, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(at, st, cls);
    H5Aclose(at);
    H5Sclose(as);
    H5Tclose(st);
  }
  H5Dclose(ds);
  H5Sclose(sp);
}

static void raw_attr_d(hid_t o, const char *key, double v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(o, key, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  H5Sclose(sp);
}
static void raw_attr_s(hid_t o, const char *key, const char *v) {
  hid_t sp = H5Screate(H5S_SCALAR), t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  hid_t a = H5Acreate2(o, key, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, &v);
  H5Aclose(a);
  H5Tclose(t);
  H5Sclose(sp);
}
static void raw_attr_i(hid_t o, const char *key, long long v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(o, key, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_LLONG, &v);
  H5Aclose(a);
  H5Sclose(sp);
}

/* A new HDF5 file, with a 512-byte user block when ub (filled by mat_header after close). */
static hid_t raw_create(const char *path, int ub) {
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  if (ub) H5Pset_userblock(fcpl, 512);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  H5Pclose(fcpl);
  return f;
}
/* Write MATLAB's v7.3 header text into the user block of a closed file. */
static void mat_header(const char *path) {
  char hdr[512];
  memset(hdr, ' ', sizeof hdr);
  const char *txt = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .";
  memcpy(hdr, txt, strlen(txt));
  hdr[124] = 0;
  hdr[125] = 2;
  hdr[126] = 'I';
  hdr[127] = 'M';
  int fd = open(path, O_WRONLY);
  if (pwrite(fd, hdr, 128, 0) != 128) diag("cannot write the MATLAB header");
  close(fd);
}

/* Read a whole dataset of a file as doubles with the raw API (independent of opl). */
static double *raw_read(const char *path, const char *name, int *rank, hsize_t *dims) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return NULL;
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  double *v = NULL;
  if (ds >= 0) {
    hid_t sp = H5Dget_space(ds);
    *rank = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    v = malloc(sizeof(double) * (size_t)n);
    H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(sp);
    H5Dclose(ds);
  }
  H5Fclose(f);
  return v;
}

/* ---------------------------------------------------------------- native writer */

typedef struct gen {
  opl_ds_dims d;
  double *x, *y, *t;
} gen;

static void gen_init(gen *g, int64_t n, int64_t t, int sdim, int64_t x, int64_t y) {
  g->d = (opl_ds_dims){.n = n, .t = t, .sdim = sdim, .x = x, .y = sdim == 2 ? y : 1};
  g->x = malloc(sizeof(double) * (size_t)x);
  g->y = malloc(sizeof(double) * (size_t)(y > 0 ? y : 1));
  g->t = malloc(sizeof(double) * (size_t)t);
  for (int64_t i = 0; i < x; i++) g->x[i] = (double)i / (double)x;
  for (int64_t i = 0; i < y; i++) g->y[i] = 2.0 * (double)i / (double)y;
  for (int64_t i = 0; i < t; i++) g->t[i] = 0.5 * (double)(i + 1);
}
static void gen_free(gen *g) {
  free(g->x);
  free(g->y);
  free(g->t);
}

/* Sample n of the closed-form data set in double. */
static void sample(const gen *g, int64_t n, double *a, double *u) {
  int64_t X = g->d.x, Y = g->d.y;
  for (int64_t i = 0; i < X; i++)
    for (int64_t j = 0; j < Y; j++) a[i * Y + j] = va(n, i, j);
  for (int64_t t = 0; t < g->d.t; t++)
    for (int64_t i = 0; i < X; i++)
      for (int64_t j = 0; j < Y; j++) u[(t * X + i) * Y + j] = vu(n, t, i, j);
}

static const opl_kv prov[] = {OPL_KVS("equation", "burgers"), OPL_KVD("nu", 1e-3), OPL_KVI("seed", 42),
                              OPL_KVS("solver", "dopri5"), OPL_KVD("rtol", 1e-8)};
#define NPROV 5

/* Write a whole native file (all samples) with the given dtype; returns the status. */
static int write_native(const char *path, const gen *g, opl_dtype disk, opl_err *e) {
  opl_ds_writer *w = opl_ds_writer_create(path, &g->d, disk, g->x, g->y, g->t, prov, NPROV, e);
  if (!w) return e->status;
  int64_t P = g->d.x * g->d.y;
  double *a = malloc(sizeof(double) * (size_t)P), *u = malloc(sizeof(double) * (size_t)(P * g->d.t));
  int st = OPL_OK;
  for (int64_t n = g->d.n - 1; n >= 0 && !st; n--) {   /* any order */
    sample(g, n, a, u);
    st = opl_ds_writer_put(w, n, a, u, OPL_DT_F64, e);
  }
  free(a);
  free(u);
  if (st) {
    opl_ds_writer_abort(&w);
    return st;
  }
  return opl_ds_writer_finish(&w, e);
}

/* Check every value of an open data set against the closed form, through range reads. */
static int check_all(opl_ds *ds, const gen *g, const char *what) {
  const opl_ds_info *in = opl_ds_get_info(ds);
  int64_t N = in->dims.n, T = in->dims.t, X = in->dims.x, Y = in->dims.y, P = X * Y;
  opl_real *a = malloc(sizeof(opl_real) * (size_t)(N * P)), *u = malloc(sizeof(opl_real) * (size_t)(N * T * P));
  double *ga = malloc(sizeof(double) * (size_t)(N * P)), *gu = malloc(sizeof(double) * (size_t)(N * T * P));
  double *wa = malloc(sizeof(double) * (size_t)(N * P)), *wu = malloc(sizeof(double) * (size_t)(N * T * P));
  opl_err e;
  int st = opl_ds_read_a_range(ds, 0, N, 1, a, &e);
  if (!st) st = opl_ds_read_u_range(ds, 0, N, 0, T, 1, u, &e);
  if (st) diag("%s: %s", what, e.msg);
  for (int64_t n = 0; n < N; n++) sample(g, n, wa + n * P, wu + n * T * P);
  for (int64_t k = 0; k < N * P; k++) ga[k] = a[k];
  for (int64_t k = 0; k < N * T * P; k++) gu[k] = u[k];
  int pass = ok(st == OPL_OK, "%s: read all samples", what);
  pass &= arrays_close(N * P, ga, wa, 0, 0, "%s: a values at [n, x%s]", what, Y > 1 ? ", y" : "");
  pass &= arrays_close(N * T * P, gu, wu, 0, 0, "%s: u values at [n, t, x%s]", what, Y > 1 ? ", y" : "");
  /* one sample's a in float64: the stored values exactly (float32 files: the closed form rounded) */
  int f64 = 1;
  for (int64_t n = 0; n < N && f64; n++) {
    f64 = opl_ds_read_a_f64(ds, n, ga + n * P, &e) == OPL_OK;
    for (int64_t k = 0; f64 && k < P; k++)
      f64 = ga[n * P + k] == (in->bits == 32 ? (double)(float)wa[n * P + k] : wa[n * P + k]);
  }
  pass &= ok(f64, "%s: opl_ds_read_a_f64 gives every sample's a as stored (%d-bit)", what, in->bits);
  free(a);
  free(u);
  free(ga);
  free(gu);
  free(wa);
  free(wu);
  return pass;
}

static void test_native_roundtrip(void) {
  opl_err e;
  const struct {
    int sdim;
    int64_t n, t, x, y;
    opl_dtype disk;
    int bits;
    const char *name;
  } cases[] = {
      {1, 5, 3, 8, 1, OPL_DT_F32, 32, "native 1-D float32"},
      {1, 4, 1, 16, 1, OPL_DT_F64, 64, "native 1-D float64, final time only (T = 1)"},
      {2, 3, 2, 6, 4, OPL_DT_F32, 32, "native 2-D float32 (X = 6 != Y = 4)"},
  };
  for (int c = 0; c < 3; c++) {
    gen g;
    gen_init(&g, cases[c].n, cases[c].t, cases[c].sdim, cases[c].x, cases[c].y);
    LOCAL_PATH(f, "native.h5");
    unlink(f);
    int st = write_native(f, &g, cases[c].disk, &e);
    ok(st == OPL_OK, "%s: written (%s)", cases[c].name, st ? e.msg : "ok");
    LOCAL_PATH(part, "native.h5.partial");
    ok(exists(f) && !exists(part), "%s: final file present, no partial left", cases[c].name);
    int v = -1;
    ok(opl_h5_verify(f, &v, &e) == OPL_OK && v == 1, "%s: opl checksum present and correct (opl_h5_verify)",
       cases[c].name);

    /* On-disk layout with the raw API: a [N, X(, Y)], u [N, T, X(, Y)], x, t, no done. */
    int ra = 0, ru = 0, rx = 0;
    hsize_t da[4], du[4], dx[4];
    double *a = raw_read(f, "a", &ra, da), *u = raw_read(f, "u", &ru, du), *x = raw_read(f, "x", &rx, dx);
    int sd = cases[c].sdim;
    int shape_ok = a && u && x && ra == sd + 1 && ru == sd + 2 && da[0] == (hsize_t)g.d.n &&
                   da[1] == (hsize_t)g.d.x && du[0] == (hsize_t)g.d.n && du[1] == (hsize_t)g.d.t &&
                   du[2] == (hsize_t)g.d.x && (sd == 1 || (da[2] == (hsize_t)g.d.y && du[3] == (hsize_t)g.d.y)) &&
                   rx == 1 && dx[0] == (hsize_t)g.d.x;
    ok(shape_ok, "%s: raw HDF5 shapes a [N, X%s], u [N, T, X%s], x [X]", cases[c].name, sd == 2 ? ", Y" : "",
       sd == 2 ? ", Y" : "");
    if (shape_ok) {
      int good = 1;
      int64_t X = g.d.x, Y = g.d.y, T = g.d.t;
      for (int64_t n = 0; n < g.d.n; n++)
        for (int64_t t = 0; t < T; t++)
          for (int64_t i = 0; i < X; i++)
            for (int64_t j = 0; j < Y; j++) {
              good &= u[((n * T + t) * X + i) * Y + j] == vu(n, t, i, j);
              if (t == 0) good &= a[(n * X + i) * Y + j] == va(n, i, j);
            }
      ok(good, "%s: raw values row-major [n][t][x][y] as written", cases[c].name);
      ok(memcmp(x, g.x, sizeof(double) * (size_t)X) == 0, "%s: x coordinates bit-exact", cases[c].name);
    }
    free(a);
    free(u);
    free(x);
    hid_t fid = H5Fopen(f, H5F_ACC_RDONLY, H5P_DEFAULT);
    ok(fid >= 0 && H5Lexists(fid, "done", H5P_DEFAULT) == 0, "%s: 'done' removed by finish", cases[c].name);
    H5Fclose(fid);

    /* Reader. */
    opl_ds *ds = opl_ds_open(f, NULL, &e);
    ok(ds != NULL, "%s: opl_ds_open (%s)", cases[c].name, ds ? "ok" : e.msg);
    if (!ds) {
      gen_free(&g);
      continue;
    }
    const opl_ds_info *in = opl_ds_get_info(ds);
    ok(in->layout == OPL_DS_NATIVE && in->dims.n == g.d.n && in->dims.t == g.d.t && in->dims.sdim == sd &&
           in->dims.x == g.d.x && in->dims.y == g.d.y && in->bits == cases[c].bits && !in->t0_dropped &&
           !in->transposed,
       "%s: info (layout %s, N %lld, T %lld, X %lld, Y %lld, %d bits)", cases[c].name, opl_ds_layout_name(in->layout),
       (long long)in->dims.n, (long long)in->dims.t, (long long)in->dims.x, (long long)in->dims.y, in->bits);
    ok(in->t && in->x && memcmp(in->t, g.t, sizeof(double) * (size_t)g.d.t) == 0 &&
           memcmp(in->x, g.x, sizeof(double) * (size_t)g.d.x) == 0 &&
           (sd == 1 || (in->y && memcmp(in->y, g.y, sizeof(double) * (size_t)g.d.y) == 0)),
       "%s: coordinates read back", cases[c].name);
    const opl_kv *eq = opl_kv_find(in->attrs, in->nattrs, "equation"), *nu = opl_kv_find(in->attrs, in->nattrs, "nu"),
                 *sd_ = opl_kv_find(in->attrs, in->nattrs, "seed"), *lay = opl_kv_find(in->attrs, in->nattrs, "layout"),
                 *lv = opl_kv_find(in->attrs, in->nattrs, "layout_version"),
                 *ov = opl_kv_find(in->attrs, in->nattrs, "opl_version");
    ok(eq && !strcmp(eq->s, "burgers") && nu && nu->d == 1e-3 && sd_ && sd_->i == 42 && lay &&
           !strcmp(lay->s, OPL_DS_LAYOUT_NAME) && lv && lv->i == OPL_DS_LAYOUT_VERSION && ov &&
           !strcmp(ov->s, OPL_VERSION),
       "%s: provenance attributes (equation, nu, seed, layout, layout_version, opl_version)", cases[c].name);
    check_all(ds, &g, cases[c].name);

    /* Index lists (unsorted, repeated), frame ranges and stride sub against a direct loop. */
    int64_t idx[5] = {2, 0, 2, 1, g.d.n - 1};
    int sub = 2;
    int64_t nx = g.d.x / sub, ny = sd == 2 ? g.d.y / sub : 1, t0 = g.d.t > 1 ? 1 : 0, nt = g.d.t - t0;
    int64_t P = nx * ny;
    opl_real *ub = malloc(sizeof(opl_real) * (size_t)(5 * nt * P)), *ab = malloc(sizeof(opl_real) * (size_t)(5 * P));
    double *got = malloc(sizeof(double) * (size_t)(5 * nt * P)), *want = malloc(sizeof(double) * (size_t)(5 * nt * P));
    int st1 = opl_ds_read_u(ds, idx, 5, t0, nt, sub, ub, &e);
    for (int j = 0; j < 5; j++)
      for (int64_t t = 0; t < nt; t++)
        for (int64_t i = 0; i < nx; i++)
          for (int64_t k = 0; k < ny; k++) {
            int64_t o = ((j * nt + t) * nx + i) * ny + k;
            got[o] = ub[o];
            want[o] = vu(idx[j], t0 + t, i * sub, k * sub);
          }
    ok(st1 == OPL_OK, "%s: read u by an unsorted index list with repeats", cases[c].name);
    arrays_close(5 * nt * P, got, want, 0, 0, "%s: u[idx, %lld:%lld, ::2%s] equals a direct loop", cases[c].name,
                 (long long)t0, (long long)(t0 + nt), sd == 2 ? ", ::2" : "");
    st1 = opl_ds_read_a(ds, idx, 5, sub, ab, &e);
    for (int j = 0; j < 5; j++)
      for (int64_t i = 0; i < nx; i++)
        for (int64_t k = 0; k < ny; k++) {
          got[(j * nx + i) * ny + k] = ab[(j * nx + i) * ny + k];
          want[(j * nx + i) * ny + k] = va(idx[j], i * sub, k * sub);
        }
    ok(st1 == OPL_OK, "%s: read a by index list", cases[c].name);
    arrays_close(5 * P, got, want, 0, 0, "%s: a[idx, ::2] equals a direct loop", cases[c].name);
    free(ub);
    free(ab);
    free(got);
    free(want);
    opl_ds_close(&ds);
    ok(ds == NULL, "%s: close clears the pointer", cases[c].name);
    gen_free(&g);
  }
}

/* Samples put from OpenMP threads. */
static void test_parallel_puts(void) {
  opl_err e;
  gen g;
  gen_init(&g, 24, 3, 1, 32, 1);
  LOCAL_PATH(f, "par.h5");
  opl_ds_writer *w = opl_ds_writer_create(f, &g.d, OPL_DT_F32, g.x, NULL, g.t, prov, NPROV, &e);
  ok(w != NULL, "parallel: writer created");
  int bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(dynamic, 1)
  for (int64_t n = 0; n < g.d.n; n++) {
    double a[32], u[96];
    opl_err le;
    sample(&g, n, a, u);
    if (opl_ds_writer_put(w, n, a, u, OPL_DT_F64, &le) != OPL_OK) bad++;
  }
  ok(bad == 0, "parallel: 24 puts from OpenMP threads succeed (%d failed)", bad);
  ok(opl_ds_writer_todo(w, NULL) == 0, "parallel: nothing left to do");
  ok(!exists(f), "parallel: nothing at the final path before finish");
  ok(opl_ds_writer_finish(&w, &e) == OPL_OK && w == NULL, "parallel: finish");
  opl_ds *ds = opl_ds_open(f, NULL, &e);
  ok(ds != NULL, "parallel: reopened");
  if (ds) check_all(ds, &g, "parallel");
  opl_ds_close(&ds);
  gen_free(&g);
}

static void test_resume(void) {
  opl_err e;
  gen g;
  gen_init(&g, 6, 2, 2, 4, 3);
  LOCAL_PATH(f, "resume.h5");
  LOCAL_PATH(part, "resume.h5.partial");
  double a[12], u[24];
  opl_ds_writer *w = opl_ds_writer_create(f, &g.d, OPL_DT_F64, g.x, g.y, g.t, prov, NPROV, &e);
  for (int64_t n = 0; n < 6; n += 2) {
    sample(&g, n, a, u);
    opl_ds_writer_put(w, n, a, u, OPL_DT_F64, &e);
  }
  int64_t todo[6];
  ok(opl_ds_writer_todo(w, todo) == 3 && todo[0] == 1 && todo[1] == 3 && todo[2] == 5, "todo lists 1, 3, 5");
  int st = opl_ds_writer_finish(&w, &e);
  ok(st == OPL_ERR_STATE && w != NULL && strstr(e.msg, "3 of 6") && strstr(e.msg, "first missing: 1"),
     "finish with missing samples: ERR_STATE, writer kept: %s", e.msg);
  opl_ds_writer_close(&w);
  ok(w == NULL && exists(part) && !exists(f), "close keeps the partial file, nothing at the final path");

  /* Opening the partial file as a data set is refused. */
  opl_ds *ds = opl_ds_open(part, NULL, &e);
  ok(!ds && e.status == OPL_ERR_FORMAT && strstr(e.msg, "unfinished"), "partial file refused by the reader: %s", e.msg);

  /* Mismatching resumes: every one names the difference and leaves the file alone. */
  opl_kv p2[NPROV];
  memcpy(p2, prov, sizeof p2);
  p2[1].d = 2e-3;
  w = opl_ds_writer_resume(f, &g.d, OPL_DT_F64, g.x, g.y, g.t, p2, NPROV, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "'nu'") && strstr(e.msg, "0.001") && strstr(e.msg, "0.002"),
     "resume with another nu: ERR_ARG naming it and both values: %s", e.msg);
  p2[1] = (opl_kv)OPL_KVI("nu", 1);
  w = opl_ds_writer_resume(f, &g.d, OPL_DT_F64, g.x, g.y, g.t, p2, NPROV, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "'nu'") && strstr(e.msg, "integer"),
     "resume with nu of another type: ERR_ARG: %s", e.msg);
  w = opl_ds_writer_resume(f, &g.d, OPL_DT_F64, g.x, g.y, g.t, prov, NPROV - 1, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "'rtol'") && strstr(e.msg, "not requested"),
     "resume without an attribute of the file: ERR_ARG: %s", e.msg);
  opl_kv p3[NPROV + 1];
  memcpy(p3, prov, sizeof prov);
  p3[NPROV] = (opl_kv)OPL_KVS("forcing", "none");
  w = opl_ds_writer_resume(f, &g.d, OPL_DT_F64, g.x, g.y, g.t, p3, NPROV + 1, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "'forcing'") && strstr(e.msg, "absent"),
     "resume with an extra attribute: ERR_ARG: %s", e.msg);
  opl_ds_dims d2 = g.d;
  d2.x = 8;
  double x8[8] = {0};
  w = opl_ds_writer_resume(f, &d2, OPL_DT_F64, x8, g.y, g.t, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_SHAPE && strstr(e.msg, "(6, 4, 3)") && strstr(e.msg, "(6, 8, 3)"),
     "resume with another X: ERR_SHAPE naming both shapes: %s", e.msg);
  w = opl_ds_writer_resume(f, &g.d, OPL_DT_F32, g.x, g.y, g.t, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_SHAPE && strstr(e.msg, "float64") && strstr(e.msg, "float32"),
     "resume with another dtype: ERR_SHAPE: %s", e.msg);
  double t2[2] = {g.t[0], g.t[1] + 1e-12};
  w = opl_ds_writer_resume(f, &g.d, OPL_DT_F64, g.x, g.y, t2, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "t[1]"), "resume with other times: ERR_ARG naming t[1]: %s", e.msg);
  w = opl_ds_writer_resume(tpath("nothing.h5"), &g.d, OPL_DT_F64, g.x, g.y, g.t, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_NOTFOUND, "resume without a partial file: ERR_NOTFOUND");

  /* The right resume. */
  w = opl_ds_writer_resume(f, &g.d, OPL_DT_F64, g.x, g.y, g.t, prov, NPROV, &e);
  ok(w != NULL, "resume with the same arguments (%s)", w ? "ok" : e.msg);
  int64_t k = opl_ds_writer_todo(w, todo);
  ok(k == 3 && todo[0] == 1 && todo[1] == 3 && todo[2] == 5, "resumed writer still has 1, 3, 5 to do");
  for (int64_t j = 0; j < k; j++) {
    sample(&g, todo[j], a, u);
    opl_ds_writer_put(w, todo[j], a, u, OPL_DT_F64, &e);
  }
  ok(opl_ds_writer_finish(&w, &e) == OPL_OK && exists(f) && !exists(part), "finish after resume");
  ds = opl_ds_open(f, NULL, &e);
  ok(ds != NULL, "resumed data set opens");
  if (ds) check_all(ds, &g, "resumed");
  opl_ds_close(&ds);
  gen_free(&g);
}

/* A generator killed with SIGKILL keeps every sample it marked done. */
static void test_kill(void) {
  opl_err e;
  gen g;
  gen_init(&g, 8, 2, 1, 16, 1);
  LOCAL_PATH(f, "killed.h5");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    opl_err ce;
    opl_ds_writer *w = opl_ds_writer_create(f, &g.d, OPL_DT_F32, g.x, NULL, g.t, prov, NPROV, &ce);
    double a[16], u[32];
    for (int64_t n = 0; w && n < 8; n++) {
      if (n == 2 || n == 6) continue;
      if (n == 7) raise(SIGKILL);   /* killed with 5 samples done: 0, 1, 3, 4, 5 */
      sample(&g, n, a, u);
      opl_ds_writer_put(w, n, a, u, OPL_DT_F64, &ce);
    }
    _exit(3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "generator child killed by SIGKILL");
  ok(!exists(f), "nothing at the final path after the kill");
  opl_ds_writer *w = opl_ds_writer_resume(f, &g.d, OPL_DT_F32, g.x, NULL, g.t, prov, NPROV, &e);
  ok(w != NULL, "resume after SIGKILL (%s)", w ? "ok" : e.msg);
  int64_t todo[8];
  int64_t k = opl_ds_writer_todo(w, todo);
  ok(k == 3 && todo[0] == 2 && todo[1] == 6 && todo[2] == 7, "samples 2, 6, 7 left to do (%lld left)", (long long)k);
  double a[16], u[32];
  for (int64_t j = 0; j < k; j++) {
    sample(&g, todo[j], a, u);
    opl_ds_writer_put(w, todo[j], a, u, OPL_DT_F64, &e);
  }
  ok(opl_ds_writer_finish(&w, &e) == OPL_OK, "finish after resume");
  opl_ds *ds = opl_ds_open(f, NULL, &e);
  if (ds) check_all(ds, &g, "killed and resumed");
  else ok(0, "killed and resumed data set opens: %s", e.msg);
  opl_ds_close(&ds);
  gen_free(&g);
}

static void test_writer_bad(void) {
  opl_err e;
  gen g;
  gen_init(&g, 4, 2, 1, 8, 1);
  LOCAL_PATH(f, "bad.h5");
  opl_kv res[] = {OPL_KVS("layout", "mine")};
  opl_ds_writer *w = opl_ds_writer_create(f, &g.d, OPL_DT_F32, g.x, NULL, g.t, res, 1, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "reserved"), "reserved provenance key: ERR_ARG: %s", e.msg);
  opl_kv dup[] = {OPL_KVD("nu", 1), OPL_KVD("nu", 2)};
  w = opl_ds_writer_create(f, &g.d, OPL_DT_F32, g.x, NULL, g.t, dup, 2, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "twice"), "duplicate key: ERR_ARG: %s", e.msg);
  opl_ds_dims d0 = g.d;
  d0.x = 0;
  w = opl_ds_writer_create(f, &d0, OPL_DT_F32, g.x, NULL, g.t, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_SHAPE && strstr(e.msg, "X = 0"), "X = 0: ERR_SHAPE: %s", e.msg);
  d0 = g.d;
  d0.sdim = 3;
  w = opl_ds_writer_create(f, &d0, OPL_DT_F32, g.x, NULL, g.t, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_SHAPE, "sdim 3: ERR_SHAPE: %s", e.msg);
  w = opl_ds_writer_create(f, &g.d, OPL_DT_F32, g.x, NULL, NULL, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "'t'"), "NULL times: ERR_ARG: %s", e.msg);
  w = opl_ds_writer_create(tpath("no/such/dir/x.h5"), &g.d, OPL_DT_F32, g.x, NULL, g.t, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_IO && strstr(e.msg, "no/such/dir"), "missing directory: ERR_IO: %s", e.msg);
  ok(!exists(tpath("bad.h5.partial")), "failed creates leave no partial file");

  w = opl_ds_writer_create(f, &g.d, OPL_DT_F32, g.x, NULL, g.t, prov, NPROV, &e);
  double a[8], u[16];
  sample(&g, 1, a, u);
  u[11] = NAN;
  int st = opl_ds_writer_put(w, 1, a, u, OPL_DT_F64, &e);
  ok(st == OPL_ERR_NONFINITE && strstr(e.msg, "sample 1") && strstr(e.msg, "t index 1, x index 3"),
     "NaN in u: ERR_NONFINITE naming sample and position: %s", e.msg);
  sample(&g, 2, a, u);
  a[5] = -INFINITY;
  st = opl_ds_writer_put(w, 2, a, u, OPL_DT_F64, &e);
  ok(st == OPL_ERR_NONFINITE && strstr(e.msg, "sample 2") && strstr(e.msg, "a has") && strstr(e.msg, "x index 5"),
     "-Inf in a: ERR_NONFINITE: %s", e.msg);
  sample(&g, 3, a, u);
  u[0] = 1e39;
  st = opl_ds_writer_put(w, 3, a, u, OPL_DT_F64, &e);
  ok(st == OPL_ERR_NONFINITE && strstr(e.msg, "sample 3") && strstr(e.msg, "float32"),
     "1e39 into a float32 file: ERR_NONFINITE: %s", e.msg);
  float af[8], uf[16];
  for (int i = 0; i < 8; i++) af[i] = (float)va(0, i, 0);
  for (int i = 0; i < 16; i++) uf[i] = (float)vu(0, i / 8, i % 8, 0);
  uf[3] = INFINITY;
  st = opl_ds_writer_put(w, 0, af, uf, OPL_DT_F32, &e);
  ok(st == OPL_ERR_NONFINITE && strstr(e.msg, "sample 0"), "Inf in float input: ERR_NONFINITE: %s", e.msg);
  st = opl_ds_writer_put(w, 4, a, u, OPL_DT_F64, &e);
  ok(st == OPL_ERR_ARG && strstr(e.msg, "4 outside [0, 4)"), "index out of range: ERR_ARG: %s", e.msg);
  st = opl_ds_writer_put(w, 0, NULL, u, OPL_DT_F64, &e);
  ok(st == OPL_ERR_ARG, "NULL a: ERR_ARG");
  ok(opl_ds_writer_todo(w, NULL) == 4 && opl_ds_writer_status(w) == OPL_OK, "refused puts wrote nothing; writer usable");
  uf[3] = 1;
  for (int64_t n = 0; n < 4; n++) {
    sample(&g, n, a, u);
    if (n == 0) st = opl_ds_writer_put(w, 0, af, uf, OPL_DT_F32, &e);
    else st = opl_ds_writer_put(w, n, a, u, OPL_DT_F64, &e);
  }
  ok(st == OPL_OK && opl_ds_writer_finish(&w, &e) == OPL_OK, "after the refusals the data set completes");
  opl_ds_writer_abort(&w);   /* NULL: no-op */

  /* abort removes the partial file. */
  w = opl_ds_writer_create(f, &g.d, OPL_DT_F32, g.x, NULL, g.t, prov, NPROV, &e);
  ok(exists(tpath("bad.h5.partial")), "partial exists while generating");
  opl_ds_writer_abort(&w);
  ok(!w && !exists(tpath("bad.h5.partial")) && exists(f), "abort removes the partial, the old file stays");
  gen_free(&g);
}

/* ---------------------------------------------------------------- FNO MATLAB files */

/* 1-D, FNO burgers_data_R10.mat: a, u MATLAB (N, X) = HDF5 [X][N], user block, MATLAB_class. */
static void test_fno_burgers(void) {
  opl_err e;
  enum { N = 5, X = 12 };
  LOCAL_PATH(f, "burgers_data_R10.mat");
  double a[X * N], u[X * N];
  for (int n = 0; n < N; n++)
    for (int i = 0; i < X; i++) {
      a[i * N + n] = va(n, i, 0);        /* HDF5 [i][n] = MATLAB a(n, i) */
      u[i * N + n] = vu(n, 0, i, 0);
    }
  hid_t fid = raw_create(f, 1);
  hsize_t dims[2] = {X, N};
  raw_put(fid, "a", 2, dims, a, H5T_IEEE_F64LE, "double");
  raw_put(fid, "u", 2, dims, u, H5T_IEEE_F64LE, "double");
  H5Fclose(fid);
  mat_header(f);
  opl_ds *ds = opl_ds_open(f, NULL, &e);
  ok(ds != NULL, "FNO Burgers R10 .mat opens (%s)", ds ? "ok" : e.msg);
  if (!ds) return;
  const opl_ds_info *in = opl_ds_get_info(ds);
  ok(in->layout == OPL_DS_FNO_MAT && in->transposed && in->dims.n == N && in->dims.t == 1 && in->dims.sdim == 1 &&
         in->dims.x == X && in->bits == 64 && !in->t0_dropped && !strcmp(in->a_name, "a") && !strcmp(in->u_name, "u"),
     "R10: fno-mat, N %lld, T %lld (final time), X %lld, float64", (long long)in->dims.n, (long long)in->dims.t,
     (long long)in->dims.x);
  gen g;
  gen_init(&g, N, 1, 1, X, 1);
  check_all(ds, &g, "R10");
  /* Samples 1..3, stride 3 (x[::3]). */
  opl_real buf[3 * 4];
  double got[12], want[12];
  int st = opl_ds_read_u_range(ds, 1, 3, 0, 1, 3, buf, &e);
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < 4; i++) {
      got[j * 4 + i] = buf[j * 4 + i];
      want[j * 4 + i] = vu(1 + j, 0, 3 * i, 0);
    }
  ok(st == OPL_OK, "R10: range read with sub 3");
  arrays_close(12, got, want, 0, 0, "R10: u[1:4, ::3] lands at [n, x]");
  st = opl_ds_read_u_range(ds, 0, 1, 0, 1, 5, buf, &e);
  ok(st == OPL_ERR_ARG && strstr(e.msg, "sub = 5 does not divide") && strstr(e.msg, "X = 12") && strstr(e.msg, "'u'"),
     "sub 5 on X = 12: ERR_ARG naming file, dataset, values: %s", e.msg);
  opl_ds_close(&ds);
  gen_free(&g);
}

/* 1-D with time, FNO Burgers_v1000_t200: input MATLAB (N, X), output MATLAB (N, T+1, X)
 * (frame 0 = input, no t variable) = HDF5 [X][T+1][N]. */
static void test_fno_burgers_time(void) {
  opl_err e;
  enum { N = 4, T = 5, X = 8 };
  LOCAL_PATH(f, "Burgers_v1000_t200.mat");
  double in_[X * N], out[X * (T + 1) * N];
  for (int n = 0; n < N; n++)
    for (int i = 0; i < X; i++) {
      in_[i * N + n] = va(n, i, 0);
      for (int t = 0; t <= T; t++)   /* MATLAB output(n, t, i) = HDF5 [i][t][n] */
        out[(i * (T + 1) + t) * N + n] = t == 0 ? va(n, i, 0) : vu(n, t - 1, i, 0);
    }
  hid_t fid = raw_create(f, 1);
  hsize_t d1[2] = {X, N}, d2[3] = {X, T + 1, N};
  raw_put(fid, "input", 2, d1, in_, H5T_IEEE_F64LE, "double");
  raw_put(fid, "output", 3, d2, out, H5T_IEEE_F32LE, "single");
  H5Fclose(fid);
  mat_header(f);
  opl_ds *ds = opl_ds_open(f, NULL, &e);
  ok(ds != NULL, "FNO Burgers with time opens (%s)", ds ? "ok" : e.msg);
  if (!ds) return;
  const opl_ds_info *in = opl_ds_get_info(ds);
  ok(in->dims.n == N && in->dims.t == T && in->dims.x == X && in->t0_dropped && !strcmp(in->a_name, "input") &&
         !strcmp(in->u_name, "output") && in->bits == 32,
     "input/output: T = %lld after dropping the t = 0 frame (detected: output[:, 0] == input), float32",
     (long long)in->dims.t);
  gen g;
  gen_init(&g, N, T, 1, X, 1);
  check_all(ds, &g, "Burgers with time");
  opl_ds_close(&ds);
  /* Forcing "no t = 0 frame": all T + 1 frames are u. */
  opl_ds_open_opts o = OPL_DS_OPEN_DEFAULTS;
  o.u_has_t0 = 0;
  ds = opl_ds_open(f, &o, &e);
  ok(ds && opl_ds_get_info(ds)->dims.t == T + 1 && !opl_ds_get_info(ds)->t0_dropped, "u_has_t0 = 0 keeps %d frames",
     T + 1);
  opl_ds_close(&ds);
  gen_free(&g);
}

/* 2-D with time, FNO NavierStokes_V1e-3_N5000_T50: a MATLAB (N, X, Y) = HDF5 [Y][X][N],
 * u MATLAB (N, X, Y, T) = HDF5 [T][Y][X][N], t MATLAB (1, T) = HDF5 [T][1]; X != Y to catch
 * swapped axes. ub: with/without the MATLAB user block (then detected by MATLAB_class). */
static void test_fno_ns(int ub) {
  opl_err e;
  enum { N = 3, X = 5, Y = 4, T = 6 };
  LOCAL_PATH(f, ub ? "ns_ub.mat" : "ns_noub.mat");
  double a[Y * X * N], u[T * Y * X * N], t[T];
  for (int n = 0; n < N; n++)
    for (int i = 0; i < X; i++)
      for (int j = 0; j < Y; j++) {
        a[(j * X + i) * N + n] = va(n, i, j);   /* MATLAB a(n, i, j) */
        for (int k = 0; k < T; k++) u[((k * Y + j) * X + i) * N + n] = vu(n, k, i, j);   /* MATLAB u(n, i, j, k) */
      }
  for (int k = 0; k < T; k++) t[k] = k + 1;
  hid_t fid = raw_create(f, ub);
  hsize_t da[3] = {Y, X, N}, du[4] = {T, Y, X, N}, dt[2] = {T, 1};
  raw_put(fid, "a", 3, da, a, H5T_IEEE_F32LE, "single");
  raw_put(fid, "u", 4, du, u, H5T_IEEE_F32LE, "single");
  raw_put(fid, "t", 2, dt, t, H5T_IEEE_F64LE, "double");
  H5Fclose(fid);
  if (ub) mat_header(f);
  opl_ds *ds = opl_ds_open(f, NULL, &e);
  const char *nm = ub ? "NS (user block)" : "NS (MATLAB_class only)";
  ok(ds != NULL, "%s opens (%s)", nm, ds ? "ok" : e.msg);
  if (!ds) return;
  const opl_ds_info *in = opl_ds_get_info(ds);
  ok(in->layout == OPL_DS_FNO_MAT && in->dims.n == N && in->dims.t == T && in->dims.sdim == 2 && in->dims.x == X &&
         in->dims.y == Y && !in->t0_dropped,
     "%s: N %lld, T %lld, X %lld, Y %lld (X = first MATLAB spatial index)", nm, (long long)in->dims.n,
     (long long)in->dims.t, (long long)in->dims.x, (long long)in->dims.y);
  ok(in->t && in->t[0] == 1 && in->t[T - 1] == T, "%s: times t = 1..%d from variable 't'", nm, T);
  gen g;
  gen_init(&g, N, T, 2, X, Y);
  check_all(ds, &g, nm);
  /* MATLAB u(n, i, j, k) lives at HDF5 [k][j][i][n] and lands at [n][k][i][j]: spot checks. */
  opl_real buf[T * X * Y];
  int64_t idx[1] = {2};
  opl_ds_read_u(ds, idx, 1, 0, T, 1, buf, &e);
  ok(buf[(3 * X + 4) * Y + 1] == (opl_real)vu(2, 3, 4, 1) && buf[(5 * X + 0) * Y + 3] == (opl_real)vu(2, 5, 0, 3),
     "%s: u(n=2, i=4, j=1, t=3) and u(2, 0, 3, 5) at [n][t][x][y]", nm);
  opl_ds_close(&ds);
  gen_free(&g);
}

/* Darcy-like coeff/sol, and user-named variables. */
static void test_fno_names(void) {
  opl_err e;
  enum { N = 2, X = 3, Y = 3 };
  LOCAL_PATH(f, "darcy.mat");
  double a[N * X * Y], u[N * X * Y];
  for (int n = 0; n < N; n++)
    for (int i = 0; i < X; i++)
      for (int j = 0; j < Y; j++) {
        a[(j * X + i) * N + n] = va(n, i, j);
        u[(j * X + i) * N + n] = vu(n, 0, i, j);
      }
  hid_t fid = raw_create(f, 1);
  hsize_t d[3] = {Y, X, N};
  raw_put(fid, "coeff", 3, d, a, H5T_IEEE_F64LE, "double");
  raw_put(fid, "sol", 3, d, u, H5T_IEEE_F64LE, "double");
  raw_put(fid, "w0", 3, d, u, H5T_IEEE_F64LE, "double");
  raw_put(fid, "w", 3, d, a, H5T_IEEE_F64LE, "double");
  H5Fclose(fid);
  mat_header(f);
  opl_ds *ds = opl_ds_open(f, NULL, &e);
  ok(ds && !strcmp(opl_ds_get_info(ds)->a_name, "coeff") && opl_ds_get_info(ds)->dims.t == 1,
     "coeff/sol found by name, final time (T = 1)");
  gen g;
  gen_init(&g, N, 1, 2, X, Y);
  if (ds) check_all(ds, &g, "Darcy coeff/sol");
  opl_ds_close(&ds);
  opl_ds_open_opts o = OPL_DS_OPEN_DEFAULTS;
  o.a_name = "w";
  o.u_name = "w0";
  ds = opl_ds_open(f, &o, &e);
  ok(ds && !strcmp(opl_ds_get_info(ds)->u_name, "w0"), "user-named variables w / w0");
  if (ds) check_all(ds, &g, "named variables (a <- w = coeff values, u <- w0 = sol values)");
  opl_ds_close(&ds);
  o.u_name = "nope";
  ds = opl_ds_open(f, &o, &e);
  ok(!ds && e.status == OPL_ERR_NOTFOUND && strstr(e.msg, "'nope'") && strstr(e.msg, "coeff") &&
         strstr(e.msg, "darcy.mat"),
     "missing named variable: ERR_NOTFOUND listing the datasets: %s", e.msg);
  gen_free(&g);
}

/* ---------------------------------------------------------------- PDEBench */

static void test_pdebench(void) {
  opl_err e;
  enum { N = 3, T1 = 5, X = 8 };   /* T1 = stored frames, t = 0 included */
  LOCAL_PATH(f, "1D_Burgers_Sols_Nu0.01.hdf5");
  double ten[N * T1 * X], xc[X], tc[T1 + 1];
  for (int n = 0; n < N; n++)
    for (int t = 0; t < T1; t++)
      for (int i = 0; i < X; i++) ten[(n * T1 + t) * X + i] = t == 0 ? va(n, i, 0) : vu(n, t - 1, i, 0);
  for (int i = 0; i < X; i++) xc[i] = (i + 0.5) / X;
  for (int t = 0; t <= T1; t++) tc[t] = 0.05 * t;
  hid_t fid = raw_create(f, 0);
  hsize_t d3[3] = {N, T1, X}, dx[1] = {X}, dt[1] = {T1 + 1};
  raw_put(fid, "tensor", 3, d3, ten, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "x-coordinate", 1, dx, xc, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "t-coordinate", 1, dt, tc, H5T_IEEE_F32LE, NULL);
  raw_attr_d(fid, "Nu", 0.01);
  H5Fclose(fid);
  opl_ds *ds = opl_ds_open(f, NULL, &e);
  ok(ds != NULL, "PDEBench file opens (%s)", ds ? "ok" : e.msg);
  if (!ds) return;
  const opl_ds_info *in = opl_ds_get_info(ds);
  const opl_kv *nu = opl_kv_find(in->attrs, in->nattrs, "Nu");
  ok(in->layout == OPL_DS_PDEBENCH && in->dims.n == N && in->dims.t == T1 - 1 && in->dims.x == X && in->a_from_u &&
         in->t0_dropped,
     "PDEBench: N %lld, T %lld (frames after t = 0), X %lld, a = tensor[:, 0]", (long long)in->dims.n,
     (long long)in->dims.t, (long long)in->dims.x);
  ok(nu && nu->type == OPL_KV_REAL && nu->d == 0.01, "PDEBench: root attribute Nu = 0.01 exposed");
  ok(in->x && in->x[3] == (double)(float)xc[3] && in->t && fabs(in->t[0] - 0.05) < 1e-7 &&
         fabs(in->t[T1 - 2] - 0.05 * (T1 - 1)) < 1e-7,
     "PDEBench: x-coordinate, and t = t-coordinate[1..T]");
  gen g;
  gen_init(&g, N, T1 - 1, 1, X, 1);
  check_all(ds, &g, "PDEBench");
  opl_ds_close(&ds);

  /* A t-coordinate shorter than the frames is an error naming it. */
  LOCAL_PATH(f2, "pdebench_short_t.hdf5");
  fid = raw_create(f2, 0);
  hsize_t ds2[1] = {T1 - 1};
  raw_put(fid, "tensor", 3, d3, ten, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "t-coordinate", 1, ds2, tc, H5T_IEEE_F32LE, NULL);
  H5Fclose(fid);
  ds = opl_ds_open(f2, NULL, &e);
  ok(!ds && e.status == OPL_ERR_SHAPE && strstr(e.msg, "t-coordinate") && strstr(e.msg, "4 entries") &&
         strstr(e.msg, "at least 5"),
     "short t-coordinate: ERR_SHAPE: %s", e.msg);
  gen_free(&g);
}

/* ---------------------------------------------------------------- bad files */

static void test_bad_files(void) {
  opl_err e;
  enum { N = 3, X = 4 };
  double a[N * X], u[(N + 1) * X];
  for (int k = 0; k < N * X; k++) a[k] = k;
  for (int k = 0; k < (N + 1) * X; k++) u[k] = k;
  /* N mismatch (MATLAB). */
  LOCAL_PATH(f1, "nmismatch.mat");
  hid_t fid = raw_create(f1, 1);
  hsize_t da[2] = {X, N}, du[2] = {X, N + 1};
  raw_put(fid, "a", 2, da, a, H5T_IEEE_F64LE, "double");
  raw_put(fid, "u", 2, du, u, H5T_IEEE_F64LE, "double");
  H5Fclose(fid);
  mat_header(f1);
  /* u of rank 5 (MATLAB). */
  LOCAL_PATH(f2, "rank.mat");
  fid = raw_create(f2, 1);
  hsize_t d5[5] = {1, 1, 1, X, N};
  raw_put(fid, "a", 2, da, a, H5T_IEEE_F64LE, "double");
  raw_put(fid, "u", 5, d5, a, H5T_IEEE_F64LE, "double");
  H5Fclose(fid);
  mat_header(f2);
  /* integer data. */
  LOCAL_PATH(f3, "int.mat");
  fid = raw_create(f3, 1);
  raw_put(fid, "a", 2, da, a, H5T_STD_I32LE, "int32");
  raw_put(fid, "u", 2, da, a, H5T_IEEE_F64LE, "double");
  H5Fclose(fid);
  mat_header(f3);
  /* foreign HDF5: no recognizable layout. */
  LOCAL_PATH(f4, "foreign.h5");
  fid = raw_create(f4, 0);
  raw_put(fid, "velocity", 2, da, a, H5T_IEEE_F64LE, NULL);
  H5Fclose(fid);
  /* native: missing u, u of the wrong rank, newer version, NaN inside sample 2. */
  LOCAL_PATH(f5, "native_nou.h5");
  fid = raw_create(f5, 1);
  raw_attr_s(fid, "layout", OPL_DS_LAYOUT_NAME);
  raw_attr_i(fid, "layout_version", 1);
  hsize_t na[2] = {N, X}, nx[1] = {X}, nt[1] = {1}, nu3[3] = {N, 1, X};
  raw_put(fid, "a", 2, na, a, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "x", 1, nx, a, H5T_IEEE_F64LE, NULL);
  raw_put(fid, "t", 1, nt, a, H5T_IEEE_F64LE, NULL);
  H5Fclose(fid);
  LOCAL_PATH(f6, "native_rank.h5");
  fid = raw_create(f6, 1);
  raw_attr_s(fid, "layout", OPL_DS_LAYOUT_NAME);
  raw_attr_i(fid, "layout_version", 1);
  raw_put(fid, "a", 2, na, a, H5T_IEEE_F32LE, NULL);
  hsize_t nu4[4] = {N, 1, X, 1}; /* rank 4 on 1-D a: neither [N, T, X] nor the steady [N, X] */
  raw_put(fid, "u", 4, nu4, a, H5T_IEEE_F32LE, NULL);
  H5Fclose(fid);
  LOCAL_PATH(f7, "native_v9.h5");
  fid = raw_create(f7, 1);
  raw_attr_s(fid, "layout", OPL_DS_LAYOUT_NAME);
  raw_attr_i(fid, "layout_version", 9);
  H5Fclose(fid);
  LOCAL_PATH(f8, "native_nan.h5");
  double un[N * X];
  for (int k = 0; k < N * X; k++) un[k] = k;
  un[2 * X + 1] = NAN;
  fid = raw_create(f8, 1);
  raw_attr_s(fid, "layout", OPL_DS_LAYOUT_NAME);
  raw_attr_i(fid, "layout_version", 1);
  raw_put(fid, "a", 2, na, a, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "u", 3, nu3, un, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "x", 1, nx, a, H5T_IEEE_F64LE, NULL);
  raw_put(fid, "t", 1, nt, a, H5T_IEEE_F64LE, NULL);
  H5Fclose(fid);
  /* Empty axes: t of shape [0] with u [N, 0, X]; x of shape [0] with a [N, 0], u [N, 1, 0]. */
  LOCAL_PATH(f9, "native_empty_t.h5");
  hsize_t nt0[1] = {0}, nu0[3] = {N, 0, X}, na0[2] = {N, 0}, nx0[1] = {0}, nux0[3] = {N, 1, 0};
  fid = raw_create(f9, 1);
  raw_attr_s(fid, "layout", OPL_DS_LAYOUT_NAME);
  raw_attr_i(fid, "layout_version", 1);
  raw_put(fid, "a", 2, na, a, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "u", 3, nu0, a, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "x", 1, nx, a, H5T_IEEE_F64LE, NULL);
  raw_put(fid, "t", 1, nt0, a, H5T_IEEE_F64LE, NULL);
  H5Fclose(fid);
  LOCAL_PATH(f10, "native_empty_x.h5");
  fid = raw_create(f10, 1);
  raw_attr_s(fid, "layout", OPL_DS_LAYOUT_NAME);
  raw_attr_i(fid, "layout_version", 1);
  raw_put(fid, "a", 2, na0, a, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "u", 3, nux0, a, H5T_IEEE_F32LE, NULL);
  raw_put(fid, "x", 1, nx0, a, H5T_IEEE_F64LE, NULL);
  raw_put(fid, "t", 1, nt, a, H5T_IEEE_F64LE, NULL);
  H5Fclose(fid);
  /* Files carrying opl's layout attribute must carry opl's checksum: stamp them as opl does. */
  const char *stamped[] = {f5, f6, f7, f8, f9, f10};
  for (int k = 0; k < 6; k++)
    if (opl_h5_stamp(stamped[k], &e)) diag("stamp: %s", e.msg);
  FILE *g = fopen(tpath("garbage.h5"), "wb");
  for (int i = 0; i < 3000; i++) fputc((i * 7919) & 0xFF, g);
  fclose(g);
  mkdir(tpath("adir"), 0755);

  struct {
    const char *file;
    int want;
    const char *w1, *w2;
  } cases[] = {
      {"nmismatch.mat", OPL_ERR_SHAPE, "N mismatch", "3 samples"},
      {"rank.mat", OPL_ERR_SHAPE, "rank 5", "'u'"},
      {"int.mat", OPL_ERR_FORMAT, "integer", "'a'"},
      {"foreign.h5", OPL_ERR_FORMAT, "unknown layout", "velocity"},
      {"native_nou.h5", OPL_ERR_NOTFOUND, "no dataset 'u'", "native_nou.h5"},
      {"native_rank.h5", OPL_ERR_SHAPE, "rank 4", "expected 3"},
      {"native_v9.h5", OPL_ERR_UNSUPPORTED, "layout_version 9", "native_v9.h5"},
      {"native_empty_t.h5", OPL_ERR_SHAPE, "dataset 'u'", "axis 1 is empty"},
      {"native_empty_x.h5", OPL_ERR_SHAPE, "dataset 'a'", "axis 1 is empty"},
      {"garbage.h5", OPL_ERR_FORMAT, "not an HDF5 file", "garbage.h5"},
      {"missing.h5", OPL_ERR_NOTFOUND, "missing.h5", "cannot open"},
      {"adir", OPL_ERR_IO, "directory", "adir"},
  };
  int nc = (int)(sizeof cases / sizeof cases[0]);
  int got[16];
  char msg[16][512];
  int nan_st, nan_st2;
  char nan_msg[512], nan_msg2[512];
  stderr_begin();
  for (int i = 0; i < nc; i++) {
    opl_ds *ds = opl_ds_open(tpath(cases[i].file), NULL, &e);
    got[i] = ds ? OPL_OK : e.status;
    snprintf(msg[i], sizeof msg[i], "%s", e.msg);
    opl_ds_close(&ds);
  }
  opl_ds *ds = opl_ds_open(f8, NULL, &e);
  opl_real buf[N * X];
  nan_st = ds ? opl_ds_read_u_range(ds, 0, N, 0, 1, 1, buf, &e) : -1;
  snprintf(nan_msg, sizeof nan_msg, "%s", e.msg);
  int64_t idx[2] = {2, 0};
  nan_st2 = ds ? opl_ds_read_u(ds, idx, 2, 0, 1, 1, buf, &e) : -1;
  snprintf(nan_msg2, sizeof nan_msg2, "%s", e.msg);
  int st_ok = ds ? opl_ds_read_u_range(ds, 0, 2, 0, 1, 1, buf, &e) : -1;
  int st_idx = ds ? opl_ds_read_a(ds, (int64_t[]){3}, 1, 1, buf, &e) : -1;
  char idx_msg[512];
  snprintf(idx_msg, sizeof idx_msg, "%s", e.msg);
  int st_fr = ds ? opl_ds_read_u_range(ds, 0, 1, 0, 2, 1, buf, &e) : -1;
  char fr_msg[512];
  snprintf(fr_msg, sizeof fr_msg, "%s", e.msg);
  opl_ds_close(&ds);
  long nerr = stderr_end();
  for (int i = 0; i < nc; i++)
    ok(got[i] == cases[i].want && strstr(msg[i], cases[i].w1) && strstr(msg[i], cases[i].w2),
       "%s: %s (got %s): %s", cases[i].file, opl_status_name(cases[i].want), opl_status_name(got[i]), msg[i]);
  ok(nan_st == OPL_ERR_NONFINITE && strstr(nan_msg, "sample 2") && strstr(nan_msg, "x index 1") &&
         strstr(nan_msg, "'u'"),
     "NaN in sample 2: ERR_NONFINITE naming the sample: %s", nan_msg);
  ok(nan_st2 == OPL_ERR_NONFINITE && strstr(nan_msg2, "sample 2"),
     "NaN through an index list: ERR_NONFINITE naming sample 2: %s", nan_msg2);
  ok(st_ok == OPL_OK, "samples 0..1 (finite) read fine from the same file");
  ok(st_idx == OPL_ERR_ARG && strstr(idx_msg, "3 outside [0, 3)"), "sample index out of range: ERR_ARG: %s", idx_msg);
  ok(st_fr == OPL_ERR_ARG && strstr(fr_msg, "frames [0, 2) outside [0, 1)"), "frames out of range: ERR_ARG: %s", fr_msg);
  ok(nerr == 0, "nothing printed to stderr by the failing calls (%ld bytes)", nerr);
  H5E_auto2_t fn = NULL;
  void *data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &fn, &data);
  ok(fn != NULL, "the default HDF5 error handler is back afterwards");
  ok(opl_ds_open(NULL, NULL, &e) == NULL && e.status == OPL_ERR_ARG, "NULL path: ERR_ARG");
  opl_ds_open_opts o = OPL_DS_OPEN_DEFAULTS;
  o.layout = OPL_DS_NATIVE;
  ds = opl_ds_open(f1, &o, &e);
  ok(!ds && e.status == OPL_ERR_FORMAT && strstr(e.msg, "not an opl data set"),
     "forcing the native layout on a .mat file: ERR_FORMAT: %s", e.msg);
}

/* ---------------------------------------------------------------- per-sample coordinates */

/* Write a whole native file with per-sample L [N] and t [N, T] (Lv, tv) and no shared t. */
static int write_native_ps(const char *path, const gen *g, const double *Lv, const double *tv, opl_err *e) {
  opl_ds_per_sample ps = {.L = Lv, .t = tv};
  opl_ds_writer *w = opl_ds_writer_create_ps(path, &g->d, OPL_DT_F64, g->x, g->y, NULL, &ps, prov, NPROV, e);
  if (!w) return e->status;
  int64_t P = g->d.x * g->d.y;
  double *a = malloc(sizeof(double) * (size_t)P), *u = malloc(sizeof(double) * (size_t)(P * g->d.t));
  int st = OPL_OK;
  for (int64_t n = 0; n < g->d.n && !st; n++) {
    sample(g, n, a, u);
    st = opl_ds_writer_put(w, n, a, u, OPL_DT_F64, e);
  }
  free(a);
  free(u);
  if (st) {
    opl_ds_writer_abort(&w);
    return st;
  }
  return opl_ds_writer_finish(&w, e);
}

/* Replace dataset `name` of the finished opl file at path by a float64 dataset of shape
 * dims[0..rank) holding v, and re-stamp the checksum (a well-formed file with bad contents). */
static int rewrite_dataset(const char *path, const char *name, int rank, const hsize_t *dims, const double *v) {
  opl_io_lock();
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  int bad = f < 0 || H5Ldelete(f, name, H5P_DEFAULT) < 0;
  hid_t sp = bad ? -1 : H5Screate_simple(rank, dims, NULL);
  hid_t ds = sp < 0 ? -1 : H5Dcreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  bad = bad || ds < 0 || H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0;
  if (ds >= 0) H5Dclose(ds);
  if (sp >= 0) H5Sclose(sp);
  if (f >= 0) H5Fclose(f);
  opl_io_unlock();
  return bad || opl_h5_stamp(path, NULL) != OPL_OK;
}

static void test_per_sample(void) {
  gen g;
  gen_init(&g, 3, 4, 1, 8, 1);
  double Lv[3] = {120.5, 131.25, 128}, tv[12];
  for (int n = 0; n < 3; n++)
    for (int j = 0; j < 4; j++) tv[n * 4 + j] = (90.0 + 10 * n) * (j + 1) / 4.0;
  const char *f = tpath("ps.h5");
  opl_err e = {0};
  ok(write_native_ps(f, &g, Lv, tv, &e) == OPL_OK, "native file with per-sample L and t written (%s)", e.msg);
  opl_ds *ds = opl_ds_open(f, NULL, &e);
  const opl_ds_info *in = ds ? opl_ds_get_info(ds) : NULL;
  ok(in && !in->t && in->t_ps && in->L && in->dims.t == 4 && !memcmp(in->L, Lv, sizeof Lv) &&
         !memcmp(in->t_ps, tv, sizeof tv) && opl_ds_sample_times(in, 2) == in->t_ps + 8 && opl_ds_per_sample_coords(in),
     "reader: per-sample L [3] and t [3, 4] exactly, no shared t (%s)", e.msg);
  if (ds) check_all(ds, &g, "per-sample file");
  opl_ds_close(&ds);

  /* resume compares them bit for bit */
  opl_ds_per_sample ps = {.L = Lv, .t = tv};
  opl_ds_writer *w = opl_ds_writer_create_ps(tpath("psr.h5"), &g.d, OPL_DT_F64, g.x, NULL, NULL, &ps, prov, NPROV, &e);
  opl_ds_writer_close(&w);
  double L2[3] = {120.5, 131.25, 128.5};
  ps.L = L2;
  w = opl_ds_writer_resume_ps(tpath("psr.h5"), &g.d, OPL_DT_F64, g.x, NULL, NULL, &ps, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "L[2]"), "resume with another L refused naming L[2] (%s)", e.msg);
  ps.L = NULL;
  w = opl_ds_writer_resume_ps(tpath("psr.h5"), &g.d, OPL_DT_F64, g.x, NULL, NULL, &ps, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "'L'"), "resume without the stored L refused (%s)", e.msg);
  ps.L = Lv;
  e = (opl_err){0};
  w = opl_ds_writer_resume_ps(tpath("psr.h5"), &g.d, OPL_DT_F64, g.x, NULL, NULL, &ps, prov, NPROV, &e);
  ok(w != NULL, "resume with the same per-sample coordinates (%s)", e.msg);
  opl_ds_writer_abort(&w);

  /* the writer refuses bad values, naming the entry */
  double Lb[3] = {120.5, 0, 128}, tb[12];
  memcpy(tb, tv, sizeof tb);
  tb[6] = tb[5];
  ps = (opl_ds_per_sample){.L = Lb, .t = tv};
  w = opl_ds_writer_create_ps(tpath("bad.h5"), &g.d, OPL_DT_F64, g.x, NULL, NULL, &ps, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "L[1] = 0"), "writer refuses L <= 0 (%s)", e.msg);
  ps = (opl_ds_per_sample){.L = Lv, .t = tb};
  w = opl_ds_writer_create_ps(tpath("bad.h5"), &g.d, OPL_DT_F64, g.x, NULL, NULL, &ps, prov, NPROV, &e);
  ok(!w && e.status == OPL_ERR_ARG && strstr(e.msg, "t[1, 2]"), "writer refuses non-increasing times (%s)", e.msg);

  /* an old-layout file (shared t only; KdV files before per-sample times) still reads */
  const char *fo = tpath("old.h5");
  e = (opl_err){0};
  ok(write_native(fo, &g, OPL_DT_F64, &e) == OPL_OK, "shared-t file written (%s)", e.msg);
  ds = opl_ds_open(fo, NULL, &e);
  in = ds ? opl_ds_get_info(ds) : NULL;
  ok(in && in->t && !in->t_ps && !in->L && in->t[3] == 2.0 && opl_ds_sample_times(in, 2) == in->t &&
         !opl_ds_per_sample_coords(in),
     "shared-t file: t [4] for every sample, no per-sample coordinates (%s)", e.msg);
  opl_ds_close(&ds);

  /* malformed per-sample datasets in well-formed (checksummed) files: refused, naming them */
  struct {
    const char *name, *want;
    int rank;
    hsize_t dims[2];
    double v[12];
    int status;
  } bad[] = {
      {"t", "expected [4] (shared times) or [3, 4]", 2, {3, 3}, {1, 2, 3, 1, 2, 3, 1, 2, 3}, OPL_ERR_SHAPE},
      {"t", "t[1, 2] = 2", 2, {3, 4}, {1, 2, 3, 4, 1, 2, 2, 4, 1, 2, 3, 4}, OPL_ERR_FORMAT},
      {"t", "t[2, 0] = 0", 2, {3, 4}, {1, 2, 3, 4, 1, 2, 3, 4, 0, 2, 3, 4}, OPL_ERR_FORMAT},
      {"t", "t[0, 3] = nan", 2, {3, 4}, {1, 2, 3, NAN, 1, 2, 3, 4, 1, 2, 3, 4}, OPL_ERR_FORMAT},
      {"L", "L[1] = -2", 1, {3, 0}, {1, -2, 3}, OPL_ERR_FORMAT},
      {"L", "L[0] = 0", 1, {3, 0}, {0, 2, 3}, OPL_ERR_FORMAT},
      {"L", "L[2] = nan", 1, {3, 0}, {1, 2, NAN}, OPL_ERR_FORMAT},
      {"L", "has shape (4), expected [3]", 1, {4, 0}, {1, 2, 3, 4}, OPL_ERR_SHAPE},
      {"L", "has shape (3, 1), expected [3]", 2, {3, 1}, {1, 2, 3}, OPL_ERR_SHAPE},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    const char *fb = tpath("malformed.h5");
    int wst = write_native_ps(fb, &g, Lv, tv, &e) || rewrite_dataset(fb, bad[k].name, bad[k].rank, bad[k].dims, bad[k].v);
    ds = wst ? NULL : opl_ds_open(fb, NULL, &e);
    ok(!wst && !ds && e.status == bad[k].status && strstr(e.msg, bad[k].want) && strstr(e.msg, "dataset"),
       "malformed '%s' refused: %s", bad[k].name, e.msg);
    opl_ds_close(&ds);
  }
  gen_free(&g);
}

int main(void) {
  tap_begin();
  if (!test_tmpdir_make(dir, "h5layout")) return tap_end();
  diag("files in %s (%s build)", dir, OPL_PRECISION_NAME);
  test_native_roundtrip();
  test_parallel_puts();
  test_resume();
  test_kill();
  test_writer_bad();
  test_per_sample();
  test_fno_burgers();
  test_fno_burgers_time();
  test_fno_ns(1);
  test_fno_ns(0);
  test_fno_names();
  test_pdebench();
  test_bad_files();
  test_tmpdir_remove(dir);
  struct stat st;
  ok(stat(dir, &st) != 0, "temporary directory removed");
  return tap_end();
}
