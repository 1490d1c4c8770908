/* The FNO trainer and evaluator (train/trainer.h) and the metrics (train/metrics.h).
 *
 * - gradient-check table: the task objectives (opl_task_loss: one-shot and rollout) and the task
 *   predictions through tiny models (rollout with fed-back predictions, FNO-3d with
 *   normalizers, 1-D with normalizers); no row is linear, so there is no adjoint table;
 * - values: the task losses against direct loops; the epoch loss with a PARTIAL last batch
 *   (lr 0) against a hand computation over single-sample forwards (each sample counted once,
 *   the mean over ntrain), the test metric likewise; per-sample metrics and summaries against
 *   direct loops;
 * - resume: 2N epochs == N epochs + resume N more, parameters and Adam state bit for bit
 *   (one-shot 1-D, 2-D rollout, and the warmup-cosine schedule per step resumed inside its
 *   warmup), and the metrics CSV rows equal; a checkpoint written before the warmup-cosine
 *   schedule's two rates existed resumes with both 0;
 * - the warmup-cosine schedule's rates per step and per epoch equal the authors' scheduler's
 *   (the table of tests/train/test_schedule.c);
 * - divergence guard: a blown-up learning rate stops with OPL_ERR_NONFINITE and the last
 *   good checkpoint stays byte-identical;
 * - the CSV log beside the checkpoint; the loss decreasing on a tiny problem; evaluation
 *   equal to the trainer's own test metric, at another resolution too;
 * - a steady-state training step does no malloc (outside OpenBLAS);
 * - bad configurations name the field and value. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/io.h"
#include "core/rng.h"
#include "operators/fno.h"
#include "train/evaluate.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "tests/gradcheck.h"
#include "tests/tap.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#ifdef OPL_DOUBLE
#define GC_RTOL_MODEL 0 /* the default, 1e-6 */
#define TOL 1e-12
#else
/* Finite differences in float through whole models (see tests/operators/test_fno.c). */
#define GC_RTOL_MODEL 5e-2
#define TOL 2e-5
#endif

/* ------------------------------------------------------------------ malloc counting */

#if !SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
#define MAXREC 4096
static int tracking = 0;
static long n_rec = 0;
static void *rec[MAXREC];
#define TRACK()                                                     \
  do {                                                              \
    if (tracking) {                                                 \
      if (n_rec < MAXREC) rec[n_rec] = __builtin_return_address(0); \
      n_rec++;                                                      \
    }                                                               \
  } while (0)
