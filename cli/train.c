/* opl train — train a model on a data set file (train/trainer.h), printing one line per epoch.
 *
 * MODEL is a model kind of the registry (operators/model.h); the trainer sees it only through
 * the model interface. The architecture flags below are the FNO's (--modes, --width,
 * --layers, --proj), built into its configuration by cli_fno_config (cli/summary.c, shared
 * with opl summary); a kind without command-line architecture flags is refused by name.
 *
 *   opl train fno --data FILE.h5 --ntrain N --ntest M --epochs E --batch B --lr LR --step-size S
 *       --gamma G --modes K --width W --sub R [--target-time T] [--dim 1|2|3] [--T-in 10 --T 40]
 *       [--normalize none|gaussian|scalar-u] [--seed K] [--checkpoint-every k] [--resume]
 *       [--pde-weight W [--ic-weight V]] -o MODEL.h5
 *
 * --dim 1: FNO-1d, a -> u(T) (fourier_1d.py); --dim 2: FNO-2d time stepping, T_in frames in, T
 * frames rolled out (fourier_2d_time.py) — or, on data with a single frame or with --target-time,
 * FNO-2d a -> u(T) (fourier_2d.py); --dim 3: FNO-3d, T_in frames -> the next T (fourier_3d.py).
 * On 1-D data --dim 2 is the space-time task over (x, t) (train/task.h), by default from the
 * initial state a (--T-in 0) to every stored frame, t = 0 included (PINO's Burgers setting).
 * Without --dim: the data set's dimension. --pde-weight W adds W times the mean square PDE
 * residual of the prediction to the loss, --ic-weight V the mean square error of its frame
 * t = 0 (train/pino.h; the space-time task only, on data sets with opl's provenance). Defaults are the reference scripts' (modes, width,
 * padding per case; Adam 1e-3, weight decay 1e-4, StepLR 100 x 0.5, batch 20, 500 epochs).
 * With --resume the stored configuration of MODEL.h5 is the default of every option.
 * Exit status: 0 done, 1 runtime failure (I/O, divergence), 2 usage error. Ctrl-C stops after the
 * current epoch and writes a checkpoint.
 *
 *   opl train node --data FILE.h5 --vf fno|mlp [--solver tsit5|dp5|bs3] [--rtol R --atol A]
 *       [--reg none|error|stiff|error+stiff] [--reg-mode global|local-unbiased|local-biased]
 *       [--lambda L0[:L1]] [--adjoint discrete|checkpoint|backsolve|interp] [--saveat step|dense] [--window K]
 *       [--time-channel]
 *       ... -o MODEL.h5
 *
 * A neural ODE (operators/node_model.h) on the trajectory task (train/task.h): windows of K
 * stored snapshots from a start drawn per batch, the loss the relative L2 over the window's
 * predicted snapshots plus lambda times the regularizer, lambda decaying exponentially from L0
 * at the first epoch to L1 at the last (constant without ":L1"). The metrics CSV gains the
 * solver's evaluations and steps per batch.
 *
 *   opl train sinenet --data FILE.h5 -o MODEL.h5 [--preset ns-k1] [--waves K] [--hidden H] [--mult M]
 *       [--padding circular|zeros] [--hist T] [--normalize field|none] [--loss l2-field] [--resume] ...
 *
 * SineNet (operators/sinenet.h) on the one-step task (train/task.h, STEP): one-step teacher forcing
 * from a random start time per batch (T history frames -> the next), per-field normalization, the
 * paper's scaled relative L2 (train/loss.h, l2-field); AdamW, linear warmup from 1e-7 then cosine
 * decay to 1e-7 per epoch (the authors' navierstokes2d.yaml: lr 2e-4, weight decay 1e-5, 5 warmup
 * epochs, 50 epochs, LinearWarmupCosineAnnealingLR, batch 8, 4 history frames): the row's recipe,
 * every value overridable by the common options.
 * The test error printed each epoch is the relative L2 of the autoregressive rollout over every
 * stored frame after the first T. Architecture: the preset (default ns-k1), then the flags;
 * --waves without --mult takes the paper's multiplier for that K (1: 2, 2: 1.8075, 4: 1.611,
 * 6: 1.5, 8: 1.425). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/outputs.h"
#include "operators/fno.h"
#include "operators/mgno.h"
#include "operators/mlp.h"
#include "operators/node_model.h"
#include "operators/sinenet.h"
#include "train/loss.h"
#include "train/schedule.h"
#include "train/trainer.h"

/* A library message without its module tag (the CLI prints "opl train: " before it). */
static const char *msg_of(const opl_err *e) { return opl_err_text(e); }

static volatile sig_atomic_t train_stop_requested = 0;
static void on_signal(int sig) {
  if (train_stop_requested) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
  train_stop_requested = 1;
}

/* argv with "-o FILE" / "-oFILE" rewritten to "--out FILE" (a heap array of argv's strings). */
static char **rewrite_short_out(int argc, char **argv, int *argc_out) {
  char **v = calloc((size_t)argc + 2, sizeof *v);
  if (!v) return NULL;
  int n = 0;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "-o")) {
      v[n++] = "--out";
    } else if (!strncmp(argv[i], "-o", 2) && argv[i][2] && argv[i][2] != '-') {
      v[n++] = "--out";
      v[n++] = argv[i] + 2;
    } else {
      v[n++] = argv[i];
    }
  }
  *argc_out = n;
  return v;
}

/* The value of --name VALUE / --name=VALUE on the command line, or NULL. */
static const char *find_arg(int argc, char **argv, const char *name) {
  size_t len = strlen(name);
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) || strncmp(argv[i] + 2, name, len)) continue;
    if (argv[i][2 + len] == '=') return argv[i] + 3 + len;
    if (argv[i][2 + len] == 0) return i + 1 < argc ? argv[i + 1] : NULL;
  }
  return NULL;
}
static int has_flag(int argc, char **argv, const char *name) {
  size_t len = strlen(name);
  for (int i = 1; i < argc; i++)
    if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, name, len) &&
        (argv[i][2 + len] == 0 || (argv[i][2 + len] == '=' && strcmp(argv[i] + 3 + len, "false") &&
                                   strcmp(argv[i] + 3 + len, "0") && strcmp(argv[i] + 3 + len, "no"))))
      return 1;
  return 0;
}

typedef struct train_print {
  int64_t epochs, every;
  int rollout, step, quiet; /* rollout: ROLLOUT / ONESTEP; step: the random-start one-step task */
  const char *train_name;   /* what the training loss is: "L2" (l2, l2-field) or "H1" */
  double last_test;
} train_print;

static int epoch_cb(const opl_epoch_stats *s, void *user) {
  train_print *p = user;
  p->last_test = s->test_l2;
  if (!p->quiet && (s->epoch % p->every == 0 || s->epoch == p->epochs || s->epoch == 1)) {
    int w = p->epochs >= 1000 ? 4 : p->epochs >= 100 ? 3 : p->epochs >= 10 ? 2 : 1;
    char test[32];
    if (isnan(s->test_l2)) snprintf(test, sizeof test, "%10s", "-");
    else snprintf(test, sizeof test, "%10.4e", s->test_l2);
    if (p->step)
      printf("epoch %*lld/%lld  train one-step L2 %.4e  test rollout L2 %s  lr %.2e  %6.2f s  %7.1f samples/s\n", w,
             (long long)s->epoch, (long long)p->epochs, s->train_loss, test, s->lr, s->seconds, s->samples_per_s);
    else if (p->rollout)
      printf("epoch %*lld/%lld  train step L2 %.4e  full L2 %.4e  test full L2 %s  lr %.2e  %6.2f s  %7.1f samples/s\n",
             w, (long long)s->epoch, (long long)p->epochs, s->train_loss, s->train_l2, test, s->lr, s->seconds,
             s->samples_per_s);
    else
      printf("epoch %*lld/%lld  train %s %.4e  test L2 %s  lr %.2e  %6.2f s  %7.1f samples/s\n", w, (long long)s->epoch,
             (long long)p->epochs, p->train_name, s->train_loss, test, s->lr, s->seconds, s->samples_per_s);
    fflush(stdout);
  }
  return train_stop_requested ? 1 : 0;
}

static int file_exists(const char *path);

/* Run the trainer to its last epoch with the progress callback cb(user), then report on
 * stdout / stderr: a failure (with where the last good checkpoint stands after a divergence),
 * nothing to do, a stop on a signal, or the saved checkpoint with *last_test (which cb keeps),
 * named "<test_what> relative L2". Returns the exit status: 0, or 1 on a failure or a stop. */
static int run_and_report(opl_trainer *t, opl_train_progress_fn cb, void *user, const double *last_test,
                          const char *test_what, int64_t epochs, const char *out, const char *csv) {
  opl_err e = {0};
  int64_t before = opl_trainer_epochs_done(t);
  int st = opl_trainer_run(t, cb, user, &e);
  int64_t done = opl_trainer_epochs_done(t);
  if (st) {
    fprintf(stderr, "opl train: %s\n", msg_of(&e));
    if (st == OPL_ERR_NONFINITE) {
      int64_t ck = -1;
      opl_trainer_config kc;
      if (file_exists(out) && !opl_trainer_read_config(out, &kc, NULL, &ck, NULL, 0, NULL))
        fprintf(stderr, "opl train: the last good checkpoint '%s' (epoch %lld) is kept; nothing was written after it\n",
                out, (long long)ck);
      else
        fprintf(stderr, "opl train: no checkpoint had been written yet (use --checkpoint-every k to keep one)\n");
    }
    return 1;
  }
  if (done == before && done >= epochs) {
    printf("opl train: '%s' already holds %lld epochs (>= --epochs %lld): nothing to do\n", out, (long long)done,
           (long long)epochs);
    return 0;
  }
  if (train_stop_requested) {
    printf("opl train: stopped after epoch %lld; checkpoint '%s' written (continue with --resume)\n", (long long)done, out);
    return 1;
  }
  printf("opl train: saved '%s' (epoch %lld) and metrics '%s'; %s relative L2 %.4e\n", out, (long long)done, csv,
         test_what, *last_test);
  opl_dist_grads_stats ds;
  if (opl_trainer_dist_stats(t, &ds) && ds.steps > 0) cli_print_dist_line("opl train", &ds);
  return 0;
}

