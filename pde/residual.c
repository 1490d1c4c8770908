/* opl pde — PDE residuals of space-time fields as differentiable ops. See residual.h. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "pde/burgers.h"
#include "pde/grid.h"
#include "pde/kdv.h"
#include "pde/ns2d.h"
#include "pde/residual.h"

struct opl_resid {
  opl_resid_params p;
  int64_t nx, ny;     /* the resolution of the objects below (0: none yet) */
  opl_grid *grid;
  int nthr;
  void **eq;          /* [nthr] opl_burgers / opl_kdv / opl_ns2d on grid */
  double **work;      /* [nthr] scratch: 12 spectra [2 nspec] + 7 fields [nreal] */
  double *ik2;        /* 2-D: [nspec] 1 / |k|^2, 0 at k = 0 */
};

static const char *const eq_names[] = {"burgers", "kdv", "ns"};

const char *opl_resid_equation_name(int equation) {
  return equation >= 0 && equation <= OPL_RESID_NS2D ? eq_names[equation] : "unknown";
}

int opl_resid_check(const opl_resid_params *p, opl_err *err) {
  if (!p) return opl_err_set(err, OPL_ERR_ARG, "residual: NULL parameters");
  if (p->equation < 0 || p->equation > OPL_RESID_NS2D)
    return opl_err_set(err, OPL_ERR_ARG, "residual: unknown equation %d (burgers, kdv, ns)", p->equation);
  if (!(p->L > 0) || !isfinite(p->L)) return opl_err_set(err, OPL_ERR_ARG, "residual: L = %g, expected finite and > 0", p->L);
  if (!(p->dt > 0) || !isfinite(p->dt))
    return opl_err_set(err, OPL_ERR_ARG, "residual: dt = %g, expected finite and > 0", p->dt);
  if (p->equation != OPL_RESID_KDV && (!(p->nu > 0) || !isfinite(p->nu)))
    return opl_err_set(err, OPL_ERR_ARG, "residual: %s viscosity nu = %g, expected finite and > 0",
                       eq_names[p->equation], p->nu);
  if (p->equation == OPL_RESID_KDV && (!isfinite(p->a) || !isfinite(p->b)))
    return opl_err_set(err, OPL_ERR_ARG, "residual: kdv coefficients a = %g, b = %g, expected finite", p->a, p->b);
  if (p->equation == OPL_RESID_NS2D && p->forcing != OPL_NS2D_FORCE_NONE && p->forcing != OPL_NS2D_FORCE_FNO)
    return opl_err_set(err, OPL_ERR_ARG, "residual: unknown forcing %d", p->forcing);
  return OPL_OK;
}

/* A number attribute of the provenance (an integer is taken as a number). */
static int prov_num(const opl_kv *kv, int n, const char *key, const char *what, double *v, opl_err *err) {
  const opl_kv *e = opl_kv_find(kv, n, key);
  if (!e || (e->type != OPL_KV_REAL && e->type != OPL_KV_INT))
    return opl_err_set(err, OPL_ERR_ARG, "residual: '%s' has %s provenance attribute '%s' (a number): the PDE residual "
                       "needs it", what, e ? "a non-numeric" : "no", key);
  *v = e->type == OPL_KV_REAL ? e->d : (double)e->i;
  return OPL_OK;
}

