/* opl pde — trajectory solvers of Burgers, KdV and 2-D Navier-Stokes: option checks, presets,
 * the FNO benchmark's Navier-Stokes scheme, one driver for every (equation, scheme) pair, and
 * the storage of snapshots. Conventions and contracts in solve.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pde/solve.h"
#include "solvers/cnheun.h"
#include "solvers/etdrk4.h"

/* ------------------------------------------------------------ options */

void opl_solve_opts_default(opl_solve_opts *o) {
  memset(o, 0, sizeof *o);
  o->T = 1;
  o->nt = 1;
  o->scheme = OPL_SCHEME_ETDRK4;
  o->dt = 1e-3;
  o->rk_method = OPL_RK_DP5;
  o->rtol = 1e-8;
  o->atol = 1e-10;
  o->store_mode = OPL_STORE_STRIDE;
  o->grid_flags = OPL_GRID_MEASURE;
}

int opl_solve_frames(const opl_solve_opts *o) { return o->nt + (o->with_t0 != 0); }

static const char *const scheme_names[OPL_SCHEME_COUNT] = {"etdrk4", "rk", "cn-heun", "cn-euler", "fno"};

const char *opl_solve_scheme_name(int scheme) {
  return scheme >= 0 && scheme < OPL_SCHEME_COUNT ? scheme_names[scheme] : NULL;
}

int opl_solve_scheme_parse(const char *name, int *scheme, int *rk_method, opl_err *err) {
  if (!name || !scheme) return opl_err_set(err, OPL_ERR_ARG, "solve: NULL scheme name");
  for (int s = 0; s < OPL_SCHEME_COUNT; s++)
    if (!strcmp(name, scheme_names[s])) {
      *scheme = s;
      return OPL_OK;
    }
  for (int m = 0; m < OPL_RK_METHOD_COUNT; m++)
    if (!strcmp(name, opl_rk_method_name((opl_rk_method)m))) {
      *scheme = OPL_SCHEME_RK;
      if (rk_method) *rk_method = m;
      return OPL_OK;
    }
  return opl_err_set(err, OPL_ERR_ARG,
                     "solve: unknown scheme \"%s\" (known: etdrk4, rk, dp5, tsit5, bs3, cn-heun, cn-euler, fno)",
                     name);
}

/* 1 for the schemes with a fixed step dt (all but the adaptive RK core). */
static int fixed_step_scheme(int s) { return s != OPL_SCHEME_RK; }

/* Check the options of a solve at resolution n per axis. fn names the caller in messages. */
static int check_opts(const char *fn, const opl_solve_opts *o, int n, opl_err *err) {
  if (!o) return opl_err_set(err, OPL_ERR_ARG, "%s: NULL options", fn);
  if (!(o->T > 0) || !isfinite(o->T))
    return opl_err_set(err, OPL_ERR_ARG, "%s: T = %g must be finite and > 0", fn, o->T);
  if (o->nt < 1) return opl_err_set(err, OPL_ERR_ARG, "%s: nt = %d snapshots (must be >= 1)", fn, o->nt);
  if (o->times)
    for (int j = 0; j < o->nt; j++) {
      double prev = j ? o->times[j - 1] : 0;
      if (!(o->times[j] > prev) || !(o->times[j] <= o->T))
        return opl_err_set(err, OPL_ERR_ARG,
                           "%s: times[%d] = %g must be > %g (times strictly increasing in (0, T]) and <= T = %g",
                           fn, j, o->times[j], prev, o->T);
    }
  if (o->scheme < 0 || o->scheme >= OPL_SCHEME_COUNT)
    return opl_err_set(err, OPL_ERR_ARG, "%s: scheme = %d is not an opl_solve_scheme (0..%d)", fn, o->scheme,
                       OPL_SCHEME_COUNT - 1);
  if (fixed_step_scheme(o->scheme) && (!(o->dt > 0) || !isfinite(o->dt)))
    return opl_err_set(err, OPL_ERR_ARG, "%s: dt = %g must be finite and > 0 for the %s scheme", fn, o->dt,
                       scheme_names[o->scheme]);
  if (o->scheme == OPL_SCHEME_RK) {
    if (!(o->dt >= 0) || !isfinite(o->dt))
      return opl_err_set(err, OPL_ERR_ARG, "%s: dt = %g must be >= 0 (0: adaptive) for the rk scheme", fn, o->dt);
    if (!opl_rk_method_name((opl_rk_method)o->rk_method))
      return opl_err_set(err, OPL_ERR_ARG, "%s: rk_method = %d is not an opl_rk_method", fn, o->rk_method);
    if (!(o->rtol > 0) || !isfinite(o->rtol) || !(o->atol >= 0) || !isfinite(o->atol))
      return opl_err_set(err, OPL_ERR_ARG, "%s: rtol = %g, atol = %g (need rtol > 0, atol >= 0, finite)", fn,
                         o->rtol, o->atol);
    if (o->max_steps < 0)
      return opl_err_set(err, OPL_ERR_ARG, "%s: max_steps = %lld (must be >= 0)", fn, (long long)o->max_steps);
  }
  if (!(o->cfl >= 0) || !isfinite(o->cfl))
    return opl_err_set(err, OPL_ERR_ARG, "%s: cfl = %g must be finite and >= 0 (0: no check)", fn, o->cfl);
  int sn = o->store_n ? o->store_n : n;
  if (o->store_mode == OPL_STORE_STRIDE) {
    if (sn < 1 || n % sn != 0)
      return opl_err_set(err, OPL_ERR_SHAPE,
                         "%s: store resolution %d does not divide the solve resolution %d (stride storage; use "
                         "OPL_STORE_SPECTRAL to resample)", fn, sn, n);
  } else if (o->store_mode == OPL_STORE_SPECTRAL) {
    if (sn < 4 || sn % 2)
      return opl_err_set(err, OPL_ERR_SHAPE, "%s: store resolution %d must be even and >= 4 for spectral storage "
                         "(solve resolution %d)", fn, sn, n);
  } else {
    return opl_err_set(err, OPL_ERR_ARG, "%s: store_mode = %d is not OPL_STORE_STRIDE (0) or _SPECTRAL (1)", fn,
                       o->store_mode);
  }
  return OPL_OK;
}

