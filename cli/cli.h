/* opl command line — verbs and the shared option parser. */
#ifndef OPL_CLI_H
#define OPL_CLI_H

#include <stdint.h>
#include "operators/fno.h"

typedef enum { CLI_INT, CLI_DOUBLE, CLI_STRING, CLI_FLAG } cli_type;

/* One long option: --name VALUE (or --name=VALUE); CLI_FLAG takes no value and sets *dst = 1.
 * dst points at an int64_t (CLI_INT), double (CLI_DOUBLE), const char * (CLI_STRING) or
 * int (CLI_FLAG). Keys of a --config FILE.ini equal these names. A CLI_INT is a count, size,
 * index, seed or thread number: the parser refuses negative values, except -1 when the help
 * text documents it as "(-1: what it means)". */
typedef struct cli_opt {
  const char *name;
  cli_type type;
  void *dst;
  const char *help;
} cli_opt;

/* Parse argv[1..argc) for `opl <verb>`: first every --config FILE.ini (a regular file of
 * `key = value` lines of any length, keys = option names, '#' or ';' comments, [sections]
 * ignored), then the command line, which overrides the file. Positional arguments go to pos[0..*npos) (at most maxpos).
 * Returns 0 to go on, 1 when --help was printed (exit 0), 2 after printing an error naming the
 * option and the bad value (exit 2). */
int cli_parse(const char *verb, const char *usage, int argc, char **argv, const cli_opt *opts,
              int nopts, char **pos, int maxpos, int *npos);

/* Verbs. */
int cli_demo(int argc, char **argv);
int cli_generate(int argc, char **argv); /* cli/generate.c: a data set of N trajectories */
int cli_solve(int argc, char **argv);    /* cli/solve.c: one trajectory */
int cli_info(int argc, char **argv);     /* cli/info.c: summary of a data set or checkpoint */
int cli_train(int argc, char **argv);    /* cli/train.c: train a model on a data set */
int cli_eval(int argc, char **argv);     /* cli/eval.c: evaluate a trained model */
int cli_bench(int argc, char **argv);    /* cli/bench.c: opl bench fno | node */
int cli_bench_node(int argc, char **argv); /* cli/bench_node.c: opl bench node */
int cli_bench_mgno(int argc, char **argv); /* cli/bench_mgno.c: opl bench mgno */
int cli_bench_sinenet(int argc, char **argv); /* cli/bench_sinenet.c: opl bench sinenet */
/* Shared by the opl bench modes (cli/bench.c): seconds on the monotonic clock; this process's
 * peak resident memory in MiB (VmHWM, else getrusage's ru_maxrss); a qsort comparison of
 * doubles, ascending. */
double cli_bench_now(void);
double cli_bench_peak_rss_mib(void);
int cli_bench_cmp_double(const void *a, const void *b);
int cli_summary(int argc, char **argv);  /* cli/summary.c: the layer table of a model */
int cli_train_pinn(int argc, char **argv); /* cli/train_pinn.c: opl train pinn (argv[0] = "train") */
struct opl_dist_grads_stats;
/* cli/train.c: print the communication summary line of a data-parallel run ("WHO: P ranks;
 * gradients summed in N buckets ..."), read by users' scripts and tests/cli/test_mpi.sh. */
void cli_print_dist_line(const char *who, const struct opl_dist_grads_stats *ds);
int cli_predict(int argc, char **argv);  /* cli/predict.c: a PINN on the grid of its domain */
int cli_eval_pinn(int argc, char **argv); /* cli/eval_pinn.c: opl eval of a PINN against the reference */
/* 1 if path is an opl checkpoint of a PINN model (cli/eval_pinn.c). */
int cli_is_pinn_model(const char *path);

/* The FNO configuration of a reference script (opl_fno_ref) with the architecture flags of
 * opl train fno / opl summary fno over it: modes (all axes) and width when > 0, layers and
 * projection channels always (cli/summary.c). */
opl_fno_config cli_fno_config(int ref, int64_t modes, int64_t width, int64_t layers, int64_t proj);

#endif
