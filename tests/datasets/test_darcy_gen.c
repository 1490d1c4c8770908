/* Darcy data sets (datasets/darcy_gen.h): settings and bad input, the native file a run writes
 * (shapes, provenance, coordinates, values equal to the sample regenerated alone and to a direct
 * pde/darcy solve, store stride), independence of the thread count, a stopped run resumed bit for
 * bit against an uninterrupted one, a resume with other settings refused; and the FNO Darcy
 * .mat layout (piececonst_r421: coeff, sol, MATLAB v7.3) on a tiny synthetic file written here
 * with the raw HDF5 API, read with the node-grid stride (X - 1) / sub + 1. */
#include <fcntl.h>
#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/io.h"
#include "datasets/darcy_gen.h"
#include "datasets/h5layout.h"
#include "pde/darcy.h"
#include "tests/tap.h"
#include "tests/tmpdir.h"

static char dir[64];

static const char *tpath(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* 1 if x and y agree at the reader's precision (opl_real: float in the single build). */
static int same_real(const double *x, const double *y, int64_t n) {
  for (int64_t k = 0; k < n; k++)
    if ((opl_real)x[k] != (opl_real)y[k]) return 0;
  return 1;
}

static opl_darcy_gen_config cfg(int64_t n, int res, int store) {
  opl_darcy_gen_config c;
  opl_darcy_gen_config_default(&c);
  c.n = n;
  c.seed = 11;
  c.res = res;
  c.store_res = store;
  c.dtype = OPL_DT_F64;
  return c;
}

static void test_settings(void) {
  opl_err e = {0};
  opl_darcy_gen_config c = cfg(4, 0, 0);
  opl_darcy_gen *g = opl_darcy_gen_new(&c, &e);
  int S = 0, s = 0;
  if (g) opl_darcy_gen_res(g, &S, &s);
  ok(g && S == 421 && s == 85 && !strcmp(opl_darcy_gen_preset(g), "fno"), "default preset fno: 421 -> 85 (%s)",
     e.msg);
  opl_darcy_gen_free(&g);
  struct { opl_darcy_gen_config c; int st; const char *want; } bad[] = {
      {cfg(0, 17, 9), OPL_ERR_ARG, "n = 0"},
      {cfg(2, 2, 0), OPL_ERR_ARG, "resolution 2"},
      {cfg(2, 17, 2), OPL_ERR_ARG, "store resolution 2"},
      {cfg(2, 17, 6), OPL_ERR_SHAPE, "store resolution 6 does not fit the solve resolution 17"},
      {cfg(2, 17, 9), OPL_ERR_ARG, "tau = -1"},
      {cfg(2, 17, 9), OPL_ERR_ARG, "alpha = 0"},
      {cfg(2, 17, 9), OPL_ERR_ARG, "unknown preset 'smooth'"},
  };
  bad[4].c.tau = -1;
  bad[5].c.alpha = 0;
  bad[6].c.preset = "smooth";
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&e, 0, sizeof e);
    g = opl_darcy_gen_new(&bad[i].c, &e);
    ok(!g && e.status == bad[i].st && strstr(e.msg, bad[i].want) && !strncmp(e.msg, "generate: ", 10),
       "refused: %s (%s)", bad[i].want, e.msg);
    opl_darcy_gen_free(&g);
  }
  /* --res alone with the preset's store resolution not fitting: stores at the solve resolution */
  c = cfg(1, 16, 0);
  g = opl_darcy_gen_new(&c, &e);
  if (g) opl_darcy_gen_res(g, &S, &s);
  ok(g && S == 16 && s == 16, "res 16 alone: stored at 16");
  opl_darcy_gen_free(&g);
}

/* Read all of a [N, s, s] and u (one frame) of a file in double (opl_real may be float). */
static int read_all(const char *path, int64_t N, int s, double *a, double *u, const opl_ds_info **info, opl_ds **pds) {
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(path, NULL, &e);
  if (!ds) {
    diag("open %s: %s", path, e.msg);
    return 1;
  }
  opl_real *buf = malloc(sizeof(opl_real) * (size_t)(N * s * s));
  int rc = opl_ds_read_a_range(ds, 0, N, 1, buf, &e);
  for (int64_t k = 0; k < N * s * s; k++) a[k] = buf[k];
  if (!rc) rc = opl_ds_read_u_range(ds, 0, N, 0, 1, 1, buf, &e);
  for (int64_t k = 0; k < N * s * s; k++) u[k] = buf[k];
  free(buf);
  if (rc) diag("read %s: %s", path, e.msg);
  *info = opl_ds_get_info(ds);
  *pds = ds;
  return rc;
}