/* OPL_OK if the nreal values of u0 are finite, else OPL_ERR_NONFINITE naming the first bad
 * index. */
static int check_finite(const char *fn, const char *what, const double *u0, int64_t nreal, opl_err *err) {
  if (!u0) return opl_err_set(err, OPL_ERR_ARG, "%s: %s is NULL", fn, what);
  for (int64_t i = 0; i < nreal; i++)
    if (!isfinite(u0[i]))
      return opl_err_set(err, OPL_ERR_NONFINITE, "%s: %s[%lld] = %g is not finite", fn, what, (long long)i, u0[i]);
  return OPL_OK;
}

/* Re-report the failure e2 (status rc) of a lower layer under the caller's name; OPL_OK when
 * rc is 0. */
static int prefixed(const char *fn, int rc, const opl_err *e2, opl_err *err) {
  return rc ? opl_err_set(err, rc, "%s: %s", fn, e2->msg) : OPL_OK;
}

/* Seconds on the monotonic clock. */
static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ the FNO Navier-Stokes scheme */

/* The right-hand side of ns_2d.py (Li et al. 2021, data generation), written from its
 * equations: with torch's integer wavenumbers (rows 0..n/2-1, -n/2..-1; columns 0..n/2-1, -n/2
 * at the Nyquist column) times 2 pi / L,
 *   psi = w / lap (lap = |k|^2, lap[0,0] = 1),  u = IFFT(i ky psi),  v = IFFT(-i kx psi),
 *   w_x = IFFT(i kx w),  w_y = IFFT(i ky w)   (all from the full, undealiased spectrum),
 *   N(w) = -mask FFT(u w_x + v w_y) + FFT(f),  mask: |kx|, |ky| <= (2/3) (n/2),
 * and the viscous symbol -nu lap (with lap[0,0] = 1). The CN-Euler update of cnheun.h with
 * these N and L is ns_2d.py's step
 *   w+ = (-dt F + dt f_h + (1 - dt nu lap / 2) w) / (1 + dt nu lap / 2). */
typedef struct fno_ns {
  const opl_grid *g;
  double *ky;           /* [nch] torch column wavenumbers times 2 pi / L */
  double *kx;           /* [nrow] torch row wavenumbers times 2 pi / L */
  double *ilap;         /* [nspec] 1 / lap (lap[0] = 1) */
  double *lap;          /* [nspec] lap (lap[0] = 1) */
  unsigned char *keep;  /* [nspec] FNO's dealiasing mask */
  double *fh;           /* [2 nspec] rfft2(f), or NULL when unforced */
  double *spec4;        /* [4][2 nspec] u, v, w_x, w_y spectra */
  double *real4;        /* [4][nreal] the same fields */
  const double *last_in;
  double last_speed;
} fno_ns;

static void fno_free(fno_ns **fp) {
  if (!fp || !*fp) return;
  fno_ns *f = *fp;
  free(f->ky);
  free(f->kx);
  opl_pde_free(f->ilap);
  opl_pde_free(f->lap);
  free(f->keep);
  opl_pde_free(f->fh);
  opl_pde_free(f->spec4);
  opl_pde_free(f->real4);
  free(f);
  *fp = NULL;
}

/* The FNO right-hand side on grid g (n x n, side L) with forcing field force[n n] (NULL: none).
 * NULL when out of memory. */
static fno_ns *fno_new(const opl_grid *g, const double *force) {
  fno_ns *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->g = g;
  const int nrow = g->nrow, nch = g->nch, n = g->nc;
  f->ky = malloc(sizeof(double) * nch);
  f->kx = malloc(sizeof(double) * nrow);
  f->ilap = opl_pde_alloc(g->nspec);
  f->lap = opl_pde_alloc(g->nspec);
  f->keep = malloc((size_t)g->nspec);
  f->spec4 = opl_pde_alloc(4 * 2 * g->nspec);
  f->real4 = opl_pde_alloc(4 * g->nreal);
  if (force) f->fh = opl_pde_alloc(2 * g->nspec);
  if (!f->ky || !f->kx || !f->ilap || !f->lap || !f->keep || !f->spec4 || !f->real4 || (force && !f->fh)) {
    fno_free(&f);
    return NULL;
  }
  const double two_pi_L = 2 * M_PI / g->L[0];
  const int kmax = g->n[0] / 2;
  for (int r = 0; r < nrow; r++) f->kx[r] = two_pi_L * (r < kmax ? r : r - g->n[0]);
  for (int c = 0; c < nch; c++) f->ky[c] = two_pi_L * (c < n / 2 ? c : c - n);
  for (int r = 0; r < nrow; r++) {
    int ir = r < kmax ? r : r - g->n[0];
    for (int c = 0; c < nch; c++) {
      int ic = c < n / 2 ? c : c - n;
      int64_t e = (int64_t)r * nch + c;
      double l = f->kx[r] * f->kx[r] + f->ky[c] * f->ky[c];
      if (e == 0) l = 1.0;
      f->lap[e] = l;
      f->ilap[e] = 1.0 / l;
      /* |k| <= (2/3) kmax, in integers: 3 |k| <= 2 kmax */
      f->keep[e] = 3 * abs(ir) <= 2 * kmax && 3 * abs(ic) <= 2 * (n / 2);
    }
  }
  if (force) opl_grid_forward(g, force, f->fh);
  return f;
}

/* nh[2 nspec] = N(wh[2 nspec]) of the FNO scheme (see fno_ns); records max |(u, v)| of the
 * synthesized (full-band) velocity for the CFL check. Signature of opl_cnheun_fn. */
