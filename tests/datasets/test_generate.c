/* Generation runs (datasets/generate.h): settings and bad input, the native file a run writes
 * (structure, provenance, coordinates), values against independent references (the same
 * initial condition and solve called directly through pde/, a linear Burgers mode and the
 * Taylor-Green vortex in closed form), sample i regenerated alone bit for bit, independence of
 * the thread count, stop + resume against an uninterrupted run bit for bit, a resume with other
 * settings refused, a blow-up leaving only the partial file, the Burgers refinement check, KdV
 * with per-sample domains. No ops here, so no gradient-check or adjoint rows. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/io.h"
#include "core/rng.h"
#include "datasets/generate.h"
#include "datasets/h5layout.h"
#include "pde/grf.h"
#include "pde/kdv.h"
#include "pde/solve.h"
#include "tests/tap.h"

static char dir[64];
static int sanitized;

static const char *tpath(const char *name) {
  static char buf[8][256];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}
static int exists(const char *p) { return access(p, F_OK) == 0; }
static const char *partial_of(const char *p) {
  static char buf[4][300];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s.partial", p);
  return buf[k];
}

/* stderr capture: the library must print nothing. */
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

/* A whole dataset of a file as doubles (raw HDF5, independent of opl's readers); NULL if absent.
 * *n gets the element count. */
static double *read_all(const char *path, const char *name, int64_t *n) {
  *n = 0;
  opl_io_lock();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  double *v = NULL;
  if (f >= 0) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d >= 0) {
      hid_t s = H5Dget_space(d);
      hssize_t m = H5Sget_simple_extent_npoints(s);
      v = malloc(sizeof(double) * (size_t)(m > 0 ? m : 1));
      if (v && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        free(v);
        v = NULL;
      }
      *n = m;
      H5Sclose(s);
      H5Dclose(d);
    }
    H5Fclose(f);
  }
  opl_io_unlock();
  return v;
}

/* 1 if dataset `name` of two files holds the same bits. */
static int same_data(const char *p1, const char *p2, const char *name) {
  int64_t n1, n2;
  double *a = read_all(p1, name, &n1), *b = read_all(p2, name, &n2);
  int same = a && b && n1 == n2 && n1 > 0 && !memcmp(a, b, sizeof(double) * (size_t)n1);
  free(a);
  free(b);
  return same;
}

static const opl_kv *attr(const opl_ds_info *in, const char *key) { return opl_kv_find(in->attrs, in->nattrs, key); }

/* The small Burgers run most tests use. */
static void burgers_small(opl_gen_config *c, int64_t n) {
  opl_gen_config_default(c);
  c->equation = "burgers";
  c->preset = "fno";
  c->n = n;
  c->seed = 1234;
  c->res = sanitized ? 64 : 128;
  c->store_res = sanitized ? 32 : 64;
  c->nt = 3;
  c->T = 0.1;
  c->dt = 2e-3;
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_input(void) {
  opl_gen_config c;
  opl_err e = {0};
  stderr_begin();
  burgers_small(&c, 4);
  c.res = 1024;
  c.store_res = 100;
  opl_gen *g = opl_gen_new(&c, &e);
  long printed = stderr_end();
  ok(!g && e.status == OPL_ERR_SHAPE && strstr(e.msg, "100") && strstr(e.msg, "1024"),
     "store resolution 100 not dividing 1024: OPL_ERR_SHAPE naming both (%s)", e.msg);
  ok(printed == 0, "a refused run prints nothing");

  burgers_small(&c, 0);
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "n = 0"), "n = 0: OPL_ERR_ARG (%s)", e.msg);
  burgers_small(&c, -3);
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "n = -3"), "n = -3: OPL_ERR_ARG (%s)", e.msg);

  burgers_small(&c, 4);
  c.equation = "heat";
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "heat") && strstr(e.msg, "burgers"),
     "unknown equation named with the known ones (%s)", e.msg);
  burgers_small(&c, 4);
  c.preset = "nope";
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "nope") && strstr(e.msg, "chebfun"),
     "unknown preset named with the known ones (%s)", e.msg);
  burgers_small(&c, 4);
  c.scheme = "fno";
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "fno"), "scheme fno refused for burgers (%s)", e.msg);
  burgers_small(&c, 4);
  c.scheme = "leapfrog";
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "leapfrog"), "unknown scheme named (%s)", e.msg);
  burgers_small(&c, 4);
  c.a = 6;
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "a = 6"), "kdv's a refused for burgers (%s)", e.msg);
  burgers_small(&c, 4);
  c.dt = -1e-3;
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "dt"), "dt < 0 refused (%s)", e.msg);
  burgers_small(&c, 4);
  c.nu = 0;
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "nu = 0"), "nu = 0 refused (%s)", e.msg);
  burgers_small(&c, 4);
  c.res = 63;
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "63"), "odd res refused (%s)", e.msg);
  burgers_small(&c, 4);
  c.equation = "kdv";
  c.preset = NULL;
  c.scheme = "cn-heun";
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "cn-heun"), "cn-heun refused for kdv (%s)", e.msg);
  burgers_small(&c, 4);
  c.refine = 2;
  c.equation = "ns";
  c.preset = NULL;
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "refine"), "refinement check refused for ns (%s)", e.msg);
  double ic[8] = {0};
  burgers_small(&c, 2);
  c.ic = ic;
  c.ic_n = 8;
  e = (opl_err){0};
  g = opl_gen_new(&c, &e);
  ok(!g && e.status == OPL_ERR_ARG && strstr(e.msg, "n = 2"), "explicit initial condition with n = 2 refused (%s)",
     e.msg);

  opl_dtype dt = OPL_DT_NATIVE;
  e = (opl_err){0};
  ok(opl_gen_parse_dtype("float16", &dt, &e) == OPL_ERR_ARG && strstr(e.msg, "float16") && strstr(e.msg, "float32"),
     "dtype float16 refused naming the expected values (%s)", e.msg);
  ok(!opl_gen_parse_dtype("float64", &dt, NULL) && dt == OPL_DT_F64, "dtype float64 parsed");
  int plan = -1;
  ok(opl_gen_parse_plan("wisdom", &plan, NULL) == OPL_ERR_ARG && !opl_gen_parse_plan("measure", &plan, NULL) &&
         plan == OPL_GEN_PLAN_MEASURE,
     "plan names parsed and checked");
  ok(!exists(tpath("bad.h5")) && !exists(partial_of(tpath("bad.h5"))), "no file appears for refused settings");
}

