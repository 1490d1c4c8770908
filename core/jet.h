/* opl — Taylor-mode input derivatives ("jets") for coordinate networks u_theta(t, x).
 *
 * A jet batch is one real tensor x [K, N, D]: N points, D features, and K stacked components
 * holding, for every point and feature, the value and its derivatives with respect to the
 * network's inputs, in this order:
 *     component 0            the value h
 *     components 1 .. nx     d^k h / dx^k, k = 1 .. nx       (0 <= nx <= 4)
 *     component nx + 1       d h / dt                          (only when nt = 1)
 * so K = 1 + nx + nt. Mixed derivatives (h_xt) are not carried: none of the residuals needs one.
 * Components are contiguous blocks of N D reals, so a linear layer over all of them is one GEMM
 * (DESIGN.md, "The engine": input derivatives carried forward, so a residual's parameter
 * gradient is one reverse pass). Derivatives are propagated forward exactly:
 *   - linear maps act on every component, the bias on the value only;
 *   - an activation y = s(h) by Faa di Bruno's formula,
 *       y' = s1 h',  y'' = s2 h'^2 + s1 h'',  y''' = s3 h'^3 + 3 s2 h' h'' + s1 h''',
 *       y'''' = s4 h'^4 + 6 s3 h'^2 h'' + s2 (3 h''^2 + 4 h' h''') + s1 h'''',  y_t = s1 h_t,
 *     with s_m the m-th derivative of s at h (tanh: s1 = 1 - s^2, s2 = -2 s s1,
 *     s3 = -2 (s1^2 + s s2), s4 = -2 (3 s1 s2 + s s3));
 *   - a product by Leibniz's rule, (ab)^(k) = sum_j C(k, j) a^(j) b^(k-j), (ab)_t = a_t b + a b_t.
 * (Griewank & Walther, "Evaluating Derivatives", 2nd ed., SIAM 2008, ch. 13, univariate Taylor
 * propagation.) Each op is one tape node whose backward accumulates into its inputs' gradients. */
#ifndef OPL_JET_H
#define OPL_JET_H

#include "core/opl.h"

/* Highest x-order a jet carries. */
#define OPL_JET_MAX_NX 4

/* The components of a jet: nx x-derivatives (0..OPL_JET_MAX_NX) and nt = 0 or 1 time derivative. */
typedef struct opl_jet_spec {
  int nx, nt;
} opl_jet_spec;

/* Number of components K = 1 + nx + nt. */
static inline int opl_jet_k(opl_jet_spec s) { return 1 + s.nx + s.nt; }

/* Linear layer on a jet: x [K, N, In], w [Out, In], b [Out] or NULL -> y [K, N, Out] with
 * y_k = x_k w^T for every component k and + b on component 0 only. One GEMM over K N rows. */
opl_tensor *opl_jet_linear(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b);

/* tanh of a jet: x [K, N, D] with K = opl_jet_k(s) -> y [K, N, D] by Faa di Bruno (above).
 * OPL_ERR_ARG for a spec out of range, OPL_ERR_SHAPE when x's first extent is not K. */
opl_tensor *opl_jet_tanh(opl_ctx *c, opl_tensor *x, opl_jet_spec s);

/* A hidden layer in one op: tanh(jet_linear(x, w, b)) for x [K, N, In] with K = opl_jet_k(s),
 * w [Out, In], b [Out] or NULL -> y [K, N, Out]. One GEMM over K N rows, then bias, tanh and the
 * derivative propagation in one pass over blocks of rows; it keeps only the pre-activation for
 * backward (tanh's derivatives are recomputed there from y). The same bits as
 * opl_jet_tanh(opl_jet_linear(x, w, b), s), in one pass fewer over memory each way and without
 * the intermediate gradient's zeroing. Errors as those two ops. */
opl_tensor *opl_jet_linear_tanh(opl_ctx *c, opl_tensor *x, opl_tensor *w, opl_tensor *b, opl_jet_spec s);

/* Most hidden layers of opl_jet_mlp. */
#define OPL_JET_MLP_MAX 32

/* A tanh MLP on a jet in one op: L hidden layers a_{l+1} = tanh(a_l w_l^T + b_l), l < L, then the
 * linear output a_L w_L^T + b_L; x = a_0 [K, N, F] with K = opl_jet_k(s), w[l] [Out_l, In_l]
 * (In_0 = F, In_l = Out_{l-1}), b[l] [Out_l] (b or any b[l] may be NULL) -> u [K, N, Out_L].
 * Equal to opl_jet_linear(opl_jet_linear_tanh(...)) to rounding, but processed in tiles of points
 * whose activations stay in cache through all layers; backward rebuilds each tile's activations
 * from what forward kept per layer (tanh, its derivative, the pre-activation's derivative
 * components: K + 1 values per point and unit). Parameter
 * gradients are summed tile by tile in a fixed order: the same bits for every thread count. */
opl_tensor *opl_jet_mlp(opl_ctx *c, opl_tensor *x, int L, opl_tensor *const *w, opl_tensor *const *b,
                        opl_jet_spec s);

/* Product of two jets of one shape [K, N, D] by Leibniz's rule (above) -> [K, N, D]. */
opl_tensor *opl_jet_mul(opl_ctx *c, opl_tensor *a, opl_tensor *b, opl_jet_spec s);

#endif