void *malloc(size_t n) { TRACK(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { TRACK(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { TRACK(); return __libc_realloc(p, n); }
int posix_memalign(void **p, size_t al, size_t n) {
  TRACK();
  *p = __libc_memalign(al, n);
  return *p ? 0 : 12;
}
void *aligned_alloc(size_t al, size_t n) { TRACK(); return __libc_memalign(al, n); }
#endif

/* ------------------------------------------------------------------ data */

static char dir[64];
static int sanitized_env;

static const char *tpath(const char *name) {
  static char buf[8][256];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* Deterministic coefficients for the synthetic data. */
static double coef(uint64_t *s) { return gc_uniform(s) * 2 - 1; }

/* A 1-D data set: a(x) = sum_k c_k cos(2 pi k x + phi_k) (k = 1..3), frame t of u = a shifted by
 * (t + 1) / 16 and damped, plus 0.2 a: a linear, translation-invariant map, as FNO likes. */
static void write_1d(const char *path, int64_t N, int64_t X, int64_t T) {
  opl_ds_dims d = {.n = N, .t = T, .sdim = 1, .x = X, .y = 1};
  double *xc = malloc(sizeof(double) * (size_t)X), *tc = malloc(sizeof(double) * (size_t)T);
  for (int64_t i = 0; i < X; i++) xc[i] = (double)i / (double)X;
  for (int64_t t = 0; t < T; t++) tc[t] = (double)(t + 1) / (double)T;
  opl_kv prov[] = {OPL_KVS("equation", "test-shift")};
  opl_err e;
  opl_ds_writer *w = opl_ds_writer_create(path, &d, OPL_DT_F64, xc, NULL, tc, prov, 1, &e);
  if (!w) diag("writer: %s", e.msg);
  double *a = malloc(sizeof(double) * (size_t)X), *u = malloc(sizeof(double) * (size_t)(T * X));
  uint64_t seed = 12345;
  for (int64_t n = 0; w && n < N; n++) {
    double c[3], ph[3];
    for (int k = 0; k < 3; k++) c[k] = coef(&seed) / (k + 1), ph[k] = 3 * coef(&seed);
    for (int64_t i = 0; i < X; i++) {
      double x = xc[i];
      a[i] = 0;
      for (int k = 0; k < 3; k++) a[i] += c[k] * cos(2 * M_PI * (k + 1) * x + ph[k]);
      for (int64_t t = 0; t < T; t++) {
        double s = (double)(t + 1) / 16, v = 0;
        for (int k = 0; k < 3; k++) v += c[k] * cos(2 * M_PI * (k + 1) * (x - s) + ph[k]);
        u[t * X + i] = 0.8 * v / (double)(t + 1) + 0.2 * a[i];
      }
    }
    if (opl_ds_writer_put(w, n, a, u, OPL_DT_F64, &e)) diag("put: %s", e.msg);
  }
  if (w && opl_ds_writer_finish(&w, &e)) diag("finish: %s", e.msg);
  free(a);
  free(u);
  free(xc);
  free(tc);
}

/* A 2-D data set of X x X points: frame t of u = a rolled by t + 1 points along x, times 0.9^t. */
static void write_2d(const char *path, int64_t N, int64_t X, int64_t T) {
  opl_ds_dims d = {.n = N, .t = T, .sdim = 2, .x = X, .y = X};
  double *xc = malloc(sizeof(double) * (size_t)X), *tc = malloc(sizeof(double) * (size_t)T);
  for (int64_t i = 0; i < X; i++) xc[i] = (double)i / (double)X;
  for (int64_t t = 0; t < T; t++) tc[t] = (double)(t + 1);
  opl_err e;
  opl_ds_writer *w = opl_ds_writer_create(path, &d, OPL_DT_F32, xc, xc, tc, NULL, 0, &e);
  if (!w) diag("writer: %s", e.msg);
  double *a = malloc(sizeof(double) * (size_t)(X * X)), *u = malloc(sizeof(double) * (size_t)(T * X * X));
  uint64_t seed = 777;
  for (int64_t n = 0; w && n < N; n++) {
    double c[4], ph[4];
    for (int k = 0; k < 4; k++) c[k] = coef(&seed), ph[k] = 3 * coef(&seed);
    for (int64_t i = 0; i < X; i++)
      for (int64_t j = 0; j < X; j++) {
        double x = xc[i], y = xc[j];
        a[i * X + j] = 1.0 + c[0] * cos(2 * M_PI * x + ph[0]) + c[1] * sin(2 * M_PI * y + ph[1]) +
                       0.5 * c[2] * cos(2 * M_PI * (x + y) + ph[2]) + 0.3 * c[3] * sin(4 * M_PI * x + ph[3]);
      }
    for (int64_t t = 0; t < T; t++)
      for (int64_t i = 0; i < X; i++)
        for (int64_t j = 0; j < X; j++)
          u[(t * X + i) * X + j] = pow(0.9, (double)t) * a[((i - t - 1 + 4 * X) % X) * X + j];
    if (opl_ds_writer_put(w, n, a, u, OPL_DT_F64, &e)) diag("put: %s", e.msg);
  }
  if (w && opl_ds_writer_finish(&w, &e)) diag("finish: %s", e.msg);
  free(a);
  free(u);
  free(xc);
  free(tc);
}

/* A tiny FNO configuration (d and channels are set by the trainer). */
static opl_fno_config tiny_model(int modes, int64_t width) {
  opl_fno_config m = opl_fno_config_default(1);
  m.width = width;
  m.layers = 2;
  m.proj_channels = 8;
  m.modes[0] = m.modes[1] = m.modes[2] = modes;
  return m;
}

static int params_identical(const opl_params *a, const opl_params *b) {
  if (a->n != b->n) return 0;
  for (int i = 0; i < a->n; i++) {
    if (strcmp(a->t[i]->name, b->t[i]->name) || opl_nreal(a->t[i]) != opl_nreal(b->t[i])) return 0;
    if (memcmp(a->t[i]->data, b->t[i]->data, sizeof(opl_real) * (size_t)opl_nreal(a->t[i]))) return 0;
  }
  return 1;
}

static char *slurp(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)*len + 1);
  if (b && fread(b, 1, (size_t)*len, f) != (size_t)*len) {
    free(b);
    b = NULL;
  }
  if (b) b[*len] = 0;
  fclose(f);
  return b;
}

/* ------------------------------------------------------------------ gradient checks */

typedef struct gc_task {
  opl_task task;
  const opl_model *m;
  const opl_normalizer *xn, *yn;
} gc_task;

static opl_tensor *f_loss(opl_ctx *c, opl_tensor **x, const void *o) {
  return opl_task_loss(c, &((const gc_task *)o)->task, x[0], x[1]);
}
static opl_tensor *f_predict(opl_ctx *c, opl_tensor **x, const void *o) {
  const gc_task *g = o;
  return opl_task_predict(c, g->m, &g->task, g->xn, g->yn, x[0]);
}

static opl_normalizer *random_normalizer(int rank, const int64_t *shape, uint64_t seed) {
  int64_t P = 1;
  for (int i = 0; i < rank; i++) P *= shape[i];
  opl_real *d = malloc(sizeof(opl_real) * (size_t)(5 * P));
  for (int64_t i = 0; i < 5 * P; i++) d[i] = (opl_real)(0.5 + 2 * gc_uniform(&seed));
  opl_err e;
  opl_normalizer *nz = opl_normalizer_fit(OPL_NORM_UNIT_GAUSSIAN, d, 5, rank, shape, &e);
  if (!nz) diag("normalizer: %s", e.msg);
  free(d);
  return nz;
}

static void test_gradcheck(void) {
  opl_err e;
  opl_rng rng;
  opl_rng_seed(&rng, 5);
  /* Models: FNO-2d (rollout, Cin 2), FNO-3d (Cin 2), FNO-1d (Cin 1). */
  opl_model m2 = {0}, m3 = {0}, m1 = {0};
  opl_fno_config c2 = tiny_model(2, 3), c3 = tiny_model(2, 2), c1 = tiny_model(3, 3);
  opl_task rollout = {.kind = OPL_TASK_ROLLOUT, .t_in = 2, .t_out = 3};
  opl_task space = {.kind = OPL_TASK_SPACETIME, .t_in = 2, .t_out = 4};
  opl_task stat = {.kind = OPL_TASK_STATIC, .target_frame = -1};
  c3.pad[2] = 2;
  const opl_model_kind *fk = &opl_fno_kind;
  int okm = !opl_task_model_config(&rollout, 2, fk, &c2, &e) && !opl_model_create(&m2, fk, &c2, &rng, &e) &&
            !opl_task_model_config(&space, 2, fk, &c3, &e) && !opl_model_create(&m3, fk, &c3, &rng, &e) &&
            !opl_task_model_config(&stat, 1, fk, &c1, &e) && !opl_model_create(&m1, fk, &c1, &rng, &e);
  if (!ok(okm, "tiny models for the gradient checks")) {
    diag("%s", e.msg);
    return;
  }
  /* Larger weights than the init, so that the checks see the nonlinearity. */
  opl_params *ps[3] = {&m2.params, &m3.params, &m1.params};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < ps[k]->n; i++)
      for (int64_t j = 0; j < opl_nreal(ps[k]->t[i]); j++) ps[k]->t[i]->data[j] *= (opl_real)(opl_is_complex(ps[k]->t[i]) ? 20 : 1.5);
  int64_t sx3[3] = {2, 6, 6}, sy3[3] = {4, 6, 6}, s1[2] = {1, 8};
  opl_normalizer *xn3 = random_normalizer(3, sx3, 1), *yn3 = random_normalizer(3, sy3, 2);
  opl_normalizer *xn1 = random_normalizer(2, s1, 3), *yn1 = random_normalizer(2, s1, 4);
  gc_task g_static = {.task = stat}, g_roll = {.task = rollout, .m = &m2};
  gc_task g_space = {.task = space, .m = &m3, .xn = xn3, .yn = yn3};
  gc_task g_one = {.task = stat, .m = &m1, .xn = xn1, .yn = yn1};
  gc_case rows[] = {
      {"task_loss static (3,1,8)", f_loss, &g_static, 2,
       {{.rank = 3, .shape = {3, 1, 8}}, {.rank = 3, .shape = {3, 1, 8}, .no_grad = 1}}},
      {"task_loss static 2-D (2,1,4,5)", f_loss, &g_static, 2,
       {{.rank = 4, .shape = {2, 1, 4, 5}}, {.rank = 4, .shape = {2, 1, 4, 5}, .no_grad = 1}}},
      {"task_loss rollout (2,3,4,4) summed over steps", f_loss, &g_roll, 2,
       {{.rank = 4, .shape = {2, 3, 4, 4}}, {.rank = 4, .shape = {2, 3, 4, 4}, .no_grad = 1}}},
      {"task_predict rollout FNO-2d (2,2,6,6), 3 steps fed back", f_predict, &g_roll, 1,
       {{.rank = 4, .shape = {2, 2, 6, 6}}}, GC_RTOL_MODEL, 30},
      {"task_predict spacetime FNO-3d (2,2,6,6) -> (2,4,6,6), normalizers", f_predict, &g_space, 1,
       {{.rank = 4, .shape = {2, 2, 6, 6}}}, GC_RTOL_MODEL, 30},
      {"task_predict static FNO-1d (2,1,8), normalizers", f_predict, &g_one, 1, {{.rank = 3, .shape = {2, 1, 8}}},
       GC_RTOL_MODEL, 30},
  };
  gc_run_table(rows, (int)(sizeof rows / sizeof rows[0]));

  /* opl_task_infer (bounded memory, no tape) gives opl_task_predict's values. */
  const gc_task *cases[3] = {&g_roll, &g_space, &g_one};
  const int64_t xs[3][4] = {{3, 2, 6, 6}, {3, 2, 6, 6}, {3, 1, 8, 1}};
  const int ranks[3] = {4, 4, 3};
  const char *names[3] = {"rollout (3 steps)", "spacetime with normalizers", "static 1-D with normalizers"};
  for (int k = 0; k < 3; k++) {
    opl_ctx *c = opl_ctx_new(0);
    uint64_t sd = 11 + (uint64_t)k;
    int64_t nx = xs[k][0] * xs[k][1] * xs[k][2] * (ranks[k] == 4 ? xs[k][3] : 1);
    opl_tensor *x = opl_new(c, ranks[k], xs[k]);
    for (int64_t i = 0; i < nx; i++) x->data[i] = (opl_real)coef(&sd);
    opl_tensor *y = opl_task_predict(c, cases[k]->m, &cases[k]->task, cases[k]->xn, cases[k]->yn, x);
    int64_t ny = y ? y->numel : 1;
    double *want = malloc(sizeof(double) * (size_t)ny), *got = malloc(sizeof(double) * (size_t)ny);
    opl_real *xin = malloc(sizeof(opl_real) * (size_t)nx), *out = malloc(sizeof(opl_real) * (size_t)ny),
             *win = malloc(sizeof(opl_real) * (size_t)nx);
    for (int64_t i = 0; y && i < ny; i++) want[i] = y->data[i];
    memcpy(xin, x->data, sizeof(opl_real) * (size_t)nx);
    int st = opl_task_infer(c, cases[k]->m, &cases[k]->task, cases[k]->xn, cases[k]->yn, ranks[k], xs[k], xin, out,
                            win, &e);
    for (int64_t i = 0; i < ny; i++) got[i] = out[i];
    ok(y && st == OPL_OK, "task_infer %s ran: %s", names[k], st ? e.msg : opl_ctx_errmsg(c));
    if (y && !st) arrays_close((long)ny, got, want, 0, 0, "task_infer %s = task_predict, exactly", names[k]);
    ok(!opl_ctx_grad_enabled(c) == 0, "task_infer restores gradient recording");
    free(want);
    free(got);
    free(xin);
    free(out);
    free(win);
    opl_ctx_free(&c);
  }
  {
    opl_err e2;
    opl_ctx *c = opl_ctx_new(0);
    opl_real buf[72];
    ok(opl_task_infer(c, &m2, &rollout, xn3, NULL, 4, xs[0], buf, buf, buf, &e2) == OPL_ERR_ARG,
       "task_infer: rollout with a normalizer is refused: %s", e2.msg);
    opl_ctx_free(&c);
  }
  opl_normalizer_free(&xn3);
  opl_normalizer_free(&yn3);
  opl_normalizer_free(&xn1);
  opl_normalizer_free(&yn1);
  opl_model_free(&m1);
  opl_model_free(&m2);
  opl_model_free(&m3);
}

/* ------------------------------------------------------------------ values */

static void test_loss_values(void) {
  opl_ctx *c = opl_ctx_new(0);
  uint64_t s = 99;
  opl_tensor *p = opl_new(c, OPL_DIMS(2, 3, 4, 5)), *y = opl_new(c, OPL_DIMS(2, 3, 4, 5));
  for (int64_t i = 0; i < p->numel; i++) p->data[i] = (opl_real)coef(&s), y->data[i] = (opl_real)coef(&s);
  opl_task roll = {.kind = OPL_TASK_ROLLOUT, .t_in = 1, .t_out = 3}, stat = {.kind = OPL_TASK_STATIC};
  opl_tensor *lr = opl_task_loss(c, &roll, p, y), *ls = opl_task_loss(c, &stat, p, y);
  double want_r = 0, want_s = 0;
  for (int b = 0; b < 2; b++) {
    double dd = 0, vv = 0;
    for (int t = 0; t < 3; t++) {
      double d = 0, v = 0;
      for (int i = 0; i < 20; i++) {
        double pi = p->data[(b * 3 + t) * 20 + i], yi = y->data[(b * 3 + t) * 20 + i];
        d += (pi - yi) * (pi - yi);
        v += yi * yi;
      }
      want_r += sqrt(d) / sqrt(v);
      dd += d;
      vv += v;
    }
    want_s += sqrt(dd) / sqrt(vv);
  }
  ok(lr && ls, "task losses built: %s", opl_ctx_errmsg(c));
  if (lr && ls) {
    is_close(lr->data[0], want_r, TOL * 10, 0, "rollout loss = sum over samples and steps of per-frame relative L2");
    is_close(ls->data[0], want_s, TOL * 10, 0, "one-shot loss = sum over samples of relative L2");
  }
  /* Bad shapes name both. */
  opl_tensor *q = opl_new(c, OPL_DIMS(2, 3, 4, 4));
  ok(!opl_task_loss(c, &roll, p, q) && opl_ctx_status(c) == OPL_ERR_SHAPE &&
         strstr(opl_ctx_errmsg(c), "(2, 3, 4, 5)") && strstr(opl_ctx_errmsg(c), "(2, 3, 4, 4)"),
     "task_loss with mismatched shapes: OPL_ERR_SHAPE naming both (%s)", opl_ctx_errmsg(c));
  opl_ctx_free(&c);
}

static void test_metrics(void) {
  opl_real pred[3 * 4] = {1, 2, 3, 4, 0, 0, 0, 1, 5, 5, 5, 5};
  opl_real truth[3 * 4] = {1, 2, 3, 5, 0, 0, 0, 0, 4, 4, 4, 4};
  double rel[3], tn[3];
  opl_rel_l2_per_sample(pred, truth, 3, 4, rel, tn);
  is_close(rel[0], 1 / sqrt(1 + 4 + 9 + 25.0), 1e-12, 0, "rel L2 sample 0");
  ok(isinf(rel[1]) && tn[1] == 0, "zero target with a non-zero prediction: +inf");
  is_close(rel[2], 0.25, 1e-12, 0, "rel L2 sample 2");
  double r5[5] = {0.1, 0.4, 0.2, 0.9, 0.3}, t5[5] = {1, 2, 1e-5, 1.5, 1};
  int64_t tiny[5];
  opl_err_summary s;
  ok(opl_err_summarize(r5, t5, 5, &s, tiny, NULL) == OPL_OK, "summary");
  is_close(s.mean, 0.38, 1e-12, 0, "mean");
  is_close(s.median, 0.3, 1e-12, 0, "median (odd n)");
  ok(s.worst == 0.9 && s.worst_index == 3, "worst 0.9 at 3");
  ok(s.ntiny == 1 && tiny[0] == 2, "the sample with a tiny target norm is flagged");
  ok(opl_err_summarize(r5, NULL, 4, &s, NULL, NULL) == OPL_OK && fabs(s.median - 0.3) < 1e-12, "median (even n)");
  ok(opl_err_summarize(r5, NULL, 0, &s, NULL, NULL) == OPL_ERR_ARG, "empty summary: OPL_ERR_ARG");
  char b[64];
  ok(!opl_metrics_csv_path("runs/m.h5", b, sizeof b, NULL) && !strcmp(b, "runs/m.csv"), "m.h5 -> m.csv (%s)", b);
  ok(!opl_metrics_csv_path("model", b, sizeof b, NULL) && !strcmp(b, "model.csv"), "model -> model.csv");
  ok(!opl_metrics_csv_path("a.hdf5", b, sizeof b, NULL) && !strcmp(b, "a.csv"), "a.hdf5 -> a.csv");
}

/* ------------------------------------------------------------------ training */

static opl_trainer_config base_config(int64_t ntrain, int64_t ntest, int64_t batch, int64_t epochs) {
  opl_trainer_config c = opl_trainer_defaults();
  c.ntrain = ntrain;
  c.ntest = ntest;
  c.batch = batch;
  c.epochs = epochs;
  c.seed = 42;
  return c;
}

typedef struct cb_log {
  int n;
  opl_epoch_stats s[64];
} cb_log;
static int record_cb(const opl_epoch_stats *s, void *user) {
  cb_log *l = user;
  if (l->n < 64) l->s[l->n++] = *s;
  return 0;
}

static void test_defaults(void) {
  opl_trainer_config c = opl_trainer_defaults();
  ok(c.lr == 1e-3 && c.weight_decay == 1e-4 && c.step_size == 100 && c.gamma == 0.5 && c.batch == 20 &&
         c.task.t_in == 10 && c.task.t_out == 40 && c.epochs == 500 && c.ntrain == 1000 && c.ntest == 100,
     "defaults: the published recipe (Adam 1e-3, wd 1e-4, StepLR 100 x 0.5, batch 20, T_in 10, T 40)");
}

/* The loss falls on a tiny one-shot 1-D problem; the CSV log is written beside the checkpoint. */
static void test_learns_and_csv(const char *data) {
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(data, NULL, &e);
  opl_trainer_config c = base_config(24, 8, 6, sanitized_env ? 10 : 30);
  c.lr = 1e-2;
  c.step_size = 10;
  c.checkpoint = tpath("learn.h5");
  opl_fno_config m = tiny_model(4, 8);
  opl_trainer *t = ds ? opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e) : NULL;
  if (!ok(t != NULL, "trainer on the 1-D shift problem: %s", e.msg)) {
    opl_ds_close(&ds);
    return;
  }
  cb_log log = {0};
  int st = opl_trainer_run(t, record_cb, &log, &e);
  ok(st == OPL_OK, "trained %lld epochs: %s", (long long)c.epochs, e.msg);
  ok(log.n == c.epochs && log.s[log.n - 1].epoch == c.epochs, "the callback saw every epoch (%d)", log.n);
  if (log.n >= 2) {
    diag("train loss %.4f -> %.4f, test %.4f -> %.4f", log.s[0].train_loss, log.s[log.n - 1].train_loss,
         log.s[0].test_l2, log.s[log.n - 1].test_l2);
    ok(log.s[log.n - 1].train_loss < 0.5 * log.s[0].train_loss, "training loss at least halved");
    ok(log.s[log.n - 1].test_l2 < 0.5 * log.s[0].test_l2, "test relative L2 at least halved");
    ok(log.s[0].lr == 1e-2 && fabs(log.s[log.n - 1].lr - 1e-2 * pow(0.5, (double)((log.n - 1) / 10))) < 1e-15,
       "StepLR: lr of the last epoch = 1e-2 * 0.5^floor(%d / 10)", log.n - 1);
    ok(log.s[0].samples_per_s > 0 && log.s[0].seconds >= log.s[0].train_seconds, "timings are filled");
  }
  struct stat sb;
  ok(stat(tpath("learn.h5"), &sb) == 0, "checkpoint written at the end");
  long len = 0;
  char *csv = slurp(tpath("learn.csv"), &len);
  ok(csv != NULL, "metrics log learn.csv written beside learn.h5");
  if (csv) {
    ok(strncmp(csv, OPL_METRICS_CSV_HEADER "\n", strlen(OPL_METRICS_CSV_HEADER) + 1) == 0, "CSV header");
    int rows = 0, good = 1;
    char *line = strchr(csv, '\n') + 1;
    while (line && *line) {
      long long ep;
      double tl, l2, te;
      if (sscanf(line, "%lld,%lf,%lf,%lf", &ep, &tl, &l2, &te) != 4 || ep != rows + 1 ||
          fabs(tl - log.s[rows].train_loss) > 1e-8 * fabs(tl) || fabs(te - log.s[rows].test_l2) > 1e-8 * fabs(te))
        good = 0;
      rows++;
      line = strchr(line, '\n');
      if (line) line++;
    }
    ok(rows == c.epochs && good, "CSV rows 1..%lld match the callback's statistics (%d rows)", (long long)c.epochs, rows);
    free(csv);
  }
  /* Evaluation of the saved model equals the trainer's last test metric; other resolution too. */
  opl_trained tm;
  st = opl_trained_load(tpath("learn.h5"), &tm, &e);
  ok(st == OPL_OK && tm.task.kind == OPL_TASK_STATIC && tm.ntest == 8 && tm.nx == 32 && tm.epochs == c.epochs,
     "opl_trained_load reads the task and split: %s", st ? e.msg : "");
  if (!st) {
    opl_eval_opts eo = {.ntest = 0, .sub = 1, .batch = 6, .keep = 3};
    opl_eval_result r;
    st = opl_evaluate(&tm, ds, &eo, &r, &e);
    ok(st == OPL_OK && r.n == 8 && r.kept == 3 && r.samples[0] == 32, "evaluate the last 8 samples: %s", st ? e.msg : "");
    if (!st && log.n) {
      double mean = 0;
      for (int64_t j = 0; j < r.n; j++) mean += r.rel[j];
      mean /= (double)r.n;
      is_close(mean, log.s[log.n - 1].test_l2, TOL, 0, "evaluation mean = the trainer's final test relative L2");
      double rel0;
      opl_rel_l2_per_sample(r.pred, r.truth, 1, 32, &rel0, NULL);
      is_close(rel0, r.rel[0], 1e-12, 0, "kept prediction and truth give the reported error");
    }
    opl_eval_result_free(&r);
    eo.sub = 2;
    st = opl_evaluate(&tm, ds, &eo, &r, &e);
    ok(st == OPL_OK && r.nx == 16 && isfinite(r.rel[0]), "evaluate at sub 2 (s = 16): %s", st ? e.msg : "");
    opl_eval_result_free(&r);
    eo.sub = 3;
    ok(opl_evaluate(&tm, ds, &eo, &r, &e) == OPL_ERR_ARG && strstr(e.msg, "sub = 3"), "sub not dividing: %s", e.msg);
    eo.sub = 1;
    eo.ntest = 1000;
    ok(opl_evaluate(&tm, ds, &eo, &r, &e) == OPL_ERR_ARG && strstr(e.msg, "1000"), "ntest > N: %s", e.msg);
    opl_trained_free(&tm);
  }
  opl_trainer_free(&t);
  opl_ds_close(&ds);
}

/* Partial last batch: with lr = 0 the parameters never change, so the epoch's loss must be the
 * exact mean of the per-sample relative errors of single-sample forwards. */
static void test_partial_batch(const char *data) {
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(data, NULL, &e);
  opl_trainer_config c = base_config(5, 3, 2, 1);
  c.lr = 0;
  c.weight_decay = 0;
  opl_fno_config m = tiny_model(4, 6);
  opl_trainer *t = ds ? opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e) : NULL;
  if (!ok(t != NULL, "trainer with ntrain 5, batch 2: %s", e.msg)) {
    opl_ds_close(&ds);
    return;
  }
  ok(opl_trainer_train_batches(t) == 3, "3 batches (2, 2, 1)");
  opl_epoch_stats s;
  int st = opl_trainer_epoch(t, &s, &e);
  ok(st == OPL_OK, "epoch: %s", e.msg);
  /* By hand: forward each sample alone; relative L2 by a direct loop. */
  const opl_fno *fno = opl_model_fno(opl_trainer_model(t));
  opl_ctx *cx = opl_ctx_new(0);
  double want_train = 0, want_test = 0, nominal = 0;
  int N = (int)opl_ds_get_info(ds)->dims.n;
  for (int j = 0; j < 5 + 3; j++) {
    int64_t idx = j < 5 ? j : N - 3 + (j - 5);
    opl_ctx_reset(cx);
    opl_tensor *a = opl_new(cx, OPL_DIMS(1, 1, 32));
    opl_real ut[32];
    opl_ds_read_a_range(ds, idx, 1, 1, a->data, &e);
    opl_ds_read_u_range(ds, idx, 1, 1, 1, 1, ut, &e); /* the last of 2 frames */
    opl_tensor *o = opl_fno_forward(cx, fno, a);
    double d = 0, v = 0;
    for (int i = 0; o && i < 32; i++) {
      d += ((double)o->data[i] - ut[i]) * ((double)o->data[i] - ut[i]);
      v += (double)ut[i] * ut[i];
    }
    if (j < 5) want_train += sqrt(d / v);
    else want_test += sqrt(d / v);
    if (j < 4) nominal += sqrt(d / v);
  }
  opl_ctx_free(&cx);
  is_close(s.train_loss, want_train / 5, 50 * TOL, 0, "epoch loss with a partial last batch = mean over the 5 samples");
  is_close(s.train_l2, want_train / 5, 50 * TOL, 0, "epoch relative L2 likewise");
  is_close(s.test_l2, want_test / 3, 50 * TOL, 0, "test metric (batches 2 + 1) = mean over the 3 test samples");
  diag("mean over samples %.6f; a mean that dropped the partial batch would be %.6f", want_train / 5, nominal / 4);
  opl_trainer_free(&t);
  opl_ds_close(&ds);
}