/* ---------------------------------------------------------------- a run and its file */

typedef struct prog_log {
  int calls, first_ok, monotone, stop_after;
  int64_t last_done, last_solved, total;
  double last_eta;
} prog_log;

static int prog_cb(void *user, const opl_gen_progress *p) {
  prog_log *l = user;
  if (l->calls == 0) l->first_ok = p->index == -1 && p->solved == 0;
  else if (p->done != l->last_done + 1 || p->solved != l->last_solved + 1) l->monotone = 0;
  l->calls++;
  l->last_done = p->done;
  l->last_solved = p->solved;
  l->total = p->total;
  l->last_eta = p->eta;
  return l->stop_after > 0 && p->solved >= l->stop_after;
}

static void test_run_and_file(void) {
  const int64_t N = 10;
  opl_gen_config c;
  burgers_small(&c, N);
  c.dtype = OPL_DT_F64;
  opl_err e = {0};
  opl_gen *g = opl_gen_new(&c, &e);
  ok(g != NULL, "burgers run settings accepted (%s)", e.msg);
  if (!g) return;
  const char *path = tpath("b.h5");
  prog_log lg = {.monotone = 1};
  opl_gen_run_opts ro = {.threads = 2, .progress = prog_cb, .user = &lg};
  opl_gen_result r;
  int rc = opl_gen_run(g, path, &ro, &r, &e);
  ok(rc == OPL_OK && exists(path) && !exists(partial_of(path)), "run of %lld samples writes the file and no partial "
     "(%s)", (long long)N, e.msg);
  ok(r.solved == N && r.resumed == 0 && !r.stopped && r.steps > 0 && r.failed_index == -1,
     "result: %lld solved, %lld steps", (long long)r.solved, (long long)r.steps);
  ok(lg.first_ok && lg.monotone && lg.calls == N + 1 && lg.last_done == N && lg.total == N && isfinite(lg.last_eta) &&
         lg.last_eta == 0,
     "progress: a first call, then one per sample with done/solved counting up, ETA 0 at the end (%d calls)",
     lg.calls);

  /* structure, with opl's own checks */
  int verified = -1;
  ok(opl_h5_verify(path, &verified, NULL) == OPL_OK && verified == 1, "the finished file's checksum verifies");
  char **names = NULL;
  int nn = 0;
  int has[5] = {0};
  if (!opl_h5_list(path, "/", &names, &nn, NULL))
    for (int i = 0; i < nn; i++) {
      const char *want[5] = {"a", "u", "x", "t", "done"};
      for (int k = 0; k < 5; k++) has[k] |= !strcmp(names[i], want[k]);
    }
  opl_h5_names_free(&names, nn);
  ok(has[0] && has[1] && has[2] && has[3] && !has[4], "datasets a, u, x, t present, done removed");
  opl_ds *ds = opl_ds_open(path, NULL, &e);
  ok(ds != NULL, "opl_ds_open reads the file (%s)", e.msg);
  if (ds) {
    const opl_ds_info *in = opl_ds_get_info(ds);
    ok(in->layout == OPL_DS_NATIVE && in->dims.n == N && in->dims.t == 3 && in->dims.sdim == 1 &&
           in->dims.x == c.store_res && in->bits == 64,
       "native layout, N = %lld, T = 3, X = %d, float64", (long long)N, c.store_res);
    const opl_kv *k;
    ok((k = attr(in, "equation")) && k->type == OPL_KV_STR && !strcmp(k->s, "burgers"), "attribute equation");
    ok((k = attr(in, "preset")) && !strcmp(k->s, "fno"), "attribute preset");
    ok((k = attr(in, "seed")) && k->type == OPL_KV_INT && k->i == 1234, "attribute seed");
    ok((k = attr(in, "nu")) && k->type == OPL_KV_REAL && k->d == 0.1, "attribute nu (preset value)");
    ok((k = attr(in, "dt")) && k->d == 2e-3, "attribute dt (override)");
    ok((k = attr(in, "scheme")) && !strcmp(k->s, "etdrk4"), "attribute scheme");
    ok((k = attr(in, "solve_res")) && k->i == c.res && (k = attr(in, "store_res")) && k->i == c.store_res,
       "attributes solve_res, store_res");
    ok((k = attr(in, "grf_sigma")) && k->d == 25 && (k = attr(in, "grf_tau")) && k->d == 5, "GRF parameters");
    ok((k = attr(in, "opl_version")) && !strcmp(k->s, OPL_VERSION), "attribute opl_version");
    ok((k = attr(in, "plan")) && !strcmp(k->s, "estimate"), "attribute plan");
    ok(!attr(in, "refine_maxdiff"), "no refinement check for the fno preset");
    int xok = in->x && in->t && in->t[2] == 0.1;
    for (int i = 0; xok && i < c.store_res; i++) xok = in->x[i] == (double)i / c.store_res;
    for (int j = 0; xok && j < 3; j++) xok = fabs(in->t[j] - 0.1 * (j + 1) / 3) < 1e-15;
    ok(xok, "coordinates x = i / X, t = j T / nt");
    opl_ds_close(&ds);
  }

  /* values: sample 7 alone, bit for bit, and against a direct solve through pde/ */
  const int64_t as = opl_gen_a_size(g), us = opl_gen_u_size(g);
  double *a7 = malloc(sizeof(double) * as), *u7 = malloc(sizeof(double) * us);
  rc = opl_gen_sample(g, 7, a7, u7, NULL, &e);
  int64_t na, nu;
  double *fa = read_all(path, "a", &na), *fu = read_all(path, "u", &nu);
  ok(rc == OPL_OK && fa && fu && na == N * as && nu == N * us, "sample 7 alone solved; file read back");
  if (!rc && fa && fu) {
    ok(!memcmp(a7, fa + 7 * as, sizeof(double) * as) && !memcmp(u7, fu + 7 * us, sizeof(double) * us),
       "sample 7 regenerated alone is bit-identical to sample 7 of the run");
    /* independent path: the GRF draw of (seed, 7), the solver, stride storage by hand */
    opl_grid *gr = opl_grid_new_1d(c.res, 1.0, OPL_GRID_ESTIMATE, NULL);
    opl_grf_params gp;
    opl_grf_preset("burgers-fno", &gp, NULL);
    opl_grf *f = opl_grf_new(gr, &gp, NULL);
    double *u0 = malloc(sizeof(double) * c.res), *wk = malloc(sizeof(double) * opl_grf_work_size(f));
    double *ref = malloc(sizeof(double) * 3 * c.store_res);
    opl_grf_sample_seeded(f, 1234, 7, u0, wk);
    opl_burgers_params bp;
    opl_solve_opts o;
    opl_solve_burgers_preset("fno", &bp, &o, NULL, NULL); /* the preset's scheme etc., then the overrides */
    bp.n = c.res;
    o.T = 0.1, o.nt = 3, o.dt = 2e-3, o.store_n = c.store_res, o.grid_flags = OPL_GRID_ESTIMATE;
    int r2 = opl_solve_burgers(&bp, u0, &o, ref, NULL, NULL);
    double da = 0;
    const int stride = c.res / c.store_res;
    for (int i = 0; i < c.store_res; i++) da = fmax(da, fabs(a7[i] - u0[i * stride]));
    ok(da == 0, "a = the GRF draw of (seed, 7) at every %d-th point", stride);
    ok(r2 == OPL_OK && !memcmp(ref, u7, sizeof(double) * us),
       "u = opl_solve_burgers of that draw, bit for bit");
    double amp = 0;
    for (int64_t i = 0; i < us; i++) amp = fmax(amp, fabs(u7[i]));
    ok(amp > 0.05 && amp < 10, "the trajectory is non-trivial (max |u| = %g)", amp);
    double dmin = INFINITY;
    for (int64_t s = 0; s < N; s++)
      if (s != 7) {
        double d = 0;
        for (int64_t i = 0; i < as; i++) d = fmax(d, fabs(fa[s * as + i] - fa[7 * as + i]));
        dmin = fmin(dmin, d);
      }
    ok(dmin > 1e-3, "the samples differ from each other (min max-diff %g)", dmin);
    free(u0);
    free(wk);
    free(ref);
    opl_grf_free(&f);
    opl_grid_free(&gr);
  }
  free(fa);
  free(fu);
  free(a7);
  free(u7);

  /* one thread: the same file contents */
  const char *p1 = tpath("b1.h5");
  ro = (opl_gen_run_opts){.threads = 1};
  rc = opl_gen_run(g, p1, &ro, NULL, &e);
  ok(rc == OPL_OK && same_data(path, p1, "a") && same_data(path, p1, "u"),
     "1 thread and 2 threads write the same bits (%s)", e.msg);

  /* float32 on disk: the float rounding of the same values */
  opl_gen_config c32 = c;
  c32.dtype = OPL_DT_F32;
  opl_gen *g32 = opl_gen_new(&c32, &e);
  const char *p32 = tpath("b32.h5");
  rc = g32 ? opl_gen_run(g32, p32, NULL, NULL, &e) : e.status;
  int64_t n32, n64;
  double *v32 = read_all(p32, "u", &n32), *v64 = read_all(path, "u", &n64);
  int rounded = rc == OPL_OK && v32 && v64 && n32 == n64;
  for (int64_t i = 0; rounded && i < n32; i++) rounded = v32[i] == (double)(float)v64[i];
  ok(rounded, "a float32 run stores the float32 rounding of the float64 run's values");
  opl_ds *d32 = opl_ds_open(p32, NULL, NULL);
  ok(d32 && opl_ds_get_info(d32)->bits == 32, "float32 file");
  opl_ds_close(&d32);
  free(v32);
  free(v64);
  opl_gen_free(&g32);
  opl_gen_free(&g);
}