int opl_resid_from_provenance(const opl_kv *attrs, int nattrs, double dt, const char *what, opl_resid_params *p,
                              opl_err *err) {
  if (!what) what = "the data set";
  memset(p, 0, sizeof *p);
  const opl_kv *eq = attrs ? opl_kv_find(attrs, nattrs, "equation") : NULL;
  if (!eq || eq->type != OPL_KV_STR || !eq->s)
    return opl_err_set(err, OPL_ERR_ARG, "residual: '%s' has no provenance attribute 'equation' (a data set written by "
                       "opl generate has it): the PDE residual needs the equation and its parameters", what);
  int k = -1;
  for (int i = 0; i <= OPL_RESID_NS2D; i++)
    if (!strcmp(eq->s, eq_names[i])) k = i;
  if (k < 0)
    return opl_err_set(err, OPL_ERR_ARG, "residual: '%s' holds equation '%s', which has no residual (burgers, kdv, ns)",
                       what, eq->s);
  p->equation = k;
  p->dt = dt;
  int st = prov_num(attrs, nattrs, "L", what, &p->L, err);
  if (st) return st;
  if (k == OPL_RESID_KDV) {
    const opl_kv *dom = opl_kv_find(attrs, nattrs, "domain");
    if (dom && dom->type == OPL_KV_STR && dom->s && !strncmp(dom->s, "per-sample", 10))
      return opl_err_set(err, OPL_ERR_ARG, "residual: the domain of '%s' varies per sample (attribute 'domain' = "
                         "per-sample): the residual needs one L and one dt for the whole set (generate with a fixed "
                         "L and T)", what);
    if ((st = prov_num(attrs, nattrs, "a", what, &p->a, err)) || (st = prov_num(attrs, nattrs, "b", what, &p->b, err)))
      return st;
  } else if ((st = prov_num(attrs, nattrs, "nu", what, &p->nu, err))) {
    return st;
  }
  if (k == OPL_RESID_NS2D) {
    const opl_kv *f = opl_kv_find(attrs, nattrs, "forcing");
    if (!f || f->type != OPL_KV_STR || !f->s)
      return opl_err_set(err, OPL_ERR_ARG, "residual: '%s' has no provenance attribute 'forcing' (fno or none)", what);
    if (!strncmp(f->s, "fno", 3)) p->forcing = OPL_NS2D_FORCE_FNO;
    else if (!strcmp(f->s, "none")) p->forcing = OPL_NS2D_FORCE_NONE;
    else return opl_err_set(err, OPL_ERR_ARG, "residual: '%s' has forcing '%s' (expected fno or none)", what, f->s);
  }
  return opl_resid_check(p, err);
}

/* Free the per-resolution objects. */
static void resid_clear(opl_resid *r) {
  for (int i = 0; i < r->nthr; i++) {
    if (r->eq && r->eq[i]) {
      if (r->p.equation == OPL_RESID_BURGERS) opl_burgers_free((opl_burgers **)&r->eq[i]);
      else if (r->p.equation == OPL_RESID_KDV) opl_kdv_free((opl_kdv **)&r->eq[i]);
      else opl_ns2d_free((opl_ns2d **)&r->eq[i]);
    }
    if (r->work) opl_pde_free(r->work[i]);
  }
  free(r->eq);
  free(r->work);
  opl_pde_free(r->ik2);
  opl_grid_free(&r->grid);
  r->eq = NULL;
  r->work = NULL;
  r->ik2 = NULL;
  r->nthr = 0;
  r->nx = r->ny = 0;
}

opl_resid *opl_resid_new(const opl_resid_params *p, opl_err *err) {
  if (opl_resid_check(p, err)) return NULL;
  opl_resid *r = calloc(1, sizeof *r);
  if (!r) {
    opl_err_set(err, OPL_ERR_NOMEM, "residual: out of memory");
    return NULL;
  }
  r->p = *p;
  return r;
}

void opl_resid_free(opl_resid **rp) {
  if (!rp || !*rp) return;
  resid_clear(*rp);
  free(*rp);
  *rp = NULL;
}

const opl_resid_params *opl_resid_params_of(const opl_resid *r) { return r ? &r->p : NULL; }

/* Check the extents of u [N, T, X(, Y)] for r's equation. */
static int check_extents(const opl_resid *r, int64_t N, int64_t T, int64_t nx, int64_t ny, opl_err *err) {
  int two = r->p.equation == OPL_RESID_NS2D;
  if (N < 1 || T < 3)
    return opl_err_set(err, OPL_ERR_SHAPE, "residual: %lld samples of %lld frames: the time rule needs >= 3 frames",
                       (long long)N, (long long)T);
  if (nx < 4 || nx % 2 || nx > 1 << 24 || (two && (ny != nx)) || (!two && ny != 1)) {
    if (two)
      return opl_err_set(err, OPL_ERR_SHAPE, "residual: ns needs a square grid X = Y, even and >= 4, got X = %lld, Y = %lld",
                         (long long)nx, (long long)ny);
    return opl_err_set(err, OPL_ERR_SHAPE, "residual: %s needs an even X >= 4, got X = %lld", eq_names[r->p.equation],
                       (long long)nx);
  }
  return OPL_OK;
}