void cli_print_dist_line(const char *who, const opl_dist_grads_stats *ds) {
  printf("%s: %d ranks; gradients summed in %d buckets of %.3g MB in all per step, %.0f%% of them started "
         "during backward; %.3f s of the steps in the sums (%.3f s waiting), %.3f ms per step\n",
         who, opl_dist_size(), ds->buckets, (double)ds->bytes / 1e6,
         100.0 * ds->started_early / ((double)ds->steps * ds->buckets), ds->comm_seconds, ds->wait_seconds,
         1e3 * ds->comm_seconds / (double)ds->steps);
}

static int file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static int train_main(int argc, char **argv);
static int train_node_main(int argc, char **argv);

/* The options every verb shares, as parsed (ntrain, ntest < 0: by default). */
typedef struct train_common {
  int64_t ntrain, ntest, batch, sub, epochs, step_size, seed, every_ckpt;
  double lr, wd, gamma, clip;
  int shuffle, cache;
  const char *data, *out;
} train_common;

/* Fill the split, batch, sub-sampling, optimizer, StepLR, clipping, seed and checkpoint fields of
 * tc from o, for a data set of N samples: the test samples default to min(100, N / 5), at least
 * 1 when N >= 2, the training samples to the rest. The other fields of tc are left alone. */
static void fill_trainer_config(opl_trainer_config *tc, int64_t N, const train_common *o) {
  int64_t ntest = o->ntest, ntrain = o->ntrain;
  if (ntest < 0) ntest = N / 5 < 100 ? N / 5 : 100;
  if (ntest < 1 && N >= 2) ntest = 1;
  if (ntrain < 0) ntrain = N - ntest;
  tc->ntrain = ntrain;
  tc->ntest = ntest;
  tc->batch = o->batch;
  tc->sub = (int)o->sub;
  tc->shuffle = o->shuffle;
  tc->cache = o->cache;
  tc->epochs = o->epochs;
  tc->lr = o->lr;
  tc->weight_decay = o->wd;
  tc->step_size = o->step_size;
  tc->gamma = o->gamma;
  tc->clip_grad = o->clip;
  tc->seed = (uint64_t)o->seed;
  tc->checkpoint = o->out;
  tc->checkpoint_every = o->every_ckpt;
  tc->dataset_name = o->data;
}

int cli_train(int argc0, char **argv0) {
  int argc;
  char **argv = rewrite_short_out(argc0, argv0, &argc);
  if (!argv) return 1;
  int rc = argc > 1 && !strcmp(argv[1], "node")   ? train_node_main(argc, argv)
           : argc > 1 && !strcmp(argv[1], "pinn") ? cli_train_pinn(argc, argv)
                                                  : train_main(argc, argv);
  free(argv);
  return rc;
}

/* The architecture flags of the model kinds other than the FNO, as parsed (NULL / -1: not given). */
typedef struct train_arch_flags {
  const char *preset, *iters, *pad;
  int64_t channels_u, layers;
  int has_layers;          /* --layers given, or a resumed run's */
  int64_t waves, hidden, hist; /* sinenet (waves, hidden -1: not given) */
  double mult;                 /* sinenet (-1: not given) */
} train_arch_flags;

/* MgNO's configuration: the preset (or the resumed run's configuration, stored: NULL when not
 * resuming), then the flags. 0, or 2 after a message. */
static int mgno_arch(const train_arch_flags *f, const void *stored, void *config) {
  opl_mgno_config *mg = config;
  opl_err me = {0};
  if (stored && !f->preset) memcpy(mg, stored, sizeof *mg);
  else if (opl_mgno_preset(f->preset ? f->preset : "darcy-rough", mg, &me)) {
    fprintf(stderr, "opl train: --preset: %s\n", me.msg);
    return 2;
  }
  if (f->has_layers) mg->layers = (int)(f->layers < 1 || f->layers > 1000 ? 0 : f->layers);
  if (f->channels_u != -1) mg->channels_u = f->channels_u;
  if (f->iters && opl_mgno_parse_iters(f->iters, mg, &me)) {
    fprintf(stderr, "opl train: --num-iteration: %s\n", me.msg);
    return 2;
  }
  if (f->pad && !strcmp(f->pad, "zeros")) mg->pad = OPL_PAD_ZERO;
  else if (f->pad && !strcmp(f->pad, "circular")) mg->pad = OPL_PAD_CIRCULAR;
  else if (f->pad && !strcmp(f->pad, "reflect")) mg->pad = OPL_PAD_REFLECT;
  else if (f->pad) {
    fprintf(stderr, "opl train: --padding expects zeros, circular or reflect, got '%s'\n", f->pad);
    return 2;
  }
  if (opl_mgno_check_config(mg, &me)) {
    fprintf(stderr, "opl train: %s\n", me.msg);
    return 2;
  }
  return 0;
}

/* The paper's SineNet multiplier for K waves (the authors' registry), or 0. */
static double sinenet_paper_mult(int64_t waves) {
  switch (waves) {
    case 1: return 2.0;
    case 2: return 1.8075;
    case 4: return 1.611;
    case 6: return 1.5;
    case 8: return 1.425;
    default: return 0;
  }
}

/* SineNet's configuration: the preset (or the resumed run's configuration, stored), then the
 * flags; --waves without --mult takes the paper's multiplier for that K. The input channels are
 * the history frames (set again from the task by the trainer). 0, or 2 after a message. */
static int sinenet_arch(const train_arch_flags *f, const void *stored, void *config) {
  opl_sinenet_config *sc = config;
  opl_err e = {0};
  double mult = f->mult;
  if (stored && !f->preset) memcpy(sc, stored, sizeof *sc);
  else if (opl_sinenet_preset(f->preset ? f->preset : "ns-k1", sc, &e)) {
    fprintf(stderr, "opl train: --preset: %s\n", e.msg);
    return 2;
  }
  if (f->waves != -1) {
    if (f->waves < 1 || f->waves > OPL_SINENET_MAX_WAVES) {
      fprintf(stderr, "opl train: --waves expects 1..%d, got %lld\n", OPL_SINENET_MAX_WAVES, (long long)f->waves);
      return 2;
    }
    if (mult == -1 && f->waves != sc->waves && (mult = sinenet_paper_mult(f->waves)) == 0) {
      fprintf(stderr, "opl train: --waves %lld: the paper gives no multiplier for it; give --mult\n",
              (long long)f->waves);
      return 2;
    }
    sc->waves = (int)f->waves;
  }
  if (f->hidden != -1) sc->hidden = f->hidden;
  if (mult != -1) sc->mult = mult;
  if (f->pad && !strcmp(f->pad, "zeros")) sc->pad = OPL_PAD_ZERO;
  else if (f->pad && !strcmp(f->pad, "circular")) sc->pad = OPL_PAD_CIRCULAR;
  else if (f->pad) {
    fprintf(stderr, "opl train: --padding expects circular or zeros, got '%s'\n", f->pad);
    return 2;
  }
  sc->in_channels = f->hist;
  if (opl_sinenet_check_config(sc, &e)) {
    fprintf(stderr, "opl train: %s\n", e.msg);
    return 2;
  }
  return 0;
}

/* A kind's training recipe: the defaults of the common options where they differ from the FNO
 * paper's (opl_trainer_defaults; the FNO and MgNO rows have none). */
typedef struct train_recipe {
  int64_t epochs, batch, warmup;
  double lr, wd, warmup_start_lr, eta_min;
  const char *optimizer, *schedule, *loss;
} train_recipe;

/* SineNet's: the authors' navierstokes2d.yaml (AdamW lr 2e-4, weight decay 1e-5, 5 warmup epochs
 * from 1e-7 then cosine to 1e-7 per epoch over 50 epochs, batch 8) and their training criterion
 * "scaledl2". */
static const train_recipe sinenet_recipe = {.epochs = 50, .batch = 8, .warmup = 5, .lr = 2e-4, .wd = 1e-5,
                                            .warmup_start_lr = 1e-7, .eta_min = 1e-7, .optimizer = "adamw",
                                            .schedule = "warmup-cosine", .loss = "l2-field"};

/* The model kinds opl train builds, by kind: arch makes the kind's configuration from the flags
 * (NULL: the FNO, whose configuration depends on the task and is made from --modes, --width,
 * --layers, --proj once the data set is open); flags names the flags only that kind takes (and
 * names, without dashes, lists them for the check that no other kind's flag was given);
 * only2d: the kind maps 2-D fields to 2-D fields only (a -> u, or frames -> next frame; no
 * 1-D data, no space-time task); step: the kind trains on the one-step task from a random
 * start (train/task.h, STEP: --hist frames -> the next), the task flags of the FNO (--dim,
 * --T-in, --T, --task, --target-time, ...) refused; recipe: the kind's defaults of the common
 * options (NULL: the FNO paper's); norm: the name of --normalize's Gaussian value ("gaussian"
 * per point, "field" for the step task's per-field statistics). A kind slots in with a row. */
typedef struct train_arch {
  const opl_model_kind *kind;
  int (*arch)(const train_arch_flags *f, const void *stored, void *config);
  const char *flags;
  const char *const *names;
  int only2d, step;
  const train_recipe *recipe;
  const char *norm;
} train_arch;