/* ---------------------------------------------------------------- stop, resume */

static void test_resume(void) {
  const int64_t N = 9;
  opl_gen_config c;
  burgers_small(&c, N);
  c.seed = 99;
  opl_err e = {0};
  opl_gen *g = opl_gen_new(&c, &e);
  if (!ok(g != NULL, "settings (%s)", e.msg)) return;
  const char *full = tpath("full.h5"), *part = tpath("part.h5");
  int rc = opl_gen_run(g, full, &(opl_gen_run_opts){.threads = 2}, NULL, &e);
  ok(rc == OPL_OK, "uninterrupted run (%s)", e.msg);

  prog_log lg = {.monotone = 1, .stop_after = 3};
  opl_gen_result r;
  rc = opl_gen_run(g, part, &(opl_gen_run_opts){.threads = 2, .progress = prog_cb, .user = &lg}, &r, &e);
  ok(rc == OPL_ERR_STATE && r.stopped && strstr(e.msg, "resume"), "a callback returning non-zero stops the run "
     "with OPL_ERR_STATE (%s)", e.msg);
  ok(!exists(part) && exists(partial_of(part)), "stopped: only the partial file exists");
  ok(r.solved >= 3 && r.solved < N, "%lld of %lld samples written before the stop", (long long)r.solved, (long long)N);
  const int64_t first = r.solved;

  /* a run with other settings must not take over the partial file */
  opl_gen_config c2 = c;
  c2.seed = 100;
  opl_gen *g2 = opl_gen_new(&c2, &e);
  e = (opl_err){0};
  stderr_begin();
  rc = g2 ? opl_gen_run(g2, part, NULL, NULL, &e) : -1;
  long printed = stderr_end();
  ok(rc != OPL_OK && strstr(e.msg, "seed") && strstr(e.msg, "restart") && exists(partial_of(part)) && !exists(part),
     "resuming with another seed is refused naming the attribute; the partial file stays (%s)", e.msg);
  ok(printed == 0, "nothing printed");

  lg = (prog_log){.monotone = 1};
  e = (opl_err){0};
  rc = opl_gen_run(g, part, &(opl_gen_run_opts){.threads = 2, .progress = prog_cb, .user = &lg}, &r, &e);
  ok(rc == OPL_OK && r.resumed_file && r.resumed == first && r.solved == N - first,
     "resume solves only the %lld missing samples (%s)", (long long)(N - first), e.msg);
  ok(lg.first_ok && lg.last_done == N, "progress of the resumed run counts the earlier samples as done");
  ok(exists(part) && !exists(partial_of(part)), "the resumed run is finished and renamed");
  ok(same_data(full, part, "a") && same_data(full, part, "u"),
     "stop + resume gives the uninterrupted run's data bit for bit");
  int verified = 0;
  ok(opl_h5_verify(part, &verified, NULL) == OPL_OK && verified, "the resumed file's checksum verifies");

  /* restart discards a partial file of other settings */
  lg = (prog_log){.monotone = 1, .stop_after = 1};
  rc = g2 ? opl_gen_run(g2, tpath("r.h5"), &(opl_gen_run_opts){.threads = 1, .progress = prog_cb, .user = &lg}, NULL,
                        &e)
          : -1;
  e = (opl_err){0};
  rc = opl_gen_run(g, tpath("r.h5"), &(opl_gen_run_opts){.threads = 2, .restart = 1}, &r, &e);
  ok(rc == OPL_OK && r.resumed == 0 && r.solved == N && same_data(full, tpath("r.h5"), "u"),
     "restart = 1 discards the other run's partial file and starts over (%s)", e.msg);
  opl_gen_free(&g2);
  opl_gen_free(&g);
}

