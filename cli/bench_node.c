/* opl bench node — time neural-ODE training steps with the gradient computed in each of the
 * solver's memory modes, and measure their memory, for a solve with a fixed number of accepted
 * steps (experiments/node/run_bench.sh runs torchdiffeq beside it).
 *
 *   opl bench node [--mode both|discrete|checkpoint|backsolve|interp] [--steps 200] [--batch 32]
 *                  [--dim 64] [--hidden 256] [--solver dp5|tsit5|bs3] [--iters 10] [--warmup 2]
 *                  [--threads T] [--seed S] [--quick] [--json] [--export FILE]
 *
 * The model: du/dt = MLP(u), u (batch, dim), a dim-hidden-dim tanh MLP (PyTorch nn.Linear layout and
 * initialization, from --seed), integrated over [0, 1] with the maximum and the first step 1 /
 * steps and the loose tolerances rtol 1e-3, atol 1e-6, so that the controller always asks for a
 * larger step and the solve takes exactly `steps` accepted steps (reported; a rejection would show
 * as more). One training step = the solve from a seeded u0 to u(1), the loss mean (u(1) - y)^2
 * against a seeded target y, the backward pass, an Adam step (lr 1e-3): exactly what opl train
 * does per batch. Memory modes (operators/node.h): discrete = store-all (the whole solve on the
 * tape), checkpoint = the checkpointed discrete adjoint (states kept, each step replayed in the
 * backward pass), backsolve / interp = the continuous adjoints. --mode both runs checkpoint, then
 * discrete.
 *
 * Memory, per mode: the arena high-water mark of the training step's context plus the solver's
 * own scratch context and its checkpoints (the bytes opl itself asks for), and the process's peak
 * resident memory (VmHWM of /proc/self/status), reset before each mode through
 * /proc/self/clear_refs where the kernel allows it (else the column is the peak so far, which is
 * why the lighter mode runs first); the resident memory before the first mode is printed as the
 * baseline (libraries, thread buffers). First-touch page faults are slow on some machines: the
 * warm-up steps touch every page the timed steps use.
 *
 * Output: a markdown table, one row per mode (samples/s = batch / median step time, the median
 * and the fastest step in ms, accepted and rejected steps, forward and backward evaluations per
 * step, arena MiB, checkpoint MiB, peak RSS MiB), or with --json one JSON line per mode.
 * --export FILE writes the settings, u0, y and the initial weights as text for the torchdiffeq
 * peer (experiments/node/bench_peer.py) before timing. --quick: batch 4, dim 8, hidden 16, 20
 * steps, 2 iterations, 1 warm-up (a smoke test of the output). Exit status 0, 1 on a runtime
 * failure, 2 on a usage error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/optim.h"
#include "core/rng.h"
#include "operators/mlp.h"
#include "operators/node.h"

static double bn_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A field of /proc/self/status in MiB ("VmHWM:", "VmRSS:"); -1 where unavailable. */
static double bn_status_mib(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  double v = -1;
  const size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl)) {
      v = strtod(line + kl, NULL) / 1024.0;
      break;
    }
  fclose(f);
  return v;
}