/* 2N epochs straight == N epochs, checkpoint, a new trainer resumes, N more: bit for bit. */
static void resume_case(const char *label, const char *data, opl_trainer_config c, opl_fno_config m, int64_t N) {
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(data, NULL, &e);
  char pa[64], pb[64];
  snprintf(pa, sizeof pa, "resA_%s.h5", label);
  snprintf(pb, sizeof pb, "resB_%s.h5", label);
  c.epochs = 2 * N;
  c.checkpoint = tpath(pa);
  opl_trainer *A = ds ? opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e) : NULL;
  int st = A ? opl_trainer_run(A, NULL, NULL, &e) : -1;
  if (!ok(st == OPL_OK, "%s: %lld epochs straight: %s", label, (long long)(2 * N), e.msg)) goto out;
  c.epochs = N;
  c.checkpoint = tpath(pb);
  opl_trainer *B = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e);
  st = B ? opl_trainer_run(B, NULL, NULL, &e) : -1;
  opl_trainer_free(&B);
  ok(st == OPL_OK, "%s: %lld epochs, checkpoint: %s", label, (long long)N, e.msg);
  c.epochs = 2 * N;
  opl_trainer *C = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e);
  st = C ? opl_trainer_resume(C, tpath(pb), &e) : -1;
  ok(st == OPL_OK && opl_trainer_epochs_done(C) == N, "%s: resumed at epoch %lld: %s", label, (long long)N, e.msg);
  st = st ? st : opl_trainer_run(C, NULL, NULL, &e);
  ok(st == OPL_OK && opl_trainer_epochs_done(C) == 2 * N, "%s: %lld more epochs: %s", label, (long long)N, e.msg);
  if (!st) {
    ok(params_identical(opl_trainer_params(A), opl_trainer_params(C)), "%s: parameters identical bit for bit", label);
    ok(opl_trainer_lr(A) == opl_trainer_lr(C), "%s: same learning rate", label);
    ok(params_identical(opl_trainer_optim_state(A), opl_trainer_optim_state(C)) && opl_trainer_optim_state(A)->n > 1,
       "%s: Adam moments and step count identical bit for bit", label);
    /* The metrics logs agree on every epoch's losses (the timing columns differ). */
    char ca[64], cb[64];
    snprintf(ca, sizeof ca, "resA_%s.csv", label);
    snprintf(cb, sizeof cb, "resB_%s.csv", label);
    long l1, l2;
    char *s1 = slurp(tpath(ca), &l1), *s2 = slurp(tpath(cb), &l2);
    int same = s1 && s2, rows = 0;
    for (char *p = s1, *q = s2; same && p && q && *p; rows++) {
      /* compare the first 5 fields (epoch .. lr) */
      int commas = 0;
      size_t k = 0;
      while (p[k] && p[k] != '\n' && commas < 5) commas += p[k++] == ',';
      same = strncmp(p, q, k) == 0;
      p = strchr(p, '\n');
      q = strchr(q, '\n');
      if (p) p++;
      if (q) q++;
    }
    ok(same && rows == 2 * N + 1, "%s: the resumed CSV has the straight run's rows 1..%lld (%d lines)", label,
       (long long)(2 * N), rows);
    free(s1);
    free(s2);
  }
  opl_trainer_free(&C);