static const char *const mgno_flags[] = {"preset", "channels-u", "num-iteration", "padding", NULL};
static const char *const sinenet_flags[] = {"preset", "waves", "hidden", "mult", "padding", "hist", NULL};
/* The FNO's architecture and task flags (not a step kind's). */
static const char *const fno_task_flags[] = {"modes", "width", "proj", "dim", "T-in", "T", "task", "target-time",
                                             "pde-weight", "ic-weight", NULL};

static const train_arch train_archs[] = {
    {&opl_fno_kind, NULL, NULL, NULL, 0, 0, NULL, "gaussian"},
    {&opl_mgno_kind, mgno_arch, "--preset, --channels-u, --num-iteration and --padding", mgno_flags, 1, 0, NULL,
     "gaussian"},
    {&opl_sinenet_kind, sinenet_arch, "--preset, --waves, --hidden, --mult, --padding and --hist", sinenet_flags, 1, 1,
     &sinenet_recipe, "field"},
};

/* 1 when the name (no dashes) is in the NULL-terminated list. */
static int in_list(const char *const *list, const char *name) {
  for (; list && *list; list++)
    if (!strcmp(*list, name)) return 1;
  return 0;
}

/* The row of kind k, or NULL when opl train cannot build it. */
static const train_arch *train_arch_of(const opl_model_kind *k) {
  for (size_t i = 0; i < sizeof train_archs / sizeof train_archs[0]; i++)
    if (train_archs[i].kind == k) return &train_archs[i];
  return NULL;
}