static int fno_nonlinear(void *self, double t, const double *wh, double *nh) {
  (void)t;
  fno_ns *f = self;
  const opl_grid *g = f->g;
  const int nrow = g->nrow, nch = g->nch;
  const int64_t S = 2 * g->nspec, N = g->nreal;
  const double s = 1.0 / (double)N;
  double *su = f->spec4, *sv = su + S, *sx = su + 2 * S, *sy = su + 3 * S;
#pragma omp parallel for if (g->par && g->nspec > OPL_PDE_PAR_MIN / 2) schedule(static)
  for (int r = 0; r < nrow; r++) {
    const double kx = f->kx[r];
    for (int c = 0; c < nch; c++) {
      int64_t e = (int64_t)r * nch + c;
      double ky = f->ky[c], wr = s * wh[2 * e], wi = s * wh[2 * e + 1];
      double pr = wr * f->ilap[e], pi = wi * f->ilap[e];
      su[2 * e] = -ky * pi, su[2 * e + 1] = ky * pr;  /* i ky psi */
      sv[2 * e] = kx * pi, sv[2 * e + 1] = -kx * pr;  /* -i kx psi */
      sx[2 * e] = -kx * wi, sx[2 * e + 1] = kx * wr;  /* i kx w */
      sy[2 * e] = -ky * wi, sy[2 * e + 1] = ky * wr;  /* i ky w */
    }
  }
  opl_grid_inverse_many_raw(g, 4, f->spec4, f->real4);
  double *q = f->real4;
  const double *v = q + N, *wx = q + 2 * N, *wy = q + 3 * N;
  double s2 = 0;
#pragma omp parallel for if (g->par && N > OPL_PDE_PAR_MIN) reduction(max : s2) schedule(static)
  for (int64_t i = 0; i < N; i++) {
    double uu = q[i], vv = v[i], sp = uu * uu + vv * vv;
    s2 = sp > s2 ? sp : s2;
    q[i] = uu * wx[i] + vv * wy[i];
  }
  f->last_in = nh == wh ? NULL : wh;
  f->last_speed = sqrt(s2);
  opl_grid_forward(g, q, nh);
#pragma omp parallel for if (g->par && g->nspec > OPL_PDE_PAR_MIN / 2) schedule(static)
  for (int64_t e = 0; e < g->nspec; e++) {
    double m = f->keep[e] ? -1.0 : 0.0;
    nh[2 * e] = m * nh[2 * e] + (f->fh ? f->fh[2 * e] : 0.0);
    nh[2 * e + 1] = m * nh[2 * e + 1] + (f->fh ? f->fh[2 * e + 1] : 0.0);
  }
  return 0;
}

/* max |(u, v)| of the full-band velocity of wh[2 nspec]: the value recorded by the last
 * fno_nonlinear call when wh was its input, else computed (2 inverse transforms). */
static double fno_speed(fno_ns *f, const double *wh) {
  if (wh == f->last_in) return f->last_speed;
  const opl_grid *g = f->g;
  const int64_t S = 2 * g->nspec, N = g->nreal;
  const double s = 1.0 / (double)N;
  double *su = f->spec4, *sv = su + S;
  for (int r = 0; r < g->nrow; r++)
    for (int c = 0; c < g->nch; c++) {
      int64_t e = (int64_t)r * g->nch + c;
      double pr = s * wh[2 * e] * f->ilap[e], pi = s * wh[2 * e + 1] * f->ilap[e];
      su[2 * e] = -f->ky[c] * pi, su[2 * e + 1] = f->ky[c] * pr;
      sv[2 * e] = f->kx[r] * pi, sv[2 * e + 1] = -f->kx[r] * pr;
    }
  opl_grid_inverse_many_raw(g, 2, f->spec4, f->real4);
  double s2 = 0;
  for (int64_t i = 0; i < N; i++) s2 = fmax(s2, f->real4[i] * f->real4[i] + f->real4[N + i] * f->real4[N + i]);
  return sqrt(s2);
}

/* ------------------------------------------------------------ the driver */

/* What the driver needs from an equation. */
typedef struct solve_eq {
  const char *fn;        /* "solve_burgers", for messages */
  const opl_grid *g;     /* the solve grid */
  double *Lc;            /* [2 nspec] complex symbol L(k) (ETDRK4) */
  double *Lr;            /* [nspec] real symbol (Crank-Nicolson family), NULL when L is not real */
  opl_etdrk4_fn N;       /* nonlinear term on spectra */
  void *self;            /* its object */
  int (*rhs)(void *, double, const void *, void *); /* full right-hand side on physical values */
  int kind;              /* 0: 1-D (Burgers, KdV), 1: opl's Navier-Stokes, 2: the FNO scheme */
  double spd_a;          /* 1-D: advecting velocity = spd_a * (P u) */
  double *sw;            /* 1-D speed scratch [2 nspec] */
  double *sr;            /* 1-D speed scratch [nreal] */
} solve_eq;

/* Trampolines: the steppers pass the solve_eq as their user pointer. */
static int eq_N(void *user, double t, const double *u, double *nu) {
  solve_eq *e = user;
  return e->N(e->self, t, u, nu);
}

/* max |advecting velocity| of the state spectrum uh[2 nspec] (solve.h, "Blow-up"). */
static double eq_speed(void *user, double t, const double *uh) {
  solve_eq *e = user;
  if (e->kind == 1) return opl_ns2d_speed(e->self, t, uh);
  if (e->kind == 2) return fno_speed(e->self, uh);
  const opl_grid *g = e->g;
  const double s = 1.0 / (double)g->nreal;
  for (int c = 0; c < g->nch; c++) {
    double m = g->keep_col[c] ? s : 0.0;
    e->sw[2 * c] = m * uh[2 * c];
    e->sw[2 * c + 1] = m * uh[2 * c + 1];
  }
  opl_grid_inverse_raw(g, e->sw, e->sr);
  double mx = 0;
  for (int64_t i = 0; i < g->nreal; i++) mx = fmax(mx, fabs(e->sr[i]));
  return e->spd_a * mx;
}

/* Snapshot storage (solve.h, "Storage"). */
typedef struct solve_store {
  const opl_grid *g;     /* solve grid */
  opl_grid *sg;          /* store grid (spectral mode) */
  int mode, sn, stride;
  int64_t fsize;         /* doubles per frame: sn^dim */
  double *phys;          /* [nreal] physical field at the solve resolution */
  double *spec;          /* [2 nspec] copy of a spectrum (the inverse destroys its input) */
  double *rw;            /* [opl_grid_resample_work] */
} solve_store;

