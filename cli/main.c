/* opl — the command line: `opl <verb> [options]`.
 *
 * Floor 4: the only place that prints and chooses exit codes. Each verb is one row of the
 * table below: a name, a one-line summary and a function taking (argc, argv) after the verb. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/dist.h"
#include "core/opl.h"

typedef struct verb {
  const char *name, *summary;
  int (*run)(int argc, char **argv);
} verb;

static int run_version(int argc, char **argv) {
  (void)argc, (void)argv;
  printf("opl %s (%s precision tensors, %d threads%s)\n", OPL_VERSION, OPL_PRECISION_NAME,
         opl_get_num_threads(), opl_dist_built() ? ", MPI" : "");
  return 0;
}

static const verb verbs[] = {
    {"demo", "fit a small MLP to sin(x) on [0, 2 pi] and print the loss falling", cli_demo},
    {"generate", "solve N trajectories of burgers|kdv|ns into a data set (resumable)", cli_generate},
    {"solve", "solve one trajectory of burgers|kdv|ns into a data set file", cli_solve},
    {"info", "summarize a data set or checkpoint file", cli_info},
    {"train", "train a model on a data set (opl train fno|node --data FILE.h5 -o MODEL.h5; opl train pinn --pde P -o MODEL.h5)", cli_train},
    {"predict", "a PINN model on the uniform grid of its domain (opl predict MODEL.h5 --nx --nt -o OUT.h5)", cli_predict},
    {"eval", "evaluate a trained model on a data set (relative L2, predictions, plots)", cli_eval},
    {"summary", "layer table and parameter count of a model kind or a MODEL.h5 file", cli_summary},
    {"bench", "time FNO, neural-ODE or MgNO training steps (opl bench fno, node, mgno)", cli_bench},
    {"version", "print the version and build configuration", run_version},
};
#define NVERBS ((int)(sizeof verbs / sizeof verbs[0]))

static void usage(FILE *f) {
  fprintf(f, "usage: opl <verb> [options]   (opl <verb> --help for its options)\n\nverbs:\n");
  for (int i = 0; i < NVERBS; i++) fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
}

int main(int argc, char **argv) {
  /* A write past a file-size limit (ulimit -f) fails with EFBIG and is reported like a full
   * disk, instead of SIGXFSZ killing the process in the middle of a write. */
  signal(SIGXFSZ, SIG_IGN);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) return run_version(0, NULL);
  for (int i = 0; i < NVERBS; i++)
    if (!strcmp(argv[1], verbs[i].name)) {
      /* Under mpirun the ranks run the verb together (core/dist.h). They agree on every error,
       * so rank 0 alone speaks: one message for the job. OPL_DIST_OUTPUT=all keeps every
       * rank's output (debugging). */
      opl_err e = {0};
      if (opl_dist_init(&argc, &argv, &e)) {
        fprintf(stderr, "opl: %s\n", e.msg);
        return 1;
      }
      const char *keep = getenv("OPL_DIST_OUTPUT");
      if (opl_dist_rank() != 0 && !(keep && !strcmp(keep, "all"))) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) return 1;
      }
      int rc;
      if (opl_dist_size() > 1 && strcmp(verbs[i].name, "train") && strcmp(verbs[i].name, "generate")) {
        fprintf(stderr, "opl %s: runs on one process, not on %d MPI ranks (under mpirun opl runs train and generate)\n",
                verbs[i].name, opl_dist_size());
        rc = 2;
      } else {
        rc = verbs[i].run(argc - 1, argv + 1);
      }
      fflush(stdout);
      opl_dist_finalize();
      return rc;
    }
  fprintf(stderr, "opl: unknown verb '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
