/* opl command line — progress line / log, Ctrl-C, -o, and the physics flags of generate and
 * solve (see progress.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/progress.h"

/* Monotonic wall-clock time in seconds. */
static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- progress */

void cli_progress_init(cli_progress *p, const char *verb, int quiet) {
  memset(p, 0, sizeof *p);
  p->verb = verb;
  p->f = stderr;
  p->tty = isatty(fileno(stderr));
  p->quiet = quiet;
  p->pct_last = -1;
  p->t_last = -1e30;
}

const char *cli_fmt_duration(double s, char *buf, size_t cap) {
  if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
  else if (s < 60) snprintf(buf, cap, "%.1fs", s);
  else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
  else snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
  return buf;
}

void cli_progress_update(cli_progress *p, int64_t done, int64_t total, const char *unit, double rate, double eta) {
  if (p->quiet) return;
  double t = wall();
  int64_t pct = total > 0 ? 10 * done / total : 0;
  char e[32];
  cli_fmt_duration(eta, e, sizeof e);
  if (p->tty) {
    if (t - p->t_last < 0.2 && done < total) return;
    fprintf(p->f, "\r\033[K%s: %lld/%lld %s (%.0f%%)  %.3g/s  ETA %s", p->verb, (long long)done, (long long)total,
            unit, total > 0 ? 100.0 * (double)done / (double)total : 0.0, rate, e);
    fflush(p->f);
    p->line_open = 1;
  } else {
    if (pct == p->pct_last && t - p->t_last < 60 && done < total) return;
    fprintf(p->f, "%s: %lld/%lld %s (%.0f%%), %.3g %s/s, ETA %s\n", p->verb, (long long)done, (long long)total, unit,
            total > 0 ? 100.0 * (double)done / (double)total : 0.0, rate, unit, e);
    fflush(p->f);
    p->pct_last = pct;
  }
  p->t_last = t;
}

void cli_progress_note(cli_progress *p, const char *fmt, ...) {
  if (p->line_open) {
    fputs("\r\033[K", p->f);
    p->line_open = 0;
  }
  va_list ap;
  va_start(ap, fmt);
  vfprintf(p->f, fmt, ap);
  va_end(ap);
  fputc('\n', p->f);
  fflush(p->f);
}

void cli_progress_end(cli_progress *p) {
  if (p->line_open) {
    fputc('\n', p->f);
    fflush(p->f);
    p->line_open = 0;
  }
}

/* ---------------------------------------------------------------- Ctrl-C */

static volatile sig_atomic_t interrupted;

/* SIGINT / SIGTERM handler: only sets the flag (async-signal-safe). */
static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

void cli_interrupt_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND; /* a second signal takes the default action */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int cli_interrupted(void) { return interrupted != 0; }

int cli_gen_progress(void *user, const opl_gen_progress *pg) {
  cli_progress *p = user;
  if (pg->index < 0 && pg->done > 0)
    cli_progress_note(p, "%s: resuming: %lld of %lld samples already written", p->verb, (long long)pg->done,
                      (long long)pg->total);
  if (pg->index >= 0 || pg->done == 0) cli_progress_update(p, pg->done, pg->total, "samples", pg->rate, pg->eta);
  return cli_interrupted();
}

/* ---------------------------------------------------------------- arguments */

char **cli_short_out(int argc, char **argv, int *argc_out) {
  static char **keep; /* the last array stays reachable until exit, like argv */
  char **v = malloc(sizeof(char *) * (size_t)(2 * argc + 1));
  free(keep);
  keep = v;
  if (!v) {
    *argc_out = argc;
    return argv;
  }
  int k = 0;
  for (int i = 0; i < argc; i++) {
    if (i > 0 && !strcmp(argv[i], "-o")) {
      v[k++] = "--out";
    } else if (i > 0 && !strncmp(argv[i], "-o", 2) && argv[i][2]) {
      v[k++] = "--out";
      v[k++] = argv[i] + 2;
    } else {
      v[k++] = argv[i];
    }
  }
  v[k] = NULL;
  *argc_out = k;
  return v;
}

