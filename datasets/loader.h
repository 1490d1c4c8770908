/* opl datasets — batched loader over an open data set (any layout of datasets/h5layout.h).
 *
 * What it does, as the FNO reference scripts do (Li et al., "Fourier neural operator for
 * parametric partial differential equations", ICLR 2021, github.com/zongyi-li/
 * fourier_neural_operator, fourier_1d.py / fourier_2d_time.py):
 *  - split: the FIRST ntrain samples are the training set, the LAST ntest samples the test
 *    set (x_train = a[:ntrain], x_test = a[-ntest:]); ntrain + ntest > N is an error;
 *  - spatial sub-sampling x[::sub] (and y[::sub]), done by the HDF5 hyperslab itself;
 *  - channels chosen from the input a and the frames of u (frames after t = 0, see
 *    h5layout.h): a selection {with_a, t0, nt} gives with_a + nt channels, a first when
 *    with_a, then frames t0 .. t0 + nt - 1 (t0 < 0 counts from the end: -1 is the last frame).
 *      FNO Burgers (fourier_1d.py):        in {1, 0, 0}, out {0, -1, 1}
 *      FNO NS 2-D time (T_in = 10, T = 10): in {0, 0, 10}, out {0, 10, 10}
 *      PDEBench-style (initial state + 9):  in {1, 0, 9}, out {0, 9, 1}
 *  - batches filled into CALLER buffers in opl_real, channels first, the layout the operators
 *    take: x (B, Cin, X/sub[, Y/sub]), y (B, Cout, X/sub[, Y/sub]);
 *  - the training set is shuffled each epoch when asked: the order of epoch e is a
 *    Fisher-Yates permutation driven by the opl_rng stream opl_rng_split(seed stream, e)
 *    (core/rng.h), so it depends only on (seed, epoch) — reproducible, and any batch of any
 *    epoch can be asked for in any order. The test set is never shuffled;
 *  - the last batch may be partial: its true size is reported (no samples dropped, like
 *    torch's DataLoader with drop_last = False).
 * By default nothing is held in memory but one batch: each batch is read from the file with
 * hyperslabs. With cache = 1 the selected frames of every train and test sample are read
 * once at creation (for small files; memory: (ntrain + ntest) x (channels in use) x X x Y
 * reals). After the first batch, reading a batch does not allocate.
 * Files stored with MATLAB's reversed axes (FNO .mat, opl_ds_info.transposed) have the
 * sample index as the FASTEST axis on disk: any batch then touches the whole variable, so
 * use cache = 1 for them (the FNO scripts load the whole .mat too; the cache is filled one
 * contiguous frame of all samples at a time), or convert them to the native layout.
 * Non-finite values in a batch are an error naming the sample index (OPL_ERR_NONFINITE).
 */
#ifndef OPL_DATASETS_LOADER_H
#define OPL_DATASETS_LOADER_H

#include "core/opl.h"
#include "datasets/h5layout.h"

/* Channels taken from a sample: a first (with_a = 1), then u frames [t0, t0 + nt). */
typedef struct opl_ds_sel {
  int with_a;     /* 0 or 1 */
  int64_t t0;     /* first frame; < 0 counts from the end (-1 = last) */
  int64_t nt;     /* number of frames, >= 0; with_a + nt >= 1 */
} opl_ds_sel;

typedef struct opl_loader_opts {
  int64_t ntrain;    /* first ntrain samples, >= 0 */
  int64_t ntest;     /* last ntest samples, >= 0; ntrain + ntest in [1, N] */
  int64_t batch;     /* >= 1 */
  int sub;           /* spatial stride, >= 1, dividing X (and Y) */
  opl_ds_sel in;     /* input channels */
  opl_ds_sel out;    /* target channels */
  int shuffle;       /* shuffle the training set each epoch */
  uint64_t seed;     /* shuffling seed */
  int cache;         /* read everything selected at creation */
} opl_loader_opts;

enum { OPL_SPLIT_TRAIN = 0, OPL_SPLIT_TEST = 1 };

typedef struct opl_loader_info {
  int sdim;              /* 1 or 2 */
  int64_t nx, ny;        /* extents after sub (ny = 1 in 1-D) */
  int64_t cin, cout;     /* channels of x and y */
  int64_t in_t0, out_t0; /* resolved first frames (>= 0) */
  int64_t batch;
  int64_t n[2];          /* samples in the train / test split */
  int64_t first[2];      /* first sample index of each split: 0 and N - ntest */
  int64_t nbatch[2];     /* batches per epoch: ceil(n / batch) */
  int rank;              /* 3: (B, C, X); 4: (B, C, X, Y) */
  int64_t in_shape[4];   /* (batch, cin, nx[, ny]) */
  int64_t out_shape[4];  /* (batch, cout, nx[, ny]) */
} opl_loader_info;

typedef struct opl_loader opl_loader;

/* A loader over ds (borrowed: it must stay open while the loader lives). Checks the options
 * against the data set: ntrain + ntest > N, a bad batch, selection or frame range, or a sub
 * that does not divide the resolution is OPL_ERR_ARG with a message naming the file, the
 * dataset and the values. With cache = 1 reads everything now (errors of opl_ds_read_*).
 * Returns NULL and fills err on failure. */
opl_loader *opl_loader_new(opl_ds *ds, const opl_loader_opts *o, opl_err *err);
/* Free; sets *l to NULL. Accepts NULL. */
void opl_loader_free(opl_loader **l);
/* Shapes and counts (never NULL for a loader). */
const opl_loader_info *opl_loader_get_info(const opl_loader *l);
/* The data set the loader reads. */
opl_ds *opl_loader_ds(const opl_loader *l);

/* The sample order of an epoch of a split into order[0 .. n[split]): sample indices of the
 * data set (test: first[1], first[1] + 1, ...; train: 0..ntrain-1 permuted by (seed, epoch)
 * when shuffling). epoch >= 0. */
int opl_loader_order(opl_loader *l, int split, int64_t epoch, int64_t *order, opl_err *err);

/* Batch k (0 <= k < nbatch[split]) of an epoch: fills x [B, cin, nx(, ny)] and
 * y [B, cout, nx(, ny)] (either may be NULL to skip it; capacity: opts.batch samples), sets
 * *bsize = B (the true size: the last batch may be smaller) and, when samples is not NULL,
 * samples[0..B) = the data set indices of the batch. Errors: bad split / k / epoch
 * OPL_ERR_ARG; a non-finite value OPL_ERR_NONFINITE naming the sample; I/O errors. */
int opl_loader_batch(opl_loader *l, int split, int64_t epoch, int64_t k, opl_real *x, opl_real *y,
                     int64_t *bsize, int64_t *samples, opl_err *err);

/* Fill x and y (as above, either may be NULL) for any samples idx[0..count) of the data set
 * (count <= opts.batch; indices in [0, N), not limited to a split). */
int opl_loader_read(opl_loader *l, const int64_t *idx, int64_t count, opl_real *x, opl_real *y,
                    opl_err *err);

#endif
