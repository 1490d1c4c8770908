/* node_spiral — the neural-ODE spiral experiment (experiments/node/README in results.md).
 *
 * The task of torchdiffeq's examples/ode_demo.py (Chen et al., "Neural Ordinary Differential
 * Equations", NeurIPS 2018): the true system dz/dt = z^3 A (z a row vector, A = [[-0.1, 2.0],
 * [-2.0, -0.1]]), z(0) = (2, 0), observed at 1000 equally spaced times on [0, 25]; the model
 * dz/dt = MLP(z^3) with a 2-50-2 tanh MLP (weights N(0, 0.1^2), zero biases, as the demo);
 * training batches are 20 random windows of 10 consecutive observations, the loss the mean
 * absolute error over the window. The ground truth is integrated by opl's RK core in double
 * precision (DP5, rtol 1e-10, atol 1e-12).
 *
 * Variants (one per run, each from the same seed: same initial weights, same batches):
 *   vanilla        the data loss only
 *   global         + lambda R_E, R_E = sum_j EEst_j |h_j| over the solve's accepted steps
 *                  (Pal, Ma, Shah, Rackauckas, "Opening the Blackbox", ICML 2021)
 *   local          + lambda EEst dt of one step from u(t1), t1 ~ U[0, T)   (unbiased)
 *   local-biased   + the same from t1 drawn among the accepted steps' start times
 *                  (Pal, Edelman, Rackauckas, "Locally Regularized Neural Differential
 *                   Equations", ICML 2023)
 *
 * Commands:
 *   node_spiral train --variant V [--iters N] [--lambda L] [--seed S] [--adjoint A]
 *                     [--rtol R] [--atol A] [--threads T] [--header]
 *       trains, then prints one markdown table row: variant, adjoint, training time, final
 *       training loss (mean of the last 100 iterations), training NFE per iteration (forward
 *       with the local step's / backward), test loss and test NFE on the fixed test batch (64
 *       windows of 4 time units, outputs every time unit), prediction time of that batch (the
 *       shortest of 11 solves), and the loss and NFE of the whole trajectory from z(0) over
 *       [0, 25] (outputs at every 10th observation).
 *   node_spiral peer-export --out FILE [--seed S] [--rtol R] [--atol A]
 *       writes the initial weights, one training batch and the tolerances as text for
 *       experiments/node/peer.py (the same numbers on both sides).
 *   node_spiral peer --in FILE [--steps K] [--warmup W] [--threads T] [--saveat step|dense]
 *       times K training steps (forward solve, loss, backward, Adam) on the exported batch and
 *       prints one JSON line: samples/s, peak RSS (VmHWM), forward NFE of the first step;
 *       --saveat dense takes the window's outputs from the DP5 interpolant (node.h) as
 *       torchdiffeq does, instead of stepping onto each (the default).
 * Errors go to stderr with exit status 1 (2 for usage). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/optim.h"
#include "core/rng.h"
#include "operators/mlp.h"
#include "operators/node.h"
#include "solvers/rk.h"

#define NDATA 1000      /* observations on [0, 25] */
#define TEND 25.0
#define BTIME 10        /* observations per training window */
#define BSIZE 20        /* windows per batch */
#define TEST_N 64       /* test windows */
#define TEST_LEN 160    /* observation intervals per test window (4 time units) */
#define TEST_EVERY 40   /* outputs every 40 intervals (1 time unit) */
#define TRAJ_EVERY 10   /* the whole trajectory: outputs every 10th observation */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of this process (all threads): on a shared machine the wall time includes the
 * time spent waiting for a core; with one thread this is the work itself. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, const char *msg) {
  fprintf(stderr, "node_spiral: %s: %s\n", what, msg);
  exit(1);
}

/* VmHWM of this process in kB (0 if unreadable). */
static long vmhwm_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

/* ------------------------------------------------------------ the true system */

static const double A_TRUE[2][2] = {{-0.1, 2.0}, {-2.0, -0.1}};