/* ---------------------------------------------------------------- blow-up */

static void test_blowup(void) {
  opl_gen_config c;
  burgers_small(&c, 4);
  c.cfl = 1e-3; /* every step violates this Courant limit: solve.h reports a blow-up */
  opl_err e = {0};
  opl_gen *g = opl_gen_new(&c, &e);
  if (!ok(g != NULL, "settings (%s)", e.msg)) return;
  const char *p = tpath("blow.h5");
  opl_gen_result r;
  stderr_begin();
  int rc = opl_gen_run(g, p, &(opl_gen_run_opts){.threads = 2}, &r, &e);
  long printed = stderr_end();
  ok(rc == OPL_ERR_CONVERGENCE && strstr(e.msg, "sample") && strstr(e.msg, "blow-up at t ="),
     "a CFL blow-up stops the run naming the sample and the time (%s)", e.msg);
  ok(r.failed_index >= 0 && r.failed_index < 4 && r.failed_t == 0, "result: failed sample %lld at t = %g",
     (long long)r.failed_index, r.failed_t);
  ok(!exists(p) && exists(partial_of(p)), "blow-up: the final name never appears, the partial file stays");
  ok(printed == 0, "nothing printed");
  opl_gen_free(&g);

  /* a non-finite blow-up: Burgers at tiny viscosity and a huge explicit step */
  burgers_small(&c, 2);
  c.scheme = "cn-euler";
  c.nu = 1e-6;
  c.dt = 0.05;
  c.T = 5;
  c.nt = 1;
  c.sigma = 500;
  g = opl_gen_new(&c, &e);
  e = (opl_err){0};
  rc = g ? opl_gen_run(g, tpath("nan.h5"), NULL, &r, &e) : -1;
  ok(rc == OPL_ERR_NONFINITE && strstr(e.msg, "sample") && strstr(e.msg, "t =") && !exists(tpath("nan.h5")),
     "a non-finite state is reported with the sample and time, no final file (%s)", e.msg);
  opl_gen_free(&g);
}