static int train_main(int argc, char **argv) {
  /* Options; -1 (or NULL) means "by the case" where the default depends on --dim. */
  /* static: the strings cli_parse copies stay reachable until exit */
  static const char *data, *out, *normalize, *target_time_s, *mg_preset, *mg_iters, *mg_pad, *task_s;
  data = out = normalize = target_time_s = mg_preset = mg_iters = mg_pad = task_s = NULL;
  int64_t mg_cu = -1, warmup = 0, sched_epochs = 0;
  static const char *loss_s, *optim_s, *sched_s, *sunit_s;
  loss_s = optim_s = sched_s = sunit_s = NULL;
  double pct_start = 0.3, div_factor = 25, final_div_factor = 1e4, warmup_start_lr = 0, eta_min = 0;
  opl_model_spec stored = {0}; /* --resume: the stored kind and configuration */
  int64_t ntrain = -1, ntest = -1, epochs = 500, batch = 20, step_size = 100, modes = -1, width = -1, layers = 4,
          proj = 128, sub = 1, dim = 0, t_in = -1, T = -1, seed = 0, every_ckpt = 0, threads = 0, every = 1;
  double lr = 1e-3, gamma = 0.5, wd = 1e-4, target_time = NAN, clip = 0, pde_weight = 0, ic_weight = 0;
  int resume = 0, quiet = 0, shuffle = 1, cache = 1;
  int64_t sn_waves = -1, sn_hidden = -1, hist = 4;
  double sn_mult = -1;

  /* The kind's recipe (opl train MODEL ...) is the default of the common options. */
  const opl_model_kind *pre_kind = argc > 1 ? opl_model_kind_find(argv[1]) : NULL;
  const train_arch *pre = pre_kind ? train_arch_of(pre_kind) : NULL;
  if (pre && pre->recipe) {
    const train_recipe *r = pre->recipe;
    epochs = r->epochs, batch = r->batch, warmup = r->warmup, lr = r->lr, wd = r->wd;
    warmup_start_lr = r->warmup_start_lr, eta_min = r->eta_min;
    optim_s = r->optimizer, sched_s = r->schedule, loss_s = r->loss;
  }

  /* --resume: the stored configuration becomes the default of every option. */
  const char *out_pre = find_arg(argc, argv, "out");
  char stored_data[1024] = "";
  if (has_flag(argc, argv, "resume") && out_pre && file_exists(out_pre)) {
    opl_trainer_config rc;
    opl_model_spec rs;
    opl_err e;
    if (opl_trainer_read_config(out_pre, &rc, &rs, NULL, stored_data, sizeof stored_data, &e)) {
      fprintf(stderr, "opl train: --resume: %s\n", msg_of(&e));
      return 1;
    }
    if (!train_arch_of(rs.kind)) {
      fprintf(stderr, "opl train: --resume: '%s' holds a model of kind '%s', which opl train cannot build\n", out_pre,
              rs.kind->name);
      return 1;
    }
    opl_fno_config rm = opl_fno_config_reference(OPL_FNO_REF_2D);
    if (rs.kind == &opl_fno_kind) memcpy(&rm, rs.config.bytes, sizeof rm);
    else stored = rs;
    data = stored_data;
    ntrain = rc.ntrain, ntest = rc.ntest, epochs = rc.epochs, batch = rc.batch, step_size = rc.step_size;
    lr = rc.lr, gamma = rc.gamma, wd = rc.weight_decay, clip = rc.clip_grad, sub = rc.sub, seed = (int64_t)rc.seed;
    shuffle = rc.shuffle;
    normalize = rc.normalize == OPL_NORMALIZE_GAUSSIAN   ? train_arch_of(rs.kind)->norm
                : rc.normalize == OPL_NORMALIZE_SCALAR_U ? "scalar-u"
                                                         : "none";
    if (rc.task.kind == OPL_TASK_STEP) hist = rc.task.t_in;
    modes = rm.modes[0], width = rm.width, layers = rm.layers, proj = rm.proj_channels;
    if (stored.kind == &opl_mgno_kind) {
      const opl_mgno_config *mr = (const opl_mgno_config *)stored.config.bytes;
      layers = mr->layers, mg_cu = mr->channels_u;
    }
    loss_s = opl_loss_name((opl_loss_kind)rc.loss), optim_s = rc.adamw ? "adamw" : "adam";
    sched_s = opl_schedule_name(rc.schedule), sunit_s = rc.sched_per_step ? "step" : "epoch";
    pct_start = rc.pct_start, warmup = rc.warmup, sched_epochs = rc.sched_epochs;
    div_factor = rc.div_factor, final_div_factor = rc.final_div_factor;
    warmup_start_lr = rc.warmup_start_lr, eta_min = rc.eta_min;
    dim = rc.task.kind == OPL_TASK_ROLLOUT || rc.task.kind == OPL_TASK_ONESTEP ? 2 : rm.d; /* the space-time model's d is the data's + 1 */
    if (rc.task.kind == OPL_TASK_ROLLOUT || rc.task.kind == OPL_TASK_ONESTEP) task_s = opl_task_name(rc.task.kind);
    pde_weight = rc.pde_weight, ic_weight = rc.ic_weight;
    if (rc.task.kind != OPL_TASK_STATIC) t_in = rc.task.t_in, T = rc.task.t_out;
    /* a one-shot 2-D model on multi-frame data was trained on a chosen frame */
    if (rc.task.kind == OPL_TASK_STATIC) target_time = -(double)(rc.task.target_frame + 1); /* frame marker */
  }
  const cli_opt opts[] = {
      {"data", CLI_STRING, &data, "data set file (opl-dataset, FNO .mat v7.3 or PDEBench HDF5)"},
      {"out", CLI_STRING, &out, "-o, --out MODEL.h5: the model / checkpoint file (metrics go to MODEL.csv)"},
      {"ntrain", CLI_INT, &ntrain, "training samples: the first N of the file (-1: all but the test samples)"},
      {"ntest", CLI_INT, &ntest, "test samples: the last M of the file (-1: min(100, N/5))"},
      {"epochs", CLI_INT, &epochs, "epochs (a resumed run continues up to this total)"},
      {"batch", CLI_INT, &batch, "batch size"},
      {"lr", CLI_DOUBLE, &lr, "Adam learning rate"},
      {"weight-decay", CLI_DOUBLE, &wd, "Adam L2 weight decay (torch.optim.Adam form; decoupled with --optimizer adamw)"},
      {"loss", CLI_STRING, &loss_s, "l2 (relative L2 per sample, default; sinenet: l2-field), h1 (relative H1, HsLoss "
                                    "k = 1; 2-D a -> u) or l2-field (relative L2 per field of the normalized fields, "
                                    "SineNet's scaled L2)"},
      {"optimizer", CLI_STRING, &optim_s, "adam (weight decay added to the gradient, default) or adamw (decoupled)"},
      {"schedule", CLI_STRING, &sched_s, "step (StepLR, default), onecycle (OneCycleLR, --lr the maximum), cosine (with "
                                         "--warmup from 0, to 0) or warmup-cosine (LinearWarmupCosineAnnealingLR: "
                                         "--warmup from --warmup-start-lr to --lr, cosine to --eta-min; sinenet's)"},
      {"schedule-unit", CLI_STRING, &sunit_s, "onecycle / cosine / warmup-cosine: advance per epoch (default) or per "
                                              "optimizer step"},
      {"pct-start", CLI_DOUBLE, &pct_start, "onecycle: fraction of the steps spent rising"},
      {"div-factor", CLI_DOUBLE, &div_factor, "onecycle: start at --lr / this (PyTorch's div_factor)"},
      {"final-div-factor", CLI_DOUBLE, &final_div_factor,
       "onecycle: end at --lr / div-factor / this (PyTorch's final_div_factor)"},
      {"warmup", CLI_INT, &warmup, "cosine / warmup-cosine: linear warmup length in the schedule's unit"},
      {"warmup-start-lr", CLI_DOUBLE, &warmup_start_lr, "warmup-cosine: the rate of the first step (sinenet: 1e-7)"},
      {"eta-min", CLI_DOUBLE, &eta_min, "warmup-cosine: the rate the cosine ends at (sinenet: 1e-7)"},
      {"schedule-epochs", CLI_INT, &sched_epochs, "onecycle / cosine / warmup-cosine: epochs the schedule spans (0: "
                                                  "--epochs; kept by --resume)"},
      {"step-size", CLI_INT, &step_size, "StepLR: multiply the learning rate by gamma every this many epochs"},
      {"gamma", CLI_DOUBLE, &gamma, "StepLR factor"},
      {"clip-grad", CLI_DOUBLE, &clip, "clip the global gradient norm to this (0: no clipping)"},
      {"modes", CLI_INT, &modes, "Fourier modes per axis (-1: 16 for 1-D, 12 for 2-D, 8 for 3-D)"},
      {"width", CLI_INT, &width, "channels of the Fourier layers (-1: 64 for 1-D, 32 for 2-D, 20 for time)"},
      {"layers", CLI_INT, &layers, "Fourier layers (mgno: MgNO layers, default the preset's)"},
      {"proj", CLI_INT, &proj, "hidden channels of the projection"},
      {"preset", CLI_STRING, &mg_preset, "mgno: " OPL_MGNO_PRESETS " (default darcy-rough); sinenet: "
                                         OPL_SINENET_PRESETS " (default ns-k1; its channels are set by the data)"},
      {"channels-u", CLI_INT, &mg_cu, "mgno: u-channels (-1: the preset's)"},
      {"num-iteration", CLI_STRING, &mg_iters, "mgno: [pre,post] smoothing per level, levels separated by ';'"},
      {"padding", CLI_STRING, &mg_pad, "mgno: zeros (Dirichlet), circular (periodic) or reflect; sinenet: circular or "
                                       "zeros (default: the preset's)"},
      {"waves", CLI_INT, &sn_waves, "sinenet: waves K (-1: the preset's)"},
      {"hidden", CLI_INT, &sn_hidden, "sinenet: hidden width H (-1: the preset's)"},
      {"mult", CLI_DOUBLE, &sn_mult, "sinenet: width multiplier m, widths int(H m^k) (-1: the preset's, or the paper's "
                                     "for --waves)"},
      {"hist", CLI_INT, &hist, "sinenet: history frames T fed to the model (the one-step task from a random start)"},
      {"task", CLI_STRING, &task_s, "time stepping on 2-D data: rollout (trained through the T-step rollout; fno's "
                                    "default) or onestep (trained on the T one-step pairs of each trajectory; mgno's "
                                    "default); both are tested by the T-step rollout"},
      {"sub", CLI_INT, &sub, "spatial sub-sampling: train at resolution X / sub"},
      {"dim", CLI_INT, &dim, "1: FNO-1d; 2: FNO-2d (time stepping on multi-frame data); 3: FNO-3d (0: the data's)"},
      {"target-time", CLI_STRING, &target_time_s, "one-shot target: the snapshot at this time (default: the last)"},
      {"T-in", CLI_INT, &t_in, "time tasks: input frames (-1: 10 on 2-D data; 0 on 1-D data: from the initial state, "
                               "t = 0 predicted too)"},
      {"T", CLI_INT, &T, "time tasks: frames predicted (rollout steps for --dim 2; -1: 40 on 2-D data, every stored "
                         "frame after the input on 1-D data)"},
      {"pde-weight", CLI_DOUBLE, &pde_weight, "space-time task: add this times the mean square PDE residual of the "
                                              "prediction to the loss (PINO)"},
      {"ic-weight", CLI_DOUBLE, &ic_weight, "space-time task with --T-in 0: add this times the mean square error of the "
                                            "predicted frame t = 0"},
      {"normalize", CLI_STRING, &normalize, "none, gaussian (per-point, input and target; sinenet: field, one mean and std "
                                            "per field) or scalar-u (the target by one scalar mean and std, the input "
                                            "raw); default: the reference script's"},
      {"seed", CLI_INT, &seed, "seed of the initialization and of the shuffling"},
      {"shuffle", CLI_FLAG, &shuffle, "reshuffle the training set every epoch (--shuffle=false: keep the order)"},
      {"cache", CLI_FLAG, &cache, "read the selected data into memory once (--cache=false: read each batch from the file)"},
      {"checkpoint-every", CLI_INT, &every_ckpt, "also write the checkpoint every k epochs (0: only at the end)"},
      {"resume", CLI_FLAG, &resume, "continue the run saved in MODEL.h5 (its settings are the defaults)"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"every", CLI_INT, &every, "print every this many epochs (and the first and last)"},
      {"quiet", CLI_FLAG, &quiet, "print only the summary"},
  };
  char *pos[2];
  int npos;
  int rc = cli_parse("train", "fno --data FILE.h5 -o MODEL.h5 [options]", argc, argv, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  char kinds[128];
  const opl_model_kind *kind = npos >= 1 ? opl_model_kind_find(pos[0]) : NULL;
  if (!kind) {
    fprintf(stderr, "opl train: which model? usage: opl train MODEL --data FILE.h5 -o MODEL.h5 [options], MODEL one of "
                    "%s%s%s%s\n",
            opl_model_kind_names(kinds, sizeof kinds), npos ? " (got '" : "", npos ? pos[0] : "", npos ? "')" : "");
    return 2;
  }
  const train_arch *arch = train_arch_of(kind);
  if (!arch) {
    char built[128] = "";
    for (size_t i = 0, n = 0; i < sizeof train_archs / sizeof train_archs[0] && n < sizeof built; i++)
      n += (size_t)snprintf(built + n, sizeof built - n, "%s%s", i ? ", " : "", train_archs[i].kind->name);
    fprintf(stderr, "opl train: model '%s' has no architecture flags on the command line (opl train builds: %s)\n",
            kind->name, built);
    return 2;
  }
  if (arch != pre && arch->recipe) {
    fprintf(stderr, "opl train: give the model first (opl train %s --data FILE.h5 ...): its defaults depend on it\n",
            kind->name);
    return 2;
  }
  /* A refusal of another kind's flags, then the kind's own (the resumed run's configuration first) */
  for (int i = 1; i < argc; i++) {
    char name[64];
    if (strncmp(argv[i], "--", 2)) continue;
    snprintf(name, sizeof name, "%.*s", (int)strcspn(argv[i] + 2, "="), argv[i] + 2);
    if (arch->step && in_list(fno_task_flags, name)) {
      fprintf(stderr, "opl train: --%s is not %s's: it trains on the one-step task (--hist frames -> the next)\n", name,
              kind->name);
      return 2;
    }
    int foreign = 0;
    for (size_t k = 0; k < sizeof train_archs / sizeof train_archs[0]; k++)
      foreign |= in_list(train_archs[k].names, name) && !in_list(arch->names, name);
    if (!foreign) continue;
    for (size_t k = 0; k < sizeof train_archs / sizeof train_archs[0]; k++)
      if (in_list(train_archs[k].names, name))
        fprintf(stderr, "opl train: %s are %s's (opl train %s), not %s's\n", train_archs[k].flags,
                train_archs[k].kind->name, train_archs[k].kind->name, kind->name);
    return 2;
  }
  opl_model_spec spec = {.kind = kind};
  if (arch->arch) {
    const train_arch_flags af = {.preset = mg_preset, .iters = mg_iters, .pad = mg_pad, .channels_u = mg_cu,
                                 .layers = layers, .has_layers = has_flag(argc, argv, "layers") || stored.kind == kind,
                                 .waves = sn_waves, .hidden = sn_hidden, .mult = sn_mult, .hist = hist};
    int st = arch->arch(&af, stored.kind == kind ? (const void *)stored.config.bytes : NULL, spec.config.bytes);
    if (st) return st;
  }
  if (npos > 1) {
    fprintf(stderr, "opl train: unexpected argument '%s'\n", pos[1]);
    return 2;
  }
  if (!data || !*data) {
    fprintf(stderr, "opl train: --data FILE.h5 is required\n");
    return 2;
  }
  if (!out || !*out) {
    fprintf(stderr, "opl train: -o MODEL.h5 is required\n");
    return 2;
  }
  char csv[4096] = "";
  opl_metrics_csv_path(out, csv, sizeof csv, NULL);
  const cli_file outs[] = {{"-o", out}, {"its metrics log", csv}}, ins[] = {{"--data", data}};
  if (cli_outputs_check("train", outs, 2, ins, 1)) return 2;
  if (resume && !file_exists(out)) {
    fprintf(stderr, "opl train: --resume: '%s' does not exist (nothing to resume; drop --resume to start)\n", out);
    return 1;
  }
  int norm = OPL_NORMALIZE_AUTO;
  if (normalize) {
    if (!strcmp(normalize, "none")) norm = OPL_NORMALIZE_NONE;
    else if (!strcmp(normalize, arch->norm)) norm = OPL_NORMALIZE_GAUSSIAN;
    else if (!arch->step && !strcmp(normalize, "scalar-u")) norm = OPL_NORMALIZE_SCALAR_U;
    else {
      fprintf(stderr, "opl train: --normalize expects %s, got '%s'\n",
              arch->step ? "field or none" : "none or gaussian or scalar-u", normalize);
      return 2;
    }
  }
  if (dim < 0 || dim > 3) {
    fprintf(stderr, "opl train: --dim expects 1, 2 or 3, got %lld\n", (long long)dim);
    return 2;
  }
  struct { const char *name; int64_t v, lo; } pos_ints[] = {
      {"epochs", epochs, 1}, {"batch", batch, 1}, {"step-size", step_size, 1}, {"layers", layers, 1},
      {"proj", proj, 1}, {"sub", sub, 1}, {"T-in", t_in, -1}, {"T", T, -1}, {"checkpoint-every", every_ckpt, 0},
      {"threads", threads, 0}, {"every", every, 1}, {"seed", seed, 0}, {"hist", hist, 1}};
  for (size_t i = 0; i < sizeof pos_ints / sizeof pos_ints[0]; i++)
    if (pos_ints[i].v < pos_ints[i].lo) {
      fprintf(stderr, "opl train: --%s expects an integer >= %lld, got %lld\n", pos_ints[i].name,
              (long long)pos_ints[i].lo, (long long)pos_ints[i].v);
      return 2;
    }
  if ((modes != -1 && modes < 1) || (width != -1 && width < 1) || modes > 1 << 20 || width > 1 << 20 ||
      layers > OPL_FNO_MAX_LAYERS || sub > 1 << 30) {
    fprintf(stderr, "opl train: --modes and --width expect integers >= 1, --layers 1..%d (got modes %lld, width %lld, "
                    "layers %lld)\n", OPL_FNO_MAX_LAYERS, (long long)modes, (long long)width, (long long)layers);
    return 2;
  }
  if (T == 0) {
    fprintf(stderr, "opl train: --T expects an integer >= 1 (or -1: by the data), got 0\n");
    return 2;
  }
  if (!(isfinite(pde_weight) && pde_weight >= 0) || !(isfinite(ic_weight) && ic_weight >= 0)) {
    fprintf(stderr, "opl train: --pde-weight and --ic-weight expect finite values >= 0 (got %g, %g)\n", pde_weight,
            ic_weight);
    return 2;
  }
  if (!(lr >= 0) || !(gamma > 0) || !(wd >= 0) || !(clip >= 0)) {
    fprintf(stderr, "opl train: --lr, --weight-decay and --clip-grad expect values >= 0 and --gamma > 0\n");
    return 2;
  }
  if ((loss_s && opl_loss_parse(loss_s) < 0) || (optim_s && strcmp(optim_s, "adam") && strcmp(optim_s, "adamw")) ||
      (sched_s && opl_schedule_parse(sched_s) < 0) || (sunit_s && strcmp(sunit_s, "epoch") && strcmp(sunit_s, "step"))) {
    fprintf(stderr, "opl train: --loss expects l2|h1|l2-field, --optimizer adam|adamw, --schedule "
                    "step|onecycle|cosine|warmup-cosine, --schedule-unit epoch|step (got %s, %s, %s, %s)\n",
            loss_s ? loss_s : "-", optim_s ? optim_s : "-", sched_s ? sched_s : "-", sunit_s ? sunit_s : "-");
    return 2;
  }
  if (!(pct_start > 0 && pct_start < 1) || warmup < 0 || sched_epochs < 0) {
    fprintf(stderr, "opl train: --pct-start expects a value in (0, 1), --warmup and --schedule-epochs integers >= 0\n");
    return 2;
  }
  if (!(isfinite(div_factor) && div_factor > 0 && isfinite(final_div_factor) && final_div_factor > 0)) {
    fprintf(stderr, "opl train: --div-factor and --final-div-factor expect finite values > 0 (got %g, %g)\n", div_factor,
            final_div_factor);
    return 2;
  }
  if (!(isfinite(warmup_start_lr) && warmup_start_lr >= 0)) {
    fprintf(stderr, "opl train: --warmup-start-lr expects a finite value >= 0, got %g\n", warmup_start_lr);
    return 2;
  }
  if (!(isfinite(eta_min) && eta_min >= 0)) {
    fprintf(stderr, "opl train: --eta-min expects a finite value >= 0, got %g\n", eta_min);
    return 2;
  }
  if (target_time_s) {
    char *end;
    errno = 0;
    target_time = strtod(target_time_s, &end);
    if (errno || end == target_time_s || *end || !isfinite(target_time)) {
      fprintf(stderr, "opl train: --target-time expects a number, got '%s'\n", target_time_s);
      return 2;
    }
  }
  if (threads > 0) opl_set_num_threads((int)threads);

  opl_err e = {0};
  opl_ds *ds = opl_ds_open(data, NULL, &e);
  if (!ds) {
    fprintf(stderr, "opl train: cannot read the data set: %s\n", e.msg);
    return 1;
  }
  const opl_ds_info *info = opl_ds_get_info(ds);
  int sdim = info->dims.sdim;
  int64_t N = info->dims.n;
  if (arch->step && (sdim != 2 || info->dims.t <= hist)) {
    fprintf(stderr, "opl train: %s steps 2-D frames: '%s' holds %d-D data with %lld frames, the task needs 2-D frames "
                    "and more than --hist %lld of them\n", kind->name, data, sdim, (long long)info->dims.t,
            (long long)hist);
    opl_ds_close(&ds);
    return 2;
  }
  if (dim == 0) dim = sdim;
  if ((dim == 1 && sdim != 1) || (dim == 3 && sdim != 2)) {
    fprintf(stderr, "opl train: --dim %lld does not fit '%s', which holds %d-D data\n", (long long)dim, data, sdim);
    opl_ds_close(&ds);
    return 2;
  }
  if (dim == 2 && sdim == 1 && info->dims.t < 2) {
    fprintf(stderr, "opl train: --dim 2 on 1-D data is the space-time task over (x, t), which needs a trajectory; '%s' "
                    "stores %lld frame (make one with opl generate --nt K)\n", data, (long long)info->dims.t);
    opl_ds_close(&ds);
    return 2;
  }
  int spacetime = dim == sdim + 1;
  opl_mgno_config *mgc = kind == &opl_mgno_kind ? (opl_mgno_config *)spec.config.bytes : NULL;
  if (mgc && mgc->variant == OPL_MGNO_NS && sdim == 2 && stored.kind != kind) {
    /* the NS variant's LayerNorms are sized for the training grid */
    int64_t nx = 0, ny = 0;
    if (opl_ds_check_sub(ds, (int)sub, &nx, &ny, &e)) {
      fprintf(stderr, "opl train: %s\n", e.msg);
      opl_ds_close(&ds);
      return 2;
    }
    mgc->ln_res[0] = nx, mgc->ln_res[1] = ny;
    if (opl_mgno_check_config(mgc, &e)) {
      fprintf(stderr, "opl train: %s\n", e.msg);
      opl_ds_close(&ds);
      return 2;
    }
  }
  if (task_s && strcmp(task_s, "rollout") && strcmp(task_s, "onestep")) {
    fprintf(stderr, "opl train: --task expects rollout or onestep, got '%s'\n", task_s);
    opl_ds_close(&ds);
    return 2;
  }
  int onestep = task_s ? !strcmp(task_s, "onestep") : kind == &opl_mgno_kind;
  if (t_in < 0) t_in = spacetime && sdim == 1 ? 0 : onestep ? 1 : 10; /* onestep: MgNO's navier.py, 1 -> 1, T 10 */
  if (T < 0) T = spacetime && sdim == 1 ? info->dims.t - t_in : onestep ? 10 : 40;
  if (t_in == 0 && !spacetime) {
    fprintf(stderr, "opl train: --T-in 0 (from the initial state) is for the space-time task (--dim %d on this data)\n",
            sdim + 1);
    opl_ds_close(&ds);
    return 2;
  }
  if ((pde_weight > 0 || ic_weight > 0) && !spacetime) {
    fprintf(stderr, "opl train: --pde-weight and --ic-weight need the space-time task (a model over space and time: "
                    "--dim %d on this %d-D data), not %s\n", sdim + 1, sdim,
            dim == 1 || (dim == 2 && (info->dims.t == 1 || !isnan(target_time))) ? "a one-shot model a -> u(T)"
                                                                                 : "time stepping");
    opl_ds_close(&ds);
    return 2;
  }
  opl_trainer_config tc = opl_trainer_defaults();
  int have_target = !isnan(target_time);
  if (arch->step) {
    tc.task = (opl_task){.kind = OPL_TASK_STEP, .t_in = hist, .t_out = 1};
  } else if (!spacetime && (dim == 1 || (dim == 2 && (info->dims.t == 1 || have_target)))) {
    tc.task.kind = OPL_TASK_STATIC;
    tc.task.target_frame = -1;
    if (have_target && target_time < 0 && resume) {
      tc.task.target_frame = (int64_t)(-target_time) - 1; /* the frame stored in the checkpoint */
    } else if (have_target) {
      int64_t best = -1;
      double bd = INFINITY;
      for (int64_t j = 0; info->t && j < info->dims.t; j++)
        if (fabs(info->t[j] - target_time) < bd) bd = fabs(info->t[j] - target_time), best = j;
      double dt = info->t && info->dims.t > 1 ? fabs(info->t[1] - info->t[0]) : fabs(target_time) + 1;
      if (!info->t || best < 0 || bd > 1e-6 * dt) {
        if (info->t)
          fprintf(stderr, "opl train: --target-time %g: '%s' has no snapshot at that time (%lld snapshots, t = %g .. %g)\n",
                  target_time, data, (long long)info->dims.t, info->t[0], info->t[info->dims.t - 1]);
        else if (info->t_ps)
          fprintf(stderr, "opl train: --target-time %g: the snapshot times of '%s' differ per sample (dataset t [N, T]): "
                  "no one frame holds that time\n", target_time, data);
        else
          fprintf(stderr, "opl train: --target-time %g: '%s' stores no times (dataset t)\n", target_time, data);
        opl_ds_close(&ds);
        return 2;
      }
      tc.task.target_frame = best;
    }
  } else {
    tc.task.kind = spacetime ? OPL_TASK_SPACETIME : onestep ? OPL_TASK_ONESTEP : OPL_TASK_ROLLOUT;
    tc.task.t_in = t_in;
    tc.task.t_out = T;
  }
  /* The reference configuration of the case, then the flags. */
  if (task_s && tc.task.kind != OPL_TASK_ROLLOUT && tc.task.kind != OPL_TASK_ONESTEP) {
    fprintf(stderr, "opl train: --task %s is for time stepping on 2-D trajectories (--dim 2); '%s' gives a %s task\n",
            task_s, data, opl_task_name(tc.task.kind));
    opl_ds_close(&ds);
    return 2;
  }
  opl_fno_ref ref = tc.task.kind == OPL_TASK_ROLLOUT || tc.task.kind == OPL_TASK_ONESTEP ? OPL_FNO_REF_2D_TIME
                    : tc.task.kind == OPL_TASK_SPACETIME ? OPL_FNO_REF_3D
                    : dim == 2 ? OPL_FNO_REF_2D : OPL_FNO_REF_1D;
  if (tc.task.kind == OPL_TASK_SPACETIME && sdim == 1) ref = OPL_FNO_REF_2D;
  opl_fno_config mc = cli_fno_config(ref, modes, width, layers, proj);
  if (arch->only2d && (sdim != 2 || tc.task.kind == OPL_TASK_SPACETIME)) {
    fprintf(stderr, "opl train: %s maps a 2-D field to a 2-D field (a -> u, or frames -> next frame); '%s' gives a "
                    "%s task\n", kind->name, data, sdim != 2 ? "non-2-D" : "space-time");
    opl_ds_close(&ds);
    return 2;
  }
  if (tc.task.kind == OPL_TASK_SPACETIME && sdim == 1) {
    /* FNO-2d over (x, t): x is periodic (no padding), t is not: padded as fourier_3d.py pads its
     * time axis */
    mc.pad[0] = 0;
    mc.pad[1] = opl_fno_config_reference(OPL_FNO_REF_3D).pad[2];
  }
  fill_trainer_config(&tc, N,
                      &(train_common){.ntrain = ntrain, .ntest = ntest, .batch = batch, .sub = sub, .epochs = epochs,
                                      .step_size = step_size, .seed = seed, .every_ckpt = every_ckpt, .lr = lr,
                                      .wd = wd, .gamma = gamma, .clip = clip, .shuffle = shuffle, .cache = cache,
                                      .data = data, .out = out});
  tc.normalize = norm;
  tc.pde_weight = pde_weight;
  tc.ic_weight = ic_weight;
  tc.loss = loss_s ? opl_loss_parse(loss_s) : OPL_LOSS_L2;
  tc.adamw = optim_s && !strcmp(optim_s, "adamw");
  tc.schedule = sched_s ? opl_schedule_parse(sched_s) : OPL_SCHEDULE_STEP;
  tc.sched_per_step = sunit_s && !strcmp(sunit_s, "step");
  tc.pct_start = pct_start;
  tc.div_factor = div_factor;
  tc.final_div_factor = final_div_factor;
  tc.warmup = warmup;
  tc.warmup_start_lr = warmup_start_lr;
  tc.eta_min = eta_min;
  tc.sched_epochs = sched_epochs;
  opl_trainer *t = opl_trainer_new(&tc, kind, arch->arch ? (const void *)spec.config.bytes : (const void *)&mc, ds, &e);
  if (!t) {
    fprintf(stderr, "opl train: %s\n", msg_of(&e));
    opl_ds_close(&ds);
    return e.status == OPL_ERR_ARG || e.status == OPL_ERR_SHAPE ? 2 : 1;
  }
  if (resume && opl_trainer_resume(t, out, &e)) {
    fprintf(stderr, "opl train: --resume: %s\n", msg_of(&e));
    opl_trainer_free(&t);
    opl_ds_close(&ds);
    return 1;
  }
  const opl_model *m = opl_trainer_model(t);
  const opl_loader_info *li = opl_trainer_loader_info(t);
  char res[64], desc[256];
  if (li->sdim == 1) snprintf(res, sizeof res, "s = %lld", (long long)li->nx);
  else snprintf(res, sizeof res, "%lld x %lld", (long long)li->nx, (long long)li->ny);
  m->ops->describe(m->self, desc, sizeof desc);
  const opl_trainer_config *cfg = opl_trainer_get_config(t);
  char task[128];
  if (cfg->task.kind == OPL_TASK_STATIC)
    snprintf(task, sizeof task, "a -> u(t = %g)", info->t ? info->t[li->out_t0] : (double)li->out_t0);
  else if (cfg->task.kind == OPL_TASK_ROLLOUT)
    snprintf(task, sizeof task, "%lld frames -> next frame, rolled out %lld steps", (long long)t_in, (long long)T);
  else if (cfg->task.kind == OPL_TASK_ONESTEP)
    snprintf(task, sizeof task, "%lld frames -> next frame, trained on the %lld one-step pairs, tested rolled out %lld steps",
             (long long)t_in, (long long)T, (long long)T);
  else if (cfg->task.kind == OPL_TASK_STEP)
    snprintf(task, sizeof task, "%lld frames -> next frame from a random start; test: rollout over %lld frames",
             (long long)cfg->task.t_in, (long long)(info->dims.t - cfg->task.t_in));
  else if (t_in == 0) snprintf(task, sizeof task, "a -> u(t = 0 and %lld frames after) at once", (long long)T);
  else snprintf(task, sizeof task, "%lld frames -> next %lld frames at once", (long long)t_in, (long long)T);
  if (!quiet) {
    printf("opl train: %s, %lld parameters, %s\n", desc, (long long)opl_model_param_count(m), task);
    printf("  data '%s': %lld train + %lld test samples at %s (sub %lld)%s\n", data, (long long)cfg->ntrain,
           (long long)cfg->ntest, res, (long long)sub,
           opl_task_resolve_normalize(&cfg->task, li->sdim, cfg->normalize) == OPL_NORMALIZE_GAUSSIAN
               ? (opl_task_norm_kind(&cfg->task) == OPL_NORM_GAUSSIAN ? ", per-field normalization"
                                                                       : ", per-point Gaussian normalization")
           : cfg->normalize == OPL_NORMALIZE_SCALAR_U ? ", the target normalized by one scalar mean and std"
                                                      : "");
    char sched[128] = "";
    if (cfg->schedule == OPL_SCHEDULE_STEP)
      snprintf(sched, sizeof sched, "StepLR every %lld epochs x %g, ", (long long)step_size, gamma);
    else if (cfg->schedule == OPL_SCHEDULE_COSINE)
      snprintf(sched, sizeof sched, "%lld warmup %s then cosine, ", (long long)cfg->warmup,
               cfg->sched_per_step ? "steps" : "epochs");
    else if (cfg->schedule == OPL_SCHEDULE_WARMUP_COSINE)
      snprintf(sched, sizeof sched, "%lld warmup %s from %g then cosine to %g, ", (long long)cfg->warmup,
               cfg->sched_per_step ? "steps" : "epochs", cfg->warmup_start_lr, cfg->eta_min);
    printf("  %s lr %g%s (weight decay %g), %sbatch %lld, %lld epochs, %d thread%s, %s precision\n",
           cfg->adamw ? "AdamW" : "Adam", lr, cfg->schedule == OPL_SCHEDULE_ONECYCLE ? " (the maximum)" : "", wd, sched,
           (long long)batch, (long long)epochs, opl_get_num_threads(), opl_get_num_threads() == 1 ? "" : "s",
           OPL_PRECISION_NAME);
    if (cfg->adamw || cfg->loss != OPL_LOSS_L2 || cfg->schedule != OPL_SCHEDULE_STEP) {
      printf("  optimizer %s, loss %s, schedule %s%s (per %s)", cfg->adamw ? "adamw" : "adam",
             opl_loss_name((opl_loss_kind)cfg->loss), opl_schedule_name(cfg->schedule),
             cfg->schedule == OPL_SCHEDULE_STEP ? " (StepLR above)" : "", cfg->sched_per_step ? "step" : "epoch");
      if (cfg->schedule == OPL_SCHEDULE_ONECYCLE)
        printf(", pct_start %g, div_factor %g, final_div_factor %g", cfg->pct_start, cfg->div_factor,
               cfg->final_div_factor);
      if (cfg->schedule == OPL_SCHEDULE_WARMUP_COSINE)
        printf(", warmup_start_lr %g, eta_min %g", cfg->warmup_start_lr, cfg->eta_min);
      printf("\n");
    }
    if (resume) {
      printf("  resuming '%s' after epoch %lld\n", out, (long long)opl_trainer_epochs_done(t));
      opl_kv *kv = NULL;
      int nkv = 0;
      if (!opl_h5_read_attrs(out, "/", &kv, &nkv, NULL)) {
        const opl_kv *th = opl_kv_find(kv, nkv, "train.threads");
        if (th && th->type == OPL_KV_INT && th->i != opl_get_num_threads())
          printf("  note: the run was checkpointed with %lld threads, it continues with %d: the result can differ "
                 "in the last bits from an uninterrupted run\n", (long long)th->i, opl_get_num_threads());
        opl_kv_free(&kv, nkv);
      }
    }
    fflush(stdout);
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  train_print tp = {.epochs = epochs, .every = every, .rollout = opl_task_stepwise(&cfg->task),
                    .step = cfg->task.kind == OPL_TASK_STEP, .quiet = quiet,
                    .train_name = cfg->loss == OPL_LOSS_H1 ? "H1" : "L2", .last_test = NAN};
  int status = run_and_report(t, epoch_cb, &tp, &tp.last_test, tp.step ? "test rollout" : "test", epochs, out, csv);
  opl_trainer_free(&t);
  opl_ds_close(&ds);
  return status;
}

/* ---------------------------------------------------------------- opl train node */

typedef struct node_print {
  int64_t epochs, every;
  int quiet;
  double last_test;
} node_print;

static int node_epoch_cb(const opl_epoch_stats *s, void *user) {
  node_print *p = user;
  p->last_test = s->test_l2;
  if (!p->quiet && (s->epoch % p->every == 0 || s->epoch == p->epochs || s->epoch == 1)) {
    int w = p->epochs >= 1000 ? 4 : p->epochs >= 100 ? 3 : p->epochs >= 10 ? 2 : 1;
    char test[32];
    if (isnan(s->test_l2)) snprintf(test, sizeof test, "%10s", "-");
    else snprintf(test, sizeof test, "%10.4e", s->test_l2);
    printf("epoch %*lld/%lld  train L2 %.4e  test L2 %s  NFE/batch %.1f (accepted %.1f, rejected %.1f)  lr %.2e  "
           "%6.2f s\n",
           w, (long long)s->epoch, (long long)p->epochs, s->train_loss, test, s->nfe, s->accepted, s->rejected, s->lr,
           s->seconds);
    fflush(stdout);
  }
  return train_stop_requested ? 1 : 0;
}

/* --lambda L0[:L1]: two finite values >= 0; an exponential decay needs both > 0. 0 or 2 (printed). */
static int parse_lambda(const char *s, double *l0, double *l1) {
  char *end;
  errno = 0;
  *l0 = strtod(s, &end);
  int ok = !errno && end != s && isfinite(*l0) && *l0 >= 0;
  *l1 = *l0;
  if (ok && *end == ':') {
    const char *b = end + 1;
    *l1 = strtod(b, &end);
    ok = !errno && end != b && isfinite(*l1) && *l1 >= 0;
  }
  if (!ok || *end) {
    fprintf(stderr, "opl train: --lambda expects L0 or L0:L1 (numbers >= 0), got '%s'\n", s);
    return 2;
  }
  if (*l1 != *l0 && !(*l0 > 0 && *l1 > 0)) {
    fprintf(stderr, "opl train: --lambda %s: an exponential decay L0 -> L1 needs both weights > 0\n", s);
    return 2;
  }
  return 0;
}

static int train_node_main(int argc, char **argv) {
  static const char *data, *out, *vf_s, *solver_s, *reg_s, *mode_s, *lambda_s, *adjoint_s, *saveat_s;
  data = out = vf_s = reg_s = mode_s = lambda_s = adjoint_s = saveat_s = NULL;
  solver_s = "tsit5";
  int64_t ntrain = -1, ntest = -1, epochs = 100, batch = 20, step_size = 100, modes = -1, width = 32, layers = 4,
          proj = 64, hidden = 64, depth = 3, sub = 1, window = 0, seed = 0, every_ckpt = 0, threads = 0, every = 1;
  double lr = 1e-3, gamma = 0.5, wd = 0, clip = 0, rtol = 1e-3, atol = 1e-6;
  int resume = 0, quiet = 0, shuffle = 1, cache = 1, time_channel = 0;
  char stored_data[1024] = "";
  static char stored_lambda[64];
  const char *out_pre = find_arg(argc, argv, "out");
  if (has_flag(argc, argv, "resume") && out_pre && file_exists(out_pre)) {
    /* The stored configuration is the default of every option. */
    opl_trainer_config rc;
    opl_model_spec rs;
    opl_err e;
    if (opl_trainer_read_config(out_pre, &rc, &rs, NULL, stored_data, sizeof stored_data, &e)) {
      fprintf(stderr, "opl train: --resume: %s\n", msg_of(&e));
      return 1;
    }
    if (rs.kind != &opl_node_kind) {
      fprintf(stderr, "opl train: --resume: '%s' holds a model of kind '%s', not a neural ODE (use opl train %s)\n",
              out_pre, rs.kind->name, rs.kind->name);
      return 1;
    }
    const opl_node_config *nc = (const opl_node_config *)rs.config.bytes;
    data = stored_data;
    ntrain = rc.ntrain, ntest = rc.ntest, epochs = rc.epochs, batch = rc.batch, step_size = rc.step_size;
    lr = rc.lr, gamma = rc.gamma, wd = rc.weight_decay, clip = rc.clip_grad, sub = rc.sub, seed = (int64_t)rc.seed;
    shuffle = rc.shuffle;
    window = rc.task.t_out + 1;
    static char vfk[16];
    snprintf(vfk, sizeof vfk, "%s", nc->vf_kind);
    vf_s = vfk;
    static const char *const methods[] = {"dp5", "tsit5", "bs3"};
    solver_s = nc->method >= 0 && nc->method < 3 ? methods[nc->method] : "tsit5";
    rtol = nc->rtol, atol = nc->atol, time_channel = nc->time_channel;
    adjoint_s = opl_node_adjoint_name(nc->adjoint);
    saveat_s = opl_node_saveat_name(nc->saveat);
    reg_s = opl_node_reg_name(nc->reg);
    mode_s = nc->reg ? opl_node_reg_mode_name(nc->reg_mode) : NULL;
    snprintf(stored_lambda, sizeof stored_lambda, "%.17g:%.17g", nc->lambda0, nc->lambda1);
    lambda_s = stored_lambda;
    if (!strcmp(nc->vf_kind, "fno")) {
      const opl_fno_config *f = (const opl_fno_config *)nc->vf.bytes;
      modes = f->modes[0], width = f->width, layers = f->layers, proj = f->proj_channels;
    } else if (!strcmp(nc->vf_kind, "mlp")) {
      const opl_mlp_config *f = (const opl_mlp_config *)nc->vf.bytes;
      depth = f->nlayers, hidden = f->nlayers > 1 ? f->widths[1] : hidden;
    }
  }
  const cli_opt opts[] = {
      {"data", CLI_STRING, &data, "data set file with stored snapshots u (N, T, X[, Y]) and their times t"},
      {"out", CLI_STRING, &out, "-o, --out MODEL.h5: the model / checkpoint file (metrics go to MODEL.csv)"},
      {"vf", CLI_STRING, &vf_s, "the vector field: fno (on fields, with grid channels) or mlp (on the last axis)"},
      {"solver", CLI_STRING, &solver_s, "adaptive Runge-Kutta method: tsit5, dp5 or bs3"},
      {"rtol", CLI_DOUBLE, &rtol, "relative tolerance of the solver (> 0)"},
      {"atol", CLI_DOUBLE, &atol, "absolute tolerance of the solver (> 0)"},
      {"adjoint", CLI_STRING, &adjoint_s,
       "gradient: discrete (store all steps), checkpoint (replay steps), backsolve or interp (continuous adjoints)"},
      {"reg", CLI_STRING, &reg_s, "regularizer: none, error, stiff or error+stiff"},
      {"reg-mode", CLI_STRING, &mode_s, "global, local-unbiased or local-biased (needs --reg)"},
      {"lambda", CLI_STRING, &lambda_s, "regularizer weight L0, or L0:L1 decaying exponentially over the epochs"},
      {"window", CLI_INT, &window, "snapshots per training window, >= 2 (0: all stored snapshots)"},
      {"saveat", CLI_STRING, &saveat_s,
       "outputs at the stored times: step (the solver steps onto each, default) or dense (the method's interpolant; "
       "steps never shortened)"},
      {"time-channel", CLI_FLAG, &time_channel, "give the vector field the time t as an extra input"},
      {"ntrain", CLI_INT, &ntrain, "training samples: the first N of the file (-1: all but the test samples)"},
      {"ntest", CLI_INT, &ntest, "test samples: the last M of the file (-1: min(100, N/5))"},
      {"epochs", CLI_INT, &epochs, "epochs (a resumed run continues up to this total)"},
      {"batch", CLI_INT, &batch, "batch size"},
      {"lr", CLI_DOUBLE, &lr, "Adam learning rate"},
      {"weight-decay", CLI_DOUBLE, &wd, "Adam L2 weight decay (torch.optim.Adam form)"},
      {"step-size", CLI_INT, &step_size, "StepLR: multiply the learning rate by gamma every this many epochs"},
      {"gamma", CLI_DOUBLE, &gamma, "StepLR factor"},
      {"clip-grad", CLI_DOUBLE, &clip, "clip the global gradient norm to this (0: no clipping)"},
      {"modes", CLI_INT, &modes, "fno field: Fourier modes per axis (-1: 16 for 1-D, 12 for 2-D)"},
      {"width", CLI_INT, &width, "fno field: channels of the Fourier layers"},
      {"layers", CLI_INT, &layers, "fno field: Fourier layers"},
      {"proj", CLI_INT, &proj, "fno field: hidden channels of the projection"},
      {"hidden", CLI_INT, &hidden, "mlp field: hidden width"},
      {"depth", CLI_INT, &depth, "mlp field: linear layers (tanh between them)"},
      {"sub", CLI_INT, &sub, "spatial sub-sampling: train at resolution X / sub"},
      {"seed", CLI_INT, &seed, "seed of the initialization, the shuffling and the windows"},
      {"shuffle", CLI_FLAG, &shuffle, "reshuffle the training set every epoch (--shuffle=false: keep the order)"},
      {"cache", CLI_FLAG, &cache, "read the selected data into memory once"},
      {"checkpoint-every", CLI_INT, &every_ckpt, "also write the checkpoint every k epochs (0: only at the end)"},
      {"resume", CLI_FLAG, &resume, "continue the run saved in MODEL.h5 (its settings are the defaults)"},
      {"threads", CLI_INT, &threads, "threads (0: OMP_NUM_THREADS or all cores)"},
      {"every", CLI_INT, &every, "print every this many epochs (and the first and last)"},
      {"quiet", CLI_FLAG, &quiet, "print only the summary"},
  };
  char *pos[2];
  int npos;
  int rc = cli_parse("train", "node --data FILE.h5 --vf fno|mlp -o MODEL.h5 [options]", argc, argv, opts,
                     (int)(sizeof opts / sizeof opts[0]), pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (npos > 1) {
    fprintf(stderr, "opl train: unexpected argument '%s'\n", pos[1]);
    return 2;
  }
  if (!data || !*data) {
    fprintf(stderr, "opl train: --data FILE.h5 is required\n");
    return 2;
  }
  if (!out || !*out) {
    fprintf(stderr, "opl train: -o MODEL.h5 is required\n");
    return 2;
  }
  if (!vf_s) {
    fprintf(stderr, "opl train: node: --vf fno|mlp is required (the vector field)\n");
    return 2;
  }
  const opl_model_kind *vk = opl_model_kind_find(vf_s);
  if (!vk || (strcmp(vf_s, "fno") && strcmp(vf_s, "mlp"))) {
    fprintf(stderr, "opl train: --vf expects fno or mlp, got '%s'\n", vf_s);
    return 2;
  }
  int method = opl_node_method_from_name(solver_s);
  if (method < 0) {
    fprintf(stderr, "opl train: --solver expects tsit5, dp5 or bs3, got '%s'\n", solver_s);
    return 2;
  }
  if (!(rtol > 0 && isfinite(rtol)) || !(atol > 0 && isfinite(atol))) {
    fprintf(stderr, "opl train: --rtol and --atol expect finite values > 0 (got %g and %g)\n", rtol, atol);
    return 2;
  }
  int adjoint = OPL_NODE_ADJ_DISCRETE;
  if (adjoint_s) {
    if ((adjoint = opl_node_adjoint_from_name(adjoint_s)) < 0) {
      fprintf(stderr, "opl train: --adjoint expects discrete, checkpoint, backsolve or interp, got '%s'\n", adjoint_s);
      return 2;
    }
  }
  int saveat = OPL_NDE_SAVEAT_STEP;
  if (saveat_s && (saveat = opl_node_saveat_from_name(saveat_s)) < 0) {
    fprintf(stderr, "opl train: --saveat expects step or dense, got '%s'\n", saveat_s);
    return 2;
  }
  int reg = 0, mode = OPL_NODE_REG_GLOBAL;
  if (reg_s && (reg = opl_node_reg_from_name(reg_s)) < 0) {
    fprintf(stderr, "opl train: --reg expects none, error, stiff or error+stiff, got '%s'\n", reg_s);
    return 2;
  }
  if (mode_s) {
    if (!reg) {
      fprintf(stderr, "opl train: --reg-mode %s without a regularizer: give --reg error, stiff or error+stiff\n", mode_s);
      return 2;
    }
    if ((mode = opl_node_reg_mode_from_name(mode_s)) < 0) {
      fprintf(stderr, "opl train: --reg-mode expects global, local-unbiased or local-biased, got '%s'\n", mode_s);
      return 2;
    }
  }
  double l0 = reg ? 1 : 0, l1 = l0;
  if (lambda_s && parse_lambda(lambda_s, &l0, &l1)) return 2;
  if (!reg) l0 = l1 = 0;
  struct { const char *name; int64_t v, lo; } pos_ints[] = {
      {"epochs", epochs, 1}, {"batch", batch, 1}, {"step-size", step_size, 1}, {"layers", layers, 1},
      {"proj", proj, 1}, {"width", width, 1}, {"hidden", hidden, 1}, {"depth", depth, 1}, {"sub", sub, 1},
      {"checkpoint-every", every_ckpt, 0}, {"threads", threads, 0}, {"every", every, 1}, {"seed", seed, 0},
      {"window", window, 0}};
  for (size_t i = 0; i < sizeof pos_ints / sizeof pos_ints[0]; i++)
    if (pos_ints[i].v < pos_ints[i].lo) {
      fprintf(stderr, "opl train: --%s expects an integer >= %lld, got %lld\n", pos_ints[i].name,
              (long long)pos_ints[i].lo, (long long)pos_ints[i].v);
      return 2;
    }
  if (window == 1) {
    fprintf(stderr, "opl train: --window 1: a window needs >= 2 snapshots (the start and one to predict)\n");
    return 2;
  }
  if ((modes != -1 && modes < 1) || modes > 1 << 20 || width > 1 << 20 || layers > OPL_FNO_MAX_LAYERS ||
      depth > OPL_MLP_MAX_LAYERS || hidden > 1 << 24 || sub > 1 << 30) {
    fprintf(stderr, "opl train: --modes >= 1, --layers 1..%d and --depth 1..%d expected\n", OPL_FNO_MAX_LAYERS,
            OPL_MLP_MAX_LAYERS);
    return 2;
  }
  if (!(lr >= 0) || !(gamma > 0) || !(wd >= 0) || !(clip >= 0)) {
    fprintf(stderr, "opl train: --lr, --weight-decay and --clip-grad expect values >= 0 and --gamma > 0\n");
    return 2;
  }
  char csv[4096] = "";
  opl_metrics_csv_path(out, csv, sizeof csv, NULL);
  const cli_file outs[] = {{"-o", out}, {"its metrics log", csv}}, ins[] = {{"--data", data}};
  if (cli_outputs_check("train", outs, 2, ins, 1)) return 2;
  if (resume && !file_exists(out)) {
    fprintf(stderr, "opl train: --resume: '%s' does not exist (nothing to resume; drop --resume to start)\n", out);
    return 1;
  }
  if (threads > 0) opl_set_num_threads((int)threads);

  opl_err e = {0};
  opl_ds *ds = opl_ds_open(data, NULL, &e);
  if (!ds) {
    fprintf(stderr, "opl train: cannot read the data set: %s\n", e.msg);
    return 1;
  }
  const opl_ds_info *info = opl_ds_get_info(ds);
  int64_t N = info->dims.n, T = info->dims.t;
  if (window == 0) window = T;
  if (window > T) {
    fprintf(stderr, "opl train: --window %lld: '%s' stores %lld snapshots\n", (long long)window, data, (long long)T);
    opl_ds_close(&ds);
    return 2;
  }
  /* The vector field's configuration (the task sets its channels), then the node's. */
  union { opl_fno_config fno; opl_mlp_config mlp; } vc;
  memset(&vc, 0, sizeof vc);
  if (vk == &opl_fno_kind) {
    vc.fno = cli_fno_config(info->dims.sdim == 2 ? OPL_FNO_REF_2D : OPL_FNO_REF_1D, modes, width, layers, proj);
    vc.fno.pad[0] = vc.fno.pad[1] = 0; /* periodic states: no padding */
  } else {
    vc.mlp.nlayers = (int)depth;
    for (int i = 1; i < depth; i++) vc.mlp.widths[i] = hidden;
    vc.mlp.act = OPL_TANH;
  }
  opl_node_config nc;
  if (opl_node_config_init(&nc, vk, &vc, &e)) {
    fprintf(stderr, "opl train: %s\n", e.msg);
    opl_ds_close(&ds);
    return 2;
  }
  nc.method = method;
  nc.rtol = rtol;
  nc.atol = atol;
  nc.adjoint = adjoint;
  nc.saveat = saveat;
  nc.reg = reg;
  nc.reg_mode = mode;
  nc.lambda0 = l0;
  nc.lambda1 = l1;
  nc.time_channel = time_channel;
  nc.state_size = (info->dims.sdim == 1 ? info->dims.x : info->dims.y) / sub;
  opl_trainer_config tc = opl_trainer_defaults();
  tc.task = (opl_task){.kind = OPL_TASK_TRAJECTORY, .t_in = 1, .t_out = window - 1};
  fill_trainer_config(&tc, N,
                      &(train_common){.ntrain = ntrain, .ntest = ntest, .batch = batch, .sub = sub, .epochs = epochs,
                                      .step_size = step_size, .seed = seed, .every_ckpt = every_ckpt, .lr = lr,
                                      .wd = wd, .gamma = gamma, .clip = clip, .shuffle = shuffle, .cache = cache,
                                      .data = data, .out = out});
  tc.normalize = OPL_NORMALIZE_NONE;
  opl_trainer *t = opl_trainer_new(&tc, &opl_node_kind, &nc, ds, &e);
  if (!t) {
    fprintf(stderr, "opl train: %s\n", msg_of(&e));
    opl_ds_close(&ds);
    return e.status == OPL_ERR_ARG || e.status == OPL_ERR_SHAPE || e.status == OPL_ERR_UNSUPPORTED ? 2 : 1;
  }
  if (resume && opl_trainer_resume(t, out, &e)) {
    fprintf(stderr, "opl train: --resume: %s\n", msg_of(&e));
    opl_trainer_free(&t);
    opl_ds_close(&ds);
    return 1;
  }
  const opl_model *m = opl_trainer_model(t);
  const opl_loader_info *li = opl_trainer_loader_info(t);
  char desc[512], res[64];
  m->ops->describe(m->self, desc, sizeof desc);
  if (li->sdim == 1) snprintf(res, sizeof res, "s = %lld", (long long)li->nx);
  else snprintf(res, sizeof res, "%lld x %lld", (long long)li->nx, (long long)li->ny);
  if (!quiet) {
    printf("opl train: %s, %lld parameters\n", desc, (long long)opl_model_param_count(m));
    printf("  data '%s': %lld train + %lld test trajectories of %lld snapshots (t = %g .. %g%s) at %s (sub %lld); "
           "windows of %lld snapshots\n",
           data, (long long)tc.ntrain, (long long)tc.ntest, (long long)T, opl_ds_sample_times(info, 0)[0],
           opl_ds_sample_times(info, 0)[T - 1], info->t_ps ? " for sample 0; each sample has its own times" : "", res,
           (long long)sub, (long long)window);
    if (reg) {
      printf("  regularizer %s (%s), lambda %g", opl_node_reg_name(reg), opl_node_reg_mode_name(mode), l0);
      if (l1 != l0) printf(" -> %g", l1);
      printf("\n");
    }
    printf("  Adam lr %g (weight decay %g), StepLR every %lld epochs x %g, batch %lld, %lld epochs, %d thread%s, %s "
           "precision\n",
           lr, wd, (long long)step_size, gamma, (long long)batch, (long long)epochs, opl_get_num_threads(),
           opl_get_num_threads() == 1 ? "" : "s", OPL_PRECISION_NAME);
    if (resume) printf("  resuming '%s' after epoch %lld\n", out, (long long)opl_trainer_epochs_done(t));
    fflush(stdout);
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  node_print np = {.epochs = epochs, .every = every, .quiet = quiet, .last_test = NAN};
  int status = run_and_report(t, node_epoch_cb, &np, &np.last_test, "test", epochs, out, csv);
  opl_trainer_free(&t);
  opl_ds_close(&ds);
  return status;
}
