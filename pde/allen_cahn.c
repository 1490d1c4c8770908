/* opl pde — Allen-Cahn: linear symbol, nonlinear reaction term, right-hand side, energy.
 * See allen_cahn.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pde/allen_cahn.h"

struct opl_allen_cahn {
  opl_allen_cahn_params p;
  const opl_grid *g;
  opl_grid *own;
  double *a, *b;    /* [2 nspec] spectra */
  double *r;        /* [n] physical scratch */
};

int opl_allen_cahn_check(const opl_allen_cahn_params *p, opl_err *err) {
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "allen_cahn: NULL parameters");
  if (p->n < 4 || p->n % 2)
    return opl_err_set(err, OPL_ERR_ARG, "allen_cahn: n = %d must be even and >= 4", p->n);
  if (!(p->L > 0) || !isfinite(p->L))
    return opl_err_set(err, OPL_ERR_ARG, "allen_cahn: L = %g must be finite and > 0", p->L);
  if (!(p->diffusion > 0) || !isfinite(p->diffusion))
    return opl_err_set(err, OPL_ERR_ARG, "allen_cahn: diffusion = %g must be finite and > 0", p->diffusion);
  if (!(p->reaction >= 0) || !isfinite(p->reaction))
    return opl_err_set(err, OPL_ERR_ARG, "allen_cahn: reaction = %g must be finite and >= 0", p->reaction);
  return OPL_OK;
}

opl_allen_cahn *opl_allen_cahn_new(const opl_allen_cahn_params *p, const opl_grid *grid, unsigned grid_flags,
                                   opl_err *err) {
  if (opl_allen_cahn_check(p, err)) return NULL;
  if (grid && (grid->dim != 1 || grid->n[0] != p->n || fabs(grid->L[0] - p->L) > 1e-12 * p->L)) {
    opl_err_set(err, OPL_ERR_ARG,
                "allen_cahn: the shared grid (%d-D, n = %d, L = %g) does not match n = %d, L = %g", grid->dim,
                grid->n[0], grid->L[0], p->n, p->L);
    return NULL;
  }
  opl_allen_cahn *a = calloc(1, sizeof *a);
  if (!a) {
    opl_err_set(err, OPL_ERR_NOMEM, "allen_cahn: out of memory");
    return NULL;
  }
  a->p = *p;
  if (!grid) {
    a->own = opl_grid_new_1d(p->n, p->L, grid_flags, err);
    if (!a->own) {
      free(a);
      return NULL;
    }
    grid = a->own;
  }
  a->g = grid;
  a->a = opl_pde_alloc(2 * grid->nspec);
  a->b = opl_pde_alloc(2 * grid->nspec);
  a->r = opl_pde_alloc(grid->nreal);
  if (!a->a || !a->b || !a->r) {
    opl_allen_cahn_free(&a);
    opl_err_set(err, OPL_ERR_NOMEM, "allen_cahn: out of memory");
    return NULL;
  }
  return a;
}

void opl_allen_cahn_free(opl_allen_cahn **ap) {
  if (!ap || !*ap) return;
  opl_allen_cahn *a = *ap;
  opl_pde_free(a->a);
  opl_pde_free(a->b);
  opl_pde_free(a->r);
  opl_grid_free(&a->own);
  free(a);
  *ap = NULL;
}

const opl_grid *opl_allen_cahn_grid(const opl_allen_cahn *a) { return a->g; }
const opl_allen_cahn_params *opl_allen_cahn_params_of(const opl_allen_cahn *a) { return &a->p; }

void opl_allen_cahn_linear(const opl_allen_cahn *a, double *Lk) {
  for (int c = 0; c < a->g->nch; c++) {
    double k = a->g->kcol[c];
    Lk[2 * c] = -a->p.diffusion * k * k;
    Lk[2 * c + 1] = 0;
  }
}

void opl_allen_cahn_linear_real(const opl_allen_cahn *a, double *Lr) {
  for (int c = 0; c < a->g->nch; c++) Lr[c] = -a->p.diffusion * a->g->kcol[c] * a->g->kcol[c];
}

int opl_allen_cahn_nonlinear(void *self, double t, const double *uh, double *nh) {
  (void)t;
  opl_allen_cahn *a = self;
  const opl_grid *g = a->g;
  const double s = 1.0 / (double)g->nreal, r = a->p.reaction;
  for (int c = 0; c < g->nch; c++) { /* P uh / n: the physical field after the raw inverse */
    double m = g->keep_col[c] ? s : 0.0;
    a->a[2 * c] = m * uh[2 * c];
    a->a[2 * c + 1] = m * uh[2 * c + 1];
  }
  opl_grid_inverse_raw(g, a->a, a->r);
  for (int64_t i = 0; i < g->nreal; i++) {
    double v = a->r[i];
    a->r[i] = r * (v - v * v * v);
  }
  opl_grid_forward(g, a->r, nh);
  opl_grid_dealias(g, nh);
  return 0;
}

int opl_allen_cahn_rhs(void *self, double t, const void *uv, void *dv) {
  opl_allen_cahn *a = self;
  const opl_grid *g = a->g;
  opl_grid_forward(g, uv, a->b);
  memcpy(a->a, a->b, sizeof(double) * 2 * (size_t)g->nspec); /* nonlinear() overwrites a->a */
  opl_allen_cahn_nonlinear(a, t, a->a, a->a);
  double d = a->p.diffusion, s = 1.0 / (double)g->nreal;
  for (int c = 0; c < g->nch; c++) {
    double k2 = g->kcol[c] * g->kcol[c];
    a->b[2 * c] = s * (a->a[2 * c] - d * k2 * a->b[2 * c]);
    a->b[2 * c + 1] = s * (a->a[2 * c + 1] - d * k2 * a->b[2 * c + 1]);
  }
  opl_grid_inverse_raw(g, a->b, dv);
  return 0;
}

double opl_allen_cahn_energy(opl_allen_cahn *a, const double *u) {
  const opl_grid *g = a->g;
  double *work = a->a; /* [2 nspec] scratch for the derivative */
  opl_grid_deriv(g, 1, 0, u, a->r, work);
  double e = 0, d = a->p.diffusion, r = a->p.reaction;
  for (int64_t i = 0; i < g->nreal; i++) {
    double w = u[i] * u[i] - 1;
    e += 0.5 * d * a->r[i] * a->r[i] + 0.25 * r * w * w;
  }
  return e * g->dx[0];
}