/* ---------------------------------------------------------------- closed forms */

static void test_closed_forms(void) {
  /* Burgers, tiny amplitude: the heat equation, u = A e^{-nu (2 pi)^2 t} sin(2 pi x) */
  const int n = 64;
  const double A = 1e-6, nu = 0.05, T = 0.5;
  double ic[64];
  for (int i = 0; i < n; i++) ic[i] = A * sin(2 * M_PI * i / n);
  opl_gen_config c;
  opl_gen_config_default(&c);
  c.equation = "burgers";
  c.n = 1;
  c.ic = ic;
  c.ic_n = n;
  c.ic_source = "test: A sin(2 pi x)";
  c.res = 128; /* resampled spectrally from 64 */
  c.store_res = 32;
  c.nt = 4;
  c.T = T;
  c.nu = nu;
  c.dt = 1e-3;
  c.dtype = OPL_DT_F64;
  opl_err e = {0};
  opl_gen *g = opl_gen_new(&c, &e);
  ok(g != NULL, "explicit initial condition accepted (%s)", e.msg);
  if (g) {
    double a[32], u[4 * 32];
    int rc = opl_gen_sample(g, 0, a, u, NULL, &e);
    double err = 0;
    for (int i = 0; i < 32; i++) err = fmax(err, fabs(a[i] - A * sin(2 * M_PI * i / 32)));
    for (int j = 0; j < 4; j++)
      for (int i = 0; i < 32; i++) {
        double t = T * (j + 1) / 4;
        err = fmax(err, fabs(u[j * 32 + i] - A * exp(-nu * 4 * M_PI * M_PI * t) * sin(2 * M_PI * i / 32)));
      }
    ok(rc == OPL_OK && err < 1e-6 * A, "linear Burgers mode: max error %.3g (relative to A: %.3g)", err, err / A);
    const char *p = tpath("ic.h5");
    rc = opl_gen_run(g, p, NULL, NULL, &e);
    opl_ds *ds = opl_ds_open(p, NULL, NULL);
    const opl_kv *k = ds ? attr(opl_ds_get_info(ds), "ic_source") : NULL;
    ok(rc == OPL_OK && k && !strcmp(k->s, "test: A sin(2 pi x)") && ds && opl_ds_get_info(ds)->dims.n == 1,
       "a one-trajectory file (N = 1) records the initial condition's source");
    opl_ds_close(&ds);
    opl_gen_free(&g);
  }

  /* Navier-Stokes, unforced Taylor-Green vortex: w = sin(2 pi x) sin(2 pi y) e^{-8 pi^2 nu t} */
  const int m = sanitized ? 16 : 32, s = m / 2;
  double *w0 = malloc(sizeof(double) * m * m);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < m; j++) w0[i * m + j] = sin(2 * M_PI * i / m) * sin(2 * M_PI * j / m);
  opl_gen_config_default(&c);
  c.equation = "ns";
  c.n = 1;
  c.ic = w0;
  c.ic_n = m;
  c.res = m;
  c.store_res = s;
  c.forcing = "none";
  c.nu = 0.01;
  c.T = 0.2;
  c.nt = 2;
  c.dt = 1e-3;
  g = opl_gen_new(&c, &e);
  ok(g != NULL, "ns settings (%s)", e.msg);
  if (g) {
    double *a = malloc(sizeof(double) * s * s), *u = malloc(sizeof(double) * 2 * s * s);
    int rc = opl_gen_sample(g, 0, a, u, NULL, &e);
    double err = 0;
    for (int j = 0; j < 2; j++)
      for (int x = 0; x < s; x++)
        for (int y = 0; y < s; y++) {
          double t = 0.1 * (j + 1);
          double ref = sin(2 * M_PI * x / s) * sin(2 * M_PI * y / s) * exp(-8 * M_PI * M_PI * 0.01 * t);
          err = fmax(err, fabs(u[(j * s + x) * s + y] - ref));
        }
    ok(rc == OPL_OK && err < 1e-6, "Taylor-Green vortex (cn-heun): max error %.3g", err);
    free(a);
    free(u);
    opl_gen_free(&g);
  }
  free(w0);
}

