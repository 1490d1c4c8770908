/* opl train pinn — physics-informed training of a coordinate network (train/pinn.h).
 *
 *   opl train pinn --pde burgers|allen-cahn|kdv [--arch mlp|modified-mlp] [--layers DEPTHxWIDTH]
 *       [--causal [--eps LIST] [--chunks M]] [--optimizer adam|lbfgs|adam+lbfgs] [--iters N]
 *       [--points N] [--seed K] [--windows W] [--resume] -o MODEL.h5
 *
 * --windows W trains W networks in sequence on the time windows [k T / W, (k + 1) T / W], each
 * with --iters iterations per optimizer phase and the previous window's network at its start
 * as initial condition (train/pinn.h); the CSV's window column and the progress line name the
 * window. The model file holds every window; opl predict and opl eval evaluate the piecewise
 * network.
 *
 * Prints a header, then a progress line every --print-every iterations (iteration, optimizer,
 * loss and its parts, and with --causal the smallest weight and eps), and writes one CSV row per
 * iteration beside the model (MODEL.csv). --resume continues MODEL.h5 with its stored settings
 * as the default of every option. Ctrl-C stops after the current iteration: during Adam a
 * checkpoint is written; during L-BFGS the last checkpoint (the start of the current L-BFGS
 * segment) is kept. Exit status: 0 done, 1 runtime failure, 2 usage error.
 *
 * --causal implements the causal weighting of Wang, Sankaran & Perdikaris (2022) from the paper's
 * equations only; the authors' CausalPINNs README states that the causal training algorithm is
 * patented by the University of Pennsylvania for commercial use. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/outputs.h"
#include "train/pinn.h"

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) {
  if (stop_requested) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
  stop_requested = 1;
}

typedef struct pinn_print {
  int64_t every;
  int quiet;
  int windows;
} pinn_print;

static int progress_cb(const opl_pinn_iter_stats *s, void *user) {
  pinn_print *p = user;
  if (!p->quiet && (s->iter % p->every == 0 || s->iter == s->total)) {
    printf("iter %lld/%lld %-5s", (long long)s->iter, (long long)s->total, opl_pinn_opt_name(s->optimizer));
    if (p->windows > 1) printf(" window %d/%d", s->window + 1, p->windows);
    printf(" loss %.4e  residual %.3e  ic %.3e  bc %.3e", s->loss, s->res, s->ic, s->bc);
    if (!isnan(s->min_w)) printf("  min w %.3f  eps %g", s->min_w, s->eps);
    printf("  %.1f s\n", s->seconds);
    fflush(stdout);
  }
  return stop_requested != 0;
}

/* Parse "DEPTHxWIDTH" (e.g. 8x20). */
static int parse_layers(const char *s, int *depth, int *width) {
  char *end;
  long d = strtol(s, &end, 10);
  if (end == s || (*end != 'x' && *end != 'X')) return -1;
  const char *w0 = end + 1;
  long w = strtol(w0, &end, 10);
  if (end == w0 || *end || d < 1 || d > OPL_PINN_MAX_DEPTH || w < 1 || w > 65536) return -1;
  *depth = (int)d;
  *width = (int)w;
  return 0;
}

static int parse_eps_list(const char *s, double *eps, int *n) {
  int k = 0;
  const char *p = s;
  if (!*p) return -1;
  while (*p) {
    char *end;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v) || v <= 0 || k >= OPL_PINN_MAX_EPS) return -1;
    eps[k++] = v;
    if (*end == ',') {
      p = end + 1;
      if (!*p) return -1;
    } else if (*end) {
      return -1;
    } else {
      p = end;
    }
  }
  *n = k;
  return 0;
}

