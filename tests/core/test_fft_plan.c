/* FFT plan cache: plans made once and reused, bit-identical repeated results, wisdom save and
 * load, wisdom exported by one process imported as the first FFTW call of another, bad wisdom
 * files, estimate planner (the default), concurrent planning from several threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "tests/gradcheck.h"
#include "tests/tap.h"
#include "core/fft.h"

static uint64_t rng = 7;

static void fill(opl_tensor *t) {
  for (int64_t i = 0; i < opl_nreal(t); i++) t->data[i] = (opl_real)(2 * gc_uniform(&rng) - 1);
}

static void test_reuse(void) {
  opl_fft_cache_clear();
  ok(opl_fft_cache_size() == 0, "cache empty after clear");
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(3, 4, 24));
  fill(x);
  int64_t n0 = opl_fft_plans_created();
  opl_tensor *a = opl_rfft(c, x, 1);
  int64_t n1 = opl_fft_plans_created();
  opl_tensor *b = opl_rfft(c, x, 1);
  int64_t n2 = opl_fft_plans_created();
  ok(n1 == n0 + 1, "first rfft makes one plan (%lld -> %lld)", (long long)n0, (long long)n1);
  ok(n2 == n1, "second rfft of the same shape reuses it (%lld -> %lld)", (long long)n1, (long long)n2);
  ok(a && b && memcmp(a->data, b->data, opl_nreal(a) * sizeof(opl_real)) == 0,
     "repeated rfft results are bit-identical");
  /* Another batch shape with the same transform size is another plan; a view with the same
   * batch and transform is not. */
  opl_tensor *v = opl_view(c, x, OPL_DIMS(12, 24));
  opl_tensor *bv = opl_rfft(c, v, 1);
  ok(opl_fft_plans_created() == n2, "same batch x transform through a view reuses the plan");
  ok(bv && memcmp(bv->data, a->data, opl_nreal(a) * sizeof(opl_real)) == 0, "and gives the same bits");
  opl_tensor *x2 = opl_new(c, OPL_DIMS(5, 24));
  fill(x2);
  opl_rfft(c, x2, 1);
  ok(opl_fft_plans_created() == n2 + 1, "another batch count makes a new plan");
  /* irfft: one c2r plan, then reused; results bit-identical. */
  int64_t m0 = opl_fft_plans_created();
  opl_tensor *y1 = opl_irfft(c, a, 1, 24), *y2 = opl_irfft(c, a, 1, 24);
  ok(opl_fft_plans_created() == m0 + 1, "irfft makes one c2r plan for two calls");
  ok(y1 && y2 && memcmp(y1->data, y2->data, opl_nreal(y1) * sizeof(opl_real)) == 0,
     "repeated irfft results are bit-identical");
  /* Spectral conv forward+backward repeated: bit-identical, no new plans after the first. */
  opl_err err;
  opl_tensor *xs = opl_tensor_alloc(OPL_DIMS(4, 3, 32, 16), OPL_T_REQGRAD, &err);
  opl_tensor *ws = opl_tensor_alloc(OPL_DIMS(3, 5, 8, 5), OPL_T_COMPLEX | OPL_T_REQGRAD, &err);
  fill(xs), fill(ws);
  opl_real *y0 = NULL, *gx0 = malloc(opl_nreal(xs) * sizeof *gx0), *gw0 = malloc(opl_nreal(ws) * sizeof *gw0);
  int64_t k1 = 0, same = 1;
  for (int it = 0; it < 3; it++) {
    opl_ctx_reset(c);
    opl_tensor_zero_grad(xs), opl_tensor_zero_grad(ws);
    opl_tensor *y = opl_spectral_conv(c, xs, ws, 2, (int[]){4, 5});
    if (!y) break;
    opl_backward_seed(c, y, y->data);
    if (it == 0) {
      y0 = malloc(opl_nreal(y) * sizeof *y0);
      memcpy(y0, y->data, opl_nreal(y) * sizeof *y0);
      memcpy(gx0, xs->grad, opl_nreal(xs) * sizeof *gx0);
      memcpy(gw0, ws->grad, opl_nreal(ws) * sizeof *gw0);
      k1 = opl_fft_plans_created();
    } else {
      same &= memcmp(y0, y->data, opl_nreal(y) * sizeof *y0) == 0;
      same &= memcmp(gx0, xs->grad, opl_nreal(xs) * sizeof *gx0) == 0;
      same &= memcmp(gw0, ws->grad, opl_nreal(ws) * sizeof *gw0) == 0;
    }
  }
  ok(y0 && same, "spectral_conv forward and gradients are bit-identical over 3 steps");
  ok(opl_fft_plans_created() == k1, "no plan made after the first step (%lld)", (long long)k1);
  ok(opl_ctx_status(c) == OPL_OK, "no error (%s)", opl_ctx_errmsg(c));
  free(y0), free(gx0), free(gw0);
  opl_tensor_free(&xs), opl_tensor_free(&ws);
  /* The internal API returns the same plan object for the same key. */
  int64_t dims[2] = {6, 10};
  const opl_fft_plan *p1 = opl_fft_plan_get(OPL_FFT_R2C, 2, dims, 3, 0, &err);
  const opl_fft_plan *p2 = opl_fft_plan_get(OPL_FFT_R2C, 2, dims, 3, 0, &err);
  const opl_fft_plan *p3 = opl_fft_plan_get(OPL_FFT_C2R, 2, dims, 3, 0, &err);
  const opl_fft_plan *p4 = opl_fft_plan_get(OPL_FFT_R2C, 2, dims, 3, OPL_FFT_UNALIGNED, &err);
  ok(p1 && p1 == p2, "plan_get: same key, same plan");
  ok(p3 && p3 != p1 && p4 && p4 != p1, "plan_get: direction and alignment are part of the key");
  ok(!opl_fft_plan_get(OPL_FFT_R2C, 4, dims, 3, 0, &err) && err.status == OPL_ERR_ARG,
     "plan_get: rank 4 is an error: %s", err.msg);
  ok(!opl_fft_plan_get(OPL_FFT_R2C, 2, (int64_t[]){0, 4}, 3, 0, &err) && err.status == OPL_ERR_ARG &&
         strstr(err.msg, "(0, 4)"),
     "plan_get: a zero extent is an error naming the dims: %s", err.msg);
  /* Unaligned arrays get an FFTW_UNALIGNED plan and still the right answer. */
  {
    int64_t n = 16;
    opl_real *buf = opl_arena_alloc(c, (2 * n + 8) * sizeof(opl_real));
    opl_real *cbuf = opl_arena_alloc(c, (2 * (n / 2 + 1) + 8) * sizeof(opl_real));
    opl_real *ref = opl_arena_alloc(c, (2 * (n / 2 + 1)) * sizeof(opl_real));
    for (int64_t i = 0; i < n; i++) buf[i] = (opl_real)(i % 5) - 2;
    opl_fft_run(OPL_FFT_R2C, 1, &n, 1, buf, ref, &err);
    memmove(buf + 1, buf, n * sizeof(opl_real));
    int rc = opl_fft_run(OPL_FFT_R2C, 1, &n, 1, buf + 1, cbuf + 2, &err);
    double maxd = 0;
    for (int64_t i = 0; i < 2 * (n / 2 + 1); i++) maxd = fmax(maxd, fabs((double)cbuf[2 + i] - ref[i]));
    ok(rc == OPL_OK && !opl_fft_aligned(buf + 1) && maxd < 1e-4,
       "misaligned arrays: an unaligned plan gives the same result (max diff %.2g)", maxd);
  }
  /* The thread count is part of the key; small batches stay single-threaded. */
  int nthr = opl_get_num_threads();
  opl_set_num_threads(2);
  ok(opl_fft_threads_for(1 << 20) == 2 && opl_fft_threads_for(64) == 1,
     "big batches use 2 threads, tiny ones 1");
  opl_set_num_threads(1);
  ok(opl_fft_threads_for(1 << 20) == 1, "1 thread when opl_set_num_threads(1)");
  opl_set_num_threads(nthr);
  opl_ctx_free(&c);
}