out:
  opl_trainer_free(&A);
  opl_ds_close(&ds);
}

/* A copy of the checkpoint src at dst without the root attributes keys[0..nk), its checksum
 * rewritten: a checkpoint as an older opl wrote it. 0 on success. */
static int strip_attrs(const char *src, const char *dst, const char *const *keys, int nk) {
  long len = 0;
  char *buf = slurp(src, &len);
  FILE *f = buf ? fopen(dst, "wb") : NULL;
  int bad = !f || fwrite(buf, 1, (size_t)len, f) != (size_t)len;
  if (f) bad |= fclose(f) != 0;
  free(buf);
  if (bad) return 1;
  hid_t h = H5Fopen(dst, H5F_ACC_RDWR, H5P_DEFAULT);
  if (h < 0) return 1;
  for (int i = 0; i < nk; i++) bad |= H5Adelete_by_name(h, "/", keys[i], H5P_DEFAULT) < 0;
  bad |= H5Fclose(h) < 0;
  return bad || opl_h5_stamp(dst, NULL) != OPL_OK;
}

/* A checkpoint written before the warmup-cosine schedule (no train.sched.warmup_start_lr, no
 * train.sched.eta_min) reads both as 0: it resumes into a run whose rates are 0 (c: the
 * configuration of resB_static1d.h5, which the resumed run left at epoch 4), and a run with
 * another eta_min is refused. */
