/* opl pde — 2-D Navier-Stokes in vorticity form: linear symbol, dealiased nonlinear term
 * (4 batched inverse transforms + 1 forward), right-hand side, velocity, diagnostics, exact
 * solutions. See ns2d.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pde/ns2d.h"


struct opl_ns2d {
  opl_ns2d_params p;
  const opl_grid *g;
  opl_grid *own;
  double *ik2;      /* [nspec] 1/|k|^2 (0 at k = 0) */
  double *fh;       /* [2 nspec] forcing spectrum, or NULL */
  double *spec4;    /* [4][2 nspec]: u_hat, v_hat, omega_x hat, omega_y hat */
  double *real4;    /* [4][nreal]:   u, v, omega_x, omega_y */
  double *a, *b;    /* [2 nspec] */
  const double *last_in;  /* input of the last opl_ns2d_nonlinear call */
  double last_speed;      /* max |u| of its (dealiased) velocity */
};

int opl_ns2d_check(const opl_ns2d_params *p, opl_err *err) {
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "ns2d: NULL parameters");
  if (p->n < 4 || p->n % 2) return opl_err_set(err, OPL_ERR_ARG, "ns2d: n = %d must be even and >= 4", p->n);
  if (!(p->L > 0) || !isfinite(p->L))
    return opl_err_set(err, OPL_ERR_ARG, "ns2d: L = %g must be finite and > 0", p->L);
  if (!(p->nu > 0) || !isfinite(p->nu))
    return opl_err_set(err, OPL_ERR_ARG, "ns2d: nu = %g must be finite and > 0", p->nu);
  if (p->forcing != OPL_NS2D_FORCE_NONE && p->forcing != OPL_NS2D_FORCE_FNO)
    return opl_err_set(err, OPL_ERR_ARG, "ns2d: forcing = %d is not OPL_NS2D_FORCE_NONE (0) or _FNO (1)",
                       p->forcing);
  return OPL_OK;
}

opl_ns2d *opl_ns2d_new(const opl_ns2d_params *p, const opl_grid *grid, unsigned grid_flags, opl_err *err) {
  if (opl_ns2d_check(p, err)) return NULL;
  if (grid && (grid->dim != 2 || grid->n[0] != p->n || grid->n[1] != p->n ||
               fabs(grid->L[0] - p->L) > 1e-12 * p->L || fabs(grid->L[1] - p->L) > 1e-12 * p->L)) {
    opl_err_set(err, OPL_ERR_ARG,
                "ns2d: the shared grid (%d-D, %d x %d, %g x %g) does not match n = %d, L = %g", grid->dim,
                grid->n[0], grid->n[1], grid->L[0], grid->L[1], p->n, p->L);
    return NULL;
  }
  opl_ns2d *ns = calloc(1, sizeof *ns);
  if (!ns) {
    opl_err_set(err, OPL_ERR_NOMEM, "ns2d: out of memory");
    return NULL;
  }
  ns->p = *p;
  if (!grid) {
    ns->own = opl_grid_new_2d(p->n, p->n, p->L, p->L, grid_flags, err);
    if (!ns->own) {
      free(ns);
      return NULL;
    }
    grid = ns->own;
  }
  ns->g = grid;
  ns->ik2 = opl_pde_alloc(grid->nspec);
  ns->spec4 = opl_pde_alloc(4 * 2 * grid->nspec);
  ns->real4 = opl_pde_alloc(4 * grid->nreal);
  ns->a = opl_pde_alloc(2 * grid->nspec);
  ns->b = opl_pde_alloc(2 * grid->nspec);
  if (!ns->ik2 || !ns->spec4 || !ns->real4 || !ns->a || !ns->b) {
    opl_ns2d_free(&ns);
    opl_err_set(err, OPL_ERR_NOMEM, "ns2d: out of memory");
    return NULL;
  }
  for (int64_t e = 0; e < grid->nspec; e++) {
    double k2 = opl_grid_k2(grid, e);
    ns->ik2[e] = k2 > 0 ? 1.0 / k2 : 0.0;
  }
  if (p->forcing == OPL_NS2D_FORCE_FNO) {
    double *f = ns->real4;
    for (int i = 0; i < p->n; i++)
      for (int j = 0; j < p->n; j++) {
        double s = 2 * M_PI * (opl_grid_x(grid, 0, i) + opl_grid_x(grid, 1, j)) / p->L;
        f[(int64_t)i * p->n + j] = 0.1 * (sin(s) + cos(s));
      }
    opl_ns2d_set_forcing(ns, f);
    if (!ns->fh) {
      opl_ns2d_free(&ns);
      opl_err_set(err, OPL_ERR_NOMEM, "ns2d: out of memory");
      return NULL;
    }
  }
  return ns;
}

