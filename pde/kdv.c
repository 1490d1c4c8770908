/* opl pde — Korteweg-de Vries: linear symbol, dealiased nonlinear term, right-hand side,
 * invariants, one- and two-soliton solutions, the MP-PDE initial condition. See kdv.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pde/kdv.h"

struct opl_kdv {
  opl_kdv_params p;
  const opl_grid *g;
  opl_grid *own;
  double *a, *b;    /* [2 nspec] spectra */
  double *r;        /* [n] physical scratch */
  double *work;     /* [2 nspec + n] for opl_grid_square_dealiased */
};

int opl_kdv_check(const opl_kdv_params *p, opl_err *err) {
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "kdv: NULL parameters");
  if (p->n < 4 || p->n % 2) return opl_err_set(err, OPL_ERR_ARG, "kdv: n = %d must be even and >= 4", p->n);
  if (!(p->L > 0) || !isfinite(p->L))
    return opl_err_set(err, OPL_ERR_ARG, "kdv: L = %g must be finite and > 0", p->L);
  if (!isfinite(p->a)) return opl_err_set(err, OPL_ERR_ARG, "kdv: a = %g must be finite", p->a);
  if (!isfinite(p->b)) return opl_err_set(err, OPL_ERR_ARG, "kdv: b = %g must be finite", p->b);
  return OPL_OK;
}

opl_kdv *opl_kdv_new(const opl_kdv_params *p, const opl_grid *grid, unsigned grid_flags, opl_err *err) {
  if (opl_kdv_check(p, err)) return NULL;
  if (grid && (grid->dim != 1 || grid->n[0] != p->n || fabs(grid->L[0] - p->L) > 1e-12 * p->L)) {
    opl_err_set(err, OPL_ERR_ARG, "kdv: the shared grid (%d-D, n = %d, L = %g) does not match n = %d, L = %g",
                grid->dim, grid->n[0], grid->L[0], p->n, p->L);
    return NULL;
  }
  opl_kdv *k = calloc(1, sizeof *k);
  if (!k) {
    opl_err_set(err, OPL_ERR_NOMEM, "kdv: out of memory");
    return NULL;
  }
  k->p = *p;
  if (!grid) {
    k->own = opl_grid_new_1d(p->n, p->L, grid_flags, err);
    if (!k->own) {
      free(k);
      return NULL;
    }
    grid = k->own;
  }
  k->g = grid;
  k->a = opl_pde_alloc(2 * grid->nspec);
  k->b = opl_pde_alloc(2 * grid->nspec);
  k->r = opl_pde_alloc(grid->nreal);
  k->work = opl_pde_alloc(2 * grid->nspec + grid->nreal);
  if (!k->a || !k->b || !k->r || !k->work) {
    opl_kdv_free(&k);
    opl_err_set(err, OPL_ERR_NOMEM, "kdv: out of memory");
    return NULL;
  }
  return k;
}

void opl_kdv_free(opl_kdv **kp) {
  if (!kp || !*kp) return;
  opl_kdv *k = *kp;
  opl_pde_free(k->a);
  opl_pde_free(k->b);
  opl_pde_free(k->r);
  opl_pde_free(k->work);
  opl_grid_free(&k->own);
  free(k);
  *kp = NULL;
}

const opl_grid *opl_kdv_grid(const opl_kdv *k) { return k->g; }
const opl_kdv_params *opl_kdv_params_of(const opl_kdv *k) { return &k->p; }

/* i b k^3 with the Nyquist bin zeroed (odd order). */
static inline double kdv_lin_im(const opl_grid *g, double b, int c) {
  double k = g->kcol[c];
  return c == g->nc / 2 ? 0.0 : b * k * k * k;
}

void opl_kdv_linear(const opl_kdv *k, double *Lk) {
  for (int c = 0; c < k->g->nch; c++) {
    Lk[2 * c] = 0;
    Lk[2 * c + 1] = kdv_lin_im(k->g, k->p.b, c);
  }
}

int opl_kdv_nonlinear(void *self, double t, const double *uh, double *nh) {
  (void)t;
  opl_kdv *k = self;
  const opl_grid *g = k->g;
  opl_grid_square_dealiased(g, uh, nh, k->work);
  double h = 0.5 * k->p.a;
  for (int c = 0; c < g->nch; c++) { /* -(a/2) i k (re + i im) = (a/2) k im - i (a/2) k re */
    double kk = g->kcol[c], re = nh[2 * c], im = nh[2 * c + 1];
    nh[2 * c] = h * kk * im;
    nh[2 * c + 1] = -h * kk * re;
  }
  return 0;
}