static void test_resume_legacy(opl_ds *ds, opl_trainer_config c) {
  static const char *const keys[] = {"train.sched.warmup_start_lr", "train.sched.eta_min"};
  char oldp[256];
  snprintf(oldp, sizeof oldp, "%s", tpath("legacy.h5"));
  if (!ok(strip_attrs(tpath("resB_static1d.h5"), oldp, keys, 2) == 0, "a checkpoint without the two rates' attributes"))
    return;
  opl_kv *kv = NULL;
  int n = 0;
  opl_err e = {0};
  int st = opl_checkpoint_read_meta(oldp, &kv, &n, &e);
  ok(st == OPL_OK && !opl_kv_find(kv, n, keys[0]) && !opl_kv_find(kv, n, keys[1]) && opl_kv_find(kv, n, "train.sched.warmup"),
     "its checksum verifies and it has no %s, no %s: %s", keys[0], keys[1], st ? e.msg : "");
  opl_kv_free(&kv, n);
  opl_trainer_config rc;
  st = opl_trainer_read_config(oldp, &rc, NULL, NULL, NULL, 0, &e);
  ok(st == OPL_OK && rc.warmup_start_lr == 0 && rc.eta_min == 0, "read_config: both rates 0 (%s)", st ? e.msg : "");
  opl_fno_config m = tiny_model(4, 6);
  c.epochs = 4;
  opl_trainer *t = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e);
  st = t ? opl_trainer_resume(t, oldp, &e) : -1;
  ok(st == OPL_OK && opl_trainer_epochs_done(t) == 4, "it resumes after epoch 4: %s", st ? e.msg : "");
  opl_trainer_free(&t);
  c.eta_min = 1e-7;
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e);
  st = t ? opl_trainer_resume(t, oldp, &e) : -1;
  ok(st == OPL_ERR_ARG && strstr(e.msg, "train.sched.eta_min = 0 there"), "with another eta_min it is refused: %s", e.msg);
  opl_trainer_free(&t);
}