/* Free what store_init allocated (safe after a partial init). */
static void store_free(solve_store *s) {
  opl_grid_free(&s->sg);
  opl_pde_free(s->phys);
  opl_pde_free(s->spec);
  opl_pde_free(s->rw);
}

/* Set up the storage of frames at o's store resolution on the solve grid g. */
static int store_init(solve_store *s, const opl_grid *g, const opl_solve_opts *o, const char *fn, opl_err *err) {
  memset(s, 0, sizeof *s);
  s->g = g;
  s->mode = o->store_mode;
  s->sn = o->store_n ? o->store_n : g->n[0];
  s->stride = g->n[0] / s->sn;
  s->fsize = g->dim == 1 ? s->sn : (int64_t)s->sn * s->sn;
  s->phys = opl_pde_alloc(g->nreal);
  s->spec = opl_pde_alloc(2 * g->nspec);
  if (!s->phys || !s->spec) return opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", fn);
  if (s->mode == OPL_STORE_SPECTRAL) {
    opl_err e2 = {0};
    s->sg = g->dim == 1 ? opl_grid_new_1d(s->sn, g->L[0], OPL_GRID_ESTIMATE, &e2)
                        : opl_grid_new_2d(s->sn, s->sn, g->L[0], g->L[1], OPL_GRID_ESTIMATE, &e2);
    if (!s->sg) return opl_err_set(err, e2.status, "%s: store grid: %s", fn, e2.msg);
    s->rw = opl_pde_alloc(opl_grid_resample_work(g, s->sg));
    if (!s->rw) return opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", fn);
  }
  return OPL_OK;
}

/* Store the physical field u[nreal] (solve resolution) as one frame dst[fsize]. */
static void store_phys(solve_store *s, const double *u, double *dst) {
  const opl_grid *g = s->g;
  if (s->mode == OPL_STORE_SPECTRAL) {
    int st = opl_grid_resample(g, u, s->sg, dst, s->rw, NULL);
    OPL_ASSERT(st == OPL_OK, "resample onto the store grid failed (%d)", st);
    return;
  }
  const int k = s->stride, sn = s->sn;
  if (g->dim == 1) {
    for (int i = 0; i < sn; i++) dst[i] = u[(int64_t)i * k];
    return;
  }
  const int64_t ny = g->n[1];
  for (int i = 0; i < sn; i++)
    for (int j = 0; j < sn; j++) dst[(int64_t)i * sn + j] = u[(int64_t)i * k * ny + (int64_t)j * k];
}

/* Store the field of the spectrum uh[2 nspec] as one frame dst[fsize]. */
static void store_spec(solve_store *s, const double *uh, double *dst) {
  memcpy(s->spec, uh, sizeof(double) * 2 * (size_t)s->g->nspec);
  opl_grid_inverse(s->g, s->spec, s->phys);
  store_phys(s, s->phys, dst);
}

/* Steps of an output interval of length D with largest step dt: m = ceil(D / dt) (a ratio
 * within 1e-9 of an integer counts as that integer, so D = k dt gives k steps). */
static int64_t interval_steps(double D, double dt) {
  double r = D / dt;
  double m = ceil(r - 1e-9 * (r > 1 ? r : 1));
  return m < 1 ? 1 : (int64_t)m;
}

/* Fill st and the message of a failure at time tfail (the last good state) from the inner
 * error e2. */
static int solve_fail(const solve_eq *e, const opl_err *e2, double tfail, opl_solve_stats *st, opl_err *err) {
  st->t_reached = tfail;
  int blow = e2->status == OPL_ERR_NONFINITE || e2->status == OPL_ERR_CONVERGENCE;
  if (blow && strstr(e2->msg, "max_steps")) blow = 0;
  return opl_err_set(err, e2->status, "%s: %s at t = %.9g: %s", e->fn, blow ? "blow-up" : "failure", tfail, e2->msg);
}

