/* opl bench fno — time FNO training steps or inference on synthetic data of the reference
 * shapes, for the side-by-side comparison with the PyTorch peer (experiments/bench/run.sh).
 *
 *   opl bench fno --case fno1d|fno2d_time --s S --threads T --mode train|infer --iters N --warmup W
 *                 [--batch 20] [--rollout 10] [--fft-planner estimate|measure]
 *
 * Cases (Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021, reference scripts):
 *   fno1d       FNO-1d of fourier_1d.py (modes 16, width 64): a (B, 1, s) -> u (B, 1, s);
 *   fno2d_time  FNO-2d of fourier_2d_time.py (modes 12, width 20, 10 input frames): rolled out
 *               `rollout` steps on (B, 10, s, s), the loss summed over the steps.
 * A train step is forward (+ rollout) + relative L2 (summed over the batch) + backward + Adam
 * (lr 1e-3, weight decay 1e-4) — exactly a step of opl train; infer is the forward pass (and
 * rollout with its loss) with gradient recording disabled, on opl eval's path (with 2+ threads
 * the batch is cut into one slice per thread, opl_task_infer_team). The data are seeded smooth random
 * periodic fields (a few low Fourier modes per sample, unit RMS), the same batch every step; no
 * file I/O is timed. Prints one JSON line:
 *   {"impl": "opl", "case": ..., "s": ..., "threads": ..., "mode": ..., "ms_median": ...,
 *    "samples_per_s": ..., "peak_rss_mib": ..., "params": ..., ...}
 * ms_median is the median over the timed steps after the warm-up. peak_rss_mib is this
 * process's own high-water mark of resident memory (VmHWM of /proc/self/status), which unlike
 * getrusage's ru_maxrss does not start from the memory of the process that started it (a
 * child created by fork inherits its parent's ru_maxrss). The FFT planner is the one of
 * opl train (estimate, deterministic) unless --fft-planner measure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/cli.h"
#include "core/rng.h"
#include "train/trainer.h"

/* Seconds on the monotonic clock (cli/cli.h). */
double cli_bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Peak resident memory of this process in MiB: VmHWM of /proc/self/status; where that is
 * unavailable, getrusage's ru_maxrss (an upper bound: it can include the parent's). */
