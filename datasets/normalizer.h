/* opl datasets — Gaussian normalizers of the FNO reference code (Li et al., "Fourier neural
 * operator for parametric partial differential equations", ICLR 2021; utilities3.py of
 * github.com/zongyi-li/fourier_neural_operator):
 *
 *   OPL_NORM_UNIT_GAUSSIAN  (UnitGaussianNormalizer) per-point statistics over the training
 *       samples: mean[p] = mean_k x[k, p], std[p] = unbiased standard deviation over k (like
 *       torch.std(x, 0), divisor n - 1);
 *   OPL_NORM_GAUSSIAN       (GaussianNormalizer) one mean and one unbiased std over every
 *       element of every training sample;
 *   encode  x <- (x - mean) / (std + eps),   decode  x <- x (std + eps) + mean,   eps = 1e-5.
 *
 * Statistics are accumulated in double with Welford's update (Welford, "Note on a method for
 * calculating corrected sums of squares and products", Technometrics 4(3), 1962), per point;
 * the scalar statistics combine the per-point ones exactly (Chan, Golub, LeVeque, "Updating
 * formulae and a pairwise algorithm for computing sample variances", 1979). They are kept as
 * opl_real tensors (what encode / decode apply).
 *
 * Resolution: a per-point normalizer fit at one resolution is mapped to another grid by
 * opl_normalizer_resample, treating the grid as PERIODIC and uniform (x_i = i L / X), each
 * spatial axis separately:
 *   OPL_NORM_RESAMPLE_LINEAR (default)  periodic linear interpolation of mean and std. Exact
 *       for the stride sub-sampling x[::s] (the new points are old points), keeps std >= 0 and
 *       every value within the range of its neighbours: no overshoot near shocks.
 *   OPL_NORM_RESAMPLE_SPECTRAL          trigonometric interpolation by opl_grid_resample
 *       (pde/grid.h; zero-padding or truncating the spectrum; an even grid's Nyquist coefficient
 *       is split in two when refining and the two +-N/2 coefficients folded when coarsening, as
 *       sampling does). Every extent, old and new, must be even and >= 4.
 *       Exact for band-limited statistics (modes |k| < min(X, X')/2 plus that Nyquist rule);
 *       may ring (Gibbs) near sharp features, so the resampled std is clipped at 0.
 * Linear is the default because statistics of PDE solutions (Burgers at t = 1) have sharp
 * features where spectral interpolation rings, and because FNO evaluations at other
 * resolutions are usually sub-samplings of the training grid, where linear is exact.
 *
 * Storage: a group (default "normalizer") with datasets mean and std (the build's precision)
 * and attributes format = "opl-normalizer", kind ("unit_gaussian" / "gaussian"), eps, nfit,
 * written through core/io.h (atomic file writes; h5py-readable).
 */
#ifndef OPL_DATASETS_NORMALIZER_H
#define OPL_DATASETS_NORMALIZER_H

#include "core/opl.h"
#include "core/io.h"
#include "datasets/loader.h"

#define OPL_NORM_EPS 1e-5
#define OPL_NORM_FORMAT "opl-normalizer"

typedef enum { OPL_NORM_UNIT_GAUSSIAN = 0, OPL_NORM_GAUSSIAN = 1 } opl_norm_kind;
typedef enum { OPL_NORM_RESAMPLE_LINEAR = 0, OPL_NORM_RESAMPLE_SPECTRAL = 1 } opl_norm_resample;

/* A normalizer. Read-only for users; made by the functions below, freed by
 * opl_normalizer_free. */
typedef struct opl_normalizer {
  int kind;                       /* opl_norm_kind */
  double eps;                     /* added to std (OPL_NORM_EPS) */
  int rank;                       /* UNIT_GAUSSIAN: rank of one sample (e.g. (C, X[, Y])); GAUSSIAN: 0 */
  int64_t shape[OPL_MAX_RANK];    /* UNIT_GAUSSIAN: shape of one sample */
  int64_t nfit;                   /* number of samples fitted */
  opl_tensor *mean;               /* UNIT_GAUSSIAN: shape of one sample; GAUSSIAN: (1) */
  opl_tensor *std;                /* same shape as mean; >= 0 */
} opl_normalizer;

