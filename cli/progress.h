/* opl command line — progress reporting and the helpers shared by the data verbs (generate,
 * solve, info): a progress line on a terminal and a quiet log otherwise, Ctrl-C as a request to
 * stop, the short option -o, and the physics flags common to `opl generate` and `opl solve`. */
#ifndef OPL_CLI_PROGRESS_H
#define OPL_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>
#include "cli/cli.h"
#include "datasets/generate.h"

/* ---------------------------------------------------------------- progress */

/* Progress of a long job on stderr. On a terminal (isatty) one line rewritten in place at most
 * 5 times a second ("opl generate: 12/100 samples (12%)  3.41/s  ETA 26s"); otherwise a log line
 * at the start, every 10 % or 60 s, and at the end. quiet: nothing. */
typedef struct cli_progress {
  const char *verb;
  FILE *f;
  int tty, quiet;
  double t_last;      /* time of the last print */
  int64_t pct_last;   /* last logged tenth of the total (log mode) */
  int line_open;      /* a progress line is on the terminal */
} cli_progress;

void cli_progress_init(cli_progress *p, const char *verb, int quiet);
/* Report done of total units ("samples") at rate units/s with eta seconds left (NAN: unknown). */
void cli_progress_update(cli_progress *p, int64_t done, int64_t total, const char *unit, double rate, double eta);
/* Print one message line (clearing a progress line first); printf-style. */
void cli_progress_note(cli_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Finish: end a progress line on the terminal. */
void cli_progress_end(cli_progress *p);
/* "1h02m", "3m05s", "12.3s" into buf[cap]; returns buf. */
const char *cli_fmt_duration(double seconds, char *buf, size_t cap);

/* The progress callback of opl_gen_run (datasets/generate.h): user is a cli_progress. Returns
 * non-zero (stop) once Ctrl-C or SIGTERM has been received. */
int cli_gen_progress(void *user, const opl_gen_progress *pg);

/* First SIGINT / SIGTERM sets a flag (the next one kills as usual). */
void cli_interrupt_install(void);
int cli_interrupted(void);

/* ---------------------------------------------------------------- arguments */

/* argv with "-o FILE" and "-oFILE" rewritten to "--out FILE" (a new heap array living until
 * exit; argv[0] kept); *argc_out gets its length. */
char **cli_short_out(int argc, char **argv, int *argc_out);

/* Storage of the physics flags shared by generate and solve. Doubles are kept as text so that
 * "not given" is distinguishable and --help shows no meaningless default. */
typedef struct cli_phys {
  const char *preset, *scheme, *store_mode, *forcing, *dtype, *plan, *out;
  int64_t res, store_res, nt, kmax, refine, threads;
  const char *T, *dt, *nu, *L, *a, *b, *rtol, *atol, *cfl, *sigma, *tau, *alpha;
  int restart, quiet;
} cli_phys;

/* Number of rows cli_phys_opts writes. */
#define CLI_PHYS_NOPTS 27
/* Initialize ph (refine -1, dtype float32, plan estimate) and write its CLI_PHYS_NOPTS option
 * rows into opts. Returns the number of rows written. */
int cli_phys_opts(cli_phys *ph, cli_opt *opts);
/* Copy the flags into an opl_gen_config (equation already set). Prints an error naming the
 * flag and the expected value and returns 2 for a bad number or name; 0 on success. */
int cli_phys_config(const char *verb, const cli_phys *ph, opl_gen_config *c);
/* One-line description of the resolved settings of g into buf[cap]. */
const char *cli_gen_describe(const opl_gen *g, char *buf, size_t cap);

#endif
