/* opl pde — Gaussian random fields by Fourier coefficients (conventions in grf.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pde/grf.h"

/* One slot of the draw table: where a draw set goes and with which amplitude. */
typedef struct grf_slot {
  int64_t e;        /* spectral entry (row * nch + col) */
  int64_t partner;  /* entry that receives the conjugate (column 0 / Nyquist-column pairs), or -1 */
  double amp;       /* amplitude times nreal (unnormalized spectrum) */
  int real_only;    /* self-conjugate bin: one real draw */
} grf_slot;

struct opl_grf {
  const opl_grid *g;
  opl_grf_params p;
  grf_slot *slot;   /* [nslot] in draw order */
  int64_t nslot, ndraws;
  double variance;
};

int opl_grf_preset(const char *name, opl_grf_params *p, opl_err *err) {
  if (!name || !p) return opl_err_set(err, OPL_ERR_ARG, "grf_preset: NULL argument");
  memset(p, 0, sizeof *p);
  if (!strcmp(name, "burgers-fno")) {
    *p = (opl_grf_params){.sigma = 25, .tau = 5, .alpha = 2, .convention = OPL_GRF_GRF1};
  } else if (!strcmp(name, "burgers-chebfun")) {
    *p = (opl_grf_params){.sigma = 49, .tau = 7, .alpha = 2.5, .convention = OPL_GRF_GRF1};
  } else if (!strcmp(name, "ns-fno")) {
    *p = (opl_grf_params){.sigma = pow(7.0, 1.5), .tau = 7, .alpha = 2.5, .convention = OPL_GRF_FNO};
  } else {
    return opl_err_set(err, OPL_ERR_ARG,
                       "grf_preset: unknown preset '%s' (burgers-fno, burgers-chebfun, ns-fno)", name);
  }
  return OPL_OK;
}

/* Storage row of an integer row wavenumber. */
static inline int64_t row_of(const opl_grid *g, int kx) {
  return g->nrow == 1 ? 0 : (kx >= 0 ? kx : kx + g->nrow);
}

/* lambda^(-alpha/2) * sigma for integer wavenumbers (kx, ky) (kx along rows, ky along columns). */
static double grf_sqrt_eig(const opl_grid *g, const opl_grf_params *p, int kx, int ky) {
  double Lr = g->dim == 1 ? 1.0 : g->L[0], Lc = g->dim == 1 ? g->L[0] : g->L[1];
  double a = 2 * M_PI * kx / Lr, b = 2 * M_PI * ky / Lc;
  double lam = a * a + b * b + p->tau * p->tau;
  return p->sigma * pow(lam, -0.5 * p->alpha);
}

/* Build the draw table (order documented in grf.h). With slot == NULL only counts. */
static int64_t grf_build(const opl_grid *g, const opl_grf_params *p, grf_slot *slot, double *var) {
  int64_t ns = 0;
  double v = 0;
  int nr = g->nrow, nc = g->nc, nch = g->nch;
  double N = (double)g->nreal;
  double pairw = p->convention == OPL_GRF_GRF1 ? M_SQRT1_2 : 1.0;
  int smax = nc / 2;
  if (nr > 1 && nr / 2 > smax) smax = nr / 2;
  int kmax = p->kmax > 0 ? p->kmax : smax;
  /* 1. Interior pairs by square shells. */
  /* In 1-D (nr == 1) shell s holds only (0, s): skipping the empty rest keeps the draw order and
   * makes this O(smax) instead of O(smax^3) (~80 s at 8192 points). */
  for (int s = 1; s <= smax && s <= kmax; s++)
    for (int ky = nr == 1 ? s : 0; ky <= s; ky++)
      for (int kx = nr == 1 ? 0 : -s; kx <= (nr == 1 ? 0 : s); kx++) {
        if (nr == 1 && kx != 0) continue;
        if ((abs(kx) > ky ? abs(kx) : ky) != s) continue;
        if (ky == 0 && kx <= 0) continue;
        if (2 * abs(kx) >= nr && nr > 1) continue;  /* row Nyquist: stage 2 */
        if (2 * ky >= nc) continue;                  /* column Nyquist: stage 2 */
        double a = pairw * grf_sqrt_eig(g, p, kx, ky);
        if (slot) {
          slot[ns].e = row_of(g, kx) * nch + ky;
          slot[ns].partner = ky == 0 ? row_of(g, -kx) * nch : -1;
          slot[ns].amp = a * N;
          slot[ns].real_only = 0;
        }
        ns++;
        v += 4 * a * a;
      }
  /* 2. Nyquist bins in storage order. */
  for (int r = 0; r < nr; r++)
    for (int c = 0; c < nch; c++) {
      int rowN = nr > 1 && 2 * r == nr, colN = 2 * c == nc;
      if (!rowN && !colN) continue;
      int kx = nr == 1 ? 0 : (r <= nr / 2 ? r : r - nr), ky = c;
      int sh = abs(kx) > ky ? abs(kx) : ky;
      if (sh > kmax) continue;
      int self = (colN || c == 0) && (kx == 0 || rowN); /* (0,N), (N,0), (N,N) */
      if (!self && colN && kx < 0) continue;           /* partner of row -kx, drawn there */
      double s0 = grf_sqrt_eig(g, p, kx, ky);
      double a = self ? M_SQRT2 * s0 : pairw * s0;
      if (slot) {
        slot[ns].e = (int64_t)r * nch + c;
        slot[ns].partner = (!self && colN) ? row_of(g, -kx) * nch + c : -1;
        slot[ns].amp = a * N;
        slot[ns].real_only = self;
      }
      ns++;
      v += self ? a * a : 4 * a * a;
    }
  if (var) *var = v;
  return ns;
}