/* Make the grid and per-thread objects for (nx, ny) unless they exist for enough threads. */
static int resid_ensure(opl_resid *r, int64_t nx, int64_t ny, opl_err *err) {
  int want = omp_get_max_threads();
  if (want < 1) want = 1;
  if (r->grid && r->nx == nx && r->ny == ny && r->nthr >= want) return OPL_OK;
  resid_clear(r);
  int two = r->p.equation == OPL_RESID_NS2D;
  opl_err e;
  int st = OPL_OK;
  r->grid = two ? opl_grid_new_2d((int)nx, (int)ny, r->p.L, r->p.L, OPL_GRID_ESTIMATE, &e)
                : opl_grid_new_1d((int)nx, r->p.L, OPL_GRID_ESTIMATE, &e);
  if (!r->grid) return opl_err_set(err, e.status, "residual: %s", e.msg);
  r->eq = calloc((size_t)want, sizeof *r->eq);
  r->work = calloc((size_t)want, sizeof *r->work);
  if (!r->eq || !r->work) st = opl_err_set(err, OPL_ERR_NOMEM, "residual: out of memory");
  r->nthr = r->eq && r->work ? want : 0;
  const opl_grid *g = r->grid;
  for (int i = 0; i < r->nthr && !st; i++) {
    if (r->p.equation == OPL_RESID_BURGERS) {
      opl_burgers_params bp = {.n = (int)nx, .L = r->p.L, .nu = r->p.nu};
      r->eq[i] = opl_burgers_new(&bp, g, 0, &e);
    } else if (r->p.equation == OPL_RESID_KDV) {
      opl_kdv_params kp = {.n = (int)nx, .L = r->p.L, .a = r->p.a, .b = r->p.b};
      r->eq[i] = opl_kdv_new(&kp, g, 0, &e);
    } else {
      opl_ns2d_params np = {.n = (int)nx, .L = r->p.L, .nu = r->p.nu, .forcing = r->p.forcing};
      r->eq[i] = opl_ns2d_new(&np, g, 0, &e);
    }
    if (!r->eq[i]) st = opl_err_set(err, e.status, "residual: %s", e.msg);
    else if (!(r->work[i] = opl_pde_alloc(24 * g->nspec + 7 * g->nreal)))
      st = opl_err_set(err, OPL_ERR_NOMEM, "residual: out of memory");
  }
  if (!st && two && !(r->ik2 = opl_pde_alloc(g->nspec))) st = opl_err_set(err, OPL_ERR_NOMEM, "residual: out of memory");
  if (!st && two)
    for (int64_t e2 = 0; e2 < g->nspec; e2++) {
      double k2 = opl_grid_k2(g, e2);
      r->ik2[e2] = k2 > 0 ? 1.0 / k2 : 0.0;
    }
  if (st) {
    resid_clear(r);
    return st;
  }
  r->nx = nx;
  r->ny = ny;
  return OPL_OK;
}

/* Coefficient (times 2 dt) of frame k in row j of the time rule over T >= 3 frames. */
static double dt_coef(int64_t j, int64_t k, int64_t T) {
  if (j == 0) return k == 0 ? -3.0 : k == 1 ? 4.0 : k == 2 ? -1.0 : 0.0;
  if (j == T - 1) return k == T - 1 ? 3.0 : k == T - 2 ? -4.0 : k == T - 3 ? 1.0 : 0.0;
  return k == j + 1 ? 1.0 : k == j - 1 ? -1.0 : 0.0;
}

/* out[P] = sum_k dt_coef(j, k) u_k / (2 dt) over the frames u [T, P] of one sample (row j). */
static void time_deriv(const double *u, int64_t T, int64_t P, int64_t j, double dt, double *out) {
  double s = 0.5 / dt;
  int64_t k0 = j == 0 ? 0 : j == T - 1 ? T - 3 : j - 1; /* the rule spans frames k0 .. k0 + 2 */
  memset(out, 0, sizeof(double) * (size_t)P);
  for (int64_t k = k0; k < k0 + 3; k++) {
    double c = dt_coef(j, k, T) * s;
    if (c == 0) continue;
    const double *uk = u + k * P;
    for (int64_t i = 0; i < P; i++) out[i] += c * uk[i];
  }
}

/* The rhs of the equation object for one frame: f[P] = f(u[P]). */
static void eval_rhs(const opl_resid *r, void *eq, const double *u, double *f) {
  if (r->p.equation == OPL_RESID_BURGERS) opl_burgers_rhs(eq, 0, u, f);
  else if (r->p.equation == OPL_RESID_KDV) opl_kdv_rhs(eq, 0, u, f);
  else opl_ns2d_rhs(eq, 0, u, f);
}