/* dz_k = sum_j z_j^3 A_jk (torch.mm(y**3, A)). */
static int true_rhs(void *user, double t, const void *yv, void *dyv) {
  (void)user, (void)t;
  const double *y = yv;
  double *dy = dyv;
  const double c0 = y[0] * y[0] * y[0], c1 = y[1] * y[1] * y[1];
  dy[0] = c0 * A_TRUE[0][0] + c1 * A_TRUE[1][0];
  dy[1] = c0 * A_TRUE[0][1] + c1 * A_TRUE[1][1];
  return 0;
}

static double tgrid[NDATA];
static opl_real ztrue[NDATA][2];

static void make_truth(void) {
  opl_err err = {0};
  opl_rk_vops ops = opl_rk_vops_double(2);
  ops.rhs = true_rhs;
  opl_rk *rk = opl_rk_create(&ops, NULL, OPL_RK_DP5, &err);
  if (!rk || opl_rk_set_tolerances(rk, 1e-10, 1e-12, &err)) die("truth", err.msg);
  double y[2] = {2.0, 0.0};
  for (int k = 0; k < NDATA; k++) tgrid[k] = TEND * k / (NDATA - 1);
  if (opl_rk_init(rk, 0, y, &err)) die("truth", err.msg);
  for (int k = 0; k < NDATA; k++) {
    if (opl_rk_advance(rk, tgrid[k], &err)) die("truth", err.msg);
    opl_rk_get_state(rk, y);
    ztrue[k][0] = (opl_real)y[0], ztrue[k][1] = (opl_real)y[1];
  }
  opl_rk_free(&rk);
}

/* n distinct window starts in [0, hi) from rng (rejection of repeats). */
static void draw_starts(opl_rng *rng, int n, int hi, int *s) {
  for (int i = 0; i < n; i++) {
    int ok;
    do {
      s[i] = (int)(opl_rng_uniform(rng) * hi);
      ok = 1;
      for (int j = 0; j < i; j++) ok &= s[j] != s[i];
    } while (!ok);
  }
}

/* ------------------------------------------------------------ the model */

typedef struct model {
  opl_params p;
  opl_mlp mlp;
} model;

/* The demo's initialization: weights N(0, 0.1^2), biases 0, from seed. */
static void model_init(model *m, uint64_t seed) {
  opl_err err = {0};
  opl_rng rng;
  opl_rng_seed(&rng, seed);
  opl_params_init(&m->p);
  const int64_t widths[3] = {2, 50, 2};
  if (opl_mlp_init(&m->mlp, &m->p, "net", 2, widths, OPL_TANH, &rng, &err)) die("model", err.msg);
  for (int i = 0; i < 2; i++) {
    opl_rng_fill_normal(&rng, m->mlp.w[i]->data, m->mlp.w[i]->numel, 0, 0.1);
    memset(m->mlp.b[i]->data, 0, (size_t)m->mlp.b[i]->numel * sizeof(opl_real));
  }
}

/* du = MLP(u^3), u (B, 2). */
static int field(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  (void)t;
  const model *m = user;
  *du = opl_mlp_forward(c, &m->mlp, opl_mul(c, u, opl_square(c, u)));
  return 0;
}

static opl_nde *make_nde(model *m, opl_nde_adjoint adj, double rtol, double atol) {
  opl_err err = {0};
  opl_nde *nd = opl_nde_create(OPL_RK_DP5, field, m, &err);
  if (!nd || opl_nde_set_tolerances(nd, rtol, atol, &err) || opl_nde_set_adjoint(nd, adj, &err) ||
      opl_nde_set_params(nd, m->p.n, m->p.t, &err))
    die("nde", err.msg);
  return nd;
}

/* The mean absolute error of a solve from y0 (B, 2) at the outputs ts[0..nt) against targets
 * tg[nt][B][2], recorded on c; us (nt) the predictions. */
static opl_tensor *window_loss(opl_ctx *c, opl_tensor **us, int nt, int B, const opl_real *tg) {
  opl_tensor *y = opl_new(c, OPL_DIMS((int64_t)nt * B, 2));
  if (!y) return NULL;
  memcpy(y->data, tg, (size_t)nt * B * 2 * sizeof(opl_real));
  /* mean |pred - y| over (nt, B, 2), as torch.mean(torch.abs(pred_y - batch_y)) */
  return opl_mean(c, opl_abs(c, opl_sub(c, opl_concat(c, nt, us, 0), y)));
}

