/* opl pde — the periodic spectral grid (floor 2, DESIGN.md): FFTW double plans, wavenumbers,
 * spectral derivatives, the 2/3 dealiasing mask and spectral interpolation.
 *
 * Always double precision, whatever -Dprecision is (the reference solvers work in double).
 *
 * Domain and layout.
 *   1-D: n points x_i = i L / n, i = 0..n-1 on [0, L). A field is u[n].
 *   2-D: nx * ny points (x_i, y_j) = (i Lx / nx, j Ly / ny) on [0, Lx) x [0, Ly). A field is
 *        u[nx][ny], row-major, x index slow (u[i * ny + j]).
 *   n, nx, ny are even and >= 4.
 *   Spectra use FFTW's r2c layout with interleaved (re, im) doubles:
 *     1-D: uh[n/2 + 1] complex (2 (n/2 + 1) doubles);
 *     2-D: uh[nx][ny/2 + 1] complex (the last axis, y, is halved).
 *   nspec is the number of complex coefficients, nreal the number of real points.
 *
 * Transform convention (FFTW's): the forward transform is unnormalized,
 *   uh_k = sum_x u(x) exp(-i k . x),
 * and opl_grid_inverse divides by nreal, so inverse(forward(u)) == u. Every spectrum that a
 * function of this folder takes or returns is in this unnormalized convention (a mode
 * A exp(i k x) of a 1-D field shows as uh_k = n A).
 *
 * Wavenumbers. The storage index m of an axis of n points holds the integer wavenumber
 *   m for m = 0..n/2 and m - n for m = n/2+1..n-1   (0, 1, .., n/2, -n/2+1, .., -1),
 * times 2 pi / L. The index n/2 is the Nyquist bin (its integer wavenumber is +n/2).
 * On the halved last axis only m = 0..n/2 are stored.
 *
 * Derivatives multiply by (i k_x)^ox (i k_y)^oy. For an odd order along an axis the Nyquist
 * bin of that axis is zeroed (its sine partner is not represented, so the odd derivative of
 * the cosine there has no meaning on the grid); even orders keep it ((i k_N)^2 = -k_N^2).
 *
 * Dealiasing (Orszag's 2/3 rule; S. A. Orszag, "On the elimination of aliasing in
 * finite-difference schemes by filtering high-wavenumber components", J. Atmos. Sci. 28
 * (1971) 1074): along every axis a coefficient with integer wavenumber m is KEPT iff
 *   3 |m| < n    (i.e. |m| <= K with K = ceil(n/3) - 1; n = 256 keeps |m| <= 85)
 * and zeroed otherwise; in 2-D a coefficient is kept iff it is kept along both axes (the
 * square truncation). Reason: a product of two fields with |m| <= K has |m| <= 2K, whose
 * aliases m - n satisfy |m - n| >= n - 2K > K, so they never land in the kept band. The
 * Nyquist bin is always zeroed.
 *
 * Threads. All plans are made once, at create (the FFTW planner is not thread-safe: planning
 * is serialized by the named OpenMP critical section `opl_fftw_double_planner`: any other code
 * that makes or destroys double-precision FFTW plans concurrently must use it too). Every
 * transform afterwards uses FFTW's new-array execute functions, which are thread-safe, on
 * caller arrays. A grid is therefore immutable after create and can be shared by any number of
 * threads; every function that needs scratch memory takes a `work` argument, and each thread
 * passes its own (equation objects in burgers.h / kdv.h / ns2d.h own one workspace each: make
 * one equation object per thread on one shared grid): parallelism belongs at the level of fields
 * and trajectories. By default a grid's own loops and its FFTW plans are single-threaded:
 * measured on the 2-core development machine under load (6 runnable processes), an OpenMP
 * region per pointwise pass made one 256^2 Navier-Stokes evaluation 20-40x slower (each region
 * waits for a descheduled thread), while on a quiet machine it saves only part of the
 * memory-bound passes (the transforms dominate). OPL_GRID_THREADS turns the loops on for one
 * large solve on a quiet machine. Arrays should come from opl_pde_alloc
 * (16-byte aligned for FFTW's SIMD codelets); other alignments work through slower fallback
 * plans.
 */
#ifndef OPL_PDE_GRID_H
#define OPL_PDE_GRID_H

#include <stdint.h>
#include <fftw3.h>
#include "core/opl.h"

