/* opl solve — one trajectory of burgers | kdv | ns, from a random initial condition (--seed K:
 * the same as sample 0 of `opl generate ... --seed K`) or from sample i of any data set opl can
 * read (--ic FILE.h5 --ic-index i; resampled spectrally to the solve resolution), written in the
 * native layout with N = 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/outputs.h"
#include "core/opl.h"
#include "datasets/generate.h"
#include "datasets/h5layout.h"
#include "cli/progress.h"

static const char usage[] =
    "burgers|kdv|ns [--preset P] [--res S] [--store-res s] [--nt K] [--nu X] [--T X] [--dt X]\n"
    "           [--scheme S] ... (--ic FILE.h5 [--ic-index i] | --seed K) -o FILE.h5\n\n"
    "Solves one trajectory and writes it as a native data set with N = 1 (a = the initial\n"
    "condition at the store resolution, u = the nt snapshots after t = 0). With --seed K the\n"
    "initial condition is sample 0 of `opl generate` with the same flags and seed; with --ic it is\n"
    "the input a of sample i of FILE.h5 (opl, FNO .mat or PDEBench layout), interpolated\n"
    "spectrally to --res. Exit status: 0 done, 1 runtime failure, 2 usage error.";

/* Read the input a of sample idx of path as doubles into *ic (heap) with *n points per axis, and
 * the sample's own domain length *L, final time *T and frame count *nt when the file stores
 * per-sample coordinates (h5layout.h; else *L = *T = NAN, *nt = 0).
 * Returns 0, 1 (runtime: file problems) or 2 (usage: index out of range); prints the error. */
static int read_ic(const char *path, int64_t idx, int sdim, const char *eq, double **ic, int *n, char *src,
                   size_t srccap, double *L, double *T, int *nt) {
  *L = *T = NAN;
  *nt = 0;
  opl_err e = {0};
  opl_ds *d = opl_ds_open(path, NULL, &e);
  if (!d) {
    fprintf(stderr, "opl solve: --ic: %s\n", e.msg);
    return 1;
  }
  const opl_ds_info *in = opl_ds_get_info(d);
  int rc = 0;
  if (in->dims.sdim != sdim) {
    fprintf(stderr, "opl solve: --ic '%s': dataset '%s' holds %d-D samples, expected %d-D for %s\n", path, in->a_name,
            in->dims.sdim, sdim, eq);
    rc = 1;
  } else if (sdim == 2 && in->dims.x != in->dims.y) {
    fprintf(stderr, "opl solve: --ic '%s': dataset '%s' is %lld x %lld, expected a square grid for ns\n", path,
            in->a_name, (long long)in->dims.x, (long long)in->dims.y);
    rc = 1;
  } else if (in->dims.x < 4 || in->dims.x % 2 || in->dims.x > (1 << 24)) {
    fprintf(stderr, "opl solve: --ic '%s': dataset '%s' has %lld points per axis, expected an even number >= 4\n",
            path, in->a_name, (long long)in->dims.x);
    rc = 1;
  } else if (idx < 0 || idx >= in->dims.n) {
    fprintf(stderr, "opl solve: --ic-index is %lld, expected 0 .. %lld (the samples of '%s')\n", (long long)idx,
            (long long)in->dims.n - 1, path);
    rc = 2;
  }
  if (rc) {
    opl_ds_close(&d);
    return rc;
  }
  int64_t m = in->dims.x * in->dims.y;
  *ic = malloc(sizeof(double) * (size_t)m);
  if (!*ic || opl_ds_read_a_f64(d, idx, *ic, &e)) { /* float64: a float64 file's values exactly */
    fprintf(stderr, "opl solve: --ic: %s\n", *ic ? e.msg : "out of memory");
    free(*ic);
    *ic = NULL;
    opl_ds_close(&d);
    return 1;
  }
  *n = (int)in->dims.x;
  if (in->L) *L = in->L[idx];
  if (in->t_ps && in->dims.t <= (1 << 24)) {
    *T = opl_ds_sample_times(in, idx)[in->dims.t - 1];
    *nt = (int)in->dims.t;
  }
  snprintf(src, srccap, "%s sample %lld (dataset '%s', %s layout, %d bits)", path, (long long)idx, in->a_name,
           opl_ds_layout_name(in->layout), in->bits);
  opl_ds_close(&d);
  return 0;
}