/* ------------------------------------------------------------ options */

typedef struct opts {
  const char *variant, *adjoint, *in, *out, *saveat;
  int iters, threads, steps, warmup, header;
  double lambda, rtol, atol;
  uint64_t seed;
} opts;

static opl_nde_adjoint parse_adjoint(const char *s) {
  if (!strcmp(s, "discrete")) return OPL_NDE_ADJ_DISCRETE;
  if (!strcmp(s, "checkpoint")) return OPL_NDE_ADJ_CHECKPOINT;
  if (!strcmp(s, "backsolve")) return OPL_NDE_ADJ_BACKSOLVE;
  if (!strcmp(s, "interp")) return OPL_NDE_ADJ_INTERP;
  fprintf(stderr, "node_spiral: --adjoint %s (expected discrete, checkpoint, backsolve or interp)\n", s);
  exit(2);
}

static void parse(int argc, char **argv, opts *o) {
  *o = (opts){.variant = "vanilla", .adjoint = "discrete", .saveat = "step", .iters = 2000, .threads = 0, .steps = 200,
              .warmup = 10, .lambda = 0.1, .rtol = 1e-6, .atol = 1e-8, .seed = 1};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int used = 1;
    if (!strcmp(a, "--header")) o->header = 1, used = 0;
    else if (!v) used = -1;
    else if (!strcmp(a, "--variant")) o->variant = v;
    else if (!strcmp(a, "--adjoint")) o->adjoint = v;
    else if (!strcmp(a, "--saveat")) o->saveat = v;
    else if (!strcmp(a, "--in")) o->in = v;
    else if (!strcmp(a, "--out")) o->out = v;
    else if (!strcmp(a, "--iters")) o->iters = atoi(v);
    else if (!strcmp(a, "--threads")) o->threads = atoi(v);
    else if (!strcmp(a, "--steps")) o->steps = atoi(v);
    else if (!strcmp(a, "--warmup")) o->warmup = atoi(v);
    else if (!strcmp(a, "--lambda")) o->lambda = atof(v);
    else if (!strcmp(a, "--rtol")) o->rtol = atof(v);
    else if (!strcmp(a, "--atol")) o->atol = atof(v);
    else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
    else used = -1;
    if (used < 0) {
      fprintf(stderr, "node_spiral: bad option '%s' (see the comment at the top of spiral.c)\n", a);
      exit(2);
    }
    i += used;
  }
  if (strcmp(o->saveat, "step") && strcmp(o->saveat, "dense")) {
    fprintf(stderr, "node_spiral: --saveat %s (expected step or dense)\n", o->saveat);
    exit(2);
  }
  if (o->iters < 1 || o->steps < 1 || o->warmup < 0 || !(o->rtol > 0) || !(o->atol > 0) || !(o->lambda >= 0)) {
    fprintf(stderr, "node_spiral: --iters/--steps >= 1, --warmup >= 0, --rtol/--atol > 0, --lambda >= 0\n");
    exit(2);
  }
  if (o->threads > 0) opl_set_num_threads(o->threads);
}

/* ------------------------------------------------------------ train */

/* A batch: y0 (B, 2) and targets [BTIME][B][2] of windows starting at s[0..B). */
static void fill_batch(const int *s, int B, int len, int every, opl_real *y0, opl_real *tg) {
  const int nt = len / every + 1;
  for (int b = 0; b < B; b++) {
    y0[2 * b] = ztrue[s[b]][0], y0[2 * b + 1] = ztrue[s[b]][1];
    for (int k = 0; k < nt; k++) {
      tg[((size_t)k * B + b) * 2] = ztrue[s[b] + k * every][0];
      tg[((size_t)k * B + b) * 2 + 1] = ztrue[s[b] + k * every][1];
    }
  }
}

