/* opl pde — the PINN benchmark problems and their reference solutions. See pinn_problems.h. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pde/pinn_problems.h"
#include "pde/burgers.h"
#include "pde/solve.h"

static double u0_burgers(double x) { return -sin(M_PI * x); }
static double u0_allen_cahn(double x) { return x * x * cos(M_PI * x); }
static double u0_kdv(double x) { return cos(M_PI * x); }

static const opl_pinn_problem problems[] = {
    {.name = "burgers", .equation = "u_t + u u_x = (0.01/pi) u_xx", .x0 = -1, .x1 = 1, .T = 1,
     .bc = OPL_PINN_DIRICHLET, .adv = 1, .diff = 0.01 / M_PI, .u0 = u0_burgers},
    {.name = "allen-cahn", .equation = "u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0", .x0 = -1, .x1 = 1, .T = 1,
     .bc = OPL_PINN_PERIODIC, .diff = 1e-4, .cubic = 5, .lin = 5, .u0 = u0_allen_cahn},
    {.name = "kdv", .equation = "u_t + u u_x + 0.022^2 u_xxx = 0", .x0 = -1, .x1 = 1, .T = 1,
     .bc = OPL_PINN_PERIODIC, .adv = 1, .disp = 0.022 * 0.022, .u0 = u0_kdv},
};
#define NPROB ((int)(sizeof problems / sizeof problems[0]))

int opl_pinn_problem_count(void) { return NPROB; }

const opl_pinn_problem *opl_pinn_problem_at(int i) { return i >= 0 && i < NPROB ? &problems[i] : NULL; }

const opl_pinn_problem *opl_pinn_problem_find(const char *name, opl_err *err) {
  if (!name) {
    opl_err_set(err, OPL_ERR_ARG, "pinn problem: NULL name (known: burgers, allen-cahn, kdv)");
    return NULL;
  }
  if (!strcmp(name, "allen_cahn") || !strcmp(name, "allencahn")) name = "allen-cahn";
  for (int i = 0; i < NPROB; i++)
    if (!strcmp(name, problems[i].name)) return &problems[i];
  opl_err_set(err, OPL_ERR_ARG, "pinn problem: unknown name \"%s\" (known: burgers, allen-cahn, kdv)", name);
  return NULL;
}

double opl_pinn_residual(const opl_pinn_problem *p, double u, double u_t, double u_x, double u_xx, double u_xxx) {
  return u_t + p->adv * u * u_x - p->diff * u_xx + p->disp * u_xxx + p->cubic * u * u * u - p->lin * u;
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The solver resolution and step of the periodic references, from the measured convergence
 * (test_pinn_problems prints it; max over an 11 x 129 output grid):
 *   allen-cahn  the interfaces are tanh(sqrt(r / 2d) x) = tanh(158 x) fronts, whose spectrum
 *               falls as e^(-pi k / 316) (k = pi m on L = 2): the nonlinear term keeps |m| < n/3,
 *               so n = 2048 leaves ~1e-9 (measured: 2048 against 4096 differ by 2.0e-9; 1024
 *               against 2048 by 3.2e-5). Default n = 4096; ETDRK4 dt = 2e-4 (against 4e-4:
 *               3.7e-12).
 *   kdv         Zabusky-Kruskal solitons of width ~ 2 * 0.022 / sqrt(max u / 3) >= 0.03: 512 and
 *               1024 points agree to 1.8e-13; default 1024. ETDRK4 dt = 1e-4 and 2e-4 differ
 *               by 1.9e-8 (fourth order: the error of 1e-4 is ~1.2e-9); default dt = 5e-5
 *               (~1e-10; advective Courant number max|u| dt / dx ~ 0.05).
 */
static void ref_defaults(const opl_pinn_problem *p, int *n, double *dt) {
  if (!strcmp(p->name, "allen-cahn")) {
    *n = 4096;
    *dt = 2e-4;
  } else {
    *n = 1024;
    *dt = 5e-5;
  }
}

/* Evaluate the nf frames of spectra S[nf][2 nch] (unnormalized, of n points on [0, Lp)) at the
 * points y[nx] by their trigonometric interpolant (the Nyquist coefficient as a cosine):
 * u[(j + 1) * nx + i] for frame j. cs[2 nch] is scratch. */
