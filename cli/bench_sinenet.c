/* opl bench sinenet — time SineNet training steps (experiments/sinenet/bench.sh runs the authors'
 * PyTorch model beside it through experiments/sinenet/bench_peer.py).
 *
 *   opl bench sinenet [--waves 4] [--hidden 32] [--mult M] [--padding zeros|circular] [--hist 4]
 *                     [--s 64] [--batch 16] [--iters 5] [--warmup 2] [--threads T] [--seed S] [--quick]
 *                     [--no-release]
 *
 * The model: SineNet (operators/sinenet.h) with K waves, hidden H, multiplier M (default the
 * paper's for K: 1.611 for K = 4), hist input frames of one field and one output frame. One
 * training step on a fixed batch (x, y) of N(0, 1) fields, seeded: zero the gradients, forward,
 * the loss = the sum over the batch of the per-sample relative L2 errors, backward, AdamW
 * (lr 2e-4, weight decay 1e-5): the step of opl train sinenet without the data loader.
 * Prints one JSON line:
 *   {"side": "opl", "model": "sinenet", "params": ..., "s": ..., "batch": ..., "threads": ...,
 *    "samples_per_s": ..., "ms_median": ..., "ms_min": ..., "arena_mib": ..., "arena_forward_mib": ...,
 *    "release": 1 | 0,
 *    "peak_rss_mib": ..., "infer_samples_per_s": ..., "loss_first": ..., "cpu_ms_median": ...,
 *    "infer_cpu_ms_median": ..., "precision": ..., "openblas_coretype": ..., "infer_slices": ...}
 * samples/s = batch / the median step time after the warm-up; infer_samples_per_s the same for a
 * forward pass without the tape on the evaluator's path (opl_task_infer_team, train/task.h: the
 * batch cut into infer_slices slices, one per thread, each in its own context with its ops on that
 * thread; the training context is freed before, and the passes have their own warm-up);
 * cpu_ms_median and infer_cpu_ms_median the
 * median CPU time of the process (every thread) per step and per pass; arena and peak memory as
 * in opl bench mgno; openblas_coretype the OPENBLAS_CORETYPE of the environment ("" if unset).
 * The 3x3 convolutions go through opl_conv (core/op_conv.c), which takes Winograd F(4x4, 3x3)
 * at 64^2 and 32^2 and F(2x2, 3x3) at 16^2 .. 4^2. --quick: s 16, batch 2, K 1, hidden 4,
 * 2 iterations, 1 warm-up (a smoke test of the output). --no-release: opl_release does
 * nothing (opl_ctx_set_release), so every activation is kept until the step ends (for measuring
 * what releasing saves; "release": 0 in the JSON line). Exit status 0, 1 on a runtime
 * failure, 2 on a usage error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/optim.h"
#include "core/rng.h"
#include "operators/sinenet.h"
#include "train/task.h"

/* CPU seconds used by this process so far, every thread (user + system). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Median of a[0..n), sorting a. */
static double median(double *a, int64_t n) {
  qsort(a, (size_t)n, sizeof *a, cli_bench_cmp_double);
  return n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

int cli_bench_sinenet(int argc, char **argv) {
  static const char *padding; /* static: cli_parse's copies stay reachable */
  padding = "zeros";
  int64_t waves = 4, hidden = 32, hist = 4, s = 64, batch = 16, iters = 5, warmup = 2, threads = 0, seed = 0;
  double mult = -1;
  int quick = 0, no_release = 0;
  const cli_opt opts[] = {
      {"waves", CLI_INT, &waves, "waves K"},
      {"hidden", CLI_INT, &hidden, "hidden width H"},
      {"mult", CLI_DOUBLE, &mult, "width multiplier (-1: the paper's for K: 2, 1.8075, 1.611, 1.5, 1.425 for 1, 2, 4, 6, 8)"},
      {"padding", CLI_STRING, &padding, "zeros or circular"},
      {"hist", CLI_INT, &hist, "input frames (one field)"},
      {"s", CLI_INT, &s, "grid points per axis (a multiple of 16)"},
      {"batch", CLI_INT, &batch, "batch size"},
      {"iters", CLI_INT, &iters, "timed training steps"},
      {"warmup", CLI_INT, &warmup, "untimed training steps before timing"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"seed", CLI_INT, &seed, "seed of the weights and the data"},
      {"quick", CLI_FLAG, &quick, "tiny sizes: s 16, batch 2, K 1, hidden 4, 2 iterations, 1 warm-up"},
      {"no-release", CLI_FLAG, &no_release, "keep every activation until the step ends (opl_release off)"},
  };
  char *pos[1];
  int npos;
  int rc = cli_parse("bench sinenet", "[--waves 4] [--hidden 32] [--s 64] [--batch 16] [options]", argc, argv, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 0, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (quick) s = 16, batch = 2, waves = 1, hidden = 4, iters = 2, warmup = 1;
  if (mult < 0) mult = waves == 1 ? 2.0 : waves == 2 ? 1.8075 : waves == 4 ? 1.611 : waves == 6 ? 1.5 : waves == 8 ? 1.425 : 0;
  if (s < 16 || s % 16 || s > 1 << 14 || batch < 1 || batch > 1 << 16 || iters < 1 || iters > 1 << 20 ||
      warmup > 1 << 20 || waves < 1 || waves > OPL_SINENET_MAX_WAVES || hist < 1 || hist > 1 << 16 || mult <= 0) {
    fprintf(stderr, "opl bench sinenet: --s a multiple of 16, --batch 1..65536, --iters >= 1, --waves 1..%d, --hist >= 1 "
                    "and --mult > 0 (needed for K other than 1, 2, 4, 6, 8) expected\n", OPL_SINENET_MAX_WAVES);
    return 2;
  }
  opl_sinenet_config sc = {.waves = (int)waves, .hidden = hidden, .mult = mult, .in_channels = hist, .out_channels = 1,
                           .pad = !strcmp(padding, "circular") ? OPL_PAD_CIRCULAR : OPL_PAD_ZERO};
  if (strcmp(padding, "zeros") && strcmp(padding, "circular")) {
    fprintf(stderr, "opl bench sinenet: --padding expects zeros or circular, got '%s'\n", padding);
    return 2;
  }
  opl_err e = {0};
  if (opl_sinenet_check_config(&sc, &e)) {
    fprintf(stderr, "opl bench sinenet: %s\n", e.msg);
    return 2;
  }
  if (threads > 0) opl_set_num_threads((int)threads);
  const opl_task task = {.kind = OPL_TASK_STATIC, .target_frame = -1};
  opl_model m = {0};
  opl_rng rng;
  opl_rng_seed(&rng, (uint64_t)seed);
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = NULL, *y = NULL;
  opl_optim *opt = NULL;
  opl_team *team = NULL;
  opl_real *pred = NULL;
  int slices = 0;
  double *times = NULL, *cpus = NULL, loss_first = 0, fwd_mib = 0, infer_s = 0, cpu_med = 0, infer_cpu = 0;
  int status = 1;
  if (!c) {
    opl_err_set(&e, OPL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  if (no_release) opl_ctx_set_release(c, 0);
  if (opl_model_create(&m, &opl_sinenet_kind, &sc, &rng, &e)) goto fail;
  if (!(x = opl_tensor_alloc(OPL_DIMS(batch, hist, s, s), 0, &e)) || !(y = opl_tensor_alloc(OPL_DIMS(batch, 1, s, s), 0, &e)))
    goto fail;
  opl_rng drng = opl_rng_split(&rng, 1);
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (opl_real)opl_rng_normal(&drng);
  for (int64_t i = 0; i < y->numel; i++) y->data[i] = (opl_real)opl_rng_normal(&drng);
  opl_optim_config oc = opl_optim_defaults(OPL_OPTIM_ADAMW);
  oc.lr = 2e-4;
  oc.weight_decay = 1e-5;
  if (!(opt = opl_optim_create(OPL_OPTIM_ADAMW, &m.params, &oc, &e))) goto fail;
  if (!(times = malloc(sizeof(double) * (size_t)iters)) || !(cpus = malloc(sizeof(double) * (size_t)iters))) {
    opl_err_set(&e, OPL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (int64_t it = 0; it < warmup + iters; it++) {
    const double t0 = cli_bench_now(), c0 = cpu_now();
    opl_ctx_reset(c);
    opl_params_zero_grad(&m.params);
    opl_tensor *loss = opl_task_loss(c, &task, opl_task_predict(c, &m, &task, NULL, NULL, x), y);
    opl_ctx_stats fs;
    opl_ctx_get_stats(c, &fs);
    fwd_mib = (double)fs.arena_used / 1048576.0;
    if (!loss || opl_backward(c, loss) || opl_optim_step(opt, &e)) {
      if (opl_ctx_status(c)) opl_ctx_take_error(c, &e);
      goto fail;
    }
    const double dt = cli_bench_now() - t0, dc = cpu_now() - c0;
    if (it == 0) loss_first = (double)loss->data[0];
    if (it >= warmup) times[it - warmup] = dt, cpus[it - warmup] = dc;
  }
  const double med = median(times, iters), tmin = times[0];
  cpu_med = median(cpus, iters);
  opl_ctx_stats cs;
  opl_ctx_get_stats(c, &cs);
  /* inference: the evaluator's path (opl_task_infer_team): the batch cut over a team of
   * contexts, one slice per thread; the training context is freed first (its arena is not
   * needed), warm-up passes, then the median of iters passes */
  opl_ctx_free(&c);
  if (!(team = opl_team_new(0)) || !(pred = malloc(sizeof(opl_real) * (size_t)y->numel))) {
    opl_err_set(&e, OPL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (int i = 0; i < opl_team_size(team); i++) opl_ctx_set_release(opl_team_ctx(team, i), !no_release);
  slices = batch < opl_team_size(team) ? (int)batch : opl_team_size(team);
  for (int64_t it = 0; it < warmup + iters; it++) {
    const double t0 = cli_bench_now(), c0 = cpu_now();
    if (opl_task_infer_team(team, &m, &task, NULL, NULL, x->rank, x->shape, x->data, pred, s * s, NULL, 0, &e))
      goto fail;
    if (it >= warmup) times[it - warmup] = cli_bench_now() - t0, cpus[it - warmup] = cpu_now() - c0;
  }
  infer_s = median(times, iters);
  infer_cpu = median(cpus, iters);
  printf("{\"side\": \"opl\", \"model\": \"sinenet\", \"waves\": %lld, \"hidden\": %lld, \"mult\": %g, "
         "\"padding\": \"%s\", \"params\": %lld, \"s\": %lld, \"batch\": %lld, \"threads\": %d, "
         "\"samples_per_s\": %.3f, \"ms_median\": %.3f, \"ms_min\": %.3f, \"arena_mib\": %.1f, "
         "\"arena_forward_mib\": %.1f, \"release\": %d, \"peak_rss_mib\": %.1f, \"infer_samples_per_s\": %.3f, \"loss_first\": %.8g, "
         "\"cpu_ms_median\": %.3f, \"infer_cpu_ms_median\": %.3f, \"iters\": %lld, \"warmup\": %lld, "
         "\"precision\": \"%s\", \"openblas_coretype\": \"%s\", \"infer_slices\": %d}\n",
         (long long)waves, (long long)hidden, mult, padding, (long long)opl_model_param_count(&m), (long long)s,
         (long long)batch, opl_get_num_threads(), (double)batch / med, 1e3 * med, 1e3 * tmin,
         (double)cs.arena_high / 1048576.0, fwd_mib, !no_release, cli_bench_peak_rss_mib(), (double)batch / infer_s, loss_first,
         1e3 * cpu_med, 1e3 * infer_cpu, (long long)iters, (long long)warmup, OPL_PRECISION_NAME,
         getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "", slices);
  fflush(stdout);
  status = 0;
fail:
  if (status) fprintf(stderr, "opl bench sinenet: %s\n", e.msg[0] ? e.msg : "out of memory");
  free(times);
  free(cpus);
  opl_optim_free(&opt);
  opl_tensor_free(&x);
  opl_tensor_free(&y);
  opl_model_free(&m);
  opl_ctx_free(&c);
  opl_team_free(&team);
  free(pred);
  return status;
}