/* Loss and NFE of a tape-free solve of y0 (B, 2) through the outputs ts[0..nt); *secs the
 * shortest CPU time of 11 solves (the machine is shared: CPU time, and the least disturbed). */
static double eval_solve(opl_nde *nd, opl_ctx *c, int B, const opl_real *y0d, int nt, const double *ts,
                         const opl_real *tg, int64_t *nfev, double *secs) {
  opl_err err = {0};
  double best = INFINITY, loss = NAN;
  for (int r = 0; r < 11; r++) {
    opl_ctx_reset(c);
    int oldg = opl_ctx_set_grad_enabled(c, 0);
    opl_tensor *y0 = opl_new(c, OPL_DIMS(B, 2));
    memcpy(y0->data, y0d, (size_t)B * 2 * sizeof(opl_real));
    opl_tensor **us = opl_arena_alloc(c, (size_t)nt * sizeof *us);
    double t0 = cpu_now();
    if (opl_nde_solve(nd, c, 0, y0, nt, ts, us, &err)) die("test solve", err.msg);
    best = fmin(best, cpu_now() - t0);
    opl_tensor *l = window_loss(c, us, nt, B, tg);
    if (!l) die("test loss", opl_ctx_errmsg(c));
    loss = l->data[0];
    opl_ctx_set_grad_enabled(c, oldg);
  }
  opl_nde_stats st;
  opl_nde_get_stats(nd, &st);
  *nfev = st.nfev;
  *secs = best;
  return loss;
}

