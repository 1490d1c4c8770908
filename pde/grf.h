/* opl pde — Gaussian random fields on periodic grids (1-D and 2-D), mean zero:
 *
 *     u ~ N(0, sigma^2 (-Laplacian + tau^2 I)^(-alpha)),
 *
 * sampled by Fourier coefficients. With lambda_k = |k|^2 + tau^2 (k the physical wavenumber,
 * 2 pi m / L per axis) and independent standard normals xi, eta, the field on the grid is
 *
 *     u(x) = sum over pairs {k, -k}, k != 0:  2 Re( a_k (xi_k + i eta_k) e^{i k.x} )
 *          + sum over self-conjugate k != 0 (Nyquist bins):  b_k xi_k e^{i k.x}
 *
 * so that Var u(x) = sum_pairs 4 a_k^2 + sum_self b_k^2 (opl_grf_variance), with two
 * conventions that differ by the weight of a pair:
 *
 *   OPL_GRF_GRF1  the FNO repository's 1-D generator GRF1.m ('periodic'; Li et al., "Fourier
 *                 neural operator for parametric PDEs", ICLR 2021, data generation), on [0, L):
 *                   u0 = sum_{m>=1} sigma lambda_m^(-alpha/2) (xi_m sqrt2 cos(2 pi m x / L)
 *                                                          + eta_m sqrt2 sin(2 pi m x / L)),
 *                 i.e. a_k = sigma lambda_k^(-alpha/2) / sqrt2, and at the Nyquist bin (which
 *                 GRF1(s/2, ...) sampled on s points also has) b = sqrt2 sigma lambda^(-alpha/2).
 *                 Every mode has variance 2 sigma^2 lambda^-alpha: the Karhunen-Loeve expansion
 *                 of the covariance operator (eigenfunctions sqrt2 cos, sqrt2 sin on [0, 1)).
 *   OPL_GRF_FNO   the FNO repository's GaussianRF (random_fields.py): complex normals
 *                 times sqrt2 sigma lambda^(-alpha/2) on every grid wavenumber
 *                 (k in {-n/2..n/2-1}^d, k = 0 zeroed), inverse FFT, real part. Its grid
 *                 covariance is sum_k 2 sigma^2 lambda_k^-alpha cos(k.(x-y)) over that set,
 *                 which the Hermitian form above reproduces exactly with
 *                 a_k = sigma lambda_k^(-alpha/2) and b = sqrt2 sigma lambda^(-alpha/2).
 *                 (In FNO's 2-D Navier-Stokes data, alpha = 2.5, tau = 7 and sigma = tau^(0.5
 *                 (2 alpha - d)) = 7^(3/2): the preset "ns-fno".)
 *
 * Reproducibility. A sample is a pure function of its RNG stream: the normals are drawn in a
 * fixed, documented order, two per pair (xi then eta) and one per self-conjugate bin:
 *   1. pairs with both integer wavenumbers below their axis' Nyquist, by square shells
 *      s = max(|mx|, |my|) = 1, 2, ...; in a shell by my = 0..s, then mx = -s..s, taking the
 *      representative with my > 0, or my == 0 and mx > 0 (1-D: m = 1, 2, ..);
 *   2. the Nyquist bins (mx = n/2 or my = n/2) in storage order (row-major over the r2c
 *      layout, one draw set per conjugate pair), after all pairs.
 * So a field drawn on a finer grid from the same stream has the same coefficients on all
 * modes below the coarse grid's Nyquist (resolution-consistent sampling), and sample i of a
 * data set can be regenerated alone from opl_rng_split(&parent, i) (opl_grf_sample_seeded).
 * kmax > 0 keeps only shells s <= kmax (no draws for the others).
 */
#ifndef OPL_PDE_GRF_H
#define OPL_PDE_GRF_H

#include "core/opl.h"
#include "core/rng.h"
#include "pde/grid.h"

typedef enum {
  OPL_GRF_GRF1 = 0,  /* FNO's GRF1.m (1-D Burgers data): pair weight a = sigma lambda^-alpha/2 / sqrt2 */
  OPL_GRF_FNO = 1,   /* FNO's GaussianRF (2-D Navier-Stokes data): a = sigma lambda^-alpha/2 */
} opl_grf_convention;

typedef struct opl_grf_params {
  double sigma;      /* amplitude, > 0 */
  double tau;        /* shift of the spectrum, >= 0 */
  double alpha;      /* decay exponent (gamma in GRF1.m), > 0 */
  int convention;    /* opl_grf_convention */
  int kmax;          /* keep shells max(|mx|, |my|) <= kmax; <= 0: all */
} opl_grf_params;

/* Presets (on [0, 1), the domain they were published for):
 *   "burgers-fno"      GRF1, sigma 25, tau 5, alpha 2: N(0, 625 (-Delta + 25 I)^-2), the
 *                      initial condition of the FNO paper's Burgers section;
 *   "burgers-chebfun"  GRF1, sigma 49, tau 7, alpha 2.5: N(0, 49^2 (-Delta + 49 I)^-2.5), the
 *                      parameters of the FNO repository's gen_burgers.m (chebfun);
 *   "ns-fno"           FNO, sigma 7^1.5, tau 7, alpha 2.5: the Navier-Stokes vorticity w0.
 * Pointwise standard deviations (opl_grf_variance): 0.594 and 0.274 (1-D, n >= 64; the mean over
 * samples of the spatial std is lower, 0.547 and 0.252) and 0.262 (ns-fno, 64^2).
 * Returns OPL_OK, or OPL_ERR_ARG naming an unknown preset. */
int opl_grf_preset(const char *name, opl_grf_params *p, opl_err *err);

typedef struct opl_grf opl_grf;

/* A sampler on grid g (borrowed: it must outlive the sampler). Checks the parameters:
 * OPL_ERR_ARG naming the bad value (sigma <= 0, tau < 0, alpha <= 0, non-finite, unknown
 * convention); OPL_ERR_NOMEM. The sampler is immutable after create and can be shared by
 * threads (sampling takes a caller workspace). */
opl_grf *opl_grf_new(const opl_grid *g, const opl_grf_params *p, opl_err *err);
void opl_grf_free(opl_grf **f);
/* The grid of a sampler. */
const opl_grid *opl_grf_grid(const opl_grf *f);
/* Number of doubles of work of opl_grf_sample: 2 nspec. */
int64_t opl_grf_work_size(const opl_grf *f);
/* Number of normals one sample draws (the stream advances by this many draws). */
int64_t opl_grf_ndraws(const opl_grf *f);
/* The analytic pointwise variance E u(x)^2 of the sampled field on this grid (the sum in the
 * header comment over the modes kept). */
double opl_grf_variance(const opl_grf *f);

/* One sample in spectral form: uh[2 nspec] (unnormalized, grid.h convention; zero mean mode)
 * drawn from stream (which advances). */
void opl_grf_sample_spec(const opl_grf *f, opl_rng *stream, double *uh);
/* One sample on the grid: u[nreal]. work[opl_grf_work_size] is scratch. */
void opl_grf_sample(const opl_grf *f, opl_rng *stream, double *u, double *work);
/* Sample number `index` of the data set of `seed`: the stream opl_rng_split(seed stream,
 * index), so each sample is reproducible alone and independent of the others. */
void opl_grf_sample_seeded(const opl_grf *f, uint64_t seed, uint64_t index, double *u, double *work);

#endif
