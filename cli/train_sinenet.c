/* opl train sinenet — SineNet (operators/sinenet.h) on the one-step task (train/task.h, STEP):
 *
 *   opl train sinenet --data FILE.h5 -o MODEL.h5 [--preset ns-k1] [--waves K] [--hidden H] [--mult M]
 *       [--padding circular|zeros] [--hist T] [--ntrain N] [--ntest M] [--epochs E] [--batch B]
 *       [--lr LR] [--weight-decay WD] [--warmup W] [--normalize field|none] [--sub R] [--seed K]
 *       [--checkpoint-every k] [--threads P] [--every k] [--quiet]
 *
 * One-step teacher forcing from a random start time per batch (T history frames -> the next),
 * per-field normalization, the relative L2 loss; AdamW, linear warmup then cosine decay per epoch
 * (the authors' navierstokes2d.yaml: lr 2e-4, weight decay 1e-5, 5 warmup epochs, 50 epochs,
 * batch 8, 4 history frames). The test error printed each epoch is the relative L2 of the
 * autoregressive rollout over every stored frame after the first T. Architecture: the preset
 * (default ns-k1), then the flags; --waves without --mult takes the paper's multiplier for that
 * K (1: 2, 2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425). Exit status: 0 done, 1 runtime failure,
 * 2 usage error. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/outputs.h"
#include "operators/sinenet.h"
#include "train/schedule.h"
#include "train/trainer.h"

typedef struct sn_print {
  int64_t epochs, every;
  int quiet;
  double last_test;
} sn_print;

static int sn_epoch_cb(const opl_epoch_stats *s, void *user) {
  sn_print *p = user;
  p->last_test = s->test_l2;
  if (!p->quiet && (s->epoch % p->every == 0 || s->epoch == p->epochs || s->epoch == 1)) {
    int w = p->epochs >= 1000 ? 4 : p->epochs >= 100 ? 3 : p->epochs >= 10 ? 2 : 1;
    char test[32];
    if (isnan(s->test_l2)) snprintf(test, sizeof test, "%10s", "-");
    else snprintf(test, sizeof test, "%10.4e", s->test_l2);
    printf("epoch %*lld/%lld  train one-step L2 %.4e  test rollout L2 %s  lr %.2e  %6.2f s  %7.1f samples/s\n", w,
           (long long)s->epoch, (long long)p->epochs, s->train_loss, test, s->lr, s->seconds, s->samples_per_s);
    fflush(stdout);
  }
  return 0;
}

/* The paper's multiplier for K waves (the authors' registry), or 0. */
static double paper_mult(int64_t waves) {
  switch (waves) {
    case 1: return 2.0;
    case 2: return 1.8075;
    case 4: return 1.611;
    case 6: return 1.5;
    case 8: return 1.425;
    default: return 0;
  }
}