/* ---------------------------------------------------------------- NS, KdV, refinement */

static void test_ns_run(void) {
  opl_gen_config c;
  opl_gen_config_default(&c);
  c.equation = "ns";
  c.n = 3;
  c.seed = 5;
  c.res = sanitized ? 16 : 32;
  c.store_res = c.res / 2;
  c.nt = 2;
  c.T = 0.02;
  c.dt = 1e-3;
  c.scheme = "fno";
  opl_err e = {0};
  opl_gen *g = opl_gen_new(&c, &e);
  if (!ok(g != NULL, "ns settings (%s)", e.msg)) return;
  const char *p = tpath("ns.h5");
  int rc = opl_gen_run(g, p, &(opl_gen_run_opts){.threads = 2}, NULL, &e);
  opl_ds *ds = opl_ds_open(p, NULL, &e);
  ok(rc == OPL_OK && ds, "ns run (%s)", e.msg);
  if (!ds) {
    opl_gen_free(&g);
    return;
  }
  const opl_ds_info *in = opl_ds_get_info(ds);
  const opl_kv *k;
  ok(in->dims.sdim == 2 && in->dims.x == c.store_res && in->dims.y == c.store_res && in->dims.t == 2 && in->y &&
         (k = attr(in, "scheme")) && !strcmp(k->s, "fno") && (k = attr(in, "forcing")) && !strncmp(k->s, "fno", 3),
     "2-D native file with y, scheme fno, FNO forcing");
  /* sample 2 through pde/ directly */
  const int n = c.res, s = c.store_res;
  opl_grid *gr = opl_grid_new_2d(n, n, 1, 1, OPL_GRID_ESTIMATE, NULL);
  opl_grf_params gp;
  opl_grf_preset("ns-fno", &gp, NULL);
  opl_grf *f = opl_grf_new(gr, &gp, NULL);
  double *w0 = malloc(sizeof(double) * n * n), *wk = malloc(sizeof(double) * opl_grf_work_size(f));
  double *ref = malloc(sizeof(double) * 3 * s * s);
  opl_grf_sample_seeded(f, 5, 2, w0, wk);
  opl_ns2d_params np;
  opl_solve_opts o;
  opl_solve_ns2d_preset("fno", &np, &o, NULL, NULL);
  np.n = n;
  o.T = 0.02, o.nt = 2, o.with_t0 = 1, o.scheme = OPL_SCHEME_FNO, o.dt = 1e-3, o.store_n = s;
  o.grid_flags = OPL_GRID_ESTIMATE;
  rc = opl_solve_ns2d(&np, w0, &o, ref, NULL, NULL);
  opl_real *ra = malloc(sizeof(opl_real) * s * s), *ru = malloc(sizeof(opl_real) * 2 * s * s);
  int r1 = opl_ds_read_a_range(ds, 2, 1, 1, ra, NULL), r2 = opl_ds_read_u_range(ds, 2, 1, 0, 2, 1, ru, NULL);
  int same = !rc && !r1 && !r2;
  for (int i = 0; same && i < s * s; i++) same = ra[i] == (opl_real)(float)ref[i];
  for (int i = 0; same && i < 2 * s * s; i++) same = ru[i] == (opl_real)(float)ref[s * s + i];
  ok(same, "sample 2 = GRF draw (seed 5, 2) solved by opl_solve_ns2d (fno scheme), in float32");
  free(ra);
  free(ru);
  free(w0);
  free(wk);
  free(ref);
  opl_grf_free(&f);
  opl_grid_free(&gr);
  opl_ds_close(&ds);
  opl_gen_free(&g);
}