/* The fixed-step schemes on spectra: ETDRK4, CN-Heun, CN-Euler, FNO (= CN-Euler on fno_ns). */
static int run_fixed(solve_eq *e, solve_store *ss, const double *u0, const double *tj, const opl_solve_opts *o,
                     double *out, opl_solve_stats *st, opl_err *err) {
  const opl_grid *g = e->g;
  const int64_t nspec = g->nspec;
  const int etd = o->scheme == OPL_SCHEME_ETDRK4;
  const double dx = g->dx[0];
  double *uh = opl_pde_alloc(2 * nspec);
  if (!uh) return opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", e->fn);
  opl_grid_forward(g, u0, uh);
  opl_etdrk4 *se = NULL;
  opl_cnheun *sc = NULL;
  double hcur = 0, tprev = 0;
  int rc = OPL_OK;
  opl_err e2 = {0};
  int64_t base_nfev = 0;
  for (int j = 0; j < o->nt && !rc; j++) {
    const double D = tj[j] - tprev;
    const int64_t m = interval_steps(D, o->dt);
    const double h = D / (double)m;
    if (!(se || sc) || fabs(h - hcur) > 1e-12 * hcur) {
      if (se) {
        opl_etdrk4_stats es;
        opl_etdrk4_get_stats(se, &es);
        base_nfev += es.nfev;
        opl_etdrk4_free(&se);
      }
      if (sc) {
        opl_cnheun_stats cs;
        opl_cnheun_get_stats(sc, &cs);
        base_nfev += cs.nfev;
        if (cs.cfl_max > st->cfl_max) st->cfl_max = cs.cfl_max;
        opl_cnheun_free(&sc);
      }
      if (etd) {
        se = opl_etdrk4_create(nspec, e->Lc, h, eq_N, e, &e2);
      } else {
        int var = o->scheme == OPL_SCHEME_CN_HEUN ? OPL_CN_HEUN : OPL_CN_EULER;
        sc = opl_cnheun_create(nspec, e->Lr, h, var, eq_N, e, &e2);
        if (sc && o->cfl > 0 && opl_cnheun_set_cfl(sc, eq_speed, dx, o->cfl, &e2)) opl_cnheun_free(&sc);
      }
      if (!se && !sc) {
        rc = opl_err_set(err, e2.status, "%s: %s", e->fn, e2.msg);
        break;
      }
      hcur = h;
    }
    for (int64_t i = 0; i < m; i++) {
      double t = tprev + (double)i * hcur;
      if (etd) {
        if (o->cfl > 0) {
          double v = eq_speed(e, t, uh), c = hcur * v / dx;
          if (c > st->cfl_max) st->cfl_max = c;
          if (!isfinite(v))
            opl_err_set(&e2, OPL_ERR_NONFINITE, "non-finite max speed %g", v);
          else if (c > o->cfl)
            opl_err_set(&e2, OPL_ERR_CONVERGENCE, "CFL condition violated: dt * max|u| / dx = %g * %g / %g = %g > "
                        "limit %g", hcur, v, dx, c, o->cfl);
          if (!isfinite(v) || c > o->cfl) {
            rc = solve_fail(e, &e2, t, st, err);
            break;
          }
        }
        rc = opl_etdrk4_step(se, &t, uh, &e2);
      } else {
        rc = opl_cnheun_step(sc, &t, uh, &e2);
      }
      if (rc) {
        rc = solve_fail(e, &e2, tprev + (double)i * hcur, st, err);
        break;
      }
      st->steps++;
      st->h_last = hcur;
    }
    if (rc) break;
    tprev = tj[j];
    st->t_reached = tprev;
    store_spec(ss, uh, out + (st->frames++) * ss->fsize);
  }
  if (se) {
    opl_etdrk4_stats es;
    opl_etdrk4_get_stats(se, &es);
    base_nfev += es.nfev;
  }
  if (sc) {
    opl_cnheun_stats cs;
    opl_cnheun_get_stats(sc, &cs);
    base_nfev += cs.nfev;
    if (cs.cfl_max > st->cfl_max) st->cfl_max = cs.cfl_max;
  }
  st->nfev = base_nfev;
  opl_etdrk4_free(&se);
  opl_cnheun_free(&sc);
  opl_pde_free(uh);
  return rc;
}

/* The RK core on physical values. */
static int run_rk(solve_eq *e, solve_store *ss, const double *u0, const double *tj, const opl_solve_opts *o,
                  double *out, opl_solve_stats *st, opl_err *err) {
  const opl_grid *g = e->g;
  opl_err e2 = {0};
  opl_rk_vops ops = opl_rk_vops_double(g->nreal);
  ops.rhs = e->rhs;
  opl_rk *rk = opl_rk_create(&ops, e->self, (opl_rk_method)o->rk_method, &e2);
  if (!rk) return opl_err_set(err, e2.status, "%s: %s", e->fn, e2.msg);
  int rc = opl_rk_set_tolerances(rk, o->rtol, o->atol, &e2);
  if (!rc && o->max_steps > 0) rc = opl_rk_set_max_steps(rk, o->max_steps, &e2);
  if (rc) {
    opl_rk_free(&rk);
    return opl_err_set(err, e2.status, "%s: %s", e->fn, e2.msg);
  }
  double hcur = 0, tprev = 0;
  if (o->dt > 0) {
    hcur = tj[0] / (double)interval_steps(tj[0], o->dt);
    opl_rk_set_fixed_step(rk, hcur, NULL);
  }
  rc = opl_rk_init(rk, 0, u0, &e2);
  if (rc) rc = solve_fail(e, &e2, 0, st, err);
  for (int j = 0; j < o->nt && !rc; j++) {
    if (o->dt > 0) {
      const double D = tj[j] - tprev, h = D / (double)interval_steps(D, o->dt);
      if (fabs(h - hcur) > 1e-12 * hcur) opl_rk_set_fixed_step(rk, hcur = h, NULL);
    }
    rc = opl_rk_advance(rk, tj[j], &e2);
    if (rc) {
      rc = solve_fail(e, &e2, opl_rk_time(rk), st, err);
      break;
    }
    tprev = tj[j];
    st->t_reached = tprev;
    store_phys(ss, opl_rk_state(rk), out + (st->frames++) * ss->fsize);
  }
  opl_rk_stats rs;
  opl_rk_get_stats(rk, &rs);
  st->steps = rs.accepted;
  st->rejected = rs.rejected;
  st->nfev = rs.nfev;
  st->h_last = rs.h_last;
  opl_rk_free(&rk);
  return rc;
}

/* Solve one trajectory of e from u0[nreal] with options o (already checked) into out. */
static int solve_run(solve_eq *e, const double *u0, const opl_solve_opts *o, double *out, opl_solve_stats *st,
                     opl_err *err) {
  solve_store ss;
  int rc = store_init(&ss, e->g, o, e->fn, err);
  double *tj = malloc(sizeof(double) * (size_t)o->nt);
  if (!rc && !tj) rc = opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", e->fn);
  if (!rc) {
    for (int j = 0; j < o->nt; j++) tj[j] = o->times ? o->times[j] : o->T * (double)(j + 1) / (double)o->nt;
    if (!o->times) tj[o->nt - 1] = o->T;
    if (o->with_t0) store_phys(&ss, u0, out + (st->frames++) * ss.fsize);
    rc = o->scheme == OPL_SCHEME_RK ? run_rk(e, &ss, u0, tj, o, out, st, err)
                                    : run_fixed(e, &ss, u0, tj, o, out, st, err);
  }
  free(tj);
  store_free(&ss);
  return rc;
}

/* Common prologue: zero the stats, start the clock. */
static void stats_begin(opl_solve_stats *st, double *t0) {
  memset(st, 0, sizeof *st);
  *t0 = wall_now();
}

/* ------------------------------------------------------------ Burgers */