opl_grf *opl_grf_new(const opl_grid *g, const opl_grf_params *p, opl_err *err) {
  if (!g || !p) {
    opl_err_set(err, OPL_ERR_ARG, "grf_new: NULL argument");
    return NULL;
  }
  if (!(p->sigma > 0) || !isfinite(p->sigma)) {
    opl_err_set(err, OPL_ERR_ARG, "grf_new: sigma = %g must be finite and > 0", p->sigma);
    return NULL;
  }
  if (!(p->tau >= 0) || !isfinite(p->tau)) {
    opl_err_set(err, OPL_ERR_ARG, "grf_new: tau = %g must be finite and >= 0", p->tau);
    return NULL;
  }
  if (!(p->alpha > 0) || !isfinite(p->alpha)) {
    opl_err_set(err, OPL_ERR_ARG, "grf_new: alpha = %g must be finite and > 0", p->alpha);
    return NULL;
  }
  if (p->convention != OPL_GRF_GRF1 && p->convention != OPL_GRF_FNO) {
    opl_err_set(err, OPL_ERR_ARG, "grf_new: convention = %d is not OPL_GRF_GRF1 (0) or OPL_GRF_FNO (1)",
                p->convention);
    return NULL;
  }
  opl_grf *f = calloc(1, sizeof *f);
  int64_t ns = grf_build(g, p, NULL, NULL);
  if (f) f->slot = malloc(sizeof(grf_slot) * (size_t)(ns > 0 ? ns : 1));
  if (!f || !f->slot) {
    if (f) free(f);
    opl_err_set(err, OPL_ERR_NOMEM, "grf_new: out of memory");
    return NULL;
  }
  f->g = g;
  f->p = *p;
  f->nslot = grf_build(g, p, f->slot, &f->variance);
  f->ndraws = 0;
  for (int64_t i = 0; i < f->nslot; i++) f->ndraws += f->slot[i].real_only ? 1 : 2;
  return f;
}

void opl_grf_free(opl_grf **fp) {
  if (!fp || !*fp) return;
  free((*fp)->slot);
  free(*fp);
  *fp = NULL;
}

const opl_grid *opl_grf_grid(const opl_grf *f) { return f->g; }
int64_t opl_grf_work_size(const opl_grf *f) { return 2 * f->g->nspec; }
int64_t opl_grf_ndraws(const opl_grf *f) { return f->ndraws; }
double opl_grf_variance(const opl_grf *f) { return f->variance; }

void opl_grf_sample_spec(const opl_grf *f, opl_rng *stream, double *uh) {
  memset(uh, 0, sizeof(double) * 2 * (size_t)f->g->nspec);
  for (int64_t i = 0; i < f->nslot; i++) {
    const grf_slot *s = &f->slot[i];
    double xi = opl_rng_normal(stream);
    double eta = s->real_only ? 0.0 : opl_rng_normal(stream);
    uh[2 * s->e] = s->amp * xi;
    uh[2 * s->e + 1] = s->amp * eta;
    if (s->partner >= 0) {
      uh[2 * s->partner] = s->amp * xi;
      uh[2 * s->partner + 1] = -s->amp * eta;
    }
  }
}

void opl_grf_sample(const opl_grf *f, opl_rng *stream, double *u, double *work) {
  opl_grf_sample_spec(f, stream, work);
  opl_grid_inverse(f->g, work, u);
}

void opl_grf_sample_seeded(const opl_grf *f, uint64_t seed, uint64_t index, double *u, double *work) {
  opl_rng parent;
  opl_rng_seed(&parent, seed);
  opl_rng child = opl_rng_split(&parent, index);
  opl_grf_sample(f, &child, u, work);
}