static void eval_interp(int n, double Lp, int nf, const double *S, int nx, const double *y, double *cs,
                        double *u) {
  const int nch = n / 2 + 1;
  for (int i = 0; i < nx; i++) {
    double w = 2 * M_PI * y[i] / Lp;
    for (int m = 0; m < nch; m++) {
      double wt = (m == 0 || m == n / 2) ? 1.0 : 2.0;
      cs[2 * m] = wt * cos(m * w) / n;
      cs[2 * m + 1] = m == n / 2 ? 0.0 : -wt * sin(m * w) / n;
    }
    for (int j = 0; j < nf; j++) {
      const double *s = S + (int64_t)j * 2 * nch;
      double v = 0;
      for (int m = 0; m < nch; m++) v += s[2 * m] * cs[2 * m] + s[2 * m + 1] * cs[2 * m + 1];
      u[(int64_t)(j + 1) * nx + i] = v;
    }
  }
}

/* The truncated Fourier series of u0 on the solver grid g (n points on [x0, x1) shifted to
 * [0, Lp)): u0 is sampled at M = 64 n points and resampled spectrally onto g (opl_grid_resample:
 * modes |m| < n/2 kept). Sampling u0 at n points instead would alias its whole spectrum into
 * the kept modes: for an initial condition whose periodic extension has a kink (Allen-Cahn's
 * x^2 cos(pi x), u0' = -+2 at x = +-1) the coefficients fall only as 1/m^2 and the aliasing
 * error is O(1/n^2) in every mode, never damped for the low ones; at 64 n points it is 4096
 * times smaller (~1e-11 at n = 4096). */
static int project_u0(const opl_pinn_problem *p, const opl_grid *g, double *u0, opl_err *err) {
  const int n = g->n[0], M = 64 * n;
  opl_err e2 = {0};
  opl_grid *fg = opl_grid_new_1d(M, g->L[0], OPL_GRID_ESTIMATE, &e2);
  double *f = opl_pde_alloc(M), *work = fg ? opl_pde_alloc(opl_grid_resample_work(fg, g)) : NULL;
  int rc = OPL_OK;
  if (!fg) rc = opl_err_set(err, e2.status, "pinn_reference %s: %s", p->name, e2.msg);
  else if (!f || !work) rc = opl_err_set(err, OPL_ERR_NOMEM, "pinn_reference %s: out of memory", p->name);
  if (!rc) {
    for (int i = 0; i < M; i++) f[i] = p->u0(p->x0 + opl_grid_x(fg, 0, i));
    if (opl_grid_resample(fg, f, g, u0, work, &e2)) rc = opl_err_set(err, e2.status, "pinn_reference %s: %s", p->name, e2.msg);
  }
  opl_grid_free(&fg);
  opl_pde_free(f);
  opl_pde_free(work);
  return rc;
}

/* Solve a periodic problem on [x0, x1) shifted to [0, Lp) and sample it on the output grid. */
static int ref_periodic(const opl_pinn_problem *p, int n, double dt, int nx, int nt, const double *xs,
                        const double *ts, double *u, opl_pinn_ref_stats *st, opl_err *err) {
  const double Lp = p->x1 - p->x0;
  const int nf = nt - 1, nch = n / 2 + 1;
  int rc = OPL_OK;
  opl_err e2 = {0};
  opl_grid *g = opl_grid_new_1d(n, Lp, OPL_GRID_ESTIMATE, &e2);
  double *u0 = opl_pde_alloc(n), *frames = opl_pde_alloc((int64_t)nf * n), *S = opl_pde_alloc((int64_t)nf * 2 * nch),
         *cs = opl_pde_alloc(2 * nch), *y = malloc(sizeof(double) * (size_t)nx);
  if (!g) {
    rc = opl_err_set(err, e2.status, "pinn_reference %s: %s", p->name, e2.msg);
    goto done;
  }
  if (!u0 || !frames || !S || !cs || !y) {
    rc = opl_err_set(err, OPL_ERR_NOMEM, "pinn_reference %s: out of memory (solver n = %d, nt = %d)", p->name, n,
                     nt);
    goto done;
  }
  if ((rc = project_u0(p, g, u0, err))) goto done;
  opl_solve_opts o;
  opl_solve_opts_default(&o);
  o.T = p->T;
  o.nt = nf;
  o.times = ts + 1;
  o.with_t0 = 0;
  o.scheme = OPL_SCHEME_ETDRK4;
  o.dt = dt;
  o.grid = g;
  o.grid_flags = OPL_GRID_ESTIMATE;
  opl_solve_stats ss;
  if (!strcmp(p->name, "kdv")) {
    opl_kdv_params kp = {.n = n, .L = Lp, .a = p->adv, .b = p->disp};
    rc = opl_solve_kdv(&kp, u0, &o, frames, &ss, &e2);
  } else {
    opl_allen_cahn_params ap = {.n = n, .L = Lp, .diffusion = p->diff, .reaction = p->lin};
    rc = opl_solve_allen_cahn(&ap, u0, &o, frames, &ss, &e2);
  }
  if (rc) {
    rc = opl_err_set(err, rc, "pinn_reference %s: %s", p->name, e2.msg);
    goto done;
  }
  if (st) st->steps = ss.steps;
  for (int j = 0; j < nf; j++) opl_grid_forward(g, frames + (int64_t)j * n, S + (int64_t)j * 2 * nch);
  for (int i = 0; i < nx; i++) y[i] = xs[i] - p->x0;
  y[nx - 1] = 0; /* x1 is x0 on the period: the same column, exactly */
  eval_interp(n, Lp, nf, S, nx, y, cs, u);
done:
  opl_grid_free(&g);
  opl_pde_free(u0);
  opl_pde_free(frames);
  opl_pde_free(S);
  opl_pde_free(cs);
  free(y);
  return rc;
}