/* The step sizes of the presets, from the measured errors (test_solve_burgers prints them):
 *   "fno" (nu = 0.1): the solution keeps < 100 Fourier modes above 1e-14, so the ETDRK4 time
 *     error at 8192 points equals the one at 1024: against dt = 1e-5 on a burgers-fno draw it is
 *     2.9e-10 (dt = 2e-3), 3.3e-11 (1e-3), 2.2e-12 (5e-4), 1.5e-13 (2e-4), absolute, with
 *     max |u0| ~ 2 and max |u(1)| ~ 0.01 (mode 1 decays as e^(-4 pi^2 nu t)). dt = 5e-4 puts it
 *     at ~1e-12 of max |u0| for 2000 steps (~2 s per trajectory at 8192 points, one core).
 *   "chebfun" (nu = 1e-3): against dt = 5e-6 at 4096 points (T = 1, 20 frames): 3.6e-10
 *     (2e-3), 2.1e-11 (1e-3), 2.4e-12 (5e-4) and a rounding floor of ~2e-12 below; dt = 2e-4
 *     keeps a factor 2.5 below the step where the floor is reached, for draws steeper than the
 *     measured ones. The ETDRK4 coefficients make the stiff diffusion exact, so the step is set
 *     by the advection of the resolved modes only. */
int opl_solve_burgers_preset(const char *name, opl_burgers_params *p, opl_solve_opts *o, opl_grf_params *grf,
                             opl_err *err) {
  if (!name || !p || !o) return opl_err_set(err, OPL_ERR_ARG, "solve_burgers_preset: NULL argument");
  opl_solve_opts_default(o);
  if (!strcmp(name, "fno")) {
    *p = (opl_burgers_params){.n = 8192, .L = 1.0, .nu = 0.1};
    o->T = 1.0;
    o->nt = 1;
    o->dt = 5e-4;
    o->store_n = 1024;
  } else if (!strcmp(name, "chebfun")) {
    *p = (opl_burgers_params){.n = 4096, .L = 1.0, .nu = 1e-3};
    o->T = 1.0;
    o->nt = 200;
    o->dt = 2e-4;
    o->store_n = 1024;
  } else {
    return opl_err_set(err, OPL_ERR_ARG, "solve_burgers_preset: unknown preset \"%s\" (known: fno, chebfun)", name);
  }
  if (grf) return opl_grf_preset(!strcmp(name, "fno") ? "burgers-fno" : "burgers-chebfun", grf, err);
  return OPL_OK;
}

int opl_solve_burgers(const opl_burgers_params *p, const double *u0, const opl_solve_opts *o, double *out,
                      opl_solve_stats *stats, opl_err *err) {
  static const char fn[] = "solve_burgers";
  opl_solve_stats stl, *st = stats ? stats : &stl;
  double w0;
  stats_begin(st, &w0);
  opl_err e2 = {0};
  int rc = prefixed(fn, opl_burgers_check(p, &e2), &e2, err);
  if (rc) return rc;
  if ((rc = check_opts(fn, o, p->n, err))) return rc;
  if (o->scheme == OPL_SCHEME_FNO)
    return opl_err_set(err, OPL_ERR_ARG, "%s: the fno scheme is Navier-Stokes only (use etdrk4, rk, cn-heun, "
                       "cn-euler)", fn);
  if ((rc = check_finite(fn, "u0", u0, p->n, err))) return rc;
  if (!out) return opl_err_set(err, OPL_ERR_ARG, "%s: out is NULL", fn);
  opl_burgers *b = opl_burgers_new(p, o->grid, o->grid_flags, &e2);
  if (!b) return opl_err_set(err, e2.status, "%s: %s", fn, e2.msg);
  const opl_grid *g = opl_burgers_grid(b);
  solve_eq e = {.fn = fn, .g = g, .N = opl_burgers_nonlinear, .self = b, .rhs = opl_burgers_rhs, .kind = 0,
                .spd_a = 1.0};
  e.Lc = opl_pde_alloc(2 * g->nspec);
  e.Lr = opl_pde_alloc(g->nspec);
  e.sw = opl_pde_alloc(2 * g->nspec);
  e.sr = opl_pde_alloc(g->nreal);
  if (!e.Lc || !e.Lr || !e.sw || !e.sr) {
    rc = opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", fn);
  } else {
    opl_burgers_linear(b, e.Lc);
    opl_burgers_linear_real(b, e.Lr);
    rc = solve_run(&e, u0, o, out, st, err);
  }
  opl_pde_free(e.Lc);
  opl_pde_free(e.Lr);
  opl_pde_free(e.sw);
  opl_pde_free(e.sr);
  opl_burgers_free(&b);
  st->wall = wall_now() - w0;
  return rc;
}

int opl_solve_burgers_refinement(const opl_burgers_params *p, const double *u0, const opl_solve_opts *o,
                                 const double *out, double *maxdiff, opl_solve_stats *stats, opl_err *err) {
  static const char fn[] = "solve_burgers_refinement";
  opl_err e2 = {0};
  int rc = prefixed(fn, opl_burgers_check(p, &e2), &e2, err);
  if (rc) return rc;
  if ((rc = check_opts(fn, o, p->n, err))) return rc;
  if ((rc = check_finite(fn, "u0", u0, p->n, err))) return rc;
  if (!maxdiff) return opl_err_set(err, OPL_ERR_ARG, "%s: maxdiff is NULL", fn);
  const int sn = o->store_n ? o->store_n : p->n;
  const int64_t fsz = (int64_t)opl_solve_frames(o) * sn;
  opl_burgers_params p2 = *p;
  p2.n = 2 * p->n;
  opl_solve_opts o2 = *o;
  o2.store_n = sn;
  if (o->scheme == OPL_SCHEME_RK && o->dt == 0) {
    int q = o->rk_method == OPL_RK_BS3 ? 3 : 5;
    o2.rtol = ldexp(o->rtol, -q);
    o2.atol = ldexp(o->atol, -q);
  } else {
    o2.dt = o->dt / 2;
  }
  opl_grid *g1 = opl_grid_new_1d(p->n, p->L, OPL_GRID_ESTIMATE, &e2);
  opl_grid *g2 = g1 ? opl_grid_new_1d(p2.n, p->L, o->grid_flags, &e2) : NULL;
  double *u2 = opl_pde_alloc(p2.n), *rw = g2 ? opl_pde_alloc(opl_grid_resample_work(g1, g2)) : NULL;
  double *fine = opl_pde_alloc(fsz), *base = out ? NULL : opl_pde_alloc(fsz);
  if (!g1 || !g2) {
    rc = opl_err_set(err, e2.status, "%s: %s", fn, e2.msg);
    goto done;
  }
  if (!u2 || !rw || !fine || (!out && !base)) {
    rc = opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", fn);
    goto done;
  }
  if (!out) {
    if ((rc = opl_solve_burgers(p, u0, o, base, NULL, err))) goto done;
    out = base;
  }
  if ((rc = opl_grid_resample(g1, u0, g2, u2, rw, err))) goto done;
  o2.grid = g2;
  if ((rc = opl_solve_burgers(&p2, u2, &o2, fine, stats, err))) goto done;
  double md = 0;
  for (int64_t i = 0; i < fsz; i++) md = fmax(md, fabs(out[i] - fine[i]));
  *maxdiff = md;
done:
  opl_pde_free(u2);
  opl_pde_free(rw);
  opl_pde_free(fine);
  opl_pde_free(base);
  opl_grid_free(&g2);
  opl_grid_free(&g1);
  return rc;
}