static void test_resume(const char *d1, const char *d2) {
  opl_trainer_config c = base_config(10, 4, 4, 0);
  c.lr = 5e-3;
  c.step_size = 2; /* the schedule changes across the resume point */
  resume_case("static1d", d1, c, tiny_model(4, 6), 2);
  opl_trainer_config r = base_config(6, 2, 4, 0);
  r.task = (opl_task){.kind = OPL_TASK_ROLLOUT, .t_in = 2, .t_out = 2};
  r.step_size = 1;
  resume_case("rollout2d", d2, r, tiny_model(2, 4), 1);
  opl_trainer_config s = base_config(6, 2, 4, 0);
  s.task = (opl_task){.kind = OPL_TASK_SPACETIME, .t_in = 2, .t_out = 2};
  opl_fno_config m3 = tiny_model(1, 3);
  m3.pad[2] = 1;
  resume_case("spacetime3d", d2, s, m3, 1);
  /* warmup-cosine per step: 3 batches per epoch, 8 warmup steps of 12; the run is resumed at
   * step 6, inside the warmup, and crosses into the cosine after it */
  opl_trainer_config w = base_config(10, 4, 4, 0);
  w.lr = 5e-3;
  w.schedule = OPL_SCHEDULE_WARMUP_COSINE;
  w.sched_per_step = 1;
  w.warmup = 8;
  w.sched_epochs = 4;
  w.warmup_start_lr = 1e-4;
  w.eta_min = 1e-5;
  resume_case("warmupcos", d1, w, tiny_model(4, 6), 2);

  /* A checkpoint of another configuration is refused, naming what differs. */
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(d1, NULL, &e);
  opl_fno_config wide = tiny_model(4, 7);
  c.epochs = 4;
  opl_trainer *t = opl_trainer_new(&c, &opl_fno_kind, &wide, ds, &e);
  int st = t ? opl_trainer_resume(t, tpath("resB_static1d.h5"), &e) : -1;
  ok(st == OPL_ERR_ARG && strstr(e.msg, "width 6") && strstr(e.msg, "width 7"),
     "resume with another width: OPL_ERR_ARG naming both (%s)", e.msg);
  opl_trainer_free(&t);
  opl_trainer_config c2 = c;
  c2.batch = 5;
  opl_fno_config m = tiny_model(4, 6);
  t = opl_trainer_new(&c2, &opl_fno_kind, &m, ds, &e);
  st = t ? opl_trainer_resume(t, tpath("resB_static1d.h5"), &e) : -1;
  ok(st == OPL_ERR_ARG && strstr(e.msg, "train.batch = 4 there, 5"), "resume with another batch size: %s", e.msg);
  st = t ? opl_trainer_resume(t, tpath("missing.h5"), &e) : -1;
  ok(st == OPL_ERR_NOTFOUND, "resume from a missing file: OPL_ERR_NOTFOUND (%s)", e.msg);
  opl_trainer_free(&t);
  /* The warmup-cosine rates are part of the schedule: another one is refused, naming it. */
  opl_fno_config mw = tiny_model(4, 6);
  w.epochs = 4;
  for (int k = 0; k < 2; k++) {
    opl_trainer_config w2 = w;
    if (k == 0) w2.eta_min = 2e-5;
    else w2.warmup_start_lr = 0;
    t = opl_trainer_new(&w2, &opl_fno_kind, &mw, ds, &e);
    st = t ? opl_trainer_resume(t, tpath("resB_warmupcos.h5"), &e) : -1;
    ok(st == OPL_ERR_ARG && strstr(e.msg, k == 0 ? "train.sched.eta_min = 1.0000000000000001e-05 there, 2.0000000000000002e-05"
                                                 : "train.sched.warmup_start_lr = 0.0001 there, 0 in this run"),
       "resume with another %s: %s", k == 0 ? "eta_min" : "warmup_start_lr", e.msg);
    opl_trainer_free(&t);
  }
  test_resume_legacy(ds, c);
  /* The configuration reader (used by opl train --resume). */
  opl_trainer_config rc;
  opl_model_spec rs;
  opl_fno_config rm = {0};
  int64_t done = -1;
  char dsname[256];
  st = opl_trainer_read_config(tpath("resB_static1d.h5"), &rc, &rs, &done, dsname, sizeof dsname, &e);
  if (st == OPL_OK && rs.kind == &opl_fno_kind) memcpy(&rm, rs.config.bytes, sizeof rm);
  ok(st == OPL_OK && done == 4 && rc.batch == 4 && rc.ntrain == 10 && rc.lr == 5e-3 && rc.step_size == 2 &&
         rm.width == 6 && rm.modes[0] == 4 && rc.seed == 42 && !strcmp(dsname, d1),
     "read_config returns the stored configuration: %s", st ? e.msg : "");
  opl_ds_close(&ds);
}

/* The warmup-cosine schedule in the trainer, against the rates printed by the authors' scheduler
 * (tests/train/test_schedule.c). Per step (16 samples in batches of 4: 4 steps per epoch, 3
 * epochs, 6 warmup steps, 1e-7 -> 1e-3 -> 1e-7): the rate after each step of epoch 0, at the
 * start of each epoch (the metrics), after each step of epoch 1 (across the end of the warmup)
 * and after the run. Per epoch (1 warmup epoch of 3): the epochs' rates and the last. */
static void test_warmup_cosine(const char *data) {
  static const double per_step[13] = {1e-07, 0.00020008, 0.00040006, 0.00060004, 0.00080002, 0.001, 0.001,
                                      0.0009330194006220301, 0.000750025, 0.0005000499999999999, 0.0002500750000000001,
                                      6.708059937796987e-05, 1e-07};
  static const double per_epoch[4] = {1e-07, 0.001, 0.0005000499999999999, 1e-07};
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(data, NULL, &e);
  opl_trainer_config c = base_config(16, 4, 4, 3);
  c.lr = 1e-3;
  c.schedule = OPL_SCHEDULE_WARMUP_COSINE;
  c.sched_per_step = 1;
  c.warmup = 6;
  c.warmup_start_lr = 1e-7;
  c.eta_min = 1e-7;
  opl_fno_config m = tiny_model(4, 6);
#define RATE_IS(got, want) (fabs((got) - (want)) <= 1e-13 * (want))
  opl_trainer *t = ds ? opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e) : NULL;
  if (!ok(t && opl_trainer_train_batches(t) == 4, "warmup-cosine trainer, 4 steps per epoch: %s", t ? "" : e.msg)) goto out;
  int same = RATE_IS(opl_trainer_lr(t), per_step[0]), st = OPL_OK;
  for (int64_t k = 0; k < 4 && !st; k++) {
    st = opl_trainer_step(t, k, NULL, &e);
    same &= RATE_IS(opl_trainer_lr(t), per_step[k + 1]);
  }
  ok(!st && same, "per step: the start rate, then after steps 1..4 of the warmup the authors' rates (%.17g): %s",
     opl_trainer_lr(t), st ? e.msg : "");
  st = st ? st : opl_trainer_epoch(t, NULL, &e);
  same = RATE_IS(opl_trainer_lr(t), per_step[4]);
  for (int64_t k = 0; k < 4 && !st; k++) {
    st = opl_trainer_step(t, k, NULL, &e);
    same &= RATE_IS(opl_trainer_lr(t), per_step[5 + k]);
  }
  ok(!st && same, "per step, epoch 1: steps 5..8 across the end of the warmup (%.17g): %s", opl_trainer_lr(t),
     st ? e.msg : "");
  opl_trainer_free(&t);
  cb_log log = {0};
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e);
  st = t ? opl_trainer_run(t, record_cb, &log, &e) : -1;
  ok(!st && log.n == 3 && RATE_IS(log.s[0].lr, per_step[0]) && RATE_IS(log.s[1].lr, per_step[4]) &&
         RATE_IS(log.s[2].lr, per_step[8]) && RATE_IS(opl_trainer_lr(t), per_step[12]),
     "per step, a 3-epoch run: epochs at steps 0, 4, 8, and the floor at step 12 (%g %g %g, %g): %s",
     log.n > 2 ? log.s[0].lr : NAN, log.n > 2 ? log.s[1].lr : NAN, log.n > 2 ? log.s[2].lr : NAN, t ? opl_trainer_lr(t) : NAN,
     st ? e.msg : "");
  opl_trainer_free(&t);
  c.sched_per_step = 0;
  c.warmup = 1;
  memset(&log, 0, sizeof log);
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e);
  st = t ? opl_trainer_run(t, record_cb, &log, &e) : -1;
  ok(!st && log.n == 3 && RATE_IS(log.s[0].lr, per_epoch[0]) && RATE_IS(log.s[1].lr, per_epoch[1]) &&
         RATE_IS(log.s[2].lr, per_epoch[2]) && RATE_IS(opl_trainer_lr(t), per_epoch[3]),
     "per epoch, warmup 1 of 3: the authors' 1e-7, 1e-3, 5.0005e-4, then 1e-7: %s", st ? e.msg : "");
  opl_trainer_free(&t);
