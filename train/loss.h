/* opl train — training losses beyond the relative L2 of core (opl_rel_lp_loss).
 *
 * H1 relative loss (the MgNO authors' HsLoss with d = 2, p = 2, k = 1, a = [1], group False,
 * truncation True; the same loss as the FNO repository's HsLoss without the truncation): per
 * sample n, with Z = DFT over the two spatial axes and integer wavenumbers kx, ky (FFT order,
 * |k| taken; kx' = |kx| if |kx| < 20 else 0, likewise ky'),
 *   r_n = sqrt( sum_k w_k |P_k - Y_k|^2 ) / sqrt( sum_k w_k |Y_k|^2 ),  w_k = 1 + kx'^2 + ky'^2,
 * summed over all channels of the sample, reduced over the batch (sum or mean). Any X, Y >= 1:
 * the index -> |k| map of each axis is numpy/torch fftfreq's (n odd: k = 0..(n-1)/2, then
 * -(n-1)/2..-1). The DFT normalization cancels in the ratio. Computed in the Parseval form on
 * the half spectrum, the relative L2 of t . rfft2(p) against t . rfft2(y) with t the square root
 * of w times the number of full-spectrum columns each half-spectrum column stands for, so the
 * gradient is core's (rfft, view_as_real, mul, rel_lp_loss).
 * (The authors' code builds kx as [0..X/2-1, -X/2..-1] with floor division, which for odd X
 * gives index (X-1)/2 the wavenumber -(X+1)/2 instead of fftfreq's (X-1)/2; both are >= 20 and
 * truncated to 0 for X >= 41, so at 85^2 the two agree.)
 *
 * Per-field relative L2 ("l2-field"; SineNet's training criterion "scaledl2", the function
 * scaledlp_loss of pdearena/pdearena/modules/loss.py in the SineNet authors' code, OpenPDE/SineNet
 * of github.com/divelab/AIRS, applied by PDEModel.train_step in pdearena/models/pdemodel.py to
 * the normalized prediction and the normalized target): per sample n and channel c (the authors'
 * time step x field), over the spatial points,
 *   r_nc = ||p_nc - y_nc||_2 / ||y_nc||_2,
 * averaged over the channels; the authors then average over the batch too (reduction "mean"),
 * opl sums over the batch as its other losses (reduction sum: sum_n mean_c r_nc). The trainer
 * applies it to the normalized fields (train/trainer.c), as the authors do. */
#ifndef OPL_TRAIN_LOSS_H
#define OPL_TRAIN_LOSS_H

#include "core/ops.h"

/* The kind of training loss. */
typedef enum { OPL_LOSS_L2 = 0, OPL_LOSS_H1 = 1, OPL_LOSS_L2_FIELD = 2 } opl_loss_kind;
/* "l2", "h1", "l2-field". */
const char *opl_loss_name(opl_loss_kind k);
/* The kind named s ("l2", "h1", "l2-field"), or -1. */
int opl_loss_parse(const char *s);

/* The wavenumber cutoff of HsLoss's truncation. */
#define OPL_H1_KMAX 20

/* H1 relative loss of pred against y, both (N, C, X, Y), any X, Y >= 1 (OPL_ERR_SHAPE when the
 * shapes differ, naming both); a sample with zero H1 norm is OPL_ERR_ARG. Scalar (1) out. */
opl_tensor *opl_h1_rel_loss(opl_ctx *c, opl_tensor *pred, opl_tensor *y, opl_reduction red);

/* The same relative H1 error per sample, on plain arrays (evaluation, no tape kept):
 * pred, y [n, C, X, Y] -> out[n]. Runs in a context of its own. OPL_ERR_SHAPE (n, C, X or Y < 1) or OPL_ERR_ARG (a sample with zero H1 norm, NULL arrays) with a message. */
int opl_h1_rel_per_sample(const opl_real *pred, const opl_real *y, int64_t n, int64_t C, int64_t X, int64_t Y,
                          double *out, opl_err *err);

/* Per-field relative L2 of pred against y, both (N, C, *S) with rank 3..5 (OPL_ERR_SHAPE naming
 * both shapes otherwise): r_nc = ||p_nc - y_nc|| / ||y_nc|| over the spatial axes S; red SUM:
 * sum_n (1/C) sum_c r_nc, MEAN: (1/(N C)) sum_nc r_nc. A zero target row is OPL_ERR_ARG (core's
 * relative L2). Scalar (1) out. */
opl_tensor *opl_field_rel_l2_loss(opl_ctx *c, opl_tensor *pred, opl_tensor *y, opl_reduction red);

#endif
