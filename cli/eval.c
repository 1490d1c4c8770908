/* opl eval — evaluate a trained model (any kind, operators/model.h) on the last samples of a data set.
 *
 *   opl eval MODEL.h5 DATA.h5 [--ntest M] [--sub R] [--out PRED.h5] [--plot FILE.png] [--solver]
 *            [--saveat step|dense]
 *
 * Prints exactly one line on stdout,
 *   test relative L2: mean X median Y worst Z (n = M)
 * (with --h1, on 2-D outputs, a second: "test relative H1: ..." the same summary of the per-sample
 * relative H1 errors of train/loss.h, HsLoss with k = 1 as the MgNO authors report it)
 * (time tasks: the relative L2 of the whole predicted trajectory), and notes on stderr: the
 * model and resolution, the forward time, the worst sample, and the samples whose target norm
 * is tiny (below 1e-3 of the median), which dominate a mean of relative errors. The resolution is
 * the file's divided by --sub; a model trained at another resolution is applied as is (an
 * operator such as the FNO is resolution-agnostic) with its normalizers resampled. --out writes inputs, targets,
 * predictions and per-sample errors to HDF5; --plot draws a few samples (cairo). --solver
 * (data sets made by `opl generate`) adds, after the line, a comparison with the reference
 * solver: time per sample and error, for the solver run as the data were generated and for the
 * solver run at the evaluation resolution from the stored initial condition.
 *
 * A neural ODE (trained by opl train node) integrates each test trajectory from its first stored
 * snapshot through all the stored times, one trajectory per solve, and prints after that line
 *   NFE: mean X (per trajectory; min A, max B)
 *   steps: accepted mean X, rejected mean Y (per trajectory)
 *   time per trajectory: prediction X s, reference solver Y s (SCHEME at S points, K trajectories re-solved)
 * the reference solver re-solving the first test trajectories as the data were generated (from
 * the file's provenance), or "reference solver n/a (REASON)" when that is not possible; --plot
 * then draws truth, prediction and error over (t, x). Its outputs at the stored times come as the
 * model was trained (its checkpoint's node.saveat) unless --saveat says otherwise.
 *
 * A model of the step task (opl train sinenet) is rolled out from each test trajectory's first
 * T_in frames over every other stored frame (the line above is that rollout's relative L2), and
 * two lines follow:
 *   one-step relative L2: mean X (teacher forcing from every start time, n = M x S)
 *   rollout relative L2 per step: E1 E2 ... (S steps, mean over the samples)
 * --plot then draws the first test sample at the steps --plot-steps names (default the first,
 * middle and last): the last history frame, truth, prediction and error of each.
 * Exit status: 0, 1 runtime failure, 2 usage error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/outputs.h"
#include "cli/plot.h"
#include "datasets/generate.h"
#include "operators/node_model.h"
#include "train/evaluate.h"
#include "train/loss.h"
#include "train/metrics.h"

/* A library message without its module tag (the CLI prints "opl eval: " before it). */
static const char *msg_of(const opl_err *e) { return opl_err_text(e); }

/* Write the evaluation to an HDF5 file (atomic): input, truth, pred, sample, rel_l2, target_norm. */
static int write_predictions(const char *path, const char *model, const char *data, int sub, const opl_eval_result *r,
                             const opl_err_summary *s, opl_err *err) {
  opl_h5w *w = opl_h5w_create(path, err);
  if (!w) return err ? err->status : OPL_ERR_IO;
  int rank = r->sdim == 2 ? 4 : 3;
  int64_t si[4] = {r->n, r->cin, r->nx, r->ny}, so[4] = {r->n, r->cout, r->nx, r->ny}, n1[1] = {r->n};
  double *idx = malloc(sizeof(double) * (size_t)r->n);
  if (!idx) {
    opl_h5w_abort(&w);
    return opl_err_set(err, OPL_ERR_NOMEM, "eval: out of memory");
  }
  for (int64_t j = 0; j < r->n; j++) idx[j] = (double)r->samples[j];
  opl_h5w_put_array(w, "input", rank, si, 0, r->input, OPL_DT_NATIVE, OPL_DT_NATIVE, err);
  opl_h5w_put_array(w, "truth", rank, so, 0, r->truth, OPL_DT_NATIVE, OPL_DT_NATIVE, err);
  opl_h5w_put_array(w, "pred", rank, so, 0, r->pred, OPL_DT_NATIVE, OPL_DT_NATIVE, err);
  opl_h5w_put_array(w, "sample", 1, n1, 0, idx, OPL_DT_F64, OPL_DT_F64, err);
  opl_h5w_put_array(w, "rel_l2", 1, n1, 0, r->rel, OPL_DT_F64, OPL_DT_F64, err);
  opl_h5w_put_array(w, "target_norm", 1, n1, 0, r->tnorm, OPL_DT_F64, OPL_DT_F64, err);
  opl_kv kv[] = {OPL_KVS("content", "opl eval predictions: input, truth, pred [n, C, X(, Y)], sample indices, "
                                    "per-sample relative L2"),
                 OPL_KVS("model", model), OPL_KVS("data", data), OPL_KVI("sub", sub), OPL_KVI("nx", r->nx),
                 OPL_KVI("ny", r->ny), OPL_KVD("rel_l2_mean", s->mean), OPL_KVD("rel_l2_median", s->median),
                 OPL_KVD("rel_l2_worst", s->worst)};
  opl_h5w_attrs(w, "/", kv, (int)(sizeof kv / sizeof kv[0]), err);
  free(idx);
  return opl_h5w_commit(&w, err);
}