static int cmd_train(const opts *o) {
  const int biased = !strcmp(o->variant, "local-biased");
  const int local = biased || !strcmp(o->variant, "local");
  const int global = !strcmp(o->variant, "global");
  if (!local && !global && strcmp(o->variant, "vanilla")) {
    fprintf(stderr, "node_spiral: --variant %s (expected vanilla, global, local, local-biased)\n", o->variant);
    return 2;
  }
  const opl_nde_adjoint adj = parse_adjoint(o->adjoint);
  make_truth();
  model m;
  model_init(&m, o->seed);
  opl_nde *nd = make_nde(&m, adj, o->rtol, o->atol);
  opl_err err = {0};
  opl_optim *opt = opl_optim_create(OPL_OPTIM_ADAM, &m.p, NULL, &err);
  if (!opt) die("optimizer", err.msg);
  opl_ctx *c = opl_ctx_new(0);
  opl_rng rng;
  opl_rng_seed(&rng, o->seed + 1000); /* the batches: the same for every variant */
  double bt[BTIME];
  for (int k = 0; k < BTIME; k++) bt[k] = tgrid[k];
  int s[BSIZE];
  opl_real y0d[BSIZE * 2], tg[BTIME * BSIZE * 2];
  double loss_tail = 0, t_train = 0, c_train = 0;
  int64_t nfe_f = 0, nfe_b = 0, ntail = 0;
  for (int it = 0; it < o->iters; it++) {
    draw_starts(&rng, BSIZE, NDATA - BTIME, s);
    fill_batch(s, BSIZE, BTIME - 1, 1, y0d, tg);
    double t0 = now(), c0 = cpu_now();
    opl_ctx_reset(c);
    opl_tensor *y0 = opl_new(c, OPL_DIMS(BSIZE, 2));
    memcpy(y0->data, y0d, sizeof y0d);
    opl_tensor *us[BTIME];
    if (opl_nde_solve(nd, c, 0, y0, BTIME, bt, us, &err)) die("training solve", err.msg);
    opl_tensor *L = window_loss(c, us, BTIME, BSIZE, tg);
    const double data_loss = L ? L->data[0] : NAN;
    if (global) L = opl_add(c, L, opl_scale(c, opl_nde_reg_error(nd, c, 0), o->lambda));
    if (local) {
      opl_tensor *re = NULL;
      double t1;
      if (opl_nde_local_reg_draw(nd, c, biased, o->seed * 1000003u + (uint64_t)it, &t1, &re, NULL, &err))
        die("local regularizer", err.msg);
      L = opl_add(c, L, opl_scale(c, re, o->lambda));
    }
    if (!L || opl_backward(c, L)) die("backward", opl_ctx_errmsg(c));
    if (opl_optim_step(opt, &err)) die("optimizer", err.msg);
    opl_params_zero_grad(&m.p);
    t_train += now() - t0;
    c_train += cpu_now() - c0;
    opl_nde_stats st;
    opl_nde_get_stats(nd, &st);
    nfe_f += st.nfev + st.local_nfev, nfe_b += st.backward_nfev;
    if (it >= o->iters - 100) loss_tail += data_loss, ntail++;
  }
  /* Test: TEST_N fixed windows of TEST_LEN intervals, outputs every TEST_EVERY. */
  opl_rng trng;
  opl_rng_seed(&trng, 777);
  int ts_[TEST_N];
  draw_starts(&trng, TEST_N, NDATA - TEST_LEN, ts_);
  enum { TNT = TEST_LEN / TEST_EVERY + 1 };
  static opl_real ty0[TEST_N * 2], ttg[TNT * TEST_N * 2];
  fill_batch(ts_, TEST_N, TEST_LEN, TEST_EVERY, ty0, ttg);
  double tts[TNT];
  for (int k = 0; k < TNT; k++) tts[k] = tgrid[k * TEST_EVERY];
  int64_t test_nfe, traj_nfe;
  double pred_s, traj_s;
  const double test_loss = eval_solve(nd, c, TEST_N, ty0, TNT, tts, ttg, &test_nfe, &pred_s);
  /* The whole trajectory from z(0). */
  enum { JNT = (NDATA - 1) / TRAJ_EVERY + 1 };
  static opl_real jtg[JNT * 2];
  double jts[JNT];
  int s0 = 0;
  fill_batch(&s0, 1, (JNT - 1) * TRAJ_EVERY, TRAJ_EVERY, (opl_real[2]){0}, jtg);
  for (int k = 0; k < JNT; k++) jts[k] = tgrid[k * TRAJ_EVERY];
  const opl_real z0[2] = {ztrue[0][0], ztrue[0][1]};
  const double traj_loss = eval_solve(nd, c, 1, z0, JNT, jts, jtg, &traj_nfe, &traj_s);
  if (o->header) {
    printf("| variant | adjoint | lambda | train CPU (wall) time (s) | train loss (last 100) | train NFE / iter (fwd + local / bwd) "
           "| test loss | test NFE | prediction CPU time (ms, best of 11) | trajectory loss | trajectory NFE |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  }
  printf("| %s | %s | %g | %.2f (%.2f) | %.4f | %.1f / %.1f | %.4f | %lld | %.3f | %.4f | %lld |\n", o->variant,
         o->adjoint, (local || global) ? o->lambda : 0.0, c_train, t_train, loss_tail / (double)ntail,
         (double)nfe_f / o->iters, (double)nfe_b / o->iters, test_loss, (long long)test_nfe, 1e3 * pred_s,
         traj_loss, (long long)traj_nfe);
  opl_ctx_free(&c);
  opl_optim_free(&opt);
  opl_nde_free(&nd);
  opl_params_free(&m.p);
  return 0;
}

/* ------------------------------------------------------------ the peer comparison */

static void write_vec(FILE *f, const char *name, const opl_real *x, int64_t n) {
  fprintf(f, "%s %lld", name, (long long)n);
  for (int64_t i = 0; i < n; i++) fprintf(f, " %.9g", (double)x[i]);
  fprintf(f, "\n");
}

static int cmd_export(const opts *o) {
  if (!o->out) {
    fprintf(stderr, "node_spiral peer-export: --out FILE is required\n");
    return 2;
  }
  make_truth();
  model m;
  model_init(&m, o->seed);
  opl_rng rng;
  opl_rng_seed(&rng, o->seed + 1000);
  int s[BSIZE];
  opl_real y0d[BSIZE * 2], tg[BTIME * BSIZE * 2];
  draw_starts(&rng, BSIZE, NDATA - BTIME, s);
  fill_batch(s, BSIZE, BTIME - 1, 1, y0d, tg);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
  FILE *f = fopen(tmp, "w");
  if (!f) die(tmp, "cannot open for writing");
  fprintf(f, "opl-node-spiral-peer 1\nrtol %.17g\natol %.17g\nbatch %d %d\nt %d", o->rtol, o->atol, BSIZE, BTIME,
          BTIME);
  for (int k = 0; k < BTIME; k++) fprintf(f, " %.17g", tgrid[k]);
  fprintf(f, "\n");
  write_vec(f, "y0", y0d, BSIZE * 2);
  write_vec(f, "y", tg, BTIME * BSIZE * 2);
  write_vec(f, "net.0.weight", m.mlp.w[0]->data, m.mlp.w[0]->numel);
  write_vec(f, "net.0.bias", m.mlp.b[0]->data, m.mlp.b[0]->numel);
  write_vec(f, "net.2.weight", m.mlp.w[1]->data, m.mlp.w[1]->numel);
  write_vec(f, "net.2.bias", m.mlp.b[1]->data, m.mlp.b[1]->numel);
  if (fclose(f) || rename(tmp, o->out)) die(o->out, "write failed");
  opl_params_free(&m.p);
  return 0;
}

/* Read "name n v1 .. vn" into x (n must equal want). */
static void read_vec(FILE *f, const char *name, opl_real *x, int64_t want) {
  char nm[64];
  long long n;
  if (fscanf(f, "%63s %lld", nm, &n) != 2 || strcmp(nm, name) || n != want) die(name, "missing or wrong length in the peer file");
  for (int64_t i = 0; i < n; i++) {
    double v;
    if (fscanf(f, "%lf", &v) != 1) die(name, "short vector in the peer file");
    x[i] = (opl_real)v;
  }
}

static int cmd_peer(const opts *o) {
  if (!o->in) {
    fprintf(stderr, "node_spiral peer: --in FILE is required\n");
    return 2;
  }
  FILE *f = fopen(o->in, "r");
  if (!f) die(o->in, "cannot open");
  int ver, B, T, nt;
  double rtol, atol;
  if (fscanf(f, "opl-node-spiral-peer %d rtol %lf atol %lf batch %d %d t %d", &ver, &rtol, &atol, &B, &T, &nt) != 6 ||
      ver != 1 || B != BSIZE || T != BTIME || nt != BTIME)
    die(o->in, "not an opl-node-spiral-peer 1 file for this batch shape");
  double bt[BTIME];
  for (int k = 0; k < BTIME; k++)
    if (fscanf(f, "%lf", &bt[k]) != 1) die(o->in, "short time vector");
  opl_real y0d[BSIZE * 2], tg[BTIME * BSIZE * 2];
  read_vec(f, "y0", y0d, BSIZE * 2);
  read_vec(f, "y", tg, BTIME * BSIZE * 2);
  model m;
  model_init(&m, 1);
  read_vec(f, "net.0.weight", m.mlp.w[0]->data, m.mlp.w[0]->numel);
  read_vec(f, "net.0.bias", m.mlp.b[0]->data, m.mlp.b[0]->numel);
  read_vec(f, "net.2.weight", m.mlp.w[1]->data, m.mlp.w[1]->numel);
  read_vec(f, "net.2.bias", m.mlp.b[1]->data, m.mlp.b[1]->numel);
  fclose(f);
  const opl_nde_adjoint adj = parse_adjoint(o->adjoint);
  opl_nde *nd = make_nde(&m, adj, rtol, atol);
  opl_err err = {0};
  if (opl_nde_set_saveat(nd, strcmp(o->saveat, "dense") ? OPL_NDE_SAVEAT_STEP : OPL_NDE_SAVEAT_DENSE, &err))
    die("saveat", err.msg);
  opl_optim *opt = opl_optim_create(OPL_OPTIM_ADAM, &m.p, NULL, &err);
  if (!opt) die("optimizer", err.msg);
  opl_ctx *c = opl_ctx_new(0);
  /* NFE of solves with the initial weights and only an end time: to the window's end and to
   * t = 5 (no output times inside the span, so the step sequences are the controllers' own). */
  int64_t nfe_span[2], rej_t5 = 0;
  for (int q = 0; q < 2; q++) {
    opl_ctx_reset(c);
    int oldg = opl_ctx_set_grad_enabled(c, 0);
    opl_tensor *y0 = opl_new(c, OPL_DIMS(BSIZE, 2)), *u1;
    memcpy(y0->data, y0d, sizeof y0d);
    const double tend[1] = {q ? 5.0 : bt[BTIME - 1]};
    if (opl_nde_solve(nd, c, 0, y0, 1, tend, &u1, &err)) die("solve", err.msg);
    opl_nde_stats st;
    opl_nde_get_stats(nd, &st);
    nfe_span[q] = st.nfev;
    if (q) rej_t5 = st.rejected;
    opl_ctx_set_grad_enabled(c, oldg);
  }
  int64_t nfe_first = 0, nfe_total = 0, nfe_bwd = 0, steps_first = 0;
  double loss_first = NAN, loss_last = NAN, t_run = 0, c_run = 0;
  for (int it = 0; it < o->warmup + o->steps; it++) {
    double t0 = now(), c0 = cpu_now();
    opl_ctx_reset(c);
    opl_tensor *y0 = opl_new(c, OPL_DIMS(BSIZE, 2));
    memcpy(y0->data, y0d, sizeof y0d);
    opl_tensor *us[BTIME];
    if (opl_nde_solve(nd, c, 0, y0, BTIME, bt, us, &err)) die("solve", err.msg);
    opl_tensor *L = window_loss(c, us, BTIME, BSIZE, tg);
    if (!L || opl_backward(c, L)) die("backward", opl_ctx_errmsg(c));
    if (opl_optim_step(opt, &err)) die("optimizer", err.msg);
    opl_params_zero_grad(&m.p);
    double dt = now() - t0, dc = cpu_now() - c0;
    opl_nde_stats st;
    opl_nde_get_stats(nd, &st);
    if (it == 0) nfe_first = st.nfev, steps_first = st.accepted, loss_first = L->data[0];
    loss_last = L->data[0];
    if (it >= o->warmup) t_run += dt, c_run += dc, nfe_total += st.nfev, nfe_bwd += st.backward_nfev;
  }
  printf("{\"side\": \"opl\", \"threads\": %d, \"adjoint\": \"%s\", \"saveat\": \"%s\", \"steps\": %d, \"samples_per_s\": %.1f, "
         "\"ms_per_step\": %.4f, \"cpu_ms_per_step\": %.4f, \"vmhwm_kb\": %ld, \"nfe_first\": %lld, \"accepted_first\": %lld, "
         "\"nfe_per_step\": %.2f, \"nfe_backward_per_step\": %.2f, \"nfe_span\": %lld, \"nfe_t5\": %lld, \"rejected_t5\": %lld, "
         "\"loss_first\": %.8g, \"loss_last\": %.8g}\n",
         opl_get_num_threads(), o->adjoint, o->saveat, o->steps, BSIZE * o->steps / t_run, 1e3 * t_run / o->steps, 1e3 * c_run / o->steps, vmhwm_kb(),
         (long long)nfe_first, (long long)steps_first, (double)nfe_total / o->steps, (double)nfe_bwd / o->steps,
         (long long)nfe_span[0], (long long)nfe_span[1], (long long)rej_t5, loss_first, loss_last);
  opl_ctx_free(&c);
  opl_optim_free(&opt);
  opl_nde_free(&nd);
  opl_params_free(&m.p);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: node_spiral train|peer-export|peer [options] (see experiments/node/spiral.c)\n");
    return 2;
  }
  opts o;
  parse(argc, argv, &o);
  if (!strcmp(argv[1], "train")) return cmd_train(&o);
  if (!strcmp(argv[1], "peer-export")) return cmd_export(&o);
  if (!strcmp(argv[1], "peer")) return cmd_peer(&o);
  fprintf(stderr, "node_spiral: unknown command '%s' (train, peer-export, peer)\n", argv[1]);
  return 2;
}