int opl_pinn_reference(const opl_pinn_problem *p, int nx, int nt, const opl_pinn_ref_opts *opts, double *x,
                       double *t, double *u, opl_pinn_ref_stats *stats, opl_err *err) {
  double w0 = wall_now();
  if (stats) memset(stats, 0, sizeof *stats);
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "pinn_reference: NULL problem");
  if (!u) return opl_err_set(err, OPL_ERR_ARG, "pinn_reference %s: the output u is NULL", p->name);
  if (nx < 2) return opl_err_set(err, OPL_ERR_ARG, "pinn_reference %s: nx = %d must be >= 2", p->name, nx);
  if (nt < 2) return opl_err_set(err, OPL_ERR_ARG, "pinn_reference %s: nt = %d must be >= 2", p->name, nt);
  if ((int64_t)nx * nt > ((int64_t)1 << 31))
    return opl_err_set(err, OPL_ERR_ARG, "pinn_reference %s: nx * nt = %lld is too large (at most 2^31)", p->name,
                       (long long)nx * nt);
  int n = 0;
  double dt = 0;
  if (p->bc == OPL_PINN_PERIODIC) ref_defaults(p, &n, &dt);
  if (opts && opts->n) {
    if (opts->n < 16 || opts->n % 2)
      return opl_err_set(err, OPL_ERR_ARG, "pinn_reference %s: solver n = %d must be even and >= 16", p->name,
                         opts->n);
    n = opts->n;
  }
  if (opts && opts->dt != 0) {
    if (!(opts->dt > 0) || !isfinite(opts->dt))
      return opl_err_set(err, OPL_ERR_ARG, "pinn_reference %s: solver dt = %g must be finite and > 0", p->name,
                         opts->dt);
    dt = opts->dt;
  }
  double *xs = malloc(sizeof(double) * (size_t)nx), *ts = malloc(sizeof(double) * (size_t)nt);
  if (!xs || !ts) {
    free(xs);
    free(ts);
    return opl_err_set(err, OPL_ERR_NOMEM, "pinn_reference %s: out of memory", p->name);
  }
  for (int i = 0; i < nx; i++) xs[i] = p->x0 + (p->x1 - p->x0) * (double)i / (double)(nx - 1);
  xs[nx - 1] = p->x1;
  for (int j = 0; j < nt; j++) ts[j] = p->T * (double)j / (double)(nt - 1);
  ts[nt - 1] = p->T;
  for (int i = 0; i < nx; i++) u[i] = p->u0(xs[i]);
  int rc = OPL_OK;
  if (p->bc == OPL_PINN_DIRICHLET) { /* Burgers: the exact solution */
    for (int j = 1; j < nt; j++) {
      double *row = u + (int64_t)j * nx;
      for (int i = 0; i < nx; i++) row[i] = opl_burgers_cole_hopf(xs[i], ts[j], p->diff);
      row[0] = row[nx - 1] = 0; /* the boundary condition (the quadrature gives it to rounding) */
    }
    n = 0;
    dt = 0;
  } else {
    rc = ref_periodic(p, n, dt, nx, nt, xs, ts, u, stats, err);
  }
  if (!rc) {
    if (x) memcpy(x, xs, sizeof(double) * (size_t)nx);
    if (t) memcpy(t, ts, sizeof(double) * (size_t)nt);
  }
  free(xs);
  free(ts);
  if (stats) {
    stats->n = n;
    stats->dt = dt;
    stats->wall = wall_now() - w0;
  }
  return rc;
}

int opl_pinn_reference_named(const char *name, int nx, int nt, double *x, double *t, double *u, opl_err *err) {
  const opl_pinn_problem *p = opl_pinn_problem_find(name, err);
  if (!p) return OPL_ERR_ARG;
  return opl_pinn_reference(p, nx, nt, NULL, x, t, u, NULL, err);
}