#undef RATE_IS
out:
  opl_ds_close(&ds);
}

/* In a forked child (a fresh FFTW planner when the parent has made no plan yet), with
 * FFTW_MEASURE plans at 2 threads: continue the run checkpointed in `from` up to `epochs`,
 * writing the checkpoint `to`. With first, the child begins by training the first `first`
 * epochs from scratch into `from` (then continues in the same process, with the same plans).
 * Returns the child's exit status (0: ok). */
static int fresh_run(const char *data, opl_trainer_config c, opl_fno_config m, int64_t first, const char *from,
                     const char *to, int64_t epochs) {
  pid_t pid = fork();
  if (pid == 0) {
    opl_fft_set_planner(OPL_FFT_MEASURE);
    opl_set_num_threads(2);
    opl_err e = {0};
    opl_ds *ds = opl_ds_open(data, NULL, &e);
    int st = ds ? OPL_OK : 1;
    opl_trainer *t = NULL;
    if (!st && first > 0) {
      c.epochs = first;
      c.checkpoint = from;
      st = (t = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e)) ? opl_trainer_run(t, NULL, NULL, &e) : 1;
      opl_trainer_free(&t);
    }
    c.epochs = epochs;
    c.checkpoint = to;
    if (!st) st = (t = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e)) ? opl_trainer_resume(t, from, &e) : 1;
    if (!st) st = opl_trainer_run(t, NULL, NULL, &e);
    if (st) fprintf(stderr, "# fresh_run: %s\n", e.msg);
    opl_trainer_free(&t);
    opl_ds_close(&ds);
    _exit(st ? 1 : 0);
  }
  int status = -1;
  if (pid > 0) waitpid(pid, &status, 0);
  return pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A resumed run replays the FFT algorithms of the run it continues, in a new process, even with
 * timed (FFTW_MEASURE) planning, which can choose differently in every process: the checkpoint
 * carries the run's FFTW wisdom and resume imports it before any plan is made. One fresh
 * process trains N epochs into a checkpoint and continues to 2N with its own plans; another
 * fresh process resumes that checkpoint to 2N: the two must agree bit for bit. (Two separate
 * measured runs from scratch may differ: that is why the default planner is FFTW_ESTIMATE.)
 * Sizes put the work of the loops and transform batches above the parallel threshold
 * (10 x 32 x 128) and modes 24 >= 2 log2(128), so the spectral layers use threaded FFTW plans.
 * Must run before any FFT in this process (the children inherit its planner). */
static void test_resume_fresh_measure(const char *data) {
  opl_trainer_config c = base_config(10, 2, 10, 0);
  c.lr = 3e-3;
  c.step_size = 1;
  opl_fno_config m = tiny_model(24, 32);
  m.proj_channels = 32;
  int64_t N = sanitized_env ? 2 : 3;
  char half[256], same[256], other[256];
  snprintf(half, sizeof half, "%s", tpath("fresh_half.h5"));
  snprintf(same, sizeof same, "%s", tpath("fresh_same.h5"));
  snprintf(other, sizeof other, "%s", tpath("fresh_other.h5"));
  int s1 = fresh_run(data, c, m, N, half, same, 2 * N);
  int s2 = s1 ? -1 : fresh_run(data, c, m, 0, half, other, 2 * N);
  if (!ok(s1 == 0 && s2 == 0, "measured plans, 2 threads: a run continued in its own process and resumed in another "
          "(exit %d, %d)", s1, s2))
    return;
  opl_trained a, b;
  opl_err e = {0};
  int la = opl_trained_load(same, &a, &e);
  int lb = la ? -1 : opl_trained_load(other, &b, &e);
  if (ok(la == OPL_OK && lb == OPL_OK && a.epochs == 2 * N && b.epochs == 2 * N, "both reached epoch %lld: %s",
         (long long)(2 * N), e.msg)) {
    ok(params_identical(&a.model.params, &b.model.params),
       "measured plans: resumed in a new process after epoch %lld == continued in the same process, bit for bit",
       (long long)N);
  }
  if (!la) opl_trained_free(&a);
  if (!lb) opl_trained_free(&b);
}

/* A NaN/Inf loss stops training with a clear message; the last good checkpoint is kept. */
static void test_divergence(const char *data) {
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(data, NULL, &e);
  opl_trainer_config c = base_config(8, 2, 4, 5);
  c.checkpoint = tpath("div.h5");
  c.checkpoint_every = 1;
  opl_fno_config m = tiny_model(4, 6);
  opl_trainer *t = ds ? opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e) : NULL;
  int st = t ? opl_trainer_epoch(t, NULL, &e) : -1;
  st = st ? st : opl_trainer_epoch(t, NULL, &e);
  ok(st == OPL_OK, "two good epochs, checkpointed: %s", e.msg);
  long len0 = 0, len1 = 0;
  char *before = slurp(tpath("div.h5"), &len0);
  opl_trainer_set_lr(t, 1e300, &e);
  st = opl_trainer_epoch(t, NULL, &e);
  ok(st == OPL_ERR_NONFINITE && strstr(e.msg, "divergence at epoch 3"), "blown-up step: OPL_ERR_NONFINITE: %s", e.msg);
  ok(opl_trainer_epochs_done(t) == 2, "the diverged epoch is not counted");
  char *after = slurp(tpath("div.h5"), &len1);
  ok(before && after && len0 == len1 && memcmp(before, after, (size_t)len0) == 0,
     "the last good checkpoint (epoch 2) is untouched");
  opl_trainer_config rc;
  int64_t done = 0;
  ok(opl_trainer_read_config(tpath("div.h5"), &rc, NULL, &done, NULL, 0, &e) == OPL_OK && done == 2,
     "it still loads, at epoch 2");
  long lc = 0;
  char *csv = slurp(tpath("div.csv"), &lc);
  int lines = 0;
  for (long i = 0; csv && i < lc; i++) lines += csv[i] == '\n';
  ok(lines == 3, "the CSV holds the header and the 2 good epochs (%d lines)", lines);
  free(csv);
  free(before);
  free(after);
  opl_params *p = opl_trainer_params(t);
  /* The guard on gradients: a non-finite parameter gives a non-finite loss first; check the
   * finite-gradient path by poisoning one parameter before a step. */
  opl_trainer_free(&t);
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e);
  p = t ? opl_trainer_params(t) : NULL;
  if (p) p->t[0]->data[0] = (opl_real)NAN;
  st = t ? opl_trainer_step(t, 0, NULL, &e) : -1;
  ok(st == OPL_ERR_NONFINITE && strstr(e.msg, "divergence"), "NaN parameter: stopped (%s)", e.msg);
  opl_trainer_free(&t);
  /* A checkpoint whose Adam state holds a NaN (its checksum valid) is refused on resume, the
   * resuming trainer's state untouched. */
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e);
  opl_params *os = t ? opl_trainer_optim_state(t) : NULL;
  int nanned = 0;
  for (int i = 0; os && i < os->n && !nanned; i++)
    if (opl_nreal(os->t[i]) > 3) os->t[i]->data[3] = (opl_real)NAN, nanned = 1;
  st = nanned ? opl_trainer_save(t, tpath("nan_state.h5"), &e) : -1;
  opl_trainer_free(&t);
  t = st == OPL_OK ? opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e) : NULL;
  st = t ? opl_trainer_resume(t, tpath("nan_state.h5"), &e) : -1;
  ok(st == OPL_ERR_NONFINITE && strstr(e.msg, "optimizer state") && strstr(e.msg, "index 3"),
     "a NaN in the checkpoint's optimizer state is refused on resume: %s", e.msg);
  opl_trainer_free(&t);
  opl_ds_close(&ds);
}