/* Reset the peak resident memory to the current one (Linux: 5 > /proc/self/clear_refs). */
static int bn_reset_hwm(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return 0;
  int ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

static int bn_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int bn_field(void *user, opl_ctx *c, double t, opl_tensor *u, opl_tensor **du) {
  (void)t;
  *du = opl_mlp_forward(c, (const opl_mlp *)user, u);
  return *du ? 0 : -1;
}

static void bn_write_vec(FILE *f, const char *name, const opl_real *x, int64_t n) {
  fprintf(f, "%s %lld", name, (long long)n);
  for (int64_t i = 0; i < n; i++) fprintf(f, " %.9g", (double)x[i]);
  fputc('\n', f);
}

typedef struct bn_row {
  const char *mode;
  double ms_median, ms_min, sps;
  int64_t accepted, rejected;
  double nfe_fwd, nfe_bwd;
  double arena_mib, ckpt_mib, rss_mib;
  double loss_first;
} bn_row;

static const char *const bn_modes[4] = {"discrete", "checkpoint", "backsolve", "interp"};

int cli_bench_node(int argc, char **argv) {
  static const char *mode_s, *solver_s, *export_s; /* static: cli_parse's copies stay reachable */
  mode_s = "both", solver_s = "dp5", export_s = NULL;
  int64_t steps = 200, batch = 32, dim = 64, hidden = 256, iters = 10, warmup = 2, threads = 0, seed = 0;
  int quick = 0, json = 0;
  const cli_opt opts[] = {
      {"mode", CLI_STRING, &mode_s, "both (checkpoint, then discrete), discrete, checkpoint, backsolve or interp"},
      {"steps", CLI_INT, &steps, "accepted steps of the solve over [0, 1] (maximum and first step 1 / steps)"},
      {"batch", CLI_INT, &batch, "batch size (rows of the state)"},
      {"dim", CLI_INT, &dim, "state size per sample (the MLP's input and output width)"},
      {"hidden", CLI_INT, &hidden, "hidden width of the MLP field"},
      {"solver", CLI_STRING, &solver_s, "dp5, tsit5 or bs3"},
      {"iters", CLI_INT, &iters, "timed training steps per mode"},
      {"warmup", CLI_INT, &warmup, "untimed training steps before timing"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"seed", CLI_INT, &seed, "seed of the weights, u0 and the target"},
      {"quick", CLI_FLAG, &quick, "tiny sizes: batch 4, dim 8, hidden 16, 20 steps, 2 iterations, 1 warm-up"},
      {"json", CLI_FLAG, &json, "one JSON line per mode instead of the table"},
      {"export", CLI_STRING, &export_s, "write settings, u0, y and the initial weights as text (for the peer)"},
  };
  char *pos[1];
  int npos;
  int rc = cli_parse("bench node", "[--mode both|discrete|checkpoint|backsolve|interp] [--steps N] [options]", argc,
                     argv, opts, (int)(sizeof opts / sizeof opts[0]), pos, 0, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  int modes[2], nmodes = 0;
  if (!strcmp(mode_s, "both")) {
    modes[nmodes++] = OPL_NDE_ADJ_CHECKPOINT;
    modes[nmodes++] = OPL_NDE_ADJ_DISCRETE;
  } else {
    for (int i = 0; i < 4; i++)
      if (!strcmp(mode_s, bn_modes[i])) modes[nmodes++] = i;
    if (!nmodes) {
      fprintf(stderr, "opl bench node: --mode expects both, discrete, checkpoint, backsolve or interp, got '%s'\n",
              mode_s);
      return 2;
    }
  }
  const int method = !strcmp(solver_s, "dp5") ? OPL_RK_DP5 : !strcmp(solver_s, "tsit5") ? OPL_RK_TSIT5
                     : !strcmp(solver_s, "bs3") ? OPL_RK_BS3 : -1;
  if (method < 0) {
    fprintf(stderr, "opl bench node: --solver expects dp5, tsit5 or bs3, got '%s'\n", solver_s);
    return 2;
  }
  if (quick) batch = 4, dim = 8, hidden = 16, steps = 20, iters = 2, warmup = 1;
  if (steps < 1 || steps > 1000000 || batch < 1 || dim < 1 || hidden < 1 || iters < 1 || batch * dim > (1 << 26) ||
      batch * hidden > (1 << 26)) {
    fprintf(stderr, "opl bench node: --steps 1..1000000, --batch, --dim, --hidden and --iters >= 1 expected (got %lld, "
                    "%lld, %lld, %lld, %lld)\n", (long long)steps, (long long)batch, (long long)dim,
            (long long)hidden, (long long)iters);
    return 2;
  }
  if (threads > 0) opl_set_num_threads((int)threads);
  const double T = 1.0, h = T / (double)steps, rtol = 1e-3, atol = 1e-6;
  opl_err e = {0};
  opl_params p;
  opl_params_init(&p);
  opl_mlp mlp;
  opl_rng rng;
  opl_rng_seed(&rng, (uint64_t)seed);
  const int64_t widths[3] = {dim, hidden, dim};
  opl_tensor *u0 = NULL, *y = NULL;
  double *times = NULL, *w0 = NULL;
  int status = 1;
  bn_row rows[2];
  memset(rows, 0, sizeof rows);
  if (opl_mlp_init(&mlp, &p, "net", 2, widths, OPL_TANH, &rng, &e)) goto fail;
  if (!(u0 = opl_tensor_alloc(OPL_DIMS(batch, dim), 0, &e)) || !(y = opl_tensor_alloc(OPL_DIMS(batch, dim), 0, &e)))
    goto fail;
  opl_rng drng = opl_rng_split(&rng, 1);
  for (int64_t i = 0; i < u0->numel; i++) u0->data[i] = (opl_real)opl_rng_normal(&drng);
  for (int64_t i = 0; i < y->numel; i++) y->data[i] = (opl_real)opl_rng_normal(&drng);
  const int64_t np = opl_params_count(&p);
  if (!(times = malloc(sizeof(double) * (size_t)iters)) || !(w0 = malloc(sizeof(double) * (size_t)np))) {
    opl_err_set(&e, OPL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (int i = 0, q = 0; i < p.n; i++)
    for (int64_t k = 0; k < p.t[i]->numel; k++) w0[q++] = p.t[i]->data[k];
  if (export_s) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", export_s);
    FILE *f = fopen(tmp, "w");
    if (!f) {
      fprintf(stderr, "opl bench node: --export: cannot write '%s'\n", export_s);
      status = 2;
      goto fail;
    }
    fprintf(f, "opl-bench-node 1\nsolver %s\nsteps %lld\nT %.17g\nrtol %.17g\natol %.17g\nbatch %lld\ndim %lld\n"
               "hidden %lld\n", solver_s, (long long)steps, T, rtol, atol, (long long)batch, (long long)dim,
            (long long)hidden);
    bn_write_vec(f, "u0", u0->data, u0->numel);
    bn_write_vec(f, "y", y->data, y->numel);
    for (int i = 0; i < p.n; i++) bn_write_vec(f, p.t[i]->name, p.t[i]->data, p.t[i]->numel);
    int bad = ferror(f);
    if (fclose(f) || bad || rename(tmp, export_s)) {
      remove(tmp);
      fprintf(stderr, "opl bench node: --export: cannot write '%s'\n", export_s);
      status = 2;
      goto fail;
    }
  }
  const double rss0 = bn_status_mib("VmRSS:");
  int hwm_reset = 1;
  for (int mi = 0; mi < nmodes; mi++) {
    const int adj = modes[mi];
    /* every mode starts from the same weights and a fresh optimizer */
    for (int i = 0, q = 0; i < p.n; i++)
      for (int64_t k = 0; k < p.t[i]->numel; k++) p.t[i]->data[k] = (opl_real)w0[q++];
    hwm_reset &= bn_reset_hwm();
    opl_nde *nd = opl_nde_create((opl_rk_method)method, bn_field, &mlp, &e);
    opl_ctx *c = opl_ctx_new(0);
    opl_optim_config oc = opl_optim_defaults(OPL_OPTIM_ADAM);
    oc.lr = 1e-3;
    opl_optim *adam = nd && c ? opl_optim_create(OPL_OPTIM_ADAM, &p, &oc, &e) : NULL;
    int bad = !nd || !c || !adam || opl_nde_set_tolerances(nd, rtol, atol, &e) ||
              opl_nde_set_max_step(nd, h, &e) || opl_nde_set_initial_step(nd, h, &e) ||
              opl_nde_set_adjoint(nd, (opl_nde_adjoint)adj, &e) || opl_nde_set_params(nd, p.n, p.t, &e);
    if (bad && !e.msg[0]) opl_err_set(&e, OPL_ERR_NOMEM, "out of memory");
    bn_row *r = &rows[mi];
    r->mode = bn_modes[adj];
    double nfe_f = 0, nfe_b = 0;
    for (int64_t it = 0; !bad && it < warmup + iters; it++) {
      const double t0 = bn_now();
      opl_ctx_reset(c);
      opl_params_zero_grad(&p);
      opl_tensor *uT = NULL;
      const double ts[1] = {T};
      if (opl_nde_solve(nd, c, 0, u0, 1, ts, &uT, &e)) {
        bad = 1;
        break;
      }
      opl_tensor *loss = opl_mean(c, opl_square(c, opl_sub(c, uT, y)));
      if (!loss || opl_backward(c, loss) || opl_optim_step(adam, &e)) {
        if (opl_ctx_status(c)) opl_ctx_take_error(c, &e);
        bad = 1;
        break;
      }
      const double dt = bn_now() - t0;
      opl_nde_stats st;
      opl_nde_get_stats(nd, &st);
      if (it == 0) r->loss_first = loss->data[0];
      if (it >= warmup) {
        times[it - warmup] = dt;
        nfe_f += (double)st.nfev, nfe_b += (double)st.backward_nfev;
        r->accepted = st.accepted, r->rejected = st.rejected;
      }
    }
    if (!bad) {
      opl_ctx_stats cs;
      opl_ctx_get_stats(c, &cs);
      opl_nde_stats st;
      opl_nde_get_stats(nd, &st);
      qsort(times, (size_t)iters, sizeof *times, bn_cmp);
      const double med = iters % 2 ? times[iters / 2] : 0.5 * (times[iters / 2 - 1] + times[iters / 2]);
      r->ms_median = 1e3 * med, r->ms_min = 1e3 * times[0], r->sps = (double)batch / med;
      r->nfe_fwd = nfe_f / (double)iters, r->nfe_bwd = nfe_b / (double)iters;
      r->arena_mib = (double)(cs.arena_high + st.scratch_high) / 1048576.0;
      r->ckpt_mib = (double)st.ckpt_bytes / 1048576.0;
      r->rss_mib = bn_status_mib("VmHWM:");
    }
    opl_optim_free(&adam);
    opl_ctx_free(&c);
    opl_nde_free(&nd);
    if (bad) {
      char m[sizeof e.msg];
      snprintf(m, sizeof m, "%s", e.msg[0] ? e.msg : "out of memory");
      opl_err_set(&e, e.status ? e.status : OPL_ERR_NOMEM, "mode %s: %s", bn_modes[adj], m);
      goto fail;
    }
  }
  if (json) {
    for (int mi = 0; mi < nmodes; mi++) {
      const bn_row *r = &rows[mi];
      printf("{\"side\": \"opl\", \"mode\": \"%s\", \"solver\": \"%s\", \"steps\": %lld, \"batch\": %lld, \"dim\": %lld, "
             "\"hidden\": %lld, \"threads\": %d, \"samples_per_s\": %.2f, \"ms_median\": %.3f, \"ms_min\": %.3f, "
             "\"accepted\": %lld, \"rejected\": %lld, \"nfe_forward\": %.1f, \"nfe_backward\": %.1f, "
             "\"arena_mib\": %.2f, \"ckpt_mib\": %.2f, \"peak_rss_mib\": %.1f, \"rss_baseline_mib\": %.1f, "
             "\"hwm_reset\": %s, \"loss_first\": %.8g, \"precision\": \"%s\"}\n",
             r->mode, solver_s, (long long)steps, (long long)batch, (long long)dim, (long long)hidden,
             opl_get_num_threads(), r->sps, r->ms_median, r->ms_min, (long long)r->accepted, (long long)r->rejected,
             r->nfe_fwd, r->nfe_bwd, r->arena_mib, r->ckpt_mib, r->rss_mib, rss0, hwm_reset ? "true" : "false",
             r->loss_first, OPL_PRECISION_NAME);
    }
  } else {
    printf("opl bench node: du/dt = MLP(u), %lld-%lld-%lld tanh, batch %lld, %s, %lld steps on [0, 1], %d thread%s, "
           "%s; RSS before the first mode %.1f MiB%s\n",
           (long long)dim, (long long)hidden, (long long)dim, (long long)batch, solver_s, (long long)steps,
           opl_get_num_threads(), opl_get_num_threads() == 1 ? "" : "s", OPL_PRECISION_NAME, rss0,
           hwm_reset ? "" : " (peak RSS not resettable: the peak so far)");
    printf("| mode | samples/s | ms/step median | ms/step min | accepted | rejected | NFE forward | NFE backward | "
           "arena MiB | checkpoints MiB | peak RSS MiB |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int mi = 0; mi < nmodes; mi++) {
      const bn_row *r = &rows[mi];
      printf("| %s | %.1f | %.3f | %.3f | %lld | %lld | %.1f | %.1f | %.2f | %.2f | %.1f |\n", r->mode, r->sps,
             r->ms_median, r->ms_min, (long long)r->accepted, (long long)r->rejected, r->nfe_fwd, r->nfe_bwd,
             r->arena_mib, r->ckpt_mib, r->rss_mib);
    }
  }
  fflush(stdout);
  status = 0;
fail:
  if (status == 1) fprintf(stderr, "opl bench node: %s\n", e.msg[0] ? e.msg : "failed");
  free(times);
  free(w0);
  opl_tensor_free(&u0);
  opl_tensor_free(&y);
  opl_params_free(&p);
  return status;
}