/* ---------------------------------------------------------------- operator vs solver */

static const opl_kv *attr(const opl_ds_info *in, const char *key) { return opl_kv_find(in->attrs, in->nattrs, key); }
static double attr_d(const opl_ds_info *in, const char *key) {
  const opl_kv *k = attr(in, key);
  return !k ? NAN : k->type == OPL_KV_REAL ? k->d : k->type == OPL_KV_INT ? (double)k->i : NAN;
}
static int64_t attr_i(const opl_ds_info *in, const char *key, int64_t dflt) {
  const opl_kv *k = attr(in, key);
  return k && k->type == OPL_KV_INT ? k->i : dflt;
}
static const char *attr_s(const opl_ds_info *in, const char *key) {
  const opl_kv *k = attr(in, key);
  return k && k->type == OPL_KV_STR ? k->s : NULL;
}

/* The generation settings of a data set written by opl generate, from its provenance. */
static int gen_config_of(const opl_ds_info *in, opl_gen_config *c, char *msg, size_t cap) {
  const char *gen = attr_s(in, "generator"), *eq = attr_s(in, "equation");
  if (!gen || strncmp(gen, "opl", 3) || !eq) {
    snprintf(msg, cap, "'%s' carries no generation provenance (attributes 'generator', 'equation', ... written by "
                       "opl generate): --solver needs them", in->path);
    return 1;
  }
  opl_gen_config_default(c);
  c->equation = eq;
  c->preset = attr_s(in, "preset");
  c->n = in->dims.n;
  c->seed = (uint64_t)attr_i(in, "seed", 0);
  c->res = (int)attr_i(in, "solve_res", 0);
  c->store_res = (int)attr_i(in, "store_res", 0);
  c->nt = (int)attr_i(in, "nt", 0);
  c->T = attr_d(in, "T");
  c->dt = attr_d(in, "dt");
  c->L = attr_d(in, "L");
  c->cfl = attr_d(in, "cfl");
  if (!strcmp(eq, "kdv")) {
    c->a = attr_d(in, "a");
    c->b = attr_d(in, "b");
    const char *dom = attr_s(in, "domain");
    if (dom && strncmp(dom, "fixed", 5)) c->L = NAN; /* per-sample domains: keep the preset's draw */
  } else {
    c->nu = attr_d(in, "nu");
  }
  const char *ic = attr_s(in, "ic");
  if (ic && !strcmp(ic, "grf")) {
    c->sigma = attr_d(in, "grf_sigma");
    c->tau = attr_d(in, "grf_tau");
    c->alpha = attr_d(in, "grf_alpha");
    c->kmax = (int)attr_i(in, "grf_kmax", 0);
  } else if (ic && !strcmp(ic, "explicit")) {
    snprintf(msg, cap, "'%s' was solved from an explicit initial condition: --solver cannot regenerate it", in->path);
    return 1;
  }
  const char *scheme = attr_s(in, "scheme");
  c->scheme = scheme && !strcmp(scheme, "rk") ? attr_s(in, "rk_method") : scheme;
  if (scheme && !strcmp(scheme, "rk")) {
    c->rtol = attr_d(in, "rtol");
    c->atol = attr_d(in, "atol");
    if (isnan(c->dt) || c->dt == 0) c->dt = NAN;
  }
  c->store_mode = attr_s(in, "store_mode");
  const char *forcing = attr_s(in, "forcing");
  if (forcing) c->forcing = !strncmp(forcing, "fno", 3) ? "fno" : "none";
  c->refine = 0;
  return 0;
}

/* Relative L2 of the solver frames [t0, t0 + nt) of u [T, S(, S)] at stride st against
 * truth [nt, nx(, ny)] (sdim 1 or 2). */