/* A steady-state training step does no malloc (OpenBLAS's threaded driver aside). */
static void test_no_malloc(const char *data) {
#if SANITIZED
  (void)data;
  skip("sanitizer build owns malloc", "steady-state training step does no malloc");
#else
  opl_err e = {0};
  opl_ds *ds = opl_ds_open(data, NULL, &e);
  opl_trainer_config c = base_config(10, 2, 4, 3);
  opl_fno_config m = tiny_model(4, 8);
  opl_trainer *t = ds ? opl_trainer_new(&c, &opl_fno_kind, &m, ds, &e) : NULL;
  int st = t ? opl_trainer_epoch(t, NULL, &e) : -1; /* warm-up: arena, plans, tape */
  opl_ctx_stats s0, s1;
  opl_ctx_get_stats(opl_trainer_ctx(t), &s0);
  n_rec = 0;
  tracking = 1;
  for (int64_t k = 0; !st && k < opl_trainer_train_batches(t); k++) st = opl_trainer_step(t, k, NULL, &e);
  tracking = 0;
  opl_ctx_get_stats(opl_trainer_ctx(t), &s1);
  long blas = 0, other = 0;
  for (long i = 0; i < n_rec && i < MAXREC; i++) {
    Dl_info info;
    if (dladdr(rec[i], &info) && info.dli_fname && strstr(info.dli_fname, "openblas")) blas++;
    else {
      if (other < 5) diag("  malloc from %s (%s)", info.dli_fname ? info.dli_fname : "?", info.dli_sname ? info.dli_sname : "?");
      other++;
    }
  }
  ok(st == OPL_OK, "steady-state steps ran: %s", e.msg);
  ok(other == 0 && n_rec <= MAXREC, "an epoch of steady-state steps (3 batches, one partial): %ld mallocs outside OpenBLAS",
     other);
  ok(s1.sys_allocs == s0.sys_allocs, "the arena made no system allocation");
  if (blas) diag("OpenBLAS made %ld allocations", blas);
  opl_trainer_free(&t);
  opl_ds_close(&ds);
#endif
}

static void test_bad_configs(const char *d1, const char *d2) {
  opl_err e = {0};
  opl_ds *ds1 = opl_ds_open(d1, NULL, &e), *ds2 = opl_ds_open(d2, NULL, &e);
  opl_fno_config m = tiny_model(4, 6);
  opl_trainer_config c = base_config(35, 8, 4, 1);
  opl_trainer *t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "ntrain 35 + ntest 8"), "ntrain + ntest > N: %s", e.msg);
  c = base_config(8, 2, 0, 1);
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "batch = 0"), "batch 0: %s", e.msg);
  c = base_config(8, 2, 4, 0);
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "epochs = 0"), "epochs 0: %s", e.msg);
  c = base_config(8, 2, 4, 1);
  c.lr = -1;
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "lr = -1"), "negative lr: %s", e.msg);
  for (int k = 0; k < 2; k++) {
    c = base_config(8, 2, 4, 1);
    c.schedule = OPL_SCHEDULE_WARMUP_COSINE;
    if (k == 0) c.warmup_start_lr = -1e-7;
    else c.eta_min = NAN;
    t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
    ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, k == 0 ? "warmup_start_lr = -1e-07" : "eta_min = nan"),
       "%s: %s", k == 0 ? "negative warmup_start_lr" : "NaN eta_min", e.msg);
  }
  c = base_config(8, 2, 4, 1);
  c.gamma = 0;
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "gamma = 0"), "gamma 0: %s", e.msg);
  c = base_config(8, 2, 4, 1);
  opl_fno_config big = tiny_model(17, 6);
  t = opl_trainer_new(&c, &opl_fno_kind, &big, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "modes 17") && strstr(e.msg, "32 points"),
     "modes > res/2: %s", e.msg);
  c.sub = 8;
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "modes 4") && strstr(e.msg, "4 points (32 / sub 8)"),
     "modes > (res/sub)/2: %s", e.msg);
  c.sub = 3;
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "sub = 3"), "sub not dividing: %s", e.msg);
  c = base_config(8, 2, 4, 1);
  c.task = (opl_task){.kind = OPL_TASK_ROLLOUT, .t_in = 2, .t_out = 2};
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "frames"), "rollout needing more frames than stored: %s", e.msg);
  c.task = (opl_task){.kind = OPL_TASK_ROLLOUT, .t_in = 1, .t_out = 1};
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "needs 2-D data"), "rollout on 1-D data: %s", e.msg);
  c.task = (opl_task){.kind = OPL_TASK_ROLLOUT, .t_in = 3, .t_out = 2};
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds2, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "3 + 2 = 5") && strstr(e.msg, "has 4"), "T_in + T > frames: %s",
     e.msg);
  c.task = (opl_task){.kind = OPL_TASK_ROLLOUT, .t_in = 2, .t_out = 2};
  c.normalize = OPL_NORMALIZE_GAUSSIAN;
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds2, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "rollout"), "gaussian normalization with rollout: %s", e.msg);
  c = base_config(8, 2, 4, 1);
  c.task.target_frame = 5;
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "target frame 5"), "target frame beyond the data: %s", e.msg);
  c = base_config(8, 2, 4, 1);
  c.task.kind = 9;
  t = opl_trainer_new(&c, &opl_fno_kind, &m, ds1, &e);
  ok(!t && e.status == OPL_ERR_ARG && strstr(e.msg, "task"), "unknown task: %s", e.msg);
  ok(opl_trainer_new(NULL, &opl_fno_kind, &m, ds1, &e) == NULL && e.status == OPL_ERR_ARG, "NULL configuration");
  opl_ds_close(&ds1);
  opl_ds_close(&ds2);
}

int main(void) {
  tap_begin();
  const char *san = getenv("OPL_SANITIZED");
  sanitized_env = san && !strcmp(san, "1");
  opl_fft_set_planner(1);
  snprintf(dir, sizeof dir, "/tmp/opl_test_trainer_XXXXXX");
  if (!mkdtemp(dir)) {
    ok(0, "temporary directory");
    return tap_end();
  }
  char d1[256], d2[256];
  snprintf(d1, sizeof d1, "%s", tpath("shift1d.h5"));
  snprintf(d2, sizeof d2, "%s", tpath("roll2d.h5"));
  write_1d(d1, 40, 32, 2);
  write_2d(d2, 10, 6, 4);
  char d3[256];
  snprintf(d3, sizeof d3, "%s", tpath("fresh1d.h5"));
  write_1d(d3, 12, 128, 2);
  test_resume_fresh_measure(d3); /* first: before this process makes any FFT plan */
  test_defaults();
  test_gradcheck();
  test_loss_values();
  test_metrics();
  test_partial_batch(d1);
  test_learns_and_csv(d1);
  test_resume(d1, d2);
  test_warmup_cosine(d1);
  test_divergence(d1);
  test_no_malloc(d1);
  test_bad_configs(d1, d2);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) diag("could not remove %s", dir);
  return tap_end();
}