int cli_phys_opts(cli_phys *ph, cli_opt *o) {
  memset(ph, 0, sizeof *ph);
  ph->refine = -1;
  ph->dtype = "float32";
  ph->plan = "estimate";
  int n = 0;
#define ROW(nm, ty, dst, hl) o[n++] = (cli_opt){nm, ty, dst, hl}
  ROW("out", CLI_STRING, &ph->out, "output file FILE.h5 (also -o FILE.h5)");
  ROW("preset", CLI_STRING, &ph->preset,
      "preset: burgers fno|chebfun, kdv mppde, ns fno|fno-1e-3|fno-1e-4|fno-1e-5 (default: the first)");
  ROW("res", CLI_INT, &ph->res, "solve resolution, points per axis (0: the preset's)");
  ROW("store-res", CLI_INT, &ph->store_res, "stored points per axis; divides --res (0: the preset's)");
  ROW("nt", CLI_INT, &ph->nt, "snapshots stored after t = 0 (0: the preset's)");
  ROW("T", CLI_STRING, &ph->T, "final time (default: the preset's)");
  ROW("dt", CLI_STRING, &ph->dt, "time step; rk: 0 = adaptive (default: the preset's)");
  ROW("scheme", CLI_STRING, &ph->scheme, "etdrk4, rk, dp5, tsit5, bs3, cn-heun, cn-euler, fno (ns) (default: the preset's)");
  ROW("nu", CLI_STRING, &ph->nu, "viscosity, burgers and ns (default: the preset's)");
  ROW("L", CLI_STRING, &ph->L, "domain length; kdv: fixes the domain of every sample (default: the preset's)");
  ROW("a", CLI_STRING, &ph->a, "kdv: coefficient of u u_x (default 1)");
  ROW("b", CLI_STRING, &ph->b, "kdv: coefficient of u_xxx (default 1)");
  ROW("rtol", CLI_STRING, &ph->rtol, "rk: relative tolerance (default 1e-8)");
  ROW("atol", CLI_STRING, &ph->atol, "rk: absolute tolerance (default 1e-10)");
  ROW("cfl", CLI_STRING, &ph->cfl, "Courant-number limit checked per step, 0 = none (default: the preset's)");
  ROW("sigma", CLI_STRING, &ph->sigma, "initial-condition GRF amplitude (default: the preset's)");
  ROW("tau", CLI_STRING, &ph->tau, "initial-condition GRF shift (default: the preset's)");
  ROW("alpha", CLI_STRING, &ph->alpha, "initial-condition GRF decay exponent (default: the preset's)");
  ROW("kmax", CLI_INT, &ph->kmax, "initial-condition GRF: keep shells <= kmax (-1: all shells; 0: the preset's)");
  ROW("forcing", CLI_STRING, &ph->forcing, "ns: fno or none (default fno)");
  ROW("store-mode", CLI_STRING, &ph->store_mode, "stride (every k-th point) or spectral (resample)");
  ROW("dtype", CLI_STRING, &ph->dtype, "float32 or float64 on disk");
  ROW("plan", CLI_STRING, &ph->plan, "FFTW plans: estimate (reproducible in any process) or measure (faster)");
  ROW("refine", CLI_INT, &ph->refine, "burgers: samples of the 2x-refinement check (-1: 3 for chebfun, else 0)");
  ROW("threads", CLI_INT, &ph->threads, "threads solving samples (0: OMP_NUM_THREADS)");
  ROW("restart", CLI_FLAG, &ph->restart, "discard an existing FILE.h5.partial instead of resuming it");
  ROW("quiet", CLI_FLAG, &ph->quiet, "no progress output");
#undef ROW
  OPL_ASSERT(n == CLI_PHYS_NOPTS);
  return n;
}

/* Parse a real flag given as text (NULL: not given, *dst stays NAN). */
static int real_flag(const char *verb, const char *name, const char *text, double *dst) {
  if (!text) return 0;
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end || !isfinite(v)) {
    fprintf(stderr, "opl %s: --%s expects a finite number, got '%s'\n", verb, name, text);
    return 2;
  }
  *dst = v;
  return 0;
}