int cli_train_sinenet(int argc, char **argv) {
  static const char *data, *out, *preset, *padding, *normalize;
  data = out = preset = padding = normalize = NULL;
  int64_t waves = -1, hidden = -1, hist = 4, ntrain = -1, ntest = -1, epochs = 50, batch = 8, warmup = 5, sub = 1,
          seed = 0, every_ckpt = 0, threads = 0, every = 1;
  double mult = -1, lr = 2e-4, wd = 1e-5;
  int quiet = 0;
  const cli_opt opts[] = {
      {"data", CLI_STRING, &data, "data set file with frames (opl generate ns, PDEBench, FNO .mat)"},
      {"out", CLI_STRING, &out, "-o, --out MODEL.h5: the model / checkpoint file (metrics go to MODEL.csv)"},
      {"preset", CLI_STRING, &preset, OPL_SINENET_PRESETS " (default ns-k1; its channels are set by the data)"},
      {"waves", CLI_INT, &waves, "waves K (-1: the preset's)"},
      {"hidden", CLI_INT, &hidden, "hidden width H (-1: the preset's)"},
      {"mult", CLI_DOUBLE, &mult, "width multiplier m, widths int(H m^k) (-1: the preset's, or the paper's for --waves)"},
      {"padding", CLI_STRING, &padding, "circular (periodic domains) or zeros (default: the preset's)"},
      {"hist", CLI_INT, &hist, "history frames T fed to the model"},
      {"ntrain", CLI_INT, &ntrain, "training samples: the first N of the file (-1: all but the test samples)"},
      {"ntest", CLI_INT, &ntest, "test samples: the last M of the file (-1: min(100, N/5))"},
      {"epochs", CLI_INT, &epochs, "epochs"},
      {"batch", CLI_INT, &batch, "batch size"},
      {"lr", CLI_DOUBLE, &lr, "AdamW peak learning rate"},
      {"weight-decay", CLI_DOUBLE, &wd, "AdamW decoupled weight decay"},
      {"warmup", CLI_INT, &warmup, "epochs of linear warmup before the cosine decay"},
      {"normalize", CLI_STRING, &normalize, "field (one mean and std per field, default) or none"},
      {"sub", CLI_INT, &sub, "spatial sub-sampling: train at resolution X / sub"},
      {"seed", CLI_INT, &seed, "seed of the initialization, the shuffling and the start times"},
      {"checkpoint-every", CLI_INT, &every_ckpt, "also write the checkpoint every k epochs (0: only at the end)"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"every", CLI_INT, &every, "print every this many epochs (and the first and last)"},
      {"quiet", CLI_FLAG, &quiet, "print only the summary"},
  };
  char *pos[2];
  int npos;
  /* argv[0] = "train", argv[1] = "sinenet" */
  int rc = cli_parse("train", "sinenet --data FILE.h5 -o MODEL.h5 [options]", argc, argv, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (npos != 1) {
    fprintf(stderr, "opl train sinenet: unexpected argument '%s'\n", npos > 1 ? pos[1] : "");
    return 2;
  }
  if (!data || !*data || !out || !*out) {
    fprintf(stderr, "opl train sinenet: --data FILE.h5 and -o MODEL.h5 are required\n");
    return 2;
  }
  opl_err e = {0};
  opl_sinenet_config sc;
  if (opl_sinenet_preset(preset ? preset : "ns-k1", &sc, &e)) {
    fprintf(stderr, "opl train sinenet: --preset: %s\n", e.msg);
    return 2;
  }
  if (waves != -1) {
    if (waves < 1 || waves > OPL_SINENET_MAX_WAVES) {
      fprintf(stderr, "opl train sinenet: --waves expects 1..%d, got %lld\n", OPL_SINENET_MAX_WAVES, (long long)waves);
      return 2;
    }
    if (mult == -1 && waves != sc.waves) {
      mult = paper_mult(waves);
      if (mult == 0) {
        fprintf(stderr, "opl train sinenet: --waves %lld: the paper gives no multiplier for it; give --mult\n",
                (long long)waves);
        return 2;
      }
    }
    sc.waves = (int)waves;
  }
  if (hidden != -1) sc.hidden = hidden;
  if (mult != -1) sc.mult = mult;
  if (padding) {
    if (!strcmp(padding, "zeros")) sc.pad = OPL_PAD_ZERO;
    else if (!strcmp(padding, "circular")) sc.pad = OPL_PAD_CIRCULAR;
    else {
      fprintf(stderr, "opl train sinenet: --padding expects circular or zeros, got '%s'\n", padding);
      return 2;
    }
  }
  int norm = OPL_NORMALIZE_GAUSSIAN;
  if (normalize && !strcmp(normalize, "none")) norm = OPL_NORMALIZE_NONE;
  else if (normalize && strcmp(normalize, "field")) {
    fprintf(stderr, "opl train sinenet: --normalize expects field or none, got '%s'\n", normalize);
    return 2;
  }
  struct { const char *name; int64_t v, lo; } ints[] = {{"hist", hist, 1},  {"epochs", epochs, 1}, {"batch", batch, 1},
                                                        {"warmup", warmup, 0}, {"sub", sub, 1},   {"every", every, 1}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (ints[i].v < ints[i].lo || ints[i].v > 1 << 30) {
      fprintf(stderr, "opl train sinenet: --%s expects an integer >= %lld, got %lld\n", ints[i].name,
              (long long)ints[i].lo, (long long)ints[i].v);
      return 2;
    }
  if (!(lr > 0) || !(wd >= 0) || !isfinite(lr) || !isfinite(wd)) {
    fprintf(stderr, "opl train sinenet: --lr expects a value > 0 and --weight-decay >= 0 (got %g, %g)\n", lr, wd);
    return 2;
  }
  sc.in_channels = hist; /* set again from the task by the trainer */
  if (opl_sinenet_check_config(&sc, &e)) {
    fprintf(stderr, "opl train sinenet: %s\n", e.msg);
    return 2;
  }
  char csv[4096] = "";
  opl_metrics_csv_path(out, csv, sizeof csv, NULL);
  const cli_file outs[] = {{"-o", out}, {"its metrics log", csv}}, ins[] = {{"--data", data}};
  if (cli_outputs_check("train", outs, 2, ins, 1)) return 2;
  if (threads > 0) opl_set_num_threads((int)threads);

  opl_ds *ds = opl_ds_open(data, NULL, &e);
  if (!ds) {
    fprintf(stderr, "opl train sinenet: cannot read the data set: %s\n", e.msg);
    return 1;
  }
  const opl_ds_info *info = opl_ds_get_info(ds);
  int64_t N = info->dims.n;
  if (info->dims.sdim != 2 || info->dims.t <= hist) {
    fprintf(stderr, "opl train sinenet: SineNet steps 2-D frames: '%s' holds %d-D data with %lld frames, the task needs "
                    "2-D frames and more than --hist %lld of them\n", data, info->dims.sdim, (long long)info->dims.t,
            (long long)hist);
    opl_ds_close(&ds);
    return 2;
  }
  if (ntest < 0) ntest = N / 5 < 100 ? N / 5 : 100;
  if (ntest < 1 && N >= 2) ntest = 1;
  if (ntrain < 0) ntrain = N - ntest;
  opl_trainer_config tc = opl_trainer_defaults();
  tc.task = (opl_task){.kind = OPL_TASK_STEP, .t_in = hist, .t_out = 1};
  tc.ntrain = ntrain;
  tc.ntest = ntest;
  tc.batch = batch;
  tc.sub = (int)sub;
  tc.normalize = norm;
  tc.epochs = epochs;
  tc.lr = lr;
  tc.weight_decay = wd;
  tc.adamw = 1;
  tc.schedule = OPL_SCHEDULE_COSINE;
  tc.sched_per_step = 0;
  tc.warmup = warmup;
  tc.seed = (uint64_t)seed;
  tc.checkpoint = out;
  tc.checkpoint_every = every_ckpt;
  tc.dataset_name = data;
  opl_trainer *t = opl_trainer_new(&tc, &opl_sinenet_kind, &sc, ds, &e);
  if (!t) {
    fprintf(stderr, "opl train sinenet: %s\n", opl_err_text(&e));
    opl_ds_close(&ds);
    return e.status == OPL_ERR_ARG || e.status == OPL_ERR_SHAPE ? 2 : 1;
  }
  const opl_model *m = opl_trainer_model(t);
  const opl_loader_info *li = opl_trainer_loader_info(t);
  char desc[256];
  m->ops->describe(m->self, desc, sizeof desc);
  if (!quiet) {
    printf("opl train: %s, %lld parameters, %lld frames -> next frame from a random start; test: rollout over %lld "
           "frames\n", desc, (long long)opl_model_param_count(m), (long long)hist, (long long)(info->dims.t - hist));
    printf("  data '%s': %lld train + %lld test samples at %lld x %lld (sub %lld)%s\n", data, (long long)ntrain,
           (long long)ntest, (long long)li->nx, (long long)li->ny, (long long)sub,
           norm == OPL_NORMALIZE_GAUSSIAN ? ", per-field normalization" : "");
    printf("  AdamW lr %g (weight decay %g), %lld warmup epochs then cosine, batch %lld, %lld epochs, %d thread%s, %s "
           "precision\n", lr, wd, (long long)warmup, (long long)batch, (long long)epochs, opl_get_num_threads(),
           opl_get_num_threads() == 1 ? "" : "s", OPL_PRECISION_NAME);
    fflush(stdout);
  }
  sn_print p = {.epochs = epochs, .every = every, .quiet = quiet, .last_test = NAN};
  int st = opl_trainer_run(t, sn_epoch_cb, &p, &e);
  int64_t done = opl_trainer_epochs_done(t);
  opl_trainer_free(&t);
  opl_ds_close(&ds);
  if (st) {
    fprintf(stderr, "opl train sinenet: %s\n", opl_err_text(&e));
    return 1;
  }
  printf("opl train: saved '%s' (epoch %lld) and metrics '%s'; test rollout relative L2 %.4e\n", out, (long long)done,
         csv, p.last_test);
  return 0;
}
