/* opl generate — a data set of N trajectories of burgers | kdv | ns from random initial
 * conditions, in the native HDF5 layout (datasets/generate.h): parallel, resumable (rerun the
 * same command after an interruption), every preset value overridable by a flag or --config.
 * `opl generate darcy` writes N steady Darcy flow samples (coefficient a, solution u;
 * datasets/darcy_gen.h) the same way. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/outputs.h"
#include "core/opl.h"
#include "datasets/darcy_gen.h"
#include "datasets/generate.h"
#include "cli/progress.h"

static const char usage[] =
    "burgers|kdv|ns [--preset P] --n N [--res S] [--store-res s] [--nt K] --seed K\n"
    "           [--dtype float32|float64] [--nu X] [--T X] [--dt X] [--scheme S] ... -o FILE.h5\n"
    "       opl generate darcy [--preset fno|rough] --n N --res S [--store-res s] --seed K\n"
    "           [--tau X] [--alpha X] [--dtype float32|float64] -o FILE.h5\n\n"
    "Solves N trajectories from random initial conditions (sample i draws from the stream split\n"
    "i of --seed, so any sample can be regenerated alone: `opl solve` with the same flags and\n"
    "--seed gives sample 0) and writes them to FILE.h5: a [N, X(, Y)] (t = 0), u [N, nt, X(, Y)]\n"
    "(the nt snapshots after t = 0), x, (y,) t, and the provenance as attributes. While running\n"
    "the data go to FILE.h5.partial; after an interruption (Ctrl-C, kill, a blow-up) rerunning\n"
    "the same command solves only the missing samples. Exit status: 0 done, 1 runtime failure,\n"
    "2 usage error.\n\n"
    "darcy: -div(a grad u) = 1 on (0, 1)^2, u = 0 on the boundary, a = psi(g) of a zero-Neumann\n"
    "Gaussian random field g (psi = 12 where g >= 0, 3 where g < 0). Preset fno: tau 3, alpha 2,\n"
    "421^2 nodes stored at 85^2 (every 5th node); rough: tau 5, alpha 2, 511^2 nodes stored at 256^2.\n"
    "Five-point stencil (face coefficient the mean of its two nodes), solved with CHOLMOD. Stored:\n"
    "a [N, s, s], u [N, s, s] (the steady solution), x, y, provenance.";

/* opl generate darcy: the flags that apply (preset, res, store-res, tau, alpha, dtype, threads,
 * restart, quiet, -o); any time-dependent flag is refused by name. */