int opl_resid_apply(opl_resid *r, int64_t N, int64_t T, int64_t nx, int64_t ny, const double *u, double *R,
                    opl_err *err) {
  if (!r || !u || !R) return opl_err_set(err, OPL_ERR_ARG, "residual: NULL argument");
  int st = check_extents(r, N, T, nx, ny, err);
  if (st || (st = resid_ensure(r, nx, ny, err))) return st;
  const int64_t P = nx * ny, F = N * T;
  const double dt = r->p.dt;
  int nthr = r->nthr;
#pragma omp parallel num_threads(nthr)
  {
    int id = omp_get_thread_num();
    double *f = r->work[id]; /* [P] rhs, then [P] time derivative */
    double *d = f + P;
#pragma omp for schedule(static)
    for (int64_t fr = 0; fr < F; fr++) {
      int64_t b = fr / T, j = fr % T;
      eval_rhs(r, r->eq[id], u + fr * P, f);
      time_deriv(u + b * T * P, T, P, j, dt, d);
      double *o = R + fr * P;
      for (int64_t i = 0; i < P; i++) o[i] = d[i] - f[i];
    }
  }
  return OPL_OK;
}

/* ---------------------------------------------------------------- the transposed Jacobian */

/* y = (i s) x per complex entry: (re, im) -> (-s im, s re). */
static inline void mul_i(double s, const double *x, double *y) {
  double re = x[0], im = x[1];
  y[0] = -s * im;
  y[1] = s * re;
}

/* 1-D (Burgers a = 1, KdV): out[n] = J_f(u)^T g = conj(S) g + a P[(P u) P(D_x g)], S the linear
 * symbol (Burgers -nu k^2; KdV i b k^3, 0 at the Nyquist bin), from u[n], g[n]. work: 4 spectra
 * [2 nspec] and 3 fields [n]. */
static void jt_1d(const opl_resid *r, const double *u, const double *g, double *out, double *work) {
  const opl_grid *gr = r->grid;
  const int nch = gr->nch;
  const int64_t S = 2 * gr->nspec, n = gr->nreal;
  double *uh = work, *gh = work + S, *sp = work + 2 * S, *lin = work + 3 * S;
  double *w = work + 4 * S, *h = w + n;
  const double s = 1.0 / (double)n;
  const int kdv = r->p.equation == OPL_RESID_KDV;
  const double a = kdv ? r->p.a : 1.0;
  opl_grid_forward(gr, u, uh);
  opl_grid_forward(gr, g, gh);
  /* w = P u */
  for (int c = 0; c < nch; c++) {
    double m = gr->keep_col[c] ? s : 0.0;
    sp[2 * c] = m * uh[2 * c];
    sp[2 * c + 1] = m * uh[2 * c + 1];
  }
  opl_grid_inverse_raw(gr, sp, w);
  /* h = P D_x g */
  for (int c = 0; c < nch; c++) {
    double m = gr->keep_col[c] ? s : 0.0;
    mul_i(m * gr->kcol[c], gh + 2 * c, sp + 2 * c);
  }
  opl_grid_inverse_raw(gr, sp, h);
  for (int64_t i = 0; i < n; i++) h[i] *= w[i];
  opl_grid_forward(gr, h, sp);
  /* out = (conj(S) g + a P FFT(w h)) / n */
  for (int c = 0; c < nch; c++) {
    double k = gr->kcol[c], m = gr->keep_col[c] ? a : 0.0;
    double lr, li;
    if (kdv) { /* conj(i b k^3) g = -i b k^3 g */
      double wk = c == gr->nc / 2 ? 0.0 : r->p.b * k * k * k;
      lr = wk * gh[2 * c + 1];
      li = -wk * gh[2 * c];
    } else {
      lr = -r->p.nu * k * k * gh[2 * c];
      li = -r->p.nu * k * k * gh[2 * c + 1];
    }
    lin[2 * c] = s * (lr + m * sp[2 * c]);
    lin[2 * c + 1] = s * (li + m * sp[2 * c + 1]);
  }
  opl_grid_inverse_raw(gr, lin, out);
}

/* 2-D Navier-Stokes: out[n n] = J_f(w)^T g = -nu |k|^2 g + P[U_y(w_x z) + D_x(u z) + V_x(w_y z)
 * + D_y(v z)], z = P g, from w, g [n n]. work: 12 spectra [2 nspec] and 6 fields [nreal]. */