static double solver_rel(const double *u, int64_t S, int sdim, int64_t t0, int64_t nt, int64_t st, const opl_real *truth,
                         int64_t nx, int64_t ny) {
  double d = 0, v = 0;
  for (int64_t f = 0; f < nt; f++)
    for (int64_t i = 0; i < nx; i++)
      for (int64_t j = 0; j < ny; j++) {
        double su = sdim == 1 ? u[(t0 + f) * S + i * st] : u[((t0 + f) * S + i * st) * S + j * st];
        double tv = (double)truth[(f * nx + i) * ny + j];
        d += (su - tv) * (su - tv);
        v += tv * tv;
      }
  return sqrt(d) / sqrt(v);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Print the operator-vs-solver table for the first k samples of r. Returns 0 or 1 (error printed). */
static int solver_table(const opl_trained *m, opl_ds *ds, const opl_eval_result *r, int sub, int64_t k) {
  const opl_ds_info *in = opl_ds_get_info(ds);
  opl_gen_config base;
  char msg[512];
  if (gen_config_of(in, &base, msg, sizeof msg)) {
    fprintf(stderr, "opl eval: %s\n", msg);
    return 1;
  }
  const opl_task *task = &m->task;
  /* The stored frames r->truth holds per sample: a trajectory task (neural ODE) the whole stored
   * trajectory after its first snapshot (opl_task_selections), whatever window it trained on. */
  const int traj = opl_task_continuous(task);
  int64_t t0 = traj ? 1 : opl_task_frames(task) ? task->t_in : task->target_frame;
  int64_t nt = traj ? r->cout : opl_task_frames(task) ? task->t_out : 1;
  /* a space-time model from the initial state also predicts t = 0 (frame 0 of its target, a
   * itself): the solver's frames are compared with the frames after it */
  int64_t skip = !traj && opl_task_frames(task) && task->t_in == 0 ? 1 : 0;
  if (t0 < 0) t0 = in->dims.t - 1;
  int64_t P = r->nx * r->ny;
  opl_err e;
  /* 1) the solver as the data were generated (sample index -> same random initial condition) */
  opl_gen *g = opl_gen_new(&base, &e);
  if (!g) {
    fprintf(stderr, "opl eval: --solver: cannot rebuild the generation run of '%s': %s\n", in->path, e.msg);
    return 1;
  }
  opl_ds_dims gd;
  opl_gen_dims(g, &gd);
  int64_t S = gd.x, st = S / r->nx;
  double *a = malloc(sizeof(double) * (size_t)opl_gen_a_size(g)), *u = malloc(sizeof(double) * (size_t)opl_gen_u_size(g));
  double ref_t = 0, ref_err = 0, fno_err = 0;
  int ok_ref = a && u && st >= 1 && st * r->nx == S;
  for (int64_t j = 0; ok_ref && j < k; j++) {
    opl_solve_stats ss;
    double w0 = now_s();
    if (opl_gen_sample(g, r->samples[j], a, u, &ss, &e)) {
      fprintf(stderr, "opl eval: --solver: %s\n", e.msg);
      ok_ref = 0;
      break;
    }
    ref_t += now_s() - w0;
    ref_err += solver_rel(u, S, r->sdim, t0, nt, st, r->truth + (j * (nt + skip) + skip) * P, r->nx, r->ny);
    fno_err += r->rel[j];
  }
  int solve_res = (int)attr_i(in, "solve_res", 0);
  free(a);
  free(u);
  opl_gen_free(&g);
  /* 2) the solver at the evaluation resolution, from the stored initial condition a[::sub] */
  double coarse_t = 0, coarse_err = 0;
  int ok_coarse = r->nx >= 4 && r->nx % 2 == 0 && (r->sdim == 1 || r->nx == r->ny);
  const char *dom = attr_s(in, "domain");
  if (dom && strncmp(dom, "fixed", 5)) ok_coarse = 0; /* per-sample KdV domains */
  double *ic = malloc(sizeof(double) * (size_t)P);
  opl_real *ar = malloc(sizeof(opl_real) * (size_t)P);
  for (int64_t j = 0; ok_coarse && ic && ar && j < k; j++) {
    if (opl_ds_read_a(ds, &r->samples[j], 1, sub, ar, &e)) {
      fprintf(stderr, "opl eval: --solver: %s\n", e.msg);
      ok_coarse = 0;
      break;
    }
    for (int64_t i = 0; i < P; i++) ic[i] = (double)ar[i];
    opl_gen_config c = base;
    c.n = 1;
    c.ic = ic;
    c.ic_n = (int)r->nx;
    c.ic_source = "opl eval --solver";
    c.res = c.store_res = (int)r->nx;
    c.store_mode = "stride";
    c.seed = 0;
    opl_gen *gc = opl_gen_new(&c, &e);
    double *ua = gc ? malloc(sizeof(double) * (size_t)opl_gen_u_size(gc)) : NULL, *aa = gc ? malloc(sizeof(double) * (size_t)opl_gen_a_size(gc)) : NULL;
    opl_solve_stats ss;
    double w0 = now_s();
    int bad = !gc || !ua || !aa || opl_gen_sample(gc, 0, aa, ua, &ss, &e);
    coarse_t += now_s() - w0;
    if (bad) {
      fprintf(stderr, "opl eval: --solver at s = %lld: %s\n", (long long)r->nx, e.msg);
      ok_coarse = 0;
    } else {
      coarse_err += solver_rel(ua, r->nx, r->sdim, t0, nt, 1, r->truth + (j * (nt + skip) + skip) * P, r->nx, r->ny);
    }
    free(ua);
    free(aa);
    opl_gen_free(&gc);
  }
  free(ic);
  free(ar);
  const char *scheme = attr_s(in, "scheme");
  char res[32];
  if (r->sdim == 1) snprintf(res, sizeof res, "%lld", (long long)r->nx);
  else snprintf(res, sizeof res, "%lldx%lld", (long long)r->nx, (long long)r->ny);
  printf("operator vs solver on %lld test samples (relative L2 against the stored data; seconds per sample):\n",
         (long long)k);
  printf("  %-46s %10s %14s %14s\n", "method", "resolution", "s / sample", "rel. L2");
  char name[96];
  if (traj)
    snprintf(name, sizeof name, "neural ODE (one solve per trajectory, %d thread%s)", opl_get_num_threads(),
             opl_get_num_threads() == 1 ? "" : "s");
  else
    snprintf(name, sizeof name, "FNO (batched forward, %d thread%s)", opl_get_num_threads(),
             opl_get_num_threads() == 1 ? "" : "s");
  if (!ok_ref) {
    fno_err = 0;
    for (int64_t j = 0; j < k; j++) fno_err += r->rel[j];
  }
  printf("  %-46s %10s %14.3e %14.3e\n", name, res, r->seconds / (double)r->n, fno_err / (double)k);
  snprintf(name, sizeof name, "solver %s at %s from a[::%d] (1 thread)", scheme ? scheme : "?", res, sub);
  if (ok_coarse) printf("  %-46s %10s %14.3e %14.3e\n", name, res, coarse_t / (double)k, coarse_err / (double)k);
  else printf("  %-46s %10s %14s %14s\n", name, res, "n/a", "n/a");
  snprintf(name, sizeof name, "solver %s as generated (1 thread)", scheme ? scheme : "?");
  char gres[32];
  snprintf(gres, sizeof gres, "%d", solve_res);
  if (ok_ref) printf("  %-46s %10s %14.3e %14.3e\n", name, gres, ref_t / (double)k, ref_err / (double)k);
  else printf("  %-46s %10s %14s %14s\n", name, gres, "n/a", "n/a");
  fflush(stdout);
  return ok_ref && ok_coarse ? 0 : 1;
}

/* Seconds per trajectory of the reference solver re-solving the first k test samples of r as
 * the data were generated; 0, or 1 with the reason in msg. */
static int reference_time(opl_ds *ds, const opl_eval_result *r, int64_t k, double *sec, char *what, size_t wcap,
                          char *msg, size_t cap) {
  const opl_ds_info *in = opl_ds_get_info(ds);
  opl_gen_config base;
  if (gen_config_of(in, &base, msg, cap)) return 1;
  opl_err e;
  opl_gen *g = opl_gen_new(&base, &e);
  if (!g) {
    snprintf(msg, cap, "cannot rebuild the generation run of '%.200s': %.250s", in->path, e.msg);
    return 1;
  }
  double *a = malloc(sizeof(double) * (size_t)opl_gen_a_size(g)), *u = malloc(sizeof(double) * (size_t)opl_gen_u_size(g));
  int bad = !a || !u;
  double total = 0;
  if (bad) snprintf(msg, cap, "out of memory");
  for (int64_t j = 0; !bad && j < k; j++) {
    opl_solve_stats ss;
    double w0 = now_s();
    if (opl_gen_sample(g, r->samples[j], a, u, &ss, &e)) {
      snprintf(msg, cap, "%.400s", e.msg);
      bad = 1;
    }
    total += now_s() - w0;
  }
  const char *scheme = attr_s(in, "scheme");
  snprintf(what, wcap, "%s at %lld points, %lld trajector%s re-solved", scheme ? scheme : "?",
           (long long)attr_i(in, "solve_res", 0), (long long)k, k == 1 ? "y" : "ies");
  free(a);
  free(u);
  opl_gen_free(&g);
  if (!bad) *sec = total / (double)k;
  return bad;
}

/* A step-by-step task: one line per rollout step, the relative L2 of the frame it predicted
 * ("rollout step 3 (frame 4): mean ... median ... worst ..."; frames count from 0, the input
 * being frames 0 .. T_in - 1). */
static void print_step_lines(const opl_trained *m, const opl_eval_result *r) {
  double *col = malloc(sizeof(double) * (size_t)r->n);
  for (int64_t s = 0; col && s < r->cout; s++) {
    for (int64_t j = 0; j < r->n; j++) col[j] = r->step_rel[j * r->cout + s];
    opl_err_summary q;
    opl_err_summarize(col, NULL, r->n, &q, NULL, NULL);
    printf("rollout step %lld (frame %lld): mean %.4e median %.4e worst %.4e\n", (long long)(s + 1),
           (long long)(m->task.t_in + s), q.mean, q.median, q.worst);
  }
  free(col);
  fflush(stdout);
}

/* The solver lines of a model that integrates in time (r->nfe set). */
static void print_solver_lines(opl_ds *ds, const opl_eval_result *r, int64_t solver_n) {
  double nfe = 0, acc = 0, rej = 0;
  int64_t lo = INT64_MAX, hi = 0;
  for (int64_t j = 0; j < r->n; j++) {
    nfe += (double)r->nfe[j], acc += (double)r->accepted[j], rej += (double)r->rejected[j];
    if (r->nfe[j] < lo) lo = r->nfe[j];
    if (r->nfe[j] > hi) hi = r->nfe[j];
  }
  double n = (double)r->n;
  printf("NFE: mean %.1f (per trajectory; min %lld, max %lld)\n", nfe / n, (long long)lo, (long long)hi);
  printf("steps: accepted mean %.1f, rejected mean %.1f (per trajectory)\n", acc / n, rej / n);
  fflush(stdout);
  char what[160] = "", msg[512] = "";
  double ref = 0;
  int64_t k = solver_n < r->n ? solver_n : r->n;
  if (reference_time(ds, r, k, &ref, what, sizeof what, msg, sizeof msg))
    printf("time per trajectory: prediction %.3e s, reference solver n/a (%s)\n", r->seconds / n, msg);
  else
    printf("time per trajectory: prediction %.3e s, reference solver %.3e s (%s)\n", r->seconds / n, ref, what);
  fflush(stdout);
}

/* The step task's figure: the first test sample at the rollout steps listed in steps_s (1-based,
 * comma separated; NULL: first, middle, last), one row per step: the last history frame, truth,
 * prediction, error. 0, or 1 after printing why not. */
static int plot_step_figure(const char *path, const char *steps_s, const opl_trained *m, const opl_eval_result *r,
                            const char *desc, const char *dpath) {
  int64_t steps[16], ns = 0, S = r->cout, P = r->nx * r->ny;
  if (!steps_s) {
    steps[ns++] = 1;
    if (S >= 3) steps[ns++] = (S + 1) / 2;
    if (S >= 2) steps[ns++] = S;
  } else {
    const char *p = steps_s;
    while (*p) {
      char *end;
      long long v = strtoll(p, &end, 10);
      if (end == p || v < 1 || v > S || ns == 16 || (*end && *end != ',')) {
        fprintf(stderr, "opl eval: --plot-steps expects up to 16 comma-separated steps in 1..%lld, got '%s'\n",
                (long long)S, steps_s);
        return 1;
      }
      steps[ns++] = v;
      p = *end ? end + 1 : end;
    }
  }
  if (ns == 0 || r->kept < 1) {
    fprintf(stderr, "opl eval: --plot: no step or sample to draw\n");
    return 1;
  }
  cli_plot_sample ps[16];
  char labels[16][96];
  for (int64_t k = 0; k < ns; k++) {
    double rel[1];
    opl_rel_l2_per_sample(r->pred + (steps[k] - 1) * P, r->truth + (steps[k] - 1) * P, 1, P, rel, NULL);
    snprintf(labels[k], sizeof labels[k], "step %lld (frame %lld), rel. L2 %.2e", (long long)steps[k],
             (long long)(m->task.t_in + steps[k] - 1), rel[0]);
    ps[k].label = labels[k];
    ps[k].input = r->input + (m->task.t_in - 1) * P; /* the last true frame the rollout starts from */
    ps[k].truth = r->truth + (steps[k] - 1) * P;
    ps[k].pred = r->pred + (steps[k] - 1) * P;
  }
  char title[512], msg[512], name[64], in_name[64];
  const char *base = strrchr(dpath, '/') ? strrchr(dpath, '/') + 1 : dpath;
  snprintf(name, sizeof name, "%.63s", desc);
  char *paren = strstr(name, " (");
  if (paren) *paren = 0;
  snprintf(title, sizeof title, "%s rollout of sample %lld of %s: relative L2 %.2e over %lld steps", name,
           (long long)r->samples[0], base, r->rel[0], (long long)S);
  snprintf(in_name, sizeof in_name, "last input frame %lld", (long long)(m->task.t_in - 1));
  if (cli_plot_2d(path, title, (int)ns, ps, r->nx, r->ny, in_name, "frame", msg, sizeof msg)) {
    fprintf(stderr, "opl eval: --plot: %s\n", msg);
    return 1;
  }
  fprintf(stderr, "opl eval: plot of %lld rollout steps written to '%s'\n", (long long)ns, path);
  return 0;
}

/* ---------------------------------------------------------------- the verb */

int cli_eval(int argc, char **argv) {
  if (argc > 1 && argv[1][0] != '-' && cli_is_pinn_model(argv[1])) return cli_eval_pinn(argc, argv);
  int64_t ntest = 0, sub = 1, batch = 0, plot_n = 4, threads = 0, solver_n = 4;
  static const char *out, *plot, *saveat_s, *plot_steps; /* static: cli_parse's copies stay reachable until exit */
  out = plot = saveat_s = plot_steps = NULL;
  int solver = 0, h1 = 0;
  const cli_opt opts[] = {
      {"ntest", CLI_INT, &ntest, "evaluate the last M samples (0: the model's test split size)"},
      {"sub", CLI_INT, &sub, "sub-sampling of the data set: evaluate at resolution X / sub"},
      {"batch", CLI_INT, &batch, "samples per forward pass (0: 20; neural ODEs: 1, each trajectory its own solve)"},
      {"out", CLI_STRING, &out, "write inputs, targets, predictions and errors to this HDF5 file"},
      {"plot", CLI_STRING, &plot, "draw input, truth, prediction and error of a few samples into this PNG"},
      {"plot-samples", CLI_INT, &plot_n, "samples drawn by --plot (the first ones of the test set)"},
      {"plot-steps", CLI_STRING, &plot_steps,
       "step task: rollout steps drawn by --plot for the first test sample, comma separated (default: first, middle, "
       "last)"},
      {"h1", CLI_FLAG, &h1, "2-D outputs: also print the relative H1 error (HsLoss k = 1, as --loss h1 of opl train)"},
      {"solver", CLI_FLAG, &solver, "compare with the reference solver (data from opl generate): time and error"},
      {"solver-samples", CLI_INT, &solver_n, "samples re-solved by --solver"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"saveat", CLI_STRING, &saveat_s,
       "neural ODEs: outputs by stepping onto the stored times (step) or by the method's interpolant (dense); "
       "default: the model's"},
  };
  char *pos[3];
  int npos;
  int rc = cli_parse("eval", "MODEL.h5 DATA.h5 [options]", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos,
                     3, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (npos != 2) {
    fprintf(stderr, "opl eval: expected MODEL.h5 and DATA.h5 (got %d file%s); see opl eval --help\n", npos,
            npos == 1 ? "" : "s");
    return 2;
  }
  if (ntest < 0 || sub < 1 || sub > 1 << 30 || batch < 0 || plot_n < 1 || plot_n > 16 || threads < 0 || solver_n < 1) {
    fprintf(stderr, "opl eval: --ntest >= 0, --sub >= 1, --batch >= 0, --plot-samples 1..16 and --solver-samples >= 1 "
                    "expected\n");
    return 2;
  }
  const int saveat = saveat_s ? opl_node_saveat_from_name(saveat_s) : -1;
  if (saveat_s && saveat < 0) {
    fprintf(stderr, "opl eval: --saveat expects step or dense, got '%s'\n", saveat_s);
    return 2;
  }
  const cli_file outs[] = {{"--out", out}, {"--plot", plot}}, ins[] = {{"MODEL.h5", pos[0]}, {"DATA.h5", pos[1]}};
  if (cli_outputs_check("eval", outs, 2, ins, 2)) return 2;
  if (plot && !cli_plot_available()) {
    char msg[256];
    cli_plot_1d(plot, "", 0, NULL, 0, "", msg, sizeof msg);
    fprintf(stderr, "opl eval: --plot: %s\n", msg);
    return 2;
  }
  if (threads > 0) opl_set_num_threads((int)threads);
  const char *mpath = pos[0], *dpath = pos[1];
  opl_err e = {0};
  opl_trained m;
  if (opl_trained_load(mpath, &m, &e)) {
    fprintf(stderr, "opl eval: cannot load the model: %s\n", e.msg);
    return 1;
  }
  if (saveat >= 0) {
    if (!opl_node_model_is(&m.model)) {
      fprintf(stderr, "opl eval: --saveat applies to neural ODEs; '%s' holds a %s model\n", mpath, m.model.ops->name);
      opl_trained_free(&m);
      return 2;
    }
    if (opl_node_model_set_saveat(&m.model, saveat, &e)) {
      fprintf(stderr, "opl eval: --saveat: %s\n", e.msg);
      opl_trained_free(&m);
      return 1;
    }
  }
  opl_ds *ds = opl_ds_open(dpath, NULL, &e);
  if (!ds) {
    fprintf(stderr, "opl eval: cannot read the data set: %s\n", e.msg);
    opl_trained_free(&m);
    return 1;
  }
  int64_t N = opl_ds_get_info(ds)->dims.n;
  int64_t n_eval = ntest > 0 ? ntest : (m.ntest > 0 ? (m.ntest < N ? m.ntest : N) : 0);
  int64_t keep = out ? n_eval : 0;
  if (plot && keep < plot_n) keep = plot_n;
  if (solver && keep < solver_n) keep = solver_n;
  if (h1) keep = n_eval > 0 ? n_eval : N;
  opl_eval_opts eo = {.ntest = ntest, .sub = (int)sub, .batch = batch, .keep = keep, .warmup = 1};
  opl_eval_result r;
  int st = opl_evaluate(&m, ds, &eo, &r, &e);
  if (st) {
    fprintf(stderr, "opl eval: %s\n", msg_of(&e));
    opl_ds_close(&ds);
    opl_trained_free(&m);
    return st == OPL_ERR_ARG || st == OPL_ERR_SHAPE ? 2 : 1;
  }
  opl_err_summary s;
  int64_t *tiny = malloc(sizeof(int64_t) * (size_t)r.n);
  opl_err_summarize(r.rel, r.tnorm, r.n, &s, tiny, NULL);
  printf("test relative L2: mean %.4e median %.4e worst %.4e (n = %lld)\n", s.mean, s.median, s.worst, (long long)r.n);
  fflush(stdout);
  if (h1) {
    double *rh = malloc(sizeof(double) * (size_t)(r.n > 0 ? r.n : 1));
    int hs = !rh ? opl_err_set(&e, OPL_ERR_NOMEM, "out of memory")
             : r.sdim != 2 || r.nfe || r.kept < r.n
                 ? opl_err_set(&e, OPL_ERR_ARG, "the H1 error is defined here for 2-D outputs a -> u (got a %d-D %s)",
                               r.sdim, r.nfe ? "trajectory" : "field")
                 : opl_h1_rel_per_sample(r.pred, r.truth, r.n, r.cout, r.nx, r.ny, rh, &e);
    if (hs) {
      fprintf(stderr, "opl eval: --h1: %s\n", msg_of(&e));
      free(rh);
      free(tiny);
      opl_eval_result_free(&r);
      opl_ds_close(&ds);
      opl_trained_free(&m);
      return hs == OPL_ERR_NOMEM ? 1 : 2;
    }
    opl_err_summary sh;
    opl_err_summarize(rh, r.tnorm, r.n, &sh, NULL, NULL);
    printf("test relative H1: mean %.4e median %.4e worst %.4e (n = %lld)\n", sh.mean, sh.median, sh.worst,
           (long long)r.n);
    fflush(stdout);
    free(rh);
  }
  if (r.nfe) print_solver_lines(ds, &r, solver_n);
  if (r.step_rel && opl_task_windowed(&m.task)) {
    /* the step task: its one-step error and the rollout's mean error per step on one line each */
    printf("one-step relative L2: mean %.4e (teacher forcing from every start time, n = %lld x %lld)\n", r.onestep,
           (long long)r.n, (long long)r.cout);
    printf("rollout relative L2 per step:");
    for (int64_t k = 0; k < r.cout; k++) {
      double sum = 0;
      for (int64_t j = 0; j < r.n; j++) sum += r.step_rel[j * r.cout + k];
      printf(" %.4e", sum / (double)r.n);
    }
    printf(" (%lld steps, mean over the samples)\n", (long long)r.cout);
    fflush(stdout);
  }
  if (r.step_rel) print_step_lines(&m, &r);
  char res[64];
  if (r.sdim == 1) snprintf(res, sizeof res, "s = %lld", (long long)r.nx);
  else snprintf(res, sizeof res, "%lld x %lld", (long long)r.nx, (long long)r.ny);
  char trained[64] = "";
  if (m.nx > 0) {
    if (r.sdim == 1) snprintf(trained, sizeof trained, ", trained at s = %lld", (long long)m.nx);
    else snprintf(trained, sizeof trained, ", trained at %lld x %lld", (long long)m.nx, (long long)m.ny);
  }
  char desc[256];
  m.model.ops->describe(m.model.self, desc, sizeof desc);
  fprintf(stderr, "opl eval: %s (%s task%s) on '%s' at %s (sub %lld): samples %lld..%lld; forward %.3g s "
                  "(%.3g ms per sample, %d thread%s); worst: sample %lld\n",
          desc, opl_task_name(m.task.kind), trained, dpath, res, (long long)sub, (long long)r.samples[0],
          (long long)r.samples[r.n - 1], r.seconds, 1e3 * r.seconds / (double)r.n, opl_get_num_threads(), opl_get_num_threads() == 1 ? "" : "s",
          (long long)r.samples[s.worst_index]);
  for (int64_t j = 0; j < s.ntiny && j < 10; j++)
    fprintf(stderr, "opl eval: note: sample %lld has a tiny target norm %.3e (median %.3e): its relative error %.3e "
                    "weighs on the mean\n",
            (long long)r.samples[tiny[j]], r.tnorm[tiny[j]], s.median_tnorm, r.rel[tiny[j]]);
  if (s.ntiny > 10) fprintf(stderr, "opl eval: note: %lld more samples with tiny target norms\n", (long long)(s.ntiny - 10));
  free(tiny);
  int status = 0;
  if (out) {
    if (write_predictions(out, mpath, dpath, (int)sub, &r, &s, &e)) {
      fprintf(stderr, "opl eval: --out: %s\n", e.msg);
      status = 1;
    } else {
      fprintf(stderr, "opl eval: predictions written to '%s'\n", out);
    }
  }
  if (plot && r.step_rel && opl_task_windowed(&m.task)) {
    if (plot_step_figure(plot, plot_steps, &m, &r, desc, dpath)) status = 1;
  } else if (plot) {
    int np = (int)(plot_n < r.kept ? plot_n : r.kept);
    cli_plot_sample ps[16];
    char labels[16][96];
    int64_t P = r.nx * r.ny;
    for (int j = 0; j < np; j++) {
      snprintf(labels[j], sizeof labels[j], "sample %lld, rel. L2 %.2e", (long long)r.samples[j], r.rel[j]);
      ps[j].label = labels[j];
      /* the last input channel / frame and the last target frame */
      ps[j].input = r.input + (j * r.cin + (r.step_rel ? m.task.t_in : r.cin) - 1) * P; /* onestep: more frames */
      ps[j].truth = r.truth + (j * r.cout + r.cout - 1) * P;
      ps[j].pred = r.pred + (j * r.cout + r.cout - 1) * P;
    }
    char title[512], msg[512];
    const char *base = strrchr(dpath, '/') ? strrchr(dpath, '/') + 1 : dpath;
    char name[64];
    snprintf(name, sizeof name, "%.63s", desc);
    char *paren = strstr(name, " (");
    if (paren) *paren = 0; /* "FNO-1d" of "FNO-1d (modes ...)" */
    snprintf(title, sizeof title, "%s on %s at %s: test relative L2 mean %.2e, median %.2e (n = %lld)",
             name, base, res, s.mean, s.median, (long long)r.n);
    int prc;
    opl_real *held = NULL;
    if (r.nfe && r.sdim == 1) {
      /* A trajectory over (t, x): truth, prediction and error as maps of (t, x); the first
       * panel is the initial state held constant (what the model starts from). */
      held = malloc(sizeof(opl_real) * (size_t)(np * r.cout * r.nx));
      for (int j = 0; held && j < np; j++) {
        for (int64_t f = 0; f < r.cout; f++)
          memcpy(held + (j * r.cout + f) * r.nx, r.input + j * r.cin * r.nx, sizeof(opl_real) * (size_t)r.nx);
        ps[j].input = held + j * r.cout * r.nx;
        ps[j].truth = r.truth + j * r.cout * r.nx;
        ps[j].pred = r.pred + j * r.cout * r.nx;
      }
      prc = held ? cli_plot_2d(plot, title, np, ps, r.cout, r.nx, "u(t0, x) held", "u (t across, x up)", msg, sizeof msg)
                 : (snprintf(msg, sizeof msg, "out of memory"), 1);
      free(held);
    } else if (r.sdim == 1) {
      prc = cli_plot_1d(plot, title, np, ps, r.nx, "input a", msg, sizeof msg);
    } else {
      char in_name[64], tg[64];
      if (!opl_task_frames(&m.task)) snprintf(in_name, sizeof in_name, "input a"), snprintf(tg, sizeof tg, "u");
      else
        snprintf(in_name, sizeof in_name, "input frame %lld", (long long)m.task.t_in),
            snprintf(tg, sizeof tg, "frame %lld", (long long)(m.task.t_in + m.task.t_out));
      prc = cli_plot_2d(plot, title, np, ps, r.nx, r.ny, in_name, tg, msg, sizeof msg);
    }
    if (prc) {
      fprintf(stderr, "opl eval: --plot: %s\n", msg);
      status = 1;
    } else {
      fprintf(stderr, "opl eval: plot of %d samples written to '%s'\n", np, plot);
    }
  }
  if (solver) {
    int64_t k = solver_n < r.kept ? solver_n : r.kept;
    if (solver_table(&m, ds, &r, (int)sub, k)) status = 1;
  }
  opl_eval_result_free(&r);
  opl_ds_close(&ds);
  opl_trained_free(&m);
  return status;
}