/* ------------------------------------------------------------ KdV */

/* The step of the MP-PDE preset: ETDRK4 is not conservative, so the drift of int u^2 and H over
 * the run is its time error. Measured over 16 draws (seed 42) with 140 frames, relative to
 * int u^2 and to int (u_x^2/2 + |u|^3/6) (H itself can be ~0): worst drift 1.6e-8 at dt = 0.01,
 * 5.7e-10 at dt = 0.005, 2.0e-10 at dt = 0.004 (it falls as dt^5: a local-error effect).
 * dt = 0.005 keeps the drift below 1e-8 with a factor ~17; 20000 steps of 256 points take
 * ~0.3 s. int u is conserved to rounding by any step (N has no mean mode). */
int opl_solve_kdv_preset(const char *name, opl_kdv_params *p, opl_solve_opts *o, opl_err *err) {
  if (!name || !p || !o) return opl_err_set(err, OPL_ERR_ARG, "solve_kdv_preset: NULL argument");
  if (strcmp(name, "mppde") && strcmp(name, "default"))
    return opl_err_set(err, OPL_ERR_ARG, "solve_kdv_preset: unknown preset \"%s\" (known: mppde, default)", name);
  opl_solve_opts_default(o);
  *p = OPL_KDV_PARAMS(256, 128.0);
  o->T = 100.0;
  o->nt = 139;
  o->with_t0 = 1;
  o->dt = 0.005;
  return OPL_OK;
}

void opl_solve_kdv_apply_ic(const opl_kdv_ic *ic, opl_kdv_params *p, opl_solve_opts *o) {
  p->n = ic->n;
  p->L = ic->L;
  o->T = ic->T;
}

int opl_solve_kdv(const opl_kdv_params *p, const double *u0, const opl_solve_opts *o, double *out,
                  opl_solve_stats *stats, opl_err *err) {
  static const char fn[] = "solve_kdv";
  opl_solve_stats stl, *st = stats ? stats : &stl;
  double w0;
  stats_begin(st, &w0);
  opl_err e2 = {0};
  int rc = prefixed(fn, opl_kdv_check(p, &e2), &e2, err);
  if (rc) return rc;
  if ((rc = check_opts(fn, o, p->n, err))) return rc;
  if (o->scheme == OPL_SCHEME_CN_HEUN || o->scheme == OPL_SCHEME_CN_EULER || o->scheme == OPL_SCHEME_FNO)
    return opl_err_set(err, OPL_ERR_ARG, "%s: the %s scheme needs a real L(k), but KdV's is i b k^3 (use etdrk4 "
                       "or rk)", fn, scheme_names[o->scheme]);
  if ((rc = check_finite(fn, "u0", u0, p->n, err))) return rc;
  if (!out) return opl_err_set(err, OPL_ERR_ARG, "%s: out is NULL", fn);
  opl_kdv *k = opl_kdv_new(p, o->grid, o->grid_flags, &e2);
  if (!k) return opl_err_set(err, e2.status, "%s: %s", fn, e2.msg);
  const opl_grid *g = opl_kdv_grid(k);
  solve_eq e = {.fn = fn, .g = g, .N = opl_kdv_nonlinear, .self = k, .rhs = opl_kdv_rhs, .kind = 0,
                .spd_a = fabs(p->a)};
  e.Lc = opl_pde_alloc(2 * g->nspec);
  e.sw = opl_pde_alloc(2 * g->nspec);
  e.sr = opl_pde_alloc(g->nreal);
  if (!e.Lc || !e.sw || !e.sr) {
    rc = opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", fn);
  } else {
    opl_kdv_linear(k, e.Lc);
    rc = solve_run(&e, u0, o, out, st, err);
  }
  opl_pde_free(e.Lc);
  opl_pde_free(e.sw);
  opl_pde_free(e.sr);
  opl_kdv_free(&k);
  st->wall = wall_now() - w0;
  return rc;
}

/* ------------------------------------------------------------ Navier-Stokes */

/* The step of the Navier-Stokes presets is FNO's dt = 1e-4, taken with the second-order CN-Heun:
 * measured at 256^2 (nu = 1e-3, an ns-fno draw, T = 0.2) against CN-Heun with dt = 2.5e-5, its
 * error is 1.2e-9 (5.2e-9 at dt = 2e-4: order 2), while ns_2d.py's first-order scheme at the
 * same dt is 4.5e-6 away (9.1e-6 at 2e-4), max |omega| = 0.74. The CFL limit 1 only catches
 * gross violations (an ns-fno start at 256^2 with dt = 1e-4 has Courant number 0.002; blow-ups
 * of the explicit advection start near 1). test_solve_ns2d measures the orders (2 and 1) on
 * 32^2. */