static int gen_darcy(const cli_phys *ph, int64_t n, int64_t seed) {
  const char *bad = ph->scheme ? "--scheme" : ph->store_mode ? "--store-mode" : ph->forcing ? "--forcing"
                    : ph->T ? "--T" : ph->dt ? "--dt" : ph->nu ? "--nu" : ph->L ? "--L" : ph->a ? "--a"
                    : ph->b ? "--b" : ph->rtol ? "--rtol" : ph->atol ? "--atol" : ph->cfl ? "--cfl"
                    : ph->sigma ? "--sigma" : ph->nt ? "--nt" : ph->kmax ? "--kmax" : ph->refine > 0 ? "--refine" : NULL;
  if (bad) {
    fprintf(stderr, "opl generate: %s does not apply to darcy (a steady problem: --preset, --res, --store-res, "
            "--tau, --alpha, --dtype)\n", bad);
    return 2;
  }
  opl_darcy_gen_config c;
  opl_darcy_gen_config_default(&c);
  c.preset = ph->preset;
  c.n = n;
  c.seed = (uint64_t)seed;
  opl_err e = {0};
  if (ph->dtype && opl_gen_parse_dtype(ph->dtype, &c.dtype, &e)) {
    fprintf(stderr, "opl generate: --dtype: %s\n", opl_err_text(&e));
    return 2;
  }
  if (ph->res < 0 || ph->res > 1 << 15 || ph->store_res < 0 || ph->store_res > 1 << 15) {
    fprintf(stderr, "opl generate: --res and --store-res must be node counts >= 3\n");
    return 2;
  }
  c.res = (int)ph->res;
  c.store_res = (int)ph->store_res;
  const char *vs[2] = {ph->tau, ph->alpha}, *names[2] = {"--tau", "--alpha"};
  double *dst[2] = {&c.tau, &c.alpha};
  for (int k = 0; k < 2; k++) {
    if (!vs[k]) continue;
    char *end;
    *dst[k] = strtod(vs[k], &end);
    if (end == vs[k] || *end) {
      fprintf(stderr, "opl generate: %s is '%s', expected a number\n", names[k], vs[k]);
      return 2;
    }
  }
  opl_darcy_gen *g = opl_darcy_gen_new(&c, &e);
  if (!g) {
    fprintf(stderr, "opl %s\n", e.msg);
    return e.status == OPL_ERR_NOMEM ? 1 : 2;
  }
  int threads = ph->threads > 0 ? (int)ph->threads : opl_get_num_threads();
  int S, s;
  opl_darcy_gen_res(g, &S, &s);
  cli_progress p;
  cli_progress_init(&p, "opl generate", ph->quiet);
  if (!ph->quiet)
    cli_progress_note(&p, "opl generate: darcy (preset %s), %d^2 nodes stored at %d^2; %lld samples, seed %lld, %s, "
                      "%d thread%s -> %s", opl_darcy_gen_preset(g), S, s, (long long)n, (long long)seed,
                      c.dtype == OPL_DT_F64 ? "float64" : "float32", threads, threads == 1 ? "" : "s", ph->out);
  cli_interrupt_install();
  opl_gen_run_opts ro = {.threads = threads, .restart = ph->restart, .progress = cli_gen_progress, .user = &p};
  opl_gen_result r;
  int rc = opl_darcy_gen_run(g, ph->out, &ro, &r, &e);
  cli_progress_end(&p);
  if (rc) {
    if (r.stopped && cli_interrupted())
      fprintf(stderr, "opl generate: interrupted with %lld of %lld samples written to %s.partial; run the same "
              "command again to resume\n", (long long)(r.resumed + r.solved), (long long)n, ph->out);
    else
      fprintf(stderr, "opl %s\n", e.msg);
    opl_darcy_gen_free(&g);
    return 1;
  }
  char wt[32];
  printf("opl generate: wrote %s: %lld samples (%lld solved now, %lld resumed), a [%lld, %d, %d], u [%lld, %d, %d], "
         "%s; %s, %.3g samples/s\n",
         ph->out, (long long)n, (long long)r.solved, (long long)r.resumed, (long long)n, s, s, (long long)n, s, s,
         c.dtype == OPL_DT_F64 ? "float64" : "float32", cli_fmt_duration(r.wall, wt, sizeof wt),
         r.wall > 0 ? (double)r.solved / r.wall : 0.0);
  opl_darcy_gen_free(&g);
  return 0;
}