static void test_file(void) {
  enum { N = 5, S = 33, s = 17 };
  opl_err e = {0};
  opl_darcy_gen_config c = cfg(N, S, s);
  opl_darcy_gen *g = opl_darcy_gen_new(&c, &e);
  const char *f = tpath("darcy.h5");
  opl_gen_run_opts ro = {.threads = 2};
  opl_gen_result r;
  int rc = opl_darcy_gen_run(g, f, &ro, &r, &e);
  struct stat sb;
  ok(rc == OPL_OK && r.solved == N && r.resumed == 0 && stat(tpath("darcy.h5.partial"), &sb) != 0,
     "run of %d samples at %d^2 -> %d^2 writes the file, no partial left (%s)", N, S, s, e.msg);
  double *a = malloc(sizeof(double) * N * s * s), *u = malloc(sizeof(double) * N * s * s);
  const opl_ds_info *in = NULL;
  opl_ds *ds = NULL;
  rc = read_all(f, N, s, a, u, &in, &ds);
  ok(!rc && in->layout == OPL_DS_NATIVE && in->dims.n == N && in->dims.t == 1 && in->dims.sdim == 2 &&
         in->dims.x == s && in->dims.y == s && in->dims.steady,
     "native file read as a [%d, %d, %d] and one steady frame of u", N, s, s);
  ok(in->x && in->y && in->x[0] == 0 && in->x[s - 1] == 1 && in->x[1] == 1.0 / (s - 1) && in->y[4] == 4.0 / (s - 1),
     "coordinates x = y = i / (s - 1)");
  const char *keys[] = {"equation", "preset", "tau", "alpha", "psi_pos", "psi_neg", "ic", "discretization",
                        "solver", "solve_res", "store_res", "stride", "seed", "boundary", "forcing"};
  int have = 1;
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
    if (!opl_kv_find(in->attrs, in->nattrs, keys[k])) {
      have = 0;
      diag("missing attribute %s", keys[k]);
    }
  const opl_kv *eq = opl_kv_find(in->attrs, in->nattrs, "equation"), *st = opl_kv_find(in->attrs, in->nattrs, "stride"),
               *ds_ = opl_kv_find(in->attrs, in->nattrs, "discretization");
  ok(have && eq && !strcmp(eq->s, "darcy") && st && st->i == 2 && ds_ && strstr(ds_->s, "arithmetic mean") &&
         strstr(ds_->s, "(S-1)^2"),
     "provenance: equation darcy, stride 2, the discretization stated");
  /* each stored sample equals the sample regenerated alone, and a direct solve at S, strided */
  double as[s * s], us[s * s];
  int same = 1;
  for (int i = 0; i < N; i++) {
    opl_darcy_gen_sample(g, i, as, us, NULL);
    same &= same_real(as, a + i * s * s, s * s) && same_real(us, u + i * s * s, s * s);
  }
  ok(same, "every stored sample equals opl_darcy_gen_sample (float64 file, read at opl_real precision)");
  opl_darcy_grf *grf = opl_darcy_grf_new(S, 3, 2, NULL);
  opl_darcy *dd = opl_darcy_new(S, NULL);
  double *gg = fftw_malloc(sizeof(double) * S * S), *w = fftw_malloc(sizeof(double) * S * S);
  double aa[S * S], uu[S * S];
  opl_darcy_params p = {3, 2, 12, 3};
  opl_darcy_grf_sample(grf, 11, 3, gg, w);
  opl_darcy_psi(&p, gg, aa, S * S);
  opl_darcy_solve(dd, aa, NULL, uu, NULL);
  double md = 0;
  int amatch = 1, both = 0, pos = 0;
  for (int i = 0; i < s; i++)
    for (int j = 0; j < s; j++) {
      md = fmax(md, fabs((opl_real)uu[(2 * i) * S + 2 * j] - u[3 * s * s + i * s + j]));
      amatch &= (opl_real)aa[(2 * i) * S + 2 * j] == a[3 * s * s + i * s + j];
      pos += a[3 * s * s + i * s + j] == 12;
    }
  both = pos > 0 && pos < s * s;
  ok(md == 0 && amatch && both, "sample 3 = a direct GRF + psi + CHOLMOD solve at %d^2, every 2nd node (both 12 and 3 occur)",
     S);
  double umax = 0;
  for (int k = 0; k < s * s; k++) umax = fmax(umax, u[3 * s * s + k]);
  ok(umax > 0 && umax < 1.0 / (8 * 3), "0 < max u < 1/(8 min a) (maximum principle bound): %.4g", umax);
  fftw_free(gg);
  fftw_free(w);
  opl_darcy_free(&dd);
  opl_darcy_grf_free(&grf);
  opl_ds_close(&ds);
  /* on disk u has no time axis: [N, s, s], as a */
  {
    hsize_t ud[4] = {0}, ad[4] = {0};
    int ur = -1, ar = -1;
    hid_t fid = H5Fopen(f, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t du = fid >= 0 ? H5Dopen2(fid, "u", H5P_DEFAULT) : -1, da = fid >= 0 ? H5Dopen2(fid, "a", H5P_DEFAULT) : -1;
    hid_t su = du >= 0 ? H5Dget_space(du) : -1, sa = da >= 0 ? H5Dget_space(da) : -1;
    if (su >= 0) ur = H5Sget_simple_extent_dims(su, ud, NULL);
    if (sa >= 0) ar = H5Sget_simple_extent_dims(sa, ad, NULL);
    if (su >= 0) H5Sclose(su);
    if (sa >= 0) H5Sclose(sa);
    if (du >= 0) H5Dclose(du);
    if (da >= 0) H5Dclose(da);
    if (fid >= 0) H5Fclose(fid);
    ok(ur == 3 && ud[0] == N && ud[1] == s && ud[2] == s && ar == 3 && ad[1] == s,
       "on disk: u [%llu, %llu, %llu] (rank %d, no time axis), a rank %d", (unsigned long long)ud[0],
       (unsigned long long)ud[1], (unsigned long long)ud[2], ur, ar);
  }
  /* one thread gives the same file contents */
  const char *f1 = tpath("darcy1.h5");
  ro.threads = 1;
  rc = opl_darcy_gen_run(g, f1, &ro, &r, &e);
  double *a1 = malloc(sizeof(double) * N * s * s), *u1 = malloc(sizeof(double) * N * s * s);
  rc = rc ? rc : read_all(f1, N, s, a1, u1, &in, &ds);
  ok(!rc && !memcmp(a, a1, sizeof(double) * N * s * s) && !memcmp(u, u1, sizeof(double) * N * s * s),
     "one thread: the same values as two");
  opl_ds_close(&ds);
  /* the layout before u lost its time axis: u [N, 1, s, s] (the same values written by the
   * native writer with a time axis) reads the same */
  {
    opl_ds_dims d;
    opl_darcy_gen_dims(g, &d);
    d.steady = 0;
    double x[s], t1 = 1;
    for (int i = 0; i < s; i++) x[i] = (double)i / (s - 1);
    int np = 0;
    const opl_kv *pv = opl_darcy_gen_provenance(g, &np);
    const char *fo = tpath("darcy_old.h5");
    opl_err eo = {0};
    opl_ds_writer *w = opl_ds_writer_create(fo, &d, OPL_DT_F64, x, x, &t1, pv, np, &eo);
    int wr = w ? OPL_OK : eo.status;
    for (int i = 0; i < N && !wr; i++) wr = opl_ds_writer_put(w, i, a + i * s * s, u + i * s * s, OPL_DT_F64, &eo);
    if (!wr) wr = opl_ds_writer_finish(&w, &eo);
    opl_ds_writer_close(&w);
    rc = wr ? wr : read_all(fo, N, s, a1, u1, &in, &ds);
    ok(!rc && in->dims.t == 1 && !in->dims.steady && !memcmp(a, a1, sizeof(double) * N * s * s) &&
           !memcmp(u, u1, sizeof(double) * N * s * s),
       "a file with u [%d, 1, %d, %d] reads the same values (%s)", N, s, s, eo.msg);
    opl_ds_close(&ds);
    d.steady = 1;
    d.t = 2;
    double t2[2] = {1, 2};
    eo = (opl_err){0};
    w = opl_ds_writer_create(tpath("darcy_bad.h5"), &d, OPL_DT_F64, x, x, t2, pv, np, &eo);
    ok(!w && eo.status == OPL_ERR_SHAPE && strstr(eo.msg, "steady"), "a steady writer with T = 2 is refused: %s",
       eo.msg);
    opl_ds_writer_close(&w);
  }
  free(a1);
  free(u1);
  free(a);
  free(u);
  opl_darcy_gen_free(&g);
}

static int stop_after(void *user, const opl_gen_progress *p) {
  return p->solved >= *(int *)user;
}

static void test_resume(void) {
  enum { N = 6, S = 17, s = 9 };
  opl_err e = {0};
  opl_darcy_gen_config c = cfg(N, S, s);
  c.dtype = OPL_DT_F32;
  opl_darcy_gen *g = opl_darcy_gen_new(&c, &e);
  const char *full = tpath("full.h5"), *part = tpath("part.h5");
  opl_gen_result r;
  opl_gen_run_opts ro = {.threads = 2};
  int rc = opl_darcy_gen_run(g, full, &ro, &r, &e);
  int stopn = 2;
  opl_gen_run_opts rs = {.threads = 1, .progress = stop_after, .user = &stopn};
  int rc2 = opl_darcy_gen_run(g, part, &rs, &r, &e);
  struct stat sb;
  ok(rc == OPL_OK && rc2 == OPL_ERR_STATE && r.stopped && stat(tpath("part.h5.partial"), &sb) == 0 &&
         stat(part, &sb) != 0,
     "a stopped run returns ERR_STATE and leaves only the partial file (%s)", e.msg);
  /* other settings refused on resume */
  opl_darcy_gen_config c2 = c;
  c2.seed = 12;
  opl_darcy_gen *g2 = opl_darcy_gen_new(&c2, NULL);
  memset(&e, 0, sizeof e);
  rc = opl_darcy_gen_run(g2, part, &ro, &r, &e);
  ok(rc != OPL_OK && strstr(e.msg, "cannot resume") && strstr(e.msg, "seed"), "a resume with another seed is refused "
     "naming it (%s)", e.msg);
  opl_darcy_gen_free(&g2);
  rc = opl_darcy_gen_run(g, part, &ro, &r, &e);
  ok(rc == OPL_OK && r.resumed_file && r.resumed == 2 && r.solved == N - 2, "resumed: %lld already there, %lld solved",
     (long long)r.resumed, (long long)r.solved);
  double a[N * s * s], u[N * s * s], a2[N * s * s], u2[N * s * s];
  const opl_ds_info *in;
  opl_ds *d1 = NULL, *d2 = NULL;
  int r1 = read_all(full, N, s, a, u, &in, &d1), r2 = read_all(part, N, s, a2, u2, &in, &d2);
  ok(!r1 && !r2 && !memcmp(a, a2, sizeof a) && !memcmp(u, u2, sizeof u),
     "the resumed file equals the uninterrupted one bit for bit");
  opl_ds_close(&d1);
  opl_ds_close(&d2);
  opl_darcy_gen_free(&g);
}

/* ---------------------------------------------------------------- FNO piececonst .mat */

static void raw_put(hid_t f, const char *name, int rank, const hsize_t *dims, const double *data) {
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  hid_t st = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR);
  H5Tset_size(st, 6);
  hid_t at = H5Acreate2(ds, "MATLAB_class", st, as, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(at, st, "double");
  H5Aclose(at);
  H5Sclose(as);
  H5Tclose(st);
  H5Dclose(ds);
  H5Sclose(sp);
}

static double vc(int n, int i, int j) { return 3 + n * 1000 + i * 10 + j * 0.5; }
static double vs(int n, int i, int j) { return -(n * 1000 + i * 10 + j * 0.25); }

/* piececonst_r421_N1024_smooth1.mat in small: MATLAB coeff (N, X, Y) and sol (N, X, Y) = HDF5
 * [Y][X][N], plus Kcoeff, Kcoeff_x, Kcoeff_y as the real files have; X != Y, both odd, to catch
 * a swap and to read with sub = 2 on the node grid ((X - 1) / 2 + 1 points). */
static void test_piececonst(void) {
  enum { N = 3, X = 11, Y = 7 };
  const char *f = tpath("piececonst_r11_N3_smooth1.mat");
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  H5Pset_userblock(fcpl, 512);
  hid_t fid = H5Fcreate(f, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  H5Pclose(fcpl);
  double c[Y * X * N], sl[Y * X * N];
  for (int n = 0; n < N; n++)
    for (int i = 0; i < X; i++)
      for (int j = 0; j < Y; j++) {
        c[(j * X + i) * N + n] = vc(n, i, j);   /* MATLAB coeff(n, i, j) at HDF5 [j][i][n] */
        sl[(j * X + i) * N + n] = vs(n, i, j);
      }
  hsize_t d3[3] = {Y, X, N};
  raw_put(fid, "Kcoeff", 3, d3, c);
  raw_put(fid, "Kcoeff_x", 3, d3, c);
  raw_put(fid, "Kcoeff_y", 3, d3, c);
  raw_put(fid, "coeff", 3, d3, c);
  raw_put(fid, "sol", 3, d3, sl);
  H5Fclose(fid);
  char hdr[128];
  memset(hdr, ' ', sizeof hdr);
  const char *txt = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .";
  memcpy(hdr, txt, strlen(txt));
  hdr[124] = 0;
  hdr[125] = 2;
  hdr[126] = 'I';
  hdr[127] = 'M';
  int fd = open(f, O_WRONLY);
  ok(fd >= 0 && pwrite(fd, hdr, 128, 0) == 128, "synthetic v7.3 file written");
  if (fd >= 0) close(fd);
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(f, NULL, &e);
  ok(ds != NULL, "piececonst .mat opens (%s)", ds ? "ok" : e.msg);
  if (!ds) return;
  const opl_ds_info *in = opl_ds_get_info(ds);
  ok(in->layout == OPL_DS_FNO_MAT && !strcmp(in->a_name, "coeff") && !strcmp(in->u_name, "sol") && in->dims.n == N &&
         in->dims.t == 1 && in->dims.sdim == 2 && in->dims.x == X && in->dims.y == Y && in->transposed,
     "coeff / sol found: N %lld, T %lld, X %lld, Y %lld (X = MATLAB's first spatial index)", (long long)in->dims.n,
     (long long)in->dims.t, (long long)in->dims.x, (long long)in->dims.y);
  opl_real a[N * X * Y], u[N * X * Y];
  int rc = opl_ds_read_a_range(ds, 0, N, 1, a, &e) || opl_ds_read_u_range(ds, 0, N, 0, 1, 1, u, &e);
  int good = !rc;
  for (int n = 0; n < N && good; n++)
    for (int i = 0; i < X; i++)
      for (int j = 0; j < Y; j++)
        good &= a[(n * X + i) * Y + j] == (opl_real)vc(n, i, j) && u[(n * X + i) * Y + j] == (opl_real)vs(n, i, j);
  ok(good, "MATLAB coeff(n, i, j) and sol(n, i, j) land at [n][i][j] (%s)", rc ? e.msg : "ok");
  int64_t nx = 0, ny = 0;
  rc = opl_ds_check_sub(ds, 2, &nx, &ny, &e);
  ok(!rc && nx == 6 && ny == 4, "sub 2 on the %d x %d node grid: %lld x %lld nodes ((X - 1) / 2 + 1)", X, Y,
     (long long)nx, (long long)ny);
  opl_real us[N * 6 * 4];
  rc = opl_ds_read_u_range(ds, 0, N, 0, 1, 2, us, &e);
  good = !rc;
  for (int n = 0; n < N && good; n++)
    for (int i = 0; i < 6; i++)
      for (int j = 0; j < 4; j++) good &= us[(n * 6 + i) * 4 + j] == (opl_real)vs(n, 2 * i, 2 * j);
  ok(good, "sol[:, ::2, ::2] read by the hyperslab stride, the ends included (%s)", rc ? e.msg : "ok");
  memset(&e, 0, sizeof e);
  rc = opl_ds_check_sub(ds, 5, &nx, &ny, &e);
  ok(rc == OPL_ERR_ARG && strstr(e.msg, "Y = 7"), "sub 5: X - 1 = 10 fits, neither Y = 7 nor 6: refused naming Y (%s)",
     e.msg);
  opl_ds_close(&ds);
}

int main(void) {
  tap_begin();
  if (!test_tmpdir_make(dir, "darcy_gen")) return tap_end();
  test_settings();
  test_file();
  test_resume();
  test_piececonst();
  test_tmpdir_remove(dir);
  return tap_end();
}