int opl_solve_ns2d_preset(const char *name, opl_ns2d_params *p, opl_solve_opts *o, opl_grf_params *grf,
                          opl_err *err) {
  if (!name || !p || !o) return opl_err_set(err, OPL_ERR_ARG, "solve_ns2d_preset: NULL argument");
  double nu, T;
  if (!strcmp(name, "fno") || !strcmp(name, "fno-1e-3"))
    nu = 1e-3, T = 50;
  else if (!strcmp(name, "fno-1e-4"))
    nu = 1e-4, T = 30;
  else if (!strcmp(name, "fno-1e-5"))
    nu = 1e-5, T = 20;
  else
    return opl_err_set(err, OPL_ERR_ARG,
                       "solve_ns2d_preset: unknown preset \"%s\" (known: fno, fno-1e-3, fno-1e-4, fno-1e-5)", name);
  opl_solve_opts_default(o);
  *p = (opl_ns2d_params){.n = 256, .L = 1.0, .nu = nu, .forcing = OPL_NS2D_FORCE_FNO};
  o->T = T;
  o->nt = (int)T;
  o->scheme = OPL_SCHEME_CN_HEUN;
  o->dt = 1e-4;
  o->cfl = 1.0;
  o->store_n = 64;
  if (grf) return opl_grf_preset("ns-fno", grf, err);
  return OPL_OK;
}

int opl_solve_ns2d(const opl_ns2d_params *p, const double *w0, const opl_solve_opts *o, double *out,
                   opl_solve_stats *stats, opl_err *err) {
  static const char fn[] = "solve_ns2d";
  opl_solve_stats stl, *st = stats ? stats : &stl;
  double wt0;
  stats_begin(st, &wt0);
  opl_err e2 = {0};
  int rc = prefixed(fn, opl_ns2d_check(p, &e2), &e2, err);
  if (rc) return rc;
  if ((rc = check_opts(fn, o, p->n, err))) return rc;
  if ((rc = check_finite(fn, "w0", w0, (int64_t)p->n * p->n, err))) return rc;
  if (!out) return opl_err_set(err, OPL_ERR_ARG, "%s: out is NULL", fn);
  opl_ns2d *ns = opl_ns2d_new(p, o->grid, o->grid_flags, &e2);
  if (!ns) return opl_err_set(err, e2.status, "%s: %s", fn, e2.msg);
  const opl_grid *g = opl_ns2d_grid(ns);
  solve_eq e = {.fn = fn, .g = g, .N = opl_ns2d_nonlinear, .self = ns, .rhs = opl_ns2d_rhs, .kind = 1};
  fno_ns *f = NULL;
  double *force = NULL;
  e.Lc = opl_pde_alloc(2 * g->nspec);
  e.Lr = opl_pde_alloc(g->nspec);
  if (!e.Lc || !e.Lr) {
    rc = opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", fn);
    goto done;
  }
  opl_ns2d_linear(ns, e.Lc);
  opl_ns2d_linear_real(ns, e.Lr);
  if (o->scheme == OPL_SCHEME_FNO) {
    if (p->forcing != OPL_NS2D_FORCE_NONE) {
      force = opl_pde_alloc(g->nreal);
      if (force) opl_ns2d_forcing_field(ns, force);
    }
    f = (!p->forcing || force) ? fno_new(g, force) : NULL;
    if (!f) {
      rc = opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", fn);
      goto done;
    }
    for (int64_t i = 0; i < g->nspec; i++) e.Lr[i] = -p->nu * f->lap[i];
    e.N = fno_nonlinear;
    e.self = f;
    e.kind = 2;
  }
  rc = solve_run(&e, w0, o, out, st, err);
done:
  fno_free(&f);
  opl_pde_free(force);
  opl_pde_free(e.Lc);
  opl_pde_free(e.Lr);
  opl_ns2d_free(&ns);
  st->wall = wall_now() - wt0;
  return rc;
}

/* ------------------------------------------------------------ Allen-Cahn */

int opl_solve_allen_cahn(const opl_allen_cahn_params *p, const double *u0, const opl_solve_opts *o, double *out,
                         opl_solve_stats *stats, opl_err *err) {
  static const char fn[] = "solve_allen_cahn";
  opl_solve_stats stl, *st = stats ? stats : &stl;
  double w0;
  stats_begin(st, &w0);
  opl_err e2 = {0};
  int rc = prefixed(fn, opl_allen_cahn_check(p, &e2), &e2, err);
  if (rc) return rc;
  if ((rc = check_opts(fn, o, p->n, err))) return rc;
  if (o->scheme == OPL_SCHEME_FNO)
    return opl_err_set(err, OPL_ERR_ARG, "%s: the fno scheme is Navier-Stokes only (use etdrk4, rk, cn-heun, "
                       "cn-euler)", fn);
  if ((rc = check_finite(fn, "u0", u0, p->n, err))) return rc;
  if (!out) return opl_err_set(err, OPL_ERR_ARG, "%s: out is NULL", fn);
  opl_allen_cahn *a = opl_allen_cahn_new(p, o->grid, o->grid_flags, &e2);
  if (!a) return opl_err_set(err, e2.status, "%s: %s", fn, e2.msg);
  const opl_grid *g = opl_allen_cahn_grid(a);
  /* No advection: the Courant number of a cfl check is 0. */
  solve_eq e = {.fn = fn, .g = g, .N = opl_allen_cahn_nonlinear, .self = a, .rhs = opl_allen_cahn_rhs, .kind = 0,
                .spd_a = 0.0};
  e.Lc = opl_pde_alloc(2 * g->nspec);
  e.Lr = opl_pde_alloc(g->nspec);
  e.sw = opl_pde_alloc(2 * g->nspec);
  e.sr = opl_pde_alloc(g->nreal);
  if (!e.Lc || !e.Lr || !e.sw || !e.sr) {
    rc = opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", fn);
  } else {
    opl_allen_cahn_linear(a, e.Lc);
    opl_allen_cahn_linear_real(a, e.Lr);
    rc = solve_run(&e, u0, o, out, st, err);
  }
  opl_pde_free(e.Lc);
  opl_pde_free(e.Lr);
  opl_pde_free(e.sw);
  opl_pde_free(e.sr);
  opl_allen_cahn_free(&a);
  st->wall = wall_now() - w0;
  return rc;
}