void opl_ns2d_free(opl_ns2d **nsp) {
  if (!nsp || !*nsp) return;
  opl_ns2d *ns = *nsp;
  opl_pde_free(ns->ik2);
  opl_pde_free(ns->fh);
  opl_pde_free(ns->spec4);
  opl_pde_free(ns->real4);
  opl_pde_free(ns->a);
  opl_pde_free(ns->b);
  opl_grid_free(&ns->own);
  free(ns);
  *nsp = NULL;
}

const opl_grid *opl_ns2d_grid(const opl_ns2d *ns) { return ns->g; }
const opl_ns2d_params *opl_ns2d_params_of(const opl_ns2d *ns) { return &ns->p; }

void opl_ns2d_set_forcing(opl_ns2d *ns, const double *f) {
  if (!f) {
    opl_pde_free(ns->fh);
    ns->fh = NULL;
    return;
  }
  if (!ns->fh) ns->fh = opl_pde_alloc(2 * ns->g->nspec);
  if (ns->fh) opl_grid_forward(ns->g, f, ns->fh);
}

void opl_ns2d_forcing_field(opl_ns2d *ns, double *f) {
  if (!ns->fh) {
    memset(f, 0, sizeof(double) * (size_t)ns->g->nreal);
    return;
  }
  memcpy(ns->b, ns->fh, sizeof(double) * 2 * (size_t)ns->g->nspec);
  opl_grid_inverse(ns->g, ns->b, f);
}

void opl_ns2d_linear(const opl_ns2d *ns, double *Lk) {
  for (int64_t e = 0; e < ns->g->nspec; e++) {
    Lk[2 * e] = -ns->p.nu * opl_grid_k2(ns->g, e);
    Lk[2 * e + 1] = 0;
  }
}

/* The four dealiased spectra of the advection term, scaled by s = 1/nreal for raw inverses:
 *   wh   [nrow][nch] complex  vorticity (unnormalized)
 *   spec [4][nrow][nch] complex  out: u_hat, v_hat, omega_x hat, omega_y hat
 * u_hat = i ky psi, v_hat = -i kx psi, psi = omega / |k|^2; entries outside the 2/3 band 0. */