static void test_kdv(void) {
  opl_gen_config c;
  opl_gen_config_default(&c);
  c.equation = "kdv";
  c.n = 2;
  c.seed = 3;
  c.res = 64;
  c.nt = 4;
  c.dt = sanitized ? 0.05 : 0.02;
  c.dtype = OPL_DT_F64;
  opl_err e = {0};
  opl_gen *g = opl_gen_new(&c, &e);
  if (!ok(g != NULL, "kdv settings (%s)", e.msg)) return;
  const char *p = tpath("kdv.h5");
  int rc = opl_gen_run(g, p, NULL, NULL, &e);
  opl_ds *ds = opl_ds_open(p, NULL, &e);
  ok(rc == OPL_OK && ds, "kdv run (%s)", e.msg);
  if (ds) {
    const opl_ds_info *in = opl_ds_get_info(ds);
    const opl_kv *k = attr(in, "domain");
    ok(k && !strncmp(k->s, "per-sample", 10) && in->x && in->x[1] == 2.0,
       "per-sample domains: attribute domain, nominal x (dx = 128 / 64)");
    ok(!in->t && in->t_ps && in->L, "per-sample datasets L [N] and t [N, nt] stored, no shared t");
    int same = in->t_ps && in->L;
    for (int64_t i = 0; same && i < 2; i++) {
      opl_kdv_ic d;
      opl_kdv_ic_mppde_seeded(3, (uint64_t)i, &d);
      same = in->L[i] == d.L && opl_ds_sample_times(in, i)[3] == d.T && opl_ds_sample_times(in, i)[0] == d.T / 4;
    }
    ok(same && in->L[0] != in->L[1] && in->t_ps[3] != in->t_ps[7],
       "L and t hold each sample's draw and differ per sample (L = %.4f, %.4f; T = %.4f, %.4f)", in->L ? in->L[0] : 0,
       in->L ? in->L[1] : 0, in->t_ps ? in->t_ps[3] : 0, in->t_ps ? in->t_ps[7] : 0);
    const double L1 = in->L ? in->L[1] : 128, T1 = in->t_ps ? opl_ds_sample_times(in, 1)[3] : 100;
    /* Re-solve sample 1 from what the file stores: its a, L[1] and t[1, nt - 1] (the path of
     * opl solve --ic), against its stored trajectory. */
    double a1[64], u1[4 * 64];
    opl_ds_close(&ds); /* read_all opens the file itself; a in float64 (opl_real may be float) */
    int64_t na;
    double *fa = read_all(p, "a", &na);
    int r1 = !fa || na != 2 * 64;
    if (!r1) memcpy(a1, fa + 64, sizeof a1);
    free(fa);
    opl_gen_config c1;
    opl_gen_config_default(&c1);
    c1.equation = "kdv";
    c1.n = 1;
    c1.res = 64;
    c1.nt = 4;
    c1.dt = c.dt;
    c1.L = L1;
    c1.T = T1;
    c1.ic = a1;
    c1.ic_n = 64;
    opl_gen *g1 = r1 ? NULL : opl_gen_new(&c1, &e);
    int rs = g1 ? opl_gen_sample(g1, 0, a1, u1, NULL, &e) : -1;
    int64_t nu1;
    double *fu1 = read_all(p, "u", &nu1), worst = INFINITY;
    if (!rs && fu1 && nu1 == 2 * 4 * 64) {
      worst = 0;
      for (int i = 0; i < 4 * 64; i++) worst = fmax(worst, fabs(u1[i] - fu1[4 * 64 + i]));
    }
    ok(!rs && worst < 1e-12, "sample 1 re-solved from its stored a, L and T reproduces its u (max |diff| %.1e) (%s)",
       worst, e.msg);
    free(fu1);
    opl_gen_free(&g1);
  }
  /* sample 1 directly: the MP-PDE draw of (seed 3, 1), its own L and T */
  opl_kdv_ic ic;
  opl_kdv_ic_mppde_seeded(3, 1, &ic);
  ic.n = 64;
  double u0[64], ref[5 * 64];
  opl_kdv_ic_eval(&ic, u0);
  opl_kdv_params kp;
  opl_solve_opts o;
  opl_solve_kdv_preset("mppde", &kp, &o, NULL);
  opl_solve_kdv_apply_ic(&ic, &kp, &o);
  o.nt = 4, o.with_t0 = 1, o.dt = c.dt, o.grid_flags = OPL_GRID_ESTIMATE;
  rc = opl_solve_kdv(&kp, u0, &o, ref, NULL, NULL);
  int64_t nu;
  double *fu = read_all(p, "u", &nu);
  ok(!rc && fu && nu == 2 * 4 * 64 && !memcmp(fu + 4 * 64, ref + 64, sizeof(double) * 4 * 64) && ic.L != 128,
     "sample 1 = the MP-PDE draw solved on its own domain (L = %.4f, T = %.4f)", ic.L, ic.T);
  free(fu);
  opl_gen_free(&g);

  /* overriding T fixes the domain */
  c.T = 2;
  g = opl_gen_new(&c, &e);
  rc = g ? opl_gen_run(g, tpath("kdv2.h5"), NULL, NULL, &e) : -1;
  ds = opl_ds_open(tpath("kdv2.h5"), NULL, NULL);
  ok(!rc && ds && !strcmp(attr(opl_ds_get_info(ds), "domain")->s, "fixed") && opl_ds_get_info(ds)->t[3] == 2,
     "a T override fixes the domain (%s)", e.msg);
  opl_ds_close(&ds);
  opl_gen_free(&g);
}