static void jt_ns(const opl_resid *r, const double *wf, const double *g, double *out, double *work) {
  const opl_grid *gr = r->grid;
  const int nch = gr->nch, nrow = gr->nrow;
  const int64_t S = 2 * gr->nspec, n = gr->nreal;
  double *wh = work, *gh = work + S, *sp4 = work + 2 * S, *ph = work + 6 * S, *acc = work + 10 * S;
  double *fld = work + 12 * S; /* u, v, wx, wy, z, product */
  double *fu = fld, *fv = fld + n, *fx = fld + 2 * n, *fy = fld + 3 * n, *z = fld + 4 * n, *q = fld + 5 * n;
  const double s = 1.0 / (double)n, nu = r->p.nu;
  opl_grid_forward(gr, wf, wh);
  opl_grid_forward(gr, g, gh);
  /* The dealiased u, v, w_x, w_y of the forward (pde/ns2d.c), and z = P g. */
  for (int row = 0; row < nrow; row++) {
    double kx = gr->krow[row];
    for (int c = 0; c < nch; c++) {
      int64_t e = (int64_t)row * nch + c;
      double m = gr->keep_row[row] && gr->keep_col[c] ? s : 0.0, ky = gr->kcol[c];
      double wr[2] = {m * wh[2 * e], m * wh[2 * e + 1]}, ps[2] = {wr[0] * r->ik2[e], wr[1] * r->ik2[e]};
      mul_i(ky, ps, sp4 + 2 * e);             /* u = i ky psi */
      mul_i(-kx, ps, sp4 + S + 2 * e);        /* v = -i kx psi */
      mul_i(kx, wr, sp4 + 2 * S + 2 * e);     /* w_x */
      mul_i(ky, wr, sp4 + 3 * S + 2 * e);     /* w_y */
      acc[2 * e] = m * gh[2 * e];
      acc[2 * e + 1] = m * gh[2 * e + 1];
    }
  }
  opl_grid_inverse_many_raw(gr, 4, sp4, fld);
  opl_grid_inverse_raw(gr, acc, z);
  /* The four products, transformed: p1 = w_x z, p2 = u z, p3 = w_y z, p4 = v z. */
  const double *fac[4] = {fx, fu, fy, fv};
  for (int t = 0; t < 4; t++) {
    for (int64_t i = 0; i < n; i++) q[i] = fac[t][i] * z[i];
    opl_grid_forward(gr, q, ph + t * S);
  }
  for (int row = 0; row < nrow; row++) {
    double kx = gr->krow[row];
    for (int c = 0; c < nch; c++) {
      int64_t e = (int64_t)row * nch + c;
      double ky = gr->kcol[c], k2 = kx * kx + ky * ky, ik2 = r->ik2[e];
      double t1[2], t2[2], t3[2], t4[2];
      mul_i(ky * ik2, ph + 2 * e, t1);         /* U_y p1 */
      mul_i(kx, ph + S + 2 * e, t2);           /* D_x p2 */
      mul_i(-kx * ik2, ph + 2 * S + 2 * e, t3); /* V_x p3 */
      mul_i(ky, ph + 3 * S + 2 * e, t4);       /* D_y p4 */
      double m = gr->keep_row[row] && gr->keep_col[c] ? 1.0 : 0.0;
      acc[2 * e] = s * (-nu * k2 * gh[2 * e] + m * (t1[0] + t2[0] + t3[0] + t4[0]));
      acc[2 * e + 1] = s * (-nu * k2 * gh[2 * e + 1] + m * (t1[1] + t2[1] + t3[1] + t4[1]));
    }
  }
  opl_grid_inverse_raw(gr, acc, out);
}