static void ns_build_spectra(const opl_ns2d *ns, const double *restrict wh, double *restrict spec) {
  const opl_grid *g = ns->g;
  const int nch = g->nch, nrow = g->nrow;
  const int64_t S = 2 * g->nspec;
  const double s = 1.0 / (double)g->nreal;
  int cmax = 0; /* kept columns are the prefix 0..cmax-1 */
  while (cmax < nch && g->keep_col[cmax]) cmax++;
  double *restrict su = spec, *restrict sv = spec + S, *restrict sx = spec + 2 * S, *restrict sy = spec + 3 * S;
#pragma omp parallel for if (g->par && g->nspec > OPL_PDE_PAR_MIN / 2) schedule(static)
  for (int r = 0; r < nrow; r++) {
    int64_t o = 2 * (int64_t)r * nch;
    if (!g->keep_row[r]) {
      memset(su + o, 0, sizeof(double) * 2 * nch);
      memset(sv + o, 0, sizeof(double) * 2 * nch);
      memset(sx + o, 0, sizeof(double) * 2 * nch);
      memset(sy + o, 0, sizeof(double) * 2 * nch);
      continue;
    }
    const double kx = g->krow[r];
    const double *w = wh + o, *ik2 = ns->ik2 + (int64_t)r * nch;
    double *pu = su + o, *pv = sv + o, *px = sx + o, *py = sy + o;
    for (int c = 0; c < cmax; c++) {
      double ky = g->kcol[c];
      double wr = s * w[2 * c], wi = s * w[2 * c + 1];
      double pr = wr * ik2[c], pi = wi * ik2[c];
      pu[2 * c] = -ky * pi, pu[2 * c + 1] = ky * pr;
      pv[2 * c] = kx * pi, pv[2 * c + 1] = -kx * pr;
      px[2 * c] = -kx * wi, px[2 * c + 1] = kx * wr;
      py[2 * c] = -ky * wi, py[2 * c + 1] = ky * wr;
    }
    size_t rest = sizeof(double) * 2 * (size_t)(nch - cmax);
    memset(pu + 2 * cmax, 0, rest);
    memset(pv + 2 * cmax, 0, rest);
    memset(px + 2 * cmax, 0, rest);
    memset(py + 2 * cmax, 0, rest);
  }
}

int opl_ns2d_nonlinear(void *self, double t, const double *wh, double *nh) {
  (void)t;
  opl_ns2d *ns = self;
  const opl_grid *g = ns->g;
  const int64_t N = g->nreal;
  ns_build_spectra(ns, wh, ns->spec4);
  opl_grid_inverse_many_raw(g, 4, ns->spec4, ns->real4);
  double *restrict q = ns->real4;
  const double *restrict v = ns->real4 + N, *restrict wx = ns->real4 + 2 * N, *restrict wy = ns->real4 + 3 * N;
  double s2 = 0; /* max |u|^2, fused into the product pass for the CFL check */
#pragma omp parallel for if (g->par && N > OPL_PDE_PAR_MIN) reduction(max : s2) schedule(static)
  for (int64_t i = 0; i < N; i++) {
    double uu = q[i], vv = v[i], sp = uu * uu + vv * vv;
    s2 = sp > s2 ? sp : s2;
    q[i] = uu * wx[i] + vv * wy[i];
  }
  ns->last_in = nh == wh ? NULL : wh; /* in place: the input is gone */
  ns->last_speed = sqrt(s2);
  opl_grid_forward(g, q, nh);
  const int nch = g->nch;
  const double *fh = ns->fh;
#pragma omp parallel for if (g->par && g->nspec > OPL_PDE_PAR_MIN / 2) schedule(static)
  for (int r = 0; r < g->nrow; r++) {
    double *p = nh + 2 * (int64_t)r * nch;
    const double *f = fh ? fh + 2 * (int64_t)r * nch : NULL;
    for (int c = 0; c < nch; c++) {
      double m = (g->keep_row[r] && g->keep_col[c]) ? -1.0 : 0.0;
      p[2 * c] = m * p[2 * c] + (f ? f[2 * c] : 0.0);
      p[2 * c + 1] = m * p[2 * c + 1] + (f ? f[2 * c + 1] : 0.0);
    }
  }
  return 0;
}

int opl_ns2d_rhs(void *self, double t, const void *omega, void *dwdt) {
  opl_ns2d *ns = self;
  const opl_grid *g = ns->g;
  opl_grid_forward(g, omega, ns->a);
  opl_ns2d_nonlinear(ns, t, ns->a, ns->b);
  const double s = 1.0 / (double)g->nreal, nu = ns->p.nu;
  double *a = ns->a, *b = ns->b;
#pragma omp parallel for if (g->par && g->nspec > OPL_PDE_PAR_MIN / 2) schedule(static)
  for (int64_t e = 0; e < g->nspec; e++) {
    double l = -nu * opl_grid_k2(g, e);
    b[2 * e] = s * (b[2 * e] + l * a[2 * e]);
    b[2 * e + 1] = s * (b[2 * e + 1] + l * a[2 * e + 1]);
  }
  opl_grid_inverse_raw(g, b, dwdt);
  return 0;
}