int cli_generate(int argc, char **argv) {
  /* static: the strings cli_parse stores live until exit (LeakSanitizer sees them reachable) */
  static cli_phys ph;
  int64_t n = 0, seed = -1;
  cli_opt opts[CLI_PHYS_NOPTS + 2];
  opts[0] = (cli_opt){"n", CLI_INT, &n, "number of samples N (required)"};
  opts[1] = (cli_opt){"seed", CLI_INT, &seed, "seed of the run's random stream, >= 0 (required)"};
  int nopts = 2 + cli_phys_opts(&ph, opts + 2);
  char *pos[2];
  int npos = 0, ac = 0;
  char **av = cli_short_out(argc, argv, &ac);
  int rc = cli_parse("generate", usage, ac, av, opts, nopts, pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (npos != 1) {
    fprintf(stderr, "opl generate: expected one equation (burgers, kdv, ns or darcy)%s%s%s; see opl generate --help\n",
            npos ? ", got '" : "", npos ? pos[npos - 1] : "", npos ? "'" : "");
    return 2;
  }
  if (n < 1) {
    fprintf(stderr, "opl generate: --n is %lld, expected the number of samples (>= 1)\n", (long long)n);
    return 2;
  }
  if (seed < 0) {
    fprintf(stderr, "opl generate: --seed is %s, expected an integer >= 0 (the data set is a function of it)\n",
            seed == -1 ? "missing" : "negative");
    return 2;
  }
  if (!ph.out || !ph.out[0]) {
    fprintf(stderr, "opl generate: no output file: expected -o FILE.h5 (or --out FILE.h5)\n");
    return 2;
  }
  /* generate reads nothing but the partial file it resumes: that one must not be the output */
  char partial[4096];
  snprintf(partial, sizeof partial, "%s.partial", ph.out);
  const cli_file outs[] = {{"-o", ph.out}, {"its partial file", partial}};
  if (cli_outputs_check("generate", outs, 2, NULL, 0)) return 2;
  if (!strcmp(pos[0], "darcy")) return gen_darcy(&ph, n, seed);
  opl_gen_config c;
  opl_gen_config_default(&c);
  c.equation = pos[0];
  c.n = n;
  c.seed = (uint64_t)seed;
  if ((rc = cli_phys_config("generate", &ph, &c))) return rc;
  opl_err e = {0};
  opl_gen *g = opl_gen_new(&c, &e);
  if (!g) {
    fprintf(stderr, "opl %s\n", e.msg);
    return e.status == OPL_ERR_NOMEM ? 1 : 2;
  }
  int threads = ph.threads > 0 ? (int)ph.threads : opl_get_num_threads();
  cli_progress p;
  cli_progress_init(&p, "opl generate", ph.quiet);
  char desc[512];
  if (!ph.quiet)
    cli_progress_note(&p, "opl generate: %s; %lld samples, seed %lld, %s, %d thread%s -> %s", cli_gen_describe(g, desc, sizeof desc),
                      (long long)n, (long long)seed, c.dtype == OPL_DT_F64 ? "float64" : "float32", threads,
                      threads == 1 ? "" : "s", ph.out);
  if (!ph.quiet && opl_gen_refine_samples(g) > 0)
    cli_progress_note(&p, "opl generate: refinement check first: samples 0..%d also at 2x the resolution with dt/2 "
                      "(read back instead when resuming)", opl_gen_refine_samples(g) - 1);
  cli_interrupt_install();
  opl_gen_run_opts ro = {.threads = threads, .restart = ph.restart, .progress = cli_gen_progress, .user = &p};
  opl_gen_result r;
  rc = opl_gen_run(g, ph.out, &ro, &r, &e);
  cli_progress_end(&p);
  if (rc) {
    if (r.stopped && cli_interrupted())
      fprintf(stderr, "opl generate: interrupted with %lld of %lld samples written to %s.partial; run the same "
              "command again to resume\n", (long long)(r.resumed + r.solved), (long long)n, ph.out);
    else
      fprintf(stderr, "opl %s\n", e.msg);
    if (r.failed_index >= 0 && !r.stopped)
      fprintf(stderr, "opl generate: %s.partial keeps the %lld samples written before sample %lld failed at t = %g\n",
              ph.out, (long long)(r.resumed + r.solved), (long long)r.failed_index, r.failed_t);
    opl_gen_free(&g);
    return 1;
  }
  char wt[32], sa[64], su[64];
  opl_ds_dims d;
  opl_gen_dims(g, &d);
  if (d.sdim == 2) {
    snprintf(sa, sizeof sa, "[%lld, %lld, %lld]", (long long)n, (long long)d.x, (long long)d.y);
    snprintf(su, sizeof su, "[%lld, %lld, %lld, %lld]", (long long)n, (long long)d.t, (long long)d.x, (long long)d.y);
  } else {
    snprintf(sa, sizeof sa, "[%lld, %lld]", (long long)n, (long long)d.x);
    snprintf(su, sizeof su, "[%lld, %lld, %lld]", (long long)n, (long long)d.t, (long long)d.x);
  }
  printf("opl generate: wrote %s: %lld samples (%lld solved now, %lld resumed), a %s, u %s, %s; %s, %.3g samples/s, "
         "%lld steps",
         ph.out, (long long)n, (long long)r.solved, (long long)r.resumed, sa, su,
         c.dtype == OPL_DT_F64 ? "float64" : "float32", cli_fmt_duration(r.wall, wt, sizeof wt),
         r.wall > 0 ? (double)r.solved / r.wall : 0.0, (long long)r.steps);
  if (r.cfl_max > 0) printf("; max Courant number %.3g", r.cfl_max);
  if (r.refine_samples > 0)
    printf("; refinement check (%d samples, 2x resolution, dt/2): max diff %.3g", r.refine_samples, r.refine_maxdiff);
  printf("\n");
  opl_gen_free(&g);
  return 0;
}