/* gu [N, T, P] += D_t^T G - J_f(u)^T G for u, G [N, T, P] (double). */
static void resid_backward_apply(opl_resid *r, int64_t N, int64_t T, const double *u, const double *G, double *gu) {
  const opl_grid *gr = r->grid;
  const int64_t P = gr->nreal, F = N * T;
  const double s = 0.5 / r->p.dt;
  int nthr = r->nthr;
#pragma omp parallel num_threads(nthr)
  {
    int id = omp_get_thread_num();
    double *jt = r->work[id], *wk = jt + P;
#pragma omp for schedule(static)
    for (int64_t fr = 0; fr < F; fr++) {
      int64_t b = fr / T, k = fr % T;
      if (r->p.equation == OPL_RESID_NS2D) jt_ns(r, u + fr * P, G + fr * P, jt, wk);
      else jt_1d(r, u + fr * P, G + fr * P, jt, wk);
      double *o = gu + fr * P;
      for (int64_t i = 0; i < P; i++) o[i] -= jt[i];
      /* The rows j whose rule uses frame k: 0, T - 1 and k -+ 1 (each once). */
      int64_t rows[4] = {0, T - 1, k - 1, k + 1};
      for (int q = 0; q < 4; q++) {
        int64_t j = rows[q];
        if (j < 0 || j >= T) continue;
        int dup = 0;
        for (int p2 = 0; p2 < q; p2++) dup |= rows[p2] == j;
        if (dup) continue;
        double c = dt_coef(j, k, T) * s;
        if (c == 0) continue;
        const double *gj = G + (b * T + j) * P;
        for (int64_t i = 0; i < P; i++) o[i] += c * gj[i];
      }
    }
  }
}

/* ---------------------------------------------------------------- the op */

typedef struct resid_dims {
  int64_t N, T, nx, ny;
} resid_dims;

static int op_dims(opl_ctx *c, const opl_resid *r, const opl_tensor *u, resid_dims *d) {
  int two = r->p.equation == OPL_RESID_NS2D;
  char b[96];
  if (u->rank != (two ? 4 : 3)) {
    opl_ctx_error(c, OPL_ERR_SHAPE, "residual: %s needs u (N, T, X%s), got %s", eq_names[r->p.equation],
                  two ? ", Y" : "", opl_shape_str(b, u->rank, u->shape));
    return 0;
  }
  d->N = u->shape[0];
  d->T = u->shape[1];
  d->nx = u->shape[2];
  d->ny = two ? u->shape[3] : 1;
  opl_err e;
  if (check_extents(r, d->N, d->T, d->nx, d->ny, &e)) {
    opl_ctx_error(c, e.status, "%s (u %s)", e.msg, opl_shape_str(b, u->rank, u->shape));
    return 0;
  }
  return 1;
}

static void resid_backward(opl_node *nd) {
  opl_real *gx = opl_node_grad(nd, 0);
  if (!gx) return;
  opl_resid *r = nd->aux;
  opl_tensor *u = nd->in[0];
  int64_t n = u->numel, N = nd->iarg[0], T = nd->iarg[1];
  double *ud = opl_arena_alloc(nd->ctx, sizeof(double) * (size_t)n * 3);
  if (!ud) return; /* sticky out-of-memory error in the context */
  double *Gd = ud + n, *gd = Gd + n;
  for (int64_t i = 0; i < n; i++) ud[i] = (double)u->data[i], Gd[i] = (double)nd->out->grad[i], gd[i] = 0;
  resid_backward_apply(r, N, T, ud, Gd, gd);
  for (int64_t i = 0; i < n; i++) gx[i] += (opl_real)gd[i];
}

opl_tensor *opl_resid_op(opl_ctx *c, opl_resid *r, opl_tensor *u) {
  if (opl_ctx_status(c)) return NULL;
  if (!r) {
    opl_ctx_error(c, OPL_ERR_ARG, "residual: NULL evaluator");
    return NULL;
  }
  if (!opl_check_input(c, "residual", "u", u, -1, 0)) return NULL;
  resid_dims d;
  if (!op_dims(c, r, u, &d)) return NULL;
  int64_t n = u->numel;
  opl_tensor *out = opl_new(c, u->rank, u->shape);
  double *ud = out ? opl_arena_alloc(c, sizeof(double) * (size_t)n * 2) : NULL;
  if (!ud) return NULL;
  double *Rd = ud + n;
  for (int64_t i = 0; i < n; i++) ud[i] = (double)u->data[i];
  opl_err e;
  if (opl_resid_apply(r, d.N, d.T, d.nx, d.ny, ud, Rd, &e)) {
    opl_ctx_error(c, e.status, "%s", e.msg);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) out->data[i] = (opl_real)Rd[i];
  opl_node *nd = opl_record(c, "residual", resid_backward, out, 1, &u);
  if (nd) {
    nd->aux = r;
    nd->iarg[0] = d.N;
    nd->iarg[1] = d.T;
  }
  return out;
}