void opl_ns2d_velocity(opl_ns2d *ns, const double *wh, double *u, double *v) {
  const opl_grid *g = ns->g;
  const double s = 1.0 / (double)g->nreal;
  double *psi = ns->a, *sp = ns->b;
  for (int64_t e = 0; e < g->nspec; e++) {
    psi[2 * e] = s * ns->ik2[e] * wh[2 * e];
    psi[2 * e + 1] = s * ns->ik2[e] * wh[2 * e + 1];
  }
  if (u) {
    opl_grid_deriv_spec(g, 0, 1, psi, sp); /* u = psi_y */
    opl_grid_inverse_raw(g, sp, u);
  }
  if (v) {
    opl_grid_deriv_spec(g, 1, 0, psi, sp); /* v = -psi_x */
    for (int64_t i = 0; i < 2 * g->nspec; i++) sp[i] = -sp[i];
    opl_grid_inverse_raw(g, sp, v);
  }
}

double opl_ns2d_max_velocity(opl_ns2d *ns, const double *wh, double *umax, double *vmax) {
  const int64_t N = ns->g->nreal;
  double *u = ns->real4, *v = ns->real4 + N;
  opl_ns2d_velocity(ns, wh, u, v);
  double mu = 0, mv = 0, ms = 0;
  for (int64_t i = 0; i < N; i++) {
    mu = fmax(mu, fabs(u[i]));
    mv = fmax(mv, fabs(v[i]));
    ms = fmax(ms, u[i] * u[i] + v[i] * v[i]);
  }
  if (umax) *umax = mu;
  if (vmax) *vmax = mv;
  return sqrt(ms);
}

double opl_ns2d_speed(void *self, double t, const double *wh) {
  (void)t;
  opl_ns2d *ns = self;
  if (wh == ns->last_in) return ns->last_speed;
  ns_build_spectra(ns, wh, ns->spec4);
  opl_grid_inverse_many_raw(ns->g, 2, ns->spec4, ns->real4);
  const int64_t N = ns->g->nreal;
  const double *u = ns->real4, *v = ns->real4 + N;
  double s2 = 0;
  for (int64_t i = 0; i < N; i++) s2 = fmax(s2, u[i] * u[i] + v[i] * v[i]);
  return sqrt(s2);
}

void opl_ns2d_linear_real(const opl_ns2d *ns, double *Lr) {
  for (int64_t e = 0; e < ns->g->nspec; e++) Lr[e] = -ns->p.nu * opl_grid_k2(ns->g, e);
}

double opl_ns2d_energy(const opl_ns2d *ns, const double *wh) {
  const opl_grid *g = ns->g;
  double s = 0;
  for (int64_t e = 0; e < g->nspec; e++)
    s += opl_grid_herm_weight(g, e) * ns->ik2[e] * (wh[2 * e] * wh[2 * e] + wh[2 * e + 1] * wh[2 * e + 1]);
  double N = (double)g->nreal;
  return 0.5 * s * g->L[0] * g->L[1] / (N * N);
}

double opl_ns2d_enstrophy(const opl_ns2d *ns, const double *wh) { return 0.5 * opl_grid_parseval(ns->g, wh); }

double opl_ns2d_taylor_green(const opl_ns2d_params *p, double A, double x, double y, double t) {
  double k = 2 * M_PI / p->L;
  return A * sin(k * x) * sin(k * y) * exp(-2 * k * k * p->nu * t);
}