static void test_refinement(void) {
  opl_gen_config c;
  opl_gen_config_default(&c);
  c.equation = "burgers";
  c.preset = "chebfun";
  c.n = 4;
  c.seed = 11;
  c.res = sanitized ? 128 : 256;
  c.store_res = 64;
  c.nt = 2;
  c.T = 0.05;
  c.dt = 1e-4;
  c.nu = 0.01;
  c.refine = 2;
  opl_err e = {0};
  opl_gen *g = opl_gen_new(&c, &e);
  if (!ok(g != NULL, "chebfun settings (%s)", e.msg)) return;
  const char *p = tpath("cheb.h5");
  prog_log lg = {.monotone = 1, .stop_after = 1};
  opl_gen_result r;
  int rc = opl_gen_run(g, p, &(opl_gen_run_opts){.threads = 2, .progress = prog_cb, .user = &lg}, &r, &e);
  ok(rc == OPL_ERR_STATE && r.refine_samples == 2 && isfinite(r.refine_maxdiff) && r.refine_maxdiff > 0 &&
         r.refine_maxdiff < 1e-4,
     "refinement check of 2 samples before the file: max diff %.3g", r.refine_maxdiff);
  const double md = r.refine_maxdiff;
  e = (opl_err){0};
  rc = opl_gen_run(g, p, &(opl_gen_run_opts){.threads = 2}, &r, &e);
  ok(rc == OPL_OK && r.resumed_file && r.refine_maxdiff == md, "resume reads the check back from the partial file "
     "(%s)", e.msg);
  opl_ds *ds = opl_ds_open(p, NULL, &e);
  const opl_kv *k1 = ds ? attr(opl_ds_get_info(ds), "refine_samples") : NULL;
  const opl_kv *k2 = ds ? attr(opl_ds_get_info(ds), "refine_maxdiff") : NULL;
  ok(k1 && k1->i == 2 && k2 && k2->d == md, "attributes refine_samples = 2, refine_maxdiff = %.3g", md);
  opl_ds_close(&ds);
  /* the check against pde/ directly, sample 1 */
  double a[64], u[2 * 64];
  opl_gen_sample(g, 1, a, u, NULL, &e);
  opl_grid *gr = opl_grid_new_1d(c.res, 1, OPL_GRID_ESTIMATE, NULL);
  opl_grf_params gp;
  opl_grf_preset("burgers-chebfun", &gp, NULL);
  opl_grf *f = opl_grf_new(gr, &gp, NULL);
  double *u0 = malloc(sizeof(double) * c.res), *wk = malloc(sizeof(double) * opl_grf_work_size(f));
  opl_grf_sample_seeded(f, 11, 1, u0, wk);
  opl_burgers_params bp;
  opl_solve_opts o;
  opl_solve_burgers_preset("chebfun", &bp, &o, NULL, NULL);
  bp.n = c.res, bp.nu = 0.01;
  o.T = 0.05, o.nt = 2, o.with_t0 = 1, o.dt = 1e-4, o.store_n = 64, o.grid_flags = OPL_GRID_ESTIMATE;
  double d1 = -1;
  rc = opl_solve_burgers_refinement(&bp, u0, &o, NULL, &d1, NULL, NULL);
  ok(rc == OPL_OK && d1 > 0 && d1 <= md, "sample 1's own refinement difference %.3g <= the stored maximum", d1);
  free(u0);
  free(wk);
  opl_grf_free(&f);
  opl_grid_free(&gr);
  opl_gen_free(&g);
}

int main(void) {
  tap_begin();
  const char *san = getenv("OPL_SANITIZED");
  sanitized = san && san[0] == '1';
  snprintf(dir, sizeof dir, "/tmp/opl_generate_XXXXXX");
  if (!mkdtemp(dir)) {
    ok(0, "mkdtemp");
    return tap_end();
  }
  test_bad_input();
  test_run_and_file();
  test_resume();
  test_blowup();
  test_closed_forms();
  test_ns_run();
  test_kdv();
  test_refinement();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) diag("could not remove %s", dir);
  return tap_end();
}