/* Fit on n samples data [n, shape[0..rank)] (rank 1..4, extents >= 1). Needs n >= 2 for
 * UNIT_GAUSSIAN and n * numel >= 2 for GAUSSIAN (the unbiased std divides by count - 1;
 * torch returns NaN there) — OPL_ERR_ARG otherwise; a NaN or Inf in data is
 * OPL_ERR_NONFINITE naming the sample. Returns NULL and fills err on failure. */
opl_normalizer *opl_normalizer_fit(int kind, const opl_real *data, int64_t n, int rank,
                                   const int64_t *shape, opl_err *err);

/* Fit on the training split of a loader, in sample order, as the loader fills it: which = 0
 * the inputs x (shape (cin, nx[, ny])), 1 the targets y (cout, ...). Reads the data set once,
 * one batch at a time. */
opl_normalizer *opl_normalizer_fit_loader(opl_loader *l, int which, int kind, opl_err *err);

/* Free; sets *nz to NULL. Accepts NULL. */
void opl_normalizer_free(opl_normalizer **nz);

/* Encode / decode a batch in place: x [shape[0..rank)], where rank = nz->rank + 1 and
 * shape = (B, the normalizer's sample shape) for UNIT_GAUSSIAN (OPL_ERR_SHAPE naming both
 * shapes otherwise); any shape for GAUSSIAN. Parallel over the batch (OpenMP). */
int opl_normalizer_encode(const opl_normalizer *nz, opl_real *x, int rank, const int64_t *shape,
                          opl_err *err);
int opl_normalizer_decode(const opl_normalizer *nz, opl_real *x, int rank, const int64_t *shape,
                          opl_err *err);

/* The same maps as differentiable graph nodes (gradients flow to x; the statistics are
 * constants), for decoding a model's output before the loss as FNO's training loop does:
 * y = x (std + eps) + mean, built from core ops (opl_mul / opl_add with broadcasting, or
 * opl_scale / opl_add_scalar for GAUSSIAN). x: (B, sample shape) for UNIT_GAUSSIAN.
 * NULL and a sticky OPL_ERR_SHAPE on a shape mismatch. */
opl_tensor *opl_normalizer_decode_op(opl_ctx *c, const opl_normalizer *nz, opl_tensor *x);
/* y = (x - mean) / (std + eps). */
opl_tensor *opl_normalizer_encode_op(opl_ctx *c, const opl_normalizer *nz, opl_tensor *x);

/* A new normalizer for another resolution: a UNIT_GAUSSIAN normalizer of sample shape
 * (C, X) or (C, X, Y) gets mean and std resampled to (C, nx) or (C, nx, ny) (ny ignored in
 * 1-D) by `mode` (see above). GAUSSIAN: a copy. Errors: rank not 2 or 3, nx or ny < 1
 * OPL_ERR_SHAPE/ARG; FFT failures from core/fft.h. */
opl_normalizer *opl_normalizer_resample(const opl_normalizer *nz, int64_t nx, int64_t ny, int mode,
                                        opl_err *err);

/* Write nz into the group (NULL: "normalizer") of an open writer (core/io.h). */
int opl_normalizer_put(opl_h5w *w, const char *group, const opl_normalizer *nz, opl_err *err);
/* Read a normalizer from the group (NULL: "normalizer") of an open reader. A group without
 * format = "opl-normalizer", an unknown kind, mean and std of different shapes, or negative /
 * non-finite values are OPL_ERR_FORMAT; a missing group or dataset OPL_ERR_NOTFOUND. */
opl_normalizer *opl_normalizer_get(opl_h5r *r, const char *group, opl_err *err);
/* One-file conveniences (atomic write; group "normalizer"). */
int opl_normalizer_save(const char *path, const opl_normalizer *nz, opl_err *err);
opl_normalizer *opl_normalizer_load(const char *path, opl_err *err);

#endif