int cli_solve(int argc, char **argv) {
  /* static: the strings cli_parse stores live until exit (LeakSanitizer sees them reachable) */
  static cli_phys ph;
  static const char *ic_path;
  int64_t seed = -1, ic_index = -1;
  ic_path = NULL;
  cli_opt opts[CLI_PHYS_NOPTS + 3];
  opts[0] = (cli_opt){"seed", CLI_INT, &seed,
                      "random initial condition: sample 0 of the run of this seed, >= 0 (default: none; give --seed or --ic)"};
  opts[1] = (cli_opt){"ic", CLI_STRING, &ic_path, "initial condition from a data set file (input a)"};
  opts[2] = (cli_opt){"ic-index", CLI_INT, &ic_index, "sample of --ic to start from (default 0)"};
  int nopts = 3 + cli_phys_opts(&ph, opts + 3);
  char *pos[2];
  int npos = 0, ac = 0;
  char **av = cli_short_out(argc, argv, &ac);
  int rc = cli_parse("solve", usage, ac, av, opts, nopts, pos, 2, &npos);
  if (rc) return rc == 1 ? 0 : 2;
  if (npos != 1) {
    fprintf(stderr, "opl solve: expected one equation (burgers, kdv or ns)%s%s%s; see opl solve --help\n",
            npos ? ", got '" : "", npos ? pos[npos - 1] : "", npos ? "'" : "");
    return 2;
  }
  if (ic_path && seed != -1) {
    fprintf(stderr, "opl solve: --ic and --seed both given, expected one of them\n");
    return 2;
  }
  if (!ic_path && ic_index != -1) {
    fprintf(stderr, "opl solve: --ic-index %lld given without --ic FILE.h5\n", (long long)ic_index);
    return 2;
  }
  if (!ic_path && seed < 0) {
    fprintf(stderr, "opl solve: expected an initial condition: --seed K (K >= 0) or --ic FILE.h5 [--ic-index i]\n");
    return 2;
  }
  if (!ph.out || !ph.out[0]) {
    fprintf(stderr, "opl solve: no output file: expected -o FILE.h5 (or --out FILE.h5)\n");
    return 2;
  }
  char partial[4096];
  snprintf(partial, sizeof partial, "%s.partial", ph.out);
  const cli_file outs[] = {{"-o", ph.out}, {"its partial file", partial}}, ins[] = {{"--ic", ic_path}};
  if (cli_outputs_check("solve", outs, 2, ins, 1)) return 2;
  opl_gen_config c;
  opl_gen_config_default(&c);
  c.equation = pos[0];
  c.n = 1;
  c.seed = seed < 0 ? 0 : (uint64_t)seed;
  if ((rc = cli_phys_config("solve", &ph, &c))) return rc;
  double *ic = NULL;
  char src[1200];
  if (ic_path) {
    const char *eq = pos[0];
    int sdim = (!strcmp(eq, "ns") || !strcmp(eq, "ns2d") || !strcmp(eq, "navier-stokes")) ? 2 : 1;
    if (strcmp(eq, "burgers") && strcmp(eq, "kdv") && sdim != 2) {
      fprintf(stderr, "opl solve: unknown equation '%s', expected burgers, kdv or ns\n", eq);
      return 2;
    }
    double sL, sT;
    int snt;
    if ((rc = read_ic(ic_path, ic_index < 0 ? 0 : ic_index, sdim, eq, &ic, &c.ic_n, src, sizeof src, &sL, &sT, &snt)))
      return rc;
    c.ic = ic;
    c.ic_source = src;
    /* A sample with its own domain and times (KdV's per-sample draws) is re-solved on them,
     * unless --L, --T or --nt say otherwise: the stored trajectory is then reproduced. */
    if (!strcmp(eq, "kdv")) {
      if (isnan(c.L) && !isnan(sL)) c.L = sL;
      if (isnan(c.T) && !isnan(sT)) c.T = sT;
      if (c.nt == 0 && snt > 0) c.nt = snt;
    }
  }
  opl_err e = {0};
  opl_gen *g = opl_gen_new(&c, &e);
  if (!g) {
    fprintf(stderr, "opl solve: %s\n", opl_err_text(&e));
    free(ic);
    return e.status == OPL_ERR_NOMEM || e.status == OPL_ERR_NONFINITE ? 1 : 2;
  }
  cli_progress p;
  cli_progress_init(&p, "opl solve", ph.quiet);
  char desc[512];
  if (!ph.quiet)
    cli_progress_note(&p, "opl solve: %s; initial condition: %s -> %s", cli_gen_describe(g, desc, sizeof desc),
                      ic_path ? src : "random (sample 0 of the seed)", ph.out);
  opl_gen_run_opts ro = {.threads = 1, .restart = ph.restart};
  opl_gen_result r;
  rc = opl_gen_run(g, ph.out, &ro, &r, &e);
  if (rc) {
    fprintf(stderr, "opl solve: %s\n", opl_err_text(&e));
    opl_gen_free(&g);
    free(ic);
    return 1;
  }
  char wt[32];
  printf("opl solve: wrote %s: 1 trajectory, %d snapshots after t = 0; %lld steps, %lld evaluations, %s",
         ph.out, opl_gen_solve_opts(g)->nt, (long long)r.steps, (long long)r.nfev,
         cli_fmt_duration(r.wall, wt, sizeof wt));
  if (r.cfl_max > 0) printf(", max Courant number %.3g", r.cfl_max);
  if (r.refine_samples > 0) printf(", refinement check max diff %.3g", r.refine_maxdiff);
  printf("\n");
  opl_gen_free(&g);
  free(ic);
  return 0;
}