int cli_phys_config(const char *verb, const cli_phys *ph, opl_gen_config *c) {
  const struct {
    const char *name, *text;
    double *dst;
  } reals[] = {{"T", ph->T, &c->T},         {"dt", ph->dt, &c->dt},       {"nu", ph->nu, &c->nu},
               {"L", ph->L, &c->L},         {"a", ph->a, &c->a},          {"b", ph->b, &c->b},
               {"rtol", ph->rtol, &c->rtol}, {"atol", ph->atol, &c->atol}, {"cfl", ph->cfl, &c->cfl},
               {"sigma", ph->sigma, &c->sigma}, {"tau", ph->tau, &c->tau}, {"alpha", ph->alpha, &c->alpha}};
  for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
    if (real_flag(verb, reals[i].name, reals[i].text, reals[i].dst)) return 2;
  const struct {
    const char *name;
    int64_t v, lo, hi;
  } ints[] = {{"res", ph->res, 0, 1 << 24},  {"store-res", ph->store_res, 0, 1 << 24}, {"nt", ph->nt, 0, 1 << 24},
              {"kmax", ph->kmax, -1, 1 << 24}, {"refine", ph->refine, -1, 1 << 20},   {"threads", ph->threads, 0, 4096}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (ints[i].v < ints[i].lo || ints[i].v > ints[i].hi) {
      fprintf(stderr, "opl %s: --%s is %lld, expected %lld .. %lld\n", verb, ints[i].name, (long long)ints[i].v,
              (long long)ints[i].lo, (long long)ints[i].hi);
      return 2;
    }
  c->res = (int)ph->res;
  c->store_res = (int)ph->store_res;
  c->nt = (int)ph->nt;
  c->kmax = (int)ph->kmax;
  c->refine = (int)ph->refine;
  c->preset = ph->preset;
  c->scheme = ph->scheme;
  c->store_mode = ph->store_mode;
  c->forcing = ph->forcing;
  opl_err e = {0};
  if (opl_gen_parse_dtype(ph->dtype, &c->dtype, &e) || opl_gen_parse_plan(ph->plan, &c->plan, &e)) {
    const char *msg = opl_err_text(&e);
    fprintf(stderr, "opl %s: --%s: %s\n", verb, strstr(msg, "dtype") ? "dtype" : "plan", msg);
    return 2;
  }
  return 0;
}

const char *cli_gen_describe(const opl_gen *g, char *buf, size_t cap) {
  const opl_solve_opts *o = opl_gen_solve_opts(g);
  opl_ds_dims d;
  opl_gen_dims(g, &d);
  int np = 0;
  const opl_kv *kv = opl_gen_provenance(g, &np);
  const opl_kv *nu = opl_kv_find(kv, np, "nu"), *L = opl_kv_find(kv, np, "L"), *res = opl_kv_find(kv, np, "solve_res");
  const opl_kv *a = opl_kv_find(kv, np, "a"), *b = opl_kv_find(kv, np, "b");
  char phys[96], step[64];
  if (nu) snprintf(phys, sizeof phys, "nu %g, L %g", nu->d, L ? L->d : 0.0);
  else snprintf(phys, sizeof phys, "a %g, b %g, L %g", a ? a->d : 0.0, b ? b->d : 0.0, L ? L->d : 0.0);
  if (o->scheme == OPL_SCHEME_RK)
    snprintf(step, sizeof step, "%s %s", opl_rk_method_name((opl_rk_method)o->rk_method),
             o->dt == 0 ? "adaptive" : "fixed step");
  else
    snprintf(step, sizeof step, "%s", opl_solve_scheme_name(o->scheme));
  char dtb[48];
  if (o->scheme == OPL_SCHEME_RK && o->dt == 0) snprintf(dtb, sizeof dtb, "rtol %g, atol %g", o->rtol, o->atol);
  else snprintf(dtb, sizeof dtb, "dt %g", o->dt);
  snprintf(buf, cap, "%s (preset %s): %s; %s, %s; solve %lld -> store %lld%s; %d snapshot%s to T = %g",
           opl_gen_equation_name(g), opl_gen_preset_name(g), phys, step, dtb, res ? (long long)res->i : 0LL,
           (long long)d.x, d.sdim == 2 ? "^2" : "", o->nt, o->nt == 1 ? "" : "s", o->T);
  return buf;
}