/* Concurrent plan requests from several threads: planning is serialized, results right. */
static void test_concurrent(void) {
  opl_fft_cache_clear();
  int bad = 0;
  int64_t n0 = opl_fft_plans_created();
#pragma omp parallel for num_threads(2) schedule(dynamic) reduction(+ : bad)
  for (int t = 0; t < 12; t++) {
    int64_t n = 8 + (t % 6) * 2; /* 6 distinct sizes, each requested twice */
    opl_real *x = OPL_FFTW(malloc)(n * sizeof(opl_real));
    opl_real *X = OPL_FFTW(malloc)(2 * (n / 2 + 1) * sizeof(opl_real));
    for (int64_t j = 0; j < n; j++) x[j] = (opl_real)cos(2 * M_PI * 3 * j / (double)n);
    opl_err err;
    if (opl_fft_run(OPL_FFT_R2C, 1, &n, 1, x, X, &err) != OPL_OK) bad++;
    /* cos(2 pi 3 j / n): bin 3 holds n/2, every other bin 0 */
    for (int64_t k = 0; k <= n / 2; k++) {
      double want = k == 3 ? n / 2.0 : 0;
      if (fabs(X[2 * k] - want) > 1e-4 * n || fabs(X[2 * k + 1]) > 1e-4 * n) bad++;
    }
    OPL_FFTW(free)(x), OPL_FFTW(free)(X);
  }
  ok(bad == 0, "12 concurrent transforms from 2 threads are right (%d bad)", bad);
  int64_t made = opl_fft_plans_created() - n0;
  ok(made == 6, "6 distinct problems make 6 plans (made %lld)", (long long)made);
}

