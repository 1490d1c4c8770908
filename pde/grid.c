/* opl pde — the periodic spectral grid: plans, wavenumbers, derivatives, 2/3 dealiasing,
 * spectral interpolation. See grid.h for the conventions. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "pde/grid.h"
#include "core/par.h"

/* ------------------------------------------------------------ memory */

double *opl_pde_alloc(int64_t ndouble) {
  if (ndouble < 0) return NULL;
  size_t bytes = (size_t)(ndouble > 0 ? ndouble : 1) * sizeof(double);
  double *p = fftw_malloc(bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

void opl_pde_free(void *p) {
  if (p) fftw_free(p);
}

/* ------------------------------------------------------------ planning */

/* Make one FFTW many-plan (r2c when r2c != 0, else c2r) of howmany contiguous fields on the
 * grid's dims, on the scratch arrays re[howmany nreal], sp[2 howmany nspec]. Must be called
 * inside the planner critical section. */
static fftw_plan grid_plan(const opl_grid *g, int r2c, int howmany, double *re, double *sp,
                           unsigned fflags) {
  int dims[2] = {g->n[0], g->n[1]};
  int rank = g->dim;
  if (r2c)
    return fftw_plan_many_dft_r2c(rank, dims, howmany, re, NULL, 1, (int)g->nreal,
                                  (fftw_complex *)sp, NULL, 1, (int)g->nspec, fflags);
  return fftw_plan_many_dft_c2r(rank, dims, howmany, (fftw_complex *)sp, NULL, 1, (int)g->nspec,
                                re, NULL, 1, (int)g->nreal, fflags);
}

/* Create all plans of g on scratch memory (MEASURE overwrites its arrays). Returns 0 when a
 * plan could not be made or scratch could not be allocated. Serialized: FFTW's planner is not
 * thread-safe, so every double-precision plan of opl is made inside this named critical
 * section, and FFTW is also asked to serialize its own planner (fftw_make_planner_thread_safe,
 * from fftw3_omp, linked in every build), so planners elsewhere in the process cannot race. */
static pthread_once_t grid_planner_once = PTHREAD_ONCE_INIT;
static void grid_planner_init(void) { fftw_make_planner_thread_safe(); }

static int grid_make_plans(opl_grid *g) {
  int okp = 1;
  pthread_once(&grid_planner_once, grid_planner_init);
  double *re = opl_pde_alloc(OPL_GRID_BATCH * g->nreal);
  double *sp = opl_pde_alloc(2 * OPL_GRID_BATCH * g->nspec);
  if (!re || !sp) {
    opl_pde_free(re);
    opl_pde_free(sp);
    return 0;
  }
  unsigned base = (g->flags & OPL_GRID_ESTIMATE) ? FFTW_ESTIMATE : FFTW_MEASURE;
#pragma omp critical(opl_fftw_double_planner)
  {
    g->r2c = grid_plan(g, 1, 1, re, sp, base);
    g->c2r = grid_plan(g, 0, 1, re, sp, base | FFTW_DESTROY_INPUT);
    g->r2c_b = grid_plan(g, 1, OPL_GRID_BATCH, re, sp, base);
    g->c2r_b = grid_plan(g, 0, OPL_GRID_BATCH, re, sp, base | FFTW_DESTROY_INPUT);
    g->r2c_u = grid_plan(g, 1, 1, re, sp, FFTW_ESTIMATE | FFTW_UNALIGNED);
    g->c2r_u = grid_plan(g, 0, 1, re, sp, FFTW_ESTIMATE | FFTW_UNALIGNED | FFTW_DESTROY_INPUT);
    okp = g->r2c && g->c2r && g->r2c_b && g->c2r_b && g->r2c_u && g->c2r_u;
  }
  opl_pde_free(re);
  opl_pde_free(sp);
  return okp;
}

/* ------------------------------------------------------------ create / free */

/* Check one axis: n even and >= 4, L finite and > 0. */
static int check_axis(const char *fn, const char *nname, int n, const char *lname, double L,
                      opl_err *err) {
  if (n < 4 || n % 2 != 0) {
    opl_err_set(err, OPL_ERR_ARG, "%s: %s = %d must be even and >= 4", fn, nname, n);
    return 0;
  }
  if (n > (1 << 24)) {
    opl_err_set(err, OPL_ERR_ARG, "%s: %s = %d is too large", fn, nname, n);
    return 0;
  }
  if (!(L > 0) || !isfinite(L)) {
    opl_err_set(err, OPL_ERR_ARG, "%s: %s = %g must be finite and > 0", fn, lname, L);
    return 0;
  }
  return 1;
}

/* Integer wavenumber of storage index m on a full axis of n points. */
static inline int kint_full(int m, int n) { return m <= n / 2 ? m : m - n; }

/* Fill the tables and plans of a grid whose dim, n, L, flags are set. */
static opl_grid *grid_finish(opl_grid *g, const char *fn, opl_err *err) {
  g->dx[0] = g->L[0] / g->n[0];
  g->dx[1] = g->L[1] / g->n[1];
  g->nreal = (int64_t)g->n[0] * g->n[1];
  if (g->dim == 1) {
    g->nrow = 1;
    g->nc = g->n[0];
  } else {
    g->nrow = g->n[0];
    g->nc = g->n[1];
  }
  g->nch = g->nc / 2 + 1;
  g->nspec = (int64_t)g->nrow * g->nch;
  g->krow = malloc(sizeof(double) * g->nrow);
  g->kcol = malloc(sizeof(double) * g->nch);
  g->keep_row = malloc((size_t)g->nrow);
  g->keep_col = malloc((size_t)g->nch);
  if (!g->krow || !g->kcol || !g->keep_row || !g->keep_col) {
    opl_grid_free(&g);
    opl_err_set(err, OPL_ERR_NOMEM, "%s: out of memory", fn);
    return NULL;
  }
  double Lr = g->dim == 1 ? 1.0 : g->L[0], Lc = g->dim == 1 ? g->L[0] : g->L[1];
  for (int r = 0; r < g->nrow; r++) {
    int k = g->nrow == 1 ? 0 : kint_full(r, g->nrow);
    g->krow[r] = 2 * M_PI * k / Lr;
    g->keep_row[r] = g->nrow == 1 ? 1 : (3 * abs(k) < g->nrow);
  }
  for (int c = 0; c < g->nch; c++) {
    g->kcol[c] = 2 * M_PI * c / Lc;
    g->keep_col[c] = 3 * c < g->nc;
  }
  if (!grid_make_plans(g)) {
    opl_grid_free(&g);
    opl_err_set(err, OPL_ERR_NOMEM, "%s: FFTW could not make a plan (out of memory?)", fn);
    return NULL;
  }
  return g;
}

opl_grid *opl_grid_new_1d(int n, double L, unsigned flags, opl_err *err) {
  if (!check_axis("grid_new_1d", "n", n, "L", L, err)) return NULL;
  opl_grid *g = calloc(1, sizeof *g);
  if (!g) {
    opl_err_set(err, OPL_ERR_NOMEM, "grid_new_1d: out of memory");
    return NULL;
  }
  g->dim = 1;
  g->n[0] = n;
  g->n[1] = 1;
  g->L[0] = L;
  g->L[1] = 1;
  g->flags = flags;
  g->par = (flags & OPL_GRID_THREADS) != 0;
  return grid_finish(g, "grid_new_1d", err);
}

opl_grid *opl_grid_new_2d(int nx, int ny, double Lx, double Ly, unsigned flags, opl_err *err) {
  if (!check_axis("grid_new_2d", "nx", nx, "Lx", Lx, err)) return NULL;
  if (!check_axis("grid_new_2d", "ny", ny, "Ly", Ly, err)) return NULL;
  if ((int64_t)nx * ny > ((int64_t)1 << 30)) {
    opl_err_set(err, OPL_ERR_ARG, "grid_new_2d: nx * ny = %d * %d is too large", nx, ny);
    return NULL;
  }
  opl_grid *g = calloc(1, sizeof *g);
  if (!g) {
    opl_err_set(err, OPL_ERR_NOMEM, "grid_new_2d: out of memory");
    return NULL;
  }
  g->dim = 2;
  g->n[0] = nx;
  g->n[1] = ny;
  g->L[0] = Lx;
  g->L[1] = Ly;
  g->flags = flags;
  g->par = (flags & OPL_GRID_THREADS) != 0;
  return grid_finish(g, "grid_new_2d", err);
}

void opl_grid_free(opl_grid **gp) {
  if (!gp || !*gp) return;
  opl_grid *g = *gp;
  fftw_plan *plans[] = {&g->r2c, &g->c2r, &g->r2c_u, &g->c2r_u, &g->r2c_b, &g->c2r_b};
#pragma omp critical(opl_fftw_double_planner)
  {
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++)
      if (*plans[i]) fftw_destroy_plan(*plans[i]);
  }
  free(g->krow);
  free(g->kcol);
  free(g->keep_row);
  free(g->keep_col);
  free(g);
  *gp = NULL;
}

/* ------------------------------------------------------------ geometry */

/* Layout side of a user axis: 1 for the halved column axis, 0 for the row axis. */
static int axis_is_col(const opl_grid *g, int axis) {
  OPL_ASSERT(axis >= 0 && axis < g->dim, "axis %d of a %d-D grid", axis, g->dim);
  return g->dim == 1 || axis == 1;
}

double opl_grid_x(const opl_grid *g, int axis, int i) {
  OPL_ASSERT(axis >= 0 && axis < g->dim);
  return i * g->dx[axis];
}

int opl_grid_kint(const opl_grid *g, int axis, int m) {
  if (axis_is_col(g, axis)) {
    OPL_ASSERT(m >= 0 && m < g->nch, "column index %d of %d", m, g->nch);
    return m;
  }
  OPL_ASSERT(m >= 0 && m < g->nrow, "row index %d of %d", m, g->nrow);
  return kint_full(m, g->nrow);
}

double opl_grid_k(const opl_grid *g, int axis, int m) {
  return 2 * M_PI * opl_grid_kint(g, axis, m) / g->L[axis];
}

double opl_grid_k2(const opl_grid *g, int64_t e) {
  OPL_ASSERT(e >= 0 && e < g->nspec);
  double kr = g->krow[e / g->nch], kc = g->kcol[e % g->nch];
  return kr * kr + kc * kc;
}

/* ------------------------------------------------------------ transforms */

/* 1 if p has the alignment the aligned plans were made for (that of fftw_malloc). */
static inline int al16(const void *p) { return fftw_alignment_of((double *)(uintptr_t)p) == 0; }

void opl_grid_forward(const opl_grid *g, const double *u, double *uh) {
  OPL_ASSERT((const void *)u != (const void *)uh, "in-place transforms are not supported");
  /* r2c out of place preserves its input (FFTW's default for r2c). */
  fftw_plan p = al16(u) && al16(uh) ? g->r2c : g->r2c_u;
  fftw_execute_dft_r2c(p, (double *)(uintptr_t)u, (fftw_complex *)uh);
}

void opl_grid_inverse_raw(const opl_grid *g, double *uh, double *u) {
  OPL_ASSERT((void *)u != (void *)uh, "in-place transforms are not supported");
  fftw_plan p = al16(u) && al16(uh) ? g->c2r : g->c2r_u;
  fftw_execute_dft_c2r(p, (fftw_complex *)uh, u);
}

/* x[n] *= s (threads when par). */
static void scale_array(double *x, int64_t n, double s, int par) {
#pragma omp parallel for if (par && n > OPL_PDE_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void opl_grid_inverse(const opl_grid *g, double *uh, double *u) {
  scale_array(uh, 2 * g->nspec, 1.0 / (double)g->nreal, g->par);
  opl_grid_inverse_raw(g, uh, u);
}

void opl_grid_forward_many(const opl_grid *g, int count, const double *u, double *uh) {
  OPL_ASSERT(count >= 0);
  int i = 0;
  if (al16(u) && al16(uh))
    for (; i + OPL_GRID_BATCH <= count; i += OPL_GRID_BATCH)
      fftw_execute_dft_r2c(g->r2c_b, (double *)(uintptr_t)(u + i * g->nreal),
                           (fftw_complex *)(uh + 2 * i * g->nspec));
  for (; i < count; i++) opl_grid_forward(g, u + i * g->nreal, uh + 2 * i * g->nspec);
}

void opl_grid_inverse_many_raw(const opl_grid *g, int count, double *uh, double *u) {
  OPL_ASSERT(count >= 0);
  int i = 0;
  if (al16(u) && al16(uh))
    for (; i + OPL_GRID_BATCH <= count; i += OPL_GRID_BATCH)
      fftw_execute_dft_c2r(g->c2r_b, (fftw_complex *)(uh + 2 * i * g->nspec), u + i * g->nreal);
  for (; i < count; i++) opl_grid_inverse_raw(g, uh + 2 * i * g->nspec, u + i * g->nreal);
}

void opl_grid_inverse_many(const opl_grid *g, int count, double *uh, double *u) {
  scale_array(uh, 2 * count * g->nspec, 1.0 / (double)g->nreal, g->par);
  opl_grid_inverse_many_raw(g, count, uh, u);
}

/* ------------------------------------------------------------ derivatives */

/* k^order along one storage index, with the Nyquist index zeroed for odd orders. nyq: 1 if
 * the index is the Nyquist bin of its axis. */
static inline double kpow(double k, int order, int nyq) {
  if ((order & 1) && nyq) return 0;
  double p = 1;
  for (int i = 0; i < order; i++) p *= k;
  return p;
}

void opl_grid_deriv_spec(const opl_grid *g, int ox, int oy, const double *uh, double *out) {
  OPL_ASSERT(ox >= 0 && oy >= 0 && ox + oy <= 64, "derivative orders %d, %d", ox, oy);
  OPL_ASSERT(g->dim == 2 || oy == 0, "a 1-D grid has no y derivative");
  int orow = g->dim == 1 ? 0 : ox, ocol = g->dim == 1 ? ox : oy;
  int p = (ox + oy) & 3; /* i^p: 1, i, -1, -i */
  double sgn = (p == 2 || p == 3) ? -1.0 : 1.0;
  int rot = p & 1;       /* multiply by i: (re, im) -> (-im, re) */
  int nch = g->nch, nrow = g->nrow;
#pragma omp parallel for if (g->par && g->nspec > OPL_PDE_PAR_MIN / 2) schedule(static)
  for (int r = 0; r < nrow; r++) {
    double fr = sgn * kpow(g->krow[r], orow, nrow > 1 && r == nrow / 2);
    const double *a = uh + 2 * (int64_t)r * nch;
    double *b = out + 2 * (int64_t)r * nch;
    for (int c = 0; c < nch; c++) {
      double f = fr * kpow(g->kcol[c], ocol, c == g->nc / 2);
      double re = a[2 * c], im = a[2 * c + 1];
      if (rot) {
        b[2 * c] = -f * im;
        b[2 * c + 1] = f * re;
      } else {
        b[2 * c] = f * re;
        b[2 * c + 1] = f * im;
      }
    }
  }
}

void opl_grid_deriv(const opl_grid *g, int ox, int oy, const double *u, double *du, double *work) {
  opl_grid_forward(g, u, work);
  opl_grid_deriv_spec(g, ox, oy, work, work);
  opl_grid_inverse(g, work, du);
}

/* ------------------------------------------------------------ dealiasing */

int opl_grid_dealias_keep(const opl_grid *g, int axis, int m) {
  int k = opl_grid_kint(g, axis, m);
  int n = g->n[axis];
  return 3 * abs(k) < n;
}

void opl_grid_dealias(const opl_grid *g, double *uh) {
  int nch = g->nch;
#pragma omp parallel for if (g->par && g->nspec > OPL_PDE_PAR_MIN / 2) schedule(static)
  for (int r = 0; r < g->nrow; r++) {
    double *b = uh + 2 * (int64_t)r * nch;
    if (!g->keep_row[r]) {
      memset(b, 0, sizeof(double) * 2 * nch);
      continue;
    }
    for (int c = 0; c < nch; c++)
      if (!g->keep_col[c]) b[2 * c] = b[2 * c + 1] = 0;
  }
}

void opl_grid_square_dealiased(const opl_grid *g, const double *uh, double *out, double *work) {
  double *ws = work, *ur = work + 2 * g->nspec;
  int nch = g->nch;
  double s = 1.0 / (double)g->nreal; /* folded into the copy: the raw inverse gives u itself */
#pragma omp parallel for if (g->par && g->nspec > OPL_PDE_PAR_MIN / 2) schedule(static)
  for (int r = 0; r < g->nrow; r++)
    for (int c = 0; c < nch; c++) {
      int64_t e = (int64_t)r * nch + c;
      double m = (g->keep_row[r] && g->keep_col[c]) ? s : 0.0;
      ws[2 * e] = m * uh[2 * e];
      ws[2 * e + 1] = m * uh[2 * e + 1];
    }
  opl_grid_inverse_raw(g, ws, ur);
#pragma omp parallel for if (g->par && g->nreal > OPL_PDE_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < g->nreal; i++) ur[i] *= ur[i];
  opl_grid_forward(g, ur, out);
  opl_grid_dealias(g, out);
}

/* ------------------------------------------------------------ resampling */

int64_t opl_grid_resample_work(const opl_grid *src, const opl_grid *dst) {
  return 2 * (src->nspec + dst->nspec);
}

/* Per-axis rule of opl_grid_resample: the source integer wavenumbers k[] and weights a[] that
 * make up destination wavenumber w, going from n to m points. Returns how many (0..2). */
static int axis_rule(int w, int n, int m, int *k, double *a) {
  int aw = abs(w);
  if (m == n) {
    k[0] = w;
    a[0] = 1;
    return 1;
  }
  if (m > n) {
    if (2 * aw < n) {
      k[0] = w;
      a[0] = 1;
      return 1;
    }
    if (2 * aw == n) { /* split the source Nyquist cosine between +n/2 and -n/2 */
      k[0] = n / 2;
      a[0] = 0.5;
      return 1;
    }
    return 0;
  }
  if (2 * aw < m) {
    k[0] = w;
    a[0] = 1;
    return 1;
  }
  if (w == m / 2) { /* the coarse Nyquist bin collects +m/2 and -m/2 */
    k[0] = m / 2;
    k[1] = -m / 2;
    a[0] = a[1] = 1;
    return 2;
  }
  return 0;
}

/* Source coefficient at integer wavenumbers (kr, kc) of the full Hermitian spectrum, from the
 * stored half spectrum sp: kc < 0 reads conj(sp(-kr, -kc)). */
static inline void spec_at(const opl_grid *g, const double *sp, int kr, int kc, double *re,
                           double *im) {
  double s = 1;
  if (kc < 0) {
    kr = -kr;
    kc = -kc;
    s = -1;
  }
  int r = g->nrow == 1 ? 0 : (kr >= 0 ? kr : kr + g->nrow);
  OPL_ASSERT(r >= 0 && r < g->nrow && kc < g->nch);
  const double *p = sp + 2 * ((int64_t)r * g->nch + kc);
  *re = p[0];
  *im = s * p[1];
}

int opl_grid_resample(const opl_grid *src, const double *u, const opl_grid *dst, double *v,
                      double *work, opl_err *err) {
  if (!src || !dst || !u || !v || !work)
    return opl_err_set(err, OPL_ERR_ARG, "grid_resample: NULL argument");
  if (src->dim != dst->dim)
    return opl_err_set(err, OPL_ERR_ARG, "grid_resample: source is %d-D, destination %d-D",
                       src->dim, dst->dim);
  for (int a = 0; a < src->dim; a++)
    if (fabs(src->L[a] - dst->L[a]) > 1e-12 * fabs(src->L[a]))
      return opl_err_set(err, OPL_ERR_ARG,
                         "grid_resample: domain length of axis %d differs (source %g, "
                         "destination %g)", a, src->L[a], dst->L[a]);
  double *ssp = work, *dsp = work + 2 * src->nspec;
  opl_grid_forward(src, u, ssp);
  double scale = 1.0 / (double)src->nreal; /* unnormalized in, raw inverse out */
  int nr_s = src->nrow, nr_d = dst->nrow, nc_s = src->nc, nc_d = dst->nc;
  for (int r = 0; r < nr_d; r++) {
    int wr = nr_d == 1 ? 0 : kint_full(r, nr_d);
    int kr[2], kc[2];
    double ar[2], ac[2];
    int mr = axis_rule(wr, nr_s, nr_d, kr, ar);
    for (int c = 0; c < dst->nch; c++) {
      int mc = axis_rule(c, nc_s, nc_d, kc, ac);
      double sre = 0, sim = 0;
      for (int i = 0; i < mr; i++)
        for (int j = 0; j < mc; j++) {
          double re, im;
          spec_at(src, ssp, kr[i], kc[j], &re, &im);
          sre += ar[i] * ac[j] * re;
          sim += ar[i] * ac[j] * im;
        }
      double *q = dsp + 2 * ((int64_t)r * dst->nch + c);
      q[0] = scale * sre;
      q[1] = scale * sim;
    }
  }
  opl_grid_inverse_raw(dst, dsp, v);
  return OPL_OK;
}

/* ------------------------------------------------------------ integrals */

/* Threaded sums use a fixed order (core/par.h): the same bits on every run and thread count. */
#define GRID_SUM_BLOCK 4096

struct grid_sum_args {
  const opl_grid *g;
  const double *f;
  int64_t n;
  int parseval;   /* 0: sum f[i]; 1: sum herm_weight(e) |f_e|^2 over complex f */
};

static double grid_sum_range(const struct grid_sum_args *a, int64_t lo, int64_t hi) {
  double s = 0;
  if (a->parseval)
    for (int64_t e = lo; e < hi; e++)
      s += opl_grid_herm_weight(a->g, e) * (a->f[2 * e] * a->f[2 * e] + a->f[2 * e + 1] * a->f[2 * e + 1]);
  else
    for (int64_t i = lo; i < hi; i++) s += a->f[i];
  return s;
}

static void grid_sum_blocks(void *ctx, int64_t b0, int64_t b1, double *acc) {
  const struct grid_sum_args *a = ctx;
  acc[0] += grid_sum_range(a, b0 * GRID_SUM_BLOCK, b1 * GRID_SUM_BLOCK < a->n ? b1 * GRID_SUM_BLOCK : a->n);
}

static double grid_sum(const struct grid_sum_args *a, int threaded) {
  if (!threaded) return grid_sum_range(a, 0, a->n);
  double s;
  opl_par_sums((a->n + GRID_SUM_BLOCK - 1) / GRID_SUM_BLOCK, 1, 1, grid_sum_blocks, (void *)a, &s);
  return s;
}

double opl_grid_integral(const opl_grid *g, const double *u) {
  struct grid_sum_args a = {g, u, g->nreal, 0};
  return grid_sum(&a, g->par && g->nreal > OPL_PDE_PAR_MIN) * g->dx[0] * g->dx[1];
}

double opl_grid_parseval(const opl_grid *g, const double *uh) {
  struct grid_sum_args a = {g, uh, g->nspec, 1};
  double s = grid_sum(&a, g->par && g->nspec > OPL_PDE_PAR_MIN / 2);
  double N = (double)g->nreal;
  return s * g->L[0] * g->L[1] / (N * N);
}
