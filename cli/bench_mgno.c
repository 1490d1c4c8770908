/* opl bench mgno — time MgNO training steps (experiments/mgno/bench.sh runs the authors' PyTorch
 * model beside it through experiments/mgno/bench_peer.py).
 *
 *   opl bench mgno [--preset darcy-rough|darcy-smooth|ns] [--s 256] [--batch 8] [--iters 5]
 *                  [--warmup 2] [--threads T] [--seed S] [--quick] [--memory] [--no-release]
 *
 * The model: MgNO (operators/mgno.h; He, Liu and Xu, ICLR 2024) of the preset, one input and one
 * output channel. One training step on a fixed batch (x, y) of N(0, 1) fields (batch, 1, s, s),
 * seeded: zero the gradients, forward, the loss = the sum over the batch of the per-sample
 * relative L2 errors (opl train's objective, the authors' LpLoss(size_average=False)), backward,
 * Adam (lr 1e-3, no weight decay): the step of opl train without the data loader.
 *
 * Prints one JSON line:
 *   {"side": "opl", "model": "mgno", "preset": ..., "params": ..., "s": ..., "batch": ..., "threads": ...,
 *    "samples_per_s": ..., "ms_median": ..., "ms_min": ..., "arena_mib": ..., "arena_forward_mib": ...,
 *    "grad_high_mib": ..., "release": 0|1, "peak_rss_mib": ..., "loss_first": ..., "precision": ...}
 * samples/s = batch / the median step time after the warm-up; arena_mib = the high-water mark of
 * the step's arena (activations, saved values, gradients, scratch), arena_forward_mib = the arena
 * in use after the forward pass and the loss (the tape's tensors), grad_high_mib = the most
 * gradient buffers live at once in backward (opl_ctx_stats.grad_high); peak_rss_mib = VmHWM of
 * /proc/self/status (this process's own peak resident memory). --quick: s 32, batch 2, 2
 * iterations, 1 warm-up (a smoke test of the output). --memory: after the JSON line, a markdown
 * table of the last step's tape by op kind (opl_tape_memory: nodes, output MiB, the part a
 * backward reads, the part released for reuse) and a line with the arena's totals. --no-release:
 * opl_release does nothing (opl_ctx_set_release), so every activation is kept until the step
 * ends: the memory the releases save, measured by the same binary. Exit status 0, 1 on a runtime
 * failure, 2 on a usage error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/optim.h"
#include "core/rng.h"
#include "operators/mgno.h"
#include "train/task.h"

int cli_bench_mgno(int argc, char **argv) {
  static const char *preset; /* static: cli_parse's copies stay reachable */
  preset = "darcy-rough";
  int64_t s = 256, batch = 8, iters = 5, warmup = 2, threads = 0, seed = 0;
  int quick = 0, memory = 0, no_release = 0;
  const cli_opt opts[] = {
      {"preset", CLI_STRING, &preset, OPL_MGNO_PRESETS},
      {"s", CLI_INT, &s, "grid points per axis (a multiple of 2^(levels-1))"},
      {"batch", CLI_INT, &batch, "batch size"},
      {"iters", CLI_INT, &iters, "timed training steps"},
      {"warmup", CLI_INT, &warmup, "untimed training steps before timing"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"seed", CLI_INT, &seed, "seed of the weights and the data"},
      {"quick", CLI_FLAG, &quick, "tiny sizes: s 32, batch 2, 2 iterations, 1 warm-up"},
      {"memory", CLI_FLAG, &memory, "print the last step's tape memory by op kind after the JSON line"},
      {"no-release", CLI_FLAG, &no_release, "keep every activation until the step ends (opl_release off)"},
  };
  char *pos[1];
  int npos;
  int rc = cli_parse("bench mgno", "[--preset P] [--s 256] [--batch 8] [options]", argc, argv, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 0, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (quick) s = 32, batch = 2, iters = 2, warmup = 1;
  if (s < 1 || s > 1 << 14 || batch < 1 || batch > 1 << 16 || iters < 1 || iters > 1 << 20 || warmup > 1 << 20) {
    fprintf(stderr, "opl bench mgno: --s 1..16384, --batch 1..65536 and --iters >= 1 expected (got %lld, %lld, %lld)\n",
            (long long)s, (long long)batch, (long long)iters);
    return 2;
  }
  opl_err e = {0};
  opl_mgno_config mc;
  if (opl_mgno_preset(preset, &mc, &e)) {
    fprintf(stderr, "opl bench mgno: --preset: %s\n", e.msg);
    return 2;
  }
  const int64_t q = (int64_t)1 << (mc.levels - 1);
  if (s % q) {
    fprintf(stderr, "opl bench mgno: --s %lld: MgNO %s has %d levels, so s must be a multiple of %lld\n",
            (long long)s, preset, mc.levels, (long long)q);
    return 2;
  }
  if (mc.variant == OPL_MGNO_NS) mc.ln_res[0] = mc.ln_res[1] = s; /* its LayerNorms take the bench's grid */
  if (threads > 0) opl_set_num_threads((int)threads);
  const opl_task task = {.kind = OPL_TASK_STATIC, .target_frame = -1};
  opl_model m = {0};
  opl_rng rng;
  opl_rng_seed(&rng, (uint64_t)seed);
  opl_ctx *c = opl_ctx_new(0);
  opl_tensor *x = NULL, *y = NULL;
  opl_optim *adam = NULL;
  double *times = NULL, loss_first = 0, fwd_mib = 0;
  opl_tape_mem rows[32];
  int nrows = 0;
  int status = 1;
  if (!c) {
    opl_err_set(&e, OPL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  if (no_release) opl_ctx_set_release(c, 0);
  if (opl_model_create(&m, &opl_mgno_kind, &mc, &rng, &e)) goto fail;
  if (!(x = opl_tensor_alloc(OPL_DIMS(batch, 1, s, s), 0, &e)) || !(y = opl_tensor_alloc(OPL_DIMS(batch, 1, s, s), 0, &e)))
    goto fail;
  opl_rng drng = opl_rng_split(&rng, 1);
  for (int64_t i = 0; i < x->numel; i++) x->data[i] = (opl_real)opl_rng_normal(&drng);
  for (int64_t i = 0; i < y->numel; i++) y->data[i] = (opl_real)opl_rng_normal(&drng);
  opl_optim_config oc = opl_optim_defaults(OPL_OPTIM_ADAM);
  oc.lr = 1e-3;
  oc.weight_decay = 0;
  if (!(adam = opl_optim_create(OPL_OPTIM_ADAM, &m.params, &oc, &e))) goto fail;
  if (!(times = malloc(sizeof(double) * (size_t)iters))) {
    opl_err_set(&e, OPL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (int64_t it = 0; it < warmup + iters; it++) {
    const double t0 = cli_bench_now();
    opl_ctx_reset(c);
    opl_params_zero_grad(&m.params);
    opl_tensor *loss = opl_task_loss(c, &task, opl_task_predict(c, &m, &task, NULL, NULL, x), y);
    opl_ctx_stats fs;
    opl_ctx_get_stats(c, &fs);
    fwd_mib = (double)fs.arena_used / 1048576.0;
    if (memory) nrows = opl_tape_memory(c, rows, (int)(sizeof rows / sizeof rows[0]));
    if (!loss || opl_backward(c, loss) || opl_optim_step(adam, &e)) {
      if (opl_ctx_status(c)) opl_ctx_take_error(c, &e);
      goto fail;
    }
    const double dt = cli_bench_now() - t0;
    if (it == 0) loss_first = (double)loss->data[0];
    if (it >= warmup) times[it - warmup] = dt;
  }
  qsort(times, (size_t)iters, sizeof *times, cli_bench_cmp_double);
  const double med = iters % 2 ? times[iters / 2] : 0.5 * (times[iters / 2 - 1] + times[iters / 2]);
  opl_ctx_stats cs;
  opl_ctx_get_stats(c, &cs);
  printf("{\"side\": \"opl\", \"model\": \"mgno\", \"preset\": \"%s\", \"params\": %lld, \"s\": %lld, \"batch\": %lld, "
         "\"threads\": %d, \"samples_per_s\": %.3f, \"ms_median\": %.3f, \"ms_min\": %.3f, \"arena_mib\": %.1f, "
         "\"arena_forward_mib\": %.1f, \"grad_high_mib\": %.1f, \"release\": %d, "
         "\"peak_rss_mib\": %.1f, \"loss_first\": %.8g, \"iters\": %lld, \"warmup\": %lld, \"precision\": \"%s\"}\n",
         preset, (long long)opl_model_param_count(&m), (long long)s, (long long)batch, opl_get_num_threads(),
         (double)batch / med, 1e3 * med, 1e3 * times[0], (double)cs.arena_high / 1048576.0, fwd_mib,
         (double)cs.grad_high / 1048576.0, !no_release, cli_bench_peak_rss_mib(),
         loss_first, (long long)iters, (long long)warmup, OPL_PRECISION_NAME);
  if (memory) {
    const double mib = 1048576.0;
    double tot[3] = {0, 0, 0};
    printf("\n| op | nodes | outputs (MiB) | read by backward (MiB) | released (MiB) | kept, not read (MiB) |\n"
           "|---|---|---|---|---|---|\n");
    for (int i = 0; i < nrows && i < (int)(sizeof rows / sizeof rows[0]); i++) {
      const opl_tape_mem *r = &rows[i];
      printf("| %s | %lld | %.1f | %.1f | %.1f | %.1f |\n", r->op, (long long)r->nodes, r->out_bytes / mib,
             r->saved_bytes / mib, r->released_bytes / mib,
             (r->out_bytes - r->saved_bytes - r->released_bytes) / mib);
      tot[0] += r->out_bytes / mib, tot[1] += r->saved_bytes / mib, tot[2] += r->released_bytes / mib;
    }
    printf("| total | | %.1f | %.1f | %.1f | %.1f |\n", tot[0], tot[1], tot[2], tot[0] - tot[1] - tot[2]);
    printf("\narena: high-water %.1f MiB, after the forward pass %.1f MiB, gradients live at most %.1f MiB, "
           "reused from released blocks %.1f MiB in the last step\n",
           (double)cs.arena_high / mib, fwd_mib, (double)cs.grad_high / mib, (double)cs.reused / mib);
  }
  fflush(stdout);
  status = 0;
fail:
  if (status) fprintf(stderr, "opl bench mgno: %s\n", e.msg[0] ? e.msg : "out of memory");
  free(times);
  opl_optim_free(&adam);
  opl_tensor_free(&x);
  opl_tensor_free(&y);
  opl_model_free(&m);
  opl_ctx_free(&c);
  return status;
}