int opl_kdv_rhs(void *self, double t, const void *uv, void *dv) {
  opl_kdv *k = self;
  const opl_grid *g = k->g;
  opl_grid_forward(g, uv, k->a);
  opl_kdv_nonlinear(k, t, k->a, k->b);
  double s = 1.0 / (double)g->nreal;
  for (int c = 0; c < g->nch; c++) { /* + i w (re + i im) = -w im + i w re */
    double w = kdv_lin_im(g, k->p.b, c);
    k->b[2 * c] = s * (k->b[2 * c] - w * k->a[2 * c + 1]);
    k->b[2 * c + 1] = s * (k->b[2 * c + 1] + w * k->a[2 * c]);
  }
  opl_grid_inverse_raw(g, k->b, dv);
  return 0;
}

void opl_kdv_invariants(opl_kdv *k, const double *u, double out[3]) {
  const opl_grid *g = k->g;
  int64_t n = g->nreal;
  opl_grid_deriv(g, 1, 0, u, k->r, k->a);
  double i1 = 0, i2 = 0, h = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = u[i], vx = k->r[i];
    i1 += v;
    i2 += v * v;
    h += 0.5 * k->p.b * vx * vx - k->p.a / 6.0 * v * v * v;
  }
  double dx = g->dx[0];
  out[0] = i1 * dx;
  out[1] = i2 * dx;
  out[2] = h * dx;
}

double opl_kdv_soliton(const opl_kdv_params *p, double c, double x0, double x, double t) {
  OPL_ASSERT(p->a != 0 && p->b != 0 && c > 0, "kdv_soliton: a = %g, b = %g, c = %g", p->a, p->b, c);
  double s = x - p->b * c * t - x0;
  if (p->L > 0) s -= p->L * floor(s / p->L + 0.5);
  double ch = cosh(0.5 * sqrt(c) * s);
  return 6 * p->b / p->a * 0.5 * c / (ch * ch);
}

double opl_kdv_two_soliton(const opl_kdv_params *p, double k1, double k2, double x1, double x2, double x,
                           double t) {
  OPL_ASSERT(p->a != 0 && p->b != 0 && k1 > 0 && k2 > 0 && k1 != k2, "kdv_two_soliton: a = %g, b = %g, k = %g, %g",
             p->a, p->b, k1, k2);
  double tb = p->b * t;
  double e1 = k1 * (x - x1) - k1 * k1 * k1 * tb, e2 = k2 * (x - x2) - k2 * k2 * k2 * tb;
  double lA = 2 * log(fabs(k1 - k2) / (k1 + k2));
  double e[4] = {0, e1, e2, e1 + e2 + lA}, kap[4] = {0, k1, k2, k1 + k2};
  double m = e[0];
  for (int i = 1; i < 4; i++) m = fmax(m, e[i]);
  double cc[4], F = 0, num = 0;
  for (int i = 0; i < 4; i++) F += cc[i] = exp(e[i] - m);
  for (int i = 0; i < 4; i++)
    for (int j = i + 1; j < 4; j++) num += cc[i] * cc[j] * (kap[i] - kap[j]) * (kap[i] - kap[j]);
  double w = 2 * num / (F * F);
  return 6 * p->b / p->a * w;
}

void opl_kdv_ic_mppde(opl_rng *stream, opl_kdv_ic *ic) {
  ic->L = 128.0 * (0.9 + 0.2 * opl_rng_uniform(stream));
  ic->T = 100.0 * (0.9 + 0.2 * opl_rng_uniform(stream));
  ic->n = 256;
  for (int j = 0; j < OPL_KDV_IC_MODES; j++) {
    ic->A[j] = opl_rng_uniform(stream) - 0.5;
    ic->phi[j] = 2 * M_PI * opl_rng_uniform(stream);
    ic->l[j] = 1 + (opl_rng_uniform(stream) >= 0.5);
  }
}

void opl_kdv_ic_mppde_seeded(uint64_t seed, uint64_t index, opl_kdv_ic *ic) {
  opl_rng parent;
  opl_rng_seed(&parent, seed);
  opl_rng child = opl_rng_split(&parent, index);
  opl_kdv_ic_mppde(&child, ic);
}

void opl_kdv_ic_eval(const opl_kdv_ic *ic, double *u) {
  for (int i = 0; i < ic->n; i++) {
    double x = i * ic->L / ic->n, s = 0;
    for (int j = 0; j < OPL_KDV_IC_MODES; j++) s += ic->A[j] * sin(2 * M_PI * ic->l[j] * x / ic->L + ic->phi[j]);
    u[i] = s;
  }
}