int cli_train_pinn(int argc, char **argv) {
  static const char *pde, *arch, *layers, *eps_s, *optimizer, *colloc, *embed, *out;
  pde = arch = layers = eps_s = optimizer = colloc = embed = out = NULL;
  int64_t iters = -1, lbfgs_iters = -1, points = -1, bpoints = -1, chunks = -1, seed = -1, every = -1, nfreq = -1,
          print_every = 100, threads = 0, history = -1, windows = -1;
  double lr = NAN, wic = NAN, wbc = NAN;
  int causal = 0, hard = 0, resume = 0, quiet = 0;
  const cli_opt opts[] = {
      {"pde", CLI_STRING, &pde, "the problem: burgers|allen-cahn|kdv"},
      {"arch", CLI_STRING, &arch, "network: mlp (default) or modified-mlp"},
      {"layers", CLI_STRING, &layers, "DEPTHxWIDTH: hidden layers x units (default 4x64)"},
      {"embed", CLI_STRING, &embed, "x input: periodic ([cos, sin] of x; the default on periodic problems) or none"},
      {"nfreq", CLI_INT, &nfreq, "Fourier modes of the periodic embedding (default 1)"},
      {"hard", CLI_FLAG, &hard, "hard initial (and Dirichlet) conditions: u = u0(x) + t g(x) N(t, x)"},
      {"causal", CLI_FLAG, &causal, "causal weighting of the residual over time chunks (Wang, Sankaran, Perdikaris 2022, "
                                    "from the paper's equations; the authors state the algorithm is patented by the "
                                    "University of Pennsylvania for commercial use)"},
      {"eps", CLI_STRING, &eps_s, "causal eps schedule, comma separated (default 1e-2,1e-1,1,1e1,1e2; one value: fixed)"},
      {"chunks", CLI_INT, &chunks, "causal time chunks M (default 32)"},
      {"optimizer", CLI_STRING, &optimizer, "adam, lbfgs or adam+lbfgs (default)"},
      {"iters", CLI_INT, &iters, "iterations of each optimizer phase (default 1000)"},
      {"lbfgs-iters", CLI_INT, &lbfgs_iters, "L-BFGS iterations at most (default --iters)"},
      {"lbfgs-history", CLI_INT, &history, "L-BFGS correction pairs (default 10)"},
      {"points", CLI_INT, &points, "collocation points (default 10000)"},
      {"boundary-points", CLI_INT, &bpoints, "initial + boundary points (default 100)"},
      {"collocation", CLI_STRING, &colloc, "grid, lhs (default) or resample (a new Latin hypercube every iteration)"},
      {"lr", CLI_DOUBLE, &lr, "Adam learning rate (default 1e-3, x 0.9 every 5000 iterations)"},
      {"w-ic", CLI_DOUBLE, &wic, "weight of the initial-condition loss (default 1)"},
      {"w-bc", CLI_DOUBLE, &wbc, "weight of the boundary loss (default 1)"},
      {"seed", CLI_INT, &seed, "seed of the initialization and the points (default 0)"},
      {"windows", CLI_INT, &windows, "time marching: W networks trained in sequence on W equal time windows, each "
                                     "starting from the previous one's network (default 1; not with --hard)"},
      {"checkpoint-every", CLI_INT, &every, "write a checkpoint every this many iterations (default 1000)"},
      {"resume", CLI_FLAG, &resume, "continue MODEL.h5 (its settings are the defaults)"},
      {"print-every", CLI_INT, &print_every, "progress line every this many iterations"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"quiet", CLI_FLAG, &quiet, "no progress lines"},
      {"out", CLI_STRING, &out, "the model / checkpoint file (-o)"},
  };
  char *pos[2];
  int npos;
  int rc = cli_parse("train pinn", "--pde burgers|allen-cahn|kdv [options] -o MODEL.h5", argc - 1, argv + 1, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (npos) {
    fprintf(stderr, "opl train pinn: unexpected argument '%s'\n", pos[0]);
    return 2;
  }
  if (!out) {
    fprintf(stderr, "opl train pinn: -o MODEL.h5 is required\n");
    return 2;
  }
  opl_err e = {0};
  opl_pinn_train_config c;
  int64_t done = 0;
  if (resume) {
    if (opl_pinn_read_config(out, &c, &done, &e)) {
      fprintf(stderr, "opl train pinn: --resume: %s\n", e.msg);
      return 1;
    }
  } else {
    if (!pde) {
      fprintf(stderr, "opl train pinn: --pde burgers|allen-cahn|kdv is required\n");
      return 2;
    }
    int id = opl_pinn_problem_id_of(pde);
    if (id < 0) {
      fprintf(stderr, "opl train pinn: --pde '%s': expected burgers, allen-cahn or kdv\n", pde);
      return 2;
    }
    c = opl_pinn_train_defaults(id);
  }
  if (pde && opl_pinn_problem_id_of(pde) != c.model.problem) {
    fprintf(stderr, "opl train pinn: --pde '%s': '%s' was trained on %s\n", pde, out,
            opl_pinn_problem_get(c.model.problem)->name);
    return 2;
  }
  if (arch && (c.model.arch = opl_pinn_arch_find(arch)) < 0) {
    fprintf(stderr, "opl train pinn: --arch '%s': expected mlp or modified-mlp\n", arch);
    return 2;
  }
  if (layers && parse_layers(layers, &c.model.depth, &c.model.width)) {
    fprintf(stderr, "opl train pinn: --layers '%s': expected DEPTHxWIDTH, e.g. 8x20 (depth 1..%d, width 1..65536)\n",
            layers, OPL_PINN_MAX_DEPTH);
    return 2;
  }
  if (embed) {
    if (!strcmp(embed, "periodic")) c.model.periodic = 1;
    else if (!strcmp(embed, "none")) c.model.periodic = 0;
    else {
      fprintf(stderr, "opl train pinn: --embed '%s': expected periodic or none\n", embed);
      return 2;
    }
  }
  if (c.model.periodic && !opl_pinn_periodic(opl_pinn_problem_get(c.model.problem))) {
    fprintf(stderr, "opl train pinn: --embed periodic: %s is not periodic in x\n",
            opl_pinn_problem_get(c.model.problem)->name);
    return 2;
  }
  if (nfreq >= 0) c.model.nfreq = (int)nfreq;
  if (hard) c.model.hard = 1;
  if (windows >= 0) {
    if (windows < 1 || windows > OPL_PINN_MAX_WINDOWS) {
      fprintf(stderr, "opl train pinn: --windows %lld: expected 1..%d time windows\n", (long long)windows,
              OPL_PINN_MAX_WINDOWS);
      return 2;
    }
    if (resume && windows != c.model.windows) {
      fprintf(stderr, "opl train pinn: --windows %lld: '%s' was trained with %d\n", (long long)windows, out,
              c.model.windows);
      return 2;
    }
    c.model.windows = (int)windows;
  }
  if (c.model.windows > 1 && c.model.hard) {
    fprintf(stderr, "opl train pinn: --windows %d with --hard: a later window's initial condition is the previous "
                    "window's network, fitted as a loss (soft); drop --hard or use one window\n", c.model.windows);
    return 2;
  }
  if (optimizer && (c.optimizer = opl_pinn_opt_find(optimizer)) < 0) {
    fprintf(stderr, "opl train pinn: --optimizer '%s': expected adam, lbfgs or adam+lbfgs\n", optimizer);
    return 2;
  }
  if (!causal && !c.causal && (eps_s || chunks >= 0)) {
    fprintf(stderr, "opl train pinn: --%s needs --causal\n", eps_s ? "eps" : "chunks");
    return 2;
  }
  if (causal) c.causal = 1;
  if (eps_s && parse_eps_list(eps_s, c.eps, &c.neps)) {
    fprintf(stderr, "opl train pinn: --eps '%s': expected up to %d positive numbers separated by commas, e.g. "
                    "1e-2,1e-1,1,1e1,1e2\n", eps_s, OPL_PINN_MAX_EPS);
    return 2;
  }
  if (chunks >= 0) c.chunks = chunks;
  if (iters >= 0) {
    if (iters < 1) {
      fprintf(stderr, "opl train pinn: --iters 0: expected >= 1\n");
      return 2;
    }
    c.adam_iters = c.lbfgs_iters = iters;
  }
  if (lbfgs_iters >= 0) c.lbfgs_iters = lbfgs_iters;
  if (history >= 0) c.lbfgs_history = (int)history;
  if (points >= 0) {
    if (points < 1) {
      fprintf(stderr, "opl train pinn: --points 0: expected >= 1\n");
      return 2;
    }
    c.points = points;
  }
  if (bpoints >= 0) c.boundary_points = bpoints;
  if (colloc && (c.colloc = opl_pinn_colloc_find(colloc)) < 0) {
    fprintf(stderr, "opl train pinn: --collocation '%s': expected grid, lhs or resample\n", colloc);
    return 2;
  }
  if (!isnan(lr)) c.lr = lr;
  if (!isnan(wic)) c.w_ic = wic;
  if (!isnan(wbc)) c.w_bc = wbc;
  if (seed >= 0) c.seed = (uint64_t)seed;
  if (every >= 0) c.checkpoint_every = every;
  if (print_every < 1) print_every = 1;
  c.checkpoint = out;
  c.csv = NULL;
  if (opl_pinn_train_check(&c, &e)) {
    fprintf(stderr, "opl train pinn: %s\n", opl_err_text(&e));
    return 2;
  }
  if (!resume && cli_outputs_check("train", (const cli_file[]){{"-o", out}}, 1, NULL, 0)) return 2;
  if (threads > 0) opl_set_num_threads((int)threads);
  opl_pinn_trainer *t = opl_pinn_trainer_new(&c, &e);
  if (!t) {
    fprintf(stderr, "opl train pinn: %s\n", opl_err_text(&e));
    return e.status == OPL_ERR_ARG ? 2 : 1;
  }
  if (resume && opl_pinn_trainer_resume(t, out, &e)) {
    fprintf(stderr, "opl train pinn: --resume: %s\n", opl_err_text(&e));
    opl_pinn_trainer_free(&t);
    return 1;
  }
  const opl_model *m = opl_pinn_trainer_model(t);
  if (!quiet) {
    char desc[256];
    m->ops->describe(m->self, desc, sizeof desc);
    printf("opl train pinn: %s, %lld parameters\n", desc, (long long)opl_model_param_count(m));
    printf("  %s", opl_pinn_opt_name(c.optimizer));
    if (c.optimizer != OPL_PINN_LBFGS) printf(", %lld Adam iterations (lr %g)", (long long)c.adam_iters, c.lr);
    if (c.optimizer != OPL_PINN_ADAM) printf(", up to %lld L-BFGS iterations", (long long)c.lbfgs_iters);
    if (c.model.windows > 1) printf(" in each of %d time windows", c.model.windows);
    printf("; %lld %s collocation points, %lld initial/boundary points, seed %llu, %d thread%s, %s precision\n",
           (long long)c.points, opl_pinn_colloc_name(c.colloc), (long long)c.boundary_points,
           (unsigned long long)c.seed, opl_get_num_threads(), opl_get_num_threads() == 1 ? "" : "s", OPL_PRECISION_NAME);
    if (c.causal) {
      printf("  causal weighting: %lld chunks, eps", (long long)c.chunks);
      for (int i = 0; i < c.neps; i++) printf("%s%g", i ? "," : " ", c.eps[i]);
      printf(", delta %g\n", c.delta);
    }
    if (resume) printf("  resuming '%s' after iteration %lld\n", out, (long long)opl_pinn_trainer_iter(t));
    fflush(stdout);
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  pinn_print pp = {.every = print_every, .quiet = quiet, .windows = c.model.windows};
  int st = opl_pinn_trainer_run(t, progress_cb, &pp, &e);
  if (st) {
    fprintf(stderr, "opl train pinn: %s\n", opl_err_text(&e));
  } else if (!quiet) {
    opl_pinn_iter_stats s;
    if (!opl_pinn_trainer_eval_loss(t, &s, &e))
      printf("opl train pinn: %s after %lld iterations: loss %.4e; model '%s'\n",
             stop_requested ? "stopped" : "done", (long long)opl_pinn_trainer_iter(t), s.loss, out);
    opl_dist_grads_stats ds; /* the communication summary of the other train verbs */
    if (opl_pinn_trainer_dist_stats(t, &ds) && ds.steps > 0) cli_print_dist_line("opl train pinn", &ds);
  }
  opl_pinn_trainer_free(&t);
  return st ? 1 : 0;
}
