/* opl pde — viscous Burgers' equation: linear symbol, dealiased nonlinear term, full
 * right-hand side, energy budget, Cole-Hopf exact solution. See burgers.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pde/burgers.h"

struct opl_burgers {
  opl_burgers_params p;
  const opl_grid *g;
  opl_grid *own;     /* the grid when made here */
  double *a, *b;     /* [2 nspec] spectra */
  double *work;      /* [2 nspec + n] for opl_grid_square_dealiased */
};

int opl_burgers_check(const opl_burgers_params *p, opl_err *err) {
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "burgers: NULL parameters");
  if (p->n < 4 || p->n % 2)
    return opl_err_set(err, OPL_ERR_ARG, "burgers: n = %d must be even and >= 4", p->n);
  if (!(p->L > 0) || !isfinite(p->L))
    return opl_err_set(err, OPL_ERR_ARG, "burgers: L = %g must be finite and > 0", p->L);
  if (!(p->nu > 0) || !isfinite(p->nu))
    return opl_err_set(err, OPL_ERR_ARG, "burgers: nu = %g must be finite and > 0", p->nu);
  return OPL_OK;
}

opl_burgers *opl_burgers_new(const opl_burgers_params *p, const opl_grid *grid, unsigned grid_flags,
                             opl_err *err) {
  if (opl_burgers_check(p, err)) return NULL;
  if (grid && (grid->dim != 1 || grid->n[0] != p->n || fabs(grid->L[0] - p->L) > 1e-12 * p->L)) {
    opl_err_set(err, OPL_ERR_ARG, "burgers: the shared grid (%d-D, n = %d, L = %g) does not match n = %d, L = %g",
                grid->dim, grid->n[0], grid->L[0], p->n, p->L);
    return NULL;
  }
  opl_burgers *b = calloc(1, sizeof *b);
  if (!b) {
    opl_err_set(err, OPL_ERR_NOMEM, "burgers: out of memory");
    return NULL;
  }
  b->p = *p;
  if (!grid) {
    b->own = opl_grid_new_1d(p->n, p->L, grid_flags, err);
    if (!b->own) {
      free(b);
      return NULL;
    }
    grid = b->own;
  }
  b->g = grid;
  b->a = opl_pde_alloc(2 * grid->nspec);
  b->b = opl_pde_alloc(2 * grid->nspec);
  b->work = opl_pde_alloc(2 * grid->nspec + grid->nreal);
  if (!b->a || !b->b || !b->work) {
    opl_burgers_free(&b);
    opl_err_set(err, OPL_ERR_NOMEM, "burgers: out of memory");
    return NULL;
  }
  return b;
}

void opl_burgers_free(opl_burgers **bp) {
  if (!bp || !*bp) return;
  opl_burgers *b = *bp;
  opl_pde_free(b->a);
  opl_pde_free(b->b);
  opl_pde_free(b->work);
  opl_grid_free(&b->own);
  free(b);
  *bp = NULL;
}

const opl_grid *opl_burgers_grid(const opl_burgers *b) { return b->g; }
const opl_burgers_params *opl_burgers_params_of(const opl_burgers *b) { return &b->p; }

void opl_burgers_linear(const opl_burgers *b, double *Lk) {
  for (int c = 0; c < b->g->nch; c++) {
    double k = b->g->kcol[c];
    Lk[2 * c] = -b->p.nu * k * k;
    Lk[2 * c + 1] = 0;
  }
}

void opl_burgers_linear_real(const opl_burgers *b, double *Lr) {
  for (int c = 0; c < b->g->nch; c++) Lr[c] = -b->p.nu * b->g->kcol[c] * b->g->kcol[c];
}

/* nh[nch] = -(i k / 2) sq[nch] (in place allowed): (a + ib)(-ik/2) = k b / 2 - i k a / 2. */
static void burgers_ddx_half(const opl_grid *g, const double *sq, double *nh) {
  for (int c = 0; c < g->nch; c++) {
    double k = g->kcol[c], re = sq[2 * c], im = sq[2 * c + 1];
    nh[2 * c] = 0.5 * k * im;
    nh[2 * c + 1] = -0.5 * k * re;
  }
}

int opl_burgers_nonlinear(void *self, double t, const double *uh, double *nh) {
  (void)t;
  opl_burgers *b = self;
  opl_grid_square_dealiased(b->g, uh, nh, b->work);
  burgers_ddx_half(b->g, nh, nh);
  return 0;
}

int opl_burgers_rhs(void *self, double t, const void *uv, void *dv) {
  opl_burgers *b = self;
  const opl_grid *g = b->g;
  const double *u = uv;
  double *dudt = dv;
  opl_grid_forward(g, u, b->a);
  opl_burgers_nonlinear(b, t, b->a, b->b);
  double nu = b->p.nu, s = 1.0 / (double)g->nreal;
  for (int c = 0; c < g->nch; c++) {
    double k2 = g->kcol[c] * g->kcol[c];
    b->b[2 * c] = s * (b->b[2 * c] - nu * k2 * b->a[2 * c]);
    b->b[2 * c + 1] = s * (b->b[2 * c + 1] - nu * k2 * b->a[2 * c + 1]);
  }
  opl_grid_inverse_raw(g, b->b, dudt);
  return 0;
}

double opl_burgers_energy(const opl_burgers *b, const double *u) {
  double s = 0;
  for (int64_t i = 0; i < b->g->nreal; i++) s += u[i] * u[i];
  return 0.5 * s * b->g->dx[0];
}

double opl_burgers_dissipation(opl_burgers *b, const double *u) {
  const opl_grid *g = b->g;
  opl_grid_forward(g, u, b->a);
  double s = 0;
  for (int c = 0; c < g->nch; c++) {
    double k2 = g->kcol[c] * g->kcol[c];
    s += opl_grid_herm_weight(g, c) * k2 * (b->a[2 * c] * b->a[2 * c] + b->a[2 * c + 1] * b->a[2 * c + 1]);
  }
  double n = (double)g->nreal;
  return b->p.nu * s * g->L[0] / (n * n);
}

double opl_burgers_cole_hopf(double x, double t, double nu) {
  if (t <= 0) return -sin(M_PI * x);
  OPL_ASSERT(nu > 0, "cole_hopf: nu = %g", nu);
  double c = sqrt(4 * nu * t);
  double h = 0.3 / sqrt(2 + 2 * M_PI * t);
  double Z = sqrt(1 / (M_PI * nu) + 40);
  if (Z < 9) Z = 9;
  int K = (int)ceil(Z / h);
  double inv = 1 / (2 * M_PI * nu);
  /* Pass 1: the largest exponent. Pass 2: shifted sums. */
  double emax = -INFINITY;
  for (int j = -K; j <= K; j++) {
    double z = j * h;
    double e = -z * z - cos(M_PI * (x - c * z)) * inv;
    if (e > emax) emax = e;
  }
  double num = 0, den = 0;
  for (int j = -K; j <= K; j++) {
    double z = j * h, s = M_PI * (x - c * z);
    double w = exp(-z * z - cos(s) * inv - emax);
    num += sin(s) * w;
    den += w;
  }
  return -num / den;
}