double cli_bench_peak_rss_mib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f) {
    char line[256];
    long long kib = -1;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
    fclose(f);
    if (kib >= 0) return (double)kib / 1024.0;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

/* qsort comparison of doubles, ascending (cli/cli.h). */
int cli_bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Smooth random periodic fields: x [n, P] where each of the n fields (channels of a sample)
 * lives on a grid of d axes of extent s; modes |k| < 8 per axis with N(0, 1) / (1 + |k|^2)
 * amplitudes, normalized to unit RMS. */
static void smooth_fields(opl_rng *rng, opl_real *x, int64_t n, int d, int64_t s) {
  int64_t P = d == 1 ? s : s * s;
  enum { K = 4 };
  for (int64_t f = 0; f < n; f++) {
    double c[K][K][2];
    for (int a = 0; a < K; a++)
      for (int b = 0; b < K; b++)
        for (int q = 0; q < 2; q++) c[a][b][q] = opl_rng_normal(rng) / (1.0 + a * a + b * b);
    double ss = 0;
    opl_real *xf = x + f * P;
    for (int64_t p = 0; p < P; p++) {
      double u = d == 1 ? (double)p / (double)s : (double)(p / s) / (double)s, v = d == 1 ? 0 : (double)(p % s) / (double)s;
      double val = 0;
      for (int a = 0; a < K; a++)
        for (int b = 0; b < (d == 1 ? 1 : K); b++) {
          double ph = 2 * M_PI * (a * u + b * v);
          val += c[a][b][0] * cos(ph) + c[a][b][1] * sin(ph);
        }
      xf[p] = (opl_real)val;
      ss += val * val;
    }
    double scale = ss > 0 ? 1 / sqrt(ss / (double)P) : 1;
    for (int64_t p = 0; p < P; p++) xf[p] = (opl_real)(xf[p] * scale);
  }
}

static int bench_fno(int argc, char **argv) {
  static const char *cs, *mode, *planner; /* static: cli_parse's copies stay reachable until exit */
  cs = "fno1d", mode = "train", planner = "estimate";
  int64_t s = -1, threads = 0, iters = 20, warmup = 3, batch = 20, rollout = 10, modes = -1, width = -1, seed = 0;
  const cli_opt opts[] = {
      {"case", CLI_STRING, &cs, "fno1d (fourier_1d.py) or fno2d_time (fourier_2d_time.py)"},
      {"s", CLI_INT, &s, "resolution (-1: 1024 for fno1d, 64 for fno2d_time)"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"mode", CLI_STRING, &mode, "train (forward + loss + backward + Adam) or infer (forward only)"},
      {"iters", CLI_INT, &iters, "timed steps"},
      {"warmup", CLI_INT, &warmup, "untimed steps before timing"},
      {"batch", CLI_INT, &batch, "batch size"},
      {"rollout", CLI_INT, &rollout, "fno2d_time: rollout steps"},
      {"modes", CLI_INT, &modes, "Fourier modes (-1: 16 / 12)"},
      {"width", CLI_INT, &width, "width (-1: 64 / 20)"},
      {"seed", CLI_INT, &seed, "seed of the model and the data"},
      {"fft-planner", CLI_STRING, &planner, "estimate (deterministic, as opl train) or measure (FFTW_MEASURE)"},
  };
  char *pos[1];
  int npos;
  int rc = cli_parse("bench fno", "[--case fno1d|fno2d_time] [--s S] [--mode train|infer] [options]", argc, argv, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 0, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  int c2d = !strcmp(cs, "fno2d_time");
  if (!c2d && strcmp(cs, "fno1d")) {
    fprintf(stderr, "opl bench fno: --case expects fno1d or fno2d_time, got '%s'\n", cs);
    return 2;
  }
  int train = !strcmp(mode, "train");
  if (!train && strcmp(mode, "infer")) {
    fprintf(stderr, "opl bench fno: --mode expects train or infer, got '%s'\n", mode);
    return 2;
  }
  int measure = !strcmp(planner, "measure");
  if (!measure && strcmp(planner, "estimate")) {
    fprintf(stderr, "opl bench fno: --fft-planner expects estimate or measure, got '%s'\n", planner);
    return 2;
  }
  opl_fft_set_planner(measure ? OPL_FFT_MEASURE : OPL_FFT_ESTIMATE);
  if (s < 0) s = c2d ? 64 : 1024;
  if (s < 2 || iters < 1 || warmup < 0 || batch < 1 || rollout < 1 || threads < 0 || s > 1 << 20 || rollout > 1 << 20) {
    fprintf(stderr, "opl bench fno: --s >= 2, --iters >= 1, --warmup >= 0, --batch >= 1, --rollout >= 1 expected\n");
    return 2;
  }
  if (threads > 0) opl_set_num_threads((int)threads);
  opl_fno_config mc = opl_fno_config_reference(c2d ? OPL_FNO_REF_2D_TIME : OPL_FNO_REF_1D);
  if (modes > 0)
    for (int a = 0; a < mc.d; a++) mc.modes[a] = (int)modes;
  if (width > 0) mc.width = width;
  opl_task task = c2d ? (opl_task){.kind = OPL_TASK_ROLLOUT, .t_in = mc.in_channels, .t_out = rollout}
                      : (opl_task){.kind = OPL_TASK_STATIC, .target_frame = -1};
  opl_err e = {0};
  opl_model m = {0};
  opl_rng rng;
  opl_rng_seed(&rng, (uint64_t)seed);
  opl_ctx *c = opl_ctx_new(0);
  opl_team *team = NULL;
  opl_tensor *x = NULL, *y = NULL;
  opl_optim *adam = NULL;
  int status = 1;
  if (!c || opl_model_create(&m, &opl_fno_kind, &mc, &rng, &e)) goto fail;
  int64_t Cin = mc.in_channels, Cout = c2d ? rollout : 1;
  x = c2d ? opl_tensor_alloc(OPL_DIMS(batch, Cin, s, s), 0, &e) : opl_tensor_alloc(OPL_DIMS(batch, Cin, s), 0, &e);
  y = c2d ? opl_tensor_alloc(OPL_DIMS(batch, Cout, s, s), 0, &e) : opl_tensor_alloc(OPL_DIMS(batch, Cout, s), 0, &e);
  if (!x || !y) goto fail;
  opl_rng drng = opl_rng_split(&rng, 1);
  smooth_fields(&drng, x->data, batch * Cin, mc.d, s);
  smooth_fields(&drng, y->data, batch * Cout, mc.d, s);
  opl_optim_config oc = opl_optim_defaults(OPL_OPTIM_ADAM);
  oc.lr = 1e-3;
  oc.weight_decay = 1e-4;
  if (!(adam = opl_optim_create(OPL_OPTIM_ADAM, &m.params, &oc, &e))) goto fail;
  opl_ctx_set_grad_enabled(c, train);
  double *times = malloc(sizeof(double) * (size_t)iters);
  /* infer: the path of opl eval: bounded memory (arena reset after every rollout step), the
   * batch cut into one slice per thread (opl_task_infer_team; context 0 is c) */
  if (!train && !(team = opl_team_new_from(c, 0))) goto fail;
  opl_real *pbuf = malloc(sizeof(opl_real) * (size_t)y->numel), *wbuf = malloc(sizeof(opl_real) * (size_t)x->numel);
  double *rel = malloc(sizeof(double) * (size_t)(batch * Cout));
  if (!times || !pbuf || !wbuf || !rel) {
    free(times);
    free(pbuf);
    free(wbuf);
    free(rel);
    goto fail;
  }
  struct rusage ru0, ru1;
  double sink = 0;
  for (int64_t it = 0; it < warmup + iters; it++) {
    if (it == warmup) getrusage(RUSAGE_SELF, &ru0);
    double t0 = cli_bench_now();
    int bad = 0;
    if (train) {
      opl_ctx_reset(c);
      opl_params_zero_grad(&m.params);
      opl_tensor *loss = opl_task_loss(c, &task, opl_task_predict(c, &m, &task, NULL, NULL, x), y);
      if (!loss || opl_backward(c, loss) || opl_optim_step(adam, &e)) {
        if (opl_ctx_status(c)) opl_ctx_take_error(c, &e);
        bad = 1;
      } else {
        sink += (double)loss->data[0];
      }
    } else {
      bad = opl_task_infer_team(team, &m, &task, NULL, NULL, x->rank, x->shape, x->data, pbuf, y->numel / batch, wbuf,
                                x->numel / batch, &e) != OPL_OK;
      if (!bad && c2d) {
        /* the rollout's loss, as the torch peer computes it under no_grad */
        opl_rel_l2_per_sample(pbuf, y->data, batch * Cout, y->numel / (batch * Cout), rel, NULL);
        for (int64_t j = 0; j < batch * Cout; j++) sink += rel[j];
      } else if (!bad) {
        sink += (double)pbuf[0];
      }
    }
    if (bad) {
      free(times);
      free(pbuf);
      free(wbuf);
      free(rel);
      goto fail;
    }
    double dt = cli_bench_now() - t0;
    if (it >= warmup) times[it - warmup] = dt;
  }
  getrusage(RUSAGE_SELF, &ru1);
  free(pbuf);
  free(wbuf);
  double tmin = times[0];
  for (int64_t i = 1; i < iters; i++) tmin = fmin(tmin, times[i]);
  qsort(times, (size_t)iters, sizeof *times, cli_bench_cmp_double);
  double med = iters % 2 ? times[iters / 2] : 0.5 * (times[iters / 2 - 1] + times[iters / 2]);
  free(times);
  free(rel);
  const char *core = openblas_get_corename();
  printf("{\"impl\": \"opl\", \"case\": \"%s\", \"s\": %lld, \"threads\": %d, \"mode\": \"%s\", \"ms_median\": %.3f, "
         "\"samples_per_s\": %.3f, \"peak_rss_mib\": %.1f, \"params\": %lld, \"batch\": %lld, \"iters\": %lld, "
         "\"warmup\": %lld, \"rollout\": %lld, \"ms_min\": %.3f, \"minflt_per_step\": %lld, \"version\": \"%s\", "
         "\"precision\": \"%s\", \"blas_core\": \"%s\", \"fft_planner\": \"%s\", \"finite\": %s}\n",
         cs, (long long)s, opl_get_num_threads(), mode, med * 1e3, (double)batch / med, cli_bench_peak_rss_mib(),
         (long long)opl_model_param_count(&m), (long long)batch, (long long)iters, (long long)warmup,
         (long long)(c2d ? rollout : 0), tmin * 1e3, (long long)((ru1.ru_minflt - ru0.ru_minflt) / iters), OPL_VERSION,
         OPL_PRECISION_NAME, core ? core : "unknown", measure ? "measure" : "estimate", isfinite(sink) ? "true" : "false");
  fflush(stdout);
  status = 0;
fail:
  if (status) fprintf(stderr, "opl bench fno: %s\n", e.msg[0] ? e.msg : "out of memory");
  opl_optim_free(&adam);
  opl_tensor_free(&x);
  opl_tensor_free(&y);
  opl_model_free(&m);
  opl_team_free(&team);
  opl_ctx_free(&c);
  return status;
}

int cli_bench(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "fno")) return bench_fno(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "node")) return cli_bench_node(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "mgno")) return cli_bench_mgno(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "sinenet")) return cli_bench_sinenet(argc - 1, argv + 1);
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: opl bench fno|node|mgno|sinenet [options]   (opl bench <name> --help for the options)\n\n"
           "  fno    time FNO training steps or inference on synthetic data (experiments/bench/run.sh)\n"
           "  node   time neural-ODE training steps and measure the memory of store-all against checkpointed\n"
           "         backward for a solve of a fixed number of steps (experiments/node/run_bench.sh)\n"
           "  mgno   time MgNO training steps at 256^2, batch 8 (experiments/mgno/bench.sh)\n"
           "  sinenet  time SineNet training steps at 64^2, batch 16, K 4, hidden 32 (experiments/sinenet/bench.sh)\n");
    return 0;
  }
  fprintf(stderr, "opl bench: which benchmark? usage: opl bench fno|node|mgno|sinenet [options]%s%s%s\n", argc >= 2 ? " (got '" : "",
          argc >= 2 ? argv[1] : "", argc >= 2 ? "')" : "");
  return 2;
}