/* Flags of opl_grid_new_*. */
enum {
  OPL_GRID_MEASURE = 0,      /* plans by FFTW_MEASURE (default: slower create, faster run) */
  OPL_GRID_ESTIMATE = 1,     /* plans by FFTW_ESTIMATE (instant create; tests, one-off use) */
  OPL_GRID_THREADS = 2,      /* pointwise loops of this grid and of the equations on it use
                                OpenMP threads when a field has > OPL_PDE_PAR_MIN points */
};

/* Work (points) above which an OPL_GRID_THREADS grid's pointwise loops use OpenMP. */
#define OPL_PDE_PAR_MIN 32768

/* The largest batch of the batched plans (opl_grid_inverse_many / _forward_many use one FFTW
 * many-plan per group of this many fields). */
#define OPL_GRID_BATCH 4

typedef struct opl_grid {
  /* Public, read-only after create. */
  int dim;          /* 1 or 2 */
  int n[2];         /* points per axis; n[1] = 1 in 1-D */
  double L[2];      /* domain lengths; L[1] = 1 in 1-D */
  double dx[2];     /* L / n per axis */
  int64_t nreal;    /* real points: n[0] * n[1] */
  int64_t nspec;    /* complex coefficients: n/2+1 (1-D), nx (ny/2+1) (2-D) */
  /* Spectral layout: nrow rows (1 in 1-D, nx in 2-D) of nch = nc/2+1 complex entries, where nc
   * is the length of the halved (last) axis. */
  int nrow, nc, nch;
  double *krow;     /* [nrow] physical wavenumber of each row (0 in 1-D) */
  double *kcol;     /* [nch] physical wavenumber of each column */
  unsigned char *keep_row;  /* [nrow] 2/3-rule mask of each row (1 in 1-D) */
  unsigned char *keep_col;  /* [nch] 2/3-rule mask of each column */
  /* Plans (private). Aligned plans for 16-byte aligned arrays, unaligned fallbacks, and the
   * OPL_GRID_BATCH many-plans on contiguous batches. */
  fftw_plan r2c, c2r, r2c_u, c2r_u, r2c_b, c2r_b;
  unsigned flags;
  int par;          /* OPL_GRID_THREADS given */
} opl_grid;

/* A 1-D grid of n points on [0, L). n must be even and >= 4, L finite and > 0; flags is a set
 * of OPL_GRID_*. Returns NULL and fills err (OPL_ERR_ARG naming the bad value; OPL_ERR_NOMEM)
 * on failure. Free with opl_grid_free. */
opl_grid *opl_grid_new_1d(int n, double L, unsigned flags, opl_err *err);
/* A 2-D grid of nx * ny points on [0, Lx) x [0, Ly) (the same rules per axis). */
opl_grid *opl_grid_new_2d(int nx, int ny, double Lx, double Ly, unsigned flags, opl_err *err);
/* Destroy the grid's plans and tables; sets *g to NULL. Accepts NULL and *g == NULL. The
 * grid must not be in use by another thread. */
void opl_grid_free(opl_grid **g);

/* ndouble zeroed doubles aligned for FFTW (fftw_malloc); NULL when out of memory or
 * ndouble < 0. Free with opl_pde_free. */
double *opl_pde_alloc(int64_t ndouble);
void opl_pde_free(void *p);

/* Coordinate of point i along axis (i L / n). */
double opl_grid_x(const opl_grid *g, int axis, int i);
/* Integer wavenumber of storage index m along axis (see the header comment). On the halved
 * last axis m must be <= n/2. */
int opl_grid_kint(const opl_grid *g, int axis, int m);
/* Physical wavenumber 2 pi kint / L of storage index m along axis. */
double opl_grid_k(const opl_grid *g, int axis, int m);
/* Physical |k|^2 of spectral entry e = row * nch + col (0 <= e < nspec). */
double opl_grid_k2(const opl_grid *g, int64_t e);
/* Parseval weight of spectral entry e: how many coefficients of the full (Hermitian)
 * spectrum it stands for: 1 on the columns 0 and nc/2 (self-conjugate half), else 2. */
static inline double opl_grid_herm_weight(const opl_grid *g, int64_t e) {
  int col = (int)(e % g->nch);
  return (col == 0 || col == g->nc / 2) ? 1.0 : 2.0;
}

/* Forward transform: u[nreal] -> uh[2 nspec] (unnormalized). u is not modified. */
void opl_grid_forward(const opl_grid *g, const double *u, double *uh);
/* Inverse transform: uh[2 nspec] -> u[nreal], divided by nreal. uh is DESTROYED (FFTW's
 * multi-dimensional c2r cannot preserve its input). The imaginary parts of the self-conjugate
 * entries (DC, Nyquist) are ignored, i.e. the result is the real field of the Hermitian
 * spectrum. */