/* Wisdom: save, forget, load; a bad file is an error. */
static void test_wisdom(void) {
  char dir[] = "/tmp/opl_wisdom_XXXXXX";
  if (!mkdtemp(dir)) {
    ok(0, "cannot make a temp directory");
    return;
  }
  char path[256], tmp[300], bad[256], missing[256];
  snprintf(path, sizeof path, "%s/wisdom", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  snprintf(bad, sizeof bad, "%s/bad", dir);
  snprintf(missing, sizeof missing, "%s/none", dir);
  opl_err err;

  /* Plan a problem with FFTW_MEASURE so that the planner has wisdom for it. */
  opl_fft_set_planner(0);
  opl_fft_cache_clear();
  int64_t n = 48;
  opl_real *x = OPL_FFTW(malloc)(4 * n * sizeof(opl_real));
  opl_real *X = OPL_FFTW(malloc)(4 * 2 * (n / 2 + 1) * sizeof(opl_real));
  for (int64_t i = 0; i < 4 * n; i++) x[i] = (opl_real)(i % 7);
  ok(opl_fft_run(OPL_FFT_R2C, 1, &n, 4, x, X, &err) == OPL_OK, "measured plan made");
  ok(opl_fft_wisdom_save(path, &err) == OPL_OK, "wisdom saved to %s (%s)", path, err.msg);
  struct stat st;
  ok(stat(path, &st) == 0 && st.st_size > 20, "wisdom file exists and is not empty");
  ok(stat(tmp, &st) != 0, "no temporary file left behind");

  /* Forget all wisdom: the same problem cannot be planned with FFTW_WISDOM_ONLY... */
  int nn = (int)n;
  opl_fft_cache_clear();
  OPL_FFTW(forget_wisdom)();
  OPL_FFTW(plan) q = OPL_FFTW(plan_many_dft_r2c)(1, &nn, 4, x, NULL, 1, nn, (opl_fftw_complex *)X,
                                                 NULL, 1, nn / 2 + 1, FFTW_MEASURE | FFTW_WISDOM_ONLY);
  ok(q == NULL, "after forget_wisdom the problem has no wisdom");
  if (q) OPL_FFTW(destroy_plan)(q);
  /* ... until the file is loaded. */
  ok(opl_fft_wisdom_load(path, &err) == OPL_OK, "wisdom loaded (%s)", err.msg);
  q = OPL_FFTW(plan_many_dft_r2c)(1, &nn, 4, x, NULL, 1, nn, (opl_fftw_complex *)X, NULL, 1,
                                   nn / 2 + 1, FFTW_MEASURE | FFTW_WISDOM_ONLY);
  ok(q != NULL, "after loading, the problem is planned from wisdom alone");
  if (q) OPL_FFTW(destroy_plan)(q);
  int64_t c0 = opl_fft_plans_created();
  ok(opl_fft_run(OPL_FFT_R2C, 1, &n, 4, x, X, &err) == OPL_OK && opl_fft_plans_created() == c0 + 1,
     "a cache plan is made again after loading wisdom");

  /* Bad files. */
  FILE *f = fopen(bad, "w");
  fputs("this is not fftw wisdom\n", f);
  fclose(f);
  int rc = opl_fft_wisdom_load(bad, &err);
  ok(rc == OPL_ERR_FORMAT && err.status == OPL_ERR_FORMAT && strstr(err.msg, bad),
     "a bad wisdom file is OPL_ERR_FORMAT naming the file: %s", err.msg);
  rc = opl_fft_wisdom_load(missing, &err);
  ok(rc == OPL_ERR_NOTFOUND && strstr(err.msg, missing), "a missing file is OPL_ERR_NOTFOUND: %s", err.msg);
  char nodir[300];
  snprintf(nodir, sizeof nodir, "%s/no/such/dir/wisdom", dir);
  rc = opl_fft_wisdom_save(nodir, &err);
  ok(rc == OPL_ERR_IO && strstr(err.msg, "no/such/dir"), "saving into a missing directory is OPL_ERR_IO: %s", err.msg);
  ok(opl_fft_wisdom_load(NULL, &err) == OPL_ERR_ARG, "NULL path is OPL_ERR_ARG");
  ok(opl_fft_wisdom_load(path, NULL) == OPL_OK, "a NULL opl_err is allowed");
#ifndef OPL_DOUBLE
  /* Double-precision wisdom is foreign to this single-precision build. */
  char dbl[256];
  snprintf(dbl, sizeof dbl, "%s/double", dir);
  fftw_export_wisdom_to_filename(dbl);
  rc = opl_fft_wisdom_load(dbl, &err);
  ok(rc == OPL_ERR_FORMAT, "double-precision wisdom is rejected by the single build: %s", err.msg);
  remove(dbl);
#endif
  OPL_FFTW(free)(x), OPL_FFTW(free)(X);
  remove(path), remove(bad), rmdir(dir);
  opl_fft_set_planner(1);
}

/* Estimate planner: plans are made (without measuring) and compute the same transform as a
 * measured plan. */
static void test_estimate(void) {
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = opl_new(c, OPL_DIMS(6, 30, 20));
  fill(x);
  opl_fft_cache_clear();
  opl_fft_set_planner(0);
  opl_tensor *a = opl_rfft(c, x, 2);
  opl_fft_cache_clear();
  opl_fft_set_planner(1);
  int64_t n0 = opl_fft_plans_created();
  opl_tensor *b = opl_rfft(c, x, 2);
  ok(opl_fft_plans_created() == n0 + 1, "estimate mode makes a plan");
  double maxd = 0, mag = 0;
  for (int64_t i = 0; a && b && i < opl_nreal(a); i++) {
    maxd = fmax(maxd, fabs((double)a->data[i] - b->data[i]));
    mag = fmax(mag, fabs((double)a->data[i]));
  }
#ifdef OPL_DOUBLE
  double tol = 1e-13;
#else
  double tol = 1e-5;
#endif
  ok(a && b && maxd <= tol * mag, "estimate and measure plans agree (max diff %.3g of %.3g)", maxd, mag);
  opl_ctx_free(&c);
}

/* A resumed training run imports the wisdom its checkpoint carries before it makes any plan, in
 * a fresh process. FFTW's wisdom is signed with the planner's solver set, which init_threads
 * extends: a child process (FFTW threads initialized by core, as in any run that planned)
 * measures a plan and exports its wisdom; this process, which has not called FFTW yet, must
 * accept it through opl_fft_wisdom_import and then plan that problem from wisdom alone. Must run
 * before anything else in main. */
static void test_fresh_import(void) {
  ok(opl_fft_get_planner() == OPL_FFT_ESTIMATE, "the default planner is FFTW_ESTIMATE (deterministic)");
  char path[] = "/tmp/opl_wisdom_str_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) {
    ok(0, "cannot make a temp file");
    return;
  }
  close(fd);
  int nn = 40, howmany = 3;
  pid_t pid = fork();
  if (pid == 0) {
    opl_err e;
    char *w0 = opl_fft_wisdom_export(&e); /* core's FFTW setup, threads included */
    free(w0);
    opl_real *x = OPL_FFTW(malloc)((size_t)(howmany * nn) * sizeof(opl_real));
    opl_fftw_complex *X = OPL_FFTW(malloc)((size_t)(howmany * (nn / 2 + 1)) * sizeof(opl_fftw_complex));
    OPL_FFTW(plan) q = OPL_FFTW(plan_many_dft_r2c)(1, &nn, howmany, x, NULL, 1, nn, X, NULL, 1, nn / 2 + 1,
                                                   FFTW_MEASURE);
    char *w = q ? opl_fft_wisdom_export(&e) : NULL;
    FILE *f = fopen(path, "w");
    int good = w && f && fputs(w, f) >= 0;
    if (f && fclose(f)) good = 0;
    _exit(good ? 0 : 1);
  }
  int status = -1;
  if (pid > 0) waitpid(pid, &status, 0);
  ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "a child process measured a plan and exported its wisdom");
  char *text = NULL;
  FILE *f = fopen(path, "r");
  if (f) {
    text = calloc(1 << 20, 1);
    if (text) fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
  }
  remove(path);
  ok(text && strstr(text, "fftw") != NULL, "the exported wisdom is FFTW wisdom text");
  if (!text) return;
  opl_err err = {0};
  ok(opl_fft_wisdom_import(text, &err) == OPL_OK, "imported as this process's first FFTW call (%s)", err.msg);
  free(text);
  opl_real *x = OPL_FFTW(malloc)((size_t)(howmany * nn) * sizeof(opl_real));
  opl_fftw_complex *X = OPL_FFTW(malloc)((size_t)(howmany * (nn / 2 + 1)) * sizeof(opl_fftw_complex));
  OPL_FFTW(plan) q = OPL_FFTW(plan_many_dft_r2c)(1, &nn, howmany, x, NULL, 1, nn, X, NULL, 1, nn / 2 + 1,
                                                 FFTW_MEASURE | FFTW_WISDOM_ONLY);
  ok(q != NULL, "the child's problem is then planned from the imported wisdom alone");
  if (q) OPL_FFTW(destroy_plan)(q);
  OPL_FFTW(free)(x);
  OPL_FFTW(free)(X);
  /* round trip and refusals */
  char *w = opl_fft_wisdom_export(&err);
  ok(w && opl_fft_wisdom_import(w, &err) == OPL_OK, "export then import round-trips");
  /* canonical text: entry lines sorted, so the same wisdom is the same string (checkpoints of
   * a straight and of a resumed run are then the same bytes) */
  int sorted = w != NULL, entries = 0;
  for (char *p = w ? strchr(w, '\n') : NULL; p && p[1] && p[1] != ')'; p = strchr(p + 1, '\n')) {
    char *q = strchr(p + 1, '\n');
    if (!q || q[1] == ')' || !q[1]) break;
    entries++;
    size_t la = (size_t)(q - p - 1), lb = strcspn(q + 1, "\n");
    int c = strncmp(p + 1, q + 1, la < lb ? la : lb);
    if (c > 0 || (c == 0 && la > lb)) sorted = 0;
  }
  ok(sorted && entries >= 2, "exported wisdom lists its entries sorted (%d pairs compared)", entries);
  char *w2 = opl_fft_wisdom_export(&err);
  ok(w && w2 && !strcmp(w, w2), "exporting again after the import gives the same text");
  free(w2);
  free(w);
  ok(opl_fft_wisdom_import("(not wisdom)", &err) == OPL_ERR_FORMAT && strstr(err.msg, "wisdom"),
     "a string that is not wisdom is OPL_ERR_FORMAT: %s", err.msg);
  ok(opl_fft_wisdom_import(NULL, &err) == OPL_ERR_ARG, "a NULL string is OPL_ERR_ARG");
}

int main(void) {
  tap_begin();
  test_fresh_import();
  opl_fft_set_planner(1);
  test_reuse();
  test_concurrent();
  test_wisdom();
  test_estimate();
  opl_fft_cache_clear();
  return tap_end();
}