void opl_grid_inverse(const opl_grid *g, double *uh, double *u);
/* The same, without the 1/nreal factor (for callers that fold it into a spectral multiply). */
void opl_grid_inverse_raw(const opl_grid *g, double *uh, double *u);
/* count fields at once: u[count][nreal] <-> uh[count][2 nspec] (contiguous), through the
 * batched plans for whole groups of OPL_GRID_BATCH. _inverse_many destroys uh and, like
 * opl_grid_inverse, divides by nreal; _inverse_many_raw does not. */
void opl_grid_forward_many(const opl_grid *g, int count, const double *u, double *uh);
void opl_grid_inverse_many(const opl_grid *g, int count, double *uh, double *u);
void opl_grid_inverse_many_raw(const opl_grid *g, int count, double *uh, double *u);

/* Spectral derivative d^ox/dx^ox d^oy/dy^oy of a spectrum: out[2 nspec] = (i kx)^ox (i ky)^oy
 * uh, with the Nyquist bin of an axis zeroed when its order is odd. out may equal uh.
 * ox, oy >= 0; oy == 0 on 1-D grids (OPL_ASSERT). */
void opl_grid_deriv_spec(const opl_grid *g, int ox, int oy, const double *uh, double *out);
/* The same on a physical field: du[nreal] = d^ox_x d^oy_y u[nreal]. work[2 nspec] is scratch.
 * du may equal u. Exact (to rounding) for trigonometric polynomials below the Nyquist bin. */
void opl_grid_deriv(const opl_grid *g, int ox, int oy, const double *u, double *du, double *work);

/* 1 if storage index m of axis is kept by the 2/3 rule (3 |kint| < n), else 0. */
int opl_grid_dealias_keep(const opl_grid *g, int axis, int m);
/* Zero, in place, every coefficient of uh[2 nspec] that the 2/3 rule drops. */
void opl_grid_dealias(const opl_grid *g, double *uh);

/* The dealiased square: out[2 nspec] = P FFT((P u)^2), where u is the field of uh[2 nspec]
 * and P the 2/3-rule projection (both in the unnormalized convention). For |k| kept this is
 * exactly the spectrum of the square of the kept part (no aliasing). out may equal uh.
 * work[2 nspec + nreal] is scratch (at least 16-byte aligned for the fast plans). */
void opl_grid_square_dealiased(const opl_grid *g, const double *uh, double *out, double *work);

/* Number of doubles of work that opl_grid_resample needs: 2 (nspec(src) + nspec(dst)). */
int64_t opl_grid_resample_work(const opl_grid *src, const opl_grid *dst);
/* Spectral interpolation of a periodic field u[src nreal] onto the grid dst: v[dst nreal] is
 * the trigonometric interpolant of u sampled on dst. Per axis, from n to m points:
 *   m > n (refine):  modes |k| < n/2 are copied; the Nyquist coefficient c of the source (the
 *                    cosine cos(n/2 x) that the grid sees) is split into c/2 at +n/2 and c/2
 *                    at -n/2 (so the interpolant is real and passes through u); the rest is 0;
 *   m < n (coarsen): modes |k| < m/2 are copied; the new Nyquist bin receives the sum of the
 *                    source modes +m/2 and -m/2 (they alias to one bin on the coarse grid,
 *                    so v equals u at the common points when u has no modes |k| > m/2);
 *                    the rest is dropped;
 *   m == n:          copy.
 * Hence down-then-up of a field band-limited to |k| < m/2 (or with a cosine-only |k| = m/2
 * part), and up-then-down of any field, return the field exactly (to rounding).
 * Both grids must have the same dimension and domain lengths (OPL_ERR_ARG otherwise).
 * work[opl_grid_resample_work(src, dst)] is scratch. Returns OPL_OK or the error status. */
int opl_grid_resample(const opl_grid *src, const double *u, const opl_grid *dst, double *v,
                      double *work, opl_err *err);

/* Integral of a physical field over the domain: dx dy sum u (exact, for trigonometric
 * polynomials below the Nyquist bin, by the trapezoid rule on a periodic grid). */
double opl_grid_integral(const opl_grid *g, const double *u);
/* Integral of u^2 from a spectrum by Parseval: area / nreal^2 * sum over the full spectrum
 * of |uh|^2 (each stored entry weighted by opl_grid_herm_weight). */
double opl_grid_parseval(const opl_grid *g, const double *uh);

#endif
